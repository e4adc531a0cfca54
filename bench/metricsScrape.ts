// `node lib/bench/metricsScrape.js [--counts 42,400] [--out dir] [--name metrics-scrape]`: what one
// /metrics refresh costs with N kept backups, on a bucket of its own in the shared stack's S3.
// For each N: the state load as it was before manifests were cached (every manifest read on every
// refresh), then a real scrape of the worker registry (registerStateGauges, cache 1 s) right after
// start (cold: every manifest read once) and again after the state cache expired (warm: only the
// listing and the object checks). Counts S3 requests by command. Prints and writes JSON + Markdown.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, ListObjectVersionsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { backupIdFor, backupObjectKeys, type BackupManifest } from '../common/backup';
import { buildClients, buildS3Client } from '../infra/clients';
import { loadConfig, type Config } from '../infra/config';
import { metrics, registerStateGauges } from '../infra/metrics';
import { applyBucket, bucketSpec } from '../infra/store/bucketPolicy';
import { loadDrState } from '../infra/store/drState';
import { PROJECT_ROOT, stackDir } from '../stack/stack';

const log = (line: string) => process.stdout.write(`metrics-scrape: ${line}\n`);

async function putBackup(s3: S3Client, bucket: string, i: number): Promise<void> {
  const iso = new Date(Date.UTC(2025, 0, 1) + i * 86_400_000).toISOString();
  const id = backupIdFor(iso, 'bench-metrics', iso);
  const keys = backupObjectKeys(id);
  const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keys.snapshot, Body: `snapshot of ${id}` }));
  // A manifest of the real size (~1.5 KiB: KV counts, unseal-key record, recipients).
  const manifest: BackupManifest = {
    manifestVersion: 1,
    backupId: id,
    status: 'verified',
    workflowId: 'bench-metrics',
    runId: iso,
    trigger: 'scheduled',
    createdAt: iso,
    uploadedAt: iso,
    verifiedAt: iso,
    snapshot: { clusterId: 'c0ffee00-0000-0000-0000-000000000000', clusterName: 'vault-cluster-bench', openbaoVersion: '2.5.0', raftIndex: 100000 + i, raftTerm: 3, snapshotId: 'bolt-snapshot', node: 'bao-1' },
    canary: { path: 'secret/data/vault-dr/canary', marker: `vault-dr backup ${id}` },
    kv: { mount: 'secret', pathsBefore: 10000, pathsAfter: 10000, versionsBefore: 10000, versionsAfter: 10000 },
    plaintext: { bytes: 7_300_000, sha256: 'a'.repeat(64) },
    object: { bucket, key: keys.snapshot, bytes: 7_300_000, sha256: 'b'.repeat(64), versionId: put.VersionId },
    encryption: { format: 'vdrbak/1', chunkSize: 1048576, recipients: ['custodian-key-1', 'custodian-key-2'] },
    unsealKeys: { generation: 1, record: 'unseal-keys/c0ffee00/generations.json' },
  };
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keys.manifest, Body: JSON.stringify(manifest, null, 2), ContentType: 'application/json' }));
}

async function dropBucket(s3: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const res = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, MaxKeys: 1000 }));
    const objects = [...(res.Versions ?? []), ...(res.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key!, VersionId: v.VersionId }));
    if (!objects.length) break;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, BypassGovernanceRetention: true, Delete: { Objects: objects, Quiet: true } }));
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}

interface Sample {
  backups: number;
  what: string;
  ms: number;
  requests: Record<string, number>;
}

