// Test support: Temporal's time-skipping test server (the binary the stack tools install) with the
// real workflow bundle, and workers serving typed stub activities on a queue of their own.
import type { PayloadCodec } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { BackupActivities } from '../../activities/backup/backup';
import type { AlertRequest, NotifyActivities } from '../../activities/notify/notify';
import type { ProductionPlan, RestoreActivities } from '../../activities/restore/restore';
import type { RestoreRecord } from '../../common/restore';
import type { FindingActivities } from '../../activities/drills/findings';
import { toolPaths } from '../../stack/tools';
import { workflowsPath } from '../../workers/worker';
import { quietRuntime } from './worker';
import { WORKER_ROLES, roleQueue } from '../../common/roles';
import { VAULT_DR_SEARCH_ATTRIBUTES } from '../../common/searchAttributes';
import { temporal } from '@temporalio/proto';

/** Stub activities; their names are the real activities' names, so the real workflows call them. */
export type Stubs = Partial<RestoreActivities & BackupActivities & NotifyActivities & FindingActivities>;

export interface TimeSkipping {
  env: TestWorkflowEnvironment;
  /** Runs `fn` with a worker serving `activities` on a fresh task queue. */
  withStubWorker<T>(activities: Stubs, fn: (taskQueue: string) => Promise<T>): Promise<T>;
  teardown(): Promise<void>;
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
let queues = 0;

/** `codec`: payloads encrypted as the CLI and the real workers do (tests that drive the CLI need it). */
export async function timeSkipping(opts: { codec?: PayloadCodec } = {}): Promise<TimeSkipping> {
  quietRuntime();
  const dataConverter = opts.codec ? { payloadCodecs: [opts.codec] } : undefined;
  const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: toolPaths().temporalTestServer } }, ...(dataConverter ? { client: { dataConverter } } : {}) });
  // The workflows upsert vault-dr's search attributes: an unregistered one would fail their tasks.
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(VAULT_DR_SEARCH_ATTRIBUTES.map((k) => [k.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
  });
  bundle ??= bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: new DefaultLogger('ERROR') });
  const workflowBundle = await bundle;
  return {
    env,
    async withStubWorker<T>(activities: Stubs, fn: (taskQueue: string) => Promise<T>): Promise<T> {
      const taskQueue = `stubs-${process.pid}-${++queues}`;
      // Workflows on the base queue, the stubs on every activity role's queue (as the roles route them).
      const workers = await Promise.all(
        WORKER_ROLES.map((role) => Worker.create({ connection: env.nativeConnection, taskQueue: roleQueue(taskQueue, role), ...(dataConverter ? { dataConverter } : {}), ...(role === 'workflows' ? { workflowBundle } : { activities }) })),
      );
      return workers.reduce<Promise<T>>((inner, worker) => worker.runUntil(inner), fn(taskQueue));
    },
    teardown: () => env.teardown(),
  };
}

/** The plan of the stub production restore: same cluster, newer backup. */
export const plan: ProductionPlan = {
  targetAddress: 'https://vault.prod.example:8200',
  targetInitialized: true,
  targetSealed: false,
  targetClusterId: 'c-prod',
  targetRaftIndex: 100,
  backupId: '20261201T020000Z-0123abcd',
  backupRaftIndex: 120,
  backupClusterId: 'c-prod',
  backupCreatedAt: '2026-12-01T02:00:00.000Z',
  older: false,
  sameCluster: true,
};

/** Stub activities of a restore that reaches every wait, recording alerts and restore records; `over` replaces some. */
export function restoreStubs(alerts: AlertRequest[], records: RestoreRecord[], over: Stubs = {}): Stubs {
  return {
    async selectBackup() {
      return { backupId: plan.backupId, createdAt: plan.backupCreatedAt, raftIndex: 120, objectBytes: 1000, canary: { path: 'secret/data/vault-dr/canary', marker: 'm' } };
    },
    async verifyBackupBeforeRestore() {
      return { plaintextBytes: 10, raftIndex: 120, checks: [] };
    },
    async planProductionRestore() {
      return plan;
    },
    async restoreSnapshot() {
      return { bytes: 10 };
    },
    async pollTargetUnsealed() {
      return { done: true, detail: 'unsealed' };
    },
    async verifyRestoredSecrets() {
      return { canary: { path: 'secret/data/vault-dr/canary', expected: 'm', found: 'm', matches: true }, readable: [], unreadable: [] };
    },
    async startStagingVault(req) {
      return { stagingId: req.stagingId, address: 'http://127.0.0.1:1' };
    },
    async unsealTarget() {
      return { threshold: 3 };
    },
    async teardownStaging() {
      return { result: 'stopped' as const };
    },
    async recordRestore(req) {
      records.push(req.record);
      return { key: `restores/history/${req.record.restoreId}.json` };
    },
    async sendAlert(req) {
      alerts.push(req);
      return { sent: true, channels: [], dedupRecord: 'written' as const };
    },
    ...over,
  };
}

/** Stub activities of a backup that succeeds, recording alerts and whether retention ran; `over` replaces some. */
export function backupStubs(alerts: AlertRequest[], over: Stubs = {}): { stubs: Stubs; pruned: () => boolean } {
  let pruned = false;
  const stubs: Stubs = {
    async checkBackupBucket() {
      return { compliant: true, differences: [] } as never;
    },
    async writeCanary() {
      return { path: 'secret/data/vault-dr/canary', marker: 'm', version: 1 };
    },
    async snapshotToStore() {
      return { manifestKey: 'm', objectKey: 'o', objectBytes: 1, objectSha256: 's', plaintextBytes: 1, raftIndex: 1, reusedEarlierAttempt: false };
    },
    async verifyUploadedBackup() {
      return { verifiedAt: '2026-12-01T02:00:00Z', objectSha256: 's' };
    },
    async pruneBackups() {
      pruned = true;
      return { deleted: [], kept: 3, unverified: [], damaged: [], legalHolds: 0 };
    },
    async sendAlert(req) {
      alerts.push(req);
      return { sent: true, channels: [], dedupRecord: 'written' as const };
    },
    ...over,
  };
  return { stubs, pruned: () => pruned };
}
