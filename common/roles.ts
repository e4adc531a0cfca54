// Worker roles: which trust scope (set of secrets) a worker process holds, and the task queue each
// role polls. Workflows run on the base queue; each activity role polls `<base>-<role>`, so an
// activity only ever runs on a host that holds the secrets it needs. Pure: workflows import it.

/** Every role a process can run; `workflows` holds no secret but the payload codec keyring. */
export const WORKER_ROLES = ['workflows', 'backup', 'restore', 'notify', 'migration'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];
/** The roles that run activities (each on its own queue). */
export type ActivityRole = Exclude<WorkerRole, 'workflows'>;

/** The task queue a role polls: the base queue for workflows, `<base>-<role>` for activities. */
export function roleQueue(base: string, role: WorkerRole): string {
  return role === 'workflows' ? base : `${base}-${role}`;
}
