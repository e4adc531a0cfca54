// failoverDrill — a measured failover drill of the HA clusters. Reads like
// docs/runbooks/ha-failover.md: per target checkClusterHealthy, then per fault and round
// runFailoverRound (writer through HAProxy, fault, gap, every acknowledged write read back) →
// healFault (the node restarted/continued, rejoined, the whole cluster healthy again); at the end
// publishDrillReport (JSON + Markdown to S3, the numbers the metrics serve). Any failure alerts
// (failRunbook); a round that failed after its fault still heals the node first.
import { CancellationScope, defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { HaActivities } from '../../activities/ha/failover';
import { FAULTS_OF, FailoverDrillInput, gapStats, type FailoverDrillResult, type HaFault, type HaTarget, type RoundResult } from '../../common/ha';
import { parseWorkflowInput } from '../../common/validate';
import { describeRun, failRunbook, showStep, steps, summarized } from '../helpers';
import { DRILL, STORE_IO } from '../profiles';
import { activityQueue } from '../queues';

// The drill's activities hold the HA clusters' unseal shares and drill token: the restore role's trust scope.
const { checkClusterHealthy, runFailoverRound, healFault, healLeftoverFault } = proxyActivities<HaActivities>({ ...DRILL, taskQueue: activityQueue('restore') });
const { publishDrillReport } = proxyActivities<HaActivities>({ ...STORE_IO, taskQueue: activityQueue('restore') });

export type DrillStep = 'checkClusterHealthy' | 'runFailoverRound' | 'healFault' | 'publishDrillReport';

export interface DrillProgress {
  step: DrillStep | 'validating input' | 'done' | 'failed';
  completed: DrillStep[];
  /** The round in progress: "vault kill-leader 2/20". */
  current?: string;
  roundsDone: number;
  roundsPlanned: number;
  /** Results so far (gap per round). */
  rounds: RoundResult[];
  error?: string;
}
export const progress = defineQuery<DrillProgress>('progress');

export async function failoverDrill(rawInput?: FailoverDrillInput): Promise<FailoverDrillResult> {
  const info = workflowInfo();
  const drillId = info.workflowId;
  const state: DrillProgress = { step: 'validating input', completed: [], roundsDone: 0, roundsPlanned: 0, rounds: [] };
  setHandler(progress, () => state);
  describeRun(rawInput);
  const { step, failedAt, done } = steps<DrillStep>(state);
  showStep('validating input');
  const startedAt = new Date(info.runStartTime).toISOString();
  let input: ReturnType<typeof FailoverDrillInput.parse> | undefined;
  let refused = false;
  try {
    input = parseWorkflowInput('failoverDrill', FailoverDrillInput, rawInput);
    const { rounds, maxGapSeconds, healTimeoutSeconds } = input;
    const plan: { target: HaTarget; faults: HaFault[] }[] = input.targets.map((target) => ({ target, faults: input!.faults.filter((f) => FAULTS_OF[target].includes(f)) }));
    state.roundsPlanned = plan.reduce((a, p) => a + p.faults.length * rounds, 0);
    for (const { target, faults } of plan) {
      try {
        await step('checkClusterHealthy', () => summarized(checkClusterHealthy, `Is the ${target} cluster fully healthy?`, { target, healTimeoutSeconds }));
      } catch (err) {
        refused = true;
        throw err;
      }
      for (const fault of faults) {
        for (let round = 1; round <= rounds; round++) {
          state.current = `${target} ${fault} ${round}/${rounds}`;
          let outcome;
          try {
            outcome = await step('runFailoverRound', () =>
              summarized(runFailoverRound, `${target}: ${fault}, round ${round}/${rounds}`, { drillId, target, fault, round, maxGapSeconds, healTimeoutSeconds }),
            );
          } catch (err) {
            // The fault may be in place (a slow failover, lost writes): bring the node back before failing.
            await CancellationScope.nonCancellable(() => healLeftoverFault({ target, healTimeoutSeconds })).catch(() => undefined);
            throw err;
          }
          const { healMs } = await step('healFault', () => summarized(healFault, `${target}: bring ${outcome.injected.node} back after ${fault}`, { injected: outcome.injected, healTimeoutSeconds }));
          state.rounds.push({
            target,
            fault,
            round,
            node: outcome.injected.node,
            injectedAt: new Date(outcome.injected.at).toISOString(),
            gapMs: outcome.gapMs,
            writesAcked: outcome.writesAcked,
            writesFailed: outcome.writesFailed,
            lost: outcome.lost,
            healMs,
            clientErrors: outcome.clientErrors,
          });
          state.roundsDone++;
        }
      }
    }
    state.current = undefined;
    const result: FailoverDrillResult = {
      drillId,
      startedAt,
      finishedAt: new Date(Date.now()).toISOString(),
      rounds: state.rounds,
      stats: gapStats(state.rounds),
      lostWrites: state.rounds.reduce((a, r) => a + r.lost, 0),
    };
    const keys = await step('publishDrillReport', () => publishDrillReport({ result, reason: input?.reason }));
    result.reportJsonKey = keys.jsonKey;
    result.reportMarkdownKey = keys.markdownKey;
    done();
    return result;
  } catch (err) {
    const failedStep = failedAt() ?? state.step;
    return failRunbook(err, {
      failedStep,
      state,
      alert: { workflow: 'failoverDrill', subject: `Failover drill ${drillId}`, details: () => ({ round: state.current ?? '(none)', 'rounds done': `${state.roundsDone}/${state.roundsPlanned}` }) },
      // A refusal to start (bad input, a cluster already degraded) harmed nothing: warn, do not page.
      severity: (f) => (refused || f.errorType === 'InvalidInput' ? 'warning' : 'critical'),
      failureMessage: (f) => `failover drill ${drillId} failed at ${failedStep}${state.current ? ` (${state.current})` : ''}: ${f.message}`,
    });
  }
}
