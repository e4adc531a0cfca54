// Seal/unseal drill activities for target "ha" (restore role: it holds the HA cluster's drill
// token and node control, ha.harnessDir, and the custodian share intake). `sys/seal` only seals the
// active node and a standby would take over, so the standbys are stopped first; the active node is
// sealed with the drill token; the API must refuse through HAProxy; the custodians' shares go
// through the intake (sealDrill.ts openUnsealIntake, never through Temporal); a lone raft node of
// three cannot become active (no quorum), so one standby comes back before the cluster can serve
// again through HAProxy; then the rest, until the cluster is fully healthy. Node start/stop is the
// HA drivers' (activities/ha/drivers.ts). What was stopped is written to a state file before the
// first node stops, so a retry or the cleanup knows; the cleanup brings every node back whatever
// the state file says. The state file also names the run: a restore worker that starts while a
// drill is under way (its predecessor died) opens its share intake for that run again, so the
// custodians' shares reach the sealed node through the new process.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Context } from '@temporalio/activity';
import { failure } from '../../common/errors';
import type { Config } from '../../infra/config';
import { vaultClusterHealth, vaultRequest, type VaultHaEnv } from '../../infra/ha/vaultDriver';
import { startVaultNode, stopVaultNode } from '../ha/drivers';
import type { ShareIntake } from '../../infra/vault/shareIntake';
import { heartbeating } from '../heartbeat';
import { stagingUnsealTarget } from './sealDrill';

/** The HA drill's sealed node, as openUnsealIntake takes it (stagingId: the drill id). */
export interface HaSealTarget {
  address: string;
  stagingId: string;
  node: string;
  standbys: string[];
  /** Where the canary was written through HAProxy (its value stays on the worker). */
  canaryPath: string;
}

