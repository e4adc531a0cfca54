// The Vault (OpenBao raft) side of the failover drill: health of every node and of autopilot,
// sequence-numbered KV writes through HAProxy, and the faults (SIGKILL or SIGSTOP of the leader's
// process, a planned sys/step-down) with their heal (restart + unseal + rejoin, SIGCONT).
// Process control is local (the nodes run on this host: the HA harness); the environment object
// says where the nodes, pids, tokens and unseal shares are, so nothing here reads the harness dir.
import { failure } from '../../common/errors';
import type { ClusterHealth, HaDriver, HaFault, InjectedFault, NodeHealth } from './driver';

export interface VaultHaNode {
  name: string;
  /** The node's own API address (api_addr), e.g. http://127.0.0.1:8211. */
  addr: string;
}

export interface VaultHaEnv {
  /** HAProxy's Vault frontend: every drill write and read goes through it. */
  haproxyAddr: string;
  nodes: VaultHaNode[];
  /** The drill token (policy vaultdr-ha-drill), read at the point of use. */
  token: () => string;
  /** The node's server process id, undefined when it is not running. */
  pid: (node: string) => number | undefined;
  /** Starts the node's server process again (after a SIGKILL); resolves once it answers. */
  start: (node: string) => Promise<unknown>;
  /** Stops the node's server process (SIGTERM, SIGKILL after a grace period); resolves once it is gone. */
  stop: (node: string) => Promise<unknown>;
  /** Unseals the node (Shamir shares held by the ha role); a joined node then rejoins through raft. */
  unseal: (node: string) => Promise<void>;
  /** Per-request client timeout; a hung node must not hold the writer longer. */
  requestTimeoutMs?: number;
  /** Whole-cluster operations (the cluster-loss drill); absent where the cluster cannot be rebuilt from here. */
  lifecycle?: VaultClusterLifecycle;
}

/**
 * Losing and rebuilding the whole cluster (the cluster-loss drill, docs/runbooks/dr-drills.md). Only
 * a cluster whose hosts this worker controls and that the configuration marks drillable.
 */
export interface VaultClusterLifecycle {
  /** Every node SIGKILLed and its storage and audit log removed. */
  destroy(): Promise<string[]>;
  /** A new, empty one-node cluster on `node` (sys/init, unsealed, active); its root token in the restore token file. */
  initEmpty(node: string): Promise<{ clusterId: string }>;
  /** `node` started with empty storage (it joins once unsealed with the cluster's shares). */
  startEmpty(node: string): Promise<void>;
  /** `node` restarted on its own data. */
  restart(node: string): Promise<void>;
  /** Gives `node` the shares (up to the threshold); sealed: false once unsealed. */
  unsealWith(node: string, shares: string[]): Promise<{ sealed: boolean }>;
  /** The cluster back to its normal, empty, healthy state (fresh init, tokens, KV mount). */
  rebuild(): Promise<string[]>;
}

/** What every node of a (restored) cluster says about itself: reachable, sealed, active, which cluster. */
export interface NodeSeal {
  name: string;
  status?: number;
  sealed?: boolean;
  active?: boolean;
  clusterId?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** OpenBao's lockRetryInterval: a node that stepped down waits this long before trying for the active lock again. */
export const STEP_DOWN_LOCK_RETRY_MS = 10_000;

/** One OpenBao API request with a client timeout: the status, the JSON body (or the start of a non-JSON one) and which node HAProxy chose (x-served-by). Throws when there is no answer. */
export async function vaultRequest(url: string, init: RequestInit = {}, timeoutMs = 3000): Promise<{ status: number; json: any; servedBy?: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let json: unknown = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { text: text.slice(0, 200) };
  }
  return { status: res.status, json, servedBy: res.headers.get('x-served-by') ?? undefined };
}

