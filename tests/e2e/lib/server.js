'use strict';
// Starts and stops a real `ferrim` server process for one test file and offers REST helpers
// (Easemob REST API, shared/spec/rest-api.md) to drive it.
//
// Operator contract: `ferrim serve --listen 127.0.0.1:PORT --data-dir DIR`, env FERRIM_APP_KEY,
// FERRIM_CLIENT_ID, FERRIM_CLIENT_SECRET, FERRIM_PASSWORD_HASH_COST=test, FERRIM_LOG;
// GET /health answers 200 when ready; msync WebSocket at ws://127.0.0.1:PORT/ws.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const DEFAULT_BIN = path.join(REPO_ROOT, 'target', 'debug', 'ferrim');

const APP_KEY = process.env.E2E_APP_KEY || 'e2eorg#e2eapp';
const CLIENT_ID = 'e2e-client-id-0123456789';
const CLIENT_SECRET = 'e2e-client-secret-0123456789abcdef';

const running = new Set();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const s of running) {
      try { s.proc.kill('SIGKILL'); } catch (_) { /* gone */ }
    }
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => { killAll(); process.exit(130); });
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class RestError extends Error {
  constructor(method, urlPath, status, body) {
    super(`${method} ${urlPath} -> HTTP ${status}: ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

class FerrimServer {
  constructor({ proc, port, dataDir, appKey, stderrBuf, label }) {
    this.proc = proc;
    this.label = label || `ferrim:${port}`;
    this.port = port;
    this.dataDir = dataDir;
    this.appKey = appKey;
    const [org, app] = appKey.split('#');
    this.org = org;
    this.app = app;
    this.host = `127.0.0.1:${port}`;
    this.apiUrl = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}/ws`;
    this.clientId = CLIENT_ID;
    this.clientSecret = CLIENT_SECRET;
    this._stderr = stderrBuf;
    this._appToken = null;
    this.exited = false;
  }

  /** Last part of the server's stderr (for failure messages). */
  stderrTail(n = 4000) {
    const s = this._stderr.join('');
    return s.length > n ? s.slice(-n) : s;
  }

  /** Options to spread into newConnection(). */
  sdkOptions(extra = {}) {
    return { appKey: this.appKey, url: this.wsUrl, apiUrl: this.apiUrl, ...extra };
  }

  appPath(p) {
    return `/${this.org}/${this.app}${p}`;
  }

  /**
   * Raw HTTP request. Returns { status, body, text, headers }; never throws on HTTP status.
   * `token`: bearer token (string) or true for the app token.
   */
  async request(method, urlPath, { body, token, headers = {} } = {}) {
    const h = { Accept: 'application/json', ...headers };
    if (token === true) token = await this.appToken();
    if (token) h.Authorization = `Bearer ${token}`;
    let payload;
    if (body !== undefined) {
      h['Content-Type'] = h['Content-Type'] || 'application/json';
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const res = await fetch(`${this.apiUrl}${urlPath}`, { method, headers: h, body: payload });
    const text = await res.text();
    let parsed = text;
    try { parsed = text.length ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
    return { status: res.status, body: parsed, text, headers: res.headers };
  }

  /** request() that throws RestError unless the status is 2xx; returns the parsed body. */
  async call(method, urlPath, opts = {}) {
    const r = await this.request(method, urlPath, opts);
    if (r.status < 200 || r.status > 299) throw new RestError(method, urlPath, r.status, r.body);
    return r.body;
  }

  // ---- tokens -------------------------------------------------------------------------------

  /** App (admin) token via client_credentials; cached. */
  async appToken({ fresh = false } = {}) {
    if (this._appToken && !fresh) return this._appToken;
    const body = await this.call('POST', this.appPath('/token'), {
      body: { grant_type: 'client_credentials', client_id: CLIENT_ID, client_secret: CLIENT_SECRET },
    });
    if (!body || typeof body.access_token !== 'string') {
      throw new Error(`client_credentials answer has no access_token: ${JSON.stringify(body)}`);
    }
    this._appToken = body.access_token;
    return this._appToken;
  }

  /** Full inherit-grant answer ({access_token, expires_in, user}). ttl in seconds (optional). */
  async userTokenResponse(username, { ttl } = {}) {
    const req = { grant_type: 'inherit', username, autoCreateUser: false };
    if (ttl !== undefined) req.ttl = ttl;
    return this.call('POST', this.appPath('/token'), { body: req, token: true });
  }

  /** User token via grant_type=inherit (app token auth). */
  async userToken(username, opts = {}) {
    const body = await this.userTokenResponse(username, opts);
    if (!body || typeof body.access_token !== 'string') {
      throw new Error(`inherit answer has no access_token: ${JSON.stringify(body)}`);
    }
    return body.access_token;
  }

  /** User token via grant_type=password. Returns the raw response ({status, body}). */
  passwordTokenRaw(username, password) {
    return this.request('POST', this.appPath('/token'), {
      body: { grant_type: 'password', username, password },
    });
  }

  // ---- app settings (ferrim extension) -------------------------------------------------------

  /** PUT /{org}/{app}/settings — registration_mode, token_ttl_secs, device_cap_per_platform, kick_policy. */
  setSettings(settings) {
    return this.call('PUT', this.appPath('/settings'), { body: settings, token: true });
  }

  // ---- users ----------------------------------------------------------------------------------

  registerUser(username, password = `${username}-pass`) {
    return this.call('POST', this.appPath('/users'), { body: { username, password }, token: true });
  }

  async registerUsers(names, password) {
    const out = [];
    for (const n of names) out.push(await this.registerUser(n, password === undefined ? `${n}-pass` : password));
    return out;
  }

  getUser(username) {
    return this.call('GET', this.appPath(`/users/${encodeURIComponent(username)}`), { token: true });
  }

  changePassword(username, newpassword) {
    return this.call('PUT', this.appPath(`/users/${encodeURIComponent(username)}/password`), {
      body: { newpassword }, token: true,
    });
  }

  deactivate(username) {
    return this.call('POST', this.appPath(`/users/${encodeURIComponent(username)}/deactivate`), { token: true });
  }

  activate(username) {
    return this.call('POST', this.appPath(`/users/${encodeURIComponent(username)}/activate`), { token: true });
  }

  deleteUser(username) {
    return this.call('DELETE', this.appPath(`/users/${encodeURIComponent(username)}`), { token: true });
  }

  /** Force offline on all devices (GET …/disconnect). */
  disconnect(username) {
    return this.call('GET', this.appPath(`/users/${encodeURIComponent(username)}/disconnect`), { token: true });
  }

  /** Force one device offline (DELETE …/disconnect/{resource}). */
  disconnectResource(username, resource) {
    return this.call('DELETE', this.appPath(`/users/${encodeURIComponent(username)}/disconnect/${encodeURIComponent(resource)}`), { token: true });
  }

  /** Online devices: the `data` array ([{res, device_uuid, device_name}, …]). */
  async resources(username) {
    const body = await this.call('GET', this.appPath(`/users/${encodeURIComponent(username)}/resources`), { token: true });
    return Array.isArray(body && body.data) ? body.data : [];
  }

  /** 'online' | 'offline' (data[username] of GET …/status). */
  async status(username) {
    const body = await this.call('GET', this.appPath(`/users/${encodeURIComponent(username)}/status`), { token: true });
    return body && body.data ? body.data[username] : undefined;
  }

  /** Polls status(username) until it equals `want`; returns the last value seen. */
  async waitStatus(username, want, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      last = await this.status(username);
      if (last === want || Date.now() > deadline) return last;
      await sleep(100);
    }
  }

  /** POST /{org}/{app}/messages/users (Easemob REST send). Returns the raw response. */
  sendRestMessage(body) {
    return this.request('POST', this.appPath('/messages/users'), { body, token: true });
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** SIGKILL (a crash: no graceful shutdown); resolves once the process is gone. */
  async kill() {
    running.delete(this);
    if (this.exited) return;
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    try { this.proc.kill('SIGKILL'); } catch (_) { /* gone */ }
    await exited;
  }

  async stop() {
    running.delete(this);
    if (!this.exited) {
      const exited = new Promise((resolve) => this.proc.once('exit', resolve));
      try { this.proc.kill('SIGTERM'); } catch (_) { /* gone */ }
      const t = setTimeout(() => { try { this.proc.kill('SIGKILL'); } catch (_) { /* gone */ } }, 5000);
      await exited;
      clearTimeout(t);
    }
    if (!process.env.E2E_KEEP_DATA) {
      fs.rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}

async function waitHealthy(server, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let lastErr = null;
  while (Date.now() < deadline) {
    if (server.exited) return { ok: false, reason: `ferrim exited early (code ${server.exitCode}, signal ${server.exitSignal})` };
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), 1000);
    try {
      const res = await fetch(`${server.apiUrl}/health`, { signal: ctl.signal });
      await res.arrayBuffer();
      if (res.status === 200) return { ok: true };
      lastErr = `HTTP ${res.status}`;
    } catch (e) {
      lastErr = e.message;
    } finally {
      clearTimeout(t);
    }
    await sleep(100);
  }
  return { ok: false, reason: `no healthy answer within ${timeoutMs} ms (last: ${lastErr})` };
}

/**
 * Starts ferrim on a free port with a fresh data dir and waits for GET /health.
 * opts: { env: extra env vars, args: extra `serve` arguments (e.g. cluster flags),
 *         healthTimeoutMs (20000), attempts (3), appKey, label (names the server in errors) }
 */
async function startServer(opts = {}) {
  installExitHook();
  const bin = process.env.FERRIM_BIN || DEFAULT_BIN;
  if (!fs.existsSync(bin)) {
    throw new Error(`ferrim binary not found at ${bin} (build it with \`cargo build -p ferrim-server\` or set FERRIM_BIN)`);
  }
  const appKey = opts.appKey || APP_KEY;
  const attempts = opts.attempts || 3;
  const healthTimeoutMs = opts.healthTimeoutMs || 20000;
  let lastFailure = '';
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    const port = await freePort();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrim-e2e-'));
    const env = {
      ...process.env,
      FERRIM_APP_KEY: appKey,
      FERRIM_CLIENT_ID: CLIENT_ID,
      FERRIM_CLIENT_SECRET: CLIENT_SECRET,
      FERRIM_PASSWORD_HASH_COST: 'test',
      FERRIM_LOG: process.env.FERRIM_LOG || 'warn',
      ...(opts.env || {}),
    };
    const stderrBuf = [];
    const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...(opts.args || [])];
    const proc = spawn(bin, args, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const label = opts.label ? `${opts.label} (port ${port})` : undefined;
    const server = new FerrimServer({ proc, port, dataDir, appKey, stderrBuf, label });
    running.add(server);
    const keep = (chunk) => {
      stderrBuf.push(chunk.toString());
      if (stderrBuf.length > 400) stderrBuf.splice(0, stderrBuf.length - 400);
      if (process.env.E2E_SERVER_LOG) process.stderr.write(opts.label ? `[${opts.label}] ${chunk}` : chunk);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    proc.on('exit', (code, signal) => {
      server.exited = true;
      server.exitCode = code;
      server.exitSignal = signal;
      running.delete(server);
    });
    proc.on('error', (e) => {
      stderrBuf.push(`spawn error: ${e.message}\n`);
      server.exited = true;
    });
    const health = await waitHealthy(server, healthTimeoutMs);
    if (health.ok) return server;
    lastFailure = `${health.reason}\n--- ferrim output (tail) ---\n${server.stderrTail()}`;
    const diedEarly = server.exited; // e.g. the port was taken meanwhile: retry on another one
    await server.stop();
    if (!diedEarly) break; // alive but never healthy: retrying would only repeat the wait
  }
  throw new Error(`could not start ferrim${opts.label ? ` ${opts.label}` : ''} (${bin}): ${lastFailure}`);
}

/** Polls `fn` (sync or async) until it returns a truthy value; returns it or throws after timeoutMs. */
async function waitUntil(fn, timeoutMs = 5000, what = 'condition', intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

module.exports = {
  startServer, FerrimServer, RestError, waitUntil, sleep, freePort, APP_KEY, CLIENT_ID, CLIENT_SECRET,
};
