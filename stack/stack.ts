// The local stack: the real servers vault-dr needs, as plain processes on 127.0.0.1, with logs,
// data and generated credentials under one ignored folder (.stack/, or $VAULTDR_STACK_DIR).
// `up` is idempotent: a component already healthy is left alone; `down` stops what `up` started.
import { spawn } from 'node:child_process';
import { devServerSearchAttributeArgs, VAULT_DR_SEARCH_ATTRIBUTES } from '../common/searchAttributes';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { applyBucket, type BucketSetting } from '../infra/store/bucketPolicy';
import { Connection } from '@temporalio/client';
import * as os from 'node:os';
import { temporal as temporalProto } from '@temporalio/proto';
import { ensureKeyringFile } from '../infra/temporal/codec';
import { WORKER_ROLES, roleQueue, type WorkerRole } from '../common/roles';
import { scopeConfig } from '../workers/roles';
import { initKeys } from '../infra/crypto/escrow';
import { ensureTools, toolPaths, type InstallReport } from './tools';
import { renderAlertmanagerConfig, renderPrometheusConfig } from './monitoring';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

export const PORTS = {
  temporal: 7233,
  temporalUi: 8233,
  bao: 8200,
  baoCluster: 8201,
  s3: 8333,
  weedMaster: 19333,
  weedVolume: 18080,
  weedFiler: 18888,
  smtp: 1025,
  mailpitHttp: 8025,
  codec: 8089,
  shareIntake: 8090,
  saasSink: 8099,
  prometheus: 9090,
  alertmanager: 9093,
  workerMetrics: 9464,
  notifyMetrics: 9465,
} as const;

export const BACKUP_BUCKET = 'vault-dr-backups';
/** SeaweedFS 4.48 answers NotImplemented to PutPublicAccessBlock; it has no public ACLs to block. */
export const STACK_BUCKET_REQUIREMENTS: BucketSetting[] = ['encryption', 'versioning', 'objectLock'];
/** Object-lock default retention (GOVERNANCE) of the stack's bucket: short, so a dev stack's data dir stays small. */
export const STACK_OBJECT_LOCK_DAYS = 2;

export function stackDir(): string {
  return path.resolve(process.env.VAULTDR_STACK_DIR ?? path.join(PROJECT_ROOT, '.stack'));
}

export class StackError extends Error {
  override name = 'StackError';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function writeSecret(file: string, content: string): void {
  fs.writeFileSync(file, content, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

// ---------------------------------------------------------------------------------------------
// Processes

interface Component {
  name: string;
  /** For components from Debian packages installed by scripts/ensure-deps.sh: the executable to look for. */
  requires?: string;
  /** Substring of the process command line, guards against a recycled pid. */
  binary: string;
  command(): { cmd: string; args: string[] };
  healthy(): Promise<boolean>;
  startTimeoutMs: number;
}

function pidFile(name: string): string {
  return path.join(stackDir(), name, `${name}.pid`);
}

function logFile(name: string): string {
  return path.join(stackDir(), name, `${name}.log`);
}

function runningPid(c: Component): number | undefined {
  const file = pidFile(c.name);
  if (!fs.existsSync(file)) return undefined;
  const pid = Number(fs.readFileSync(file, 'utf8').trim());
  try {
    process.kill(pid, 0);
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(c.binary) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function logTail(name: string, lines = 8): string {
  try {
    return fs.readFileSync(logFile(name), 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function startComponent(c: Component, env: NodeJS.ProcessEnv = process.env): Promise<'started' | 'already running'> {
  if (runningPid(c) !== undefined && (await c.healthy())) return 'already running';
  if (runningPid(c) === undefined && (await c.healthy())) {
    throw new StackError(`${c.name}: its port is already served by a process this stack did not start; stop it or change the port`);
  }
  fs.mkdirSync(path.dirname(pidFile(c.name)), { recursive: true });
  let pid = runningPid(c);
  if (pid === undefined) {
    const { cmd, args } = c.command();
    const out = fs.openSync(logFile(c.name), 'a');
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out], cwd: path.dirname(pidFile(c.name)), env });
    fs.closeSync(out);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new StackError(`${c.name}: cannot start ${cmd}: ${err.message}`)));
    });
    pid = child.pid!;
    child.unref();
    fs.writeFileSync(pidFile(c.name), String(pid));
  }
  const deadline = Date.now() + c.startTimeoutMs;
  while (Date.now() < deadline) {
    // A server that execs its real binary (a wrapper script) shows no matching cmdline for a moment:
    // only a process that is gone (or a zombie) has exited.
    if (runningPid(c) === undefined && !alive(pid)) {
      throw new StackError(`${c.name}: exited during start-up; last log lines (${logFile(c.name)}):\n${logTail(c.name)}`);
    }
    if (await c.healthy()) return 'started';
    await sleep(250);
  }
  throw new StackError(`${c.name}: not healthy after ${c.startTimeoutMs / 1000}s; last log lines (${logFile(c.name)}):\n${logTail(c.name)}`);
}

async function stopComponent(c: Component): Promise<'stopped' | 'not running'> {
  const pid = runningPid(c);
  if (pid === undefined) {
    fs.rmSync(pidFile(c.name), { force: true });
    return 'not running';
  }
  try {
    process.kill(-pid, 'SIGTERM'); // the process group: servers that fork helpers stop with them
  } catch {
    process.kill(pid, 'SIGTERM');
  }
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && runningPid(c) !== undefined) await sleep(200);
  if (runningPid(c) !== undefined) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      process.kill(pid, 'SIGKILL');
    }
  }
  fs.rmSync(pidFile(c.name), { force: true });
  return 'stopped';
}

