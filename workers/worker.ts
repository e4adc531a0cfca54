// Builds a vault-dr worker from a parsed Config: real clients, every activity group, every
// workflow, and the payload codec. Shared by the `npm run worker` entry point and the tests.
import * as path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Config } from '../infra/config';
import { buildClients, type Clients } from '../infra/clients';
import { EncryptionCodec, loadKeyring } from '../infra/codec';
import { channelSecretStore, createActivities } from '../activities';
import { ShareIntake, type IntakeStatus } from '../infra/shareIntake';
import { connectClient } from '../client/connect';
import { temporalConnectError, temporalConnectionOptions } from '../infra/temporalConnection';

export interface BuiltWorker {
  worker: Worker;
  connection: NativeConnection;
  clients: Clients;
  /** Custodian shares submitted to this worker for restores (served by the codec endpoint). */
  intake: ShareIntake;
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

export type Activities = ReturnType<typeof createActivities>;

/**
 * `wrapActivities` lets a test wrap the real activities (e.g. hold one at a known point); the
 * production entry point never passes it.
 */
export async function buildWorker(cfg: Config, overrides: Partial<WorkerOptions> = {}, wrapActivities: (a: Activities) => Activities = (a) => a): Promise<BuiltWorker> {
  const clients = buildClients(cfg);
  const intake = new ShareIntake(signalSharesReady(cfg));
  const codec = new EncryptionCodec(loadKeyring(cfg.codec.keysFile));
  // Read the alert channels' secrets now: an alert about a sealed Vault must not be the first read.
  const channelSecrets = channelSecretStore(cfg, clients);
  void channelSecrets.get();
  const connectionOptions = temporalConnectionOptions(cfg);
  const connection = await NativeConnection.connect(connectionOptions).catch((err: unknown) => {
    throw temporalConnectError(cfg, err);
  });
  const worker = await Worker.create({
    connection,
    namespace: cfg.temporal.namespace,
    taskQueue: cfg.temporal.taskQueue,
    ...(overrides.workflowBundle ? {} : { workflowsPath: workflowsPath() }),
    activities: wrapActivities(createActivities(cfg, clients, intake, channelSecrets)),
    dataConverter: { payloadCodecs: [codec] },
    shutdownGraceTime: cfg.worker.shutdownGraceMs,
    ...overrides,
  });
  return { worker, connection, clients, intake };
}
