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
    // vault.address must reach the active node (directly or through a load balancer that routes
    // only to it): a standby's snapshot is refused, so backups from here would fail.
    if (report.initialized && !report.sealed && report.standby) {
      // sys/health carries no leader address; sys/leader does.
      if (!report.leaderAddress) report.leaderAddress = (await deps.bao.leader().catch(() => undefined))?.leaderAddress ?? '';
      report.problems.push(`OpenBao at ${deps.bao.address} is a standby (active node ${report.leaderAddress || 'unknown'}): backups are refused from a standby; point vault.address at the active node or a load balancer that routes only to it`);
    }
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
    // Every node and the leader as autopilot sees them: an HA cluster with an unhealthy or missing
    // node is degraded even while the node vault.address reaches is fine.
    try {
      const ap = await deps.bao.autopilotState();
      report.autopilot = { healthy: ap.healthy, failureTolerance: ap.failure_tolerance, leader: ap.leader };
      report.nodes = Object.values(ap.servers).map((s) => ({ nodeId: s.name ?? s.id ?? '?', address: s.address ?? '', status: s.status ?? '', healthy: !!s.healthy, lastContact: s.last_contact ?? '' }));
      const before = report.problems.length;
      for (const n of report.nodes.filter((x) => !x.healthy)) report.problems.push(`raft node ${n.nodeId} (${n.address}) is unhealthy per autopilot (last contact ${n.lastContact || 'unknown'})`);
      if (!ap.healthy) report.problems.push(`autopilot: cluster not healthy (failure tolerance ${ap.failure_tolerance})`);
      if (report.problems.length > before && report.status === 'healthy') report.status = 'degraded';
    } catch (err) {
      report.status = report.status === 'unhealthy' ? 'unhealthy' : 'degraded';
      report.problems.push(`cannot read autopilot state: ${(err as Error).message}`);
    }
    return report;
  },
});

export type VaultActivities = ReturnType<typeof vaultActivities>;