async function httpOk(url: string, init: RequestInit = {}): Promise<Response | undefined> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(2000) });
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Components

function s3Credentials(): { accessKeyId: string; secretAccessKey: string } {
  return readJson(path.join(stackDir(), 'seaweedfs', 'credentials.json'));
}

function s3Client(): S3Client {
  return new S3Client({
    endpoint: `http://127.0.0.1:${PORTS.s3}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3Credentials(),
    maxAttempts: 1,
  });
}

/** Custom search attributes the workflows upsert; the Web UI lists and filters by them. */
export const SEARCH_ATTRIBUTES: Record<string, 'Keyword'> = Object.fromEntries(VAULT_DR_SEARCH_ATTRIBUTES.map((k) => [k.name, 'Keyword']));

/** `temporal server start-dev` arguments; tests start a throwaway server with other ports. */
export function temporalDevServerArgs(o: { port: number; uiPort: number; dbFile: string }): string[] {
  return [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(o.port),
    '--ui-port', String(o.uiPort),
    '--db-filename', o.dbFile,
    '--ui-codec-endpoint', `http://127.0.0.1:${PORTS.codec}`,
    // Registered at start so a fresh server accepts the workflows' upserts (a server started
    // before this flag existed gets them from registerSearchAttributes).
    ...devServerSearchAttributeArgs(),
    '--log-level', 'warn',
  ];
}

/** Adds the missing SEARCH_ATTRIBUTES to a running server (idempotent); returns the names it added. */
export async function registerSearchAttributes(conn: Connection, namespace: string): Promise<string[]> {
  const { IndexedValueType } = temporalProto.api.enums.v1;
  const existing = await conn.operatorService.listSearchAttributes({ namespace });
  const missing = Object.keys(SEARCH_ATTRIBUTES).filter((name) => !(name in (existing.customAttributes ?? {})));
  if (missing.length === 0) return [];
  // Every attribute is a Keyword today; a new type needs its IndexedValueType here.
  await conn.operatorService.addSearchAttributes({ namespace, searchAttributes: Object.fromEntries(missing.map((name) => [name, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])) });
  return missing;
}

const temporal: Component = {
  name: 'temporal',
  binary: 'temporal',
  startTimeoutMs: 90_000,
  command: () => ({
    cmd: toolPaths().temporal,
    args: temporalDevServerArgs({ port: PORTS.temporal, uiPort: PORTS.temporalUi, dbFile: path.join(stackDir(), 'temporal', 'temporal.db') }),
  }),
  async healthy() {
    try {
      const conn = await Connection.connect({ address: `127.0.0.1:${PORTS.temporal}`, connectTimeout: 2000 });
      try {
        const res = await conn.healthService.check({});
        return res.status === 1; // SERVING
      } finally {
        await conn.close();
      }
    } catch {
      return false;
    }
  },
};

const openbao: Component = {
  name: 'openbao',
  binary: 'bao',
  startTimeoutMs: 30_000,
  command: () => ({
    cmd: toolPaths().bao,
    args: ['server', `-config=${path.join(PROJECT_ROOT, 'deploy', 'openbao', 'openbao.hcl')}`, `-config=${path.join(stackDir(), 'openbao', 'local.hcl')}`],
  }),
  async healthy() {
    // Any JSON answer from sys/health means the server is up (it may still be sealed/uninitialised).
    const res = await httpOk(`http://127.0.0.1:${PORTS.bao}/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200`);
    return res?.status === 200;
  },
};

const seaweedfs: Component = {
  name: 'seaweedfs',
  binary: 'weed',
  startTimeoutMs: 60_000,
  command: () => ({
    cmd: toolPaths().weed,
    args: [
      'server',
      '-ip=127.0.0.1', '-ip.bind=127.0.0.1',
      `-dir=${path.join(stackDir(), 'seaweedfs', 'data')}`,
      `-master.port=${PORTS.weedMaster}`, `-master.port.grpc=${PORTS.weedMaster + 10000}`,
      '-master.volumeSizeLimitMB=1024',
      `-volume.port=${PORTS.weedVolume}`, `-volume.port.grpc=${PORTS.weedVolume + 10000}`, '-volume.max=50',
      '-filer', `-filer.port=${PORTS.weedFiler}`, `-filer.port.grpc=${PORTS.weedFiler + 10000}`,
      '-s3', `-s3.port=${PORTS.s3}`, `-s3.port.grpc=${PORTS.s3 + 10000}`, '-s3.port.iceberg=0',
      `-s3.config=${path.join(stackDir(), 'seaweedfs', 's3.json')}`,
    ],
  }),
  async healthy() {
    try {
      await s3Client().send(new ListBucketsCommand({}));
      return true;
    } catch {
      return false;
    }
  },
};

const mailpit: Component = {
  name: 'mailpit',
  binary: 'mailpit',
  startTimeoutMs: 30_000,
  command: () => ({
    cmd: toolPaths().mailpit,
    args: [
      '--listen', `127.0.0.1:${PORTS.mailpitHttp}`,
      '--smtp', `127.0.0.1:${PORTS.smtp}`,
      '--database', path.join(stackDir(), 'mailpit', 'mailpit.db'),
      '--smtp-auth-accept-any', '--smtp-auth-allow-insecure',
      '--disable-version-check',
    ],
  }),
  async healthy() {
    const res = await httpOk(`http://127.0.0.1:${PORTS.mailpitHttp}/api/v1/info`);
    return res?.status === 200;
  },
};

export const COMPONENTS: Component[] = [temporal, openbao, seaweedfs, mailpit];

/** The local Slack/PagerDuty stand-in (stack/saasSink.ts): alerts to them can be read back at /api/received. */
const saasSink: Component = {
  name: 'saas-sink',
  binary: path.join('lib', 'stack', 'saasSink.js'),
  startTimeoutMs: 15_000,
  command: () => ({ cmd: process.execPath, args: [path.join(PROJECT_ROOT, 'lib', 'stack', 'saasSink.js'), `127.0.0.1:${PORTS.saasSink}`] }),
  async healthy() {
    return (await httpOk(`http://127.0.0.1:${PORTS.saasSink}/health`))?.status === 200;
  },
};

const prometheus: Component = {
  name: 'prometheus',
  binary: 'prometheus',
  requires: 'prometheus',
  startTimeoutMs: 60_000,
  command: () => ({
    cmd: 'prometheus',
    args: [`--config.file=${path.join(stackDir(), 'prometheus', 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(stackDir(), 'prometheus', 'data')}`, `--web.listen-address=127.0.0.1:${PORTS.prometheus}`, '--storage.tsdb.retention.time=15d'],
  }),
  async healthy() {
    return (await httpOk(`http://127.0.0.1:${PORTS.prometheus}/-/ready`))?.status === 200;
  },
};

const alertmanager: Component = {
  name: 'alertmanager',
  binary: 'alertmanager',
  requires: 'prometheus-alertmanager',
  startTimeoutMs: 30_000,
  command: () => ({
    cmd: 'prometheus-alertmanager',
    args: [`--config.file=${path.join(stackDir(), 'alertmanager', 'alertmanager.yml')}`, `--storage.path=${path.join(stackDir(), 'alertmanager', 'data')}`, `--web.listen-address=127.0.0.1:${PORTS.alertmanager}`, '--cluster.listen-address='],
  }),
  async healthy() {
    return (await httpOk(`http://127.0.0.1:${PORTS.alertmanager}/-/ready`))?.status === 200;
  },
};

/** Monitoring: started after OpenBao is bootstrapped (Prometheus needs its metrics token). */
export const MONITORING_COMPONENTS: Component[] = [saasSink, alertmanager, prometheus];

function installed(c: Component): boolean {
  if (!c.requires) return true;
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, c.requires!)));
}

