// The local VPS hosts of the migration (issue 14 §2): `old-vps` and `new-vps`, each a network
// namespace with its own address on a bridge (the root namespace — the worker — is 10.231.0.1),
// a UTS namespace (its own hostname) and a persistent mount namespace in which the host's own
// file tree is bind-mounted over the paths a VPS has: /root (so /root/.ssh/authorized_keys is the
// host's), /etc/ssh, /etc/postfix, /etc/dovecot, /etc/opendkim, /etc/roundcube, /etc/resolv.conf,
// /run, /var/log, /var/spool/postfix, /var/lib/postfix, /var/mail, /mailu (MailU's $ROOT) and
// /opt/mailu-local (the render step). Everything else — /usr, the Debian packages, users and
// groups, the kernel — is the machine's, shared by both hosts (docs/runbooks/vps-migration-hosts.md).
//
// Each host runs Debian's OpenSSH server (root login by key only, its own host key). The hosts'
// mail daemons (Postfix, Dovecot, OpenDKIM, Roundcube behind PHP's server) are started by
// /opt/mailu-local/apply on the host, from MailU's own files; `up` runs it on new-vps when
// /mailu/mailu.env exists there. On the root side: a Mailpit relay that requires SMTP AUTH over
// STARTTLS (the relay credentials the migration recovers), and NSD serving the zone the tests
// control (DKIM TXT, SPF, DMARC).
//
// `up` is idempotent; `down` stops every process inside the hosts' namespaces and the root-side
// servers, and removes the namespaces (the hosts' files stay, so host keys stay stable).
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as dns from 'node:dns';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { PROJECT_ROOT, stackDir } from './stack';
import { toolPaths } from './tools';

export type HostName = 'old-vps' | 'new-vps';
export const HOST_NAMES: HostName[] = ['old-vps', 'new-vps'];

export const NETWORK = {
  bridge: 'vdr-hosts0',
  gateway: '10.231.0.1',
  prefix: 24,
  hosts: { 'old-vps': '10.231.0.2', 'new-vps': '10.231.0.3' } as Record<HostName, string>,
} as const;

/** Root-side servers, all bound to the bridge address (no clash with the stack's 127.0.0.1 ports). */
export const ROOT_SIDE = {
  relaySmtp: { host: NETWORK.gateway, port: 587 },
  relayHttp: { host: NETWORK.gateway, port: 8025 },
  dns: { host: NETWORK.gateway, port: 53 },
} as const;

/** The mail domain the hosts and the zone use by default (a reserved TLD: never leaves this machine). */
export const MAIL_DOMAIN = 'vaultdr.test';
export const DKIM_SELECTOR = 'dkim';

/** Paths on a host the migration's plain-Debian MailU adapter uses over SSH (docs/runbooks/vps-migration-hosts.md). */
export const HOST_PATHS = {
  /** MailU's $ROOT: mailu.env, dkim/<domain>.<selector>.key, data/, certs/, webmail/. */
  mailuRoot: '/mailu',
  mailuEnv: '/mailu/mailu.env',
  dkimKey: (domain: string, selector = DKIM_SELECTOR) => `/mailu/dkim/${domain}.${selector}.key`,
  /** Render MailU's files into the daemons' configs and (re)start them; `status` prints JSON. */
  apply: '/opt/mailu-local/apply',
  /** `passwd EMAIL` with the password on stdin. */
  passwd: '/opt/mailu-local/passwd',
  authorizedKeys: '/root/.ssh/authorized_keys',
} as const;

/** Ports the new VPS serves once /opt/mailu-local/apply has run. */
export const HOST_PORTS = { ssh: 22, submission: 587, smtps: 465, imap: 143, imaps: 993, webmail: 80 } as const;

export class HostsError extends Error {
  override name = 'HostsError';
}

export function hostsDir(): string {
  return path.resolve(process.env.VAULTDR_HOSTS_DIR ?? path.join(stackDir(), 'hosts'));
}

/** Where the persistent mount and UTS namespaces are bound (a private tmpfs mount, gone at reboot like netns). */
const NS_DIR = '/run/vaultdr-hosts';
/** Which hosts dir the namespaces in NS_DIR bind (written by up, removed by down). */
const NS_OWNER = path.join(NS_DIR, 'owner');

const netnsName = (h: HostName) => `vdr-${h}`;
const vethName = (h: HostName) => `vdr-${h === 'old-vps' ? 'old' : 'new'}`;
const hostRoot = (h: HostName) => path.join(hostsDir(), h, 'fs');
const mntNs = (h: HostName) => path.join(NS_DIR, `${h}.mnt`);
const utsNs = (h: HostName) => path.join(NS_DIR, `${h}.uts`);

/** Paths inside a host bound from its own tree (`fs/<path>`); directories unless listed in FILE_BINDS. */
const DIR_BINDS = [
  '/root', '/etc/ssh', '/etc/postfix', '/etc/dovecot', '/etc/opendkim', '/etc/roundcube', '/run', '/var/log',
  '/var/spool/postfix', '/var/lib/postfix', '/var/mail', '/mailu', '/opt/mailu-local',
];
const FILE_BINDS = ['/etc/resolv.conf', '/etc/hostname'];
/** Package config dirs copied once into a fresh host as its "installed packages" baseline. */
const PACKAGE_CONFIG = ['/etc/postfix', '/etc/dovecot', '/etc/roundcube'];
/** The render step and its helpers, copied into /opt/mailu-local on every `up` (source of truth: this repo). */
const HOST_TOOLS_SRC = path.join(PROJECT_ROOT, 'stack', 'mailhost-files');

