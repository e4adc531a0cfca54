// Test support: a real in-process vault-dr worker against the local stack, for one test's duration.
import { Runtime, DefaultLogger } from '@temporalio/worker';
import type { Config } from '../../infra/config';
import { buildWorker } from '../../workers/worker';

let runtimeInstalled = false;

export async function withWorker<T>(cfg: Config, fn: () => Promise<T>): Promise<T> {
  if (!runtimeInstalled) {
    // Quiet logs in tests (expected workflow failures log at WARN); failures surface through assertions.
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    runtimeInstalled = true;
  }
  const { worker, connection } = await buildWorker(cfg);
  try {
    return await worker.runUntil(fn());
  } finally {
    await connection.close();
  }
}