const STACK_NAMESPACE = 'default';
const STACK_TASK_QUEUE = 'vault-dr';

/** Whether the process `pid` polls `role`'s task queue (Temporal lists pollers as `<pid>@<host>`). */
async function pollsRoleQueue(role: WorkerRole, pid: number | undefined): Promise<boolean> {
  if (pid === undefined) return false;
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address: `127.0.0.1:${PORTS.temporal}`, connectTimeout: 2000 });
    const r = await connection.workflowService.describeTaskQueue({
      namespace: STACK_NAMESPACE,
      taskQueue: { name: roleQueue(STACK_TASK_QUEUE, role), kind: 1 },
      taskQueueType: role === 'workflows' ? 1 : 2, // TASK_QUEUE_TYPE_WORKFLOW : TASK_QUEUE_TYPE_ACTIVITY
    });
    return (r.pollers ?? []).some((p) => p.identity === `${pid}@${os.hostname()}`);
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

/**
 * The vault-dr workers, one process per role (docs/worker-roles.md), each with its own config file
 * holding only that role's secrets, its own pid file and log. Healthy = this very pid polls its queue.
 */
const workerComponents: Component[] = WORKER_ROLES.map((role) => {
  const c: Component = {
    name: `worker-${role}`,
    binary: path.join('lib', 'workers', 'main.js'),
    startTimeoutMs: 60_000,
    command: () => ({ cmd: process.execPath, args: [path.join(PROJECT_ROOT, 'lib', 'workers', 'main.js')] }),
    healthy: () => pollsRoleQueue(role, runningPid(c)),
  };
  return c;
});

/** The single all-roles worker of earlier stacks: stopped when found, never started. */
const legacyWorker: Component = { ...workerComponents[0]!, name: 'worker', healthy: async () => false };

export function roleConfigFile(role: WorkerRole): string {
  return path.join(stackDir(), `worker-${role}.json`);
}

/** Stops one server (tests use it to simulate an outage); `startServer` brings it back. */
export async function stopServer(name: string): Promise<string> {
  return stopComponent(componentNamed(name));
}

export async function startServer(name: string): Promise<string> {
  return startComponent(componentNamed(name));
}

function componentNamed(name: string): Component {
  const c = [...COMPONENTS, ...MONITORING_COMPONENTS].find((x) => x.name === name);
  if (!c) throw new StackError(`no stack component named ${name}`);
  return c;
}

/** Starts every role's worker process (each from its own config; VAULTDR_WORKER_ROLES would override it, so it is removed). */
export async function startWorker(): Promise<string> {
  const { VAULTDR_WORKER_ROLES: _ignored, ...env } = process.env;
  const results = await Promise.all(
    WORKER_ROLES.map(async (role, i) => `${role} ${await startComponent(workerComponents[i]!, { ...env, VAULTDR_CONFIG: roleConfigFile(role) })}`),
  );
  return results.join(', ');
}

