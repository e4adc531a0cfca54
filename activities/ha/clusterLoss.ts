// Activities of the cluster-loss drill (drDrill scenario cluster-loss, docs/runbooks/dr-drills.md)
// that touch the drill cluster: whether it may be lost and restored (drillable, the production
// restore points at it, a verified backup exists), losing it, building a new empty cluster, the
// custodians' unseal of the restored cluster (restore.unsealSharesFile, as the staging restore's
// unsealTarget), its check, and the rebuild to normal that reverts the drill. Restore role: it holds
// the harness, the unseal shares and the break-glass token file. The in-flight fault is recorded
// in a state file first, so a worker killed mid-drill leaves a trace the rebuild clears.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { failure } from '../../common/errors';
import type { Config } from '../../infra/config';
import { readSecretJson } from '../../infra/secretFile';
import { VaultHaDriver, type NodeSeal, type VaultHaEnv } from '../../infra/ha/vaultDriver';
import { BackupCatalog } from '../../infra/store/catalog';
import { keepHeartbeating } from '../heartbeat';

export interface ClusterLossDeps {
  cfg: Pick<Config, 'drills' | 'restore' | 'ha' | 'vault' | 's3'>;
  s3: S3Client;
  /** The drill cluster this worker controls (ha.harnessDir), undefined when it has none. */
  env?: VaultHaEnv;
  /** Where the in-flight fault is recorded; must survive a worker restart. */
  stateDir: string;
}

/** The newest verified backup, as the drill reports it (never a secret). */
export interface LatestBackup {
  backupId: string;
  createdAt: string;
  ageSeconds: number;
}

/** A cluster-loss drill needs a verified backup younger than this (scenario steady state). */
export const MAX_BACKUP_AGE_SECONDS = 26 * 3600;

const norm = (a: string) => a.replace(/\/+$/, '').replace('://localhost', '://127.0.0.1');