/** sys/health of one node: 200 active, 429 standby, 503 sealed, 501 uninitialised; undefined when no answer. */
async function nodeHealth(n: VaultHaNode, timeoutMs = 1500): Promise<{ status: number; json: any } | undefined> {
  try {
    return await vaultRequest(`${n.addr}/v1/sys/health`, {}, timeoutMs);
  } catch {
    return undefined;
  }
}

/** Every node, the leader, autopilot, and whether HAProxy routes to the leader. Never throws. */
export async function vaultClusterHealth(env: VaultHaEnv): Promise<ClusterHealth> {
  const problems: string[] = [];
  const nodes: NodeHealth[] = await Promise.all(
    env.nodes.map(async (n): Promise<NodeHealth> => {
      const pid = env.pid(n.name);
      const h = await nodeHealth(n);
      if (!h) return { name: n.name, role: 'down', healthy: false, detail: pid === undefined ? 'process not running' : 'no answer from sys/health (hung or starting)' };
      if (h.status === 200) return { name: n.name, role: 'leader', healthy: true, detail: `active, version ${h.json.version}` };
      if (h.status === 429) return { name: n.name, role: 'standby', healthy: true, detail: 'standby, unsealed' };
      return { name: n.name, role: 'down', healthy: false, detail: h.status === 503 ? 'sealed' : h.status === 501 ? 'not initialised' : `sys/health HTTP ${h.status}` };
    }),
  );
  for (const n of nodes) if (!n.healthy) problems.push(`${n.name}: ${n.detail}`);
  const leaders = nodes.filter((n) => n.role === 'leader');
  if (leaders.length === 0) problems.push('no active node');
  if (leaders.length > 1) problems.push(`more than one node answers active: ${leaders.map((l) => l.name).join(', ')}`);
  const leader = leaders.length === 1 ? leaders[0]!.name : undefined;
  if (leader) {
    const ln = env.nodes.find((n) => n.name === leader)!;
    try {
      const ap = await vaultRequest(`${ln.addr}/v1/sys/storage/raft/autopilot/state`, { headers: { 'X-Vault-Token': env.token() } }, 3000);
      if (ap.status !== 200) problems.push(`autopilot state: HTTP ${ap.status}`);
      else {
        const d = ap.json.data ?? {};
        const servers = Object.values(d.servers ?? {}) as { name?: string; id?: string; healthy?: boolean; status?: string; last_contact?: string }[];
        const voters = (d.voters ?? []) as string[];
        if (!d.healthy) problems.push(`autopilot: cluster not healthy (failure tolerance ${d.failure_tolerance ?? '?'})`);
        if (voters.length !== env.nodes.length) problems.push(`autopilot: ${voters.length} voter(s), expected ${env.nodes.length}`);
        for (const s of servers) {
          const nh = nodes.find((n) => n.name === (s.name ?? s.id));
          if (!s.healthy) problems.push(`autopilot: ${s.name ?? s.id} unhealthy (${s.status ?? '?'}, last contact ${s.last_contact ?? '?'})`);
          if (nh) nh.detail = `${nh.detail}; autopilot ${s.healthy ? 'healthy' : 'UNHEALTHY'} ${s.status ?? ''}`.trim();
          if (nh && !s.healthy) nh.healthy = false;
        }
        for (const n of nodes) if (!servers.some((s) => (s.name ?? s.id) === n.name)) problems.push(`autopilot: ${n.name} is not a raft member`);
      }
    } catch (err) {
      problems.push(`autopilot state unreadable: ${(err as Error).message}`);
    }
    try {
      const via = await vaultRequest(`${env.haproxyAddr}/v1/sys/health`, {}, 2000);
      if (via.status !== 200 || via.servedBy !== leader) problems.push(`HAProxy ${env.haproxyAddr} does not route to the active node yet (HTTP ${via.status}${via.servedBy ? ` from ${via.servedBy}` : ''})`);
    } catch (err) {
      problems.push(`HAProxy ${env.haproxyAddr} unreachable: ${(err as Error).message}`);
    }
  }
  return { target: 'vault', healthy: problems.length === 0, leader, nodes, problems };
}

