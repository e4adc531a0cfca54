// Activities that talk to the SMTP relay used for alerts and test mail.
import type { MailTransport } from '../../infra/clients';
import type { MailHealth } from '../../common/health';

export const mailActivities = (deps: { mail: MailTransport; host: string; port: number }) => ({
  /** SMTP reachability: connects, reads the greeting and EHLO, then quits. */
  async checkMailRelay(): Promise<MailHealth> {
    const report: MailHealth = { status: 'healthy', host: deps.host, port: deps.port, problems: [] };
    try {
      await deps.mail.verify();
    } catch (err) {
      report.status = 'unhealthy';
      const e = err as { code?: string; message?: string };
      report.problems.push(`SMTP relay ${deps.host}:${deps.port} unreachable: ${e.code ?? ''} ${e.message ?? ''}`.trim());
    }
    return report;
  },
});

export type MailActivities = ReturnType<typeof mailActivities>;
