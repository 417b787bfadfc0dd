'use strict';
// The unmodified official Web SDK (easemob-websdk 4.21.1) in Node. The bundle decides its
// platform when loaded, so browser-like globals must exist before require().

const WS = require('ws');
const XHR = require('xhr2');

const g = globalThis;
g.window = g.window || g;
g.self = g.self || g;
g.WebSocket = g.WebSocket || WS;
g.XMLHttpRequest = g.XMLHttpRequest || XHR;
if (!g.localStorage) {
  const m = new Map();
  g.localStorage = {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
    clear: () => m.clear(),
    key: (i) => [...m.keys()][i] ?? null,
    get length() { return m.size; },
  };
}
if (!g.addEventListener) {
  // The SDK starts a reporting interval it only stops on "beforeunload"; see shutdown().
  const target = new EventTarget();
  g.addEventListener = target.addEventListener.bind(target);
  g.removeEventListener = target.removeEventListener.bind(target);
  g.dispatchEvent = target.dispatchEvent.bind(target);
}
if (!g.navigator) g.navigator = { userAgent: 'ferrim-console-test (Node)', platform: 'Linux', language: 'en', onLine: true };

const WebIM = require('easemob-websdk');

try { WebIM.logger.setLevel(5); WebIM.logger.setConsoleLogVisibility(false); } catch (_) { /* ignore */ }

/** A connection recording onConnected / onDisconnected / onError events. */
function connect({ appKey, url, apiUrl, deviceId }) {
  const conn = new WebIM.connection({
    appKey, isHttpDNS: false, https: false, url, apiUrl, isFixedDeviceId: false, deviceId, delivery: false,
  });
  const events = [];
  const waiters = [];
  const record = (name) => (arg) => {
    events.push({ name, arg });
    for (const w of [...waiters]) {
      if (w.name === name && w.pred(arg)) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(arg);
      }
    }
  };
  conn.addEventHandler('console-test', {
    onConnected: record('onConnected'),
    onDisconnected: record('onDisconnected'),
    onError: record('onError'),
  });
  return {
    conn,
    events,
    resource: () => conn.clientResource || (conn.context && conn.context.jid && conn.context.jid.clientResource) || '',
    waitFor(name, pred = () => true, ms = 10000) {
      const hit = events.find((e) => e.name === name && pred(e.arg));
      if (hit) return Promise.resolve(hit.arg);
      return new Promise((resolve, reject) => {
        const w = { name, pred, resolve };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no ${name} within ${ms} ms; events: ${JSON.stringify(events.map((e) => [e.name, e.arg && e.arg.type]))}`));
        }, ms);
        waiters.push(w);
      });
    },
    close() { try { conn.close(); } catch (_) { /* closed */ } },
  };
}

function shutdown() {
  g.dispatchEvent(new Event('beforeunload'));
}

module.exports = { WebIM, connect, shutdown };
