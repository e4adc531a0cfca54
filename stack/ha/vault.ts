// The HA harness's three OpenBao nodes: raft storage with retry_join to the other two, autopilot,
// performance_multiplier 1, and the same file audit device declared in every node's config.
// Initialised once (5 shares / threshold 3) through bao-1, every node unsealed; the dev custody
// of the shares and root token is $VAULTDR_HA_DIR/openbao/init.json (0600), never printed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { toolPaths } from '../tools';
import type { VaultHaEnv } from '../../infra/ha/vaultDriver';
import { haDir, HaStackError, httpJson, PROJECT_ROOT, runningPid, sleep, startProc, stopProc, writeSecret, type Proc } from './proc';

export interface VaultNode {
  name: string;
  apiPort: number;
  clusterPort: number;
}

/** Ports from the HA contract (docs/runbooks/ha-failover.md#topology). */
export const VAULT_NODES: readonly VaultNode[] = [
  { name: 'bao-1', apiPort: 8211, clusterPort: 8212 },
  { name: 'bao-2', apiPort: 8221, clusterPort: 8222 },
  { name: 'bao-3', apiPort: 8231, clusterPort: 8232 },
];

/**
 * Raft timing scale. 1 = 1 s heartbeat/election timeout, 0.5 s leader lease: a dead leader is
 * noticed in 1–2 s instead of 5–10 s (the default 5). OpenBao's docs recommend 1 for production;
 * on this loopback harness the network is quiet, so it costs no spurious elections.
 */
export const PERFORMANCE_MULTIPLIER = Number(process.env.VAULTDR_HA_PERF_MULTIPLIER ?? 1);

/**
 * The audit stanza, byte-identical on every node (the active node creates/removes config-declared
 * devices on restart, so nodes must agree). The relative file_path resolves against each node's
 * working directory: one stanza, one local file per node, as on three hosts with one path.
 */
export const AUDIT_STANZA = `audit "file" "file" {
  description = "vault-dr HA audit log (each node writes its own local file; shipped to S3)"
  options {
    file_path = "audit/audit.log"
    mode      = "0600"
  }
}
`;
export const AUDIT_DEVICE_PATH = 'file';

export const vaultDir = () => path.join(haDir(), 'openbao');
export const nodeDir = (n: string) => path.join(vaultDir(), n);
export const nodeAuditLog = (n: string) => path.join(nodeDir(n), 'audit', 'audit.log');
export const nodeConfigFile = (n: string) => path.join(nodeDir(n), 'config.hcl');
export const haInitFile = () => path.join(vaultDir(), 'init.json');
/** A token limited to the drill's KV prefix, step-down and autopilot/raft reads (policy vaultdr-ha-drill). */
export const drillTokenFile = () => path.join(vaultDir(), 'drill-token');
export const metricsTokenFile = () => path.join(vaultDir(), 'metrics-token');
export const nodeAddr = (n: VaultNode) => `http://127.0.0.1:${n.apiPort}`;

export function nodeNamed(name: string): VaultNode {
  const n = VAULT_NODES.find((x) => x.name === name);
  if (!n) throw new HaStackError(`no HA OpenBao node named ${name}`);
  return n;
}

export function renderNodeConfig(n: VaultNode): string {
  const joins = VAULT_NODES.filter((o) => o.name !== n.name)
    .map((o) => `  retry_join {\n    leader_api_addr = "${nodeAddr(o)}"\n  }`)
    .join('\n');
  return `# Written by the HA harness (stack/ha/vault.ts). Node ${n.name}.
ui            = false
disable_mlock = true
api_addr      = "${nodeAddr(n)}"
cluster_addr  = "https://127.0.0.1:${n.clusterPort}"
# 2.5+: standbys answer reads themselves; HAProxy still routes to the active node only
# (docs/runbooks/ha-failover.md#check-settings-and-why).

listener "tcp" {
  address         = "127.0.0.1:${n.apiPort}"
  cluster_address = "127.0.0.1:${n.clusterPort}"
  tls_disable     = true
}

storage "raft" {
  path                   = "${path.join(nodeDir(n.name), 'raft')}"
  node_id                = "${n.name}"
  performance_multiplier = ${PERFORMANCE_MULTIPLIER}
${joins}
}

telemetry {
  prometheus_retention_time = "60s"
  disable_hostname          = true
}

${AUDIT_STANZA}`;
}

