// What an operator sees in the Temporal Web UI, on a dev server (ephemeral, its own port) with
// vault-dr's search attributes registered: a production restore waiting for approval is found by
// the one list query (and `vaultdr restore list --waiting`'s function) and not after approval;
// runs started through the CLI's starter carry a static summary; the monitor's `configure`
// update rejects a bad value with the validator's message and accepts a good one; malformed
// `ack` and `custodianSharesReady` signals are ignored. Activities are typed stubs on every role queue.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { AlertRequest } from '../activities/notify/notify';
import { listRestoresWaitingForApproval } from '../client/restoreCommands';
import { connectClient } from '../client/connect';
import { startWorkflow } from '../client/workflows';
import { staticMetadata } from '../common/summaries';
import * as workflowExports from '../workflows';
import { WORKER_ROLES, roleQueue } from '../common/roles';
import { BACKUP_ID, RESTORE_TARGET, VAULT_DR_SEARCH_ATTRIBUTES, VAULT_DR_STEP, WAITING_FOR, WAITING_FOR_APPROVAL_QUERY } from '../common/searchAttributes';
import type { RestoreRecord } from '../common/restore';
import type { DeliveryReport } from '../common/alertTest';
import { dataConverter, EncryptionCodec, FAILURE_CONVERTER_PATH, ensureKeyringFile, loadKeyring } from '../infra/temporal/codec';
import { ConfigSchema, type Config } from '../infra/config';
import { toolPaths } from '../stack/tools';
import { workflowsPath } from '../workers/worker';
import type { ConfigureResult, MonitorStatus } from '../workflows/monitoring/vaultHealthMonitor';
import type { RestoreProgress } from '../workflows/restore/restoreVault';
import { plan, restoreStubs, type Stubs } from './helpers/timeSkipping';
import { quietRuntime } from './helpers/worker';

