// Checks the structure of an OpenBao/Vault raft snapshot while it streams past: a gzip'd tar
// with meta.json, state.bin and SHA256SUMS whose digests must match the files. Used when a
// backup is taken (to record raft index/term) and when one is verified or restored.
import * as crypto from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import * as tar from 'tar-stream';

export interface SnapshotMeta {
  id: string;
  index: number;
  term: number;
  size: number;
  servers: { id: string; address: string }[];
  files: string[];
}

export class SnapshotStructureError extends Error {
  override name = 'SnapshotStructureError';
}

/**
 * A writable that parses the snapshot bytes written to it; `result` settles when the stream ends.
 * Memory: meta.json and SHA256SUMS are small; state.bin is hashed, not kept.
 */
export function createSnapshotInspector(): { sink: Writable; result: Promise<SnapshotMeta>; earlyIndex: Promise<number | undefined> } {
  const input = new PassThrough();
  const extract = tar.extract();
  const digests = new Map<string, string>();
  const sizes = new Map<string, number>();
  let metaJson = '';
  let sums = '';
  // meta.json comes first in a raft snapshot archive: its raft index is known after the first few
  // KiB, long before the stream ends (undefined when it is not there or not readable; `result` is the check).
  let announceIndex: (i: number | undefined) => void = () => undefined;
  const earlyIndex = new Promise<number | undefined>((resolve) => (announceIndex = resolve));
  extract.on('entry', (headerInfo, entry, next) => {
    const hash = crypto.createHash('sha256');
    let n = 0;
    const chunks: Buffer[] = [];
    entry.on('data', (chunk: unknown) => {
      const d = chunk as Buffer;
      hash.update(d);
      n += d.length;
      if (headerInfo.name === 'meta.json' || headerInfo.name === 'SHA256SUMS') chunks.push(d);
    });
    entry.on('end', () => {
      digests.set(headerInfo.name, hash.digest('hex'));
      sizes.set(headerInfo.name, n);
      if (headerInfo.name === 'meta.json') {
        metaJson = Buffer.concat(chunks).toString('utf8');
        try {
          const i = (JSON.parse(metaJson) as { Index?: unknown }).Index;
          announceIndex(typeof i === 'number' ? i : undefined);
        } catch {
          announceIndex(undefined);
        }
      }
      if (headerInfo.name === 'SHA256SUMS') sums = Buffer.concat(chunks).toString('utf8');
      next();
    });
    entry.resume();
  });
  // 1 MiB inflate output instead of zlib's 16 KiB default: 64× fewer chunks through tar-stream and
  // the hash. A 1 GiB snapshot inspected in 1.0 s instead of 3.9 s, most of it garbage collection.
  const result = pipeline(input, zlib.createGunzip({ chunkSize: 1024 * 1024 }), extract).then(
    () => {
      for (const f of ['meta.json', 'state.bin', 'SHA256SUMS']) if (!digests.has(f)) throw new SnapshotStructureError(`raft snapshot lacks ${f}`);
      for (const line of sums.trim().split('\n')) {
        const [digest, name] = line.trim().split(/\s+/);
        if (!name || !digest) continue;
        if (digests.get(name) !== digest) throw new SnapshotStructureError(`raft snapshot file ${name} does not match its SHA256SUMS entry`);
      }
      let meta: { ID?: string; Index?: number; Term?: number; Size?: number; Configuration?: { Servers?: { ID: string; Address: string }[] } };
      try {
        meta = JSON.parse(metaJson) as typeof meta;
      } catch {
        throw new SnapshotStructureError('raft snapshot meta.json is not JSON');
      }
      if (typeof meta.Index !== 'number' || typeof meta.Term !== 'number') throw new SnapshotStructureError('raft snapshot meta.json lacks Index/Term');
      if (typeof meta.Size === 'number' && sizes.get('state.bin') !== meta.Size) throw new SnapshotStructureError(`raft snapshot state.bin is ${sizes.get('state.bin')} bytes, meta.json says ${meta.Size}`);
      return {
        id: meta.ID ?? '',
        index: meta.Index,
        term: meta.Term,
        size: meta.Size ?? sizes.get('state.bin') ?? 0,
        servers: (meta.Configuration?.Servers ?? []).map((s) => ({ id: s.ID, address: s.Address })),
        files: [...digests.keys()],
      };
    },
    (err: Error) => {
      throw err instanceof SnapshotStructureError ? err : new SnapshotStructureError(`not a valid raft snapshot: ${err.message}`);
    },
  );
  // Keep an unobserved rejection from crashing the process; callers await `result`.
  result.catch(() => undefined);
  void result.then(
    () => announceIndex(undefined),
    () => announceIndex(undefined),
  );
  return { sink: input, result, earlyIndex };
}
