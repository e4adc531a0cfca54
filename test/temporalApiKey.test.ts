// Temporal API keys (how Temporal Cloud authenticates): the key comes from cfg.temporal.apiKeyFile,
// turns TLS on, and travels as `authorization: Bearer <key>` plus the `temporal-namespace` header.
// Temporal Cloud is not reachable from these machines, so a gRPC-aware proxy in the test plays its
// front door (TLS, key required, UNAUTHENTICATED otherwise) in front of the real dev server.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Config } from '../infra/config';
import { connectClient } from '../client/connect';
import { buildWorker } from '../workers/worker';
import { describeTemporalConnection, temporalConnectionOptions } from '../infra/temporal/connection';
import type { HealthReport } from '../common/health';
import { ensureStack, uniqueQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';
import { issue, makeCa, tempDir } from './helpers/pki';
import { startApiKeyProxy, type ApiKeyProxy } from './helpers/apiKeyProxy';

describe('Temporal API key (Temporal Cloud style), through a key-checking gRPC proxy (real stack)', function () {
  this.timeout(180_000);
  const apiKey = `vdr-test-${Date.now().toString(36)}-key`;
  let dir: string;
  let base: Config;
  let proxy: ApiKeyProxy;
  let caFile: string;
  let keyFile: string;
  const viaProxy = (t: Partial<Config['temporal']>): Config => ({
    ...base,
    temporal: { ...base.temporal, taskQueue: uniqueQueue('apikey'), address: `127.0.0.1:${proxy.port}`, tls: { enabled: false, caFile, serverName: 'localhost' }, ...t },
  });

  before(async () => {
    base = await ensureStack();
    dir = tempDir('vaultdr-apikey-');
    const ca = makeCa(dir, 'cloud-ca');
    const server = issue(ca, 'cloud-frontend', 'server');
    caFile = ca.cert;
    keyFile = path.join(dir, 'temporal-api-key');
    fs.writeFileSync(keyFile, `${apiKey}\n`, { mode: 0o600 });
    proxy = await startApiKeyProxy({ upstream: base.temporal.address, apiKey, cert: fs.readFileSync(server.cert), key: fs.readFileSync(server.key) });
  });
  after(async () => {
    await proxy?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('builds connection options that carry the key, TLS and the namespace header, and logs none of the key', () => {
    const cfg = viaProxy({ apiKeyFile: keyFile, namespace: 'vault-dr.a1b2c', tls: { enabled: false } });
    const opts = temporalConnectionOptions(cfg);
    assert.equal(opts.apiKey, apiKey);
    assert.deepEqual(opts.tls, {}, 'TLS on with the system roots, as Temporal Cloud needs');
    assert.deepEqual(opts.metadata, { 'temporal-namespace': 'vault-dr.a1b2c' });
    assert.ok(!JSON.stringify(describeTemporalConnection(cfg)).includes(apiKey));
  });

  it('runs vaultHealthCheck with worker and client sending the key on every call', async () => {
    const cfg = viaProxy({ apiKeyFile: keyFile });
    const before = proxy.seen.length;
    const client = await connectClient(cfg);
    try {
      const report = await withWorker(cfg, async () => {
        const h = await client.workflow.start('vaultHealthCheck', { taskQueue: cfg.temporal.taskQueue, workflowId: `apikey-health-${Date.now()}`, args: [{ checks: ['vault'] }] });
        return (await h.result()) as HealthReport;
      });
      assert.equal(report.status, 'healthy', JSON.stringify(report));
    } finally {
      await client.connection.close();
    }
    const calls = proxy.seen.slice(before);
    // Both stacks went through the proxy: the worker's polls (Rust core) and the client's start (grpc-js).
    assert.ok(calls.some((c) => c.path.endsWith('/PollWorkflowTaskQueue')), 'worker polled through the proxy');
    assert.ok(calls.some((c) => c.path.endsWith('/StartWorkflowExecution')), 'client started through the proxy');
    for (const c of calls) {
      assert.equal(c.authorization, `Bearer ${apiKey}`, `${c.path} carried the API key`);
      assert.equal(c.namespace, cfg.temporal.namespace, `${c.path} carried temporal-namespace`);
    }
  });

  it('is refused without a key or with a wrong key, saying the request was unauthorized', async () => {
    const wrongFile = path.join(dir, 'wrong-key');
    fs.writeFileSync(wrongFile, 'not-the-key\n', { mode: 0o600 });
    for (const cfg of [viaProxy({ tls: { enabled: true, caFile, serverName: 'localhost' } }), viaProxy({ apiKeyFile: wrongFile })]) {
      await assert.rejects(connectClient(cfg), /unreachable over TLS: .*unauthorized/is);
      await assert.rejects(buildWorker(cfg), /unreachable over TLS: .*unauthorized/is);
    }
  });

  it('names an unreadable or empty key file without quoting it', () => {
    const empty = path.join(dir, 'empty-key');
    fs.writeFileSync(empty, '\n');
    assert.throws(() => temporalConnectionOptions(viaProxy({ apiKeyFile: path.join(dir, 'missing') })), /temporal\.apiKeyFile file .*missing is unreadable \(ENOENT\)/);
    assert.throws(() => temporalConnectionOptions(viaProxy({ apiKeyFile: empty })), /temporal\.apiKeyFile file .*empty-key is empty/);
  });
});
