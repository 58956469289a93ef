#!/usr/bin/env node
// A stand-in for `weir run ... --serve`: serves src/web/assets and fake,
// changing job JSON in the shape of weir's job API, so the dashboard can be
// worked on without a running job. No dependencies.
//
//   node tests/browser/fake_server.js [port]      (default 8099)
//   node tests/browser/fake_server.js 8099 http://127.0.0.1:8080
//       serves the assets from disk but forwards /api and /metrics to a
//       real `weir run --serve` (edit the page without rebuilding weir).
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');

const ASSETS = path.join(__dirname, '..', '..', 'src', 'web', 'assets');
const port = Number(process.argv[2] || 8099);
const upstream = process.argv[3] ? new URL(process.argv[3]) : null;
const started = Date.now();
const P = 2;

const graph = {
  nodes: [
    { name: 'generator', kind: 'Source', parallelism: P },
    { name: 'windows', kind: 'Window', parallelism: P },
    { name: 'late', kind: 'Sink', parallelism: 1 },
    { name: 'results', kind: 'Sink', parallelism: 1 },
  ],
  edges: [
    { from: 'generator', to: 'windows', output: 'main' },
    { from: 'windows', to: 'late', output: 'side' },
    { from: 'windows', to: 'results', output: 'main' },
  ],
};
const jobs = [
  { id: '6f1c2a9e-0d4b-4c61-9a51-3f0d7c2e8b11', name: 'wl1', graph, runFor: 150000 },
  { id: '0b7e52d4-55a9-4a3e-8f0e-1c9a6b2d4e70', name: 'wl2', graph, runFor: 20000 },
];
const counters = new Map();

function state(job) {
  const el = Date.now() - started;
  return { el: Math.min(el, job.runFor), st: el >= job.runFor ? 'finished' : 'running' };
}

function detail(job) {
  const { el, st } = state(job);
  const now = Date.now();
  const t = el / 1000;
  const running = st === 'running';
  const actors = [];
  for (const n of graph.nodes) {
    for (let i = 0; i < n.parallelism; i++) {
      const name = `${n.name}#${i}`;
      const c = counters.get(job.id + name) || { in: 0, out: 0, bin: 0, bout: 0, bp: 0, late: 0 };
      let rate = running ? 1e6 * (1 + 0.3 * Math.sin(t / 7 + i)) + Math.random() * 5e4 : 0;
      if (n.kind === 'Sink') rate = running ? 40 + Math.random() * 10 : 0;
      if (n.name === 'late') rate = running ? Math.random() * 3 : 0;
      const bpr = n.kind === 'Source' ? Math.max(0, Math.min(1, 0.55 + 0.35 * Math.sin(t / 11))) : n.name === 'windows' && i === 0 ? 0.12 : 0;
      c.in += n.kind === 'Source' ? rate : rate; c.out += rate; c.bin += rate / 1024; c.bout += rate / 1024; c.bp += bpr * 1000;
      if (n.kind === 'Window' && running) c.late += Math.floor(Math.random() * 3);
      counters.set(job.id + name, c);
      const wm = !running ? 9223372036854775807 : el < 2000 ? null : Math.floor(t * 100000 - 2000);
      const fill = n.name === 'windows' ? (i === 1 ? 0.9 + Math.random() * 0.1 : 0.2 * Math.random()) : 0.05;
      actors.push({
        name, node: n.name, kind: n.kind,
        records_in: Math.round(c.in), records_out: Math.round(c.out),
        batches_in: Math.round(c.bin), batches_out: Math.round(c.bout),
        rate_in: rate, rate_out: rate, mailbox_len: Math.round(fill * 16), mailbox_capacity: 16,
        mailbox_fill: fill, backpressure_ratio: bpr, backpressured_ms: Math.round(c.bp),
        blocked: bpr > 0.5, watermark: wm,
        watermark_lag_ms: wm === null || !running ? null : 2000 + 800 * Math.sin(t / 5 + i) + (n.kind === 'Sink' ? 500 : 0),
        late_records: c.late, dead_letters: 0, open_windows: n.kind === 'Window' ? 16 + (i * 3) : 0,
      });
    }
  }
  const checkpoints = [];
  for (let s = 1; s <= Math.floor(el / 5000); s++) {
    checkpoints.push({ seq: s, duration_ms: 40 + (s * 37) % 90, alignment_ms: (s * 13) % 20, bytes: 20000 + s * 517, completed: s % 7 !== 0 });
  }
  return { id: job.id, name: job.name, state: st, elapsed_ms: el, error: null, graph, actors, checkpoints, sampled_at_ms: now };
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (upstream && (p.startsWith('/api/') || p === '/metrics')) {
    const up = http.get(new URL(req.url, upstream), (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
    up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
    return;
  }
  const json = (v, code = 200) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(v)); };
  if (p === '/api/jobs') return json(jobs.map(j => ({ id: j.id, name: j.name, state: state(j).st, elapsed_ms: state(j).el })));
  if (p.startsWith('/api/jobs/')) {
    const j = jobs.find(x => x.id === p.slice('/api/jobs/'.length));
    return j ? json(detail(j)) : json({ error: 'no such job' }, 404);
  }
  if (p === '/api/status') {
    // A group worker running partitions 1 and 5 of 8, its lag shrinking.
    const lag = (base) => Math.max(0, base - Math.floor((Date.now() - started) / 100));
    return json({ worker: { group: 'g', member: 'fake-member', generation: 3, members: 2, partitions: 8, done: 0, lease_ms: 3000,
      owned: [{ partition: 1, epoch: 2, checkpoint: 12, lag_messages: lag(900) }, { partition: 5, epoch: 1, checkpoint: null, lag_messages: null }] } });
  }
  if (p === '/metrics') { res.writeHead(200, { 'content-type': 'text/plain' }); return res.end('# fake\n'); }
  const file = p === '/' ? 'index.html' : p.startsWith('/assets/') ? path.basename(p) : null;
  if (file && TYPES[path.extname(file)]) {
    try {
      const body = fs.readFileSync(path.join(ASSETS, file));
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] });
      return res.end(body);
    } catch (_) { /* fall through */ }
  }
  res.writeHead(404); res.end('not found');
}).listen(port, '127.0.0.1', () => console.log(`fake weir dashboard on http://127.0.0.1:${port}/`));
