// The durable recovery state vault-dr reports on: the newest verified backup (from the manifests
// in S3) and the restore history (staging validations and production restores). One loader for
// the worker's /metrics and the vaultHealthMonitor workflow, so both see the same truth.
import type { S3Client } from '@aws-sdk/client-s3';
import { BackupCatalog, DAMAGED_STATUSES, type ManifestCache } from './catalog';
import { restoreActivities } from '../../activities/restore/restore';
import type { Config } from '../config';
import type { DrState } from '../../common/monitor';
import { countsAsValidation } from '../../common/restore';

export type { DrState } from '../../common/monitor';

/** `manifests`: a cache of verified manifests kept by a caller that loads the state again and again (/metrics). */
export async function loadDrState(s3: S3Client, cfg: Config, manifests?: ManifestCache): Promise<DrState> {
  const backups = new BackupCatalog(s3, cfg.s3.bucket, manifests);
  const restores = restoreActivities({ s3, cfg });
  try {
    const list = await backups.list();
    const newest = list.find((b) => b.status === 'verified');
    // A run whose input was rejected, or a person's mistyped backup id, never tried to restore
    // anything: it stays in the history for the record but says nothing about whether backups restore.
    const validations = (await restores.listRestoreHistory({ limit: 50 })).filter(countsAsValidation);
    const last = validations[0];
    const lastOk = validations.find((r) => r.status === 'verified');
    return {
      storeUp: true,
      lastVerifiedAt: newest ? Date.parse(newest.createdAt) / 1000 : undefined,
      lastVerifiedBytes: newest?.objectBytes,
      verified: list.filter((b) => b.status === 'verified').length,
      unverified: list.filter((b) => b.status !== 'verified').length,
      lastValidation: last
        ? { at: Date.parse(last.finishedAt) / 1000, ok: last.status === 'verified', rto: last.rtoSeconds, rpo: last.rpoSeconds, backupId: last.backupId, error: last.error }
        : undefined,
      lastValidationOkAt: lastOk ? Date.parse(lastOk.finishedAt) / 1000 : undefined,
      damagedBackups: list.filter((b) => DAMAGED_STATUSES.includes(b.status)).map((b) => ({ backupId: b.backupId, problem: b.problem ?? b.status })),
    };
  } catch (err) {
    return { storeUp: false, storeError: (err as Error).message, verified: 0, unverified: 0 };
  }
}
