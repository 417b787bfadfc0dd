'use strict';
// Login, token lifecycle and logout, driven through the official Web SDK 4.21.1.
// Spec: msync-protocol.md §3 (login), §4 (token timers, renewToken), §5.3 (logout), §6.1/6.3
// (error types); rest-api.md §3 (tokens), §5.6 (deactivate).

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');

const { startServer, sleep } = require('../lib/server');
const {
  newConnection, closeAll, shutdownSdk, expectReject, expectedResource, withTimeout,
} = require('../lib/sdk');
const { login, staysConnected } = require('../lib/fixture');

let srv;

before(async () => {
  srv = await startServer();
  await srv.registerUsers(['alice', 'bob', 'carol', 'dave', 'frank', 'gina', 'ephemeral']);
});

afterEach(async () => {
  await closeAll();
});

after(async () => {
  await shutdownSdk();
  if (srv) await srv.stop();
});

test('token login: open() resolves with the token, onConnected fires, server sees the device', { timeout: 30000 }, async () => {
  const tok = await srv.userToken('alice');
  const c = newConnection(srv.sdkOptions({ label: 'alice' }));
  const res = await withTimeout(c.open({ user: 'alice', accessToken: tok }), 20000, 'open');

  assert.equal(res.accessToken, tok, 'open() resolves {accessToken}');
  // Since 4.10 onConnected fires before open() settles.
  assert.equal(c.count('onConnected'), 1, 'onConnected fired exactly once');
  assert.equal(c.count('onError'), 0, 'no onError');
  assert.equal(c.isOpened(), true);
  // The Provision reply must echo the client's resource (the SDK adopts whatever comes back).
  assert.equal(c.resource, expectedResource(c.info.deviceId), 'server echoed the device resource');

  assert.equal(await srv.status('alice'), 'online', 'REST status is online');
  const res2 = await srv.resources('alice');
  assert.ok(res2.some((r) => r.res === c.resource), `resources lists ${c.resource}: ${JSON.stringify(res2)}`);

  // A second open() on a logged-in connection is refused locally by the SDK.
  const again = await expectReject(c.open({ user: 'alice', accessToken: tok }), 5000, 'second open()');
  assert.equal(again.type, 208, 'WEBIM_USER_ALREADY_LOGIN');
  assert.equal((await staysConnected(c, 300)).opened, true, 'still connected after the refused second open()');
});

test('password login: open() resolves {accessToken, duration}; that token logs in too', { timeout: 30000 }, async () => {
  const c = newConnection(srv.sdkOptions({ label: 'bob-pwd' }));
  const res = await withTimeout(c.open({ user: 'bob', pwd: 'bob-pass' }), 20000, 'open');
  assert.equal(typeof res.accessToken, 'string');
  assert.ok(res.accessToken.length > 0, 'non-empty access token');
  assert.equal(typeof res.duration, 'number', 'duration = REST expires_in (seconds)');
  assert.ok(res.duration > 0, 'positive expires_in');
  assert.equal(c.count('onConnected'), 1);
  assert.equal(await srv.status('bob'), 'online');

  // The token obtained by the password grant is an ordinary user token.
  const c2 = await login(srv, 'bob', { token: res.accessToken, label: 'bob-tok' });
  assert.equal(c2.count('onConnected'), 1);
  assert.equal(c.isOpened(), true, 'first device still online');
  assert.equal((await srv.resources('bob')).length, 2, 'two devices online');
});

test('wrong token: open() rejects with type 28 (INVALID_TOKEN), also for another user\'s token', { timeout: 30000 }, async () => {
  const c = newConnection(srv.sdkOptions({ label: 'alice-badtoken' }));
  const err = await expectReject(c.open({ user: 'alice', accessToken: 'YWMtThisIsNotAValidTokenAtAll0123456789' }), 20000, 'open(bad token)');
  assert.equal(err.type, 28, `type 28 WEBIM_CONNCTION_TOKEN_NOT_ASSIGN_ERROR, got ${JSON.stringify(err)}`);
  assert.equal(err.message, 'INVALID_TOKEN');
  assert.equal(c.count('onConnected'), 0, 'never connected');
  assert.ok(c.count('onError', (e) => e && e.type === 28) >= 1, 'onError(type 28) dispatched');

  // A perfectly valid token of bob must not log in as alice.
  const bobTok = await srv.userToken('bob');
  const c2 = newConnection(srv.sdkOptions({ label: 'alice-bobtoken' }));
  const err2 = await expectReject(c2.open({ user: 'alice', accessToken: bobTok }), 20000, 'open(alice with bob\'s token)');
  assert.equal(err2.type, 28, `bob's token as alice → 28, got ${JSON.stringify(err2)}`);
  assert.equal(c2.count('onConnected'), 0);
});

