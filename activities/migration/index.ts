// Migration activities (role `migration`: holds the worker's migration SSH key and the migration
// AppRole). Each one is a step of docs/runbooks/vps-migration.md or smtp-recovery.md. Secrets are
// read from the secret source (live Vault, or a backup restored into staging OpenBao) inside the
// activity that uses them; results carry paths, versions and fingerprints only. Every change to a
// host keeps what it replaces first (once per migration, so a retry keeps the original), and has a
// compensation activity that puts it back.
import * as crypto from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ErrorType, failure } from '../../common/errors';
import type { Hop, HostRef, MailCopy, PreflightReport, SecretRef, SecretSource } from '../../common/migration';
import type { Config } from '../../infra/config';
import { readSecretFile } from '../../infra/config';
import { mailHostAdapter } from '../../infra/mailhost';
import { sq } from '../../infra/mailhost/files';
import { openVaultReader, type VaultReader } from '../../infra/vault/migrationVault';
import { SshSession, fingerprintOfKeyLine, keyAccepted, publicKeyLine, withSsh, type SshTarget } from '../../infra/ssh/client';
import { heartbeating, withHeartbeats } from '../heartbeat';
import { awaitRelayedMessage, dkimRecordKey, hostPort, imapLogin, judgeMessage, makeResolver, submit, verifyRelayLogin, webmailLogin } from './mailChecks';

type Which = 'new' | 'old';

/** `sha256sum` lines of Maildir message files → mailbox folder → message hashes. */
function parseManifest(out: string): Map<string, string[]> {
  const boxes = new Map<string, string[]>();
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)\/(?:cur|new)\/[^/]+$/.exec(line);
    if (!m) continue;
    const list = boxes.get(m[2]!) ?? [];
    list.push(m[1]!);
    boxes.set(m[2]!, list);
  }
  return boxes;
}

interface Secrets {
  operators: { name: string; line: string; fingerprint: string }[];
  relay: { host: string; port: number; user: string; password: string };
  mailbox: { email: string; password: string };
  dkim: { domain: string; selector: string; pem: string; publicKeyB64: string };
  refs: { operatorKeys: SecretRef; smtpRelay: SecretRef; mailbox: SecretRef; dkim: SecretRef };
}

const sha = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');

/** A field of a secret as a non-empty string; the error names the path and the field, never a value. */
function field(path: string, data: Record<string, unknown>, name: string, pattern?: RegExp, expected?: string): string {
  const v = data[name];
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s !== 'string' || !s.trim()) throw failure(ErrorType.SecretMalformed, `secret ${path}: field "${name}" is missing or empty`);
  if (pattern && !pattern.test(s.trim())) throw failure(ErrorType.SecretMalformed, `secret ${path}: field "${name}" is not ${expected ?? 'in the expected format'}`);
  return s.trim();
}

