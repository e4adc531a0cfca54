// The HA driver registry of a worker: which targets it can drill, built from its config. Both
// drivers control the HA harness's local processes (ha.harnessDir): the Vault driver through its
// pid files, the dev custody of the cluster's unseal shares and the drill token; the PostgreSQL
// driver through Patroni's pid files and postmaster.pid, writing as the harness's application
// role through HAProxy's read-write port. A target without a driver is refused by name.
import type { Config } from '../../infra/config';
import { VaultHaDriver, type VaultHaEnv } from '../../infra/ha/vaultDriver';
import { postgresHaDriver } from '../../infra/postgres/haDriver';
import { harnessVaultEnv } from '../../stack/ha/vault';
import { harnessDriverOptions, postgresHarnessPresent } from '../../stack/ha/postgres';
import { readSecretJson } from '../../infra/secretFile';
import type { PgHaTopology } from '../../infra/postgres/haHealth';
import { useHaDir } from '../../stack/ha/proc';
import { harnessVaultLifecycle } from '../../stack/ha/index';
import type { HaDriverRegistry } from './failover';

export function haDriverRegistry(cfg: Config): HaDriverRegistry {
  const registry: HaDriverRegistry = {};
  const env = vaultHaEnv(cfg);
  if (env) {
    registry.vault = () => new VaultHaDriver(env);
    // The PostgreSQL half is optional in a harness (ha:up brings it up; a Vault-only harness has none).
    if (postgresHarnessPresent()) registry.postgres = () => postgresHaDriver(harnessDriverOptions());
  }
  return registry;
}

/**
 * The HA OpenBao cluster this worker controls (ha.harnessDir): its nodes, their processes, the
 * dev custody of the unseal shares and the drill token; undefined when this worker has none.
 */
export function vaultHaEnv(cfg: Config): VaultHaEnv | undefined {
  if (!cfg.ha.harnessDir) return undefined;
  useHaDir(cfg.ha.harnessDir);
  // The harness's nodes run on this host, so the cluster-loss drill can lose and rebuild them
  // (only when drills.drillableTargets allows it: activities/ha/clusterLoss.ts checks).
  return { ...harnessVaultEnv(cfg.ha.vaultAddress), lifecycle: harnessVaultLifecycle() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stops one HA OpenBao node's process (SIGTERM, then SIGKILL); resolves once it no longer runs. */
export async function stopVaultNode(env: VaultHaEnv, name: string): Promise<'stopped' | 'not running'> {
  if (env.pid(name) === undefined) return 'not running';
  await env.stop(name);
  if (env.pid(name) !== undefined) throw new Error(`${name}: still running after stop`);
  return 'stopped';
}

/**
 * Starts one HA OpenBao node again (same data dir, same raft member) and unseals it from the ha
 * role's custody; resolves once it answers unsealed (it has then rejoined raft). Idempotent: a
 * node already running and unsealed returns at once.
 */
export async function startVaultNode(env: VaultHaEnv, name: string, timeoutMs: number): Promise<'started' | 'already running'> {
  const node = env.nodes.find((n) => n.name === name);
  if (!node) throw new Error(`no HA OpenBao node named ${name}`);
  const wasRunning = env.pid(name) !== undefined;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let lastUnseal = 0;
  while (Date.now() < deadline) {
    if (env.pid(name) === undefined) {
      await Promise.resolve(env.start(name)).catch((err: Error) => (last = `start failed: ${err.message.split('\n')[0]}`));
      continue;
    }
    const h = await fetch(`${node.addr}/v1/sys/health?standbyok=true&sealedcode=503`, { signal: AbortSignal.timeout(1500) })
      .then(async (r) => ({ status: r.status, json: (await r.json().catch(() => ({}))) as { initialized?: boolean } }))
      .catch(() => undefined);
    if (h?.status === 200) return wasRunning ? 'already running' : 'started';
    // A node that is still joining drops the shares when the join fails: give them again every 3 s.
    if (h?.status === 503 && h.json.initialized && Date.now() - lastUnseal > 3000) {
      lastUnseal = Date.now();
      await env.unseal(name).catch((err: Error) => (last = `unseal: ${err.message}`));
      continue;
    }
    last = h ? `sys/health HTTP ${h.status}` : 'no answer';
    await sleep(300);
  }
  throw new Error(`${name}: not unsealed within ${Math.round(timeoutMs / 1000)}s (${last})`);
}

/**
 * The HA PostgreSQL cluster the health checks report on: ha.postgresMonitorFile (nodes and a
 * pg_monitor login; the backup role's secret), else none.
 */
export function postgresHaTopology(cfg: Config): PgHaTopology | undefined {
  const file = cfg.ha.postgresMonitorFile;
  if (!file) return undefined;
  const t = readSecretJson(file, (problem) => new Error(`ha.postgresMonitorFile ${file} is ${problem}`)) as PgHaTopology;
  if (!Array.isArray(t.nodes) || t.nodes.length < 2 || !t.monitor?.user) throw new Error(`ha.postgresMonitorFile ${file}: expected {"nodes": [...], "monitor": {"user", "password", "database"}, "maxLagBytes", "synchronous"}`);
  return { ...t, maxLagBytes: t.maxLagBytes ?? 1048576, synchronous: t.synchronous ?? false };
}
