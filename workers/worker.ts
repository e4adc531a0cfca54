// Builds a vault-dr worker process from a parsed Config: for each role in `worker.roles` one
// Temporal Worker on that role's task queue (workflows on the base queue, each activity role on
// `<base>-<role>`), all sharing one connection. Only the clients and secrets of those roles are
// built or read (workers/roles.ts). Shared by the `npm run worker` entry point and the tests.
import * as path from 'node:path';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../infra/config';
import type { BaoClient } from '../infra/vault/bao';
import { buildBaoClient, buildMailTransport, buildS3Client, type MailTransport } from '../infra/clients';
import { dataConverter, EncryptionCodec, loadKeyring } from '../infra/temporal/codec';
import { backupRoleActivities, channelSecretStore, migrationRoleActivities, notifyRoleActivities, restoreRoleActivities, type createActivities } from '../activities';
import { ShareIntake, type IntakeStatus } from '../infra/vault/shareIntake';
import { connectClient } from '../client/connect';
import { roleQueue, type WorkerRole } from '../common/roles';
import { normaliseRoles, scopeConfig } from './roles';
import { temporalConnectError, temporalConnectionOptions } from '../infra/temporal/connection';
import { prebuiltBundle } from './workflowBundle';

export interface RoleWorker {
  role: WorkerRole;
  taskQueue: string;
  worker: Worker;
}

export interface BuiltWorker {
  /** The config as this process sees it: secrets of roles it does not run are removed. */
  cfg: Config;
  roles: WorkerRole[];
  workers: RoleWorker[];
  connection: NativeConnection;
  /** The clients the roles built (a backup-only process has no mail transport, a restore-only one no Vault client). */
  clients: { bao?: BaoClient; s3?: S3Client; mail?: MailTransport };
  /** Custodian shares submitted to this process for restores (restore role only; served by its own listener). */
  intake?: ShareIntake;
  /** Runs every role's worker until a shutdown signal (or until one fails, which stops the others). */
  run(): Promise<void>;
  /** Runs every role's worker until `p` settles, then drains them; returns `p`'s result. */
  runUntil<T>(p: Promise<T>): Promise<T>;
}

/** Tells a waiting restore that its custodian shares are complete (counts only, never shares). */
function signalSharesReady(cfg: Config) {
  return async (workflowId: string, status: IntakeStatus) => {
    const client = await connectClient(cfg);
    try {
      await client.workflow.getHandle(workflowId).signal('custodianSharesReady', { received: status.received, threshold: status.threshold, keyId: status.keyId });
    } finally {
      await client.connection.close();
    }
  };
}

export function workflowsPath(): string {
  return path.join(__dirname, '..', 'workflows', 'index.js');
}

/**
 * The workflows role's code: the bundle built with the code when it is current (workers/workflowBundle.ts),
 * else bundled at start-up from `workflowsPath` (slower, and a start-up peak the process keeps).
 */
function workflowCode(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const pre = prebuiltBundle();
  if ('codePath' in pre) return { workflowBundle: { codePath: pre.codePath } };
  Runtime.instance().logger.info(`bundling the workflow code at start-up: ${pre.reason}`);
  return { workflowsPath: workflowsPath() };
}

/** Every activity, as tests see them through `wrapActivities` (a process registers only its roles' part). */
export type Activities = ReturnType<typeof createActivities>;

function stopAll(workers: RoleWorker[]): void {
  for (const { worker } of workers) {
    if (worker.getState() === 'RUNNING') {
      try {
        worker.shutdown();
      } catch {
        // Already stopping: nothing to do.
      }
    }
  }
}

