// Typed starters: the CLI (and tests) start workflows through here so IDs, task queue and
// codec are set one way.
import { WorkflowFailedError } from '@temporalio/client';
import type { Config } from '../infra/config';
import type * as wfs from '../workflows';
import { connectClient } from './connect';
import { staticMetadata } from '../common/summaries';

type Workflows = typeof wfs;
export type WorkflowName = keyof Workflows;

export async function startWorkflow<N extends WorkflowName>(
  cfg: Config,
  name: N,
  input: Parameters<Workflows[N]>[0],
  opts: { wait: boolean; workflowId?: string; timeoutMs?: number },
): Promise<Awaited<ReturnType<Workflows[N]>>> {
  const client = await connectClient(cfg);
  try {
    const handle = await client.workflow.start(name, {
      taskQueue: cfg.temporal.taskQueue,
      workflowId: opts.workflowId ?? `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}`,
      args: [input] as never,
      workflowExecutionTimeout: opts.timeoutMs ? `${opts.timeoutMs}ms` : undefined,
      ...staticMetadata(name, input),
    });
    if (!opts.wait) return { workflowId: handle.workflowId } as never;
    try {
      return (await handle.result()) as never;
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const cause = err.cause as Error | undefined;
        throw new Error(`${name} ${handle.workflowId} failed: ${cause?.message ?? err.message}`);
      }
      throw err;
    }
  } finally {
    await client.connection.close();
  }
}
