// The backup bucket's settings, in two halves with different rights:
// - applyBucket: run once (`vaultdr bucket apply`, the local stack at `stack up`) with ADMIN
//   credentials: creates the bucket with object lock, sets default encryption, versioning, the
//   public access block and object-lock default retention, and merges vault-dr's lifecycle rules
//   into the existing ones by rule ID (other rules survive).
// - checkBucket: READ-ONLY (GetBucket* only), run every night by the backup worker and the CLI:
//   reports each setting and names every difference from what applyBucket would set.
// The backup worker therefore needs no PutBucket* right (docs/runbooks/backup.md, "S3 rights").
import {
  CreateBucketCommand,
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketVersioningCommand,
  PutObjectLockConfigurationCommand,
  PutPublicAccessBlockCommand,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import { BACKUP_PREFIX } from '../../common/backup';
import type { Config } from '../config';
import { statusOf } from './objects';

export type BucketSetting = 'encryption' | 'versioning' | 'publicAccessBlock' | 'objectLock';
export type SettingState = 'compliant' | 'missing' | 'differs' | 'unsupported by store';

export interface BucketCheck {
  bucket: string;
  exists: boolean;
  /** false when a required setting or vault-dr's lifecycle rules differ; `differences` says what. */
  compliant: boolean;
  settings: Record<BucketSetting, SettingState>;
  lifecycle: SettingState;
  /** One line per difference, in the operator's words, e.g. `versioning: Suspended, expected Enabled`. */
  differences: string[];
}

/** What `bucket apply` must set, from the configuration. */
export interface BucketSpec {
  bucket: string;
  required: BucketSetting[];
  objectLock: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days: number };
}

export const bucketSpec = (cfg: Config): BucketSpec => ({
  bucket: cfg.s3.bucket,
  required: cfg.backup.bucketRequirements,
  objectLock: { mode: cfg.backup.objectLockMode, days: cfg.backup.objectLockDays },
});

export const RULE_ABORT_UPLOADS = 'vault-dr-abort-incomplete-uploads';
export const RULE_EXPIRE_DELETED = 'vault-dr-expire-deleted-backups';

/**
 * vault-dr's own lifecycle rules (matched by ID). Noncurrent versions under backups/ expire only
 * where object lock is on: there the pinned version of every kept backup carries a legal hold
 * (pruneBackups sets it), which lifecycle expiry does not remove. Without object lock an
 * overwritten backup's pinned version would be noncurrent and expire while the backup is still
 * kept, so no such rule is set and pruned versions stay until an operator removes them.
 */
export function desiredLifecycleRules(objectLockEnabled: boolean): LifecycleRule[] {
  const rules: LifecycleRule[] = [{ ID: RULE_ABORT_UPLOADS, Status: 'Enabled', Filter: { Prefix: '' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 } }];
  if (objectLockEnabled) rules.push({ ID: RULE_EXPIRE_DELETED, Status: 'Enabled', Filter: { Prefix: BACKUP_PREFIX }, NoncurrentVersionExpiration: { NoncurrentDays: 30 } });
  return rules;
}

const nameOf = (err: unknown) => (err as { name?: string }).name ?? '';
const unsupported = (err: unknown) => statusOf(err) === 501 || nameOf(err) === 'NotImplemented';
const notFound = (err: unknown) => statusOf(err) === 404 || /NotFound|NoSuch/i.test(nameOf(err));

/** The parts of a rule vault-dr cares about, in a stable order, for comparison and messages. */
function ruleShape(r: LifecycleRule): string {
  return JSON.stringify({
    status: r.Status,
    prefix: r.Filter?.Prefix ?? r.Prefix ?? '',
    abortDays: r.AbortIncompleteMultipartUpload?.DaysAfterInitiation,
    noncurrentDays: r.NoncurrentVersionExpiration?.NoncurrentDays,
    expirationDays: r.Expiration?.Days,
  });
}

/** A foreign rule that would delete current backup objects (a prefix overlapping backups/). */
function expiresBackups(r: LifecycleRule): boolean {
  if (r.Status !== 'Enabled' || !(r.Expiration?.Days || r.Expiration?.Date)) return false;
  const prefix = r.Filter?.Prefix ?? r.Prefix ?? (r.Filter?.And?.Prefix ?? '');
  return BACKUP_PREFIX.startsWith(prefix) || prefix.startsWith(BACKUP_PREFIX);
}

