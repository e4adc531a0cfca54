// Steady-state probes shared by drDrill's scenarios (common/drills.ts lists them per scenario).
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { RestoreActivities } from '../../activities/restore/restore';
import { describeFailure, summarized } from '../helpers';
import { STORE_IO } from '../profiles';
import { activityQueue } from '../queues';

const { selectBackup } = proxyActivities<RestoreActivities>({ ...STORE_IO, taskQueue: activityQueue('restore') });
const HOUR = 3600_000;

/** A steady-state refusal: nothing was injected. */
export function steadyStateFailure(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'DrillSteadyStateNotHolding', nonRetryable: true, message: `steady state does not hold, nothing injected: ${message}` });
}

/** Steady state shared by the scenarios that list it: the newest verified backup is younger than maxAgeHours (selectBackup "latest"). */
export async function checkNewestVerifiedBackup(maxAgeHours = 26): Promise<{ backupId: string; ageHours: number }> {
  let b: { backupId: string; createdAt: string };
  try {
    b = await summarized(selectBackup, 'the newest verified backup', { backupId: 'latest' });
  } catch (err) {
    const f = describeFailure(err);
    if (f?.errorType === 'BackupNotFound') throw steadyStateFailure(`no verified backup in the bucket (${f.message})`);
    throw err;
  }
  const ageHours = (Date.now() - Date.parse(b.createdAt)) / HOUR;
  if (ageHours > maxAgeHours) throw steadyStateFailure(`the newest verified backup ${b.backupId} is ${ageHours.toFixed(1)} h old (limit ${maxAgeHours} h)`);
  return { backupId: b.backupId, ageHours: Math.round(ageHours * 10) / 10 };
}
