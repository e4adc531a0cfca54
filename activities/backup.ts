// Backup activities: bucket compliance, the canary, the streaming snapshot → encrypt → S3
// multipart pipeline, verification after upload, and retention. Each is idempotent: object keys
// come from the backup id the workflow derives from its own id, and a retry first looks at what
// an earlier attempt left behind.
import * as crypto from 'node:crypto';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectLegalHoldCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ApplicationFailure, Context } from '@temporalio/activity';
import {
  BACKUP_PREFIX,
  backupObjectKeys,
  manifestProblem,
  planRetention,
  type BackupManifest,
  type RetentionPolicy,
} from '../common/backup';
import { generationsKey, type GenerationsFile } from '../common/unsealKeys';
import { ErrorType, failure as fail } from '../common/errors';
import type { BaoClient } from '../infra/bao';
import { BaoError } from '../infra/bao';
import { BackupFormatError, createEncryptor, parseHeader } from '../infra/backupFormat';
import type { Config } from '../infra/config';
import { KeyError, loadRecipients } from '../infra/keys';
import { createSnapshotInspector, SnapshotStructureError } from '../infra/snapshotInspect';
import { getJsonObject, listAllKeys, pinnedObjectState, putJsonObject, statusOf, type PinnedState } from '../infra/objects';
import { bucketSpec, checkBucket, type BucketCheck } from '../infra/bucketPolicy';
import { keepHeartbeating, withHeartbeats } from './heartbeat';
import { watchProgress } from './progress';
import { kvInventory, type KvInventory } from '../infra/kvInventory';


export interface UploadResult {
  manifestKey: string;
  objectKey: string;
  objectBytes: number;
  objectSha256: string;
  plaintextBytes: number;
  raftIndex: number;
  reusedEarlierAttempt: boolean;
}

export interface BackupSummary {
  backupId: string;
  /**
   * 'manifest mismatch': the manifest describes another backup. 'overwritten': the object's
   * current version is not the one the manifest pins; 'pinned version missing': the pinned
   * version is gone; 'snapshot deleted': the current version is a delete marker. None of these
   * is ever treated as verified (not "latest", not counted by retention) nor pruned.
   */
  status: 'verified' | 'uploaded' | 'no manifest' | 'manifest mismatch' | 'overwritten' | 'pinned version missing' | 'snapshot deleted';
  /** The manifest's status before the object check, when the object check changed it. */
  manifestStatus?: 'verified' | 'uploaded';
  /** What the object check found, in words (for `backup list` and alerts). */
  problem?: string;
  createdAt: string;
  objectKey: string;
  objectBytes: number;
  raftIndex?: number;
  trigger?: string;
}

/** Statuses of a backup whose stored object no longer matches its manifest (see BackupSummary). */
export const DAMAGED_STATUSES: readonly BackupSummary['status'][] = ['overwritten', 'pinned version missing', 'snapshot deleted'];

/** The listing status and words for a pinned object that is not intact; undefined when it is. */
function damageOf(state: PinnedState): { status: BackupSummary['status']; problem: string } | undefined {
  switch (state.kind) {
    case 'intact':
    case 'unpinned':
      return undefined;
    case 'overwritten':
      return { status: 'overwritten', problem: `overwritten: current version ${state.currentVersionId} is not the pinned ${state.pinnedVersionId}` };
    case 'pinned version missing':
      return { status: 'pinned version missing', problem: `pinned version ${state.pinnedVersionId} no longer exists` };
    case 'deleted':
      return { status: 'snapshot deleted', problem: `the snapshot's current version is a delete marker (pinned ${state.pinnedVersionId} ${state.pinnedExists ? 'still exists' : 'is gone'})` };
  }
}

