// Emergency rotation activities (restore role: the rotator token, the PostgreSQL superuser URL and
// the validation key live on its host). One rotation = plan → issue → (a person applies/confirms)
// → verify new → revoke old → verify old refused, per credential class (common/rotation.ts).
// Idempotency (a worker SIGKILLed mid-rotation resumes without rotating twice): every new value is
// written to Vault KV FIRST, tagged with the rotation id (workflow id / class / scope); a retried
// or resumed step finds its own value there and re-applies that same value (check-before-act on
// the target: secret-id lookup, a login test) instead of making another. The previous KV version
// is the old credential: read only inside these activities to prove it is refused, never returned.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { Context } from '@temporalio/activity';
import { Agent } from 'undici';
import { ErrorType, failure as fail } from '../../common/errors';
import { CREDENTIAL_CLASSES, type CredentialClass } from '../../common/rotation';
import type { Config } from '../../infra/config';
import { readSecretFile } from '../../infra/config';
import { keyIdOfPrivate, generateKeyPair, loadPrivateKeyFile, unwrapDataKey, type WrappedKey } from '../../infra/crypto/keys';
import { stagingApi } from '../../infra/vault/stagingVault';
import { parsePgUrl, roleExists, setPassword, terminateSessions, tryLogin, type PgTarget } from '../../infra/postgres/roles';
import { awaitRelayedMessage, hostPort } from '../migration/mailChecks';
import { withHeartbeats } from '../heartbeat';
import { fingerprintOfKeyLine, newSshKeyPair } from '../../infra/ssh/client';
import { hostCredentials, relayLogin, type HostCredentials } from './hostCredentials';

export interface RotationPlan {
  credentialClass: CredentialClass;
  scope: string;
  /** Idempotency key: the workflow id, class and scope. */
  rotationId: string;
  /** KV v2 path (mount/data/...) holding the credential's current value; none for token-lease. */
  kvPath?: string;
  /** automatic: vault-dr applies the new value; person: someone applies/rotates it and confirms (confirmRotated). */
  mode: 'automatic' | 'person';
  /** What the person does (mode person), in the operator's words. */
  personTask?: string;
  /** The host-side reconfiguration hook for this class, and whether this deployment has it wired (rotation.host). */
  hook?: { name: string; wired: boolean; instead?: string };
  /**
   * smtp-relay with rotation.host: the relay provider issues the credential, a responder stores it in
   * Vault (under intakeFolder) and names the path (relayPasswordStored); vault-dr writes it to the
   * mail host. oldVersion: the KV version of the credential in force when the rotation began.
   */
  relay?: { oldVersion: number; intakeFolder: string };
}

export interface StepOutcome {
  ok: boolean;
  detail: string;
}

/** Values of a class's KV secret: what the new credential is made of. Never leaves the activity. */
type Value = Record<string, string>;

const slug = (scope: string) => scope.replace(/[^\w.@+-]/g, '_');
const randomSecret = () => crypto.randomBytes(24).toString('base64url');

/** The activities that heartbeat (the workflow calls them with a heartbeat timeout). */
export const ROTATION_HEARTBEATS = ['planRotation', 'issueNewCredential', 'applyRelayCredential', 'verifyNewCredential', 'discardNewCredential', 'revokeOldCredentials', 'verifyOldRefused', 'issueRecipientKey', 'unwrapRecipientProbe'] as const;

