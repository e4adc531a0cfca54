// Alert severities, channels and the routing between them. Workflow-safe: the workflows validate
// inputs against these, the notification layer (infra/mail/alertChannels.ts) delivers by them.
export const SEVERITIES = ['critical', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const CHANNELS = ['email', 'slack', 'pagerduty'] as const;
export type ChannelName = (typeof CHANNELS)[number];

/** Which channels each severity goes to (the same routing as deploy/alertmanager/alertmanager.yml). */
export const ROUTES: Record<Severity, ChannelName[]> = {
  critical: ['pagerduty', 'slack', 'email'],
  warning: ['slack', 'email'],
  info: ['email'],
};
