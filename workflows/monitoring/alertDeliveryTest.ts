// alertDeliveryTest — proves every alert channel works before an incident needs it: sends a test
// alert of every severity through every channel, then confirms receipt (a person's `ack` signal
// per channel in production; the local inboxes in tests) and reports the ones that did not
// confirm. Reads like docs/runbooks/monitoring.md ("alertDeliveryTest").
import { condition, defineQuery, log, defineSignal, proxyActivities, setHandler, uuid4, workflowInfo } from '@temporalio/workflow';
import type { NotifyActivities } from '../../activities/notify/notify';
import type { DeliveryCheckActivities } from '../../activities/notify/deliveryCheck';
import { AckSignalSchema, AlertDeliveryTestInput, type AckSignal, type DeliveryReport } from '../../common/alertTest';
import { describeIssues } from '../../common/validate';
import { parseWorkflowInput } from '../../common/validate';
import { SHORT_IO } from '../profiles';
import { showStep, describeRun } from '../helpers';
import { activityQueue } from '../queues';

const { sendTestAlert } = proxyActivities<NotifyActivities>({ ...SHORT_IO, startToCloseTimeout: '1m', taskQueue: activityQueue('notify') });

export const report = defineQuery<DeliveryReport>('report');
export const ack = defineSignal<[AckSignal]>('ack');

export async function alertDeliveryTest(rawInput?: AlertDeliveryTestInput): Promise<DeliveryReport> {
  describeRun(rawInput);
  const input = parseWorkflowInput('alertDeliveryTest', AlertDeliveryTestInput, rawInput);
  showStep('sending test alerts');
  const token = `adt-${uuid4().slice(0, 8)}`;
  const state: DeliveryReport = { token, confirm: input.confirm, rows: [], unconfirmed: [], ok: false };
  setHandler(report, () => state);
  // A signal cannot be refused: a malformed ack (a hand-typed one in the Web UI, say) is ignored
  // with a warning rather than confirming something by accident (channel: undefined matched none,
  // but severity: "urgent" would have matched every row of the channel).
  setHandler(ack, (raw) => {
    const parsed = AckSignalSchema.safeParse(raw);
    if (!parsed.success) {
      log.warn('ack ignored: malformed', { issues: describeIssues(parsed.error.issues.slice(0, 3)) });
      return;
    }
    const a = parsed.data;
    for (const r of state.rows) {
      if (r.sent && !r.confirmed && r.channel === a.channel && (!a.severity || r.severity === a.severity)) {
        r.confirmed = true;
        r.confirmDetail = `acknowledged${a.by ? ` by ${a.by}` : ''}`;
      }
    }
  });

  for (const severity of input.severities) {
    for (const channel of input.channels) {
      const sent = await sendTestAlert({ severity, channel, token, workflowId: workflowInfo().workflowId });
      state.rows.push({ severity, channel, sent: sent.ok, sendDetail: sent.detail, confirmed: false, confirmDetail: sent.ok ? 'waiting' : 'not sent' });
    }
  }

  const waiting = () => state.rows.filter((r) => r.sent && !r.confirmed);
  showStep('confirming receipt');
  if (input.confirm === 'inbox') {
    const { confirmTestAlert } = proxyActivities<DeliveryCheckActivities>({ startToCloseTimeout: `${input.ackTimeoutSeconds + 30}s`, heartbeatTimeout: '20s', retry: { maximumAttempts: 3 }, taskQueue: activityQueue('notify') });
    await Promise.all(
      waiting().map(async (r) => {
        const c = await confirmTestAlert({ channel: r.channel, severity: r.severity, token, timeoutSeconds: input.ackTimeoutSeconds });
        r.confirmed = c.confirmed;
        r.confirmDetail = c.detail;
      }),
    );
  } else if (waiting().length > 0) {
    await condition(() => waiting().length === 0, input.ackTimeoutSeconds * 1000);
    for (const r of waiting()) r.confirmDetail = `no ack within ${input.ackTimeoutSeconds} s`;
  }
  state.unconfirmed = state.rows.filter((r) => !r.confirmed).map((r) => `${r.severity}/${r.channel}: ${r.sent ? r.confirmDetail : r.sendDetail}`);
  state.ok = state.unconfirmed.length === 0;
  showStep('done');
  return state;
}
