'use strict';
// Loads the unmodified official Easemob Web SDK (easemob-websdk 4.21.1) headless in Node 20
// (recipe: shared/spec/msync-protocol.md §11.1) and wraps each `WebIM.connection` in a small
// event recorder so tests can await SDK callbacks.
//
// The bundle picks its platform at load time: it must see `window.WebSocket` to choose "web".
// So the globals below have to exist BEFORE `require('easemob-websdk')`.

const WebSocketBase = require('ws');
const XMLHttpRequestImpl = require('xhr2');

// In a browser an 'error' event nobody listens to is harmless; `ws` is an EventEmitter, where
// it is thrown. The SDK's reconnect sockets have no error listener, so a refused reconnect
// (e.g. to a killed server) would crash the test process. A no-op listener gives browser
// semantics; the SDK's own onerror/onclose handlers still run.
class WebSocketImpl extends WebSocketBase {
  constructor(...args) {
    super(...args);
    this.on('error', () => {});
  }
}

function installGlobals() {
  if (typeof globalThis.self === 'undefined') globalThis.self = globalThis;
  if (typeof globalThis.window === 'undefined') globalThis.window = globalThis;
  if (typeof globalThis.WebSocket === 'undefined') globalThis.WebSocket = WebSocketImpl;
  if (typeof globalThis.XMLHttpRequest === 'undefined') globalThis.XMLHttpRequest = XMLHttpRequestImpl;
  if (typeof globalThis.localStorage === 'undefined') {
    // In-memory shim. It is shared by every connection in this process, which is why every
    // connection gets its own device identity (see newConnection).
    const store = new Map();
    globalThis.localStorage = {
      getItem: (k) => (store.has(String(k)) ? store.get(String(k)) : null),
      setItem: (k, v) => { store.set(String(k), String(v)); },
      removeItem: (k) => { store.delete(String(k)); },
      clear: () => { store.clear(); },
      key: (i) => Array.from(store.keys())[i] ?? null,
      get length() { return store.size; },
    };
  }
  if (typeof globalThis.addEventListener === 'undefined') {
    // The SDK's data-report singleton starts a 60 s setInterval (never cleared) and only stops
    // it on a window "beforeunload" event, registered when `addEventListener` exists. Without
    // this, every Node process that created a connection would never exit. shutdownSdk()
    // dispatches "beforeunload". (The SDK also registers "online"/"offline" listeners here,
    // which are never fired.)
    const target = new EventTarget();
    globalThis.addEventListener = target.addEventListener.bind(target);
    globalThis.removeEventListener = target.removeEventListener.bind(target);
    globalThis.dispatchEvent = target.dispatchEvent.bind(target);
  }
  if (typeof globalThis.navigator === 'undefined') {
    globalThis.navigator = { userAgent: 'Mozilla/5.0 (X11; Linux x86_64) ferrim-e2e Node', platform: 'Linux', language: 'en-US', onLine: true };
  }
}

installGlobals();
// The package's main file is a UMD bundle exporting { connection, message, utils, logger, statusCode }.
const WebIM = require('easemob-websdk');

if (!WebIM || typeof WebIM.connection !== 'function') {
  throw new Error('easemob-websdk did not load as expected (no WebIM.connection)');
}

// Silence the SDK's own logging: level 5 = SILENT (levels: TRACE 0 .. ERROR 4, SILENT 5).
function setSdkLogLevel(level) {
  try {
    WebIM.logger.setLevel(level);
    WebIM.logger.setConsoleLogVisibility(level < 5);
  } catch (_) { /* older logger shape: ignore */ }
}
setSdkLogLevel(process.env.E2E_SDK_LOG_LEVEL !== undefined ? Number(process.env.E2E_SDK_LOG_LEVEL) : 5);