async function readLifecycle(s3: S3Client, bucket: string): Promise<LifecycleRule[] | 'unsupported by store'> {
  try {
    return (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
  } catch (err) {
    if (unsupported(err)) return 'unsupported by store';
    if (notFound(err)) return [];
    throw err;
  }
}

/** Reads every setting (Get* calls only) and compares it with the spec. Never writes. */
export async function checkBucket(s3: S3Client, spec: BucketSpec): Promise<BucketCheck> {
  const { bucket } = spec;
  const settings = {} as BucketCheck['settings'];
  const diffs: Partial<Record<BucketSetting | 'lifecycle', string[]>> = {};
  const differ = (k: BucketSetting | 'lifecycle', what: string) => (diffs[k] ??= []).push(what);
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
    const none: SettingState = 'missing';
    return {
      bucket,
      exists: false,
      compliant: false,
      settings: { encryption: none, versioning: none, publicAccessBlock: none, objectLock: none },
      lifecycle: none,
      differences: [`bucket "${bucket}" does not exist: run \`vaultdr bucket apply --admin-credentials FILE\` once`],
    };
  }
  const read = async (name: BucketSetting, judge: () => Promise<string | undefined>) => {
    try {
      const problem = await judge();
      settings[name] = problem ? 'differs' : 'compliant';
      if (problem) differ(name, problem);
    } catch (err) {
      if (unsupported(err)) {
        settings[name] = 'unsupported by store';
        differ(name, `${name}: not supported by this store`);
      } else if (notFound(err)) {
        settings[name] = 'missing';
        differ(name, `${name}: not set`);
      } else throw err;
    }
  };
  await read('encryption', async () => {
    const rules = (await s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }))).ServerSideEncryptionConfiguration?.Rules ?? [];
    // Any default server-side encryption counts (SSE-S3 or an operator's SSE-KMS key).
    return rules.some((r) => !!r.ApplyServerSideEncryptionByDefault?.SSEAlgorithm) ? undefined : 'encryption: no default server-side encryption';
  });
  await read('versioning', async () => {
    const status = (await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status;
    return status === 'Enabled' ? undefined : `versioning: ${status ?? 'never enabled'}, expected Enabled`;
  });
  await read('publicAccessBlock', async () => {
    const c = (await s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket }))).PublicAccessBlockConfiguration;
    const off = (['BlockPublicAcls', 'IgnorePublicAcls', 'BlockPublicPolicy', 'RestrictPublicBuckets'] as const).filter((f) => !c?.[f]);
    return off.length ? `publicAccessBlock: ${off.join(', ')} off` : undefined;
  });
  let lockEnabled = false;
  await read('objectLock', async () => {
    const c = (await s3.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }))).ObjectLockConfiguration;
    lockEnabled = c?.ObjectLockEnabled === 'Enabled';
    if (!lockEnabled) return 'objectLock: not enabled (it can only be enabled when the bucket is created)';
    const r = c?.Rule?.DefaultRetention;
    const want = spec.objectLock;
    if (want.days === 0) return r ? `objectLock: default retention ${r.Mode} ${r.Days ?? 0} days, expected none` : undefined;
    if (r?.Mode !== want.mode || r.Days !== want.days) return `objectLock: default retention ${r ? `${r.Mode} ${r.Days ?? `${r.Years} years`} days` : 'none'}, expected ${want.mode} ${want.days} days`;
    return undefined;
  });
  const rules = await readLifecycle(s3, bucket);
  let lifecycle: SettingState = 'compliant';
  if (rules === 'unsupported by store') lifecycle = 'unsupported by store';
  else {
    for (const want of desiredLifecycleRules(lockEnabled)) {
      const have = rules.find((r) => r.ID === want.ID);
      if (!have) differ('lifecycle', `lifecycle: rule ${want.ID} missing`);
      else if (ruleShape(have) !== ruleShape(want)) differ('lifecycle', `lifecycle: rule ${want.ID} is ${ruleShape(have)}, expected ${ruleShape(want)}`);
    }
    if (!lockEnabled && rules.some((r) => r.ID === RULE_EXPIRE_DELETED && r.Status === 'Enabled')) {
      differ('lifecycle', `lifecycle: rule ${RULE_EXPIRE_DELETED} expires noncurrent backup versions, but without object lock nothing protects the pinned version of an overwritten backup`);
    }
    for (const r of rules) if (!r.ID?.startsWith('vault-dr-') && expiresBackups(r)) differ('lifecycle', `lifecycle: rule ${r.ID ?? '(no id)'} expires current objects under ${BACKUP_PREFIX}`);
    if (diffs.lifecycle?.length) lifecycle = 'differs';
  }
  // Only required settings count against compliance (a store that cannot do one is configured
  // without it); lifecycle drift always counts where the store has lifecycle at all.
  const differences = [...spec.required.flatMap((k) => diffs[k] ?? []), ...(diffs.lifecycle ?? [])];
  return { bucket, exists: true, compliant: differences.length === 0, settings, lifecycle, differences };
}

