// The HA harness's PostgreSQL half: PostgreSQL 15 primary + two streaming replicas managed by
// Patroni, with a single etcd as Patroni's consensus store, all as plain processes on 127.0.0.1
// (ports from the HA contract), state and logs under $VAULTDR_HA_DIR/postgres. postgresUp is
// idempotent: a healthy process is left alone, a missing one is started, and the cluster is only
// bootstrapped once (Patroni's initialize key in etcd). Processes are kept like every other HA
// harness server (stack/ha/proc.ts); HAProxy's PostgreSQL sections come from
// postgresHaproxySections() and run in the harness's one HAProxy (stack/ha/haproxy.ts), which
// haUp (stack/ha/index.ts) starts after this half.
//
// Failover tuning (the numbers the drill measures; docs/runbooks/ha-postgres.md explains them):
//   ttl 20         the leader lock's lease. After a primary dies (SIGKILL, hung host) nothing can
//                  be promoted before the lease runs out, so it is the floor of an unplanned
//                  failover. 20 is the minimum Patroni documents (newer releases refuse less).
//   loop_wait 2    the primary refreshes its lease every 2 s, so it expires 18–20 s after a crash;
//                  a crashed postmaster is noticed within 2 s. Each loop is a few cheap queries.
//   retry_timeout 5  DCS and PostgreSQL retries give up after 5 s, and loop_wait + 2·retry (12)
//                  stays within ttl, as Patroni requires, so a primary that cannot reach etcd
//                  demotes itself before its lease could be taken by another node.
//   primary_start_timeout 10  a primary whose postmaster died is restarted in place (crash
//                  recovery takes about a second here); if it is not up in 10 s, fail over. With
//                  synchronous replication a failover loses nothing, so waiting longer only adds
//                  downtime. The default (300 s) would make a `kill -9 postgres` a 5-minute outage.
//   synchronous_mode + synchronous_mode_strict: a commit is acknowledged only after a replica
//                  has flushed it, Patroni promotes only that synchronous standby, and with strict
//                  the primary never falls back to acknowledging alone. Zero acknowledged writes
//                  are lost; the price is that writes wait while no replica is connected.
//                  Asynchronous replication would lose what the dead primary acknowledged but had
//                  not shipped: up to maximum_lag_on_failover (1 MiB) plus the last ttl seconds
//                  of writes, and a frozen primary woken up would acknowledge writes that
//                  pg_rewind then discards.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { cacheDir } from '../tools';
import { patroniCluster, postgresHaHealth, type PatroniMember, type PgHaTopology, type PostgresHaHealth } from '../../infra/postgres/haHealth';
import type { PgNodeControl, PostgresHaDriverOptions } from '../../infra/postgres/haDriver';
import { haDir, logFile, runningPid, startProc, stopProc, type Proc } from './proc';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..', '..');

export const PG_PORTS = {
  etcdClient: 23790,
  etcdPeer: 23800,
  haproxyReadWrite: 5440,
  haproxyReadOnly: 5439,
} as const;

export interface PgNode {
  name: string;
  pgPort: number;
  restPort: number;
}

export const PG_NODES: readonly PgNode[] = [
  { name: 'pg1', pgPort: 5441, restPort: 8011 },
  { name: 'pg2', pgPort: 5442, restPort: 8012 },
  { name: 'pg3', pgPort: 5443, restPort: 8013 },
];

/** Patroni's dynamic configuration (bootstrap.dcs); see the header for why each value. */
export const PATRONI_DCS = {
  ttl: 20,
  loop_wait: 2,
  retry_timeout: 5,
  primary_start_timeout: 10,
  maximum_lag_on_failover: 1048576,
  synchronous_mode: true,
  synchronous_mode_strict: true,
  synchronous_node_count: 1,
  // Keep a primary that loses etcd but still reaches every member over REST (Patroni ≥ 3.0).
  failsafe_mode: true,
} as const;

