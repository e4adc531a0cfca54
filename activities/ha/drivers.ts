// The HA driver registry of a worker: which targets it can drill, built from its config. Both
// drivers control the HA harness's local processes (ha.harnessDir): the Vault driver through its
// pid files, the dev custody of the cluster's unseal shares and the drill token; the PostgreSQL
// driver through Patroni's pid files and postmaster.pid, writing as the harness's application
// role through HAProxy's read-write port. A target without a driver is refused by name.
import type { Config } from '../../infra/config';
import { VaultHaDriver } from '../../infra/ha/vaultDriver';
import { postgresHaDriver } from '../../infra/postgres/haDriver';
import { harnessVaultEnv } from '../../stack/ha/vault';
import { harnessDriverOptions, postgresHarnessPresent } from '../../stack/ha/postgres';
import { readSecretJson } from '../../infra/secretFile';
import type { PgHaTopology } from '../../infra/postgres/haHealth';
import { useHaDir } from '../../stack/ha/proc';
import type { HaDriverRegistry } from './failover';

export function haDriverRegistry(cfg: Config): HaDriverRegistry {
  const registry: HaDriverRegistry = {};
  const dir = cfg.ha.harnessDir;
  if (dir) {
    useHaDir(dir);
    registry.vault = () => new VaultHaDriver(harnessVaultEnv(cfg.ha.vaultAddress));
    // The PostgreSQL half is optional in a harness (ha:up brings it up; a Vault-only harness has none).
    if (postgresHarnessPresent()) registry.postgres = () => postgresHaDriver(harnessDriverOptions());
  }
  return registry;
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
