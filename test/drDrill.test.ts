// The drDrill workflow against real servers: the HA harness (three OpenBao raft nodes behind
// HAProxy, npm run ha:up), a real Prometheus scraping it with the committed HA scrape jobs and rules
// (1 s interval), a real Alertmanager with the committed routing (its own, on a free port, with
// Slack/PagerDuty/SMTP pointed at closed ports so nothing reaches the shared stack's sinks), a real
// worker, the shared stack's Temporal, S3 and Mailpit.
// - started with {} (as from the Web UI): the leader is SIGKILLed, RTO and lost writes measured by
//   the failover probe writer, VaultHaNodeDown observed in Alertmanager (which alert, when, which
//   receiver), the node reverted and the cluster healthy, the report (JSON, Markdown, HTML with the
//   SVG timeline) in the bucket and mailed to the distribution list, no secret in its history;
// - a worker SIGKILLed while the leader is down: a new worker resumes the drill and reverts the fault;
// - refusals: an unknown scenario (InvalidInput naming the field), another scenario's target not drillable, a
//   target not marked drillable, a second drill while one runs (and the first, aborted before its
//   fault, touches nothing), a steady state that does not hold (a standby stopped).
// VAULTDR_DRILL_REPORT_DIR=<dir>: the first test also writes the report's .md/.html/.svg there
// (how docs/drills/ gets its committed reports) and saves its history as the replay fixture
// test/histories/drDrill-vault-node-failure.
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
import type { DrDrillReport, DrDrillResult } from '../common/drillRun';
import { VaultHaDriver } from '../infra/ha/vaultDriver';
import { haUp } from '../stack/ha/index';
import { HAPROXY_VAULT_ADDR } from '../stack/ha/haproxy';
import { haDir } from '../stack/ha/proc';
import { drillTokenFile, harnessVaultEnv, readInit, startNode, stopNode, unsealNode, VAULT_NODES, waitUnsealed } from '../stack/ha/vault';
import { failureOf, historyTexts, mailpitMessages, stackSecrets } from './helpers/inspect';
import { ensureStack, PROJECT_ROOT, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';
import { saveDecoded } from './saveHistories';
import type { DrDrillProgress } from '../workflows/drills/drDrill';
import { writeCommittedReport } from './helpers/drillReports';
import { startDrillMonitoring, type DrillMonitoring } from './helpers/drillMonitoring';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WORKER = path.join(PROJECT_ROOT, 'lib', 'workers', 'main.js');

async function waitHealthy(ms: number): Promise<void> {
  const driver = new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR));
  const deadline = Date.now() + ms;
  while (!(await driver.health()).healthy) {
    if (Date.now() > deadline) throw new Error(`HA cluster not healthy: ${(await driver.health()).problems.join('; ')}`);
    await sleep(500);
  }
}

