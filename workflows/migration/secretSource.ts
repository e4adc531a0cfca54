// Where the migration's secrets come from (workflow-safe): the live Vault, or — when it is
// unavailable, or on purpose in the SMTP recovery drill — the latest verified backup restored into
// a throwaway staging OpenBao with the restore machinery (selectBackup → verifyBackupBeforeRestore →
// startStagingVault → restoreSnapshot → unsealTarget, the restore role's activities). Whoever opens a
// backup source tears its staging down (closeSecretSource), on success and failure alike.
import { CancellationScope, proxyActivities } from '@temporalio/workflow';
import type { MigrationActivities } from '../../activities/migration';
import type { RestoreActivities } from '../../activities/restore/restore';
import type { SecretSource } from '../../common/migration';
import { MIGRATION, STAGING, STORE_IO, TRANSFER } from '../profiles';
import { summarized } from '../helpers';
import { activityQueue } from '../queues';

const { selectBackup } = proxyActivities<RestoreActivities>({ ...STORE_IO, taskQueue: activityQueue('restore') });
const { restoreSnapshot, verifyBackupBeforeRestore } = proxyActivities<RestoreActivities>({ ...TRANSFER, taskQueue: activityQueue('restore') });
const { startStagingVault, teardownStaging, unsealTarget } = proxyActivities<RestoreActivities>({ ...STAGING, taskQueue: activityQueue('restore') });
const { checkLiveVault } = proxyActivities<MigrationActivities>({ ...MIGRATION, taskQueue: activityQueue('migration') });

/** `live` when asked for, or when `auto` finds the live Vault answering; otherwise the backup. */
export async function chooseSource(kind: 'auto' | 'live' | 'backup'): Promise<{ useBackup: boolean; why: string }> {
  if (kind === 'backup') return { useBackup: true, why: 'secretSource backup (drill)' };
  if (kind === 'live') return { useBackup: false, why: 'secretSource live' };
  const live = await checkLiveVault();
  return { useBackup: !live.available, why: live.detail };
}

/** Restores `backupId` into staging `stagingId` and returns the source pointing at it. */
export async function openBackupSource(backupId: string, stagingId: string): Promise<Extract<SecretSource, { kind: 'backup' }>> {
  const b = await summarized(selectBackup, `Select backup ${backupId} for the migration secrets`, { backupId });
  await summarized(verifyBackupBeforeRestore, `Verify backup ${b.backupId}`, { backupId: b.backupId });
  const s = await startStagingVault({ stagingId });
  await summarized(restoreSnapshot, `Restore ${b.backupId} into a throwaway OpenBao`, { backupId: b.backupId, target: { kind: 'staging', stagingId } });
  await unsealTarget({ stagingId });
  return { kind: 'backup', backupId: b.backupId, stagingId, address: s.address };
}

/** Tears a backup source's staging down (non-cancellable: it must go whatever happened). */
export async function closeSecretSource(source: SecretSource | undefined, stagingId?: string): Promise<void> {
  const id = source?.kind === 'backup' ? source.stagingId : stagingId;
  if (!id) return;
  await CancellationScope.nonCancellable(() => teardownStaging({ stagingId: id }));
}
