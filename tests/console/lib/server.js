'use strict';
// Starts a real `ferrim serve` for the console tests (fresh data dir, free port) and stops it.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const BIN = process.env.FERRIM_BIN || path.resolve(__dirname, '..', '..', '..', 'target', 'debug', 'ferrim');

const APP_KEY = 'consoleorg#consoleapp';
const CLIENT_ID = 'console-test-client-id';
const CLIENT_SECRET = 'console-test-client-secret-4b1d';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startServer() {
  if (!fs.existsSync(BIN)) throw new Error(`ferrim binary not found at ${BIN}: run \`cargo build --bins\` or set FERRIM_BIN`);
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrim-console-'));
  const output = [];
  const proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    env: {
      ...process.env,
      FERRIM_APP_KEY: APP_KEY,
      FERRIM_CLIENT_ID: CLIENT_ID,
      FERRIM_CLIENT_SECRET: CLIENT_SECRET,
      FERRIM_PASSWORD_HASH_COST: 'test',
      FERRIM_LOG: process.env.FERRIM_LOG || 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (b) => { output.push(b.toString()); if (output.length > 200) output.shift(); };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  let exited = false;
  proc.on('exit', () => { exited = true; });
  const killOnExit = () => { try { proc.kill('SIGKILL'); } catch (_) { /* gone */ } };
  process.on('exit', killOnExit);

  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    if (exited) throw new Error(`ferrim exited at start:\n${output.join('')}`);
    try {
      const r = await fetch(`${base}/health`);
      if (r.ok) break;
    } catch (_) { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`ferrim not healthy in 20 s:\n${output.join('')}`);
    await sleep(100);
  }
  const [org, app] = APP_KEY.split('#');
  return {
    base,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    appKey: APP_KEY,
    appPath: `/${org}/${app}`,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    output: () => output.join(''),
    async stop() {
      process.removeListener('exit', killOnExit);
      if (!exited) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(killOnExit, 5000);
        await done;
        clearTimeout(t);
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

module.exports = { startServer, sleep };
