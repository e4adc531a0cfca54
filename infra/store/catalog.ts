// The backup catalog: the one repository of what the bucket holds. Backups are manifests
// (backups/<id>/manifest.json) pinning an object version (backups/<id>/snapshot.vdrb); the catalog
// lists them with the state of each pinned object, reads and writes manifests, and applies
// retention. It needs only S3 and the bucket: the backup activities, the restore selection, the
// CLI (`backup list`, `bucket check`) and the /metrics state all read backups through it.
import { DeleteObjectsCommand, GetObjectCommand, PutObjectLegalHoldCommand, type S3Client } from '@aws-sdk/client-s3';
import { BACKUP_PREFIX, backupObjectKeys, manifestProblem, planRetention, type BackupManifest, type RetentionPolicy } from '../../common/backup';
import { ErrorType, failure as fail } from '../../common/errors';
import { checkBucket, type BucketCheck, type BucketSpec } from './bucketPolicy';
import { getJsonObject, listAllObjects, listAllVersions, pinnedObjectState, putJsonObject, statusOf, type PinnedState } from './objects';

export interface BackupSummary {
  backupId: string;
  /**
   * 'manifest mismatch': the manifest describes another backup. 'overwritten': the object's
   * current version is not the one the manifest pins; 'pinned version missing': the pinned
   * version is gone; 'snapshot deleted': the current version is a delete marker. None of these
   * is ever treated as verified (not "latest", not counted by retention) nor pruned.
   */
  status: 'verified' | 'uploaded' | 'no manifest' | 'manifest mismatch' | 'overwritten' | 'pinned version missing' | 'snapshot deleted';
  /** The manifest's status before the object check, when the object check changed it. */
  manifestStatus?: 'verified' | 'uploaded';
  /** What the object check found, in words (for `backup list` and alerts). */
  problem?: string;
  createdAt: string;
  objectKey: string;
  objectBytes: number;
  raftIndex?: number;
  trigger?: string;
}

/** Statuses of a backup whose stored object no longer matches its manifest (see BackupSummary). */
export const DAMAGED_STATUSES: readonly BackupSummary['status'][] = ['overwritten', 'pinned version missing', 'snapshot deleted'];

/** The listing status and words for a pinned object that is not intact; undefined when it is. */
function damageOf(state: PinnedState): { status: BackupSummary['status']; problem: string } | undefined {
  switch (state.kind) {
    case 'intact':
    case 'unpinned':
      return undefined;
    case 'overwritten':
      return { status: 'overwritten', problem: `overwritten: current version ${state.currentVersionId} is not the pinned ${state.pinnedVersionId}` };
    case 'pinned version missing':
      return { status: 'pinned version missing', problem: `pinned version ${state.pinnedVersionId} no longer exists` };
    case 'deleted':
      return { status: 'snapshot deleted', problem: `the snapshot's current version is a delete marker (pinned ${state.pinnedVersionId} ${state.pinnedExists ? 'still exists' : 'is gone'})` };
  }
}

/** Retention as configured: the default policy and the floor a run's input may not go below. */
export interface RetentionConfig extends RetentionPolicy {
  minDaily: number;
  minMonthly: number;
}

export interface PruneResult {
  deleted: string[];
  kept: number;
  unverified: string[];
  damaged: string[];
  legalHolds: number | 'unsupported by store';
}

