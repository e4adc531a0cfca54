// The codec endpoint as the Temporal Web UI really calls it: with "pass access token" on, the UI
// sends the user's OIDC access token (a JWT) to an https endpoint. A local issuer (discovery
// document + JWKS served by the test, keys made with jose) signs tokens right, wrong, expired,
// for another audience or without the required group; the endpoint serves HTTPS with a cert from
// a throwaway CA. Static tokens for the CLI keep working; share-intake tokens never open the codec.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { defaultPayloadConverter } from '@temporalio/common';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import { EncryptionCodec, type Keyring } from '../infra/temporal/codec';
import { createCodecServer } from '../infra/temporal/codecServer';
import { assertDisjointTokenLists } from '../infra/temporal/codecAuth';
import { issue, makeCa, tempDir } from './helpers/pki';

const keyring: Keyring = { current: 'k1', keys: new Map([['k1', crypto.randomBytes(32)]]) };
const codec = new EncryptionCodec(keyring);
const UI_ORIGIN = 'https://temporal-ui.example';
const AUDIENCE = 'vault-dr-codec';

interface Answer {
  status: number;
  body: { error?: string; payloads?: { data: string }[] };
  headers: http.IncomingHttpHeaders;
}

/** POST over HTTPS trusting only the test CA (fetch cannot take a CA per request). */
function post(url: string, ca: Buffer, headers: Record<string, string>, body: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca, headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Answer['body'], headers: res.headers }));
    });
    req.once('error', reject);
    req.end(body);
  });
}

async function encodedBody(text: string): Promise<string> {
  const [enc] = await codec.encode([defaultPayloadConverter.toPayload(text)]);
  return JSON.stringify({ payloads: [{ metadata: Object.fromEntries(Object.entries(enc!.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])), data: Buffer.from(enc!.data!).toString('base64') }] });
}

