// rotateUnsealKeys activities (restore role: the unseal-ceremony token, the staging host, the share
// intake, the backup bucket). OpenBao's authenticated root-key rotation (sys/rotate/root/*, 2.4+)
// with the custodians' PGP keys and require_verification: custodians submit their CURRENT shares
// straight to OpenBao (`vaultdr keys rotate-submit`) and verify with their NEW ones
// (`vaultdr keys rotate-verify`); these activities only start the ceremony, watch its progress,
// hand out the PGP-encrypted new shares (OpenBao's backup copy, encrypted to each custodian), prove
// the new shares on a throwaway copy, and record the new key generation. No share passes here in
// the clear, and none is returned to the workflow.
import * as fs from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { Agent, fetch } from 'undici';
import { BACKUP_PREFIX, type BackupManifest } from '../../common/backup';
import { ErrorType, failure as fail } from '../../common/errors';
import { generationsKey, UNSEAL_KEYS_PREFIX, type GenerationsFile, type UnsealKeyGeneration } from '../../common/unsealKeys';
import type { Config } from '../../infra/config';
import { readSecretFile } from '../../infra/config';
import { getJsonObject, listAllKeys, putJsonObject } from '../../infra/store/objects';
import { armorEncryptedShare, loadCustodians, pgpKeyForBao } from '../../infra/unsealKeys';
import { readStaging, restartStaging, stagingApi, stagingRoot, stagingToken, startStaging, waitActive } from '../../infra/vault/stagingVault';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { heartbeating } from '../heartbeat';

export interface RotationStarted {
  address: string;
  clusterId: string;
  nonce: string;
  /** Current shares needed to authorise the rotation. */
  required: number;
  shares: number;
  threshold: number;
  custodians: { name: string; fingerprint: string }[];
  reused: boolean;
}