export const rotationActivities = (deps: { cfg: Config }) => {
  const { cfg } = deps;
  const address = cfg.vault.address;
  let agent: Agent | undefined;
  const dispatcher = () => (cfg.vault.caFile ? (agent ??= new Agent({ connect: { ca: fs.readFileSync(cfg.vault.caFile) } })) : undefined);
  const token = () => {
    if (!cfg.rotation.tokenFile) throw fail(ErrorType.KeyMaterialMissing, 'rotation.tokenFile is not set on this worker: it has no token to rotate credentials with (deploy/openbao/policies/vaultdr-rotator.hcl)');
    return readSecretFile(cfg.rotation.tokenFile, 'rotation.tokenFile');
  };
  /** One call to OpenBao; unreachable or 5xx is retryable, anything else is returned to the caller. */
  const vault = async (method: string, p: string, body?: unknown, as: string | undefined = token()) => {
    const r = await stagingApi(address, method, p, as, body, dispatcher()).catch((err: Error) => {
      throw fail(ErrorType.VaultUnreachable, `${method} ${address}/v1/${p.split('?')[0]}: ${err.message}`, false);
    });
    if (r.status === 503) throw fail(ErrorType.VaultSealed, `${address} is sealed or unavailable (HTTP 503): rotation needs an unsealed cluster`);
    if (r.status >= 500) throw fail(ErrorType.VaultUnreachable, `${method} ${p.split('?')[0]}: HTTP ${r.status}`, false);
    return r;
  };
  const must = async (method: string, p: string, body?: unknown) => {
    const r = await vault(method, p, body);
    if (r.status >= 400) {
      if (r.status === 403) throw fail(ErrorType.VaultAuthFailed, `${method} ${p.split('?')[0]}: permission denied for the rotator token (apply deploy/openbao/policies/vaultdr-rotator.hcl)`);
      throw fail(ErrorType.VaultRequestRejected, `${method} ${p.split('?')[0]}: HTTP ${r.status} ${(r.json.errors ?? []).join('; ').slice(0, 300)}`);
    }
    return r;
  };

  // ---- KV: the delivered value and its versions ----
  const readKv = async (kvPath: string, version?: number): Promise<{ value?: Value; version: number }> => {
    const r = await vault('GET', `${kvPath}${version ? `?version=${version}` : ''}`);
    if (r.status === 404) return { version: 0 };
    if (r.status >= 400) throw fail(ErrorType.VaultRequestRejected, `read ${kvPath}: HTTP ${r.status}`);
    const data = r.json.data?.data as Value | null | undefined;
    return { value: data ?? undefined, version: Number(r.json.data?.metadata?.version ?? 0) };
  };
  const writeKv = async (kvPath: string, value: Value) => Number((await must('POST', kvPath, { data: value })).json.data?.version ?? 0);
  /** The value this rotation wrote (reused on retry), or a new one written now. KV first, then the target. */
  const ownOrNewValue = async (plan: RotationPlan, make: () => Promise<Value> | Value): Promise<{ value: Value; version: number; reused: boolean }> => {
    const cur = await readKv(plan.kvPath!);
    if (cur.value?.rotation_id === plan.rotationId) return { value: cur.value, version: cur.version, reused: true };
    const value = { ...(await make()), rotation_id: plan.rotationId };
    return { value, version: await writeKv(plan.kvPath!, value), reused: false };
  };
  /** The current (this rotation's) value and the one before it. */
  const newAndOld = async (plan: RotationPlan): Promise<{ nu?: Value; old?: Value; version: number }> => {
    const cur = await readKv(plan.kvPath!);
    if (cur.value?.rotation_id !== plan.rotationId) return { version: cur.version };
    // smtp-relay: the responder's own write may sit between the old credential and this rotation's copy.
    const prevVersion = plan.relay ? plan.relay.oldVersion : cur.version - 1;
    const prev = prevVersion >= 1 ? await readKv(plan.kvPath!, prevVersion) : { value: undefined };
    return { nu: cur.value, old: prev.value?.rotation_id === plan.rotationId ? undefined : prev.value, version: cur.version };
  };

  // ---- AppRole ----
  const approleLogin = async (roleId: string, secretId: string): Promise<'ok' | 'refused'> => {
    const r = await vault('POST', `auth/${cfg.vault.approleMount}/login`, { role_id: roleId, secret_id: secretId }, '');
    if (r.status === 200) {
      await vault('POST', 'auth/token/revoke-self', undefined, r.json.auth.client_token as string).catch(() => undefined);
      return 'ok';
    }
    if (r.status === 400 || r.status === 403) return 'refused';
    throw fail(ErrorType.VaultRequestRejected, `AppRole login probe: HTTP ${r.status}`);
  };
  const roleBase = (role: string) => `auth/${cfg.vault.approleMount}/role/${role}`;
  const accessorOf = async (role: string, secretId: string): Promise<string | undefined> => {
    const r = await vault('POST', `${roleBase(role)}/secret-id/lookup`, { secret_id: secretId });
    return r.status === 200 && r.json.data ? (r.json.data.secret_id_accessor as string) : undefined;
  };
  const accessorsOf = async (role: string): Promise<string[]> => {
    const r = await vault('LIST', `${roleBase(role)}/secret-id`);
    if (r.status === 404) return [];
    if (r.status >= 400) throw fail(ErrorType.VaultRequestRejected, `list secret-id accessors of ${role}: HTTP ${r.status}`);
    return (r.json.data?.keys ?? []) as string[];
  };

  // ---- PostgreSQL ----
  const pgTarget = (): PgTarget => {
    const file = cfg.rotation.postgresSuperuserUrlFile;
    if (!file) throw fail(ErrorType.KeyMaterialMissing, 'rotation.postgresSuperuserUrlFile is not set: this worker cannot rotate PostgreSQL role passwords');
    try {
      return parsePgUrl(readSecretFile(file, 'rotation.postgresSuperuserUrlFile'));
    } catch (err) {
      if ((err as { type?: string }).type) throw err;
      throw fail(ErrorType.ConfigInvalid, `rotation.postgresSuperuserUrlFile ${file}: ${(err as Error).message}`);
    }
  };
  const pg = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if ((err as { type?: string }).type) throw err;
      throw fail(ErrorType.VaultUnreachable, `PostgreSQL ${what}: ${(err as Error).message.slice(0, 300)}`, false);
    }
  };

  /**
   * Each member of an HA cluster (rotation.postgresNodes), reached directly with the superuser URL's
   * credentials: replicas serve logins from their replayed copy of pg_authid, so a rotation is only
   * in force once every member has it.
   */
  const pgNodes = (): PgTarget[] => {
    const t = pgTarget();
    return cfg.rotation.postgresNodes.map((n) => ({ ...t, ...hostPort(n) }));
  };
  /** A login at one member: ok/refused, or unreachable (a member down; it replays the change when it returns). */
  const nodeLogin = async (t: PgTarget, role: string, password: string): Promise<'ok' | 'refused' | 'unreachable'> => tryLogin(t, role, password).catch(() => 'unreachable' as const);
  /** Logs in at every member until each gives `want` (replication lag) or waitMs passes; one line per member. */
  const checkNodes = async (role: string, password: string, want: 'ok' | 'refused', waitMs: number): Promise<{ ok: boolean; lines: string[] }> => {
    const lines: string[] = [];
    let ok = true;
    for (const n of pgNodes()) {
      const deadline = Date.now() + waitMs;
      let r = await nodeLogin(n, role, password);
      while (r !== want && r !== 'unreachable' && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 250));
        r = await nodeLogin(n, role, password);
      }
      if (r === 'unreachable') lines.push(`${n.host}:${n.port} unreachable (not checked; it replays the change when it returns)`);
      else {
        lines.push(`${n.host}:${n.port} ${r === 'ok' ? 'accepts' : 'refuses'}`);
        if (r !== want) ok = false;
      }
    }
    return { ok, lines };
  };

  // ---- the SMTP relay (smtp-relay with rotation.host) ----
  /** Where the relay is: the stored credential's host/port, the old one's, or the host's RELAYHOST ([host]:port). */
  const relayEndpoint = async (host: HostCredentials, ...values: (Value | undefined)[]): Promise<{ host: string; port: number }> => {
    for (const v of values) if (v?.host && v.port && /^\d{1,5}$/.test(v.port)) return { host: v.host, port: Number(v.port) };
    const m = /^\[?([^\]]+)\]?(?::(\d+))?$/.exec((await host.readRelay()).host ?? '');
    if (!m) throw fail('RotationNotPossible', `the relay is not known: no host/port in the stored credential and no RELAYHOST on ${host.label}`);
    return { host: m[1]!, port: Number(m[2] ?? 25) };
  };
  const relayLoginAs = async (ep: { host: string; port: number }, v: Value, fallbackUser: string) => relayLogin({ ...ep, user: v.username ?? fallbackUser, password: v.password!, caFile: cfg.migration.relayCaFile });

  // ---- SMTP AUTH probe (relay and mailbox passwords) ----
  const smtpLogin = async (user: string, pass: string): Promise<'ok' | 'refused' | 'no probe'> => {
    if (!cfg.rotation.smtpAuthHost) return 'no probe';
    const nodemailer = await import('nodemailer');
    const t = nodemailer.createTransport({ host: cfg.rotation.smtpAuthHost, port: cfg.rotation.smtpAuthPort, secure: cfg.rotation.smtpAuthSecure, auth: { user, pass }, connectionTimeout: 10_000 });
    try {
      await t.verify();
      return 'ok';
    } catch (err) {
      if ((err as { responseCode?: number }).responseCode === 535) return 'refused';
      throw fail(ErrorType.VaultUnreachable, `SMTP AUTH probe at ${cfg.rotation.smtpAuthHost}: ${(err as Error).message.slice(0, 200)}`, false);
    } finally {
      t.close();
    }
  };

  /** The host hook when the plan says it is wired (planned with rotation.host set), else undefined. */
  const wiredHost = (plan: RotationPlan): HostCredentials | undefined => (plan.hook?.wired ? hostCredentials(cfg) : undefined);

  const workflowIdNow = () => {
    try {
      return Context.current().info.workflowExecution?.workflowId ?? 'cli';
    } catch {
      return 'cli';
    }
  };

  return withHeartbeats(
    {
      /** Resolves the class and scope (defaults from rotation.* config) and checks the rotation can run at all. */
      async planRotation(req: { credentialClass?: string; scope?: string }): Promise<RotationPlan> {
        const credentialClass = (req.credentialClass ?? cfg.rotation.defaultClass) as CredentialClass;
        if (!CREDENTIAL_CLASSES.includes(credentialClass)) throw fail(ErrorType.InvalidInput, `credentialClass: expected one of ${CREDENTIAL_CLASSES.join(', ')}`);
        const scope = req.scope ?? cfg.rotation.defaultScopes[credentialClass] ?? (credentialClass === 'backup-recipient' ? (await this_validationKeyId()) : undefined);
        if (!scope) throw fail('RotationNotPossible', `field "scope": ${credentialClass} needs a scope and rotation.defaultScopes["${credentialClass}"] is not set`);
        const rotationId = `${workflowIdNow()}/${credentialClass}/${scope}`.slice(0, 400);
        const kvPath = `${cfg.rotation.kvMount}/data/${cfg.rotation.kvPrefix}/${credentialClass}/${slug(scope)}`;
        switch (credentialClass) {
          case 'approle-secret-id': {
            const r = await vault('GET', `${roleBase(scope)}/role-id`);
            if (r.status === 404 || (r.status === 400 && !r.json.data)) throw fail('RotationNotPossible', `field "scope": no AppRole role "${scope}" at auth/${cfg.vault.approleMount}`);
            if (r.status >= 400) throw fail(r.status === 403 ? ErrorType.VaultAuthFailed : ErrorType.VaultRequestRejected, `read role ${scope}: HTTP ${r.status}`);
            return { credentialClass, scope, rotationId, kvPath, mode: 'automatic' };
          }
          case 'token-lease': {
            if (!/^[\w.-]+(\/[\w.-]+)+\/?$/.test(scope)) throw fail('RotationNotPossible', `field "scope": "${scope}" is not a lease prefix with at least two segments (auth/token/create/<role>, auth/approle/login, database/creds/<role>)`);
            const self = await must('GET', 'auth/token/lookup-self');
            const own = String(self.json.data?.path ?? '');
            if (own && (own + '/').startsWith(scope.replace(/\/?$/, '/'))) throw fail('RotationNotPossible', `field "scope": ${scope} would revoke the rotator's own token (issued at ${own}); issue the rotator token from another path first`);
            return { credentialClass, scope, rotationId, mode: 'automatic' };
          }
          case 'postgres-role': {
            const t = pgTarget();
            if (!(await pg('role lookup', () => roleExists(t, scope)))) throw fail('RotationNotPossible', `field "scope": no PostgreSQL login role "${scope}" at ${t.host}:${t.port}`);
            return { credentialClass, scope, rotationId, kvPath, mode: 'automatic' };
          }
          case 'smtp-relay':
          case 'mailbox-password':
          case 'ssh-key': {
            const hook = credentialClass === 'ssh-key' ? 'authorized_keys on the hosts (infra/ssh, the host adapter)' : 'the mail host adapter (infra/mailhost, the migration helper)';
            const host = hostCredentials(cfg);
            if (host && credentialClass === 'smtp-relay') {
              // The provider issues the credential; a responder stores it in Vault; vault-dr writes it to the host and proves it.
              const cur = await readKv(kvPath);
              const intakeFolder = `${cfg.rotation.kvMount}/data/${cfg.rotation.kvPrefix}/`;
              const cliPath = kvPath.replace(`${cfg.rotation.kvMount}/data/`, '');
              return {
                credentialClass,
                scope,
                rotationId,
                kvPath,
                mode: 'person',
                hook: { name: `${hook} on ${host.label} (Postfix relay credentials)`, wired: true },
                relay: { oldVersion: cur.version, intakeFolder },
                personTask: `get a new relay login from the relay provider, store it in Vault (bao kv put -mount=${cfg.rotation.kvMount} ${cliPath} username=… password=…), revoke the old one at the provider, then name the path: vaultdr rotate relay-stored <workflowId> --who NAME --path ${kvPath} [--old-revoked]`,
              };
            }
            if (host) {
              // Wired: vault-dr applies the new value on the host itself and proves it there.
              if (credentialClass === 'mailbox-password' && !/^[^@\s/]+@[A-Za-z0-9.-]+$/.test(scope)) throw fail('RotationNotPossible', `field "scope": mailbox-password rotates a mailbox address (user@domain), got "${scope}"`);
              if (credentialClass === 'ssh-key' && !/^[a-z_][a-z0-9_-]{0,31}$/.test(scope)) throw fail('RotationNotPossible', `field "scope": ssh-key rotates the key of a user on ${host.label}, got "${scope}"`);
              return { credentialClass, scope, rotationId, kvPath, mode: 'automatic', hook: { name: `${hook} on ${host.label}`, wired: true } };
            }
            return {
              credentialClass,
              scope,
              rotationId,
              kvPath,
              mode: 'person',
              hook: { name: hook, wired: false, instead: `rotation.host is not set: a person applies the new value from Vault KV${credentialClass === 'smtp-relay' ? ' on the mail host (and at the relay provider)' : ''} and confirms` },
              personTask: `apply the new ${credentialClass} value from ${kvPath} on ${credentialClass === 'ssh-key' ? `the hosts' authorized_keys (user ${scope})` : `the mail host (${scope})`}, revoke the old one, then confirm`,
            };
          }
          case 'channel-secret': {
            if (scope !== 'slack' && scope !== 'pagerduty') throw fail('RotationNotPossible', 'field "scope": channel-secret rotates "slack" or "pagerduty"');
            const channelPath = `${cfg.backup.kvMount}/data/${cfg.alerts.channelSecretsPath}/${scope}`;
            return { credentialClass, scope, rotationId, kvPath: channelPath, mode: 'person', personTask: `issue a new ${scope === 'slack' ? 'Slack webhook URL' : 'PagerDuty routing key'} at ${scope === 'slack' ? 'the Slack app' : 'the PagerDuty service'}, write it to ${channelPath}, revoke the old one there, then confirm` };
          }
          case 'backup-recipient': {
            return { credentialClass, scope, rotationId, mode: 'automatic' };
          }
        }
      },

      /** Makes the new credential and puts it in place (idempotent per rotation id; see the file header). */
      async issueNewCredential(req: { plan: RotationPlan }): Promise<StepOutcome & { kvVersion?: number; reused?: boolean; newKeyId?: string; newPublicKey?: string }> {
        const { plan } = req;
        switch (plan.credentialClass) {
          case 'approle-secret-id': {
            const roleId = String((await must('GET', `${roleBase(plan.scope)}/role-id`)).json.data.role_id);
            const v = await ownOrNewValue(plan, () => ({ role_id: roleId, secret_id: randomSecret() }));
            // Check before act: the custom secret-id may already be registered by an attempt that died after it.
            if (!(await accessorOf(plan.scope, v.value.secret_id!))) {
              await must('POST', `${roleBase(plan.scope)}/custom-secret-id`, { secret_id: v.value.secret_id, metadata: JSON.stringify({ vaultdr_rotation: plan.rotationId.slice(0, 200) }) });
            }
            return { ok: true, kvVersion: v.version, reused: v.reused, detail: `${v.reused ? 'reused the' : 'issued a'} new secret-id for role ${plan.scope}, delivered at ${plan.kvPath} version ${v.version}` };
          }
          case 'token-lease':
            return { ok: true, detail: `nothing to issue: leases under ${plan.scope} are revoked and their holders log in again` };
          case 'postgres-role': {
            const t = pgTarget();
            const v = await ownOrNewValue(plan, () => ({ username: plan.scope, password: randomSecret() }));
            // Check before act: an attempt that died after ALTER ROLE already set this password.
            const already = (await pg('login probe', () => tryLogin(t, plan.scope, v.value.password!))) === 'ok';
            if (!already) await pg('ALTER ROLE', () => setPassword(t, plan.scope, v.value.password!));
            return { ok: true, kvVersion: v.version, reused: v.reused || already, detail: `${already ? 'the new password was already set' : 'set a new password'} for PostgreSQL role ${plan.scope}, delivered at ${plan.kvPath} version ${v.version}` };
          }
          case 'smtp-relay':
          case 'mailbox-password': {
            if (plan.relay) throw fail('RotationNotPossible', 'smtp-relay with rotation.host: the relay provider issues the credential (applyRelayCredential applies it)');
            const cur = await readKv(plan.kvPath!);
            const v = await ownOrNewValue(plan, () => ({ username: cur.value?.username ?? plan.scope, password: randomSecret() }));
            const host = wiredHost(plan);
            if (host) {
              // Check before act: an attempt that died after setting it left the host on this password.
              const already = (await host.smtpAuth(v.value.username!, v.value.password!)) === 'ok';
              if (!already) await host.setMailboxPassword(plan.scope, v.value.password!);
              return { ok: true, kvVersion: v.version, reused: v.reused || already, detail: `${already ? 'the new password was already set' : 'set a new password'} for mailbox ${plan.scope} on ${host.label} (mail adapter ${cfg.migration.mailHost.adapter}), delivered at ${plan.kvPath} version ${v.version}` };
            }
            return { ok: true, kvVersion: v.version, reused: v.reused, detail: `new ${plan.credentialClass} password for ${plan.scope} at ${plan.kvPath} version ${v.version}; hook ${plan.hook!.name} is NOT wired: a person applies it` };
          }
          case 'ssh-key': {
            // OpenSSH's own format (ssh2 makes it), so ssh, ssh-add and the worker's login probe all read it.
            const v = await ownOrNewValue(plan, () => {
              const k = newSshKeyPair('vault-dr-rotation');
              return { private_key: k.privateKey, public_key: k.publicKey };
            });
            const host = wiredHost(plan);
            if (host) {
              const r = await host.addAuthorizedKey(plan.scope, v.value.public_key!, 'vault-dr-rotation');
              return { ok: true, kvVersion: v.version, reused: v.reused || !r.added, detail: `${r.added ? 'added' : 'already had'} the new ed25519 key ${fingerprintOfKeyLine(v.value.public_key!)} in ${plan.scope}'s authorized_keys on ${host.label}, private half at ${plan.kvPath} version ${v.version}` };
            }
            return { ok: true, kvVersion: v.version, reused: v.reused, detail: `new ed25519 key pair for ${plan.scope} at ${plan.kvPath} version ${v.version}; hook ${plan.hook!.name} is NOT wired: a person installs the public key` };
          }
          case 'channel-secret': {
            const cur = await readKv(plan.kvPath!);
            return { ok: true, kvVersion: cur.version, detail: `${plan.kvPath} is at version ${cur.version}; a person writes the new secret as a later version` };
          }
          case 'backup-recipient':
            throw fail('RotationNotPossible', 'backup-recipient is issued by issueRecipientKey');
        }
      },

      /**
       * smtp-relay with rotation.host: reads the credential the responder stored at `source` (never
       * returned), keeps it at the class's KV path tagged with the rotation id (a retry re-uses that
       * copy), writes it to the mail host's Postfix relay settings through the mail adapter and
       * reloads Postfix. `ok: false` (nothing usable stored there) sends the workflow back to waiting.
       */
      async applyRelayCredential(req: { plan: RotationPlan; source: { kvPath: string; version?: number } }): Promise<StepOutcome & { kvVersion?: number; reused?: boolean }> {
        const { plan, source } = req;
        const host = wiredHost(plan);
        if (!host || !plan.relay) throw fail('RotationNotPossible', 'applyRelayCredential runs for smtp-relay with rotation.host set only');
        if (!source.kvPath.startsWith(plan.relay.intakeFolder) || /\.\.|[?#\s]/.test(source.kvPath)) throw fail(ErrorType.InvalidInput, `kvPath: ${source.kvPath} is not a KV path under ${plan.relay.intakeFolder}`);
        const old = plan.relay.oldVersion >= 1 ? (await readKv(plan.kvPath!, plan.relay.oldVersion)).value : undefined;
        const cur = await readKv(plan.kvPath!);
        let nu: Value;
        let version: number;
        let reused = false;
        if (cur.value?.rotation_id === plan.rotationId) {
          nu = cur.value;
          version = cur.version;
          reused = true;
        } else {
          const at = `${source.kvPath}${source.version ? ` version ${source.version}` : ''}`;
          const src = await readKv(source.kvPath, source.version);
          if (!src.value) return { ok: false, detail: `nothing is stored at ${at}: store the new relay login there, then send relayPasswordStored again` };
          if (!src.value.password) return { ok: false, detail: `${at} has no "password" field: store username=… password=… there, then send relayPasswordStored again` };
          const username = src.value.username ?? old?.username ?? plan.scope;
          if (old?.password && src.value.password === old.password && username === (old.username ?? plan.scope)) {
            return { ok: false, detail: `${at} holds the relay login in force when the rotation began (${plan.kvPath} version ${plan.relay.oldVersion}), not a new one: store the new one, then send relayPasswordStored again` };
          }
          nu = { username, password: src.value.password, rotation_id: plan.rotationId };
          const where = src.value.host && src.value.port ? src.value : old?.host && old.port ? old : undefined;
          if (where) Object.assign(nu, { host: where.host!, port: String(where.port) });
          version = await writeKv(plan.kvPath!, nu);
        }
        const ep = await relayEndpoint(host, nu, old);
        const applied = await host.writeRelay({ host: ep.host, port: ep.port, user: nu.username!, password: nu.password! });
        return { ok: true, kvVersion: version, reused, detail: `${reused ? 'the stored relay login was already copied' : `copied the relay login from ${source.kvPath}`} to ${plan.kvPath} version ${version}; wrote it to the Postfix relay settings on ${host.label} (relay [${ep.host}]:${ep.port}, user ${nu.username}) and reloaded Postfix (${applied})` };
      },

      /** Proves the new credential works (a login, a delivery probe); `ok: false` means it never worked. */
      async verifyNewCredential(req: { plan: RotationPlan; sinceVersion?: number }): Promise<StepOutcome> {
        const { plan } = req;
        switch (plan.credentialClass) {
          case 'approle-secret-id': {
            const { nu } = await newAndOld(plan);
            if (!nu) return { ok: false, detail: `${plan.kvPath} does not hold this rotation's secret-id` };
            const r = await approleLogin(nu.role_id!, nu.secret_id!);
            return { ok: r === 'ok', detail: r === 'ok' ? `AppRole login as ${plan.scope} with the new secret-id works` : `AppRole login as ${plan.scope} with the new secret-id is refused` };
          }
          case 'token-lease': {
            // The token store still issues tokens after the revocation: a short probe token works.
            const made = await vault('POST', 'auth/token/create', { policies: ['default'], ttl: '2m', no_parent: false, display_name: 'vaultdr-rotation-probe' });
            if (made.status !== 200) return { ok: false, detail: `a fresh token could not be issued after the revocation: HTTP ${made.status}` };
            const probe = made.json.auth.client_token as string;
            const look = await vault('GET', 'auth/token/lookup-self', undefined, probe);
            await vault('POST', 'auth/token/revoke-self', undefined, probe).catch(() => undefined);
            return { ok: look.status === 200, detail: look.status === 200 ? 'a fresh token issued after the revocation works (holders log in again for theirs)' : `a fresh token does not work: HTTP ${look.status}` };
          }
          case 'postgres-role': {
            const { nu } = await newAndOld(plan);
            if (!nu) return { ok: false, detail: `${plan.kvPath} does not hold this rotation's password` };
            const r = await pg('login probe', () => tryLogin(pgTarget(), plan.scope, nu.password!));
            const detail = `login as ${plan.scope} with the new password ${r === 'ok' ? 'works' : 'is refused'}`;
            if (r !== 'ok' || !cfg.rotation.postgresNodes.length) return { ok: r === 'ok', detail };
            // HA: every member must take it (replicas once they replayed the change; 30 s for the lag).
            const nodes = await checkNodes(plan.scope, nu.password!, 'ok', 30_000);
            return { ok: nodes.ok, detail: `${detail} at ${pgTarget().host}:${pgTarget().port}; on each member: ${nodes.lines.join(', ')}` };
          }
          case 'smtp-relay':
          case 'mailbox-password': {
            const { nu, old } = await newAndOld(plan);
            if (!nu) return { ok: false, detail: `${plan.kvPath} does not hold this rotation's password` };
            const host = wiredHost(plan);
            if (host && plan.relay) {
              // First the relay itself, then a real message through the host's Postfix with the new login.
              const ep = await relayEndpoint(host, nu, old);
              const direct = await relayLoginAs(ep, nu, plan.scope);
              if (direct.result !== 'ok') return { ok: false, detail: `the relay ${ep.host}:${ep.port} refuses the new login ${nu.username} (${direct.code ?? 'EAUTH'})` };
              const attempt = Context.current().info.attempt;
              const subject = `vault-dr relay probe ${slug(plan.rotationId)} #${attempt}`;
              const messageId = `${crypto.createHash('sha256').update(`${plan.rotationId}#${attempt}`).digest('hex').slice(0, 24)}.relay-probe@vault-dr`;
              const d = await host.relayProbe({ to: cfg.migration.testRecipient, subject, messageId, timeoutMs: 60_000, onWait: () => Context.current().heartbeat({ waiting: 'relay probe' }) });
              if (d.state !== 'sent') return { ok: false, detail: `SMTP AUTH at the relay works, but a probe handed to Postfix on ${host.label} was ${d.state === 'pending' ? 'not attempted within 60 s' : `${d.state} by the relay`}: ${d.detail}` };
              let seen = '';
              if (cfg.migration.relayInboxUrl) {
                await awaitRelayedMessage({ inboxUrl: cfg.migration.relayInboxUrl, marker: subject, timeoutMs: 30_000, onWait: () => Context.current().heartbeat({ waiting: 'relay inbox' }) });
                seen = '; the probe is in the relay inbox';
              }
              return { ok: true, detail: `SMTP AUTH as ${nu.username} at the relay ${ep.host}:${ep.port} works; a probe relayed through Postfix on ${host.label} was accepted by the relay (${d.detail})${seen}` };
            }
            if (host) {
              const h = await host.smtpAuth(nu.username!, nu.password!);
              return { ok: h === 'ok', detail: `SMTP AUTH as ${nu.username} with the new password on the mail host (${host.submission}) ${h === 'ok' ? 'works' : 'is refused'}` };
            }
            const r = await smtpLogin(nu.username!, nu.password!);
            if (r === 'no probe') return { ok: false, detail: 'not verified: rotation.smtpAuthHost is not set, so vault-dr cannot try SMTP AUTH' };
            return { ok: r === 'ok', detail: `SMTP AUTH as ${nu.username} with the new password at ${cfg.rotation.smtpAuthHost} ${r === 'ok' ? 'works' : 'is refused'}` };
          }
          case 'ssh-key': {
            const host = wiredHost(plan);
            if (!host) return { ok: false, detail: 'not verified by vault-dr: rotation.host is not set, so it has no host to try an SSH login on' };
            const { nu } = await newAndOld(plan);
            if (!nu?.private_key) return { ok: false, detail: `${plan.kvPath} does not hold this rotation's key` };
            const r = await host.sshLogin(plan.scope, nu.private_key);
            return { ok: r === 'ok', detail: `a fresh SSH login as ${plan.scope} on ${host.label} with the new key ${r === 'ok' ? 'works' : 'is refused'}` };
          }
          case 'channel-secret': {
            const cur = await readKv(plan.kvPath!);
            const before = req.sinceVersion ?? 0;
            if (cur.version <= before || !cur.value) return { ok: false, detail: `${plan.kvPath} still at version ${cur.version}: no new secret was written` };
            const prev = await readKv(plan.kvPath!, before);
            if (JSON.stringify(prev.value) === JSON.stringify(cur.value)) return { ok: false, detail: `version ${cur.version} of ${plan.kvPath} holds the same value as version ${before}` };
            if (plan.scope === 'slack' && cur.value.webhook_url) {
              const res = await fetch(cur.value.webhook_url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ text: 'vault-dr: channel secret rotation probe (no action needed)' }), signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
              return { ok: !!res?.ok, detail: `the new Slack webhook ${res?.ok ? 'accepted a probe message' : `refused the probe (${res?.status ?? 'unreachable'})`}` };
            }
            return { ok: true, detail: `a new ${plan.scope} secret is at version ${cur.version} (PagerDuty: no probe event is sent, it would page)` };
          }
          case 'backup-recipient':
            throw fail('RotationNotPossible', 'backup-recipient is verified by unwrapRecipientProbe');
        }
      },

      /** The new credential never worked: take it away again so exactly the old one stays in place. */
      async discardNewCredential(req: { plan: RotationPlan }): Promise<StepOutcome> {
        const { plan } = req;
        if (plan.credentialClass === 'approle-secret-id') {
          const { nu, old } = await newAndOld(plan);
          const acc = nu ? await accessorOf(plan.scope, nu.secret_id!) : undefined;
          if (acc) await must('POST', `${roleBase(plan.scope)}/secret-id-accessor/destroy`, { secret_id_accessor: acc });
          if (old) await writeKv(plan.kvPath!, { ...old, rotation_id: `${plan.rotationId}/discarded` });
          return { ok: true, detail: `the new secret-id was destroyed${old ? ' and the old value restored in KV' : ''}; the old secret-ids are untouched` };
        }
        if (plan.credentialClass === 'postgres-role') {
          const { old } = await newAndOld(plan);
          if (!old?.password) return { ok: false, detail: 'no old password recorded in KV: the role keeps the new (unverified) password' };
          await pg('ALTER ROLE', () => setPassword(pgTarget(), plan.scope, old.password!));
          await writeKv(plan.kvPath!, { ...old, rotation_id: `${plan.rotationId}/discarded` });
          return { ok: true, detail: 'the old password was set again and restored in KV' };
        }
        const host = wiredHost(plan);
        if (host && plan.relay) {
          const { nu, old } = await newAndOld(plan);
          if (!old?.password) return { ok: false, detail: `no previous relay login in ${plan.kvPath}: the mail host keeps the new (unverified) one` };
          const ep = await relayEndpoint(host, old, nu);
          await host.writeRelay({ host: ep.host, port: ep.port, user: old.username ?? plan.scope, password: old.password });
          await writeKv(plan.kvPath!, { ...old, rotation_id: `${plan.rotationId}/discarded` });
          return { ok: true, detail: `the old relay login was written back to Postfix on ${host.label} and restored in KV` };
        }
        if (host && plan.credentialClass === 'mailbox-password') {
          const { old } = await newAndOld(plan);
          if (!old?.password) return { ok: false, detail: 'no old password recorded in KV: the mailbox keeps the new (unverified) password' };
          await host.setMailboxPassword(plan.scope, old.password);
          await writeKv(plan.kvPath!, { ...old, rotation_id: `${plan.rotationId}/discarded` });
          return { ok: true, detail: `the old password of ${plan.scope} was set again on ${host.label} and restored in KV` };
        }
        if (host && plan.credentialClass === 'ssh-key') {
          const { nu } = await newAndOld(plan);
          const fp = nu?.public_key ? fingerprintOfKeyLine(nu.public_key) : undefined;
          const n = fp ? await host.removeAuthorizedKey(plan.scope, fp) : 0;
          return { ok: true, detail: `the new key was taken out of ${plan.scope}'s authorized_keys (${n} line(s)); the old keys are untouched` };
        }
        return { ok: true, detail: 'nothing vault-dr applied to take back (the new value stays in KV as a later version)' };
      },

      /** Revokes the old credential(s): every other secret-id, every lease under the prefix, the role's open sessions. */
      async revokeOldCredentials(req: { plan: RotationPlan }): Promise<StepOutcome & { revoked: number }> {
        const { plan } = req;
        switch (plan.credentialClass) {
          case 'approle-secret-id': {
            const { nu } = await newAndOld(plan);
            const keep = nu ? await accessorOf(plan.scope, nu.secret_id!) : undefined;
            if (!keep) throw fail('RotationNotPossible', `the new secret-id of ${plan.scope} is not registered: refusing to destroy the others`);
            let revoked = 0;
            for (const acc of await accessorsOf(plan.scope)) {
              if (acc === keep) continue;
              await must('POST', `${roleBase(plan.scope)}/secret-id-accessor/destroy`, { secret_id_accessor: acc });
              revoked++;
            }
            return { ok: true, revoked, detail: `destroyed ${revoked} other secret-id(s) of ${plan.scope} by accessor` };
          }
          case 'token-lease': {
            const before = await countLeases(plan.scope);
            await must('POST', `sys/leases/revoke-prefix/${plan.scope.replace(/\/$/, '')}?sync=true`, {});
            return { ok: true, revoked: before, detail: `revoked ${before} lease(s) under ${plan.scope} (sys/leases/revoke-prefix, sync)` };
          }
          case 'postgres-role': {
            const n = await pg('terminate sessions', () => terminateSessions(pgTarget(), plan.scope));
            // HA: sessions on replicas (read-only, logged in with the old password) are on those members only.
            const more: string[] = [];
            let total = n;
            for (const t of pgNodes()) {
              const k = await terminateSessions(t, plan.scope).catch(() => undefined);
              if (k === undefined) more.push(`${t.host}:${t.port} unreachable`);
              else {
                total += k;
                more.push(`${t.host}:${t.port} ${k}`);
              }
            }
            return { ok: true, revoked: total, detail: `the old password was replaced; ended ${n} open session(s) of ${plan.scope}${more.length ? ` (and on each member: ${more.join(', ')})` : ''}` };
          }
          case 'smtp-relay': {
            if (plan.relay) return { ok: true, revoked: 0, detail: 'the mail host no longer uses the old relay login (replaced by the new one); revoking it is the relay provider\'s, done by the responder' };
            return { ok: true, revoked: 0, detail: 'revoked by the person who confirmed the rotation' };
          }
          case 'mailbox-password':
          case 'ssh-key': {
            const host = wiredHost(plan);
            if (!host) return { ok: true, revoked: 0, detail: 'revoked by the person who confirmed the rotation' };
            if (plan.credentialClass === 'mailbox-password') return { ok: true, revoked: 1, detail: `the mailbox has one password: setting the new one on ${host.label} replaced the old` };
            const { old } = await newAndOld(plan);
            const fp = old?.public_key ? fingerprintOfKeyLine(old.public_key) : undefined;
            if (!fp) return { ok: true, revoked: 0, detail: `no previous key in ${plan.kvPath}: nothing to remove from ${plan.scope}'s authorized_keys (was the old key ever stored there?)` };
            const n = await host.removeAuthorizedKey(plan.scope, fp);
            return { ok: true, revoked: n, detail: `removed the old key ${fp} from ${plan.scope}'s authorized_keys on ${host.label} (${n} line(s))` };
          }
          default:
            return { ok: true, revoked: 0, detail: 'revoked by the person who confirmed the rotation' };
        }
      },

      /** Proves the old credential is refused: a login with the previous KV version, the accessor list, the lease count. */
      async verifyOldRefused(req: { plan: RotationPlan; oldRevokedAttested?: boolean; sinceVersion?: number }): Promise<StepOutcome> {
        const { plan } = req;
        switch (plan.credentialClass) {
          case 'approle-secret-id': {
            const { nu, old } = await newAndOld(plan);
            const keep = nu ? await accessorOf(plan.scope, nu.secret_id!) : undefined;
            const left = (await accessorsOf(plan.scope)).filter((a) => a !== keep).length;
            const login = old?.secret_id ? await approleLogin(old.role_id ?? nu!.role_id!, old.secret_id) : 'no old value';
            const ok = left === 0 && login !== 'ok';
            return { ok, detail: `${left} other secret-id(s) left on ${plan.scope}; login with the previous secret-id: ${login}` };
          }
          case 'token-lease': {
            const left = await countLeases(plan.scope);
            return { ok: left === 0, detail: `${left} lease(s) left under ${plan.scope}` };
          }
          case 'postgres-role': {
            const { old } = await newAndOld(plan);
            if (!old?.password) return { ok: false, detail: `no previous password in ${plan.kvPath}: nothing to prove refused (was the old one ever stored there?)` };
            const r = await pg('login probe', () => tryLogin(pgTarget(), plan.scope, old.password!));
            const detail = `login as ${plan.scope} with the old password is ${r === 'refused' ? 'refused' : 'STILL ACCEPTED'}`;
            if (!cfg.rotation.postgresNodes.length) return { ok: r === 'refused', detail };
            const nodes = await checkNodes(plan.scope, old.password, 'refused', 30_000);
            return { ok: r === 'refused' && nodes.ok, detail: `${detail} at ${pgTarget().host}:${pgTarget().port}; on each member: ${nodes.lines.join(', ')}` };
          }
          case 'smtp-relay':
          case 'mailbox-password': {
            const { old, nu } = await newAndOld(plan);
            const host = wiredHost(plan);
            if (host && plan.relay) {
              if (!old?.password) return { ok: false, detail: `no previous relay login in ${plan.kvPath} (version ${plan.relay.oldVersion}): nothing to prove refused` };
              const ep = await relayEndpoint(host, old, nu);
              const r = await relayLoginAs(ep, old, plan.scope);
              if (r.result === 'refused') return { ok: true, detail: `the relay ${ep.host}:${ep.port} refuses the old login ${old.username ?? plan.scope} (${r.code ?? 'EAUTH'})` };
              return { ok: false, detail: `the old login ${old.username ?? plan.scope} STILL WORKS at the relay ${ep.host}:${ep.port}: the provider has not revoked it (revocation ${req.oldRevokedAttested ? 'attested' : 'not attested'} by the responder); the mail host already uses the new one, so revoke the old one at the provider` };
            }
            if (host) {
              if (!old?.password) return { ok: false, detail: `no previous password in ${plan.kvPath}: nothing to prove refused (was the old one ever stored there?)` };
              const h = await host.smtpAuth(old.username ?? plan.scope, old.password);
              return { ok: h === 'refused', detail: `SMTP AUTH with the old password on the mail host (${host.submission}) is ${h === 'refused' ? 'refused' : 'STILL ACCEPTED'}` };
            }
            if (!old?.password) return { ok: !!req.oldRevokedAttested, detail: `no previous password in KV to try; revocation ${req.oldRevokedAttested ? 'attested' : 'not attested'} by the person` };
            const r = await smtpLogin(old.username ?? plan.scope, old.password);
            if (r === 'no probe') return { ok: false, detail: `not verified: rotation.smtpAuthHost is not set (revocation ${req.oldRevokedAttested ? 'attested' : 'not attested'} by the person)` };
            return { ok: r === 'refused', detail: `SMTP AUTH with the old password is ${r === 'refused' ? 'refused' : 'STILL ACCEPTED'}` };
          }
          case 'channel-secret': {
            if (plan.scope === 'slack' && req.sinceVersion) {
              const prev = await readKv(plan.kvPath!, req.sinceVersion);
              if (prev.value?.webhook_url) {
                const res = await fetch(prev.value.webhook_url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ text: 'vault-dr: old webhook probe (should be refused)' }), signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
                return { ok: !res?.ok, detail: `the old Slack webhook ${res?.ok ? 'STILL ACCEPTS messages' : `is refused (${res?.status ?? 'unreachable'})`}` };
              }
            }
            return { ok: !!req.oldRevokedAttested, detail: `revocation at the issuer ${req.oldRevokedAttested ? 'attested' : 'NOT attested'} by the person (no probe for ${plan.scope})` };
          }
          case 'ssh-key': {
            const host = wiredHost(plan);
            if (!host) return { ok: false, detail: 'not verified by vault-dr: rotation.host is not set, so it has no host to try the old key on' };
            const { old } = await newAndOld(plan);
            if (!old?.public_key) return { ok: false, detail: `no previous key in ${plan.kvPath}: nothing to prove refused` };
            // The public half is enough: the server says whether it would take the key (infra/ssh keyAccepted).
            const accepted = await host.sshKeyAccepted(plan.scope, old.public_key);
            return { ok: !accepted, detail: `the old key ${fingerprintOfKeyLine(old.public_key)} is ${accepted ? 'STILL ACCEPTED' : 'refused'} for ${plan.scope} on ${host.label}` };
          }
          default:
            return { ok: false, detail: 'not verified by vault-dr (no probe for this class)' };
        }
      },

      /**
       * backup-recipient, restore host: a new validation key pair. The old key file is kept beside it
       * (…superseded-<keyId>) because backups taken before stay encrypted to it. Idempotent: when the
       * current key is no longer the compromised one, that key is this rotation's.
       */
      async issueRecipientKey(req: { plan: RotationPlan }): Promise<StepOutcome & { newKeyId: string; newPublicKey: string }> {
        const file = cfg.backup.validationKeyFile;
        if (!file) throw fail(ErrorType.KeyMaterialMissing, 'backup.validationKeyFile is not set on this worker');
        const current = loadPrivateKeyFile(file);
        try {
          const currentId = keyIdOfPrivate(current);
          if (currentId !== req.plan.scope) {
            const archived = `${file}.superseded-${req.plan.scope.replace(/[^\w]/g, '_')}`;
            if (!fs.existsSync(archived)) throw fail('RotationNotPossible', `field "scope": ${req.plan.scope} is not this host's validation key (${currentId}); the escrow key is rotated by a custodian ceremony (vaultdr keys init), not here`);
            const pub = crypto.createPublicKey(crypto.createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), current]), format: 'der', type: 'pkcs8' }));
            const raw = Buffer.from(pub.export({ format: 'jwk' }).x!, 'base64url');
            return { ok: true, newKeyId: currentId, newPublicKey: raw.toString('base64'), detail: `already rotated: the validation key is ${currentId}` };
          }
          const next = generateKeyPair();
          fs.copyFileSync(file, `${file}.superseded-${req.plan.scope.replace(/[^\w]/g, '_')}`, fs.constants.COPYFILE_EXCL);
          const tmp = `${file}.new`;
          fs.writeFileSync(tmp, JSON.stringify({ keyId: next.keyId, privateKey: next.privateKey.toString('base64') }, null, 2) + '\n', { mode: 0o600 });
          fs.renameSync(tmp, file);
          next.privateKey.fill(0);
          return { ok: true, newKeyId: next.keyId, newPublicKey: next.publicKey.toString('base64'), detail: `new validation key ${next.keyId}; the compromised key's file is kept for backups taken before` };
        } finally {
          current.fill(0);
        }
      },

      /** backup-recipient, restore host: unwraps the backup host's probe with the new validation key. */
      async unwrapRecipientProbe(req: { stanzas: WrappedKey[]; probeSha256: string }): Promise<StepOutcome> {
        const key = loadPrivateKeyFile(cfg.backup.validationKeyFile!);
        try {
          const probe = unwrapDataKey(req.stanzas, key);
          const ok = crypto.createHash('sha256').update(probe).digest('hex') === req.probeSha256;
          return { ok, detail: ok ? `a probe wrapped for the new recipients opens with the validation key ${keyIdOfPrivate(key)}` : 'the probe does not open with the new validation key' };
        } catch (err) {
          return { ok: false, detail: `the probe does not open with the validation key: ${(err as Error).message}` };
        } finally {
          key.fill(0);
        }
      },
    },
    ROTATION_HEARTBEATS,
  );

  async function this_validationKeyId(): Promise<string | undefined> {
    if (!cfg.backup.validationKeyFile) return undefined;
    const k = loadPrivateKeyFile(cfg.backup.validationKeyFile);
    try {
      return keyIdOfPrivate(k);
    } finally {
      k.fill(0);
    }
  }

  /** Leases under a prefix (recursive LIST sys/leases/lookup), bounded. */
  async function countLeases(prefix: string): Promise<number> {
    let n = 0;
    const walk = async (p: string, depth: number): Promise<void> => {
      const r = await vault('LIST', `sys/leases/lookup/${p}`);
      if (r.status === 404) return;
      if (r.status >= 400) throw fail(r.status === 403 ? ErrorType.VaultAuthFailed : ErrorType.VaultRequestRejected, `LIST sys/leases/lookup/${p}: HTTP ${r.status}`);
      for (const k of (r.json.data?.keys ?? []) as string[]) {
        if (k.endsWith('/') && depth < 6) await walk(p + k, depth + 1);
        else n++;
        if (n > 100_000) return;
      }
    };
    await walk(prefix.replace(/\/?$/, '/'), 0);
    return n;
  }
};

export type RotationActivities = ReturnType<typeof rotationActivities>;

