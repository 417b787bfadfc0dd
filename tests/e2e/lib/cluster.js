'use strict';
// A cluster of real `ferrim` processes (node IDs 1, 2, 3, …) sharing one fresh PostgreSQL
// schema and one NATS server (docs/cluster.md). Each node is a FerrimServer started with the
// cluster flags, so every REST helper of lib/server.js works against any node. Mirrors
// crates/ferrim-server/tests/cluster/helpers.rs.
//
// Services: FERRIM_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) and
// FERRIM_TEST_NATS_URL (default nats://127.0.0.1:4222). With CI set, an unset variable is an
// error; elsewhere, unset and unreachable means "skip with a notice".

const crypto = require('node:crypto');
const net = require('node:net');

const { startServer } = require('./server');

const DB_ENV = 'FERRIM_TEST_DATABASE_URL';
const NATS_ENV = 'FERRIM_TEST_NATS_URL';
const LOCAL_DB = 'postgres://postgres@127.0.0.1:5432/test';
const LOCAL_NATS = 'nats://127.0.0.1:4222';
/** A short lease so a crashed node is swept within seconds (as in the Rust cluster tests). */
const LEASE_SECS = 3;
/** Test schemas older than this are left-overs of killed runs (same rule as the Rust helper). */
const STALE_SECS = 3600;

function tcpReachable(host, port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** The URL without its password (for messages). */
function redact(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch (_) {
    return '(unparsable URL)';
  }
}

function hostPort(url, defaultPort) {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port) || defaultPort };
}

/**
 * Where the cluster's services are: { databaseUrl, natsUrl } or { skip: reason }.
 * Throws (fails the file) when CI is set and a variable is missing.
 */
async function clusterServices() {
  const db = process.env[DB_ENV] || '';
  const nats = process.env[NATS_ENV] || '';
  if (process.env.CI !== undefined) {
    const missing = [[DB_ENV, db, LOCAL_DB], [NATS_ENV, nats, LOCAL_NATS]].filter(([, v]) => !v);
    if (missing.length) {
      throw new Error(`${missing.map(([k, , d]) => `${k} is not set (e.g. ${k}=${d})`).join('; ')}: CI must run the cluster end-to-end tests`);
    }
  }
  const databaseUrl = db || LOCAL_DB;
  const natsUrl = nats || LOCAL_NATS;
  // An explicitly named service must be up; only the implicit local defaults may be absent.
  // (An explicit database fails at connect with PostgreSQL's own message; NATS is probed
  // because a node starts without it and cross-node tests would only time out.)
  const notes = [];
  for (const [name, explicit, url, defaultPort] of [[DB_ENV, db, databaseUrl, 5432], [NATS_ENV, nats, natsUrl, 4222]]) {
    if (explicit && name === DB_ENV) continue;
    const { host, port } = hostPort(url, defaultPort);
    if (await tcpReachable(host, port, 1000)) continue;
    if (explicit) throw new Error(`${name}=${redact(url)} is not reachable`);
    notes.push(`${name} is not set and ${redact(url)} is not reachable`);
  }
  if (notes.length) {
    return {
      skip: `skipping the cluster end-to-end tests: ${notes.join('; ')}. Start PostgreSQL and nats-server (docs/cluster.md) or set ${DB_ENV} / ${NATS_ENV}.`,
    };
  }
  return { databaseUrl, natsUrl };
}

async function withPg(databaseUrl, fn) {
  // Loaded lazily: the single-server files never need the PostgreSQL client.
  // eslint-disable-next-line global-require
  const { Client } = require('pg');
  const pg = new Client({ connectionString: databaseUrl });
  try {
    await pg.connect();
  } catch (e) {
    throw new Error(`cannot connect to PostgreSQL at ${redact(databaseUrl)} (${DB_ENV}): ${e.message}`);
  }
  try {
    return await fn(pg);
  } finally {
    await pg.end().catch(() => {});
  }
}

