// vaultHealthMonitor's one activity: gathers every fact a check needs in one round trip per
// system — OpenBao seal/leader/raft peers and autopilot, the backup bucket's newest verified
// backup, damaged backups, the bucket's settings (read-only) and the restore validations. Never
// throws for an unhealthy system: it reports.
import type { S3Client } from '@aws-sdk/client-s3';
import type { BaoClient } from '../../infra/vault/bao';
import type { Config } from '../../infra/config';
import { loadDrState } from '../../infra/store/drState';
import { bucketSpec, checkBucket } from '../../infra/store/bucketPolicy';
import type { AutopilotFacts, MonitorFacts } from '../../common/monitor';
import { vaultActivities } from './vault';
import { postgresHaActivities } from './postgres';
import { postgresHaTopology } from '../ha/drivers';

export const monitorActivities = (deps: { bao: BaoClient; s3: S3Client; cfg: Config }) => {
  const { checkVaultHealth } = vaultActivities({ bao: deps.bao });
  const { checkPostgresHa } = postgresHaActivities({ topology: () => postgresHaTopology(deps.cfg) });
  return {
    async collectMonitorFacts(req: { expectedRaftPeers: number }): Promise<MonitorFacts> {
      const [vault, dr, postgres] = await Promise.all([checkVaultHealth(req), loadDrState(deps.s3, deps.cfg), checkPostgresHa()]);
      if (dr.storeUp) {
        try {
          // GetBucket* only: the monitor, like the backup worker, never writes bucket settings.
          dr.bucketDifferences = (await checkBucket(deps.s3, bucketSpec(deps.cfg))).differences;
        } catch (err) {
          dr.bucketDifferences = [`cannot read the bucket settings: ${(err as Error).message}`];
        }
      }
      const autopilot: AutopilotFacts = { unhealthyServers: [] };
      if (vault.reachable && !vault.sealed) {
        try {
          const a = await deps.bao.autopilotState();
          autopilot.healthy = a.healthy;
          autopilot.failureTolerance = a.failure_tolerance;
          autopilot.unhealthyServers = Object.entries(a.servers).filter(([, s]) => !s.healthy).map(([id, s]) => s.name ?? id);
        } catch (err) {
          autopilot.error = (err as Error).message;
        }
      }
      return { vault, autopilot, dr, ...(postgres ? { postgres } : {}) };
    },
  };
};

export type MonitorActivities = ReturnType<typeof monitorActivities>;
