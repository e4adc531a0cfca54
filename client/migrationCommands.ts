// `vaultdr migration ...` (start a VPS migration or an SMTP credential recovery, approve the
// cutover) and `vaultdr drill migration` (the migration drill on the local hosts, with its report).
import type { Command } from 'commander';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { MigrateInput, RecoverSmtpInput } from '../common/migration';
import type { CliContext } from './backupCommands';
import { connectClient } from './connect';
import { runMigrationDrill } from './migrationDrill';
import { startWorkflow } from './workflows';

export function registerMigrationCommands(program: Command, ctx: CliContext): void {
  const migration = program.command('migration').description('VPS migration with SMTP credential recovery (docs/runbooks/vps-migration.md)');
  migration
    .command('start')
    .description('start migrateVps (defaults from migration.* in the config); waits for the cutover approval')
    .option('--new-host <address>', 'the new VPS address')
    .option('--host-key <SHA256:...>', "the new VPS's pinned host key fingerprint (ssh-keygen -lf)")
    .option('--secret-source <auto|live|backup>', 'where the secrets come from', 'auto')
    .option('--reason <text>', 'why', 'manual')
    .action(async (opts: { newHost?: string; hostKey?: string; secretSource: string; reason: string }, cmd: Command) => {
      const input: MigrateInput = { newHost: { ...(opts.newHost ? { address: opts.newHost } : {}), ...(opts.hostKey ? { hostKeySha256: opts.hostKey } : {}) }, secretSource: opts.secretSource as never, reason: opts.reason };
      const r = (await startWorkflow(ctx.cfgOf(cmd), 'migrateVps', input, { wait: false })) as unknown as { workflowId: string };
      ctx.out(ctx.json(cmd), r, () => `started ${r.workflowId}; follow it with: vaultdr workflows list --type migrateVps; approve the cutover with: vaultdr migration approve-cutover ${r.workflowId} --who NAME --why REASON`);
    });
  migration
    .command('recover-smtp')
    .description('start recoverSmtpCredentials (docs/runbooks/smtp-recovery.md) and wait for it')
    .option('--secret-source <auto|live|backup>', 'where the credentials come from', 'auto')
    .action(async (opts: { secretSource: string }, cmd: Command) => {
      const input: RecoverSmtpInput = { secretSource: opts.secretSource as never };
      const r = await startWorkflow(ctx.cfgOf(cmd), 'recoverSmtpCredentials', input, { wait: true });
      ctx.out(ctx.json(cmd), r, () => [`source: ${r.source}${r.backupId ? ` (backup ${r.backupId})` : ''}`, ...r.hops.map((h) => `  ${h.hop}: ${h.ok ? 'ok' : 'FAILED'} (${h.detail})`), `webmail: ${r.webmail.inboxSeen ? 'login ok' : 'FAILED'}; IMAP: ${r.imap.login ? 'ok' : 'FAILED'}`].join('\n'));
    });
  migration
    .command('approve-cutover <workflowId>')
    .description('approve (or, with --refuse, refuse) the DNS/IP switch of a migration waiting for it')
    .requiredOption('--who <name>', 'who decides')
    .requiredOption('--why <reason>', 'why (ticket, change window)')
    .option('--refuse', 'refuse the cutover')
    .action(async (workflowId: string, opts: { who: string; why: string; refuse?: boolean }, cmd: Command) => {
      const client = await connectClient(ctx.cfgOf(cmd));
      try {
        const r = await client.workflow.getHandle(workflowId).executeUpdate('approveCutover', { args: [{ who: opts.who, why: opts.why, approve: !opts.refuse }] });
        ctx.out(ctx.json(cmd), r, () => `${opts.refuse ? 'refused' : 'approved'}: the migration records the switch and re-runs its checks`);
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) ctx.fail(`rejected: ${err.cause?.message ?? err.message}`, 2);
        throw err;
      } finally {
        await client.connection.close();
      }
    });

  const drill = program.commands.find((c) => c.name() === 'drill') ?? program.command('drill').description('disaster-recovery drills');
  drill
    .command('migration')
    .description('full migration old → new on the local hosts, the SMTP recovery drill (Vault unavailable → backup) and a compensation drill; writes a Markdown report')
    .option('--report-dir <dir>', 'where the report goes', 'docs/drills')
    .action(async (opts: { reportDir: string }, cmd: Command) => {
      const r = await runMigrationDrill(ctx.cfgOf(cmd), opts.reportDir, (l) => process.stderr.write(`${l}\n`));
      ctx.out(ctx.json(cmd), r, () => [`migration drill ${r.ok ? 'PASSED' : 'FAILED'}; report: ${r.file}`, ...r.parts.map((p) => `  ${p.ok ? 'ok    ' : 'FAILED'} ${p.name} (${p.seconds.toFixed(1)} s)`)].join('\n'));
      if (!r.ok) process.exitCode = 3;
    });
}
