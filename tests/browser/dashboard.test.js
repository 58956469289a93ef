#!/usr/bin/env node
// Browser test of the weir dashboard: drives Debian's headless chromium with
// playwright-core against a running job (`weir run ... --serve ADDR`) and
// checks that the page draws every actor of the job and keeps updating.
//
//   node tests/browser/dashboard.test.js http://127.0.0.1:PORT/
//
// Env: CHROMIUM (default /usr/bin/chromium), SCREENSHOT (default
// target/dashboard.png). Prints one PASS/FAIL line per check and ends with
// "N passed, N failed"; exits non-zero on any failure.
'use strict';
const path = require('path');
const fs = require('fs');
const { chromium } = require('playwright-core');

const base = new URL(process.argv[2] || 'http://127.0.0.1:8099/');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOT = process.env.SCREENSHOT || path.join(__dirname, '..', '..', 'target', 'dashboard.png');
const ARGS = ['--no-sandbox', '--headless=new', '--disable-background-networking', '--disable-component-update',
  '--disable-default-apps', '--disable-sync', '--no-first-run', '--disable-gpu'];

let passed = 0, failed = 0;
function check(ok, what, detail) {
  if (ok) { passed++; console.log(`PASS ${what}${detail ? ' — ' + detail : ''}`); }
  else { failed++; console.log(`FAIL ${what}${detail ? ' — ' + detail : ''}`); }
  return ok;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(page, fn, ms) {
  try { await page.waitForFunction(fn, null, { timeout: ms, polling: 100 }); return true; } catch (_) { return false; }
}

async function api(p) {
  const r = await fetch(new URL(p, base), { signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`GET ${p}: HTTP ${r.status}`);
  return r.json();
}

// What the page shows: every actor's out-rate and the summary figures.
function readFigures(page) {
  return page.evaluate(() => {
    const rates = {};
    for (const g of document.querySelectorAll('#job-graph g.actor[data-actor]')) {
      const t = g.querySelector('.rate-out');
      const v = g.getAttribute('data-rate-out') ?? (t && t.getAttribute('data-rate-out'));
      rates[g.getAttribute('data-actor')] = v === null ? null : Number(v);
    }
    const fig = (id) => { const e = document.getElementById(id); return e ? Number(e.dataset.value) : NaN; };
    const c = document.getElementById('plot-rate');
    return {
      rates,
      throughput: fig('total-throughput'),
      records: fig('total-records'),
      plot: c ? c.toDataURL() : '',
      state: (document.getElementById('job-state') || {}).textContent,
      bottleneck: (document.getElementById('bottleneck') || {}).textContent,
    };
  });
}

(async () => {
  console.log(`dashboard test against ${base.href}`);
  const jobs = await api('api/jobs');
  if (!check(Array.isArray(jobs) && jobs.length > 0, 'GET /api/jobs lists a job', `${jobs.length} job(s)`)) return finish();
  const job = jobs.find((j) => j.state === 'running') || jobs[0];
  const detail = await api('api/jobs/' + job.id);
  const expected = [];
  for (const n of detail.graph.nodes) for (let i = 0; i < n.parallelism; i++) expected.push(`${n.name}#${i}`);
  console.log(`job ${job.name} (${job.id}, ${job.state}): actors ${expected.join(', ')}`);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 30000 });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const errors = [], external = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()} for ${r.url()}`); });
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.origin !== base.origin) external.push(r.url());
  });

  try {
    await page.goto(base.href, { waitUntil: 'load', timeout: 15000 });
    const deadline = Date.now() + 30000;
    let missing = expected;
    while (Date.now() < deadline) {
      missing = await page.evaluate((names) => names.filter((n) =>
        !document.querySelector(`#job-graph g.actor[data-actor="${CSS.escape(n)}"]`)), expected);
      if (missing.length === 0) break;
      await sleep(200);
    }
    check(missing.length === 0, 'job graph has a box for every actor', missing.length ? `missing ${missing.join(', ')}` : `${expected.length} actors`);
    // Wait for the first poll with metrics in it (a positive throughput).
    const warm = Date.now() + 15000;
    let a = await readFigures(page);
    while (Date.now() < warm && !(a.throughput > 0 && a.records > 0)) { await sleep(250); a = await readFigures(page); }
    check(expected.every((n) => Number.isFinite(a.rates[n])), 'every actor box shows a numeric out-rate',
      expected.map((n) => `${n}=${Math.round(a.rates[n])}`).join(' '));
    check(a.throughput > 0, 'total throughput is positive', `${Math.round(a.throughput)} records/s`);
    const now = await api('api/jobs/' + job.id);
    check(a.state === now.state || a.state === detail.state, 'job state shown', `${a.state} (API: ${now.state})`);
    check(/bottleneck/.test(a.bottleneck || ''), 'bottleneck line shown', a.bottleneck);

    await sleep(3000);
    let b = await readFigures(page);
    const changed = (x, y) => y.records !== x.records && expected.some((n) => y.rates[n] !== x.rates[n]);
    const more = Date.now() + 7000;
    while (Date.now() < more && !changed(a, b)) { await sleep(500); b = await readFigures(page); }
    check(b.records > a.records, 'records read keep growing', `${a.records} -> ${b.records}`);
    check(expected.some((n) => b.rates[n] !== a.rates[n]), 'out-rates are updated live',
      expected.filter((n) => b.rates[n] !== a.rates[n]).length + ` of ${expected.length} changed`);
    check(b.throughput !== a.throughput, 'total throughput figure is updated', `${Math.round(a.throughput)} -> ${Math.round(b.throughput)}`);
    check(b.plot !== a.plot, 'throughput plot is redrawn with new samples');
    const rows = await page.$$eval('#actor-table tbody tr[data-actor]', (r) => r.length);
    check(rows === expected.length, 'actor table has a row per actor', `${rows} rows`);
    // The worker panel: shown with a row per owned partition for a group
    // worker (`weir worker --serve`), hidden otherwise (`weir run --serve`).
    const status = await api('api/status');
    const panel = await page.$eval('#worker-panel', (e) => ({ hidden: e.hidden, rows: e.querySelectorAll('tbody tr[data-partition]').length }));
    if (status.worker) {
      check(!panel.hidden && panel.rows === status.worker.owned.length, 'worker panel shows each owned partition',
        `${panel.rows} row(s), ${status.worker.owned.length} owned`);
    } else {
      check(panel.hidden, 'worker panel hidden for a job that is not a group worker', `worker: ${JSON.stringify(status.worker)}`);
    }
    const cps = (await api('api/jobs/' + job.id)).checkpoints || [];
    const shown = await page.$$eval('#checkpoints tbody tr', (r) => r.map((x) => x.textContent));
    check(cps.length ? shown.some((t) => /completed|aborted/.test(t)) : shown.some((t) => /no checkpoints/.test(t)),
      'checkpoints list matches the API', `${cps.length} in the API, ${shown.length} row(s) shown`);
  } catch (e) {
    check(false, 'dashboard test ran to the end', e.message);
  }
  check(errors.length === 0, 'no console errors, page errors or failed requests', errors.slice(0, 5).join(' | '));
  check(external.length === 0, 'nothing is fetched from another origin', external.slice(0, 5).join(' '));
  try {
    fs.mkdirSync(path.dirname(SHOT), { recursive: true });
    await page.screenshot({ path: SHOT, fullPage: true });
    console.log(`screenshot: ${SHOT}`);
  } catch (e) {
    console.log(`screenshot failed: ${e.message}`);
  }
  // A failing poll shows the banner; the next good one hides it again.
  try {
    await page.route('**/api/jobs/**', (r) => r.fulfill({ status: 503, body: 'unavailable' }));
    const shown = await waitFor(page, () => !document.getElementById('banner').hidden, 5000);
    const text = shown ? await page.$eval('#banner', (b) => b.textContent) : '';
    await page.unroute('**/api/jobs/**');
    const hidden = await waitFor(page, () => document.getElementById('banner').hidden, 5000);
    check(shown && hidden, 'error banner shows while polls fail and hides after', text);
  } catch (e) {
    check(false, 'error banner shows while polls fail and hides after', e.message);
  }
  await browser.close();
  finish();
})().catch((e) => { check(false, 'dashboard test', e.stack || e.message); finish(); });

function finish() {
  console.log(`dashboard: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