/** Debian executables the hosts need (scripts/ensure-deps.sh --mail-hosts installs them). */
const REQUIRED = ['/usr/sbin/sshd', '/usr/sbin/postfix', '/usr/sbin/dovecot', '/usr/sbin/opendkim', '/usr/sbin/nsd', '/usr/bin/php', '/usr/share/roundcube/index.php', '/usr/bin/python3', '/usr/bin/openssl'];

export interface HostInfo {
  name: HostName;
  address: string;
  sshPort: number;
  /** `SHA256:<base64>` of the host's ed25519 key, as `ssh-keygen -l` prints it. */
  hostKeyFingerprint: string;
  /** The OpenSSH public line of the host key. */
  hostKey: string;
  netns: string;
  /** The host's file tree on the machine (what it sees as /). */
  root: string;
}

export interface HostsInfo {
  hosts: Record<HostName, HostInfo>;
  /** Private key (OpenSSH format) installed for root on both hosts at provisioning, like a provider's key. */
  provisionKey: string;
  provisionPublicKey: string;
  relay: { smtpHost: string; smtpPort: number; httpUrl: string; credentialsFile: string; caFile: string };
  dns: { server: string; port: number; zoneFile: string; domain: string };
  /** A fixture DKIM key (PKCS#8, RSA-2048, MailU's format) whose public half the zone publishes at provisioning. */
  dkimKeyFile: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): string {
  const r = spawnSync(cmd, args, { input: opts.input, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.error) throw new HostsError(`\`${cmd} ${args.join(' ')}\`: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFail) {
    throw new HostsError(`\`${cmd} ${args.join(' ')}\` exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join('\n')}`);
  }
  return r.stdout;
}

function writeFile(file: string, content: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, content, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

/** Command line to run argv inside a host: its network, mount and UTS namespaces. */
export function inHostArgv(h: HostName, argv: string[]): string[] {
  return ['nsenter', `--net=/run/netns/${netnsName(h)}`, `--mount=${mntNs(h)}`, `--uts=${utsNs(h)}`, '--', ...argv];
}

/** Runs a command inside a host (as root, as the host's init would); returns stdout. */
export function runInHost(h: HostName, argv: string[], opts: { input?: string; allowFail?: boolean } = {}): string {
  const [cmd, ...args] = inHostArgv(h, ['env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8', ...argv]);
  return run(cmd!, args, opts);
}

function isMountPoint(p: string): boolean {
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return mounts.split('\n').some((l) => l.split(' ')[4] === p);
}

function netnsExists(h: HostName): boolean {
  return run('ip', ['netns', 'list']).split('\n').some((l) => l.split(' ')[0] === netnsName(h));
}

function linkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', name], { stdio: 'ignore' }).status === 0;
}

// ---------------------------------------------------------------------------------------------
// Lock: one `up`/`down` at a time on the machine (the namespaces and addresses are machine-wide).

async function withHostsLock<T>(fn: () => Promise<T>): Promise<T> {
  const release = await pidLock(path.join(hostsDir(), '.lock'), 5 * 60_000);
  try {
    return await fn();
  } finally {
    release();
  }
}

/**
 * Exclusive use of the hosts by one test file at a time (they are machine-wide and tests change
 * new-vps): call in before(), release in after(). A holder that died frees the lease.
 */
export async function acquireHostsLease(waitMs = 10 * 60_000): Promise<() => void> {
  return pidLock(path.join(hostsDir(), '.lease'), waitMs);
}

