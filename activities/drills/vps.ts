// Activities of the vps-compromise drill (workflows/drills/vpsCompromise.ts, docs/runbooks/dr-drills.md)
// that no other workflow has, one factory per role that holds what they need:
// - migration role (its SSH key is on both VPS hosts): quarantineOldHost puts the host declared
//   compromised into quarantine (every authorized key refused; vault-dr's own key may run only the
//   lift), liftQuarantine is the drill's revert;
// - restore role (rotator token, rotation.host's SSH key): checkVpsCredentials (the credentials the
//   host held are in Vault and the old host trusts the SSH key), verifyVpsRecovered (after the
//   rotation: a test mail with the ROTATED mailbox password passes DKIM/SPF/DMARC, IMAP login with
//   it, the old password and the old SSH key refused, the new key logs in);
// - notify role: awaitDrillNotice, the declaration notice in the on-call mailbox (a compromise is
//   declared by a person, no probe detects it: what the drill times is the notice reaching people).
// No value leaves an activity: results carry paths, versions, fingerprints and verdicts only.
import { Context } from '@temporalio/activity';
import * as fs from 'node:fs';
import nodemailer from 'nodemailer';
import { ErrorType, failure } from '../../common/errors';
import type { AlertObservation } from '../../common/drillRun';
import type { Config } from '../../infra/config';
import { readSecretFile } from '../../infra/config';
import { fingerprintOfKeyLine, keyAccepted, publicKeyLine, withSsh, type SshTarget } from '../../infra/ssh/client';
import { openVaultReader } from '../../infra/vault/migrationVault';
import { stagingApi } from '../../infra/vault/stagingVault';
import { hostCredentials } from '../emergency/hostCredentials';
import { withHeartbeats } from '../heartbeat';
import { awaitRelayedMessage, hostPort, imapLogin, judgeMessage, makeResolver, submit } from '../migration/mailChecks';

/** One check of the drill, as the report lists it. */
export interface DrillCheck {
  what: string;
  ok: boolean;
  detail: string;
}

/** The command vault-dr sends to lift the quarantine; the forced command on the quarantined host runs the lift for it only. */
const LIFT_MARKER = 'vaultdr-lift-quarantine';
const LIFT = `: ${LIFT_MARKER}; f="$HOME/.ssh/authorized_keys"; if [ -e "$f.vaultdr-quarantine" ]; then mv -f "$f.vaultdr-quarantine" "$f"; echo lifted; else echo "not quarantined"; fi; rm -f "$HOME/.ssh/vaultdr-quarantine.sh"`;

