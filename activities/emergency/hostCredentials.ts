// The host side of the emergency rotation of mail and SSH credentials (issue 15 §2): the mail host
// the migration reconfigures (infra/mailhost: MailU's files and commands, or Debian's daemons from
// them) and authorized_keys on the VPS, reached over SSH (ssh2) with the restore role's own key
// (rotation.sshKeyFile) and the pinned host key of migration.hosts[rotation.host]. Wired only when
// rotation.host is set; then mailbox-password and ssh-key rotate automatically, and smtp-relay is
// written to the host's Postfix relay settings once a responder has stored the password the relay
// provider issued in Vault (the provider holds that password). Values arrive as arguments from the
// rotation activities and travel to the host on stdin only; nothing here returns or logs one.
import nodemailer from 'nodemailer';
import * as fs from 'node:fs';
import { ErrorType, failure as fail } from '../../common/errors';
import type { Config } from '../../infra/config';
import { readSecretFile } from '../../infra/config';
import { mailHostAdapter, type RelayDelivery, type RelaySettings } from '../../infra/mailhost';
import { sq } from '../../infra/mailhost/files';
import { fingerprintOfKeyLine, keyAccepted, withSsh, type SshSession, type SshTarget } from '../../infra/ssh/client';
import { hostPort } from '../migration/mailChecks';

export type LoginProbe = 'ok' | 'refused';

export interface HostCredentials {
  /** "root@10.231.0.3:22 (migration.hosts.new)", for details. */
  readonly label: string;
  /** Where SMTP AUTH is tried (the mail host's submission port). */
  readonly submission: string;
  setMailboxPassword(email: string, password: string): Promise<void>;
  /** SMTP AUTH on the mail host's submission port (STARTTLS or implicit TLS, the host's CA). */
  smtpAuth(user: string, password: string): Promise<LoginProbe>;
  /** Adds `keyLine` to `user`'s authorized_keys unless its fingerprint is already there; atomic. */
  addAuthorizedKey(user: string, keyLine: string, comment: string): Promise<{ added: boolean }>;
  /** Removes every authorized_keys line of `user` with this fingerprint; atomic. Returns how many went. */
  removeAuthorizedKey(user: string, fingerprint: string): Promise<number>;
  /** A fresh SSH login as `user` with `privateKey` (a real signature). */
  sshLogin(user: string, privateKey: string): Promise<LoginProbe>;
  /** Whether the host would take `keyLine` for `user` (no private half needed: infra/ssh keyAccepted). */
  sshKeyAccepted(user: string, keyLine: string): Promise<boolean>;
  /** The relay settings in force on the host (password only as set/unset) and its mail domain. */
  readRelay(): Promise<{ host?: string; user?: string; passwordSet: boolean; domain?: string }>;
  /** Writes RELAYHOST/RELAYUSER/RELAYPASSWORD (mailu.env) and makes Postfix use them (reload). Returns the command run. */
  writeRelay(relay: RelaySettings): Promise<string>;
  /**
   * Hands a probe message to the host's Postfix and waits (≤ timeoutMs) for its first delivery
   * attempt through the relay, read from Postfix's log: sent (the relay said 250) or deferred/bounced.
   */
  relayProbe(m: { to: string; subject: string; messageId: string; timeoutMs: number; onWait?: () => void }): Promise<RelayDelivery & { from: string }>;
}

/** SMTP AUTH straight at the relay (no mail sent): 'ok', or 'refused' with the relay's code (535). Anything else throws (retryable). */
export async function relayLogin(o: { host: string; port: number; user: string; password: string; caFile?: string }): Promise<{ result: LoginProbe; code?: number }> {
  const t = nodemailer.createTransport({
    host: o.host,
    port: o.port,
    secure: o.port === 465,
    // Never a relay password over a plain connection: STARTTLS or implicit TLS.
    requireTLS: o.port !== 465,
    auth: { user: o.user, pass: o.password },
    tls: { ...(o.caFile ? { ca: fs.readFileSync(o.caFile) } : {}) },
    connectionTimeout: 10_000,
    logger: false,
  });
  try {
    await t.verify();
    return { result: 'ok' };
  } catch (err) {
    const e = err as Error & { code?: string; responseCode?: number };
    if (e.code === 'EAUTH' || e.responseCode === 535) return { result: 'refused', code: e.responseCode };
    throw fail(ErrorType.HostUnreachable, `SMTP AUTH at the relay ${o.host}:${o.port}: ${e.code ?? ''} ${String(e.message).slice(0, 200)}`, false);
  } finally {
    t.close();
  }
}

