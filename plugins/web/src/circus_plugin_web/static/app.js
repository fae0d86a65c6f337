// circus dashboard: one EventSource for everything live, fetch() for commands.
// No framework and no build step: the page is small enough to be written by hand.
'use strict';

const MAX_EVENTS = 200;        // recent events kept on the page
const MAX_OUTPUT = 2000;       // output lines kept for the open watcher
const LEASE_RENEW = 5000;      // ms between two renewals of the output lease
const ACTIONS = ['start', 'stop', 'restart', 'reload', 'incr', 'decr'];

const watchers = new Map();    // name -> view from the server
const history = new Map();     // name -> [[time, cpu, mem], ...]
const rows = new Map();        // name -> <tr>
let events = [];
let seen = new Set();          // boot:seq of events on the page (snapshot and batch overlap)
let open = null;               // the watcher whose detail is shown
let detail = null;             // its detail row
let outputTimer = null;
let dirty = new Set();
let order = '';          // the watcher names in table order, as last laid out
let frameQueued = false;
let pendingEvents = [];        // events received, not yet painted (for the latency figures)

// What the benchmark and the tests read: event-to-screen delays (ms) and counters.
window.circusLatency = [];
window.circusCounters = {batches: 0, events: 0, snapshots: 0, renders: 0};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('data-') || key === 'title' || key === 'type') node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function fmtNumber(value) {
  return value === null || value === undefined ? '–' : value.toFixed(1);
}