const bareEtag = (etag: string | undefined) => etag?.replace(/^W\//, '').replace(/"/g, '');

/**
 * Verified manifests by backup id, each with the ETag it was read at, so a process that lists the
 * catalog again and again (the /metrics refresh) reads a manifest once instead of on every
 * refresh. A hit needs the ETag the listing shows now to be the one read: a manifest written
 * again (edited, replaced) is read again. Only verified manifests are kept (an uploaded one is
 * about to be rewritten); ids no longer listed are dropped at each listing, and past `maxEntries`
 * the least recently used goes, so the cache never outgrows the bucket or the bound. Object
 * states (the pinned version still there and current) are never cached: they are checked on
 * every listing.
 */
export class ManifestCache {
  private readonly entries = new Map<string, { etag: string; manifest: BackupManifest }>();
  hits = 0;
  misses = 0;

  constructor(readonly maxEntries = 2000) {
    if (!(maxEntries >= 1)) throw new Error(`ManifestCache: maxEntries must be at least 1, got ${maxEntries}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached manifest when it was read at this ETag; undefined otherwise. */
  get(id: string, etag: string | undefined): BackupManifest | undefined {
    const e = this.entries.get(id);
    const want = bareEtag(etag);
    if (!e || !want || e.etag !== want) {
      this.misses++;
      return undefined;
    }
    this.entries.delete(id);
    this.entries.set(id, e);
    this.hits++;
    return e.manifest;
  }

  /** Keeps a manifest read at `etag` (only verified ones; anything else forgets the id). */
  set(id: string, etag: string | undefined, manifest: BackupManifest | undefined): void {
    this.entries.delete(id);
    const tag = bareEtag(etag);
    if (!manifest || !tag || manifest.status !== 'verified') return;
    this.entries.set(id, { etag: tag, manifest });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Forgets every id not in `ids` (pruned or deleted backups). */
  retain(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const id of [...this.entries.keys()]) if (!keep.has(id)) this.entries.delete(id);
  }
}

export class BackupCatalog {
  /** `cache`: verified manifests kept between listings (one per long-lived reader, e.g. /metrics); none by default. */
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    private readonly cache?: ManifestCache,
  ) {}

  /**
   * Reads the bucket's settings (GetBucket* only, never a Put) and fails when they differ from
   * what `vaultdr bucket apply` sets: the backup worker holds no bucket-admin rights.
   */
  async checkBucket(spec: BucketSpec): Promise<BucketCheck> {
    const check = await checkBucket(this.s3, spec);
    if (!check.compliant) {
      throw fail(ErrorType.BucketNotCompliant, `bucket "${this.bucket}" is not as \`vaultdr bucket apply\` set it: ${check.differences.join('; ')}; refusing to back up into it`, true);
    }
    return check;
  }

  /** The manifest of a backup, or undefined when there is none. */
  manifest(id: string): Promise<BackupManifest | undefined> {
    return getJsonObject<BackupManifest>(this.s3, this.bucket, backupObjectKeys(id).manifest);
  }

  /** Writes (replaces) a backup's manifest. */
  async saveManifest(id: string, manifest: BackupManifest): Promise<void> {
    await putJsonObject(this.s3, this.bucket, backupObjectKeys(id).manifest, manifest);
  }

  /** Backup ids in the bucket, split by whether a manifest exists (with the manifest's ETag). */
  async ids(): Promise<{ withManifest: string[]; withoutManifest: string[]; manifestEtags: Map<string, string | undefined> }> {
    const ids = new Map<string, { manifest: boolean; snapshot: boolean }>();
    const manifestEtags = new Map<string, string | undefined>();
    for (const { key, etag } of await listAllObjects(this.s3, this.bucket, BACKUP_PREFIX)) {
      const m = /^backups\/([^/]+)\/(manifest\.json|snapshot\.vdrb)$/.exec(key);
      if (!m) continue;
      const e = ids.get(m[1]!) ?? { manifest: false, snapshot: false };
      if (m[2] === 'manifest.json') {
        e.manifest = true;
        manifestEtags.set(m[1]!, etag);
      } else e.snapshot = true;
      ids.set(m[1]!, e);
    }
    const all = [...ids.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    return { withManifest: all.filter(([, e]) => e.manifest).map(([id]) => id), withoutManifest: all.filter(([, e]) => !e.manifest).map(([id]) => id), manifestEtags };
  }

  /** A listed manifest: from the cache when it holds this id at the listed ETag, else read (and kept when verified). */
  private async listedManifest(id: string, listedEtag: string | undefined): Promise<BackupManifest | undefined> {
    if (!this.cache) return this.manifest(id);
    const hit = this.cache.get(id, listedEtag);
    if (hit) return hit;
    let res;
    try {
      res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: backupObjectKeys(id).manifest }));
    } catch (err) {
      if (statusOf(err) === 404 || (err as { name?: string }).name === 'NoSuchKey') {
        this.cache.set(id, undefined, undefined);
        return undefined;
      }
      throw err;
    }
    const m = JSON.parse(await res.Body!.transformToString()) as BackupManifest;
    // The ETag of what was read (the listing's may already be older); a mismatching one is simply read again next time.
    this.cache.set(id, res.ETag, m);
    return m;
  }

  /**
   * Every backup in the bucket with what its manifest says (one read per manifest, or none when
   * cached) and whether the object version the manifest pins is still there and still current,
   * newest first. The versions come from one ListObjectVersions pass over `backups/` taken after
   * the object listing (a page per ~500 backups), never cached: damage shows at the next listing.
   * (Two HEADs per backup did the same; at 400 backups they were 800 of a scrape's 803 requests.)
   */
  async list(): Promise<BackupSummary[]> {
    const { withManifest, withoutManifest, manifestEtags } = await this.ids();
    this.cache?.retain(withManifest);
    const versions = await listAllVersions(this.s3, this.bucket, BACKUP_PREFIX);
    const out: BackupSummary[] = [];
    const read = async (id: string) => {
      const m = await this.listedManifest(id, manifestEtags.get(id));
      if (m && manifestProblem(id, m)) out.push({ backupId: id, status: 'manifest mismatch', createdAt: '', objectKey: backupObjectKeys(id).snapshot, objectBytes: 0 });
      else if (m) {
        const row: BackupSummary = { backupId: id, status: m.status, createdAt: m.createdAt, objectKey: m.object.key, objectBytes: m.object.bytes, raftIndex: m.snapshot.raftIndex, trigger: m.trigger };
        const state = pinnedObjectState(versions.get(m.object.key), m.object.versionId);
        const damage = damageOf(state);
        if (damage) Object.assign(row, { manifestStatus: m.status, status: damage.status, problem: damage.problem });
        out.push(row);
      }
    };
    // A few manifest reads at a time: a year of backups is ~40 manifests.
    for (let i = 0; i < withManifest.length; i += 8) await Promise.all(withManifest.slice(i, i + 8).map(read));
    for (const id of withoutManifest) out.push({ backupId: id, status: 'no manifest', createdAt: '', objectKey: backupObjectKeys(id).snapshot, objectBytes: 0 });
    return out.sort((a, b) => (a.backupId < b.backupId ? 1 : -1));
  }

  /**
   * Applies retention (30 daily + 12 monthly by default) to verified backups; unverified and
   * damaged ones (overwritten, pinned version missing) are kept and named, never deleted. Puts a
   * legal hold on the pinned version of every kept backup (so lifecycle never expires it) and
   * lifts it from the ones it deletes.
   */
  async prune(req: { retention?: RetentionPolicy; justVerified: string }, policy: RetentionConfig): Promise<PruneResult> {
    // The floor is configuration only: a run's input (UI, CLI) may keep more, never less.
    const { minDaily, minMonthly } = policy;
    if (req.retention && (req.retention.daily < minDaily || req.retention.monthly < minMonthly)) {
      const field = req.retention.daily < minDaily ? `retention.daily ${req.retention.daily}` : `retention.monthly ${req.retention.monthly}`;
      const floor = req.retention.daily < minDaily ? `backup.retention.minDaily = ${minDaily}` : `backup.retention.minMonthly = ${minMonthly}`;
      throw fail(ErrorType.InvalidInput, `pruneBackups: field "${field}" is below the configured floor ${floor}; nothing was deleted (lower the floor only in the configuration)`, true);
    }
    const listed = await this.list();
    // A backup without a manifest, or whose object no longer matches it, counts as unverified: retention never deletes it.
    const candidates = listed.map((b) => ({ backupId: b.backupId, status: b.status === 'verified' ? ('verified' as const) : ('uploaded' as const), createdAt: b.createdAt }));
    if (!candidates.some((c) => c.backupId === req.justVerified && c.status === 'verified')) {
      // The backup this run verified must be visible; if not, the listing is not trustworthy.
      throw fail(ErrorType.VerificationFailed, `retention refused: the backup just verified (${req.justVerified}) is not listed as verified`, true);
    }
    const plan = planRetention(candidates, req.retention ?? policy);
    const manifests = new Map<string, BackupManifest>();
    const pinned = async (id: string) => {
      if (!manifests.has(id)) manifests.set(id, (await this.manifest(id))!);
      return manifests.get(id)!.object;
    };
    let legalHolds: number | 'unsupported by store' = 0;
    const hold = async (id: string, on: boolean) => {
      if (legalHolds === 'unsupported by store') return;
      const o = await pinned(id);
      if (!o.versionId) return;
      try {
        await this.s3.send(new PutObjectLegalHoldCommand({ Bucket: this.bucket, Key: o.key, VersionId: o.versionId, LegalHold: { Status: on ? 'ON' : 'OFF' } }));
        if (on) legalHolds = (legalHolds as number) + 1;
      } catch (err) {
        // A bucket without object lock (or a store without it) cannot hold versions: say so once.
        if (statusOf(err) === 501 || statusOf(err) === 400) legalHolds = 'unsupported by store';
        else throw err;
      }
    };
    const keptVerified = plan.keep.filter((k) => listed.find((b) => b.backupId === k.backupId)?.status === 'verified');
    for (const k of keptVerified) await hold(k.backupId, true);
    const deleted: string[] = [];
    for (const id of plan.delete) {
      const k = backupObjectKeys(id);
      await hold(id, false);
      // One request for both keys: a crash cannot leave a manifest whose snapshot is gone.
      const res = await this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: [{ Key: k.snapshot }, { Key: k.manifest }], Quiet: true } }));
      if (res.Errors?.length) throw new Error(`cannot delete backup ${id}: ${res.Errors.map((e) => `${e.Key}: ${e.Message}`).join('; ')}`);
      // withHeartbeats keeps this activity heartbeating; no per-delete beat (the CLI runs it outside an activity).
      deleted.push(id);
    }
    const unverified = listed.filter((c) => c.status !== 'verified' && !DAMAGED_STATUSES.includes(c.status)).map((c) => c.backupId);
    const damaged = listed.filter((c) => DAMAGED_STATUSES.includes(c.status));
    if (damaged.length) {
      // Everything else was done; the damaged backups are kept and the run fails so someone looks.
      throw fail(
        ErrorType.BackupOverwritten,
        `backup object(s) no longer match their manifest: ${damaged.map((d) => `${d.backupId} (${d.problem})`).join('; ')}; they are kept, never counted as verified; retention deleted ${deleted.length ? deleted.join(', ') : 'nothing'}`,
        true,
      );
    }
    return { deleted, kept: plan.keep.length, unverified, damaged: [], legalHolds };
  }
}
