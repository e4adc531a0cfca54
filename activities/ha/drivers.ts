// The HA driver registry of a worker: which targets it can drill, built from its config. The
// Vault driver controls the HA harness's local processes (ha.harnessDir: pid files, the dev
// custody of the cluster's unseal shares, the drill token). The PostgreSQL driver registers here
// too (ha-pg branch); a target without a driver is refused by name.
import type { Config } from '../../infra/config';
import { VaultHaDriver } from '../../infra/ha/vaultDriver';
import { harnessVaultEnv } from '../../stack/ha/vault';
import { useHaDir } from '../../stack/ha/proc';
import type { HaDriverRegistry } from './failover';

export function haDriverRegistry(cfg: Config): HaDriverRegistry {
  const registry: HaDriverRegistry = {};
  const dir = cfg.ha.harnessDir;
  if (dir) {
    useHaDir(dir);
    registry.vault = () => new VaultHaDriver(harnessVaultEnv(cfg.ha.vaultAddress));
  }
  return registry;
}
