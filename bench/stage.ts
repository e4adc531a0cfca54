// One measured stage of `npm run bench`, run as its own child process so its peak RSS (VmHWM) is
// its alone. Prints one JSON line. Stages:
//   upload-file    plain multipart upload of a file with @aws-sdk/lib-storage (baselines a and b)
//   download       plain GetObject of an object, bytes discarded (floor for restore + verify)
//   pipeline       the product's snapshotToStore + verifyUploadedBackup activities, run in process
//                  with MockActivityEnvironment (no Temporal server): snapshot stream → SHA-256 →
//                  snapshot inspector → AES-256-GCM stream → multipart upload, then the re-read
//   restore-verify the product's verification/restore read path (verifyStoredBackup): download,
//                  checksums, authenticated decryption, raft snapshot structure
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { MockActivityEnvironment } from '@temporalio/testing';
import { backupActivities, type UploadResult } from '../activities/backup/backup';
import type { BackupManifest } from '../common/backup';
import { backupObjectKeys } from '../common/backup';
import type { BaoClient } from '../infra/vault/bao';
import { buildClients } from '../infra/clients';
import { loadConfig } from '../infra/config';
import { loadPrivateKeyFile } from '../infra/crypto/keys';
import { getJsonObject } from '../infra/store/objects';
import { verifyStoredBackup } from '../infra/crypto/verifyBackup';
import { procMemory } from './measure';

export type StageRequest =
  | { kind: 'upload-file'; config: string; file: string; key: string }
  | { kind: 'download'; config: string; key: string }
  | { kind: 'pipeline'; config: string; backupId: string; source: { kind: 'vault' } | { kind: 'file'; file: string } }
  | { kind: 'restore-verify'; config: string; backupId: string };

/** A stage request without the config file (the orchestrator adds it). */
export type StageSpec = StageRequest extends infer R ? (R extends unknown ? Omit<R, 'config'> : never) : never;

export interface StageResult {
  kind: StageRequest['kind'];
  ms: number;
  bytes: number;
  rssStartBytes: number;
  peakRssBytes: number;
  /** CPU seconds of the stage process (every thread) over the whole run, from process.cpuUsage. */
  cpuSeconds?: number;
  /**
   * Where the memory was, from process.memoryUsage() every 50 ms over the run: the highest V8 heap
   * in use and the highest off-heap buffer memory (Buffers, ArrayBuffers), in bytes above their
   * values at the start. The rest of an RSS peak is code, the V8 heap's free space and native
   * allocations (zlib, OpenSSL, the socket layer).
   */
  memory?: { heapUsedBytes: number; arrayBuffersBytes: number };
  parts?: Record<string, number>;
  detail?: Record<string, unknown>;
}

/**
 * A stand-in for the BaoClient with the synthetic snapshot file as the snapshot and an empty KV
 * mount; health and leader answer like a healthy active node.
 */
function fileAsVault(file: string): BaoClient {
  const fake = {
    address: `file://${file}`,
    health: async () => ({ initialized: true, sealed: false, standby: false, version: 'synthetic', cluster_id: 'bench', cluster_name: 'bench' }),
    leader: async () => ({ isSelf: true, leaderAddress: '', haEnabled: true }),
    ensureToken: async () => undefined,
    apiGet: async () => ({ status: 404, body: { errors: [] } }),
    snapshotStream: async () => Readable.toWeb(fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) as ReadableStream<Uint8Array>,
  };
  return fake as unknown as BaoClient;
}

