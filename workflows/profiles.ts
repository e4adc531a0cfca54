// Named timeout/retry profiles for activities. Workflow-safe.
import type { ActivityOptions } from '@temporalio/workflow';

/** Quick probes and metadata calls. */
export const SHORT_IO: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 3, nonRetryableErrorTypes: ['InvalidInput', 'ConfigInvalid'] },
};