function fmtUptime(started) {
  if (!started) return '–';
  let s = Math.max(0, Math.floor(Date.now() / 1000 - started));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d${String(h).padStart(2, '0')}h`;
  if (h) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

function sums(view) {
  let cpu = 0, mem = 0, known = false;
  for (const p of view.processes) {
    if (p.cpu !== null && p.cpu !== undefined) { cpu += p.cpu; known = true; }
    if (p.mem !== null && p.mem !== undefined) { mem += p.mem; known = true; }
  }
  return known ? [cpu, mem] : [null, null];
}

function points(series, index, width, height) {
  if (!series || series.length < 2) return '';
  const t0 = series[0][0], t1 = series[series.length - 1][0];
  const top = Math.max(1, ...series.map((p) => p[index]));
  return series.map((p) => {
    const x = ((p[0] - t0) / Math.max(t1 - t0, 1)) * width;
    const y = height - (p[index] / top) * (height - 2) - 1;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  }).join(' ');
}

function drawChart(svg, series, index, width, height) {
  const ns = 'http://www.w3.org/2000/svg';
  svg.replaceChildren();
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', points(series, index, width, height));
  svg.append(line);
  return svg;
}

function sparkline(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 120 24');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'spark');
  return drawChart(svg, history.get(name), 1, 120, 24);
}

// -- the watchers table ---------------------------------------------------------------------

// A row is built once and then patched in place: replacing it at every change (up to 20 times
// a second under churn) would swallow a click whose button vanished between press and release.
function watcherRow(view) {
  const buttons = el('td', {class: 'actions'},
    ...ACTIONS.map((cmd) => el('button', {type: 'button', 'data-cmd': cmd,
      title: `${cmd} ${view.name}`}, cmd === 'incr' ? '+1' : cmd === 'decr' ? '−1' : cmd)));
  const name = el('td', {class: 'name'},
    el('button', {type: 'button', class: 'toggle', 'data-toggle': view.name,
      title: 'processes, chart and output'}, '▸'),
    view.name.replace(/^plugin:/, ''),
    view.plugin ? el('span', {class: 'badge'}, 'plugin') : null);
  const spark = sparkline(view.name);
  const row = el('tr', {'data-watcher': view.name},
    name,
    el('td', null, el('span', {class: 'state'})),
    el('td', {class: 'num count'}),
    el('td', {class: 'num restarts'}),
    el('td', {class: 'num cpu'}),
    el('td', {class: 'num mem'}),
    el('td', null, spark),
    buttons);
  updateRow(row, view);
  return row;
}

function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

function updateRow(row, view) {
  const [cpu, mem] = sums(view);
  const live = view.processes.length;
  row.className = `watcher ${view.state}`;
  row.dataset.state = view.state;
  const state = row.querySelector('.state');
  state.className = `state ${view.state}`;
  setText(state, view.state);
  const count = row.querySelector('.count');
  count.dataset.count = live;
  setText(count, `${live}/${view.numprocesses}`);
  setText(row.querySelector('.restarts'), view.restarts);
  setText(row.querySelector('.cpu'), fmtNumber(cpu));
  setText(row.querySelector('.mem'), fmtNumber(mem));
  setText(row.querySelector('.toggle'), open === view.name ? '▾' : '▸');
  drawChart(row.querySelector('.spark'), history.get(view.name), 1, 120, 24);
}

function sortedNames() {
  return [...watchers.keys()].sort((a, b) => {
    const pa = a.startsWith('plugin:'), pb = b.startsWith('plugin:');
    return pa === pb ? a.localeCompare(b) : (pa ? 1 : -1);
  });
}

function renderWatchers() {
  const body = document.querySelector('#watchers tbody');
  for (const name of dirty) {
    const view = watchers.get(name);
    const old = rows.get(name);
    if (!view) {
      if (old) old.remove();
      rows.delete(name);
      if (open === name) closeDetail();
      continue;
    }
    if (old) updateRow(old, view); else rows.set(name, watcherRow(view));
    if (open === name) renderDetail();
  }
  // keep the order (plugins after watchers, by name); moved only when the set changes
  const names = sortedNames();
  const key = names.join('\n');
  if (key !== order) {
    order = key;
    body.append(...names.map((name) => rows.get(name)));
  }
  if (open && detail && rows.get(open) && rows.get(open).nextSibling !== detail) rows.get(open).after(detail);
  dirty.clear();
  const all = [...watchers.values()];
  const procs = all.reduce((n, v) => n + v.processes.length, 0);
  const active = all.filter((v) => v.state === 'active').length;
  document.getElementById('summary').textContent =
    `${all.length} watchers · ${active} active · ${procs} processes`;
}

// -- one watcher's detail: processes, charts, output ----------------------------------------

function renderDetail() {
  const view = watchers.get(open);
  if (!view || !detail) return;
  const box = detail.querySelector('.detail');
  drawChart(box.querySelector('.chart.cpu'), history.get(open), 1, 300, 80);
  drawChart(box.querySelector('.chart.mem'), history.get(open), 2, 300, 80);
  // keyed by pid and patched in place, like the watcher rows (a signal button stays clickable)
  const body = box.querySelector('.procs tbody');
  const existing = new Map([...body.children].map((tr) => [tr.dataset.pid, tr]));
  const wanted = view.processes.map((p) => {
    let tr = existing.get(String(p.pid));
    if (!tr) {
      tr = el('tr', {'data-pid': p.pid},
        el('td', {class: 'num wid'}), el('td', {class: 'num pid'}, p.pid),
        el('td', {class: 'uptime'}), el('td', {class: 'num restarts'}),
        el('td', {class: 'num cpu'}), el('td', {class: 'num mem'}), el('td', {class: 'num rss'}),
        el('td', null, el('button', {type: 'button', 'data-cmd': 'signal', 'data-pid': p.pid,
          title: `send the chosen signal to ${p.pid}`}, 'signal')));
    }
    setText(tr.querySelector('.wid'), p.wid ?? '–');
    const uptime = tr.querySelector('.uptime');
    uptime.dataset.started = p.started;
    setText(uptime, fmtUptime(p.started));
    setText(tr.querySelector('.restarts'), p.restarts ?? '–');
    setText(tr.querySelector('.cpu'), fmtNumber(p.cpu));
    setText(tr.querySelector('.mem'), fmtNumber(p.mem));
    setText(tr.querySelector('.rss'), p.rss ?? '–');
    return tr;
  });
  for (const [pid, tr] of existing) {
    if (!view.processes.some((p) => String(p.pid) === pid)) tr.remove();
  }
  wanted.forEach((tr, index) => {
    if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null);
  });
}

function closeDetail() {
  if (detail) detail.remove();
  detail = null;
  open = null;
  clearInterval(outputTimer);
}

function toggle(name) {
  const was = open;
  closeDetail();
  if (was) { dirty.add(was); }
  if (was === name) { schedule(); return; }
  open = name;
  const content = document.getElementById('detail-template').content.cloneNode(true);
  detail = el('tr', {class: 'detail-row', 'data-detail': name}, el('td', {colSpan: 8}, content));
  dirty.add(name);
  schedule();
  followOutput(true);
  outputTimer = setInterval(() => followOutput(false), LEASE_RENEW);
}

async function followOutput(first) {
  const name = open;
  const reply = await post('/api/output', {name, lines: first ? 200 : 0});
  if (name !== open || !detail) return;
  const pre = detail.querySelector('.output');
  if (reply.status !== 'ok') {
    pre.textContent = `output unavailable: ${reply.reason}`;
    return;
  }
  if (first) { pre.textContent = ''; appendOutput(reply.lines); }
}

function appendOutput(lines) {
  if (!detail || !lines.length) return;
  const pre = detail.querySelector('.output');
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(...lines.map((l) => el('span', {class: l.stream === 'stderr' ? 'stderr' : null,
    'data-pid': l.pid}, `[${l.wid ?? '?'}] ${l.text}\n`)));
  while (pre.childNodes.length > MAX_OUTPUT) pre.firstChild.remove();
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

// -- events ---------------------------------------------------------------------------------

function eventItem(ev) {
  const when = new Date(ev.time * 1000).toLocaleTimeString([], {hour12: false});
  const extra = ev.process_pid ? ` ${ev.process_pid}` : '';
  const code = ev.exit_code !== undefined && ev.exit_code !== null ? ` (exit ${ev.exit_code})` : '';
  const by = ev.by ? el('span', {class: 'by'}, ` by ${ev.by}`) : null;
  return el('li', {class: `ev ${ev.action}`},
    el('time', null, when), ' ', el('b', null, ev.watcher), ` ${ev.action}${extra}${code}`, by);
}

function addEvents(list) {
  const fresh = [];
  for (const ev of list) {
    const key = `${ev.boot}:${ev.seq}`;
    if (ev.seq !== undefined && seen.has(key)) continue;
    seen.add(key);
    fresh.push(ev);
  }
  events = events.concat(fresh).slice(-MAX_EVENTS);
  if (seen.size > 4 * MAX_EVENTS) seen = new Set(events.map((e) => `${e.boot}:${e.seq}`));
  return fresh;
}

function renderEvents(fresh) {
  const list = document.getElementById('events');
  list.prepend(...fresh.slice(-MAX_EVENTS).reverse().map(eventItem));
  while (list.childNodes.length > MAX_EVENTS) list.lastChild.remove();
}

// -- the live stream ------------------------------------------------------------------------

let freshEvents = [];

function schedule() {
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(() => {
    frameQueued = false;
    renderWatchers();
    if (freshEvents.length) { renderEvents(freshEvents); freshEvents = []; }
    const now = Date.now();
    for (const ev of pendingEvents) {
      if (typeof ev.time === 'number') window.circusLatency.push(now - ev.time * 1000);
    }
    if (window.circusLatency.length > 100000) window.circusLatency.splice(0, 50000);
    pendingEvents = [];
    window.circusCounters.renders += 1;
  });
}

function applySnapshot(snap) {
  window.circusCounters.snapshots += 1;
  for (const name of watchers.keys()) dirty.add(name);
  watchers.clear();
  history.clear();
  for (const view of snap.watchers) { watchers.set(view.name, view); dirty.add(view.name); }
  for (const [name, series] of Object.entries(snap.history)) history.set(name, series);
  events = []; seen = new Set();
  document.getElementById('events').replaceChildren();
  freshEvents = addEvents(snap.events);
  document.getElementById('tokenform').hidden = !snap.token_required;
  schedule();
}

function applyBatch(batch) {
  window.circusCounters.batches += 1;
  for (const view of batch.watchers || []) {
    if (view.gone) watchers.delete(view.name); else watchers.set(view.name, view);
    dirty.add(view.name);
  }
  for (const [name, point] of Object.entries(batch.history || {})) {
    const series = history.get(name) || [];
    series.push(point);
    while (series.length > 150) series.shift();
    history.set(name, series);
    dirty.add(name);
  }
  if (batch.events) {
    window.circusCounters.events += batch.events.length;
    const fresh = addEvents(batch.events);
    freshEvents = freshEvents.concat(fresh);
    pendingEvents = pendingEvents.concat(fresh);
  }
  if (batch.output && open) appendOutput(batch.output.filter((l) => l.watcher === open));
  schedule();
}

function connect() {
  const link = document.getElementById('link');
  const source = new EventSource('/api/stream');
  source.addEventListener('snapshot', (msg) => {
    link.textContent = 'live'; link.className = 'link up';
    applySnapshot(JSON.parse(msg.data));
  });
  source.onmessage = (msg) => applyBatch(JSON.parse(msg.data));
  source.onerror = () => { link.textContent = 'reconnecting…'; link.className = 'link down'; };
}

// -- commands -------------------------------------------------------------------------------

async function post(path, body) {
  const headers = {'Content-Type': 'application/json', 'X-Circus-Web': '1'};
  const token = document.getElementById('token').value;
  if (token) headers['X-Circus-Token'] = token;
  try {
    const response = await fetch(path, {method: 'POST', headers, body: JSON.stringify(body),
      credentials: 'same-origin', cache: 'no-store'});
    return await response.json();
  } catch (error) {
    return {status: 'error', reason: `the dashboard did not answer (${error.message})`};
  }
}

function notify(text, ok) {
  // ok: true (circusd said ok), false (refused or failed), null (sent, no answer yet)
  const kind = ok === null ? 'pending' : ok ? 'ok' : 'error';
  const notice = document.getElementById('notice');
  notice.replaceChildren(el('span', {class: kind}, text));
  notice.dataset.result = ok === null ? '' : kind;
  notice.className = `shown ${kind}`;
}

async function command(cmd, name, extra) {
  notify(`${cmd} ${name}…`, null);
  const reply = await post('/api/command', {command: cmd, name, ...extra});
  if (reply.status === 'ok') {
    const details = Object.entries(reply)
      .filter(([k]) => !['status', 'time', 'id'].includes(k))
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ');
    notify(`${cmd} ${name}: ok${details ? ` (${details})` : ''}`, true);
  } else {
    notify(`${cmd} ${name} failed: ${reply.reason || JSON.stringify(reply)}`, false);
  }
}

document.addEventListener('click', (click) => {
  const button = click.target.closest('button');
  if (!button) return;
  if (button.dataset.toggle) { toggle(button.dataset.toggle); return; }
  const cmd = button.dataset.cmd;
  if (!cmd) return;
  const row = button.closest('[data-watcher]') || button.closest('[data-detail]');
  const name = row.dataset.watcher || row.dataset.detail;
  const extra = {};
  if (cmd === 'signal') {
    extra.signum = detail.querySelector('.signum').value;
    if (button.dataset.pid) extra.pid = Number(button.dataset.pid);
  }
  command(cmd, name, extra);
});

document.getElementById('tokenform').addEventListener('submit', (e) => e.preventDefault());
setInterval(() => {
  for (const cell of document.querySelectorAll('.uptime')) {
    cell.textContent = fmtUptime(Number(cell.dataset.started));
  }
}, 1000);
connect();
