// `npm run chaos` — a bounded, seeded fault-injection campaign against the real local stack.
// Each trial injects one fault into a real backupVault or restoreVault run on a real worker
// process and then checks the outcome against the same pass rule:
//   it ends in a verified result (independently re-verified) or a clear failure with an alert,
//   with no orphaned multipart upload, no object marked verified that does not verify, no
//   staging server left behind, and no retention deletion the fault caused.
// Faults: SIGKILL of the worker at a random moment of a backup and of a restore (>= 10 each),
// SeaweedFS stopped for 30 s mid-upload, OpenBao sealed mid-backup, and stored objects corrupted
// (a flipped byte, a truncation, two manifests swapped, a manifest deleted).
// Results: a table on stdout and bench/results/chaos-latest.{json,md}. Exit 1 when a trial fails.
import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeleteObjectsCommand, GetObjectCommand, ListMultipartUploadsCommand, ListPartsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { prng } from '../common/prng';
import { backupObjectKeys, planRetention, type BackupManifest, type BackupResult } from '../common/backup';
import type { RestoreRecord } from '../common/restore';
import { connectClient } from '../client/connect';
import { buildClients } from '../infra/clients';
import { loadConfig, type Config } from '../infra/config';
import { loadPrivateKeyFile } from '../infra/crypto/keys';
import { getJsonObject, listAllKeys } from '../infra/store/objects';
import { stagingRoot } from '../infra/vault/stagingVault';
import { verifyStoredBackup } from '../infra/crypto/verifyBackup';
import { PORTS, PROJECT_ROOT, rootToken, stackDir, stackUp, startServer, stopServer, unsealBao } from '../stack/stack';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


interface Trial {
  trial: string;
  fault: string;
  injectedAt: string;
  outcome: string;
  seconds: number;
  checks: string[];
  problems: string[];
  pass: boolean;
}

interface Options {
  seed: number;
  kills: number;
  only?: Set<string>;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { seed: 20261128, kills: 10 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--seed' && v) (o.seed = Number(v)), i++;
    else if (a === '--kills' && v) (o.kills = Number(v)), i++;
    else if (a === '--only' && v) (o.only = new Set(v.split(','))), i++;
    else throw new Error(`unknown argument ${a}; usage: npm run chaos -- [--seed N] [--kills N] [--only backup-kill,restore-kill,s3-outage,seal,corrupt]`);
  }
  if (!Number.isInteger(o.seed) || !Number.isInteger(o.kills) || o.kills < 1) throw new Error('--seed and --kills must be integers, --kills at least 1');
  return o;
}

// ---------------------------------------------------------------------------------------------
// The worker under test: a real `node lib/workers/main.js` process on a queue of its own.

class WorkerProcess {
  proc?: ChildProcess;
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  async start(): Promise<void> {
    const log = fs.openSync(path.join(stackDir(), 'chaos-worker.log'), 'a');
    this.proc = spawn(process.execPath, [path.join(PROJECT_ROOT, 'lib', 'workers', 'main.js')], { env: this.env, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const codec = `http://${this.env.VAULTDR_CODEC_LISTEN}/health`;
    for (let i = 0; i < 200; i++) {
      if (this.proc.exitCode !== null) throw new Error(`worker exited at start (code ${this.proc.exitCode}); see ${path.join(stackDir(), 'chaos-worker.log')}`);
      if (await fetch(codec, { signal: AbortSignal.timeout(500) }).then(() => true, () => false)) return;
      await sleep(100);
    }
    throw new Error('worker did not come up in 20 s');
  }

  /** Another worker process for the same queue with some settings changed (not started). */
  variant(env: NodeJS.ProcessEnv): WorkerProcess {
    return new WorkerProcess({ ...this.env, ...env });
  }

  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([exited, sleep(15_000).then(() => p.kill('SIGKILL'))]);
  }
}

// ---------------------------------------------------------------------------------------------
// What the store holds, and the checks every trial ends with.

interface StoreState {
  ids: Map<string, { status: string; createdAt: string }>;
}

async function storeState(s3: S3Client, bucket: string): Promise<StoreState> {
  const ids = new Map<string, { status: string; createdAt: string }>();
  const keys = await listAllKeys(s3, bucket, 'backups/');
  for (const k of keys) {
    const m = /^backups\/([^/]+)\/(manifest\.json|snapshot\.vdrb)$/.exec(k);
    if (!m) continue;
    if (!ids.has(m[1]!)) ids.set(m[1]!, { status: 'no manifest', createdAt: '' });
    if (m[2] === 'manifest.json') {
      const man = await getJsonObject<BackupManifest>(s3, bucket, k);
      if (man) ids.set(m[1]!, { status: man.status, createdAt: man.createdAt });
    }
  }
  return { ids };
}

async function mailpitHas(text: string): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${PORTS.mailpitHttp}/api/v1/messages?limit=200`);
  const list = ((await res.json()) as { messages: { ID: string; Subject: string; Snippet?: string }[] }).messages;
  for (const m of list) {
    if (m.Subject.includes(text)) return true;
    const full = (await (await fetch(`http://127.0.0.1:${PORTS.mailpitHttp}/api/v1/message/${m.ID}`)).json()) as { Text: string };
    if (full.Text.includes(text)) return true;
  }
  return false;
}

