'use strict';
// The admin console in headless Chromium against a real ferrim, plus the official Web SDK in
// Node for the device part. Screenshots of the main pages go to docs/console/.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { startServer, sleep } = require('../lib/server');
const { launch } = require('../lib/browser');
const sdk = require('../lib/sdk');

const SHOTS = path.resolve(__dirname, '..', '..', '..', 'docs', 'console');
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

let srv;
let browser;
let page;
const pageErrors = [];
let client; // SDK connection

async function shot(name, fullPage = true) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0)); // the sticky header belongs at the top
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
}

/** Plain HTTP (not the browser) against the server. */
async function http(method, urlPath, { body, token } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${srv.base}${urlPath}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: res.status, body: json, text, headers: res.headers };
}

async function nav(label, heading) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label }).click();
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

async function signIn(secret) {
  await page.getByLabel('AppKey').fill(srv.appKey);
  await page.getByLabel('Client ID').fill(srv.clientId);
  await page.getByLabel('Client secret').fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

before(async () => {
  srv = await startServer();
  browser = await launch();
  const context = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // Failed API answers (401, 404) are logged by Chromium as resource errors: expected.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
  });
});

after(async () => {
  if (client) client.close();
  sdk.shutdown();
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

test('the console is served by ferrim with security headers', async () => {
  for (const p of ['/console', '/console/']) {
    const r = await http('GET', p);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.match(r.headers.get('content-security-policy'), /script-src 'self'/);
    assert.match(r.text, /<script type="module" src="\/console\/app.js">/);
  }
  const js = await http('GET', '/console/app.js');
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /javascript/);
});

test('a wrong secret is refused with the API error shown in place', async () => {
  await page.goto(`${srv.base}/console`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('AppKey').fill(srv.appKey);
  await page.getByLabel('Client ID').fill(srv.clientId);
  await shot('signin', false);
  await signIn('not-the-secret');
  const alert = page.locator('form [role=alert]').first();
  await alert.waitFor();
  assert.match(await alert.innerText(), /client_secret does not match/);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'no session stored');
});

test('sign in shows the app overview; token only in sessionStorage, secret never stored', async () => {
  await signIn(srv.clientSecret);
  await page.getByRole('heading', { level: 1, name: 'App overview' }).waitFor();
  assert.doesNotMatch(await page.locator('main').innerText(), /\b(null|undefined)\b/);
  assert.equal(await page.locator('#ov-appkey').innerText(), srv.appKey);
  assert.equal(await page.locator('#ov-ws').innerText(), srv.wsUrl);
  assert.equal(await page.locator('#ov-client-id').innerText(), srv.clientId);
  const snippet = await page.locator('#ov-snippet').innerText();
  assert.match(snippet, /isHttpDNS: false/);
  assert.ok(snippet.includes(`url: '${srv.wsUrl}'`) && snippet.includes(`apiUrl: '${srv.base}'`) && snippet.includes(`appKey: '${srv.appKey}'`));
  // The secret is hidden until revealed.
  assert.doesNotMatch(await page.locator('#client-secret').innerText(), new RegExp(srv.clientSecret));
  await shot('overview');
  await page.getByRole('button', { name: 'Reveal' }).click();
  assert.equal(await page.locator('#client-secret').innerText(), srv.clientSecret);
  await page.getByRole('button', { name: 'Hide' }).click();
  const storage = await page.evaluate(() => ({
    session: JSON.stringify(Object.fromEntries(Object.entries(sessionStorage))),
    local: JSON.stringify(Object.fromEntries(Object.entries(localStorage))),
  }));
  assert.equal(typeof JSON.parse(JSON.parse(storage.session)['ferrim.console.session']).token, 'string');
  assert.ok(!storage.session.includes(srv.clientSecret) && !storage.local.includes(srv.clientSecret), 'secret not stored');
  assert.ok(!storage.local.includes('token'), 'token not in localStorage');
});

test('create a user, and many from a pasted list', async () => {
  await nav('Users', 'Users');
  await page.getByLabel('User ID', { exact: true }).fill('conalice');
  await page.getByLabel('Password', { exact: true }).fill('secret-1');
  await page.getByRole('button', { name: 'Create user' }).click();
  await page.getByText('Created user conalice.').waitFor();
  await page.locator('#users-table tr[data-user="conalice"]').waitFor();
  const lines = ['bob,pw-bob', 'carol,pw-carol', 'dave,pw-dave', 'conalice,dup'].join('\n');
  await page.getByLabel('Users, one per line').fill(lines);
  await page.getByRole('button', { name: 'Create all' }).click();
  await page.getByText('Created 3 of 4 users.').waitFor();
  assert.match(await page.locator('.bulk-result').innerText(), /conalice/);
  const r = await http('GET', `${srv.appPath}/users/carol`, { token: await appToken() });
  assert.equal(r.status, 200);
  // Exact-ID search.
  await page.getByLabel('Find by user ID').fill('Carol');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('Search result for "carol"', { exact: false }).or(page.getByText('Search result for "Carol"')).waitFor();
  assert.equal(await page.locator('#users-table tbody tr[data-user]').count(), 1);
  await page.getByRole('button', { name: 'Show all' }).click();
  await page.locator('#users-table tr[data-user="dave"]').waitFor();
  await shot('users');
});

let cachedAppToken;
async function appToken() {
  if (!cachedAppToken) {
    const r = await http('POST', `${srv.appPath}/token`, {
      body: { grant_type: 'client_credentials', client_id: srv.clientId, client_secret: srv.clientSecret },
    });
    cachedAppToken = r.body.access_token;
  }
  return cachedAppToken;
}

test('registration mode: open accepts registration without a token, authorized refuses it', async () => {
  await nav('Settings', 'Settings');
  await page.getByLabel('Open', { exact: false }).first().check();
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText(/^Saved at/).waitFor();
  const open = await http('POST', `${srv.appPath}/users`, { body: { username: 'walkin1', password: 'pw-1234' } });
  assert.equal(open.status, 200, `open registration accepted: ${open.text}`);
  await shot('settings');

  await page.getByLabel('Authorized', { exact: false }).first().check();
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText(/^Saved at/).waitFor();
  const refused = await http('POST', `${srv.appPath}/users`, { body: { username: 'walkin2', password: 'pw-1234' } });
  assert.equal(refused.status, 401, `registration refused: ${refused.text}`);
  // Reload: the page shows what the server has.
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
  assert.equal(await page.locator('input[name=registration_mode][value=authorized]').isChecked(), true);
  // Out-of-range values show the API's error in place.
  await page.getByLabel('Devices per platform').fill('100000');
  await page.getByRole('button', { name: 'Save settings' }).click();
  const err = page.locator('form [role=alert]').first();
  await err.waitFor();
  assert.match(await err.innerText(), /HTTP 400/);

  // Per-platform exceptions to the cap.
  await page.getByLabel('Devices per platform').fill('4');
  await page.getByLabel('Exceptions per platform').fill('web=2, custom5=0');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText(/^Saved at/).waitFor();
  const saved = await http('GET', `${srv.appPath}/settings`, { token: await appToken() });
  assert.deepEqual(saved.body.data.device_caps, { custom5: 0, web: 2 });
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
  assert.equal(await page.getByLabel('Exceptions per platform').inputValue(), 'custom5=0, web=2');
  await page.getByLabel('Exceptions per platform').fill('tv=3');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.locator('form [role=alert]').first().waitFor();
  assert.match(await page.locator('form [role=alert]').first().innerText(), /unknown platform tv/);
  await page.getByLabel('Exceptions per platform').fill('');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText(/^Saved at/).waitFor();
});

test('issue a token, log in with the Web SDK, see the device, kick it (SDK reports 217)', { timeout: 60000 }, async () => {
  await nav('Users', 'Users');
  await page.getByRole('button', { name: 'Issue token for conalice' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Lifetime').selectOption({ label: '1 hour' });
  await dialog.getByRole('button', { name: 'Issue token' }).click();
  const ta = dialog.locator('#issued-token');
  await ta.waitFor();
  const token = await ta.inputValue();
  assert.ok(token.length > 20, 'a token is shown');
  assert.match(await dialog.innerText(), /Expires in 1 hour/);
  await dialog.getByRole('button', { name: 'Close' }).click();

  client = sdk.connect({ appKey: srv.appKey, url: srv.wsUrl, apiUrl: srv.base, deviceId: `console${process.pid}` });
  await client.conn.open({ user: 'conalice', accessToken: token });
  await client.waitFor('onConnected');

  await page.getByRole('link', { name: 'Devices of conalice' }).click();
  await page.getByRole('heading', { level: 1, name: /Devices of/ }).waitFor();
  const row = page.locator('#devices-table tbody tr[data-resource]');
  await row.first().waitFor({ timeout: 10000 });
  const res = await row.first().getAttribute('data-resource');
  if (client.resource()) assert.equal(res, client.resource());
  assert.equal(await row.first().locator('td').first().innerText(), 'web');
  await shot('devices');

  await page.getByRole('button', { name: `Kick ${res}` }).click();
  await page.getByText(`Kicked ${res}.`).waitFor();
  const ev = await client.waitFor('onDisconnected', (e) => e && Number(e.type) === 217, 10000)
    .catch(() => client.waitFor('onError', (e) => e && Number(e.type) === 217, 1000));
  assert.equal(Number(ev.type), 217);
  await page.getByText('No device online.').waitFor();
});

test('live overview draws a self-updating chart', { timeout: 30000 }, async () => {
  await nav('Live', 'Live');
  await page.locator('#live-users').filter({ hasText: /^\d+$/ }).waitFor();
  const firstUpdate = await page.getByText(/^Updated /).innerText();
  await page.waitForFunction((t) => {
    const el = [...document.querySelectorAll('p')].find((p) => p.textContent.startsWith('Updated '));
    return el && el.textContent !== t;
  }, firstUpdate, { timeout: 10000 });
  assert.ok(await page.locator('svg.chart polyline').count() >= 1, 'chart lines drawn');
  // A login while watching shows up as a connection and in logins per minute.
  const tok = await http('POST', `${srv.appPath}/token`, { body: { grant_type: 'inherit', username: 'bob' }, token: await appToken() });
  const bob = sdk.connect({ appKey: srv.appKey, url: srv.wsUrl, apiUrl: srv.base, deviceId: `live${process.pid}` });
  try {
    await bob.conn.open({ user: 'bob', accessToken: tok.body.access_token });
    await page.locator('#live-connections').filter({ hasText: /^1$/ }).waitFor({ timeout: 10000 });
    await page.locator('#live-users').filter({ hasText: /^1$/ }).waitFor();
    await page.locator('#live-logins').filter({ hasText: /^[1-9]/ }).waitFor({ timeout: 10000 });
    await sleep(3500); // one more point on the chart
    await shot('live');
  } finally {
    bob.close();
  }
});

test('phone width: no horizontal scrolling, navigation reachable by keyboard', async () => {
  await page.setViewportSize(PHONE);
  await nav('Users', 'Users');
  await page.locator('#users-table tr[data-user="conalice"]').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `page fits the phone width (overflow ${overflow}px)`);
  await shot('users-phone');
  await page.setViewportSize(DESKTOP);
  // Keyboard: the skip link comes first, then the navigation.
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Overview');
});

test('an expired or revoked session returns to sign-in with a message; sign-out clears it', async () => {
  await page.evaluate(() => {
    const s = JSON.parse(sessionStorage.getItem('ferrim.console.session'));
    s.token = 'YWMtbm90LWEtcmVhbC10b2tlbg';
    sessionStorage.setItem('ferrim.console.session', JSON.stringify(s));
  });
  // A token the server no longer accepts: the next API call answers 401.
  await page.reload();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.match(await page.locator('.notice').innerText(), /session has expired or is no longer valid \(Unable to authenticate/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('ferrim.console.session')), null);

  // A session past its expiry is not even tried.
  await signIn(srv.clientSecret);
  await page.getByRole('heading', { level: 1, name: 'App overview' }).waitFor();
  await page.evaluate(() => {
    const s = JSON.parse(sessionStorage.getItem('ferrim.console.session'));
    s.expiresAt = Date.now() - 1000;
    sessionStorage.setItem('ferrim.console.session', JSON.stringify(s));
  });
  await page.reload();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.match(await page.locator('.notice').innerText(), /Your session has expired/);

  await signIn(srv.clientSecret);
  await page.getByRole('heading', { level: 1, name: 'App overview' }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

test('no script errors or CSP violations in the page', () => {
  assert.deepEqual(pageErrors, []);
});
