// A full breachResponse in TRAINING mode on the real local stack, driven as responders drive it:
// the test declares it, acknowledges, adds a finding and a note, approves containment, reads the
// notice preview through the CLI and approves its digest, and closes the incident. The real
// activities run: the incident record in SeaweedFS, the tenant registry from OpenBao KV, the
// rotateCredential children, the notices rendered from templates/notices and sent to Mailpit
// (the training inbox), then `vaultdr incident review` rebuilds the timeline from history.
// Nothing sealed (training), every notice marked TRAINING, no stack secret in history or notices.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import type { BreachProgress, BreachResult } from '../common/incident';
import { connectClient } from '../client/connect';
import type { Config } from '../infra/config';
import { acknowledge, addFinding, approveContainment, closeIncident, note } from '../workflows/emergency/breachResponse';
import { ensureRotatorToken } from '../stack/stack';
import { loadRecipients } from '../infra/crypto/keys';
import { bao, historyTexts, mailpitMessages, mailpitText, stackSecrets, vaultdrAsync } from './helpers/inspect';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';

/** Classes the training run rotates (rotateCredential children); each must end rotated and verified. */
export const TRAINING_CLASSES = ['approle-secret-id', 'token-lease', 'backup-recipient'] as const;

describe('breachResponse training run on the local stack (responders, rotation children, notices in Mailpit, review)', function () {
  this.timeout(240_000);
  let cfg: Config;
  let client: Client;
  let cliEnv: NodeJS.ProcessEnv;
  let tmp: string;
  /** Credential values before and after the rotations: none may appear in history or a notice. */
  const values: Record<string, string> = {};
  let rotationScopes: Record<string, string> = {};
  const token = crypto.randomBytes(4).toString('hex');
  const tenants = [
    { id: 'acme', name: 'Acme Health GmbH', noticeEmail: `privacy+${token}@acme.test`, secretPaths: ['secret/data/tenants/acme/db', 'secret/data/tenants/acme/smtp'], jurisdictions: ['EU'] },
    { id: 'globex', name: 'Globex Inc.', noticeEmail: `dpo+${token}@globex.test`, secretPaths: ['secret/data/tenants/globex/api'], jurisdictions: ['US-CA'] },
  ];

  before(async () => {
    const base = await ensureStack();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-breach-'));
    // The stack's recipients and validation key are shared with other tests: the rotation replaces copies.
    fs.copyFileSync(base.backup.recipientsFile!, path.join(tmp, 'recipients.json'));
    fs.copyFileSync(base.backup.validationKeyFile!, path.join(tmp, 'validation-key.json'));
    cfg = withQueue(
      {
        ...base,
        backup: { ...base.backup, recipientsFile: path.join(tmp, 'recipients.json'), validationKeyFile: path.join(tmp, 'validation-key.json') },
        rotation: { ...base.rotation, tokenFile: await ensureRotatorToken() },
        // The tenant registry lives in OpenBao KV (the worker's policy reads secret/data/vault-dr/*).
        incident: { ...base.incident, tenantRegistryPath: `vault-dr/tenants-${token}` },
        metrics: { listen: '' },
        restore: { ...base.restore, shareIntakeTokensFile: undefined },
      },
      uniqueQueue('breach'),
    );
    // What the incident says leaked: an AppRole's secret-id, tokens issued under a token role, the validation recipient key.
    const role = `breach-train-${token}`;
    await bao('POST', `auth/approle/role/${role}`, { token_policies: ['default'], token_ttl: '5m' });
    const roleId = (await bao('GET', `auth/approle/role/${role}/role-id`)).json.data.role_id as string;
    values['old secret-id'] = (await bao('POST', `auth/approle/role/${role}/secret-id`, {})).json.data.secret_id as string;
    await bao('POST', `secret/data/vault-dr/credentials/approle-secret-id/${role}`, { data: { role_id: roleId, secret_id: values['old secret-id'] } });
    const tokenRole = `vaultdr-incident-${token}`;
    await bao('POST', `auth/token/roles/${tokenRole}`, { allowed_policies: ['default'], orphan: true });
    values['leaked token'] = (await bao('POST', `auth/token/create/${tokenRole}`, { ttl: '1h' })).json.auth.client_token as string;
    const compromised = loadRecipients(cfg.backup.recipientsFile!).find((r) => r.role === 'validation')!.keyId;
    values['old validation key'] = (JSON.parse(fs.readFileSync(cfg.backup.validationKeyFile!, 'utf8')) as { privateKey: string }).privateKey;
    rotationScopes = { 'approle-secret-id': role, 'token-lease': `auth/token/create/${tokenRole}`, 'backup-recipient': compromised };
    const put = await bao('POST', `secret/data/vault-dr/tenants-${token}`, { data: { tenants } });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    client = await connectClient(cfg);
    // The CLI reads this test's own parsed config (the shared stack's file may be rewritten meanwhile by other branches).
    const file = path.join(tmp, 'vaultdr.json');
    fs.writeFileSync(file, JSON.stringify(cfg), { mode: 0o600 });
    cliEnv = { VAULTDR_CONFIG: file };
  });
  after(async () => {
    await bao('DELETE', `secret/metadata/vault-dr/tenants-${token}`).catch(() => undefined);
    await client?.connection.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('declare → triage → contain → rotate → notify → review, with every responder action on the timeline', async () => {
    const phases: Record<string, number> = {};
    await withWorker(cfg, async () => {
      const t0 = Date.now();
      const mark = (name: string) => (phases[name] = Math.round((Date.now() - t0) / 100) / 10);
      const workflowId = `incident-training-${token}`;
      const h = await client.workflow.start('breachResponse', {
        taskQueue: cfg.temporal.taskQueue,
        workflowId,
        args: [{ training: true, severity: 'sev2', scope: ['vault'], summary: 'training: an AppRole secret-id was printed in a CI log', declaredBy: 'alice', credentialClasses: [...TRAINING_CLASSES], rotationScopes, proposeSeal: true }],
      });
      const until = async (step: string) => {
        for (let i = 0; i < 600; i++) {
          const p = await h.query<BreachProgress>('progress');
          if (p.step === step) return p;
          if (p.step === 'failed') assert.fail(`incident failed: ${p.error}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.fail(`never reached ${step}`);
      };
      await until('awaitAcknowledgement');
      mark('declared');
      await h.executeUpdate(acknowledge, { args: [{ who: 'bob', role: 'incident commander' }] });
      await until('awaitContainmentApproval');
      mark('triaged');
      await h.signal(addFinding, { who: 'carol', finding: 'the CI job printed the secret-id of role vaultdr-worker on 2026-11-30' });
      await h.signal(note, { who: 'carol', text: 'CI logs purged' });
      // Malformed: refused by the validator, the incident goes on.
      await assert.rejects(h.executeUpdate(approveContainment, { args: [{ who: 'bob', approve: 'yes' } as never] }));
      await h.executeUpdate(approveContainment, { args: [{ who: 'bob', approve: true, seal: true, why: 'training: practise the seal decision' }] });
      const atNotices = await until('awaitNoticeApproval');
      mark('contained+rotated');
      assert.deepEqual(
        atNotices.rotations.map((r) => [r.credentialClass, r.rotated, r.newVerified, r.oldRefused]),
        TRAINING_CLASSES.map((c) => [c, true, true, true]),
        `rotations: ${JSON.stringify(atNotices.rotations)}`,
      );
      // The responder reads the notices through the CLI and approves the digest it printed.
      const preview = await vaultdrAsync(['incident', 'notices', 'preview', workflowId], cliEnv);
      assert.equal(preview.code, 0, preview.stderr);
      const digest = /digest ([0-9a-f]{16})/.exec(preview.stdout)?.[1];
      assert.ok(digest, preview.stdout);
      assert.match(preview.stdout, /\[TRAINING\] Notice of Data Breach/);
      // Through the CLI: a digest that is not the preview's is refused with the reason (exit 3), then the right one is accepted.
      const wrong = await vaultdrAsync(['incident', 'approve-notice', workflowId, '--digest', 'ffffffffffffffff', '--who', 'dana', '--why', 'skimmed'], cliEnv);
      assert.equal(wrong.code, 3, wrong.stderr);
      assert.match(wrong.stderr, /refused: .*not the current preview/);
      const right = await vaultdrAsync(['incident', 'approve-notice', workflowId, '--digest', digest, '--who', 'dana', '--why', 'both notices read'], cliEnv);
      assert.equal(right.code, 0, right.stderr);
      await until('awaitIncidentClose');
      mark('notified');
      await h.executeUpdate(closeIncident, { args: [{ who: 'bob', summary: 'training incident closed', contributingFactors: ['CI prints env'], actionItems: [{ what: 'mask CI variables', owner: 'eve', due: '2026-12-15' }] }] });
      const r = (await h.result()) as BreachResult;
      mark('closed');
      assert.equal(r.training, true);
      assert.equal(r.noticesSent, 2);
      assert.equal(r.noticesSentWithinDeadline, true);
      assert.ok(r.timeline.some((t) => t.what === 'emergencySeal' && /TRAINING: .*nothing was sealed/.test(t.detail)), 'training never seals');
      assert.deepEqual(
        r.timeline.filter((t) => t.who !== 'vault-dr').map((t) => `${t.who}:${t.what}`),
        ['alice:declare', 'bob:acknowledge', 'carol:addFinding', 'carol:note', 'bob:approveContainment', 'dana:approveNotice', 'bob:closeIncident'],
      );
      const health = await bao('GET', 'sys/seal-status');
      assert.equal(health.json.sealed, false, 'a training run must not seal the cluster');

      // Two notices in Mailpit, one per tenant, marked TRAINING, with the CA headings and the tenant's paths.
      const mails: { to: string; subject: string; text: string }[] = [];
      for (let i = 0; i < 50 && mails.length < 2; i++) {
        mails.length = 0;
        for (const m of (await mailpitMessages()).filter((x) => x.To.some((t) => t.Address.includes(token)))) mails.push({ to: m.To[0]!.Address, subject: m.Subject, text: await mailpitText(m.ID) });
        if (mails.length < 2) await new Promise((res) => setTimeout(res, 200));
      }
      assert.deepEqual(mails.map((m) => m.to).sort(), tenants.map((t) => t.noticeEmail).sort());
      for (const m of mails) {
        const tenant = tenants.find((t) => t.noticeEmail === m.to)!;
        assert.match(m.subject, /^\[TRAINING\] Notice of Data Breach/);
        assert.match(m.text, /TRAINING EXERCISE/);
        for (const heading of ['What Happened', 'What Information Was Involved', 'What We Are Doing', 'What You Can Do', 'For More Information']) assert.ok(m.text.includes(heading), `${heading} missing`);
        assert.ok(m.text.includes(tenant.name) && tenant.secretPaths.every((p) => m.text.includes(p)), m.text);
        assert.match(m.text, /the CI job printed the secret-id/, 'findings reach the notice');
        for (const c of TRAINING_CLASSES) assert.ok(m.text.includes(`${c}: replaced`), `rotation of ${c} not reported`);
      }
      mark('mail checked');

      // The review's timeline, rebuilt from history by the CLI.
      const review = await vaultdrAsync(['incident', 'review', workflowId], cliEnv);
      assert.equal(review.code, 0, review.stderr);
      for (const line of ['| bob | acknowledge |', '| carol | addFinding |', '| dana | approveNotice |', '| bob | closeIncident |', 'rotateCredential completed', '| mask CI variables | eve | 2026-12-15 |']) assert.ok(review.stdout.includes(line), `review lacks "${line}":\n${review.stdout}`);

      // No secret the stack holds, and no old or new credential value, in the histories (incident and children) or the notices.
      values['new secret-id'] = (await bao('GET', `secret/data/vault-dr/credentials/approle-secret-id/${rotationScopes['approle-secret-id']}`)).json.data.data.secret_id as string;
      values['new validation key'] = (JSON.parse(fs.readFileSync(cfg.backup.validationKeyFile!, 'utf8')) as { privateKey: string }).privateKey;
      assert.notEqual(values['new secret-id'], values['old secret-id']);
      assert.notEqual(values['new validation key'], values['old validation key']);
      const histories = await Promise.all([workflowId, ...TRAINING_CLASSES.map((c) => `${workflowId}-rotate-${c}`)].map((id) => historyTexts(client, cfg, id)));
      const everything = [...histories.flatMap((t) => [t.raw, ...t.decoded]), ...mails.map((m) => m.text), review.stdout].join('\n');
      for (const s of [...stackSecrets(), ...Object.entries(values).map(([name, value]) => ({ name, value }))]) assert.ok(!everything.includes(s.value), `${s.name} found in a history, a notice or the review`);
      process.stdout.write(`      phases (s from declaration): ${JSON.stringify(phases)}\n`);

      // Declaring from the terminal: a bad flag is refused before anything starts; a good one starts
      // a run that `incident status` follows (ended here: it is not part of the exercise).
      const bad = await vaultdrAsync(['incident', 'declare', '--severity', 'sev9'], cliEnv);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /field "severity"/);
      const declared = await vaultdrAsync(['--json', 'incident', 'declare', '--training', '--by', 'alice', '--summary', 'CLI declaration check', '--classes', 'token-lease'], cliEnv);
      assert.equal(declared.code, 0, declared.stderr);
      const declaredId = (JSON.parse(declared.stdout) as { workflowId: string }).workflowId;
      try {
        let status = '';
        for (let i = 0; i < 50 && !/waiting  acknowledgement/.test(status); i++) {
          status = (await vaultdrAsync(['incident', 'status', declaredId], cliEnv)).stdout;
          if (!/waiting  acknowledgement/.test(status)) await new Promise((res) => setTimeout(res, 300));
        }
        assert.match(status, /^\[TRAINING\] incident INC-/);
        assert.match(status, /waiting  acknowledgement: a responder runs: vaultdr incident ack/);
        assert.match(status, /alice +declare +sev2 vault: CLI declaration check \(TRAINING\)/);
      } finally {
        await client.workflow.getHandle(declaredId).terminate('CLI declaration check done');
      }
    });
  });
});