async function pidLock(lock: string, waitMs: number): Promise<() => void> {
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch {
      const holder = Number(fs.readFileSync(lock, 'utf8').trim() || '0');
      let alive = false;
      try {
        if (holder > 0) {
          process.kill(holder, 0);
          alive = true;
        }
      } catch {
        alive = false;
      }
      if (!alive) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new HostsError(`hosts: ${lock} held by pid ${holder} for ${waitMs / 1000}s`);
      await sleep(200);
    }
  }
  return () => {
    try {
      if (fs.readFileSync(lock, 'utf8').trim() === String(process.pid)) fs.rmSync(lock, { force: true });
    } catch {
      // already gone
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Network

function ensureNetwork(): void {
  if (!linkExists(NETWORK.bridge)) {
    run('ip', ['link', 'add', NETWORK.bridge, 'type', 'bridge']);
  }
  const addrs = run('ip', ['-o', '-4', 'addr', 'show', 'dev', NETWORK.bridge]);
  if (!addrs.includes(`${NETWORK.gateway}/`)) run('ip', ['addr', 'add', `${NETWORK.gateway}/${NETWORK.prefix}`, 'dev', NETWORK.bridge]);
  run('ip', ['link', 'set', NETWORK.bridge, 'up']);
  for (const h of HOST_NAMES) {
    if (!netnsExists(h)) run('ip', ['netns', 'add', netnsName(h)]);
    const ns = netnsName(h);
    if (!linkExists(vethName(h))) {
      run('ip', ['link', 'add', vethName(h), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    }
    run('ip', ['link', 'set', vethName(h), 'master', NETWORK.bridge, 'up']);
    const inner = run('ip', ['-n', ns, '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    if (!inner.includes(`${NETWORK.hosts[h]}/`)) run('ip', ['-n', ns, 'addr', 'add', `${NETWORK.hosts[h]}/${NETWORK.prefix}`, 'dev', 'eth0']);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    if (!run('ip', ['-n', ns, 'route', 'show', 'default']).includes(NETWORK.gateway)) {
      run('ip', ['-n', ns, 'route', 'add', 'default', 'via', NETWORK.gateway]);
    }
    // Services on the host bind low ports as their own users (PHP's server as www-data on :80).
    run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_unprivileged_port_start=0']);
  }
}

// ---------------------------------------------------------------------------------------------
// Host file trees and namespaces

function ensureKeyPair(file: string, comment: string): void {
  if (fs.existsSync(file) && fs.existsSync(`${file}.pub`)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.rmSync(file, { force: true });
  fs.rmSync(`${file}.pub`, { force: true });
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

export function fingerprintOf(pubFile: string): string {
  // `256 SHA256:abc... comment (ED25519)`
  return run('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubFile]).split(' ')[1]!;
}

function sshdConfig(h: HostName): string {
  return [
    '# vault-dr local host: Debian OpenSSH, root by key only (written by stack/mailhosts.ts)',
    `ListenAddress ${NETWORK.hosts[h]}:${HOST_PORTS.ssh}`,
    'HostKey /etc/ssh/ssh_host_ed25519_key',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AuthorizedKeysFile .ssh/authorized_keys',
    'StrictModes yes',
    // No PAM session stack here (pam_loginuid needs a real login session); key checks are sshd's own.
    'UsePAM no',
    'PidFile /run/sshd.pid',
    'LogLevel VERBOSE',
    'Subsystem sftp /usr/lib/openssh/sftp-server',
    'AcceptEnv LANG LC_*',
    '',
  ].join('\n');
}

function provisionHost(h: HostName, provisionPub: string): void {
  const root = hostRoot(h);
  for (const d of DIR_BINDS) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.chmodSync(path.join(root, 'root'), 0o700);
  // Baseline package configuration, as the packages installed it (once: the host owns it afterwards).
  for (const d of PACKAGE_CONFIG) {
    const marker = path.join(root, d, '.vaultdr-baseline');
    if (fs.existsSync(marker) || !fs.existsSync(d)) continue;
    run('cp', ['-a', `${d}/.`, path.join(root, d)]);
    fs.writeFileSync(marker, `copied from the machine's ${d}\n`);
  }
  ensureKeyPair(path.join(root, 'etc/ssh/ssh_host_ed25519_key'), `root@${h}`);
  writeFile(path.join(root, 'etc/ssh/sshd_config'), sshdConfig(h));
  const ssh = path.join(root, 'root/.ssh');
  fs.mkdirSync(ssh, { recursive: true, mode: 0o700 });
  fs.chmodSync(ssh, 0o700);
  const ak = path.join(ssh, 'authorized_keys');
  if (!fs.existsSync(ak)) writeFile(ak, `${provisionPub.trim()}\n`, 0o600);
  fs.mkdirSync(path.join(root, 'run/sshd'), { recursive: true, mode: 0o755 });
  writeFile(path.join(root, 'etc/resolv.conf'), `# the zone server on the root side (stack/mailhosts.ts)\nnameserver ${ROOT_SIDE.dns.host}\n`);
  writeFile(path.join(root, 'etc/hostname'), `${h}\n`);
  // The render step: always the repo's version.
  const tools = path.join(root, 'opt/mailu-local');
  for (const f of fs.readdirSync(HOST_TOOLS_SRC).filter((n) => fs.statSync(path.join(HOST_TOOLS_SRC, n)).isFile() && n !== 'README')) {
    const src = path.join(HOST_TOOLS_SRC, f);
    writeFile(path.join(tools, f), fs.readFileSync(src, 'utf8'), fs.statSync(src).mode & 0o777);
  }
  // Mount points on the machine for paths a Debian machine lacks (empty directories / files).
  for (const d of DIR_BINDS) fs.mkdirSync(d, { recursive: true });
  for (const f of FILE_BINDS) if (!fs.existsSync(f)) fs.writeFileSync(f, '');
}

function ensureNamespaces(h: HostName): void {
  fs.mkdirSync(NS_DIR, { recursive: true });
  if (!isMountPoint(NS_DIR)) {
    run('mount', ['--bind', NS_DIR, NS_DIR]);
    run('mount', ['--make-private', NS_DIR]);
  }
  if (!isMountPoint(utsNs(h))) {
    fs.writeFileSync(utsNs(h), '');
    run('unshare', [`--uts=${utsNs(h)}`, 'hostname', h]);
  }
  if (isMountPoint(mntNs(h))) return;
  fs.writeFileSync(mntNs(h), '');
  run('unshare', [`--mount=${mntNs(h)}`, '--propagation', 'private', 'true']);
  const root = hostRoot(h);
  const binds = [...DIR_BINDS, ...FILE_BINDS].map((p) => `mount --bind '${path.join(root, p)}' '${p}'`).join(' && ');
  run('nsenter', [`--mount=${mntNs(h)}`, '--', 'sh', '-c', binds]);
}

function hostPid(h: HostName, pidFileInHost: string): number | undefined {
  const file = path.join(hostRoot(h), pidFileInHost);
  if (!fs.existsSync(file)) return undefined;
  const pid = Number(fs.readFileSync(file, 'utf8').trim());
  if (!(pid > 0)) return undefined;
  try {
    // Only a process in this host's network namespace counts (guards against a recycled pid).
    return fs.readlinkSync(`/proc/${pid}/ns/net`) === netnsInode(h) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function netnsInode(h: HostName): string {
  const st = fs.statSync(`/run/netns/${netnsName(h)}`);
  return `net:[${st.ino}]`;
}

/** Every process inside a host's network namespace (what `down` stops). */
function pidsInHost(h: HostName): number[] {
  if (!netnsExists(h)) return [];
  const want = netnsInode(h);
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readlinkSync(`/proc/${e}/ns/net`) === want) pids.push(Number(e));
    } catch {
      // gone
    }
  }
  return pids;
}

export function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Resolves with the server's first line (`SSH-2.0-OpenSSH_9.2p1 Debian-...`) or undefined. */
function sshBanner(host: string, port: number, timeoutMs = 1500): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let buf = '';
    const done = (v: string | undefined) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(undefined));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\n')) done(buf.split('\n')[0]!.trim());
    });
    s.once('error', () => done(undefined));
  });
}

async function ensureSshd(h: HostName): Promise<'started' | 'already running'> {
  if (hostPid(h, 'run/sshd.pid') !== undefined && (await sshBanner(NETWORK.hosts[h], HOST_PORTS.ssh))) return 'already running';
  runInHost(h, ['/usr/sbin/sshd', '-t', '-f', '/etc/ssh/sshd_config']);
  runInHost(h, ['/usr/sbin/sshd', '-f', '/etc/ssh/sshd_config', '-E', '/var/log/sshd.log']);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await sshBanner(NETWORK.hosts[h], HOST_PORTS.ssh)) return 'started';
    await sleep(100);
  }
  throw new HostsError(`${h}: sshd not answering on ${NETWORK.hosts[h]}:${HOST_PORTS.ssh}; log ${path.join(hostRoot(h), 'var/log/sshd.log')}`);
}

