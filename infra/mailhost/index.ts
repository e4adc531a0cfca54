// The mail host behind ONE interface, so the migration does not care what runs on the VPS:
//   mailu    — a MailU installation: writes MailU's files (mailu.env, dkim/<domain>.<selector>.key)
//              and runs MailU's own commands over SSH (`docker compose up -d`, `docker compose exec
//              admin flask mailu password …`). MailU's images cannot be pulled on the test machines,
//              so those commands never run here; the file writing is the same code as below.
//   postfix  — the daemons MailU runs (Postfix, Dovecot, OpenDKIM, Roundcube) from Debian, configured
//              from the SAME MailU files by the host's apply command (the local test hosts). This is
//              what runs for real here.
import type { SshSession } from '../ssh/client';
import { parseEnv, readFileIfExists, restoreFiles, snapshotFiles, sq, updateEnv, writeFileAtomic } from './files';

export interface MailHostSettings {
  adapter: 'mailu' | 'postfix';
  /** MailU's root folder on the host: holds mailu.env and dkim/. */
  root: string;
  /** Who owns the DKIM key (the signing service's user; MailU: root, read by the admin container). */
  dkimOwner: string;
  /** postfix adapter: applies mailu.env and dkim/ to the daemons (restarts them). */
  applyCommand: string;
  /** postfix adapter: sets a mailbox password; called with the address as its argument, the password on stdin. */
  passwordCommand: string;
  /** postfix adapter: applies changed relay settings only (default `/opt/mailu-local/apply relay`). */
  relayApplyCommand?: string;
  /** Prints Postfix's recent log; default by adapter. */
  mailLogCommand?: string;
  /** The Maildir tree (default by adapter) and who owns it. */
  mailDir?: string;
  mailOwner: string;
}

export interface RelaySettings {
  host: string;
  port: number;
  user: string;
  password: string;
}

export interface MailHostAdapter {
  readonly kind: MailHostSettings['adapter'];
  /** Which parts run for real on this machine (for results and the drill report). */
  readonly realHere: string;
  envFile(): string;
  dkimKeyFile(domain: string, selector: string): string;
  /** The mailboxes' Maildir tree (<domain>/<user>/{cur,new,tmp}) and the owner copied mail gets. */
  mailDir(): string;
  readonly mailOwner: string;
  /** Keeps mailu.env and the DKIM key once per migration (compensation), idempotent. */
  keepPrevious(s: SshSession, migrationId: string, domain: string, selector: string): Promise<{ dir: string; kept: string[]; absent: string[] }>;
  /** Puts the kept files back and applies them. */
  restorePrevious(s: SshSession, migrationId: string, domain: string, selector: string): Promise<string[]>;
  /** RELAYHOST/RELAYUSER/RELAYPASSWORD in mailu.env. */
  writeRelay(s: SshSession, relay: RelaySettings): Promise<void>;
  /** The relay settings now on the host, password only as "set" / "unset". */
  readRelay(s: SshSession): Promise<{ host?: string; user?: string; passwordSet: boolean; domain?: string }>;
  setMailboxPassword(s: SshSession, email: string, password: string): Promise<void>;
  /** Installs the DKIM private key (PKCS#8 PEM), 0600, owned by the signing service. */
  installDkimKey(s: SshSession, domain: string, selector: string, pem: string): Promise<{ path: string; mode: string; owner: string }>;
  /** Makes the daemons use the files (restart / recreate). Returns the command run. */
  apply(s: SshSession): Promise<string>;
  /** Makes Postfix use changed relay settings (reload / recreate the smtp container). Returns the command run. */
  applyRelay(s: SshSession): Promise<string>;
  /** Hands one message to the host's Postfix (sendmail; the message on stdin), for the relay to deliver. */
  sendThroughRelay(s: SshSession, m: { from: string; to: string; subject: string; messageId: string }): Promise<void>;
  /** What Postfix's log says about the message with this Message-ID (its last delivery attempt). */
  relayDelivery(s: SshSession, messageId: string): Promise<RelayDelivery>;
}

/** The outcome of a message handed to the relay, from Postfix's log (`status=` of its last attempt). */
export interface RelayDelivery {
  state: 'sent' | 'deferred' | 'bounced' | 'pending';
  /** The relay's answer as Postfix logged it ("250 2.0.0 Ok: queued as …", "535 …"), at most 300 characters. */
  detail: string;
  /** The relay refused the login (SASL authentication failed / 535). */
  authRefused: boolean;
}

