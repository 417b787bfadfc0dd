'use strict';
// Multi-device rules and server-side kicks, observed through the official Web SDK 4.21.1.
// Spec: rest-api.md §5.5–5.10, §6 (device caps per platform, kick policy, kick codes);
// msync-protocol.md §6.1 (214), §6.2 (kick metas 206/207/216/217), §7 (getSelfIdsOnOtherPlatform).

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');

const { startServer, sleep } = require('../lib/server');
const {
  newConnection, closeAll, shutdownSdk, expectReject, withTimeout,
} = require('../lib/sdk');
const {
  login, staysConnected, assertKicked, assertQuiet, assertStaysOut,
} = require('../lib/fixture');

const QUIET_MS = 2500;

let srv;

before(async () => {
  srv = await startServer();
  await srv.setSettings({ device_cap_per_platform: 4, kick_policy: 'kick_earliest' });
  await srv.registerUsers(['mdu', 'mdr', 'mdf', 'mds', 'mdp', 'mdd', 'mdg']);
});

afterEach(async () => {
  await closeAll();
});

after(async () => {
  await shutdownSdk();
  if (srv) await srv.stop();
});

/** Logs in `n` web devices of `user` one after the other (each gets its own resource). */
async function webDevices(user, n, token, prefix = user) {
  const out = [];
  for (let i = 1; i <= n; i += 1) {
    out.push(await login(srv, user, { token, label: `${prefix}-web${i}` }));
  }
  return out;
}

/** A device on custom platform 1 (Provision osType 5, osCustomValue 1): a different "end". */
async function customDevice(user, token, label = `${user}-custom1`) {
  const c = await login(srv, user, { token, label, customOSPlatform: 1, customDeviceName: 'e2e-custom' });
  await sleep(5); // custom resources embed Date.now(): keep them distinct
  return c;
}

test('5th web login kicks the earliest web device (206); the custom-platform device stays', { timeout: 60000 }, async () => {
  const tok = await srv.userToken('mdu');
  const custom = await customDevice('mdu', tok);
  const web = await webDevices('mdu', 4, tok);
  const res = new Set(web.map((c) => c.resource).concat(custom.resource));
  assert.equal(res.size, 5, `five distinct resources: ${[...res].join(', ')}`);
  assert.equal((await srv.resources('mdu')).length, 5, 'five devices online');

  const fifth = await login(srv, 'mdu', { token: tok, label: 'mdu-web5' });
  const ev = await assertKicked(web[0], 206, 'web1 (earliest web device)');
  assert.equal(ev.message, 'the user is already logged on another device');
  assert.equal(fifth.isOpened(), true, 'the newcomer is online');

  for (const [c, who] of [[web[1], 'web2'], [web[2], 'web3'], [web[3], 'web4'], [fifth, 'web5'], [custom, 'custom1']]) {
    assertQuiet(await staysConnected(c, 0), who);
  }
  await assertStaysOut(web[0], 'web1', QUIET_MS);
  for (const [c, who] of [[web[1], 'web2'], [web[2], 'web3'], [web[3], 'web4'], [fifth, 'web5'], [custom, 'custom1']]) {
    assertQuiet(await staysConnected(c, 0), who);
  }

  const online = (await srv.resources('mdu')).map((r) => r.res).sort();
  const expected = [web[1], web[2], web[3], fifth, custom].map((c) => c.resource).sort();
  assert.deepEqual(online, expected, 'REST resources = the five surviving devices');
});

test('kick_policy refuse_newcomer: the 5th web login is refused with 214, nobody is kicked', { timeout: 60000 }, async () => {
  await srv.setSettings({ kick_policy: 'refuse_newcomer' });
  try {
    const tok = await srv.userToken('mdr');
    const web = await webDevices('mdr', 4, tok);
    const c5 = newConnection(srv.sdkOptions({ label: 'mdr-web5' }));
    const err = await expectReject(c5.open({ user: 'mdr', accessToken: tok }), 20000, '5th open()');
    assert.equal(err.type, 214, `USER_LOGIN_TOO_MANY_DEVICES, got ${JSON.stringify(err)}`);
    assert.equal(c5.count('onConnected'), 0);
    for (const [i, c] of web.entries()) {
      assertQuiet(await staysConnected(c, i === 0 ? 1500 : 0), `web${i + 1}`);
    }
    const online = (await srv.resources('mdr')).map((r) => r.res).sort();
    assert.deepEqual(online, web.map((c) => c.resource).sort(), 'still exactly the first four devices');
  } finally {
    await srv.setSettings({ kick_policy: 'kick_earliest' });
  }
});