export class VaultHaDriver implements HaDriver {
  readonly target = 'vault' as const;
  private readonly timeoutMs: number;

  constructor(private readonly env: VaultHaEnv) {
    this.timeoutMs = env.requestTimeoutMs ?? 2000;
  }

  health(): Promise<ClusterHealth> {
    return vaultClusterHealth(this.env);
  }

  private kvPath = (round: string, seq: number) => `secret/data/drill/${round}/${String(seq).padStart(6, '0')}`;

  async write(round: string, seq: number): Promise<void> {
    await this.writeVia(this.env.haproxyAddr, round, seq);
  }

  /** One write straight to a node (the bench's floor: a client that knows the surviving nodes). */
  async writeVia(addr: string, round: string, seq: number): Promise<void> {
    const r = await vaultRequest(`${addr}/v1/${this.kvPath(round, seq)}`, { method: 'POST', headers: { 'X-Vault-Token': this.env.token(), 'Content-Type': 'application/json' }, body: JSON.stringify({ data: { seq: String(seq), round } }) }, this.timeoutMs);
    if (r.status !== 200) throw new Error(`write ${round}/${seq}: HTTP ${r.status}${r.servedBy ? ` from ${r.servedBy}` : ''}: ${(r.json.errors ?? []).join('; ') || r.json.text || ''}`);
  }

  /**
   * Reads the round back through HAProxy, but only once HAProxy routes to the active node: right
   * after a step-down the old leader (a standby now) stays in rotation until its next check, and a
   * standby answers reads from its own, possibly not yet caught-up, copy (OpenBao 2.5+ standby
   * reads). A record missing there would be a stale read, not a lost write; a record missing at
   * the active node is lost.
   */
  async missing(round: string, seqs: number[]): Promise<number[]> {
    let lastErr = '';
    for (let attempt = 0; attempt < 120; attempt++) {
      try {
        const leader = await this.leader();
        const r = await vaultRequest(`${this.env.haproxyAddr}/v1/secret/metadata/drill/${round}?list=true`, { headers: { 'X-Vault-Token': this.env.token() } }, 5000);
        if (!leader || r.servedBy !== leader.name) {
          lastErr = `HAProxy answered from ${r.servedBy || 'no server'}, the active node is ${leader?.name ?? 'unknown'}`;
        } else if (r.status === 404) return [...seqs];
        else if (r.status === 200) {
          const present = new Set(((r.json.data?.keys ?? []) as string[]).map((k) => Number(k)));
          return seqs.filter((s) => !present.has(s));
        } else lastErr = `HTTP ${r.status}`;
      } catch (err) {
        lastErr = (err as Error).message;
      }
      await sleep(500);
    }
    throw new Error(`read back round ${round} through ${this.env.haproxyAddr}: ${lastErr}`);
  }

  /** The active node, asked of each node directly (not through HAProxy, which may lag). */
  async leader(): Promise<VaultHaNode | undefined> {
    for (const n of this.env.nodes) if ((await nodeHealth(n))?.status === 200) return n;
    return undefined;
  }