export const migrationActivities = (deps: { cfg: Config }) => {
  const m = deps.cfg.migration;
  const adapter = mailHostAdapter(m.mailHost);
  const mountPath = (p: string) => `${m.kvMount}/${p}`;

  const target = (which: Which, ref: HostRef = {}): SshTarget => {
    const d = m.hosts[which];
    const address = ref.address ?? d?.address;
    const hostKeySha256 = ref.hostKeySha256 ?? d?.hostKeySha256;
    const label = which === 'new' ? 'newHost' : 'oldHost';
    if (!address) throw failure(ErrorType.InvalidInput, `${label}.address: not given and migration.hosts.${which} is not configured`);
    if (!hostKeySha256) throw failure(ErrorType.InvalidInput, `${label}.hostKeySha256: not given and migration.hosts.${which}.hostKeySha256 is not configured (the host key is always pinned)`);
    return { address, port: ref.port ?? d?.port ?? 22, user: ref.user ?? d?.user ?? 'root', hostKeySha256 };
  };
  const sshKey = (): string => {
    if (!m.sshKeyFile) throw failure(ErrorType.KeyMaterialMissing, 'migration.sshKeyFile is not set on this worker (role migration): it cannot log in to the hosts');
    return readSecretFile(m.sshKeyFile, 'migration.sshKeyFile');
  };
  const ownKeyLine = () => publicKeyLine(sshKey(), 'vault-dr-migration');
  const reader = (source: SecretSource): Promise<VaultReader> =>
    openVaultReader({ address: source.kind === 'live' ? (m.vaultAddress ?? deps.cfg.vault.address) : source.address, roleIdFile: m.roleIdFile, secretIdFile: m.secretIdFile, kvMount: m.kvMount });
  const withReader = async <T>(source: SecretSource, fn: (r: VaultReader) => Promise<T>): Promise<T> => {
    const r = await reader(source);
    try {
      return await fn(r);
    } finally {
      await r.close();
    }
  };

  const readOperators = async (r: VaultReader) => {
    const path = mountPath(m.secrets.operatorKeys);
    const { data, version } = await r.read(m.secrets.operatorKeys);
    const operators = Object.entries(data).map(([name, v]) => {
      const line = typeof v === 'string' ? v.trim() : '';
      const fingerprint = fingerprintOfKeyLine(line);
      if (!fingerprint) throw failure(ErrorType.SecretMalformed, `secret ${path}: field "${name}" is not an SSH public key line`);
      return { name, line, fingerprint };
    });
    if (!operators.length) throw failure(ErrorType.SecretMalformed, `secret ${path} lists no operator key`);
    return { operators, ref: { path, version, fingerprints: operators.map((o) => o.fingerprint) } };
  };
  const readRelay = async (r: VaultReader) => {
    const path = mountPath(m.secrets.smtpRelay);
    const { data, version } = await r.read(m.secrets.smtpRelay);
    const relay = {
      host: field(path, data, 'host', /^[A-Za-z0-9.-]{1,253}$/, 'a host name or address'),
      port: Number(field(path, data, 'port', /^\d{1,5}$/, 'a port number')),
      user: field(path, data, 'username'),
      password: field(path, data, 'password'),
    };
    return { relay, ref: { path, version, fingerprints: [] } };
  };
  const readMailbox = async (r: VaultReader) => {
    const path = mountPath(m.secrets.mailbox);
    const { data, version } = await r.read(m.secrets.mailbox);
    return { mailbox: { email: field(path, data, 'email', /^[^@\s]+@[^@\s]+$/, 'a mail address'), password: field(path, data, 'password') }, ref: { path, version, fingerprints: [] } };
  };
  const readDkim = async (r: VaultReader) => {
    const path = mountPath(m.secrets.dkim);
    const { data, version } = await r.read(m.secrets.dkim);
    const domain = field(path, data, 'domain', /^[A-Za-z0-9.-]{1,253}$/, 'a domain');
    const selector = typeof data.selector === 'string' && data.selector ? field(path, data, 'selector', /^[A-Za-z0-9._-]{1,63}$/, 'a DKIM selector') : 'dkim';
    const pem = field(path, data, 'private_key');
    let publicKeyB64: string;
    try {
      const key = crypto.createPrivateKey(pem);
      if (key.asymmetricKeyType !== 'rsa') throw new Error(`a ${key.asymmetricKeyType} key`);
      publicKeyB64 = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' }).toString('base64');
    } catch (err) {
      throw failure(ErrorType.SecretMalformed, `secret ${path}: field "private_key" is not an RSA private key in PEM (${(err as Error).message.replace(/[A-Za-z0-9+/=]{20,}/g, '…').slice(0, 120)})`);
    }
    return { dkim: { domain, selector, pem, publicKeyB64 }, ref: { path, version, fingerprints: [`SHA256:${sha(Buffer.from(publicKeyB64, 'base64')).slice(0, 16)} (public key)`] } };
  };
  const readAll = async (r: VaultReader): Promise<Secrets> => {
    const [o, rl, mb, dk] = [await readOperators(r), await readRelay(r), await readMailbox(r), await readDkim(r)];
    return { operators: o.operators, relay: rl.relay, mailbox: mb.mailbox, dkim: dk.dkim, refs: { operatorKeys: o.ref, smtpRelay: rl.ref, mailbox: mb.ref, dkim: dk.ref } };
  };

  const authorizedKeys = '"$HOME/.ssh/authorized_keys"';
  const keptKeys = (id: string) => `"$HOME/.ssh/authorized_keys.vaultdr-previous-${id}"`;

  const mailEndpoints = (host: SshTarget) => ({
    submission: hostPort(m.mailHost.submission ?? `${host.address}:${m.mailHost.submissionTls ? 465 : 587}`),
    imap: hostPort(m.mailHost.imap ?? `${host.address}:${m.mailHost.imapTls ? 993 : 143}`),
    webmail: m.mailHost.webmailUrl ?? `http://${host.address}/webmail`,
  });

  const group = {
    /** SSH with the pinned host key; OS, disk, listening ports, what is installed. Old host: unreachable is an answer, not a failure. */
    async preflightTarget(req: { which: Which; host?: HostRef }): Promise<PreflightReport | { unreachable: string }> {
      const t = target(req.which, req.host);
      try {
        return await withSsh(t, sshKey(), async (s) => {
          const out = await s.run(
            'collecting host facts',
            [
              '. /etc/os-release 2>/dev/null; echo "os=${PRETTY_NAME:-unknown}"',
              `echo "disk=$(df -Pm / | awk 'NR==2{print $4}')"`,
              `echo "ports=$( (ss -Htln 2>/dev/null || netstat -tln 2>/dev/null) | awk '{print $4}' | sed 's/.*://' | sort -un | tr '\\n' ' ')"`,
              "for p in openssh-server postfix dovecot-core opendkim rspamd roundcube-core php-cli docker.io docker-ce; do v=$(dpkg-query -W -f='${Version}' $p 2>/dev/null) && echo \"pkg=$p $v\"; done; true",
            ].join('\n'),
          );
          const lines = out.split('\n');
          const val = (k: string) => lines.find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1) ?? '';
          return {
            host: `${t.user}@${t.address}:${t.port}`,
            hostKeySha256: t.hostKeySha256,
            os: val('os'),
            diskFreeMiB: Number(val('disk')) || 0,
            portsInUse: val('ports').split(' ').filter(Boolean).map(Number).filter((n) => n > 0),
            installed: Object.fromEntries(lines.filter((l) => l.startsWith('pkg=')).map((l) => l.slice(4).split(' ') as [string, string])),
          };
        });
      } catch (err) {
        if (req.which === 'old' && (err as { type?: string }).type === ErrorType.HostUnreachable) return { unreachable: (err as Error).message };
        throw err;
      }
    },

    /** Whether the live Vault answers and is unsealed (decides the secret source of `auto`). */
    async checkLiveVault(): Promise<{ available: boolean; detail: string }> {
      try {
        const r = await reader({ kind: 'live' });
        await r.close();
        return { available: true, detail: `Vault at ${r.address} unsealed, migration AppRole login works` };
      } catch (err) {
        const type = (err as { type?: string }).type;
        if (type === ErrorType.VaultUnavailable) return { available: false, detail: (err as Error).message };
        throw err;
      }
    },

    /** Reads every migration secret and checks its format. Paths, versions, fingerprints only. */
    async readMigrationSecrets(req: { source: SecretSource }): Promise<{ secrets: SecretRef[] }> {
      return withReader(req.source, async (r) => {
        const s = await readAll(r);
        return { secrets: [s.refs.operatorKeys, s.refs.smtpRelay, s.refs.mailbox, s.refs.dkim] };
      });
    },

    /**
     * authorized_keys for the listed operators plus the worker's own migration key, written
     * atomically after keeping the previous file (once per migration). Confirmed by reading the
     * fingerprints back, a fresh login with the migration key, and a refusal of every removed key.
     */
    async deploySshKeys(req: { host?: HostRef; source: SecretSource; migrationId: string }): Promise<{ deployed: string[]; refused: string[]; previousKept: string }> {
      const t = target('new', req.host);
      const { operators } = await withReader(req.source, readOperators);
      const own = ownKeyLine();
      const wanted = [{ name: 'vault-dr-migration', line: own, fingerprint: fingerprintOfKeyLine(own)! }, ...operators];
      const content = `# written by vault-dr migration ${req.migrationId}; the previous file is authorized_keys.vaultdr-previous-${req.migrationId}\n${wanted.map((o) => `${o.line.split(/\s+/).slice(0, 2).join(' ')} ${o.name}`).join('\n')}\n`;
      const previous = await withSsh(t, sshKey(), async (s) => {
        // Keep the previous file once: a retry must not keep its own output as "previous".
        const kept = await s.run(
          'keeping the previous authorized_keys',
          `set -e; mkdir -p "$HOME/.ssh"; chmod 700 "$HOME/.ssh"; if [ ! -e ${keptKeys(req.migrationId)} ]; then if [ -e ${authorizedKeys} ]; then cp -a ${authorizedKeys} ${keptKeys(req.migrationId)}; else : > ${keptKeys(req.migrationId)}; echo absent > ${keptKeys(req.migrationId)}.absent; fi; fi; cat ${keptKeys(req.migrationId)}`,
        );
        await s.run('writing authorized_keys', `set -e; umask 077; cat > ${authorizedKeys}.vaultdr-tmp; chmod 600 ${authorizedKeys}.vaultdr-tmp; mv -f ${authorizedKeys}.vaultdr-tmp ${authorizedKeys}`, content);
        const back = await s.run('reading authorized_keys back', `cat ${authorizedKeys}`);
        const deployed = back.split('\n').map(fingerprintOfKeyLine).filter((f): f is string => !!f);
        const missing = wanted.filter((w) => !deployed.includes(w.fingerprint));
        if (missing.length || deployed.length !== wanted.length) throw failure(ErrorType.HostCommandFailed, `authorized_keys on ${t.address} reads back ${deployed.length} keys, expected ${wanted.length} (missing: ${missing.map((x) => x.name).join(', ') || 'none'})`);
        return kept;
      });
      // A fresh connection: the new file lets the worker's own key in.
      await withSsh(t, sshKey(), (s) => s.run('fresh login with the migration key', 'true'));
      const wantedFps = new Set(wanted.map((w) => w.fingerprint));
      const removed = previous.split('\n').filter((l) => fingerprintOfKeyLine(l) && !wantedFps.has(fingerprintOfKeyLine(l)!));
      const refused: string[] = [];
      for (const line of removed) {
        const fp = fingerprintOfKeyLine(line)!;
        if (await keyAccepted(t, line)) throw failure(ErrorType.HostCommandFailed, `key ${fp}, removed from the operator list, is still accepted by ${t.address} (another authorized_keys source, e.g. AuthorizedKeysFile or AuthorizedKeysCommand?)`);
        refused.push(fp);
      }
      return { deployed: [...wantedFps], refused, previousKept: `~${t.user}/.ssh/authorized_keys.vaultdr-previous-${req.migrationId}` };
    },

    /** Compensation: the authorized_keys kept by deploySshKeys goes back (or is removed when there was none). */
    async restoreSshKeys(req: { host?: HostRef; migrationId: string }): Promise<{ restored: boolean; detail: string }> {
      const t = target('new', req.host);
      return withSsh(t, sshKey(), async (s) => {
        const out = await s.run(
          'restoring the previous authorized_keys',
          `set -e; k=${keptKeys(req.migrationId)}; if [ ! -e "$k" ]; then echo nothing; elif [ -e "$k.absent" ]; then rm -f ${authorizedKeys} "$k" "$k.absent"; echo removed; else mv -f "$k" ${authorizedKeys}; echo restored; fi`,
        );
        const r = out.trim();
        return { restored: r !== 'nothing', detail: r === 'nothing' ? 'no kept authorized_keys (deploySshKeys had not changed it)' : r === 'removed' ? 'authorized_keys removed (there was none before)' : 'previous authorized_keys restored' };
      });
    },

    /**
     * The SMTP credentials' decryption path, hop by hop, without reading a value out: the source
     * answers, its barrier is unsealed (the keyring that unwraps the data), the migration policy
     * grants read, the secrets decrypt (read at a version), and their fields have the right format.
     */
    async validateDecryptionPath(req: { source: SecretSource }): Promise<{ hops: Hop[] }> {
      const hops: Hop[] = [];
      const hopFailed = (hop: Hop['hop'], detail: string, type: Parameters<typeof failure>[0] = ErrorType.VaultRequestRejected): never => {
        hops.push({ hop, ok: false, detail });
        throw failure(type, `SMTP credential decryption path: ${hops.map((h) => `${h.hop} ${h.ok ? 'ok' : `FAILED (${h.detail})`}`).join('; ')}`);
      };
      const where = req.source.kind === 'live' ? 'the live Vault' : `backup ${req.source.backupId} restored into ${req.source.address}`;
      let r: VaultReader;
      try {
        r = await reader(req.source);
      } catch (err) {
        const e = err as Error & { type?: string };
        if (e.type === ErrorType.VaultUnavailable) return hopFailed('source reachable', e.message, ErrorType.VaultUnavailable);
        hops.push({ hop: 'source reachable', ok: true, detail: where }, { hop: 'barrier unsealed', ok: true, detail: 'unsealed' });
        return hopFailed('policy grants read', e.message, (e.type as never) ?? ErrorType.VaultAuthFailed);
      }
      try {
        hops.push({ hop: 'source reachable', ok: true, detail: where });
        const h = await r.health();
        if (h.sealed || !h.initialized) hopFailed('barrier unsealed', `${r.address} is ${h.sealed ? 'sealed' : 'not initialised'}`, ErrorType.VaultUnavailable);
        hops.push({ hop: 'barrier unsealed', ok: true, detail: req.source.kind === 'backup' ? "restored cluster unsealed with the backed-up cluster's shares" : 'unsealed, active' });
        const paths = [m.secrets.smtpRelay, m.secrets.mailbox];
        const caps = await r.capabilities(paths);
        const denied = paths.filter((p) => !caps[p]?.includes('read') && !caps[p]?.includes('root'));
        if (denied.length) hopFailed('policy grants read', `no read on ${denied.map(mountPath).join(', ')}`, ErrorType.VaultAuthFailed);
        hops.push({ hop: 'policy grants read', ok: true, detail: `read on ${paths.map(mountPath).join(', ')}` });
        let relay, mailbox;
        try {
          relay = await r.read(m.secrets.smtpRelay);
          mailbox = await r.read(m.secrets.mailbox);
        } catch (err) {
          return hopFailed('decrypts', (err as Error).message, ((err as { type?: string }).type as never) ?? ErrorType.VaultRequestRejected);
        }
        hops.push({ hop: 'decrypts', ok: true, detail: `${mountPath(m.secrets.smtpRelay)} v${relay.version}, ${mountPath(m.secrets.mailbox)} v${mailbox.version}` });
        try {
          await readRelay(r);
          await readMailbox(r);
        } catch (err) {
          return hopFailed('format', (err as Error).message, ErrorType.SecretMalformed);
        }
        hops.push({ hop: 'format', ok: true, detail: 'relay host/port/username/password and mailbox email/password present and well-formed' });
        return { hops };
      } finally {
        await r.close();
      }
    },

    /** Keeps mailu.env and the DKIM key file before the first change (once per migration). */
    async keepMailConfig(req: { host?: HostRef; migrationId: string; domain?: string; selector?: string; source: SecretSource }): Promise<{ dir: string; kept: string[]; absent: string[] }> {
      const t = target('new', req.host);
      const { dkim } = await withReader(req.source, readDkim);
      return withSsh(t, sshKey(), (s) => adapter.keepPrevious(s, req.migrationId, dkim.domain, dkim.selector));
    },

    /** Compensation: puts the kept mail configuration back and applies it. */
    async restoreMailConfig(req: { host?: HostRef; migrationId: string; source: SecretSource }): Promise<{ restored: string[]; applied: string }> {
      const t = target('new', req.host);
      const { dkim } = await withReader(req.source, readDkim).catch(() => ({ dkim: { domain: '*', selector: 'dkim' } }));
      return heartbeating('restoreMailConfig', () =>
        withSsh(t, sshKey(), async (s) => {
          const restored = await adapter.restorePrevious(s, req.migrationId, dkim.domain, dkim.selector);
          return { restored, applied: restored.length ? `${adapter.kind} apply` : 'nothing to restore' };
        }),
      );
    },

    /**
     * Writes the recovered relay credentials into mailu.env and the mailbox password, then applies
     * (restart). The relay credentials are tried against the relay first: a wrong password stops here.
     */
    async reconfigureMailHost(req: { host?: HostRef; source: SecretSource }): Promise<{ relay: { path: string; version: number; host: string }; mailboxes: { path: string; version: number; user: string }[]; applied: string; adapter: string; realHere: string }> {
      const t = target('new', req.host);
      const { relay, mailbox, refs } = await withReader(req.source, async (r) => {
        const a = await readRelay(r);
        const b = await readMailbox(r);
        return { relay: a.relay, mailbox: b.mailbox, refs: { relay: a.ref, mailbox: b.ref } };
      });
      await verifyRelayLogin({ relay: { host: relay.host, port: relay.port }, caFile: m.relayCaFile, user: relay.user, pass: relay.password, credentialName: refs.relay.path });
      return heartbeating('reconfigureMailHost', () =>
        withSsh(t, sshKey(), async (s) => {
          await adapter.writeRelay(s, relay);
          await adapter.setMailboxPassword(s, mailbox.email, mailbox.password);
          const applied = await adapter.apply(s);
          const now = await adapter.readRelay(s);
          if (now.host !== `[${relay.host}]:${relay.port}` || now.user !== relay.user || !now.passwordSet) throw failure(ErrorType.HostCommandFailed, `${adapter.envFile()} on ${t.address} does not hold the relay settings after writing them`);
          return { relay: { path: refs.relay.path, version: refs.relay.version, host: `[${relay.host}]:${relay.port}` }, mailboxes: [{ path: refs.mailbox.path, version: refs.mailbox.version, user: mailbox.email }], applied, adapter: adapter.kind, realHere: adapter.realHere };
        }),
      );
    },

    /** A real webmail login (form, session cookie, inbox page) and an IMAP login with the recovered mailbox credentials. */
    async verifyWebmailLogin(req: { host?: HostRef; source: SecretSource }): Promise<{ webmail: { url: string; status: number; inboxSeen: boolean }; imap: { login: boolean; mailbox: string } }> {
      const t = target('new', req.host);
      const { mailbox } = await withReader(req.source, readMailbox);
      const ep = mailEndpoints(t);
      const imap = await imapLogin({ imap: ep.imap, tls: m.mailHost.imapTls, caFile: m.mailHost.caFile, servername: m.mailHost.tlsServerName, user: mailbox.email, pass: mailbox.password });
      const web = await webmailLogin({ url: ep.webmail, kind: m.mailHost.webmailKind, user: mailbox.email, pass: mailbox.password });
      return { webmail: { url: ep.webmail, status: web.status, inboxSeen: web.inboxSeen }, imap: { login: true, mailbox: imap.mailbox } };
    },

    /**
     * The mailboxes (Maildir) from the old VPS to the new one over SSH. The hosts hold no key for
     * each other: the worker streams `tar` out of the old host into `tar` on the new one, keeping
     * files the new host already has (a retry, or the final sync after the cutover, adds only what is
     * new). Verified by counts and checksums: a SHA-256 of every message (cur/ and new/) on the old
     * host, taken before the copy, must each be found on the new host in the same mailbox (file names
     * may differ: Dovecot renames a message when its flags change).
     */
    async copyMailboxes(req: { host?: HostRef; oldHost?: HostRef; label: string }): Promise<MailCopy> {
      const t0 = Date.now();
      const from = target('old', req.oldHost);
      const to = target('new', req.host);
      const dir = adapter.mailDir();
      const key = sshKey();
      const manifest = (s: SshSession) =>
        s.run(`listing the messages in ${dir}`, `set -e; mkdir -p ${sq(dir)}; cd ${sq(dir)}; find . -type f \\( -path '*/cur/*' -o -path '*/new/*' \\) -print0 | xargs -0 -r sha256sum`).then(parseManifest);
      return withSsh(from, key, (src) =>
        withSsh(to, key, async (dst) => {
          const before = await manifest(src);
          const out = await src.stream(`cd ${sq(dir)} && tar -cf - .`);
          out.stdin.end(); // tar reads nothing: EOF now, or sshd keeps the channel open
          const into = await dst.stream(`set -e; mkdir -p ${sq(dir)}; tar -C ${sq(dir)} --skip-old-files -xpf -; chown -R ${sq(adapter.mailOwner)} ${sq(dir)}`);
          into.stdout.resume(); // nothing to read, but an unread channel never closes
          let bytes = 0;
          const tick = setInterval(() => Context.current().heartbeat({ copied: bytes }), 5_000);
          try {
            out.stdout.on('data', (d: Buffer) => (bytes += d.length));
            out.stdout.pipe(into.stdin);
            const [a, b] = await Promise.all([out.done, into.done]);
            if (a.code !== 0) throw failure(ErrorType.HostCommandFailed, `tar of ${dir} on ${from.address} failed (exit ${a.code}): ${a.stderr.trim().split('\n').slice(-2).join(' | ')}`);
            if (b.code !== 0) throw failure(ErrorType.HostCommandFailed, `unpacking the mailboxes into ${dir} on ${to.address} failed (exit ${b.code}): ${b.stderr.trim().split('\n').slice(-2).join(' | ')}`);
          } finally {
            clearInterval(tick);
          }
          const after = await manifest(dst);
          const missing: string[] = [];
          for (const [box, hashes] of before) {
            const have = [...(after.get(box) ?? [])];
            for (const h of hashes) {
              const i = have.indexOf(h);
              if (i < 0) missing.push(`${box} (${h.slice(0, 12)})`);
              else have.splice(i, 1);
            }
          }
          const count = (m: Map<string, string[]>) => [...m.values()].reduce((n, l) => n + l.length, 0);
          if (missing.length) throw failure(ErrorType.HostCommandFailed, `${missing.length} of ${count(before)} messages copied from ${from.address}:${dir} are not on ${to.address} byte for byte: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
          return { label: req.label, mailDir: dir, mailboxes: before.size, messages: count(before), verified: true as const, messagesOnNew: count(after), bytes, seconds: Math.round((Date.now() - t0) / 100) / 10 };
        }),
      );
    },

    /**
     * Derives the public key of the DKIM key from Vault and compares it with the published TXT
     * record (configurable resolver); only a match is installed (0600, owned by the signing service).
     */
    async installDkimKey(req: { host?: HostRef; source: SecretSource }): Promise<{ selector: string; domain: string; publicKeySha256: string; dnsMatches: boolean; path: string; mode: string; owner: string }> {
      const t = target('new', req.host);
      const { dkim, ref } = await withReader(req.source, readDkim);
      const name = `${dkim.selector}._domainkey.${dkim.domain}`;
      let txt: string[][];
      try {
        txt = await makeResolver(m.dnsResolver).resolveTxt(name);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (code === 'ENOTFOUND' || code === 'ENODATA') throw failure(ErrorType.DkimMismatch, `no DKIM TXT record at ${name} (resolver ${m.dnsResolver ?? 'system'}): publish "v=DKIM1; k=rsa; p=…" for the key in ${ref.path} first; no mail was sent`);
        throw failure(ErrorType.HostUnreachable, `DNS lookup of ${name} at ${m.dnsResolver ?? 'the system resolver'} failed: ${code || (err as Error).message}`);
      }
      const published = dkimRecordKey(txt);
      const fp = (b64: string) => `SHA256:${sha(Buffer.from(b64, 'base64')).slice(0, 16)}`;
      if (published !== dkim.publicKeyB64) {
        throw failure(ErrorType.DkimMismatch, `DKIM key in ${ref.path} (public key ${fp(dkim.publicKeyB64)}) does not match the TXT record ${name} (${published ? `public key ${fp(published)}` : 'no p= value'}); the key was not installed and no mail was sent`);
      }
      const installed = await withSsh(t, sshKey(), async (s) => {
        const r = await adapter.installDkimKey(s, dkim.domain, dkim.selector, dkim.pem);
        await adapter.apply(s);
        return r;
      });
      if (installed.mode !== '600') throw failure(ErrorType.HostCommandFailed, `${installed.path} has mode ${installed.mode}, expected 600`);
      return { selector: dkim.selector, domain: dkim.domain, publicKeySha256: fp(dkim.publicKeyB64), dnsMatches: true, ...installed };
    },

    /**
     * Sends a test mail through the new host (submission + SASL AUTH with the recovered mailbox
     * credentials), reads it back from the relay's inbox and judges DKIM, SPF and DMARC with mailauth.
     */
    async sendTestEmail(req: { host?: HostRef; source: SecretSource; migrationId: string; label: string }): Promise<{ selector: string; domain: string; dkim: string; spf: string; dmarc: string; messageId: string }> {
      const t = target('new', req.host);
      if (!m.relayInboxUrl) throw failure(ErrorType.ConfigInvalid, 'migration.relayInboxUrl is not set: the received test mail cannot be read back');
      const { mailbox, dkim } = await withReader(req.source, async (r) => ({ mailbox: (await readMailbox(r)).mailbox, dkim: (await readDkim(r)).dkim }));
      const ep = mailEndpoints(t);
      const attempt = Context.current().info.attempt;
      const marker = `vault-dr ${req.migrationId} ${req.label} #${attempt}`;
      await submit({
        submission: ep.submission,
        implicitTls: m.mailHost.submissionTls,
        caFile: m.mailHost.caFile,
        servername: m.mailHost.tlsServerName,
        user: mailbox.email,
        pass: mailbox.password,
        credentialName: mountPath(m.secrets.mailbox),
        message: { from: mailbox.email, to: m.testRecipient, subject: marker, text: `Test mail of migration ${req.migrationId} (${req.label}).\n` },
      });
      const raw = await awaitRelayedMessage({ inboxUrl: m.relayInboxUrl, marker, timeoutMs: 60_000, onWait: () => Context.current().heartbeat({ waiting: marker }) });
      const resolver = makeResolver(m.dnsResolver).forMailauth;
      const verdict = await judgeMessage({ raw, ip: m.mailFromIp ?? t.address, helo: dkim.domain, sender: mailbox.email, domain: dkim.domain, selector: dkim.selector, resolver });
      const messageId = /^message-id:\s*(.+)$/im.exec(raw)?.[1]?.trim() ?? '';
      const result = { selector: dkim.selector, domain: dkim.domain, dkim: verdict.dkim, spf: verdict.spf, dmarc: verdict.dmarc, messageId };
      if (!verdict.dkimPass || !verdict.spfPass || !verdict.dmarcPass) {
        throw failure(ErrorType.MailAuthFailed, `test mail ${messageId} via ${t.address}: DKIM ${verdict.dkim} (d=${dkim.domain} s=${dkim.selector}), SPF ${verdict.spf}, DMARC ${verdict.dmarc}`);
      }
      return result;
    },
  };
  // Every step heartbeats, so a worker killed mid-step is noticed in one heartbeat timeout.
  return withHeartbeats(group, Object.keys(group) as (keyof typeof group)[]);
};

export type MigrationActivities = ReturnType<typeof migrationActivities>;

// Re-exported for tests that talk to the hosts the same way.
export { SshSession, sq };
