// The migration drill's and tests' world on the local hosts (stack/mailhosts.ts): the migration
// secrets in the stack's OpenBao (operators' SSH keys, relay credentials, mailbox, DKIM key), the
// migration policy and AppRole, and the new VPS put back to a "fresh VPS" baseline: a stale relay
// password, a throwaway DKIM key (what MailU makes for a new domain), a stale mailbox password, and
// an authorized_keys holding the provider's key plus a departed operator's key. Secret values go to
// 0600 files and Vault only; the returned list lets tests prove none reaches workflow history.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { newSshKeyPair } from '../infra/ssh/client';
import { fetch } from 'undici';
import type { Config } from '../infra/config';
import { acquireHostsLease, dkimPublicKeyOf, mailuEnvFile, hostsDir, hostsInfo, hostsUp, publishZone, relayCredentials, runInHost, tcpOpen, MAIL_DOMAIN, NETWORK, type HostsInfo } from './mailhosts';
import { PORTS, rootToken, stackDir } from './stack';

/**
 * Exclusive use of the local hosts (they are machine-wide and a migration changes new-vps): the
 * hosts' own lease (stack/mailhosts.ts `.lease` pid file), so migration and host tests never
 * interleave. A holder that died frees it.
 */
export const leaseHosts = acquireHostsLease;

export interface MigrationFixture {
  cfg: Config;
  hosts: HostsInfo;
  /** Secret values none of which may appear in history, logs or CLI output. */
  secrets: { name: string; value: string }[];
  /** A key removed from the operator list: deploySshKeys must see it refused. */
  departedKeyLine: string;
  mailbox: { email: string };
}

async function bao(method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${PORTS.bao}/v1/${p}`, { method, headers: { 'X-Vault-Token': rootToken(), 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`bao ${method} ${p}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return { status: res.status, json: text ? JSON.parse(text) : {} };
}

const newSshKey = (comment: string) => {
  const k = newSshKeyPair(comment);
  return { privateKey: k.privateKey, line: k.publicKey };
};

/** Writes a KV v2 secret (root token; test and drill set-up only). */
export async function writeSecret(kvPath: string, data: Record<string, unknown>): Promise<void> {
  await bao('POST', `secret/data/${kvPath}`, { data });
}

/** The migration policy and AppRole (read on vault-dr/migration* only); role-id/secret-id files in `dir`. */
async function migrationAppRole(dir: string): Promise<{ roleIdFile: string; secretIdFile: string; secretId: string }> {
  await bao('PUT', 'sys/policies/acl/vaultdr-migration', { policy: 'path "secret/data/vault-dr/migration*" {\n  capabilities = ["read"]\n}\npath "sys/capabilities-self" {\n  capabilities = ["update"]\n}\n' });
  await bao('POST', 'auth/approle/role/vaultdr-migration', { token_policies: ['vaultdr-migration'], token_ttl: '30m', token_max_ttl: '2h', secret_id_ttl: '0' });
  const roleId = (await bao('GET', 'auth/approle/role/vaultdr-migration/role-id')).json.data.role_id as string;
  const roleIdFile = path.join(dir, 'migration-role-id');
  const secretIdFile = path.join(dir, 'migration-secret-id');
  fs.writeFileSync(roleIdFile, roleId, { mode: 0o600 });
  if (!fs.existsSync(secretIdFile)) fs.writeFileSync(secretIdFile, (await bao('POST', 'auth/approle/role/vaultdr-migration/secret-id', {})).json.data.secret_id as string, { mode: 0o600 });
  return { roleIdFile, secretIdFile, secretId: fs.readFileSync(secretIdFile, 'utf8').trim() };
}

export interface SecretOverrides {
  relayPassword?: string;
  dkimPem?: string;
}

/**
 * Seeds the migration secrets under `vault-dr/<prefix>/…` and returns their paths; `over` plants a
 * fault (a wrong relay password, a DKIM key DNS does not publish).
 */
