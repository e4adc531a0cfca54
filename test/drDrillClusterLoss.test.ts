// The drDrill workflow's cluster-loss scenario against real servers: the HA harness (three OpenBao
// raft nodes behind HAProxy) as the drill cluster, a real Prometheus + Alertmanager with the
// committed rules and routing (test/helpers/drillMonitoring.ts), a real worker, the shared stack's
// Temporal, S3, Mailpit and its OpenBao (8200), whose verified backup is what gets restored.
// - automated, with a facilitator, its worker (a child process) SIGKILLed while every node is lost
//   and the drill waits for the alert; a new worker resumes it: every node SIGKILLed and its data removed, VaultHaQuorumLost
//   observed in Alertmanager (routed to the critical receiver: PagerDuty), a new empty cluster, the
//   child restoreVault on its production path approved through the real approveRestore update by the
//   facilitator (never the requester), the custodians' unseal with the backed-up cluster's shares,
//   the other two nodes joined, RTO/RPO measured, the drill cluster rebuilt to its normal state (the
//   other HA tests' assumptions checked: drill token writes through HAProxy, the worker AppRole,
//   metrics token, audit shipping under the new cluster name), the report stored and mailed; no
//   secret of either cluster in the drill's nor the restore's history;
// - refused before any fault when restore.productionAddress is not the drill cluster.
// VAULTDR_DRILL_REPORT_DIR=<dir>: also writes the report's .md/.html/.svg/.json there (docs/drills/)
// and saves the history as the replay fixture test/histories/drDrill-cluster-loss.
// Timings are never asserted (the report states them against the scenario's targets).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { Config } from '../infra/config';
import { buildS3Client } from '../infra/clients';
import type { BackupResult } from '../common/backup';
import type { DrDrillReport, DrDrillResult } from '../common/drillRun';
import type { RestoreRecord } from '../common/restore';
import { VaultHaDriver } from '../infra/ha/vaultDriver';
import { haUp } from '../stack/ha/index';
import { HAPROXY_VAULT_ADDR } from '../stack/ha/haproxy';
import { haDir } from '../stack/ha/proc';
import { drillTokenFile, harnessVaultEnv, metricsTokenFile, readInit, restoreTokenFile, VAULT_NODES, workerRoleIdFile, workerSecretIdFile } from '../stack/ha/vault';
import { haClusterName, shipperStatus } from '../stack/ha/auditShipper';
import { failureOf, historyTexts, mailpitMessages, stackSecrets } from './helpers/inspect';
import { ensureStack, PROJECT_ROOT, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';
import { startDrillMonitoring, type DrillMonitoring } from './helpers/drillMonitoring';
import { saveDecoded } from './saveHistories';
import type { DrDrillProgress } from '../workflows/drills/drDrill';
import { writeCommittedReport } from './helpers/drillReports';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WORKER = path.join(PROJECT_ROOT, 'lib', 'workers', 'main.js');
const haHealth = () => new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health();

async function waitHealthy(ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await haHealth()).healthy) {
    if (Date.now() > deadline) throw new Error(`HA cluster not healthy: ${(await haHealth()).problems.join('; ')}`);
    await sleep(500);
  }
}

/** Every secret the harness's custody files hold right now (both clusters' over a drill: polled). */
function harnessSecrets(): string[] {
  const out: string[] = [];
  try {
    const init = readInit();
    out.push(init.root_token, ...init.keys_base64);
  } catch {
    // between the loss and the new cluster's init there is none
  }
  for (const f of [drillTokenFile(), metricsTokenFile(), restoreTokenFile(), workerSecretIdFile()]) {
    try {
      const v = fs.readFileSync(f, 'utf8').trim();
      if (v) out.push(v);
    } catch {
      // not written (yet)
    }
  }
  return out;
}

