// Seal/unseal drill activities (restore role: the staging host and the custodian share intake).
// A throwaway OpenBao made for the drill (its shares written as files for the participants), a
// canary written into it, a seal, proof that the API refuses, the shares handed by custodians to
// the intake (never through Temporal) which forwards each one to sys/unseal, proof it serves again.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Context } from '@temporalio/activity';
import { ErrorType, failure as fail } from '../../common/errors';
import type { Config } from '../../infra/config';
import type { ShareIntake, UnsealTarget } from '../../infra/vault/shareIntake';
import { readStaging, stagingApi, stagingRoot, stagingToken, startStaging, stopStaging, waitActive } from '../../infra/vault/stagingVault';
import { heartbeating } from '../heartbeat';

export interface DrillTarget {
  address: string;
  stagingId: string;
}

const CANARY = 'secret/data/vault-dr/drill-canary';

function workflowId(): string {
  const id = Context.current().info.workflowExecution?.workflowId;
  if (!id) throw fail(ErrorType.InvalidInput, 'this activity must run inside a workflow');
  return id;
}

/** The unseal target the intake forwards shares to: a staging server on loopback. */
export function stagingUnsealTarget(address: string): UnsealTarget {
  return {
    address,
    label: `openbao:${address}`,
    async unseal(key: string) {
      const r = await stagingApi(address, 'POST', 'sys/unseal', undefined, { key });
      return { status: r.status, sealed: r.json.sealed, progress: r.json.progress, t: r.json.t, errors: r.json.errors };
    },
  };
}

export const sealDrillActivities = (deps: { cfg: Config; intake?: ShareIntake }) => {
  const root = stagingRoot(deps.cfg.restore.stagingDir);
  const info = (stagingId: string) => {
    const i = readStaging(root, stagingId);
    if (!i) throw fail('StagingMissing', `drill server ${stagingId} is gone (worker host changed?)`, false);
    return i;
  };
  return {
    /** A throwaway OpenBao with `shares`/`threshold` custodian shares (files for the participants) and a canary. */
    async startDrillVault(req: { stagingId: string; shares: number; threshold: number }): Promise<DrillTarget & { shareFiles: string[]; canaryPath: string }> {
      return heartbeating('startDrillVault', async () => {
        const s = await startStaging({ root, stagingId: req.stagingId, baoBinary: deps.cfg.restore.baoBinary, seal: { shares: req.shares, threshold: req.threshold } });
        const token = stagingToken(s);
        await stagingApi(s.address, 'POST', 'sys/mounts/secret', token, { type: 'kv', options: { version: '2' } });
        const marker = `drill-${crypto.randomBytes(6).toString('hex')}`;
        const w = await stagingApi(s.address, 'POST', CANARY, token, { data: { marker } });
        if (w.status !== 200) throw fail(ErrorType.VaultRequestRejected, `drill canary write: HTTP ${w.status}`);
        fs.writeFileSync(path.join(s.dir, 'canary.txt'), marker, { mode: 0o600 });
        const dir = path.join(s.dir, 'custodian-shares');
        const shareFiles = fs.existsSync(dir) ? fs.readdirSync(dir).sort().map((f) => path.join(dir, f)) : [];
        return { address: s.address, stagingId: s.stagingId, shareFiles, canaryPath: CANARY };
      });
    },

    /** POST sys/seal (root token of the drill server); how long the call took. */
    async sealVault(req: DrillTarget): Promise<{ ms: number; detail: string }> {
      const t0 = Date.now();
      const r = await stagingApi(req.address, 'POST', 'sys/seal', stagingToken(info(req.stagingId)));
      if (r.status !== 204 && r.status !== 200) throw fail(ErrorType.VaultRequestRejected, `sys/seal at ${req.address}: HTTP ${r.status} ${(r.json.errors ?? []).join('; ')}`);
      return { ms: Date.now() - t0, detail: `${req.address} sealed` };
    },

    /** The API refuses while sealed: the canary read and sys/health answer 503 "sealed". */
    async proveRefuses(req: DrillTarget): Promise<{ refused: boolean; detail: string }> {
      const read = await stagingApi(req.address, 'GET', CANARY, stagingToken(info(req.stagingId)));
      const health = await stagingApi(req.address, 'GET', 'sys/health');
      const refused = read.status === 503 && health.status === 503 && health.json.sealed === true;
      return { refused, detail: `canary read: HTTP ${read.status} ${(read.json.errors ?? []).join('; ')}; sys/health: HTTP ${health.status} sealed=${String(health.json.sealed)}` };
    },

    /** Opens the share intake for this drill: each submitted share goes straight to sys/unseal. */
    async openUnsealIntake(req: DrillTarget): Promise<{ endpoint: string }> {
      if (!deps.intake) throw fail(ErrorType.KeyMaterialMissing, 'this worker has no share intake (restore.shareIntakeTokensFile unset)');
      deps.intake.openUnseal(workflowId(), stagingUnsealTarget(req.address));
      return { endpoint: `http://${deps.cfg.restore.shareIntakeListen}/shares/` };
    },

    async closeUnsealIntake(): Promise<void> {
      deps.intake?.close(workflowId());
    },

    /** Serves again: active, and the canary reads back what was written before the seal. */
    async proveServes(req: DrillTarget): Promise<{ serves: boolean; detail: string }> {
      return heartbeating('proveServes', async () => {
        const i = info(req.stagingId);
        await waitActive(req.address, 30_000);
        const expected = fs.readFileSync(path.join(i.dir, 'canary.txt'), 'utf8');
        const r = await stagingApi(req.address, 'GET', CANARY, stagingToken(i));
        const found = r.json.data?.data?.marker as string | undefined;
        return { serves: r.status === 200 && found === expected, detail: r.status === 200 ? `canary ${found === expected ? 'reads back' : 'DIFFERS'} after the unseal` : `canary read: HTTP ${r.status}` };
      });
    },

    async teardownDrillVault(req: { stagingId: string }): Promise<{ result: 'stopped' | 'absent' }> {
      return heartbeating('teardownDrillVault', async () => ({ result: await stopStaging(root, req.stagingId) }));
    },
  };
};

export type SealDrillActivities = ReturnType<typeof sealDrillActivities>;
