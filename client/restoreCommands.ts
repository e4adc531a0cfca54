// `vaultdr restore ...` and the offline `vaultdr backup decrypt`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { BACKUP_ID, RESTORE_TARGET, VAULT_DR_STEP, WAITING_FOR_APPROVAL_QUERY } from '../common/searchAttributes';
import type { BackupManifest } from '../common/backup';
import type { RestoreRecord } from '../common/restore';
import { restoreActivities } from '../activities/restore/restore';
import { buildS3Client } from '../infra/clients';
import { reconstructFromShares } from '../infra/crypto/escrow';
import { loadPrivateKeyFile } from '../infra/crypto/keys';
import { BackupCatalog } from '../infra/store/catalog';
import { verifyBackupStream, verifyStoredBackup } from '../infra/crypto/verifyBackup';
import type { CliContext } from './backupCommands';
import { startWorkflow } from './workflows';
import { connectClient } from './connect';
import { approveRestore, type RestoreProgress } from '../workflows/restore/restoreVault';

export interface WaitingRestore {
  workflowId: string;
  runId: string;
  startedAt: string;
  backupId?: string;
  target?: string;
  step?: string;
}

/** Production restores waiting for a person's approval: one visibility query (the same one the Web UI runs). */
export async function listRestoresWaitingForApproval(client: Client): Promise<WaitingRestore[]> {
  const out: WaitingRestore[] = [];
  for await (const w of client.workflow.list({ query: WAITING_FOR_APPROVAL_QUERY })) {
    out.push({
      workflowId: w.workflowId,
      runId: w.runId,
      startedAt: w.startTime.toISOString(),
      backupId: w.typedSearchAttributes.get(BACKUP_ID),
      target: w.typedSearchAttributes.get(RESTORE_TARGET),
      step: w.typedSearchAttributes.get(VAULT_DR_STEP),
    });
  }
  return out;
}

function renderPlan(workflowId: string, p: RestoreProgress): string {
  const plan = p.plan!;
  return [
    `production restore ${workflowId}: ${p.step}`,
    ...(p.requestedBy ? [`  started  by ${p.requestedBy} (the approver must be someone else)`] : []),
    `  target   ${plan.targetAddress} (${plan.targetInitialized ? (plan.targetSealed ? 'sealed' : 'unsealed') : 'uninitialised'}, cluster ${plan.targetClusterId || '?'}, raft index ${plan.targetRaftIndex || '?'})`,
    `  backup   ${plan.backupId} of ${plan.backupCreatedAt} (cluster ${plan.backupClusterId}, raft index ${plan.backupRaftIndex})`,
    `  replaces ${plan.sameCluster ? 'the same cluster' : 'ANOTHER cluster'}${plan.older ? ' with OLDER data (approval needs --allow-older)' : ''}`,
    ...(p.waitingFor ? [`  waiting  ${p.waitingFor}`] : []),
  ].join('\n');
}

/** The OS user running the CLI (an operator claim like any other; see docs/runbooks/restore.md). */
function osUser(): string | undefined {
  try {
    return os.userInfo().username || undefined;
  } catch {
    return undefined;
  }
}

function renderRecord(r: RestoreRecord): string {
  const rto = r.rtoSeconds === undefined ? '   -' : `${r.rtoSeconds}s`.padStart(5);
  return `${r.startedAt}  ${r.status.padEnd(8)} backup ${r.backupId}  RPO ${`${r.rpoSeconds}s`.padStart(8)}  RTO ${rto}  ${r.reason}${r.failedStep ? `  (failed at ${r.failedStep}: ${r.error})` : ''}`;
}

async function privateKeyFrom(opts: { shares?: string[]; validationKey?: string }, fallback: string | undefined, ctx: CliContext): Promise<Buffer> {
  try {
    if (opts.shares) return (await reconstructFromShares(opts.shares)).privateKey;
    const file = opts.validationKey ?? fallback;
    if (!file) return ctx.fail('no key: give --shares FILES... or --validation-key FILE', 2);
    return loadPrivateKeyFile(file);
  } catch (err) {
    return ctx.fail((err as Error).message);
  }
}

