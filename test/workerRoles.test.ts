// Trust-scoped worker roles (docs/worker-roles.md): each role runs as its own process from a config
// holding only its secrets, activities reach the process of the role that holds their secrets,
// and a backup process without the validation key or unseal shares still backs up end to end.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { roleConfigFile, stackDir } from '../stack/stack';
import { connectClient } from '../client/connect';
import { loadConfig, type Config } from '../infra/config';
import { buildBaoClient, buildMailTransport, buildS3Client } from '../infra/clients';
import { backupRoleActivities, notifyRoleActivities, restoreRoleActivities } from '../activities';
import { WORKER_ROLES, roleQueue, type WorkerRole } from '../common/roles';
import { scopeConfig } from '../workers/roles';
import type { BackupResult } from '../common/backup';
import type { RestoreRecord } from '../common/restore';
import { stackSecrets } from './helpers/inspect';
import { ensureStack, PROJECT_ROOT, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';

const WORKER = path.join(PROJECT_ROOT, 'lib', 'workers', 'main.js');

/** The role whose queue must serve each activity, from the role factories themselves. */
function expectedRoles(cfg: Config): Map<string, WorkerRole> {
  const s3 = buildS3Client(cfg.s3);
  const groups: [WorkerRole, object][] = [
    ['backup', backupRoleActivities(cfg, { bao: buildBaoClient(cfg.vault), s3 })],
    ['restore', restoreRoleActivities(cfg, { s3 })],
    ['notify', notifyRoleActivities(cfg, { mail: buildMailTransport(cfg.smtp), s3, bao: buildBaoClient(cfg.vault) })],
  ];
  return new Map(groups.flatMap(([role, acts]) => Object.keys(acts).map((name) => [name, role] as [string, WorkerRole])));
}

interface ActivityRun {
  name: string;
  taskQueue: string;
  identity: string;
}

/** Every activity that started in a workflow's history: its name, the queue it was scheduled on, and who ran it. */
async function activityRuns(client: Client, workflowId: string): Promise<ActivityRun[]> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const scheduled = new Map<string, { name: string; taskQueue: string }>();
  const runs: ActivityRun[] = [];
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), { name: s.activityType?.name ?? '?', taskQueue: s.taskQueue?.name ?? '?' });
    const st = e.activityTaskStartedEventAttributes;
    if (st) runs.push({ ...scheduled.get(String(st.scheduledEventId))!, identity: st.identity ?? '' });
  }
  return runs;
}

/**
 * Waits until `n` activities are scheduled and returns their queues: scheduling happens whether or
 * not a worker polls the queue, so broken routing fails here in seconds instead of hanging.
 */