// Every event name the 4.21.1 typings declare for addEventHandler (types/eventHandler.d.ts).
const EVENT_NAMES = [
  'onOpened', 'onClosed', 'onPresence', 'onMessage', 'onTextMessage', 'onCombineMessage',
  'onImageMessage', 'onAudioMessage', 'onVideoMessage', 'onFileMessage', 'onLocationMessage',
  'onCmdMessage', 'onCustomMessage', 'onReceivedMessage', 'onDeliveredMessage', 'onReadMessage',
  'onRecallMessage', 'onChannelMessage', 'onModifiedMessage', 'onError', 'onOffline', 'onOnline',
  'onStatisticMessage', 'onContactAgreed', 'onContactRefuse', 'onContactDeleted',
  'onContactAdded', 'onTokenWillExpire', 'onTokenExpired', 'onContactInvited', 'onConnected',
  'onReconnecting', 'onDisconnected', 'onGroupChange', 'onChatroomChange', 'onContactChange',
  'onPresenceStatusChange', 'onChatThreadChange', 'onReactionChange', 'onMultiDeviceEvent',
  'onGroupEvent', 'onChatroomEvent', 'onMessagePinEvent', 'onOfflineMessageSyncStart',
  'onOfflineMessageSyncFinish',
];

const live = new Set(); // every Client not yet closed, so closeAll() can clean up after a failure
let deviceCounter = 0;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class TimeoutError extends Error {}

/** One SDK connection plus a recorder of every event it dispatched. */
class Client {
  constructor(conn, info) {
    this.conn = conn;
    this.info = info; // { appKey, url, apiUrl, deviceId, label }
    this.user = undefined;
    /** @type {{name:string, arg:any, args:any[], at:number, seq:number}[]} */
    this.events = [];
    this._waiters = new Set();
    this._seq = 0;
    this.closed = false;
    const handlers = {};
    for (const name of EVENT_NAMES) {
      handlers[name] = (...args) => this._record(name, args);
    }
    conn.addEventHandler('e2e-recorder', handlers);
    live.add(this);
  }

  _record(name, args) {
    const ev = { name, arg: args[0], args, at: Date.now(), seq: this._seq++ };
    this.events.push(ev);
    for (const w of Array.from(this._waiters)) {
      if (w.name === name && ev.seq >= w.from && w.predicate(ev.arg, ev)) {
        this._waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(ev.arg);
      }
    }
    if (process.env.E2E_TRACE_EVENTS) {
      let shown;
      try { shown = JSON.stringify(args[0]); } catch (_) { shown = String(args[0]); }
      // eslint-disable-next-line no-console
      console.error(`[${this.info.label}] ${name} ${shown === undefined ? '' : shown.slice(0, 300)}`);
    }
  }

  /** Sequence number to pass as `from` so that waitFor only looks at later events. */
  mark() {
    return this._seq;
  }

  /** Recorded events named `name` (optionally filtered, optionally from a mark on). */
  list(name, predicate = () => true, from = 0) {
    return this.events.filter((e) => e.name === name && e.seq >= from && predicate(e.arg, e));
  }

  /** Number of recorded events named `name` matching `predicate`. */
  count(name, predicate = () => true, from = 0) {
    return this.list(name, predicate, from).length;
  }

  /**
   * Resolves with the first argument of the first event `name` (recorded since `from`, default
   * since the start) for which `predicate(arg, event)` is true; rejects after `timeoutMs`.
   */
  waitFor(name, predicate = () => true, timeoutMs = 10000, from = 0) {
    const found = this.events.find((e) => e.name === name && e.seq >= from && predicate(e.arg, e));
    if (found) return Promise.resolve(found.arg);
    return new Promise((resolve, reject) => {
      const w = { name, predicate, from, resolve, reject, timer: null };
      w.timer = setTimeout(() => {
        this._waiters.delete(w);
        const seen = this.events.map((e) => e.name).slice(-20).join(', ');
        reject(new TimeoutError(`[${this.info.label}] timed out after ${timeoutMs} ms waiting for ${name}; last events: ${seen || '(none)'}`));
      }, timeoutMs);
      this._waiters.add(w);
    });
  }