/** Creates `ferrim_test_<unix secs>_<random>` (the Rust helpers' naming, so either sweeps). */
async function createSchema(databaseUrl) {
  const now = Math.floor(Date.now() / 1000);
  const schema = `ferrim_test_${now}_${crypto.randomBytes(6).toString('hex')}`;
  await withPg(databaseUrl, async (pg) => {
    const old = await pg.query("SELECT nspname::text AS name FROM pg_namespace WHERE nspname LIKE 'ferrim\\_test\\_%'");
    for (const { name } of old.rows) {
      const created = Number(name.split('_')[2]);
      if (Number.isFinite(created) && created + STALE_SECS < now) {
        await pg.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`).catch(() => {});
      }
    }
    await pg.query(`CREATE SCHEMA ${schema}`);
  });
  return schema;
}

async function dropSchema(databaseUrl, schema) {
  await withPg(databaseUrl, (pg) => pg.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
}

class Cluster {
  constructor({ databaseUrl, natsUrl, schema }) {
    this.databaseUrl = databaseUrl;
    this.natsUrl = natsUrl;
    this.schema = schema;
    const sep = databaseUrl.includes('?') ? '&' : '?';
    this.storageUrl = `${databaseUrl}${sep}options=-csearch_path%3D${schema}`;
    /** nodes[i] is node ID i + 1; a killed node stays in the array (its `exited` is true). */
    this.nodes = [];
  }

  /** Starts one more node (the next node ID) and waits for its /health. */
  async addNode() {
    const id = this.nodes.length + 1;
    const node = await startServer({
      label: `node${id}`,
      args: [
        '--storage', this.storageUrl,
        '--nats-url', this.natsUrl,
        '--node-id', String(id),
        '--cluster-lease-secs', String(LEASE_SECS),
      ],
      // The cluster is configured by the flags alone, whatever the caller's shell holds.
      env: {
        FERRIM_CONFIG: undefined, FERRIM_STORAGE: undefined, FERRIM_NATS_URL: undefined,
      },
      // Only retry a node that died at once (port taken): a second start of the same node ID
      // would wait for the first one's lease.
      attempts: 2,
    });
    node.nodeId = id;
    this.nodes.push(node);
    return node;
  }

  /** Nodes still running. */
  live() {
    return this.nodes.filter((n) => !n.exited);
  }

  /** PUT the same settings on every live node: each applies its own write at once (the others would re-read within 5 s). */
  async setSettings(patch) {
    for (const n of this.live()) await n.setSettings(patch);
  }

  /** Stops every node (SIGTERM, then SIGKILL) and drops the schema. */
  async stop() {
    const errors = [];
    for (const n of this.nodes) {
      try { await n.stop(); } catch (e) { errors.push(e); }
    }
    if (!process.env.E2E_KEEP_DATA) {
      try { await dropSchema(this.databaseUrl, this.schema); } catch (e) { errors.push(e); }
    }
    if (errors.length) throw errors[0];
  }

  /** Server output of every node (for failure messages). */
  logs(n = 2000) {
    return this.nodes.map((s) => `--- ${s.label}${s.exited ? ' (exited)' : ''} ---\n${s.stderrTail(n)}`).join('\n');
  }
}

/**
 * Starts `n` nodes on a fresh schema, node 1 first (it applies the migrations), then the
 * others. Returns a Cluster, or { skip } when the services are absent outside CI.
 * On failure, every node already started is stopped and the schema dropped.
 */
async function startCluster(n, { services } = {}) {
  const svc = services || await clusterServices();
  if (svc.skip) return svc;
  const schema = await createSchema(svc.databaseUrl);
  const cluster = new Cluster({ ...svc, schema });
  try {
    for (let i = 0; i < n; i += 1) await cluster.addNode();
  } catch (e) {
    await cluster.stop().catch(() => {});
    throw e;
  }
  return cluster;
}

module.exports = {
  startCluster, clusterServices, Cluster, LEASE_SECS,
};