describe('codec endpoint: Web UI OIDC access tokens over HTTPS', function () {
  this.timeout(30_000);
  let issuerServer: http.Server;
  let issuer: string;
  let codecServer: http.Server | https.Server;
  let base: string;
  let ca: Buffer;
  let signing: CryptoKey;
  let rogue: CryptoKey;
  let jwksRequests = 0;
  const cliToken = 'cli-' + crypto.randomBytes(12).toString('hex');
  const intakeToken = 'intake-' + crypto.randomBytes(12).toString('hex');

  before(async () => {
    // The identity provider: discovery document and JWKS, as Keycloak/Okta/Auth0 publish them.
    const kp = await generateKeyPair('RS256');
    signing = kp.privateKey;
    rogue = (await generateKeyPair('RS256')).privateKey;
    const jwk = { ...(await exportJWK(kp.publicKey)), kid: 'idp-key-1', alg: 'RS256', use: 'sig' };
    issuerServer = http.createServer((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      if (req.url === '/.well-known/openid-configuration') return void res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
      if (req.url === '/jwks') {
        jwksRequests++;
        return void res.end(JSON.stringify({ keys: [jwk] }));
      }
      res.writeHead(404).end('{}');
    });
    await new Promise<void>((r) => issuerServer.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`;

    const dir = tempDir('vaultdr-codec-tls-');
    const testCa = makeCa(dir, 'codec-ca');
    const cert = issue(testCa, 'codec-endpoint', 'server');
    ca = fs.readFileSync(testCa.cert);
    codecServer = createCodecServer({
      codec,
      tokens: [cliToken],
      corsOrigins: [UI_ORIGIN],
      anonymousLoopbackOrigins: [],
      oidc: { issuer, audience: AUDIENCE, require: { claim: 'groups', value: 'vault-dr-operators' }, clockToleranceSeconds: 5 },
      tls: { cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) },
    });
    await new Promise<void>((r) => codecServer.listen(0, '127.0.0.1', r));
    base = `https://localhost:${(codecServer.address() as AddressInfo).port}`;
  });
  after(() => {
    codecServer?.close();
    issuerServer?.close();
  });

  const token = (claims: JWTPayload, opts: { key?: CryptoKey; kid?: string; exp?: string | number; aud?: string; iss?: string } = {}) =>
    new SignJWT({ groups: ['vault-dr-operators'], preferred_username: 'alice', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'idp-key-1' })
      .setIssuer(opts.iss ?? issuer)
      .setAudience(opts.aud ?? AUDIENCE)
      .setSubject('user-123')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(opts.key ?? signing);

  const decodeWith = async (authorization?: string) => post(`${base}/decode`, ca, { Origin: UI_ORIGIN, 'X-Namespace': 'default', ...(authorization ? { Authorization: authorization } : {}) }, await encodedBody('hello operator'));

  it('decodes for the Web UI forwarding a valid access token, with CORS for the UI origin', async () => {
    const res = await decodeWith(`Bearer ${await token({})}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(Buffer.from(res.body.payloads![0]!.data, 'base64').toString(), '"hello operator"');
    assert.equal(res.headers['access-control-allow-origin'], UI_ORIGIN);
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
  });

  it('refuses a token signed by another key, an expired one, one for another audience or issuer', async () => {
    const cases: [string, string, RegExp][] = [
      ['forged signature', await token({}, { key: rogue }), /signature does not verify/],
      ['unknown key id', await token({}, { key: rogue, kid: 'not-published' }), /not signed by a key of the configured issuer/],
      ['expired', await token({}, { exp: Math.floor(Date.now() / 1000) - 600 }), /expired/],
      ['other audience', await token({}, { aud: 'some-other-api' }), /aud claim check failed/],
      ['other issuer', await token({}, { iss: 'https://evil.example' }), /iss claim check failed/],
    ];
    for (const [what, jwt, why] of cases) {
      const res = await decodeWith(`Bearer ${jwt}`);
      assert.equal(res.status, 401, `${what}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error ?? '', why, what);
      assert.ok(!JSON.stringify(res.body).includes(jwt.split('.')[1]!), `${what}: the refusal does not echo the token`);
      assert.equal(res.body.payloads, undefined);
    }
  });

  it('answers 403 to a valid user outside the required group', async () => {
    const res = await decodeWith(`Bearer ${await token({ groups: ['developers'] })}`);
    assert.equal(res.status, 403);
    assert.match(res.body.error ?? '', /lacks groups=vault-dr-operators/);
  });

  it('refuses an unsigned ("alg": "none") token', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', kid: 'idp-key-1' })).toString('base64url');
    const body = Buffer.from(JSON.stringify({ iss: issuer, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300, groups: ['vault-dr-operators'] })).toString('base64url');
    const res = await decodeWith(`Bearer ${header}.${body}.${Buffer.from('x').toString('base64url')}`);
    assert.equal(res.status, 401);
  });

  it('keeps static tokens for the CLI, refuses a share-intake token and no token at all', async () => {
    assert.equal((await decodeWith(`Bearer ${cliToken}`)).status, 200);
    assert.equal((await decodeWith(`Bearer ${intakeToken}`)).status, 401, 'a share-intake token does not decode history');
    assert.equal((await decodeWith()).status, 401);
  });

  it('caches the issuer keys instead of fetching them per request', async () => {
    const before = jwksRequests;
    for (let i = 0; i < 5; i++) assert.equal((await decodeWith(`Bearer ${await token({})}`)).status, 200);
    assert.equal(jwksRequests, before);
  });

  it('is not reachable over plaintext HTTP once TLS is configured', async () => {
    await assert.rejects(fetch(base.replace('https:', 'http:') + '/decode', { method: 'POST', body: '{}' }).then((r) => r.text()));
  });

  it('refuses to start a share intake whose tokens also open the codec', () => {
    assert.throws(() => assertDisjointTokenLists([cliToken], [intakeToken, cliToken]), /share-intake token is also a codec token/);
    assert.doesNotThrow(() => assertDisjointTokenLists([cliToken], [intakeToken]));
  });
});