function nodeProc(n: VaultNode): Proc {
  return {
    name: n.name,
    binary: 'bao',
    dir: nodeDir(n.name),
    startTimeoutMs: 30_000,
    command: () => ({ cmd: toolPaths().bao, args: ['server', `-config=${nodeConfigFile(n.name)}`] }),
    // Any sys/health answer means the process serves (it may be sealed or a standby).
    up: async () => (await httpJson(`${nodeAddr(n)}/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200`))?.status === 200,
  };
}

export const nodePid = (name: string) => runningPid(nodeProc(nodeNamed(name)));

export function prepareNodeFiles(): void {
  fs.mkdirSync(vaultDir(), { recursive: true, mode: 0o700 });
  for (const n of VAULT_NODES) {
    fs.mkdirSync(path.join(nodeDir(n.name), 'raft'), { recursive: true });
    fs.mkdirSync(path.join(nodeDir(n.name), 'audit'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(nodeConfigFile(n.name), renderNodeConfig(n));
  }
}

export const startNode = (name: string) => startProc(nodeProc(nodeNamed(name)));
export const stopNode = (name: string, signal?: NodeJS.Signals) => stopProc(nodeProc(nodeNamed(name)), signal);

interface InitFile {
  keys_base64: string[];
  root_token: string;
}

export function readInit(): InitFile {
  return JSON.parse(fs.readFileSync(haInitFile(), 'utf8')) as InitFile;
}

export async function baoAt(n: VaultNode, method: string, p: string, token?: string, body?: unknown, timeoutMs = 10_000): Promise<{ status: number; json: any }> {
  const r = await httpJson(`${nodeAddr(n)}/v1/${p}`, { method, headers: { ...(token ? { 'X-Vault-Token': token } : {}), 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) }, timeoutMs);
  if (!r) throw new HaStackError(`${n.name}: ${method} /v1/${p}: no answer`);
  return r;
}

export interface NodeStatus {
  name: string;
  pid?: number;
  stopped: boolean;
  reachable: boolean;
  initialized?: boolean;
  sealed?: boolean;
  standby?: boolean;
}

export async function nodeStatus(n: VaultNode): Promise<NodeStatus> {
  const pid = runningPid(nodeProc(n));
  const r = await httpJson(`${nodeAddr(n)}/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200`, {}, 1500);
  const s: NodeStatus = { name: n.name, pid, stopped: false, reachable: r?.status === 200 };
  if (pid !== undefined) s.stopped = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('T') ?? false;
  if (r?.status === 200) Object.assign(s, { initialized: r.json.initialized, sealed: r.json.sealed, standby: r.json.standby });
  return s;
}

/**
 * Gives one node the first three dev shares. A node that is still joining (retry_join) takes the
 * shares, answers the leader's challenge and only then unseals, so "still sealed" is normal here:
 * waitUnsealed waits for it.
 */
export async function unsealNode(name: string): Promise<void> {
  const n = nodeNamed(name);
  const init = readInit();
  for (const key of init.keys_base64.slice(0, 3)) {
    const { json } = await baoAt(n, 'POST', 'sys/unseal', undefined, { key });
    if (json.sealed === false || (json.progress === 0 && json.t && key !== init.keys_base64[0])) return;
  }
}

/** Waits until `name` answers unsealed (raft join, if any, has then happened). */
export async function waitUnsealed(name: string, timeoutMs: number): Promise<void> {
  const n = nodeNamed(name);
  const deadline = Date.now() + timeoutMs;
  let lastUnseal = Date.now();
  while (Date.now() < deadline) {
    const s = await nodeStatus(n);
    if (s.reachable && s.sealed === false) return;
    // A join that failed (the leader not ready yet) drops the shares: give them again every 3 s.
    if (s.reachable && s.sealed && Date.now() - lastUnseal > 3000) {
      await unsealNode(name).catch(() => undefined);
      lastUnseal = Date.now();
    }
    await sleep(300);
  }
  throw new HaStackError(`${name}: not unsealed after ${timeoutMs / 1000}s`);
}

export const DRILL_POLICY = `# vault-dr failover drill (HA harness): sequence-numbered records, step-down, cluster views.
path "secret/data/drill/*"     { capabilities = ["create", "update", "read"] }
path "secret/metadata/drill/*" { capabilities = ["read", "list", "delete"] }
path "sys/step-down"           { capabilities = ["update", "sudo"] }
# The seal/unseal drill's target "ha" (sealUnsealDrill): seals the active node.
path "sys/seal"                { capabilities = ["update", "sudo"] }
path "sys/storage/raft/autopilot/state" { capabilities = ["read"] }
path "sys/storage/raft/configuration"   { capabilities = ["read"] }
path "sys/ha-status"           { capabilities = ["read"] }
path "sys/audit"               { capabilities = ["read", "sudo"] }
path "sys/audit-hash/*"        { capabilities = ["update"] }
`;

/** Init once through bao-1, unseal all three, KV v2, autopilot settings, drill and metrics tokens. */
export async function bootstrapVaultCluster(log: (l: string) => void): Promise<string[]> {
  const done: string[] = [];
  const first = VAULT_NODES[0]!;
  const { json: st } = await baoAt(first, 'GET', 'sys/init');
  if (!st.initialized) {
    if (fs.existsSync(haInitFile())) throw new HaStackError(`openbao HA: bao-1 is uninitialised but ${haInitFile()} exists; run ha:down, remove ${vaultDir()} and try again`);
    const { json } = await baoAt(first, 'POST', 'sys/init', undefined, { secret_shares: 5, secret_threshold: 3 });
    writeSecret(haInitFile(), JSON.stringify({ keys_base64: json.keys_base64, root_token: json.root_token }, null, 2));
    done.push('initialised through bao-1 (5 shares, threshold 3)');
  }
  if (done.length) {
    // A fresh cluster: the first node must be active before the others can join it.
    await unsealNode(first.name);
    await waitUnsealed(first.name, 30_000);
  } else {
    // A restart of an existing cluster: no node can win an election alone, so every sealed member
    // gets its shares first (a node that never joined keeps waiting for the leader, below).
    for (const n of VAULT_NODES) if ((await nodeStatus(n)).sealed) await unsealNode(n.name);
  }
  await waitActive(60_000);
  for (const n of VAULT_NODES.slice(1)) {
    const s = await nodeStatus(n);
    if (s.sealed) {
      log(`${n.name}: unsealing (joins the raft cluster)`);
      await unsealNode(n.name);
      await waitUnsealed(n.name, 60_000);
      done.push(`${n.name} unsealed`);
    }
  }
  const token = readInit().root_token;
  const leader = await activeNode();
  const clusterId = (await baoAt(leader, 'GET', 'sys/health')).json.cluster_id as string;
  fs.writeFileSync(path.join(vaultDir(), 'cluster-name'), `ha-local-${clusterId.slice(0, 8)}\n`);
  const mounts = (await baoAt(leader, 'GET', 'sys/mounts', token)).json;
  if (!mounts.data?.['secret/'] && !mounts['secret/']) {
    await baoAt(leader, 'POST', 'sys/mounts/secret', token, { type: 'kv', options: { version: '2' } });
    done.push('mounted kv-v2 at secret/');
  }
  // cleanup_dead_servers stays off: a killed node must come back as the same member, never be
  // removed behind the drill's back. The stabilization time is how long a rejoined server must be
  // healthy before autopilot counts it (default 10 s); the drill's "fully healthy" waits for it.
  await baoAt(leader, 'POST', 'sys/storage/raft/autopilot/configuration', token, { cleanup_dead_servers: false, last_contact_threshold: '10s', server_stabilization_time: '10s', max_trailing_logs: 1000 });
  await baoAt(leader, 'PUT', 'sys/policies/acl/vaultdr-ha-drill', token, { policy: DRILL_POLICY });
  await baoAt(leader, 'PUT', 'sys/policies/acl/prometheus-metrics', token, { policy: 'path "sys/metrics" {\n  capabilities = ["read"]\n}\n' });
  for (const [file, policy, name] of [[drillTokenFile(), 'vaultdr-ha-drill', 'ha-drill'], [metricsTokenFile(), 'prometheus-metrics', 'prometheus']] as const) {
    let valid = false;
    if (fs.existsSync(file)) valid = (await baoAt(leader, 'GET', 'auth/token/lookup-self', fs.readFileSync(file, 'utf8').trim())).status === 200;
    if (!valid) {
      const { json } = await baoAt(leader, 'POST', 'auth/token/create-orphan', token, { policies: [policy], no_default_policy: true, ttl: '768h', renewable: true, display_name: name });
      writeSecret(file, json.auth.client_token);
      done.push(`issued the ${name} token (policy ${policy})`);
    }
  }
  // vault-dr's own worker identity on this cluster (backups through HAProxy): the same
  // least-privilege policy and AppRole as on the single-node stack.
  await baoAt(leader, 'PUT', 'sys/policies/acl/vaultdr-worker', token, { policy: fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'openbao', 'policies', 'vaultdr-worker.hcl'), 'utf8') });
  const auths = (await baoAt(leader, 'GET', 'sys/auth', token)).json;
  if (!auths.data?.['approle/'] && !auths['approle/']) {
    await baoAt(leader, 'POST', 'sys/auth/approle', token, { type: 'approle' });
    done.push('enabled approle');
  }
  await baoAt(leader, 'POST', 'auth/approle/role/vaultdr-worker', token, { token_policies: ['vaultdr-worker'], token_ttl: '1h', token_max_ttl: '4h', secret_id_ttl: '0' });
  writeSecret(workerRoleIdFile(), (await baoAt(leader, 'GET', 'auth/approle/role/vaultdr-worker/role-id', token)).json.data.role_id + '\n');
  if (!fs.existsSync(workerSecretIdFile())) {
    writeSecret(workerSecretIdFile(), (await baoAt(leader, 'POST', 'auth/approle/role/vaultdr-worker/secret-id', token, {})).json.data.secret_id + '\n');
    done.push('issued the vaultdr-worker AppRole secret-id');
  }
  return done;
}