test('wrong password: open() rejects type 1 with data.type 17 (REST 400 invalid_grant "invalid password")', { timeout: 30000 }, async () => {
  const c = newConnection(srv.sdkOptions({ label: 'alice-badpwd' }));
  const err = await expectReject(c.open({ user: 'alice', pwd: 'definitely-wrong' }), 20000, 'open(bad password)');
  assert.equal(err.type, 1, `type 1 WEBIM_CONNCTION_OPEN_ERROR, got ${JSON.stringify(err)}`);
  assert.equal(err.message, 'invalid password', 'message = the REST error_description');
  assert.ok(err.data, 'data carries the REST error');
  assert.equal(err.data.type, 17, 'data.type 17 WEBIM_CONNCTION_AJAX_ERROR');
  assert.equal(err.data.extraInfo && err.data.extraInfo.httpCode, 400, 'REST answered HTTP 400');
  assert.equal(c.count('onConnected'), 0);
});

test('unknown user: 204 for password login (REST 404) and for a token of a deleted user (Provision)', { timeout: 30000 }, async () => {
  const c = newConnection(srv.sdkOptions({ label: 'ghost-pwd' }));
  const err = await expectReject(c.open({ user: 'ghost', pwd: 'whatever' }), 20000, 'open(ghost, pwd)');
  assert.equal(err.type, 1, `password grant failure is wrapped as type 1, got ${JSON.stringify(err)}`);
  assert.equal(err.message, 'user not found');
  assert.equal(err.data && err.data.type, 204, 'data.type 204 USER_NOT_FOUND (REST 404 "user not found")');

  const tok = await srv.userToken('ephemeral');
  await srv.deleteUser('ephemeral');
  const c2 = newConnection(srv.sdkOptions({ label: 'ephemeral' }));
  const err2 = await expectReject(c2.open({ user: 'ephemeral', accessToken: tok }), 20000, 'open(deleted user)');
  assert.equal(err2.type, 204, `Provision FAIL "Sorry, user not found" → 204, got ${JSON.stringify(err2)}`);
  assert.equal(c2.count('onConnected'), 0);
});

/** A dynamic token as an app server mints it (rest-api.md §3.3). */
function dynamicToken(userId, curTime, ttl) {
  const crypto = require('node:crypto');
  const signature = crypto.createHash('sha256')
    .update(`${srv.clientId}${srv.appKey}${userId}${curTime}${ttl}${srv.clientSecret}`)
    .digest('hex');
  const json = JSON.stringify({ signature, appkey: srv.appKey, userId, curTime, ttl });
  return Buffer.from(`dt-${json}`).toString('base64url');
}

test('dynamic token login: a token signed by the app server logs in; a forged or expired one does not', { timeout: 30000 }, async () => {
  const now = Math.floor(Date.now() / 1000);
  const c = newConnection(srv.sdkOptions({ label: 'frank-dt' }));
  const tok = dynamicToken('frank', now, 600);
  const res = await withTimeout(c.open({ user: 'frank', accessToken: tok }), 20000, 'open(dynamic token)');
  assert.equal(res.accessToken, tok);
  assert.equal(c.count('onConnected'), 1);
  assert.equal(await srv.status('frank'), 'online');

  const forged = newConnection(srv.sdkOptions({ label: 'frank-forged' }));
  const other = dynamicToken('gina', now, 600); // signed for another user
  const err = await expectReject(forged.open({ user: 'frank', accessToken: other }), 20000, 'open(another user\'s dynamic token)');
  assert.equal(err.type, 28, `INVALID_TOKEN, got ${JSON.stringify(err)}`);

  const late = newConnection(srv.sdkOptions({ label: 'frank-late' }));
  const expired = dynamicToken('frank', now - 120, 60);
  const err2 = await expectReject(late.open({ user: 'frank', accessToken: expired }), 20000, 'open(expired dynamic token)');
  assert.equal(err2.type, 56, `WEBIM_TOKEN_EXPIRED, got ${JSON.stringify(err2)}`);
});