export const unsealRotationActivities = (deps: { cfg: Config; s3: S3Client }) => {
  const { cfg, s3 } = deps;
  const bucket = cfg.s3.bucket;
  const address = cfg.rotation.unsealAddress ?? cfg.vault.address;
  let agent: Agent | undefined;
  const dispatcher = () => (cfg.vault.caFile && address === cfg.vault.address ? (agent ??= new Agent({ connect: { ca: fs.readFileSync(cfg.vault.caFile) } })) : undefined);
  const token = () => {
    if (!cfg.rotation.unsealTokenFile) throw fail(ErrorType.KeyMaterialMissing, 'rotation.unsealTokenFile is not set: this worker has no token allowed sys/rotate/root/* (sudo)');
    return readSecretFile(cfg.rotation.unsealTokenFile, 'rotation.unsealTokenFile');
  };
  const bao = async (method: string, p: string, body?: unknown) => {
    const r = await stagingApi(address, method, p, token(), body, dispatcher()).catch((err: Error) => {
      throw fail(ErrorType.VaultUnreachable, `${method} ${address}/v1/${p}: ${err.message}`, false);
    });
    if (r.status === 503) throw fail(ErrorType.VaultSealed, `${address} is sealed or unavailable: the rotation needs it unsealed`);
    if (r.status === 403) throw fail(ErrorType.VaultAuthFailed, `${method} ${p}: permission denied for rotation.unsealTokenFile's token (it needs sudo on sys/rotate/root/*)`);
    return r;
  };
  const backupCopy = async (): Promise<{ nonce?: string; keys?: Record<string, string[]> }> => {
    const r = await bao('GET', 'sys/rotate/root/backup');
    if (r.status !== 200) return {};
    const d = (r.json.data ?? r.json) as { nonce?: string; keys?: Record<string, string[]> };
    return d;
  };
  const sleep = (ms: number) => Context.current().sleep(ms);

  return {
    /** POST sys/rotate/root/init with the custodians' PGP keys, require_verification and backup; resumes our own ceremony. */
    async initRootKeyRotation(req: { shares?: number; threshold: number }): Promise<RotationStarted> {
      const file = cfg.rotation.custodiansFile;
      if (!file) throw fail(ErrorType.KeyMaterialMissing, 'rotation.custodiansFile is not set: no custodian PGP keys to encrypt the new shares to');
      let keys;
      try {
        keys = await Promise.all(loadCustodians(file).map(pgpKeyForBao));
      } catch (err) {
        throw fail(ErrorType.ConfigInvalid, (err as Error).message);
      }
      const shares = req.shares ?? keys.length;
      if (shares !== keys.length) throw fail(ErrorType.InvalidInput, `field "shares": ${shares} shares need ${shares} custodian PGP keys; ${file} has ${keys.length}`);
      if (req.threshold > shares) throw fail(ErrorType.InvalidInput, 'field "threshold": must not exceed shares');
      const health = await bao('GET', 'sys/health');
      const clusterId = String(health.json.cluster_id ?? '');
      const custodians = keys.map((k) => ({ name: k.name, fingerprint: k.fingerprint }));
      const status = (await bao('GET', 'sys/rotate/root/init')).json.data ?? {};
      if (status.started) {
        const same = JSON.stringify(status.pgp_fingerprints ?? []) === JSON.stringify(keys.map((k) => k.fingerprint)) && status.n === shares && status.t === req.threshold;
        if (!same) throw fail('UnsealRotationFailed', `another root-key rotation is in progress on ${address} (nonce ${status.nonce}, ${status.n} shares); finish it or cancel it (bao operator rotate-keys -cancel) first`);
        return { address, clusterId, nonce: status.nonce, required: status.required, shares, threshold: req.threshold, custodians, reused: true };
      }
      const r = await bao('POST', 'sys/rotate/root/init', { secret_shares: shares, secret_threshold: req.threshold, pgp_keys: keys.map((k) => k.pgpKey), require_verification: true, backup: true });
      if (r.status !== 200) throw fail('UnsealRotationFailed', `sys/rotate/root/init at ${address}: HTTP ${r.status} ${(r.json.errors ?? []).join('; ')}`);
      return { address, clusterId, nonce: r.json.data.nonce, required: r.json.data.required, shares, threshold: req.threshold, custodians, reused: false };
    },

    /**
     * pollUntil's activity: watches one phase of the ceremony every `everySeconds` until it is
     * complete or `untilIso` passes. old-shares: done once OpenBao made the new shares (its backup
     * copy carries our nonce). verification: done once no verification is pending any more.
     */
    async pollRotationPhase(req: { nonce: string; phase: 'old-shares' | 'verification'; untilIso: string; everySeconds?: number }): Promise<{ done: boolean; detail: string }> {
      const until = Date.parse(req.untilIso);
      const every = Math.max(1, req.everySeconds ?? 2) * 1000;
      for (;;) {
        let r: { done: boolean; detail: string };
        const init = (await bao('GET', 'sys/rotate/root/init')).json.data ?? {};
        if (req.phase === 'old-shares') {
          const copy = await backupCopy();
          if (copy.nonce === req.nonce) r = { done: true, detail: 'the current-share threshold was reached: new shares made, encrypted to the custodians' };
          else if (!init.started || init.nonce !== req.nonce) throw fail('UnsealRotationFailed', `the rotation ${req.nonce} is no longer in progress on ${address} (cancelled, or replaced by ${init.nonce || 'none'}); the old shares stay valid`);
          else r = { done: false, detail: `${init.progress} of ${init.required} current shares submitted` };
        } else {
          const v = (await bao('GET', 'sys/rotate/root/verify')).json.data ?? {};
          if (v.started) r = { done: false, detail: `${v.progress} of ${v.t} new shares verified` };
          else if (init.started && init.nonce === req.nonce) r = { done: false, detail: 'waiting for the verification to start' };
          else r = { done: true, detail: 'verification complete: the new shares are in force, the old ones no longer unseal' };
        }
        Context.current().heartbeat({ detail: r.detail });
        if (r.done || Date.now() + every > until) return r;
        await sleep(every);
      }
    },

    /** Puts each custodian's PGP-encrypted new share (armoured) in the bucket for distribution. */
    async distributeEncryptedShares(req: { nonce: string; clusterId: string; custodians: { name: string; fingerprint: string }[] }): Promise<{ objects: string[] }> {
      return heartbeating('distributeEncryptedShares', async () => {
        const copy = await backupCopy();
        if (copy.nonce !== req.nonce || !copy.keys) throw fail('UnsealRotationFailed', `OpenBao holds no encrypted shares for rotation ${req.nonce} (backup copy ${copy.nonce ?? 'absent'})`);
        const objects: string[] = [];
        for (const c of req.custodians) {
          const hex = copy.keys[c.fingerprint]?.[0];
          if (!hex) throw fail('UnsealRotationFailed', `no encrypted share for custodian ${c.name} (${c.fingerprint})`);
          const key = `${UNSEAL_KEYS_PREFIX}${req.clusterId}/pending-${req.nonce}/${c.name.replace(/[^\w.@-]/g, '_')}.share.asc`;
          await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await armorEncryptedShare(hex), ContentType: 'application/pgp-encrypted' }));
          objects.push(key);
        }
        return { objects };
      });
    },

    /** A throwaway copy of the rotated cluster: its raft snapshot restored into staging, restarted, so it is sealed with the NEW keys. */
    async startKeyProofCopy(req: { stagingId: string }): Promise<{ address: string; stagingId: string; sealed: boolean }> {
      return heartbeating('startKeyProofCopy', async () => {
        const root = stagingRoot(cfg.restore.stagingDir);
        const s = await startStaging({ root, stagingId: req.stagingId, baoBinary: cfg.restore.baoBinary });
        const snap = await fetch(`${address}/v1/sys/storage/raft/snapshot`, { headers: { 'X-Vault-Token': token() }, dispatcher: dispatcher(), signal: AbortSignal.timeout(120_000) });
        if (snap.status !== 200 || !snap.body) throw fail(ErrorType.VaultRequestRejected, `snapshot of ${address}: HTTP ${snap.status}`);
        const bytes = Buffer.from(await snap.arrayBuffer());
        const put = await fetch(`${s.address}/v1/sys/storage/raft/snapshot-force`, { method: 'POST', headers: { 'X-Vault-Token': stagingToken(s), 'Content-Type': 'application/octet-stream' }, body: bytes, signal: AbortSignal.timeout(120_000) });
        if (put.status !== 204 && put.status !== 200) throw fail('RestoreRejected', `the copy refused the snapshot: HTTP ${put.status}`, false);
        await put.body?.cancel().catch(() => undefined);
        const restarted = await restartStaging(readStaging(root, req.stagingId)!, cfg.restore.baoBinary);
        const st = await stagingApi(restarted.address, 'GET', 'sys/seal-status');
        return { address: restarted.address, stagingId: req.stagingId, sealed: st.json.sealed === true };
      });
    },

    /** The copy, unsealed by the custodians' new shares, is active and is the rotated cluster. */
    async proveCopyServes(req: { address: string; expectClusterId: string }): Promise<{ ok: boolean; detail: string }> {
      return heartbeating('proveCopyServes', async () => {
        await waitActive(req.address, 30_000);
        const h = await stagingApi(req.address, 'GET', 'sys/health');
        const ok = h.status === 200 && h.json.cluster_id === req.expectClusterId;
        return { ok, detail: ok ? `the copy of cluster ${req.expectClusterId} unsealed with the new shares and is active` : `the copy answers HTTP ${h.status}, cluster ${String(h.json.cluster_id)}` };
      });
    },

    /**
     * Records the new generation in unseal-keys/<cluster>/generations.json; the one it replaces is
     * marked superseded with the backups that still need its shares (they stay escrowed until
     * retention deletes the newest of them). Then OpenBao's backup copy of the encrypted shares is
     * deleted: they are distributed. Idempotent per nonce.
     */
    async recordKeyGeneration(req: { nonce: string; clusterId: string; shares: number; threshold: number; custodians: { name: string; fingerprint: string }[]; distribution: string[] }): Promise<{ generation: number; previousGeneration: number; backupsStillNeedingPrevious: number; newestBackupNeedingPrevious?: string }> {
      return heartbeating('recordKeyGeneration', async () => {
        const key = generationsKey(req.clusterId);
        const file: GenerationsFile = (await getJsonObject<GenerationsFile>(s3, bucket, key)) ?? {
          clusterId: req.clusterId,
          current: 1,
          generations: [{ generation: 1, nonce: 'init', shares: 0, threshold: 0, custodians: [], distribution: [], createdAt: '(sys/init)', workflowId: '' }],
        };
        const mine = file.generations.find((g) => g.nonce === req.nonce);
        const prevGen = mine ? mine.generation - 1 : file.current;
        let needing = 0;
        let newest: string | undefined;
        if (!mine) {
          for (const k of (await listAllKeys(s3, bucket, BACKUP_PREFIX)).filter((x) => x.endsWith('/manifest.json'))) {
            const m = await getJsonObject<BackupManifest>(s3, bucket, k);
            if (!m || m.snapshot.clusterId !== req.clusterId || (m.unsealKeys?.generation ?? 1) !== prevGen) continue;
            needing++;
            if (!newest || m.createdAt > newest) newest = m.backupId;
          }
          const prev = file.generations.find((g) => g.generation === prevGen);
          if (prev) Object.assign(prev, { supersededAt: new Date().toISOString(), backupsStillNeedingIt: needing, ...(newest ? { newestBackupNeedingIt: newest } : {}) });
          const next: UnsealKeyGeneration = {
            generation: prevGen + 1,
            nonce: req.nonce,
            shares: req.shares,
            threshold: req.threshold,
            custodians: req.custodians,
            distribution: req.distribution,
            createdAt: new Date().toISOString(),
            workflowId: Context.current().info.workflowExecution?.workflowId ?? '',
          };
          file.generations.push(next);
          file.current = next.generation;
          await putJsonObject(s3, bucket, key, file);
        }
        await bao('DELETE', 'sys/rotate/root/backup').catch(() => undefined);
        const prevRec = file.generations.find((g) => g.generation === prevGen);
        return { generation: prevGen + 1, previousGeneration: prevGen, backupsStillNeedingPrevious: prevRec?.backupsStillNeedingIt ?? needing, ...(prevRec?.newestBackupNeedingIt ? { newestBackupNeedingPrevious: prevRec.newestBackupNeedingIt } : {}) };
      });
    },
  };
};

export type UnsealRotationActivities = ReturnType<typeof unsealRotationActivities>;