export const workerRoleIdFile = () => path.join(vaultDir(), 'worker-role-id');
export const workerSecretIdFile = () => path.join(vaultDir(), 'worker-secret-id');

/** The node that answers sys/health 200 (active), or throws after the timeout. */
export async function waitActive(timeoutMs: number, exclude: string[] = []): Promise<VaultNode> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const n of VAULT_NODES) {
      if (exclude.includes(n.name)) continue;
      if ((await httpJson(`${nodeAddr(n)}/v1/sys/health`, {}, 1000))?.status === 200) return n;
    }
    if (Date.now() >= deadline) break;
    await sleep(200);
  }
  throw new HaStackError(`openbao HA: no active node after ${timeoutMs / 1000}s`);
}

export const activeNode = () => waitActive(1);

export async function startVaultNodes(log: (l: string) => void): Promise<string[]> {
  prepareNodeFiles();
  const out: string[] = [];
  await Promise.all(
    VAULT_NODES.map(async (n) => {
      const r = await startNode(n.name);
      out.push(`${n.name}: ${r}`);
      log(`${n.name}: ${r}`);
    }),
  );
  return out;
}

export async function stopVaultNodes(): Promise<string[]> {
  return Promise.all(VAULT_NODES.map(async (n) => `${n.name}: ${await stopNode(n.name)}`));
}