/** migration role: the old host (migration.hosts.old) quarantined and released over SSH with the migration key. */
export const vpsDrillHostActivities = (deps: { cfg: Config }) => {
  const m = deps.cfg.migration;
  const oldHost = (): SshTarget => {
    const d = m.hosts.old;
    if (!d?.address || !d.hostKeySha256) throw failure(ErrorType.ConfigInvalid, 'migration.hosts.old (address and hostKeySha256) is not configured: the drill has no old host to quarantine');
    return { address: d.address, port: d.port, user: d.user, hostKeySha256: d.hostKeySha256 };
  };
  const key = () => {
    if (!m.sshKeyFile) throw failure(ErrorType.KeyMaterialMissing, 'migration.sshKeyFile is not set on this worker (role migration)');
    return readSecretFile(m.sshKeyFile, 'migration.sshKeyFile');
  };
  const group = {
    /**
     * Containment of the host declared compromised: its authorized_keys is kept aside (once, so a
     * retry keeps the original) and replaced by vault-dr's own key restricted to a forced command
     * that only lifts the quarantine. Proven by every formerly authorized key being refused and
     * vault-dr's own key no longer getting a shell.
     */
    async quarantineOldHost(req: { drillId: string }): Promise<{ host: string; refused: string[]; ownShellRefused: boolean }> {
      const t = oldHost();
      const own = publicKeyLine(key(), 'vault-dr-quarantine').split(/\s+/).slice(0, 2).join(' ');
      const script = [
        '#!/bin/sh',
        `# written by vault-dr drill ${req.drillId.replace(/[^\w.-]/g, '_')}: this host is quarantined; vault-dr's key may only lift it`,
        'case "$SSH_ORIGINAL_COMMAND" in',
        `  ": ${LIFT_MARKER};"*) f="$HOME/.ssh/authorized_keys"; mv -f "$f.vaultdr-quarantine" "$f" && rm -f "$0" && echo lifted ;;`,
        '  *) echo "quarantined by a vault-dr drill: only the lift is allowed" >&2; exit 1 ;;',
        'esac',
        '',
      ].join('\n');
      const kept = await withSsh(t, key(), async (s) => {
        const before = await s.run('keeping authorized_keys aside', 'set -e; f="$HOME/.ssh/authorized_keys"; if [ ! -e "$f.vaultdr-quarantine" ]; then cp -a "$f" "$f.vaultdr-quarantine"; fi; cat "$f.vaultdr-quarantine"');
        await s.run('writing the lift script', 'set -e; umask 077; cat > "$HOME/.ssh/vaultdr-quarantine.sh"; chmod 700 "$HOME/.ssh/vaultdr-quarantine.sh"', script);
        // Last: after this line is in place, this key only runs the script above.
        await s.run('quarantining authorized_keys', 'set -e; f="$HOME/.ssh/authorized_keys"; umask 077; cat > "$f.vaultdr-tmp"; mv -f "$f.vaultdr-tmp" "$f"', `restrict,command="/bin/sh $HOME/.ssh/vaultdr-quarantine.sh" ${own} vault-dr-quarantine\n`);
        return before;
      });
      const ownFp = fingerprintOfKeyLine(own);
      const refused: string[] = [];
      for (const line of kept.split('\n')) {
        const fp = fingerprintOfKeyLine(line);
        if (!fp || fp === ownFp) continue;
        if (await keyAccepted(t, line)) throw failure(ErrorType.HostCommandFailed, `key ${fp} is still accepted by ${t.address} after the quarantine (another authorized_keys source?)`);
        refused.push(fp);
      }
      const shell = await withSsh(t, key(), (s) => s.exec('true'));
      if (shell.code === 0) throw failure(ErrorType.HostCommandFailed, `vault-dr's own key still runs commands on ${t.address} after the quarantine`);
      return { host: `${t.user}@${t.address}:${t.port}`, refused, ownShellRefused: true };
    },

    /** The revert: authorized_keys as it was before the quarantine (a host never quarantined is left as it is). */
    async liftQuarantine(req: { drillId: string }): Promise<{ host: string; detail: string }> {
      const t = oldHost();
      const out = await withSsh(t, key(), (s) => s.run(`lifting the quarantine of drill ${req.drillId}`, LIFT));
      // A fresh login with a shell proves it.
      await withSsh(t, key(), (s) => s.run('a shell after the lift', 'true'));
      return { host: `${t.user}@${t.address}:${t.port}`, detail: out.trim() || 'lifted' };
    },

    /**
     * After the rotations: would the NEXT migration put the compromised credentials back? It reads
     * the migration's own secrets (migration AppRole): the operator list must no longer hold a revoked
     * SSH key (public fingerprints only cross roles), and the mailbox secret must hold the password
     * the new host takes now (SMTP AUTH on its submission port).
     */
    async checkMigrationSecretsCurrent(req: { revokedKeyFingerprints: string[] }): Promise<{ checks: DrillCheck[] }> {
      const r = await openVaultReader({ address: m.vaultAddress ?? deps.cfg.vault.address, roleIdFile: m.roleIdFile, secretIdFile: m.secretIdFile, kvMount: m.kvMount });
      try {
        const checks: DrillCheck[] = [];
        const ops = await r.read(m.secrets.operatorKeys);
        const still = Object.entries(ops.data).filter(([, v]) => typeof v === 'string' && req.revokedKeyFingerprints.includes(fingerprintOfKeyLine(v) ?? ''));
        checks.push({
          what: 'the operator list the next migration deploys no longer holds the revoked SSH key',
          ok: still.length === 0,
          detail: still.length ? `${m.kvMount}/${m.secrets.operatorKeys} version ${ops.version} still lists ${still.map(([name, v]) => `${name} (${fingerprintOfKeyLine(String(v))})`).join(', ')}: a new migration deploys it again` : `${m.kvMount}/${m.secrets.operatorKeys} version ${ops.version} holds none of ${req.revokedKeyFingerprints.join(', ') || 'no key'}`,
        });
        const mb = await r.read(m.secrets.mailbox);
        const email = String(mb.data.email ?? '');
        const submission = m.mailHost.submission ?? `${m.hosts.new?.address}:${m.mailHost.submissionTls ? 465 : 587}`;
        const ep = hostPort(submission);
        const t = nodemailer.createTransport({ host: ep.host, port: ep.port, secure: m.mailHost.submissionTls, requireTLS: !m.mailHost.submissionTls, auth: { user: email, pass: String(mb.data.password ?? '') }, tls: { ...(m.mailHost.caFile ? { ca: fs.readFileSync(m.mailHost.caFile) } : {}), ...(m.mailHost.tlsServerName ? { servername: m.mailHost.tlsServerName } : {}) }, connectionTimeout: 10_000, logger: false });
        let auth: 'ok' | 'refused';
        try {
          await t.verify();
          auth = 'ok';
        } catch (err) {
          const e = err as Error & { code?: string; responseCode?: number };
          if (e.code !== 'EAUTH' && e.responseCode !== 535) throw failure(ErrorType.HostUnreachable, `SMTP AUTH probe at ${submission}: ${e.code ?? ''} ${e.message.slice(0, 200)}`, false);
          auth = 'refused';
        } finally {
          t.close();
        }
        checks.push({
          what: "the migration's mailbox secret holds the password the mailbox has now",
          ok: auth === 'ok',
          detail: auth === 'ok' ? `${m.kvMount}/${m.secrets.mailbox} version ${mb.version}: SMTP AUTH as ${email} on ${submission} works` : `${m.kvMount}/${m.secrets.mailbox} version ${mb.version} is refused by ${submission}: it still holds the rotated-away password, which a new migration would set again`,
        });
        return { checks };
      } finally {
        await r.close();
      }
    },
  };
  return withHeartbeats(group, Object.keys(group) as (keyof typeof group)[]);
};

