// The checks a user would make on a mail host, as functions the migration's activities and the
// hosts' smoke test share: submit a mail with SASL AUTH (nodemailer), log in over IMAP (imapflow),
// log in to Roundcube over HTTP (login form, session cookie, inbox page) and judge a received
// message's DKIM, SPF and DMARC with mailauth against a chosen resolver.
// Passwords are parameters only: no function here logs, returns or throws them.
import { ImapFlow } from 'imapflow';
import { authenticate } from 'mailauth';
import * as nodemailer from 'nodemailer';

export interface MailLogin {
  user: string;
  pass: string;
}

export interface SubmitInput extends MailLogin {
  host: string;
  /** Submission port; 587 with STARTTLS required (MailU: 465 with implicit TLS). */
  port?: number;
  implicitTls?: boolean;
  from: string;
  to: string[];
  subject: string;
  text: string;
  /** The hosts use self-signed certificates; a production host should be verified. */
  rejectUnauthorized?: boolean;
}

export interface SubmitResult {
  messageId: string;
  response: string;
  accepted: string[];
}

export async function submitMail(i: SubmitInput): Promise<SubmitResult> {
  const t = nodemailer.createTransport({
    host: i.host,
    port: i.port ?? 587,
    secure: i.implicitTls ?? false,
    requireTLS: !(i.implicitTls ?? false),
    tls: { rejectUnauthorized: i.rejectUnauthorized ?? false },
    auth: { user: i.user, pass: i.pass },
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
  try {
    const r = await t.sendMail({ from: i.from, to: i.to, subject: i.subject, text: i.text });
    return { messageId: r.messageId, response: r.response, accepted: r.accepted.map(String) };
  } finally {
    t.close();
  }
}

export interface ImapLoginResult {
  /** The server's capability after login (proves an authenticated session). */
  authenticated: boolean;
  inboxMessages: number;
}

/** IMAP login (STARTTLS when offered) and a STATUS of INBOX; a refused login throws `IMAP login refused`. */
export async function imapLogin(i: MailLogin & { host: string; port?: number; implicitTls?: boolean; rejectUnauthorized?: boolean }): Promise<ImapLoginResult> {
  const client = new ImapFlow({
    host: i.host,
    port: i.port ?? 143,
    secure: i.implicitTls ?? false,
    auth: { user: i.user, pass: i.pass },
    tls: { rejectUnauthorized: i.rejectUnauthorized ?? false },
    logger: false,
    connectionTimeout: 10_000,
  });
  try {
    await client.connect();
  } catch (err) {
    const e = err as { authenticationFailed?: boolean; message: string };
    throw new Error(e.authenticationFailed ? `IMAP login refused for ${i.user}` : `IMAP connection to ${i.host}: ${e.message}`);
  }
  try {
    const st = await client.status('INBOX', { messages: true });
    return { authenticated: client.authenticated !== false, inboxMessages: st.messages ?? 0 };
  } finally {
    await client.logout().catch(() => undefined);
  }
}

export interface WebmailLoginResult {
  /** HTTP status of the login POST (Roundcube: 302 on success, 401 on a refused login). */
  loginStatus: number;
  /** Where a successful login redirects. */
  location?: string;
  /** Names of the cookies that carry the authenticated session. */
  sessionCookies: string[];
  /** Status and <title> of the inbox page fetched with the session. */
  inboxStatus?: number;
  inboxTitle?: string;
  ok: boolean;
}

class CookieJar {
  private readonly jar = new Map<string, string>();
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '-del-' || /max-age=0/i.test(c)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }
  header(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  names(): string[] {
    return [...this.jar.keys()];
  }
}

/**
 * A real Roundcube login: GET the login form (its CSRF token and the session cookie), POST the
 * credentials, follow the redirect with the session cookies, and read the inbox page's title.
 */
export async function roundcubeLogin(i: MailLogin & { url: string }): Promise<WebmailLoginResult> {
  const base = i.url.endsWith('/') ? i.url : `${i.url}/`;
  const jar = new CookieJar();
  const get = async (u: string) => {
    const r = await fetch(u, { headers: { cookie: jar.header() }, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    jar.take(r);
    return r;
  };
  const form = await get(base);
  const html = await form.text();
  const token = /name="_token" value="([^"]+)"/.exec(html)?.[1];
  if (form.status !== 200 || !token) throw new Error(`webmail ${base}: no login form (HTTP ${form.status})`);
  const body = new URLSearchParams({ _token: token, _task: 'login', _action: 'login', _timezone: 'UTC', _url: '', _user: i.user, _pass: i.pass });
  const post = await fetch(`${base}?_task=login`, {
    method: 'POST',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
    body,
    redirect: 'manual',
    signal: AbortSignal.timeout(15_000),
  });
  jar.take(post);
  await post.arrayBuffer();
  const location = post.headers.get('location') ?? undefined;
  const sessionCookies = jar.names().filter((n) => n.startsWith('roundcube_sess'));
  if (post.status !== 302 || !location || !jar.names().includes('roundcube_sessauth')) {
    return { loginStatus: post.status, location, sessionCookies, ok: false };
  }
  const inbox = await get(new URL(location, base).toString().replace(/_task=mail.*/, '_task=mail&_mbox=INBOX'));
  const page = await inbox.text();
  const inboxTitle = /<title>([^<]*)<\/title>/.exec(page)?.[1]?.trim();
  return {
    loginStatus: post.status,
    location,
    sessionCookies,
    inboxStatus: inbox.status,
    inboxTitle,
    ok: inbox.status === 200 && /inbox/i.test(inboxTitle ?? ''),
  };
}

export type DnsResolver = (name: string, rrtype: string) => Promise<unknown>;

export interface AuthResults {
  dkim: { result: string; domain: string; selector: string; aligned: boolean; info: string }[];
  spf: string;
  dmarc: string;
  /** True when one DKIM signature passes for `domain` with `selector`, aligned with From. */
  dkimPass: boolean;
}

function resultOf(x: unknown): string {
  const r = (x as { status?: { result?: unknown } } | false | undefined) || undefined;
  return String(r?.status?.result ?? 'none');
}

/** DKIM, SPF and DMARC of a received message, judged by mailauth with the given resolver. */
export async function checkAuthentication(
  raw: string | Buffer,
  o: {
    /** The sending host's IP and HELO as the receiver saw them; omitted: read from the receiver's (top) Received header. */
    ip?: string;
    helo?: string;
    sender: string;
    mta: string;
    resolver: DnsResolver;
    domain: string;
    selector: string;
  },
): Promise<AuthResults> {
  const r = await authenticate(typeof raw === 'string' ? Buffer.from(raw) : raw, {
    ...(o.ip ? { ip: o.ip, helo: o.helo } : { trustReceived: true }),
    sender: o.sender,
    mta: o.mta,
    resolver: o.resolver as never,
    disableArc: true,
    disableBimi: true,
  });
  const dkim = (r.dkim?.results ?? []).map((x) => ({
    result: String(x.status?.result ?? 'none'),
    domain: String(x.signingDomain ?? ''),
    selector: String(x.selector ?? ''),
    aligned: Boolean(x.status?.aligned),
    info: String(x.info ?? ''),
  }));
  return {
    dkim,
    spf: resultOf(r.spf),
    dmarc: resultOf(r.dmarc),
    dkimPass: dkim.some((d) => d.result === 'pass' && d.domain === o.domain && d.selector === o.selector && d.aligned),
  };
}

export interface ReceivedMessage {
  id: string;
  subject: string;
  /** The SMTP AUTH user the sending host logged in to the receiving Mailpit with (empty when none). */
  username: string;
  raw: string;
}

/**
 * Waits for a message with this exact subject in a Mailpit (its HTTP API) and returns it raw, or
 * undefined after waitMs. Used to read what a mail host relayed.
 */
export async function findReceivedMessage(mailpitUrl: string, subject: string, waitMs: number): Promise<ReceivedMessage | undefined> {
  const base = mailpitUrl.replace(/\/$/, '');
  const deadline = Date.now() + waitMs;
  for (;;) {
    const r = await fetch(`${base}/api/v1/search?query=${encodeURIComponent(`subject:"${subject}"`)}`, { signal: AbortSignal.timeout(10_000) });
    if (!r.ok) throw new Error(`mailpit ${base}: search answered HTTP ${r.status}`);
    const body = (await r.json()) as { messages: { ID: string; Subject: string; Username?: string }[] };
    const m = body.messages.find((x) => x.Subject === subject);
    if (m) {
      const raw = await (await fetch(`${base}/api/v1/message/${m.ID}/raw`, { signal: AbortSignal.timeout(10_000) })).text();
      return { id: m.ID, subject: m.Subject, username: m.Username ?? '', raw };
    }
    if (Date.now() >= deadline) return undefined;
    await new Promise((res) => setTimeout(res, 200));
  }
}