export function registerRestoreCommands(program: Command, ctx: CliContext): void {
  const restore = program.command('restore').description('restores into staging, restore validation and RTO/RPO history');
  const runRestore = async (cmd: Command, input: { backupId: string; reason: string; requestedBy?: string }) => {
    const cfg = ctx.cfgOf(cmd);
    const workflowId = `restoreVault-cli-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const r = (await startWorkflow(cfg, 'restoreVault', { ...input, target: 'staging' }, { wait: true, workflowId })) as RestoreRecord & { historyKey: string };
    ctx.out(ctx.json(cmd), r, () =>
      [
        `restore ${r.restoreId}: ${r.status.toUpperCase()} (backup ${r.backupId}, raft index ${r.raftIndex})`,
        `  canary   ${r.checks?.canary.matches ? 'matches' : 'DIFFERS'} (${r.checks?.canary.path})`,
        `  secrets  ${r.checks?.readable.length ?? 0} readable, ${r.checks?.unreadable.length ?? 0} unreadable`,
        ...(r.checks?.kv ? [`  kv       ${r.checks.kv.paths} paths / ${r.checks.kv.versions} versions in ${r.checks.kv.mount}/ (manifest ${r.checks.kv.expected.paths.join('–')} / ${r.checks.kv.expected.versions.join('–')})`] : []),
        `  RPO      ${r.rpoSeconds}s (snapshot ${r.snapshotCreatedAt} → restore start)`,
        `  RTO      ${r.rtoSeconds}s (restore start → secrets verified)`,
        `  history  s3://${cfg.s3.bucket}/${r.historyKey}`,
      ].join('\n'),
    );
  };
  restore
    .command('run')
    .description('restore a backup into a throwaway staging OpenBao and verify the secrets (waits for the result)')
    .option('--backup <id>', 'backup id (default: latest verified)', 'latest')
    .option('--target <target>', 'staging | production (production waits for `vaultdr restore approve`)', 'staging')
    .option('--reason <text>', 'why (recorded in the restore history)', 'manual')
    .option('--requested-by <name>', 'who starts the restore (default: the OS user); a production restore must be approved by someone else')
    .action(async (opts: { backup: string; target: string; reason: string; requestedBy?: string }, cmd: Command) => {
      const requestedBy = opts.requestedBy ?? osUser();
      if (opts.target === 'staging') return runRestore(cmd, { backupId: opts.backup, reason: opts.reason, ...(requestedBy ? { requestedBy } : {}) });
      if (opts.target !== 'production') ctx.fail(`--target: expected staging or production, got "${opts.target}"`, 2);
      if (!requestedBy) ctx.fail('--requested-by: no OS user name to record; say who starts the restore', 2);
      const cfg = ctx.cfgOf(cmd);
      const workflowId = `restoreVault-production-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      await startWorkflow(cfg, 'restoreVault', { backupId: opts.backup, target: 'production', reason: opts.reason, requestedBy }, { wait: false, workflowId });
      const client = await connectClient(cfg);
      try {
        const h = client.workflow.getHandle(workflowId);
        let p: RestoreProgress = await h.query<RestoreProgress>('progress');
        const deadline = Date.now() + 10 * 60_000;
        while (!p.plan && p.step !== 'failed' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 500));
          p = await h.query<RestoreProgress>('progress');
        }
        if (p.step === 'failed') ctx.fail(`restore ${workflowId} failed: ${p.error}`);
        if (!p.plan) ctx.fail(`restore ${workflowId} started but has no plan yet (step ${p.step}); follow it with: vaultdr restore status ${workflowId}`);
        ctx.out(ctx.json(cmd), { workflowId, plan: p.plan, waitingFor: p.waitingFor }, () => renderPlan(workflowId, p));
      } finally {
        await client.connection.close();
      }
    });
  restore
    .command('list')
    .description(`restores by state; --waiting: those waiting for approval (Web UI query: ${WAITING_FOR_APPROVAL_QUERY})`)
    .option('--waiting', 'production restores waiting for approval', false)
    .action(async (opts: { waiting: boolean }, cmd: Command) => {
      if (!opts.waiting) ctx.fail('say what to list: --waiting (restores waiting for approval); past restores: vaultdr restore history', 2);
      const client = await connectClient(ctx.cfgOf(cmd));
      try {
        const rows = await listRestoresWaitingForApproval(client);
        ctx.out(ctx.json(cmd), rows, () =>
          rows.length
            ? [`${rows.length} restore(s) waiting for approval (read the plan with "vaultdr restore status ID", then "vaultdr restore approve ID --who NAME --why REASON"):`, ...rows.map((r) => `  ${r.workflowId}  backup ${r.backupId ?? '?'} → ${r.target ?? '?'}  since ${r.startedAt}`)].join('\n')
            : 'no restore is waiting for approval',
        );
      } finally {
        await client.connection.close();
      }
    });
  restore
    .command('status')
    .argument('<workflowId>', 'restore workflow id')
    .description('where a restore is, its plan and what it waits for')
    .action(async (workflowId: string, _o: unknown, cmd: Command) => {
      const client = await connectClient(ctx.cfgOf(cmd));
      try {
        const p = await client.workflow.getHandle(workflowId).query<RestoreProgress>('progress');
        ctx.out(ctx.json(cmd), p, () => (p.plan ? renderPlan(workflowId, p) : `${workflowId}: ${p.step}${p.waitingFor ? ` — waiting for ${p.waitingFor}` : ''}`));
      } finally {
        await client.connection.close();
      }
    });
  restore
    .command('approve')
    .argument('<workflowId>', 'the production restore waiting for approval')
    .requiredOption('--who <name>', 'the responder deciding')
    .requiredOption('--why <reason>', 'why (recorded)')
    .option('--refuse', 'refuse instead of approve (the target stays untouched)', false)
    .option('--allow-older', 'allow replacing newer data with this older snapshot', false)
    .description('approve (or --refuse) a production restore after reading its plan')
    .action(async (workflowId: string, opts: { who: string; why: string; refuse: boolean; allowOlder: boolean }, cmd: Command) => {
      const client = await connectClient(ctx.cfgOf(cmd));
      try {
        const res = await client.workflow
          .getHandle(workflowId)
          .executeUpdate(approveRestore, { args: [{ approve: !opts.refuse, who: opts.who, why: opts.why, allowOlderSnapshot: opts.allowOlder }] })
          .catch((err: Error) => ctx.fail(`not accepted: ${(err.cause as Error | undefined)?.message ?? err.message}`));
        ctx.out(ctx.json(cmd), { workflowId, ...res }, () => `${workflowId}: ${res.approve ? 'approved — the restore proceeds' : 'refused — the target stays untouched'}`);
      } finally {
        await client.connection.close();
      }
    });
  restore
    .command('validate')
    .description('run the weekly restore validation now (latest verified backup → staging) and wait for its result')
    .action(async (_o: unknown, cmd: Command) => runRestore(cmd, { backupId: 'latest', reason: 'validation (manual)' }));
  restore
    .command('history')
    .description('past restores with RPO and RTO, newest first')
    .option('--limit <n>', 'rows', '20')
    .action(async (opts: { limit: string }, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) ctx.fail(`--limit: expected a positive integer, got "${opts.limit}"`, 2);
      const rows = await restoreActivities({ s3: buildS3Client(cfg.s3), cfg }).listRestoreHistory({ limit });
      ctx.out(ctx.json(cmd), rows, () => (rows.length ? rows.map(renderRecord).join('\n') : 'no restores recorded'));
    });

  program
    .commands.find((c) => c.name() === 'backup')!
    .command('decrypt')
    .argument('<id>', 'backup id')
    .description('decrypt a backup to a raft snapshot file that `bao operator raft snapshot restore` accepts; --offline needs no Temporal and no worker')
    .requiredOption('--out <file>', 'where to write the decrypted snapshot (created 0600, never overwritten)')
    .option('--offline', 'state that vault-dr is down: this command never needs Temporal or a worker (with --object/--manifest it needs no S3 or config either)', false)
    .option('--object <file>', 'read the encrypted object from this file instead of S3')
    .option('--manifest <file>', 'read the manifest from this file instead of S3')
    .option('--shares <files...>', 'custodian share files to rebuild the escrow key')
    .option('--validation-key <file>', 'validation private key file')
    .action(async (id: string, opts: { out: string; object?: string; manifest?: string; shares?: string[]; validationKey?: string }, cmd: Command) => {
      const cfg = (() => {
        try {
          return ctx.cfgOf(cmd);
        } catch (err) {
          if (opts.object && opts.manifest) return undefined; // fully offline: no config needed
          throw err;
        }
      })();
      const manifest = opts.manifest
        ? (JSON.parse(fs.readFileSync(opts.manifest, 'utf8')) as BackupManifest)
        : await new BackupCatalog(buildS3Client(cfg!.s3), cfg!.s3.bucket).manifest(id);
      if (!manifest) return ctx.fail(`backup ${id}: manifest not found`);
      if (manifest.backupId !== id) ctx.fail(`manifest is for backup ${manifest.backupId}, not ${id}`);
      const key = await privateKeyFrom(opts, cfg?.backup.validationKeyFile, ctx);
      const out = path.resolve(opts.out);
      const file = fs.createWriteStream(out, { flags: 'wx', mode: 0o600 });
      await new Promise<void>((resolve, reject) => {
        file.once('open', () => resolve());
        file.once('error', (err) => reject(new Error(`cannot create ${out}: ${(err as NodeJS.ErrnoException).code}`)));
      });
      try {
        const report = opts.object
          ? await verifyBackupStream({ source: fs.createReadStream(opts.object) as Readable, objectName: opts.object, manifest, privateKey: key, plaintextSink: file })
          : await verifyStoredBackup({ s3: buildS3Client(cfg!.s3), manifest, privateKey: key, plaintextSink: file });
        await new Promise<void>((r) => file.once('close', () => r()));
        ctx.out(ctx.json(cmd), { ...report, out }, () => `decrypted backup ${report.backupId} → ${out} (${report.plaintextBytes} bytes, sha256 ${report.plaintextSha256}, raft index ${report.raftIndex}); all checks passed`);
      } catch (err) {
        file.destroy();
        fs.rmSync(out, { force: true }); // never leave a partial snapshot behind
        return ctx.fail(`backup ${id}: ${(err as Error).message}`);
      } finally {
        key.fill(0);
      }
    });
}