/** restore role: the credentials the compromised host held, in Vault (rotator token) and on the hosts. */
export const vpsDrillCredentialActivities = (deps: { cfg: Config }) => {
  const { cfg } = deps;
  const m = cfg.migration;
  const kv = async (p: string, version?: number): Promise<{ value?: Record<string, string>; version: number }> => {
    if (!cfg.rotation.tokenFile) throw failure(ErrorType.KeyMaterialMissing, 'rotation.tokenFile is not set on this worker (role restore)');
    const path = `${cfg.rotation.kvMount}/data/${cfg.rotation.kvPrefix}/${p}${version ? `?version=${version}` : ''}`;
    const r = await stagingApi(cfg.vault.address, 'GET', path, readSecretFile(cfg.rotation.tokenFile, 'rotation.tokenFile')).catch((err: Error) => {
      throw failure(ErrorType.VaultUnreachable, `GET ${cfg.vault.address}/v1/${path.split('?')[0]}: ${err.message}`, false);
    });
    if (r.status === 404) return { version: 0 };
    if (r.status >= 400) throw failure(r.status === 403 ? ErrorType.VaultAuthFailed : ErrorType.VaultRequestRejected, `read ${path.split('?')[0]}: HTTP ${r.status}`);
    return { value: (r.json.data?.data as Record<string, string> | null) ?? undefined, version: Number(r.json.data?.metadata?.version ?? 0) };
  };
  const scopes = () => {
    const mailbox = cfg.rotation.defaultScopes['mailbox-password'];
    const sshUser = cfg.rotation.defaultScopes['ssh-key'];
    if (!mailbox || !sshUser) throw failure('DrillSteadyStateNotHolding', `rotation.defaultScopes must name the mailbox ("mailbox-password") and the SSH user ("ssh-key") the mail VPS holds (got ${mailbox ?? 'none'}, ${sshUser ?? 'none'})`);
    return { mailbox, sshUser };
  };
  const slug = (s: string) => s.replace(/[^\w.@+-]/g, '_');
  const kvPaths = (s: { mailbox: string; sshUser: string }) => ({ mailbox: `mailbox-password/${slug(s.mailbox)}`, ssh: `ssh-key/${slug(s.sshUser)}` });
  const oldTarget = (user: string): SshTarget => {
    const d = m.hosts.old;
    if (!d?.address || !d.hostKeySha256) throw failure('DrillSteadyStateNotHolding', 'migration.hosts.old (address and hostKeySha256) is not configured');
    return { address: d.address, port: d.port, user, hostKeySha256: d.hostKeySha256 };
  };

  const group = {
    /**
     * Steady state, credential side: rotation.host is the new host (the rotation acts there), the
     * mailbox password and the SSH key the mail VPS holds are in Vault, and the old host trusts that
     * key. Refuses (DrillSteadyStateNotHolding) otherwise. Returns the scopes the rotations use.
     */
    async checkVpsCredentials(): Promise<{ mailbox: string; sshUser: string; paths: string[]; sshKeyFingerprint: string }> {
      if (cfg.rotation.host !== 'new') throw failure('DrillSteadyStateNotHolding', `rotation.host is ${cfg.rotation.host ?? 'not set'}: the drill rotates the credentials on the new host, so it must be "new" (otherwise a person applies them and the drill cannot run automated)`);
      const s = scopes();
      const p = kvPaths(s);
      const mb = await kv(p.mailbox);
      const sk = await kv(p.ssh);
      const where = (x: string) => `${cfg.rotation.kvMount}/${cfg.rotation.kvPrefix}/${x}`;
      if (!mb.value?.password) throw failure('DrillSteadyStateNotHolding', `the mailbox password of ${s.mailbox} is not readable at ${where(p.mailbox)}`);
      if (!sk.value?.public_key || !fingerprintOfKeyLine(sk.value.public_key)) throw failure('DrillSteadyStateNotHolding', `no SSH public key for ${s.sshUser} at ${where(p.ssh)}`);
      if (!(await keyAccepted(oldTarget(s.sshUser), sk.value.public_key))) throw failure('DrillSteadyStateNotHolding', `the old host does not accept ${s.sshUser}'s key ${fingerprintOfKeyLine(sk.value.public_key)} from ${where(p.ssh)}: it is not the key the mail VPS holds`);
      return { ...s, paths: [where(p.mailbox), where(p.ssh)], sshKeyFingerprint: fingerprintOfKeyLine(sk.value.public_key)! };
    },

    /**
     * After the rotations, on the new host: a test mail submitted with the rotated mailbox password
     * arrives at the relay with DKIM, SPF and DMARC pass (mailauth); IMAP login with it; the
     * password before the rotation refused; an SSH login with the rotated key; the key before it refused.
     */
    async verifyVpsRecovered(req: { drillId: string; mailbox: string; sshUser: string }): Promise<{ checks: DrillCheck[]; revokedKeyFingerprints: string[] }> {
      const host = hostCredentials(cfg);
      if (!host) throw failure(ErrorType.ConfigInvalid, 'rotation.host is not set: nothing to verify the rotated credentials on');
      const p = kvPaths(req);
      const checks: DrillCheck[] = [];
      const check = async (what: string, fn: () => Promise<{ ok: boolean; detail: string }>) => {
        Context.current().heartbeat(what);
        try {
          checks.push({ what, ...(await fn()) });
        } catch (err) {
          checks.push({ what, ok: false, detail: `${(err as { type?: string }).type ?? 'Error'}: ${(err as Error).message.slice(0, 300)}` });
        }
      };
      const mb = await kv(p.mailbox);
      const mbOld = mb.version > 1 ? await kv(p.mailbox, mb.version - 1) : { value: undefined, version: 0 };
      const sk = await kv(p.ssh);
      const skOld = sk.version > 1 ? await kv(p.ssh, sk.version - 1) : { value: undefined, version: 0 };
      const user = mb.value?.username ?? req.mailbox;
      const pass = mb.value?.password ?? '';
      const tls = { caFile: m.mailHost.caFile, servername: m.mailHost.tlsServerName };

      await check('a test mail with the rotated mailbox password passes DKIM, SPF and DMARC', async () => {
        if (!m.relayInboxUrl) return { ok: false, detail: 'migration.relayInboxUrl is not set: the test mail cannot be read back' };
        const marker = `vault-dr drill ${req.drillId} verify #${Context.current().info.attempt}`;
        await submit({ submission: hostPort(host.submission), implicitTls: m.mailHost.submissionTls, ...tls, user, pass, credentialName: `${cfg.rotation.kvPrefix}/${p.mailbox}`, message: { from: user, to: m.testRecipient, subject: marker, text: `Test mail of drill ${req.drillId} after the rotation.\n` } });
        const raw = await awaitRelayedMessage({ inboxUrl: m.relayInboxUrl, marker, timeoutMs: 60_000, onWait: () => Context.current().heartbeat(marker) });
        // Expected signer: the mailbox's own domain, with the selector the message names (the key itself comes from DNS).
        const domain = user.split('@')[1] ?? '';
        const selector = /^dkim-signature:[\s\S]*?\bs=([^;\s]+)/im.exec(raw)?.[1] ?? 'dkim';
        const v = await judgeMessage({ raw, ip: m.mailFromIp ?? m.hosts.new?.address ?? '', helo: domain, sender: user, domain, selector, resolver: makeResolver(m.dnsResolver).forMailauth });
        return { ok: v.dkimPass && v.spfPass && v.dmarcPass, detail: `DKIM ${v.dkim} (d=${domain} s=${selector}), SPF ${v.spf}, DMARC ${v.dmarc}` };
      });
      await check('IMAP login with the rotated mailbox password', async () => {
        const r = await imapLogin({ imap: hostPort(m.mailHost.imap ?? `${m.hosts.new?.address}:${m.mailHost.imapTls ? 993 : 143}`), tls: m.mailHost.imapTls, ...tls, user, pass });
        return { ok: true, detail: `logged in as ${user}, ${r.mailbox} holds ${r.exists} message(s)` };
      });
      await check('the mailbox password from before the rotation is refused', async () => {
        if (!mbOld.value?.password) return { ok: false, detail: `no earlier version at ${p.mailbox}: nothing to try` };
        const r = await host.smtpAuth(mbOld.value.username ?? user, mbOld.value.password);
        return { ok: r === 'refused', detail: `SMTP AUTH with version ${mbOld.version} on ${host.submission}: ${r === 'refused' ? 'refused' : 'STILL ACCEPTED'}` };
      });
      await check(`SSH login as ${req.sshUser} with the rotated key`, async () => {
        if (!sk.value?.private_key) return { ok: false, detail: `no key at ${p.ssh}` };
        const r = await host.sshLogin(req.sshUser, sk.value.private_key);
        return { ok: r === 'ok', detail: `${fingerprintOfKeyLine(sk.value.public_key ?? '')} on ${host.label}: ${r}` };
      });
      await check(`the SSH key from before the rotation is refused for ${req.sshUser}`, async () => {
        if (!skOld.value?.public_key) return { ok: false, detail: `no earlier version at ${p.ssh}: nothing to try` };
        const accepted = await host.sshKeyAccepted(req.sshUser, skOld.value.public_key);
        return { ok: !accepted, detail: `${fingerprintOfKeyLine(skOld.value.public_key)} on ${host.label}: ${accepted ? 'STILL ACCEPTED' : 'refused'}` };
      });
      return { checks, revokedKeyFingerprints: skOld.value?.public_key ? [fingerprintOfKeyLine(skOld.value.public_key)!] : [] };
    },
  };
  return withHeartbeats(group, Object.keys(group) as (keyof typeof group)[]);
};

