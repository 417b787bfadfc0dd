// Entry point: session handling, sign-in, and hash routing between the views.

import {
  ApiError, createApi, loadSession, clearSession, signIn, rememberedAppKey,
} from './api.js';
import { h, clear, field, errorBox, showError, busy } from './dom.js';
import { renderOverview } from './overview.js';
import { renderUsers } from './users.js';
import { renderDevices } from './devices.js';
import { renderSettings } from './settings.js';
import { renderLive } from './live.js';

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');

const state = {
  api: null,
  // The secret typed at sign-in, kept in memory only (never stored) so the overview can
  // reveal it during this page's life.
  secret: null,
  cleanup: null,
};

function endSession(message) {
  state.api = null;
  state.secret = null;
  stopView();
  showSignIn(message);
}

function stopView() {
  if (typeof state.cleanup === 'function') {
    try { state.cleanup(); } catch (_) { /* ignore */ }
  }
  state.cleanup = null;
}

function showSignIn(message) {
  stopView();
  topbar.hidden = true;
  clear(main);
  if (location.hash && location.hash !== '#/signin') history.replaceState(null, '', '#/signin');
  const err = errorBox();
  const appKey = field('AppKey', {
    name: 'appkey', autocomplete: 'off', required: true, value: rememberedAppKey(), placeholder: 'org#app', spellcheck: 'false',
  }, 'Org name and app name, as printed when ferrim created the app.');
  const id = field('Client ID', { name: 'client_id', autocomplete: 'username', required: true, spellcheck: 'false' });
  const secret = field('Client secret', { name: 'client_secret', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card narrow', novalidate: true },
    h('h1', { tabindex: '-1' }, 'Sign in'),
    h('p', { class: 'muted' }, 'Use the app\'s client ID and secret. They are exchanged for an app token that this tab keeps until you sign out or close it.'),
    message ? h('p', { class: 'notice', role: 'alert' }, message) : null,
    err, appKey.wrap, id.wrap, secret.wrap,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(err, null);
    const missing = [appKey, id, secret].find((f) => !f.input.value.trim());
    if (missing) {
      showError(err, new ApiError(0, null, `${missing.wrap.querySelector('label').textContent} is required.`));
      missing.input.focus();
      return;
    }
    await busy(submit, async () => {
      try {
        const session = await signIn(appKey.input.value, id.input.value.trim(), secret.input.value);
        state.secret = secret.input.value;
        secret.input.value = '';
        startSession(session);
        location.hash = '#/overview';
      } catch (e) {
        showError(err, e);
        secret.input.focus();
        secret.input.select();
      }
    });
  });
  main.append(form);
  (appKey.input.value ? id.input : appKey.input).focus();
}

function startSession(session) {
  state.api = createApi(session, endSession);
  document.getElementById('topbar-appkey').textContent = session.appKey;
  topbar.hidden = false;
}

const ROUTES = [
  [/^#\/overview$/, 'overview', (ctx) => renderOverview(ctx)],
  [/^#\/users$/, 'users', (ctx) => renderUsers(ctx)],
  [/^#\/users\/([^/]+)\/devices$/, 'users', (ctx, m) => renderDevices(ctx, decodeURIComponent(m[1]))],
  [/^#\/settings$/, 'settings', (ctx) => renderSettings(ctx)],
  [/^#\/live$/, 'live', (ctx) => renderLive(ctx)],
];

let firstRoute = true;

async function route() {
  if (!state.api) {
    const session = loadSession();
    if (session && session.expired) {
      showSignIn('Your session has expired. Sign in again.');
      return;
    }
    if (!session) {
      showSignIn();
      return;
    }
    startSession(session);
  }
  let hash = location.hash || '#/overview';
  if (hash === '#/signin') hash = '#/overview';
  let found = ROUTES.find(([re]) => re.test(hash));
  if (!found) {
    hash = '#/overview';
    history.replaceState(null, '', hash);
    found = ROUTES[0];
  }
  const [re, nav, render] = found;
  for (const a of topbar.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  stopView();
  clear(main);
  const ctx = {
    api: state.api,
    secret: () => state.secret,
    main,
    setCleanup: (fn) => { state.cleanup = fn; },
  };
  try {
    await render(ctx, re.exec(hash));
  } catch (e) {
    if (!state.api) return; // session ended: sign-in is showing
    const box = errorBox();
    showError(box, e);
    main.append(box);
  }
  // After in-app navigation, move focus to the new page's heading (screen readers announce
  // it); on the first load leave focus at the top so Tab reaches the skip link first.
  const heading = main.querySelector('h1');
  if (!firstRoute && heading && !main.contains(document.activeElement)) heading.focus({ preventScroll: true });
  firstRoute = false;
}

document.getElementById('signout').addEventListener('click', () => {
  clearSession();
  state.api = null;
  state.secret = null;
  showSignIn('You are signed out.');
});

window.addEventListener('hashchange', () => {
  if (location.hash === '#/signin' && !state.api) return;
  route();
});
route();
