// Devices of one user (GET /users/{u}/resources), with kick one / kick all.

import {
  h, clear, errorBox, showError, statusBox, showStatus, busy, confirmDialog, fmtTime,
} from './dom.js';

const POLL_MS = 3000;

/** The platform of a device: the server's field if given, else guessed from the resource. */
export function platformOf(d) {
  if (d.platform) return String(d.platform);
  const res = String(d.res || d.resource || '');
  const m = /^(android|ios|web|webim_web|linux|osx|win|windows|harmony|custom\d+)(?:_|$)/i.exec(res);
  if (!m) return '—';
  return m[1].toLowerCase() === 'webim_web' ? 'web' : m[1].toLowerCase();
}

function sinceOf(d) {
  return d.login_time || d.login_ms || d.loginTime || d.since || d.created || null;
}

export async function renderDevices(ctx, name) {
  const { api, main } = ctx;
  const err = errorBox();
  const status = statusBox();
  const tbody = h('tbody');
  const count = h('span', { class: 'muted', id: 'device-count' });
  const refresh = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
  const kickAll = h('button', { type: 'button', class: 'danger' }, 'Kick all devices');
  let last = '';

  async function load(force) {
    let list;
    try {
      const r = await api.resources(name);
      list = Array.isArray(r && r.data) ? r.data : [];
      showError(err, null);
    } catch (e) {
      showError(err, e);
      return;
    }
    const sig = JSON.stringify(list);
    if (!force && sig === last) return;
    last = sig;
    clear(tbody);
    if (!list.length) {
      tbody.append(h('tr', {}, h('td', { colspan: '5', class: 'muted' }, 'No device online.')));
    }
    for (const d of list) {
      const res = String(d.res || d.resource || '');
      const kick = h('button', { type: 'button', class: 'danger small', 'aria-label': `Kick ${res}` }, 'Kick');
      kick.addEventListener('click', () => busy(kick, async () => {
        showError(err, null);
        try {
          const r = await api.disconnect(name, res);
          const ok = !(r && r.data && r.data.result === false);
          showStatus(status, ok ? `Kicked ${res}.` : `${res} was no longer online.`);
          await load(true);
        } catch (e) { showError(err, e); }
      }));
      tbody.append(h('tr', { 'data-resource': res },
        h('td', { 'data-label': 'Platform' }, platformOf(d)),
        h('td', { 'data-label': 'Resource' }, h('code', {}, res)),
        h('td', { 'data-label': 'Device name' }, d.device_name || '—'),
        h('td', { 'data-label': 'Since' }, fmtTime(sinceOf(d))),
        h('td', { 'data-label': 'Actions', class: 'row-actions' }, kick)));
    }
    count.textContent = `${list.length} device${list.length === 1 ? '' : 's'} online`;
    kickAll.disabled = list.length === 0;
  }

  refresh.addEventListener('click', () => busy(refresh, () => load(true)));
  kickAll.addEventListener('click', async () => {
    const ok = await confirmDialog(`Kick every device of ${name}?`,
      'All their devices are logged out now (the SDK reports code 217); they can log in again.', 'Kick all');
    if (!ok) return;
    showError(err, null);
    try {
      await api.disconnectAll(name);
      showStatus(status, `Kicked every device of ${name}.`);
      await load(true);
    } catch (e) { showError(err, e); }
  });

  main.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/users' }, '← Users')),
    h('h1', { tabindex: '-1' }, 'Devices of ', h('code', {}, name)),
    h('section', { class: 'card', 'aria-labelledby': 'dev-h' },
      h('div', { class: 'card-head' }, h('h2', { id: 'dev-h' }, 'Online devices'), count,
        h('div', { class: 'actions' }, refresh, kickAll)),
      err, status,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'responsive', id: 'devices-table' },
          h('thead', {}, h('tr', {}, ['Platform', 'Resource', 'Device name', 'Since', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
          tbody)),
      h('p', { class: 'muted' }, `Updates every ${POLL_MS / 1000} seconds.`)));
  await load(true);
  const timer = setInterval(() => { load(false).catch(() => {}); }, POLL_MS);
  ctx.setCleanup(() => clearInterval(timer));
}