export interface ApplyReport {
  bucket: string;
  created: boolean;
  /** What this run changed ("versioning Enabled", "lifecycle rule … added"); empty when all was in place. */
  changed: string[];
  /** Settings the store refused as not implemented (e.g. SeaweedFS: publicAccessBlock). */
  unsupported: string[];
  check: BucketCheck;
}

/**
 * Creates and configures the bucket with ADMIN credentials. Idempotent: it writes only what
 * differs, and merges vault-dr's lifecycle rules into the existing ones by rule ID.
 */
export async function applyBucket(s3: S3Client, spec: BucketSpec): Promise<ApplyReport> {
  const { bucket } = spec;
  const changed: string[] = [];
  const unsupportedBy: string[] = [];
  let created = false;
  let before = await checkBucket(s3, spec);
  if (!before.exists) {
    await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    created = true;
    changed.push(`created bucket ${bucket} with object lock`);
    before = await checkBucket(s3, spec);
  }
  const attempt = async (name: string, run: () => Promise<unknown>) => {
    try {
      await run();
      changed.push(name);
    } catch (err) {
      if (!unsupported(err)) throw err;
      unsupportedBy.push(name);
    }
  };
  if (before.settings.encryption !== 'compliant') {
    await attempt('default encryption SSE-S3 (AES256)', () => s3.send(new PutBucketEncryptionCommand({ Bucket: bucket, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] } })));
  }
  if (before.settings.versioning !== 'compliant') {
    await attempt('versioning Enabled', () => s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } })));
  }
  if (before.settings.publicAccessBlock !== 'compliant') {
    await attempt('public access block (all four flags)', () => s3.send(new PutPublicAccessBlockCommand({ Bucket: bucket, PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true } })));
  }
  let lockEnabled = false;
  try {
    lockEnabled = (await s3.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }))).ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
  } catch (err) {
    if (!notFound(err) && !unsupported(err)) throw err;
  }
  if (lockEnabled && before.settings.objectLock !== 'compliant') {
    const { mode, days } = spec.objectLock;
    await attempt(days ? `object lock default retention ${mode} ${days} days` : 'object lock default retention removed', () =>
      s3.send(new PutObjectLockConfigurationCommand({ Bucket: bucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', ...(days ? { Rule: { DefaultRetention: { Mode: mode, Days: days } } } : {}) } })),
    );
  }
  const existing = await readLifecycle(s3, bucket);
  if (existing !== 'unsupported by store' && before.lifecycle !== 'compliant') {
    const ours = desiredLifecycleRules(lockEnabled);
    // Replace only rules with vault-dr's IDs; an operator's own rules are kept as they are.
    const foreign = existing.filter((r) => !r.ID?.startsWith('vault-dr-'));
    const merged = [...foreign, ...ours].map(({ ID, Status, Filter, Prefix, Expiration, NoncurrentVersionExpiration, AbortIncompleteMultipartUpload, Transitions, NoncurrentVersionTransitions }) => ({
      ID, Status, Filter, Prefix, Expiration, NoncurrentVersionExpiration, AbortIncompleteMultipartUpload, Transitions, NoncurrentVersionTransitions,
    }));
    await attempt(`lifecycle rules ${ours.map((r) => r.ID).join(', ')} (${foreign.length} other rule(s) kept)`, () => s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: merged } })));
  } else if (existing === 'unsupported by store') unsupportedBy.push('lifecycle');
  return { bucket, created, changed, unsupported: unsupportedBy, check: await checkBucket(s3, spec) };
}
