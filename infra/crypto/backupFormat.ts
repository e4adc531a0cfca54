// The vault-dr backup stream format v1 (docs/backup-format.md): a chunked, authenticated
// AES-256-GCM stream. Truncation, reordering, duplication and tampering are all detected:
//   magic "VDRBAK" 0x00 0x01 | u32 header length | header JSON | frames...
//   frame = u32 plaintext length | ciphertext | 16-byte tag
//   nonce(frame i) = 7-byte random prefix | u32 i | 0x01 on the final frame else 0x00
//   AAD(every frame) = SHA-256(magic | header length | header)
// Memory is bounded by the chunk size: the encryptor holds at most one chunk plus one input piece.
import * as crypto from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { unwrapDataKey, wrapDataKey, type Recipient, type WrappedKey } from './keys';

export const MAGIC = Buffer.from([0x56, 0x44, 0x52, 0x42, 0x41, 0x4b, 0x00, 0x01]); // "VDRBAK\0\1"
export const FORMAT_VERSION = 1;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
const MAX_HEADER = 64 * 1024;
const TAG = 16;

export interface BackupHeader {
  v: 1;
  alg: 'AES-256-GCM-STREAM';
  chunkSize: number;
  noncePrefix: string;
  backupId: string;
  createdAt: string;
  recipients: WrappedKey[];
}

export type FormatErrorCause = 'not-a-backup' | 'unsupported-version' | 'bad-header' | 'wrong-key' | 'tampered' | 'truncated' | 'trailing-data';

export class BackupFormatError extends Error {
  override name = 'BackupFormatError';
  constructor(
    readonly cause_: FormatErrorCause,
    message: string,
  ) {
    super(message);
  }
}

function nonce(prefix: Buffer, index: number, final: boolean): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0, 0, 7);
  n.writeUInt32BE(index, 7);
  n[11] = final ? 1 : 0;
  return n;
}

/** Creates an encrypting stream for one backup; `header` is readable for the manifest. */
export function createEncryptor(opts: { backupId: string; createdAt: string; recipients: Recipient[]; chunkSize?: number }): { stream: Transform; header: BackupHeader } {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) throw new RangeError(`chunkSize must be 1..${MAX_CHUNK_SIZE}`);
  const dataKey = crypto.randomBytes(32);
  const prefix = crypto.randomBytes(7);
  const header: BackupHeader = {
    v: FORMAT_VERSION,
    alg: 'AES-256-GCM-STREAM',
    chunkSize,
    noncePrefix: prefix.toString('base64'),
    backupId: opts.backupId,
    createdAt: opts.createdAt,
    recipients: opts.recipients.map((r) => wrapDataKey(dataKey, r)),
  };
  const headerBytes = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(headerBytes.length);
  const preamble = Buffer.concat([MAGIC, len, headerBytes]);
  const aad = crypto.createHash('sha256').update(preamble).digest();

  let pending: Buffer[] = [];
  let pendingLen = 0;
  let index = 0;
  let started = false;

  /**
   * Seals the next `n` pending bytes as one frame. The cipher reads the pending pieces in place
   * (a frame may span pieces) and its output is pushed as it comes: no chunk is copied to be
   * joined, which at 1 GiB saved a full copy of the stream and most of the GC work.
   */
  const sealPending = (push: (b: Buffer) => void, n: number, final: boolean) => {
    const c = crypto.createCipheriv('aes-256-gcm', dataKey, nonce(prefix, index++, final));
    c.setAAD(aad);
    const l = Buffer.alloc(4);
    l.writeUInt32BE(n);
    push(l);
    let need = n;
    while (need > 0) {
      const head = pending[0]!;
      if (head.length <= need) {
        pending.shift();
        need -= head.length;
        push(c.update(head));
      } else {
        pending[0] = head.subarray(need);
        push(c.update(head.subarray(0, need)));
        need = 0;
      }
    }
    pendingLen -= n;
    const rest = c.final();
    if (rest.length) push(rest);
    push(c.getAuthTag());
  };

  const stream = new Transform({
    transform(piece: Buffer, _enc, cb: TransformCallback) {
      if (!started) {
        this.push(preamble);
        started = true;
      }
      pending.push(piece);
      pendingLen += piece.length;
      // Emit full chunks only while more data follows, so the last chunk can carry the final flag.
      while (pendingLen > chunkSize) sealPending((b) => this.push(b), chunkSize, false);
      cb();
    },
    flush(cb: TransformCallback) {
      if (!started) this.push(preamble);
      sealPending((b) => this.push(b), pendingLen, true);
      pending = [];
      dataKey.fill(0);
      cb();
    },
  });
  return { stream, header };
}

