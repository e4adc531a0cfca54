// A synthetic snapshot-sized stream for the encrypt → upload → verify stage: a file shaped like an
// OpenBao raft snapshot (gzip'd tar of meta.json, state.bin, SHA256SUMS, so the product's snapshot
// inspector accepts it) whose state.bin is `bytes` of a seeded pseudo-random stream. The stream is
// AES-256-CTR keystream from node:crypto keyed by SHA-256(seed): fast, reproducible, and written
// piece by piece, never held in memory. gzip level 0 (stored blocks): random bytes do not compress,
// and generating the file is not what is measured.
import * as crypto from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import * as tar from 'tar-stream';

const PIECE = 1024 * 1024;

function* pseudoRandom(seed: string, bytes: number): Generator<Buffer> {
  const key = crypto.createHash('sha256').update(seed).digest();
  const ctr = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(PIECE);
  for (let left = bytes; left > 0; left -= PIECE) yield ctr.update(left >= PIECE ? zeros : zeros.subarray(0, left));
}

async function addEntry(pack: tar.Pack, name: string, size: number, pieces: Iterable<Buffer>): Promise<string> {
  const hash = crypto.createHash('sha256');
  const done = new Promise<void>((resolve, reject) => {
    const entry = pack.entry({ name, size, mode: 0o600, mtime: new Date(0) }, (err) => (err ? reject(err) : resolve()));
    void (async () => {
      for (const p of pieces) {
        hash.update(p);
        if (!entry.write(p)) await once(entry as unknown as NodeJS.EventEmitter, 'drain');
      }
      (entry as NodeJS.WritableStream).end();
    })().catch(reject);
  });
  await done;
  return hash.digest('hex');
}

/** Writes the synthetic snapshot to `file`; returns its size in bytes. */
export async function writeSyntheticSnapshot(file: string, stateBytes: number, seed = 'vault-dr bench'): Promise<number> {
  const pack = tar.pack();
  const writing = pipeline(pack, zlib.createGzip({ level: 0 }), fs.createWriteStream(file, { mode: 0o600 }));
  const meta = Buffer.from(JSON.stringify({ Version: 1, ID: 'bench-synthetic', Index: 1000, Term: 2, Size: stateBytes, Configuration: { Servers: [{ ID: 'bench', Address: '127.0.0.1:0' }] } }));
  const metaSum = await addEntry(pack, 'meta.json', meta.length, [meta]);
  const stateSum = await addEntry(pack, 'state.bin', stateBytes, pseudoRandom(seed, stateBytes));
  const sums = Buffer.from(`${metaSum}  meta.json\n${stateSum}  state.bin\n`);
  await addEntry(pack, 'SHA256SUMS', sums.length, [sums]);
  pack.finalize();
  await writing;
  return fs.statSync(file).size;
}
