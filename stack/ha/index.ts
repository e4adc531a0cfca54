// The HA harness: three OpenBao nodes on raft behind HAProxy, plus one audit-log shipper per node
// (the PostgreSQL + Patroni + etcd half joins at merge). `ha:up` is idempotent: what runs
// healthy is left alone, a stopped or killed node is restarted and unsealed.
import * as fs from 'node:fs';
import { haDir, HaStackError } from './proc';
import { haproxyPid, haproxyServers, HAPROXY_STATS_URL, HAPROXY_VAULT_ADDR, startHaproxy, stopHaproxy } from './haproxy';
import { bootstrapVaultCluster, harnessVaultEnv, nodeStatus, startVaultNodes, stopVaultNodes, unsealNode, VAULT_NODES, waitUnsealed } from './vault';
import { startAuditShippers, stopAuditShippers, shipperStatus } from './auditShipper';
import { vaultClusterHealth } from '../../infra/ha/vaultDriver';

export interface HaUpReport {
  seconds: number;
  steps: string[];
}

export async function haUp(log: (l: string) => void = () => {}): Promise<HaUpReport> {
  const t0 = Date.now();
  fs.mkdirSync(haDir(), { recursive: true, mode: 0o700 });
  const steps = await startVaultNodes(log);
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
  steps.push(`haproxy: ${await startHaproxy()}`);
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
  return { seconds: (Date.now() - t0) / 1000, steps };
}

export async function haDown(): Promise<string[]> {
  return [...(await stopAuditShippers()), `haproxy: ${await stopHaproxy()}`, ...(await stopVaultNodes())];
}

export async function haStatus(): Promise<{ lines: string[]; healthy: boolean }> {
  const lines: string[] = [];
  for (const n of VAULT_NODES) {
    const s = await nodeStatus(n);
    const state = !s.pid ? 'stopped' : s.stopped ? 'SIGSTOPPED' : !s.reachable ? 'UNREACHABLE' : s.sealed ? 'SEALED' : s.standby ? 'standby' : 'active';
    lines.push(`${n.name.padEnd(8)} ${state.padEnd(12)}${s.pid ? ` pid ${s.pid}` : ''}`);
  }
  const hp = haproxyPid();
  lines.push(`haproxy  ${hp ? `running pid ${hp}` : 'stopped'}  vault ${HAPROXY_VAULT_ADDR}  stats ${HAPROXY_STATS_URL}/stats  metrics ${HAPROXY_STATS_URL}/metrics`);
  if (hp) {
    for (const s of await haproxyServers().catch(() => [])) lines.push(`  ${s.backend}/${s.server}: ${s.status} (${s.checkStatus}, ${s.lastChangeSeconds}s)`);
  }
  lines.push(...shipperStatus());
  const h = await vaultClusterHealth(harnessVaultEnv(HAPROXY_VAULT_ADDR));
  lines.push(`vault cluster: ${h.healthy ? 'healthy' : 'UNHEALTHY'}${h.leader ? `, leader ${h.leader}` : ''}${h.problems.length ? `: ${h.problems.join('; ')}` : ''}`);
  return { lines, healthy: h.healthy && hp !== undefined };
}
