// The local Slack/PagerDuty stand-in lives in stack/saasSink.ts (the local stack runs it too).
export { startSaasReceiver, type Received } from '../../stack/saasSink';
