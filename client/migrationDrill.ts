// `vaultdr drill migration`: the full VPS migration old → new on the local hosts
// (stack/mailhosts.ts), then the integrated SMTP recovery drill (the live Vault unavailable: the
// credentials come from the latest backup restored into a throwaway OpenBao), then a compensation
// drill (a wrong relay password: the migration fails at recoverSmtpCredentials and undoes what it
// changed). It runs its own worker (every role, a drill queue) with the drill's migration config,
// and writes a Markdown report: steps, timings, checks, compensations. Never prints a secret.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { MigrateResult, SmtpRecoveryResult } from '../common/migration';
import type { Config } from '../infra/config';
import { freePort } from '../infra/vault/stagingVault';
import { leaseHosts, prepareMigration, resetNewHost, seedMigrationSecrets } from '../stack/migrationFixture';
import { stackDir } from '../stack/stack';
import { buildWorker } from '../workers/worker';
import { connectClient } from './connect';

export interface DrillPart {
  name: string;
  workflowId: string;
  ok: boolean;
  seconds: number;
  lines: string[];
}

export interface MigrationDrillReport {
  startedAt: string;
  finishedAt: string;
  ok: boolean;
  parts: DrillPart[];
  file?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForStep(client: Client, workflowId: string, step: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const p = await client.workflow.getHandle(workflowId).query<{ step: string; error?: string }>('progress').catch(() => undefined);
    if (p?.step === step) return;
    if (p?.step === 'failed' || Date.now() > deadline) return;
    await sleep(500);
  }
}

function migrationLines(r: MigrateResult): string[] {
  return [
    '| step | seconds |',
    '|---|---|',
    ...r.timings.map((t) => `| ${t.step} | ${t.seconds} |`),
    '',
    `- new host: ${r.newHost.host}, ${r.newHost.os}, host key ${r.newHost.hostKeySha256} (pinned), ${r.newHost.diskFreeMiB} MiB free`,
    `- old host: ${'os' in (r.oldHost ?? {}) ? `${(r.oldHost as { host: string }).host} reachable` : JSON.stringify(r.oldHost)}`,
    `- secrets (${r.secretSource}): ${r.secrets.map((s) => `${s.path} v${s.version}`).join(', ')}`,
    `- SSH keys: ${r.sshKeys.deployed.length} deployed (${r.sshKeys.deployed.join(', ')}); refused after removal: ${r.sshKeys.refused.join(', ') || 'none'}; previous kept at ${r.sshKeys.previousKept}`,
    `- SMTP decryption path: ${r.smtp.hops.map((h) => `${h.hop} ${h.ok ? 'ok' : 'FAILED'}`).join(' → ')}`,
    `- mail host: ${r.smtp.applied}; relay ${r.smtp.relay.host} from ${r.smtp.relay.path} v${r.smtp.relay.version}`,
    `- webmail login ${r.smtp.webmail.url}: HTTP ${r.smtp.webmail.status}, inbox ${r.smtp.webmail.inboxSeen ? 'seen' : 'NOT seen'}; IMAP login ${r.smtp.imap.login ? 'ok' : 'FAILED'} (${r.smtp.imap.mailbox})`,
    `- DKIM: d=${r.dkim.domain} s=${r.dkim.selector}, public key ${r.dkim.publicKeySha256}, DNS TXT ${r.dkim.dnsMatches ? 'matches' : 'DIFFERS'}`,
    `- test mail ${r.mail.messageId}: selector ${r.mail.selector}, DKIM ${r.mail.dkim}, SPF ${r.mail.spf}, DMARC ${r.mail.dmarc}`,
    ...(r.cutover ? [`- cutover approved by ${r.cutover.who} (${r.cutover.why}) at ${r.cutover.at}; re-check: DKIM ${r.cutover.recheck.dkim}, SPF ${r.cutover.recheck.spf}, DMARC ${r.cutover.recheck.dmarc}`] : []),
    '- compensations: none (nothing failed)',
  ];
}

