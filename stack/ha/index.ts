// The HA harness: three OpenBao nodes on raft plus one audit-log shipper per node, PostgreSQL 15
// ×3 under Patroni with etcd, and one HAProxy in front of both (Vault on 8280, PostgreSQL
// read-write 5440 / read-only 5439, stats and metrics 8404). `ha:up` is idempotent: what runs
// healthy is left alone, a stopped or killed node is restarted (and unsealed).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { haDir, HaStackError, stopProc } from './proc';
import { haproxyPid, haproxyServers, HAPROXY_PORTS, HAPROXY_STATS_URL, HAPROXY_VAULT_ADDR, startHaproxy, stopHaproxy, waitPostgresRouting } from './haproxy';
import { bootstrapVaultCluster, destroyVaultNodes, harnessVaultEnv, initEmptyCluster, nodeStatus, restartNode, restoreTokenFile, startEmptyNode, startVaultNodes, stopVaultNodes, unsealNode, unsealNodeWith, VAULT_NODES, waitUnsealed } from './vault';
import type { VaultClusterLifecycle } from '../../infra/ha/vaultDriver';
import { startAuditShippers, stopAuditShippers, shipperStatus } from './auditShipper';
import { pgHaDir, postgresDown, postgresHarnessPresent, postgresStatus, postgresUp } from './postgres';
import { vaultClusterHealth } from '../../infra/ha/vaultDriver';

export interface HaUpReport {
  seconds: number;
  steps: string[];
}

export interface HaUpOptions {
  /** Bring up the OpenBao half (default true). */
  vault?: boolean;
  /** Bring up the PostgreSQL half (default true). */
  postgres?: boolean;
}

/** A PostgreSQL-only HAProxy an older harness ran under postgres/haproxy: the one HAProxy replaces it. */
async function stopOldPostgresHaproxy(): Promise<string | undefined> {
  const old = { name: 'haproxy', dir: path.join(pgHaDir(), 'haproxy'), binary: 'haproxy' };
  if (!fs.existsSync(path.join(old.dir, 'haproxy.pid'))) return undefined;
  const r = await stopProc(old);
  return r === 'stopped' ? 'stopped the PostgreSQL-only HAProxy of an older harness' : undefined;
}

export async function haUp(log: (l: string) => void = () => {}, opts: HaUpOptions = {}): Promise<HaUpReport> {
  const t0 = Date.now();
  const withVault = opts.vault ?? true;
  const withPostgres = opts.postgres ?? true;
  fs.mkdirSync(haDir(), { recursive: true, mode: 0o700 });
  const steps: string[] = [];
  const old = await stopOldPostgresHaproxy();
  if (old) steps.push(old);
  if (withVault) {
    steps.push(...(await startVaultNodes(log)));
    steps.push(...(await bootstrapVaultCluster(log)));
    // A node restarted by `up` after a crash is sealed: unseal it (it rejoins through raft).
    for (const n of VAULT_NODES) {
      const s = await nodeStatus(n);
      if (s.sealed) {
        await unsealNode(n.name);
        await waitUnsealed(n.name, 60_000);
        steps.push(`${n.name}: unsealed`);
      }
    }
  }
  let pg: Awaited<ReturnType<typeof postgresStatus>>['health'] | undefined;
  if (withPostgres) {
    const r = await postgresUp({ log });
    steps.push(...r.results.map((x) => `${x.name}: ${x.result}`), ...r.bootstrap);
    pg = (await postgresStatus()).health;
  }
  steps.push(`haproxy: ${await startHaproxy()}`);
  if (withVault) {
    steps.push(...(await startAuditShippers()));
    // Up means fully healthy: three voters, autopilot healthy, HAProxy routing to the leader.
    const deadline = Date.now() + 90_000;
    let last = await vaultClusterHealth(harnessVaultEnv(HAPROXY_VAULT_ADDR));
    while (!last.healthy && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      last = await vaultClusterHealth(harnessVaultEnv(HAPROXY_VAULT_ADDR));
    }
    if (!last.healthy) throw new HaStackError(`HA cluster not healthy after 90s: ${last.problems.join('; ')}`);
    steps.push(`vault cluster healthy, leader ${last.leader}`);
  }
  if (pg) {
    // Up means routed: the primary on the read-write listener and every replica on the read-only one.
    await waitPostgresRouting(pg.primary!, 30_000, pg.replicas.map((r) => r.name));
    steps.push(`postgres cluster healthy, primary ${pg.primary}, HAProxy routing to it`);
  }
  return { seconds: (Date.now() - t0) / 1000, steps };
}

