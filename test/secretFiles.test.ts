// Every reader of a file that holds secret material, given a malformed file whose content is a
// known marker: the error names the file and what is wrong, and never contains the marker (a
// `JSON.parse` message quotes the first characters of its input, which is how the first bytes of
// a key once reached history, alert e-mails, the CLI and the log). Pure unit tests: no stack.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { buildS3Client } from '../infra/clients';
import { loadKeyring } from '../infra/temporal/codec';
import { loadConfig, readSecretFile } from '../infra/config';
import { initKeys, readShareFile, reconstructFromShares, type ShareFile } from '../infra/crypto/escrow';
import { loadPrivateKeyFile, loadRecipients } from '../infra/crypto/keys';
import { ShareIntake } from '../infra/vault/shareIntake';

const MARKER = `SeCrEtMaRkEr${crypto.randomBytes(8).toString('hex')}`;

/** Malformed files of every kind a reader might quote: not JSON, broken mid-way, truncated, wrong shape. */
function variants(fields: string[]): { name: string; text: string }[] {
  const obj = Object.fromEntries(fields.map((f) => [f, MARKER]));
  return [
    { name: 'not JSON at all', text: `${MARKER}${MARKER}` },
    { name: 'broken mid-way', text: `{"${fields[0]}": ${MARKER}}` },
    { name: 'truncated', text: `{"${fields[0]}": "${MARKER}` },
    { name: 'a bare string', text: JSON.stringify(MARKER) },
    { name: 'every field holds the marker', text: JSON.stringify(obj) },
    { name: 'the marker as a key', text: JSON.stringify({ [MARKER]: MARKER, ...Object.fromEntries(fields.map((f) => [f, { [MARKER]: MARKER }])) }) },
    { name: 'fields as arrays', text: JSON.stringify(Object.fromEntries(fields.map((f) => [f, [{ keyId: MARKER, publicKey: MARKER, role: 'escrow' }]]))) },
  ];
}

