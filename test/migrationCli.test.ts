// `vaultdr migration start` and `vaultdr migration approve-cutover` as an operator runs them (child
// processes of bin/vaultdr.js) against Temporal's time-skipping test server, with the real migrateVps
// workflow and typed stub activities (test/helpers/migrationStubs.ts; the real activities run on the
// local hosts in test/migrateVps.test.ts). Checked: the flags become the workflow's input, the
// approval the update's payload; a payload the validator refuses is one line and exit 2 and the
// migration goes on waiting; an approval lets it finish migrated, a refusal undoes it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { AlertRequest } from '../activities/notify/notify';
import type { MigrateResult } from '../common/migration';
import { EncryptionCodec, ensureKeyringFile, loadKeyring } from '../infra/temporal/codec';
import { vaultdrAsync } from './helpers/inspect';
import { FP, migrationStubs } from './helpers/migrationStubs';
import { timeSkipping, type TimeSkipping } from './helpers/timeSkipping';

describe('vaultdr migration start / approve-cutover (CLI, time-skipping server)', function () {
  this.timeout(180_000);
  let ts: TimeSkipping;
  let dir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-migration-cli-'));
    // The CLI always encrypts payloads: the test server's workers and client use the same keyring.
    const keysFile = path.join(dir, 'codec-keys.json');
    ensureKeyringFile(keysFile);
    ts = await timeSkipping({ codec: new EncryptionCodec(loadKeyring(keysFile)) });
    // A config of its own: the test server, the keyring and the one field the config insists on
    // (these commands never talk to Vault); everything else is the defaults.
    fs.writeFileSync(path.join(dir, 'vault-token'), 'not-used-by-these-commands', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'vaultdr.json'), JSON.stringify({ temporal: { address: ts.env.address }, codec: { keysFile }, vault: { tokenFile: path.join(dir, 'vault-token') } }));
  });
  after(async () => {
    await ts?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const cli = (tq: string, args: string[]) => vaultdrAsync(args, { VAULTDR_CONFIG: path.join(dir, 'vaultdr.json'), VAULTDR_TASK_QUEUE: tq });
  const waitForStep = async (h: WorkflowHandle, step: string) => {
    for (let i = 0; i < 400; i++) {
      if ((await h.query<{ step: string }>('progress').catch(() => undefined))?.step === step) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`never reached ${step}`);
  };
  /** Starts a migration with the CLI and returns its handle once it waits for the cutover. */
  const startWithCli = async (tq: string) => {
    const r = await cli(tq, ['--json', 'migration', 'start', '--new-host', '10.0.0.2', '--host-key', FP, '--secret-source', 'live', '--reason', 'CHG-7 move the mail VPS']);
    assert.equal(r.code, 0, r.stderr);
    const { workflowId } = JSON.parse(r.stdout) as { workflowId: string };
    assert.match(workflowId, /^migrateVps-/);
    const h = ts.env.client.workflow.getHandle(workflowId);
    await waitForStep(h, 'awaitCutover');
    return h;
  };

  it('start: the flags become the input; approve-cutover: a refused payload is exit 2 and changes nothing, an approval finishes the migration', async () => {
    const alerts: AlertRequest[] = [];
    const calls: string[] = [];
    await ts.withStubWorker(migrationStubs(alerts, calls), async (tq) => {
      const h = await startWithCli(tq);
      const started = (await h.fetchHistory()).events![0]!.workflowExecutionStartedEventAttributes!;
      const stored = started.input!.payloads![0]!;
      assert.equal(Buffer.from(stored.metadata!.encoding!).toString(), 'binary/encrypted', 'the CLI stores the input encrypted');
      const input = defaultPayloadConverter.fromPayload((await new EncryptionCodec(loadKeyring(path.join(dir, 'codec-keys.json'))).decode([stored as Payload]))[0]!) as Record<string, unknown>;
      assert.deepEqual(input, { newHost: { address: '10.0.0.2', hostKeySha256: FP }, secretSource: 'live', reason: 'CHG-7 move the mail VPS' });

      // An empty reason: the update's validator refuses it, the CLI says so in one line, exit 2.
      const bad = await cli(tq, ['migration', 'approve-cutover', h.workflowId, '--who', 'alice', '--why', ' ']);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr.trim(), /^.*rejected: approveCutover: .*why.*$/);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
      assert.equal((await h.query<{ step: string }>('progress')).step, 'awaitCutover', 'a refused update must leave the migration waiting');

      const ok = await cli(tq, ['migration', 'approve-cutover', h.workflowId, '--who', 'alice', '--why', 'CHG-7 window']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /approved/);
      const result = (await h.result()) as MigrateResult;
      assert.equal(result.status, 'migrated');
      assert.deepEqual({ who: result.cutover?.who, why: result.cutover?.why }, { who: 'alice', why: 'CHG-7 window' });
      assert.deepEqual(calls.filter((c) => c.startsWith('copyMailboxes')), ['copyMailboxes before cutover', 'copyMailboxes final sync after cutover']);
    });
  });

  it('approve-cutover --refuse: the migration ends CutoverRefused and its host changes are undone', async () => {
    const calls: string[] = [];
    await ts.withStubWorker(migrationStubs([], calls), async (tq) => {
      const h = await startWithCli(tq);
      const r = await cli(tq, ['--json', 'migration', 'approve-cutover', h.workflowId, '--who', 'bob', '--why', 'old host recovered', '--refuse']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { accepted: true, approve: false });
      await assert.rejects(h.result(), (e: Error & { cause?: { type?: string } }) => e.cause?.type === 'CutoverRefused');
      assert.deepEqual(calls.filter((c) => c.startsWith('restore')), ['restoreMailConfig', 'restoreSshKeys']);
    });
  });
});
