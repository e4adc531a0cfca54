// Audit-log shipping: each OpenBao node's local audit file is copied off the node to the object
// store in append-only chunks. A chunk's key names its byte range (`<start>-<end>.jsonl`, zero
// padded), never reused; the bucket has versioning and object lock, so a shipped chunk cannot be
// rewritten or removed silently. Only whole lines are shipped. The shipper's resume point is a
// local state file written after the upload, so a crash re-ships at most one chunk, under the
// same key (same bytes). Gaps are detectable: consecutive chunks must meet exactly.
import * as fs from 'node:fs';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

export const AUDIT_BUCKET = 'vault-dr-audit';
export const auditPrefix = (cluster: string, node: string) => `audit/${cluster}/${node}/`;
const pad = (n: number) => String(n).padStart(14, '0');

export interface ShipState {
  offset: number;
  chunks: number;
  lastShippedAt?: string;
}

export function readShipState(file: string): ShipState {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as ShipState;
  } catch {
    return { offset: 0, chunks: 0 };
  }
}

/** Ships the complete lines appended since the last run; returns the bytes shipped (0 when none). */
export async function shipOnce(o: { s3: S3Client; bucket: string; cluster: string; node: string; logFile: string; stateFile: string; maxChunkBytes?: number }): Promise<number> {
  const state = readShipState(o.stateFile);
  let size: number;
  try {
    size = fs.statSync(o.logFile).size;
  } catch {
    return 0; // no audit file yet (node never unsealed)
  }
  if (size < state.offset) throw new Error(`${o.logFile} shrank from ${state.offset} to ${size} bytes (rotated or truncated): refusing to ship over a gap`);
  if (size === state.offset) return 0;
  const len = Math.min(size - state.offset, o.maxChunkBytes ?? 8 * 1024 * 1024);
  const buf = Buffer.alloc(len);
  const fd = fs.openSync(o.logFile, 'r');
  try {
    fs.readSync(fd, buf, 0, len, state.offset);
  } finally {
    fs.closeSync(fd);
  }
  const lastNl = buf.lastIndexOf(0x0a);
  if (lastNl < 0) return 0; // a line still being written
  const body = buf.subarray(0, lastNl + 1);
  const end = state.offset + body.length;
  await o.s3.send(new PutObjectCommand({ Bucket: o.bucket, Key: `${auditPrefix(o.cluster, o.node)}${pad(state.offset)}-${pad(end)}.jsonl`, Body: body, ContentType: 'application/x-ndjson' }));
  const next: ShipState = { offset: end, chunks: state.chunks + 1, lastShippedAt: new Date().toISOString() };
  fs.writeFileSync(`${o.stateFile}.tmp`, JSON.stringify(next));
  fs.renameSync(`${o.stateFile}.tmp`, o.stateFile);
  return body.length;
}

export interface ShippedChunk {
  key: string;
  start: number;
  end: number;
  lastModified?: Date;
}

export async function listShipped(s3: S3Client, bucket: string, cluster: string, node: string): Promise<ShippedChunk[]> {
  const out: ShippedChunk[] = [];
  let token: string | undefined;
  do {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: auditPrefix(cluster, node), ContinuationToken: token }));
    for (const o of r.Contents ?? []) {
      const m = /(\d{14})-(\d{14})\.jsonl$/.exec(o.Key ?? '');
      if (m) out.push({ key: o.Key!, start: Number(m[1]), end: Number(m[2]), lastModified: o.LastModified });
    }
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out.sort((a, b) => a.start - b.start || a.end - b.end);
}

/** Byte ranges missing between shipped chunks (a gap), from 0 to the last chunk's end. */
export function gaps(chunks: ShippedChunk[]): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  let at = 0;
  for (const c of chunks) {
    if (c.start > at) out.push({ from: at, to: c.start });
    at = Math.max(at, c.end);
  }
  return out;
}

/** The shipped copy of a node's log from byte `from` on, chunks concatenated in order (the check greps it). */
export async function readShipped(s3: S3Client, bucket: string, chunks: ShippedChunk[], from = 0): Promise<Buffer> {
  const parts: Buffer[] = [];
  let at = from;
  for (const c of chunks) {
    if (c.end <= at) continue; // a re-shipped chunk after a crash: same bytes, skip the duplicate
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: c.key }));
    const b = Buffer.from(await r.Body!.transformToByteArray());
    parts.push(b.subarray(at - c.start));
    at = c.end;
  }
  return Buffer.concat(parts);
}
