// PostgreSQL role passwords for emergency rotation (node-postgres). The superuser connection URL
// is read from a 0600 file at the point of use; role logins are tried at the same host and
// database. Errors carry SQLSTATE codes and messages, never a password or the URL.
import { Client, type ClientConfig } from 'pg';

export interface PgTarget {
  host: string;
  port: number;
  database: string;
  superuser: string;
  superuserPassword: string;
}

/** Parses postgres://user:password@host:port/db (the password percent-encoded); throws without quoting it. */
export function parsePgUrl(url: string): PgTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('the superuser URL is not a URL (expected postgres://user:password@host:port/db)');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('the superuser URL must start with postgres://');
  return { host: u.hostname, port: Number(u.port || 5432), database: decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres', superuser: decodeURIComponent(u.username), superuserPassword: decodeURIComponent(u.password) };
}

const base = (t: PgTarget): ClientConfig => ({ host: t.host, port: t.port, database: t.database, connectionTimeoutMillis: 5000, statement_timeout: 10_000 });

async function withClient<T>(cfg: ClientConfig, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client(cfg);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export const asSuperuser = <T>(t: PgTarget, fn: (c: Client) => Promise<T>) => withClient({ ...base(t), user: t.superuser, password: t.superuserPassword }, fn);

/** Whether `role` can log in with `password`: 'ok', 'refused' (28P01 / 28000), or throws for anything else (server down...). */
export async function tryLogin(t: PgTarget, role: string, password: string): Promise<'ok' | 'refused'> {
  try {
    await withClient({ ...base(t), user: role, password }, (c) => c.query('SELECT 1'));
    return 'ok';
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '28P01' || code === '28000') return 'refused';
    throw new Error(`login as ${role} at ${t.host}:${t.port} failed for another reason: ${code ?? ''} ${(err as Error).message}`.trim());
  }
}

export async function roleExists(t: PgTarget, role: string): Promise<boolean> {
  return asSuperuser(t, async (c) => (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1 AND rolcanlogin', [role])).rowCount === 1);
}

/** ALTER ROLE ... PASSWORD (identifier and literal escaped by node-postgres; the statement is never logged). */
export async function setPassword(t: PgTarget, role: string, password: string): Promise<void> {
  await asSuperuser(t, (c) => c.query(`ALTER ROLE ${c.escapeIdentifier(role)} WITH PASSWORD ${c.escapeLiteral(password)}`));
}

/** Ends the role's open sessions (authenticated with the old password); returns how many. */
export async function terminateSessions(t: PgTarget, role: string): Promise<number> {
  return asSuperuser(t, async (c) => (await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()', [role])).rowCount ?? 0);
}
