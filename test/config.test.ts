// Configuration: defaults, sources and the one-line errors operators see for bad values.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfig } from '../infra/config';

describe('config', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-config-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (obj: unknown) => {
    const f = path.join(dir, 'cfg.json');
    fs.writeFileSync(f, typeof obj === 'string' ? obj : JSON.stringify(obj));
    return f;
  };
  const minimal = { vault: { tokenFile: 'token' }, codec: { keysFile: 'keys.json' } };

  it('fills defaults and resolves file paths relative to the config file', () => {
    const cfg = loadConfig({ file: write(minimal), env: {}, cwd: '/' });
    assert.equal(cfg.temporal.address, '127.0.0.1:7233');
    assert.equal(cfg.temporal.taskQueue, 'vault-dr');
    assert.equal(cfg.s3.bucket, 'vault-dr-backups');
    assert.equal(cfg.vault.tokenFile, path.join(dir, 'token'));
    assert.equal(cfg.codec.keysFile, path.join(dir, 'keys.json'));
  });

  it('lets environment variables override the file', () => {
    const cfg = loadConfig({ file: write(minimal), env: { VAULTDR_SMTP_PORT: '2525', VAULTDR_ALERT_TO: 'a@x.org, b@y.org', VAULTDR_TASK_QUEUE: 'q2' } });
    assert.equal(cfg.smtp.port, 2525);
    assert.deepEqual(cfg.smtp.alertTo, ['a@x.org', 'b@y.org']);
    assert.equal(cfg.temporal.taskQueue, 'q2');
  });

  it('names the missing codec keys file and the variable that sets it', () => {
    assert.throws(
      () => loadConfig({ file: write({ vault: { tokenFile: 't' } }), env: {} }),
      (e: Error) => e instanceof ConfigError && /codec\.keysFile: is required \(set VAULTDR_CODEC_KEYS_FILE\)/.test(e.message),
    );
    assert.throws(() => loadConfig({ env: { VAULTDR_VAULT_TOKEN_FILE: '/t' }, cwd: dir }), /codec\.keysFile: is required \(set VAULTDR_CODEC_KEYS_FILE/);
  });

  it('names a malformed environment variable', () => {
    assert.throws(() => loadConfig({ file: write(minimal), env: { VAULTDR_SMTP_PORT: 'twenty-five' } }), /VAULTDR_SMTP_PORT: expected a number, got "twenty-five"/);
    assert.throws(() => loadConfig({ file: write(minimal), env: { VAULTDR_TEMPORAL_ADDRESS: 'nohost' } }), /temporal\.address: expected host:port \(from VAULTDR_TEMPORAL_ADDRESS\)/);
  });

  it('names a wrong field in the file and rejects unknown fields', () => {
    assert.throws(() => loadConfig({ file: write({ ...minimal, s3: { bucket: 'Not_A_Bucket' } }), env: {} }), /s3\.bucket: expected an S3 bucket name/);
    assert.throws(() => loadConfig({ file: write({ ...minimal, smtp: { prot: 25 } }), env: {} }), /smtp: Unrecognized key\(s\) in object: 'prot'/);
  });

  it('reports a config file that is not JSON, or is missing', () => {
    assert.throws(() => loadConfig({ file: write('{ not json'), env: {} }), /is not valid JSON/);
    assert.throws(() => loadConfig({ file: path.join(dir, 'absent.json'), env: {} }), /cannot read config file .*absent\.json: ENOENT/);
  });

  it('requires Vault credentials by AppRole or token file', () => {
    assert.throws(() => loadConfig({ file: write({ codec: { keysFile: 'k' } }), env: {} }), /vault: set roleIdFile and secretIdFile \(AppRole\) or tokenFile/);
  });
});