export async function seedMigrationSecrets(prefix: string, hosts: HostsInfo, dir: string, over: SecretOverrides = {}) {
  const alice = newSshKey('alice@ops');
  const bob = newSshKey('bob@ops');
  const relay = relayCredentials();
  const mailbox = { email: `ops@${MAIL_DOMAIN}`, password: crypto.randomBytes(15).toString('base64url') };
  const dkimPem = over.dkimPem ?? fs.readFileSync(hosts.dkimKeyFile, 'utf8');
  const base = `vault-dr/${prefix}`;
  await writeSecret(`${base}/ssh-operators`, { alice: alice.line, bob: bob.line });
  await writeSecret(`${base}/smtp-relay`, { host: hosts.relay.smtpHost, port: hosts.relay.smtpPort, username: relay.username, password: over.relayPassword ?? relay.password });
  await writeSecret(`${base}/mailbox`, mailbox);
  await writeSecret(`${base}/dkim`, { domain: MAIL_DOMAIN, selector: 'dkim', private_key: dkimPem });
  fs.writeFileSync(path.join(dir, `${prefix.replace(/\//g, '_')}-operators.json`), JSON.stringify({ alice: alice.privateKey, bob: bob.privateKey }), { mode: 0o600 });
  return {
    paths: { operatorKeys: `${base}/ssh-operators`, smtpRelay: `${base}/smtp-relay`, mailbox: `${base}/mailbox`, dkim: `${base}/dkim` },
    secrets: [
      { name: 'relay password', value: over.relayPassword ?? relay.password },
      { name: 'mailbox password', value: mailbox.password },
      { name: 'DKIM private key', value: dkimPem.split('\n').filter((l) => l && !l.startsWith('-----'))[3] ?? dkimPem },
      { name: 'alice private key', value: alice.privateKey.split('\n')[2] ?? alice.privateKey },
      { name: 'bob private key', value: bob.privateKey.split('\n')[2] ?? bob.privateKey },
    ],
    mailbox,
  };
}

/**
 * Puts new-vps back to the baseline of a freshly provisioned VPS with MailU's files copied over:
 * stale relay password, a throwaway DKIM key, a stale mailbox password, the provider's key plus a
 * departed operator's key in root's authorized_keys. Returns the departed key's line.
 */
export function resetNewHost(hosts: HostsInfo, mailboxEmail: string): string {
  const departed = newSshKey('carol@ops-departed');
  const throwaway = crypto.generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
  const h = 'new-vps';
  runInHost(h, ['sh', '-c', 'rm -rf /mailu/.vaultdr-previous /root/.ssh/authorized_keys.vaultdr-previous-*; mkdir -p /mailu/dkim /root/.ssh; chmod 700 /root/.ssh; cat > /root/.ssh/authorized_keys; chmod 600 /root/.ssh/authorized_keys'], { input: `${hosts.provisionPublicKey}\n${departed.line}\n` });
  // A new-vps never configured (fresh hosts) gets the provider's mailu.env first; either way the relay password is stale.
  const env = runInHost(h, ['sh', '-c', 'cat /mailu/mailu.env 2>/dev/null || true']) || mailuEnvFile('stale-from-the-old-provider', relayCredentials().username);
  const stale = env
    .split('\n')
    .map((l) => (l.startsWith('RELAYPASSWORD=') ? 'RELAYPASSWORD=stale-from-the-old-provider' : l))
    .join('\n');
  runInHost(h, ['sh', '-c', 'umask 077; cat > /mailu/mailu.env'], { input: stale });
  runInHost(h, ['sh', '-c', `umask 077; cat > /mailu/dkim/${MAIL_DOMAIN}.dkim.key`], { input: throwaway });
  runInHost(h, ['/opt/mailu-local/passwd', mailboxEmail], { input: `${crypto.randomBytes(12).toString('base64url')}\n` });
  runInHost(h, ['/opt/mailu-local/apply', 'start']);
  return departed.line;
}