test('expired token: open() rejects with type 56', { timeout: 30000 }, async () => {
  const tok = await srv.userToken('alice', { ttl: 1 });
  await sleep(2100);
  const c = newConnection(srv.sdkOptions({ label: 'alice-expired' }));
  const err = await expectReject(c.open({ user: 'alice', accessToken: tok }), 20000, 'open(expired token)');
  assert.equal(err.type, 56, `WEBIM_TOKEN_EXPIRED, got ${JSON.stringify(err)}`);
  assert.equal(err.message, 'Sorry, token expired');
  assert.equal(c.count('onConnected'), 0);
});

test('token timers: onTokenWillExpire at ~80% and onTokenExpired at expiry, once each, then logout', { timeout: 40000 }, async () => {
  const TTL = 6;
  const tok = await srv.userToken('carol', { ttl: TTL });
  const issuedAt = Date.now(); // token was issued at most this late
  const c = await login(srv, 'carol', { token: tok });
  const loginAt = c.list('onConnected')[0].at;
  const expiry = issuedAt + TTL * 1000;
  const expectWill = loginAt + 0.8 * (expiry - loginAt);

  await c.waitFor('onTokenExpired', () => true, TTL * 1000 + 4000);
  await sleep(1500); // anything duplicated would show up now

  const will = c.list('onTokenWillExpire');
  const expired = c.list('onTokenExpired');
  assert.equal(will.length, 1, 'onTokenWillExpire fired exactly once');
  assert.equal(expired.length, 1, 'onTokenExpired fired exactly once');
  const tol = 1000;
  assert.ok(Math.abs(will[0].at - expectWill) <= tol,
    `onTokenWillExpire at +${will[0].at - issuedAt} ms after issue, expected ~+${Math.round(expectWill - issuedAt)} ms (±${tol})`);
  assert.ok(Math.abs(expired[0].at - expiry) <= tol,
    `onTokenExpired at +${expired[0].at - issuedAt} ms after issue, expected ~+${TTL * 1000} ms (±${tol})`);
  assert.ok(will[0].at < expired[0].at, 'will-expire comes first');

  // The SDK logs out by itself (LOGOUT "inner:token expired") and closes the socket.
  await c.waitFor('onDisconnected', () => true, 5000);
  assert.equal(c.isOpened(), false);
  assert.equal(await srv.waitStatus('carol', 'offline', 5000), 'offline', 'server shows carol offline');
});

test('renewToken(newToken) resolves and the old expiry no longer fires', { timeout: 40000 }, async () => {
  const TTL = 6;
  const tok = await srv.userToken('dave', { ttl: TTL });
  const issuedAt = Date.now();
  const c = await login(srv, 'dave', { token: tok });
  await sleep(1000);

  const newTok = await srv.userToken('dave', { ttl: 120 });
  const r = await withTimeout(c.conn.renewToken(newTok), 15000, 'renewToken');
  assert.equal(r.status, true, `renewToken resolves {status:true,…}: ${JSON.stringify(r)}`);
  assert.equal(r.token, newTok);
  assert.equal(typeof r.expire, 'number', 'expire = expire_timestamp (epoch ms) from GET …/token/expires');
  assert.ok(Math.abs(r.expire - (Date.now() + 120000)) < 10000, `expire ≈ now + 120 s, got ${r.expire - Date.now()} ms from now`);

  // Wait past the old token's expiry.
  const waitUntil = issuedAt + TTL * 1000 + 2000;
  await sleep(Math.max(0, waitUntil - Date.now()));
  assert.equal(c.count('onTokenExpired'), 0, 'no onTokenExpired at the old expiry');
  assert.equal(c.count('onTokenWillExpire'), 0, 'no onTokenWillExpire for the old token');
  assert.equal(c.count('onDisconnected'), 0, 'not disconnected');
  assert.equal(c.isOpened(), true, 'still connected');
  assert.equal(await srv.status('dave'), 'online');
  // SDK REST calls now carry the renewed token (Authorization: Bearer <newToken>).
  const ids = await withTimeout(c.conn.getSelfIdsOnOtherPlatform(), 15000, 'getSelfIdsOnOtherPlatform after renewal');
  assert.deepEqual(ids.data, [], 'no other devices');
  // The renewed token is accepted for a new login as well.
  const c2 = await login(srv, 'dave', { token: newTok, label: 'dave-2' });
  assert.equal(c2.isOpened(), true);
});