/** Reads Postfix's log lines for one message: cleanup's `message-id=<…>` gives the queue id, smtp's `status=` the outcome. */
export function relayDeliveryOf(log: string, messageId: string): RelayDelivery {
  const id = messageId.replace(/^<|>$/g, '');
  const lines = log.split('\n');
  const queueIds = new Set<string>();
  for (const l of lines) {
    const m = /postfix\/cleanup\[\d+\]: ([0-9A-Za-z]+): message-id=<?([^>\s]+)>?/.exec(l);
    if (m && m[2] === id) queueIds.add(m[1]!);
  }
  let last: RelayDelivery = { state: 'pending', detail: queueIds.size ? 'queued, no delivery attempt logged yet' : 'not in the log yet', authRefused: false };
  for (const l of lines) {
    const m = /: ([0-9A-Za-z]+): to=<[^>]*>,.*\bstatus=(sent|deferred|bounced) \((.*)\)\s*$/.exec(l);
    if (!m || !queueIds.has(m[1]!)) continue;
    const detail = m[3]!.slice(0, 300);
    last = { state: m[2] as RelayDelivery['state'], detail, authRefused: /SASL authentication failed|\b535\b/.test(detail) };
  }
  return last;
}

function common(cfg: MailHostSettings) {
  const envFile = () => `${cfg.root}/mailu.env`;
  const dkimKeyFile = (domain: string, selector: string) => `${cfg.root}/dkim/${domain}.${selector}.key`;
  const keptDir = (id: string) => `${cfg.root}/.vaultdr-previous/${id}`;
  // Mailbox passwords live in MailU's database (main.db) or, on the plain host, Dovecot's passwd-file
  // MailU's layout puts under data/: kept too, so the compensation puts the old passwords back.
  const dataFile = cfg.adapter === 'mailu' ? `${cfg.root}/data/main.db` : `${cfg.root}/data/dovecot.passwd`;
  const files = (domain: string, selector: string) => [envFile(), dkimKeyFile(domain, selector), dataFile];
  return {
    envFile,
    dkimKeyFile,
    // MailU keeps the mailboxes in $ROOT/mail (the dovecot container's /mail); Debian's Dovecot here in /var/mail.
    mailDir: () => cfg.mailDir ?? (cfg.adapter === 'mailu' ? `${cfg.root}/mail` : '/var/mail'),
    mailOwner: cfg.mailOwner,
    async keepPrevious(s: SshSession, id: string, domain: string, selector: string) {
      return snapshotFiles(s, keptDir(id), files(domain, selector));
    },
    async restoreFiles(s: SshSession, id: string, domain: string, selector: string) {
      return restoreFiles(s, keptDir(id), files(domain, selector));
    },
    async writeRelay(s: SshSession, relay: RelaySettings) {
      const text = (await readFileIfExists(s, envFile())) ?? '';
      // MailU's format: RELAYHOST=[host]:port (brackets: no MX lookup).
      await writeFileAtomic(s, envFile(), updateEnv(text, { RELAYHOST: `[${relay.host}]:${relay.port}`, RELAYUSER: relay.user, RELAYPASSWORD: relay.password }), '600');
    },
    async readRelay(s: SshSession) {
      const env = parseEnv((await readFileIfExists(s, envFile())) ?? '');
      return { host: env.RELAYHOST, user: env.RELAYUSER, passwordSet: !!env.RELAYPASSWORD, domain: env.DOMAIN };
    },
    async relayDelivery(s: SshSession, messageId: string, logCommand: string): Promise<RelayDelivery> {
      return relayDeliveryOf(await s.run("reading Postfix's log", logCommand), messageId);
    },
    async installDkimKey(s: SshSession, domain: string, selector: string, pem: string) {
      const file = dkimKeyFile(domain, selector);
      await writeFileAtomic(s, file, pem.endsWith('\n') ? pem : `${pem}\n`, '600', cfg.dkimOwner);
      const st = (await s.run('checking the DKIM key file', `stat -c '%a %U' ${sq(file)}`)).trim().split(' ');
      return { path: file, mode: st[0] ?? '', owner: st[1] ?? '' };
    },
  };
}

/** What differs between the adapters: how the daemons take the files, and how a mailbox password is set. */
interface Runtime {
  kind: MailHostSettings['adapter'];
  realHere: string;
  apply(s: SshSession): Promise<string>;
  applyRelay(s: SshSession): Promise<string>;
  setMailboxPassword(s: SshSession, email: string, password: string): Promise<void>;
  /** The host's sendmail (Postfix's, in MailU's smtp container). */
  sendmail: string;
  /** Prints Postfix's recent log. */
  logCommand: string;
}

