// Users: paged list (Easemob cursor), exact-ID search, create one or many, reset password,
// deactivate / activate, delete, and issue a user token (grant_type=inherit).
//
// Search: the Easemob list endpoint has no filter, so "search" looks a user up by exact ID
// with GET /users/{username} (IDs are case-insensitive; the server folds them).

import {
  h, clear, field, errorBox, showError, statusBox, showStatus, busy, confirmDialog, modal,
  copyButton, fmtTime, fmtDuration,
} from './dom.js';
import { ApiError } from './api.js';

const BATCH_MAX = 60; // Easemob's batch registration limit per request

// Kept across visits during this page's life: page size and where the list was.
const listState = { limit: 10, cursors: [null], index: 0, query: '' };

/** Parses "username,password" lines; returns { users, problems }. */
export function parseUserLines(text) {
  const users = [];
  const problems = [];
  String(text).split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const comma = line.indexOf(',');
    const username = comma < 0 ? line : line.slice(0, comma).trim();
    const password = comma < 0 ? '' : line.slice(comma + 1).trim();
    if (!username || !password) {
      problems.push(`line ${i + 1}: expected "username,password"`);
      return;
    }
    users.push({ username, password });
  });
  return { users, problems };
}

export function chunk(list, size) {
  const out = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

export async function renderUsers(ctx) {
  const { api, main } = ctx;
  const listErr = errorBox();
  const listStatus = statusBox();
  const tbody = h('tbody');
  const pageInfo = h('span', { class: 'muted', id: 'page-info' });
  const prev = h('button', { type: 'button', class: 'secondary' }, '← Previous');
  const next = h('button', { type: 'button', class: 'secondary' }, 'Next →');
  const sizeSel = h('select', { id: 'page-size' },
    [10, 20, 50, 100].map((n) => h('option', { value: String(n), selected: n === listState.limit }, String(n))));

  // ---- list ---------------------------------------------------------------------------------
  async function load() {
    showError(listErr, null);
    let entities = [];
    let cursor = null;
    try {
      if (listState.query) {
        try {
          const r = await api.getUser(listState.query);
          entities = (r && r.entities) || [];
        } catch (e) {
          if (e.status !== 404) throw e;
          entities = [];
        }
      } else {
        const r = await api.listUsers(listState.limit, listState.cursors[listState.index]);
        entities = (r && r.entities) || [];
        cursor = (r && r.cursor) || null;
      }
    } catch (e) {
      showError(listErr, e);
      return;
    }
    listState.cursors.length = listState.index + 1;
    if (cursor) listState.cursors.push(cursor);
    let online = {};
    if (entities.length) {
      try {
        const st = await api.batchStatus(entities.map((u) => u.username));
        for (const o of (st && st.data) || []) Object.assign(online, o);
      } catch (e) {
        if (e.status === 401) throw e;
        online = {};
      }
    }
    clear(tbody);
    if (!entities.length) {
      tbody.append(h('tr', {}, h('td', { colspan: '5', class: 'muted' },
        listState.query ? `No user with the ID "${listState.query}".` : 'No users yet.')));
    }
    for (const u of entities) tbody.append(userRow(u, online[u.username]));
    prev.disabled = listState.query !== '' || listState.index === 0;
    next.disabled = listState.query !== '' || !cursor;
    pageInfo.textContent = listState.query
      ? `Search result for "${listState.query}"`
      : `Page ${listState.index + 1} · ${entities.length} user${entities.length === 1 ? '' : 's'}`;
  }

  function userRow(u, presence) {
    const name = u.username;
    const active = u.activated !== false;
    const rowErr = errorBox();
    const toggle = h('button', { type: 'button', class: 'secondary small', 'aria-label': `${active ? 'Deactivate' : 'Activate'} ${name}` },
      active ? 'Deactivate' : 'Activate');
    toggle.addEventListener('click', () => busy(toggle, async () => {
      showError(rowErr, null);
      try {
        if (active) await api.deactivate(name);
        else await api.activate(name);
        showStatus(listStatus, `${active ? 'Deactivated' : 'Activated'} ${name}.`);
        await load();
      } catch (e) { showError(rowErr, e); }
    }));
    const del = h('button', { type: 'button', class: 'danger small', 'aria-label': `Delete ${name}` }, 'Delete');
    del.addEventListener('click', async () => {
      const ok = await confirmDialog(`Delete ${name}?`,
        `This deletes the user "${name}" with their messages, contacts and conversations, and logs out their devices. It cannot be undone.`,
        'Delete user');
      if (!ok) return;
      showError(rowErr, null);
      try {
        await api.deleteUser(name);
        showStatus(listStatus, `Deleted ${name}.`);
        if (listState.query) listState.query = '';
        await load();
      } catch (e) { showError(rowErr, e); }
    });
    const token = h('button', { type: 'button', class: 'small', 'aria-label': `Issue token for ${name}`, onClick: () => tokenDialog(api, name) }, 'Token');
    const pwd = h('button', { type: 'button', class: 'secondary small', 'aria-label': `Reset password of ${name}`, onClick: () => passwordDialog(api, name, listStatus) }, 'Password');
    const devices = h('a', { class: 'button secondary small', href: `#/users/${encodeURIComponent(name)}/devices`, 'aria-label': `Devices of ${name}` }, 'Devices');
    return h('tr', { 'data-user': name },
      h('td', { 'data-label': 'User ID' }, h('code', {}, name), u.nickname ? h('div', { class: 'muted' }, u.nickname) : null),
      h('td', { 'data-label': 'Account' }, h('span', { class: ['badge', active ? 'ok' : 'off'] }, active ? 'active' : 'deactivated')),
      h('td', { 'data-label': 'Online' }, presence ? h('span', { class: ['badge', presence === 'online' ? 'ok' : 'idle'] }, presence) : '—'),
      h('td', { 'data-label': 'Created' }, fmtTime(u.created)),
      h('td', { 'data-label': 'Actions', class: 'row-actions' }, devices, token, pwd, toggle, del, rowErr));
  }

  prev.addEventListener('click', () => busy(prev, async () => {
    if (listState.index > 0) listState.index -= 1;
    await load();
  }));
  next.addEventListener('click', () => busy(next, async () => {
    if (listState.cursors[listState.index + 1]) listState.index += 1;
    await load();
  }));
  sizeSel.addEventListener('change', () => {
    listState.limit = Number(sizeSel.value);
    listState.cursors = [null];
    listState.index = 0;
    load();
  });

  // ---- search -------------------------------------------------------------------------------
  const q = field('Find by user ID', { type: 'search', name: 'q', value: listState.query, autocomplete: 'off', spellcheck: 'false' }, 'Exact user ID (case-insensitive).');
  const searchBtn = h('button', { type: 'submit' }, 'Search');
  const showAll = h('button', { type: 'button', class: 'secondary' }, 'Show all');
  const searchForm = h('form', { class: 'inline', role: 'search' }, q.wrap, h('div', { class: 'actions' }, searchBtn, showAll));
  searchForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    listState.query = q.input.value.trim();
    busy(searchBtn, load);
  });
  showAll.addEventListener('click', () => {
    q.input.value = '';
    listState.query = '';
    listState.cursors = [null];
    listState.index = 0;
    busy(showAll, load);
  });

  // ---- create one ---------------------------------------------------------------------------
  const createErr = errorBox();
  const createStatus = statusBox();
  const nu = field('User ID', { name: 'username', required: true, autocomplete: 'off', spellcheck: 'false', maxlength: '64', pattern: '[A-Za-z0-9_.\\-]+' },
    'Letters a–z, digits, _ - . (up to 64; stored lowercase).');
  const np = field('Password', { name: 'password', type: 'password', required: true, autocomplete: 'new-password', maxlength: '64' });
  const createBtn = h('button', { type: 'submit' }, 'Create user');
  const createForm = h('form', { class: 'card', 'aria-labelledby': 'create-one' },
    h('h2', { id: 'create-one' }, 'Create a user'), createErr, h('div', { class: 'row' }, nu.wrap, np.wrap),
    h('div', { class: 'actions' }, createBtn), createStatus);
  createForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(createErr, null);
    showStatus(createStatus, '');
    busy(createBtn, async () => {
      try {
        const r = await api.createUsers({ username: nu.input.value.trim(), password: np.input.value });
        const made = (r && r.entities && r.entities[0] && r.entities[0].username) || nu.input.value.trim();
        showStatus(createStatus, `Created user ${made}.`);
        nu.input.value = '';
        np.input.value = '';
        await load();
      } catch (e) { showError(createErr, e); }
    });
  });

  // ---- create many --------------------------------------------------------------------------
  const bulkErr = errorBox();
  const bulkStatus = statusBox();
  const bulkResult = h('div', { class: 'bulk-result' });
  const bl = field('Users, one per line', { tag: 'textarea', name: 'bulk', rows: '5', spellcheck: 'false', placeholder: 'alice,secret1\nbob,secret2' },
    `Format: username,password. Sent in batches of up to ${BATCH_MAX} users.`);
  const bulkBtn = h('button', { type: 'submit' }, 'Create all');
  const bulkForm = h('form', { class: 'card', 'aria-labelledby': 'create-many' },
    h('h2', { id: 'create-many' }, 'Create many users'), bulkErr, bl.wrap,
    h('div', { class: 'actions' }, bulkBtn), bulkStatus, bulkResult);
  bulkForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(bulkErr, null);
    clear(bulkResult);
    const { users, problems } = parseUserLines(bl.input.value);
    if (problems.length || !users.length) {
      showError(bulkErr, new ApiError(0, null, problems.length ? `Fix these lines first: ${problems.join('; ')}` : 'Paste at least one "username,password" line.'));
      return;
    }
    busy(bulkBtn, async () => {
      const batches = chunk(users, BATCH_MAX);
      let created = 0;
      const failures = [];
      for (let i = 0; i < batches.length; i += 1) {
        showStatus(bulkStatus, `Sending batch ${i + 1} of ${batches.length}…`);
        try {
          const r = await api.createUsers(batches[i]);
          created += ((r && r.entities) || []).length;
          for (const f of (r && Array.isArray(r.data) ? r.data : [])) {
            failures.push(`${f.username}: ${f.registerUserFailReason || 'failed'}`);
          }
        } catch (e) {
          if (e.status === 401) throw e;
          failures.push(`batch ${i + 1} (${batches[i][0].username} … ${batches[i][batches[i].length - 1].username}): ${e.description}`);
        }
      }
      showStatus(bulkStatus, `Created ${created} of ${users.length} user${users.length === 1 ? '' : 's'}.`);
      if (failures.length) {
        bulkResult.append(h('p', {}, `${failures.length} not created:`), h('ul', {}, failures.map((f) => h('li', {}, f))));
      } else {
        bl.input.value = '';
      }
      await load();
    });
  });

  main.append(
    h('h1', { tabindex: '-1' }, 'Users'),
    h('section', { class: 'card', 'aria-labelledby': 'user-list' },
      h('div', { class: 'card-head' }, h('h2', { id: 'user-list' }, 'Registered users'), searchForm),
      listErr, listStatus,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'responsive', id: 'users-table' },
          h('thead', {}, h('tr', {}, ['User ID', 'Account', 'Online', 'Created', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
          tbody)),
      h('div', { class: 'pager' }, prev, pageInfo, next,
        h('label', { for: 'page-size', class: 'inline-label' }, 'Per page'), sizeSel)),
    h('div', { class: 'grid2' }, createForm, bulkForm));
  await load();
}