/** notify role: the declaration notice read back from the on-call mailbox (alerts.inbox.mailpitUrl: test and local stacks). */
export const vpsDrillNoticeActivities = (deps: { inbox: Config['alerts']['inbox'] }) => ({
  async awaitDrillNotice(req: { marker: string; sinceIso: string; untilIso: string }): Promise<AlertObservation> {
    const base = deps.inbox.mailpitUrl?.replace(/\/$/, '');
    const name = 'declaration notice (e-mail)';
    if (!base) return { observed: false, alertname: name, receivers: [], source: 'alerts.inbox.mailpitUrl is not configured: the drill cannot read the on-call mailbox (a person confirms the notice instead)', others: [] };
    const source = `${base}/api/v1/messages`;
    const until = Date.parse(req.untilIso);
    let last = '';
    for (;;) {
      Context.current().heartbeat({ waitingFor: req.marker });
      try {
        const res = await fetch(`${source}?limit=200`, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const hit = ((await res.json()) as { messages: { ID: string; Subject: string; Created: string; To: { Address: string }[] }[] }).messages
          .filter((x) => x.Subject.includes(req.marker) && Date.parse(x.Created) >= Date.parse(req.sinceIso) - 5000)
          .sort((a, b) => Date.parse(a.Created) - Date.parse(b.Created))[0];
        if (hit) return { observed: true, alertname: name, startsAt: new Date(Date.parse(hit.Created)).toISOString(), seenAt: new Date().toISOString(), receivers: ['email'], labels: { subject: hit.Subject.slice(0, 200), to: hit.To.map((t) => t.Address).join(', '), message: hit.ID }, source, others: [] };
        last = 'not there yet';
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() >= until) return { observed: false, alertname: name, receivers: [], source: `${source} (last: ${last})`, others: [] };
      await new Promise((r) => setTimeout(r, 1000));
    }
  },
});

export type VpsDrillHostActivities = ReturnType<typeof vpsDrillHostActivities>;
export type VpsDrillCredentialActivities = ReturnType<typeof vpsDrillCredentialActivities>;
export type VpsDrillNoticeActivities = ReturnType<typeof vpsDrillNoticeActivities>;
