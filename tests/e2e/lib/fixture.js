'use strict';
// Small helpers shared by the test files.

const { newConnection, withTimeout, sleep } = require('./sdk');

const OPEN_TIMEOUT_MS = 20000;

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

module.exports = { login, staysConnected, unique, OPEN_TIMEOUT_MS };