/** Counts and hashes bytes as they pass. */
class Digest extends Transform {
  readonly hash = crypto.createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** Passes bytes through while also writing them to a side sink, respecting its backpressure. */
function teeTo(sink: Writable): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      // A side sink that failed (e.g. the snapshot is not gzip) reports through its own promise;
      // it must not stall the main stream.
      if (sink.destroyed || sink.write(chunk)) return cb(null, chunk);
      const go = () => {
        sink.off('drain', go);
        sink.off('close', go);
        cb(null, chunk);
      };
      sink.once('drain', go);
      sink.once('close', go);
    },
    flush(cb) {
      if (!sink.destroyed) sink.end();
      cb();
    },
  });
}

/** A bandwidth cap: delays chunks so the average stays under `bytesPerSecond`. */
function throttle(bytesPerSecond: number): Transform {
  const start = Date.now();
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      sent += chunk.length;
      const due = start + (sent / bytesPerSecond) * 1000;
      const wait = due - Date.now();
      if (wait > 0) setTimeout(() => cb(null, chunk), wait);
      else cb(null, chunk);
    },
  });
}

/** The activities the workflows call with the STORE_IO profile (heartbeat timeout 20 s): each heartbeats while it runs. */
export const BACKUP_STORE_IO = ['checkBackupBucket', 'writeCanary', 'pruneBackups'] as const;

