// The vdrbak/1 stream format (infra/crypto/backupFormat.ts), exercised the way a restore depends on it:
// every plaintext byte comes back whatever the chunking of the input, each recipient can read the
// backup and nobody else can, and every kind of damage to a stored object is refused with the
// `cause_` that `vaultdr backup verify` shows the operator. A small chunk size keeps frames tiny so
// the edge cases (empty, exact multiples, one byte over) are cheap to hit.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupFormatError, createDecryptor, createEncryptor, MAGIC, parseHeader, type BackupHeader, type FormatErrorCause } from '../infra/crypto/backupFormat';
import { generateKeyPair, type KeyPair, type Recipient, type RecipientRole } from '../infra/crypto/keys';

const CHUNK = 64;
const TAG = 16;
const BACKUP_ID = '20260101T020000Z-1a2b3c4d';
const CREATED_AT = '2026-01-01T02:00:00.000Z';

const escrow = generateKeyPair();
const validation = generateKeyPair();
const outsider = generateKeyPair();
const recipientOf = (k: KeyPair, role: RecipientRole): Recipient => ({ keyId: k.keyId, role, publicKey: k.publicKey.toString('base64') });
const RECIPIENTS = [recipientOf(escrow, 'escrow'), recipientOf(validation, 'validation')];

/** Cuts a buffer into pieces of `size` bytes (the last one shorter), as a network read would. */
function piecesOf(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < buf.length; off += size) out.push(buf.subarray(off, off + size));
  return out;
}

async function through(pieces: Buffer[], transform: Transform): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk);
      cb();
    },
  });
  await pipeline(Readable.from(pieces), transform, sink);
  return Buffer.concat(out);
}

