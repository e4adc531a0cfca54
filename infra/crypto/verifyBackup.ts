// Full verification of a stored backup: download, ciphertext checksum, authenticated decryption,
// plaintext checksum and raft snapshot structure, all streaming (memory bounded by the chunk size).
// Used by `vaultdr backup verify` and by restores; needs a private key (escrow or validation).
import * as crypto from 'node:crypto';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { BackupManifest } from '../../common/backup';
import { BackupFormatError, createDecryptor } from './backupFormat';
import { createSnapshotInspector, type SnapshotMeta } from '../vault/snapshotInspect';

export class VerifyError extends Error {
  override name = 'VerifyError';
  constructor(
    readonly object: string,
    readonly reason: string,
  ) {
    super(`backup object ${object} failed verification: ${reason}`);
  }
}

export interface VerifyReport {
  backupId: string;
  object: string;
  objectBytes: number;
  objectSha256: string;
  plaintextBytes: number;
  plaintextSha256: string;
  raftIndex: number;
  raftTerm: number;
  checks: string[];
}

function counter(onBytes?: (n: number) => void) {
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      onBytes?.(bytes);
      cb(null, chunk);
    },
  });
  return { stream, done: () => ({ bytes, sha256: hash.digest('hex') }) };
}

/** Verifies a backup from a readable of its object bytes (S3 or a local file). */
export async function verifyBackupStream(opts: {
  source: Readable;
  objectName: string;
  manifest: BackupManifest;
  privateKey: Buffer;
  onProgress?: (bytes: number) => void;
  /** Optional extra sink for the decrypted snapshot (restore, offline decrypt). */
  plaintextSink?: Writable;
  /** Aborts the transfer (a stall watch); its reason becomes the failure's. */
  signal?: AbortSignal;
}): Promise<VerifyReport> {
  const { manifest } = opts;
  const cipher = counter(opts.onProgress);
  const plain = counter();
  const inspector = createSnapshotInspector();
  const decryptor = createDecryptor(opts.privateKey);
  const sinks = [inspector.sink, ...(opts.plaintextSink ? [opts.plaintextSink] : [])];
  const fanOut = new Writable({
    write(chunk: Buffer, _e, cb) {
      // Wait for every slow sink before taking the next chunk (bounded memory).
      const full = sinks.filter((s) => !s.destroyed && !s.write(chunk));
      if (full.length === 0) return cb();
      let left = full.length;
      for (const s of full) {
        const go = () => {
          s.off('drain', go);
          s.off('close', go);
          if (--left === 0) cb();
        };
        s.once('drain', go);
        s.once('close', go);
      }
    },
    final(cb) {
      for (const s of sinks) if (!s.destroyed) s.end();
      cb();
    },
  });
  try {
    await pipeline(opts.source, cipher.stream, decryptor, plain.stream, fanOut, { signal: opts.signal });
  } catch (err) {
    const e = err as BackupFormatError;
    const reason = e instanceof BackupFormatError ? `${e.cause_}: ${e.message}` : `download failed: ${abortReason(opts.signal) ?? (err as Error).message}`;
    throw new VerifyError(opts.objectName, reason);
  }
  let meta: SnapshotMeta;
  try {
    meta = await inspector.result;
  } catch (err) {
    throw new VerifyError(opts.objectName, `snapshot structure: ${(err as Error).message}`);
  }
  const c = cipher.done();
  const p = plain.done();
  const checks: string[] = [];
  const problems: string[] = [];
  const expect = (ok: boolean, good: string, bad: string) => (ok ? checks.push(good) : problems.push(bad));
  expect(c.bytes === manifest.object.bytes, `object size ${c.bytes} bytes matches manifest`, `object is ${c.bytes} bytes, manifest says ${manifest.object.bytes}`);
  expect(c.sha256 === manifest.object.sha256, 'object SHA-256 matches manifest', `object SHA-256 ${c.sha256} differs from manifest ${manifest.object.sha256}`);
  checks.push('every chunk authenticated (AES-256-GCM), final chunk present');
  expect(decryptor.header?.backupId === manifest.backupId, 'header names this backup', `header names backup ${decryptor.header?.backupId}, manifest ${manifest.backupId}`);
  expect(p.sha256 === manifest.plaintext.sha256, 'snapshot SHA-256 matches manifest', `decrypted snapshot SHA-256 differs from manifest`);
  expect(meta.index === manifest.snapshot.raftIndex, `raft snapshot structure valid (index ${meta.index}, term ${meta.term}, SHA256SUMS match)`, `raft index ${meta.index} differs from manifest ${manifest.snapshot.raftIndex}`);
  if (problems.length) throw new VerifyError(opts.objectName, problems.join('; '));
  return { backupId: manifest.backupId, object: opts.objectName, objectBytes: c.bytes, objectSha256: c.sha256, plaintextBytes: p.bytes, plaintextSha256: p.sha256, raftIndex: meta.index, raftTerm: meta.term, checks };
}

function abortReason(signal?: AbortSignal): string | undefined {
  return signal?.aborted && signal.reason instanceof Error ? signal.reason.message : undefined;
}

export async function verifyStoredBackup(opts: { s3: S3Client; manifest: BackupManifest; privateKey: Buffer; onStart?: (total: number) => void; onProgress?: (bytes: number) => void; plaintextSink?: Writable; signal?: AbortSignal }): Promise<VerifyReport> {
  const { manifest } = opts;
  const objectName = `s3://${manifest.object.bucket}/${manifest.object.key}`;
  let body: Readable;
  try {
    const res = await opts.s3.send(new GetObjectCommand({ Bucket: manifest.object.bucket, Key: manifest.object.key, VersionId: manifest.object.versionId }), { abortSignal: opts.signal });
    opts.onStart?.(res.ContentLength ?? manifest.object.bytes);
    body = res.Body as Readable;
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    throw new VerifyError(objectName, status === 404 ? 'object not found' : `download failed: ${abortReason(opts.signal) ?? (err as Error).message}`);
  }
  return verifyBackupStream({ source: body, objectName, manifest, privateKey: opts.privateKey, onProgress: opts.onProgress, plaintextSink: opts.plaintextSink, signal: opts.signal });
}