/**
 * The OpenBao half back to its normal state from nothing, the way a first `ha:up` builds it: the
 * audit shippers stopped (they cache the cluster name), every node stopped and its storage and
 * audit log removed, the custody files removed, then haUp's own path (fresh init, unseal, KV
 * mount, autopilot, drill/metrics tokens, worker AppRole, shippers, fully healthy). The
 * cluster-loss drill's revert; idempotent.
 */
export async function rebuildVaultHarness(log: (l: string) => void = () => {}): Promise<HaUpReport> {
  const t0 = Date.now();
  const steps = [...(await stopAuditShippers()), ...(await destroyVaultNodes())];
  for (const f of ['init.json', 'drill-token', 'metrics-token', 'worker-secret-id', 'cluster-name']) fs.rmSync(path.join(path.dirname(restoreTokenFile()), f), { force: true });
  fs.rmSync(restoreTokenFile(), { force: true });
  const up = await haUp(log, { postgres: false });
  return { seconds: (Date.now() - t0) / 1000, steps: [...steps, ...up.steps] };
}

/** The harness's lifecycle operations for the cluster-loss drill (infra/ha/vaultDriver.ts VaultClusterLifecycle). */
export function harnessVaultLifecycle(): VaultClusterLifecycle {
  return {
    destroy: () => destroyVaultNodes(),
    initEmpty: (node) => initEmptyCluster(node),
    startEmpty: (node) => startEmptyNode(node),
    restart: (node) => restartNode(node),
    unsealWith: (node, shares) => unsealNodeWith(node, shares),
    rebuild: async () => (await rebuildVaultHarness()).steps,
  };
}

export async function haDown(): Promise<string[]> {
  const pg = postgresHarnessPresent() ? (await postgresDown()).map((r) => `${r.name}: ${r.result}`) : [];
  return [...(await stopAuditShippers()), `haproxy: ${await stopHaproxy()}`, ...pg, ...(await stopVaultNodes())];
}

export async function haStatus(): Promise<{ lines: string[]; healthy: boolean }> {
  const lines: string[] = [];
  for (const n of VAULT_NODES) {
    const s = await nodeStatus(n);
    const state = !s.pid ? 'stopped' : s.stopped ? 'SIGSTOPPED' : !s.reachable ? 'UNREACHABLE' : s.sealed ? 'SEALED' : s.standby ? 'standby' : 'active';
    lines.push(`${n.name.padEnd(8)} ${state.padEnd(12)}${s.pid ? ` pid ${s.pid}` : ''}`);
  }
  let pgHealthy = true;
  if (postgresHarnessPresent()) {
    const s = await postgresStatus();
    for (const p of s.processes) lines.push(`${p.name.padEnd(12)} ${p.healthy ? 'healthy' : p.running ? 'UNHEALTHY' : 'stopped'}${p.pid ? ` pid ${p.pid}` : ''}  log ${p.log}`);
    const h = s.health;
    lines.push(`postgres cluster: ${h.healthy ? 'healthy' : 'UNHEALTHY'}, primary ${h.primary ?? '-'}; replicas ${h.replicas.map((r) => `${r.name}${r.sync ? ' (sync)' : ''} lag ${r.lagBytes} B`).join(', ') || '-'}${h.problems.length ? `: ${h.problems.join('; ')}` : ''}`);
    pgHealthy = h.healthy;
  }
  const hp = haproxyPid();
  lines.push(`haproxy  ${hp ? `running pid ${hp}` : 'stopped'}  vault ${HAPROXY_VAULT_ADDR}  postgres rw 127.0.0.1:${HAPROXY_PORTS.postgresReadWrite} ro 127.0.0.1:${HAPROXY_PORTS.postgresReadOnly}  stats ${HAPROXY_STATS_URL}/stats  metrics ${HAPROXY_STATS_URL}/metrics`);
  if (hp) {
    for (const s of await haproxyServers().catch(() => [])) lines.push(`  ${s.backend}/${s.server}: ${s.status} (${s.checkStatus}, ${s.lastChangeSeconds}s)`);
  }
  lines.push(...shipperStatus());
  const h = await vaultClusterHealth(harnessVaultEnv(HAPROXY_VAULT_ADDR));
  lines.push(`vault cluster: ${h.healthy ? 'healthy' : 'UNHEALTHY'}${h.leader ? `, leader ${h.leader}` : ''}${h.problems.length ? `: ${h.problems.join('; ')}` : ''}`);
  return { lines, healthy: h.healthy && pgHealthy && hp !== undefined };
}
