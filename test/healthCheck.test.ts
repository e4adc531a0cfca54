// vaultHealthCheck against the real local stack (Temporal, OpenBao, SeaweedFS, Mailpit) with a
// real worker: the report, the progress query, input validation, payload encryption in history,
// and a sealed OpenBao reported as such.
import assert from 'node:assert/strict';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../infra/config';
import { connectClient } from '../client/connect';
import { rootToken, unsealBao } from '../stack/stack';
import type { HealthReport } from '../common/health';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';
import { temporalConnectionOptions } from '../infra/temporal/connection';
import { freePort } from '../infra/vault/stagingVault';

describe('vaultHealthCheck workflow (real stack)', function () {
  this.timeout(300_000);
  let cfg: Config;
  let client: Client;

  before(async () => {
    cfg = withQueue(await ensureStack(), uniqueQueue('health'));
    client = await connectClient(cfg);
  });
  after(async () => client?.connection.close());

  const start = (workflowId: string, input: unknown) =>
    client.workflow.start('vaultHealthCheck', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [input as never] });

  it('started with {} (as from the Web UI) reports every component healthy', async () => {
    const report = await withWorker(cfg, async () => {
      const h = await start(`health-ok-${Date.now()}`, {});
      return (await h.result()) as HealthReport;
    });
    assert.equal(report.status, 'healthy', JSON.stringify(report));
    assert.equal(report.vault?.sealed, false);
    assert.equal(report.vault?.initialized, true);
    assert.equal(report.vault?.raftPeers.filter((p) => p.leader).length, 1);
    assert.equal(report.objectStore?.bucketExists, true);
    assert.equal(report.mail?.status, 'healthy');
    // Healthy means no problem text anywhere, not just a status word.
    assert.deepEqual([report.vault?.problems, report.objectStore?.problems, report.mail?.problems], [[], [], []]);
  });

  it('names each unreachable component with the messages of the health-check runbook', async () => {
    // Every server address points at a closed port; the worker itself still reaches Temporal. Not port 1:
    // fetch refuses it outright ("bad port", a blocked port), which is not what an operator meets.
    const closed = await freePort();
    const down: Config = { ...cfg, vault: { ...cfg.vault, address: `http://127.0.0.1:${closed}` }, s3: { ...cfg.s3, endpoint: `http://127.0.0.1:${closed}` }, smtp: { ...cfg.smtp, host: '127.0.0.1', port: closed } };
    const report = (await withWorker(down, async () => (await start(`health-down-${Date.now()}`, {})).result())) as HealthReport;
    assert.equal(report.status, 'unhealthy', JSON.stringify(report));
    assert.equal(report.vault?.reachable, false);
    assert.deepEqual(report.vault?.problems.length, 1, JSON.stringify(report.vault));
    assert.match(report.vault!.problems[0]!, new RegExp(`^GET http://127\\.0\\.0\\.1:${closed}/v1/sys/health.*: OpenBao unreachable \\(ECONNREFUSED\\)$`));
    assert.equal(report.objectStore?.status, 'unhealthy');
    assert.match(report.objectStore!.problems.join('; '), new RegExp(`^object store http://127\\.0\\.0\\.1:${closed} unreachable: `));
    assert.equal(report.mail?.status, 'unhealthy');
    assert.match(report.mail!.problems.join('; '), new RegExp(`^SMTP relay 127\\.0\\.0\\.1:${closed} unreachable: .*ECONNREFUSED`));
  });

  it('names a missing bucket', async () => {
    const bucket = `vaultdr-absent-${Date.now()}`;
    const report = (await withWorker({ ...cfg, s3: { ...cfg.s3, bucket } }, async () => (await start(`health-nobucket-${Date.now()}`, { checks: ['objectStore'] })).result())) as HealthReport;
    assert.equal(report.status, 'unhealthy');
    assert.equal(report.objectStore?.bucketExists, false);
    assert.deepEqual(report.objectStore?.problems, [`bucket "${bucket}" does not exist at ${cfg.s3.endpoint}`]);
  });

  it('exposes progress through a query', async () => {
    const progress = await withWorker(cfg, async () => {
      const h = await start(`health-progress-${Date.now()}`, { checks: ['vault'] });
      await h.result();
      return h.query<{ step: string; completed: string[] }>('progress');
    });
    assert.deepEqual(progress, { step: 'done', completed: ['vault'] });
  });

  it('reports degraded when fewer raft voters than expected', async () => {
    const report = await withWorker(cfg, async () => (await start(`health-peers-${Date.now()}`, { checks: ['vault'], expectedRaftPeers: 3 })).result());
    assert.equal((report as HealthReport).status, 'degraded');
    assert.match((report as HealthReport).vault!.problems.join(), /raft has 1 voter\(s\), expected 3/);
  });

  it('fails non-retryably naming the field when the input has a wrong type', async () => {
    const err = await withWorker(cfg, async () => {
      const h = await start(`health-bad-${Date.now()}`, { expectedRaftPeers: 'three' });
      return h.result().then(
        () => undefined,
        (e: unknown) => e,
      );
    });
    assert.ok(err instanceof WorkflowFailedError, String(err));
    const cause = err.cause;
    assert.ok(cause instanceof ApplicationFailure);
    assert.equal(cause.type, 'InvalidInput');
    assert.equal(cause.nonRetryable, true);
    assert.match(cause.message, /field "expectedRaftPeers": Expected number, received string/);
  });

  it('stores workflow inputs and results encrypted in history', async () => {
    const marker = 'objectStore';
    const workflowId = `health-enc-${Date.now()}`;
    await withWorker(cfg, async () => (await start(workflowId, { checks: [marker] })).result());
    // Read history with a raw client that has no codec: what the server stores.
    const raw = new Client({ connection: await Connection.connect(temporalConnectionOptions(cfg)), namespace: cfg.temporal.namespace });
    try {
      const history = await raw.workflow.getHandle(workflowId).fetchHistory();
      const payloads = history.events!.flatMap((e) => [
        ...(e.workflowExecutionStartedEventAttributes?.input?.payloads ?? []),
        ...(e.workflowExecutionCompletedEventAttributes?.result?.payloads ?? []),
        ...(e.activityTaskScheduledEventAttributes?.input?.payloads ?? []),
        ...(e.activityTaskCompletedEventAttributes?.result?.payloads ?? []),
      ]);
      assert.ok(payloads.length >= 3, `expected input, activity and result payloads, got ${payloads.length}`);
      for (const p of payloads) {
        assert.equal(Buffer.from(p.metadata!.encoding!).toString(), 'binary/encrypted');
        assert.ok(!Buffer.from(p.data!).includes(Buffer.from(marker)), 'plaintext visible in history');
        assert.ok(!Buffer.from(p.data!).includes(Buffer.from(cfg.s3.bucket)), 'plaintext visible in history');
      }
    } finally {
      await raw.connection.close();
    }
  });

  it('reports a sealed OpenBao as unhealthy, naming the cause', async () => {
    const res = await fetch(`${cfg.vault.address}/v1/sys/seal`, { method: 'PUT', headers: { 'X-Vault-Token': rootToken() } });
    assert.equal(res.status, 204);
    try {
      const report = (await withWorker(cfg, async () => (await start(`health-sealed-${Date.now()}`, { checks: ['vault'] })).result())) as HealthReport;
      assert.equal(report.status, 'unhealthy');
      assert.equal(report.vault?.sealed, true);
      assert.match(report.vault!.problems.join(), /is sealed/);
    } finally {
      await unsealBao();
    }
  });
});
