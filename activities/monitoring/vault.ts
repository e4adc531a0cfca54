// Activities that talk to OpenBao/Vault. Factory receives the client; only workers/ builds it.
import type { BaoClient } from '../../infra/vault/bao';
import { BaoError } from '../../infra/vault/bao';
import type { RaftPeer, VaultHealth } from '../../common/health';

export const vaultActivities = (deps: { bao: BaoClient }) => ({
  /** Seal status, active node and raft peers of the configured OpenBao. Never throws for an unhealthy server: it reports. */
  async checkVaultHealth(req: { expectedRaftPeers: number }): Promise<VaultHealth> {
    const report: VaultHealth = {
      status: 'healthy',
      reachable: false,
      initialized: false,
      sealed: true,
      standby: false,
      version: '',
      clusterName: '',
      clusterId: '',
      leaderAddress: '',
      raftPeers: [],
      problems: [],
    };
    try {
      const h = await deps.bao.health();
      Object.assign(report, {
        reachable: true,
        initialized: h.initialized,
        sealed: h.sealed,
        standby: h.standby,
        version: h.version ?? '',
        clusterName: h.cluster_name ?? '',
        clusterId: h.cluster_id ?? '',
        leaderAddress: h.leader_address ?? '',
      });
    } catch (err) {
      report.status = 'unhealthy';
      report.problems.push((err as Error).message);
      return report;
    }
    if (!report.initialized) report.problems.push(`OpenBao at ${deps.bao.address} is not initialized`);
    if (report.sealed) report.problems.push(`OpenBao at ${deps.bao.address} is sealed`);
    if (report.problems.length) {
      report.status = 'unhealthy';
      return report;
    }
    try {
      const servers = await deps.bao.raftConfiguration();
      report.raftPeers = servers.map<RaftPeer>((s) => ({ nodeId: s.node_id, address: s.address, leader: s.leader, voter: s.voter }));
      if (!report.raftPeers.some((p) => p.leader)) {
        report.status = 'unhealthy';
        report.problems.push('raft configuration has no leader');
      }
      const voters = report.raftPeers.filter((p) => p.voter).length;
      if (voters < req.expectedRaftPeers) {
        report.status = report.status === 'unhealthy' ? 'unhealthy' : 'degraded';
        report.problems.push(`raft has ${voters} voter(s), expected ${req.expectedRaftPeers}`);
      }
    } catch (err) {
      report.status = 'degraded';
      const status = err instanceof BaoError ? err.status : 0;
      report.problems.push(`cannot read raft configuration${status === 403 ? ' (policy denies sys/storage/raft/configuration)' : ''}: ${(err as Error).message}`);
    }
    return report;
  },
});

export type VaultActivities = ReturnType<typeof vaultActivities>;