function smtpLines(r: SmtpRecoveryResult, unavailable: string): string[] {
  return [
    `- live Vault made unavailable: the migration worker's vault address pointed at ${unavailable} (nothing listens)`,
    `- source: ${r.source}${r.backupId ? `, backup ${r.backupId} restored into a throwaway OpenBao (torn down after)` : ''}`,
    ...r.hops.map((h) => `- hop "${h.hop}": ${h.ok ? 'ok' : 'FAILED'} — ${h.detail}`),
    `- mail host: ${r.applied}; relay ${r.relay.host} from ${r.relay.path} v${r.relay.version}`,
    `- webmail login ${r.webmail.url}: HTTP ${r.webmail.status}, inbox ${r.webmail.inboxSeen ? 'seen' : 'NOT seen'}; IMAP ${r.imap.login ? 'ok' : 'FAILED'}`,
  ];
}

export function renderReport(r: MigrationDrillReport): string {
  return [
    `# Migration drill ${r.startedAt}`,
    '',
    `Result: **${r.ok ? 'PASSED' : 'FAILED'}** (${r.startedAt} → ${r.finishedAt}). Hosts: the local old-vps and new-vps (network namespaces, Debian sshd, Postfix, Dovecot, OpenDKIM, Roundcube configured from MailU's files; NSD zone; relay Mailpit with SMTP AUTH). Written by \`vaultdr drill migration\`.`,
    '',
    ...r.parts.flatMap((p) => [`## ${p.name}: ${p.ok ? 'passed' : 'FAILED'} (${p.seconds.toFixed(1)} s)`, '', `Workflow: \`${p.workflowId}\``, '', ...p.lines, '']),
  ].join('\n');
}