export const clusterLossActivities = (deps: ClusterLossDeps) => {
  const { cfg } = deps;
  const pendingFile = path.join(deps.stateDir, 'drill-state', 'pending-cluster-loss.json');

  /** Refuses (DrillRefused) unless this worker may lose and restore the drill cluster; names the reason. */
  function guard(): VaultHaDriver {
    const env = deps.env;
    if (!env?.lifecycle) throw failure('DrillRefused', 'cluster-loss: this worker controls no drill cluster it can rebuild (ha.harnessDir is not set here)');
    if (!cfg.drills.drillableTargets.includes('ha-vault')) throw failure('DrillRefused', `cluster-loss: target ha-vault is not marked drillable (drills.drillableTargets: ${cfg.drills.drillableTargets.join(', ') || 'none'})`);
    // The restore writes into restore.productionAddress: it must be the drill cluster, never the real production Vault.
    const prod = norm(cfg.restore.productionAddress ?? cfg.vault.address);
    const drillAddrs = [env.haproxyAddr, ...env.nodes.map((n) => n.addr)].map(norm);
    if (!drillAddrs.includes(prod)) {
      throw failure('DrillRefused', `cluster-loss: restore.productionAddress (${prod}) is not the drill cluster (${drillAddrs.join(', ')}); the drill restores into it, so it must point at the drillable cluster, never at production`);
    }
    if (!cfg.restore.productionTokenFile) throw failure('DrillRefused', 'cluster-loss: restore.productionTokenFile is not set: the production restore into the new cluster could not authenticate');
    if (!cfg.restore.unsealSharesFile) throw failure('DrillRefused', "cluster-loss: restore.unsealSharesFile is not set: nobody could unseal the restored cluster with the backed-up cluster's shares");
    return new VaultHaDriver(env);
  }

  /** The backed-up cluster's unseal shares (read at the point of use; errors name the file, never a share). */
  function shares(): string[] {
    const file = cfg.restore.unsealSharesFile!;
    const json = readSecretJson(file, (problem) => failure('KeyMaterialMissing', `restore.unsealSharesFile ${file} is ${problem}`)) as { keys_base64?: string[]; unseal_keys_b64?: string[] } | null;
    const out = json?.keys_base64 ?? json?.unseal_keys_b64 ?? [];
    if (!out.length) throw failure('KeyMaterialMissing', `restore.unsealSharesFile ${file} holds no shares (keys_base64 or unseal_keys_b64)`);
    return out;
  }

  return {
    /**
     * The cluster-loss drill's own steady state: the target may be lost (guard) and a verified
     * backup younger than 26 h exists to restore. Refuses with DrillSteadyStateNotHolding otherwise.
     */
    async checkClusterLossReady(): Promise<{ backup: LatestBackup; target: string }> {
      guard();
      const newest = (await new BackupCatalog(deps.s3, cfg.s3.bucket).list()).find((b) => b.status === 'verified');
      if (!newest) throw failure('DrillSteadyStateNotHolding', `cluster-loss: no verified backup in bucket ${cfg.s3.bucket}: nothing to restore, nothing injected`);
      const ageSeconds = Math.round((Date.now() - Date.parse(newest.createdAt)) / 1000);
      if (ageSeconds > MAX_BACKUP_AGE_SECONDS) throw failure('DrillSteadyStateNotHolding', `cluster-loss: the newest verified backup ${newest.backupId} is ${(ageSeconds / 3600).toFixed(1)} h old (over 26 h): fix the backups first, nothing injected`);
      return { backup: { backupId: newest.backupId, createdAt: newest.createdAt, ageSeconds }, target: norm(cfg.restore.productionAddress ?? cfg.vault.address) };
    },

    /** The fault: every node of the drill cluster stopped (SIGKILL) and its data removed. Recorded first. */
    async destroyDrillCluster(req: { drillId: string }): Promise<{ at: number; nodes: string[] }> {
      const d = guard();
      // A retry after a worker died mid-fault: the cluster is already (being) lost; keep the first time.
      const earlier = fs.existsSync(pendingFile) ? (JSON.parse(fs.readFileSync(pendingFile, 'utf8')) as { drillId: string; at: number }) : undefined;
      const at = earlier?.drillId === req.drillId ? earlier.at : Date.now();
      fs.mkdirSync(path.dirname(pendingFile), { recursive: true });
      fs.writeFileSync(pendingFile, JSON.stringify({ drillId: req.drillId, at }));
      const stop = keepHeartbeating(() => ({ stage: 'losing every node' }), 2000);
      try {
        const r = await d.loseCluster();
        return { at, nodes: r.nodes };
      } finally {
        stop();
      }
    },

    /** A new, empty cluster (first node only, fresh sys/init, unsealed, active): where the backup goes. */
    async buildEmptyCluster(): Promise<{ node: string; clusterId: string }> {
      const d = guard();
      const stop = keepHeartbeating(() => ({ stage: 'building an empty cluster' }), 2000);
      try {
        return await d.buildEmptyCluster();
      } finally {
        stop();
      }
    },

    /**
     * The custodians' part after the snapshot was forced into the new cluster: unseal it with the
     * backed-up cluster's shares (restore.unsealSharesFile), then start the other nodes empty and
     * unseal them so they join. Returns when every node serves the restored cluster.
     */
    async unsealRestoredCluster(req: { expectClusterId: string; timeoutSeconds: number }): Promise<{ nodes: NodeSeal[]; unsealedMs: number }> {
      const d = guard();
      let stage = 'starting';
      const stop = keepHeartbeating(() => ({ stage }), 2000);
      try {
        return await d.unsealRestoredCluster(shares(), req.expectClusterId, req.timeoutSeconds * 1000, (s) => (stage = s));
      } finally {
        stop();
      }
    },

    /** Every node unsealed under the restored cluster's id, exactly one active, HAProxy routing to it. */
    async checkRestoredCluster(req: { expectClusterId: string }): Promise<{ nodes: NodeSeal[]; active: string; viaProxy: string }> {
      const d = guard();
      const problems: string[] = [];
      let nodes: NodeSeal[] = [];
      let via = '';
      // HAProxy marks the active node up within a few checks (downinter 500 ms, rise 1-2).
      for (let i = 0; i < 30; i++) {
        nodes = await d.seals();
        problems.length = 0;
        for (const n of nodes) {
          if (n.status === undefined) problems.push(`${n.name}: no answer`);
          else if (n.sealed) problems.push(`${n.name}: sealed`);
          else if (n.clusterId !== req.expectClusterId) problems.push(`${n.name}: serves cluster ${n.clusterId}, not the restored ${req.expectClusterId}`);
        }
        const active = nodes.filter((n) => n.active);
        if (active.length !== 1) problems.push(`${active.length} active node(s)`);
        const r = await fetch(`${deps.env!.haproxyAddr}/v1/sys/health`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
        via = r?.headers.get('x-served-by') ?? '';
        if (r?.status !== 200 || via !== active[0]?.name) problems.push(`HAProxy answers HTTP ${r?.status ?? '-'} from ${via || 'nobody'}`);
        if (!problems.length) return { nodes, active: active[0]!.name, viaProxy: via };
        await new Promise((res) => setTimeout(res, 500));
      }
      throw failure('VerificationFailed', `cluster-loss: the restored cluster is not whole: ${problems.join('; ')}`);
    },

    /**
     * The revert: the drill cluster rebuilt from nothing to its normal state (the same path as a
     * first `npm run ha:up`), whatever the drill left (lost, half-built, restored). Idempotent.
     */
    async rebuildDrillCluster(): Promise<{ seconds: number; steps: number }> {
      const env = deps.env;
      if (!env?.lifecycle) throw failure('DrillRefused', 'cluster-loss: this worker controls no drill cluster it can rebuild (ha.harnessDir is not set here)');
      const t0 = Date.now();
      const stop = keepHeartbeating(() => ({ stage: 'rebuilding the drill cluster' }), 2000);
      try {
        const steps = await new VaultHaDriver(env).rebuildCluster();
        fs.rmSync(pendingFile, { force: true });
        return { seconds: (Date.now() - t0) / 1000, steps: steps.length };
      } finally {
        stop();
      }
    },
  };
};

export type ClusterLossActivities = ReturnType<typeof clusterLossActivities>;
