// weir dashboard: polls the job API every second and draws the job graph
// (coloured by backpressure), the bottleneck, live plots, the actor table and
// the checkpoints. Vanilla JS, no dependencies, nothing fetched from outside;
// every URL is relative so the page works behind any host, port or prefix.
'use strict';
(function () {
  const POLL_MS = 1000;
  const LIST_MS = 5000;
  const WINDOW_MS = 120000;
  const BP_LOW = 0.1;
  const BP_HIGH = 0.5;
  const END_WM = 9e18; // i64::MAX marks the end of input
  const SVGNS = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#2563eb', '#db2777', '#059669', '#d97706', '#7c3aed', '#0891b2',
    '#dc2626', '#65a30d', '#9333ea', '#0d9488', '#ea580c', '#4f46e5'];

  const $ = (id) => document.getElementById(id);
  const st = {
    jobId: null, jobs: [], last: null, lastOk: 0, graphSig: '', boxes: new Map(),
    hist: { t: [], s: new Map() }, colors: new Map(), pollTimer: null, seq: 0,
  };

  // ---------- formatting ----------
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
  function fmtSI(v, digits) {
    v = num(v);
    if (v === null) return '—';
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + ' G';
    if (a >= 1e6) return (v / 1e6).toFixed(2) + ' M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + ' k';
    if (a >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString('en-US');
    return v.toFixed(digits === undefined ? 1 : digits);
  }
  function fmtTick(v, units) {
    let i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return Number(v.toPrecision(3)) + units[i];
  }
  function fmtTimeTick(v) {
    if (v < 1000) return v + ' ms';
    if (v < 60000) return v / 1000 + ' s';
    if (v < 3600000) return Number((v / 60000).toPrecision(3)) + ' min';
    return Number((v / 3600000).toPrecision(3)) + ' h';
  }
  function fmtInt(v) { v = num(v); return v === null ? '—' : Math.round(v).toLocaleString('en-US'); }
  function fmtPct(v) { v = num(v); return v === null ? '—' : Math.round(v * 100) + '%'; }
  function fmtMs(v) {
    v = num(v);
    if (v === null) return '—';
    const a = Math.abs(v);
    if (a === 0) return '0 ms';
    if (a < 1) return (v * 1000).toFixed(a < 0.01 ? 1 : 0) + ' µs';
    if (a < 10) return v.toFixed(1) + ' ms';
    if (a < 1000) return Math.round(v) + ' ms';
    if (a < 60000) return (v / 1000).toFixed(a < 10000 ? 2 : 1) + ' s';
    return fmtElapsed(v);
  }
  function fmtElapsed(ms) {
    ms = num(ms);
    if (ms === null) return '—';
    const s = Math.floor(ms / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const p2 = (x) => String(x).padStart(2, '0');
    if (h) return `${h} h ${p2(m)} m ${p2(r)} s`;
    if (m) return `${m} m ${p2(r)} s`;
    return `${(ms / 1000).toFixed(1)} s`;
  }
  function fmtBytes(b) {
    b = num(b);
    if (b === null) return '—';
    if (b < 1024) return b + ' B';
    if (b < 1048576) return (b / 1024).toFixed(1) + ' KiB';
    if (b < 1073741824) return (b / 1048576).toFixed(1) + ' MiB';
    return (b / 1073741824).toFixed(2) + ' GiB';
  }
  function fmtWatermark(w) {
    w = num(w);
    if (w === null || w <= -END_WM) return '—';
    if (w >= END_WM) return 'end';
    if (Math.abs(w) > 1e11) return new Date(w).toISOString().slice(11, 23); // epoch ms: time of day, UTC
    return (w / 1000).toFixed(3) + ' s';
  }
  function bpClass(r) {
    r = num(r);
    if (r === null) return 'bp-none';
    return r >= BP_HIGH ? 'bp-high' : r >= BP_LOW ? 'bp-low' : 'bp-ok';
  }

  // ---------- fetching ----------
  async function getJSON(url) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 4000);
    try {
      const r = await fetch(url, { cache: 'no-store', signal: ctl.signal });
      if (!r.ok) throw new Error(`HTTP ${r.status}${r.statusText ? " " + r.statusText : ""}`);
      return await r.json();
    } catch (e) {
      if (e.name === 'AbortError') throw new Error(`timeout on ${url}`);
      if (e instanceof TypeError) throw new Error('server unreachable');
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
  function banner(msg) {
    const b = $('banner');
    document.body.classList.toggle('stale', !!msg);
    if (!msg) { b.hidden = true; return; }
    const ago = st.lastOk ? ` · last update ${Math.round((Date.now() - st.lastOk) / 1000)} s ago` : '';
    b.textContent = `${msg} — retrying${ago}`;
    b.hidden = false;
  }

  async function refreshJobs() {
    try {
      const jobs = await getJSON('api/jobs');
      st.jobs = Array.isArray(jobs) ? jobs : [];
      renderJobPicker();
      if (!st.jobId || !st.jobs.some((j) => j.id === st.jobId)) {
        const want = new URLSearchParams(location.search).get('job') || location.hash.slice(1);
        const pick = st.jobs.find((j) => j.id === want) || st.jobs.find((j) => j.state === 'running') || st.jobs[0];
        if (pick) selectJob(pick.id);
        else { $('job-name').textContent = 'no job'; }
      }
      return true;
    } catch (e) {
      banner(`cannot list jobs: ${e.message}`);
      return false;
    }
  }
  function renderJobPicker() {
    const sel = $('job-select');
    $('job-pick').hidden = st.jobs.length < 2;
    const opts = st.jobs.map((j) => `<option value="${esc(j.id)}">${esc(j.name)} · ${esc(j.state)} · ${esc(j.id.slice(0, 8))}</option>`).join('');
    if (sel.dataset.opts !== opts) { sel.innerHTML = opts; sel.dataset.opts = opts; }
    if (st.jobId) sel.value = st.jobId;
  }
  function selectJob(id) {
    if (st.jobId === id) return;
    st.jobId = id;
    st.last = null;
    st.graphSig = '';
    st.hist = { t: [], s: new Map() };
    st.colors = new Map();
    st.bnScore = null;
    $('job-select').value = id;
    st.seq++;
    clearTimeout(st.pollTimer);
    poll();
  }

  async function poll() {
    const seq = st.seq;
    const id = st.jobId;
    if (!id) return;
    try {
      const d = await getJSON('api/jobs/' + encodeURIComponent(id));
      if (seq !== st.seq) return; // another job was picked meanwhile
      st.lastOk = Date.now();
      banner(null);
      render(d);
      refreshWorker();
    } catch (e) {
      if (seq !== st.seq) return;
      banner(`poll failed: ${e.message}`);
    }
    if (seq === st.seq) st.pollTimer = setTimeout(poll, POLL_MS);
  }

  // ---------- model helpers ----------
  function nodeOf(a) { return a.node || String(a.name).replace(/#\d+$/, ''); }
  function actorNames(d) {
    const names = [];
    const nodes = (d.graph && d.graph.nodes) || [];
    for (const n of nodes) for (let i = 0; i < (n.parallelism || 1); i++) names.push(`${n.name}#${i}`);
    for (const a of d.actors || []) if (!names.includes(a.name)) names.push(a.name);
    return names;
  }
  function colorOf(name) {
    if (!st.colors.has(name)) st.colors.set(name, PALETTE[st.colors.size % PALETTE.length]);
    return st.colors.get(name);
  }

  // Flink's rule: the bottleneck is the first actor downstream of
  // backpressured actors that is not itself backpressured (it is busy, its
  // upstream waits for it). Ties go to the fuller mailbox.
  function findBottleneck(d) {
    const actors = d.actors || [];
    const edges = (d.graph && d.graph.edges) || [];
    const prev = st.bnScore || new Map(), seen = new Map();
    let best = null;
    for (const a of actors) {
      if ((num(a.backpressure_ratio) || 0) >= BP_LOW) continue;
      const ups = new Set(edges.filter((e) => e.to === nodeOf(a)).map((e) => e.from));
      let up = null;
      for (const u of actors) {
        if (ups.has(nodeOf(u)) && (!up || (num(u.backpressure_ratio) || 0) > (num(up.backpressure_ratio) || 0))) up = u;
      }
      if (!up || (num(up.backpressure_ratio) || 0) < BP_LOW) continue;
      // Smoothed over a few polls so that the pick does not flicker
      // between instances whose mailboxes fill in turn.
      const now = up.backpressure_ratio + 0.5 * (num(a.mailbox_fill) || 0);
      const score = 0.6 * (prev.get(a.name) || now) + 0.4 * now;
      seen.set(a.name, score);
      if (!best || score > best.score) best = { actor: a, up, score };
    }
    st.bnScore = seen;
    return best;
  }

  // ---------- rendering ----------
  function render(d) {
    st.last = d;
    const running = d.state === 'running';
    $('job-name').textContent = d.name || d.id;
    const s = $('job-state');
    s.textContent = d.state;
    s.className = 'state state-' + d.state;
    $('job-elapsed').textContent = fmtElapsed(d.elapsed_ms);
    $('job-id').textContent = d.id;
    $('job-id').title = 'job id';
    document.title = `weir · ${d.name} · ${d.state}`;
    const je = $('job-error');
    je.hidden = !d.error;
    je.textContent = d.error ? `job failed: ${d.error}` : '';
    const j = st.jobs.find((x) => x.id === d.id);
    if (j && j.state !== d.state) { j.state = d.state; renderJobPicker(); }

    const actors = d.actors || [];
    const kindOf = new Map(((d.graph && d.graph.nodes) || []).map((n) => [n.name, n.kind]));
    const kind = (a) => a.kind || kindOf.get(nodeOf(a));
    let tput = 0, read = 0, delivered = 0, late = 0, maxLag = null;
    for (const a of actors) {
      if (kind(a) === 'Source') { tput += num(a.rate_out) || 0; read += num(a.records_out) || 0; }
      if (kind(a) === 'Sink') delivered += num(a.records_out) || 0;
      late += num(a.late_records) || 0;
      const lag = num(a.watermark_lag_ms);
      if (lag !== null && (maxLag === null || lag > maxLag)) maxLag = lag;
    }
    setFigure('total-throughput', tput, fmtSI(tput));
    setFigure('total-records', read, fmtSI(read));
    setFigure('total-delivered', delivered, fmtSI(delivered));
    $('max-lag').textContent = fmtMs(maxLag);
    $('total-late').textContent = fmtInt(late);

    const bn = running ? findBottleneck(d) : null;
    renderGraph(d, bn);
    const p = $('bottleneck');
    if (bn) {
      p.innerHTML = `<b>bottleneck: ${esc(bn.actor.name)}</b> (upstream ${esc(bn.up.name)} blocked ${fmtPct(bn.up.backpressure_ratio)} of the time; ` +
        `its mailbox ${fmtPct(bn.actor.mailbox_fill)} full)`;
      p.className = 'bottleneck hot';
    } else {
      p.textContent = running ? `no bottleneck: no actor spent ${Math.round(BP_LOW * 100)}% or more of the last second blocked on a full mailbox`
        : `job ${d.state}: final figures`;
      p.className = 'bottleneck';
    }

    record(d);
    drawPlots();
    renderTable(d, bn);
    renderCheckpoints(d.checkpoints || []);
    $('sampled').textContent = d.sampled_at_ms ? new Date(d.sampled_at_ms).toLocaleTimeString() : '—';
  }
  function setFigure(id, v, text) {
    const e = $(id);
    e.textContent = text;
    e.dataset.value = String(v);
  }

  function el(tag, attrs, parent) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  const BW = 184, BH = 62, BGAP = 10, GPAD = 12, GHEAD = 28, COLGAP = 96, ROWGAP = 28, MARGIN = 16;

  function layout(graph, names) {
    const nodes = graph.nodes.map((n) => n.name);
    for (const nm of names) { const n = nm.replace(/#\d+$/, ''); if (!nodes.includes(n)) nodes.push(n); }
    const depth = new Map(nodes.map((n) => [n, 0]));
    // Longest path from the sources; bounded loop guards against cycles.
    for (let i = 0; i < nodes.length; i++) {
      for (const e of graph.edges) {
        if (depth.has(e.from) && depth.has(e.to) && depth.get(e.to) < depth.get(e.from) + 1) depth.set(e.to, depth.get(e.from) + 1);
      }
    }
    const cols = [];
    for (const n of nodes) { const c = depth.get(n); (cols[c] = cols[c] || []).push(n); }
    const inst = (n) => names.filter((x) => x.replace(/#\d+$/, '') === n);
    const gh = (n) => GHEAD + GPAD + Math.max(1, inst(n).length) * (BH + BGAP) - BGAP + GPAD;
    const colH = cols.map((c) => (c || []).reduce((h, n) => h + gh(n), 0) + ((c || []).length - 1) * ROWGAP);
    const H = Math.max(...colH, 100) + 2 * MARGIN + 16;
    const GW = BW + 2 * GPAD;
    const pos = new Map();
    cols.forEach((c, ci) => {
      let y = MARGIN + 16 + (H - 2 * MARGIN - 16 - colH[ci]) / 2;
      for (const n of c || []) {
        pos.set(n, { x: MARGIN + ci * (GW + COLGAP), y, w: GW, h: gh(n), actors: inst(n) });
        y += gh(n) + ROWGAP;
      }
    });
    return { pos, W: MARGIN * 2 + cols.length * GW + (cols.length - 1) * COLGAP, H };
  }

  function buildGraph(d, names) {
    const svg = $('job-graph');
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    st.boxes = new Map();
    const graph = { nodes: (d.graph && d.graph.nodes) || [], edges: (d.graph && d.graph.edges) || [] };
    const kinds = new Map(graph.nodes.map((n) => [n.name, n]));
    const L = layout(graph, names);
    svg.setAttribute('viewBox', `0 0 ${L.W} ${L.H}`);
    svg.setAttribute('width', L.W);
    svg.setAttribute('height', L.H);
    const defs = el('defs', {}, svg);
    const m = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' }, defs);
    el('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-head' }, m);

    const edgeLayer = el('g', { class: 'edges' }, svg);
    const outs = new Map();
    for (const e of graph.edges) {
      const a = L.pos.get(e.from), b = L.pos.get(e.to);
      if (!a || !b) continue;
      const k = (outs.get(e.from) || 0) + 1; outs.set(e.from, k);
      const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x - 2, y2 = b.y + b.h / 2;
      const cx = (x1 + x2) / 2;
      const side = e.output && e.output !== 'main' && e.output !== 'data';
      const g = el('g', { class: 'edge' + (side ? ' side' : ''), 'data-from': e.from, 'data-to': e.to }, edgeLayer);
      el('path', { d: `M${x1},${y1} C${cx},${y1} ${cx},${y2} ${x2},${y2}`, 'marker-end': 'url(#arrow)' }, g);
      if (side) {
        const t = el('text', { x: cx, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle', class: 'edge-label' }, g);
        t.textContent = e.output;
      }
    }

    for (const [n, p] of L.pos) {
      const info = kinds.get(n) || { kind: '', parallelism: p.actors.length };
      const g = el('g', { class: 'node', 'data-node': n }, svg);
      el('rect', { x: p.x, y: p.y, width: p.w, height: p.h, rx: 8, class: 'node-frame' }, g);
      const t = el('text', { x: p.x + GPAD, y: p.y + 19, class: 'node-title' }, g);
      t.textContent = n;
      const k = el('text', { x: p.x + p.w - GPAD, y: p.y + 19, 'text-anchor': 'end', class: 'node-kind' }, g);
      k.textContent = `${info.kind} ×${info.parallelism}`;
      p.actors.forEach((name, i) => {
        const x = p.x + GPAD, y = p.y + GHEAD + GPAD + i * (BH + BGAP);
        const a = el('g', { class: 'actor bp-none', 'data-actor': name, 'data-rate-out': '0' }, g);
        const title = el('title', {}, a);
        el('rect', { x, y, width: BW, height: BH, rx: 5, class: 'box' }, a);
        el('rect', { x, y, width: 5, height: BH, rx: 2, class: 'strip' }, a);
        const nm = el('text', { x: x + 12, y: y + 17, class: 'name' }, a);
        nm.textContent = name;
        const bp = el('text', { x: x + BW - 8, y: y + 17, 'text-anchor': 'end', class: 'bp' }, a);
        const rin = el('text', { x: x + 12, y: y + 35, class: 'rate-in' }, a);
        const rout = el('text', { x: x + BW - 8, y: y + 35, 'text-anchor': 'end', class: 'rate-out', 'data-rate-out': '0' }, a);
        el('rect', { x: x + 12, y: y + 45, width: BW - 84, height: 6, rx: 3, class: 'mb-bg' }, a);
        const mb = el('rect', { x: x + 12, y: y + 45, width: 0, height: 6, rx: 3, class: 'mb-fill' }, a);
        const mbt = el('text', { x: x + BW - 8, y: y + 52, 'text-anchor': 'end', class: 'mb-text' }, a);
        const tag = el('text', { x: x + BW - 4, y: y - 3, 'text-anchor': 'end', class: 'bn-tag' }, a);
        st.boxes.set(name, { g: a, title, bp, rin, rout, mb, mbt, tag, w: BW - 84 });
      });
    }
  }

  function renderGraph(d, bn) {
    const names = actorNames(d);
    const sig = JSON.stringify([names, (d.graph && d.graph.edges) || []]);
    if (sig !== st.graphSig) { buildGraph(d, names); st.graphSig = sig; }
    const byName = new Map((d.actors || []).map((a) => [a.name, a]));
    for (const [name, b] of st.boxes) {
      const a = byName.get(name);
      const isBn = !!(bn && bn.actor.name === name);
      b.g.setAttribute('class', `actor ${a ? bpClass(a.backpressure_ratio) : 'bp-none'}${isBn ? ' bottleneck' : ''}${a && a.blocked ? ' blocked' : ''}`);
      b.tag.textContent = isBn ? 'bottleneck' : '';
      if (!a) { b.bp.textContent = 'no data'; b.rin.textContent = ''; b.rout.textContent = ''; b.mbt.textContent = ''; continue; }
      const ro = num(a.rate_out) || 0;
      b.g.setAttribute('data-rate-out', String(ro));
      b.rout.setAttribute('data-rate-out', String(ro));
      b.bp.textContent = `bp ${fmtPct(a.backpressure_ratio)}`;
      b.rin.textContent = `in ${fmtSI(a.rate_in)}/s`;
      b.rout.textContent = `out ${fmtSI(ro)}/s`;
      const fill = Math.max(0, Math.min(1, num(a.mailbox_fill) || 0));
      b.mb.setAttribute('width', String(Math.max(fill > 0 ? 2 : 0, fill * b.w)));
      b.mb.setAttribute('class', 'mb-fill ' + (fill >= 0.9 ? 'hi' : fill >= 0.5 ? 'mid' : ''));
      b.mbt.textContent = `mbox ${fmtPct(fill)}`;
      b.title.textContent = `${name} (${a.kind})\nrecords in ${fmtInt(a.records_in)}, out ${fmtInt(a.records_out)}\n` +
        `rate in ${fmtSI(a.rate_in)}/s, out ${fmtSI(ro)}/s\nbackpressured ${fmtPct(a.backpressure_ratio)} of the last second` +
        `${a.blocked ? ' (blocked now)' : ''}\nmailbox ${a.mailbox_len}/${a.mailbox_capacity}\nwatermark ${fmtWatermark(a.watermark)}, lag ${fmtMs(a.watermark_lag_ms)}`;
    }
  }

  // ---------- history and plots ----------
  function record(d) {
    const h = st.hist;
    const t = num(d.sampled_at_ms) || Date.now();
    if (h.t.length && t <= h.t[h.t.length - 1]) return;
    h.t.push(t);
    const byName = new Map((d.actors || []).map((a) => [a.name, a]));
    for (const name of actorNames(d)) {
      if (!h.s.has(name)) h.s.set(name, { rate: new Array(h.t.length - 1).fill(null), lag: new Array(h.t.length - 1).fill(null) });
    }
    for (const [name, s] of h.s) {
      const a = byName.get(name);
      s.rate.push(a ? num(a.rate_out) : null);
      s.lag.push(a ? num(a.watermark_lag_ms) : null);
    }
    let drop = 0;
    while (drop < h.t.length && h.t[drop] < t - WINDOW_MS - 5000) drop++;
    if (drop) { h.t.splice(0, drop); for (const s of h.s.values()) { s.rate.splice(0, drop); s.lag.splice(0, drop); } }
  }

  // Linear axis: ticks at a round step (1, 2, 2.5 or 5 × 10^n), 3 to 5 of them.
  const TIME_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5,
    9e5, 18e5, 36e5, 72e5, 216e5, 432e5, 864e5];
  function linearAxis(max, time) {
    if (!(max > 0)) max = 1;
    const raw = max / 4, p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = (time && TIME_STEPS.find((x) => x >= raw)) || [1, 2, 2.5, 5, 10].map((m) => m * p).find((x) => x >= raw);
    const top = step * Math.ceil(max / step);
    const ticks = [];
    for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
    return { top, ticks, y: (v) => v / top };
  }
  // Log axis for rates that span decades (sources at millions, sinks at tens).
  function logAxis(max) {
    const hi = Math.max(1, Math.ceil(Math.log10(Math.max(max, 1) * 1.05)));
    const ticks = [];
    for (let e = 0; e <= hi; e++) ticks.push(Math.pow(10, e));
    return { ticks, y: (v) => (v >= 1 ? Math.log10(v) / hi : 0) };
  }

  function drawPlot(canvas, key, fmt, log) {
    const dpr = window.devicePixelRatio || 1;
    const W = canvas.clientWidth || 600, H = canvas.clientHeight || 220;
    if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
      canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    }
    const c = canvas.getContext('2d');
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, W, H);
    const L = 64, R = 12, T = 10, B = 24, pw = W - L - R, ph = H - T - B;
    const h = st.hist;
    const now = h.t.length ? h.t[h.t.length - 1] : Date.now();
    let max = 0;
    for (const s of h.s.values()) for (const v of s[key]) if (v !== null && v > max) max = v;
    const axis = log ? logAxis(max) : linearAxis(max * 1.05, true);
    const css = getComputedStyle(document.body);
    c.font = '11px ' + css.fontFamily;
    c.lineWidth = 1;
    c.strokeStyle = '#e5e7eb'; c.fillStyle = '#6b7280';
    c.textAlign = 'right'; c.textBaseline = 'middle';
    for (const v of axis.ticks) {
      const y = T + ph - ph * axis.y(v);
      c.beginPath(); c.moveTo(L, Math.round(y) + 0.5); c.lineTo(L + pw, Math.round(y) + 0.5); c.stroke();
      c.fillText(log && v === 1 ? '≤1' : fmt(v), L - 6, y);
    }
    c.textAlign = 'center'; c.textBaseline = 'top';
    for (let s = 0; s <= WINDOW_MS / 1000; s += 20) {
      const x = L + pw - (pw * s * 1000) / WINDOW_MS;
      c.beginPath(); c.moveTo(Math.round(x) + 0.5, T); c.lineTo(Math.round(x) + 0.5, T + ph); c.stroke();
      c.fillText(s === 0 ? 'now' : `-${s}s`, x, T + ph + 6);
    }
    if (!h.t.length) return;
    c.save();
    c.beginPath(); c.rect(L, T, pw, ph); c.clip();
    c.lineWidth = 1.6; c.lineJoin = 'round';
    let any = false;
    for (const [name, s] of h.s) {
      c.strokeStyle = colorOf(name);
      c.beginPath();
      let pen = false;
      s[key].forEach((v, i) => {
        if (v === null) { pen = false; return; }
        any = true;
        const x = L + pw - (pw * (now - h.t[i])) / WINDOW_MS;
        const y = T + ph - ph * axis.y(v);
        if (pen) c.lineTo(x, y); else c.moveTo(x, y);
        pen = true;
      });
      c.stroke();
    }
    c.restore();
    if (!any) {
      c.fillStyle = '#9ca3af'; c.textAlign = 'center'; c.textBaseline = 'middle';
      c.fillText('no data yet', L + pw / 2, T + ph / 2);
    }
  }

  function drawPlots() {
    drawPlot($('plot-rate'), 'rate', (v) => fmtTick(v, ['', ' k', ' M', ' G']) + '/s', true);
    drawPlot($('plot-lag'), 'lag', fmtTimeTick, false);
    const leg = [...st.hist.s.keys()].map((n) => `<span class="lg"><i class="sw" style="background:${colorOf(n)}"></i>${esc(n)}</span>`).join('');
    const box = $('series-legend');
    if (box.dataset.html !== leg) { box.innerHTML = leg; box.dataset.html = leg; }
  }

  // ---------- tables ----------
  function renderTable(d, bn) {
    const order = actorNames(d);
    const rows = [...(d.actors || [])].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name)).map((a) => {
      const fill = num(a.mailbox_fill) || 0;
      return `<tr data-actor="${esc(a.name)}"${bn && bn.actor.name === a.name ? ' class="is-bn"' : ''}>` +
        `<td class="l"><i class="sw" style="background:${colorOf(a.name)}"></i>${esc(a.name)}</td><td class="l dim">${esc(a.kind || '')}</td>` +
        `<td>${fmtInt(a.records_in)}</td><td>${fmtInt(a.records_out)}</td>` +
        `<td>${fmtSI(a.rate_in)}</td><td class="rate-out-cell">${fmtSI(a.rate_out)}</td>` +
        `<td><span class="bar ${fill >= 0.9 ? 'hi' : fill >= 0.5 ? 'mid' : ''}"><span style="width:${Math.round(fill * 100)}%"></span></span>${a.mailbox_len ?? '—'}/${a.mailbox_capacity ?? '—'}</td>` +
        `<td><span class="pill ${bpClass(a.backpressure_ratio)}">${fmtPct(a.backpressure_ratio)}</span>${a.blocked ? ' <span class="dim" title="blocked now">●</span>' : ''}</td>` +
        `<td title="${esc(a.watermark ?? '')}">${fmtWatermark(a.watermark)}</td><td>${fmtMs(a.watermark_lag_ms)}</td>` +
        `<td>${fmtInt(a.late_records)}</td><td>${fmtInt(a.dead_letters)}</td><td>${fmtInt(a.open_windows)}</td></tr>`;
    }).join('');
    $('actor-table').tBodies[0].innerHTML = rows || '<tr><td colspan="13" class="empty">no actor metrics yet</td></tr>';
  }

  function renderCheckpoints(cps) {
    const done = cps.filter((c) => c.completed).length;
    $('cp-summary').textContent = cps.length ? `${done} completed, ${cps.length - done} aborted` : '';
    const rows = [...cps].sort((a, b) => b.seq - a.seq).slice(0, 12).map((c) =>
      `<tr><td>${fmtInt(c.seq)}</td><td class="l"><span class="pill ${c.completed ? 'ok' : 'bad'}">${c.completed ? 'completed' : 'aborted'}</span></td>` +
      `<td>${fmtMs(c.duration_ms)}</td><td>${fmtMs(c.alignment_ms)}</td><td>${fmtBytes(c.bytes)}</td></tr>`).join('');
    $('checkpoints').tBodies[0].innerHTML = rows || '<tr><td colspan="5" class="empty">no checkpoints (run the job with <code>--checkpoint-dir</code>)</td></tr>';
  }

  // ---------- group worker (GET /api/status) ----------
  function renderWorker(w) {
    const panel = $('worker-panel');
    panel.hidden = !w;
    if (!w) return;
    $('worker-summary').textContent =
      `group ${w.group} · member ${w.member} · generation ${w.generation} · ` +
      `${w.owned.length} of ${w.partitions} partitions here · ${w.done} done · ${w.members} member(s) · lease ${fmtMs(w.lease_ms)}`;
    panel.dataset.generation = String(w.generation);
    const rows = w.owned.map((p) =>
      `<tr data-partition="${p.partition}"><td>${fmtInt(p.partition)}</td><td>${fmtInt(p.epoch)}</td>` +
      `<td>${p.checkpoint === null ? '—' : fmtInt(p.checkpoint)}</td>` +
      `<td>${p.lag_messages === null ? '—' : fmtInt(p.lag_messages)}</td></tr>`).join('');
    $('worker-partitions').tBodies[0].innerHTML = rows || '<tr><td colspan="4" class="empty">no partition assigned to this worker now</td></tr>';
  }
  async function refreshWorker() {
    try {
      const s = await getJSON('api/status');
      renderWorker(s && s.worker);
    } catch (_) {
      // The job poll reports an unreachable server.
    }
  }

  // ---------- start ----------
  $('job-select').addEventListener('change', (e) => {
    history.replaceState(null, '', '#' + e.target.value);
    selectJob(e.target.value);
  });
  window.addEventListener('resize', () => { if (st.last) drawPlots(); });
  (async function listLoop() {
    await Promise.all([refreshJobs(), refreshWorker()]);
    setTimeout(listLoop, st.jobId ? LIST_MS : POLL_MS);
  })();
})();