/** Everything a migration run on the local hosts needs, on top of the stack's config. */
export async function prepareMigration(base: Config, opts: { prefix?: string; over?: SecretOverrides; reset?: boolean } = {}): Promise<MigrationFixture> {
  // Hosts already up are used as they are (`up` re-copies the host tools and restarts services).
  const up = fs.existsSync(path.join(hostsDir(), 'hosts.json')) && (await tcpOpen(NETWORK.hosts['new-vps'], 22)) && (await tcpOpen(NETWORK.hosts['old-vps'], 22));
  if (!up) await hostsUp();
  const hosts = hostsInfo();
  // The zone publishes the fixture DKIM key (another test may have planted a mismatch), SPF and DMARC defaults.
  await publishZone({ domain: MAIL_DOMAIN, dkimPublicKey: dkimPublicKeyOf(fs.readFileSync(hosts.dkimKeyFile, 'utf8')) });
  const dir = path.join(stackDir(), 'migration');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const role = await migrationAppRole(dir);
  const seeded = await seedMigrationSecrets(opts.prefix ?? 'migration', hosts, dir, opts.over);
  const departedKeyLine = opts.reset === false ? '' : resetNewHost(hosts, seeded.mailbox.email);
  const n = hosts.hosts['new-vps'];
  const o = hosts.hosts['old-vps'];
  const cfg: Config = {
    ...base,
    migration: {
      ...base.migration,
      roleIdFile: role.roleIdFile,
      secretIdFile: role.secretIdFile,
      // The provider's provisioning key is the worker's migration key here (how a worker first gets in).
      sshKeyFile: hosts.provisionKey,
      kvMount: 'secret',
      secrets: seeded.paths,
      hosts: { new: { address: n.address, port: n.sshPort, user: 'root', hostKeySha256: n.hostKeyFingerprint }, old: { address: o.address, port: o.sshPort, user: 'root', hostKeySha256: o.hostKeyFingerprint } },
      mailHost: { ...base.migration.mailHost, adapter: 'postfix', root: '/mailu', caFile: path.join(n.root, 'mailu', 'certs', 'cert.pem'), tlsServerName: `mail.${MAIL_DOMAIN}`, webmailUrl: `http://${n.address}/`, submission: `${n.address}:587`, imap: `${n.address}:143` },
      dnsResolver: `${hosts.dns.server}:${hosts.dns.port}`,
      relayInboxUrl: hosts.relay.httpUrl,
      relayCaFile: hosts.relay.caFile,
      mailFromIp: NETWORK.hosts['new-vps'],
    },
  };
  return {
    cfg,
    hosts,
    secrets: [...seeded.secrets, { name: 'migration AppRole secret-id', value: role.secretId }, { name: 'migration SSH private key', value: fs.readFileSync(hosts.provisionKey, 'utf8').split('\n')[2] ?? '' }],
    departedKeyLine,
    mailbox: { email: seeded.mailbox.email },
  };
}

/**
 * A worker config file for a separate worker process: the stack's config with absolute paths, plus
 * the fixture's migration section (0600; it names secret files, never holds a value).
 */
export function writeWorkerConfigFile(dir: string, migration: Config['migration'], extra: Partial<Config> = {}): string {
  const stackCfg = JSON.parse(fs.readFileSync(path.join(stackDir(), 'vaultdr.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  const fileKeys = ['roleIdFile', 'secretIdFile', 'tokenFile', 'credentialsFile', 'adminCredentialsFile', 'recipientsFile', 'validationKeyFile', 'unsealSharesFile', 'validatorRoleIdFile', 'validatorSecretIdFile', 'keysFile', 'tokensFile', 'shareIntakeTokensFile', 'stagingDir'];
  for (const section of Object.values(stackCfg)) {
    for (const k of fileKeys) if (section && typeof section[k] === 'string' && !path.isAbsolute(section[k] as string)) section[k] = path.join(stackDir(), section[k] as string);
  }
  const file = path.join(dir, 'vaultdr.json');
  fs.writeFileSync(file, JSON.stringify({ ...stackCfg, migration, ...extra }), { mode: 0o600 });
  return file;
}
