'use strict';
// Small helpers shared by the test files.

const assert = require('node:assert/strict');

const { newConnection, withTimeout, sleep } = require('./sdk');

const OPEN_TIMEOUT_MS = 20000;
const KICK_WAIT_MS = 10000;

/**
 * Creates a connection for `user` and logs it in.
 * opts: { pwd } for password login, else { token } or a fresh inherit token ({ ttl } optional);
 *       every other key is passed to newConnection (delivery, customOSPlatform, label, …).
 * Returns the opened Client; `client.openResult` holds what open() resolved with.
 */
async function login(srv, user, opts = {}) {
  const { pwd, token, ttl, ...connOpts } = opts;
  const client = newConnection(srv.sdkOptions({ label: connOpts.label || user, ...connOpts }));
  let openArgs;
  if (pwd !== undefined) {
    openArgs = { user, pwd };
  } else {
    const accessToken = token || await srv.userToken(user, ttl !== undefined ? { ttl } : {});
    openArgs = { user, accessToken };
  }
  client.openResult = await withTimeout(client.open(openArgs), OPEN_TIMEOUT_MS, `open(${user})`);
  return client;
}

/** Asserts-free check used in tests: did the client stay connected and quiet for `ms`? */
async function staysConnected(client, ms) {
  const from = client.mark();
  await sleep(ms);
  return {
    opened: client.isOpened(),
    disconnected: client.count('onDisconnected', () => true, from),
    errors: client.list('onError', () => true, from).map((e) => e.arg),
    reconnecting: client.count('onReconnecting', () => true, from),
  };
}

/** A string unique within this process (for message texts). */
let uniq = 0;
function unique(prefix = 'u') {
  uniq += 1;
  return `${prefix}-${process.pid}-${Date.now()}-${uniq}`;
}

/**
 * Waits until the server kicks `c` with SDK code `type` (reported through onDisconnected and
 * onError, as the SDK does for a kick); returns the onDisconnected event.
 */
async function assertKicked(c, type, who) {
  const ev = await c.waitFor('onDisconnected', (e) => e && e.type === type, KICK_WAIT_MS).catch((e) => {
    const seen = c.list('onDisconnected').map((x) => x.arg);
    throw new Error(`${who}: no onDisconnected(type ${type}); onDisconnected seen: ${JSON.stringify(seen)}; ${e.message}`);
  });
  assert.equal(ev.type, type);
  assert.ok(c.count('onError', (e) => e && e.type === type) >= 1, `${who}: onError(type ${type}) dispatched`);
  return ev;
}

/**
 * alice's device `a1` sends `text` to bob's `b`: bob gets it, alice's other device `a2` gets
 * the same message (still alice → bob), and the sending device does not get it back.
 */
async function assertSenderCopy(a1, a2, b, text) {
  const isText = (m) => m && m.msg === text;
  const r = await withTimeout(a1.sendText('bob', text), 15000, 'send');
  const onB = await b.waitFor('onTextMessage', isText, 10000);
  const onA2 = await a2.waitFor('onTextMessage', isText, 10000);
  assert.equal(onA2.from, 'alice');
  assert.equal(onA2.to, 'bob', 'the other device sees the original direction alice → bob');
  assert.equal(onA2.id, r.serverMsgId);
  assert.equal(onB.id, r.serverMsgId);
  await sleep(800);
  assert.equal(a1.count('onTextMessage', isText), 0, 'the sending device does not get its own message');
  assert.equal(a2.count('onTextMessage', isText), 1);
  assert.equal(b.count('onTextMessage', isText), 1);
}

/** Asserts what staysConnected() saw: still connected, no disconnect, error or reconnect. */
function assertQuiet(q, who) {
  assert.equal(q.opened, true, `${who} still connected`);
  assert.equal(q.disconnected, 0, `${who} got no onDisconnected`);
  assert.deepEqual(q.errors, [], `${who} got no onError`);
  assert.equal(q.reconnecting, 0, `${who} did not reconnect`);
}

/** A kicked device stays out for `ms`: the SDK does not reconnect. */
async function assertStaysOut(c, who, ms) {
  const q = await staysConnected(c, ms);
  assert.equal(q.opened, false, `${who} stays disconnected`);
  assert.equal(q.reconnecting, 0, `${who}: SDK does not reconnect after a kick`);
  assert.equal(c.count('onConnected'), 1, `${who}: no second onConnected`);
}

module.exports = {
  assertQuiet, assertStaysOut, login, staysConnected, unique, assertKicked, assertSenderCopy, OPEN_TIMEOUT_MS, KICK_WAIT_MS,
};
