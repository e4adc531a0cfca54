// The one OpenBao client against real throwaway OpenBao servers: TLS with a private CA
// (vault.caFile on every request path: node-vault's calls, the snapshot stream, the KV reads),
// one login however many callers find the token expired or revoked, renew-self before the TTL
// ends, a fresh login when renewal is refused, and a 503 told apart by sys/seal-status.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { backupActivities } from '../activities/backup/backup';
import { BaoClient, BaoError } from '../infra/vault/bao';
import { ConfigSchema, type Config } from '../infra/config';
import { approleFor, startThrowawayBao, type ThrowawayBao } from './helpers/throwawayBao';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function vaultConfig(v: Record<string, unknown>): Config['vault'] {
  return ConfigSchema.parse({ vault: { requestTimeoutMs: 5000, ...v }, codec: { keysFile: '/unused' } }).vault;
}

describe('BaoClient (one client over real OpenBao)', function () {
  this.timeout(60_000);

  describe('TLS with vault.caFile', () => {
    let bao: ThrowawayBao;
    before(async () => {
      bao = await startThrowawayBao({ tls: true });
    });
    after(async () => bao?.stop());

    it('trusts the configured CA on every request path: health, login, KV write/read, snapshot stream', async () => {
      const files = await approleFor(bao, { name: 'tls', ttl: '60s', maxTtl: '120s' });
      const client = new BaoClient(vaultConfig({ address: bao.address, caFile: bao.caFile, ...files }));
      try {
        const h = await client.health();
        assert.equal(h.sealed, false);
        assert.equal(await client.writeKv('secret', 'tls-check', { marker: 'over tls' }), 1);
        const read = (await client.read('secret/data/tls-check')) as { data: { data: { marker: string } } };
        assert.equal(read.data.data.marker, 'over tls');
        assert.equal((await client.apiGet('secret/metadata/tls-check')).status, 200);
        assert.equal(client.stats.logins, 1);
        let bytes = 0;
        for await (const chunk of await client.snapshotStream()) bytes += chunk.length;
        assert.ok(bytes > 1000, `snapshot of ${bytes} bytes`);
      } finally {
        await client.close();
      }
    });

    it('without the CA the certificate is refused (and a missing CA file is a config error naming vault.caFile)', async () => {
      const files = await approleFor(bao, { name: 'tls2', ttl: '60s', maxTtl: '120s' });
      const client = new BaoClient(vaultConfig({ address: bao.address, ...files }));
      try {
        await assert.rejects(client.health(), (err: BaoError) => err.status === 0 && /unreachable \((UNABLE_TO_VERIFY|SELF_SIGNED|DEPTH_ZERO|CERT)/.test(err.message));
      } finally {
        await client.close();
      }
      assert.throws(() => new BaoClient(vaultConfig({ address: bao.address, caFile: '/nonexistent/ca.pem', ...files })), /vault\.caFile \/nonexistent\/ca\.pem: ENOENT/);
    });
  });

  describe('tokens', () => {
    let bao: ThrowawayBao;
    before(async () => {
      bao = await startThrowawayBao();
    });
    after(async () => bao?.stop());

    it('concurrent callers with an expired token cause exactly one login', async () => {
      // The secret-id allows two logins: the first, and one more. A login per caller would fail.
      const files = await approleFor(bao, { name: 'expire', ttl: '3s', maxTtl: '60s', uses: 2 });
      const client = new BaoClient(vaultConfig({ address: bao.address, ...files }));
      try {
        await client.writeKv('secret', 'concurrent', { n: '0' });
        await sleep(3500); // the token's TTL has passed
        const results = await Promise.all(Array.from({ length: 20 }, () => client.read('secret/data/concurrent')));
        assert.equal(results.length, 20);
        assert.equal(client.stats.logins, 2);
      } finally {
        await client.close();
      }
    });

    it('concurrent callers whose token was revoked cause exactly one login', async () => {
      const files = await approleFor(bao, { name: 'revoke', ttl: '60s', maxTtl: '120s', uses: 2 });
      const client = new BaoClient(vaultConfig({ address: bao.address, ...files }));
      try {
        await client.writeKv('secret', 'revoked', { n: '0' });
        const r = await bao.api('PUT', 'sys/leases/revoke-prefix/auth/approle/login', {});
        assert.equal(r.status, 204);
        const results = await Promise.all(Array.from({ length: 20 }, () => client.read('secret/data/revoked')));
        assert.equal(results.length, 20);
        assert.equal(client.stats.logins, 2);
      } finally {
        await client.close();
      }
    });

    it('renews its token before the TTL ends: works past the TTL with a secret-id good for one login', async () => {
      const files = await approleFor(bao, { name: 'renew', ttl: '3s', maxTtl: '60s', uses: 1 });
      const client = new BaoClient(vaultConfig({ address: bao.address, ...files }));
      try {
        for (let i = 0; i < 9; i++) {
          await client.writeKv('secret', 'renewed', { n: String(i) });
          await sleep(1000);
        }
        assert.equal(client.stats.logins, 1);
        assert.ok(client.stats.renewals >= 3, `renewals ${client.stats.renewals}`);
      } finally {
        await client.close();
      }
    });

    it('logs in again when renewal is refused (token revoked)', async () => {
      const files = await approleFor(bao, { name: 'refused', ttl: '3s', maxTtl: '60s', uses: 2 });
      const client = new BaoClient(vaultConfig({ address: bao.address, ...files }));
      try {
        await client.writeKv('secret', 'refused', { n: '0' });
        assert.equal((await bao.api('PUT', 'sys/leases/revoke-prefix/auth/approle/login', {})).status, 204);
        await sleep(2200); // past two thirds of the TTL: the next call renews, which is refused
        await client.writeKv('secret', 'refused', { n: '1' });
        assert.equal(client.stats.renewalsRefused, 1);
        assert.equal(client.stats.logins, 2);
      } finally {
        await client.close();
      }
    });
  });

  describe('HTTP 503: sealed or unavailable (sys/seal-status decides)', () => {
    let bao: ThrowawayBao;
    let proxy: http.Server;
    let proxyAddress = '';
    /** Which requests the stand-in load balancer answers with 503 itself. */
    let refuse: (path: string) => boolean = () => false;
    let freezeSnapshot = false;
    before(async () => {
      bao = await startThrowawayBao();
      // A load balancer in front of the real server: forwards, or answers 503 "no server available".
      proxy = http.createServer((req, res) => {
        if (freezeSnapshot && (req.url ?? '').startsWith('/v1/sys/storage/raft/snapshot')) {
          // Headers and the first bytes of the snapshot, then nothing: a frozen server or connection.
          const up = http.request(`${bao.address}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.once('data', (d: Buffer) => {
              res.write(d.subarray(0, 512));
              r.pause();
            });
          });
          up.end();
          return;
        }
        if (refuse(req.url ?? '')) {
          res.writeHead(503, { 'Content-Type': 'text/html' }).end('<html><body><h1>503 Service Unavailable</h1>No server is available to handle this request.</body></html>');
          return;
        }
        const up = http.request(`${bao.address}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.on('error', () => res.destroy());
        req.pipe(up);
      });
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
      proxyAddress = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    });
    after(async () => {
      proxy?.close();
      await bao?.stop();
    });

    async function canaryFailure(): Promise<ApplicationFailure> {
      const files = await approleFor(bao, { name: 'lb', ttl: '60s', maxTtl: '120s' });
      const cfg = ConfigSchema.parse({ vault: { address: proxyAddress, requestTimeoutMs: 5000, ...files }, codec: { keysFile: '/unused' } }) as Config;
      const client = new BaoClient(cfg.vault);
      const acts = backupActivities({ bao: client, s3: new S3Client({ region: 'us-east-1' }), cfg });
      try {
        await acts.writeCanary({ backupId: 'test-503' });
      } catch (err) {
        assert.ok(err instanceof ApplicationFailure, String(err));
        return err;
      } finally {
        await client.close();
      }
      assert.fail('writeCanary succeeded');
    }

    it('a 503 from the load balancer while OpenBao is unsealed is a retryable VaultUnavailable', async () => {
      refuse = (p) => p.startsWith('/v1/secret/');
      const f = await canaryFailure();
      assert.equal(f.type, 'VaultUnavailable');
      assert.equal(f.nonRetryable, false);
      assert.match(f.message, /HTTP 503.*sys\/seal-status: unsealed/);
    });

    it('a 503 for everything (no server at all behind the balancer) is a retryable VaultUnavailable', async () => {
      refuse = (p) => !p.includes('approle');
      const f = await canaryFailure();
      assert.equal(f.type, 'VaultUnavailable');
      assert.equal(f.nonRetryable, false);
      assert.match(f.message, /seal-status unreadable/);
    });

    it('a snapshot stream that stops moving bytes fails after the stall timeout instead of hanging', async () => {
      refuse = () => false;
      freezeSnapshot = true;
      const files = await approleFor(bao, { name: 'lb', ttl: '60s', maxTtl: '120s' });
      const client = new BaoClient(vaultConfig({ address: proxyAddress, ...files }), { stallTimeoutMs: 2000 });
      const started = Date.now();
      try {
        const outcome = await Promise.race([
          (async () => {
            let bytes = 0;
            for await (const chunk of await client.snapshotStream()) bytes += chunk.length;
            return `ended after ${bytes} bytes`;
          })().catch((err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message),
          sleep(15_000).then(() => 'still waiting after 15s'),
        ]);
        assert.equal(outcome, 'UND_ERR_BODY_TIMEOUT');
        assert.ok(Date.now() - started < 6000, `failed after ${(Date.now() - started) / 1000}s`);
      } finally {
        freezeSnapshot = false;
        await client.close();
      }
    });

    it('a really sealed OpenBao is a non-retryable VaultSealed', async () => {
      refuse = () => false;
      const files = await approleFor(bao, { name: 'lb', ttl: '60s', maxTtl: '120s' });
      // Log in while unsealed, then seal: the write meets the sealed server.
      const cfg = ConfigSchema.parse({ vault: { address: proxyAddress, requestTimeoutMs: 5000, ...files }, codec: { keysFile: '/unused' } }) as Config;
      const client = new BaoClient(cfg.vault);
      const acts = backupActivities({ bao: client, s3: new S3Client({ region: 'us-east-1' }), cfg });
      try {
        await acts.writeCanary({ backupId: 'before-seal' });
        assert.equal((await bao.api('PUT', 'sys/seal', {})).status, 204);
        const f = await acts.writeCanary({ backupId: 'sealed' }).then(
          () => assert.fail('writeCanary succeeded on a sealed server'),
          (err: ApplicationFailure) => err,
        );
        assert.equal(f.type, 'VaultSealed');
        assert.equal(f.nonRetryable, true);
        assert.match(f.message, /sys\/seal-status: sealed/);
      } finally {
        await client.close();
        await bao.api('PUT', 'sys/unseal', { key: bao.unsealKey });
      }
    });
  });
});