/** PostgreSQL parameters kept in Patroni's dynamic configuration (the same on every node). */
export const PG_PARAMETERS = {
  wal_level: 'replica',
  hot_standby: 'on',
  // pg_rewind needs hint bits logged (initdb also enables data checksums).
  wal_log_hints: 'on',
  max_wal_senders: 10,
  max_replication_slots: 10,
  wal_keep_size: '128MB',
  // on = a commit waits until the synchronous standby has flushed it (remote_apply would also
  // wait for replay; not needed, reads of acknowledged writes go to the primary).
  synchronous_commit: 'on',
  // A replica whose primary vanished retries its WAL source every 500 ms instead of every 5 s:
  // after a failover the surviving replica reattaches to the new primary (and, in strict
  // synchronous mode, unblocks its commits) up to 4.5 s sooner.
  wal_retrieve_retry_interval: '500ms',
  max_connections: 100,
  shared_buffers: '32MB',
} as const;

export const PG_SCOPE = 'vaultdr';
export const PG_DATABASE = 'vaultdr';
export const PG_APP_USER = 'vaultdr';
const PG_BIN = '/usr/lib/postgresql/15/bin';

/**
 * Patroni from PyPI, not Debian's 3.0.2: 3.0.2's etcd3 client overwrites the leader key
 * unconditionally when its session expired, so a primary frozen past ttl (SIGSTOP, a VM pause)
 * takes the lock back from the node already promoted on wake-up, and the writes acknowledged by
 * that node are rewound away (seen here in a stop-node round; fixed in 3.0.3 by patroni/patroni#2689).
 */
export const PATRONI_PIN = 'patroni[etcd3,psycopg3]==4.1.5';

/** Patroni's venv. Patroni runs as `postgres` when we are root, so root's ~/.cache (0700 /root) will not do. */
export function patroniVenv(): string {
  const version = PATRONI_PIN.split('==')[1]!;
  if (process.env.VAULTDR_PATRONI_VENV) return process.env.VAULTDR_PATRONI_VENV;
  return process.getuid?.() === 0 ? `/usr/local/lib/vault-dr/patroni-${version}` : path.join(cacheDir(), `patroni-${version}`);
}