export async function stopWorker(): Promise<string> {
  const results = await Promise.all([legacyWorker, ...workerComponents].map(async (c) => ({ name: c.name, result: await stopComponent(c) })));
  return results.filter((r) => r.name !== 'worker' || r.result !== 'not running').map((r) => `${r.name.replace(/^worker-/, '')} ${r.result}`).join(', ');
}

// ---------------------------------------------------------------------------------------------
// Generated material (credentials, server configs)

function prepareFiles(): void {
  const dir = stackDir();
  for (const c of COMPONENTS) fs.mkdirSync(path.join(dir, c.name), { recursive: true });
  // Private to its owner, except a traverse bit (x, not r) that the HA harness gives other users:
  // its PostgreSQL nodes run as `postgres` under <stack>/ha, and a stack up that took that bit away
  // would cut every running node off from its data directory.
  fs.chmodSync(dir, 0o700 | (fs.statSync(dir).mode & 0o011));

  const creds = path.join(dir, 'seaweedfs', 'credentials.json');
  if (!fs.existsSync(creds)) {
    writeSecret(creds, JSON.stringify({ accessKeyId: `VAULTDR${crypto.randomBytes(6).toString('hex').toUpperCase()}`, secretAccessKey: crypto.randomBytes(24).toString('base64url') }, null, 2));
  }
  // SSE-S3 (bucket default encryption) needs a key-encryption key; weed reads ./security.toml.
  const security = path.join(dir, 'seaweedfs', 'security.toml');
  if (!fs.existsSync(security)) writeSecret(security, `[s3.sse]\nkek = "${crypto.randomBytes(32).toString('hex')}"\n`);
  const { accessKeyId, secretAccessKey } = s3Credentials();
  writeSecret(
    path.join(dir, 'seaweedfs', 's3.json'),
    JSON.stringify({ identities: [{ name: 'vault-dr', credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }], actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'] }] }, null, 2),
  );

  fs.writeFileSync(
    path.join(dir, 'openbao', 'local.hcl'),
    `# Written by the local stack (stack/stack.ts); merged with deploy/openbao/openbao.hcl.
listener "tcp" {
  address         = "127.0.0.1:${PORTS.bao}"
  cluster_address = "127.0.0.1:${PORTS.baoCluster}"
  tls_disable     = true
}
storage "raft" {
  path    = "${path.join(dir, 'openbao', 'raft')}"
  node_id = "local-1"
}
api_addr     = "http://127.0.0.1:${PORTS.bao}"
cluster_addr = "http://127.0.0.1:${PORTS.baoCluster}"
`,
  );
  fs.mkdirSync(path.join(dir, 'openbao', 'raft'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'seaweedfs', 'data'), { recursive: true });

  const codecDir = path.join(dir, 'codec');
  fs.mkdirSync(codecDir, { recursive: true });
  ensureKeyringFile(path.join(codecDir, 'keys.json'));
  const tokens = path.join(codecDir, 'tokens');
  if (!fs.existsSync(tokens)) writeSecret(tokens, `${crypto.randomBytes(24).toString('base64url')}\n`);
  // The custodian share intake has tokens of its own: a custodian's token must not decode history.
  fs.mkdirSync(path.join(dir, 'intake'), { recursive: true, mode: 0o700 });
  const intakeTokens = path.join(dir, 'intake', 'tokens');
  if (!fs.existsSync(intakeTokens)) writeSecret(intakeTokens, `${crypto.randomBytes(24).toString('base64url')}\n`);
}

/** The worker/CLI config for this stack; paths relative to the file. */
function writeConfig(): string {
  const file = path.join(stackDir(), 'vaultdr.json');
  const cfg = {
    temporal: { address: `127.0.0.1:${PORTS.temporal}`, namespace: STACK_NAMESPACE, taskQueue: STACK_TASK_QUEUE },
    vault: { address: `http://127.0.0.1:${PORTS.bao}`, roleIdFile: 'openbao/worker-role-id', secretIdFile: 'openbao/worker-secret-id' },
    s3: { endpoint: `http://127.0.0.1:${PORTS.s3}`, region: 'us-east-1', bucket: BACKUP_BUCKET, forcePathStyle: true, credentialsFile: 'seaweedfs/credentials.json', adminCredentialsFile: 'seaweedfs/credentials.json' },
    backup: {
      recipientsFile: 'keys/recipients.json',
      // Dev custody: the validation key sits beside the stack for `vaultdr backup verify`;
      // a production backup worker's config has public keys only.
      validationKeyFile: 'keys/validation-key.json',
      // SeaweedFS does not implement PutPublicAccessBlock (it has no public ACLs to block).
      bucketRequirements: STACK_BUCKET_REQUIREMENTS,
      objectLockDays: STACK_OBJECT_LOCK_DAYS,
    },
    restore: {
      baoBinary: toolPaths().bao,
      stagingDir: 'staging',
      // Dev custody: the local cluster's unseal shares, so weekly validation can unseal staging.
      unsealSharesFile: 'openbao/init.json',
      validatorRoleIdFile: 'openbao/validator-role-id',
      validatorSecretIdFile: 'openbao/validator-secret-id',
      checkPaths: ['secret/data/app/db'],
      shareIntakeListen: `127.0.0.1:${PORTS.shareIntake}`,
      shareIntakeTokensFile: 'intake/tokens',
    },
    // Emergency rotation (restore role): the rotator token; `{}` revokes incident-issued tokens.
    rotation: { tokenFile: 'openbao/rotator-token', defaultScopes: { 'token-lease': 'auth/token/create/vaultdr-incident' } },
    smtp: { host: '127.0.0.1', port: PORTS.smtp, secure: false, from: 'vault-dr@localhost', alertTo: ['ops@localhost'] },
    // alertDeliveryTest with confirm "inbox" reads receipts here: Mailpit's API and the Slack/PagerDuty stand-in.
    alerts: { inbox: { mailpitUrl: `http://127.0.0.1:${PORTS.mailpitHttp}`, saasSinkUrl: `http://127.0.0.1:${PORTS.saasSink}` } },
    codec: {
      keysFile: 'codec/keys.json',
      tokensFile: 'codec/tokens',
      listen: `127.0.0.1:${PORTS.codec}`,
      anonymousLoopbackOrigins: [`http://localhost:${PORTS.temporalUi}`, `http://127.0.0.1:${PORTS.temporalUi}`],
    },
  };
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2) + '\n');
  // One config per worker role, as each role's host would have it: only that role's secrets.
  for (const role of WORKER_ROLES) {
    const scoped = scopeConfig(cfg, [role]).cfg as typeof cfg & { worker?: { roles: WorkerRole[] }; metrics?: { listen: string } };
    scoped.worker = { roles: [role] };
    // Each role is its own process on this host: the notify role serves its counters on a port of its own.
    if (role === 'notify') scoped.metrics = { listen: `127.0.0.1:${PORTS.notifyMetrics}` };
    fs.writeFileSync(roleConfigFile(role), JSON.stringify(scoped, null, 2) + '\n');
  }
  return file;
}