describe('drDrill: vault-node-failure on the HA harness (real Prometheus, Alertmanager, worker)', function () {
  this.timeout(600_000);
  let cfg: Config;
  let client: Client;
  let dir: string;
  let monitoring: DrillMonitoring | undefined;

  before(async () => {
    const base = await ensureStack();
    await haUp();
    await waitHealthy(60_000);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-drdrill-'));
    monitoring = await startDrillMonitoring(dir);
    cfg = {
      ...withQueue(base, uniqueQueue('drdrill')),
      ha: { harnessDir: haDir(), vaultAddress: HAPROXY_VAULT_ADDR },
      drills: { ...base.drills, drillableTargets: ['ha-vault'], alertmanagerUrl: monitoring.alertmanagerUrl, distributionList: ['dr-drills@localhost'] },
    };
    client = await connectClient(cfg);
  });
  after(async () => {
    await client?.connection.close();
    await monitoring?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const start = (id: string, input: unknown, c: Config = cfg) => client.workflow.start('drDrill', { taskQueue: c.temporal.taskQueue, workflowId: `${id}-${Date.now()}`, args: [input as never] });

  it('started with {}: SIGKILL of the leader, RTO and lost writes measured, VaultHaNodeDown observed, reverted, report stored and mailed', async () => {
    const { result, progress, history } = await withWorker(cfg, async () => {
      const h = await start('drdrill', {});
      const result = (await h.result()) as DrDrillResult;
      if (process.env.VAULTDR_DRILL_REPORT_DIR) await saveDecoded(client, cfg, h, 'drDrill-vault-node-failure');
      return { result, progress: (await h.query('progress')) as DrDrillProgress, history: await historyTexts(client, cfg, h.workflowId) };
    });
    // No secret of the HA cluster nor of the stack in history.
    const init = readInit();
    for (const secret of [init.root_token, ...init.keys_base64, fs.readFileSync(drillTokenFile(), 'utf8').trim(), ...stackSecrets().map((x) => x.value)]) {
      assert.ok(!history.raw.includes(secret), 'a secret in the raw history');
      assert.ok(!history.decoded.some((d) => d.includes(secret)), 'a secret in a decoded payload');
    }
    assert.deepEqual([...new Set(history.activityTypes)].sort(), ['awaitDrillAlert', 'checkClusterHealthy', 'checkDrillPreconditions', 'healFault', 'listFindingsToRetest', 'mailDrillReport', 'publishDrDrillReport', 'runFailoverRound', 'selectBackup']);
    assert.equal(progress.step, 'done');
    assert.deepEqual(progress.completed, ['checkDrillPreconditions', 'checkSteadyState', 'injectFault', 'awaitDetection', 'revertFault', 'verifyRecovery', 'writeReport']);
    assert.equal(result.lostWrites, 0);
    assert.ok(result.rtoMs! > 0, JSON.stringify(result));
    // The alert the scenario names reached Alertmanager after the fault, routed to the warning receiver (Slack + e-mail).
    assert.equal(progress.alert?.observed, true, JSON.stringify(progress.alert));
    assert.equal(progress.alert?.alertname, 'VaultHaNodeDown');
    assert.deepEqual(progress.alert?.receivers, ['warning']);
    assert.ok(result.detectMs! > 0);
    // The cluster is whole again.
    assert.ok((await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health()).healthy);

    const s3 = buildS3Client(cfg.s3);
    const get = async (key: string) => (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: key }))).Body!.transformToString();
    const report = JSON.parse(await get(result.reportKeys!.json)) as DrDrillReport;
    assert.equal(report.scenario, 'vault-node-failure');
    assert.equal(report.rtoMs, result.rtoMs);
    assert.equal(report.lostWrites, 0);
    assert.ok(report.writesAcked! > 0);
    assert.deepEqual(
      [...new Set(report.timeline.map((e) => e.kind))].filter((k) => k !== 'step').sort(),
      [...(report.findings.length ? ['finding'] : []), 'alert', 'fault', 'recovered', 'revert'].sort(),
    );
    assert.equal(report.findings.length, result.findings.length);
    const md = await get(result.reportKeys!.markdown);
    assert.match(md, /\| RTO \(fault → first acknowledged write\) \| \d+\.\d\d s \| 10 s \|/);
    assert.match(md, /`VaultHaNodeDown` started firing at/);
    const html = await get(result.reportKeys!.html);
    assert.match(html, /<svg [^>]*role="img"/);
    assert.match(html, /SIGKILL/);
    // Mailed to the distribution list.
    let mail;
    for (let i = 0; i < 40 && !mail; i++) {
      mail = (await mailpitMessages()).find((m) => m.Subject.includes(result.drillId) && m.To.some((t) => t.Address === 'dr-drills@localhost'));
      if (!mail) await sleep(250);
    }
    assert.ok(mail, 'the report reached the drill distribution list');

    writeCommittedReport(report, html);
  });

  it('a worker SIGKILLed while the fault is in place: a new worker resumes the drill and reverts the fault', async () => {
    // The first worker runs as operators run it (a child process), so it can be SIGKILLed.
    // The test's own config (absolute paths, its queue, the HA harness, drillable), as the worker's file.
    const file = path.join(dir, 'worker.json');
    fs.writeFileSync(file, JSON.stringify({ ...cfg, metrics: { listen: '' }, codec: { ...cfg.codec, listen: '127.0.0.1:18093' } }));
    let log = '';
    const child = spawn(process.execPath, [WORKER], { env: { ...process.env, VAULTDR_CONFIG: file }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    try {
      for (let i = 0; !/state: 'RUNNING'/.test(log); i++) {
        assert.ok(i < 300 && child.exitCode === null, `worker did not start:\n${log}`);
        await sleep(200);
      }
      const h = await start('drdrill-sigkill', { reason: 'worker SIGKILL test' });
      // Wait until the leader is down and the drill waits for the alert, then kill the worker.
      for (let i = 0; ; i++) {
        const p = (await h.query('progress')) as DrDrillProgress;
        if (p.step === 'awaitDetection') break;
        assert.ok(i < 600 && p.step !== 'failed', `drill did not reach awaitDetection: ${JSON.stringify(p)}`);
        await sleep(100);
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // A node is down now (the fault is in place) and no worker runs.
      assert.equal((await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health()).healthy, false);
      const { result, progress } = await withWorker(cfg, async () => ({ result: (await h.result()) as DrDrillResult, progress: (await h.query('progress')) as DrDrillProgress }));
      assert.ok(progress.completed.includes('revertFault') && progress.completed.includes('verifyRecovery'), JSON.stringify(progress.completed));
      assert.equal(result.lostWrites, 0);
      assert.ok((await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health()).healthy, 'the fault is reverted');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('refuses an unknown scenario (naming the field) and a target not marked drillable (another scenario\'s, or none); nothing is touched', async () => {
    const notDrillable: Config = { ...cfg, drills: { ...cfg.drills, drillableTargets: [] } };
    await withWorker(cfg, async () => {
      const f1 = await failureOf(start('drdrill-bad', { scenario: 'datacenter-on-fire' }).then((h) => h.result()));
      assert.equal(f1.type, 'InvalidInput');
      assert.match(f1.message, /field "scenario"/);
      const f2 = await failureOf(start('drdrill-cc', { scenario: 'credential-compromise' }).then((h) => h.result()));
      assert.equal(f2.type, 'DrillRefused');
      assert.match(f2.message, /scenario credential-compromise: its target credential-class is not marked drillable \(drills.drillableTargets: ha-vault\)/);
    });
    await withWorker(notDrillable, async () => {
      const f = await failureOf(start('drdrill-nd', {}, notDrillable).then((h) => h.result()));
      assert.equal(f.type, 'DrillRefused');
      assert.match(f.message, /its target ha-vault is not marked drillable \(drills.drillableTargets: none\)/);
    });
  });

  it('refuses a second drill while one runs; the first, aborted before its fault, injects nothing', async () => {
    await withWorker(cfg, async () => {
      const first = await start('drdrill-first', { mode: 'assisted', facilitator: 'Alice' });
      try {
      // Assisted: it passes its preconditions and waits for the facilitator before the steady state check.
      for (let i = 0; ; i++) {
        const p = (await first.query('progress')) as DrDrillProgress;
        if (p.awaitingConfirmation === 'checkSteadyState') break;
        if (i > 100) throw new Error(`first drill not waiting: ${JSON.stringify(p)}`);
        await sleep(200);
      }
      const f = await failureOf(start('drdrill-second', {}).then((h) => h.result()));
      assert.equal(f.type, 'DrillRefused');
      assert.match(f.message, new RegExp(`another drill or an incident is running: drDrill ${first.workflowId}`));
      // The validator refuses confirming a step the drill is not at.
      await assert.rejects(first.executeUpdate('confirmStep', { args: [{ step: 'injectFault', by: 'Alice' }] }), (e: Error & { cause?: Error }) => /not waiting for injectFault \(it waits for checkSteadyState\)/.test(String(e.cause?.message)));
      await first.executeUpdate('abort', { args: [{ by: 'Alice', reason: 'test: second drill refused' }] });
      const fa = await failureOf(first.result());
      assert.equal(fa.type, 'DrillAborted');
      const p = (await first.query('progress')) as DrDrillProgress;
      assert.ok(!p.completed.includes('injectFault') && !p.completed.includes('revertFault'), JSON.stringify(p.completed));
      } finally {
        // A failed assertion must not leave it waiting (it would refuse every later drill on this queue).
        await first.terminate('test over').catch(() => undefined);
      }
    });
  });

  it('refuses to start when the steady state does not hold (a standby down), and injects nothing', async () => {
    const leader = (await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health()).leader!;
    const standby = VAULT_NODES.find((n) => n.name !== leader)!.name;
    await stopNode(standby);
    try {
      const f = await withWorker(cfg, () => failureOf(start('drdrill-unsteady', {}).then((h) => h.result())));
      assert.equal(f.type, 'DrillSteadyStateNotHolding');
      assert.match(f.message, /steady state does not hold, nothing injected/);
      assert.equal((await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health()).leader, leader, 'the leader was not touched');
    } finally {
      await startNode(standby);
      await unsealNode(standby);
      await waitUnsealed(standby, 60_000);
      await waitHealthy(90_000);
    }
  });
});