/** Installs the pinned Patroni into its venv once (a marker file says it is done; a lock dir serialises installers). */
export function ensurePatroni(log: (l: string) => void = () => {}): string {
  const venv = patroniVenv();
  const bin = path.join(venv, 'bin', 'patroni');
  const marker = path.join(venv, '.vaultdr-installed');
  if (fs.existsSync(marker) && fs.existsSync(bin)) return bin;
  fs.mkdirSync(path.dirname(venv), { recursive: true });
  const lock = `${venv}.lock`;
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new HaHarnessError(`timed out waiting for ${lock}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
  try {
    if (!(fs.existsSync(marker) && fs.existsSync(bin))) {
      log(`installing ${PATRONI_PIN} into ${venv} ...`);
      // The system Python (a pyenv one under /root is not readable by the postgres user).
      execFileSync(process.env.VAULTDR_PATRONI_PYTHON ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'), ['-m', 'venv', venv], { stdio: 'pipe' });
      execFileSync(path.join(venv, 'bin', 'pip'), ['install', '--disable-pip-version-check', '-q', PATRONI_PIN], { stdio: 'pipe', maxBuffer: 64 * 1024 * 1024 });
      fs.writeFileSync(marker, new Date().toISOString());
    }
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new HaHarnessError(`installing ${PATRONI_PIN} failed: ${(e.stderr?.toString() ?? e.message).trim().split('\n').slice(-5).join('\n')}`);
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
  return bin;
}

/** The PostgreSQL half's state under the HA harness dir (a worker's ha.harnessDir, else $VAULTDR_HA_DIR). */
export function pgHaDir(): string {
  return path.join(haDir(), 'postgres');
}

/** Whether this harness dir has a PostgreSQL half (its generated credentials exist). */
export function postgresHarnessPresent(): boolean {
  return fs.existsSync(path.join(pgHaDir(), 'secrets.json'));
}

export class HaHarnessError extends Error {
  override name = 'HaHarnessError';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Credentials (generated once, 0600)

export interface PgSecrets {
  superuser: string;
  replication: string;
  app: string;
}

export function pgSecrets(): PgSecrets {
  const file = path.join(pgHaDir(), 'secrets.json');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const gen = () => crypto.randomBytes(18).toString('base64url');
    fs.writeFileSync(file, JSON.stringify({ superuser: gen(), replication: gen(), app: gen() }, null, 2), { mode: 0o600 });
  }
  return JSON.parse(fs.readFileSync(file, 'utf8')) as PgSecrets;
}

/** Connection settings for the drill's application user through HAProxy (read-write by default). */
export function appConnection(port: number = PG_PORTS.haproxyReadWrite): { host: string; port: number; user: string; password: string; database: string } {
  return { host: '127.0.0.1', port, user: PG_APP_USER, password: pgSecrets().app, database: PG_DATABASE };
}

/** Superuser connection straight to one node (monitoring queries such as pg_stat_replication). */
export function superuserConnection(node: PgNode): { host: string; port: number; user: string; password: string; database: string } {
  return { host: '127.0.0.1', port: node.pgPort, user: 'postgres', password: pgSecrets().superuser, database: 'postgres' };
}

// ---------------------------------------------------------------------------------------------
// Running as root: PostgreSQL refuses to, so Patroni (which starts postgres) runs as `postgres`.

interface RunAs {
  uid: number;
  gid: number;
}

function runAs(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new HaHarnessError('running as root needs the `postgres` system user (Debian postgresql-15 creates it; scripts/ensure-deps.sh --ha-tools)');
  }
}

/**
 * The postgres user must reach its data directory: give `x` (traverse, not list) on every
 * ancestor that lacks it, e.g. a 0700 .stack/ folder becomes 0711. Files inside stay 0600.
 */
function ensureTraversable(dir: string, log: (l: string) => void): void {
  for (let d = path.dirname(dir); d !== path.dirname(d); d = path.dirname(d)) {
    const st = fs.statSync(d);
    if ((st.mode & 0o001) === 0) {
      fs.chmodSync(d, st.mode | 0o001);
      log(`made ${d} traversable (o+x) for the postgres user`);
    }
  }
}

function cmdlineOf(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

async function http(url: string, init: RequestInit = {}, timeoutMs = 2000): Promise<Response | undefined> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// etcd and the Patroni nodes (HAProxy: stack/ha/haproxy.ts, with postgresHaproxySections())

const etcd: Proc = {
  name: 'etcd',
  get dir() {
    return path.join(pgHaDir(), 'etcd');
  },
  binary: 'etcd',
  startTimeoutMs: 30_000,
  command: () => ({
    cmd: 'etcd',
    args: [
      '--name', 'vaultdr-pg-etcd',
      '--data-dir', path.join(pgHaDir(), 'etcd', 'data'),
      '--listen-client-urls', `http://127.0.0.1:${PG_PORTS.etcdClient}`,
      '--advertise-client-urls', `http://127.0.0.1:${PG_PORTS.etcdClient}`,
      '--listen-peer-urls', `http://127.0.0.1:${PG_PORTS.etcdPeer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${PG_PORTS.etcdPeer}`,
      '--initial-cluster', `vaultdr-pg-etcd=http://127.0.0.1:${PG_PORTS.etcdPeer}`,
      '--initial-cluster-state', 'new',
      '--log-level', 'warn',
    ],
  }),
  async up() {
    const res = await http(`http://127.0.0.1:${PG_PORTS.etcdClient}/health`);
    return res?.status === 200 && ((await res.json()) as { health?: string }).health === 'true';
  },
};

export function nodeDir(node: PgNode): string {
  return path.join(pgHaDir(), node.name);
}

