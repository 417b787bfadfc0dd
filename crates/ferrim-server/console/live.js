// Live overview: online users, connections, logins and messages per minute, polled from
// GET /{org}/{app}/stats every few seconds and drawn as a small chart.

import { h, clear, errorBox, showError } from './dom.js';
import { lineChart } from './chart.js';

const POLL_MS = 3000;
const WINDOW_MS = 5 * 60 * 1000;

// Samples survive navigating away and back during this page's life.
const samples = [];

function num(v) {
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

export async function renderLive(ctx) {
  const { api, main } = ctx;
  const err = errorBox();
  const tiles = {};
  const tile = (key, label) => {
    tiles[key] = h('span', { class: 'tile-value', id: `live-${key}` }, '—');
    return h('div', { class: 'tile' }, h('span', { class: 'tile-label' }, label), tiles[key]);
  };
  const chartBox = h('div', { class: 'chart-box' });
  const updated = h('p', { class: 'muted', 'aria-live': 'off' });

  function draw() {
    clear(chartBox);
    const times = samples.map((x) => x.t);
    const latest = samples[samples.length - 1];
    // The x axis grows with the history, from one minute up to five.
    const span = times.length ? times[times.length - 1] - times[0] : 0;
    chartBox.append(lineChart({
      times,
      windowMs: Math.min(WINDOW_MS, Math.max(60000, span)),
      label: latest
        ? `Recent minutes. Now: ${latest.logins} logins per minute, ${latest.messages} messages per minute, ${latest.connections} connections.`
        : 'No data yet.',
      series: [
        { name: 'Logins/min', cls: 's1', values: samples.map((x) => x.logins) },
        { name: 'Messages/min', cls: 's2', values: samples.map((x) => x.messages) },
        { name: 'Connections', cls: 's3', values: samples.map((x) => x.connections) },
      ],
    }));
  }

  async function poll() {
    let r;
    try {
      r = await api.stats();
      showError(err, null);
    } catch (e) {
      showError(err, e);
      return;
    }
    const d = (r && r.data && typeof r.data === 'object') ? r.data : (r || {});
    const sample = {
      t: Date.now(),
      users: num(d.online_users),
      connections: num(d.connections),
      logins: num(d.logins_per_min),
      messages: num(d.messages_per_min),
    };
    samples.push(sample);
    while (samples.length && sample.t - samples[0].t > WINDOW_MS) samples.shift();
    tiles.users.textContent = String(sample.users);
    tiles.connections.textContent = String(sample.connections);
    tiles.logins.textContent = String(Math.round(sample.logins * 10) / 10);
    tiles.messages.textContent = String(Math.round(sample.messages * 10) / 10);
    updated.textContent = `Updated ${new Date(sample.t).toLocaleTimeString()} · every ${POLL_MS / 1000} s`;
    draw();
  }

  main.append(
    h('h1', { tabindex: '-1' }, 'Live'),
    err,
    h('div', { class: 'tiles' },
      tile('users', 'Online users'), tile('connections', 'Connections'),
      tile('logins', 'Logins / min'), tile('messages', 'Messages / min')),
    h('section', { class: 'card', 'aria-labelledby': 'live-chart' },
      h('h2', { id: 'live-chart' }, 'Recent activity (up to 5 minutes)'),
      h('ul', { class: 'legend' },
        h('li', { class: 's1' }, 'Logins / min'), h('li', { class: 's2' }, 'Messages / min'), h('li', { class: 's3' }, 'Connections')),
      chartBox, updated));
  draw();
  await poll();
  const timer = setInterval(() => { poll().catch(() => {}); }, POLL_MS);
  ctx.setCleanup(() => clearInterval(timer));
}
