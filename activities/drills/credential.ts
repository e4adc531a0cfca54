// Activities of the credential-compromise drill (docs/runbooks/dr-drills.md, workflows/drills/
// credentialCompromise.ts). Two groups, by the role that holds what they need:
// - restore role (the rotator token, deploy/openbao/policies/vaultdr-rotator.hcl): the drill
//   credential's own probes. checkDrillCredential (steady state: the stored secret-id logs in) and
//   verifyDrillCredential (after the rotation: the current KV version logs in, the version the
//   steady state saw is refused). Values are read from Vault KV inside the activity and never
//   returned: the workflow sees KV version numbers and verdicts only.
// - notify role (a Temporal client): the training incident's responders and observers.
//   respondToTrainingIncident sends the updates a responder would (automated mode) or only watches
//   (assisted: the facilitator answers with `vaultdr incident ...`); awaitDeclaredMail watches the
//   alert inbox (Mailpit's API, alerts.inbox.mailpitUrl) for the "declared" e-mail;
//   closeTrainingIncident ends the incident whatever state it is in (the drill's revert).
import * as fs from 'node:fs';
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { Agent } from 'undici';
import { ErrorType, failure } from '../../common/errors';
import type { AlertObservation } from '../../common/drillRun';
import type { BreachProgress } from '../../common/incident';
import type { Config } from '../../infra/config';
import { readSecretFile } from '../../infra/config';
import { stagingApi } from '../../infra/vault/stagingVault';
import { keepHeartbeating } from '../heartbeat';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The drill credential's KV path (where rotateCredential delivers the approle-secret-id of the role). */
export function drillCredentialPath(cfg: Pick<Config, 'rotation' | 'drills'>): string {
  return `${cfg.rotation.kvMount}/data/${cfg.rotation.kvPrefix}/${cfg.drills.credentialClass}/${cfg.drills.credentialScope.replace(/[^\w.@+-]/g, '_')}`;
}