  /** Waits until `count(name, predicate) >= n`; resolves with the matching args. */
  async waitForCount(name, n, predicate = () => true, timeoutMs = 10000, from = 0) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = this.list(name, predicate, from);
      if (got.length >= n) return got.map((e) => e.arg);
      if (Date.now() > deadline) {
        throw new TimeoutError(`[${this.info.label}] timed out after ${timeoutMs} ms: ${got.length}/${n} ${name}`);
      }
      await sleep(20);
    }
  }

  /** conn.open() with a token (default) or a password. Resolves/rejects like the SDK does. */
  open(opts) {
    this.user = opts.user;
    return this.conn.open(opts);
  }

  openWithToken(user, accessToken) {
    return this.open({ user, accessToken });
  }

  openWithPassword(user, pwd) {
    return this.open({ user, pwd });
  }

  /** The device resource the SDK is using (set from the Provision reply). */
  get resource() {
    return this.conn.clientResource || (this.conn.context && this.conn.context.jid && this.conn.context.jid.clientResource) || '';
  }

  isOpened() {
    return this.conn.isOpened();
  }

  /** Creates a message with WebIM.message.create and sends it; resolves with the send result. */
  send(msgOptions) {
    const msg = WebIM.message.create({ chatType: 'singleChat', ...msgOptions });
    return this.conn.send(msg);
  }

  sendText(to, text, extra = {}) {
    return this.send({ type: 'txt', to, msg: text, ...extra });
  }

  /** Closes (logs out) the connection. Safe to call more than once. */
  async close() {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    for (const w of this._waiters) clearTimeout(w.timer);
    this._waiters.clear();
    try {
      this.conn.close();
    } catch (_) { /* already closed */ }
    // Let the LOGOUT frame / socket close go out before the caller moves on.
    await sleep(50);
  }
}

/**
 * Creates a WebIM.connection for a private server (no HTTP DNS) and wraps it in a Client.
 *
 * opts: { url (ws://host:port/ws), apiUrl (http://host:port), appKey, deviceId, delivery,
 *         customOSPlatform, customDeviceName, isFixedDeviceId, label, ...any other SDK option }
 *
 * Device identity: all connections of this process share one localStorage, so by default each
 * one gets `isFixedDeviceId:false` and its own `deviceId`; the SDK then uses the resource
 * `webim_web_<deviceId>` (fixed for the life of the connection, also across reconnects).
 * With `customOSPlatform` the SDK ignores the deviceId for the resource and uses
 * `custom<n>_random_web_<ms>` instead (so do not open two such clients in the same ms).
 */
function newConnection(opts = {}) {
  const {
    url, apiUrl, appKey = 'demo#demo', label, deviceId, ...rest
  } = opts;
  if (!url || !apiUrl) throw new Error('newConnection needs url and apiUrl');
  deviceCounter += 1;
  const dev = deviceId || `e2e${process.pid}d${deviceCounter}`;
  const options = {
    appKey,
    isHttpDNS: false,
    https: false,
    url,
    apiUrl,
    isFixedDeviceId: false,
    deviceId: dev,
    delivery: false,
    ...rest,
  };
  const conn = new WebIM.connection(options);
  return new Client(conn, { appKey, url, apiUrl, deviceId: dev, label: label || dev, options });
}

/** Expected resource for a client created with deviceId X and no customOSPlatform. */
function expectedResource(deviceId) {
  return `webim_web_${deviceId}`;
}

/** Closes every client that is still open (use in after()/afterEach()). */
async function closeAll() {
  const all = Array.from(live);
  for (const c of all) {
    await c.close();
  }
}

/**
 * Closes every client and stops the SDK's process-wide timers (see installGlobals) so the
 * Node process can exit. Call once at the end of a test file (top-level after()).
 */
async function shutdownSdk() {
  await closeAll();
  globalThis.dispatchEvent(new Event('beforeunload'));
}

/**
 * Awaits `promise` and returns the rejection value; fails if it resolves or if it does not
 * settle within timeoutMs.
 */
async function expectReject(promise, timeoutMs = 15000, what = 'promise') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not settle within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const value = await Promise.race([promise.then((v) => ({ ok: true, v }), (e) => ({ ok: false, e })), timeout]);
    if (value.ok) {
      let shown;
      try { shown = JSON.stringify(value.v); } catch (_) { shown = String(value.v); }
      throw new Error(`${what} resolved but was expected to reject: ${shown}`);
    }
    return value.e;
  } finally {
    clearTimeout(timer);
  }
}

/** Awaits `promise` but fails with a clear message after timeoutMs. */
async function withTimeout(promise, timeoutMs, what = 'operation') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not settle within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

module.exports = {
  WebIM,
  EVENT_NAMES,
  Client,
  newConnection,
  expectedResource,
  closeAll,
  shutdownSdk,
  expectReject,
  withTimeout,
  sleep,
  setSdkLogLevel,
  TimeoutError,
};