// ---------------------------------------------------------------------------------------------
// Root side: the relay Mailpit (SMTP AUTH over STARTTLS) and NSD.

const relayDir = () => path.join(hostsDir(), 'relay');
const dnsDir = () => path.join(hostsDir(), 'dns');

export interface RelayCredentials {
  username: string;
  password: string;
}

function ensureRelayFiles(): void {
  const dir = relayDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const creds = path.join(dir, 'credentials.json');
  if (!fs.existsSync(creds)) {
    const c: RelayCredentials = { username: 'relay@vaultdr.test', password: crypto.randomBytes(18).toString('base64url') };
    writeFile(creds, JSON.stringify(c, null, 2) + '\n', 0o600);
  }
  const c = JSON.parse(fs.readFileSync(creds, 'utf8')) as RelayCredentials;
  // Mailpit's auth file: `user:password` lines (plain text accepted).
  writeFile(path.join(dir, 'smtp-auth'), `${c.username}:${c.password}\n`, 0o600);
  if (!fs.existsSync(path.join(dir, 'cert.pem'))) {
    run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', `/CN=relay.${MAIL_DOMAIN}`,
      '-addext', `subjectAltName=IP:${NETWORK.gateway},DNS:relay.${MAIL_DOMAIN}`,
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ]);
    fs.chmodSync(path.join(dir, 'key.pem'), 0o600);
  }
}

/** The relay credentials Mailpit requires (the test seeds Vault with them; the migration recovers them). */
/** A MailU `mailu.env` for new-vps as its provider would have it: relaying through the root-side relay. */
export function mailuEnvFile(relayPassword: string, relayUser: string): string {
  return [
    `DOMAIN=${MAIL_DOMAIN}`,
    `HOSTNAMES=mail.${MAIL_DOMAIN}`,
    `SECRET_KEY=${crypto.randomBytes(16).toString('hex')}`,
    `RELAYHOST=[${NETWORK.gateway}]:587`,
    `RELAYUSER=${relayUser}`,
    `RELAYPASSWORD=${relayPassword}`,
    'OUTBOUND_TLS_LEVEL=encrypt',
    `DKIM_SELECTOR=${DKIM_SELECTOR}`,
    'WEBMAIL=roundcube',
    '',
  ].join('\n');
}

export function relayCredentials(): RelayCredentials {
  return JSON.parse(fs.readFileSync(path.join(relayDir(), 'credentials.json'), 'utf8')) as RelayCredentials;
}

/**
 * Plays the relay provider issuing and revoking logins: the relay Mailpit accepts the harness's own
 * login plus `extra` (one password per user), and is restarted to read them (Mailpit reads its
 * auth file at start). `setRelayLogins([])` puts the relay back as `up` leaves it. Hold the lease.
 */
export async function setRelayLogins(extra: RelayCredentials[]): Promise<void> {
  const c = relayCredentials();
  writeFile(path.join(relayDir(), 'smtp-auth'), [c, ...extra].map((l) => `${l.username}:${l.password}\n`).join(''), 0o600);
  await stopServer(relayServer);
  await startServer(relayServer);
}

interface RootServer {
  name: string;
  dir: () => string;
  binary: string;
  argv: () => string[];
  healthy: () => Promise<boolean>;
}