async function waitForMail(text: string, ms = 90_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await mailpitHas(text)) return true;
    await sleep(1000);
  }
  return false;
}

type RunOutcome = { ok: true; value: unknown } | { ok: false; type: string; message: string };

async function outcomeOf(h: WorkflowHandle, timeoutMs: number): Promise<RunOutcome> {
  const timeout = sleep(timeoutMs).then(() => 'timeout' as const);
  try {
    const r = await Promise.race([h.result(), timeout]);
    if (r === 'timeout') return { ok: false, type: 'Timeout', message: `no result within ${timeoutMs / 1000} s` };
    return { ok: true, value: r };
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const c = err.cause;
      return { ok: false, type: c instanceof ApplicationFailure ? c.type ?? 'Error' : c?.name ?? 'Error', message: c?.message ?? err.message };
    }
    throw err;
  }
}

class Campaign {
  readonly trials: Trial[] = [];
  private readonly s3: S3Client;
  private readonly bucket: string;
  private readonly validationKey: Buffer;

  constructor(
    readonly cfg: Config,
    readonly client: Client,
    readonly worker: WorkerProcess,
    readonly rng: () => number,
  ) {
    this.s3 = buildClients(cfg).s3;
    this.bucket = cfg.s3.bucket;
    this.validationKey = loadPrivateKeyFile(cfg.backup.validationKeyFile!);
  }

  /** Forget sent alerts, so each trial's alert is really sent (the de-duplication window is hours). */
  async clearDedup(): Promise<void> {
    const keys = await listAllKeys(this.s3, this.bucket, 'alerts/dedup/');
    if (keys.length) await this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
  }