// ---------------------------------------------------------------------------------------------
// OpenBao bootstrap: init (5 shares, threshold 3), unseal, KV v2, worker policy + AppRole.

interface InitFile {
  keys_base64: string[];
  root_token: string;
}

async function bao(method: string, p: string, token?: string, body?: unknown): Promise<{ status: number; json: any }> {
  // Generous: on a loaded 2-core machine (npm ci, a build) raft's first fsyncs after init and
  // unseal have taken over 10 s; a timeout names the request instead of a bare abort.
  const timeoutMs = p === 'sys/init' && method === 'POST' ? 120_000 : 60_000;
  const res = await fetch(`http://127.0.0.1:${PORTS.bao}/v1/${p}`, {
    method,
    headers: { ...(token ? { 'X-Vault-Token': token } : {}), 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  }).catch((err: Error) => {
    throw new StackError(`openbao: ${method} /v1/${p}: ${err.name === 'TimeoutError' ? `no answer in ${timeoutMs / 1000}s` : err.message}`);
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : {};
  if (res.status >= 400 && !(method === 'GET' && res.status === 404)) {
    // Error bodies of these endpoints carry messages only, never secrets.
    throw new StackError(`openbao: ${method} /v1/${p}: HTTP ${res.status}: ${(json.errors ?? []).join('; ')}`);
  }
  return { status: res.status, json };
}

export function baoInitFile(): string {
  return path.join(stackDir(), 'openbao', 'init.json');
}

export function rootToken(): string {
  return readJson<InitFile>(baoInitFile()).root_token;
}

/** Unseals with the first `threshold` stored dev shares; used by `up` and by tests that seal. */
export async function unsealBao(): Promise<void> {
  const init = readJson<InitFile>(baoInitFile());
  for (const key of init.keys_base64.slice(0, 3)) {
    const { json } = await bao('POST', 'sys/unseal', undefined, { key });
    if (!json.sealed) break;
  }
  const deadline = Date.now() + 30_000;
  // A single raft node needs a moment after unseal to elect itself leader.
  while (Date.now() < deadline) {
    const { json } = await bao('GET', 'sys/health?standbyok=true&sealedcode=200&uninitcode=200');
    if (!json.sealed && !json.standby) return;
    await sleep(250);
  }
  throw new StackError('openbao: unsealed but no active node after 30s');
}

async function bootstrapBao(): Promise<string[]> {
  const done: string[] = [];
  const { json: status } = await bao('GET', 'sys/init');
  if (!status.initialized) {
    if (fs.existsSync(baoInitFile())) throw new StackError(`openbao: server is uninitialised but ${baoInitFile()} exists; run stack:down and remove ${stackDir()} to start over`);
    const { json } = await bao('POST', 'sys/init', undefined, { secret_shares: 5, secret_threshold: 3 });
    // Dev-only custody: shares and root token in a 0600 file, never on stdout.
    writeSecret(baoInitFile(), JSON.stringify({ keys_base64: json.keys_base64, root_token: json.root_token }, null, 2));
    done.push('initialised (5 shares, threshold 3)');
  }
  const { json: health } = await bao('GET', 'sys/health?standbyok=true&sealedcode=200&uninitcode=200');
  if (health.sealed || health.standby) {
    await unsealBao();
    done.push('unsealed');
  }
  const token = rootToken();
  const mounts = (await bao('GET', 'sys/mounts', token)).json;
  if (!mounts.data?.['secret/'] && !mounts['secret/']) {
    await bao('POST', 'sys/mounts/secret', token, { type: 'kv', options: { version: '2' } });
    done.push('mounted kv-v2 at secret/');
  }
  const policy = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'openbao', 'policies', 'vaultdr-worker.hcl'), 'utf8');
  await bao('PUT', 'sys/policies/acl/vaultdr-worker', token, { policy });
  const auths = (await bao('GET', 'sys/auth', token)).json;
  if (!auths.data?.['approle/'] && !auths['approle/']) {
    await bao('POST', 'sys/auth/approle', token, { type: 'approle' });
    done.push('enabled approle');
  }
  await bao('POST', 'auth/approle/role/vaultdr-worker', token, { token_policies: ['vaultdr-worker'], token_ttl: '1h', token_max_ttl: '4h', secret_id_ttl: '0' });
  const roleId = (await bao('GET', 'auth/approle/role/vaultdr-worker/role-id', token)).json.data.role_id as string;
  const roleIdFile = path.join(stackDir(), 'openbao', 'worker-role-id');
  const secretIdFile = path.join(stackDir(), 'openbao', 'worker-secret-id');
  writeSecret(roleIdFile, roleId + '\n');
  // The restore-validator role (restored with the data) and a demo tenant secret it must read.
  const validatorPolicy = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'openbao', 'policies', 'vaultdr-restore-validator.hcl'), 'utf8');
  await bao('PUT', 'sys/policies/acl/vaultdr-restore-validator', token, { policy: validatorPolicy });
  await bao('POST', 'auth/approle/role/vaultdr-restore-validator', token, { token_policies: ['vaultdr-restore-validator'], token_ttl: '15m', token_max_ttl: '1h', secret_id_ttl: '0' });
  const validatorRoleId = (await bao('GET', 'auth/approle/role/vaultdr-restore-validator/role-id', token)).json.data.role_id as string;
  writeSecret(path.join(stackDir(), 'openbao', 'validator-role-id'), validatorRoleId + '\n');
  const validatorSecretFile = path.join(stackDir(), 'openbao', 'validator-secret-id');
  if (!fs.existsSync(validatorSecretFile)) {
    const sid = (await bao('POST', 'auth/approle/role/vaultdr-restore-validator/secret-id', token, {})).json.data.secret_id as string;
    writeSecret(validatorSecretFile, sid + '\n');
    done.push('issued restore-validator AppRole secret-id');
  }
  if ((await bao('GET', 'secret/data/app/db', token)).status === 404) {
    await bao('POST', 'secret/data/app/db', token, { data: { username: 'app', password: crypto.randomBytes(18).toString('base64url') } });
    done.push('seeded demo tenant secret secret/data/app/db');
  }
  let secretOk = false;
  if (fs.existsSync(secretIdFile)) {
    const res = await fetch(`http://127.0.0.1:${PORTS.bao}/v1/auth/approle/login`, {
      method: 'POST',
      body: JSON.stringify({ role_id: roleId, secret_id: fs.readFileSync(secretIdFile, 'utf8').trim() }),
    });
    secretOk = res.status === 200;
  }
  if (!secretOk) {
    const secretId = (await bao('POST', 'auth/approle/role/vaultdr-worker/secret-id', token, {})).json.data.secret_id as string;
    writeSecret(secretIdFile, secretId + '\n');
    done.push('issued worker AppRole secret-id');
  }
  await ensureRotatorToken();
  if (await ensureDrillCredential()) done.push('issued the drill AppRole secret-id (vaultdr-drill)');
  return done;
}

