// `vaultdr bucket apply` (once, with bucket-admin credentials: creates and configures the backup
// bucket) and `vaultdr bucket check` (read-only: the settings, and every backup's pinned object
// version). The backup worker never writes bucket configuration; it runs the same check nightly.
import { Command } from 'commander';
import { BackupCatalog, DAMAGED_STATUSES } from '../infra/store/catalog';
import { applyBucket, bucketSpec, checkBucket, type BucketCheck } from '../infra/store/bucketPolicy';
import { buildS3Client } from '../infra/clients';
import type { CliContext } from './backupCommands';

function renderCheck(c: BucketCheck): string[] {
  return [
    ...Object.entries(c.settings).map(([k, v]) => `  ${k.padEnd(18)} ${v}`),
    `  ${'lifecycle'.padEnd(18)} ${c.lifecycle}`,
    ...c.differences.map((d) => `  differs: ${d}`),
  ];
}

export function registerBucketCommands(program: Command, ctx: CliContext): void {
  const bucket = program.command('bucket').description('the backup bucket: configure once with admin rights, check read-only');

  bucket
    .command('apply')
    .description('create the bucket (object lock on) and set encryption, versioning, public access block, object-lock default retention and vault-dr\'s lifecycle rules (other rules are kept); idempotent')
    .option('--admin-credentials <file>', 'JSON {"accessKeyId","secretAccessKey"} with bucket-admin rights (default: s3.adminCredentialsFile)')
    .action(async (opts: { adminCredentials?: string }, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const file = opts.adminCredentials ?? cfg.s3.adminCredentialsFile;
      if (!file) return ctx.fail('no admin credentials: give --admin-credentials FILE or set s3.adminCredentialsFile (the backup worker\'s own credentials must not be able to change bucket settings)', 2);
      const s3 = buildS3Client({ ...cfg.s3, credentialsFile: file });
      const r = await applyBucket(s3, bucketSpec(cfg));
      ctx.out(ctx.json(cmd), r, () =>
        [
          `bucket ${r.bucket}: ${r.check.compliant ? 'COMPLIANT' : 'NOT COMPLIANT'}${r.created ? ' (created)' : ''}`,
          ...(r.changed.length ? r.changed.map((c) => `  set      ${c}`) : ['  nothing to change']),
          ...r.unsupported.map((u) => `  store does not support: ${u}`),
          ...renderCheck(r.check),
        ].join('\n'),
      );
      if (!r.check.compliant) process.exitCode = 3;
    });

  bucket
    .command('check')
    .description('read-only: compare the bucket settings with what `bucket apply` sets, and check that every backup\'s pinned object version is still there and current')
    .action(async (_o: unknown, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const s3 = buildS3Client(cfg.s3);
      const check = await checkBucket(s3, bucketSpec(cfg));
      const damaged = check.exists ? (await new BackupCatalog(s3, cfg.s3.bucket).list()).filter((b) => DAMAGED_STATUSES.includes(b.status)) : [];
      const ok = check.compliant && damaged.length === 0;
      ctx.out(ctx.json(cmd), { ...check, damagedBackups: damaged.map((d) => ({ backupId: d.backupId, status: d.status, problem: d.problem })) }, () =>
        [
          `bucket ${check.bucket}: ${check.compliant ? 'settings compliant' : 'SETTINGS DIFFER'}; ${damaged.length ? `${damaged.length} DAMAGED backup(s)` : 'every backup object is the version its manifest pins'}`,
          ...renderCheck(check),
          ...damaged.map((d) => `  backup ${d.backupId}: ${d.problem}`),
        ].join('\n'),
      );
      if (!ok) process.exitCode = 3;
    });
}