/** The hook when rotation.host is set, else undefined (the classes fall back to a person). */
export function hostCredentials(cfg: Config): HostCredentials | undefined {
  const which = cfg.rotation.host;
  if (!which) return undefined;
  const m = cfg.migration;
  const adapter = mailHostAdapter(m.mailHost);
  const target = (user?: string): SshTarget => {
    const d = m.hosts[which];
    if (!d) throw fail(ErrorType.ConfigInvalid, `rotation.host is "${which}" but migration.hosts.${which} is not configured`);
    if (!d.hostKeySha256) throw fail(ErrorType.ConfigInvalid, `migration.hosts.${which}.hostKeySha256 is not set (the host key is always pinned)`);
    return { address: d.address, port: d.port, user: user ?? d.user, hostKeySha256: d.hostKeySha256 };
  };
  const key = () => {
    if (!cfg.rotation.sshKeyFile) throw fail(ErrorType.KeyMaterialMissing, 'rotation.sshKeyFile is not set on this worker: rotation.host needs it to reach the host over SSH');
    return readSecretFile(cfg.rotation.sshKeyFile, 'rotation.sshKeyFile');
  };
  const admin = <T>(fn: (s: SshSession) => Promise<T>) => withSsh(target(), key(), fn);
  const t0 = target();
  const submission = m.mailHost.submission ?? `${t0.address}:${m.mailHost.submissionTls ? 465 : 587}`;
  /** `user`'s authorized_keys, from the admin login (root can edit any user's). */
  const keysFile = (user: string) => (user === t0.user ? '"$HOME/.ssh/authorized_keys"' : `"$(getent passwd ${sq(user)} | cut -d: -f6)/.ssh/authorized_keys"`);
  const rewriteKeys = (user: string, produce: string) =>
    // Keep every other line; write a temporary file and rename it (a crash never leaves half a file).
    `set -e; f=${keysFile(user)}; d=$(dirname "$f"); mkdir -p "$d"; touch "$f"; umask 077; ${produce} > "$f.vaultdr-tmp"; chmod 600 "$f.vaultdr-tmp"; chown --reference="$d" "$f.vaultdr-tmp" 2>/dev/null || true; mv -f "$f.vaultdr-tmp" "$f"`;

  return {
    label: `${t0.user}@${t0.address}:${t0.port} (migration.hosts.${which})`,
    submission,

    async setMailboxPassword(email, password) {
      await admin((s) => adapter.setMailboxPassword(s, email, password));
    },

    async smtpAuth(user, password) {
      const ep = hostPort(submission);
      const t = nodemailer.createTransport({
        host: ep.host,
        port: ep.port,
        secure: m.mailHost.submissionTls,
        requireTLS: !m.mailHost.submissionTls,
        auth: { user, pass: password },
        tls: { ...(m.mailHost.caFile ? { ca: fs.readFileSync(m.mailHost.caFile) } : {}), ...(m.mailHost.tlsServerName ? { servername: m.mailHost.tlsServerName } : {}) },
        connectionTimeout: 10_000,
        logger: false,
      });
      try {
        await t.verify();
        return 'ok';
      } catch (err) {
        const e = err as Error & { code?: string; responseCode?: number };
        if (e.code === 'EAUTH' || e.responseCode === 535) return 'refused';
        throw fail(ErrorType.HostUnreachable, `SMTP AUTH probe at ${submission}: ${e.code ?? ''} ${String(e.message).slice(0, 200)}`, false);
      } finally {
        t.close();
      }
    },

    async addAuthorizedKey(user, keyLine, comment) {
      const fp = fingerprintOfKeyLine(keyLine);
      if (!fp) throw fail(ErrorType.SecretMalformed, 'the new SSH public key is not a key line');
      const line = `${keyLine.trim().split(/\s+/).slice(0, 2).join(' ')} ${comment}`;
      return admin(async (s) => {
        const present = (await s.run(`reading ${user}'s authorized_keys`, `cat ${keysFile(user)} 2>/dev/null || true`)).split('\n').some((l) => fingerprintOfKeyLine(l) === fp);
        if (present) return { added: false };
        // The new line travels on stdin, appended after the kept lines (sed ends the last one with a newline).
        await s.run(`adding the new key to ${user}'s authorized_keys`, rewriteKeys(user, `{ sed -e '$a\\' "$f"; cat -; }`), `${line}\n`);
        return { added: true };
      });
    },

    async removeAuthorizedKey(user, fingerprint) {
      return admin(async (s) => {
        const lines = (await s.run(`reading ${user}'s authorized_keys`, `cat ${keysFile(user)} 2>/dev/null || true`)).split('\n');
        const gone = lines.filter((l) => fingerprintOfKeyLine(l) === fingerprint).length;
        if (!gone) return 0;
        const kept = lines.filter((l) => fingerprintOfKeyLine(l) !== fingerprint).join('\n').replace(/\n*$/, '\n');
        // The kept lines travel on stdin; the file is replaced by them.
        await s.run(`removing the old key from ${user}'s authorized_keys`, rewriteKeys(user, 'cat -'), kept);
        return gone;
      });
    },

    async sshLogin(user, privateKey) {
      try {
        await withSsh(target(user), privateKey, (s) => s.run('login probe', 'true'));
        return 'ok';
      } catch (err) {
        if ((err as { type?: string }).type === ErrorType.SshAuthFailed) return 'refused';
        throw err;
      }
    },

    async sshKeyAccepted(user, keyLine) {
      return keyAccepted(target(user), keyLine);
    },

    async readRelay() {
      return admin((s) => adapter.readRelay(s));
    },

    async writeRelay(relay) {
      return admin(async (s) => {
        await adapter.writeRelay(s, relay);
        const applied = await adapter.applyRelay(s);
        const now = await adapter.readRelay(s);
        if (now.host !== `[${relay.host}]:${relay.port}` || now.user !== relay.user || !now.passwordSet) throw fail(ErrorType.HostCommandFailed, `${adapter.envFile()} on ${t0.address} does not hold the relay settings after writing them`);
        return applied;
      });
    },

    async relayProbe(m) {
      return admin(async (s) => {
        const domain = (await adapter.readRelay(s)).domain ?? 'localhost';
        const from = `vault-dr-probe@${domain}`;
        await adapter.sendThroughRelay(s, { from, to: m.to, subject: m.subject, messageId: m.messageId });
        const deadline = Date.now() + m.timeoutMs;
        for (;;) {
          const d = await adapter.relayDelivery(s, m.messageId);
          if (d.state !== 'pending' || Date.now() > deadline) return { ...d, from };
          m.onWait?.();
          await new Promise((r) => setTimeout(r, 500));
        }
      });
    },
  };
}
