// The HA harness's one HAProxy (Debian `haproxy`) for both clusters: renders its config from
// sections (global and defaults, the Vault frontend/backend, stats + Prometheus exporter, and
// PostgreSQL's read-write and read-only listeners from stack/ha/postgres.ts) and runs it as a plain
// process on 127.0.0.1.
// Why each check setting has its value: docs/runbooks/ha-failover.md#check-settings-and-why.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { haDir, HaStackError, httpJson, runningPid, sleep, startProc, stopProc, type Proc } from './proc';
import { PG_PORTS, postgresHaproxySections } from './postgres';
import { VAULT_NODES } from './vault';

export const HAPROXY_PORTS = { vault: 8280, stats: 8404, postgresReadWrite: PG_PORTS.haproxyReadWrite, postgresReadOnly: PG_PORTS.haproxyReadOnly } as const;
export const HAPROXY_VAULT_ADDR = `http://127.0.0.1:${HAPROXY_PORTS.vault}`;
export const HAPROXY_STATS_URL = `http://127.0.0.1:${HAPROXY_PORTS.stats}`;

export const haproxyDir = () => path.join(haDir(), 'haproxy');
export const haproxySocket = () => path.join(haproxyDir(), 'admin.sock');

/**
 * Which OpenBao nodes HAProxy sends clients to.
 * - 'active' (the default, measured in bench/results/ha-latest.md): only the node whose
 *   sys/health says 200. Every request reaches the node that owns the write path; the failover
 *   gap is "time until HAProxy sees the new active node", one unambiguous number.
 * - 'standbyok': every unsealed node (standbys forward writes and, 2.5+, serve reads). Kept for
 *   the comparison run; while there is no leader the standbys fail forwarded writes anyway.
 */
export type VaultRouting = 'active' | 'standbyok';
export const vaultRouting = (): VaultRouting => (process.env.VAULTDR_HA_VAULT_ROUTING === 'standbyok' ? 'standbyok' : 'active');

export function globalSections(): string {
  return `# Written by the HA harness (stack/ha/haproxy.ts); every value is explained in
# docs/runbooks/ha-failover.md#check-settings-and-why.
global
  stats socket ${haproxySocket()} mode 600 level admin
  log stdout format raw local0 info

defaults
  mode http
  log global
  option httplog
  timeout connect 1s
  # A check against a hung (SIGSTOPped) node fails after 1 s, so "down" is not held up by it.
  timeout check 1s
  timeout client 30s
  timeout server 30s
  # Checks every 5 s (the checklist's interval). While a server's state is changing (one failed
  # check, or one passed check of a DOWN server) HAProxy re-checks at fastinter 1 s, and a DOWN
  # server is probed every downinter 1 s, so the new active node is in rotation ~1-2 s after it
  # answers 200. fall 2 / rise 2: one lost check never flaps a server.
  # on-marked-down shutdown-sessions: requests held open to a node marked DOWN (a hung old leader)
  # are cut at once instead of waiting for timeout server; the client retries and lands on the new one.
  default-server inter 5s fastinter 1s downinter 1s fall 2 rise 2 on-marked-down shutdown-sessions
`;
}

/**
 * The Vault backend's own check timing (overrides the defaults line for this backend only):
 * rise 1 because a 200 from sys/health is itself proof (only the unsealed active node answers 200,
 * and only after post-unseal setup), so a second passing check would only add a fastinter to every
 * failover; downinter 500 ms because the standbys are DOWN for this backend all the time and the
 * new active node is one of them. fall stays 2 (a lost check must not drop the only server).
 * Overridable for the comparison runs in bench/ha.ts.
 */
export const VAULT_CHECK = {
  rise: Number(process.env.VAULTDR_HA_VAULT_RISE ?? 1),
  downinter: process.env.VAULTDR_HA_VAULT_DOWNINTER ?? '500ms',
};