/**
 * The credential-compromise drill's credential (drills.credentialScope's default): AppRole role
 * vaultdr-drill (default policy only, short tokens) and a secret-id of it in KV at
 * secret/vault-dr/credentials/approle-secret-id/vaultdr-drill, where rotateCredential delivers the
 * rotated one. Idempotent: a stored secret-id that still logs in is kept. Returns whether it issued one.
 */
export async function ensureDrillCredential(role = 'vaultdr-drill'): Promise<boolean> {
  const token = rootToken();
  await bao('POST', `auth/approle/role/${role}`, token, { token_policies: ['default'], token_ttl: '5m', token_max_ttl: '15m', secret_id_ttl: '0' });
  const roleId = (await bao('GET', `auth/approle/role/${role}/role-id`, token)).json.data.role_id as string;
  const kv = `secret/data/vault-dr/credentials/approle-secret-id/${role}`;
  const cur = (await bao('GET', kv, token)).json?.data?.data as { role_id?: string; secret_id?: string } | undefined;
  if (cur?.role_id && cur.secret_id) {
    // A refused login (the stored secret-id was destroyed) throws here: issue a new one below.
    const login = await bao('POST', 'auth/approle/login', undefined, { role_id: cur.role_id, secret_id: cur.secret_id }).catch(() => ({ status: 400, json: {} as any }));
    if (login.status === 200) {
      await bao('POST', 'auth/token/revoke-self', login.json.auth.client_token as string).catch(() => undefined);
      return false;
    }
  }
  const secretId = (await bao('POST', `auth/approle/role/${role}/secret-id`, token, {})).json.data.secret_id as string;
  await bao('POST', kv, token, { data: { role_id: roleId, secret_id: secretId } });
  return true;
}

/**
 * The rotator token (policy vaultdr-rotator) the restore role uses for emergency rotation, in
 * openbao/rotator-token. Idempotent: kept while it still logs in. An orphan token from
 * auth/token/create-orphan, so no rotation of auth/token/create/<role> leases revokes it.
 */
