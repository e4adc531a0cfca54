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
import { mailActivities } from './monitoring/mail';
import { notifyActivities } from './notify/notify';
import { ChannelSecretStore } from '../infra/mail/alertChannels';
import { monitorActivities } from './monitoring/monitor';
import { objectStoreActivities } from './monitoring/objectStore';
import { restoreActivities } from './restore/restore';
import { vaultActivities } from './monitoring/vault';
import { migrationActivities } from './migration';

/** Backup role: the worker's Vault AppRole, S3 write access, the recipients' public keys. */
export function backupRoleActivities(cfg: Config, clients: { bao: BaoClient; s3: S3Client }) {
  return {
    ...vaultActivities({ bao: clients.bao }),
    ...objectStoreActivities({ s3: clients.s3, bucket: cfg.s3.bucket, endpoint: cfg.s3.endpoint ?? `aws:${cfg.s3.region}` }),
    ...backupActivities({ bao: clients.bao, s3: clients.s3, cfg }),
    ...monitorActivities({ bao: clients.bao, s3: clients.s3, cfg }),
  };
}

/** Restore role: validation key, staging unseal shares, validator AppRole, break-glass token, share intake, the staging host. */
export function restoreRoleActivities(cfg: Config, clients: { s3: S3Client }, intake?: ShareIntake) {
  return restoreActivities({ s3: clients.s3, cfg, intake });
}

/** Notify role: the SMTP relay and the Slack/PagerDuty secrets (read from Vault). */
export function notifyRoleActivities(cfg: Config, clients: { mail: MailTransport; s3: S3Client }, channelSecrets?: ChannelSecretStore) {
  return {
    ...mailActivities({ mail: clients.mail, host: cfg.smtp.host, port: cfg.smtp.port }),
    ...deliveryCheckActivities({ inbox: cfg.alerts.inbox }),
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
  return migrationActivities({ cfg });
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
