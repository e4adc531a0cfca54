// Records the workflow histories that test/replay.test.ts replays: `npm run build && node
// lib/test/saveHistories.js` against the running local stack. Run it (and commit the files) when
// a workflow changes on purpose, from the code that is already deployed, so the replay test
// checks that the new code can still replay what is running. Payloads are stored decoded (the
// codec key is per stack); workflow payloads carry ids and paths, never secret values.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { connectClient } from '../client/connect';
import { EncryptionCodec, loadKeyring } from '../infra/temporal/codec';
import { readTokensFile } from '../infra/temporal/codecServer';
import { createShareIntakeServer } from '../infra/vault/shareIntake';
import type { Config } from '../infra/config';
import { restartStaging, startStaging, stopStaging, unsealWithShares } from '../infra/vault/stagingVault';
import { stackDir } from '../stack/stack';
import { toolPaths } from '../stack/tools';
import type { MonitorStatus } from '../workflows/monitoring/vaultHealthMonitor';
import type { RestoreProgress } from '../workflows/restore/restoreVault';
import { historyPayloads, stackSecrets, vaultdrAsync } from './helpers/inspect';
import { haDir } from '../stack/ha/proc';
import { monitorFile } from '../stack/ha/postgres';
import { ensureStack, PROJECT_ROOT, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';

export const HISTORY_DIR = path.join(PROJECT_ROOT, 'test', 'histories');

/**
 * Saves one run's history as binary protobuf (what the replayer reads without a JSON
 * conversion; the SDK's JSON path trips over duplicate protobufjs copies in node_modules), with
 * its payloads decoded, plus a readable event list next to it for review.
 */
export async function saveDecoded(client: Client, cfg: Config, h: WorkflowHandle, name: string, runId?: string): Promise<void> {
  const history = await client.workflow.getHandle(h.workflowId, runId).fetchHistory();
  const payloads = historyPayloads(history.events);
  const decoded = await new EncryptionCodec(loadKeyring(cfg.codec.keysFile)).decode(payloads);
  payloads.forEach((p, i) => {
    p.metadata = decoded[i]!.metadata;
    p.data = decoded[i]!.data;
  });
  const texts = payloads.map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8'));
  for (const secret of stackSecrets()) {
    if (texts.some((t) => t.includes(secret.value))) throw new Error(`${name}: the history holds the stack secret ${secret.name}; not saved`);
  }
  fs.mkdirSync(HISTORY_DIR, { recursive: true });
  fs.writeFileSync(path.join(HISTORY_DIR, `${name}.binpb`), temporal.api.history.v1.History.encode(history).finish());
  const lines = (history.events ?? []).map((e) => {
    const type = temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType);
    const what =
      e.activityTaskScheduledEventAttributes?.activityType?.name ??
      e.workflowExecutionSignaledEventAttributes?.signalName ??
      e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name ??
      e.workflowExecutionStartedEventAttributes?.workflowType?.name ??
      '';
    return `${String(e.eventId)} ${type}${what ? ` ${what}` : ''}`;
  });
  fs.writeFileSync(path.join(HISTORY_DIR, `${name}.events.txt`), lines.join('\n') + '\n');
  process.stdout.write(`saved ${name} (${lines.length} events, ${payloads.length} payloads decoded)\n`);
}

async function untilStep(h: WorkflowHandle, step: string): Promise<void> {
  for (const deadline = Date.now() + 120_000; ; await new Promise((r) => setTimeout(r, 250))) {
    const p = await h.query<RestoreProgress>('progress');
    if (p.step === step) return;
    if (p.step === 'failed' || Date.now() > deadline) throw new Error(`${h.workflowId} never reached ${step}: ${p.step} ${p.error ?? ''}`);
  }
}

/** Runs `fn` with the worker's share intake served on a loopback listener of its own (as the restore process does). */
async function withShareIntake(cfg: Config, fn: (endpoint: string) => Promise<void>): Promise<void> {
  // The intake belongs to the worker that runs the restore: a worker of its own for this fixture.
  await withWorker(cfg, async ({ intake }) => {
    const server = createShareIntakeServer({ intake: intake!, tokens: readTokensFile(cfg.restore.shareIntakeTokensFile) });
    await new Promise<void>((res) => server.listen(18093, '127.0.0.1', res));
    try {
      await fn('http://127.0.0.1:18093');
    } finally {
      server.close();
    }
  });
}

/**
 * A production restore approved by a second person (two-person rule) into a throwaway OpenBao
 * playing production, which seals itself after the restore and is restarted and unsealed by hand.
 */
