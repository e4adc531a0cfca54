// Named timeout/retry profiles for activities. Workflow-safe.
// Every profile lists the catalog's non-retryable types (common/errors.ts), so a failure of such a
// type is never retried, whichever way the code that raised it set its own flag.
import type { ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../common/errors';

const nonRetryableErrorTypes = [...NON_RETRYABLE_ERROR_TYPES];

/** Quick probes and metadata calls. */
export const SHORT_IO: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 3, nonRetryableErrorTypes },
};

/** Streaming transfers (snapshot → S3, S3 → verify): heartbeat so a dead worker is noticed fast. */
export const TRANSFER: ActivityOptions = {
  startToCloseTimeout: '4h',
  heartbeatTimeout: '20s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 8, nonRetryableErrorTypes },
};

/**
 * S3 metadata and small objects; rides out a store restart of a few minutes. The activities
 * heartbeat (withHeartbeats), so a killed worker costs 20 s, not the 2 min timeout: the chaos
 * campaign found a backup killed during ensureBackupBucket taking 123 s.
 */
export const STORE_IO: ActivityOptions = {
  startToCloseTimeout: '2m',
  heartbeatTimeout: '20s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10, nonRetryableErrorTypes },
};

/** Alerts: keep trying for a while, each attempt bounded. */
export const ALERT: ActivityOptions = {
  startToCloseTimeout: '1m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 6, nonRetryableErrorTypes },
};

/** Staging server steps (start, unseal, check, tear down): heartbeat, so a killed worker costs 20 s, not the 5 min timeout. */
export const STAGING: ActivityOptions = {
  startToCloseTimeout: '5m',
  heartbeatTimeout: '20s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10, nonRetryableErrorTypes },
};

/**
 * Failover drill steps (a round, a heal): minutes long, heartbeating, so a worker killed mid-round
 * is noticed in 20 s and the retry heals the fault it left before anything else.
 */
export const DRILL: ActivityOptions = {
  startToCloseTimeout: '35m',
  heartbeatTimeout: '20s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 4, nonRetryableErrorTypes },
};

/**
 * Tenant notices: one tenant per activity, retried for about an hour (a relay outage must not
 * lose a legally due notice; each attempt is short, the record in S3 stops a second send).
 */
export const NOTICE: ActivityOptions = {
  startToCloseTimeout: '1m',
  retry: { initialInterval: '10s', backoffCoefficient: 2, maximumInterval: '10m', maximumAttempts: 10, nonRetryableErrorTypes },
};

/**
 * Migration steps over SSH and SMTP: heartbeat (a killed worker costs 30 s), a few attempts (an
 * unreachable host is retried, a refused key or a wrong password is not: catalog types).
 */
export const MIGRATION: ActivityOptions = {
  startToCloseTimeout: '5m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '20s', maximumAttempts: 3, nonRetryableErrorTypes },
};
