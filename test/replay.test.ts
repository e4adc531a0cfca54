// Replays recorded workflow histories (test/histories, recorded by test/saveHistories.ts) against
// the current workflow code: a change that would break workflows already running (a
// non-deterministic edit) fails here instead of in production. No Temporal server is needed.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../infra/temporal/codec';
import { workflowsPath } from '../workers/worker';
import * as workflowExports from '../workflows';
import { PROJECT_ROOT } from './helpers/stack';

const HISTORY_DIR = path.join(PROJECT_ROOT, 'test', 'histories');
const fixtures = fs.readdirSync(HISTORY_DIR).filter((f) => f.endsWith('.binpb')).sort();

describe('workflow replay of recorded histories', function () {
  this.timeout(120_000);
  let workflowBundle: WorkflowBundleWithSourceMap;
  before(async () => {
    workflowBundle = await bundleWorkflowCode({ workflowsPath: workflowsPath(), failureConverterPath: FAILURE_CONVERTER_PATH, logger: new DefaultLogger('ERROR') });
  });
  const load = (f: string) => temporal.api.history.v1.History.decode(fs.readFileSync(path.join(HISTORY_DIR, f)));

  it('has a recorded history for every workflow type', () => {
    const types = new Set(fixtures.map((f) => load(f).events[0]!.workflowExecutionStartedEventAttributes!.workflowType!.name!));
    assert.deepEqual([...types].sort(), Object.keys(workflowExports).sort());
  });

  for (const f of fixtures) {
    it(`replays ${f} without a determinism error`, async () => {
      // A workflow that names its children after its own id (migrateVps: `<id>-smtp`) replays under
      // the id it was recorded with, kept beside the history.
      const idFile = path.join(HISTORY_DIR, f.replace(/\.binpb$/, '.workflowId'));
      await Worker.runReplayHistory({ workflowBundle }, load(f), fs.existsSync(idFile) ? fs.readFileSync(idFile, 'utf8').trim() : f);
    });
  }

  it('fails on a history the code could not have produced (the check can fail)', async () => {
    const h = load('backupVault.binpb');
    const scheduled = h.events.find((e) => e.activityTaskScheduledEventAttributes)!.activityTaskScheduledEventAttributes!;
    assert.equal(scheduled.activityType!.name, 'checkBackupBucket');
    scheduled.activityType!.name = 'somethingElse';
    await assert.rejects(Worker.runReplayHistory({ workflowBundle }, h, 'tampered'), /[Nn]ondetermin|DeterminismViolation/);
  });
});
