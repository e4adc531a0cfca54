// Test support: a real in-process vault-dr worker against the local stack, for one test's duration.
// It runs every role the config names (all by default: one Worker per role queue, derived from the
// test's unique base queue). The workflow bundle is built once per mocha run (about a second).
import { Runtime, DefaultLogger, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../../infra/temporal/codec';
import type { Config } from '../../infra/config';
import { buildWorker, workflowsPath, type Activities, type BuiltWorker } from '../../workers/worker';

let runtimeInstalled = false;
let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** Quiet logs in tests (expected workflow failures log at WARN); failures surface through assertions. Once per process. */
export function quietRuntime(): void {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    runtimeInstalled = true;
  }
}

export async function withWorker<T>(cfg: Config, fn: (built: BuiltWorker) => Promise<T>, wrapActivities?: (a: Activities) => Activities): Promise<T> {
  quietRuntime();
  bundle ??= bundleWorkflowCode({ workflowsPath: workflowsPath(), failureConverterPath: FAILURE_CONVERTER_PATH, logger: new DefaultLogger('ERROR') });
  const built = await buildWorker(cfg, { workflowBundle: await bundle }, wrapActivities);
  try {
    return await built.runUntil(fn(built));
  } finally {
    await built.connection.close();
  }
}
