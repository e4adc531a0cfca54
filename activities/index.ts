// Assembles the activity groups per worker role (docs/worker-roles.md): each function takes only
// the clients and secrets its role holds, so a process running the backup role cannot even build
// an activity that needs the validation key or the unseal shares.
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../infra/config';
import type { BaoClient } from '../infra/vault/bao';
import type { Clients, MailTransport } from '../infra/clients';
import type { ShareIntake } from '../infra/vault/shareIntake';
import { backupActivities } from './backup/backup';
import { deliveryCheckActivities } from './notify/deliveryCheck';
import { findingActivities } from './drills/findings';
import { drillActivities } from './drills/drill';
import { drillCredentialActivities, trainingIncidentActivities } from './drills/credential';
import { connectClient } from '../client/connect';
import { mailActivities } from './monitoring/mail';
import { notifyActivities } from './notify/notify';
import { ChannelSecretStore } from '../infra/mail/alertChannels';
import { monitorActivities } from './monitoring/monitor';
import { objectStoreActivities } from './monitoring/objectStore';
import { restoreActivities } from './restore/restore';
import { vaultActivities } from './monitoring/vault';
import { haActivities } from './ha/failover';
import { clusterLossActivities } from './ha/clusterLoss';
import { haDriverRegistry, postgresHaTopology, vaultHaEnv } from './ha/drivers';
import { postgresHaActivities } from './monitoring/postgres';
import { incidentActivities } from './emergency/incident';
import { sealActivities } from './emergency/seal';
import { buildMailTransport } from '../infra/clients';
import { readSecretFile } from '../infra/config';
import { readSecretJson } from '../infra/secretFile';
import { rotationActivities } from './emergency/rotation';
import { recipientActivities } from './emergency/recipients';
import { sealDrillActivities } from './emergency/sealDrill';
import { haSealDrillActivities } from './emergency/haSealDrill';
import { unsealRotationActivities } from './emergency/unsealRotation';
import { migrationActivities } from './migration';
import { vpsDrillCredentialActivities, vpsDrillHostActivities, vpsDrillNoticeActivities } from './drills/vps';

/** Backup role: the worker's Vault AppRole, S3 write access, the recipients' public keys. */
export function backupRoleActivities(cfg: Config, clients: { bao: BaoClient; s3: S3Client }) {
  return {
    ...vaultActivities({ bao: clients.bao }),
    ...postgresHaActivities({ topology: () => postgresHaTopology(cfg) }),
    ...objectStoreActivities({ s3: clients.s3, bucket: cfg.s3.bucket, endpoint: cfg.s3.endpoint ?? `aws:${cfg.s3.region}` }),
    ...backupActivities({ bao: clients.bao, s3: clients.s3, cfg }),
    ...monitorActivities({ bao: clients.bao, s3: clients.s3, cfg }),
    ...recipientActivities({ cfg }),
  };
}

/**
 * Restore role: validation key, staging unseal shares, validator AppRole, break-glass token, share
 * intake, the staging host; the failover drill, which holds the HA clusters' unseal shares and
 * drill token (ha.harnessDir) and controls their nodes; and emergency rotation (rotator token,
 * PostgreSQL superuser URL).
 */
export function restoreRoleActivities(cfg: Config, clients: { s3: S3Client }, intake?: ShareIntake) {
  // The emergency seal needs the break-glass token, which only this role holds.
  return {
    ...restoreActivities({ s3: clients.s3, cfg, intake }),
    ...haActivities({ drivers: haDriverRegistry(cfg), stateDir: cfg.ha.harnessDir ?? cfg.restore.stagingDir ?? '.', s3: clients.s3, bucket: cfg.s3.bucket }),
    ...rotationActivities({ cfg }),
    ...sealDrillActivities({ cfg, intake }),
    ...haSealDrillActivities({ cfg, env: () => vaultHaEnv(cfg), intake }),
    ...unsealRotationActivities({ cfg, s3: clients.s3 }),
    ...sealActivities({ cfg }),
    // The credential-compromise drill's probes of its drill credential (the rotator token).
    ...drillCredentialActivities({ cfg }),
    // vps-compromise drill: the credentials the mail VPS holds (rotator token, rotation.host's key).
    ...vpsDrillCredentialActivities({ cfg }),
    // The cluster-loss drill: loses, rebuilds and unseals the drill cluster (drills.drillableTargets only).
    ...clusterLossActivities({ cfg, s3: clients.s3, env: vaultHaEnv(cfg), stateDir: cfg.ha.harnessDir ?? cfg.restore.stagingDir ?? '.' }),
  };
}

