// Activities of the breachResponse workflow that hold no credential beyond the notify role's
// (docs/runbooks/breach-response.md): the incident record in the backup bucket (GDPR Art. 33(5):
// every breach is documented), the exposure assessment, and the tenant notices: rendered from the
// versioned templates for every tenant before anything is approved or sent, then sent one tenant
// per activity (retried by Temporal; an S3 record per tenant keeps a retry or a restarted worker
// from sending twice).
import * as fs from 'node:fs';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import type { BaoClient } from '../../infra/vault/bao';
import type { Config } from '../../infra/config';
import type { MailTransport } from '../../infra/clients';
import { failure } from '../../common/errors';
import { describeIssues } from '../../common/validate';
import type { NoticePreview } from '../../common/incident';
import { TenantRegistry, assertNoSecret, defaultTemplatesDir, loadNoticeTemplate, previewDigest, renderNotice, type NoticeVars, type Tenant } from '../../infra/mail/notices';

/** Facts every tenant's notice shares; the activity adds the tenant's own and the config's. */
export type SharedNoticeFacts = Omit<NoticeVars, 'tenant_id' | 'tenant_name' | 'affected_paths' | 'record_count' | 'provider_name' | 'contact'>;

export interface IncidentDeps {
  bao: BaoClient;
  s3: S3Client;
  bucket: string;
  kvMount: string;
  incident: Config['incident'];
  /** The relay for real notices (smtp.*) and the training inbox (incident.trainingSmtp, Mailpit). */
  mail: MailTransport;
  trainingMail: MailTransport;
  /** Credential values this process holds: a notice containing one is refused. */
  deniedValues: () => Promise<string[]>;
}

const recordKey = (incidentId: string) => `incidents/${incidentId}/record.json`;
const noticeKey = (incidentId: string, tenantId: string) => `incidents/${incidentId}/notices/${tenantId}.json`;

interface NoticeRecord {
  tenantId: string;
  to: string;
  messageId: string;
  sentAt: string;
  attempt: number;
}