export const backupActivities = (deps: { bao: BaoClient; s3: S3Client; cfg: Config }) => {
  const { s3 } = deps;
  const bucket = deps.cfg.s3.bucket;
  const bcfg = deps.cfg.backup;

  const getJson = <T>(key: string) => getJsonObject<T>(s3, bucket, key);
  const putJson = (key: string, value: unknown) => putJsonObject(s3, bucket, key, value);

  async function abortStaleUploads(key: string): Promise<number> {
    const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
    let n = 0;
    for (const u of res.Uploads ?? []) {
      if (u.Key !== key || !u.UploadId) continue;
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: u.UploadId }));
      n++;
    }
    return n;
  }

  async function listManifestIds(): Promise<{ withManifest: string[]; withoutManifest: string[] }> {
    const ids = new Map<string, { manifest: boolean; snapshot: boolean }>();
    for (const key of await listAllKeys(s3, bucket, BACKUP_PREFIX)) {
      const m = /^backups\/([^/]+)\/(manifest\.json|snapshot\.vdrb)$/.exec(key);
      if (!m) continue;
      const e = ids.get(m[1]!) ?? { manifest: false, snapshot: false };
      if (m[2] === 'manifest.json') e.manifest = true;
      else e.snapshot = true;
      ids.set(m[1]!, e);
    }
    const all = [...ids.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    return { withManifest: all.filter(([, e]) => e.manifest).map(([id]) => id), withoutManifest: all.filter(([, e]) => !e.manifest).map(([id]) => id) };
  }

  /**
   * Every backup in the bucket with what its manifest says (one read per manifest) and whether
   * the object version the manifest pins is still there and still current (two HEADs), newest first.
   */
  async function readBackups(): Promise<BackupSummary[]> {
    const { withManifest, withoutManifest } = await listManifestIds();
    const out: BackupSummary[] = [];
    const read = async (id: string) => {
      const m = await getJson<BackupManifest>(backupObjectKeys(id).manifest);
      if (m && manifestProblem(id, m)) out.push({ backupId: id, status: 'manifest mismatch', createdAt: '', objectKey: backupObjectKeys(id).snapshot, objectBytes: 0 });
      else if (m) {
        const row: BackupSummary = { backupId: id, status: m.status, createdAt: m.createdAt, objectKey: m.object.key, objectBytes: m.object.bytes, raftIndex: m.snapshot.raftIndex, trigger: m.trigger };
        const state = await pinnedObjectState(s3, bucket, m.object.key, m.object.versionId);
        const damage = damageOf(state);
        if (damage) Object.assign(row, { manifestStatus: m.status, status: damage.status, problem: damage.problem });
        out.push(row);
      }
    };
    // A few at a time: a year of backups is ~40 manifests and 80 HEADs.
    for (let i = 0; i < withManifest.length; i += 8) await Promise.all(withManifest.slice(i, i + 8).map(read));
    for (const id of withoutManifest) out.push({ backupId: id, status: 'no manifest', createdAt: '', objectKey: backupObjectKeys(id).snapshot, objectBytes: 0 });
    return out.sort((a, b) => (a.backupId < b.backupId ? 1 : -1));
  }

  return withHeartbeats({
    /**
     * Reads the bucket's settings (GetBucket* only, never a Put) and fails when they differ from
     * what `vaultdr bucket apply` sets: the backup worker holds no bucket-admin rights.
     */
    async checkBackupBucket(): Promise<BucketCheck> {
      const check = await checkBucket(s3, bucketSpec(deps.cfg));
      if (!check.compliant) {
        throw fail(ErrorType.BucketNotCompliant, `bucket "${bucket}" is not as \`vaultdr bucket apply\` set it: ${check.differences.join('; ')}; refusing to back up into it`, true);
      }
      return check;
    },

    /** Writes the canary secret whose value names this backup; a restore must read it back. */
    async writeCanary(req: { backupId: string }): Promise<{ path: string; marker: string; version: number }> {
      const marker = `vault-dr backup ${req.backupId}`;
      try {
        const version = await deps.bao.writeKv(bcfg.kvMount, bcfg.canaryPath, { marker, writtenAt: new Date().toISOString() });
        return { path: `${bcfg.kvMount}/data/${bcfg.canaryPath}`, marker, version };
      } catch (err) {
        throw vaultFailure(err, 'write canary');
      }
    },

    /**
     * Streams the raft snapshot from the active node through the encryptor into an S3 multipart
     * upload and writes the manifest (status "uploaded"). Memory is bounded by the chunk and part
     * sizes. A retry reuses a complete earlier upload of this backup id, else aborts its leftovers
     * and starts over (a snapshot stream cannot be resumed mid-way).
     */
    async snapshotToStore(req: { backupId: string; workflowId: string; runId: string; trigger: string; createdAt: string; canary: { path: string; marker: string } }): Promise<UploadResult> {
      const ctx = Context.current();
      const keys = backupObjectKeys(req.backupId);
      if (!bcfg.recipientsFile) throw fail(ErrorType.KeyMaterialMissing, 'backup.recipientsFile is not set: run `vaultdr keys init` and configure VAULTDR_BACKUP_RECIPIENTS_FILE', true);
      let recipients;
      try {
        recipients = loadRecipients(bcfg.recipientsFile);
      } catch (err) {
        throw fail(ErrorType.KeyMaterialMissing, (err as KeyError).message, true);
      }

      const earlier = await getJson<BackupManifest>(keys.manifest);
      if (earlier) {
        try {
          const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: keys.snapshot }));
          if (head.ContentLength === earlier.object.bytes) {
            return { manifestKey: keys.manifest, objectKey: keys.snapshot, objectBytes: earlier.object.bytes, objectSha256: earlier.object.sha256, plaintextBytes: earlier.plaintext.bytes, raftIndex: earlier.snapshot.raftIndex, reusedEarlierAttempt: true };
          }
        } catch (err) {
          if (statusOf(err) !== 404) throw err;
        }
      }

      let health;
      let leader;
      try {
        health = await deps.bao.health();
        leader = await deps.bao.leader();
      } catch (err) {
        throw vaultFailure(err, 'snapshot');
      }
      if (!health.initialized || health.sealed) throw fail(ErrorType.VaultSealed, `OpenBao at ${deps.bao.address} is ${health.sealed ? 'sealed' : 'not initialized'}: no snapshot taken`, true);
      if (!leader.isSelf) {
        // Never back up a standby's view: say which node is active so the operator can point at it.
        throw fail(ErrorType.VaultStandby, `OpenBao at ${deps.bao.address} is a standby; the active node is ${leader.leaderAddress || 'unknown'}: point vault.address at the active node or a load balancer that routes to it`, false);
      }

      const baoKv = { get: (p: string) => deps.bao.apiGet(p) };
      // The inventory takes seconds on a large mount (minutes where it falls back to one metadata
      // read per secret), so it heartbeats like the transfer does.
      const inventory = async () => {
        const stop = keepHeartbeating(() => ({ stage: 'kv inventory' }), 2000);
        try {
          return await kvInventory(bcfg.kvMount, baoKv);
        } catch (err) {
          throw vaultFailure(err, 'KV inventory');
        } finally {
          stop();
        }
      };
      const kvBefore = await inventory();
      const aborted = await abortStaleUploads(keys.snapshot);
      if (aborted) ctx.log.info('aborted leftover multipart uploads of an earlier attempt', { backupId: req.backupId, aborted });

      let body: ReadableStream<Uint8Array>;
      try {
        body = await deps.bao.snapshotStream();
      } catch (err) {
        throw vaultFailure(err, 'snapshot');
      }
      // The after-count starts with the first snapshot byte (the snapshot's point in time is fixed
      // by then) and runs alongside the transfer instead of after it.
      let kvAfterPass: Promise<KvInventory> | undefined;
      const countAfter = () => (kvAfterPass ??= inventory());
      const firstBytes = new Transform({
        transform(chunk: Buffer, _e, cb) {
          void countAfter().catch(() => undefined);
          cb(null, chunk);
        },
      });
      const plain = new Digest();
      // The raft structure check reads a copy of the stream. It stays on this thread: moving it and
      // the plaintext hash to a worker thread measured no faster on a 2-core machine (1 GiB:
      // 13.4–15.9 s vs 14.6–15.3 s) and cost 35 MiB more peak RSS.
      const inspector = createSnapshotInspector();
      const { stream: encryptor, header } = createEncryptor({ backupId: req.backupId, createdAt: req.createdAt, recipients, chunkSize: bcfg.chunkSize });
      const cipher = new Digest();
      const source = Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>);
      // Progress is bytes read from OpenBao plus bytes S3 acknowledged (a part in flight holds the
      // pipeline back until it lands). Heartbeats only when it moved; a transfer where nothing
      // moved for the heartbeat timeout is aborted here as well.
      let acknowledged = 0;
      let stalled: Error | undefined;
      const watch = watchProgress({
        what: `snapshot upload of ${req.backupId}`,
        bytes: () => plain.bytes + acknowledged,
        details: () => ({ stage: 'upload', bytes: cipher.bytes }),
        onStall: (err) => {
          stalled = err;
          source.destroy(err);
          void upload.abort().catch(() => undefined);
        },
      });
      const stopBeats = () => watch.stop();
      const stages: NodeJS.ReadWriteStream[] = [firstBytes, plain, teeTo(inspector.sink), encryptor];
      if (bcfg.maxUploadBytesPerSecond) stages.push(throttle(bcfg.maxUploadBytesPerSecond));
      stages.push(cipher);
      const upload = new Upload({
        client: s3,
        params: { Bucket: bucket, Key: keys.snapshot, Body: cipher, ContentType: 'application/vnd.vault-dr.backup', Metadata: { 'backup-id': req.backupId, format: 'vdrbak/1' } },
        partSize: bcfg.partSize,
        queueSize: bcfg.uploadQueueSize,
        leavePartsOnError: false,
      });
      upload.on('httpUploadProgress', (p) => (acknowledged = p.loaded ?? acknowledged));
      const onCancel = () => void upload.abort().catch(() => undefined);
      ctx.cancellationSignal.addEventListener('abort', onCancel);
      let versionId: string | undefined;
      try {
        const feeding = pipeline(source, ...(stages as [Transform]));
        const [, done] = await Promise.all([feeding, upload.done()]);
        versionId = (done as { VersionId?: string }).VersionId;
      } catch (err) {
        await abortStaleUploads(keys.snapshot).catch(() => undefined);
        await kvAfterPass?.catch(() => undefined);
        if (stalled) throw fail(ErrorType.TransferStalled, `${stalled.message}; ${plain.bytes} bytes read from ${deps.bao.address}, ${acknowledged} stored`, false);
        if (err instanceof BaoError) throw vaultFailure(err, 'snapshot');
        throw err;
      } finally {
        stopBeats();
        ctx.cancellationSignal.removeEventListener('abort', onCancel);
      }
      const kvAfter = await countAfter();
      let meta;
      try {
        meta = await inspector.result;
      } catch (err) {
        throw fail(ErrorType.SnapshotInvalid, `snapshot from ${deps.bao.address} is not a valid raft snapshot: ${(err as SnapshotStructureError).message}`, false);
      }
      const manifest: BackupManifest = {
        manifestVersion: 1,
        backupId: req.backupId,
        status: 'uploaded',
        workflowId: req.workflowId,
        runId: req.runId,
        trigger: req.trigger,
        createdAt: req.createdAt,
        uploadedAt: new Date().toISOString(),
        snapshot: {
          clusterId: health.cluster_id ?? '',
          clusterName: health.cluster_name ?? '',
          openbaoVersion: health.version,
          raftIndex: meta.index,
          raftTerm: meta.term,
          snapshotId: meta.id,
          node: meta.servers[0]?.id ?? '',
        },
        canary: req.canary,
        kv: { mount: bcfg.kvMount, pathsBefore: kvBefore.paths, pathsAfter: kvAfter.paths, versionsBefore: kvBefore.versions, versionsAfter: kvAfter.versions },
        plaintext: { bytes: plain.bytes, sha256: plain.hash.digest('hex') },
        object: { bucket, key: keys.snapshot, bytes: cipher.bytes, sha256: cipher.hash.digest('hex'), versionId },
        encryption: { format: 'vdrbak/1', chunkSize: header.chunkSize, recipients: header.recipients.map((r) => r.keyId) },
        unsealKeys: { generation: (await getJson<GenerationsFile>(generationsKey(health.cluster_id ?? '')))?.current ?? 1, record: generationsKey(health.cluster_id ?? '') },
      };
      await putJson(keys.manifest, manifest);
      return { manifestKey: keys.manifest, objectKey: keys.snapshot, objectBytes: manifest.object.bytes, objectSha256: manifest.object.sha256, plaintextBytes: manifest.plaintext.bytes, raftIndex: meta.index, reusedEarlierAttempt: false };
    },

    /** Re-reads the uploaded object from S3, checks size, SHA-256 and header against the manifest, then marks it verified. */
    async verifyUploadedBackup(req: { backupId: string }): Promise<{ verifiedAt: string; objectSha256: string }> {
      const keys = backupObjectKeys(req.backupId);
      const manifest = await getJson<BackupManifest>(keys.manifest);
      if (!manifest) throw fail(ErrorType.BackupNotFound, `manifest ${keys.manifest} not found in bucket ${bucket}`, true);
      if (manifest.status === 'verified' && manifest.verifiedAt) return { verifiedAt: manifest.verifiedAt, objectSha256: manifest.object.sha256 };
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: keys.snapshot, VersionId: manifest.object.versionId }));
      const digest = crypto.createHash('sha256');
      let bytes = 0;
      const source = res.Body as Readable;
      let stalled: Error | undefined;
      const watch = watchProgress({
        what: `verification download of ${req.backupId}`,
        bytes: () => bytes,
        details: () => ({ stage: 'verify', bytes }),
        onStall: (err) => {
          stalled = err;
          source.destroy(err);
        },
      });
      const stopBeats = () => watch.stop();
      let head = Buffer.alloc(0);
      let headerChecked = false;
      const headerProblems: string[] = [];
      const checkHeader = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        try {
          const parsed = parseHeader(head);
          if (!parsed) return;
          headerChecked = true;
          if (parsed.header.backupId !== req.backupId) headerProblems.push(`header names backup ${parsed.header.backupId}`);
          const ids = parsed.header.recipients.map((r) => r.keyId).join(',');
          if (ids !== manifest.encryption.recipients.join(',')) headerProblems.push('header recipients differ from the manifest');
        } catch (err) {
          headerChecked = true;
          headerProblems.push((err as BackupFormatError).message);
        }
        head = Buffer.alloc(0);
      };
      try {
        // A plain loop over the body (no stream stages): at 1 GiB it is the download plus one SHA-256.
        for await (const chunk of source) {
          const b = chunk as Buffer;
          if (!headerChecked) checkHeader(b);
          digest.update(b);
          bytes += b.length;
        }
      } catch (err) {
        if (stalled) throw fail(ErrorType.TransferStalled, `${stalled.message}; ${bytes} of ${manifest.object.bytes} bytes read`, false);
        throw err;
      } finally {
        stopBeats();
      }
      const sha = digest.digest('hex');
      const problems = [...headerProblems];
      if (!headerChecked) problems.push('object ends inside the backup header');
      if (bytes !== manifest.object.bytes) problems.push(`object is ${bytes} bytes, manifest says ${manifest.object.bytes}`);
      if (sha !== manifest.object.sha256) problems.push(`SHA-256 ${sha} differs from manifest ${manifest.object.sha256}`);
      if (problems.length) throw fail(ErrorType.BackupCorrupt, `backup object s3://${bucket}/${keys.snapshot} failed verification: ${problems.join('; ')}`, true);
      const verifiedAt = new Date().toISOString();
      await putJson(keys.manifest, { ...manifest, status: 'verified', verifiedAt });
      return { verifiedAt, objectSha256: sha };
    },

    /**
     * Applies retention (30 daily + 12 monthly by default) to verified backups; unverified and
     * damaged ones (overwritten, pinned version missing) are kept and named, never deleted. Puts a
     * legal hold on the pinned version of every kept backup (so lifecycle never expires it) and
     * lifts it from the ones it deletes.
     */
    async pruneBackups(req: { retention?: RetentionPolicy; justVerified: string }): Promise<{ deleted: string[]; kept: number; unverified: string[]; damaged: string[]; legalHolds: number | 'unsupported by store' }> {
      // The floor is configuration only: a run's input (UI, CLI) may keep more, never less.
      const { minDaily, minMonthly } = bcfg.retention;
      if (req.retention && (req.retention.daily < minDaily || req.retention.monthly < minMonthly)) {
        const field = req.retention.daily < minDaily ? `retention.daily ${req.retention.daily}` : `retention.monthly ${req.retention.monthly}`;
        const floor = req.retention.daily < minDaily ? `backup.retention.minDaily = ${minDaily}` : `backup.retention.minMonthly = ${minMonthly}`;
        throw fail(ErrorType.InvalidInput, `pruneBackups: field "${field}" is below the configured floor ${floor}; nothing was deleted (lower the floor only in the configuration)`, true);
      }
      const listed = await readBackups();
      // A backup without a manifest, or whose object no longer matches it, counts as unverified: retention never deletes it.
      const candidates = listed.map((b) => ({ backupId: b.backupId, status: b.status === 'verified' ? ('verified' as const) : ('uploaded' as const), createdAt: b.createdAt }));
      if (!candidates.some((c) => c.backupId === req.justVerified && c.status === 'verified')) {
        // The backup this run verified must be visible; if not, the listing is not trustworthy.
        throw fail(ErrorType.VerificationFailed, `retention refused: the backup just verified (${req.justVerified}) is not listed as verified`, true);
      }
      const plan = planRetention(candidates, req.retention ?? bcfg.retention);
      const manifests = new Map<string, BackupManifest>();
      const pinned = async (id: string) => {
        if (!manifests.has(id)) manifests.set(id, (await getJson<BackupManifest>(backupObjectKeys(id).manifest))!);
        return manifests.get(id)!.object;
      };
      let legalHolds: number | 'unsupported by store' = 0;
      const hold = async (id: string, on: boolean) => {
        if (legalHolds === 'unsupported by store') return;
        const o = await pinned(id);
        if (!o.versionId) return;
        try {
          await s3.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: o.key, VersionId: o.versionId, LegalHold: { Status: on ? 'ON' : 'OFF' } }));
          if (on) legalHolds = (legalHolds as number) + 1;
        } catch (err) {
          // A bucket without object lock (or a store without it) cannot hold versions: say so once.
          if (statusOf(err) === 501 || statusOf(err) === 400) legalHolds = 'unsupported by store';
          else throw err;
        }
      };
      const keptVerified = plan.keep.filter((k) => listed.find((b) => b.backupId === k.backupId)?.status === 'verified');
      for (const k of keptVerified) await hold(k.backupId, true);
      const deleted: string[] = [];
      for (const id of plan.delete) {
        const k = backupObjectKeys(id);
        await hold(id, false);
        // One request for both keys: a crash cannot leave a manifest whose snapshot is gone.
        const res = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: k.snapshot }, { Key: k.manifest }], Quiet: true } }));
        if (res.Errors?.length) throw new Error(`cannot delete backup ${id}: ${res.Errors.map((e) => `${e.Key}: ${e.Message}`).join('; ')}`);
        // withHeartbeats keeps this activity heartbeating; no per-delete beat (the CLI runs it outside an activity).
        deleted.push(id);
      }
      const unverified = listed.filter((c) => c.status !== 'verified' && !DAMAGED_STATUSES.includes(c.status)).map((c) => c.backupId);
      const damaged = listed.filter((c) => DAMAGED_STATUSES.includes(c.status));
      if (damaged.length) {
        // Everything else was done; the damaged backups are kept and the run fails so someone looks.
        throw fail(
          ErrorType.BackupOverwritten,
          `backup object(s) no longer match their manifest: ${damaged.map((d) => `${d.backupId} (${d.problem})`).join('; ')}; they are kept, never counted as verified; retention deleted ${deleted.length ? deleted.join(', ') : 'nothing'}`,
          true,
        );
      }
      return { deleted, kept: plan.keep.length, unverified, damaged: [], legalHolds };
    },

    /** Lists backups newest first (for the CLI and later for restore selection). */
    async listBackups(): Promise<BackupSummary[]> {
      return readBackups();
    },
  }, BACKUP_STORE_IO);
};