describe('operator surfaces: search attributes, static summaries, validated updates and signals (dev server)', function () {
  this.timeout(300_000);
  let env: TestWorkflowEnvironment;
  let bundle: WorkflowBundleWithSourceMap;
  let keysFile: string;
  let dir: string;
  let client: Client;
  let n = 0;

  before(async () => {
    quietRuntime();
    env = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: toolPaths().temporal }, searchAttributes: VAULT_DR_SEARCH_ATTRIBUTES, log: { format: 'pretty', level: 'error' } },
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-surfaces-'));
    keysFile = path.join(dir, 'codec-keys.json');
    ensureKeyringFile(keysFile);
    bundle = await bundleWorkflowCode({ workflowsPath: workflowsPath(), failureConverterPath: FAILURE_CONVERTER_PATH, logger: new DefaultLogger('ERROR') });
  });
  after(async () => {
    await client?.connection.close();
    await env?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const cfgFor = (taskQueue: string): Config => ConfigSchema.parse({ temporal: { address: env.address, taskQueue }, codec: { keysFile }, vault: { tokenFile: path.join(dir, 'unused-token') } }) as Config;

  /** Workers with the codec (as the real ones), the workflows on the base queue and `stubs` on every activity role's queue. */
  async function withWorkers<T>(stubs: Stubs, fn: (cfg: Config) => Promise<T>): Promise<T> {
    const taskQueue = `surfaces-${process.pid}-${++n}`;
    const cfg = cfgFor(taskQueue);
    client ??= await connectClient(cfg);
    const dc = dataConverter(new EncryptionCodec(loadKeyring(keysFile)));
    const workers = await Promise.all(
      WORKER_ROLES.map((role) =>
        Worker.create({ connection: env.nativeConnection, taskQueue: roleQueue(taskQueue, role), dataConverter: dc, ...(role === 'workflows' ? { workflowBundle: bundle } : { activities: stubs }) }),
      ),
    );
    return workers.reduce<Promise<T>>((inner, w) => w.runUntil(inner), fn(cfg));
  }

  async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < 300; i++) {
      const v = await probe();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`never: ${what}`);
  }
  const waitingIds = async (taskQueue: string) => (await listRestoresWaitingForApproval(client)).filter((r) => r.workflowId.includes(taskQueue)).map((r) => r.workflowId);

  it('a production restore waiting for approval is found by the one list query, with its step, backup and target, and not after approval', async () => {
    const alerts: AlertRequest[] = [];
    const records: RestoreRecord[] = [];
    await withWorkers(restoreStubs(alerts, records), async (cfg) => {
      const workflowId = `restoreVault-${cfg.temporal.taskQueue}`;
      await startWorkflow(cfg, 'restoreVault', { backupId: plan.backupId, target: 'production', reason: 'incident 42', requestedBy: 'Alice' }, { wait: false, workflowId });
      const h = client.workflow.getHandle(workflowId);
      await until('awaitApproval', async () => ((await h.query<RestoreProgress>('progress')).step === 'awaitApproval' ? true : undefined));
      // Visibility is eventually consistent: the list catches up within a moment.
      const listed = await until('listed as waiting for approval', async () => ((await waitingIds(cfg.temporal.taskQueue)).includes(workflowId) ? true : undefined));
      assert.ok(listed);
      const rows = (await listRestoresWaitingForApproval(client)).filter((r) => r.workflowId === workflowId);
      assert.deepEqual(rows.map((r) => [r.backupId, r.target, r.step]), [[plan.backupId, 'production', 'awaitApproval']]);
      // The raw query the Web UI runs finds it too.
      const raw: string[] = [];
      for await (const w of client.workflow.list({ query: `${WAITING_FOR_APPROVAL_QUERY} AND WorkflowId = '${workflowId}'` })) raw.push(w.workflowId);
      assert.deepEqual(raw, [workflowId]);
      // A static summary the list view shows without the codec's help to the reader.
      const desc = await h.describe();
      assert.equal(await desc.staticSummary(), `Production restore of ${plan.backupId}, needs approval`);
      assert.match((await desc.staticDetails()) ?? '', /\*\*Requested by\*\*: Alice/);

      await h.executeUpdate('approveRestore', { args: [{ approve: true, who: 'Bob', why: 'incident 42' }] });
      await h.result();
      await until('no longer listed', async () => ((await waitingIds(cfg.temporal.taskQueue)).includes(workflowId) ? undefined : true));
      // The restoreSnapshot activity carries a summary on the timeline (user metadata, through the codec).
      const scheduled = ((await h.fetchHistory()).events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'restoreSnapshot');
      assert.equal(scheduled.length, 1);
      const summary = scheduled[0]!.userMetadata?.summary;
      assert.ok(summary, 'restoreSnapshot has a summary');
      const [decoded] = await new EncryptionCodec(loadKeyring(keysFile)).decode([summary as never]);
      assert.equal(JSON.parse(Buffer.from(decoded!.data!).toString()), `Restore ${plan.backupId} into production`);
      const sa = (await h.describe()).typedSearchAttributes;
      assert.equal(sa.get(VAULT_DR_STEP), 'done');
      assert.equal(sa.get(WAITING_FOR), undefined, 'WaitingFor cleared after the wait');
      assert.equal(sa.get(BACKUP_ID), plan.backupId);
      assert.equal(sa.get(RESTORE_TARGET), 'production');
    });
  });

  it('every workflow the CLI starts carries a static summary and sets VaultDrStep', async () => {
    const stubs: Stubs = {
      async checkBackupBucket() {
        return undefined as never;
      },
      async sendTestAlert() {
        return { ok: true, detail: 'sent' } as never;
      },
    };
    await withWorkers(stubs, async (cfg) => {
      const workflowId = `alertDeliveryTest-${cfg.temporal.taskQueue}`;
      await startWorkflow(cfg, 'alertDeliveryTest', { confirm: 'ack', channels: ['email'], severities: ['warning'], ackTimeoutSeconds: 60 }, { wait: false, workflowId });
      const h = client.workflow.getHandle(workflowId);
      assert.equal(await (await h.describe()).staticSummary(), 'Alert delivery test (confirm by ack)');
      await until('confirming receipt', async () => ((await h.describe()).typedSearchAttributes.get(VAULT_DR_STEP) === 'confirming receipt' ? true : undefined));
      // A malformed ack (a hand-typed one in the Web UI) is ignored, not a confirmation; a good one confirms.
      await h.signal('ack', { channel: 'email', severity: 'urgent' });
      await h.signal('ack', { channel: 'email', by: { name: 'Mallory' } });
      await h.signal('ack', { channel: 'email', by: 'Carol' });
      const r = (await h.result()) as DeliveryReport;
      assert.equal(r.ok, true);
      assert.equal(r.rows[0]?.confirmDetail, 'acknowledged by Carol');
    });
  });

  it('a run started without a summary (the Web UI with `{}`) says what it is for and its step in its current details', async () => {
    // Every registered workflow has words of its own, not just its type name.
    for (const name of Object.keys(workflowExports)) assert.notEqual(staticMetadata(name, {}).staticSummary, name, `${name} has no summary in common/summaries.ts`);
    const stubs: Stubs = {
      async sendTestAlert() {
        return { ok: true, detail: 'sent' } as never;
      },
    };
    await withWorkers(stubs, async (cfg) => {
      const workflowId = `ui-started-${cfg.temporal.taskQueue}`;
      // As the Web UI starts it: no static summary, no details.
      const h = await client.workflow.start('alertDeliveryTest', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ confirm: 'ack', channels: ['email'], severities: ['warning'], ackTimeoutSeconds: 60 }] });
      assert.equal(await (await h.describe()).staticSummary(), undefined);
      const details = await until('current details with the step', async () => {
        const meta = (await h.query('__temporal_workflow_metadata')) as { currentDetails?: string };
        return meta.currentDetails?.includes('**Step**: confirming receipt') ? meta.currentDetails : undefined;
      });
      assert.match(details, /^\*\*Alert delivery test \(confirm by ack\)\*\*/);
      assert.match(details, /docs\/runbooks\/monitoring\.md/);
      await h.terminate('test done');
    });
  });

  it("the monitor's configure update rejects a bad value with the validator's message and accepts a good one", async () => {
    const stubs: Stubs & Record<string, unknown> = {
      async collectMonitorFacts() {
        throw ApplicationFailure.nonRetryable('no facts in this test', 'TestOnly');
      },
      async sendAlert() {
        return { sent: true, channels: [], dedupRecord: 'written' as const };
      },
    };
    await withWorkers(stubs, async (cfg) => {
      const h: WorkflowHandle = await client.workflow.start('vaultHealthMonitor', { taskQueue: cfg.temporal.taskQueue, workflowId: `monitor-${cfg.temporal.taskQueue}`, args: [{ intervalSeconds: 60 }] });
      try {
        const err = await h.executeUpdate('configure', { args: [{ intervalSeconds: 0 }] }).then(() => assert.fail('accepted intervalSeconds 0'), (e: unknown) => e);
        assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
        assert.match(err.cause?.message ?? '', /configure: .*field "intervalSeconds"/);
        const bad = await h.executeUpdate('configure', { args: [{ carried: { open: {}, checks: 0 } }] }).then(() => assert.fail('accepted carried'), (e: unknown) => e);
        assert.match((bad as WorkflowUpdateFailedError).cause?.message ?? '', /"carried" is not a setting/);
        const ok = await h.executeUpdate<ConfigureResult, [Record<string, number>]>('configure', { args: [{ intervalSeconds: 120, backupMaxAgeHours: 30 }] });
        assert.deepEqual(ok.changed, ['intervalSeconds 60 → 120', 'backupMaxAgeHours 26 → 30']);
        const s = await h.query<MonitorStatus>('status');
        assert.equal(s.settings.intervalSeconds, 120);
        assert.equal(s.log.filter((l) => l.event === 'settings rejected').length, 0, 'a rejected update leaves no trace');
        assert.equal((await h.describe()).typedSearchAttributes.get(VAULT_DR_STEP), 'monitoring');
      } finally {
        await h.terminate('test done').catch(() => undefined);
      }
    });
  });
});