test('logout via close(): onDisconnected without reason, REST status offline, no resources', { timeout: 30000 }, async () => {
  const c = await login(srv, 'gina');
  assert.equal(await srv.status('gina'), 'online');
  await c.close();
  const ev = await c.waitFor('onDisconnected', () => true, 5000).catch(() => 'none');
  // close() dispatches onDisconnected synchronously with the socket close; our recorder keeps it.
  assert.notEqual(ev, 'none', 'onDisconnected fired');
  assert.equal(ev, undefined, 'a deliberate logout has no error argument');
  assert.equal(await srv.waitStatus('gina', 'offline', 5000), 'offline', 'REST status offline after logout');
  assert.deepEqual(await srv.resources('gina'), [], 'no online resources left');
});

test('deactivated user is kicked while online and cannot log in until activated', { timeout: 40000 }, async () => {
  const tok = await srv.userToken('frank');
  const c = await login(srv, 'frank', { token: tok });

  await srv.deactivate('frank');
  const ev = await c.waitFor('onDisconnected', (e) => e && e.type, 10000);
  // The Web SDK has no "banned" kick; the server uses USER_REMOVED (207) or KICKED_BY_OTHER_DEVICE (217).
  assert.ok([207, 217].includes(ev.type), `kick type 207 or 217, got ${JSON.stringify(ev)}`);
  assert.ok(c.count('onError', (e) => e && e.type === ev.type) >= 1, 'onError with the same type');
  const quiet = await staysConnected(c, 2500);
  assert.equal(quiet.reconnecting, 0, 'the SDK does not try to reconnect');
  assert.equal(c.count('onConnected'), 1, 'no second onConnected');
  assert.equal(await srv.waitStatus('frank', 'offline', 5000), 'offline');

  // Token login with the (still unexpired) token is refused with a non-retryable error.
  const c2 = newConnection(srv.sdkOptions({ label: 'frank-banned' }));
  const err = await expectReject(c2.open({ user: 'frank', accessToken: tok }), 20000, 'open(deactivated)');
  assert.ok([2, 57].includes(err.type), `deactivated login → 2 (Auth failed) or 57 (IM_FORBIDDEN), got ${JSON.stringify(err)}`);
  assert.equal(c2.count('onConnected'), 0);

  // Password login: REST 400 invalid_grant "user not activated".
  const c3 = newConnection(srv.sdkOptions({ label: 'frank-banned-pwd' }));
  const err3 = await expectReject(c3.open({ user: 'frank', pwd: 'frank-pass' }), 20000, 'open(deactivated, pwd)');
  assert.equal(err3.type, 1, JSON.stringify(err3));
  assert.equal(err3.message, 'user not activated');

  // No new tokens for a deactivated user either.
  const r = await srv.request('POST', srv.appPath('/token'), {
    body: { grant_type: 'inherit', username: 'frank', autoCreateUser: false }, token: true,
  });
  assert.equal(r.status, 400, `inherit for a deactivated user → 400: ${r.text}`);
  assert.equal(r.body && r.body.error_description, 'user not activated');

  await srv.activate('frank');
  const c4 = await login(srv, 'frank', { label: 'frank-again' });
  assert.equal(c4.isOpened(), true, 'activated user logs in again');
});