async function runAll(workers: RoleWorker[]): Promise<void> {
  const results = await Promise.allSettled(
    workers.map(({ worker }) =>
      worker.run().catch((err: unknown) => {
        // One role failing must not leave the process half up, polling for some roles only.
        stopAll(workers);
        throw err;
      }),
    ),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * `wrapActivities` lets a test wrap the real activities (e.g. hold one at a known point); the
 * production entry point never passes it. `overrides` apply to every role's Worker.
 */
export async function buildWorker(fullCfg: Config, overrides: Partial<WorkerOptions> = {}, wrapActivities: (a: Activities) => Activities = (a) => a): Promise<BuiltWorker> {
  const roles = normaliseRoles(fullCfg.worker.roles);
  const { cfg } = scopeConfig(fullCfg, roles);
  const has = (r: WorkerRole) => roles.includes(r);
  const needsVault = has('backup') || has('notify');
  const needsS3 = has('backup') || has('restore') || has('notify');
  const clients: BuiltWorker['clients'] = {
    bao: needsVault ? buildBaoClient(cfg.vault) : undefined,
    s3: needsS3 ? buildS3Client(cfg.s3) : undefined,
    mail: has('notify') ? buildMailTransport(cfg.smtp) : undefined,
  };
  const intake = has('restore') ? new ShareIntake(signalSharesReady(cfg)) : undefined;

  const byRole: Partial<Record<WorkerRole, Record<string, unknown>>> = {};
  if (has('backup')) byRole.backup = backupRoleActivities(cfg, { bao: clients.bao!, s3: clients.s3! });
  if (has('restore')) byRole.restore = restoreRoleActivities(cfg, { s3: clients.s3! }, intake);
  if (has('notify')) {
    // Read the alert channels' secrets now: an alert about a sealed Vault must not be the first read.
    const channelSecrets = channelSecretStore(cfg, clients.bao!);
    void channelSecrets.get();
    byRole.notify = notifyRoleActivities(cfg, { mail: clients.mail!, s3: clients.s3!, bao: clients.bao! }, channelSecrets);
  }
  if (has('migration')) byRole.migration = migrationRoleActivities(cfg);
  // A test wraps all activities at once; each role's Worker then registers its own names from the result.
  const wrapped = wrapActivities(Object.assign({}, ...Object.values(byRole)) as Activities) as unknown as Record<string, unknown>;

  const codec = new EncryptionCodec(loadKeyring(cfg.codec.keysFile));
  const connection = await NativeConnection.connect(temporalConnectionOptions(cfg)).catch((err: unknown) => {
    throw temporalConnectError(cfg, err);
  });
  // Activity-only Workers must not get the workflow bundle a test passes for the workflows role.
  const activityOverrides = Object.fromEntries(Object.entries(overrides).filter(([k]) => k !== 'workflowBundle' && k !== 'workflowsPath'));
  const workers: RoleWorker[] = [];
  try {
    for (const role of roles) {
      const taskQueue = roleQueue(cfg.temporal.taskQueue, role);
      const common = { connection, namespace: cfg.temporal.namespace, taskQueue, dataConverter: dataConverter(codec), shutdownGraceTime: cfg.worker.shutdownGraceMs };
      const worker =
        role === 'workflows'
          ? await Worker.create({ ...common, ...(overrides.workflowBundle || overrides.workflowsPath ? {} : workflowCode()), ...overrides })
          : await Worker.create({ ...common, activities: Object.fromEntries(Object.keys(byRole[role]!).map((name) => [name, wrapped[name]])), ...activityOverrides });
      workers.push({ role, taskQueue, worker });
    }
  } catch (err) {
    await connection.close();
    throw err;
  }
  return {
    cfg,
    roles,
    workers,
    connection,
    clients,
    intake,
    run: () => runAll(workers),
    async runUntil<T>(p: Promise<T>): Promise<T> {
      const running = runAll(workers);
      // If the workers fail first, `p` may still reject later: that is not an unhandled rejection.
      p.catch(() => undefined);
      try {
        return await Promise.race([p, running.then(() => Promise.reject(new Error('the workers stopped before the work they were running for finished')))]);
      } finally {
        stopAll(workers);
        await running.catch(() => undefined);
      }
    },
  };
}