describe('secret files: errors never quote their content', () => {
  let tmp: string;
  const write = (name: string, text: string) => {
    const f = path.join(tmp, name.replace(/\W+/g, '-'));
    fs.writeFileSync(f, text, { mode: 0o600 });
    return f;
  };
  /** Runs the reader and returns its error; fails if it accepted the file or leaked the marker. */
  async function errorOf(reader: () => unknown, file: string, what: string): Promise<Error> {
    let caught: unknown;
    try {
      await reader();
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof Error, `${what}: accepted a malformed file`);
    const text = `${caught.message}\n${caught.stack ?? ''}\n${JSON.stringify(caught)}`;
    assert.ok(!text.includes(MARKER.slice(0, 8)), `${what}: the error quotes the file: ${caught.message}`);
    assert.ok(caught.message.includes(file), `${what}: the error does not name the file: ${caught.message}`);
    return caught;
  }

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-secretfiles-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('JSON.parse itself quotes the start of its input (the reason for all of this)', () => {
    assert.throws(() => JSON.parse(`${MARKER}`), (err: Error) => err.message.includes(MARKER.slice(0, 8)));
  });

  it('validation key file (loadPrivateKeyFile)', async () => {
    for (const v of variants(['privateKey', 'keyId'])) {
      const f = write(`validation-${v.name}`, v.text);
      await errorOf(() => loadPrivateKeyFile(f), f, `validation key, ${v.name}`);
    }
    const bad = await errorOf(() => loadPrivateKeyFile(write('truncated2', `{"keyId": "x", "privateKey": "${MARKER}`)), path.join(tmp, 'truncated2'), 'truncated');
    assert.match(bad.message, /not valid JSON/);
    const pos = await errorOf(() => loadPrivateKeyFile(write('position', `{"privateKey": "${MARKER}",, }`)), path.join(tmp, 'position'), 'position');
    assert.match(pos.message, /not valid JSON/);
  });

  it('recipients file (loadRecipients)', async () => {
    for (const v of variants(['recipients'])) {
      const f = write(`recipients-${v.name}`, v.text);
      await errorOf(() => loadRecipients(f), f, `recipients, ${v.name}`);
    }
  });

  it('codec keyring (loadKeyring)', async () => {
    for (const v of [...variants(['current', 'keys']), { name: 'short key', text: JSON.stringify({ current: MARKER, keys: { [MARKER]: Buffer.from(MARKER).toString('base64') } }) }]) {
      const f = write(`keyring-${v.name}`, v.text);
      await errorOf(() => loadKeyring(f), f, `keyring, ${v.name}`);
    }
  });

  it('custodian share file (readShareFile, reconstructFromShares)', async () => {
    for (const v of [...variants(['share', 'keyId', 'format']), { name: 'share-shaped', text: JSON.stringify({ format: 'vault-dr-share/1', keyId: MARKER, share: MARKER, threshold: 2, index: 1, shares: 3 }) }]) {
      const f = write(`share-${v.name}`, v.text);
      await errorOf(() => readShareFile(f), f, `share, ${v.name}`);
      await errorOf(() => reconstructFromShares([f]), f, `share (reconstruct), ${v.name}`);
    }
  });

  it('the share intake (shares over HTTP) never echoes a malformed share', async () => {
    const init = await initKeys({ outDir: path.join(tmp, 'keys'), shares: 3, threshold: 2 });
    const intake = new ShareIntake(async () => {});
    intake.open('wf-1', [init.escrowKeyId]);
    const good = JSON.parse(fs.readFileSync(init.shareFiles[0]!, 'utf8')) as ShareFile;
    for (const share of [{ ...good, keyId: MARKER }, { ...good, keyId: `x25519:${MARKER}` }, { ...good, threshold: MARKER }, MARKER, { format: MARKER }]) {
      const err = await intake.submit('wf-1', share as unknown as ShareFile).then(
        () => assert.fail('accepted a malformed share'),
        (e: Error) => e,
      );
      assert.ok(!err.message.includes(MARKER.slice(0, 8)), `the intake quotes the share: ${err.message}`);
    }
  });

  it('S3 credentials file (buildS3Client)', async () => {
    for (const v of variants(['secretAccessKey', 'accessKeyId']).filter((x) => x.name !== 'every field holds the marker')) {
      const f = write(`s3-${v.name}`, v.text);
      await errorOf(() => buildS3Client({ endpoint: 'http://127.0.0.1:1', region: 'us-east-1', bucket: 'b', forcePathStyle: true, credentialsFile: f } as never), f, `S3 credentials, ${v.name}`);
    }
  });

  it('config file (loadConfig)', async () => {
    for (const v of variants(['vault'])) {
      const f = write(`config-${v.name}.json`, v.text);
      if (v.name === 'every field holds the marker' || v.name.startsWith('the marker') || v.name.startsWith('fields')) continue; // schema errors name fields, not values
      await errorOf(() => loadConfig({ file: f, env: {} }), f, `config, ${v.name}`);
    }
  });

  it('a missing or empty secret file at the point of use is a non-retryable ConfigInvalid naming the setting and the path', async () => {
    const missing = path.join(tmp, 'absent-token');
    const err = await errorOf(() => readSecretFile(missing, 'restore.productionTokenFile'), missing, 'missing');
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${err.name}`);
    assert.equal(err.type, 'ConfigInvalid');
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, /restore\.productionTokenFile file .*absent-token is unreadable \(ENOENT\)/);
    const empty = write('empty-token', '  \n');
    const e2 = (await errorOf(() => readSecretFile(empty, 'vault.tokenFile'), empty, 'empty')) as ApplicationFailure;
    assert.equal(e2.type, 'ConfigInvalid');
    assert.equal(e2.nonRetryable, true);
    assert.match(e2.message, /vault\.tokenFile file .* is empty/);
  });
});