  async orphanedUploads(): Promise<string[]> {
    const r = await this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: 'backups/' }));
    return (r.Uploads ?? []).map((u) => u.Key!);
  }

  leftoverStaging(): string[] {
    const root = stagingRoot(this.cfg.restore.stagingDir);
    const dirs = fs.existsSync(root) ? fs.readdirSync(root).filter((d) => fs.statSync(path.join(root, d)).isDirectory()) : [];
    const procs = fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(root);
        } catch {
          return false;
        }
      });
    return [...dirs.map((d) => `dir ${d}`), ...procs.map((p) => `process ${p}`)];
  }

  async verifyIndependently(backupId: string): Promise<string | undefined> {
    const m = await getJsonObject<BackupManifest>(this.s3, this.bucket, backupObjectKeys(backupId).manifest);
    if (!m) return `manifest of ${backupId} missing`;
    if (m.status !== 'verified') return undefined;
    try {
      await verifyStoredBackup({ s3: this.s3, manifest: m, privateKey: this.validationKey });
      return undefined;
    } catch (err) {
      return `${backupId} is marked verified but does not verify: ${(err as Error).message}`;
    }
  }

  /** The checks every trial ends with: backups that appeared since `before` are re-verified, and deletions are checked against the retention policy. */
  async invariants(before: StoreState, opts: { newBackupVerified: boolean; deliberatelyRemoved?: string[] }): Promise<{ checks: string[]; problems: string[] }> {
    const checks: string[] = [];
    const problems: string[] = [];
    const after = await storeState(this.s3, this.bucket);
    const orphans = await this.orphanedUploads();
    if (orphans.length) problems.push(`orphaned multipart uploads: ${orphans.join(', ')}`);
    else checks.push('no orphaned upload');
    const created = [...after.ids.keys()].filter((id) => !before.ids.has(id));
    for (const id of created) {
      const p = await this.verifyIndependently(id);
      if (p) problems.push(p);
    }
    checks.push(`${created.length} new backup(s) re-verified`);
    const removed = [...before.ids.keys()].filter((id) => !after.ids.has(id) && !(opts.deliberatelyRemoved ?? []).includes(id));
    if (removed.length) {
      // Retention may delete only when this run verified a backup, and only what the policy says.
      const newest = created.find((id) => after.ids.get(id)?.status === 'verified');
      const candidates = [...before.ids].map(([backupId, v]) => ({ backupId, status: v.status === 'verified' ? ('verified' as const) : ('uploaded' as const), createdAt: v.createdAt }));
      if (newest) candidates.push({ backupId: newest, status: 'verified', createdAt: after.ids.get(newest)!.createdAt });
      const allowed = new Set(planRetention(candidates, this.cfg.backup.retention).delete);
      const unexpected = removed.filter((id) => !opts.newBackupVerified || !allowed.has(id));
      if (unexpected.length) problems.push(`backups deleted by the fault: ${unexpected.join(', ')}`);
      else checks.push(`${removed.length} deletion(s), all by the retention policy after a verified backup`);
    } else checks.push('nothing deleted');
    const staging = this.leftoverStaging();
    if (staging.length) problems.push(`staging left behind: ${staging.join(', ')}`);
    else checks.push('no staging left');
    return { checks, problems };
  }

  async record(t: Omit<Trial, 'pass'>): Promise<void> {
    const trial = { ...t, pass: t.problems.length === 0 };
    this.trials.push(trial);
    process.stdout.write(`${trial.pass ? 'PASS' : 'FAIL'}  ${trial.trial.padEnd(16)} ${trial.fault.padEnd(34)} ${trial.outcome.slice(0, 70).padEnd(70)} ${trial.seconds.toFixed(0).padStart(4)} s${trial.problems.length ? `\n      ${trial.problems.join('\n      ')}` : ''}\n`);
  }

  async startBackup(id: string, prune = true): Promise<WorkflowHandle> {
    return this.client.workflow.start('backupVault', { taskQueue: this.cfg.temporal.taskQueue, workflowId: id, args: [{ trigger: 'drill', prune }] });
  }

  async startRestore(id: string, backupId = 'latest'): Promise<WorkflowHandle> {
    return this.client.workflow.start('restoreVault', { taskQueue: this.cfg.temporal.taskQueue, workflowId: id, args: [{ backupId, target: 'staging', reason: 'chaos trial' }] });
  }

  /** Polls the progress query until the run reaches `want` (or 30 s pass); returns the step seen last. */
  async waitForStep(h: WorkflowHandle, want: string): Promise<string> {
    let step = '?';
    for (let i = 0; i < 600 && step !== want; i++) {
      step = await this.step(h);
      if (step !== want) await sleep(50);
    }
    return step;
  }

  async step(h: WorkflowHandle): Promise<string> {
    const q = h.query<{ step: string }>('progress').then((p) => p.step);
    return Promise.race([q, sleep(3000).then(() => '?')]).catch(() => '?');
  }

  /**
   * Judges a finished run: a verified result (its backup re-verified by the invariants) or a
   * clear failure — a typed error with a message — plus an alert e-mail naming the workflow.
   */
  async judge(workflowId: string, out: RunOutcome, kind: 'backup' | 'restore'): Promise<{ outcome: string; problems: string[]; verified: boolean }> {
    const problems: string[] = [];
    if (out.ok) {
      const v = out.value as BackupResult | RestoreRecord;
      if (v.status !== 'verified') problems.push(`${kind} ended ${v.status}`);
      return { outcome: `verified${kind === 'backup' ? ` ${(v as BackupResult).backupId}` : ` (RTO ${(v as RestoreRecord).rtoSeconds}s)`}`, problems, verified: v.status === 'verified' };
    }
    if (out.type === 'Timeout') problems.push(out.message);
    if (!out.message || out.type === 'Error') problems.push(`unclear failure: ${out.type}: ${out.message}`);
    if (!(await waitForMail(workflowId))) problems.push('no alert e-mail naming the workflow');
    return { outcome: `failed ${out.type}: ${out.message.replace(/\s+/g, ' ')} (+alert)`, problems, verified: false };
  }

  // -------------------------------------------------------------------------------------------

  async measure(kind: 'backup' | 'restore'): Promise<number> {
    const t0 = Date.now();
    const id = `chaos-${kind}-baseline-${Date.now()}`;
    const h = kind === 'backup' ? await this.startBackup(id) : await this.startRestore(id);
    const out = await outcomeOf(h, 300_000);
    if (!out.ok) throw new Error(`baseline ${kind} failed: ${out.message}`);
    return Date.now() - t0;
  }

  async killTrial(kind: 'backup' | 'restore', n: number, duration: number): Promise<void> {
    await this.clearDedup();
    const before = await storeState(this.s3, this.bucket);
    const id = `chaos-${kind}-kill-${n}-${Date.now()}`;
    const t0 = Date.now();
    const h = kind === 'backup' ? await this.startBackup(id) : await this.startRestore(id);
    const at = Math.round(duration * (0.05 + 0.9 * this.rng()));
    await sleep(at);
    const step = await this.step(h);
    await this.worker.kill();
    await sleep(Math.round(500 + 2500 * this.rng()));
    await this.worker.start();
    const out = await outcomeOf(h, 10 * 60_000);
    const j = await this.judge(id, out, kind);
    const inv = await this.invariants(before, { newBackupVerified: j.verified });
    await this.record({ trial: `${kind}-kill-${n}`, fault: `SIGKILL worker at ${(at / 1000).toFixed(1)} s`, injectedAt: step, outcome: j.outcome, seconds: (Date.now() - t0) / 1000, checks: inv.checks, problems: [...j.problems, ...inv.problems] });
  }

  /**
   * SeaweedFS stopped for 30 s while a multipart upload is really in flight: the KV holds enough
   * incompressible data for a snapshot of more than two 5 MiB parts, a worker of its own uploads
   * at 1 MB/s, and S3 goes down once it holds the first part and more are to come.
   */
  async s3Outage(): Promise<void> {
    await this.clearDedup();
    // Written once per stack: every rewrite would add versions and grow the snapshot run by run.
    const padded = (await fetch(`http://127.0.0.1:${PORTS.bao}/v1/secret/metadata/bulk/item-89`, { headers: { 'X-Vault-Token': rootToken() } })).status === 200;
    for (let i = 0; i < (padded ? 0 : 90); i++) {
      const res = await fetch(`http://127.0.0.1:${PORTS.bao}/v1/secret/data/bulk/item-${i}`, { method: 'POST', headers: { 'X-Vault-Token': rootToken() }, body: JSON.stringify({ data: { blob: crypto.randomBytes(75_000).toString('base64') } }) });
      if (res.status !== 200) throw new Error(`padding the KV: HTTP ${res.status}`);
    }
    const cfgFile = path.join(stackDir(), `chaos-s3-outage-${process.pid}.json`);
    const stackCfg = JSON.parse(fs.readFileSync(path.join(stackDir(), 'vaultdr.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    stackCfg.backup = { ...stackCfg.backup, partSize: 5 * 1024 * 1024, maxUploadBytesPerSecond: 1_000_000 };
    fs.writeFileSync(cfgFile, JSON.stringify(stackCfg));
    await this.worker.stop();
    const slow = this.worker.variant({ VAULTDR_CONFIG: cfgFile });
    await slow.start();
    const before = await storeState(this.s3, this.bucket);
    const id = `chaos-s3-outage-${Date.now()}`;
    const t0 = Date.now();
    let step = '?';
    let out: RunOutcome;
    try {
      const h = await this.startBackup(id);
      const deadline = Date.now() + 120_000;
      while (step === '?') {
        if (Date.now() > deadline) throw new Error('s3-outage: the upload never held a finished part');
        const backupId = await h.query<{ backupId?: string }>('progress').then((p) => p.backupId, () => undefined);
        const u = backupId ? (await this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: `backups/${backupId}/` }))).Uploads?.[0] : undefined;
        const parts = u ? ((await this.s3.send(new ListPartsCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }))).Parts ?? []).length : 0;
        if (parts >= 1) step = `upload in flight (${parts} part${parts > 1 ? 's' : ''} stored)`;
        else await sleep(100);
      }
      await stopServer('seaweedfs');
      await sleep(30_000);
      await startServer('seaweedfs');
      out = await outcomeOf(h, 10 * 60_000);
    } finally {
      await startServer('seaweedfs');
      await slow.stop();
      fs.rmSync(cfgFile, { force: true });
      await this.worker.start();
    }
    const j = await this.judge(id, out, 'backup');
    const inv = await this.invariants(before, { newBackupVerified: j.verified });
    await this.record({ trial: 's3-outage', fault: 'SeaweedFS stopped 30 s mid-upload', injectedAt: step, outcome: j.outcome, seconds: (Date.now() - t0) / 1000, checks: inv.checks, problems: [...j.problems, ...inv.problems] });
  }

  async sealMidBackup(): Promise<void> {
    await this.clearDedup();
    const before = await storeState(this.s3, this.bucket);
    const id = `chaos-seal-${Date.now()}`;
    const t0 = Date.now();
    const h = await this.startBackup(id);
    const step = await this.waitForStep(h, 'snapshotToStore');
    const res = await fetch(`http://127.0.0.1:${PORTS.bao}/v1/sys/seal`, { method: 'PUT', headers: { 'X-Vault-Token': rootToken() } });
    if (res.status !== 204) throw new Error(`seal: HTTP ${res.status}`);
    let out: RunOutcome;
    try {
      out = await outcomeOf(h, 10 * 60_000);
    } finally {
      await unsealBao();
    }
    const j = await this.judge(id, out, 'backup');
    const inv = await this.invariants(before, { newBackupVerified: j.verified });
    await this.record({ trial: 'seal', fault: 'OpenBao sealed mid-backup', injectedAt: step, outcome: j.outcome, seconds: (Date.now() - t0) / 1000, checks: inv.checks, problems: [...j.problems, ...inv.problems] });
  }

  /** Two fresh verified backups, then four corruptions of them, each followed by a restore that must refuse. */
  async corruption(): Promise<void> {
    const made: string[] = [];
    for (const n of [1, 2]) {
      const out = await outcomeOf(await this.startBackup(`chaos-corrupt-src-${n}-${Date.now()}`, false), 300_000);
      if (!out.ok) throw new Error(`corruption source backup failed: ${out.message}`);
      made.push((out.value as BackupResult).backupId);
    }
    const [a, b] = made as [string, string];
    const manifestKey = (id: string) => backupObjectKeys(id).manifest;
    const getBytes = async (key: string, versionId?: string) => Buffer.from(await (await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, VersionId: versionId }))).Body!.transformToByteArray());
    const manifestA = JSON.parse((await getBytes(manifestKey(a))).toString('utf8')) as BackupManifest;
    const manifestB = JSON.parse((await getBytes(manifestKey(b))).toString('utf8')) as BackupManifest;
    const original = await getBytes(manifestA.object.key, manifestA.object.versionId);
    /** The store hands back other bytes for the object the manifest names (a new version, pinned by the manifest). */
    const replaceObject = async (body: Buffer) => {
      const put = await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: manifestA.object.key, Body: body }));
      await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: manifestKey(a), Body: JSON.stringify({ ...manifestA, object: { ...manifestA.object, versionId: put.VersionId } }) }));
    };
    const flipped = Buffer.from(original);
    const pos = Math.floor(this.rng() * flipped.length);
    flipped[pos] = flipped[pos]! ^ (1 << Math.floor(this.rng() * 8));
    const cut = Math.floor(original.length * (0.2 + 0.7 * this.rng()));
    let swapped: [Buffer, Buffer] | undefined;
    const cases: { name: string; fault: string; target: string; inject: () => Promise<void>; undo: () => Promise<void>; removed?: string[]; expect: RegExp }[] = [
      { name: 'corrupt-flip', fault: `byte ${pos} of ${original.length} flipped`, target: a, inject: () => replaceObject(flipped), undo: () => replaceObject(original), expect: /BackupCorrupt/ },
      { name: 'corrupt-truncate', fault: `truncated to ${cut} of ${original.length} bytes`, target: a, inject: () => replaceObject(original.subarray(0, cut)), undo: () => replaceObject(original), expect: /BackupCorrupt/ },
      {
        name: 'corrupt-swap',
        fault: 'manifests of two backups swapped',
        target: a,
        inject: async () => {
          // The manifests as they are now: after flip and truncate were undone, a's pins the object
          // version the last undo wrote, not the first one. Putting the first one back would leave a
          // truly overwritten backup behind, which the next prune rightly refuses.
          swapped = [await getBytes(manifestKey(a)), await getBytes(manifestKey(b))];
          await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: manifestKey(a), Body: swapped[1] }));
          await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: manifestKey(b), Body: swapped[0] }));
        },
        undo: async () => {
          await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: manifestKey(a), Body: swapped![0] }));
          await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: manifestKey(b), Body: swapped![1] }));
        },
        expect: /BackupCorrupt/,
      },
      {
        name: 'corrupt-delete',
        fault: 'manifest deleted',
        target: b,
        inject: () => this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: [{ Key: manifestKey(b) }] } })).then(() => undefined),
        undo: () => this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: manifestKey(b), Body: JSON.stringify(manifestB) })).then(() => undefined),
        expect: /BackupNotFound/,
      },
    ];
    for (const c of cases) {
      await c.inject();
      await this.clearDedup();
      const before = await storeState(this.s3, this.bucket);
      const id = `chaos-${c.name}-${Date.now()}`;
      const t0 = Date.now();
      const out = await outcomeOf(await this.startRestore(id, c.target), 300_000);
      const j = await this.judge(id, out, 'restore');
      const problems = [...j.problems];
      if (out.ok) problems.push('a corrupted backup was restored');
      else if (!c.expect.test(out.type)) problems.push(`expected ${c.expect.source}, got ${out.type}`);
      if (!out.ok && !/target was not touched|refusing to restore|not found/.test(out.message)) problems.push('the failure does not say the target was left untouched');
      // A backup run right after must not prune what the fault left unverified or unlisted.
      // Only a backup the fault made unverified (no manifest) must survive retention; a corrupted one whose
      // manifest still says verified is an ordinary old backup to retention, so the others run without pruning
      // (and keep the two sources for the next case); the invariants still check any deletion against the policy.
      const after = await outcomeOf(await this.startBackup(`chaos-${c.name}-prune-${Date.now()}`, c.name === 'corrupt-delete'), 300_000);
      if (!after.ok) problems.push(`the backup after the fault failed: ${after.message}`);
      const inv = await this.invariants(before, { newBackupVerified: after.ok });
      const stillThere = await listAllKeys(this.s3, this.bucket, `backups/${c.target}/`);
      if (!stillThere.some((k) => k.endsWith('snapshot.vdrb'))) problems.push(`retention deleted the snapshot of ${c.target} after the fault`);
      await this.record({ trial: c.name, fault: c.fault, injectedAt: `restore of ${c.target}`, outcome: j.outcome, seconds: (Date.now() - t0) / 1000, checks: inv.checks, problems: [...problems, ...inv.problems.filter((p) => !p.includes(c.target))] });
      await c.undo();
    }
    // Leave no corrupted test backups behind.
    for (const id of made) {
      const keys = await listAllKeys(this.s3, this.bucket, `backups/${id}/`);
      if (keys.length) await this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    }
  }
}