export const drillCredentialActivities = (deps: { cfg: Config }) => {
  const { cfg } = deps;
  let agent: Agent | undefined;
  const dispatcher = () => (cfg.vault.caFile ? (agent ??= new Agent({ connect: { ca: fs.readFileSync(cfg.vault.caFile) } })) : undefined);
  const vault = async (method: string, p: string, body?: unknown, as?: string) => {
    const token = as ?? (cfg.rotation.tokenFile ? readSecretFile(cfg.rotation.tokenFile, 'rotation.tokenFile') : undefined);
    if (as === undefined && !token) throw failure(ErrorType.KeyMaterialMissing, 'rotation.tokenFile is not set on this worker: the credential drill reads the drill credential with the rotator token');
    const r = await stagingApi(cfg.vault.address, method, p, token || undefined, body, dispatcher()).catch((err: Error) => {
      throw failure(ErrorType.VaultUnreachable, `${method} ${cfg.vault.address}/v1/${p.split('?')[0]}: ${err.message}`, false);
    });
    if (r.status === 503) throw failure(ErrorType.VaultSealed, `${cfg.vault.address} is sealed or unavailable (HTTP 503)`);
    if (r.status >= 500) throw failure(ErrorType.VaultUnreachable, `${method} ${p.split('?')[0]}: HTTP ${r.status}`, false);
    return r;
  };
  const readVersion = async (kvPath: string, version?: number): Promise<{ roleId?: string; secretId?: string; version: number }> => {
    const r = await vault('GET', `${kvPath}${version ? `?version=${version}` : ''}`);
    if (r.status === 404) return { version: 0 };
    if (r.status >= 400) throw failure(r.status === 403 ? ErrorType.VaultAuthFailed : ErrorType.VaultRequestRejected, `read ${kvPath}: HTTP ${r.status}`);
    const d = (r.json.data?.data ?? {}) as { role_id?: string; secret_id?: string };
    return { roleId: d.role_id, secretId: d.secret_id, version: Number(r.json.data?.metadata?.version ?? 0) };
  };
  /** An AppRole login with the given pair; the token it gets is revoked at once. */
  const login = async (roleId: string, secretId: string): Promise<'works' | 'refused'> => {
    const r = await vault('POST', `auth/${cfg.vault.approleMount}/login`, { role_id: roleId, secret_id: secretId }, '');
    if (r.status === 200) {
      await vault('POST', 'auth/token/revoke-self', undefined, r.json.auth.client_token as string).catch(() => undefined);
      return 'works';
    }
    if (r.status === 400 || r.status === 403) return 'refused';
    throw failure(ErrorType.VaultRequestRejected, `AppRole login probe: HTTP ${r.status}`);
  };
  const role = () => cfg.drills.credentialScope;

  return {
    /** Steady state: the drill credential (current KV version) logs in. Returns the version it tried, never the value. */
    async checkDrillCredential(): Promise<{ credentialClass: string; scope: string; kvPath: string; version: number; works: boolean; detail: string }> {
      const kvPath = drillCredentialPath(cfg);
      const cur = await readVersion(kvPath);
      const base = { credentialClass: cfg.drills.credentialClass, scope: role(), kvPath, version: cur.version };
      if (!cur.roleId || !cur.secretId) return { ...base, works: false, detail: `${kvPath} holds no role_id/secret_id (version ${cur.version}): store the drill role's secret-id there first (docs/runbooks/dr-drills.md)` };
      const r = await login(cur.roleId, cur.secretId);
      return { ...base, works: r === 'works', detail: `AppRole login as ${role()} with the secret-id at ${kvPath} version ${cur.version}: ${r}` };
    },

    /** After the rotation: the current version logs in and the version the steady state saw is refused. */
    async verifyDrillCredential(req: { versionBefore: number }): Promise<{ versionAfter: number; newWorks: boolean; oldRefused: boolean; detail: string }> {
      const kvPath = drillCredentialPath(cfg);
      const cur = await readVersion(kvPath);
      const old = req.versionBefore > 0 ? await readVersion(kvPath, req.versionBefore) : { version: 0 };
      if (cur.version <= req.versionBefore || !cur.roleId || !cur.secretId) {
        return { versionAfter: cur.version, newWorks: false, oldRefused: false, detail: `${kvPath} is still at version ${cur.version}: no new secret-id was delivered` };
      }
      if (cur.secretId === old.secretId) return { versionAfter: cur.version, newWorks: false, oldRefused: false, detail: `version ${cur.version} holds the same secret-id as version ${req.versionBefore}` };
      const nu = await login(cur.roleId, cur.secretId);
      const was = old.secretId ? await login(old.roleId ?? cur.roleId, old.secretId) : 'works';
      return {
        versionAfter: cur.version,
        newWorks: nu === 'works',
        oldRefused: was === 'refused',
        detail: `login with the new secret-id (version ${cur.version}): ${nu}; with the old one (version ${req.versionBefore}): ${old.secretId ? was : 'not readable'}`,
      };
    },
  };
};

export type DrillCredentialActivities = ReturnType<typeof drillCredentialActivities>;

export interface TrainingIncidentFacts {
  incidentId?: string;
  stage: BreachProgress['stage'];
  step: string;
  /** Tenants the notices were prepared for, and how many were sent. */
  tenants: number;
  noticesSent: number;
  /** Every prepared notice is marked TRAINING (subject). */
  noticesTraining: boolean;
  /** What this activity sent as responder (automated mode). */
  actions: string[];
}

interface MailpitSummary {
  ID: string;
  Subject: string;
  Created: string;
}

