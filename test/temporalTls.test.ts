// Temporal over mTLS, for real: the dev server speaks plaintext, so HAProxy (Debian) terminates
// TLS in front of it (ALPN h2, as a Temporal frontend offers) and demands a client certificate
// from our test CA. The worker and the CLI
// client, configured only through cfg.temporal.tls, run a vaultHealthCheck through it; without
// a client certificate, or with one from another CA, they are refused with a clear error.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Config } from '../infra/config';
import { connectClient } from '../client/connect';
import { buildWorker } from '../workers/worker';
import type { HealthReport } from '../common/health';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';
import { freePort, issue, makeCa, tempDir, waitForPort } from './helpers/pki';

function haproxyBinary(): string {
  for (const p of ['/usr/sbin/haproxy', '/usr/bin/haproxy']) if (fs.existsSync(p)) return p;
  throw new Error('haproxy not installed: run scripts/ensure-deps.sh --test-tools');
}

describe('Temporal over mTLS through a client-certificate-checking TLS proxy (real stack)', function () {
  this.timeout(180_000);
  let cfg: Config;
  let dir: string;
  let proxy: ChildProcess;
  let proxyLog: string;
  let tlsTemporal: (extra: Partial<Config['temporal']['tls']>) => Config;

  before(async () => {
    const base = await ensureStack();
    dir = tempDir('vaultdr-mtls-');
    const ca = makeCa(dir, 'test-ca');
    const server = issue(ca, 'temporal-frontend', 'server');
    const client = issue(ca, 'vaultdr-worker', 'client');
    // A CA the proxy does not trust, issuing a client certificate that looks just as valid.
    const otherDir = fs.mkdirSync(path.join(dir, 'other'), { recursive: true })!;
    const rogue = issue(makeCa(otherDir, 'rogue-ca'), 'rogue-client', 'client');
    fs.writeFileSync(path.join(dir, 'rogue.json'), JSON.stringify(rogue));

    const port = await freePort();
    proxyLog = path.join(dir, 'haproxy.log');
    const bundle = path.join(dir, 'temporal-frontend.bundle.pem');
    fs.writeFileSync(bundle, fs.readFileSync(server.cert, 'utf8') + fs.readFileSync(server.key, 'utf8'), { mode: 0o600 });
    const conf = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(
      conf,
      [
        'global',
        '  log stdout format raw local0 info',
        'defaults',
        '  mode tcp',
        '  log global',
        '  timeout connect 5s',
        '  timeout client 10m',
        '  timeout server 10m',
        'frontend temporal_mtls',
        `  bind 127.0.0.1:${port} ssl crt ${bundle} ca-file ${ca.cert} verify required alpn h2 ssl-min-ver TLSv1.2`,
        '  log-format "client=%[ssl_c_s_dn] verify=%[ssl_c_verify]"',
        '  default_backend temporal_dev',
        'backend temporal_dev',
        `  server dev ${base.temporal.address}`,
        '',
      ].join('\n'),
    );
    const out = fs.openSync(proxyLog, 'a');
    proxy = spawn(haproxyBinary(), ['-db', '-f', conf], { stdio: ['ignore', out, out] });
    await waitForPort(port);

    tlsTemporal = (extra) => ({
      ...withQueue(base, uniqueQueue('mtls')),
      // serverName: the certificate's DNS name, checked instead of the IP we dial.
      temporal: { ...base.temporal, taskQueue: uniqueQueue('mtls'), address: `127.0.0.1:${port}`, tls: { enabled: true, caFile: ca.cert, serverName: 'localhost', ...extra } },
    });
    cfg = tlsTemporal({ certFile: client.cert, keyFile: client.key });
  });

  after(() => {
    proxy?.kill();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs vaultHealthCheck with the worker and the client connected through mTLS only', async () => {
    const client = await connectClient(cfg);
    try {
      const report = await withWorker(cfg, async () => {
        const h = await client.workflow.start('vaultHealthCheck', { taskQueue: cfg.temporal.taskQueue, workflowId: `mtls-health-${Date.now()}`, args: [{ checks: ['vault'] }] });
        return (await h.result()) as HealthReport;
      });
      assert.equal(report.status, 'healthy', JSON.stringify(report));
    } finally {
      await client.connection.close();
    }
    // The proxy, not a plaintext side door, carried the traffic, with our client certificate.
    const log = fs.readFileSync(proxyLog, 'utf8');
    assert.match(log, /client=\/CN=vaultdr-worker verify=0/, `HAProxy verified our client certificate:\n${log}`);
  });

  it('refuses the client and the worker without a client certificate, with an error naming the cause', async () => {
    const noCert = tlsTemporal({});
    await assert.rejects(connectClient(noCert), (err: Error) => {
      assert.match(err.message, /Temporal at 127\.0\.0\.1:\d+ unreachable over TLS/);
      assert.match(err.message, /client certificate/);
      return true;
    });
    // With TLS 1.3 the refusal reaches the worker either as the proxy's "CertificateRequired" alert
    // or as a closed connection, so the message always carries the hint about the client certificate.
    await assert.rejects(buildWorker(noCert), /unreachable over TLS: .*client certificate/s);
  });

  it('refuses a client certificate issued by another CA', async () => {
    const rogue = JSON.parse(fs.readFileSync(path.join(dir, 'rogue.json'), 'utf8')) as { cert: string; key: string };
    const rogueCfg = tlsTemporal({ certFile: rogue.cert, keyFile: rogue.key });
    await assert.rejects(connectClient(rogueCfg), /unreachable over mTLS.*issued by a CA the server trusts/s);
    await assert.rejects(buildWorker(rogueCfg), /unreachable over mTLS/);
  });

  it('refuses a plaintext client on the TLS port', async () => {
    const plain = { ...cfg, temporal: { ...cfg.temporal, tls: { enabled: false } } };
    await assert.rejects(connectClient(plain), /unreachable over plaintext/);
  });
});