  async inject(fault: HaFault): Promise<InjectedFault> {
    const h = await this.health();
    const leader = h.leader ? this.env.nodes.find((n) => n.name === h.leader) : undefined;
    if (!leader) throw failure('HaDrillRefused', `vault: no active node to inject ${fault} into (${h.problems.join('; ')})`);
    // Raft keeps serving only while a majority of voters is up: losing the leader must leave one.
    const healthyOthers = h.nodes.filter((n) => n.name !== leader.name && n.healthy).length;
    const quorum = Math.floor(this.env.nodes.length / 2) + 1;
    if (healthyOthers < quorum) {
      const why = healthyOthers === 0 ? 'it is the last healthy node' : `only ${healthyOthers} other healthy node(s) would remain, below raft's quorum of ${quorum}`;
      throw failure('HaDrillRefused', `vault: refusing to ${fault} ${leader.name}: ${why}`);
    }
    switch (fault) {
      case 'kill-leader':
      case 'stop-node': {
        const pid = this.env.pid(leader.name);
        if (pid === undefined) throw failure('HaDrillRefused', `vault: ${leader.name} answers as leader but its process is not one this host controls`);
        process.kill(pid, fault === 'kill-leader' ? 'SIGKILL' : 'SIGSTOP');
        return { target: 'vault', fault, node: leader.name, pid, at: Date.now() };
      }
      case 'planned': {
        const at = Date.now();
        // sys/step-down through HAProxy (2.5.4+ forwards it to the active node anyway).
        const r = await vaultRequest(`${this.env.haproxyAddr}/v1/sys/step-down`, { method: 'PUT', headers: { 'X-Vault-Token': this.env.token() } }, 10_000);
        if (r.status !== 204 && r.status !== 200) throw new Error(`vault: sys/step-down: HTTP ${r.status}: ${(r.json.errors ?? []).join('; ')}`);
        return { target: 'vault', fault, node: leader.name, at };
      }
      default:
        throw failure('InvalidInput', `fault: ${fault} is not a Vault fault (kill-leader, stop-node, planned)`);
    }
  }

  async heal(f: InjectedFault, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const node = this.env.nodes.find((n) => n.name === f.node);
    if (!node) throw failure('InvalidInput', `vault: no node named ${f.node}`);
    if (f.fault === 'stop-node') {
      const pid = this.env.pid(f.node);
      if (pid !== undefined) process.kill(pid, 'SIGCONT');
    }
    // A node that stepped down does not try for the active lock again for 10 s (OpenBao's
    // lockRetryInterval). If raft hands leadership back to it within that time (the next drill
    // round stepping down another node), the cluster has a raft leader but no active node until the
    // timer fires: measured 5.5-6.7 s gaps with rounds 15 s apart. "Healed" therefore includes
    // waiting that window out, so each planned round starts from a cluster any node can lead.
    if (f.fault === 'planned') await sleep(Math.max(0, Math.min(deadline, f.at + STEP_DOWN_LOCK_RETRY_MS + 1000) - Date.now()));
    let lastDetail = '';
    while (Date.now() < deadline) {
      const pid = this.env.pid(f.node);
      if (pid === undefined) {
        // Killed (or died): the same data dir, the same raft member, started again.
        await this.env.start(f.node).catch((err: Error) => (lastDetail = `restart failed: ${err.message.split('\n')[0]}`));
        if (this.env.pid(f.node) === undefined) await sleep(1000);
        continue;
      }
      const h = await nodeHealth(node);
      if (h?.status === 503 && h.json.initialized) {
        await this.env.unseal(f.node).catch((err: Error) => (lastDetail = err.message));
      } else if (h && (h.status === 200 || h.status === 429)) {
        const c = await this.health();
        const me = c.nodes.find((n) => n.name === f.node);
        if (me?.healthy && c.healthy) return;
        lastDetail = c.problems.join('; ');
      } else lastDetail = h ? `sys/health HTTP ${h.status}` : 'no answer';
      await sleep(500);
    }
    throw failure('HaNodeDidNotRejoin', `vault: ${f.node} did not rejoin the cluster within ${Math.round(timeoutMs / 1000)}s after ${f.fault}: ${lastDetail}`);
  }

  private lifecycle(): VaultClusterLifecycle {
    if (!this.env.lifecycle) throw failure('DrillRefused', 'vault: this worker cannot rebuild the HA cluster (no cluster lifecycle: only the local HA harness has one)');
    return this.env.lifecycle;
  }

