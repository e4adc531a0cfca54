// A migration whose worker is SIGKILLed mid-step resumes on a new worker process and finishes, with
// no duplicate key or configuration on the new host: each step keeps what it replaces once per
// migration and writes whole files (temporary file + rename), so a retried step rewrites the same
// content. The kill lands at a step chosen at random among those that change the host.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { MigrateResult } from '../common/migration';
import { leaseHosts, prepareMigration, writeWorkerConfigFile } from '../stack/migrationFixture';
import { runInHost } from '../stack/mailhosts';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { killWorkerProcesses, spawnWorkerProcess, type WorkerProcess } from './helpers/workerProcess';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('migrateVps survives a worker SIGKILL at a random step (real hosts, worker processes)', function () {
  this.timeout(300_000);
  let release: (() => void) | undefined;
  let client: Client | undefined;
  const workers: WorkerProcess[] = [];
  let tmp = '';

  after(async () => {
    killWorkerProcesses(workers);
    await client?.connection.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    release?.();
  });

  it('resumes after the kill and finishes with one copy of every key and setting', async () => {
    release = await leaseHosts();
    const base = withQueue(await ensureStack(), uniqueQueue('migrate-crash'));
    const fx = await prepareMigration(base);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-migrate-crash-'));
    const cfgFile = writeWorkerConfigFile(tmp, fx.cfg.migration);
    const startWorker = async (n: number) => {
      workers.push(await spawnWorkerProcess(cfgFile, base.temporal.taskQueue, `worker ${n}`));
      return workers.at(-1)!.child;
    };
    const steps = ['deploySshKeys', 'recoverSmtpCredentials', 'installDkimKey', 'sendTestEmail'];
    const killAt = steps[Math.floor(Math.random() * steps.length)]!;
    const first = await startWorker(0);
    client = await connectClient(base);
    const workflowId = `migrate-crash-${Date.now()}`;
    const h = await client.workflow.start('migrateVps', { taskQueue: base.temporal.taskQueue, workflowId, args: [{ secretSource: 'live', awaitCutover: false }] });
    for (let i = 0; ; i++) {
      const p = await h.query<{ step: string; error?: string }>('progress');
      if (p.step === killAt) break;
      assert.ok(p.step !== 'done' && p.step !== 'failed' && i < 600, `never reached ${killAt} (at ${p.step}: ${p.error ?? ''})`);
      await sleep(100);
    }
    await sleep(300); // inside the step's activity
    first.kill('SIGKILL');
    await startWorker(1);
    const r = (await h.result()) as MigrateResult;
    assert.equal(r.status, 'ready for cutover', `killed at ${killAt}`);
    assert.match(r.mail.dkim, /^pass/);
    const keys = runInHost('new-vps', ['cat', '/root/.ssh/authorized_keys']).split('\n').filter((l) => /^ssh-/.test(l));
    assert.equal(keys.length, 3, `authorized_keys holds ${keys.length} keys after a kill at ${killAt}`);
    assert.equal(new Set(keys).size, 3, 'no duplicate key');
    const env = runInHost('new-vps', ['cat', '/mailu/mailu.env']);
    for (const k of ['RELAYHOST', 'RELAYUSER', 'RELAYPASSWORD']) assert.equal(env.split('\n').filter((l) => l.startsWith(`${k}=`)).length, 1, `${k} once`);
    assert.equal(runInHost('new-vps', ['sh', '-c', 'ls -d /mailu/.vaultdr-previous/* | wc -l']).trim(), '1', 'one kept configuration');
    // The previous authorized_keys kept is the pre-migration one (the departed key), not a retry's output.
    const kept = runInHost('new-vps', ['sh', '-c', 'cat /root/.ssh/authorized_keys.vaultdr-previous-*']);
    assert.ok(kept.includes(fx.departedKeyLine.split(' ')[1]!), 'the kept file is the original');
    process.stdout.write(`      killed at ${killAt}; resumed and finished\n`);
  });
});