describe('drDrill: cluster-loss on the HA harness (real Prometheus, Alertmanager, worker; the stack backup restored)', function () {
  this.timeout(900_000);
  let cfg: Config;
  let client: Client;
  let dir: string;
  let monitoring: DrillMonitoring | undefined;

  before(async () => {
    const base = await ensureStack();
    await haUp();
    await waitHealthy(60_000);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-drdrill-cl-'));
    monitoring = await startDrillMonitoring(dir);
    cfg = {
      ...withQueue(base, uniqueQueue('drdrill-cl')),
      ha: { harnessDir: haDir(), vaultAddress: HAPROXY_VAULT_ADDR },
      drills: { ...base.drills, drillableTargets: ['ha-vault'], alertmanagerUrl: monitoring.alertmanagerUrl, distributionList: ['dr-drills@localhost'] },
      // The drill cluster stands in for production: the production restore goes to it, with the
      // token the drill's new cluster writes; the shares are the backed-up (stack) cluster's.
      restore: { ...base.restore, productionAddress: HAPROXY_VAULT_ADDR, productionTokenFile: restoreTokenFile() },
    };
    client = await connectClient(cfg);
  });
  after(async () => {
    await client?.connection.close();
    await monitoring?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const start = (id: string, input: unknown, c: Config = cfg) => client.workflow.start('drDrill', { taskQueue: c.temporal.taskQueue, workflowId: `${id}-${Date.now()}`, args: [input as never] });

  it('automated, its worker SIGKILLed while the cluster is lost: every node lost, VaultHaQuorumLost observed, the latest backup restored into a new cluster through the approved production path by a new worker, RTO/RPO measured, the drill cluster rebuilt, report stored and mailed', async () => {
    const clusterBefore = haClusterName();
    const seen = new Set<string>(harnessSecrets());
    // A verified backup of the stack's OpenBao, made now: the newest one is what the drill restores.
    const backup = (await withWorker(cfg, async () => (await client.workflow.start('backupVault', { taskQueue: cfg.temporal.taskQueue, workflowId: `drdrill-cl-src-${Date.now()}`, args: [{ prune: false }] })).result())) as BackupResult;
    // Both clusters' custody (the lost one's, the new empty one's, the rebuilt one's) as it is written.
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const v of harnessSecrets()) seen.add(v);
        await sleep(100);
      }
    })();
    // The first worker runs as operators run it (a child process, the test's config as its file), so it can be SIGKILLed.
    const file = path.join(dir, 'worker.json');
    fs.writeFileSync(file, JSON.stringify({ ...cfg, metrics: { listen: '' }, codec: { ...cfg.codec, listen: '127.0.0.1:18096' } }));
    let log = '';
    const child = spawn(process.execPath, [WORKER], { env: { ...process.env, VAULTDR_CONFIG: file }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    let h!: Awaited<ReturnType<typeof start>>;
    try {
      for (let i = 0; !/state: 'RUNNING'/.test(log); i++) {
        assert.ok(i < 600 && child.exitCode === null, `worker did not start:\n${log}`);
        await sleep(200);
      }
      h = await start('drdrill-cl', { scenario: 'cluster-loss', facilitator: 'Drill Facilitator', reason: 'cluster-loss drill test' });
      // Every node is lost and the drill waits for the alert: kill its worker there.
      for (let i = 0; ; i++) {
        const p = (await h.query('progress')) as DrDrillProgress;
        if (p.step === 'awaitDetection') break;
        assert.ok(i < 600 && p.step !== 'failed', `drill did not reach awaitDetection: ${JSON.stringify(p)}`);
        await sleep(100);
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    assert.equal(child.signalCode, 'SIGKILL');
    const down = await haHealth();
    assert.ok(!down.healthy && down.nodes.every((n) => n.role === 'down'), `every node down while no worker runs: ${down.problems.join('; ')}`);
    const { result, progress, history, restoreHistory, restore } = await withWorker(cfg, async () => {
      let result: DrDrillResult;
      try {
        result = (await h.result()) as DrDrillResult;
      } finally {
        watching = false;
        await watch;
      }
      if (process.env.VAULTDR_DRILL_REPORT_DIR) {
        await saveDecoded(client, cfg, h, 'drDrill-cluster-loss');
        // Its child restore is named after the drill's id: the replay runs under the recorded id.
        fs.writeFileSync(path.join(PROJECT_ROOT, 'test', 'histories', 'drDrill-cluster-loss.workflowId'), `${h.workflowId}\n`);
      }
      const restoreId = `${h.workflowId}-restore`;
      return {
        result,
        progress: (await h.query('progress')) as DrDrillProgress,
        history: await historyTexts(client, cfg, h.workflowId),
        restoreHistory: await historyTexts(client, cfg, restoreId),
        restore: (await client.workflow.getHandle(restoreId).result()) as RestoreRecord,
      };
    });

    // No secret of the lost, the new or the rebuilt cluster, nor of the stack (whose shares unsealed the restore), in either history.
    const secrets = [...seen, ...stackSecrets().map((x) => x.value)];
    assert.ok(seen.size >= 10, `the watch saw only ${seen.size} custody values`);
    for (const h of [history, restoreHistory]) {
      for (const secret of secrets) {
        assert.ok(!h.raw.includes(secret), 'a secret in the raw history');
        assert.ok(!h.decoded.some((d) => d.includes(secret)), 'a secret in a decoded payload');
      }
    }
    assert.deepEqual([...new Set(history.activityTypes)].sort(), ['awaitDrillAlert', 'buildEmptyCluster', 'checkClusterHealthy', 'checkClusterLossReady', 'checkDrillPreconditions', 'checkRestoredCluster', 'destroyDrillCluster', 'followDrillRestore', 'listFindingsToRetest', 'mailDrillReport', 'publishDrDrillReport', 'rebuildDrillCluster', 'unsealRestoredCluster']);
    assert.equal(progress.step, 'done');
    assert.deepEqual(progress.completed, ['checkDrillPreconditions', 'checkSteadyState', 'injectFault', 'awaitDetection', 'rebuildCluster', 'restoreLatestBackup', 'verifyRecovery', 'revertFault', 'writeReport']);

    // The production path of restoreVault, with the two-person rule: requested by the drill, approved by the facilitator.
    assert.deepEqual([...new Set(restoreHistory.activityTypes)].sort(), ['planProductionRestore', 'pollTargetUnsealed', 'recordRestore', 'restoreSnapshot', 'selectBackup', 'verifyBackupBeforeRestore', 'verifyRestoredSecrets']);
    assert.equal(restore.status, 'verified');
    assert.equal(restore.target, 'production');
    assert.equal(restore.checks!.canary.matches, true);
    assert.equal(restore.requestedBy, `drDrill ${result.drillId}`);
    assert.equal(restore.approval!.who, 'Drill Facilitator');
    // The newest verified backup at the steady-state check: the one made above, or a newer one another test made
    // before the fault; never one made after it (the stack's OpenBao, the backup source here, is not lost).
    assert.ok(restore.backupId >= backup.backupId, `${restore.backupId} is older than ${backup.backupId}`);

    // Detection: the quorum-loss alert, critical, so routed to PagerDuty (and Slack, e-mail).
    assert.equal(progress.alert?.observed, true, JSON.stringify(progress.alert));
    assert.equal(progress.alert?.alertname, 'VaultHaQuorumLost');
    assert.deepEqual(progress.alert?.receivers, ['critical']);
    assert.ok(result.detectMs! > 0);

    const s3 = buildS3Client(cfg.s3);
    const get = async (key: string) => (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: key }))).Body!.transformToString();
    const report = JSON.parse(await get(result.reportKeys!.json)) as DrDrillReport;
    assert.equal(report.scenario, 'cluster-loss');
    const faultAt = Date.parse(report.fault!.injectedAt);
    // RTO: fault → the restored secrets verified; RPO: fault − the restored snapshot's time.
    assert.equal(report.rtoMs, Date.parse(restore.finishedAt) - faultAt);
    assert.equal(report.rpoMs, faultAt - Date.parse(restore.snapshotCreatedAt));
    assert.ok(report.rpoMs! > 0, 'the restored snapshot predates the fault');
    assert.ok(report.rtoMs! > report.detectMs!, 'recovery starts after detection');
    assert.equal(report.restore?.backupId, restore.backupId);
    assert.equal(report.backup?.backupId, restore.backupId, 'the backup chosen at the steady-state check is the one restored');
    assert.equal(report.restore?.approvedBy, 'Drill Facilitator');
    // Every step before the report itself (whose own duration ends after it is written).
    assert.deepEqual(
      report.stepDurations!.map((d) => d.step),
      ['checkDrillPreconditions', 'checkSteadyState', 'injectFault', 'awaitDetection', 'rebuildCluster', 'restoreLatestBackup', 'verifyRecovery', 'revertFault'],
    );
    assert.deepEqual([...new Set(report.timeline.map((e) => e.kind))].filter((k) => k !== 'step').sort(), [...(report.findings.length ? ['finding'] : []), 'alert', 'confirm', 'fault', 'recovered', 'revert'].sort());
    const md = await get(result.reportKeys!.markdown);
    assert.match(md, /\| RTO \(fault → restored secrets verified\) \| \d+\.\d\d s \| 1 h \| within target \|/);
    assert.match(md, /\| RPO \(fault − the restored backup's snapshot time: writes in that window are lost\) \| \d+\.\d\d s \(snapshot /);
    assert.match(md, /`VaultHaQuorumLost` started firing at/);
    assert.match(md, /## Recovery\n\nBackup \S+ \(snapshot taken .*\) restored by .* requested by drDrill .*, approved by Drill Facilitator/);
    const html = await get(result.reportKeys!.html);
    assert.match(html, /<svg [^>]*role="img"/);
    let mail;
    for (let i = 0; i < 40 && !mail; i++) {
      mail = (await mailpitMessages()).find((m) => m.Subject.includes(result.drillId) && m.To.some((t) => t.Address === 'dr-drills@localhost'));
      if (!mail) await sleep(250);
    }
    assert.ok(mail, 'the report reached the drill distribution list');

    // The revert: the drill cluster is a new, normal harness cluster again, on which the other HA
    // tests rely: healthy through HAProxy with a new drill token, drill writes, the worker AppRole,
    // the metrics token, audit shipping under the new cluster's name.
    assert.ok((await haHealth()).healthy, (await haHealth()).problems.join('; '));
    assert.notEqual(haClusterName(), clusterBefore, 'a new cluster (new id) after the rebuild');
    assert.ok(!fs.existsSync(restoreTokenFile()), "the new cluster's restore token is gone with it");
    const call = (p: string, init: RequestInit = {}) => fetch(`${HAPROXY_VAULT_ADDR}/v1/${p}`, init);
    const drillToken = fs.readFileSync(drillTokenFile(), 'utf8').trim();
    const w = await call('secret/data/drill/after-cluster-loss/000001', { method: 'POST', headers: { 'X-Vault-Token': drillToken, 'Content-Type': 'application/json' }, body: JSON.stringify({ data: { seq: '1' } }) });
    assert.equal(w.status, 200, 'a drill write through HAProxy after the rebuild');
    const login = await call('auth/approle/login', { method: 'POST', body: JSON.stringify({ role_id: fs.readFileSync(workerRoleIdFile(), 'utf8').trim(), secret_id: fs.readFileSync(workerSecretIdFile(), 'utf8').trim() }) });
    assert.equal(login.status, 200, 'the vaultdr-worker AppRole logs in after the rebuild');
    const metrics = await fetch(`http://127.0.0.1:${VAULT_NODES[0]!.apiPort}/v1/sys/metrics?format=prometheus`, { headers: { 'X-Vault-Token': fs.readFileSync(metricsTokenFile(), 'utf8').trim() } });
    assert.equal(metrics.status, 200, 'the metrics token scrapes after the rebuild');
    assert.ok(shipperStatus().every((l) => / pid \d+/.test(l)), shipperStatus().join('\n'));

    writeCommittedReport(report, html);
  });

  it('refuses before any fault when restore.productionAddress is not the drill cluster', async () => {
    const leader = (await haHealth()).leader;
    const elsewhere: Config = { ...cfg, restore: { ...cfg.restore, productionAddress: cfg.vault.address } };
    const f = await withWorker(elsewhere, () => failureOf(start('drdrill-cl-prod', { scenario: 'cluster-loss' }, elsewhere).then((h) => h.result())));
    assert.equal(f.type, 'DrillRefused');
    assert.match(f.message, /restore\.productionAddress \(http:\/\/127\.0\.0\.1:8200\) is not the drill cluster/);
    const h = await haHealth();
    assert.ok(h.healthy && h.leader === leader, 'nothing touched');
  });
});