const TTL_CHOICES = [
  ['', 'App default'],
  ['3600', '1 hour'],
  ['86400', '1 day'],
  ['604800', '7 days'],
  ['2592000', '30 days'],
  ['0', 'Never expires'],
  ['custom', 'Custom (seconds)…'],
];

function tokenDialog(api, name) {
  return modal(`Issue a token for ${name}`, (body, close) => {
    const err = errorBox();
    const sel = field('Lifetime', { tag: 'select', name: 'ttl' });
    for (const [v, t] of TTL_CHOICES) sel.input.append(h('option', { value: v }, t));
    sel.input.value = '86400';
    const custom = field('Seconds', { type: 'number', name: 'ttl_custom', min: '0', step: '1', inputmode: 'numeric' });
    custom.wrap.hidden = true;
    sel.input.addEventListener('change', () => { custom.wrap.hidden = sel.input.value !== 'custom'; });
    const out = h('div', { class: 'token-out', hidden: true });
    const issue = h('button', { type: 'submit' }, 'Issue token');
    const done = h('button', { type: 'button', class: 'secondary', onClick: () => close() }, 'Close');
    const form = h('form', {}, err, sel.wrap, custom.wrap, h('div', { class: 'actions' }, done, issue), out);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      showError(err, null);
      let ttl;
      if (sel.input.value === 'custom') {
        const n = Number(custom.input.value);
        if (custom.input.value === '' || !Number.isInteger(n) || n < 0) {
          showError(err, new ApiError(0, null, 'Enter the lifetime as whole seconds (0 = never expires).'));
          return;
        }
        ttl = n;
      } else if (sel.input.value !== '') {
        ttl = Number(sel.input.value);
      }
      busy(issue, async () => {
        try {
          const r = await api.userToken(name, ttl);
          clear(out);
          const ta = h('textarea', { readonly: true, rows: '4', id: 'issued-token', class: 'mono', 'aria-label': `Token for ${name}` });
          ta.value = r.access_token;
          const expires = Number(r.expires_in);
          out.append(ta,
            h('p', { class: 'muted' }, expires > 0 ? `Expires in ${fmtDuration(expires)} (at ${new Date(Date.now() + expires * 1000).toLocaleString()}).` : 'This token never expires.'),
            h('div', { class: 'actions' }, copyButton(() => r.access_token, 'Copy token')));
          out.hidden = false;
          ta.focus();
          ta.select();
        } catch (e) { showError(err, e); }
      });
    });
    body.append(h('p', { class: 'muted' }, 'A login credential for this user (grant_type=inherit). Hand it to a client; it is not shown again.'), form);
    setTimeout(() => sel.input.focus(), 0);
  });
}