export function vaultSections(routing: VaultRouting = vaultRouting()): string {
  const uri = routing === 'active' ? '/v1/sys/health' : '/v1/sys/health?standbyok=true';
  return `frontend vault
  bind 127.0.0.1:${HAPROXY_PORTS.vault}
  default_backend vault

backend vault
  # routing: ${routing} (200 = active node${routing === 'standbyok' ? '; standbyok=true makes unsealed standbys 200 too' : '; standbys answer 429, sealed 503'})
  option httpchk GET ${uri}
  http-check expect status 200
  default-server inter 5s fastinter 1s downinter ${VAULT_CHECK.downinter} fall 2 rise ${VAULT_CHECK.rise} on-marked-down shutdown-sessions
  # A request whose connection is refused (a SIGKILLed node still marked UP) is retried on
  # another server: the client sees a clean 503 or a success, never a reset.
  retries 2
  option redispatch 1
  retry-on conn-failure empty-response
  # Which node served each answer: the audit check matches it against the nodes' own logs.
  http-response set-header X-Served-By %s
${VAULT_NODES.map((n) => `  server ${n.name} 127.0.0.1:${n.apiPort} check`).join('\n')}
`;
}

export function statsSections(): string {
  return `frontend stats
  bind 127.0.0.1:${HAPROXY_PORTS.stats}
  http-request use-service prometheus-exporter if { path /metrics }
  stats enable
  stats uri /stats
  stats refresh 5s
`;
}

/** The whole config: Vault, stats and PostgreSQL (a half that is not up just has its servers DOWN). */
export function renderHaproxyConfig(): string {
  return [globalSections(), vaultSections(), statsSections(), postgresHaproxySections()].join('\n');
}

export const haproxyConfigFile = () => path.join(haproxyDir(), 'haproxy.cfg');

function haproxyProc(): Proc {
  return {
    name: 'haproxy',
    binary: 'haproxy',
    dir: haproxyDir(),
    startTimeoutMs: 15_000,
    command: () => ({ cmd: fs.existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy', args: ['-db', '-f', haproxyConfigFile()] }),
    up: async () => (await httpJson(`${HAPROXY_STATS_URL}/stats;csv`))?.status === 200,
  };
}

export async function startHaproxy(): Promise<string> {
  fs.mkdirSync(haproxyDir(), { recursive: true });
  const cfg = renderHaproxyConfig();
  const changed = !fs.existsSync(haproxyConfigFile()) || fs.readFileSync(haproxyConfigFile(), 'utf8') !== cfg;
  fs.writeFileSync(haproxyConfigFile(), cfg);
  // A changed config (another routing mode) needs a restart; an unchanged one is left running.
  if (changed && runningPid(haproxyProc()) !== undefined) await stopProc(haproxyProc());
  return startProc(haproxyProc());
}

export const stopHaproxy = () => stopProc(haproxyProc());
export const haproxyPid = () => runningPid(haproxyProc());

export interface BackendServerState {
  backend: string;
  server: string;
  status: string;
  checkStatus: string;
  lastChangeSeconds: number;
}

/** HAProxy's view of each server (stats CSV): UP / DOWN / MAINT and its last check. */
export async function haproxyServers(): Promise<BackendServerState[]> {
  const res = await fetch(`${HAPROXY_STATS_URL}/stats;csv`, { signal: AbortSignal.timeout(2000) });
  const lines = (await res.text()).trim().split('\n');
  const head = lines[0]!.replace(/^# /, '').split(',');
  const col = (name: string) => head.indexOf(name);
  return lines
    .slice(1)
    .map((l) => l.split(','))
    .filter((c) => c[col('svname')] !== 'FRONTEND' && c[col('svname')] !== 'BACKEND')
    .map((c) => ({ backend: c[col('pxname')]!, server: c[col('svname')]!, status: c[col('status')]!, checkStatus: c[col('check_status')]!, lastChangeSeconds: Number(c[col('lastchg')]) }));
}

/**
 * Waits until the read-write listener routes to exactly `primary` and, when given, the read-only
 * one to exactly `replicas` (a replica that just started streaming needs `rise 2` checks first).
 */
export async function waitPostgresRouting(primary: string, timeoutMs: number, replicas?: string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const servers = await haproxyServers().catch(() => []);
    const up = servers.filter((x) => x.backend === 'vaultdr_pg_rw' && x.status === 'UP').map((x) => x.server);
    const ro = servers.filter((x) => x.backend === 'vaultdr_pg_ro' && x.status === 'UP').map((x) => x.server).sort();
    if (up.length === 1 && up[0] === primary && (!replicas || ro.join() === [...replicas].sort().join())) return;
    if (Date.now() > deadline) throw new HaStackError(`HAProxy routes PostgreSQL writes to ${up.join(',') || 'no server'} and reads to ${ro.join(',') || 'no server'}; expected ${primary}${replicas ? ` and ${replicas.join(',')}` : ''}`);
    await sleep(250);
  }
}
