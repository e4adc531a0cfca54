// Backup domain shared by the backupVault workflow, its activities and the CLI: the input schema,
// the manifest written next to every backup, object naming, and the retention rule (a pure
// function). Workflow-safe: no Node built-ins.
import { z } from 'zod';

export const BackupInput = z
  .object({
    /** Who asked: shown in the manifest and alerts. */
    trigger: z.enum(['manual', 'schedule', 'cli', 'drill']).default('manual'),
    /** Run retention after a verified backup (never after a failed one). */
    prune: z.boolean().default(true),
    /** Override the configured retention for this run. */
    retention: z
      .object({ daily: z.number().int().min(1).max(3650), monthly: z.number().int().min(0).max(1200) })
      .strict()
      .optional(),
  })
  .strict();
export type BackupInput = z.input<typeof BackupInput>;

export const BACKUP_PREFIX = 'backups/';

export function backupObjectKeys(backupId: string): { snapshot: string; manifest: string } {
  return { snapshot: `${BACKUP_PREFIX}${backupId}/snapshot.vdrb`, manifest: `${BACKUP_PREFIX}${backupId}/manifest.json` };
}

/**
 * Why a manifest read from backups/<id>/manifest.json cannot be trusted for backup <id>, or
 * undefined when it can: a manifest swapped with or copied from another backup describes a
 * different id or object, and restoring by it would silently restore the wrong snapshot.
 */
export function manifestProblem(backupId: string, m: { backupId?: unknown; object?: { key?: unknown } }): string | undefined {
  if (m.backupId !== backupId) return `manifest ${backupObjectKeys(backupId).manifest} describes backup ${String(m.backupId)}, not ${backupId} (swapped or misplaced manifest)`;
  if (m.object?.key !== backupObjectKeys(backupId).snapshot) return `manifest ${backupObjectKeys(backupId).manifest} points at ${String(m.object?.key)}, not ${backupObjectKeys(backupId).snapshot}`;
  return undefined;
}

/** A small stable hash (FNV-1a, 32 bit) for deterministic ids in workflow code; not for security. */
export function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** Backup ids sort by time: 20261128T020000Z-1a2b3c4d (start time of the run + hash of its id). */
export function backupIdFor(startTimeIso: string, workflowId: string, runId: string): string {
  const ts = startTimeIso.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${ts}-${shortHash(`${workflowId}/${runId}`)}`;
}

export type BackupStatus = 'uploaded' | 'verified';

export interface SnapshotInfo {
  clusterId: string;
  clusterName: string;
  openbaoVersion: string;
  raftIndex: number;
  raftTerm: number;
  /** meta.json ID of the raft snapshot, e.g. "bolt-snapshot". */
  snapshotId: string;
  /** Node id of the node that produced the snapshot. */
  node: string;
}

export interface BackupManifest {
  manifestVersion: 1;
  backupId: string;
  status: BackupStatus;
  workflowId: string;
  runId: string;
  trigger: string;
  createdAt: string;
  uploadedAt: string;
  verifiedAt?: string;
  snapshot: SnapshotInfo;
  /** The canary written just before the snapshot; a restore must read this value back. */
  canary: { path: string; marker: string };
  /**
   * KV v2 inventory counted just before and just after the snapshot (writes in between widen the
   * range). `exactAtRaftIndex`: the active node applied no raft entry from the start of the count
   * before the snapshot to the snapshot itself (its index), so that count is the snapshot's own
   * and no count after was needed (after = before).
   */
  kv?: { mount: string; pathsBefore: number; pathsAfter: number; versionsBefore: number; versionsAfter: number; exactAtRaftIndex?: number };
  plaintext: { bytes: number; sha256: string };
  object: { bucket: string; key: string; bytes: number; sha256: string; versionId?: string };
  encryption: { format: 'vdrbak/1'; chunkSize: number; recipients: string[] };
  /**
   * Which unseal-key generation opens the restored snapshot (common/unsealKeys.ts): the custodian
   * shares current when it was taken. Absent in manifests from before generations were recorded (= 1).
   */
  unsealKeys?: { generation: number; record: string };
}

export interface RetentionPolicy {
  daily: number;
  monthly: number;
}

export interface RetentionCandidate {
  backupId: string;
  status: BackupStatus;
  createdAt: string;
}

export interface RetentionPlan {
  keep: { backupId: string; reasons: string[] }[];
  delete: string[];
}

/**
 * 30 daily + 12 monthly, grandfather-father-son over *verified* backups:
 * - daily: the newest verified backup of each of the newest `daily` UTC days that have one;
 * - monthly: the newest verified backup of each of the newest `monthly` UTC months that have one;
 * - the newest verified backup is always kept;
 * - unverified backups are never deleted by retention (they are listed for an operator).
 */
export function planRetention(backups: RetentionCandidate[], policy: RetentionPolicy): RetentionPlan {
  const verified = backups.filter((b) => b.status === 'verified').sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.backupId < b.backupId ? 1 : -1));
  const reasons = new Map<string, string[]>();
  const mark = (id: string, why: string) => reasons.set(id, [...(reasons.get(id) ?? []), why]);

  const pick = (bucketOf: (iso: string) => string, limit: number, label: string) => {
    const seen = new Set<string>();
    for (const b of verified) {
      const bucket = bucketOf(b.createdAt);
      if (seen.has(bucket)) continue;
      if (seen.size >= limit) break;
      seen.add(bucket);
      mark(b.backupId, `${label} ${bucket}`);
    }
  };
  pick((iso) => iso.slice(0, 10), policy.daily, 'daily');
  pick((iso) => iso.slice(0, 7), policy.monthly, 'monthly');
  if (verified[0]) mark(verified[0].backupId, 'newest verified');
  for (const b of backups) if (b.status !== 'verified') mark(b.backupId, 'unverified: never pruned automatically');

  const keep = backups.filter((b) => reasons.has(b.backupId)).map((b) => ({ backupId: b.backupId, reasons: reasons.get(b.backupId)! }));
  const del = verified.filter((b) => !reasons.has(b.backupId)).map((b) => b.backupId);
  return { keep, delete: del.sort() };
}

export interface BackupResult {
  backupId: string;
  status: 'verified';
  objectKey: string;
  manifestKey: string;
  plaintextBytes: number;
  objectBytes: number;
  objectSha256: string;
  raftIndex: number;
  /** skipped: the run was started with prune: false (`backup run --no-prune`); the counts below are then empty. */
  retention: 'applied' | 'skipped';
  pruned: string[];
  keptCount: number;
  unverifiedKept: string[];
  verifyCommand: string;
}