export function dataDir(node: PgNode): string {
  return path.join(nodeDir(node), 'data');
}

function patroniProc(node: PgNode): Proc {
  return {
    name: 'patroni',
    get dir() {
      return nodeDir(node);
    },
    binary: 'patroni',
    // A replica's first start clones the primary with pg_basebackup.
    startTimeoutMs: 120_000,
    // A primary's Patroni stops PostgreSQL (a checkpoint) before it exits.
    stopTimeoutMs: 30_000,
    command: () => {
      const user = runAs();
      return { cmd: path.join(patroniVenv(), 'bin', 'patroni'), args: [path.join(nodeDir(node), 'patroni.yml')], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: nodeDir(node), LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' }, ...(user ?? {}) };
    },
    // Up = Patroni answers and PostgreSQL runs (GET /health is 200 only then).
    up: async () => (await http(`http://127.0.0.1:${node.restPort}/health`))?.status === 200,
  };
}

export const patroniProcs = PG_NODES.map(patroniProc);

/** The Patroni YAML of one node. Passwords are in it, so it is 0600 and owned by postgres. */
export function patroniConfig(node: PgNode, s: PgSecrets): string {
  const dir = nodeDir(node);
  const q = (v: string) => JSON.stringify(v);
  return `# Written by stack/ha/postgres.ts (the HA harness); regenerated on every postgresUp.
scope: ${PG_SCOPE}
namespace: /vaultdr-ha/
name: ${node.name}
log:
  level: INFO
  format: '%(asctime)s %(levelname)s: %(message)s'
restapi:
  listen: 127.0.0.1:${node.restPort}
  connect_address: 127.0.0.1:${node.restPort}
etcd3:
  hosts: ['127.0.0.1:${PG_PORTS.etcdClient}']
bootstrap:
  dcs:
    ttl: ${PATRONI_DCS.ttl}
    loop_wait: ${PATRONI_DCS.loop_wait}
    retry_timeout: ${PATRONI_DCS.retry_timeout}
    primary_start_timeout: ${PATRONI_DCS.primary_start_timeout}
    maximum_lag_on_failover: ${PATRONI_DCS.maximum_lag_on_failover}
    synchronous_mode: ${PATRONI_DCS.synchronous_mode}
    synchronous_mode_strict: ${PATRONI_DCS.synchronous_mode_strict}
    synchronous_node_count: ${PATRONI_DCS.synchronous_node_count}
    failsafe_mode: ${PATRONI_DCS.failsafe_mode}
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
${Object.entries(PG_PARAMETERS).map(([k, v]) => `        ${k}: ${q(String(v))}`).join('\n')}
  initdb:
    - encoding: UTF8
    - data-checksums
    - auth-host: scram-sha-256
    - auth-local: scram-sha-256
postgresql:
  listen: 127.0.0.1:${node.pgPort}
  connect_address: 127.0.0.1:${node.pgPort}
  data_dir: ${q(dataDir(node))}
  bin_dir: ${PG_BIN}
  pgpass: ${q(path.join(dir, 'pgpass'))}
  # A node whose history diverged and cannot be rewound is re-cloned, so it always rejoins.
  remove_data_directory_on_rewind_failure: true
  remove_data_directory_on_diverged_timelines: true
  basebackup:
    - checkpoint: fast
  authentication:
    superuser:
      username: postgres
      password: ${q(s.superuser)}
    replication:
      username: replicator
      password: ${q(s.replication)}
  pg_hba:
    - local all all scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
    - host replication replicator 127.0.0.1/32 scram-sha-256
  parameters:
    unix_socket_directories: ${q(dir)}
    logging_collector: 'on'
    log_directory: ${q(path.join(dir, 'pglog'))}
watchdog:
  # No /dev/watchdog on a dev machine; production hosts should run mode: required.
  mode: 'off'
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
`;
}

/**
 * HAProxy's PostgreSQL sections (the contract's ports). Both listeners are TCP; health is asked of
 * Patroni's REST API, not of PostgreSQL, because only Patroni knows who holds the leader lock.
 */
export function postgresHaproxySections(nodes: readonly (PgNode & { host?: string })[] = PG_NODES, bindAddress = '127.0.0.1'): string {
  const servers = nodes.map((n) => `  server ${n.name} ${n.host ?? '127.0.0.1'}:${n.pgPort} check port ${n.restPort}`).join('\n');
  const checks = `  mode tcp
  # OPTIONS asks the same endpoint as GET for its status code only. HAProxy resets a check
  # connection as soon as it has the status line, so with GET Patroni logs a traceback per check
  # for the JSON body it could not finish writing (Patroni's own code expects OPTIONS from HAProxy).
  option httpchk
  http-check send meth OPTIONS uri URI
  http-check expect status 200
  timeout connect 2s
  # PostgreSQL sessions are long-lived; idle clients are not cut by the proxy.
  timeout client 30m
  timeout server 30m
  # A hung node (SIGSTOP, frozen VM) accepts the check's TCP connection and never answers:
  # 2 s is 100x Patroni's normal reply time and bounds how long such a check can take.
  timeout check 2s
  # inter 5s: the checklist's 5-second interval for a server that is UP (the current primary).
  # downinter 500ms: a DOWN server (the replicas, here) is asked twice a second, so the node
  #   Patroni just promoted is seen within 0.5 s instead of up to 5 s; this is what the
  #   failover time depends on, and it costs a cheap REST call per DOWN server.
  # fastinter 500ms: the pace while a server is changing state, i.e. the confirmations after
  #   the first failed or first passing check.
  # rise 2: two passing checks (0.5 s apart) before a newly promoted node gets traffic, so a
  #   single stray 200 during a leader race does not route writes; costs 0.5 s.
  # fall 2: the old primary is marked down 0.5 s after its first failed check (which comes
  #   0..5 s after its death); writes to it fail anyway, this only stops new connections.
  # on-marked-down shutdown-sessions: a server marked down has its open sessions cut, so a
  #   client still connected to a demoted or hung primary reconnects through HAProxy to the
  #   new one instead of hanging or writing into a node that is no longer the primary.
  default-server inter 5s fastinter 500ms downinter 500ms rise 2 fall 2 on-marked-down shutdown-sessions
${servers}`;
  return `# PostgreSQL read-write: only the node for which Patroni's GET /primary answers 200 (it holds the
# leader lock and runs as primary), so writes never reach a replica or a demoted primary.
listen vaultdr_pg_rw
  bind ${bindAddress}:${PG_PORTS.haproxyReadWrite}
${checks.replace('URI', '/primary')}

# PostgreSQL read-only: running replicas (GET /replica answers 200 on a streaming replica that is
# not tagged noloadbalance); the primary is left out so reads never add load to it.
listen vaultdr_pg_ro
  bind ${bindAddress}:${PG_PORTS.haproxyReadOnly}
  balance roundrobin
${checks.replace('URI', '/replica')}
`;
}

/** The docker-compose `ha` profile's nodes (service names, PostgreSQL's and Patroni's default ports). */
export const COMPOSE_PG_NODES = [1, 2, 3].map((i) => ({ name: `pg${i}`, host: `patroni-${i}`, pgPort: 5432, restPort: 8008 }));

// ---------------------------------------------------------------------------------------------
// Cluster state (infra/postgres/haHealth.ts, pointed at the harness)

export function nodeNamed(name: string): PgNode {
  const n = PG_NODES.find((x) => x.name === name);
  if (!n) throw new HaHarnessError(`no PostgreSQL node named ${name}`);
  return n;
}

/** The harness as a topology for infra/postgres (health checks, the drill driver). */
export function harnessTopology(): PgHaTopology {
  return {
    nodes: PG_NODES.map((n) => ({ ...n, host: '127.0.0.1' })),
    monitor: { user: 'postgres', password: pgSecrets().superuser, database: 'postgres' },
    maxLagBytes: PATRONI_DCS.maximum_lag_on_failover,
    synchronous: PATRONI_DCS.synchronous_mode,
  };
}

/**
 * The health checks' view of the harness (ha.postgresMonitorFile): its nodes and the application
 * role, which holds pg_monitor (enough for pg_stat_replication), not the superuser.
 */
export function monitorFile(): string {
  return path.join(pgHaDir(), 'monitor.json');
}

function writeMonitorFile(): void {
  const t = harnessTopology();
  const app = appConnection();
  fs.writeFileSync(monitorFile(), JSON.stringify({ ...t, monitor: { user: app.user, password: app.password, database: app.database } }, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(monitorFile(), 0o600);
}

export function postgresHealth(): Promise<PostgresHaHealth> {
  return postgresHaHealth(harnessTopology());
}

export async function patroniClusterOfHarness(): Promise<{ members: PatroniMember[] } | undefined> {
  return patroniCluster(harnessTopology().nodes);
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface PgUpOptions {
  log?: (line: string) => void;
}

export interface PgUpReport {
  results: { name: string; result: string; seconds: number }[];
  bootstrap: string[];
  seconds: number;
}

function writeNodeFiles(user: RunAs | undefined, s: PgSecrets): void {
  for (const node of PG_NODES) {
    const dir = nodeDir(node);
    fs.mkdirSync(path.join(dir, 'pglog'), { recursive: true });
    const cfg = path.join(dir, 'patroni.yml');
    fs.writeFileSync(cfg, patroniConfig(node, s), { mode: 0o600 });
    fs.chmodSync(cfg, 0o600);
    fs.chmodSync(dir, 0o700);
    if (user) {
      fs.chownSync(dir, user.uid, user.gid);
      fs.chownSync(cfg, user.uid, user.gid);
      fs.chownSync(path.join(dir, 'pglog'), user.uid, user.gid);
      if (fs.existsSync(dataDir(node))) fs.chownSync(dataDir(node), user.uid, user.gid);
    }
  }
}

/** The drill's database, user and table, created once through the primary. */
async function ensureAppSchema(primary: PgNode, s: PgSecrets): Promise<string[]> {
  const done: string[] = [];
  const c = new Client({ ...superuserConnection(primary), connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const role = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [PG_APP_USER]);
    if (role.rowCount === 0) {
      // Identifiers are constants; the password goes through a literal quoted by the server.
      const lit = (await c.query<{ q: string }>('SELECT quote_literal($1) AS q', [s.app])).rows[0]!.q;
      await c.query(`CREATE ROLE ${PG_APP_USER} LOGIN PASSWORD ${lit}`);
      await c.query(`GRANT pg_monitor TO ${PG_APP_USER}`);
      done.push(`created role ${PG_APP_USER}`);
    }
    const db = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [PG_DATABASE]);
    if (db.rowCount === 0) {
      await c.query(`CREATE DATABASE ${PG_DATABASE} OWNER ${PG_APP_USER}`);
      done.push(`created database ${PG_DATABASE}`);
    }
  } finally {
    await c.end();
  }
  const a = new Client({ ...appConnection(primary.pgPort), connectionTimeoutMillis: 5000 });
  a.on('error', () => undefined);
  await a.connect();
  try {
    await a.query('CREATE TABLE IF NOT EXISTS ha_drill (round text NOT NULL, seq integer NOT NULL, written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (round, seq))');
  } finally {
    await a.end();
  }
  return done;
}

/**
 * bootstrap.dcs only applies when a cluster is created; a harness created by an older version of
 * this file gets the current settings through Patroni's PATCH /config (every member reloads).
 */
async function reconcileDynamicConfig(primary: PgNode): Promise<string[]> {
  const url = `http://127.0.0.1:${primary.restPort}/config`;
  const res = await http(url);
  if (res?.status !== 200) throw new HaHarnessError(`Patroni ${primary.name} does not answer GET /config`);
  const cur = (await res.json()) as Record<string, unknown> & { postgresql?: { parameters?: Record<string, unknown> } };
  const changed = [
    ...Object.entries(PATRONI_DCS).filter(([k, v]) => cur[k] !== v).map(([k]) => k),
    ...Object.entries(PG_PARAMETERS).filter(([k, v]) => String(cur.postgresql?.parameters?.[k]) !== String(v)).map(([k]) => `postgresql.parameters.${k}`),
  ];
  if (changed.length === 0) return [];
  const patch = await http(url, { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...PATRONI_DCS, postgresql: { parameters: PG_PARAMETERS } }) }, 10_000);
  if (patch?.status !== 200) throw new HaHarnessError(`Patroni refused PATCH /config (HTTP ${patch?.status})`);
  return [`updated Patroni's dynamic configuration: ${changed.join(', ')}`];
}

/** Waits until the cluster is fully healthy (a primary, two streaming replicas, one synchronous). */
export async function waitPostgresHealthy(timeoutMs: number): Promise<PostgresHaHealth> {
  const deadline = Date.now() + timeoutMs;
  let h = await postgresHealth();
  while (!h.healthy && Date.now() < deadline) {
    await sleep(500);
    h = await postgresHealth();
  }
  if (!h.healthy) throw new HaHarnessError(`PostgreSQL HA cluster not healthy after ${timeoutMs / 1000}s: ${h.problems.join('; ')}`);
  return h;
}

export async function postgresUp(opts: PgUpOptions = {}): Promise<PgUpReport> {
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  ensurePatroni(log);
  for (const [bin, pkg] of [['etcd', 'etcd-server'], [path.join(PG_BIN, 'postgres'), 'postgresql-15']] as const) {
    const found = bin.startsWith('/') ? fs.existsSync(bin) : (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, bin)));
    if (!found) throw new HaHarnessError(`${bin} is not installed: run scripts/ensure-deps.sh --ha-tools (Debian ${pkg})`);
  }
  const user = runAs();
  const base = pgHaDir();
  fs.mkdirSync(base, { recursive: true });
  if (user) ensureTraversable(base, log);
  fs.chmodSync(base, 0o711);
  fs.mkdirSync(etcd.dir, { recursive: true });
  const s = pgSecrets();
  writeNodeFiles(user, s);

  const results: PgUpReport['results'] = [];
  const timed = async (name: string, fn: () => Promise<string>) => {
    const t = Date.now();
    const result = await fn();
    results.push({ name, result, seconds: (Date.now() - t) / 1000 });
    log(`${name}: ${result} (${((Date.now() - t) / 1000).toFixed(1)}s)`);
  };
  await timed('etcd', () => startProc(etcd));
  // The first node bootstraps the cluster (initdb) when etcd has no initialize key; the others
  // then clone it. On later runs all three start together.
  const initialized = await dcsInitialized();
  if (!initialized) {
    await timed('patroni pg1', () => startProc(patroniProcs[0]!));
    await Promise.all(patroniProcs.slice(1).map((p, i) => timed(`patroni ${PG_NODES[i + 1]!.name}`, () => startProc(p))));
  } else {
    await Promise.all(patroniProcs.map((p, i) => timed(`patroni ${PG_NODES[i]!.name}`, () => startProc(p))));
  }
  const bootstrap: string[] = [];
  const h = await waitPostgresHealthy(120_000);
  bootstrap.push(...(await ensureAppSchema(nodeNamed(h.primary!), s)));
  bootstrap.push(...(await reconcileDynamicConfig(nodeNamed(h.primary!))));
  writeMonitorFile();
  return { results, bootstrap, seconds: (Date.now() - t0) / 1000 };
}

