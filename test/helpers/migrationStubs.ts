// Typed stub activities for migrateVps on the time-skipping test server (the real activities run
// against the local hosts in test/migrateVps.test.ts): every step answers at once, and the steps
// that change or undo something are recorded in `calls`, alerts in `alerts`.
import type { MigrationActivities } from '../../activities/migration';
import type { AlertRequest } from '../../activities/notify/notify';
import type { Stubs } from './timeSkipping';

export const FP = 'SHA256:2ZA82wEZ43O7POrVfwkptYOc//fGgWOMfzXr4HprVVQ';

export function migrationStubs(alerts: AlertRequest[], calls: string[]): Stubs {
  const report = { host: 'root@10.0.0.2:22', hostKeySha256: FP, os: 'Debian', diskFreeMiB: 1000, portsInUse: [22], installed: {} };
  const mail = { selector: 'dkim', domain: 'example.test', dkim: 'pass (aligned)', spf: 'pass', dmarc: 'pass', messageId: '<m@example.test>' };
  const m: Partial<MigrationActivities> = {
    preflightTarget: async () => report,
    checkLiveVault: async () => ({ available: true, detail: 'ok' }),
    readMigrationSecrets: async () => ({ secrets: [{ path: 'secret/vault-dr/migration/dkim', version: 1, fingerprints: [] }] }),
    deploySshKeys: async () => (calls.push('deploySshKeys'), { deployed: [FP], refused: [], previousKept: '~root/.ssh/x' }),
    restoreSshKeys: async () => (calls.push('restoreSshKeys'), { restored: true, detail: 'previous authorized_keys restored' }),
    validateDecryptionPath: async () => ({ hops: [{ hop: 'format', ok: true, detail: 'ok' }] }),
    keepMailConfig: async () => ({ dir: '/mailu/.vaultdr-previous/x', kept: [], absent: [] }),
    reconfigureMailHost: async () => (calls.push('reconfigureMailHost'), { relay: { path: 'p', version: 1, host: '[r]:587' }, mailboxes: [], applied: 'apply', adapter: 'postfix', realHere: 'all' }),
    restoreMailConfig: async () => (calls.push('restoreMailConfig'), { restored: ['/mailu/mailu.env'], applied: 'postfix apply' }),
    verifyWebmailLogin: async () => (calls.push('verifyWebmailLogin'), { webmail: { url: 'http://h/', status: 302, inboxSeen: true }, imap: { login: true, mailbox: 'INBOX' } }),
    installDkimKey: async () => ({ selector: 'dkim', domain: 'example.test', publicKeySha256: 'SHA256:x', dnsMatches: true, path: '/mailu/dkim/k', mode: '600', owner: 'opendkim' }),
    sendTestEmail: async (req) => (calls.push(`sendTestEmail ${req.label}`), mail),
    copyMailboxes: async (req) => (calls.push(`copyMailboxes ${req.label}`), { label: req.label, mailDir: '/var/mail', mailboxes: 1, messages: 2, verified: true as const, messagesOnNew: 3, bytes: 10240, seconds: 0.1 }),
  };
  return {
    ...(m as unknown as Stubs),
    async sendAlert(req) {
      alerts.push(req);
      return { sent: true, channels: [], dedupRecord: 'written' as const };
    },
  };
}
