// vaultHealthMonitor — one long-running workflow that checks, every intervalSeconds, OpenBao
// (seal, active node, raft peers, autopilot), backup freshness and restore-validation freshness,
// and raises an alert when a problem starts and a "resolved" when it ends: once per incident,
// not once per check. Continues-as-new every checksPerRun checks, carrying the open alerts.
// Reads like docs/runbooks/monitoring.md ("vaultHealthMonitor").
import { condition, continueAsNew, defineQuery, defineSignal, defineUpdate, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { MonitorActivities } from '../../activities/monitoring/monitor';
import type { NotifyActivities } from '../../activities/notify/notify';
import { MonitorInput, evaluate, undecidable, type MonitorFacts, type Problem } from '../../common/monitor';
import { describeIssues, parseWorkflowInput } from '../../common/validate';
import { SHORT_IO } from '../profiles';
import { showStep, describeRun } from '../helpers';
import { activityQueue } from '../queues';

const { collectMonitorFacts } = proxyActivities<MonitorActivities>({ ...SHORT_IO, startToCloseTimeout: '2m', taskQueue: activityQueue('backup') });
// Bounded: a channel outage must not stall the checks; an undelivered alert is retried next check.
const { sendAlert } = proxyActivities<NotifyActivities>({ startToCloseTimeout: '1m', retry: { initialInterval: '2s', maximumAttempts: 2 }, taskQueue: activityQueue('notify') });

type OpenAlert = NonNullable<ReturnType<typeof MonitorInput.parse>['carried']>['open'][string];

export interface MonitorStatus {
  checks: number;
  lastCheckAt?: string;
  lastCheckError?: string;
  open: Record<string, OpenAlert>;
  /** Alerts raised and resolved by this run (most recent last, at most 50). */
  log: { at: string; key: string; event: 'raised' | 'resolved' | 'delivery failed' | 'settings changed' | 'settings rejected'; detail: string }[];
  facts?: MonitorFacts;
  /** The settings in force (after any `configure` signal). */
  settings: MonitorSettings;
}

/** What an operator may change on a running monitor (`vaultdr monitor start` with options on a running one). */
export type MonitorSettings = Omit<ReturnType<typeof MonitorInput.parse>, 'carried'>;

export const status = defineQuery<MonitorStatus>('status');
/** Run a check now instead of waiting for the interval (e.g. right after fixing something). */
export const checkNow = defineSignal('checkNow');
/** What `configure` answers: the settings now in force and what changed ("intervalSeconds 60 → 30"). */
export interface ConfigureResult {
  accepted: true;
  changed: string[];
  settings: MonitorSettings;
}

/**
 * Change settings of the running monitor without losing its open alerts (a restart would raise
 * them again). An update with a validator: a bad value is rejected with the validator's message
 * (and leaves no trace in history), so `vaultdr monitor start` can say whether it was accepted.
 * Takes effect from a check right away, and is carried over by continue-as-new.
 */
export const configure = defineUpdate<ConfigureResult, [Partial<MonitorSettings>]>('configure');
/**
 * The former fire-and-forget form of `configure`, kept so runs signalled by an older CLI (and
 * their recorded histories) behave as before: a bad value is logged as "settings rejected".
 */
export const configureSignal = defineSignal<[Partial<MonitorSettings>]>('configure');

export async function vaultHealthMonitor(rawInput?: MonitorInput): Promise<never> {
  describeRun(rawInput);
  const input = parseWorkflowInput('vaultHealthMonitor', MonitorInput, rawInput);
  const info = workflowInfo();
  const { carried, ...initial } = input;
  const state: MonitorStatus = { checks: carried?.checks ?? 0, open: { ...(carried?.open ?? {}) }, log: [], settings: initial };
  let wake = false;
  showStep('monitoring');
  const note = (key: string, event: MonitorStatus['log'][number]['event'], detail: string) => {
    state.log.push({ at: new Date().toISOString(), key, event, detail });
    if (state.log.length > 50) state.log.shift();
  };
  setHandler(status, () => state);
  setHandler(checkNow, () => {
    wake = true;
  });
  // describeIssues never echoes a received value in full (the message is shown and kept in state).
  const check = (patch: unknown): { ok: true; next: MonitorSettings } | { ok: false; message: string } => {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return { ok: false, message: 'configure: expected an object of settings' };
    if ('carried' in patch) return { ok: false, message: 'configure: "carried" is not a setting' };
    const parsed = MonitorInput.safeParse({ ...state.settings, ...patch, carried: undefined });
    if (!parsed.success) return { ok: false, message: `configure: ${describeIssues(parsed.error.issues.slice(0, 3))}` };
    const { carried: _none, ...next } = parsed.data;
    return { ok: true, next };
  };
  const apply = (next: MonitorSettings): string[] => {
    const changed = (Object.keys(next) as (keyof MonitorSettings)[]).filter((k) => next[k] !== state.settings[k]).map((k) => `${k} ${state.settings[k]} → ${next[k]}`);
    if (!changed.length) return changed;
    note('configure', 'settings changed', changed.join(', '));
    state.settings = next;
    wake = true; // the new interval and thresholds apply from a check now
    return changed;
  };
  setHandler(
    configure,
    (patch) => {
      const r = check(patch);
      if (!r.ok) throw new Error(r.message); // unreachable: the validator ran first
      return { accepted: true, changed: apply(r.next), settings: state.settings };
    },
    {
      validator: (patch) => {
        const r = check(patch);
        if (!r.ok) throw new Error(r.message);
      },
    },
  );
  setHandler(configureSignal, (patch) => {
    const r = check(patch);
    if (!r.ok) {
      note('configure', 'settings rejected', r.message);
      return;
    }
    apply(r.next);
  });
  const alert = (a: OpenAlert, action: 'trigger' | 'resolve', key: string) =>
    sendAlert({
      action,
      severity: a.severity,
      dedupKey: a.incidentKey,
      summary: action === 'trigger' ? `${key}: ${a.summary}` : `${key} resolved (open since ${a.since})`,
      workflowId: info.workflowId,
      runId: info.runId,
      details: { alert: key, since: a.since, runbook: 'docs/runbooks/monitoring.md' },
    });

  for (let run = 0; run < state.settings.checksPerRun; run++) {
    // Cleared when a check starts, not when it ends: a checkNow that arrives during a check (the
    // operator fixed something while it ran) gets a check of its own right after.
    wake = false;
    let problems: Problem[];
    let unknown: (key: string) => boolean = () => false;
    try {
      state.facts = await collectMonitorFacts({ expectedRaftPeers: state.settings.expectedRaftPeers });
      problems = evaluate(state.facts, state.settings, Date.now() / 1000);
      unknown = undecidable(state.facts);
      state.lastCheckError = undefined;
    } catch (err) {
      // The check itself failed (worker lost, bug): that is a problem to report, not a reason to stop.
      state.lastCheckError = (err as Error).message;
      unknown = (key) => key !== 'HealthCheckFailed'; // nothing could be judged
      problems = [{ key: 'HealthCheckFailed', severity: 'warning', summary: `the health check could not run: ${state.lastCheckError}` }];
    }
    state.checks++;
    state.lastCheckAt = new Date().toISOString();

    const now = new Date().toISOString();
    for (const p of problems) {
      const open = state.open[p.key];
      if (open) {
        open.cleanChecks = 0;
        continue;
      }
      state.open[p.key] = { incidentKey: `vaultHealthMonitor/${p.key}/${now}`, severity: p.severity, summary: p.summary, since: now, delivered: false, cleanChecks: 0 };
      note(p.key, 'raised', p.summary);
    }
    for (const [key, a] of Object.entries(state.open)) {
      if (problems.some((p) => p.key === key)) {
        if (!a.delivered) {
          try {
            const out = await alert(a, 'trigger', key);
            a.delivered = true;
            const failed = out.channels.filter((c) => !c.ok);
            if (failed.length) note(key, 'delivery failed', failed.map((c) => `${c.channel}: ${c.detail}`).join('; '));
          } catch (err) {
            note(key, 'delivery failed', (err as Error).message);
          }
        }
        continue;
      }
      if (unknown(key)) continue; // cannot tell whether it is over: keep it open
      a.cleanChecks++;
      if (a.cleanChecks < state.settings.clearAfterChecks) continue;
      if (a.delivered) {
        try {
          await alert(a, 'resolve', key);
        } catch (err) {
          note(key, 'delivery failed', `resolve: ${(err as Error).message}`);
          continue; // stays open, the resolve is tried again at the next check
        }
      }
      delete state.open[key];
      note(key, 'resolved', a.delivered ? 'all-clear sent' : 'ended before its alert could be delivered');
    }

    if (workflowInfo().continueAsNewSuggested) break;
    await condition(() => wake, state.settings.intervalSeconds * 1000);
  }
  return continueAsNew<typeof vaultHealthMonitor>({ ...state.settings, carried: { open: state.open, checks: state.checks } });
}