async function dcsInitialized(): Promise<boolean> {
  const key = Buffer.from(`/vaultdr-ha/${PG_SCOPE}/initialize`).toString('base64');
  const res = await http(`http://127.0.0.1:${PG_PORTS.etcdClient}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key }) });
  if (res?.status !== 200) throw new HaHarnessError('etcd does not answer its v3 API');
  return ((await res.json()) as { count?: string }).count === '1';
}

export async function postgresDown(): Promise<{ name: string; result: string }[]> {
  const out: { name: string; result: string }[] = [];
  // Replicas first, so the primary's shutdown is not held by a switchover attempt.
  const cluster = await patroniClusterOfHarness().catch(() => undefined);
  const leader = cluster?.members.find((m) => m.role === 'leader')?.name;
  const order = [...PG_NODES].sort((a, b) => Number(a.name === leader) - Number(b.name === leader));
  for (const n of order) {
    const p = patroniProcs[PG_NODES.indexOf(n)]!;
    out.push({ name: `patroni ${n.name}`, result: await stopProc(p) });
    // Patroni stops PostgreSQL on SIGTERM; one it could not (or a postmaster orphaned by a
    // drill's SIGKILL of Patroni) is stopped here.
    const pm = postmasterPid(n);
    if (pm !== undefined) {
      process.kill(pm, 'SIGCONT');
      process.kill(pm, 'SIGQUIT');
      out.push({ name: `postgres ${n.name}`, result: 'stopped (orphaned postmaster)' });
    }
  }
  out.push({ name: 'etcd', result: await stopProc(etcd) });
  return out;
}

export interface PgProcStatus {
  name: string;
  pid?: number;
  running: boolean;
  healthy: boolean;
  log: string;
}

export async function postgresStatus(): Promise<{ processes: PgProcStatus[]; health: PostgresHaHealth }> {
  const procs = [etcd, ...patroniProcs];
  const names = ['etcd', ...PG_NODES.map((n) => `patroni ${n.name}`)];
  const processes = await Promise.all(
    procs.map(async (p, i) => {
      const pid = runningPid(p);
      return { name: names[i]!, pid, running: pid !== undefined, healthy: pid !== undefined && (await p.up()), log: logFile(p) };
    }),
  );
  return { processes, health: await postgresHealth() };
}

// ---------------------------------------------------------------------------------------------
// Process handles for fault injection (the drill driver, infra/postgres/haDriver.ts)

export function patroniPid(node: PgNode): number | undefined {
  return runningPid(patroniProcs[PG_NODES.indexOf(node)]!);
}

/** The node's running postmaster (first line of postmaster.pid), if any. */
export function postmasterPid(node: PgNode): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir(node), 'postmaster.pid'), 'utf8').split('\n')[0]);
    const cmd = cmdlineOf(pid);
    return cmd && cmd.includes('postgres') && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8')) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Direct children of `pid` (a postmaster's backends, walsenders, checkpointer ...), from /proc/<n>/stat. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may contain spaces, so parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** The harness's process handles, as the drill driver needs them (infra/postgres/haDriver.ts). */
export const harnessNodeControl: PgNodeControl = {
  patroniPid: (name) => patroniPid(nodeNamed(name)),
  postmasterPid: (name) => postmasterPid(nodeNamed(name)),
  childPids,
  startPatroni: async (name) => {
    await startPatroni(nodeNamed(name));
  },
};

/** postgresHaDriver options for the harness: HAProxy's read-write port, the app user, the harness's nodes. */
export function harnessDriverOptions(): PostgresHaDriverOptions {
  return { connection: appConnection(), topology: harnessTopology(), control: harnessNodeControl };
}

/** Starts one node's Patroni again (after a drill killed it); resolves once PostgreSQL runs. */
export async function startPatroni(node: PgNode): Promise<string> {
  const user = runAs();
  if (user) ensureTraversable(pgHaDir(), () => undefined);
  writeNodeFiles(user, pgSecrets());
  return startProc(patroniProcs[PG_NODES.indexOf(node)]!);
}