export const incidentActivities = (deps: IncidentDeps) => {
  async function readJson<T>(key: string): Promise<T | undefined> {
    try {
      const res = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
      return JSON.parse(await res.Body!.transformToString()) as T;
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw failure('StoreUnreachable', `cannot read ${key}: ${(err as Error).message}`);
    }
  }

  async function putJson(key: string, value: unknown): Promise<void> {
    try {
      await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, ContentType: 'application/json', Body: JSON.stringify(value, null, 2) }));
    } catch (err) {
      throw failure('StoreUnreachable', `cannot write ${key}: ${(err as Error).message}`);
    }
  }

  /** The tenant registry: the configured file, else Vault KV. Only the schema's fields are kept. */
  async function loadRegistry(): Promise<TenantRegistry> {
    let raw: unknown;
    let where: string;
    if (deps.incident.tenantsFile) {
      where = deps.incident.tenantsFile;
      try {
        raw = JSON.parse(fs.readFileSync(where, 'utf8'));
      } catch (err) {
        throw failure('TenantRegistryInvalid', `tenant registry ${where}: ${err instanceof SyntaxError ? 'not valid JSON' : ((err as NodeJS.ErrnoException).code ?? String(err))}`);
      }
    } else {
      where = `${deps.kvMount}/${deps.incident.tenantRegistryPath}`;
      try {
        raw = ((await deps.bao.read(`${deps.kvMount}/data/${deps.incident.tenantRegistryPath}`)) as { data?: { data?: unknown } }).data?.data;
      } catch (err) {
        if ((err as { status?: number }).status === 404) throw failure('TenantRegistryInvalid', `no tenant registry at ${where} (Vault KV) and no incident.tenantsFile`);
        throw err;
      }
    }
    const parsed = TenantRegistry.safeParse(raw);
    if (!parsed.success) throw failure('TenantRegistryInvalid', `tenant registry ${where}: ${describeIssues(parsed.error.issues)}`);
    return parsed.data;
  }

  function pick(registry: TenantRegistry, ids: string[] | undefined): Tenant[] {
    if (!ids) return registry.tenants;
    const missing = ids.filter((id) => !registry.tenants.some((t) => t.id === id));
    if (missing.length) throw failure('TenantRegistryInvalid', `tenant(s) ${missing.join(', ')} not in the registry`);
    return registry.tenants.filter((t) => ids.includes(t.id));
  }

  return {
    /** Writes (or replaces) the incident's record in the bucket: the Art. 33(5) documentation. */
    async recordIncident(req: { incidentId: string; record: Record<string, unknown> }): Promise<{ key: string }> {
      const key = recordKey(req.incidentId);
      await putJson(key, { ...req.record, recordedAt: new Date().toISOString() });
      return { key };
    },

    /** What the scope touches: Vault's state and the tenants (with their secret-path counts) to notify. */
    async assessExposure(req: { scope: string[]; tenants?: string[] }): Promise<{ vault: string; tenants: { id: string; name: string; secretPaths: number }[] }> {
      let vault: string;
      try {
        const h = await deps.bao.health();
        vault = `${deps.bao.address}: ${h.sealed ? 'SEALED' : 'unsealed'}, ${h.standby ? 'standby' : 'active'}, version ${h.version}`;
      } catch (err) {
        vault = `${deps.bao.address}: unreachable (${(err as Error).message.split('\n')[0]})`;
      }
      const tenants = pick(await loadRegistry(), req.tenants).map((t) => ({ id: t.id, name: t.name, secretPaths: t.secretPaths.length }));
      return { vault, tenants };
    },

    /**
     * Renders every tenant's notice from one template version. Fails before anything is sent when
     * a variable is unknown or empty for any tenant, or a notice looks like it holds a secret.
     */
    async prepareTenantNotices(req: { incidentId: string; training: boolean; templateVersion?: number; tenants?: string[]; facts: SharedNoticeFacts }): Promise<{ templateVersion: number; templateSha256: string; previewDigest: string; previews: NoticePreview[] }> {
      const template = loadNoticeTemplate(deps.incident.templatesDir ?? defaultTemplatesDir(), req.templateVersion);
      const tenants = pick(await loadRegistry(), req.tenants);
      const denied = await deps.deniedValues();
      const previews = tenants.map((t) => {
        const vars: NoticeVars = {
          ...req.facts,
          tenant_id: t.id,
          tenant_name: t.name,
          affected_paths: t.secretPaths.length ? t.secretPaths.map((p) => `  - ${p}`).join('\n') : '  - none of your secret paths were reachable with the affected credentials',
          record_count: String(t.secretPaths.length),
          provider_name: deps.incident.providerName,
          contact: deps.incident.contact,
        };
        const { subject, text } = renderNotice(template, vars, { tenantId: t.id, training: req.training, denied });
        return { tenantId: t.id, to: t.noticeEmail, subject, text };
      });
      return { templateVersion: template.version, templateSha256: template.sha256, previewDigest: previewDigest(previews), previews };
    },

    /**
     * Sends one tenant's approved notice (training: to the training inbox only). Sent at most once
     * per incident and tenant: a retry or a restarted worker finds the record and returns it.
     */
    async sendTenantNotice(req: { incidentId: string; training: boolean; notice: NoticePreview }): Promise<NoticeRecord & { reused: boolean }> {
      // Checked again here, first: the activity must not trust that what it was handed was rendered by prepareTenantNotices.
      assertNoSecret(`${req.notice.subject}\n${req.notice.text}`, req.notice.tenantId, await deps.deniedValues());
      if (req.training && !req.notice.subject.startsWith('[TRAINING]')) throw failure('NoticeTemplateInvalid', `training notice for ${req.notice.tenantId} is not marked TRAINING; nothing was sent`);
      const key = noticeKey(req.incidentId, req.notice.tenantId);
      const earlier = await readJson<NoticeRecord>(key);
      if (earlier) return { ...earlier, reused: true };
      const attempt = Context.current().info.attempt;
      const messageId = `<${req.incidentId}.${req.notice.tenantId}@vault-dr>`;
      try {
        await (req.training ? deps.trainingMail : deps.mail).sendMail({
          from: deps.incident.from,
          to: req.notice.to,
          replyTo: deps.incident.contact,
          subject: req.notice.subject,
          text: req.notice.text,
          messageId,
          headers: { 'X-VaultDR-Incident': req.incidentId, 'X-VaultDR-Tenant': req.notice.tenantId, ...(req.training ? { 'X-VaultDR-Training': 'yes' } : {}) },
        });
      } catch (err) {
        throw failure('NoticeDeliveryFailed', `notice to tenant ${req.notice.tenantId} (${req.notice.to}) not accepted: ${(err as Error).message.split('\n')[0]}`);
      }
      const record: NoticeRecord = { tenantId: req.notice.tenantId, to: req.notice.to, messageId, sentAt: new Date().toISOString(), attempt };
      await putJson(key, record);
      return { ...record, reused: false };
    },
  };
};

export type IncidentActivities = ReturnType<typeof incidentActivities>;