test('force offline (GET …/disconnect) kicks every device with 217', { timeout: 60000 }, async () => {
  const tok = await srv.userToken('mdf');
  const [w1, w2] = await webDevices('mdf', 2, tok);
  const custom = await customDevice('mdf', tok);
  assert.equal(await srv.status('mdf'), 'online');

  const r = await srv.disconnect('mdf');
  assert.equal(r && r.data && r.data.result, true, `data.result true: ${JSON.stringify(r)}`);
  for (const [c, who] of [[w1, 'web1'], [w2, 'web2'], [custom, 'custom1']]) {
    const ev = await assertKicked(c, 217, who);
    assert.equal(ev.message, 'the user was kicked by other device');
  }
  for (const [c, who] of [[w1, 'web1'], [w2, 'web2'], [custom, 'custom1']]) await assertStaysOut(c, who, QUIET_MS);
  assert.equal(await srv.waitStatus('mdf', 'offline', 5000), 'offline');
  assert.deepEqual(await srv.resources('mdf'), []);
});

test('single-resource disconnect kicks only that device with 217', { timeout: 60000 }, async () => {
  const tok = await srv.userToken('mds');
  const [w1, w2] = await webDevices('mds', 2, tok);
  const listed = (await srv.resources('mds')).map((r) => r.res);
  assert.ok(listed.includes(w1.resource), `resources lists ${w1.resource}: ${listed}`);

  const r = await srv.disconnectResource('mds', w1.resource);
  assert.equal(r && r.data && r.data.result, true, `data.result true: ${JSON.stringify(r)}`);
  await assertKicked(w1, 217, 'web1');
  assertQuiet(await staysConnected(w2, 1500), 'web2');
  await assertStaysOut(w1, 'web1', QUIET_MS);
  assert.deepEqual((await srv.resources('mds')).map((x) => x.res), [w2.resource]);
  assert.equal(await srv.status('mds'), 'online', 'user still online through web2');
});

test('password change kicks all devices with 216; the old token and password stop working', { timeout: 60000 }, async () => {
  const tok = await srv.userToken('mdp');
  const [w1] = await webDevices('mdp', 1, tok);
  const custom = await customDevice('mdp', tok);

  await srv.changePassword('mdp', 'mdp-new-pass');
  for (const [c, who] of [[w1, 'web1'], [custom, 'custom1']]) {
    const ev = await assertKicked(c, 216, who);
    assert.equal(ev.message, 'the user was kicked by changing password');
  }
  for (const [c, who] of [[w1, 'web1'], [custom, 'custom1']]) await assertStaysOut(c, who, QUIET_MS);

  const c1 = newConnection(srv.sdkOptions({ label: 'mdp-oldtoken' }));
  const err = await expectReject(c1.open({ user: 'mdp', accessToken: tok }), 20000, 'open(old token)');
  assert.equal(err.type, 28, `old token after password change → 28, got ${JSON.stringify(err)}`);

  const c2 = newConnection(srv.sdkOptions({ label: 'mdp-oldpwd' }));
  const err2 = await expectReject(c2.open({ user: 'mdp', pwd: 'mdp-pass' }), 20000, 'open(old password)');
  assert.equal(err2.type, 1, JSON.stringify(err2));
  assert.equal(err2.message, 'invalid password');

  const c3 = await login(srv, 'mdp', { pwd: 'mdp-new-pass', label: 'mdp-newpwd' });
  assert.equal(c3.isOpened(), true, 'new password logs in');
});

test('deleting the user kicks every device with 207', { timeout: 60000 }, async () => {
  const tok = await srv.userToken('mdd');
  const [w1, w2] = await webDevices('mdd', 2, tok);
  await srv.deleteUser('mdd');
  for (const [c, who] of [[w1, 'web1'], [w2, 'web2']]) {
    const ev = await assertKicked(c, 207, who);
    assert.equal(ev.message, 'user has been removed');
  }
  for (const [c, who] of [[w1, 'web1'], [w2, 'web2']]) await assertStaysOut(c, who, QUIET_MS);
});

test('getSelfIdsOnOtherPlatform() lists the user\'s other devices as "user/resource"', { timeout: 60000 }, async () => {
  const tok = await srv.userToken('mdg');
  const [w1, w2] = await webDevices('mdg', 2, tok);
  const custom = await customDevice('mdg', tok);
  const r = await withTimeout(w1.conn.getSelfIdsOnOtherPlatform(), 15000, 'getSelfIdsOnOtherPlatform');
  assert.ok(r && Array.isArray(r.data), `resolves {data:[…]}: ${JSON.stringify(r)}`);
  assert.deepEqual(r.data.slice().sort(), [`mdg/${w2.resource}`, `mdg/${custom.resource}`].sort());
  const r2 = await withTimeout(custom.conn.getSelfIdsOnOtherPlatform(), 15000, 'getSelfIdsOnOtherPlatform (custom)');
  assert.deepEqual(r2.data.slice().sort(), [`mdg/${w1.resource}`, `mdg/${w2.resource}`].sort());
});
