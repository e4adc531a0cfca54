// The vps-compromise drill end to end on the local hosts (stack/mailhosts.ts: old-vps and new-vps
// with Debian sshd, Postfix, Dovecot, OpenDKIM, Roundcube; NSD; the relay Mailpit) with the shared
// stack's Temporal, OpenBao, S3 and Mailpit and a real worker (every role in-process).
// The installation it drills: root's SSH key (vault-dr/credentials/ssh-key/root) is on the operator
// list the migration deploys and in the old host's authorized_keys; the mailbox password the
// migration applies is also the one emergency rotation holds (credentials/mailbox-password/<email>).
// - started with only the scenario: the declaration notice reaches the on-call mailbox (Mailpit), the
//   old host is quarantined (root's key refused there), migrateVps rebuilds the mail on new-vps without
//   looking at old-vps, ssh-key and mailbox-password are rotated on new-vps, the quarantine is lifted,
//   and the drill's own checks pass: a test mail with the ROTATED password passes DKIM/SPF/DMARC, IMAP
//   login with it, the old password and the old key refused. Checked again here, independently of the
//   workflow. Report stored and mailed; no secret in any history of the drill or its children.
// - refusal: when the old host does not trust the key Vault holds, the steady state does not hold and
//   nothing is injected (old-vps's authorized_keys untouched).
// Run under `flock /tmp/vaultdr-hosts.lock`. VAULTDR_DRILL_REPORT_DIR=<dir>: the report's
// .md/.html/.svg/.json go there (docs/drills/) and the history becomes the replay fixture
// test/histories/drDrill-vps-compromise. Timings are printed, never asserted.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { DrDrillReport, DrDrillResult } from '../common/drillRun';
import { buildS3Client } from '../infra/clients';
import type { Config } from '../infra/config';
import { renderDrillReportMarkdown } from '../infra/drills/report';
import { keyAccepted, newSshKeyPair, withSsh } from '../infra/ssh/client';
import { HOST_PATHS, runInHost } from '../stack/mailhosts';
import { leaseHosts, prepareMigration, writeSecret, type MigrationFixture } from '../stack/migrationFixture';
import { ensureRotatorToken } from '../stack/stack';
import type { DrDrillProgress } from '../workflows/drills/drDrill';
import { bao, failureOf, historyTexts, mailpitMessages, stackSecrets } from './helpers/inspect';
import { ensureStack, PROJECT_ROOT, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';
import { saveDecoded } from './saveHistories';
import { writeCommittedReport } from './helpers/drillReports';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('drDrill: vps-compromise on the local hosts (quarantine, migrateVps, rotateCredential, DKIM check)', function () {
  this.timeout(600_000);
  let fx: MigrationFixture;
  let cfg: Config;
  let client: Client;
  let release: (() => void) | undefined;
  let oldKeysBefore = '';
  const rootKey = newSshKeyPair('root@ops');
  const rootLine = rootKey.publicKey;
  const email = () => fx.mailbox.email;
  const oldRoot = () => ({ address: fx.hosts.hosts['old-vps'].address, port: 22, user: 'root', hostKeySha256: fx.hosts.hosts['old-vps'].hostKeyFingerprint });
  const newRoot = () => ({ address: fx.hosts.hosts['new-vps'].address, port: 22, user: 'root', hostKeySha256: fx.hosts.hosts['new-vps'].hostKeyFingerprint });

  before(async () => {
    release = await leaseHosts();
    const base = withQueue(await ensureStack(), uniqueQueue('drill-vps'));
    fx = await prepareMigration(base, { prefix: 'migration-drill-vps' });
    const tokenFile = await ensureRotatorToken();
    // root's key: on the operator list the migration deploys, in Vault where rotation keeps it, trusted by the old host.
    await writeSecret(fx.cfg.migration.secrets.operatorKeys, { 'root-ops': rootLine });
    await bao('POST', 'secret/data/vault-dr/credentials/ssh-key/root', { data: { private_key: rootKey.privateKey, public_key: rootLine } });
    const mailboxPassword = fx.secrets.find((s) => s.name === 'mailbox password')!.value;
    await bao('POST', `secret/data/vault-dr/credentials/mailbox-password/${email()}`, { data: { username: email(), password: mailboxPassword } });
    oldKeysBefore = runInHost('old-vps', ['cat', HOST_PATHS.authorizedKeys]);
    runInHost('old-vps', ['sh', '-c', `sed -i -e '$a\\' ${HOST_PATHS.authorizedKeys}; cat >> ${HOST_PATHS.authorizedKeys}`], { input: `${rootLine}\n` });
    fx.secrets.push({ name: 'root private key', value: rootKey.privateKey.split('\n')[2]! });
    cfg = {
      ...fx.cfg,
      rotation: { ...fx.cfg.rotation, tokenFile, host: 'new', sshKeyFile: fx.hosts.provisionKey, defaultScopes: { ...fx.cfg.rotation.defaultScopes, 'ssh-key': 'root', 'mailbox-password': email() } },
      drills: { ...fx.cfg.drills, drillableTargets: ['mail-vps'], distributionList: ['dr-drills@localhost'] },
      metrics: { listen: '' },
    };
    client = await connectClient(cfg);
  });

  after(async () => {
    try {
      // old-vps as the fixture found it (the drill's own revert lifted the quarantine; this removes the test's root key).
      if (oldKeysBefore) runInHost('old-vps', ['sh', '-c', `umask 077; cat > ${HOST_PATHS.authorizedKeys}`], { input: oldKeysBefore });
      await client?.connection.close();
    } finally {
      release?.();
    }
  });

  const start = (id: string, input: unknown) => client.workflow.start('drDrill', { taskQueue: cfg.temporal.taskQueue, workflowId: `${id}-${Date.now()}`, args: [input as never] });

  it('declared compromised: notice, quarantine, migration, both rotations, quarantine lifted; test mail with the rotated password passes DKIM/SPF/DMARC; old key and password refused', async () => {
    const t0 = Date.now();
    const { result, progress, histories, report } = await withWorker(cfg, async () => {
      const h = await start('drdrill-vps', { scenario: 'vps-compromise', reason: 'test: vps-compromise drill' });
      // While the old host is quarantined: root's key is refused there (checked by the test itself).
      let sawQuarantine = false;
      for (let i = 0; i < 600; i++) {
        const p = (await h.query('progress')) as DrDrillProgress;
        if (p.step === 'recover' || p.step === 'awaitDetection') {
          sawQuarantine = !(await keyAccepted(oldRoot(), rootLine));
          break;
        }
        if (p.step === 'failed' || p.step === 'done') break;
        await sleep(200);
      }
      const result = (await h.result()) as DrDrillResult;
      assert.ok(sawQuarantine, 'root key was not refused by the old host during the drill');
      if (process.env.VAULTDR_DRILL_REPORT_DIR) {
        await saveDecoded(client, cfg, h, 'drDrill-vps-compromise');
        // Its children are named after its id: the replay runs under the recorded one (test/replay.test.ts).
        fs.writeFileSync(path.join(PROJECT_ROOT, 'test', 'histories', 'drDrill-vps-compromise.workflowId'), `${h.workflowId}\n`);
      }
      const ids = [h.workflowId, `${h.workflowId}-migrate`, `${h.workflowId}-migrate-smtp`, `${h.workflowId}-rotate-ssh-key`, `${h.workflowId}-rotate-mailbox-password`];
      const histories = await Promise.all(ids.map(async (id) => ({ id, ...(await historyTexts(client, cfg, id)) })));
      const s3 = buildS3Client(cfg.s3);
      const report = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: result.reportKeys!.json }))).Body!.transformToString()) as DrDrillReport;
      return { result, progress: (await h.query('progress')) as DrDrillProgress, histories, report };
    });
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(progress.step, 'done', JSON.stringify(progress));
    assert.deepEqual(progress.completed, ['checkDrillPreconditions', 'checkSteadyState', 'injectFault', 'awaitDetection', 'recover', 'revertFault', 'verifyRecovery', 'writeReport']);
    // What the first drill found: the migration keeps its own copies of the credentials, so the next
    // migration would put the revoked key and the rotated-away password back. Two findings, nothing else.
    assert.equal(result.outcome, 'findings');
    assert.deepEqual(report.findings.map((f) => `${f.severity} ${f.title}`).sort(), [
      "high vps-compromise: check failed: the migration's mailbox secret holds the password the mailbox has now",
      'high vps-compromise: check failed: the operator list the next migration deploys no longer holds the revoked SSH key',
    ]);
    assert.equal(result.findings.length, 2);
    // Detection: the declaration notice in the on-call mailbox.
    assert.equal(progress.alert?.observed, true, JSON.stringify(progress.alert));
    assert.deepEqual(progress.alert?.receivers, ['email']);
    assert.ok(result.rtoMs! > 0 && result.detectMs! >= 0);
    // Every other check the drill made passed, the DKIM one among them.
    const failed = report.checks!.filter((c) => !c.ok);
    assert.equal(failed.length, 2, JSON.stringify(failed));
    assert.match(failed.find((c) => /operator list/.test(c.what))!.detail, /still lists root-ops \(SHA256:/);
    const dkim = report.checks!.find((c) => /test mail with the rotated mailbox password/.test(c.what))!;
    assert.match(dkim.detail, /^DKIM pass.*SPF pass, DMARC pass/);
    assert.equal(report.checks!.length, 11, report.checks!.map((c) => c.what).join(' | '));

    // Independently of the workflow: the quarantine is lifted (old-vps's authorized_keys as before the drill, root's key trusted again there) ...
    assert.equal(runInHost('old-vps', ['cat', HOST_PATHS.authorizedKeys]).trim(), `${oldKeysBefore.trim()}\n${rootLine}`.trim());
    assert.equal(await keyAccepted(oldRoot(), rootLine), true);
    // ... and on new-vps the old root key is refused, the rotated one logs in.
    assert.equal(await keyAccepted(newRoot(), rootLine), false, 'the old root key is still accepted by the new host');
    const rotatedKey = (await bao('GET', 'secret/data/vault-dr/credentials/ssh-key/root')).json.data.data as { private_key: string };
    assert.equal((await withSsh(newRoot(), rotatedKey.private_key, (s) => s.run('login with the rotated key', 'id -un'))).trim(), 'root');
    const rotatedMailbox = (await bao('GET', `secret/data/vault-dr/credentials/mailbox-password/${email()}`)).json.data.data as { password: string };

    // No secret in any history: fixture secrets, the old and the rotated values, the stack's own.
    const secrets = [...fx.secrets, { name: 'rotated root key', value: rotatedKey.private_key.split('\n')[2]! }, { name: 'rotated mailbox password', value: rotatedMailbox.password }, ...stackSecrets()];
    assert.ok(histories.some((h) => h.decoded.join('\n').includes('vault-dr/migration-drill-vps')), 'no decoded history names the secret paths: the leak check would see nothing');
    for (const h of histories) for (const s of secrets) assert.ok(!h.raw.includes(s.value) && !h.decoded.some((d) => d.includes(s.value)), `${s.name} appears in the history of ${h.id}`);

    // The report: stored, mailed to the distribution list.
    const md = renderDrillReportMarkdown(report);
    assert.match(md, /\| RTO \(declaration → migrated and every credential rotated on the new host\) \| \d+\.\d\d s \| 90 min \| within target \|/);
    assert.match(md, /## Recovery phases/);
    let mail;
    for (let i = 0; i < 40 && !mail; i++) {
      mail = (await mailpitMessages()).find((m) => m.Subject.includes(result.drillId) && m.To.some((t) => t.Address === 'dr-drills@localhost'));
      if (!mail) await sleep(250);
    }
    assert.ok(mail, 'the report reached the drill distribution list');
    // The findings' workflows outlive the drill by design; here they have no worker and are not wanted.
    for (const id of result.findings) await client.workflow.getHandle(id).terminate('drDrillVps test over').catch(() => undefined);
    const phases = report.phases!.map((p) => `${p.what.split(' (')[0]} ${(p.ms / 1000).toFixed(1)} s`).join(', ');
    console.log(`      vps-compromise drill ${seconds.toFixed(1)} s: RTO ${(result.rtoMs! / 1000).toFixed(1)} s, notice after ${(result.detectMs! / 1000).toFixed(1)} s, revert ${((report.revertMs ?? 0) / 1000).toFixed(1)} s; ${phases}`);
    console.log(`      steps: ${report.timeline.filter((e) => e.kind === 'step').map((e, i, all) => `${e.what} +${((Date.parse(all[i + 1]?.at ?? report.finishedAt) - Date.parse(e.at)) / 1000).toFixed(1)} s`).join(', ')}`);

    if (process.env.VAULTDR_DRILL_REPORT_DIR) writeCommittedReport(report, await (await buildS3Client(cfg.s3).send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: result.reportKeys!.html }))).Body!.transformToString());
  });

  it('refuses when the old host does not trust the SSH key Vault holds: steady state does not hold, nothing injected', async () => {
    // Vault now holds a key the old host has never seen.
    const stranger = newSshKeyPair('stranger@ops');
    await bao('POST', 'secret/data/vault-dr/credentials/ssh-key/root', { data: { private_key: stranger.privateKey, public_key: stranger.publicKey } });
    const keysBefore = runInHost('old-vps', ['cat', HOST_PATHS.authorizedKeys]);
    const f = await withWorker(cfg, () => failureOf(start('drdrill-vps-unsteady', { scenario: 'vps-compromise' }).then((h) => h.result())));
    assert.equal(f.type, 'DrillSteadyStateNotHolding');
    assert.match(f.message, /steady state does not hold, nothing injected: the old host does not accept root's key SHA256:/);
    assert.equal(runInHost('old-vps', ['cat', HOST_PATHS.authorizedKeys]), keysBefore, 'the old host was touched');
    assert.ok(!fs.existsSync(path.join(fx.hosts.hosts['old-vps'].root, 'root/.ssh/authorized_keys.vaultdr-quarantine')));
  });
});