function passwordDialog(api, name, listStatus) {
  return modal(`Reset the password of ${name}`, (body, close) => {
    const err = errorBox();
    const p1 = field('New password', { type: 'password', name: 'newpassword', autocomplete: 'new-password', maxlength: '64', required: true });
    const p2 = field('Repeat it', { type: 'password', name: 'newpassword2', autocomplete: 'new-password', maxlength: '64', required: true });
    const save = h('button', { type: 'submit' }, 'Set password');
    const cancel = h('button', { type: 'button', class: 'secondary', onClick: () => close(false) }, 'Cancel');
    const form = h('form', {}, err, p1.wrap, p2.wrap, h('div', { class: 'actions' }, cancel, save));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      showError(err, null);
      if (!p1.input.value) {
        showError(err, new ApiError(0, null, 'Enter the new password.'));
        return;
      }
      if (p1.input.value !== p2.input.value) {
        showError(err, new ApiError(0, null, 'The two passwords differ.'));
        return;
      }
      busy(save, async () => {
        try {
          await api.setPassword(name, p1.input.value);
          showStatus(listStatus, `Password of ${name} changed; their tokens are revoked and online devices logged out.`);
          close(true);
        } catch (e) { showError(err, e); }
      });
    });
    body.append(h('p', { class: 'muted' }, 'Their existing tokens stop working and online devices are logged out.'), form);
    setTimeout(() => p1.input.focus(), 0);
  });
}