/**
 * The cluster-loss drill's custody of a rebuilt cluster's root token: restore.productionTokenFile
 * points here, so the production restore (restoreVault) may force a snapshot into the new, empty
 * cluster. Written by initEmptyCluster, removed with the rest when the harness is rebuilt.
 */
export const restoreTokenFile = () => path.join(vaultDir(), 'restore-token');

/** Every file of the harness cluster's custody (shares, tokens, AppRole secret, cluster name). */
const custodyFiles = () => [haInitFile(), drillTokenFile(), metricsTokenFile(), workerSecretIdFile(), restoreTokenFile(), path.join(vaultDir(), 'cluster-name')];

/** Removes one node's storage and audit log (its process must be stopped): the host's disk is gone. */
function wipeNode(name: string): void {
  if (nodePid(name) !== undefined) throw new HaStackError(`${name}: refusing to wipe the data of a running node`);
  fs.rmSync(path.join(nodeDir(name), 'raft'), { recursive: true, force: true });
  fs.rmSync(path.join(nodeDir(name), 'audit'), { recursive: true, force: true });
}

/**
 * The cluster-loss fault: every node SIGKILLed (hosts lost, no graceful leadership transfer) and
 * its raft storage and audit log removed. The custody files stay (the operator's copies of the
 * lost cluster's shares); initEmptyCluster and the rebuild replace them.
 */
