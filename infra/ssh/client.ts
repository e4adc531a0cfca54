// SSH to the VPS hosts of a migration (ssh2). The host key is pinned by its SHA256 fingerprint
// (OpenSSH's `SHA256:<base64>` form, what `ssh-keygen -lf` prints): an unknown or changed key is
// refused before any authentication, and the refusal shows both fingerprints. Never trust on first
// use. Commands run with `exec`; files are written through stdin so their content never appears in a
// command line, a process list or a log. Errors are typed for the activity profiles (common/errors.ts).
import * as crypto from 'node:crypto';
import { BaseAgent, Client, utils, type ConnectConfig, type ParsedKey } from 'ssh2';
import { ErrorType, failure } from '../../common/errors';

export interface SshTarget {
  /** Host name or address ("10.77.0.2"). */
  address: string;
  port: number;
  user: string;
  /** The pinned host key fingerprint, `SHA256:<base64 without padding>`. */
  hostKeySha256: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `SHA256:<base64>` of an SSH public key blob, the form `ssh-keygen -lf` prints. */
export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The fingerprint of one authorized_keys / .pub line ("ssh-ed25519 AAAA… comment"); undefined when it is not a key line. */
export function fingerprintOfKeyLine(line: string): string | undefined {
  const m = /(?:^|\s)((?:ssh|ecdsa|sk)-[a-z0-9@.-]+)\s+([A-Za-z0-9+/]+={0,3})(?:\s|$)/.exec(line.trim());
  if (!m) return undefined;
  const parsed = utils.parseKey(`${m[1]} ${m[2]}`);
  if (parsed instanceof Error) return undefined;
  return sha256Fingerprint(Buffer.from(m[2]!, 'base64'));
}

/** The public key line (type + base64 + comment) of an OpenSSH private key. */
export function publicKeyLine(privateKey: string | Buffer, comment: string): string {
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error) throw failure(ErrorType.KeyMaterialMissing, `migration SSH key cannot be parsed: ${parsed.message.replace(/[A-Za-z0-9+/=]{20,}/g, '…')}`);
  const key = (Array.isArray(parsed) ? parsed[0] : parsed) as ParsedKey;
  return `${key.type} ${key.getPublicSSH().toString('base64')} ${comment}`;
}

function describeTarget(t: SshTarget): string {
  return `${t.user}@${t.address}:${t.port}`;
}

/** Maps ssh2/socket errors to the catalog: unreachable (retryable), host key (not), auth (not). */
function classify(t: SshTarget, err: Error & { level?: string; code?: string }, seenKey: string | undefined): Error {
  if (seenKey !== undefined && seenKey !== t.hostKeySha256) {
    return failure(ErrorType.HostKeyMismatch, `host key of ${t.address}:${t.port} is ${seenKey}, the migration input pins ${t.hostKeySha256}: refusing to connect (check the new host's key out of band, then start again with its fingerprint)`);
  }
  if (err.level === 'client-authentication') return failure(ErrorType.SshAuthFailed, `${describeTarget(t)} refused the worker's migration key (publickey): is its public half in the target's authorized_keys?`);
  const code = err.code ?? err.level ?? '';
  return failure(ErrorType.HostUnreachable, `cannot reach ${t.address}:${t.port} over SSH: ${code ? `${code} ` : ''}${err.message}`);
}

/** One SSH connection with the host key pinned. `auth` is a private key, or an agent (probes). */
async function connect(t: SshTarget, auth: { privateKey: string | Buffer } | { agent: BaseAgent }, timeoutMs: number): Promise<Client> {
  if (!/^SHA256:[A-Za-z0-9+/]{43}$/.test(t.hostKeySha256)) throw failure(ErrorType.InvalidInput, `hostKeySha256 of ${t.address} must look like SHA256:<43 base64 characters> (ssh-keygen -lf prints it)`);
  const client = new Client();
  let seenKey: string | undefined;
  const cfg: ConnectConfig = {
    host: t.address,
    port: t.port,
    username: t.user,
    readyTimeout: timeoutMs,
    hostVerifier: (key: Buffer) => {
      seenKey = sha256Fingerprint(key);
      return seenKey === t.hostKeySha256;
    },
    ...('privateKey' in auth ? { privateKey: auth.privateKey } : { agent: auth.agent }),
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    client.once('ready', () => {
      settled = true;
      resolve(client);
    });
    // `on`, not `once`: ssh2 may emit a second error while closing, and a connection that dies
    // later must not crash the worker (the pending exec fails on its own).
    client.on('error', (err) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(classify(t, err, seenKey));
    });
    client.connect(cfg);
  });
}

export class SshSession {
  private constructor(
    readonly target: SshTarget,
    private readonly client: Client,
  ) {}

  static async open(t: SshTarget, privateKey: string | Buffer, timeoutMs = 10_000): Promise<SshSession> {
    return new SshSession(t, await connect(t, { privateKey }, timeoutMs));
  }

