// alertDeliveryTest's input and report. Workflow-safe.
import { z } from 'zod';
import { CHANNELS, SEVERITIES, type ChannelName, type Severity } from './alerts';

export const AlertDeliveryTestInput = z
  .object({
    /** Severities to send a test alert of; all by default. */
    severities: z.array(z.enum(SEVERITIES)).nonempty().default([...SEVERITIES]),
    /** Channels to send on; all by default (one not configured is reported as not confirmed). */
    channels: z.array(z.enum(CHANNELS)).nonempty().default([...CHANNELS]),
    /**
     * How receipt is confirmed: "ack" waits for a person's `ack` signal per channel (production);
     * "inbox" reads what arrived from alerts.inbox (Mailpit and the Slack/PagerDuty stand-in; test
     * and local stacks).
     */
    confirm: z.enum(['ack', 'inbox']).default('ack'),
    /** How long to wait for confirmations. */
    ackTimeoutSeconds: z.number().int().min(1).max(7 * 86400).default(1800),
  })
  .strict();
export type AlertDeliveryTestInput = z.input<typeof AlertDeliveryTestInput>;

export interface DeliveryRow {
  severity: Severity;
  channel: ChannelName;
  sent: boolean;
  sendDetail: string;
  confirmed: boolean;
  confirmDetail: string;
}

export interface DeliveryReport {
  token: string;
  confirm: 'ack' | 'inbox';
  rows: DeliveryRow[];
  /** "severity/channel: reason" for every row that did not confirm. */
  unconfirmed: string[];
  ok: boolean;
}

/** The `ack` signal: a person confirms a channel received the test alerts (all severities, or one). */
export interface AckSignal {
  channel: ChannelName;
  severity?: Severity;
  by?: string;
}
/** What an `ack` must look like; anything else is ignored with a logged warning (a signal cannot be refused). */
export const AckSignalSchema = z.object({ channel: z.enum(CHANNELS), severity: z.enum(SEVERITIES).optional(), by: z.string().trim().min(1).max(200).optional() }).strict();
