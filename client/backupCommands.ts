// `vaultdr backup ...`, `vaultdr keys ...` and `vaultdr schedules ...`.
import type { IntakeStatus } from '../infra/vault/shareIntake';
import * as path from 'node:path';
import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { backupObjectKeys, manifestProblem, type BackupManifest, type BackupResult } from '../common/backup';
import { BackupCatalog } from '../infra/store/catalog';
import { buildClients } from '../infra/clients';
import type { Config } from '../infra/config';
import { initKeys, readShareFile, reconstructFromShares } from '../infra/crypto/escrow';
import { readTokensFile } from '../infra/temporal/codecServer';
import { loadPrivateKeyFile, loadRecipients } from '../infra/crypto/keys';
import { verifyStoredBackup, type VerifyReport } from '../infra/crypto/verifyBackup';
import { connectClient } from './connect';
import { applySchedules } from './schedules';
import { startWorkflow } from './workflows';

export interface CliContext {
  cfgOf: (cmd: Command) => Config;
  json: (cmd: Command) => boolean;
  out: (json: boolean, value: unknown, human: () => string) => void;
  fail: (message: string, code?: number) => never;
}

function age(iso: string): string {
  if (!iso) return '?';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 3600) return `${Math.round(s / 60)}m`;
  if (s < 86400 * 2) return `${(s / 3600).toFixed(1)}h`;
  return `${Math.round(s / 86400)}d`;
}

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

async function loadManifest(cfg: Config, id: string, ctx: CliContext): Promise<BackupManifest> {
  const { s3 } = buildClients(cfg);
  let backupId = id;
  if (id === 'latest') {
    const list = await new BackupCatalog(s3, cfg.s3.bucket).list();
    // Only an intact verified backup: an overwritten one's status is no longer 'verified'.
    const newest = list.find((b) => b.status === 'verified');
    if (!newest) ctx.fail(`no verified backup in bucket ${cfg.s3.bucket}`);
    backupId = newest.backupId;
  }
  if (!/^[0-9TZ]+-[0-9a-f]{8}$/.test(backupId)) ctx.fail(`backup id "${id}" is not an id like 20261128T020000Z-1a2b3c4d or "latest"`, 2);
  const key = backupObjectKeys(backupId).manifest;
  let manifest: BackupManifest | undefined;
  try {
    manifest = await new BackupCatalog(s3, cfg.s3.bucket).manifest(backupId);
  } catch (err) {
    return ctx.fail(`backup ${backupId}: cannot read manifest: ${(err as Error).message}`);
  }
  if (!manifest) return ctx.fail(`backup ${backupId}: manifest ${key} not found in bucket ${cfg.s3.bucket}`);
  const problem = manifestProblem(backupId, manifest);
  return problem ? ctx.fail(`backup ${backupId}: ${problem}`) : manifest;
}

/** The retention line of `backup run`: what was pruned and kept, or that pruning was skipped. */
export function renderRetention(r: Pick<BackupResult, 'retention' | 'pruned' | 'keptCount' | 'unverifiedKept'>): string {
  if (r.retention === 'skipped') return '  retention skipped (--no-prune)';
  return `  retention deleted ${r.pruned.length ? r.pruned.join(', ') : 'nothing'}; ${r.keptCount} kept${r.unverifiedKept.length ? `; unverified kept: ${r.unverifiedKept.join(', ')}` : ''}`;
}

