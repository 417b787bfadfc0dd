// App overview: AppKey, client ID and secret, REST and WebSocket URLs, Web SDK snippet.

import { h, append, copyButton } from './dom.js';

function pick(obj, ...keys) {
  for (const k of keys) {
    if (obj && obj[k] !== undefined && obj[k] !== null && obj[k] !== '') return obj[k];
  }
  return undefined;
}

function wsFrom(rest) {
  return `${rest.replace(/^http/, 'ws')}/ws`;
}

export function sdkSnippet({ appKey, restUrl, wsUrl }) {
  return [
    "import WebIM from 'easemob-websdk';",
    '',
    'const conn = new WebIM.connection({',
    `  appKey: '${appKey}',`,
    '  isHttpDNS: false,',
    `  url: '${wsUrl}',`,
    `  apiUrl: '${restUrl}',`,
    '});',
    '',
    "await conn.open({ user: 'alice', accessToken: '<user token>' });",
  ].join('\n');
}

export async function renderOverview(ctx) {
  const { api, main } = ctx;
  let info = {};
  let note = null;
  try {
    info = (await api.overview()) || {};
    if (info.data && typeof info.data === 'object' && !Array.isArray(info.data)) info = { ...info, ...info.data };
  } catch (e) {
    if (e.status === 401) throw e;
    note = `The app overview could not be loaded (${e.description}); the values below are what this page knows.`;
  }
  const restUrl = String(pick(info, 'rest_url', 'restUrl', 'api_url', 'apiUrl') || location.origin).replace(/\/$/, '');
  const wsUrl = String(pick(info, 'ws_url', 'wsUrl', 'websocket_url') || wsFrom(restUrl));
  const appKey = String(pick(info, 'appKey', 'app_key', 'appkey') || api.appKey);
  const clientId = String(pick(info, 'client_id', 'clientId') || '');
  const secret = pick(info, 'client_secret', 'clientSecret') || ctx.secret();

  const secretValue = h('code', { class: 'secret', id: 'client-secret' }, '••••••••••••');
  const reveal = h('button', { type: 'button', class: 'secondary small', 'aria-controls': 'client-secret', 'aria-pressed': 'false' }, 'Reveal');
  let shown = false;
  reveal.addEventListener('click', () => {
    shown = !shown;
    secretValue.textContent = shown ? secret : '••••••••••••';
    reveal.textContent = shown ? 'Hide' : 'Reveal';
    reveal.setAttribute('aria-pressed', String(shown));
  });
  const secretCell = secret
    ? [secretValue, ' ', reveal, ' ', copyButton(() => secret)]
    : h('span', { class: 'muted' }, 'Not available in this tab — sign in again to reveal it (or run `ferrim app list --show-secrets`).');

  const row = (label, value, copy) => h('div', { class: 'kv' },
    h('dt', {}, label),
    h('dd', {}, value, copy ? [' ', copyButton(() => copy)] : null));

  const snippet = sdkSnippet({ appKey, restUrl, wsUrl });
  append(main, [
    h('h1', { tabindex: '-1' }, 'App overview'),
    note ? h('p', { class: 'notice' }, note) : null,
    h('section', { class: 'card', 'aria-labelledby': 'ov-dev' },
      h('h2', { id: 'ov-dev' }, 'Development settings'),
      h('dl', { class: 'kvs' },
        row('AppKey', h('code', { id: 'ov-appkey' }, appKey), appKey),
        row('Org name', h('code', {}, api.org)),
        row('App name', h('code', {}, api.app)),
        row('Client ID', clientId ? h('code', { id: 'ov-client-id' }, clientId) : h('span', { class: 'muted' }, '—'), clientId || undefined),
        row('Client secret', secretCell),
        row('REST API', h('code', { id: 'ov-rest' }, restUrl), restUrl),
        row('WebSocket', h('code', { id: 'ov-ws' }, wsUrl), wsUrl))),
    h('section', { class: 'card', 'aria-labelledby': 'ov-sdk' },
      h('h2', { id: 'ov-sdk' }, 'Web SDK connection'),
      h('p', { class: 'muted' }, 'Paste into a Web app using easemob-websdk; issue the user token on the Users page.'),
      h('pre', { class: 'code' }, h('code', { id: 'ov-snippet' }, snippet)),
      h('div', { class: 'actions' }, copyButton(() => snippet, 'Copy snippet')))]);
}
