// Restore activities: choose a verified backup, prove it decrypts and parses before any target is
// touched, run a throwaway staging OpenBao, stream the decrypted snapshot into it, unseal it with
// the source cluster's shares, check the canary and the configured secrets, record RTO/RPO.
// Key material (validation key, unseal shares, validator credentials) is read from files on this
// worker's host at the point of use; none of it enters workflow history.
import { PassThrough, type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as fs from 'node:fs';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { Agent, fetch } from 'undici';
import { backupObjectKeys, manifestProblem, type BackupManifest } from '../../common/backup';
import { ErrorType, failure as fail } from '../../common/errors';
import { RESTORE_HISTORY_PREFIX, type KeySource, type RestoreRecord, type SecretCheck } from '../../common/restore';
import type { ShareIntake } from '../../infra/vault/shareIntake';
import { kvInventory } from '../../infra/vault/kvInventory';
import { BackupFormatError, createDecryptor } from '../../infra/crypto/backupFormat';
import type { Config } from '../../infra/config';
import { readSecretFile } from '../../infra/config';
import { readSecretJson } from '../../infra/secretFile';
import { loadPrivateKeyFile } from '../../infra/crypto/keys';
import { getJsonObject, listAllKeys, putJsonObject } from '../../infra/store/objects';
import { readStaging, restartStaging, stagingApi as openbaoApi, stagingRoot, stagingToken, startStaging, stopStaging, unsealWithShares } from '../../infra/vault/stagingVault';
import { VerifyError, verifyStoredBackup } from '../../infra/crypto/verifyBackup';
import { BackupCatalog } from '../../infra/store/catalog';
import { heartbeating, keepHeartbeating, withHeartbeats } from '../heartbeat';
import { watchProgress } from '../progress';

/** How long a target may take to apply a fully sent snapshot before the restore attempt fails. */
const SNAPSHOT_FORCE_ANSWER_MS = 10 * 60_000;

export interface SelectedBackup {
  backupId: string;
  createdAt: string;
  raftIndex: number;
  objectBytes: number;
  canary: { path: string; marker: string };
  kv?: BackupManifest['kv'];
}

/** The workflow this activity runs for (shares and keys are kept per workflow). */
function currentWorkflowId(): string {
  const id = Context.current().info.workflowExecution?.workflowId;
  if (!id) throw fail(ErrorType.InvalidInput, 'this activity must run inside a workflow');
  return id;
}

/** Where a restore goes: a throwaway staging server, or the configured production cluster. */
export type RestoreTarget = { kind: 'staging'; stagingId: string } | { kind: 'production' };

export interface ProductionPlan {
  targetAddress: string;
  targetInitialized: boolean;
  targetSealed: boolean;
  targetClusterId: string;
  /** Raft committed index of the target now (0 when unknown: sealed or uninitialised). */
  targetRaftIndex: number;
  backupId: string;
  backupRaftIndex: number;
  backupClusterId: string;
  backupCreatedAt: string;
  /** The backup is behind the data the target holds now: replacing it loses writes. */
  older: boolean;
  sameCluster: boolean;
}

/** The activities the workflows call with the STORE_IO profile (heartbeat timeout 20 s): each heartbeats while it runs. */
export const RESTORE_STORE_IO = ['planProductionRestore', 'checkTargetUnsealed', 'selectBackup', 'openShareIntake', 'closeShareIntake', 'recordRestore'] as const;

export const restoreActivities = (deps: { s3: S3Client; cfg: Config; intake?: ShareIntake }) => {
  const { s3, cfg } = deps;
  const bucket = cfg.s3.bucket;
  const root = stagingRoot(cfg.restore.stagingDir);
  const catalog = new BackupCatalog(s3, bucket);
  const manifestOf = async (backupId: string) => {
    const m = await catalog.manifest(backupId);
    if (!m) throw fail(ErrorType.BackupNotFound, `backup ${backupId}: manifest ${backupObjectKeys(backupId).manifest} not found in bucket ${bucket}`);
    const problem = manifestProblem(backupId, m);
    if (problem) throw fail(ErrorType.BackupCorrupt, `backup ${backupId}: ${problem}; refusing to restore it`);
    return m;
  };
  const decryptKey = (keySource: KeySource = 'validation-key') => {
    if (keySource === 'custodian-shares') {
      const workflowId = currentWorkflowId();
      const key = deps.intake?.keyFor(workflowId);
      // Shares live in this worker's memory only: after a worker restart they must be submitted again.
      if (!key) throw fail(ErrorType.KeyMaterialMissing, `the custodian shares for ${workflowId} are not on this worker (restarted?): submit them again and restart the restore`);
      return key;
    }
    const file = cfg.backup.validationKeyFile;
    if (!file) throw fail(ErrorType.KeyMaterialMissing, 'backup.validationKeyFile is not set on this restore worker: it cannot decrypt backups');
    try {
      return loadPrivateKeyFile(file);
    } catch (err) {
      throw fail(ErrorType.KeyMaterialMissing, (err as Error).message);
    }
  };

  const productionAddress = () => cfg.restore.productionAddress ?? cfg.vault.address;
  // Production is reached over TLS signed by vault.caFile when set; staging is plain loopback.
  let productionAgent: Agent | undefined;
  const productionDispatcher = () => (cfg.vault.caFile ? (productionAgent ??= new Agent({ connect: { ca: fs.readFileSync(cfg.vault.caFile) } })) : undefined);
  // Every call to a restore target: production ones carry vault.caFile's trust.
  const stagingApi = (address: string, method: string, p: string, token?: string, body?: unknown) => openbaoApi(address, method, p, token, body, address === productionAddress() ? productionDispatcher() : undefined);
  /** Address and a token allowed to restore snapshots there; read at the point of use. */
  const targetOf = (t: RestoreTarget): { address: string; token: () => string; label: string; dispatcher?: Agent } => {
    if (t.kind === 'production') {
      const file = cfg.restore.productionTokenFile;
      if (!file) throw fail(ErrorType.KeyMaterialMissing, 'restore.productionTokenFile is not set: this worker cannot restore production');
      return { address: productionAddress(), token: () => readSecretFile(file, 'restore.productionTokenFile'), label: `production ${productionAddress()}`, dispatcher: productionDispatcher() };
    }
    const info = readStaging(root, t.stagingId);
    if (!info) throw fail('StagingMissing', `staging ${t.stagingId} is gone (worker host changed?)`, false);
    return { address: info.address, token: () => stagingToken(info), label: `staging ${info.address}` };
  };

  /** One look at the target: unsealed, active and serving the expected cluster's data, 3 times over 2 s. */
  const probeUnsealed = async (req: { target: RestoreTarget; expectClusterId: string }): Promise<{ unsealed: boolean; detail: string }> => {
    const { address } = targetOf(req.target);
    for (let i = 0; i < 3; i++) {
      const h = await stagingApi(address, 'GET', 'sys/health?standbyok=true&sealedcode=200&uninitcode=200').catch(() => undefined);
      if (!h) return { unsealed: false, detail: `${address} unreachable (restarting?)` };
      if (h.json.sealed || h.json.standby) return { unsealed: false, detail: `${address} is ${h.json.sealed ? 'sealed' : 'standby'}` };
      if (req.expectClusterId && h.json.cluster_id !== req.expectClusterId) {
        return { unsealed: false, detail: `${address} still serves its pre-restore data (cluster ${h.json.cluster_id}) and should seal itself` };
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    return { unsealed: true, detail: `${address} is unsealed and active with the restored data` };
  };

  return withHeartbeats({
    /** What a production restore would replace: shown to the approver before anything is touched. */
    async planProductionRestore(req: { backupId: string }): Promise<ProductionPlan> {
      const m = await manifestOf(req.backupId);
      const address = productionAddress();
      const health = await stagingApi(address, 'GET', 'sys/health?standbyok=true&sealedcode=200&uninitcode=200').catch((err: Error) => {
        throw fail(ErrorType.VaultUnreachable, `production target ${address} unreachable: ${err.message}`, false);
      });
      const leader = health.json.sealed ? { json: {} as Record<string, unknown> } : await stagingApi(address, 'GET', 'sys/leader');
      const targetRaftIndex = Number(leader.json.raft_committed_index ?? 0);
      return {
        targetAddress: address,
        targetInitialized: !!health.json.initialized,
        targetSealed: !!health.json.sealed,
        targetClusterId: String(health.json.cluster_id ?? ''),
        targetRaftIndex,
        backupId: m.backupId,
        backupRaftIndex: m.snapshot.raftIndex,
        backupClusterId: m.snapshot.clusterId,
        backupCreatedAt: m.createdAt,
        older: targetRaftIndex > 0 && String(health.json.cluster_id ?? '') === m.snapshot.clusterId ? m.snapshot.raftIndex < targetRaftIndex : targetRaftIndex > m.snapshot.raftIndex,
        sameCluster: String(health.json.cluster_id ?? '') === m.snapshot.clusterId,
      };
    },

    /**
     * Whether the restored data is live: the target is unsealed, active and reports the backed-up
     * cluster's id, steadily for a few seconds. (Right after a forced restore a node keeps serving
     * its old keyring under its old cluster id for a moment, then seals itself.)
     */
    async checkTargetUnsealed(req: { target: RestoreTarget; expectClusterId: string }): Promise<{ unsealed: boolean; detail: string }> {
      return probeUnsealed(req);
    },

    /**
     * pollUntil's activity for "the restored target is unsealed and serves the backup's data":
     * probes every 5 s, heartbeating each probe, until it holds or `untilIso` passes. The wait
     * lives here, not in workflow timers, so a day of waiting is a few dozen history events.
     */
    async pollTargetUnsealed(req: { target: RestoreTarget; expectClusterId: string; untilIso: string; everySeconds?: number }): Promise<{ done: boolean; detail: string }> {
      const until = Date.parse(req.untilIso);
      const every = Math.max(1, req.everySeconds ?? 5) * 1000;
      for (;;) {
        const r = await probeUnsealed(req);
        Context.current().heartbeat({ detail: r.detail });
        if (r.unsealed || Date.now() + every > until) return { done: r.unsealed, detail: r.detail };
        await Context.current().sleep(every); // rejects when the workflow cancels (delivered with the heartbeat)
      }
    },

    /** Resolves "latest" to the newest verified backup and returns its (non-secret) facts. */
    async selectBackup(req: { backupId: string }): Promise<SelectedBackup> {
      let id = req.backupId;
      if (id === 'latest') {
        const list = await catalog.list();
        const newest = list.find((b) => b.status === 'verified');
        if (!newest) throw fail(ErrorType.BackupNotFound, `no verified backup in bucket ${bucket}`);
        id = newest.backupId;
      }
      const m = await manifestOf(id);
      if (m.status !== 'verified') throw fail(ErrorType.BackupNotFound, `backup ${id} was never verified after upload (status ${m.status}); refusing to restore it`);
      return { backupId: id, createdAt: m.createdAt, raftIndex: m.snapshot.raftIndex, objectBytes: m.object.bytes, canary: m.canary, kv: m.kv };
    },

    /** Full check before any target is touched: download, checksums, decrypt, raft snapshot structure. */
    async verifyBackupBeforeRestore(req: { backupId: string; keySource?: KeySource }): Promise<{ plaintextBytes: number; raftIndex: number; checks: string[] }> {
      const manifest = await manifestOf(req.backupId);
      const key = decryptKey(req.keySource);
      let done = 0;
      const ac = new AbortController();
      // Heartbeats only while bytes move; a download that stalls for the heartbeat timeout is aborted.
      const watch = watchProgress({ what: `verify of ${req.backupId}`, bytes: () => done, details: () => ({ stage: 'verify', bytes: done }), onStall: (err) => ac.abort(err) });
      const stopBeats = () => watch.stop();
      try {
        const r = await verifyStoredBackup({ s3, manifest, privateKey: key, onProgress: (n) => (done = n), signal: ac.signal });
        return { plaintextBytes: r.plaintextBytes, raftIndex: r.raftIndex, checks: r.checks };
      } catch (err) {
        // A download problem is worth retrying; anything else means the backup itself is bad.
        if (err instanceof VerifyError && err.reason.startsWith('download failed')) throw fail(ErrorType.StoreUnreachable, err.message, false);
        throw fail(ErrorType.BackupCorrupt, `${(err as Error).message}; the target was not touched`);
      } finally {
        stopBeats();
        key.fill(0);
      }
    },

    /** Starts a fresh throwaway OpenBao (raft) on loopback; idempotent per stagingId. */
    async startStagingVault(req: { stagingId: string }): Promise<{ stagingId: string; address: string }> {
      return heartbeating('startStagingVault', async () => {
        const info = await startStaging({ root, stagingId: req.stagingId, baoBinary: cfg.restore.baoBinary });
        return { stagingId: info.stagingId, address: info.address };
      });
    },

    /** Streams S3 → decrypt → POST sys/storage/raft/snapshot-force into staging. Memory bounded by the chunk size. */
    async restoreSnapshot(req: { backupId: string; target: RestoreTarget; keySource?: KeySource }): Promise<{ bytes: number }> {
      const ctx = Context.current();
      if (req.target.kind === 'staging' && ctx.info.attempt > 1) {
        // An earlier attempt may have died mid-restore and left staging sealed or half-written:
        // start from a fresh staging server rather than trust it.
        await stopStaging(root, req.target.stagingId);
        await startStaging({ root, stagingId: req.target.stagingId, baoBinary: cfg.restore.baoBinary });
      }
      const target = targetOf(req.target);
      const manifest = await manifestOf(req.backupId);
      const key = decryptKey(req.keySource);
      const source = `s3://${bucket}/${manifest.object.key}`;
      // One abort for the download, the decryptor and the POST: whichever fails, all stop.
      const ac = new AbortController();
      let downloaded = 0;
      let bytes = 0;
      let stalled: Error | undefined;
      const stop = (err: Error) => {
        stalled = err;
        ac.abort(err);
      };
      // Heartbeats only while bytes move; nothing moving for the heartbeat timeout fails the attempt here too.
      const watch = watchProgress({ what: `restore of ${req.backupId} (${source} → ${target.label})`, bytes: () => downloaded, details: () => ({ stage: 'restore', bytes: downloaded }), onStall: stop });
      let stopAnswerWait = () => undefined as void;
      try {
        const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifest.object.key, VersionId: manifest.object.versionId }), { abortSignal: ac.signal });
        const downloading = new Transform({
          transform(chunk: Buffer, _e, cb) {
            downloaded += chunk.length;
            cb(null, chunk);
          },
        });
        const count = new Transform({
          transform(chunk: Buffer, _e, cb) {
            bytes += chunk.length;
            cb(null, chunk);
          },
        });
        const body = new PassThrough();
        // pipeline, not .pipe(): an S3 error or a bad chunk destroys every stage, so the POST
        // below fails at once instead of waiting on a body that never ends.
        const flowing = pipeline(res.Body as Readable, downloading, createDecryptor(key), count, body, { signal: ac.signal });
        const post = fetch(`${target.address}/v1/sys/storage/raft/snapshot-force`, {
          method: 'POST',
          headers: { 'X-Vault-Token': target.token(), 'Content-Type': 'application/octet-stream' },
          body,
          duplex: 'half',
          signal: ac.signal,
          dispatcher: target.dispatcher,
        });
        const sent = flowing.then(() => {
          // Every byte is handed over: OpenBao now applies the snapshot. No bytes move while it
          // does, so heartbeats go on a timer here, bounded by the answer deadline.
          watch.stop();
          const stopBeats = keepHeartbeating(() => ({ stage: 'restore: waiting for the target to apply the snapshot', bytes }));
          const deadline = setTimeout(() => stop(new Error(`${target.label} did not answer within ${SNAPSHOT_FORCE_ANSWER_MS / 1000}s after the whole snapshot was sent`)), SNAPSHOT_FORCE_ANSWER_MS);
          stopAnswerWait = () => {
            stopBeats();
            clearTimeout(deadline);
          };
          return post;
        });
        // The target may answer before reading everything (a refused token): that answer wins.
        const answer = await Promise.race([post, sent]);
        if (answer.status !== 204 && answer.status !== 200) {
          const text = await answer.text();
          throw fail('RestoreRejected', `${target.label} refused the snapshot: HTTP ${answer.status} ${text.slice(0, 300)}`, false);
        }
        await answer.body?.cancel().catch(() => undefined);
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        if (err instanceof BackupFormatError) throw fail(ErrorType.BackupCorrupt, `backup ${req.backupId} failed during restore: ${err.message}`);
        if (stalled) throw fail(ErrorType.TransferStalled, `${stalled.message}; ${downloaded} of ${manifest.object.bytes} bytes downloaded`, false);
        const e = err as Error & { cause?: { code?: string; message?: string } };
        const why = e.cause?.code ?? e.cause?.message ?? e.message;
        throw fail(ErrorType.StoreUnreachable, `restore of ${req.backupId} failed mid-stream after ${downloaded} of ${manifest.object.bytes} bytes from ${source} (→ ${target.label}): ${why}`, false);
      } finally {
        watch.stop();
        stopAnswerWait();
        ac.abort();
        key.fill(0);
      }
      return { bytes };
    },

    /** The restored snapshot is sealed with its source cluster's keys: unseal with those shares. */
    async unsealTarget(req: { stagingId: string }): Promise<{ threshold: number }> {
      return heartbeating('unsealTarget', async () => {
        const info = readStaging(root, req.stagingId);
        if (!info) throw fail('StagingMissing', `staging ${req.stagingId} is gone`, false);
        const file = cfg.restore.unsealSharesFile;
        if (!file) throw fail(ErrorType.KeyMaterialMissing, 'restore.unsealSharesFile is not set: the restored cluster cannot be unsealed automatically');
        // `sys/init` answers keys_base64; `bao operator init -format=json` prints unseal_keys_b64.
        // readSecretJson: the error names the file and the problem, never the shares.
        const json = readSecretJson(file, (problem) => fail(ErrorType.KeyMaterialMissing, `restore.unsealSharesFile ${file} is ${problem}`)) as { keys_base64?: string[]; unseal_keys_b64?: string[] } | null;
        const shares = json?.keys_base64 ?? json?.unseal_keys_b64 ?? [];
        try {
          const restarted = await restartStaging(info, cfg.restore.baoBinary);
          return { threshold: await unsealWithShares(restarted.address, shares) };
        } catch (err) {
          throw fail('UnsealFailed', `cannot unseal the restored staging cluster: ${(err as Error).message}`);
        }
      });
    },

    /** Reads the canary and every configured path with the restore-validator's credentials. */
    async verifyRestoredSecrets(req: { target: RestoreTarget; canary: { path: string; marker: string }; kv?: BackupManifest['kv'] }): Promise<SecretCheck> {
      return heartbeating('verifyRestoredSecrets', async () => {
        const info = targetOf(req.target);
        if (!cfg.restore.validatorRoleIdFile || !cfg.restore.validatorSecretIdFile) throw fail(ErrorType.KeyMaterialMissing, 'restore.validatorRoleIdFile/validatorSecretIdFile are not set');
        const login = await stagingApi(info.address, 'POST', 'auth/approle/login', undefined, {
          role_id: readSecretFile(cfg.restore.validatorRoleIdFile, 'restore.validatorRoleIdFile'),
          secret_id: readSecretFile(cfg.restore.validatorSecretIdFile, 'restore.validatorSecretIdFile'),
        });
        if (login.status !== 200) throw fail(ErrorType.VaultAuthFailed, `restore-validator login on the restored cluster failed: HTTP ${login.status} ${(login.json.errors ?? []).join('; ')}`);
        const token = login.json.auth.client_token as string;
        const canaryRes = await stagingApi(info.address, 'GET', req.canary.path, token);
        const found = (canaryRes.json?.data?.data?.marker as string | undefined) ?? `(HTTP ${canaryRes.status})`;
        const check: SecretCheck = { canary: { path: req.canary.path, expected: req.canary.marker, found, matches: found === req.canary.marker }, readable: [], unreadable: [] };
        for (const p of cfg.restore.checkPaths) {
          const r = await stagingApi(info.address, 'GET', p, token);
          // Only whether it is readable is recorded, never the value.
          if (r.status === 200 && r.json?.data?.data) check.readable.push(p);
          else check.unreadable.push({ path: p, error: `HTTP ${r.status}${r.json.errors?.length ? `: ${r.json.errors.join('; ')}` : ''}` });
        }
        if (req.kv) {
          // Compare the restored KV inventory with the range counted around the snapshot.
          const access = { get: async (p: string) => stagingApi(info.address, 'GET', p, token).then((r) => ({ status: r.status, body: r.json as unknown })) };
          const inv = await kvInventory(req.kv.mount, access);
          const paths: [number, number] = [Math.min(req.kv.pathsBefore, req.kv.pathsAfter), Math.max(req.kv.pathsBefore, req.kv.pathsAfter)];
          const versions: [number, number] = [Math.min(req.kv.versionsBefore, req.kv.versionsAfter), Math.max(req.kv.versionsBefore, req.kv.versionsAfter)];
          const within = (n: number, [lo, hi]: [number, number]) => n >= lo && n <= hi;
          check.kv = { mount: req.kv.mount, paths: inv.paths, versions: inv.versions, expected: { paths, versions }, matches: within(inv.paths, paths) && within(inv.versions, versions) };
        }
        await stagingApi(info.address, 'POST', 'auth/token/revoke-self', token).catch(() => undefined);
        return check;
      });
    },

    /** Opens this worker's share intake for a restore: custodians then submit shares directly. */
    async openShareIntake(req: { backupId: string }): Promise<{ recipients: string[]; endpoint: string }> {
      if (!deps.intake) throw fail(ErrorType.KeyMaterialMissing, 'this worker has no share intake');
      const m = await manifestOf(req.backupId);
      deps.intake.open(currentWorkflowId(), m.encryption.recipients);
      return { recipients: m.encryption.recipients, endpoint: `http://${cfg.restore.shareIntakeListen}/shares/` };
    },

    /** Forgets the shares and the rebuilt key of a restore (runs on success and on failure). */
    async closeShareIntake(): Promise<void> {
      deps.intake?.close(currentWorkflowId());
    },

    /** Stops the staging server and removes its data (runs on success and on failure). */
    async teardownStaging(req: { stagingId: string }): Promise<{ result: 'stopped' | 'absent' }> {
      return heartbeating('teardownStaging', async () => {
        return { result: await stopStaging(root, req.stagingId) };
      });
    },

    /** Appends the restore (with RTO/RPO) to the restore history in S3. */
    async recordRestore(req: { record: RestoreRecord }): Promise<{ key: string }> {
      const key = `${RESTORE_HISTORY_PREFIX}${req.record.restoreId}.json`;
      await putJsonObject(s3, bucket, key, req.record);
      return { key };
    },

    /** The restore history, newest first (CLI and monitoring). */
    async listRestoreHistory(req: { limit: number }): Promise<RestoreRecord[]> {
      const keys = await listAllKeys(s3, bucket, RESTORE_HISTORY_PREFIX);
      keys.sort().reverse();
      const out: RestoreRecord[] = [];
      for (const k of keys.slice(0, req.limit)) {
        const r = await getJsonObject<RestoreRecord>(s3, bucket, k);
        if (r) out.push(r);
      }
      return out;
    },
  }, RESTORE_STORE_IO);
};

export type RestoreActivities = ReturnType<typeof restoreActivities>;