// ---------------------------------------------------------------------------------------------

function writeResults(trials: Trial[], opts: Options, started: Date): { json: string; md: string } {
  const dir = path.join(PROJECT_ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const machine = { cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, kernel: os.release() };
  const summary = { passed: trials.filter((t) => t.pass).length, failed: trials.filter((t) => !t.pass).length };
  const json = path.join(dir, 'chaos-latest.json');
  fs.writeFileSync(json, JSON.stringify({ started: started.toISOString(), seed: opts.seed, kills: opts.kills, machine, summary, trials }, null, 2) + '\n');
  const md = path.join(dir, 'chaos-latest.md');
  const rows = trials.map((t) => `| ${t.pass ? 'pass' : '**FAIL**'} | ${t.trial} | ${t.fault} | ${t.injectedAt} | ${t.outcome.replace(/\|/g, '\\|')} | ${t.seconds.toFixed(0)} | ${[...t.problems, ...t.checks].join('; ').replace(/\|/g, '\\|')} |`);
  fs.writeFileSync(
    md,
    [
      `# Chaos campaign ${started.toISOString()}`,
      '',
      `Seed ${opts.seed}, ${opts.kills} SIGKILL trials each for backup and restore. Machine: ${machine.cpus}, ${machine.memoryGiB} GiB, Node ${machine.node}, Linux ${machine.kernel}.`,
      `Reproduce: \`npm run chaos -- --seed ${opts.seed} --kills ${opts.kills}\`. Result: ${summary.passed} passed, ${summary.failed} failed.`,
      '',
      '| result | trial | fault | step when injected | outcome | s | checks |',
      '|---|---|---|---|---|---|---|',
      ...rows,
      '',
    ].join('\n'),
  );
  return { json, md };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const started = new Date();
  process.stdout.write(`chaos: seed ${opts.seed}, ${opts.kills} kill trials each; stack up\n`);
  await stackUp();
  const taskQueue = `chaos-${process.pid}`;
  const env = {
    ...process.env,
    VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json'),
    VAULTDR_TASK_QUEUE: taskQueue,
    VAULTDR_METRICS_LISTEN: '',
    VAULTDR_CODEC_LISTEN: '127.0.0.1:18089',
    VAULTDR_SHARE_INTAKE_LISTEN: '127.0.0.1:18090',
    VAULTDR_LOG_LEVEL: 'WARN',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const cfg = loadConfig({ file: env.VAULTDR_CONFIG, env: { VAULTDR_TASK_QUEUE: taskQueue } });
  const client = await connectClient(cfg);
  const worker = new WorkerProcess(env);
  await worker.start();
  const c = new Campaign(cfg, client, worker, prng(opts.seed));
  const want = (k: string) => !opts.only || opts.only.has(k);
  try {
    if (want('backup-kill')) {
      const d = await c.measure('backup');
      process.stdout.write(`chaos: an undisturbed backup takes ${(d / 1000).toFixed(1)} s; kills fall in 5–95 % of that\n`);
      for (let i = 1; i <= opts.kills; i++) await c.killTrial('backup', i, d);
    }
    if (want('restore-kill')) {
      const d = await c.measure('restore');
      process.stdout.write(`chaos: an undisturbed restore takes ${(d / 1000).toFixed(1)} s; kills fall in 5–95 % of that\n`);
      for (let i = 1; i <= opts.kills; i++) await c.killTrial('restore', i, d);
    }
    if (want('s3-outage')) await c.s3Outage();
    if (want('seal')) await c.sealMidBackup();
    if (want('corrupt')) await c.corruption();
  } finally {
    await worker.stop();
    await client.connection.close();
  }
  const files = writeResults(c.trials, opts, started);
  const failed = c.trials.filter((t) => !t.pass);
  process.stdout.write(`\nchaos: ${c.trials.length - failed.length} of ${c.trials.length} trials passed; results in ${path.relative(PROJECT_ROOT, files.md)} and ${path.relative(PROJECT_ROOT, files.json)}\n`);
  process.exitCode = failed.length ? 1 : 0;
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`chaos: ${err.stack ?? err.message}\n`);
    process.exit(2);
  });
}