/** A plain-text probe message (headers a relay accepts: Date, Message-ID, From, To, Subject). */
function probeMessage(m: { from: string; to: string; subject: string; messageId: string }): string {
  return [`From: ${m.from}`, `To: ${m.to}`, `Subject: ${m.subject}`, `Date: ${new Date().toUTCString()}`, `Message-ID: <${m.messageId.replace(/^<|>$/g, '')}>`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', 'vault-dr relay probe after a credential rotation (no action needed).', ''].join('\r\n');
}

/** One adapter from the MailU files every host shares (common) and a runtime. */
function adapterOf(cfg: MailHostSettings, r: Runtime): MailHostAdapter {
  const c = common(cfg);
  return {
    kind: r.kind,
    realHere: r.realHere,
    envFile: c.envFile,
    dkimKeyFile: c.dkimKeyFile,
    mailDir: c.mailDir,
    mailOwner: c.mailOwner,
    keepPrevious: c.keepPrevious,
    async restorePrevious(s, id, domain, selector) {
      const restored = await c.restoreFiles(s, id, domain, selector);
      if (restored.length) await r.apply(s);
      return restored;
    },
    writeRelay: c.writeRelay,
    readRelay: c.readRelay,
    setMailboxPassword: r.setMailboxPassword,
    installDkimKey: c.installDkimKey,
    apply: r.apply,
    applyRelay: r.applyRelay,
    async sendThroughRelay(s, m) {
      // Envelope sender and recipients as arguments (quoted); the message on stdin.
      await s.run(`handing a probe message to Postfix (${m.subject})`, `${r.sendmail} -i -f ${sq(m.from)} -- ${sq(m.to)}`, probeMessage(m));
    },
    relayDelivery: (s, messageId) => c.relayDelivery(s, messageId, cfg.mailLogCommand ?? r.logCommand),
  };
}

/** A MailU installation (docker compose). Its commands cannot run on the test machines (no images). */
export function mailuAdapter(cfg: MailHostSettings): MailHostAdapter {
  return adapterOf(cfg, {
    kind: 'mailu',
    realHere: 'MailU files only (mailu.env, dkim/); docker compose and flask mailu cannot run on the test hosts',
    async apply(s) {
      // Env changes need the containers recreated, not restarted (docs/maintain.rst).
      const cmd = `cd ${sq(cfg.root)} && docker compose up -d`;
      await s.run('applying the MailU configuration', cmd);
      return cmd;
    },
    async applyRelay(s) {
      // MailU's smtp container renders RELAY* from mailu.env at start: recreate that one only.
      const cmd = `cd ${sq(cfg.root)} && docker compose up -d smtp`;
      await s.run('applying the relay settings (MailU smtp container)', cmd);
      return cmd;
    },
    sendmail: `cd ${sq(cfg.root)} && docker compose exec -T smtp sendmail`,
    logCommand: `cd ${sq(cfg.root)} && docker compose logs --no-color --tail 5000 smtp`,
    async setMailboxPassword(s, email, password) {
      const [local, domain] = email.split('@') as [string, string];
      // The password reaches the admin CLI through stdin, never the SSH command line.
      await s.run(`setting the password of ${email} (flask mailu password)`, `cd ${sq(cfg.root)} && docker compose exec -T admin flask mailu password ${sq(local)} ${sq(domain)} "$(cat)"`, password);
    },
  });
}

/** Debian's Postfix + Dovecot + OpenDKIM + Roundcube configured from MailU's files (what runs here). */
export function postfixAdapter(cfg: MailHostSettings): MailHostAdapter {
  return adapterOf(cfg, {
    kind: 'postfix',
    realHere: 'everything: MailU files written over SSH, applied to Debian Postfix/Dovecot/OpenDKIM/Roundcube by the host apply command',
    async apply(s) {
      await s.run(`applying the mail configuration (${cfg.applyCommand})`, cfg.applyCommand);
      return cfg.applyCommand;
    },
    async applyRelay(s) {
      const cmd = cfg.relayApplyCommand ?? '/opt/mailu-local/apply relay';
      await s.run(`applying the relay settings (${cmd})`, cmd);
      return cmd;
    },
    sendmail: '/usr/sbin/sendmail',
    logCommand: 'tail -n 5000 /var/log/postfix.log',
    async setMailboxPassword(s, email, password) {
      await s.run(`setting the password of ${email}`, `${cfg.passwordCommand} ${sq(email)}`, `${password}\n`);
    },
  });
}

export function mailHostAdapter(cfg: MailHostSettings): MailHostAdapter {
  return cfg.adapter === 'mailu' ? mailuAdapter(cfg) : postfixAdapter(cfg);
}