export function vaultFailure(err: unknown, what: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const e = err as BaoError;
  // 503 is also a load balancer with no server behind it (a failover in progress): only what
  // sys/seal-status says (the client asks on every 503) makes it a sealed Vault nobody can retry past.
  if (e instanceof BaoError && e.status === 503 && e.sealed === true) return fail(ErrorType.VaultSealed, `${what}: OpenBao is sealed: ${e.message}`, true);
  if (e instanceof BaoError && e.status === 503) return fail(ErrorType.VaultUnavailable, `${what}: OpenBao is unavailable (not sealed): ${e.message}`, false);
  if (e instanceof BaoError && e.status === 403) return fail(ErrorType.VaultAuthFailed, `${what}: permission denied: ${e.message}`, true);
  if (e instanceof BaoError && e.status === 0) return fail(ErrorType.VaultUnreachable, `${what}: ${e.message}`, false);
  // 4xx other than 403: the request itself is wrong (missing mount, bad path); retrying cannot help.
  if (e instanceof BaoError && e.status >= 400 && e.status < 500) return fail(ErrorType.VaultRequestRejected, `${what}: ${e.message}`, true);
  return fail(ErrorType.VaultUnreachable, `${what}: ${(err as Error).message}`, false);
}

export type BackupActivities = ReturnType<typeof backupActivities>;
