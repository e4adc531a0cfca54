// sealUnsealDrill target "ha" against the HA harness (three OpenBao raft nodes behind HAProxy,
// npm run ha:up), a real worker and its share intake, the shared stack's Temporal:
// - the drill stops both standbys, seals the active node, the API refuses through HAProxy (checked
//   here too, independently), the harness's unseal shares are submitted through the intake with
//   `vaultdr keys submit-share` as custodians would (the threshold is awaited), one standby comes
//   back for quorum, the canary reads back through HAProxy, the cluster ends fully healthy; each
//   phase timed; no unseal share, root or drill token anywhere in the history;
// - cancelled while it waits for the custodians, its non-cancellable cleanup brings the standbys
//   back and unseals the sealed node from the ha role's custody: the cluster is fully healthy after;
// - on a worker without the HA cluster (ha.harnessDir unset) it is refused by name, touching nothing;
// - a worker process SIGKILLed while the active node is sealed and the standbys stopped: a new worker
//   process opens its share intake for the drill again (from the drill's state file), takes the
//   custodians' shares, and finishes the drill with the cluster fully healthy.
// Timings are printed, never asserted.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { Config } from '../infra/config';
import type { SealDrillResult } from '../common/rotation';
import { VaultHaDriver } from '../infra/ha/vaultDriver';
import { createShareIntakeServer } from '../infra/vault/shareIntake';
import { freePort } from '../infra/vault/stagingVault';
import { readTokensFile } from '../infra/temporal/codecServer';
import { haUp } from '../stack/ha/index';
import { HAPROXY_VAULT_ADDR } from '../stack/ha/haproxy';
import { haDir } from '../stack/ha/proc';
import { drillTokenFile, harnessVaultEnv, nodeConfigFile, nodePid, readInit, startNode, unsealNode, VAULT_NODES, waitUnsealed } from '../stack/ha/vault';
import type { SealDrillProgress } from '../workflows/emergency/sealUnsealDrill';
import { clearAlertDedup, failureOf, historyFailures, historyTexts, mailpitMessages, stackSecrets, vaultdrAsync, waitForMailNaming, waitForStep } from './helpers/inspect';
import { buildS3Client } from '../infra/clients';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';
import { killWorkerProcesses, spawnWorkerProcess, type WorkerProcess } from './helpers/workerProcess';
import { writeWorkerConfigFile } from '../stack/migrationFixture';
import { saveDecoded } from './saveHistories';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = () => crypto.randomBytes(4).toString('hex');

