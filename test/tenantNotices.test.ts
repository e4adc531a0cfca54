// Tenant notices without a server: the repo's templates name only known variables; a template
// with an unknown variable, or a tenant or fact with no value, fails prepareTenantNotices for
// every tenant before anything is sent; a notice carrying anything shaped like a secret, or a
// credential the worker holds, is refused; responder text that looks like a secret is refused at
// the door while paths, ids and prose pass.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { incidentActivities, type SharedNoticeFacts } from '../activities/emergency/incident';
import { BreachInput, secretShapeIn } from '../common/incident';
import { ConfigSchema } from '../infra/config';
import { NOTICE_VARIABLES, defaultTemplatesDir, loadNoticeTemplate, templateVariables } from '../infra/mail/notices';

const facts: SharedNoticeFacts = {
  incident_id: 'INC-20261201T2200Z-0123abcd',
  aware_at: '2026-12-01T22:00:00.000Z',
  next_update: '2026-12-02T22:00:00.000Z',
  what_happened: 'an AppRole secret-id was printed in a CI log',
  nature: 'credential leak',
  breach_window: '2026-11-30 to 2026-12-01',
  data_subjects: 'not yet known',
  consequences: 'secrets at the listed paths could have been read',
  tenant_actions: 're-fetch rotated credentials',
  law_enforcement: 'not delayed',
  measures: '  - rotated',
  rotation_status: '  - approle-secret-id: replaced',
};