async function scheduledQueues(client: Client, workflowId: string, n: number): Promise<Map<string, string>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const scheduled = events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : []));
    if (scheduled.length >= n) return new Map(scheduled.map((s) => [s.activityType?.name ?? '?', s.taskQueue?.name ?? '?']));
    assert.ok(Date.now() < deadline, `${workflowId}: only ${scheduled.length} of ${n} activities scheduled after 30 s (${scheduled.map((s) => `${s.activityType?.name} on ${s.taskQueue?.name}`).join(', ')}): is an activity on a queue no worker of its role polls?`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('worker roles (real stack)', function () {
  this.timeout(240_000);
  let stack: Config;
  before(async () => {
    stack = await ensureStack();
  });

  it('routes every activity of a workflow to its role queue (one in-process worker with all roles)', async () => {
    const cfg = withQueue(stack, uniqueQueue('route'));
    const client = await connectClient(cfg);
    try {
      const workflowId = `route-${Date.now()}`;
      const roles = expectedRoles(cfg);
      await withWorker(cfg, async () => {
        const h = await client.workflow.start('vaultHealthCheck', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{}] });
        // checkPostgresHa runs on every check (it reports nothing where no HA PostgreSQL is configured).
        const queues = await scheduledQueues(client, workflowId, 4);
        assert.deepEqual([...queues.keys()].sort(), ['checkMailRelay', 'checkObjectStore', 'checkPostgresHa', 'checkVaultHealth']);
        for (const [name, queue] of queues) assert.equal(queue, roleQueue(cfg.temporal.taskQueue, roles.get(name)!), `${name} was scheduled on ${queue}`);
        return h.result();
      });
      const runs = await activityRuns(client, workflowId);
      assert.equal(runs.length, 4);
    } finally {
      await client.connection.close();
    }
  });

  it('drops the secrets of roles a process does not run before anything reads them', () => {
    const { cfg, dropped } = scopeConfig(stack, ['backup']);
    assert.equal(cfg.backup.validationKeyFile, undefined);
    assert.equal(cfg.restore.unsealSharesFile, undefined);
    assert.equal(cfg.restore.productionTokenFile, undefined);
    assert.equal(cfg.restore.validatorSecretIdFile, undefined);
    assert.equal(cfg.codec.tokensFile, undefined);
    assert.ok(cfg.vault.secretIdFile && cfg.backup.recipientsFile && cfg.s3.credentialsFile, 'the backup role keeps its own secrets');
    assert.ok(dropped.includes('backup.validationKeyFile') && dropped.includes('restore.unsealSharesFile'));
    const restore = scopeConfig(stack, ['restore']).cfg;
    assert.equal(restore.vault.secretIdFile, undefined, 'the restore role does not log in to Vault as the backup worker');
    assert.ok(restore.backup.validationKeyFile && restore.restore.unsealSharesFile);
  });

  it('runs each role as its own process: the backup process, without validation key or unseal shares, backs up; restore steps run only on the restore process', async () => {
    const taskQueue = uniqueQueue('roles');
    const cfg = withQueue(stack, taskQueue);
    // The stack writes one config per role, as each role's host would have it.
    const roleCfg = (role: WorkerRole) => loadConfig({ file: roleConfigFile(role), env: {} });
    const backupCfg = roleCfg('backup');
    assert.equal(backupCfg.backup.validationKeyFile, undefined, 'backup role config must not name the validation key');
    assert.equal(backupCfg.restore.unsealSharesFile, undefined, 'backup role config must not name the unseal shares');
    assert.equal(backupCfg.restore.validatorSecretIdFile, undefined);
    assert.equal(backupCfg.restore.productionTokenFile, undefined);
    assert.equal(roleCfg('notify').backup.validationKeyFile, undefined);
    assert.equal(roleCfg('workflows').vault.secretIdFile, undefined);
    assert.equal(roleCfg('workflows').s3.credentialsFile, undefined);

    const procs = new Map<WorkerRole, { child: ChildProcess; log: () => string; exited: Promise<number | null> }>();
    for (const role of WORKER_ROLES) {
      const env = {
        ...process.env,
        VAULTDR_CONFIG: roleConfigFile(role),
        VAULTDR_WORKER_ROLES: role,
        VAULTDR_TASK_QUEUE: taskQueue,
        VAULTDR_CODEC_LISTEN: '127.0.0.1:18189',
        // The backup and notify processes each serve /metrics (state gauges; failure and alert counters).
        VAULTDR_METRICS_LISTEN: role === 'notify' ? '127.0.0.1:19565' : '127.0.0.1:19564',
        VAULTDR_SHARE_INTAKE_LISTEN: '127.0.0.1:18190',
      };
      const child = spawn(process.execPath, [WORKER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      procs.set(role, { child, log: () => log, exited: new Promise((r) => child.once('exit', (code) => r(code))) });
    }
    // A timed-out run (mocha --exit) must not leave role processes holding the test ports.
    const killAll = () => procs.forEach((p) => p.child.exitCode === null && p.child.kill('SIGKILL'));
    process.once('exit', killAll);
    const client = await connectClient(cfg);
    try {
      const deadline = Date.now() + 60_000;
      for (const [role, p] of procs) {
        while (!/state: 'RUNNING'/.test(p.log())) {
          assert.ok(Date.now() < deadline, `${role} worker did not start:\n${p.log()}`);
          assert.equal(p.child.exitCode, null, `${role} worker exited:\n${p.log()}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      // Each listener is served by the process of its role only (a second bind would have failed).
      assert.equal((await fetch('http://127.0.0.1:18189/decode', { method: 'POST', body: '{}' })).status, 401);
      assert.equal((await fetch('http://127.0.0.1:18190/health')).status, 200);
      assert.equal((await fetch('http://127.0.0.1:18190/decode', { method: 'POST', body: '{}' })).status, 404, 'the share intake must not decode payloads');

      const backupId = `roles-backup-${Date.now()}`;
      const started = await client.workflow.start('backupVault', { taskQueue, workflowId: backupId, args: [{ prune: false }] });
      assert.equal((await scheduledQueues(client, backupId, 1)).get('checkBackupBucket'), `${taskQueue}-backup`);
      const backup = (await started.result()) as BackupResult;
      assert.equal(backup.status, 'verified');
      const restoreId = `roles-restore-${Date.now()}`;
      const restore = (await client.workflow.execute('restoreVault', { taskQueue, workflowId: restoreId, args: [{ backupId: backup.backupId }] })) as RestoreRecord;
      assert.equal(restore.status, 'verified');

      const roles = expectedRoles(cfg);
      const pidRole = new Map([...procs].map(([role, p]) => [p.child.pid!, role]));
      const runs = [...(await activityRuns(client, backupId)), ...(await activityRuns(client, restoreId))];
      for (const name of ['snapshotToStore', 'verifyUploadedBackup', 'startStagingVault', 'restoreSnapshot', 'unsealTarget', 'verifyRestoredSecrets', 'teardownStaging']) {
        assert.ok(runs.some((r) => r.name === name), `${name} did not run`);
      }
      for (const r of runs) {
        const ranOn = pidRole.get(Number(r.identity.split('@')[0]));
        assert.equal(ranOn, roles.get(r.name), `${r.name} ran on the ${ranOn ?? r.identity} process (queue ${r.taskQueue})`);
      }
      assert.ok(!runs.some((r) => roles.get(r.name) === 'restore' && pidRole.get(Number(r.identity.split('@')[0])) === 'backup'), 'a restore activity ran on the backup process');

      // A failed backup is counted where its alert is sent (the notify process), and that process
      // serves the counter BackupFailed reads; the backup process serves the state gauges.
      const failed = await client.workflow.start('backupVault', { taskQueue, workflowId: `roles-backup-bad-${Date.now()}`, args: [{ trigger: 'nonsense' } as never] });
      await assert.rejects(failed.result());
      const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      let notifyMetrics = '';
      for (let i = 0; i < 50 && !/vaultdr_workflow_runs_failed_total\{workflow="backupVault"\} 1\b/.test(notifyMetrics); i++) {
        await new Promise((r) => setTimeout(r, 200));
        notifyMetrics = await scrape(19565);
      }
      assert.match(notifyMetrics, /vaultdr_workflow_runs_failed_total\{workflow="backupVault"\} 1\b/);
      assert.doesNotMatch(notifyMetrics, /vaultdr_backups_verified/);
      assert.match(await scrape(19564), /vaultdr_backups_verified \d+/);
    } finally {
      await client.connection.close();
      for (const p of procs.values()) p.child.kill('SIGTERM');
    }
    process.removeListener('exit', killAll);
    for (const [role, p] of procs) {
      assert.equal(await p.exited, 0, `${role}:\n${p.log()}`);
      for (const s of stackSecrets()) assert.ok(!p.log().includes(s.value), `${role} log shows ${s.name}`);
    }
    assert.ok(fs.existsSync(path.join(stackDir(), 'intake', 'tokens')));
  });
});
