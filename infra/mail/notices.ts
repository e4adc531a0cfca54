// Tenant notices: the versioned templates in templates/notices, the tenant registry's format, and
// the renderer. Rendering is closed: a template may only name the variables in NOTICE_VARIABLES,
// every one must be non-empty for every tenant (checked for all tenants before anything is sent),
// and the rendered text is refused when it holds anything shaped like a secret or equal to a
// secret value this process holds. The variables themselves are built only from non-secret facts
// (ids, names, paths, booleans, responder prose that passed the same secret check).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { failure } from '../../common/errors';
import { secretShapeIn } from '../../common/incident';

export const NOTICE_VARIABLES = [
  'incident_id',
  'aware_at',
  'next_update',
  'provider_name',
  'contact',
  'tenant_id',
  'tenant_name',
  'affected_paths',
  'record_count',
  'what_happened',
  'nature',
  'breach_window',
  'data_subjects',
  'consequences',
  'tenant_actions',
  'law_enforcement',
  'measures',
  'rotation_status',
] as const;
export type NoticeVariable = (typeof NOTICE_VARIABLES)[number];
export type NoticeVars = Record<NoticeVariable, string>;

const mailAddress = z.string().regex(/^[^@\s]+@[^@\s]+$/, 'expected a mail address');

/** The tenant registry ({"tenants": [...]}) from a file or Vault KV; unknown fields are refused, not carried. */
export const TenantRegistry = z
  .object({
    tenants: z
      .array(
        z
          .object({
            id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a tenant id like acme'),
            name: z.string().trim().min(1).max(200),
            /** Where the controller wants breach notices (their privacy/security contact). */
            noticeEmail: mailAddress,
            /** The tenant's secret paths on the platform (KV v2 paths, names only). */
            secretPaths: z.array(z.string().regex(/^[\w.-]+\/[\w./-]+$/, 'expected a path like secret/data/acme/db')).max(1000).default([]),
            jurisdictions: z.array(z.string().max(20)).max(20).default([]),
          })
          .strict(),
      )
      .min(1, 'the registry lists no tenant'),
  })
  .strict();
export type TenantRegistry = z.output<typeof TenantRegistry>;
export type Tenant = TenantRegistry['tenants'][number];

export interface NoticeTemplate {
  version: number;
  sha256: string;
  file: string;
  subject: string;
  body: string;
}

export function defaultTemplatesDir(): string {
  // lib/infra/mail/notices.js → <project>/templates/notices.
  return path.resolve(__dirname, '..', '..', '..', 'templates', 'notices');
}

/** The template of `version`, or the newest one. NoticeTemplateInvalid when absent or malformed. */
export function loadNoticeTemplate(dir: string, version?: number): NoticeTemplate {
  let files: string[];
  try {
    files = fs.readdirSync(dir);
  } catch (err) {
    throw failure('NoticeTemplateInvalid', `notice templates folder ${dir} unreadable: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const versions = files.flatMap((f) => {
    const m = /^tenant-notice\.v(\d+)\.txt$/.exec(f);
    return m ? [Number(m[1])] : [];
  });
  if (versions.length === 0) throw failure('NoticeTemplateInvalid', `no tenant-notice.v<N>.txt in ${dir}`);
  const v = version ?? Math.max(...versions);
  if (!versions.includes(v)) throw failure('NoticeTemplateInvalid', `template version ${v} not found in ${dir} (have ${versions.sort((a, b) => a - b).join(', ')})`);
  const file = path.join(dir, `tenant-notice.v${v}.txt`);
  const raw = fs.readFileSync(file, 'utf8');
  const m = /^Subject: (.+)\r?\n\r?\n([\s\S]+)$/.exec(raw);
  if (!m) throw failure('NoticeTemplateInvalid', `${file}: expected "Subject: ..." on the first line, then a blank line, then the body`);
  return { version: v, sha256: crypto.createHash('sha256').update(raw).digest('hex'), file, subject: m[1]!, body: m[2]! };
}

/** The variables a template names (subject and body). */
export function templateVariables(t: Pick<NoticeTemplate, 'subject' | 'body'>): string[] {
  return [...new Set([...`${t.subject}\n${t.body}`.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)].map((m) => m[1]!))];
}

/**
 * Renders one notice. Throws NoticeTemplateInvalid naming every unknown or empty variable, and
 * NoticeContainsSecret when the result looks like it holds a secret or holds one of `denied`.
 */
export function renderNotice(t: NoticeTemplate, vars: NoticeVars, o: { tenantId: string; training: boolean; denied?: readonly string[] }): { subject: string; text: string } {
  const names = templateVariables(t);
  const unknown = names.filter((n) => !(NOTICE_VARIABLES as readonly string[]).includes(n));
  const empty = names.filter((n) => (NOTICE_VARIABLES as readonly string[]).includes(n) && !vars[n as NoticeVariable]?.trim());
  if (unknown.length || empty.length) {
    throw failure(
      'NoticeTemplateInvalid',
      `template v${t.version} for tenant ${o.tenantId}: ${[...(unknown.length ? [`unknown variable(s) ${unknown.join(', ')}`] : []), ...(empty.length ? [`missing value(s) for ${empty.join(', ')}`] : [])].join('; ')}; nothing was sent`,
    );
  }
  const fill = (s: string) => s.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (_m, n: string) => vars[n as NoticeVariable]);
  // Training is marked by the renderer, whatever the template says.
  const subject = `${o.training ? '[TRAINING] ' : ''}${fill(t.subject)}`.replace(/\s+/g, ' ').trim();
  const banner = o.training ? '*** TRAINING EXERCISE - NOT A REAL INCIDENT - NO ACTION NEEDED ***\n\n' : '';
  const text = `${banner}${fill(t.body)}${o.training ? `\n${banner.trim()}\n` : ''}`;
  assertNoSecret(`${subject}\n${text}`, o.tenantId, o.denied ?? []);
  return { subject, text };
}

/** NoticeContainsSecret when `text` looks like it holds a secret or contains one of `denied` (without echoing it). */
export function assertNoSecret(text: string, tenantId: string, denied: readonly string[]): void {
  const shape = secretShapeIn(text);
  if (shape) throw failure('NoticeContainsSecret', `notice for tenant ${tenantId} looks like it contains ${shape}; nothing was sent (find the field it came from: incident summary, findings or notice facts)`);
  if (denied.some((d) => d.length >= 8 && text.includes(d))) throw failure('NoticeContainsSecret', `notice for tenant ${tenantId} contains a credential this worker holds; nothing was sent`);
}

/** Digest of a set of rendered notices: the approver names it, so they approve exactly what they read. */
export function previewDigest(previews: { tenantId: string; to: string; subject: string; text: string }[]): string {
  const h = crypto.createHash('sha256');
  for (const p of [...previews].sort((a, b) => a.tenantId.localeCompare(b.tenantId))) h.update(JSON.stringify([p.tenantId, p.to, p.subject, p.text]));
  return h.digest('hex').slice(0, 16);
}