export async function ensureRotatorToken(): Promise<string> {
  const token = rootToken();
  const policy = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'openbao', 'policies', 'vaultdr-rotator.hcl'), 'utf8');
  await bao('PUT', 'sys/policies/acl/vaultdr-rotator', token, { policy });
  const file = path.join(stackDir(), 'openbao', 'rotator-token');
  if (fs.existsSync(file)) {
    const res = await fetch(`http://127.0.0.1:${PORTS.bao}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': fs.readFileSync(file, 'utf8').trim() } });
    if (res.status === 200) return file;
  }
  const { json } = await bao('POST', 'auth/token/create-orphan', token, { policies: ['vaultdr-rotator'], no_default_policy: false, ttl: '768h', display_name: 'vaultdr-rotator' });
  writeSecret(file, (json.auth.client_token as string) + '\n');
  return file;
}

/** The Slack/PagerDuty stand-in's addresses and the routing key, shared by the app's channel secrets and Alertmanager. */
function localChannels(): { slackWebhookUrl: string; pagerdutyUrl: string; routingKey: string } {
  const keyFile = path.join(stackDir(), 'alertmanager', 'pagerduty_routing_key');
  fs.mkdirSync(path.dirname(keyFile), { recursive: true });
  if (!fs.existsSync(keyFile)) writeSecret(keyFile, crypto.randomBytes(16).toString('hex'));
  return {
    slackWebhookUrl: `http://127.0.0.1:${PORTS.saasSink}/services/T0LOCAL/B0LOCAL/localstack`,
    pagerdutyUrl: `http://127.0.0.1:${PORTS.saasSink}/v2/enqueue`,
    routingKey: fs.readFileSync(keyFile, 'utf8').trim(),
  };
}

/**
 * Points the app's Slack and PagerDuty channels (KV secret/vault-dr/alerting/{slack,pagerduty})
 * at the local stand-in. Tests that reconfigure the channels call it to put the stack back.
 */
export async function configureLocalAlertChannels(): Promise<void> {
  const token = rootToken();
  const ch = localChannels();
  await bao('POST', 'secret/data/vault-dr/alerting/slack', token, { data: { webhook_url: ch.slackWebhookUrl } });
  await bao('POST', 'secret/data/vault-dr/alerting/pagerduty', token, { data: { routing_key: ch.routingKey, events_url: ch.pagerdutyUrl } });
}

/** Two made-up tenants (example domains) so a training incident has someone to notify on the local stack. */
const TRAINING_TENANTS = [
  { id: 'acme', name: 'Acme Health GmbH (training)', noticeEmail: 'privacy@acme.example', secretPaths: ['secret/data/tenants/acme/db'], jurisdictions: ['EU'] },
  { id: 'globex', name: 'Globex Inc. (training)', noticeEmail: 'dpo@globex.example', secretPaths: ['secret/data/tenants/globex/api'], jurisdictions: ['US-CA'] },
];