/** Notify role: the SMTP relay and the Slack/PagerDuty secrets (read from Vault). */
export function notifyRoleActivities(cfg: Config, clients: { mail: MailTransport; s3: S3Client; bao: BaoClient }, channelSecrets?: ChannelSecretStore) {
  return {
    // Incident record and tenant notices: the notify role already holds the relay and reads Vault.
    ...incidentActivities({
      bao: clients.bao,
      s3: clients.s3,
      bucket: cfg.s3.bucket,
      kvMount: cfg.backup.kvMount,
      incident: cfg.incident,
      mail: clients.mail,
      trainingMail: buildMailTransport({ ...cfg.smtp, host: cfg.incident.trainingSmtp.host, port: cfg.incident.trainingSmtp.port, secure: false }),
      deniedValues: () => heldCredentials(cfg, channelSecrets),
    }),
    ...mailActivities({ mail: clients.mail, host: cfg.smtp.host, port: cfg.smtp.port }),
    ...deliveryCheckActivities({ inbox: cfg.alerts.inbox }),
    ...vpsDrillNoticeActivities({ inbox: cfg.alerts.inbox }),
    ...findingActivities({ s3: clients.s3, bucket: cfg.s3.bucket }),
    // The DR drill's own steps: preconditions (a visibility query), the alert wait, the report and its mail.
    ...drillActivities({ cfg, s3: clients.s3, bucket: cfg.s3.bucket, mail: clients.mail, temporal: () => connectClient(cfg) }),
    // The credential-compromise drill's training incident: its responders (updates), the declared e-mail, the close.
    ...trainingIncidentActivities({ cfg, temporal: () => connectClient(cfg) }),
    ...notifyActivities({
      mail: clients.mail,
      s3: clients.s3,
      bucket: cfg.s3.bucket,
      from: cfg.smtp.from,
      to: cfg.smtp.alertTo,
      dedupWindowMinutes: cfg.alerts.dedupWindowMinutes,
      channelSecrets,
    }),
  };
}

/** Migration role: the migration SSH key and the migration AppRole (docs/worker-roles.md). */
export function migrationRoleActivities(cfg: Config) {
  // The vps-compromise drill's quarantine of the old host uses the same key as the migration.
  return { ...migrationActivities({ cfg }), ...vpsDrillHostActivities({ cfg }) };
}

export type BackupRoleActivities = ReturnType<typeof backupRoleActivities>;
export type RestoreRoleActivities = ReturnType<typeof restoreRoleActivities>;
export type NotifyRoleActivities = ReturnType<typeof notifyRoleActivities>;
export type MigrationRoleActivities = ReturnType<typeof migrationRoleActivities>;
export type RoleActivities = { backup: BackupRoleActivities; restore: RestoreRoleActivities; notify: NotifyRoleActivities; migration: MigrationRoleActivities };

/** Every activity in one object: the CLI's direct checks, which run with the operator's own config. */
export function createActivities(cfg: Config, clients: Clients, intake?: ShareIntake, channelSecrets = channelSecretStore(cfg, clients.bao)) {
  return { ...backupRoleActivities(cfg, clients), ...restoreRoleActivities(cfg, clients, intake), ...notifyRoleActivities(cfg, clients, channelSecrets), ...migrationRoleActivities(cfg) };
}

/** Slack/PagerDuty secrets from Vault, cached so alerts still go out while Vault is sealed. */
export function channelSecretStore(cfg: Config, bao: BaoClient): ChannelSecretStore {
  return new ChannelSecretStore(bao, cfg.backup.kvMount, cfg.alerts.channelSecretsPath);
}

/** Credential values the notify role's process holds: a tenant notice containing one is refused. */
async function heldCredentials(cfg: Config, channelSecrets?: ChannelSecretStore): Promise<string[]> {
  const out: string[] = [];
  const tryRead = (f: () => string | undefined) => {
    try {
      const v = f();
      if (v) out.push(v);
    } catch {
      // A file this role does not have: nothing to deny from it.
    }
  };
  tryRead(() => (cfg.vault.secretIdFile ? readSecretFile(cfg.vault.secretIdFile, 'vault.secretIdFile') : undefined));
  tryRead(() => (cfg.vault.tokenFile ? readSecretFile(cfg.vault.tokenFile, 'vault.tokenFile') : undefined));
  tryRead(() => (cfg.s3.credentialsFile ? (readSecretJson(cfg.s3.credentialsFile, (p) => new Error(p)) as { secretAccessKey?: string }).secretAccessKey : undefined));
  if (channelSecrets) {
    const { secrets } = await channelSecrets.get();
    if (secrets.slack) out.push(secrets.slack.webhookUrl);
    if (secrets.pagerduty) out.push(secrets.pagerduty.routingKey);
  }
  return out;
}
