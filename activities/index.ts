// Assembles every activity group from the built clients; the worker registers the result.
import type { Config } from '../infra/config';
import type { Clients } from '../infra/clients';
import type { ShareIntake } from '../infra/shareIntake';
import { backupActivities } from './backup';
import { deliveryCheckActivities } from './deliveryCheck';
import { mailActivities } from './mail';
import { notifyActivities } from './notify';
import { ChannelSecretStore } from '../infra/alertChannels';
import { monitorActivities } from './monitor';
import { objectStoreActivities } from './objectStore';
import { restoreActivities } from './restore';
import { vaultActivities } from './vault';

export function createActivities(cfg: Config, clients: Clients, intake?: ShareIntake, channelSecrets = channelSecretStore(cfg, clients)) {
  return {
    ...vaultActivities({ bao: clients.bao }),
    ...objectStoreActivities({ s3: clients.s3, bucket: cfg.s3.bucket, endpoint: cfg.s3.endpoint ?? `aws:${cfg.s3.region}` }),
    ...mailActivities({ mail: clients.mail, host: cfg.smtp.host, port: cfg.smtp.port }),
    ...backupActivities({ bao: clients.bao, s3: clients.s3, cfg }),
    ...restoreActivities({ s3: clients.s3, cfg, intake }),
    ...deliveryCheckActivities({ inbox: cfg.alerts.inbox }),
    ...monitorActivities({ bao: clients.bao, s3: clients.s3, cfg }),
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

/** Slack/PagerDuty secrets from Vault, cached so alerts still go out while Vault is sealed. */
export function channelSecretStore(cfg: Config, clients: Clients): ChannelSecretStore {
  return new ChannelSecretStore(clients.bao, cfg.backup.kvMount, cfg.alerts.channelSecretsPath);
}