/** Runs the three parts; `reportDir` receives `migration-<timestamp>.md`. */
export async function runMigrationDrill(base: Config, reportDir: string, log: (l: string) => void = () => {}): Promise<MigrationDrillReport> {
  // The drill's own workers log warnings only (the report is the output); the expected failure of the compensation part is in the report.
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // a runtime is already installed (tests): keep it
  }
  const release = await leaseHosts();
  const startedAt = new Date().toISOString();
  const stamp = startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const parts: DrillPart[] = [];
  try {
    const queue = `drill-migration-${stamp}-${crypto.randomBytes(2).toString('hex')}`;
    const fx = await prepareMigration({ ...base, temporal: { ...base.temporal, taskQueue: queue } });
    const cfg = fx.cfg;
    const client = await connectClient(cfg);
    const runWith = async <T>(c: Config, fn: () => Promise<T>): Promise<T> => {
      const w = await buildWorker(c);
      try {
        return await w.runUntil(fn());
      } finally {
        await w.connection.close();
      }
    };
    try {
      // 1. Full migration old → new.
      log('drill: migration old → new');
      let t0 = Date.now();
      const migId = `drill-migrateVps-${stamp}`;
      const mig = await runWith(cfg, async () => {
        const h = await client.workflow.start('migrateVps', { taskQueue: queue, workflowId: migId, args: [{ reason: 'migration drill' }], staticSummary: 'Migration drill: old-vps → new-vps' });
        await waitForStep(client, migId, 'awaitCutover', 300_000);
        await h.executeUpdate('approveCutover', { args: [{ who: 'vaultdr drill', why: 'migration drill: cutover on the local hosts' }] }).catch(() => undefined);
        return (await h.result()) as MigrateResult;
      }).then(
        (r) => ({ ok: r.status === 'migrated' && /^pass/.test(r.mail.dkim) && r.smtp.webmail.inboxSeen, lines: migrationLines(r) }),
        (e: Error) => ({ ok: false, lines: [`- failed: ${e instanceof WorkflowFailedError ? (e.cause?.message ?? e.message) : e.message}`] }),
      );
      parts.push({ name: 'VPS migration old → new', workflowId: migId, ok: mig.ok, seconds: (Date.now() - t0) / 1000, lines: mig.lines });

      // 2. SMTP recovery with the live Vault unavailable: from the latest backup.
      log('drill: SMTP recovery from the latest backup (Vault unavailable)');
      resetNewHost(fx.hosts, fx.mailbox.email);
      const dead = `http://127.0.0.1:${await freePort()}`;
      t0 = Date.now();
      const smtpId = `drill-recoverSmtpCredentials-${stamp}`;
      const smtp = await runWith({ ...cfg, migration: { ...cfg.migration, vaultAddress: dead } }, async () => {
        const backup = (await client.workflow.execute('backupVault', { taskQueue: queue, workflowId: `drill-backup-${stamp}`, args: [{ trigger: 'manual', prune: false }] })) as { backupId: string };
        return (await client.workflow.execute('recoverSmtpCredentials', { taskQueue: queue, workflowId: smtpId, args: [{ reason: 'SMTP recovery drill', backupId: backup.backupId }] })) as SmtpRecoveryResult;
      }).then(
        (r) => ({ ok: r.source === 'backup' && r.hops.every((h) => h.ok) && r.webmail.inboxSeen && r.imap.login, lines: smtpLines(r, dead) }),
        (e: Error) => ({ ok: false, lines: [`- failed: ${e instanceof WorkflowFailedError ? (e.cause?.message ?? e.message) : e.message}`] }),
      );
      parts.push({ name: 'SMTP recovery with Vault unavailable (from backup)', workflowId: smtpId, ok: smtp.ok, seconds: (Date.now() - t0) / 1000, lines: smtp.lines });

      // 3. Compensation: a wrong relay password stops the migration, which undoes its changes.
      log('drill: compensation (wrong relay password)');
      resetNewHost(fx.hosts, fx.mailbox.email);
      const seeded = await seedMigrationSecrets('migration-drill-wrongpw', fx.hosts, path.join(stackDir(), 'migration'), { relayPassword: crypto.randomBytes(12).toString('base64url') });
      t0 = Date.now();
      const compId = `drill-compensation-${stamp}`;
      const comp = await runWith({ ...cfg, migration: { ...cfg.migration, secrets: seeded.paths } }, () => client.workflow.execute('migrateVps', { taskQueue: queue, workflowId: compId, args: [{ reason: 'compensation drill', awaitCutover: false }] })).then(
        () => ({ ok: false, lines: ['- the migration succeeded with a wrong relay password: the relay check is broken'] }),
        (e: Error) => {
          const msg = e instanceof WorkflowFailedError ? (e.cause?.message ?? e.message) : e.message;
          const undone = /previous mail configuration .* restored/.test(msg) && /previous authorized_keys restored/.test(msg);
          return { ok: /SmtpAuth|refused the credentials/.test(msg) && undone, lines: [`- expected failure: ${msg}`, `- compensations ran in reverse order: ${undone ? 'mail configuration, then authorized_keys' : 'NOT all undone'}`] };
        },
      );
      parts.push({ name: 'Compensation: wrong relay password', workflowId: compId, ok: comp.ok, seconds: (Date.now() - t0) / 1000, lines: comp.lines });
      // Leave new-vps at its baseline for whoever uses the hosts next.
      resetNewHost(fx.hosts, fx.mailbox.email);
    } finally {
      await client.connection.close();
    }
  } finally {
    release();
  }
  const report: MigrationDrillReport = { startedAt, finishedAt: new Date().toISOString(), ok: parts.length === 3 && parts.every((p) => p.ok), parts };
  fs.mkdirSync(reportDir, { recursive: true });
  report.file = path.join(reportDir, `migration-${stamp}.md`);
  fs.writeFileSync(report.file, renderReport(report) + '\n');
  return report;
}
