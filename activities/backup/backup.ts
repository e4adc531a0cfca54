// Backup activities: bucket compliance, the canary, the streaming snapshot → encrypt → S3
// multipart pipeline, verification after upload, and retention. Each is idempotent: object keys
// come from the backup id the workflow derives from its own id, and a retry first looks at what
// an earlier attempt left behind.
import * as crypto from 'node:crypto';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { backupObjectKeys, type BackupManifest, type RetentionPolicy } from '../../common/backup';
import { ErrorType, failure as fail } from '../../common/errors';
import type { BaoClient } from '../../infra/vault/bao';
import { BaoError } from '../../infra/vault/bao';
import { BackupFormatError, createEncryptor, parseHeader } from '../../infra/crypto/backupFormat';
import type { Config } from '../../infra/config';
import { KeyError, loadRecipients } from '../../infra/crypto/keys';
import { createSnapshotInspector, SnapshotStructureError } from '../../infra/vault/snapshotInspect';
import { getJsonObject, statusOf } from '../../infra/store/objects';
import { BackupCatalog, type BackupSummary, type PruneResult } from '../../infra/store/catalog';
import { bucketSpec, type BucketCheck } from '../../infra/store/bucketPolicy';
import { keepHeartbeating, withHeartbeats } from '../heartbeat';
import { watchProgress } from '../progress';
import { kvInventory, type KvInventory } from '../../infra/vault/kvInventory';
import { generationsKey, type GenerationsFile } from '../../common/unsealKeys';

/** How long snapshotToStore waits for a standby answer to turn active (a load balancer catching up after a failover). */
export const STANDBY_GRACE_MS = 10_000;


export interface UploadResult {
  manifestKey: string;
  objectKey: string;
  objectBytes: number;
  objectSha256: string;
  plaintextBytes: number;
  raftIndex: number;
  reusedEarlierAttempt: boolean;
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

  const catalog = new BackupCatalog(s3, bucket);

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