export function registerBackupCommands(program: Command, ctx: CliContext): void {
  const backup = program.command('backup').description('encrypted Vault snapshots in S3');

  backup
    .command('run')
    .description('start backupVault now (the daily schedule runs the same workflow)')
    .option('--no-wait', 'print the workflow id and return without waiting')
    .option('--no-prune', 'skip retention after the backup')
    .action(async (opts: { wait: boolean; prune: boolean }, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const workflowId = `backupVault-cli-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      const res = await startWorkflow(cfg, 'backupVault', { trigger: 'cli', prune: opts.prune }, { wait: opts.wait, workflowId });
      if (!opts.wait) return ctx.out(ctx.json(cmd), { workflowId }, () => `started ${workflowId}`);
      const r = res as BackupResult;
      ctx.out(ctx.json(cmd), { workflowId, ...r }, () =>
        [
          `backup ${r.backupId}: VERIFIED`,
          `  object    s3://${cfg.s3.bucket}/${r.objectKey} (${mib(r.objectBytes)}, snapshot ${mib(r.plaintextBytes)}, raft index ${r.raftIndex})`,
          `  manifest  s3://${cfg.s3.bucket}/${r.manifestKey}`,
          `  sha256    ${r.objectSha256}`,
          renderRetention(r),
          `  verify    npx ${r.verifyCommand}`,
        ].join('\n'),
      );
    });

  backup
    .command('list')
    .description('backups in the bucket, newest first, with status and age')
    .action(async (_o: unknown, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const list = await new BackupCatalog(buildClients(cfg).s3, cfg.s3.bucket).list();
      ctx.out(ctx.json(cmd), list, () =>
        list.length === 0
          ? `no backups in bucket ${cfg.s3.bucket}`
          : list
              .map((b) => `${b.backupId}  ${b.status.padEnd(11)} age ${age(b.createdAt).padStart(5)}  ${mib(b.objectBytes).padStart(12)}  raft ${b.raftIndex ?? '?'}  ${b.trigger ?? ''}${b.problem ? `\n    ! ${b.manifestStatus ?? ''} backup damaged: ${b.problem}` : ''}`)
              .join('\n'),
      );
    });

  backup
    .command('verify')
    .argument('<id>', 'backup id or "latest"')
    .description('download, check checksums, decrypt and check the raft snapshot structure; writes nothing to disk')
    .option('--shares <files...>', 'custodian share files (at least the threshold) to rebuild the escrow key')
    .option('--validation-key <file>', 'validation private key file (default: backup.validationKeyFile)')
    .action(async (id: string, opts: { shares?: string[]; validationKey?: string }, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const json = ctx.json(cmd);
      const manifest = await loadManifest(cfg, id, ctx);
      let key: Buffer;
      let keyDesc: string;
      try {
        if (opts.shares) {
          const r = await reconstructFromShares(opts.shares);
          key = r.privateKey;
          keyDesc = `escrow key ${r.keyId} rebuilt from ${opts.shares.length} shares`;
        } else {
          const file = opts.validationKey ?? cfg.backup.validationKeyFile;
          if (!file) return ctx.fail('no key: give --shares FILES... or --validation-key FILE (or set backup.validationKeyFile)', 2);
          key = loadPrivateKeyFile(file);
          keyDesc = `validation key ${path.basename(file)}`;
        }
      } catch (err) {
        return ctx.fail((err as Error).message);
      }
      const bar = !json && process.stderr.isTTY ? new SingleBar({ format: 'verify [{bar}] {percentage}% {value}/{total} bytes', stream: process.stderr }, Presets.shades_classic) : undefined;
      let report: VerifyReport;
      try {
        report = await verifyStoredBackup({
          s3: buildClients(cfg).s3,
          manifest,
          privateKey: key,
          onStart: (total) => bar?.start(total, 0),
          onProgress: (n) => bar?.update(n),
        });
      } catch (err) {
        bar?.stop();
        return ctx.fail(`backup ${manifest.backupId}: ${(err as Error).message}`);
      } finally {
        key.fill(0);
      }
      bar?.stop();
      ctx.out(json, { ...report, status: 'verified', key: keyDesc }, () => [`backup ${report.backupId}: VERIFIED with ${keyDesc}`, ...report.checks.map((c) => `  ok  ${c}`)].join('\n'));
    });

  const keys = program.command('keys').description('backup key material and its escrow');
  keys
    .command('init')
    .description('generate the escrow key (split into Shamir shares for custodians) and a validation key; the worker gets public keys only')
    .requiredOption('--out <dir>', 'folder for recipients.json and the share files')
    .option('--shares <n>', 'number of shares', '5')
    .option('--threshold <k>', 'shares needed to rebuild', '3')
    .option('--validation-key <file>', 'also create a validation key pair, private half to this file')
    .action(async (opts: { out: string; shares: string; threshold: string; validationKey?: string }, cmd: Command) => {
      const shares = Number(opts.shares);
      const threshold = Number(opts.threshold);
      if (!Number.isInteger(shares) || shares < 2 || shares > 255) ctx.fail(`--shares: expected an integer 2..255, got "${opts.shares}"`, 2);
      if (!Number.isInteger(threshold) || threshold < 2 || threshold > shares) ctx.fail(`--threshold: expected an integer 2..${shares}, got "${opts.threshold}"`, 2);
      const r = await initKeys({ outDir: opts.out, shares, threshold, validationKeyFile: opts.validationKey });
      ctx.out(ctx.json(cmd), r, () =>
        [
          `escrow key ${r.escrowKeyId}: ${shares} shares, any ${threshold} rebuild it`,
          ...r.shareFiles.map((f) => `  share  ${f}  → give to one custodian, then delete here`),
          `  public ${r.recipientsFile}  → set backup.recipientsFile (VAULTDR_BACKUP_RECIPIENTS_FILE) on the worker`,
          ...(r.validationKeyFile ? [`validation key ${r.validationKeyId}: private half in ${r.validationKeyFile} (restore-validation host only)`] : []),
          `prove the shares: npx vaultdr keys verify-shares ${r.shareFiles.slice(0, threshold).join(' ')}`,
        ].join('\n'),
      );
    });
  keys
    .command('verify-shares')
    .argument('<files...>', 'share files')
    .option('--recipients <file>', 'recipients file to match (default: backup.recipientsFile)')
    .description('prove that these shares rebuild the escrow key (by fingerprint) without writing it anywhere')
    .action(async (files: string[], opts: { recipients?: string }, cmd: Command) => {
      let result;
      try {
        result = await reconstructFromShares(files);
      } catch (err) {
        return ctx.fail((err as Error).message);
      }
      result.privateKey.fill(0);
      let matches: boolean | undefined;
      const recipientsFile = opts.recipients ?? (() => {
        try {
          return ctx.cfgOf(cmd).backup.recipientsFile;
        } catch {
          return undefined;
        }
      })();
      if (recipientsFile) matches = loadRecipients(recipientsFile).some((r) => r.role === 'escrow' && r.keyId === result.keyId);
      if (matches === false) ctx.fail(`the shares rebuild ${result.keyId}, which is not the escrow recipient in ${recipientsFile}`);
      ctx.out(ctx.json(cmd), { keyId: result.keyId, shares: files.length, threshold: result.threshold, matchesRecipients: matches ?? null }, () =>
        `OK: ${files.length} shares rebuild escrow key ${result.keyId} (threshold ${result.threshold})${matches ? `, the escrow recipient in ${recipientsFile}` : ''}`,
      );
    });

  keys
    .command('submit-share')
    .argument('<workflowId>', 'the restore waiting for custodian shares')
    .argument('<files...>', 'your share file(s)')
    .option('--endpoint <url>', 'the restore worker\'s share intake (default: http://<restore.shareIntakeListen>)')
    .option('--token-file <file>', 'share intake bearer token file (default: restore.shareIntakeTokensFile)')
    .description('hand custodian shares to the restore worker directly (never through Temporal)')
    .action(async (workflowId: string, files: string[], opts: { endpoint?: string; tokenFile?: string }, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const endpoint = opts.endpoint ?? `http://${cfg.restore.shareIntakeListen.replace(/^0\.0\.0\.0:/, '127.0.0.1:')}`;
      const tokenFile = opts.tokenFile ?? cfg.restore.shareIntakeTokensFile;
      if (!tokenFile) return ctx.fail('no token: give --token-file or set restore.shareIntakeTokensFile', 2);
      const token = readTokensFile(tokenFile)[0];
      if (!token) return ctx.fail(`token file ${tokenFile} holds no token`);
      let status: IntakeStatus | undefined;
      for (const file of files) {
        const share = readShareFile(file);
        let res: Response;
        try {
          res = await fetch(`${endpoint}/shares/${encodeURIComponent(workflowId)}`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(share) });
        } catch (err) {
          return ctx.fail(`restore worker at ${endpoint} unreachable: ${(err as Error).message}`);
        }
        const body = (await res.json()) as { error?: string } & typeof status;
        if (res.status !== 200) return ctx.fail(`share ${path.basename(file)} not accepted: ${body?.error ?? `HTTP ${res.status}`}`);
        status = body;
      }
      ctx.out(ctx.json(cmd), status, () =>
        [
          `${workflowId}: ${status!.received} share(s) of ${status!.threshold} received for ${status!.keyId}${status!.ready ? ' — threshold reached, the restore continues' : ''}`,
          ...(status!.rejected ?? []).map((r) => `rejected: ${r.reason}`),
        ].join('\n'),
      );
    });

  const schedules = program.command('schedules').description('Temporal Schedules owned by vault-dr');
  schedules
    .command('apply')
    .description('create or update the schedules (daily backup at 02:00 UTC)')
    .action(async (_o: unknown, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const client = await connectClient(cfg);
      try {
        const res = await applySchedules(client, cfg);
        ctx.out(ctx.json(cmd), res, () => res.map((r) => `${r.scheduleId}: ${r.action}`).join('\n'));
      } finally {
        await client.connection.close();
      }
    });
}
