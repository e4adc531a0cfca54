// Routes activities to the queue of the worker role that holds their secrets. The role queue is
// derived from the workflow's own task queue, so a workflow started on a test's unique queue gets
// unique role queues too, and no schedule or input has to name them.
import { inWorkflowContext, workflowInfo } from '@temporalio/workflow';
import { roleQueue, type ActivityRole } from '../common/roles';

/**
 * The role's queue for `proxyActivities` options. Workflow modules are evaluated per execution
 * inside the worker, so `workflowInfo()` is there; the CLI also imports them (for signal and
 * update definitions), where no activity is ever scheduled and the queue is left unset.
 */
export function activityQueue(role: ActivityRole): string | undefined {
  return inWorkflowContext() ? roleQueue(workflowInfo().taskQueue, role) : undefined;
}