  /** Runs a command; `stdin` is written to it (how file contents travel). Never throws on a non-zero exit. */
  exec(command: string, stdin?: string | Buffer, timeoutMs = 60_000): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(failure(ErrorType.HostUnreachable, `${describeTarget(this.target)}: command did not finish within ${timeoutMs / 1000}s`)), timeoutMs);
      this.client.exec(command, (err, stream) => {
        if (err) {
          clearTimeout(timer);
          reject(failure(ErrorType.HostUnreachable, `${describeTarget(this.target)}: cannot run a command: ${err.message}`));
          return;
        }
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => errOut.push(d));
        stream.on('close', (code: number | null) => {
          clearTimeout(timer);
          resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8') });
        });
        stream.end(stdin ?? '');
      });
    });
  }

  /**
   * Starts a command whose stdin/stdout are streams (bulk data: a tar of the mailboxes). `done`
   * settles when it exits: its code and the end of its stderr. No timeout: the caller heartbeats.
   */
  stream(command: string): Promise<{ stdin: NodeJS.WritableStream; stdout: NodeJS.ReadableStream; done: Promise<{ code: number; stderr: string }> }> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, channel) => {
        if (err) {
          reject(failure(ErrorType.HostUnreachable, `${describeTarget(this.target)}: cannot run a command: ${err.message}`));
          return;
        }
        const errOut: Buffer[] = [];
        channel.stderr.on('data', (d: Buffer) => errOut.push(d));
        const done = new Promise<{ code: number; stderr: string }>((res) => channel.on('close', (code: number | null) => res({ code: code ?? -1, stderr: Buffer.concat(errOut).toString('utf8').slice(-2000) })));
        resolve({ stdin: channel, stdout: channel, done });
      });
    });
  }

  /** Runs a command that must succeed; the error names `what` and the end of stderr (never stdin). */
  async run(what: string, command: string, stdin?: string | Buffer): Promise<string> {
    const r = await this.exec(command, stdin);
    if (r.code !== 0) throw failure(ErrorType.HostCommandFailed, `${what} on ${this.target.address} failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`);
    return r.stdout;
  }

  close(): void {
    this.client.end();
  }
}

/** Opens a session, runs `fn`, closes it whatever happens. */
export async function withSsh<T>(t: SshTarget, privateKey: string | Buffer, fn: (s: SshSession) => Promise<T>): Promise<T> {
  const s = await SshSession.open(t, privateKey);
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}

/**
 * An agent holding only a public key: it offers the key and records whether the server would take
 * it (the server asks for a signature only after accepting the key, RFC 4252 §7), then declines to
 * sign. So "this removed key is refused" is checked without the key's private half.
 */
class ProbeAgent extends BaseAgent<ParsedKey> {
  accepted = false;
  constructor(private readonly key: ParsedKey) {
    super();
  }
  getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    cb(undefined, [this.key]);
  }
  sign(_pub: ParsedKey, _data: Buffer, opts: unknown, cb?: (err?: Error, sig?: Buffer) => void): void {
    this.accepted = true;
    (typeof opts === 'function' ? (opts as (err?: Error) => void) : cb!)(new Error('probe only: no private key'));
  }
}

/**
 * A new ed25519 key pair in OpenSSH's own format (ssh, ssh-add and ssh2 all read it). ssh2's
 * generator writes about 1 key in 256 malformed (a 31-byte public key: it drops a leading zero byte;
 * measured 21 of 6000, private half unreadable too), so a pair is kept only when both halves parse.
 */
export function newSshKeyPair(comment: string): { privateKey: string; publicKey: string } {
  for (let i = 0; i < 32; i++) {
    const k = utils.generateKeyPairSync('ed25519', { comment });
    if (!(utils.parseKey(k.public.trim()) instanceof Error) && !(utils.parseKey(k.private) instanceof Error)) return { privateKey: k.private, publicKey: k.public.trim() };
  }
  throw new Error('ssh2 made 32 malformed ed25519 keys in a row');
}

/** Whether the host would accept `keyLine` for `t.user` (true) or refuses it (false). Host key pinned as always. */
export async function keyAccepted(t: SshTarget, keyLine: string, timeoutMs = 10_000): Promise<boolean> {
  const parsed = utils.parseKey(keyLine.trim().split(/\s+/).slice(0, 2).join(' '));
  if (parsed instanceof Error) throw failure(ErrorType.SecretMalformed, `an operator key is not an SSH public key (${fingerprintOfKeyLine(keyLine) ?? 'unparseable'})`);
  const agent = new ProbeAgent((Array.isArray(parsed) ? parsed[0] : parsed) as ParsedKey);
  try {
    const c = await connect(t, { agent }, timeoutMs);
    c.end();
    return true; // logged in: the server needs no signature for this user (should never happen)
  } catch (err) {
    if (agent.accepted) return true;
    if ((err as { type?: string }).type === ErrorType.SshAuthFailed) return false;
    throw err;
  }
}