export async function destroyVaultNodes(): Promise<string[]> {
  const out = await Promise.all(VAULT_NODES.map(async (n) => `${n.name}: ${await stopNode(n.name, 'SIGKILL')}`));
  for (const n of VAULT_NODES) wipeNode(n.name);
  return out.map((l) => `${l}, data removed`);
}

/**
 * A new, empty one-node cluster on `name` (its storage wiped first): sys/init (5 shares,
 * threshold 3), unsealed, active. Its shares replace init.json and its root token goes to
 * restoreTokenFile() for the production restore. The other nodes stay down: a snapshot from
 * another cluster is restored into one node and the others join afterwards (restoring into a
 * multi-node cluster leaves the active node out: openbao/openbao#2455).
 */
export async function initEmptyCluster(name: string): Promise<{ clusterId: string }> {
  const n = nodeNamed(name);
  await stopNode(name);
  wipeNode(name);
  for (const f of custodyFiles()) fs.rmSync(f, { force: true });
  prepareNodeFiles();
  await startNode(name);
  const { json } = await baoAt(n, 'POST', 'sys/init', undefined, { secret_shares: 5, secret_threshold: 3 });
  if (!json.root_token) throw new HaStackError(`${name}: sys/init failed: ${(json.errors ?? []).join('; ')}`);
  writeSecret(haInitFile(), JSON.stringify({ keys_base64: json.keys_base64, root_token: json.root_token }, null, 2));
  writeSecret(restoreTokenFile(), `${json.root_token}\n`);
  await unsealNode(name);
  await waitUnsealed(name, 30_000);
  await waitActive(30_000);
  return { clusterId: (await baoAt(n, 'GET', 'sys/health')).json.cluster_id as string };
}

/** Starts `name` with empty storage; given the cluster's shares it joins the active node (retry_join). */
export async function startEmptyNode(name: string): Promise<void> {
  await stopNode(name);
  wipeNode(name);
  prepareNodeFiles();
  await startNode(name);
}

/** Restarts `name` on its own data (a node that sealed itself after a forced snapshot restore). */
export async function restartNode(name: string): Promise<void> {
  await stopNode(name);
  await startNode(name);
}

/**
 * Unseals `name` with the given shares (another cluster's: a restored backup's custodians), up to
 * the threshold the node asks for. A joining node drops the shares when its join fails, so callers
 * repeat this until the node answers unsealed.
 */
export async function unsealNodeWith(name: string, shares: string[]): Promise<{ sealed: boolean }> {
  const n = nodeNamed(name);
  const st = (await baoAt(n, 'GET', 'sys/seal-status')).json;
  if (st.sealed === false) return { sealed: false };
  const given = shares.slice(0, Math.max(1, Number(st.t) || shares.length));
  for (const [i, key] of given.entries()) {
    const { status, json } = await baoAt(n, 'POST', 'sys/unseal', undefined, { key });
    // Never echo the answer: an error could quote the share.
    if (status !== 200) throw new HaStackError(`${name}: a share was refused (HTTP ${status})`);
    if (json.sealed === false) return { sealed: false };
    // Threshold reached on a joining node: it answers the leader's challenge now (see unsealNode).
    if (i > 0 && json.progress === 0 && json.t) return { sealed: true };
  }
  return { sealed: true };
}

/** The drill driver's view of this harness: nodes, pids, restart and unseal, HAProxy, drill token. */
export function harnessVaultEnv(haproxyAddr: string): VaultHaEnv {
  return {
    haproxyAddr,
    nodes: VAULT_NODES.map((n) => ({ name: n.name, addr: nodeAddr(n) })),
    token: () => fs.readFileSync(drillTokenFile(), 'utf8').trim(),
    pid: (name) => nodePid(name),
    start: (name) => startNode(name),
    stop: (name) => stopNode(name),
    unseal: (name) => unsealNode(name),
  };
}
