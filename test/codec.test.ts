// Payload codec and codec endpoint: encryption, key rotation, tamper detection, and the HTTP
// protocol the Temporal Web UI speaks (CORS, bearer token).
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { EncryptionCodec, ENCODING, loadKeyring, type Keyring } from '../infra/temporal/codec';
import { createCodecServer } from '../infra/temporal/codecServer';

const keyring = (current: string, ids: string[]): Keyring => ({ current, keys: new Map(ids.map((id) => [id, crypto.createHash('sha256').update(id).digest()])) });

describe('payload codec', () => {
  const secretish = 'secret/data/vault-dr/smtp-password-marker';
  const payload = defaultPayloadConverter.toPayload({ path: secretish });

  it('encrypts: the stored payload carries no plaintext and names its key', async () => {
    const [enc] = await new EncryptionCodec(keyring('k1', ['k1'])).encode([payload]);
    assert.equal(Buffer.from(enc!.metadata!.encoding!).toString(), ENCODING);
    assert.equal(Buffer.from(enc!.metadata!['encryption-key-id']!).toString(), 'k1');
    assert.ok(!Buffer.from(enc!.data!).includes(Buffer.from('smtp-password-marker')));
    const [dec] = await new EncryptionCodec(keyring('k1', ['k1'])).decode([enc!]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(dec!), { path: secretish });
  });

  it('rotates: a new current key still decodes payloads written under the old one', async () => {
    const [old] = await new EncryptionCodec(keyring('k1', ['k1'])).encode([payload]);
    const rotated = new EncryptionCodec(keyring('k2', ['k1', 'k2']));
    const [fresh] = await rotated.encode([payload]);
    assert.equal(Buffer.from(fresh!.metadata!['encryption-key-id']!).toString(), 'k2');
    for (const p of [old!, fresh!]) assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode([p]))[0]!), { path: secretish });
  });

  it('refuses a tampered payload, a relabelled key id and an unknown key', async () => {
    const codec = new EncryptionCodec(keyring('k1', ['k1', 'k2']));
    const [enc] = await codec.encode([payload]);
    const flipped = Buffer.from(enc!.data!);
    flipped[20] = flipped[20]! ^ 1;
    await assert.rejects(codec.decode([{ ...enc!, data: flipped }]), /unable to authenticate|auth/i);
    const relabelled = { ...enc!, metadata: { ...enc!.metadata, 'encryption-key-id': Buffer.from('k2') } };
    await assert.rejects(codec.decode([relabelled]), /unable to authenticate|auth/i);
    await assert.rejects(new EncryptionCodec(keyring('k3', ['k3'])).decode([enc!]), /unknown key id "k1"/);
  });

  it('passes through payloads that were never encrypted', async () => {
    const [out] = await new EncryptionCodec(keyring('k1', ['k1'])).decode([payload]);
    assert.deepEqual(out, payload);
  });

  it('rejects a keyring whose key is not 32 bytes, naming the key by position', () => {
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-kr-')), 'keys.json');
    fs.writeFileSync(f, JSON.stringify({ current: 'a', keys: { a: Buffer.alloc(16).toString('base64') } }));
    assert.throws(() => loadKeyring(f), /key #1 in "keys" must be 32 bytes/);
  });
});

describe('codec endpoint', () => {
  let server: http.Server;
  let base: string;
  const token = 'test-token-' + crypto.randomBytes(6).toString('hex');
  const codec = new EncryptionCodec(keyring('k1', ['k1']));
  before(async () => {
    server = createCodecServer({ codec, tokens: [token], corsOrigins: ['http://localhost:8233'], anonymousLoopbackOrigins: ['http://127.0.0.1:8233'] });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const body = async () => {
    const [enc] = await codec.encode([defaultPayloadConverter.toPayload('hello operator')]);
    return JSON.stringify({ payloads: [{ metadata: Object.fromEntries(Object.entries(enc!.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])), data: Buffer.from(enc!.data!).toString('base64') }] });
  };

  it('decodes for a caller with a valid bearer token', async () => {
    const res = await fetch(`${base}/decode`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: await body() });
    assert.equal(res.status, 200);
    const json = (await res.json()) as { payloads: { data: string }[] };
    assert.equal(Buffer.from(json.payloads[0]!.data, 'base64').toString(), '"hello operator"');
  });

  it('refuses a caller without a token or with a wrong one', async () => {
    for (const headers of [{}, { Authorization: 'Bearer nope' }] as Record<string, string>[]) {
      const res = await fetch(`${base}/decode`, { method: 'POST', headers, body: await body() });
      assert.equal(res.status, 401);
    }
  });

  it('answers the browser preflight with CORS headers for the UI origin only', async () => {
    const ok = await fetch(`${base}/decode`, { method: 'OPTIONS', headers: { Origin: 'http://localhost:8233', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://localhost:8233');
    assert.match(ok.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    const other = await fetch(`${base}/decode`, { method: 'OPTIONS', headers: { Origin: 'http://evil.example' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });

  it('serves the dev UI origin from loopback without a token when so configured', async () => {
    const res = await fetch(`${base}/decode`, { method: 'POST', headers: { Origin: 'http://127.0.0.1:8233' }, body: await body() });
    assert.equal(res.status, 200);
  });

  it('answers a malformed body with 400, not a crash', async () => {
    const res = await fetch(`${base}/encode`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: '{"payloads": 3}' });
    assert.equal(res.status, 400);
  });
});