  /** sys/health of every node, never throwing (standbyok/sealedcode/uninitcode answer 200 with the facts). */
  async seals(): Promise<NodeSeal[]> {
    return Promise.all(
      this.env.nodes.map(async (n): Promise<NodeSeal> => {
        const h = await vaultRequest(`${n.addr}/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200`, {}, 1500).catch(() => undefined);
        if (!h) return { name: n.name };
        return { name: n.name, status: h.status, sealed: !!h.json.sealed || !h.json.initialized, active: h.json.initialized && !h.json.sealed && !h.json.standby, clusterId: h.json.cluster_id || undefined };
      }),
    );
  }

  /** The cluster-loss fault: every node's process and data gone. */
  async loseCluster(): Promise<{ at: number; nodes: string[]; detail: string[] }> {
    const at = Date.now();
    const detail = await this.lifecycle().destroy();
    return { at, nodes: this.env.nodes.map((n) => n.name), detail };
  }

  /** A new, empty cluster on the first node, initialised and active; the other nodes stay down until the restore. */
  async buildEmptyCluster(): Promise<{ node: string; clusterId: string }> {
    const first = this.env.nodes[0]!;
    const { clusterId } = await this.lifecycle().initEmpty(first.name);
    return { node: first.name, clusterId };
  }

  /**
   * After a snapshot of another cluster was forced into the first node: restart it if it did not
   * seal itself yet, unseal it with that cluster's shares until it is active under `expectClusterId`,
   * then start every other node empty and unseal it the same way so it joins (raft retry_join).
   * Resolves when every node is unsealed and serves `expectClusterId`.
   */
  async unsealRestoredCluster(shares: string[], expectClusterId: string, timeoutMs: number, progress: (s: string) => void = () => {}): Promise<{ nodes: NodeSeal[]; unsealedMs: number }> {
    const lc = this.lifecycle();
    const t0 = Date.now();
    const deadline = t0 + timeoutMs;
    const [first, ...others] = this.env.nodes;
    const me = async (name: string) => (await this.seals()).find((x) => x.name === name)!;
    // The node keeps serving its pre-restore keyring for a moment, then seals itself; a restart
    // makes it read the restored keyring at once (docs/runbooks/restore.md).
    let s = await me(first!.name);
    if (!s.sealed && s.clusterId !== expectClusterId) {
      progress(`${first!.name}: restarting on the restored data`);
      await lc.restart(first!.name);
    }
    const unseal = async (name: string) => {
      let last = '';
      for (;;) {
        s = await me(name);
        if (s.status !== undefined && !s.sealed && s.clusterId === expectClusterId) return;
        if (Date.now() > deadline) throw failure('UnsealFailed', `vault: ${name} not unsealed with the restored cluster's shares within ${Math.round(timeoutMs / 1000)}s (${last || (s.status === undefined ? 'no answer' : s.sealed ? 'sealed' : `cluster ${s.clusterId}`)})`);
        // Not running (a worker died while it restarted the node): start it again on its data.
        if (s.status === undefined && this.env.pid(name) === undefined) await this.env.start(name).catch((err: Error) => (last = `start failed: ${err.message.split('\n')[0]}`));
        if (s.status !== undefined && s.sealed) {
          progress(`${name}: unsealing with the restored cluster's shares`);
          await lc.unsealWith(name, shares).catch((err: Error) => (last = err.message));
        }
        await sleep(s.sealed ? 1000 : 300);
      }
    };
    await unseal(first!.name);
    for (const n of others) {
      progress(`${n.name}: started empty, joining the restored cluster`);
      await lc.startEmpty(n.name);
      await unseal(n.name);
    }
    return { nodes: await this.seals(), unsealedMs: Date.now() - t0 };
  }

  /** The cluster back to the harness's normal state (the revert). */
  async rebuildCluster(): Promise<string[]> {
    return this.lifecycle().rebuild();
  }

  async close(): Promise<void> {}
}