const relayServer: RootServer = {
  name: 'relay-mailpit',
  dir: relayDir,
  binary: 'mailpit',
  argv: () => [
    toolPaths().mailpit,
    '--smtp', `${ROOT_SIDE.relaySmtp.host}:${ROOT_SIDE.relaySmtp.port}`,
    '--listen', `${ROOT_SIDE.relayHttp.host}:${ROOT_SIDE.relayHttp.port}`,
    '--database', path.join(relayDir(), 'mailpit.db'),
    '--smtp-auth-file', path.join(relayDir(), 'smtp-auth'),
    '--smtp-tls-cert', path.join(relayDir(), 'cert.pem'),
    '--smtp-tls-key', path.join(relayDir(), 'key.pem'),
    '--smtp-require-starttls',
    '--smtp-disable-rdns',
  ],
  healthy: async () => {
    try {
      const r = await fetch(`http://${ROOT_SIDE.relayHttp.host}:${ROOT_SIDE.relayHttp.port}/api/v1/info`, { signal: AbortSignal.timeout(2000) });
      return r.ok && (await tcpOpen(ROOT_SIDE.relaySmtp.host, ROOT_SIDE.relaySmtp.port));
    } catch {
      return false;
    }
  },
};

const dnsServer: RootServer = {
  name: 'nsd',
  dir: dnsDir,
  binary: 'nsd',
  argv: () => ['/usr/sbin/nsd', '-d', '-c', path.join(dnsDir(), 'nsd.conf')],
  healthy: async () => {
    try {
      const r = new dns.promises.Resolver({ timeout: 1000, tries: 1 });
      r.setServers([`${ROOT_SIDE.dns.host}:${ROOT_SIDE.dns.port}`]);
      const soa = await r.resolveSoa(MAIL_DOMAIN);
      return soa.nsname.length > 0;
    } catch {
      return false;
    }
  },
};

function serverPid(s: RootServer): number | undefined {
  const file = path.join(s.dir(), `${s.name}.pid`);
  if (!fs.existsSync(file)) return undefined;
  const pid = Number(fs.readFileSync(file, 'utf8').trim());
  try {
    process.kill(pid, 0);
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(s.binary) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function startServer(s: RootServer): Promise<'started' | 'already running'> {
  if (serverPid(s) !== undefined && (await s.healthy())) return 'already running';
  if (serverPid(s) === undefined && (await s.healthy())) {
    throw new HostsError(`${s.name}: its address is served by a process this harness did not start`);
  }
  let pid = serverPid(s);
  const log = path.join(s.dir(), `${s.name}.log`);
  if (pid === undefined) {
    const [cmd, ...args] = s.argv();
    const out = fs.openSync(log, 'a');
    const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out], cwd: s.dir() });
    fs.closeSync(out);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new HostsError(`${s.name}: cannot start ${cmd}: ${err.message}`)));
    });
    pid = child.pid!;
    child.unref();
    fs.writeFileSync(path.join(s.dir(), `${s.name}.pid`), String(pid));
  }
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (serverPid(s) === undefined) throw new HostsError(`${s.name}: exited during start-up; log ${log}:\n${tail(log)}`);
    if (await s.healthy()) return 'started';
    await sleep(150);
  }
  throw new HostsError(`${s.name}: not healthy after 20s; log ${log}:\n${tail(log)}`);
}

async function stopServer(s: RootServer): Promise<'stopped' | 'not running'> {
  const pid = serverPid(s);
  fs.rmSync(path.join(s.dir(), `${s.name}.pid`), { force: true });
  if (pid === undefined) return 'not running';
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return 'stopped';
    }
    await sleep(100);
  }
  process.kill(pid, 'SIGKILL');
  return 'stopped';
}

function tail(file: string, lines = 8): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------------------------
// DNS zone (NSD)

export interface ZoneSpec {
  domain: string;
  /** base64 SubjectPublicKeyInfo published at `<selector>._domainkey.<domain>`; omitted = no DKIM record. */
  dkimPublicKey?: string;
  selector?: string;
  /** SPF record text; default allows new-vps's address. */
  spf?: string;
  /** DMARC record text; default MailU's `v=DMARC1; p=reject; adkim=s; aspf=s`. */
  dmarc?: string;
}

/** TXT strings are at most 255 characters: the DKIM record is split into quoted chunks. */
function txt(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 250) parts.push(`"${value.slice(i, i + 250)}"`);
  return `( ${parts.join(' ')} )`;
}

export function renderZone(z: ZoneSpec, serial = Math.floor(Date.now() / 1000)): string {
  const d = z.domain;
  const lines = [
    `$ORIGIN ${d}.`,
    '$TTL 60',
    `@ IN SOA ns1.${d}. hostmaster.${d}. ( ${serial} 3600 600 86400 60 )`,
    `@ IN NS ns1.${d}.`,
    `ns1 IN A ${NETWORK.gateway}`,
    `@ IN MX 10 mail.${d}.`,
    `mail IN A ${NETWORK.hosts['new-vps']}`,
    `old-vps IN A ${NETWORK.hosts['old-vps']}`,
    `new-vps IN A ${NETWORK.hosts['new-vps']}`,
    `relay IN A ${NETWORK.gateway}`,
    `@ IN TXT ${txt(z.spf ?? `v=spf1 ip4:${NETWORK.hosts['new-vps']} -all`)}`,
    `_dmarc IN TXT ${txt(z.dmarc ?? 'v=DMARC1; p=reject; adkim=s; aspf=s')}`,
  ];
  if (z.dkimPublicKey) lines.push(`${z.selector ?? DKIM_SELECTOR}._domainkey IN TXT ${txt(`v=DKIM1; k=rsa; p=${z.dkimPublicKey}`)}`);
  return lines.join('\n') + '\n';
}

function zoneFile(): string {
  return path.join(dnsDir(), `${MAIL_DOMAIN}.zone`);
}