/** Patterned plaintext so that a misplaced or dropped byte shows up in the comparison. */
function plaintextOf(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

async function encrypt(plain: Buffer, opts: { pieceSize?: number; chunkSize?: number } = {}): Promise<{ backup: Buffer; header: BackupHeader }> {
  const { stream, header } = createEncryptor({ backupId: BACKUP_ID, createdAt: CREATED_AT, recipients: RECIPIENTS, chunkSize: opts.chunkSize ?? CHUNK });
  const backup = await through(piecesOf(plain, opts.pieceSize ?? Math.max(plain.length, 1)), stream);
  return { backup, header };
}

async function decrypt(backup: Buffer, privateKey: Buffer, pieceSize?: number): Promise<Buffer> {
  return through(piecesOf(backup, pieceSize ?? Math.max(backup.length, 1)), createDecryptor(privateKey));
}

/** The stored bytes split along the documented layout: preamble (magic, length, header) then frames. */
function layoutOf(backup: Buffer): { preamble: Buffer; frames: Buffer[] } {
  const hlen = backup.readUInt32BE(8);
  const preamble = backup.subarray(0, 12 + hlen);
  const frames: Buffer[] = [];
  let off = 12 + hlen;
  while (off < backup.length) {
    const end = off + 4 + backup.readUInt32BE(off) + TAG;
    assert.ok(end <= backup.length, `frame at ${off} runs past the end`);
    frames.push(backup.subarray(off, end));
    off = end;
  }
  return { preamble, frames };
}

const rebuild = (preamble: Buffer, frames: Buffer[]) => Buffer.concat([preamble, ...frames]);

/**
 * A damaged backup must be refused with `cause`, whether it arrives in one piece or in small
 * reads (the decryptor's buffering must not change the verdict).
 */
async function assertRefused(backup: Buffer, cause: FormatErrorCause, privateKey: Buffer = escrow.privateKey): Promise<void> {
  for (const pieceSize of [undefined, 7]) {
    await assert.rejects(decrypt(backup, privateKey, pieceSize), (err: unknown) => {
      assert.ok(err instanceof BackupFormatError, `expected a BackupFormatError, got ${String(err)}`);
      assert.equal(err.cause_, cause, `piece size ${pieceSize ?? 'whole'}: ${err.message}`);
      return true;
    });
  }
}

describe('backup stream format (vdrbak/1)', () => {
  describe('round trip', () => {
    const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17];
    for (const size of sizes) {
      it(`restores ${size} plaintext bytes exactly, whatever the write sizes`, async () => {
        const plain = plaintextOf(size);
        // whole, 7-byte writes (never aligned to the chunk), 1-byte writes, writes of several chunks
        for (const pieceSize of [undefined, 7, 1, 2 * CHUNK + 5]) {
          const { backup } = await encrypt(plain, { pieceSize });
          const { frames } = layoutOf(backup);
          assert.equal(frames.length, Math.max(1, Math.ceil(size / CHUNK)), `frame count for ${size} bytes`);
          for (const pieces of [undefined, 7, 1]) {
            const back = await decrypt(backup, escrow.privateKey, pieces);
            assert.ok(back.equals(plain), `size ${size}, written in ${pieceSize ?? 'one'}-byte pieces, read in ${pieces ?? 'one'}-byte pieces`);
          }
        }
      });
    }

    it('lays bytes out as documented: every frame but the last carries a full chunk; size is 12 + H + Σ(20 + L)', async () => {
      const plain = plaintextOf(3 * CHUNK + 17);
      const { backup, header } = await encrypt(plain, { pieceSize: 7 });
      assert.ok(backup.subarray(0, 8).equals(MAGIC));
      const { preamble, frames } = layoutOf(backup);
      assert.deepEqual(
        frames.map((f) => f.readUInt32BE(0)),
        [CHUNK, CHUNK, CHUNK, 17],
      );
      assert.equal(backup.length, preamble.length + frames.reduce((n, f) => n + 20 + f.readUInt32BE(0), 0));
      // The header a manifest records is the one actually stored.
      const parsed = parseHeader(backup);
      assert.ok(parsed);
      assert.equal(parsed.length, preamble.length);
      assert.deepEqual(parsed.header, header);
      assert.equal(parsed.header.backupId, BACKUP_ID);
      assert.equal(parsed.header.chunkSize, CHUNK);
      assert.deepEqual(
        parsed.header.recipients.map((r) => r.keyId),
        [escrow.keyId, validation.keyId],
      );
      // Too few bytes for the preamble, or for the whole header: not yet decidable.
      assert.equal(parseHeader(backup.subarray(0, 11)), undefined);
      assert.equal(parseHeader(backup.subarray(0, preamble.length - 1)), undefined);
    });

    it('round-trips a multi-megabyte snapshot with the default 1 MiB chunk size', async () => {
      const plain = crypto.randomBytes(2.5 * 1024 * 1024);
      const { stream } = createEncryptor({ backupId: BACKUP_ID, createdAt: CREATED_AT, recipients: RECIPIENTS });
      const backup = await through(piecesOf(plain, 64 * 1024 + 3), stream);
      assert.equal(layoutOf(backup).frames.length, 3);
      assert.ok((await decrypt(backup, validation.privateKey, 65536)).equals(plain));
    });
  });

  describe('recipients and confidentiality', () => {
    it('both the escrow key and the validation key decrypt the same backup, and report its header', async () => {
      const plain = plaintextOf(3 * CHUNK + 17);
      const { backup } = await encrypt(plain);
      for (const key of [escrow, validation]) {
        const decryptor = createDecryptor(key.privateKey);
        const back = await through([backup], decryptor);
        assert.ok(back.equals(plain), `decrypted with ${key.keyId}`);
        assert.equal(decryptor.header?.backupId, BACKUP_ID);
      }
    });

    it('a key that is not a recipient is refused as wrong-key', async () => {
      const { backup } = await encrypt(plaintextOf(100));
      await assertRefused(backup, 'wrong-key', outsider.privateKey);
      await assert.rejects(decrypt(backup, outsider.privateKey), /wrong key/);
    });

    it('never stores a plaintext marker, in the frames or the header', async () => {
      const marker = Buffer.from('canary-marker-7f3a9c1e-vault-dr');
      const plain = Buffer.concat(Array.from({ length: 20 }, (_, i) => Buffer.concat([plaintextOf(i * 3), marker])));
      const { backup } = await encrypt(plain, { pieceSize: 7 });
      assert.ok(plain.includes(marker));
      assert.ok(!backup.includes(marker), 'the marker appears in the ciphertext');
      assert.ok(!backup.includes(marker.subarray(0, 12)), 'a prefix of the marker appears in the ciphertext');
    });

    it('two encryptions of the same plaintext share nothing but the header fields they were given', async () => {
      const plain = plaintextOf(3 * CHUNK + 17);
      const a = await encrypt(plain);
      const b = await encrypt(plain);
      assert.notEqual(a.header.noncePrefix, b.header.noncePrefix);
      assert.notEqual(a.header.recipients[0]!.wrappedKey, b.header.recipients[0]!.wrappedKey);
      assert.notEqual(a.header.recipients[0]!.ephemeralPublicKey, b.header.recipients[0]!.ephemeralPublicKey);
      const fa = layoutOf(a.backup).frames;
      const fb = layoutOf(b.backup).frames;
      assert.equal(fa.length, fb.length);
      for (let i = 0; i < fa.length; i++) assert.ok(!fa[i]!.subarray(4).equals(fb[i]!.subarray(4)), `frame ${i} is identical in both backups`);
    });
  });

  describe('damage is detected with a cause an operator can act on', () => {
    // 4 frames: three full (non-final) and a 17-byte final one.
    const plain = plaintextOf(3 * CHUNK + 17);
    let backup: Buffer;
    let preamble: Buffer;
    let frames: Buffer[];

    before(async () => {
      ({ backup } = await encrypt(plain, { pieceSize: 7 }));
      ({ preamble, frames } = layoutOf(backup));
      assert.equal(frames.length, 4);
      assert.ok((await decrypt(backup, escrow.privateKey)).equals(plain), 'the undamaged backup must decrypt');
    });

    it('truncated at a frame boundary (final frame dropped) → truncated', async () => {
      await assertRefused(rebuild(preamble, frames.slice(0, 3)), 'truncated');
      await assertRefused(rebuild(preamble, frames.slice(0, 1)), 'truncated');
      await assertRefused(preamble, 'truncated');
    });

    it('truncated at a frame boundary when the final frame is a full chunk → truncated', async () => {
      const exact = (await encrypt(plaintextOf(2 * CHUNK))).backup;
      const l = layoutOf(exact);
      assert.equal(l.frames.length, 2);
      assert.equal(l.frames[1]!.readUInt32BE(0), CHUNK);
      await assertRefused(rebuild(l.preamble, l.frames.slice(0, 1)), 'truncated');
    });

    it('truncated inside a frame → truncated', async () => {
      const frame2At = preamble.length + frames[0]!.length + frames[1]!.length;
      await assertRefused(backup.subarray(0, frame2At + 2), 'truncated'); // inside the length field
      await assertRefused(backup.subarray(0, frame2At + 30), 'truncated'); // inside the ciphertext
      await assertRefused(backup.subarray(0, backup.length - 1), 'truncated'); // last byte of the final tag
    });

    it('truncated inside the header → truncated', async () => {
      await assertRefused(backup.subarray(0, Math.floor(preamble.length / 2)), 'truncated');
      await assertRefused(backup.subarray(0, 10), 'truncated');
      await assertRefused(Buffer.alloc(0), 'truncated');
    });

    it('a flipped byte in a ciphertext frame or its tag → tampered', async () => {
      for (const [frame, at] of [
        [1, 4 + 10],
        [3, 4],
        [0, frames[0]!.length - 1],
      ] as const) {
        const damaged = Buffer.from(backup);
        const off = preamble.length + frames.slice(0, frame).reduce((n, f) => n + f.length, 0) + at;
        damaged[off]! ^= 0x01;
        await assertRefused(damaged, 'tampered');
      }
    });

    it('an altered header field (another backupId of the same length) → tampered, nothing decrypted', async () => {
      const otherId = BACKUP_ID.replace(/d$/, 'e');
      const headerText = preamble.subarray(12).toString('utf8');
      assert.ok(headerText.includes(`"${BACKUP_ID}"`));
      const forged = Buffer.concat([preamble.subarray(0, 12), Buffer.from(headerText.replace(BACKUP_ID, otherId))]);
      assert.equal(forged.length, preamble.length);
      const damaged = rebuild(forged, frames);
      await assertRefused(damaged, 'tampered');
      // No plaintext is released before the first frame authenticates.
      const out: Buffer[] = [];
      const decryptor = createDecryptor(escrow.privateKey);
      decryptor.on('data', (c: Buffer) => out.push(c));
      await assert.rejects(pipeline(Readable.from([damaged]), decryptor));
      assert.equal(Buffer.concat(out).length, 0);
    });

    it('a header that is not JSON → bad-header', async () => {
      const damaged = Buffer.from(backup);
      damaged[12] = 0x5b; // '{' → '['; the JSON no longer parses
      damaged[13] = 0x7d;
      await assertRefused(damaged, 'bad-header');
    });

    it('two frames swapped → tampered', async () => {
      await assertRefused(rebuild(preamble, [frames[1]!, frames[0]!, frames[2]!, frames[3]!]), 'tampered');
      await assertRefused(rebuild(preamble, [frames[0]!, frames[1]!, frames[3]!, frames[2]!]), 'tampered');
    });

    it('a frame duplicated → tampered; the final frame repeated after itself → trailing-data', async () => {
      await assertRefused(rebuild(preamble, [frames[0]!, frames[1]!, frames[1]!, frames[2]!, frames[3]!]), 'tampered');
      await assertRefused(rebuild(preamble, [...frames, frames[3]!]), 'trailing-data');
    });

    it('a frame spliced in from another backup of the same plaintext → tampered', async () => {
      const other = layoutOf((await encrypt(plain, { pieceSize: 7 })).backup);
      await assertRefused(rebuild(preamble, [frames[0]!, other.frames[1]!, frames[2]!, frames[3]!]), 'tampered');
    });

    it('garbage after the final frame → trailing-data', async () => {
      await assertRefused(Buffer.concat([backup, Buffer.from('junk!')]), 'trailing-data');
      await assertRefused(Buffer.concat([backup, Buffer.alloc(1)]), 'trailing-data');
    });

    it('bad magic → not-a-backup', async () => {
      const damaged = Buffer.from(backup);
      damaged[0] = 0x50;
      await assertRefused(damaged, 'not-a-backup');
      await assertRefused(Buffer.concat([Buffer.from('PK\x03\x04 this is a zip file'), backup]), 'not-a-backup');
    });

    it('format version byte 2 → unsupported-version', async () => {
      const damaged = Buffer.from(backup);
      damaged[7] = 0x02;
      await assertRefused(damaged, 'unsupported-version');
    });
  });
});