/** The real client, with the KV listing answered empty (404) so the stage is timed without the KV inventory. */
function withoutInventory(bao: BaoClient): BaoClient {
  return new Proxy(bao, {
    get(target, prop, receiver) {
      if (prop === 'apiGet') return async () => ({ status: 404, body: { errors: [] } });
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function run(req: StageRequest): Promise<Omit<StageResult, 'rssStartBytes' | 'peakRssBytes' | 'kind'>> {
  const cfg = loadConfig({ file: req.config });
  const clients = buildClients(cfg);
  const { s3 } = clients;
  const bucket = cfg.s3.bucket;
  switch (req.kind) {
    case 'upload-file': {
      const t0 = performance.now();
      // Same part size and parallelism as the product's uploads, so only the pipeline differs.
      const upload = new Upload({ client: s3, params: { Bucket: bucket, Key: req.key, Body: fs.createReadStream(req.file, { highWaterMark: 1024 * 1024 }) }, partSize: cfg.backup.partSize, queueSize: cfg.backup.uploadQueueSize, leavePartsOnError: false });
      await upload.done();
      return { ms: performance.now() - t0, bytes: fs.statSync(req.file).size };
    }
    case 'download': {
      const t0 = performance.now();
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: req.key }));
      let bytes = 0;
      await pipeline(res.Body as Readable, async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) bytes += chunk.length;
      });
      return { ms: performance.now() - t0, bytes };
    }
    case 'pipeline': {
      const parts: Record<string, number> = {};
      let bao: BaoClient;
      const detail: Record<string, unknown> = {};
      if (req.source.kind === 'vault') {
        // The KV inventory (metadata of every secret, before and after the snapshot) is not part
        // of the encrypt → upload → verify stage; the workflow rows include it.
        bao = withoutInventory(clients.bao);
      } else {
        bao = fileAsVault(req.source.file);
      }
      const acts = backupActivities({ bao, s3, cfg });
      const env = new MockActivityEnvironment({ activityType: 'snapshotToStore' });
      const t0 = performance.now();
      const uploaded: UploadResult = await env.run(acts.snapshotToStore, { backupId: req.backupId, workflowId: 'bench', runId: req.backupId, trigger: 'manual', createdAt: new Date().toISOString(), canary: { path: 'secret/data/vault-dr/canary', marker: 'bench' } });
      const t1 = performance.now();
      await new MockActivityEnvironment({ activityType: 'verifyUploadedBackup' }).run(acts.verifyUploadedBackup, { backupId: req.backupId });
      const t2 = performance.now();
      parts.snapshotToStoreMs = t1 - t0;
      parts.verifyUploadedBackupMs = t2 - t1;
      detail.objectBytes = uploaded.objectBytes;
      detail.objectKey = uploaded.objectKey;
      return { ms: t2 - t0, bytes: uploaded.plaintextBytes, parts, detail };
    }
    case 'restore-verify': {
      if (!cfg.backup.validationKeyFile) throw new Error('backup.validationKeyFile is not set');
      const manifest = await getJsonObject<BackupManifest>(s3, bucket, backupObjectKeys(req.backupId).manifest);
      if (!manifest) throw new Error(`no manifest for ${req.backupId}`);
      const privateKey = loadPrivateKeyFile(cfg.backup.validationKeyFile);
      const t0 = performance.now();
      const report = await verifyStoredBackup({ s3, manifest, privateKey });
      return { ms: performance.now() - t0, bytes: report.plaintextBytes, detail: { objectBytes: report.objectBytes, checks: report.checks.length } };
    }
  }
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2] ?? '{}') as StageRequest;
  // Baseline memory once the modules are loaded and before any data moves.
  const rssStartBytes = procMemory('self', 'VmRSS') ?? 0;
  const m0 = process.memoryUsage();
  const memory = { heapUsedBytes: 0, arrayBuffersBytes: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    memory.heapUsedBytes = Math.max(memory.heapUsedBytes, m.heapUsed - m0.heapUsed);
    memory.arrayBuffersBytes = Math.max(memory.arrayBuffersBytes, m.arrayBuffers - m0.arrayBuffers);
  };
  const sampler = setInterval(sample, 50);
  const c0 = process.cpuUsage();
  const out = await run(req);
  const c = process.cpuUsage(c0);
  clearInterval(sampler);
  sample();
  const result: StageResult = { kind: req.kind, ...out, rssStartBytes, peakRssBytes: procMemory('self', 'VmHWM') ?? 0, cpuSeconds: (c.user + c.system) / 1e6, memory };
  process.stdout.write(JSON.stringify(result) + '\n');
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`bench stage: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