describe('sealUnsealDrill on the HA cluster (three OpenBao nodes behind HAProxy, real worker and share intake)', function () {
  this.timeout(300_000);
  let cfg: Config;
  let client: Client;
  const driver = () => new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR));

  before(async () => {
    const base = await ensureStack();
    await haUp(() => {}, { postgres: false });
    cfg = { ...withQueue(base, uniqueQueue('ha-seal')), ha: { harnessDir: haDir(), vaultAddress: HAPROXY_VAULT_ADDR } };
    client = await connectClient(cfg);
  });
  const shareDirs: string[] = [];
  after(async () => {
    for (const d of shareDirs) fs.rmSync(d, { recursive: true, force: true });
    await client?.connection.close();
  });

  /** A worker with its share intake on a free loopback port (as the restore process serves it). */
  const withIntake = async <T>(c: Config, fn: (endpoint: string) => Promise<T>): Promise<T> =>
    withWorker(c, async ({ intake }) => {
      const port = await freePort();
      const server = createShareIntakeServer({ intake: intake!, tokens: readTokensFile(c.restore.shareIntakeTokensFile) });
      await new Promise<void>((res) => server.listen(port, '127.0.0.1', res));
      try {
        return await fn(`http://127.0.0.1:${port}`);
      } finally {
        server.close();
      }
    });

  const waitStep = (workflowId: string, stepName: string) => waitForStep<SealDrillProgress>(client.workflow.getHandle(workflowId), stepName);

  /** The harness's unseal shares as custodians hold them: one bare-key file each (0600). */
  const custodianShareFiles = (): string[] => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-ha-shares-'));
    shareDirs.push(dir);
    return readInit().keys_base64.map((k, i) => {
      const f = path.join(dir, `share-${i + 1}.txt`);
      fs.writeFileSync(f, `${k}\n`, { mode: 0o600 });
      return f;
    });
  };

  const harnessSecrets = () => {
    const init = readInit();
    return [...init.keys_base64.map((v, i) => ({ name: `unseal share ${i + 1}`, value: v })), { name: 'root token', value: init.root_token }, { name: 'drill token', value: fs.readFileSync(drillTokenFile(), 'utf8').trim() }, ...stackSecrets()];
  };

  /** The alert e-mail naming this run (it must exist), with no harness or stack secret in it. */
  const alertMailWithoutSecrets = async (workflowId: string, before: Set<string>): Promise<string> => {
    const mail = await waitForMailNaming(workflowId, before);
    assert.ok(mail, `no alert e-mail for ${workflowId}`);
    for (const s of harnessSecrets()) assert.ok(!mail.includes(s.value), `${s.name} in the alert e-mail`);
    return mail;
  };

  it('stops the standbys, seals the active node, refuses through HAProxy, custodian shares through the intake unseal it, serves again, ends fully healthy; phases timed', async () => {
    assert.ok((await driver().health()).healthy, 'the harness must start fully healthy');
    const workflowId = `ha-seal-drill-${rand()}`;
    const files = custodianShareFiles();
    const result = await withIntake(cfg, async (endpoint) => {
      const h = await client.workflow.start('sealUnsealDrill', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ target: 'ha', unsealTimeoutMinutes: 10 }] });
      const p = await waitStep(workflowId, 'awaitDrillShares');
      const { sealedNode, standbys } = p.ha!;
      assert.equal(standbys.length, 2);
      // Independently of the drill's own proof: nothing answers through HAProxy, no standby runs, the node is sealed.
      assert.notEqual((await fetch(`${HAPROXY_VAULT_ADDR}/v1/sys/health`).catch(() => undefined))?.status, 200, 'HAProxy must not serve while sealed');
      for (const s of standbys) assert.equal(nodePid(s), undefined, `${s} must be stopped`);
      assert.equal(((await (await fetch(`${p.address}/v1/sys/seal-status`)).json()) as { sealed: boolean }).sealed, true, `${sealedNode} must be sealed`);
      // The harness's threshold is 3 of 5: two shares are not enough.
      for (const f of files.slice(0, 2)) {
        const r = await vaultdrAsync(['keys', 'submit-share', workflowId, f, '--endpoint', endpoint]);
        assert.equal(r.code, 0, r.stderr);
      }
      await sleep(500);
      assert.equal((await h.query<SealDrillProgress>('progress')).step, 'awaitDrillShares', 'must wait for the threshold');
      const third = await vaultdrAsync(['keys', 'submit-share', workflowId, files[4]!, '--endpoint', endpoint]);
      assert.equal(third.code, 0, third.stderr);
      assert.match(third.stdout, /threshold reached/);
      const r = (await h.result()) as SealDrillResult;
      if (process.env.VAULTDR_SAVE_HISTORY) await saveDecoded(client, cfg, h, 'sealUnsealDrill-ha');
      return r;
    });
    console.log(`      HA seal drill phases (ms): ${JSON.stringify(result.phasesMs)}`);
    assert.equal(result.target, 'ha');
    assert.equal(result.refusedWhileSealed, true);
    assert.equal(result.servesAgain, true);
    assert.equal(result.sharesUsed, 3);
    assert.equal(result.threshold, 3);
    assert.match(result.detail, /canary reads back through HAProxy/);
    for (const k of ['stopStandbys', 'seal', 'proveRefuses', 'unseal', 'quorum', 'serveAgain', 'restoreStandbys', 'total'] as const) assert.ok((result.phasesMs[k] ?? -1) >= 0, `phase ${k} not timed`);
    const health = await driver().health();
    assert.ok(health.healthy, `cluster not fully healthy after the drill: ${health.problems.join('; ')}`);
    assert.ok(!fs.existsSync(path.join(haDir(), 'drill-state', `seal-drill-${workflowId}.json`)), 'the state file is removed');
    const { decoded, raw, activityTypes } = await historyTexts(client, cfg, workflowId);
    for (const a of ['checkClusterHealthy', 'stopStandbys', 'sealActiveNode', 'proveHaRefuses', 'restoreStandbys', 'proveHaServes', 'closeUnsealIntake']) assert.ok(activityTypes.includes(a), `${a} did not run`);
    const everything = decoded.join('\n') + raw;
    for (const s of harnessSecrets()) assert.ok(!everything.includes(s.value), `${s.name} appears in the history`);
  });

  it('cancelled while waiting for the custodians: the non-cancellable cleanup brings the standbys back and the cluster is fully healthy', async () => {
    const workflowId = `ha-seal-cancel-${rand()}`;
    await clearAlertDedup(buildS3Client(cfg.s3), cfg.s3.bucket);
    const mailsBefore = new Set((await mailpitMessages()).map((m) => m.ID));
    await withIntake(cfg, async () => {
      const h = await client.workflow.start('sealUnsealDrill', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ target: 'ha' }] });
      const p = await waitStep(workflowId, 'awaitDrillShares');
      for (const s of p.ha!.standbys) assert.equal(nodePid(s), undefined, `${s} must be stopped`);
      await h.cancel();
      await assert.rejects(h.result(), /cancel/i);
      const after = await h.query<SealDrillProgress>('progress');
      assert.equal(after.ha?.restored, true, `cleanup did not restore: ${after.clusterLeftDegraded ?? ''}`);
      assert.equal(after.clusterLeftDegraded, undefined);
    });
    const health = await driver().health();
    assert.ok(health.healthy, `cluster not fully healthy after the cancelled drill: ${health.problems.join('; ')}`);
    const { decoded, raw } = await historyTexts(client, cfg, workflowId);
    for (const s of harnessSecrets()) assert.ok(!(decoded.join('\n') + raw).includes(s.value), `${s.name} appears in the history`);
    assert.match(await alertMailWithoutSecrets(workflowId, mailsBefore), /cancelled/);
  });

  it('a standby that cannot come back: the cleanup brings back what it can and alerts critical that the cluster is left degraded', async () => {
    const workflowId = `ha-seal-degraded-${rand()}`;
    await clearAlertDedup(buildS3Client(cfg.s3), cfg.s3.bucket);
    const mailsBefore = new Set((await mailpitMessages()).map((m) => m.ID));
    let broken = '';
    let saved = '';
    try {
      await withIntake(cfg, async () => {
        const h = await client.workflow.start('sealUnsealDrill', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ target: 'ha', healTimeoutSeconds: 8 }] });
        const p = await waitStep(workflowId, 'awaitDrillShares');
        broken = p.ha!.standbys[1]!;
        saved = fs.readFileSync(nodeConfigFile(broken), 'utf8');
        fs.writeFileSync(nodeConfigFile(broken), 'this is not HCL {');
        await h.cancel();
        await assert.rejects(h.result(), /cancel/i);
        const after = await h.query<SealDrillProgress>('progress');
        assert.match(after.clusterLeftDegraded ?? '', new RegExp(`could not bring every node back.*${broken}`));
      });
      // The other nodes are back: the sealed node unsealed from custody, the other standby running
      // (autopilot may take a few seconds to count them healthy again).
      const unhealthy = async () => (await driver().health()).nodes.filter((n) => !n.healthy).map((n) => `${n.name}: ${n.detail}`);
      let down = await unhealthy();
      for (let i = 0; i < 60 && down.length !== 1; i++) {
        await sleep(500);
        down = await unhealthy();
      }
      assert.equal(down.length, 1, `only ${broken} may be down: ${down.join('; ')}`);
      assert.match(down[0]!, new RegExp(`^${broken}: `));
      const mail = await waitForMailNaming(workflowId, mailsBefore, { subject: /left the HA cluster degraded/ });
      assert.ok(mail, 'no critical alert that the cluster is left degraded');
      assert.match(mail, /critical|CRITICAL/);
      for (const s of harnessSecrets()) assert.ok(!mail.includes(s.value), `${s.name} in the alert e-mail`);
    } finally {
      if (broken) {
        fs.writeFileSync(nodeConfigFile(broken), saved);
        await startNode(broken);
        await unsealNode(broken);
        await waitUnsealed(broken, 60_000);
        const deadline = Date.now() + 60_000;
        while (!(await driver().health()).healthy && Date.now() < deadline) await sleep(500);
      }
    }
    assert.ok((await driver().health()).healthy, 'the test could not restore the harness');
  });

  it('a worker process SIGKILLed while the node is sealed: a new worker process takes the custodians\' shares, finishes the drill, the cluster ends fully healthy', async () => {
    assert.ok((await driver().health()).healthy, 'the harness must start fully healthy');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-ha-seal-crash-'));
    const cfgFile = writeWorkerConfigFile(tmp, cfg.migration, { ha: cfg.ha });
    const queue = uniqueQueue('ha-seal-crash');
    const workers: WorkerProcess[] = [];
    const workflowId = `ha-seal-crash-${rand()}`;
    const h = client.workflow.getHandle(workflowId);
    try {
      workers.push(await spawnWorkerProcess(cfgFile, queue, 'worker 0'));
      await client.workflow.start('sealUnsealDrill', { taskQueue: queue, workflowId, args: [{ target: 'ha', unsealTimeoutMinutes: 10 }] });
      const p = await waitStep(workflowId, 'awaitDrillShares');
      const killedAt = Date.now();
      workers[0]!.child.kill('SIGKILL');
      await new Promise((r) => workers[0]!.child.once('exit', r));
      // Nothing brings the cluster back while no worker runs: the node stays sealed, the standbys stopped.
      for (const s of p.ha!.standbys) assert.equal(nodePid(s), undefined, `${s} must be stopped`);
      assert.equal(((await (await fetch(`${p.address}/v1/sys/seal-status`)).json()) as { sealed: boolean }).sealed, true);
      const second = await spawnWorkerProcess(cfgFile, queue, 'worker 1');
      workers.push(second);
      const upMs = Date.now() - killedAt;
      // Three custodians' shares to the new process's intake (one CLI call with three files).
      const files = custodianShareFiles();
      const r = await vaultdrAsync(['keys', 'submit-share', workflowId, files[0]!, files[2]!, files[4]!, '--endpoint', `http://${second.shareIntakeListen}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /threshold reached/);
      const result = (await h.result()) as SealDrillResult;
      const resumedMs = Date.now() - killedAt;
      console.log(`      after the SIGKILL: new worker running in ${upMs} ms, drill finished ${resumedMs} ms after the kill; phases (ms): ${JSON.stringify(result.phasesMs)}`);
      assert.equal(result.servesAgain, true);
      assert.equal(result.sharesUsed, 3);
      assert.match(result.detail, /canary reads back through HAProxy/);
      // Everything after the kill ran on the new process.
      const events = (await h.fetchHistory()).events!;
      const ranOn = new Map<string, string>();
      for (const e of events) {
        const scheduled = e.activityTaskScheduledEventAttributes;
        if (scheduled) ranOn.set(String(e.eventId), scheduled.activityType!.name!);
      }
      const restores = events.filter((e) => e.activityTaskStartedEventAttributes && ranOn.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) === 'restoreStandbys');
      assert.ok(restores.length >= 2, 'restoreStandbys ran for quorum and all');
      for (const e of restores) assert.match(e.activityTaskStartedEventAttributes!.identity ?? '', new RegExp(`^${second.child.pid}@`), 'restoreStandbys ran on the new worker process');
      const { decoded, raw } = await historyTexts(client, cfg, workflowId);
      for (const s of harnessSecrets()) assert.ok(!(decoded.join('\n') + raw).includes(s.value), `${s.name} appears in the history`);
    } finally {
      killWorkerProcesses(workers);
      fs.rmSync(tmp, { recursive: true, force: true });
      // A failed run must not leave the harness degraded for the next test: end the drill, bring every node back.
      if ((await h.describe().catch(() => undefined))?.status.name === 'RUNNING') await h.terminate('test cleanup');
      if (!(await driver().health()).healthy) {
        for (const n of VAULT_NODES) if (nodePid(n.name) === undefined) await startNode(n.name);
        for (const n of VAULT_NODES) await unsealNode(n.name);
        const deadline = Date.now() + 60_000;
        while (!(await driver().health()).healthy && Date.now() < deadline) await sleep(500);
      }
    }
    const health = await driver().health();
    assert.ok(health.healthy, `cluster not fully healthy after the resumed drill: ${health.problems.join('; ')}`);
    assert.ok(!fs.existsSync(path.join(haDir(), 'drill-state', `seal-drill-${workflowId}.json`)), 'the state file is removed');
  });

  it('refused by name on a worker without the HA cluster, and bad input names the field; nothing is stopped', async () => {
    const noHa: Config = { ...withQueue(cfg, uniqueQueue('ha-seal-none')), ha: { vaultAddress: HAPROXY_VAULT_ADDR } };
    await withWorker(noHa, async () => {
      const bad = await failureOf(client.workflow.execute('sealUnsealDrill', { taskQueue: noHa.temporal.taskQueue, workflowId: `ha-seal-bad-${rand()}`, args: [{ target: 'cluster' } as never] }));
      assert.match(bad.message, /target/);
      await clearAlertDedup(buildS3Client(cfg.s3), cfg.s3.bucket);
      const mailsBefore = new Set((await mailpitMessages()).map((m) => m.ID));
      const refusedId = `ha-seal-refused-${rand()}`;
      const refused = await failureOf(client.workflow.execute('sealUnsealDrill', { taskQueue: noHa.temporal.taskQueue, workflowId: refusedId, args: [{ target: 'ha' }] }));
      assert.match(refused.message, /checkClusterHealthy/);
      assert.match(refused.message, /no vault HA driver/);
      for (const x of historyFailures((await client.workflow.getHandle(refusedId).fetchHistory()).events)) assert.equal(x.message, 'Encoded failure', `a failure message is stored in plaintext: ${x.message}`);
      assert.match(await alertMailWithoutSecrets(refusedId, mailsBefore), /checkClusterHealthy/);
    });
    assert.ok((await driver().health()).healthy);
  });
});