export const trainingIncidentActivities = (deps: { cfg: Pick<Config, 'alerts'>; temporal: () => Promise<Client> }) => {
  const withClient = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
    const client = await deps.temporal();
    try {
      return await fn(client);
    } finally {
      await client.connection.close().catch(() => undefined);
    }
  };
  const facts = (p: BreachProgress, actions: string[]): TrainingIncidentFacts => ({
    incidentId: p.incidentId,
    stage: p.stage,
    step: p.step,
    tenants: p.notices?.previews.length ?? 0,
    noticesSent: p.notices?.deliveries.filter((d) => d.status === 'sent').length ?? 0,
    noticesTraining: !!p.notices && p.notices.previews.every((n) => n.subject.startsWith('[TRAINING]')),
    actions,
  });

  return {
    /**
     * Drives the training incident to its close as its responders would (act: true): acknowledge,
     * approve containment (no seal), approve the notices' preview digest, close. With act: false
     * (assisted mode) it only watches while the facilitator answers. Returns when the incident has
     * ended; fails (retryable: the attempt resumes where the incident is) when `untilIso` passes.
     */
    async respondToTrainingIncident(req: { workflowId: string; act: boolean; by: string; untilIso: string }): Promise<TrainingIncidentFacts> {
      const until = Date.parse(req.untilIso);
      const actions: string[] = [];
      let last = 'not asked yet';
      const stop = keepHeartbeating(() => ({ incident: req.workflowId, last }), 5000);
      try {
        return await withClient(async (client) => {
          const h = client.workflow.getHandle(req.workflowId);
          const why = `DR drill (credential-compromise) responder ${req.by}`;
          for (;;) {
            const p = await h.query<BreachProgress>('progress');
            last = `${p.stage}/${p.step}`;
            if (p.stage === 'done' || p.stage === 'failed') return facts(p, actions);
            if (!p.training) throw failure('DrillRefused', `incident ${req.workflowId} is not a training incident: the drill never answers a real one`);
            if (req.act) {
              const send = async (name: string, arg: unknown) => {
                try {
                  await h.executeUpdate(name, { args: [arg] });
                  actions.push(name);
                } catch (err) {
                  // A validator that refuses (the incident moved on meanwhile) is looked at again on the next round.
                  last = `${name} refused: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`;
                }
              };
              if (p.step === 'awaitAcknowledgement') await send('acknowledge', { who: req.by, role: 'drill responder' });
              else if (p.step === 'awaitContainmentApproval') await send('approveContainment', { who: req.by, approve: true, seal: false, why });
              else if (p.step === 'awaitNoticeApproval' && p.notices) await send('approveNotice', { who: req.by, approve: true, previewDigest: p.notices.previewDigest, why });
              else if (p.step === 'awaitIncidentClose') await send('closeIncident', { who: req.by, summary: `training incident of DR drill closed by ${req.by}`, contributingFactors: [], actionItems: [] });
            }
            if (Date.now() > until) throw failure('DrillAborted', `stop condition: the training incident ${req.workflowId} did not close by ${req.untilIso} (at ${last})`);
            await sleep(250);
          }
        });
      } finally {
        stop();
      }
    },

    /**
     * Watches the alert inbox (Mailpit API at alerts.inbox.mailpitUrl) for the incident's
     * "declared" e-mail. The time it reached the inbox (Mailpit's Created) is the detection time.
     * Not seeing it within the window is a result (a finding), not an error.
     */
    async awaitDeclaredMail(req: { workflowId: string; sinceIso: string; untilIso: string }): Promise<AlertObservation> {
      const base = deps.cfg.alerts.inbox.mailpitUrl?.replace(/\/$/, '');
      const alertname = 'breachResponse declared (training)';
      if (!base) return { observed: false, alertname, receivers: [], source: 'alerts.inbox.mailpitUrl is not set: the drill has no inbox to watch', others: [] };
      const since = Date.parse(req.sinceIso) - 5000;
      const until = Date.parse(req.untilIso);
      let last = 'not asked yet';
      const stop = keepHeartbeating(() => ({ waitingFor: 'declared e-mail', last }), 5000);
      try {
        const incidentId = await withClient(async (client) => {
          for (;;) {
            const p = await client.workflow.getHandle(req.workflowId).query<BreachProgress>('progress').catch(() => undefined);
            if (p?.incidentId) return p.incidentId;
            if (Date.now() > until) return undefined;
            await sleep(250);
          }
        });
        if (!incidentId) return { observed: false, alertname, receivers: [], source: `${base} (the incident never answered its progress query)`, others: [] };
        const wanted = `Incident ${incidentId} declared`;
        for (;;) {
          try {
            const res = await fetch(`${base}/api/v1/search?query=${encodeURIComponent(`subject:"${incidentId}"`)}`, { signal: AbortSignal.timeout(10_000) });
            if (!res.ok) throw new Error(`HTTP ${res.status}`);
            const list = ((await res.json()) as { messages: MailpitSummary[] }).messages ?? [];
            last = `${list.length} message(s) naming ${incidentId}`;
            const hit = list.filter((m) => m.Subject.includes(wanted) && Date.parse(m.Created) >= since).sort((a, b) => Date.parse(a.Created) - Date.parse(b.Created))[0];
            if (hit) {
              const others = [...new Set(list.filter((m) => m.ID !== hit.ID).map((m) => m.Subject.replace(/^\[[^\]]*\]\s*/, '').slice(0, 80)))].sort();
              return { observed: true, alertname, startsAt: new Date(Date.parse(hit.Created)).toISOString(), seenAt: new Date().toISOString(), receivers: ['email'], labels: { subject: hit.Subject.slice(0, 200) }, source: `${base}/api/v1/search`, others };
            }
          } catch (err) {
            last = (err as Error).message;
            Context.current().log.warn('alert inbox not readable', { error: last });
          }
          if (Date.now() >= until) return { observed: false, alertname, receivers: [], source: `${base}/api/v1/search (last: ${last})`, others: [] };
          await sleep(Math.min(1000, Math.max(0, until - Date.now())));
        }
      } finally {
        stop();
      }
    },

    /**
     * The drill's revert: the training incident must be over before the drill ends, or every later
     * drill is refused ("an incident is running"). Closed through closeIncident when it waits for
     * that, otherwise cancelled (its rotation child with it), terminated if it does not end in 30 s.
     */
    async closeTrainingIncident(req: { workflowId: string; by: string; reason: string }): Promise<{ how: 'already closed' | 'closed' | 'cancelled' | 'terminated' | 'never started'; detail: string }> {
      const stop = keepHeartbeating(() => ({ closing: req.workflowId }), 5000);
      try {
        return await withClient(async (client) => {
          const h = client.workflow.getHandle(req.workflowId);
          const running = async () => {
            try {
              return (await h.describe()).status.name === 'RUNNING';
            } catch (err) {
              if (err instanceof WorkflowNotFoundError) return undefined;
              throw err;
            }
          };
          const first = await running();
          if (first === undefined) return { how: 'never started', detail: `no workflow ${req.workflowId}` };
          if (!first) return { how: 'already closed', detail: `${req.workflowId} had already ended` };
          const p = await h.query<BreachProgress>('progress').catch(() => undefined);
          if (p && !p.training) throw failure('DrillRefused', `incident ${req.workflowId} is not a training incident: the drill never ends a real one`);
          // Already closed by its responder (it is recording the review): let it finish.
          const closedByUpdate =
            !!p?.close ||
            (p?.step === 'awaitIncidentClose' &&
            (await h.executeUpdate('closeIncident', { args: [{ who: req.by, summary: `training incident closed by the drill's revert: ${req.reason}`, contributingFactors: [], actionItems: [] }] }).then(
              () => true,
              () => false,
            )));
          let how: 'closed' | 'cancelled' | 'terminated' = closedByUpdate ? 'closed' : 'cancelled';
          if (!closedByUpdate) await h.cancel().catch(() => undefined);
          const deadline = Date.now() + 30_000;
          while ((await running()) && Date.now() < deadline) await sleep(250);
          if (await running()) {
            await h.terminate(`DR drill revert: ${req.reason}`);
            how = 'terminated';
          }
          return { how, detail: `${req.workflowId} ${how}${how === 'closed' ? '' : `: ${req.reason}`}` };
        });
      } finally {
        stop();
      }
    },
  };
};

export type TrainingIncidentActivities = ReturnType<typeof trainingIncidentActivities>;
