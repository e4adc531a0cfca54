// `node lib/bench/pipelineParts.js [--mib 256] [--runs 2] [--out f.json]`: what each stage of the
// backup pipeline and of the restore read path costs on its own, in process, without S3.
// Write side: a synthetic snapshot file (bench/synthetic.ts) read to a null sink, then through one
// stage at a time (the plaintext SHA-256, the raft structure check, AES-256-GCM encryption, the
// ciphertext SHA-256), then through all of them chained as snapshotToStore chains them. Stage cost
// = its run − the plain read. The re-read (verifyUploadedBackup) is a download plus one SHA-256:
// its SHA-256 part is the "ciphertext SHA-256" row.
// Read side (restores, `vaultdr backup verify`): the encrypted file read plain, then through the
// ciphertext SHA-256, the authenticated decryption, the decryption plus each plaintext check, and
// the product's verifyBackupStream with all of them. A throwaway key pair is made for the run.
// Prints one JSON line per run and a summary; CPU seconds are the process's (every thread).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Command } from 'commander';
import { createDecryptor, createEncryptor } from '../infra/crypto/backupFormat';
import { generateKeyPair, type Recipient } from '../infra/crypto/keys';
import { verifyBackupStream } from '../infra/crypto/verifyBackup';
import type { BackupManifest } from '../common/backup';
import { createSnapshotInspector } from '../infra/vault/snapshotInspect';
import { writeSyntheticSnapshot } from './synthetic';

/** Hashes what passes, like the Digest stage of snapshotToStore. */
class Sha extends Transform {
  readonly hash = crypto.createHash('sha256');
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
    this.hash.update(chunk);
    cb(null, chunk);
  }
}
const sha = () => new Sha();

/** The structure check as snapshotToStore runs it: a copy of every chunk into the inspector. */
function inspect(): { stage: Transform; done: Promise<unknown> } {
  const inspector = createSnapshotInspector();
  const stage = new Transform({
    transform(chunk: Buffer, _e, cb) {
      if (inspector.sink.write(chunk)) return cb(null, chunk);
      inspector.sink.once('drain', () => cb(null, chunk));
    },
    flush(cb) {
      inspector.sink.end();
      cb();
    },
  });
  return { stage, done: inspector.result };
}

const nullSink = () =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

async function main() {
  const o = new Command().option('--mib <n>', 'state.bin size in MiB', '256').option('--runs <n>', 'runs per setting', '2').option('--out <file>', 'JSON results file').parse(process.argv).opts<{ mib: string; runs: string; out?: string }>();
  const pair = generateKeyPair();
  const recipients: Recipient[] = [{ keyId: pair.keyId, role: 'escrow', publicKey: pair.publicKey.toString('base64') }];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdr-parts-'));
  const file = path.join(dir, 'synthetic.snap');
  try {
    const bytes = await writeSyntheticSnapshot(file, Number(o.mib) * 1024 * 1024);
    const read = () => fs.createReadStream(file, { highWaterMark: 1024 * 1024 });
    const enc = () => createEncryptor({ backupId: 'parts', createdAt: new Date(0).toISOString(), recipients, chunkSize: 1024 * 1024 }).stream;
    const settings: Record<string, () => Promise<unknown>> = {
      'read only': () => pipeline(read(), nullSink()),
      'plaintext SHA-256': () => pipeline(read(), sha(), nullSink()),
      'structure check (gunzip + tar + SHA-256 of each file)': async () => {
        const i = inspect();
        await pipeline(read(), i.stage, nullSink());
        await i.done;
      },
      'AES-256-GCM encryption': () => pipeline(read(), enc(), nullSink()),
      'ciphertext SHA-256 (also the re-read check)': () => pipeline(read(), enc(), sha(), nullSink()),
      'all chained (as snapshotToStore, without the upload)': async () => {
        const i = inspect();
        await pipeline(read(), sha(), i.stage, enc(), sha(), nullSink());
        await i.done;
      },
    };

    // The read side: one encrypted file (and the manifest it would have), read as restores read it.
    const encFile = path.join(dir, 'synthetic.vdrb');
    const plainSha = sha();
    const cipherSha = sha();
    const inspected = inspect();
    await pipeline(read(), plainSha, inspected.stage, enc(), cipherSha, fs.createWriteStream(encFile));
    const meta = (await inspected.done) as { index: number; term: number };
    const manifest = {
      backupId: 'parts',
      plaintext: { bytes, sha256: plainSha.hash.digest('hex') },
      object: { bucket: 'local', key: encFile, bytes: fs.statSync(encFile).size, sha256: cipherSha.hash.digest('hex') },
      snapshot: { raftIndex: meta.index, raftTerm: meta.term },
    } as unknown as BackupManifest;
    const readEnc = () => fs.createReadStream(encFile, { highWaterMark: 1024 * 1024 });
    const dec = () => createDecryptor(pair.privateKey);
    Object.assign(settings, {
      'read side: read only (the encrypted file)': () => pipeline(readEnc(), nullSink()),
      'read side: ciphertext SHA-256': () => pipeline(readEnc(), sha(), nullSink()),
      'read side: AES-256-GCM decryption (authenticated)': () => pipeline(readEnc(), dec(), nullSink()),
      'read side: decryption + plaintext SHA-256': () => pipeline(readEnc(), dec(), sha(), nullSink()),
      'read side: decryption + structure check': async () => {
        const i = inspect();
        await pipeline(readEnc(), dec(), i.stage, nullSink());
        await i.done;
      },
      'read side: all (verifyBackupStream, as restores run it)': () => verifyBackupStream({ source: readEnc(), objectName: encFile, manifest, privateKey: pair.privateKey }),
    });
    const results: { setting: string; seconds: number; cpuSeconds: number }[] = [];
    for (const [setting, fn] of Object.entries(settings)) {
      const runs: { seconds: number; cpuSeconds: number }[] = [];
      for (let r = 0; r < Number(o.runs); r++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await fn();
        const c = process.cpuUsage(c0);
        runs.push({ seconds: (performance.now() - t0) / 1000, cpuSeconds: (c.user + c.system) / 1e6 });
      }
      runs.sort((a, b) => a.seconds - b.seconds);
      const best = runs[0]!;
      results.push({ setting, ...best });
      console.log(JSON.stringify({ setting, runs }));
    }
    // A stage's own cost is its run over the plain read of the same side; the write side's
    // ciphertext hash sits after the encryptor, so its cost is over the encryption run.
    const readBase = results.find((r) => r.setting.startsWith('read side: read only'))!;
    const encOnly = results.find((r) => r.setting.startsWith('AES'))!;
    const summary = results.map((r) => {
      const over = r.setting.startsWith('read side:') ? readBase : r.setting.startsWith('ciphertext') ? encOnly : results[0]!;
      return {
        setting: r.setting,
        seconds: +r.seconds.toFixed(2),
        cpuSeconds: +r.cpuSeconds.toFixed(2),
        addedSeconds: +(r.seconds - over.seconds).toFixed(2),
        addedCpuSeconds: +(r.cpuSeconds - over.cpuSeconds).toFixed(2),
      };
    });
    const out = { date: new Date().toISOString(), bytes, cpus: os.cpus().length, loadavg: os.loadavg(), summary };
    console.log(JSON.stringify(out));
    if (o.out) fs.writeFileSync(o.out, JSON.stringify(out, null, 2) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err.stack);
    process.exit(1);
  },
);
