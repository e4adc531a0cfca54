// The checks a mail user would make, run by the migration activities against the new host:
// submission with SASL AUTH (nodemailer), IMAP login (imapflow), a real webmail login (Roundcube's
// form or MailU's /sso/login, session cookie, inbox page), the relayed message read back from the
// relay's inbox (Mailpit API) and judged by mailauth (DKIM, SPF, DMARC), and the DKIM TXT record
// read through a configurable resolver. Credentials arrive as arguments and never appear in errors.
import * as dns from 'node:dns';
import * as fs from 'node:fs';
import { ImapFlow } from 'imapflow';
import { authenticate } from 'mailauth';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { fetch } from 'undici';
import { ErrorType, failure } from '../../common/errors';

export interface Endpoint {
  host: string;
  port: number;
}

export function hostPort(s: string): Endpoint {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/** A DNS resolver on `server` (host:port), or the system's; also in mailauth's resolver shape. */
export function makeResolver(server?: string): { resolveTxt(name: string): Promise<string[][]>; forMailauth: (name: string, rr: string) => Promise<unknown> } {
  const r = new dns.promises.Resolver({ timeout: 3000, tries: 2 });
  if (server) {
    const { host, port } = hostPort(server);
    r.setServers([`${host}:${port}`]);
  }
  return {
    resolveTxt: (name) => r.resolveTxt(name),
    forMailauth: (name, rr) => r.resolve(name, rr) as Promise<unknown>,
  };
}

/** The `p=` value of a DKIM TXT record, joined from its strings. */
export function dkimRecordKey(txt: string[][]): string | undefined {
  for (const chunks of txt) {
    const rec = chunks.join('');
    if (!/v=DKIM1/i.test(rec) && !/\bp=/.test(rec)) continue;
    const m = /(?:^|;)\s*p=([A-Za-z0-9+/=\s]*)/.exec(rec);
    if (m) return m[1]!.replace(/\s+/g, '');
  }
  return undefined;
}

const tlsOptions = (caFile?: string, servername?: string) => ({ ...(caFile ? { ca: fs.readFileSync(caFile) } : {}), ...(servername ? { servername } : {}) });

/** Submits one message with SASL AUTH; EAUTH becomes SmtpAuthFailed naming `credentialName`. */
export async function submit(o: { submission: Endpoint; implicitTls: boolean; caFile?: string; servername?: string; user: string; pass: string; credentialName: string; message: SendMailOptions }): Promise<{ messageId: string; response: string }> {
  const transport = nodemailer.createTransport({
    host: o.submission.host,
    port: o.submission.port,
    secure: o.implicitTls,
    requireTLS: !o.implicitTls,
    auth: { user: o.user, pass: o.pass },
    tls: tlsOptions(o.caFile, o.servername),
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
    logger: false,
  });
  try {
    const info = await transport.sendMail(o.message);
    return { messageId: info.messageId, response: String(info.response).slice(0, 200) };
  } catch (err) {
    const e = err as Error & { code?: string; responseCode?: number };
    if (e.code === 'EAUTH') throw failure(ErrorType.SmtpAuthFailed, `submission on ${o.submission.host}:${o.submission.port} refused the credentials of ${o.credentialName} (${e.responseCode ?? 'EAUTH'})`);
    throw failure(ErrorType.MailNotDelivered, `submission on ${o.submission.host}:${o.submission.port} failed: ${e.code ?? ''} ${String(e.message).slice(0, 200)}`);
  } finally {
    transport.close();
  }
}

/** Checks relay credentials with an SMTP AUTH (no mail sent); EAUTH becomes SmtpAuthFailed naming the secret. */
export async function verifyRelayLogin(o: { relay: Endpoint; caFile?: string; user: string; pass: string; credentialName: string }): Promise<void> {
  const transport = nodemailer.createTransport({ host: o.relay.host, port: o.relay.port, secure: o.relay.port === 465, auth: { user: o.user, pass: o.pass }, tls: { ...tlsOptions(o.caFile), rejectUnauthorized: !!o.caFile }, connectionTimeout: 10_000, logger: false });
  try {
    await transport.verify();
  } catch (err) {
    const e = err as Error & { code?: string; responseCode?: number };
    if (e.code === 'EAUTH') throw failure(ErrorType.SmtpAuthFailed, `the SMTP relay ${o.relay.host}:${o.relay.port} refused the credentials in ${o.credentialName} (${e.responseCode ?? 'EAUTH'}): the relay password in Vault is wrong or was rotated`);
    throw failure(ErrorType.HostUnreachable, `the SMTP relay ${o.relay.host}:${o.relay.port} cannot be checked: ${e.code ?? ''} ${String(e.message).slice(0, 200)}`);
  } finally {
    transport.close();
  }
}

/** IMAP login and INBOX open with the mailbox credentials. */
export async function imapLogin(o: { imap: Endpoint; tls: boolean; caFile?: string; servername?: string; user: string; pass: string }): Promise<{ mailbox: string; exists: number }> {
  const client = new ImapFlow({ host: o.imap.host, port: o.imap.port, secure: o.tls, doSTARTTLS: o.tls ? undefined : true, auth: { user: o.user, pass: o.pass }, tls: tlsOptions(o.caFile, o.servername), logger: false, connectionTimeout: 10_000 } as ConstructorParameters<typeof ImapFlow>[0]);
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    const e = err as Error & { authenticationFailed?: boolean; code?: string };
    if (e.authenticationFailed) throw failure(ErrorType.WebmailLoginFailed, `IMAP on ${o.imap.host}:${o.imap.port} refused the mailbox credentials of ${o.user}`);
    throw failure(ErrorType.HostUnreachable, `IMAP on ${o.imap.host}:${o.imap.port} unreachable: ${e.code ?? e.message}`);
  }
  try {
    const box = await client.mailboxOpen('INBOX', { readOnly: true });
    return { mailbox: box.path, exists: box.exists };
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** Cookies of a response, merged into a jar (name → value). */
function takeCookies(jar: Map<string, string>, headers: Headers): void {
  for (const c of headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair!.indexOf('=');
    if (i > 0) jar.set(pair!.slice(0, i).trim(), pair!.slice(i + 1).trim());
  }
}
const cookieHeader = (jar: Map<string, string>) => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

/**
 * A real webmail login: the login form, a session cookie, then the inbox page. Roundcube: GET the
 * form for its _token, POST _task=login; MailU: POST /sso/login (email, pw, submitWebmail), 302.
 */
export async function webmailLogin(o: { url: string; kind: 'roundcube' | 'mailu'; user: string; pass: string }): Promise<{ status: number; inboxSeen: boolean }> {
  const jar = new Map<string, string>();
  const base = o.url.replace(/\/$/, '');
  const get = async (u: string) => {
    const r = await fetch(u, { headers: { cookie: cookieHeader(jar) }, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    takeCookies(jar, r.headers as unknown as Headers);
    return { status: r.status, text: await r.text(), location: r.headers.get('location') };
  };
  const post = async (u: string, form: Record<string, string>) => {
    const r = await fetch(u, { method: 'POST', headers: { cookie: cookieHeader(jar), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(), redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    takeCookies(jar, r.headers as unknown as Headers);
    return { status: r.status, text: await r.text(), location: r.headers.get('location') };
  };
  let page;
  try {
    page = await get(`${base}/`);
  } catch (err) {
    throw failure(ErrorType.HostUnreachable, `webmail ${base} unreachable: ${(err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`);
  }
  let answer;
  if (o.kind === 'mailu') {
    answer = await post(`${new URL(base).origin}/sso/login`, { email: o.user, pw: o.pass, submitWebmail: 'Sign in' });
  } else {
    const token = /name="_token"\s+value="([^"]+)"/.exec(page.text)?.[1];
    if (!token) throw failure(ErrorType.WebmailLoginFailed, `webmail ${base} did not show a Roundcube login form (HTTP ${page.status})`);
    answer = await post(`${base}/?_task=login`, { _token: token, _task: 'login', _action: 'login', _timezone: 'UTC', _url: '', _user: o.user, _pass: o.pass });
  }
  if (answer.status !== 302 || !answer.location) throw failure(ErrorType.WebmailLoginFailed, `webmail ${base} refused the login of ${o.user} (HTTP ${answer.status}, no redirect to the inbox)`);
  const inbox = await get(new URL(answer.location, `${base}/`).toString());
  const inboxSeen = inbox.status === 200 && (o.kind === 'mailu' ? /webmail|INBOX/i.test(inbox.text) : /_task=mail|rcmail|INBOX/i.test(inbox.text) && !/name="_pass"/.test(inbox.text));
  if (!inboxSeen) throw failure(ErrorType.WebmailLoginFailed, `webmail ${base}: after the login of ${o.user} the inbox page did not load (HTTP ${inbox.status})`);
  return { status: answer.status, inboxSeen };
}

/** Waits for a message with `marker` in its subject in the relay's Mailpit inbox; returns its raw source. */
export async function awaitRelayedMessage(o: { inboxUrl: string; marker: string; timeoutMs: number; onWait?: () => void }): Promise<string> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const r = await fetch(`${o.inboxUrl}/api/v1/search?query=${encodeURIComponent(`subject:"${o.marker}"`)}`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    if (r?.ok) {
      const j = (await r.json()) as { messages?: { ID: string }[] };
      const id = j.messages?.[0]?.ID;
      if (id) {
        const raw = await fetch(`${o.inboxUrl}/api/v1/message/${id}/raw`, { signal: AbortSignal.timeout(10_000) });
        return raw.text();
      }
    }
    if (Date.now() > deadline) throw failure(ErrorType.MailNotDelivered, `the test mail (${o.marker}) did not reach the relay inbox ${o.inboxUrl} within ${o.timeoutMs / 1000}s`);
    o.onWait?.();
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** DKIM, SPF and DMARC of a received message (mailauth), for `domain` and `selector`. */
export async function judgeMessage(o: { raw: string; ip: string; helo: string; sender: string; domain: string; selector: string; resolver: (name: string, rr: string) => Promise<unknown> }) {
  const r = await authenticate(o.raw, { ip: o.ip, helo: o.helo, sender: o.sender, mta: 'vault-dr-check', resolver: o.resolver as never, disableArc: true, disableBimi: true, trustReceived: false });
  const mine = r.dkim.results.find((x) => x.signingDomain === o.domain && x.selector === o.selector);
  const dkim = mine ? `${mine.status.result}${mine.status.aligned ? ' (aligned)' : ''}` : `none for d=${o.domain} s=${o.selector} (${r.dkim.results.map((x) => `${x.signingDomain}/${x.selector}: ${x.status.result}`).join(', ') || 'unsigned'})`;
  const spf = r.spf ? String((r.spf as { status: { result: string } }).status.result) : 'none';
  const dmarc = r.dmarc ? String((r.dmarc as { status: { result: string } }).status.result) : 'none';
  return { dkim, spf, dmarc, dkimPass: !!mine && mine.status.result === 'pass' && !!mine.status.aligned, spfPass: spf === 'pass', dmarcPass: dmarc === 'pass' };
}