/** Prometheus's OpenBao metrics token (policy: read sys/metrics), Prometheus and Alertmanager configs. */
async function prepareMonitoring(): Promise<string[]> {
  const done: string[] = [];
  const token = rootToken();
  const promDir = path.join(stackDir(), 'prometheus');
  const amDir = path.join(stackDir(), 'alertmanager');
  for (const d of [promDir, amDir, path.join(stackDir(), 'saas-sink')]) fs.mkdirSync(d, { recursive: true });
  if ((await bao('GET', 'secret/data/vault-dr/alerting/slack', token)).status === 404) {
    await configureLocalAlertChannels();
    done.push('pointed the Slack and PagerDuty alert channels at the local stand-in (saas-sink)');
  }
  // breachResponse started from the Web UI with {} reads this registry; its notices go to Mailpit in training.
  if ((await bao('GET', 'secret/data/vault-dr/tenants', token)).status === 404) {
    await bao('POST', 'secret/data/vault-dr/tenants', token, { data: { tenants: TRAINING_TENANTS } });
    done.push('seeded a training tenant registry for breachResponse (secret/vault-dr/tenants)');
  }
  await bao('PUT', 'sys/policies/acl/prometheus-metrics', token, { policy: 'path "sys/metrics" {\n  capabilities = ["read"]\n}\n' });
  const tokenFile = path.join(promDir, 'openbao-token');
  let valid = false;
  if (fs.existsSync(tokenFile)) {
    const res = await fetch(`http://127.0.0.1:${PORTS.bao}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': fs.readFileSync(tokenFile, 'utf8').trim() } });
    valid = res.status === 200;
  }
  if (!valid) {
    const { json } = await bao('POST', 'auth/token/create-orphan', token, { policies: ['prometheus-metrics'], no_default_policy: true, ttl: '768h', display_name: 'prometheus' });
    writeSecret(tokenFile, json.auth.client_token);
    done.push('issued the Prometheus metrics token (policy prometheus-metrics)');
  }
  fs.writeFileSync(
    path.join(promDir, 'prometheus.yml'),
    renderPrometheusConfig({ workerTargets: [`127.0.0.1:${PORTS.workerMetrics}`, `127.0.0.1:${PORTS.notifyMetrics}`], openbaoTarget: `127.0.0.1:${PORTS.bao}`, openbaoTokenFile: tokenFile, alertmanager: `127.0.0.1:${PORTS.alertmanager}` }),
  );
  const ch = localChannels();
  writeSecret(path.join(amDir, 'slack_webhook_url'), ch.slackWebhookUrl);
  fs.writeFileSync(
    path.join(amDir, 'alertmanager.yml'),
    renderAlertmanagerConfig({ smarthost: `127.0.0.1:${PORTS.smtp}`, to: 'ops@localhost', slackWebhookUrlFile: path.join(amDir, 'slack_webhook_url'), pagerdutyRoutingKeyFile: path.join(amDir, 'pagerduty_routing_key'), pagerdutyUrl: ch.pagerdutyUrl }),
  );
  return done;
}

/**
 * `vaultdr bucket apply` for the local stack: the bucket as a deployment's admin would set it up
 * (the backup worker only checks it). The stack has one S3 identity, so it doubles as the admin.
 */
async function applyBackupBucket(): Promise<string[]> {
  const r = await applyBucket(s3Client(), { bucket: BACKUP_BUCKET, required: STACK_BUCKET_REQUIREMENTS, objectLock: { mode: 'GOVERNANCE', days: STACK_OBJECT_LOCK_DAYS } });
  if (!r.check.compliant) throw new Error(`bucket apply left ${BACKUP_BUCKET} not compliant: ${r.check.differences.join('; ')}`);
  return r.changed.length ? [`bucket apply ${BACKUP_BUCKET}: ${r.changed.join(', ')}`] : [];
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface UpReport {
  install: InstallReport[];
  components: { name: string; result: string; seconds: number }[];
  bootstrap: string[];
  configFile: string;
  seconds: number;
}

export async function stackUp(log: (line: string) => void = () => {}): Promise<UpReport> {
  const t0 = Date.now();
  const install = ensureTools(log);
  prepareFiles();
  const components: UpReport['components'] = [];
  // Start in parallel; each waits for its own health.
  await Promise.all(
    COMPONENTS.map(async (c) => {
      const t = Date.now();
      const result = await startComponent(c);
      components.push({ name: c.name, result, seconds: (Date.now() - t) / 1000 });
      log(`${c.name}: ${result} (${((Date.now() - t) / 1000).toFixed(1)}s)`);
    }),
  );
  const bootstrap = await bootstrapBao();
  // A dev server started by an older stack lacks attributes the workflows upsert: add them now.
  const conn = await Connection.connect({ address: `127.0.0.1:${PORTS.temporal}` });
  try {
    const added = await registerSearchAttributes(conn, 'default');
    if (added.length) bootstrap.push(`registered search attributes ${added.join(', ')}`);
  } finally {
    await conn.close();
  }
  bootstrap.push(...(await prepareMonitoring()));
  for (const c of MONITORING_COMPONENTS) {
    const t = Date.now();
    if (!installed(c)) {
      components.push({ name: c.name, result: 'skipped: not installed', seconds: 0 });
      log(`${c.name}: skipped, ${c.requires} is not installed (scripts/ensure-deps.sh --monitoring installs it)`);
      continue;
    }
    const result = await startComponent(c);
    components.push({ name: c.name, result, seconds: (Date.now() - t) / 1000 });
    log(`${c.name}: ${result} (${((Date.now() - t) / 1000).toFixed(1)}s)`);
  }
  const keysDir = path.join(stackDir(), 'keys');
  if (!fs.existsSync(path.join(keysDir, 'recipients.json'))) {
    // Dev custody of the escrow shares: all five in .stack/keys (0600). Production: one per custodian.
    const r = await initKeys({ outDir: keysDir, shares: 5, threshold: 3, validationKeyFile: path.join(keysDir, 'validation-key.json') });
    bootstrap.push(`generated backup keys (escrow ${r.escrowKeyId}, 5 shares / threshold 3; validation ${r.validationKeyId})`);
  }
  bootstrap.push(...(await applyBackupBucket()));
  const configFile = writeConfig();
  return { install, components, bootstrap, configFile, seconds: (Date.now() - t0) / 1000 };
}

export async function stackDown(): Promise<{ name: string; result: string }[]> {
  const out: { name: string; result: string }[] = [];
  for (const c of [legacyWorker, ...workerComponents]) out.push({ name: c.name, result: await stopComponent(c) });
  for (const c of [...COMPONENTS, ...MONITORING_COMPONENTS].reverse()) out.push({ name: c.name, result: await stopComponent(c) });
  return out;
}

export interface ComponentStatus {
  name: string;
  pid?: number;
  running: boolean;
  healthy: boolean;
  log: string;
}

export async function stackStatus(): Promise<ComponentStatus[]> {
  return Promise.all(
    [...COMPONENTS, ...MONITORING_COMPONENTS, ...workerComponents].map(async (c) => {
      const pid = runningPid(c);
      return { name: c.name, pid, running: pid !== undefined, healthy: pid !== undefined && (await c.healthy()), log: logFile(c.name) };
    }),
  );
}

export const URLS = {
  temporalUi: `http://localhost:${PORTS.temporalUi}`,
  openbao: `http://127.0.0.1:${PORTS.bao}`,
  s3: `http://127.0.0.1:${PORTS.s3}`,
  mailpit: `http://127.0.0.1:${PORTS.mailpitHttp}`,
  prometheus: `http://127.0.0.1:${PORTS.prometheus}`,
  alertmanager: `http://127.0.0.1:${PORTS.alertmanager}`,
  saasSink: `http://127.0.0.1:${PORTS.saasSink}/api/received`,
};