interface SealState {
  node: string;
  address: string;
  standbys: string[];
  canaryPath: string;
  marker: string;
  /** The drill's run (absent in state files written before it was recorded). */
  workflowId?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A request through vaultRequest; undefined when nothing answers (a stopped or sealed node is an expected answer here). */
const call = (url: string, init: RequestInit = {}, timeoutMs = 3000) => vaultRequest(url, init, timeoutMs).catch(() => undefined);

const errs = (r: { json: any } | undefined) => ((r?.json?.errors ?? []) as string[]).join('; ');

export const haSealDrillActivities = (deps: { cfg: Config; env: () => VaultHaEnv | undefined; intake?: ShareIntake }) => {
  const stateDir = path.join(deps.cfg.ha.harnessDir ?? '.', 'drill-state');
  const stateFile = (drillId: string) => path.join(stateDir, `seal-${drillId}.json`);
  const readState = (drillId: string): SealState => {
    const f = stateFile(drillId);
    if (!fs.existsSync(f)) throw failure('StagingMissing', `seal drill ${drillId}: no record of the stopped standbys at ${f} (worker host changed?)`, false);
    return JSON.parse(fs.readFileSync(f, 'utf8')) as SealState;
  };
  const haEnv = (): VaultHaEnv => {
    const env = deps.env();
    if (!env) throw failure('HaDrillRefused', 'target: "ha" needs the HA cluster on this worker (ha.harnessDir is unset here; npm run ha:up and set it)');
    return env;
  };
  const haproxy = () => deps.cfg.ha.vaultAddress.replace(/\/+$/, '');

  // A drill under way when this worker starts (the last one died): take its custodians' shares here.
  // The cleanup (restoreStandbys "all") removes the state file, so a finished drill is not reopened.
  if (deps.intake && deps.cfg.ha.harnessDir && fs.existsSync(stateDir)) {
    for (const f of fs.readdirSync(stateDir).filter((n) => /^seal-.*\.json$/.test(n))) {
      try {
        const st = JSON.parse(fs.readFileSync(path.join(stateDir, f), 'utf8')) as SealState;
        if (st.workflowId) deps.intake.openUnseal(st.workflowId, stagingUnsealTarget(st.address));
      } catch {
        // An unreadable state file: the drill's own activities report it by name (readState).
      }
    }
  }

  return {
    /**
     * Notes the active node, writes a canary through HAProxy, records what it will stop, then stops
     * every standby. A retry after the stop finds the record (the active node has lost quorum and
     * stepped down by then) and finishes the stop.
     */
    async stopStandbys(req: { drillId: string }): Promise<HaSealTarget> {
      return heartbeating('stopStandbys', async () => {
        const env = haEnv();
        let st: SealState;
        if (fs.existsSync(stateFile(req.drillId))) st = readState(req.drillId);
        else {
          const h = await vaultClusterHealth(env);
          if (!h.healthy || !h.leader) throw failure('HaDrillRefused', `vault: refusing to seal a cluster that is not fully healthy: ${h.problems.join('; ')}`);
          const active = env.nodes.find((n) => n.name === h.leader)!;
          const canaryPath = `secret/data/drill/seal-${req.drillId}/canary`;
          const marker = `seal-drill-${crypto.randomBytes(6).toString('hex')}`;
          const w = await call(`${haproxy()}/v1/${canaryPath}`, { method: 'POST', headers: { 'X-Vault-Token': env.token(), 'Content-Type': 'application/json' }, body: JSON.stringify({ data: { marker } }) });
          if (w?.status !== 200) throw failure('VaultRequestRejected', `canary write through ${haproxy()}: ${w ? `HTTP ${w.status} ${errs(w)}` : 'no answer'}`);
          const workflowId = Context.current().info.workflowExecution?.workflowId;
          st = { node: active.name, address: active.addr, standbys: env.nodes.filter((n) => n.name !== active.name).map((n) => n.name), canaryPath, marker, workflowId };
          fs.mkdirSync(path.dirname(stateFile(req.drillId)), { recursive: true, mode: 0o700 });
          fs.writeFileSync(stateFile(req.drillId), JSON.stringify(st), { mode: 0o600 });
        }
        // Both at once: the active node keeps its lock for a second or two after losing quorum.
        await Promise.all(st.standbys.map((n) => stopVaultNode(env, n)));
        return { address: st.address, stagingId: req.drillId, node: st.node, standbys: st.standbys, canaryPath: st.canaryPath };
      });
    },

    /**
     * POST sys/seal on the drilled node with the drill token (sealed already: nothing to do). Without
     * its standbys the node steps down within a raft leader lease (about 0.5 s), and a standby cannot
     * be sealed through the API (sys/seal answers 500): a seal that arrives after the step-down
     * restarts the node's process instead, which comes up sealed (the same effect; OpenBao unseals
     * with Shamir shares, so nothing unseals it but the custodians or the cleanup).
     */
    async sealActiveNode(req: { drillId: string }): Promise<{ ms: number; detail: string }> {
      return heartbeating('sealActiveNode', async () => {
        const env = haEnv();
        const st = readState(req.drillId);
        const t0 = Date.now();
        const sealed = async () => (await call(`${st.address}/v1/sys/seal-status`))?.json?.sealed === true;
        const r = await call(`${st.address}/v1/sys/seal`, { method: 'POST', headers: { 'X-Vault-Token': env.token() } }, 15_000);
        if (r?.status === 204 || r?.status === 200 || (await sealed())) return { ms: Date.now() - t0, detail: `${st.node} sealed` };
        const refusal = r ? `HTTP ${r.status} ${errs(r)}` : 'no answer';
        if ((await call(`${st.address}/v1/sys/health`))?.status !== 429) throw failure('VaultRequestRejected', `sys/seal at ${st.node} (${st.address}): ${refusal}`);
        await stopVaultNode(env, st.node);
        await env.start(st.node);
        if (!(await sealed())) throw failure('VaultRequestRejected', `${st.node} (${st.address}) had stepped down before sys/seal (${refusal}) and is not sealed after a restart`);
        return { ms: Date.now() - t0, detail: `${st.node} sealed by a restart (it had stepped down without quorum before sys/seal: ${refusal})` };
      });
    },

    /**
     * The API refuses: through HAProxy neither sys/health nor the canary read answers 200 (HAProxy
     * takes a check or two to mark the sealed node down: polled up to timeoutSeconds), the node
     * itself answers sealed, and no standby process runs.
     */
    async proveHaRefuses(req: { drillId: string; timeoutSeconds: number }): Promise<{ refused: boolean; refusedAfterMs: number; detail: string }> {
      return heartbeating('proveHaRefuses', async () => {
        const env = haEnv();
        const st = readState(req.drillId);
        const t0 = Date.now();
        let detail = '';
        do {
          const via = await call(`${haproxy()}/v1/sys/health`);
          const read = await call(`${haproxy()}/v1/${st.canaryPath}`, { headers: { 'X-Vault-Token': env.token() } });
          const own = await call(`${st.address}/v1/sys/health`);
          const running = st.standbys.filter((n) => env.pid(n) !== undefined);
          const show = (r: typeof via) => (r ? `HTTP ${r.status}${r.status !== 200 && errs(r) ? ` ${errs(r)}` : ''}` : 'no answer');
          detail = `through HAProxy: sys/health ${show(via)}, canary read ${show(read)}; ${st.node} sys/health ${own ? `HTTP ${own.status} sealed=${String(own.json.sealed)}` : 'no answer'}; standbys running: ${running.join(', ') || 'none'}`;
          if (via?.status !== 200 && read?.status !== 200 && own?.status === 503 && own.json.sealed === true && running.length === 0) return { refused: true, refusedAfterMs: Date.now() - t0, detail };
          await sleep(250);
        } while (Date.now() - t0 < req.timeoutSeconds * 1000);
        return { refused: false, refusedAfterMs: Date.now() - t0, detail };
      });
    },

    /**
     * Brings stopped nodes back, unsealed from the ha role's custody. "quorum": the first standby
     * only, then waits for an active node (a lone unsealed node of three cannot win an election).
     * "all": every node of the cluster (the drilled node too if it is still sealed: a drill that
     * failed before the custodians finished), then waits until the cluster is fully healthy, and
     * removes the canary and the state file. Idempotent; the cleanup path calls it with "all".
     */
    async restoreStandbys(req: { drillId: string; scope: 'quorum' | 'all'; timeoutSeconds: number }): Promise<{ ms: number; started: string[]; leader?: string; custodyUnsealed: string[]; detail: string }> {
      return heartbeating(`restoreStandbys ${req.scope}`, async () => {
        const env = haEnv();
        const t0 = Date.now();
        const deadline = t0 + req.timeoutSeconds * 1000;
        const st = fs.existsSync(stateFile(req.drillId)) ? readState(req.drillId) : undefined;
        const started: string[] = [];
        const custodyUnsealed: string[] = [];
        const bringBack = async (name: string) => {
          const node = env.nodes.find((n) => n.name === name)!;
          const sealed = (await call(`${node.addr}/v1/sys/seal-status`, {}, 1500))?.json?.sealed === true;
          const r = await startVaultNode(env, name, Math.max(1000, deadline - Date.now()));
          if (r === 'started') started.push(name);
          else if (sealed) custodyUnsealed.push(name);
        };
        if (req.scope === 'quorum') {
          if (!st) throw failure('StagingMissing', `seal drill ${req.drillId}: no record of the stopped standbys`, false);
          await bringBack(st.standbys[0]!).catch((err: Error) => {
            throw failure('HaNodeDidNotRejoin', `vault: ${err.message}`);
          });
          let leader: string | undefined;
          while (!leader && Date.now() < deadline) {
            for (const n of env.nodes) if ((await call(`${n.addr}/v1/sys/health`, {}, 1000))?.status === 200) leader = n.name;
            if (!leader) await sleep(250);
          }
          if (!leader) throw failure('HaNodeDidNotRejoin', `vault: no active node within ${req.timeoutSeconds}s after ${st.standbys[0]} came back`);
          return { ms: Date.now() - t0, started, leader, custodyUnsealed, detail: `${started.join(', ') || 'no node'} started; ${leader} active` };
        }
        // Every node, even when one of them cannot come back: the cluster is never left more degraded than it must be.
        const failed = (await Promise.allSettled(env.nodes.map((n) => bringBack(n.name)))).flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
        if (failed.length) throw failure('HaNodeDidNotRejoin', `vault: the seal drill could not bring every node back within ${req.timeoutSeconds}s: ${failed.join('; ')}`);
        let h = await vaultClusterHealth(env);
        while (!h.healthy && Date.now() < deadline) {
          await sleep(500);
          h = await vaultClusterHealth(env);
        }
        if (!h.healthy) throw failure('HaNodeDidNotRejoin', `vault: the cluster is not fully healthy ${req.timeoutSeconds}s after the seal drill brought its nodes back: ${h.problems.join('; ')}`);
        if (st) {
          const meta = st.canaryPath.replace('secret/data/', 'secret/metadata/');
          await call(`${haproxy()}/v1/${meta}`, { method: 'DELETE', headers: { 'X-Vault-Token': env.token() } });
          fs.rmSync(stateFile(req.drillId), { force: true });
        }
        const extra = custodyUnsealed.length ? `; unsealed from the ha role's custody: ${custodyUnsealed.join(', ')}` : '';
        return { ms: Date.now() - t0, started, leader: h.leader, custodyUnsealed, detail: `${started.join(', ') || 'no node'} started; cluster fully healthy, leader ${h.leader}${extra}` };
      });
    },

    /** Serves again through HAProxy: an active node in rotation, and the canary reads back what was written before the seal. */
    async proveHaServes(req: { drillId: string; timeoutSeconds: number }): Promise<{ serves: boolean; servedBy?: string; detail: string }> {
      return heartbeating('proveHaServes', async () => {
        const env = haEnv();
        const st = readState(req.drillId);
        const deadline = Date.now() + req.timeoutSeconds * 1000;
        let last = '';
        while (Date.now() < deadline) {
          const r = await call(`${haproxy()}/v1/${st.canaryPath}`, { headers: { 'X-Vault-Token': env.token() } });
          if (r?.status === 200) {
            const found = r.json.data?.data?.marker as string | undefined;
            return { serves: found === st.marker, servedBy: r.servedBy, detail: `canary ${found === st.marker ? 'reads back' : 'DIFFERS'} through HAProxy (served by ${r.servedBy ?? '?'})` };
          }
          last = r ? `HTTP ${r.status} ${errs(r)}` : 'no answer';
          await sleep(250);
        }
        return { serves: false, detail: `canary read through HAProxy for ${req.timeoutSeconds}s: ${last}` };
      });
    },
  };
};

export type HaSealDrillActivities = ReturnType<typeof haSealDrillActivities>;
