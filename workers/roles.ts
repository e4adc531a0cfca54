// Which secret each worker role holds (docs/worker-roles.md). A process drops every secret path its
// roles do not need before anything reads a file, so a backup worker given a full config still
// never opens the validation key or the unseal shares; the local stack writes per-role configs
// from the same table, as a production host's config would be.
import { WORKER_ROLES, type WorkerRole } from '../common/roles';

/** Secret (or secret-bearing) config fields and the roles that need them; every other role loses them. */
export const SECRET_FIELDS: Record<string, readonly WorkerRole[]> = {
  'vault.roleIdFile': ['backup', 'notify'],
  'vault.secretIdFile': ['backup', 'notify'],
  'vault.tokenFile': ['backup', 'notify'],
  's3.credentialsFile': ['backup', 'restore', 'notify'],
  'backup.recipientsFile': ['backup'],
  'backup.validationKeyFile': ['restore'],
  'restore.unsealSharesFile': ['restore'],
  'restore.validatorRoleIdFile': ['restore'],
  'restore.validatorSecretIdFile': ['restore'],
  'restore.productionTokenFile': ['restore'],
  'restore.shareIntakeTokensFile': ['restore'],
  // The HA clusters' unseal shares and drill token (failover drills run in the restore role).
  'ha.harnessDir': ['restore'],
  // The HA PostgreSQL cluster's monitoring login (vaultHealthCheck / vaultHealthMonitor probes run in the backup role).
  'ha.postgresMonitorFile': ['backup'],
  // Emergency rotation and the unseal-key ceremonies run in the restore role (beside the break-glass token).
  'rotation.tokenFile': ['restore'],
  'rotation.postgresSuperuserUrlFile': ['restore'],
  'rotation.unsealTokenFile': ['restore'],
  // Its own SSH key for the host whose mailbox passwords and authorized_keys it rotates (rotation.host).
  'rotation.sshKeyFile': ['restore'],
  // The migration role: the worker's own SSH key for the VPS hosts and the AppRole that reads the migration secrets.
  'migration.roleIdFile': ['migration'],
  'migration.secretIdFile': ['migration'],
  'migration.sshKeyFile': ['migration'],
  // The codec endpoint (which decodes history for the Web UI) runs in the workflows role's process only.
  'codec.tokensFile': ['workflows'],
};

/** What each role holds, in words, for logs and `vaultdr`/stack status (the docs table says the same). */
export const ROLE_SUMMARY: Record<WorkerRole, string> = {
  workflows: 'workflow code on the base queue; holds the payload codec keyring and serves the codec endpoint',
  backup: 'backup, bucket, canary, retention, Vault/S3 health and monitor probes; holds the backup AppRole, S3 credentials, public recipient keys',
  restore: 'restore and staging validation, custodian share intake, failover drills, emergency rotation and unseal-key ceremonies; holds the validation key, unseal shares, validator AppRole, break-glass token, the HA harness (its unseal shares and drill token), rotator token, PostgreSQL superuser URL, the rotation SSH key for rotation.host',
  migration: 'VPS migration and SMTP recovery over SSH; holds the migration SSH private key and the migration AppRole (read on the migration secrets only)',
  notify: 'alerts, mail relay probe, delivery checks; holds SMTP settings and reads the Slack/PagerDuty secrets from Vault',
};

/**
 * A copy of `cfg` without the secret fields none of `roles` needs (works on the parsed config and
 * on the raw JSON the stack writes). Returns the dropped field names so the process can say so.
 */
export function scopeConfig<T extends object>(cfg: T, roles: readonly WorkerRole[]): { cfg: T; dropped: string[] } {
  const copy = JSON.parse(JSON.stringify(cfg)) as Record<string, Record<string, unknown> | undefined>;
  const dropped: string[] = [];
  for (const [field, holders] of Object.entries(SECRET_FIELDS)) {
    if (holders.some((r) => roles.includes(r))) continue;
    const [section, key] = field.split('.') as [string, string];
    const node = copy[section];
    if (node && node[key] !== undefined) {
      delete node[key];
      dropped.push(field);
    }
  }
  return { cfg: copy as T, dropped };
}

/** Roles in a stable order, duplicates removed. */
export function normaliseRoles(roles: readonly WorkerRole[]): WorkerRole[] {
  return WORKER_ROLES.filter((r) => roles.includes(r));
}