async function saveProductionRestore(client: Client, cfg: Config, stamp: number): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-history-prod-'));
  const target = await startStaging({ root, stagingId: 'prod-target', baoBinary: toolPaths().bao });
  try {
    const tokenFile = path.join(root, 'target-token');
    fs.writeFileSync(tokenFile, (JSON.parse(fs.readFileSync(path.join(target.dir, 'init.json'), 'utf8')) as { root_token: string }).root_token, { mode: 0o600 });
    const prodCfg: Config = { ...cfg, restore: { ...cfg.restore, productionAddress: target.address, productionTokenFile: tokenFile } };
    await withWorker(prodCfg, async () => {
      const h = await client.workflow.start('restoreVault', {
        taskQueue: cfg.temporal.taskQueue,
        workflowId: `history-restore-prod-${stamp}`,
        args: [{ backupId: 'latest', target: 'production', requestedBy: 'oncall-a', reason: 'replay fixture: production' }],
      });
      await untilStep(h, 'awaitApproval');
      await h.executeUpdate('approveRestore', { args: [{ approve: true, who: 'oncall-b', why: 'replay fixture', allowOlderSnapshot: true }] });
      await untilStep(h, 'awaitTargetUnsealed');
      const restarted = await restartStaging(target);
      const shares = (JSON.parse(fs.readFileSync(path.join(stackDir(), 'openbao', 'init.json'), 'utf8')) as { keys_base64: string[] }).keys_base64;
      await unsealWithShares(restarted.address, shares.slice(0, 3));
      await h.result();
      await saveDecoded(client, cfg, h, 'restoreVault-production-approved');
    });
  } finally {
    await stopStaging(root, 'prod-target');
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/**
 * breachResponse: a full training incident (responders' updates and signals, notices to a tenant
 * in Mailpit; no rotation child, whose own fixtures belong to rotateCredential) and a refused input.
 */
export async function saveBreachResponse(client: Client, base: Config, stamp: number): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-history-breach-'));
  const tenantsFile = path.join(tmp, 'tenants.json');
  fs.writeFileSync(tenantsFile, JSON.stringify({ tenants: [{ id: 'fixture', name: 'Fixture Tenant', noticeEmail: 'dpo@fixture.test', secretPaths: ['secret/data/fixture/db'] }] }));
  const cfg = { ...base, incident: { ...base.incident, tenantsFile } };
  const tq = cfg.temporal.taskQueue;
  try {
    await withWorker(cfg, async () => {
      const h = await client.workflow.start('breachResponse', { taskQueue: tq, workflowId: `history-breach-${stamp}`, args: [{ training: true, credentialClasses: [], declaredBy: 'alice', summary: 'replay fixture' }] });
      const until = async (step: string) => {
        for (let i = 0; i < 300; i++) {
          const p = await h.query<{ step: string; notices?: { previewDigest: string } }>('progress');
          if (p.step === step) return p;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`breachResponse never reached ${step}`);
      };
      await until('awaitAcknowledgement');
      await h.executeUpdate('acknowledge', { args: [{ who: 'bob' }] });
      await until('awaitContainmentApproval');
      await h.signal('addFinding', { who: 'carol', finding: 'fixture finding' });
      await h.signal('note', { who: 'carol', text: 'fixture note' });
      await h.executeUpdate('approveContainment', { args: [{ who: 'bob', approve: true, why: 'fixture' }] });
      const p = await until('awaitNoticeApproval');
      await h.executeUpdate('approveNotice', { args: [{ who: 'dana', approve: true, previewDigest: p.notices!.previewDigest, why: 'fixture' }] });
      await until('awaitIncidentClose');
      await h.executeUpdate('closeIncident', { args: [{ who: 'bob', summary: 'fixture closed' }] });
      await h.result();
      await saveDecoded(client, cfg, h, 'breachResponse-training');
      const bad = await client.workflow.start('breachResponse', { taskQueue: tq, workflowId: `history-breach-bad-${stamp}`, args: [{ severity: 'sev9' } as never] });
      await bad.result().catch(() => undefined);
      await saveDecoded(client, cfg, bad, 'breachResponse-invalid-input');
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const cfg = withQueue(await ensureStack(), uniqueQueue('histories'));
  const client = await connectClient(cfg);
  const tq = cfg.temporal.taskQueue;
  const stamp = Date.now();
  // `node lib/test/saveHistories.js drillFinding ...`: record only these fixtures (all by default).
  const only = new Set(process.argv.slice(2));
  const want = (name: string) => !only.size || only.has(name);
  try {
    if (only.has('vaultHealthCheck-postgres')) {
      // Needs the HA harness (npm run ha:up; $VAULTDR_HA_DIR): the health check's PostgreSQL step with a real report.
      const haCfg = { ...cfg, ha: { ...cfg.ha, harnessDir: haDir(), postgresMonitorFile: monitorFile() } };
      await withWorker(haCfg, async () => {
        const h = await client.workflow.start('vaultHealthCheck', { taskQueue: tq, workflowId: `history-health-pg-${stamp}`, args: [{}] });
        await h.result();
        await saveDecoded(client, cfg, h, 'vaultHealthCheck-postgres');
      });
    }
    await withWorker(cfg, async () => {
      if (want('drillFinding')) {
        // A finding opened with {} (as from the Web UI), assigned, noted and resolved through its updates.
        const f = await client.workflow.start('drillFinding', { taskQueue: tq, workflowId: `history-finding-${stamp}`, args: [{}] });
        await f.executeUpdate('assign', { args: [{ owner: 'Bob', by: 'Alice' }] });
        await f.executeUpdate('note', { args: [{ by: 'Bob', text: 'replay fixture' }] });
        await f.executeUpdate('resolve', { args: [{ by: 'Bob', evidence: 'replay fixture' }] });
        await f.result();
        await saveDecoded(client, cfg, f, 'drillFinding');
      }
      if (want('failoverDrill')) {
        // A drill refused at its input (no HA harness needed): the failure path with its alert.
        const d = await client.workflow.start('failoverDrill', { taskQueue: tq, workflowId: `history-failover-bad-${stamp}`, args: [{ rounds: 0 }] });
        await d.result().catch(() => undefined);
        await saveDecoded(client, cfg, d, 'failoverDrill-invalid-input');
      }
      if (want('drDrill')) {
        // Refused at its input, and refused by its preconditions (the stack marks no target drillable): both failure paths with their alert.
        const bad = await client.workflow.start('drDrill', { taskQueue: tq, workflowId: `history-drdrill-bad-${stamp}`, args: [{ scenario: 'nope' } as never] });
        await bad.result().catch(() => undefined);
        await saveDecoded(client, cfg, bad, 'drDrill-invalid-input');
        const refused = await client.workflow.start('drDrill', { taskQueue: tq, workflowId: `history-drdrill-refused-${stamp}`, args: [{}] });
        await refused.result().catch(() => undefined);
        await saveDecoded(client, cfg, refused, 'drDrill-refused');
      }
      if (only.size) return;
      const health = await client.workflow.start('vaultHealthCheck', { taskQueue: tq, workflowId: `history-health-${stamp}`, args: [{}] });
      await health.result();
      await saveDecoded(client, cfg, health, 'vaultHealthCheck');

      const backup = await client.workflow.start('backupVault', { taskQueue: tq, workflowId: `history-backup-${stamp}`, args: [{ trigger: 'manual', prune: false }] });
      await backup.result();
      await saveDecoded(client, cfg, backup, 'backupVault');

      const restore = await client.workflow.start('restoreVault', { taskQueue: tq, workflowId: `history-restore-${stamp}`, args: [{ backupId: 'latest', target: 'staging', reason: 'replay fixture' }] });
      await restore.result();
      await saveDecoded(client, cfg, restore, 'restoreVault-staging');

      // A failure with an alert and a restore record: a manual restore of a backup id that does not exist.
      const missing = await client.workflow.start('restoreVault', { taskQueue: tq, workflowId: `history-restore-missing-${stamp}`, args: [{ backupId: '20000101T000000Z-00000000', reason: 'replay fixture: mistyped id' }] });
      await missing.result().catch(() => undefined);
      await saveDecoded(client, cfg, missing, 'restoreVault-failed-alert');

      const bad = await client.workflow.start('backupVault', { taskQueue: tq, workflowId: `history-backup-bad-${stamp}`, args: [{ trigger: 'nonsense' } as never] });
      await bad.result().catch(() => undefined);
      await saveDecoded(client, cfg, bad, 'backupVault-invalid-input');

      const adt = await client.workflow.start('alertDeliveryTest', { taskQueue: tq, workflowId: `history-adt-${stamp}`, args: [{ confirm: 'inbox', severities: ['warning'], channels: ['email', 'slack'], ackTimeoutSeconds: 60 }] });
      await adt.result();
      await saveDecoded(client, cfg, adt, 'alertDeliveryTest');

      // A monitor run with both signals and a continue-as-new: the first run's history ends in it.
      const mon = await client.workflow.start('vaultHealthMonitor', { taskQueue: tq, workflowId: `history-monitor-${stamp}`, args: [{ intervalSeconds: 1, checksPerRun: 4 }] });
      const status = () => client.workflow.getHandle(mon.workflowId).query<MonitorStatus>('status');
      await mon.signal('checkNow');
      await mon.signal('configure', { backupMaxAgeHours: 30 });
      const deadline = Date.now() + 60_000;
      while ((await status()).checks < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      await saveDecoded(client, cfg, mon, 'vaultHealthMonitor-continued', mon.firstExecutionRunId);
      await client.workflow.getHandle(mon.workflowId).terminate('fixture recorded');
    });
    if (only.size) return;
    await saveProductionRestore(client, cfg, stamp);
    await saveBreachResponse(client, cfg, stamp);
    // Custodian shares handed to the worker's intake (the codec endpoint), never through Temporal.
    await withShareIntake(cfg, async (endpoint) => {
      const h = await client.workflow.start('restoreVault', { taskQueue: tq, workflowId: `history-restore-shares-${stamp}`, args: [{ backupId: 'latest', keySource: 'custodian-shares', reason: 'replay fixture: shares' }] });
      await untilStep(h, 'awaitCustodianShares');
      for (const f of ['share-1-of-5.json', 'share-3-of-5.json', 'share-5-of-5.json']) {
        const r = await vaultdrAsync(['keys', 'submit-share', h.workflowId, path.join(stackDir(), 'keys', f), '--endpoint', endpoint]);
        if (r.code !== 0) throw new Error(`submit-share ${f}: ${r.stderr}`);
      }
      await h.result();
      await saveDecoded(client, cfg, h, 'restoreVault-custodian-shares');
    });
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