/** Reads just the header of a backup from its first bytes (for listing and key checks). */
export function parseHeader(buf: Buffer): { header: BackupHeader; length: number } | undefined {
  if (buf.length < MAGIC.length + 4) return undefined;
  if (!buf.subarray(0, 6).equals(MAGIC.subarray(0, 6))) throw new BackupFormatError('not-a-backup', 'not a vault-dr backup (bad magic)');
  if (buf[6] !== 0x00 || buf[7] !== FORMAT_VERSION) throw new BackupFormatError('unsupported-version', `unsupported backup format version ${buf[7]}`);
  const hlen = buf.readUInt32BE(8);
  if (hlen > MAX_HEADER) throw new BackupFormatError('bad-header', `header length ${hlen} exceeds ${MAX_HEADER}`);
  if (buf.length < 12 + hlen) return undefined;
  let header: BackupHeader;
  try {
    header = JSON.parse(buf.subarray(12, 12 + hlen).toString('utf8')) as BackupHeader;
  } catch {
    throw new BackupFormatError('bad-header', 'backup header is not valid JSON');
  }
  if (header.v !== FORMAT_VERSION || !Number.isInteger(header.chunkSize) || header.chunkSize < 1 || header.chunkSize > MAX_CHUNK_SIZE || !Array.isArray(header.recipients)) {
    throw new BackupFormatError('bad-header', 'backup header fields are invalid');
  }
  return { header, length: 12 + hlen };
}

/**
 * Creates a decrypting stream. `privateKey` is an X25519 private key that is one of the
 * recipients. Errors carry a `cause_` an operator can act on.
 */
export function createDecryptor(privateKey: Buffer): Transform & { header?: BackupHeader } {
  // Input pieces (often 16 KiB socket reads) are collected and joined only once a whole header or
  // frame is there: joining on every piece would copy a 1 MiB frame about 64 times.
  let pieces: Buffer[] = [];
  let have = 0;
  let wanted = 12;
  let header: BackupHeader | undefined;
  let key: Buffer | undefined;
  let aad: Buffer | undefined;
  let prefix: Buffer | undefined;
  let index = 0;
  let finished = false;

  const stream: Transform & { header?: BackupHeader } = new Transform({
    transform(piece: Buffer, _enc, cb: TransformCallback) {
      if (finished) return cb(new BackupFormatError('trailing-data', 'data after the final chunk'));
      pieces.push(piece);
      have += piece.length;
      if (have < wanted) return cb();
      let buf = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, have);
      const keep = (rest: Buffer, next: number) => {
        pieces = rest.length ? [rest] : [];
        have = rest.length;
        wanted = next;
      };
      try {
        if (!header) {
          const parsed = parseHeader(buf);
          if (!parsed) {
            keep(buf, buf.length < 12 ? 12 : 12 + buf.readUInt32BE(8));
            return cb();
          }
          header = parsed.header;
          stream.header = header;
          aad = crypto.createHash('sha256').update(buf.subarray(0, parsed.length)).digest();
          prefix = Buffer.from(header.noncePrefix, 'base64');
          try {
            key = unwrapDataKey(header.recipients, privateKey);
          } catch (err) {
            throw new BackupFormatError('wrong-key', (err as Error).message);
          }
          buf = buf.subarray(parsed.length);
        }
        while (buf.length >= 4) {
          const plen = buf.readUInt32BE(0);
          if (plen > header.chunkSize) throw new BackupFormatError('tampered', `chunk ${index} claims ${plen} bytes, more than the chunk size`);
          const need = 4 + plen + TAG;
          if (buf.length < need) {
            keep(buf, need);
            return cb();
          }
          const body = buf.subarray(4, 4 + plen);
          const tag = buf.subarray(4 + plen, need);
          // A chunk shorter than the chunk size must be the final one; try final first then.
          const plain = open(body, tag, plen < header.chunkSize);
          this.push(plain.data);
          buf = buf.subarray(need);
          if (plain.final) {
            finished = true;
            if (buf.length) throw new BackupFormatError('trailing-data', 'data after the final chunk');
            key!.fill(0);
          }
        }
        keep(buf, 4);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb: TransformCallback) {
      if (!header) return cb(new BackupFormatError('truncated', 'backup ends inside its header'));
      if (!finished) return cb(new BackupFormatError('truncated', `backup is truncated: no final chunk after ${index} chunk(s)`));
      cb();
    },
  });

  function open(body: Buffer, tag: Buffer, tryFinalFirst: boolean): { data: Buffer; final: boolean } {
    for (const final of tryFinalFirst ? [true, false] : [false, true]) {
      try {
        const d = crypto.createDecipheriv('aes-256-gcm', key!, nonce(prefix!, index, final));
        d.setAAD(aad!);
        d.setAuthTag(tag);
        const data = Buffer.concat([d.update(body), d.final()]);
        index++;
        return { data, final };
      } catch {
        // try the other flag
      }
    }
    throw new BackupFormatError('tampered', `chunk ${index} does not authenticate (altered, reordered or from another backup)`);
  }

  return stream;
}
