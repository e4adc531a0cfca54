// Who may use the codec endpoint (decode history, encode inputs). Three ways in:
//  - the Temporal Web UI's OIDC access token (UI setting codec.passAccessToken), a JWT verified
//    with `jose` against the issuer's JWKS: signature, issuer, audience, expiry, one optional claim;
//  - a static bearer token from codec.tokensFile, for the CLI and scripts;
//  - dev only: listed browser origins from a loopback peer, without a token.
// Kept apart from the HTTP plumbing in codecServer.ts; the custodian share intake has its own
// token list and never shares one with the codec (`assertDisjointTokenLists`).
import * as crypto from 'node:crypto';
import type * as http from 'node:http';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { ConfigError, type Config } from '../config';

export type OidcOptions = NonNullable<Config['codec']['oidc']>;

export interface CodecAuthOptions {
  /** Static bearer tokens (CLI, scripts). */
  tokens: string[];
  /** Dev only: browser origins served without a token when the peer is on loopback. */
  anonymousLoopbackOrigins: string[];
  oidc?: OidcOptions;
}

export type CodecAuthResult =
  | { ok: true; via: 'oidc' | 'token' | 'loopback'; principal: string }
  | { ok: false; status: 401 | 403 | 503; error: string };

export type CodecAuthorizer = (req: http.IncomingMessage) => Promise<CodecAuthResult>;

function digest(s: string): Buffer {
  return crypto.createHash('sha256').update(s).digest();
}

export function tokenMatches(presented: string, tokens: string[]): boolean {
  const a = digest(presented);
  // Constant-time compare over digests so length and content do not leak through timing.
  return tokens.some((t) => crypto.timingSafeEqual(a, digest(t)));
}

export function isLoopback(addr: string | undefined): boolean {
  return !!addr && (addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.'));
}

/**
 * Refuses to start when a token would open both the codec (decode every payload in history) and
 * the custodian share intake (submit unseal shares): each holder gets only the power they need.
 */
export function assertDisjointTokenLists(codecTokens: string[], intakeTokens: string[]): void {
  if (intakeTokens.some((t) => tokenMatches(t, codecTokens))) {
    throw new ConfigError('config: a share-intake token is also a codec token (codec.tokensFile): give the share intake its own tokens file');
  }
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// Asymmetric algorithms only: a JWKS holds public keys, and an HMAC "alg" must never be accepted.
const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** Verifies the UI's access tokens against the issuer's published keys (fetched and cached by jose). */
function oidcVerifier(oidc: OidcOptions) {
  let jwks: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  const keySet = () => {
    jwks ??= (async () => {
      let url = oidc.jwksUrl;
      if (!url) {
        const wellKnown = `${oidc.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
        const res = await fetch(wellKnown, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`OIDC discovery ${wellKnown}: HTTP ${res.status}`);
        url = ((await res.json()) as { jwks_uri?: string }).jwks_uri;
        if (!url) throw new Error(`OIDC discovery ${wellKnown}: no jwks_uri`);
      }
      return createRemoteJWKSet(new URL(url), { timeoutDuration: 5000, cooldownDuration: 30_000 });
    })();
    // A failed discovery is retried on the next request instead of being cached forever.
    jwks.catch(() => (jwks = undefined));
    return jwks;
  };
  return async (token: string): Promise<CodecAuthResult> => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await keySet(), {
        issuer: oidc.issuer,
        audience: oidc.audience,
        algorithms: JWT_ALGORITHMS,
        clockTolerance: oidc.clockToleranceSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      return { ok: false, ...jwtRefusal(err) };
    }
    if (oidc.require && !claimHas(payload[oidc.require.claim], oidc.require.value)) {
      return { ok: false, status: 403, error: `access token lacks ${oidc.require.claim}=${oidc.require.value}` };
    }
    const who = [payload.preferred_username, payload.email, payload.sub].find((v) => typeof v === 'string') as string | undefined;
    return { ok: true, via: 'oidc', principal: who ?? 'unknown' };
  };
}

function claimHas(claim: unknown, value: string): boolean {
  return Array.isArray(claim) ? claim.includes(value) : claim === value;
}

/** A refusal says why (expired, audience, signature) but never echoes the token or its claims. */
function jwtRefusal(err: unknown): { status: 401 | 503; error: string } {
  if (err instanceof joseErrors.JWTExpired) return { status: 401, error: 'access token expired' };
  if (err instanceof joseErrors.JWTClaimValidationFailed) return { status: 401, error: `access token rejected: ${err.claim} claim check failed` };
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return { status: 401, error: 'access token signature does not verify' };
  if (err instanceof joseErrors.JWKSNoMatchingKey) return { status: 401, error: 'access token not signed by a key of the configured issuer' };
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return { status: 401, error: 'access token algorithm not allowed' };
  if (err instanceof joseErrors.JWKSTimeout || err instanceof TypeError || (err instanceof Error && /OIDC discovery|fetch|ECONNREFUSED/i.test(err.message))) {
    return { status: 503, error: 'identity provider keys unavailable; try again' };
  }
  return { status: 401, error: 'access token invalid' };
}

export function createCodecAuthorizer(opts: CodecAuthOptions): CodecAuthorizer {
  const verifyJwt = opts.oidc ? oidcVerifier(opts.oidc) : undefined;
  return async (req) => {
    const auth = req.headers.authorization ?? '';
    const bearer = /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '').trim() : '';
    if (bearer) {
      if (opts.tokens.length > 0 && tokenMatches(bearer, opts.tokens)) return { ok: true, via: 'token', principal: 'static token' };
      if (verifyJwt && JWT_SHAPE.test(bearer)) return verifyJwt(bearer);
      return { ok: false, status: 401, error: 'bearer token not accepted' };
    }
    const origin = req.headers.origin;
    if (origin && opts.anonymousLoopbackOrigins.includes(origin) && isLoopback(req.socket.remoteAddress)) {
      return { ok: true, via: 'loopback', principal: `loopback ${origin}` };
    }
    return { ok: false, status: 401, error: 'a valid bearer token is required' };
  };
}
