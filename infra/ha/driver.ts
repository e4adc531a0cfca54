// infra/ha/driver.ts
export type HaTarget = 'vault' | 'postgres';
export type HaFault =
  | 'kill-leader'      // SIGKILL the leader/primary (for postgres: postgres AND its patroni)
  | 'kill-postgres'    // postgres only: SIGKILL the postmaster, Patroni restarts it in place (postgres target only)
  | 'stop-node'        // SIGSTOP the leader/primary (hung host); healed by SIGCONT
  | 'planned';         // vault: sys/step-down; postgres: patronictl/REST switchover
export interface NodeHealth { name: string; role: 'leader' | 'standby' | 'replica' | 'down'; healthy: boolean; lagBytes?: number; detail?: string }
export interface ClusterHealth { target: HaTarget; healthy: boolean; leader?: string; nodes: NodeHealth[]; problems: string[] }
export interface InjectedFault { target: HaTarget; fault: HaFault; node: string; pid?: number; at: number /* epoch ms */ }
export interface HaDriver {
  readonly target: HaTarget;
  health(): Promise<ClusterHealth>;
  /** One sequence-numbered write through HAProxy; resolves only when acknowledged. */
  write(round: string, seq: number): Promise<void>;
  /** Sequence numbers (of those given) NOT present when read back through HAProxy. */
  missing(round: string, seqs: number[]): Promise<number[]>;
  inject(fault: HaFault): Promise<InjectedFault>;
  /** Undo the fault (restart the killed processes / SIGCONT) and return once the node is back in the cluster. */
  heal(f: InjectedFault, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}
