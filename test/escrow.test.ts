// Key escrow as custodians live it (infra/crypto/escrow.ts, infra/crypto/keys.ts): `vaultdr keys init` writes
// private files with owner-only permissions and a public recipients file; any threshold of shares
// rebuilds the escrow key (checked by fingerprint), fewer, mixed or damaged shares are refused;
// and a backup wrapped for the recipients opens with the rebuilt escrow key or the validation
// key, never with an unrelated one.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDecryptor, createEncryptor } from '../infra/crypto/backupFormat';
import { initKeys, readShareFile, reconstructFromShares, type KeyInitResult } from '../infra/crypto/escrow';
import { generateKeyPair, KeyError, keyIdOf, loadPrivateKeyFile, loadRecipients, unwrapDataKey, wrapDataKey } from '../infra/crypto/keys';

const modeOf = (file: string) => fs.statSync(file).mode & 0o777;

async function through(input: Buffer, transform: Transform): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk);
      cb();
    },
  });
  await pipeline(Readable.from([input]), transform, sink);
  return Buffer.concat(out);
}

describe('key escrow (keys init, shares, recipients)', () => {
  let tmp: string;
  let keysDir: string;
  let validationKeyFile: string;
  let init: KeyInitResult;
  let other: KeyInitResult;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-escrow-'));
    keysDir = path.join(tmp, 'keys');
    validationKeyFile = path.join(tmp, 'validation-key.json');
    init = await initKeys({ outDir: keysDir, shares: 5, threshold: 3, validationKeyFile });
    // A second, independent installation, for mixing shares.
    other = await initKeys({ outDir: path.join(tmp, 'other-keys'), shares: 5, threshold: 3 });
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('writes five share files and the validation key readable by the owner only', () => {
    assert.equal(init.shareFiles.length, 5);
    for (const file of [...init.shareFiles, validationKeyFile]) {
      assert.ok(fs.existsSync(file), file);
      assert.equal(modeOf(file).toString(8), '600', `${path.basename(file)} mode`);
    }
    assert.equal(init.validationKeyFile, validationKeyFile);
    init.shareFiles.forEach((file, i) => {
      const share = readShareFile(file);
      assert.equal(share.keyId, init.escrowKeyId);
      assert.equal(share.index, i + 1);
      assert.equal(share.shares, 5);
      assert.equal(share.threshold, 3);
    });
  });

  it('recipients.json lists an escrow and a validation recipient whose key ids are their public keys’ fingerprints', () => {
    const recipients = loadRecipients(init.recipientsFile);
    assert.deepEqual(recipients.map((r) => r.role).sort(), ['escrow', 'validation']);
    for (const r of recipients) assert.equal(keyIdOf(Buffer.from(r.publicKey, 'base64')), r.keyId, `${r.role} key id`);
    assert.equal(recipients.find((r) => r.role === 'escrow')!.keyId, init.escrowKeyId);
    assert.equal(recipients.find((r) => r.role === 'validation')!.keyId, init.validationKeyId);
    assert.notEqual(init.escrowKeyId, init.validationKeyId);
    // Public keys only: no private material in the file the backup worker reads.
    const text = fs.readFileSync(init.recipientsFile, 'utf8');
    assert.ok(!/private/i.test(text));
    assert.ok(!text.includes(loadPrivateKeyFile(validationKeyFile).toString('base64')));
  });

  it('any 3 of the 5 shares rebuild the escrow key, in any order', async () => {
    const combos = [
      [0, 1, 2],
      [0, 2, 4],
      [1, 3, 4],
      [4, 2, 3],
      [0, 1, 2, 3, 4],
    ];
    for (const combo of combos) {
      const rebuilt = await reconstructFromShares(combo.map((i) => init.shareFiles[i]!));
      assert.equal(rebuilt.keyId, init.escrowKeyId, `shares ${combo.map((i) => i + 1).join(',')}`);
      assert.equal(rebuilt.threshold, 3);
      assert.equal(rebuilt.privateKey.length, 32);
    }
  });

  it('two shares are not enough, and the error names the threshold', async () => {
    await assert.rejects(reconstructFromShares([init.shareFiles[0]!, init.shareFiles[3]!]), /need 3 distinct shares.*got 2/);
    // The same custodian's file given three times is still one share.
    await assert.rejects(reconstructFromShares([init.shareFiles[1]!, init.shareFiles[1]!, init.shareFiles[1]!]), /need 3 distinct shares.*got 1/);
  });

  it('shares from two different installations are refused', async () => {
    await assert.rejects(reconstructFromShares([init.shareFiles[0]!, init.shareFiles[1]!, other.shareFiles[2]!]), /different keys/);
  });

  it('a share whose bytes were altered does not rebuild a wrong key silently', async () => {
    const damaged = path.join(tmp, 'share-2-damaged.json');
    const share = readShareFile(init.shareFiles[1]!);
    const bytes = Buffer.from(share.share, 'base64');
    bytes[5]! ^= 0x40; // a y byte; the last byte is the x coordinate
    fs.writeFileSync(damaged, JSON.stringify({ ...share, share: bytes.toString('base64') }));
    await assert.rejects(reconstructFromShares([init.shareFiles[0]!, damaged, init.shareFiles[2]!]), /do not rebuild/);
  });

  it('a file that is not a share is refused', async () => {
    await assert.rejects(reconstructFromShares([init.shareFiles[0]!, init.recipientsFile, init.shareFiles[2]!]), /not a vault-dr share file/);
    await assert.rejects(reconstructFromShares([]), /no share files/);
  });

  it('refuses to overwrite an existing recipients.json, and leaves the key material as it was', async () => {
    const before = new Map([init.recipientsFile, ...init.shareFiles, validationKeyFile].map((f) => [f, fs.readFileSync(f, 'utf8')]));
    await assert.rejects(initKeys({ outDir: keysDir, shares: 5, threshold: 3, validationKeyFile: path.join(tmp, 'validation-key-2.json') }), /exists: refusing/);
    for (const [file, content] of before) assert.equal(fs.readFileSync(file, 'utf8'), content, `${path.basename(file)} changed`);
    assert.ok(!fs.existsSync(path.join(tmp, 'validation-key-2.json')));
    assert.deepEqual(fs.readdirSync(keysDir).sort(), ['recipients.json', ...init.shareFiles.map((f) => path.basename(f))].sort());
  });

  it('refuses to overwrite an existing validation key file, and writes no shares for a key that would be lost', async () => {
    const outDir = path.join(tmp, 'fresh-keys');
    await assert.rejects(initKeys({ outDir, shares: 3, threshold: 2, validationKeyFile }), /refusing to overwrite key material/);
    assert.deepEqual(fs.readdirSync(outDir), []);
    assert.equal(loadPrivateKeyFile(validationKeyFile).length, 32, 'the existing validation key is intact');
  });

  it('rejects impossible share/threshold settings', async () => {
    await assert.rejects(initKeys({ outDir: path.join(tmp, 'bad-1'), shares: 3, threshold: 4 }), RangeError);
    await assert.rejects(initKeys({ outDir: path.join(tmp, 'bad-2'), shares: 5, threshold: 1 }), RangeError);
  });

  it('a data key wrapped for the recipients unwraps with the rebuilt escrow key and the validation key, not with another key', async () => {
    const recipients = loadRecipients(init.recipientsFile);
    const dataKey = crypto.randomBytes(32);
    const stanzas = recipients.map((r) => wrapDataKey(dataKey, r));

    const escrowKey = (await reconstructFromShares([init.shareFiles[4]!, init.shareFiles[0]!, init.shareFiles[2]!])).privateKey;
    assert.ok(unwrapDataKey(stanzas, escrowKey).equals(dataKey), 'escrow key');
    assert.ok(unwrapDataKey(stanzas, loadPrivateKeyFile(validationKeyFile)).equals(dataKey), 'validation key');
    assert.throws(
      () => unwrapDataKey(stanzas, generateKeyPair().privateKey),
      (err: unknown) => err instanceof KeyError && /wrong key/.test(err.message),
    );
    // The other installation's validation-less escrow key is just as unrelated.
    const otherKey = (await reconstructFromShares(other.shareFiles.slice(0, 3))).privateKey;
    assert.throws(() => unwrapDataKey(stanzas, otherKey), KeyError);
  });

  it('a backup encrypted to recipients.json is restored by custodians from any 3 shares', async () => {
    const plain = Buffer.concat([Buffer.from('raft snapshot '), crypto.randomBytes(5000)]);
    const { stream } = createEncryptor({ backupId: '20260101T020000Z-00000000', createdAt: '2026-01-01T02:00:00.000Z', recipients: loadRecipients(init.recipientsFile), chunkSize: 1024 });
    const backup = await through(plain, stream);
    const escrowKey = (await reconstructFromShares([init.shareFiles[1]!, init.shareFiles[3]!, init.shareFiles[4]!])).privateKey;
    assert.ok((await through(backup, createDecryptor(escrowKey))).equals(plain));
    assert.ok((await through(backup, createDecryptor(loadPrivateKeyFile(validationKeyFile)))).equals(plain));
  });

  describe('loadRecipients refuses a recipients file that would make backups unrecoverable', () => {
    const write = (name: string, body: unknown) => {
      const file = path.join(tmp, name);
      fs.writeFileSync(file, JSON.stringify(body));
      return file;
    };

    it('a key id that does not match its public key', () => {
      const [escrow, validation] = [generateKeyPair(), generateKeyPair()];
      const file = write('recipients-mismatch.json', {
        recipients: [
          { keyId: escrow.keyId, role: 'escrow', publicKey: validation.publicKey.toString('base64') },
          { keyId: validation.keyId, role: 'validation', publicKey: validation.publicKey.toString('base64') },
        ],
      });
      assert.throws(() => loadRecipients(file), (err: unknown) => err instanceof KeyError && /does not match its public key/.test(err.message));
    });

    it('no escrow recipient', () => {
      const validation = generateKeyPair();
      const file = write('recipients-no-escrow.json', { recipients: [{ keyId: validation.keyId, role: 'validation', publicKey: validation.publicKey.toString('base64') }] });
      assert.throws(() => loadRecipients(file), (err: unknown) => err instanceof KeyError && /no escrow recipient/.test(err.message));
    });

    it('no recipients, or not JSON', () => {
      assert.throws(() => loadRecipients(write('recipients-empty.json', { recipients: [] })), /lists no recipients/);
      assert.throws(() => loadRecipients(write('recipients-garbage.json', 'not json')), KeyError);
      fs.writeFileSync(path.join(tmp, 'recipients-garbage.json'), '{');
      assert.throws(() => loadRecipients(path.join(tmp, 'recipients-garbage.json')), /not valid JSON/);
    });

    it('loadPrivateKeyFile refuses a key that does not match its recorded key id', () => {
      const [a, b] = [generateKeyPair(), generateKeyPair()];
      const file = write('validation-mismatch.json', { keyId: a.keyId, privateKey: b.privateKey.toString('base64') });
      assert.throws(() => loadPrivateKeyFile(file), (err: unknown) => err instanceof KeyError && /does not match "keyId"/.test(err.message));
    });
  });
});