  return withHeartbeats({
    /**
     * Reads the bucket's settings (GetBucket* only, never a Put) and fails when they differ from
     * what `vaultdr bucket apply` sets: the backup worker holds no bucket-admin rights.
     */
    async checkBackupBucket(): Promise<BucketCheck> {
      return catalog.checkBucket(bucketSpec(deps.cfg));
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

      const earlier = await catalog.manifest(req.backupId);
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
        // Through a load balancer mid-failover the node that answered may have just stepped down;
        // HAProxy moves to the new active node within seconds. Pointed straight at a standby it
        // never does: after a short grace, fail at once (not minutes of retries) and say where the
        // active node is. Never back up a standby's view.
        const graceEnd = Date.now() + STANDBY_GRACE_MS;
        while (!leader.isSelf && Date.now() < graceEnd) {
          ctx.heartbeat({ stage: 'vault.address answers as a standby; waiting for the active node' });
          await new Promise((r) => setTimeout(r, 1000));
          leader = await deps.bao.leader().catch(() => leader!);
        }
        if (!leader.isSelf) {
          throw fail(ErrorType.VaultStandby, `OpenBao at ${deps.bao.address} is a standby (still after ${STANDBY_GRACE_MS / 1000}s); the active node is ${leader.leaderAddress || 'unknown'}: no snapshot taken; point vault.address at the active node or a load balancer that routes only to it (HAProxy checking GET /v1/sys/health for 200)`, true);
        }
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
      // The active node's last applied raft entry around the first count: unchanged from before it
      // to the snapshot's own index proves that count is the snapshot's state (see countAfter).
      const appliedIndex = async () => {
        const l = await deps.bao.leader().catch(() => undefined);
        return l?.isSelf ? l.raftAppliedIndex : undefined;
      };
      // A login or token renewal is a raft write of its own: get it done before the first index.
      await deps.bao.ensureToken().catch(() => undefined);
      const indexBeforeCount = await appliedIndex();
      const kvBefore = await inventory();
      const indexAfterCount = await appliedIndex();
      const aborted = await abortStaleUploads(keys.snapshot);
      if (aborted) ctx.log.info('aborted leftover multipart uploads of an earlier attempt', { backupId: req.backupId, aborted });

      let body: ReadableStream<Uint8Array>;
      try {
        body = await deps.bao.snapshotStream();
      } catch (err) {
        throw vaultFailure(err, 'snapshot');
      }
      // The after-count runs alongside the transfer, once the snapshot's point in time is fixed: the
      // stream has begun and its meta.json (the archive's first file) names its raft index. When the
      // active node applied no entry from before the first count up to that index, the first count
      // is exactly the snapshot's state and a second pass would count the same state again: after
      // = before, exact (a quiet cluster; any write in between, even a token, means a second pass).
      // Each pass costs OpenBao ~0.1-0.2 ms of CPU per secret (bench/inventoryProfile.ts).
      let kvAfterPass: Promise<{ inventory: KvInventory; exactAt?: number }> | undefined;
      let transferFailed = false;
      const countAfter = () =>
        (kvAfterPass ??= inspector.earlyIndex.then(async (snapshotIndex) => {
          // A transfer that failed before meta.json was read needs no count: do not start one.
          if (transferFailed) throw new Error('snapshot transfer failed');
          const quiet = snapshotIndex !== undefined && indexBeforeCount !== undefined && indexBeforeCount === indexAfterCount && snapshotIndex === indexAfterCount;
          return quiet ? { inventory: kvBefore, exactAt: snapshotIndex } : { inventory: await inventory() };
        }));
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
        transferFailed = true;
        await abortStaleUploads(keys.snapshot).catch(() => undefined);
        await kvAfterPass?.catch(() => undefined);
        if (stalled) throw fail(ErrorType.TransferStalled, `${stalled.message}; ${plain.bytes} bytes read from ${deps.bao.address}, ${acknowledged} stored`, false);
        if (err instanceof BaoError) throw vaultFailure(err, 'snapshot');
        throw err;
      } finally {
        stopBeats();
        ctx.cancellationSignal.removeEventListener('abort', onCancel);
      }
      const { inventory: kvAfter, exactAt } = await countAfter();
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
        kv: { mount: bcfg.kvMount, pathsBefore: kvBefore.paths, pathsAfter: kvAfter.paths, versionsBefore: kvBefore.versions, versionsAfter: kvAfter.versions, ...(exactAt !== undefined ? { exactAtRaftIndex: exactAt } : {}) },
        plaintext: { bytes: plain.bytes, sha256: plain.hash.digest('hex') },
        object: { bucket, key: keys.snapshot, bytes: cipher.bytes, sha256: cipher.hash.digest('hex'), versionId },
        encryption: { format: 'vdrbak/1', chunkSize: header.chunkSize, recipients: header.recipients.map((r) => r.keyId) },
        unsealKeys: { generation: (await getJsonObject<GenerationsFile>(s3, bucket, generationsKey(health.cluster_id ?? '')))?.current ?? 1, record: generationsKey(health.cluster_id ?? '') },
      };
      await catalog.saveManifest(req.backupId, manifest);
      return { manifestKey: keys.manifest, objectKey: keys.snapshot, objectBytes: manifest.object.bytes, objectSha256: manifest.object.sha256, plaintextBytes: manifest.plaintext.bytes, raftIndex: meta.index, reusedEarlierAttempt: false };
    },

    /** Re-reads the uploaded object from S3, checks size, SHA-256 and header against the manifest, then marks it verified. */
    async verifyUploadedBackup(req: { backupId: string }): Promise<{ verifiedAt: string; objectSha256: string }> {
      const keys = backupObjectKeys(req.backupId);
      const manifest = await catalog.manifest(req.backupId);
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
      await catalog.saveManifest(req.backupId, { ...manifest, status: 'verified', verifiedAt });
      return { verifiedAt, objectSha256: sha };
    },

    /** Retention (30 daily + 12 monthly by default) through the catalog: see BackupCatalog.prune. */
    async pruneBackups(req: { retention?: RetentionPolicy; justVerified: string }): Promise<PruneResult> {
      return catalog.prune(req, bcfg.retention);
    },

    /** Lists backups newest first (for the CLI and later for restore selection). */
    async listBackups(): Promise<BackupSummary[]> {
      return catalog.list();
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