async function main() {
  const o = new Command()
    .option('--counts <list>', 'kept backups to measure at', '42,400')
    .option('--runs <n>', 'repetitions per measurement (the median is reported)', '3')
    .option('--out <dir>', 'results dir', path.join(PROJECT_ROOT, 'bench', 'results'))
    .option('--name <name>', 'results file name', 'metrics-scrape')
    .parse(process.argv)
    .opts<{ counts: string; runs: string; out: string; name: string }>();
  const counts = o.counts.split(',').map(Number).sort((a, b) => a - b);
  const runs = Number(o.runs);
  const stack = loadConfig({ file: path.join(stackDir(), 'vaultdr.json'), env: {} });
  const bucket = `vdr-bench-metrics-${Date.now().toString(36)}`;
  const cfg: Config = { ...stack, s3: { ...stack.s3, bucket }, backup: { ...stack.backup, objectLockDays: 0 } };
  const s3 = buildS3Client(cfg.s3);
  const requests: Record<string, number> = {};
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      requests[name] = (requests[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  const admin = buildS3Client(cfg.s3);
  await applyBucket(admin, bucketSpec(cfg));
  const samples: Sample[] = [];
  const measure = async (backups: number, what: string, fn: () => Promise<unknown>, before?: () => Promise<void>, times = runs) => {
    const got: Sample[] = [];
    for (let r = 0; r < times; r++) {
      if (before) await before();
      for (const k of Object.keys(requests)) delete requests[k];
      const t0 = performance.now();
      await fn();
      got.push({ backups, what, ms: performance.now() - t0, requests: { ...requests } });
    }
    got.sort((a, b) => a.ms - b.ms);
    const median = got[Math.floor(got.length / 2)]!;
    samples.push(median);
    log(`${backups} backups, ${what}: ${median.ms.toFixed(0)} ms, ${JSON.stringify(median.requests)}`);
  };
  // The worker's registry with a 1 s state cache, so each measured scrape (after a 1.1 s pause) refreshes once.
  registerStateGauges({ cfg, s3, bao: buildClients(cfg).bao, cacheMs: 1000 });
  const { registry } = metrics();
  const pause = () => new Promise<void>((r) => setTimeout(r, 1100));
  let have = 0;
  try {
    for (const n of counts) {
      while (have < n) {
        const batch = Math.min(20, n - have);
        await Promise.all(Array.from({ length: batch }, (_, j) => putBackup(admin, bucket, have + j)));
        have += batch;
      }
      await measure(n, 'refresh without the manifest cache (before)', () => loadDrState(s3, cfg));
      // The first scrape after the new backups appeared reads their manifests once (all of them at the first count).
      await measure(n, `first scrape after ${n - (counts[counts.indexOf(n) - 1] ?? 0)} new backups (their manifests read once)`, () => registry.metrics(), pause, 1);
      await measure(n, 'later scrape (manifest cache warm)', () => registry.metrics(), pause);
      const text = await registry.metrics();
      const verified = /^vaultdr_backups_verified (\d+)/m.exec(text)?.[1];
      if (Number(verified) !== n) {
        const pages: unknown[] = [];
        let token: string | undefined;
        do {
          const p = await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'backups/', ContinuationToken: token }));
          pages.push({ contents: p.Contents?.length, truncated: p.IsTruncated, keyCount: p.KeyCount, maxKeys: p.MaxKeys, next: !!p.NextContinuationToken });
          token = p.IsTruncated ? p.NextContinuationToken : undefined;
        } while (token);
        throw new Error(`scrape reports ${verified} verified backups, expected ${n}; listing pages ${JSON.stringify(pages)}`);
      }
    }
  } finally {
    await dropBucket(admin, bucket).catch((err: Error) => log(`dropping ${bucket}: ${err.message}`));
  }
  const out = { date: new Date().toISOString(), runs, note: 'Shared S3 (SeaweedFS of the local stack) on a 2-core machine shared with other work; median of the runs.', samples };
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, `${o.name}.json`), JSON.stringify(out, null, 2) + '\n');
  const md = [
    `# /metrics refresh with N kept backups — ${out.date}`,
    '',
    out.note,
    '',
    '| kept backups | refresh | ms (median) | S3 requests |',
    '|---:|---|---:|---|',
    ...samples.map((s) => `| ${s.backups} | ${s.what} | ${s.ms.toFixed(0)} | ${Object.entries(s.requests).map(([k, v]) => `${k.replace(/Command$/, '')} ${v}`).join(', ')} |`),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(o.out, `${o.name}.md`), md);
  log(`results: ${path.join(o.out, o.name)}.{json,md}`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`metrics-scrape: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
