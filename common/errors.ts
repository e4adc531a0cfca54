// The error catalog: every failure type vault-dr raises, whether Temporal retries it, the first
// thing an operator does about it, and where the runbook explains it. The activity profiles'
// non-retryable lists (workflows/profiles.ts), the default retryability of `failure()` and the
// table in docs/runbooks/errors.md are all derived from this one object, so they cannot disagree.
// Adding a type is one entry here. Workflow-safe: no Node built-ins.
// Workflows catch by `type`, never by message text.
import { ApplicationFailure } from '@temporalio/common';

export interface ErrorInfo {
  /** Temporal retries the activity (within its profile's attempts). */
  retryable: boolean;
  /** One line for the operator: what to do first. */
  firstResponse: string;
  /** Where the runbook explains it: `<file in docs/runbooks>#<heading anchor>`. */
  runbook: string;
}

export const ERROR_CATALOG = {
  InvalidInput: { retryable: false, firstResponse: 'fix the field the message names and start the workflow again', runbook: 'errors.md#invalidinput' },
  ConfigInvalid: { retryable: false, firstResponse: 'fix the worker setting or secret file the message names (path and field), then run the workflow again', runbook: 'errors.md#configinvalid' },
  VaultUnreachable: { retryable: true, firstResponse: '`bao status` against `vault.address`; OpenBao logs; network between worker and OpenBao', runbook: 'backup.md#writecanary' },
  VaultUnavailable: { retryable: true, firstResponse: 'no OpenBao server answered behind the load balancer (failover in progress?): `bao status` on each node; retried automatically', runbook: 'backup.md#writecanary' },
  TransferStalled: { retryable: true, firstResponse: 'no byte moved for the heartbeat timeout: check the store and the target (`npx vaultdr health`, `bao status`, OpenBao logs); retried automatically', runbook: 'restore.md#restoresnapshot' },
  VaultSealed: { retryable: false, firstResponse: 'unseal (health-check runbook); if sealed on purpose, not without the incident lead', runbook: 'backup.md#writecanary' },
  VaultAuthFailed: { retryable: false, firstResponse: 're-issue the AppRole secret-id or re-apply the worker policy', runbook: 'backup.md#writecanary' },
  VaultRequestRejected: { retryable: false, firstResponse: "read OpenBao's answer in the message; check `backup.kvMount` and `backup.canaryPath`", runbook: 'backup.md#writecanary' },
  VaultStandby: { retryable: false, firstResponse: 'point `vault.address` at the active node or a load balancer that routes only to it (HA: HAProxy, docs/runbooks/ha-failover.md)', runbook: 'backup.md#snapshottostore' },
  StoreUnreachable: { retryable: true, firstResponse: '`npx vaultdr health` (object store check), then run again', runbook: 'restore.md#verifybackupbeforerestore' },
  BucketNotCompliant: { retryable: false, firstResponse: 'enable the setting the message names on the bucket, or remove the requirement only if the store cannot do it', runbook: 'backup.md#checkbackupbucket' },
  BackupOverwritten: { retryable: false, firstResponse: 'a backup object no longer matches the version its manifest pins: keep every version, find who wrote to the key, take a new backup', runbook: 'backup.md#overwritten-or-deleted-backup-objects' },
  KeyMaterialMissing: { retryable: false, firstResponse: "fix the worker's key or share configuration; never make new keys while old backups need the old shares", runbook: 'backup.md#snapshottostore' },
  SnapshotInvalid: { retryable: true, firstResponse: 'OpenBao logs and disk; take and inspect a snapshot by hand', runbook: 'backup.md#snapshottostore' },
  BackupCorrupt: { retryable: false, firstResponse: 'treat as a storage fault or tampering; keep the object; validate the previous backup', runbook: 'backup.md#verifyuploadedbackup' },
  BackupNotFound: { retryable: false, firstResponse: '`npx vaultdr backup list`; check that backups run and nothing else deletes in `backups/`', runbook: 'restore.md#selectbackup' },
  VerificationFailed: { retryable: false, firstResponse: 'do not trust this backup until the difference named in the message is explained', runbook: 'restore.md#verifyrestoredsecrets' },
  StagingMissing: { retryable: true, firstResponse: 'run the restore again; keep restore steps on one host', runbook: 'restore.md#restoresnapshot' },
  RestoreRejected: { retryable: true, firstResponse: "read OpenBao's reason in the message; compare `restore.baoBinary`'s version with the manifest", runbook: 'restore.md#restoresnapshot' },
  UnsealFailed: { retryable: false, firstResponse: "make `restore.unsealSharesFile` hold the backed-up cluster's shares as of the backup", runbook: 'restore.md#unsealtarget' },
  RestoreRefused: { retryable: false, firstResponse: 'nothing for the target; start a new restore if the reason allows', runbook: 'restore.md#awaitapproval' },
  HaDrillRefused: { retryable: false, firstResponse: 'bring the cluster to full health (`npm run ha:status`, docs/runbooks/ha-failover.md) and start the drill again; never drill a cluster that has no failure tolerance left', runbook: 'ha-failover.md#checkclusterhealthy' },
  HaNodeDidNotRejoin: { retryable: false, firstResponse: 'the drilled node is not back: read its log, restart and unseal it by hand (manual path in the runbook) before anything else', runbook: 'ha-failover.md#healfault' },
  HaFailoverTooSlow: { retryable: false, firstResponse: 'the cluster did not take a write within maxGapSeconds of the fault: check the leader election (node logs) and HAProxy (`npm run ha:status`, stats page); the drill healed the node before failing', runbook: 'ha-failover.md#runfailoverround' },
  DrillRefused: { retryable: false, firstResponse: 'read the reason: another drill or an incident is running, the target is not in drills.drillableTargets, the scenario is not automated yet, or (credential-compromise) alerts.inbox.mailpitUrl is not set; start the drill again once it no longer applies', runbook: 'dr-drills.md#checkdrillpreconditions' },
  DrillSteadyStateNotHolding: { retryable: false, firstResponse: 'the system was not healthy before the fault: fix what the message names (it may be a real incident) and run the drill again; nothing was injected', runbook: 'dr-drills.md#checksteadystate' },
  DrillRestoreFailed: { retryable: false, firstResponse: "the cluster-loss drill's production restore failed or was not approved in time: read the restore's own failure (its workflow id is in the message); the drill cluster is rebuilt by revertFault either way", runbook: 'dr-drills.md#restorelatestbackup' },
  DrillAborted: { retryable: false, firstResponse: 'the facilitator or a stop condition aborted the drill; the fault was reverted (see the report and the revertFault step); write the finding if the stop condition was unexpected', runbook: 'dr-drills.md#revertfault' },
  HaWritesLost: { retryable: false, firstResponse: 'an acknowledged write is gone after a failover: stop drilling, keep the nodes\' data dirs and logs, and treat it as a data-loss incident', runbook: 'ha-failover.md#runfailoverround' },
  RotationNotPossible: { retryable: false, firstResponse: 'the rotation cannot run as asked (unknown scope, no default scope, a prefix that would revoke the rotator itself): fix the input or rotation.* config the message names', runbook: 'credential-rotation.md#planrotation' },
  UnsealRotationFailed: { retryable: false, firstResponse: 'the unseal-key ceremony is not where the workflow expects it (cancelled, another ceremony started, new shares do not unseal): read the message; the old shares stay valid until verification completes', runbook: 'unseal-key-rotation.md#initrootkeyrotation' },
  ApprovalTimeout: { retryable: false, firstResponse: 'start a new restore when a responder is available (production unseal wait: finish by hand)', runbook: 'restore.md#awaitapproval' },
  NoticeTemplateInvalid: { retryable: false, firstResponse: 'fix the template or the tenant registry entry the message names (a variable with no value, an unknown variable); nothing was sent', runbook: 'breach-response.md#preparetenantnotices' },
  NoticeContainsSecret: { retryable: false, firstResponse: 'remove the secret value from the field that carried it (summary, finding, notice facts); rotate that credential too; nothing was sent', runbook: 'breach-response.md#preparetenantnotices' },
  TenantRegistryInvalid: { retryable: false, firstResponse: 'fix the tenant registry (config `incident.tenantsFile` or Vault KV `incident.tenantRegistryPath`) at the field the message names', runbook: 'breach-response.md#assessexposure' },
  NoticeDeliveryFailed: { retryable: true, firstResponse: "the relay refused or was unreachable for this tenant's notice; retried automatically; after the last attempt send it by hand (runbook) and record it with `vaultdr incident note`", runbook: 'breach-response.md#sendtenantnotices' },
  SealFailed: { retryable: false, firstResponse: 'seal by hand on the active node (`bao operator seal`), stop the standbys, then record it with `vaultdr incident note`', runbook: 'breach-response.md#emergencyseal' },
  HostKeyMismatch: { retryable: false, firstResponse: "the host's SSH key is not the pinned one: check it out of band (console, provider panel), then start again with the right hostKeySha256", runbook: 'vps-migration.md#preflighttarget' },
  HostUnreachable: { retryable: true, firstResponse: 'the host does not answer on its SSH port: check it runs, its address and port, the firewall; retried automatically', runbook: 'vps-migration.md#preflighttarget' },
  SshAuthFailed: { retryable: false, firstResponse: "put the worker's migration public key (migration.sshKeyFile) into the host's authorized_keys for the migration user", runbook: 'vps-migration.md#preflighttarget' },
  HostCommandFailed: { retryable: false, firstResponse: 'read the command and its stderr in the message; fix the host, then start again (what was changed has been undone)', runbook: 'vps-migration.md#compensation' },
  SecretMissing: { retryable: false, firstResponse: 'write the secret at the Vault path the message names (or fix migration.secrets in the config)', runbook: 'vps-migration.md#readmigrationsecrets' },
  SecretMalformed: { retryable: false, firstResponse: 'fix the field the message names in that Vault secret (the value itself is never shown)', runbook: 'vps-migration.md#readmigrationsecrets' },
  SmtpAuthFailed: { retryable: false, firstResponse: 'the mail host or the relay refused the recovered credentials: check the Vault secret the message names against the provider', runbook: 'smtp-recovery.md#reconfiguremailhost' },
  DkimMismatch: { retryable: false, firstResponse: 'the DKIM key in Vault does not match the published TXT record: publish the right record or restore the right key; no mail was sent', runbook: 'vps-migration.md#installdkimkey' },
  MailAuthFailed: { retryable: false, firstResponse: 'the test mail arrived but DKIM, SPF or DMARC did not pass: read which in the message', runbook: 'vps-migration.md#sendtestemail' },
  MailNotDelivered: { retryable: true, firstResponse: 'the test mail did not reach the relay inbox: check the mail host queue (postqueue -p) and the relay; retried automatically', runbook: 'vps-migration.md#sendtestemail' },
  WebmailLoginFailed: { retryable: false, firstResponse: 'the webmail or IMAP refused the recovered mailbox credentials: check the mailbox secret and the mail host', runbook: 'smtp-recovery.md#verifywebmaillogin' },
  CutoverRefused: { retryable: false, firstResponse: 'the cutover was refused: the old host still serves, and the new host changes were undone (the message lists them); start again when ready', runbook: 'vps-migration.md#awaitcutover' },
} as const satisfies Record<string, ErrorInfo>;

export type ErrorType = keyof typeof ERROR_CATALOG;

/** `ErrorType.BackupCorrupt === 'BackupCorrupt'`, for each catalog entry. */
export const ErrorType = Object.fromEntries(Object.keys(ERROR_CATALOG).map((k) => [k, k])) as { readonly [K in ErrorType]: K };

export function isErrorType(type: string): type is ErrorType {
  return Object.prototype.hasOwnProperty.call(ERROR_CATALOG, type);
}

/** The types Temporal must never retry: every activity profile lists them. */
export const NON_RETRYABLE_ERROR_TYPES: readonly ErrorType[] = (Object.keys(ERROR_CATALOG) as ErrorType[]).filter((t) => !ERROR_CATALOG[t].retryable);

/**
 * A typed failure for activities to throw. Retryability comes from the catalog; pass
 * `nonRetryable` only where it agrees with it (test/errorCatalog.test.ts checks every call).
 */
export function failure(type: ErrorType, message: string, nonRetryable: boolean = !ERROR_CATALOG[type].retryable): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable });
}
