// The worker as operators run it (`npm run worker`): starts from config, serves the codec endpoint,
// runs workflows, drains and exits 0 on SIGTERM; a bad config is one line and exit 1.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { stackDir } from '../stack/stack';
import { connectClient } from '../client/connect';
import type { HealthReport } from '../common/health';
import { stackSecrets } from './helpers/inspect';
import { ensureStack, PROJECT_ROOT, uniqueQueue, withQueue } from './helpers/stack';

const WORKER = path.join(PROJECT_ROOT, 'lib', 'workers', 'main.js');

describe('worker process (real stack)', function () {
  this.timeout(120_000);
  before(() => ensureStack());

  it('runs a workflow, serves the codec endpoint and shuts down cleanly on SIGTERM', async () => {
    const cfg = withQueue(await ensureStack(), uniqueQueue('proc'));
    // DEBUG: the most the worker ever logs, all of which must be free of secret values.
    const env = { ...process.env, VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json'), VAULTDR_TASK_QUEUE: cfg.temporal.taskQueue, VAULTDR_CODEC_LISTEN: '127.0.0.1:18089', VAULTDR_METRICS_LISTEN: '127.0.0.1:19464', VAULTDR_SHARE_INTAKE_LISTEN: '127.0.0.1:18090', VAULTDR_LOG_LEVEL: 'DEBUG' };
    const child = spawn(process.execPath, [WORKER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!/state: 'RUNNING'/.test(log)) {
        assert.ok(Date.now() < deadline, `worker did not start:\n${log}`);
        assert.equal(child.exitCode, null, `worker exited:\n${log}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const codec = await fetch('http://127.0.0.1:18089/decode', { method: 'POST', body: '{}' });
      assert.equal(codec.status, 401, 'codec endpoint must demand a token');
      const metricsText = await (await fetch('http://127.0.0.1:19464/metrics')).text();
      assert.match(metricsText, /^vaultdr_vault_sealed 0$/m);
      assert.match(metricsText, /^vaultdr_object_store_up 1$/m);
      assert.match(metricsText, /^vaultdr_restore_rto_target_seconds 900$/m);

      const client = await connectClient(cfg);
      const report = (await client.workflow.execute('vaultHealthCheck', { taskQueue: cfg.temporal.taskQueue, workflowId: `proc-${Date.now()}`, args: [{}] })) as HealthReport;
      await client.connection.close();
      assert.equal(report.status, 'healthy');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, log);
    assert.match(log, /worker stopped/);
    // The secret values themselves (tokens, secret-ids, unseal and custodian shares, S3 and codec
    // keys, the validation key), not just the names of the files that hold them.
    const secrets = stackSecrets();
    assert.ok(secrets.length >= 8, `only ${secrets.length} stack secrets found`);
    for (const s of secrets) assert.ok(!log.includes(s.value), `the worker log holds the ${s.name}`);
    assert.match(log, /vaultHealthCheck/, 'the log must cover the workflow that ran');
  });

  it('refuses to start with a malformed config, naming the variable, exit 1', () => {
    const res = spawnSync(process.execPath, [WORKER], {
      env: { ...process.env, VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json'), VAULTDR_TEMPORAL_ADDRESS: 'not a host' },
      encoding: 'utf8',
    });
    assert.equal(res.status, 1);
    assert.match(res.stderr, /^vaultdr worker: config: temporal\.address: expected host:port \(from VAULTDR_TEMPORAL_ADDRESS\)\n$/);
  });
});
