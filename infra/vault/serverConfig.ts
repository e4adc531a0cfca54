// The HCL of a single-node OpenBao raft server on loopback, as vault-dr starts them: staging
// servers for restore validation (stagingVault.ts) and the throwaway servers of the tests.
export interface RaftServerConfig {
  apiPort: number;
  clusterPort: number;
  raftDir: string;
  nodeId: string;
  /** Serve the API over TLS with these files; plain HTTP when absent. */
  tls?: { certFile: string; keyFile: string };
  /**
   * Raft timing: 1 is the production setting (OpenBao's default, 5, is for slow dev machines: its
   * leader election after a start or unseal waits 5 times longer). A single-node staging server
   * elects itself; bench/stagingSteps.ts measures what the setting costs each staging restore.
   */
  performanceMultiplier?: number;
}

export function raftServerHcl(c: RaftServerConfig): string {
  const scheme = c.tls ? 'https' : 'http';
  return `disable_mlock = true
listener "tcp" {
  address         = "127.0.0.1:${c.apiPort}"
  cluster_address = "127.0.0.1:${c.clusterPort}"
  ${c.tls ? `tls_cert_file = "${c.tls.certFile}"\n  tls_key_file = "${c.tls.keyFile}"` : 'tls_disable = true'}
}
storage "raft" {
  path    = "${c.raftDir}"
  node_id = "${c.nodeId}"
  performance_multiplier = ${c.performanceMultiplier ?? 1}
}
api_addr     = "${scheme}://127.0.0.1:${c.apiPort}"
cluster_addr = "https://127.0.0.1:${c.clusterPort}"
`;
}