describe('tenant notices: closed templates, nothing sent on a missing variable, no secret in a notice', () => {
  let dir: string;
  let sent = 0;
  const held = 'f3c1e2d4-5b6a-4789-9abc-def012345678';
  const acts = (o: { templatesDir?: string; tenants?: unknown } = {}) => {
    const tenantsFile = path.join(dir, `tenants-${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(tenantsFile, JSON.stringify(o.tenants ?? { tenants: [{ id: 'acme', name: 'Acme', noticeEmail: 'privacy@acme.test', secretPaths: ['secret/data/acme/db'] }, { id: 'globex', name: 'Globex', noticeEmail: 'dpo@globex.test' }] }));
    const incident = { ...ConfigSchema.parse({ codec: { keysFile: 'k' }, vault: { tokenFile: 't' } }).incident, tenantsFile, ...(o.templatesDir ? { templatesDir: o.templatesDir } : {}) };
    const mail = { sendMail: async () => void sent++ } as never;
    return incidentActivities({ bao: undefined as never, s3: undefined as never, bucket: 'b', kvMount: 'secret', incident, mail, trainingMail: mail, deniedValues: async () => [held] });
  };
  const rejectsWith = (type: string, re: RegExp) => (e: unknown) => e instanceof ApplicationFailure && e.type === type && re.test(e.message);

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-notices-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('every template in the repo names only known variables and renders for every tenant', async () => {
    const t = loadNoticeTemplate(defaultTemplatesDir());
    const names = templateVariables(t);
    assert.deepEqual(names.filter((n) => !(NOTICE_VARIABLES as readonly string[]).includes(n)), []);
    assert.deepEqual([...NOTICE_VARIABLES].filter((n) => !names.includes(n)), [], 'a variable no template uses');
    const out = await acts().prepareTenantNotices({ incidentId: facts.incident_id, training: false, facts });
    assert.equal(out.previews.length, 2);
    assert.match(out.previewDigest, /^[0-9a-f]{16}$/);
    assert.ok(out.previews[0]!.text.includes('secret/data/acme/db'));
    assert.ok(!out.previews[0]!.subject.includes('TRAINING'));
    const training = await acts().prepareTenantNotices({ incidentId: facts.incident_id, training: true, facts });
    assert.ok(training.previews.every((p) => p.subject.startsWith('[TRAINING]') && p.text.startsWith('*** TRAINING EXERCISE')));
    assert.notEqual(training.previewDigest, out.previewDigest);
  });

  it('a template with an unknown variable, or a fact with no value, fails before anything is sent', async () => {
    const tdir = path.join(dir, 'templates');
    fs.mkdirSync(tdir, { recursive: true });
    fs.writeFileSync(path.join(tdir, 'tenant-notice.v1.txt'), 'Subject: Notice {{incident_id}}\n\nDear {{tenant_name}}, see {{ticket_url}}.\n');
    fs.writeFileSync(path.join(tdir, 'tenant-notice.v2.txt'), 'Subject: Notice {{incident_id}}\n\n{{consequences}}\n');
    await assert.rejects(acts({ templatesDir: tdir }).prepareTenantNotices({ incidentId: 'i', training: false, templateVersion: 1, facts }), rejectsWith('NoticeTemplateInvalid', /unknown variable\(s\) ticket_url; nothing was sent/));
    await assert.rejects(acts({ templatesDir: tdir }).prepareTenantNotices({ incidentId: 'i', training: false, facts: { ...facts, consequences: '  ' } }), rejectsWith('NoticeTemplateInvalid', /missing value\(s\) for consequences/));
    await assert.rejects(acts({ templatesDir: tdir }).prepareTenantNotices({ incidentId: 'i', training: false, templateVersion: 7, facts }), rejectsWith('NoticeTemplateInvalid', /version 7 not found/));
    await assert.rejects(acts({ tenants: { tenants: [{ id: 'acme', name: 'Acme' }] } }).prepareTenantNotices({ incidentId: 'i', training: false, facts }), rejectsWith('TenantRegistryInvalid', /tenants\.0\.noticeEmail/));
    await assert.rejects(acts({ tenants: { tenants: [{ id: 'acme', name: 'Acme', noticeEmail: 'a@b.test', apiKey: 'x' }] } }).prepareTenantNotices({ incidentId: 'i', training: false, facts }), rejectsWith('TenantRegistryInvalid', /unknown field/));
    assert.equal(sent, 0);
  });

  it('a notice holding a secret-shaped value or a credential the worker holds is refused, and never sent', async () => {
    await assert.rejects(acts().prepareTenantNotices({ incidentId: 'i', training: false, facts: { ...facts, what_happened: 'token hvs.CAESIJ1a2b3c4d5e6f7g8h9i0jKLMNOP leaked' } }), rejectsWith('NoticeContainsSecret', /looks like it contains a Vault\/OpenBao token; nothing was sent/));
    await assert.rejects(acts().prepareTenantNotices({ incidentId: 'i', training: false, facts: { ...facts, measures: `  - revoked ${held}` } }), rejectsWith('NoticeContainsSecret', /contains a credential this worker holds/));
    const e = await acts().prepareTenantNotices({ incidentId: 'i', training: false, facts: { ...facts, measures: `  - revoked ${held}` } }).catch((x: Error) => x);
    assert.ok(!(e as Error).message.includes(held), 'the refusal does not echo the value');
    // The send activity checks again, whatever it is handed.
    await assert.rejects(acts().sendTenantNotice({ incidentId: 'i', training: false, notice: { tenantId: 'acme', to: 'a@b.test', subject: 's', text: '-----BEGIN PRIVATE KEY-----' } }), rejectsWith('NoticeContainsSecret', /private key/));
    await assert.rejects(acts().sendTenantNotice({ incidentId: 'i', training: true, notice: { tenantId: 'acme', to: 'a@b.test', subject: 'Notice', text: 'x' } }), rejectsWith('NoticeTemplateInvalid', /not marked TRAINING/));
    assert.equal(sent, 0);
  });

  it('responder text that looks like a secret is refused at the door; paths, ids and prose pass', () => {
    for (const ok of ['secret/data/tenants/acme/db', 'incident-2026-12-01T22-00-00-000Z-training', 'INC-20261201T2200Z-0123abcd', 'the CI job printed it on 2026-11-30 at 14:02', 'Datenschutzfolgenabschätzungsverfahren']) assert.equal(secretShapeIn(ok), undefined, ok);
    for (const bad of ['hvs.CAESIJ1a2b3c4d5e6f7g8h9i0jKLMNOP', '-----BEGIN OPENSSH PRIVATE KEY-----', 'AKIAABCDEFGHIJKLMNOP', 'password: hunter2hunter2', 'k2: 3q2+7w8Zr0A9xQ1m4NfT6yUe5VbKcLdH0pWj', 'https://hooks.slack.com/services/T0/B0/xyz']) assert.ok(secretShapeIn(bad), bad);
    const r = BreachInput.safeParse({ summary: 'root token s.Xy12Ab34Cd56Ef78Gh90Ij12 leaked' });
    assert.ok(!r.success && /looks like it contains a Vault\/OpenBao token/.test(JSON.stringify(r.error.issues)));
  });
});
