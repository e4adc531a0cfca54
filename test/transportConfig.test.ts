// Transport settings as an operator writes them: Temporal TLS/mTLS/API key and the codec's TLS and
// OIDC, from the config file or VAULTDR_* variables, with errors that name the field and never
// quote a key file.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../infra/config';
import { temporalConnectionOptions, temporalUsesTls } from '../infra/temporal/connection';

describe('transport configuration', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-transport-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (obj: unknown) => {
    const f = path.join(dir, 'cfg.json');
    fs.writeFileSync(f, JSON.stringify(obj));
    return f;
  };
  const minimal = { vault: { tokenFile: 'token' }, codec: { keysFile: 'keys.json' } };

  it('reads Temporal mTLS files relative to the config file and keeps plaintext as the default', () => {
    assert.equal(temporalUsesTls(loadConfig({ file: write(minimal), env: {} }).temporal), false);
    const cfg = loadConfig({ file: write({ ...minimal, temporal: { tls: { caFile: 'ca.pem', certFile: 'w.pem', keyFile: 'w.key', serverName: 'temporal.internal' } } }), env: {} });
    assert.equal(cfg.temporal.tls.caFile, path.join(dir, 'ca.pem'));
    assert.equal(cfg.temporal.tls.keyFile, path.join(dir, 'w.key'));
    assert.equal(temporalUsesTls(cfg.temporal), true);
  });

  it('sets Temporal Cloud from variables alone: address, namespace, API key file', () => {
    const keyFile = path.join(dir, 'api-key');
    fs.writeFileSync(keyFile, 'cloud-key-value\n');
    const cfg = loadConfig({
      file: write(minimal),
      env: { VAULTDR_TEMPORAL_ADDRESS: 'vault-dr.a1b2c.tmprl.cloud:7233', VAULTDR_TEMPORAL_NAMESPACE: 'vault-dr.a1b2c', VAULTDR_TEMPORAL_API_KEY_FILE: keyFile },
    });
    const opts = temporalConnectionOptions(cfg);
    assert.equal(opts.address, 'vault-dr.a1b2c.tmprl.cloud:7233');
    assert.equal(opts.apiKey, 'cloud-key-value');
    assert.deepEqual(opts.tls, {});
    assert.deepEqual(opts.metadata, { 'temporal-namespace': 'vault-dr.a1b2c' });
  });

  it('refuses a client certificate without its key, naming the field', () => {
    assert.throws(() => loadConfig({ file: write(minimal), env: { VAULTDR_TEMPORAL_TLS_CERT_FILE: '/x/w.pem' } }), /temporal\.tls: set both certFile and keyFile/);
  });

  it('names a CA or key file that is not PEM without quoting its content', () => {
    const notPem = path.join(dir, 'key.txt');
    fs.writeFileSync(notPem, 'SECRET-MATERIAL-123');
    const cfg = loadConfig({ file: write(minimal), env: { VAULTDR_TEMPORAL_TLS_CA_FILE: notPem } });
    assert.throws(
      () => temporalConnectionOptions(cfg),
      (err: Error) => err.name === 'ConfigError' && /temporal\.tls\.caFile file .*key\.txt is not PEM/.test(err.message) && !err.message.includes('SECRET-MATERIAL'),
    );
  });

  it('configures the codec endpoint for the Web UI: HTTPS files and an OIDC issuer/audience', () => {
    const cfg = loadConfig({
      file: write({ ...minimal, codec: { keysFile: 'keys.json', tls: { certFile: 'codec.pem', keyFile: 'codec.key' }, oidc: { issuer: 'https://idp.example/realms/ops', audience: 'vault-dr-codec', require: { claim: 'groups', value: 'vault-dr-operators' } } } }),
      env: {},
    });
    assert.equal(cfg.codec.tls?.certFile, path.join(dir, 'codec.pem'));
    assert.equal(cfg.codec.oidc?.issuer, 'https://idp.example/realms/ops');
    assert.equal(cfg.codec.oidc?.clockToleranceSeconds, 30);
    const fromEnv = loadConfig({ file: write(minimal), env: { VAULTDR_CODEC_OIDC_ISSUER: 'https://idp.example', VAULTDR_CODEC_OIDC_AUDIENCE: 'vault-dr-codec' } });
    assert.equal(fromEnv.codec.oidc?.audience, 'vault-dr-codec');
    assert.throws(() => loadConfig({ file: write(minimal), env: { VAULTDR_CODEC_OIDC_ISSUER: 'https://idp.example' } }), /codec\.oidc\.audience/);
  });
});