function nsdConf(): string {
  const d = dnsDir();
  return [
    'server:',
    `  ip-address: ${ROOT_SIDE.dns.host}@${ROOT_SIDE.dns.port}`,
    '  do-ip6: no',
    '  username: ""',
    '  chroot: ""',
    '  database: ""',
    '  server-count: 1',
    '  verbosity: 1',
    `  zonesdir: "${d}"`,
    `  zonelistfile: "${path.join(d, 'zone.list')}"`,
    `  xfrdfile: "${path.join(d, 'xfrd.state')}"`,
    `  xfrdir: "${path.join(d, 'xfr')}"`,
    `  pidfile: "${path.join(d, 'nsd.real.pid')}"`,
    `  logfile: "${path.join(d, 'nsd.log')}"`,
    'remote-control:',
    '  control-enable: no',
    'zone:',
    `  name: "${MAIL_DOMAIN}"`,
    `  zonefile: "${zoneFile()}"`,
    '',
  ].join('\n');
}

/** Publishes a zone (the tests control it: a mismatching DKIM record is one call) and waits until NSD serves it. */
export async function publishZone(z: ZoneSpec): Promise<void> {
  if (z.domain !== MAIL_DOMAIN) throw new HostsError(`publishZone: NSD serves ${MAIL_DOMAIN} only, not ${z.domain}`);
  const serial = Math.max(Math.floor(Date.now() / 1000), zoneSerial() + 1);
  writeFile(zoneFile(), renderZone(z, serial));
  const pid = serverPid(dnsServer);
  if (pid === undefined) return; // `up` starts NSD with this file
  // NSD re-reads changed zone files on SIGHUP.
  process.kill(pid, 'SIGHUP');
  const deadline = Date.now() + 10_000;
  const r = hostsResolver();
  while (Date.now() < deadline) {
    try {
      const soa = await r.resolveSoa(MAIL_DOMAIN);
      if (soa.serial === serial) return;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new HostsError(`nsd did not serve zone serial ${serial} within 10s; log ${path.join(dnsDir(), 'nsd.log')}`);
}

function zoneSerial(): number {
  try {
    const m = /SOA \S+ \S+ \( (\d+)/.exec(fs.readFileSync(zoneFile(), 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** A resolver that asks the hosts' zone server only (for mailauth's `resolver` and the DKIM/DNS comparison). */
export function hostsResolver(): dns.promises.Resolver {
  const r = new dns.promises.Resolver({ timeout: 2000, tries: 2 });
  r.setServers([`${ROOT_SIDE.dns.host}:${ROOT_SIDE.dns.port}`]);
  return r;
}

/** mailauth's `resolver` option: `(name, rrtype) => records`, asking the hosts' zone server. */
export function mailauthResolver(): (name: string, rr: string) => Promise<unknown> {
  const r = hostsResolver();
  return (name: string, rr: string) => r.resolve(name, rr as 'TXT');
}

// ---------------------------------------------------------------------------------------------
// Fixture DKIM key (MailU's format) published at provisioning.

function ensureFixtureDkim(): { keyFile: string; publicKey: string } {
  const keyFile = path.join(hostsDir(), 'fixture', `${MAIL_DOMAIN}.${DKIM_SELECTOR}.key`);
  if (!fs.existsSync(keyFile)) {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    writeFile(keyFile, privateKey, 0o600);
  }
  return { keyFile, publicKey: dkimPublicKeyOf(fs.readFileSync(keyFile, 'utf8')) };
}

/** The DNS `p=` value of a PEM private key: base64 DER SubjectPublicKeyInfo (what MailU publishes). */
export function dkimPublicKeyOf(privatePem: string): string {
  return crypto.createPublicKey(privatePem).export({ type: 'spki', format: 'der' }).toString('base64');
}

// ---------------------------------------------------------------------------------------------
// up / down / status

export interface HostsUpResult {
  seconds: number;
  steps: string[];
  info: HostsInfo;
}

function missingPackages(): string[] {
  return REQUIRED.filter((f) => !fs.existsSync(f));
}

export async function hostsUp(log: (l: string) => void = () => {}): Promise<HostsUpResult> {
  const t0 = Date.now();
  if (process.getuid?.() !== 0) throw new HostsError('hosts: network and mount namespaces need root');
  const missing = missingPackages();
  if (missing.length) throw new HostsError(`hosts: missing ${missing.join(', ')}; run \`bash scripts/ensure-deps.sh --mail-hosts\``);
  if (!fs.existsSync(toolPaths().mailpit)) throw new HostsError(`hosts: Mailpit not installed at ${toolPaths().mailpit}; run \`npm run stack:up\` once`);
  return withHostsLock(async () => {
    const steps: string[] = [];
    const step = (s: string) => {
      steps.push(s);
      log(s);
    };
    fs.mkdirSync(hostsDir(), { recursive: true });
    await takeOverNamespaces(step);
    const provisionKey = path.join(hostsDir(), 'keys', 'provision_ed25519');
    ensureKeyPair(provisionKey, 'vault-dr-hosts-provisioning');
    const provisionPub = fs.readFileSync(`${provisionKey}.pub`, 'utf8');
    ensureNetwork();
    step(`network: bridge ${NETWORK.bridge} ${NETWORK.gateway}/${NETWORK.prefix}`);

    // Root side first: the hosts resolve through NSD and relay to Mailpit.
    fs.mkdirSync(dnsDir(), { recursive: true });
    fs.mkdirSync(path.join(dnsDir(), 'xfr'), { recursive: true });
    writeFile(path.join(dnsDir(), 'nsd.conf'), nsdConf());
    const dkim = ensureFixtureDkim();
    if (!fs.existsSync(zoneFile())) writeFile(zoneFile(), renderZone({ domain: MAIL_DOMAIN, dkimPublicKey: dkim.publicKey }));
    step(`nsd ${ROOT_SIDE.dns.host}:${ROOT_SIDE.dns.port}: ${await startServer(dnsServer)}`);
    ensureRelayFiles();
    step(`relay mailpit smtp ${ROOT_SIDE.relaySmtp.host}:${ROOT_SIDE.relaySmtp.port} (AUTH + STARTTLS): ${await startServer(relayServer)}`);

    for (const h of HOST_NAMES) {
      provisionHost(h, provisionPub);
      ensureNamespaces(h);
      fs.writeFileSync(NS_OWNER, hostsDir());
      step(`${h} ${NETWORK.hosts[h]}: sshd ${await ensureSshd(h)}; host key ${fingerprintOf(path.join(hostRoot(h), 'etc/ssh/ssh_host_ed25519_key.pub'))}`);
      if (fs.existsSync(path.join(hostRoot(h), 'mailu/mailu.env'))) {
        // A configured host (MailU files present): its mail services come back as they were.
        const status = JSON.parse(runInHost(h, ['/opt/mailu-local/apply', 'status'])) as Record<string, boolean>;
        if (Object.values(status).every(Boolean)) {
          step(`${h}: mail services already running`);
        } else {
          const out = runInHost(h, ['/opt/mailu-local/apply', 'start']);
          step(`${h}: mail services: ${out.trim().split('\n').slice(-1)[0]}`);
        }
      }
    }
    const info = hostsInfo();
    writeFile(path.join(hostsDir(), 'hosts.json'), JSON.stringify(info, null, 2) + '\n');
    return { seconds: (Date.now() - t0) / 1000, steps, info };
  });
}

export function hostsInfo(): HostsInfo {
  const hosts = {} as Record<HostName, HostInfo>;
  for (const h of HOST_NAMES) {
    const pub = path.join(hostRoot(h), 'etc/ssh/ssh_host_ed25519_key.pub');
    hosts[h] = {
      name: h,
      address: NETWORK.hosts[h],
      sshPort: HOST_PORTS.ssh,
      hostKeyFingerprint: fingerprintOf(pub),
      hostKey: fs.readFileSync(pub, 'utf8').trim().split(' ').slice(0, 2).join(' '),
      netns: netnsName(h),
      root: hostRoot(h),
    };
  }
  const provisionKey = path.join(hostsDir(), 'keys', 'provision_ed25519');
  return {
    hosts,
    provisionKey,
    provisionPublicKey: fs.readFileSync(`${provisionKey}.pub`, 'utf8').trim(),
    relay: {
      smtpHost: ROOT_SIDE.relaySmtp.host,
      smtpPort: ROOT_SIDE.relaySmtp.port,
      httpUrl: `http://${ROOT_SIDE.relayHttp.host}:${ROOT_SIDE.relayHttp.port}`,
      credentialsFile: path.join(relayDir(), 'credentials.json'),
      caFile: path.join(relayDir(), 'cert.pem'),
    },
    dns: { server: ROOT_SIDE.dns.host, port: ROOT_SIDE.dns.port, zoneFile: zoneFile(), domain: MAIL_DOMAIN },
    dkimKeyFile: path.join(hostsDir(), 'fixture', `${MAIL_DOMAIN}.${DKIM_SELECTOR}.key`),
  };
}

/** Stops everything in a host and removes its namespaces and link; returns how many processes it stopped. */
async function dropHost(h: HostName): Promise<number> {
  const n = await stopHostProcesses(h);
  for (const f of [mntNs(h), utsNs(h)]) {
    if (isMountPoint(f)) run('umount', [f]);
    fs.rmSync(f, { force: true });
  }
  if (linkExists(vethName(h))) run('ip', ['link', 'del', vethName(h)]);
  if (netnsExists(h)) run('ip', ['netns', 'del', netnsName(h)]);
  return n;
}

/**
 * The namespaces are machine-wide (/run/vaultdr-hosts, /run/netns) but bind one hosts dir's files.
 * When they were built for another dir (another checkout's stack, a CI clone since deleted), the hosts
 * would run on that dir's files: stop them and build afresh for this one.
 */
async function takeOverNamespaces(say: (s: string) => void): Promise<void> {
  const built = fs.existsSync(NS_OWNER) ? fs.readFileSync(NS_OWNER, 'utf8').trim() : undefined;
  const present = HOST_NAMES.some((h) => netnsExists(h) || isMountPoint(mntNs(h)));
  if (!present || built === hostsDir()) return;
  say(`hosts: namespaces were built for ${built ?? 'an unrecorded hosts dir'}; rebuilding them for ${hostsDir()}`);
  for (const h of HOST_NAMES) say(`${h}: stopped ${await dropHost(h)} process(es) of the old hosts`);
  if (built) for (const srv of [relayServer, dnsServer]) say(`old ${srv.name}: ${await stopServer({ ...srv, dir: () => path.join(built, path.basename(srv.dir())) })}`);
}

async function stopHostProcesses(h: HostName): Promise<number> {
  let pids = pidsInHost(h);
  const n = pids.length;
  for (const p of pids) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      // gone
    }
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (pids = pidsInHost(h)).length > 0) await sleep(100);
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
  return n;
}

export async function hostsDown(log: (l: string) => void = () => {}): Promise<string[]> {
  return withHostsLock(async () => {
    const out: string[] = [];
    const say = (s: string) => {
      out.push(s);
      log(s);
    };
    for (const h of HOST_NAMES) say(`${h}: stopped ${await dropHost(h)} process(es)`);
    fs.rmSync(NS_OWNER, { force: true });
    say(`relay mailpit: ${await stopServer(relayServer)}`);
    say(`nsd: ${await stopServer(dnsServer)}`);
    if (linkExists(NETWORK.bridge)) run('ip', ['link', 'del', NETWORK.bridge]);
    say(`network: bridge ${NETWORK.bridge} removed`);
    return out;
  });
}

/** Empties a directory's contents (not the directory: it is a bind-mount source). */
function emptyDir(dir: string, keep: string[] = []): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir)) if (!keep.includes(e)) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
}

/**
 * Returns a host to its provisioned state: mail services stopped, MailU's files, mailboxes, the
 * Postfix queue and the rendered configs gone, package configs back to the baseline, and root's
 * authorized_keys holding the provisioning key only. sshd and its host key stay.
 */
export async function resetHost(h: HostName): Promise<void> {
  await withHostsLock(async () => {
    const root = hostRoot(h);
    if (netnsExists(h) && isMountPoint(mntNs(h)) && fs.existsSync(path.join(root, 'opt/mailu-local/apply'))) {
      runInHost(h, ['/opt/mailu-local/apply', 'stop'], { allowFail: true });
    }
    const sshd = hostPid(h, 'run/sshd.pid');
    // Whatever else still runs on the host (SSH sessions, stray workers) goes too.
    for (const p of pidsInHost(h)) {
      if (p === sshd) continue;
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const d of ['mailu', 'var/mail', 'var/spool/postfix', 'var/lib/postfix', 'etc/opendkim']) emptyDir(path.join(root, d));
    emptyDir(path.join(root, 'run'), ['sshd', 'sshd.pid']);
    emptyDir(path.join(root, 'var/log'), ['sshd.log']);
    for (const d of PACKAGE_CONFIG) {
      emptyDir(path.join(root, d));
      if (fs.existsSync(d)) run('cp', ['-a', `${d}/.`, path.join(root, d)]);
      fs.writeFileSync(path.join(root, d, '.vaultdr-baseline'), `copied from the machine's ${d}\n`);
    }
    emptyDir(path.join(root, 'root'));
    const provisionKey = path.join(hostsDir(), 'keys', 'provision_ed25519');
    fs.mkdirSync(path.join(root, 'root/.ssh'), { recursive: true, mode: 0o700 });
    writeFile(path.join(root, 'root/.ssh/authorized_keys'), fs.readFileSync(`${provisionKey}.pub`, 'utf8'), 0o600);
  });
}

/**
 * Makes a host dead for the migration's tests: every process on it stops; with `unplug` its link
 * goes down too, so connections time out as to a powered-off VPS instead of being refused.
 * `hostsUp()` brings it back (the host's files are untouched).
 */
export async function stopHost(h: HostName, o: { unplug?: boolean } = {}): Promise<number> {
  return withHostsLock(async () => {
    const n = await stopHostProcesses(h);
    if (o.unplug && linkExists(vethName(h))) run('ip', ['link', 'set', vethName(h), 'down']);
    return n;
  });
}

export interface HostStatus {
  name: string;
  up: boolean;
  detail: string;
}

export async function hostsStatus(): Promise<HostStatus[]> {
  const all: HostStatus[] = [];
  all.push({ name: 'nsd', up: serverPid(dnsServer) !== undefined && (await dnsServer.healthy()), detail: `${ROOT_SIDE.dns.host}:${ROOT_SIDE.dns.port}` });
  all.push({ name: 'relay-mailpit', up: serverPid(relayServer) !== undefined && (await relayServer.healthy()), detail: `smtp ${ROOT_SIDE.relaySmtp.host}:${ROOT_SIDE.relaySmtp.port}, http ${ROOT_SIDE.relayHttp.host}:${ROOT_SIDE.relayHttp.port}` });
  for (const h of HOST_NAMES) {
    const exists = netnsExists(h) && isMountPoint(mntNs(h));
    const banner = exists ? await sshBanner(NETWORK.hosts[h], HOST_PORTS.ssh) : undefined;
    const pub = path.join(hostRoot(h), 'etc/ssh/ssh_host_ed25519_key.pub');
    all.push({ name: h, up: banner !== undefined, detail: `${NETWORK.hosts[h]}:22 ${banner ?? 'no sshd'}${fs.existsSync(pub) ? ` ${fingerprintOf(pub)}` : ''}` });
    if (exists && h === 'new-vps' && !fs.existsSync(path.join(hostRoot(h), 'mailu/mailu.env'))) {
      all.push({ name: `${h} mail`, up: true, detail: 'not configured (no /mailu/mailu.env yet)' });
    } else if (exists && h === 'new-vps') {
      const ports = await Promise.all(([['submission', HOST_PORTS.submission], ['smtps', HOST_PORTS.smtps], ['imap', HOST_PORTS.imap], ['imaps', HOST_PORTS.imaps], ['webmail', HOST_PORTS.webmail]] as const).map(async ([n, p]) => `${n} ${(await tcpOpen(NETWORK.hosts[h], p)) ? 'open' : 'closed'}`));
      all.push({ name: `${h} mail`, up: ports.every((p) => p.endsWith('open')), detail: ports.join(', ') });
    }
  }
  return all;
}
