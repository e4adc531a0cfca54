// KV v2 inventory: how many secret paths a mount holds and the sum of their current versions.
// Recorded in the manifest when a backup is taken and compared after a restore, so a restore that
// silently lost part of the tree is caught. Reads metadata only, never secret values.
//
// OpenBao answers a LIST on `<mount>/detailed-metadata/<folder>` with every key's metadata
// (current_version included), a page of up to PAGE keys per request: a 100k-secret mount takes
// ~100 requests instead of 100k metadata reads. A server without that endpoint (HashiCorp Vault
// answers an unknown KV path with a warning and no data) or a policy that predates it (403) falls
// back to LIST `<mount>/metadata/<folder>` plus one metadata read per secret.
import { BaoError } from './bao';

export interface KvInventory {
  mount: string;
  paths: number;
  versions: number;
  /** How the versions were read: one detailed LIST per page, or one metadata read per secret. */
  method: 'detailed-list' | 'per-secret';
}

export interface ApiAnswer {
  status: number;
  body: unknown;
}

export interface KvAccess {
  /** GET an API path (relative to /v1/, query included) with the caller's token; every HTTP status is an answer, only a network failure throws. */
  get(apiPath: string): Promise<ApiAnswer>;
}

/** Keys per detailed LIST page: ~0.5 KiB of metadata each, so a page stays well under 1 MiB. */
export const PAGE = 1000;

interface ListData {
  keys?: string[];
  key_info?: Record<string, { current_version?: number } | null>;
}

const dataOf = (a: ApiAnswer) => (a.body as { data?: ListData | null } | null)?.data ?? null;

function refused(a: ApiAnswer, what: string): BaoError {
  const errors = ((a.body as { errors?: string[] } | null)?.errors ?? []).join('; ');
  return new BaoError(`KV inventory: GET ${what}: HTTP ${a.status}${errors ? `: ${errors}` : ''}`, a.status);
}

export async function kvInventory(mount: string, access: KvAccess, concurrency = 8): Promise<KvInventory> {
  // Probe the mount root once to pick the method.
  const probe = await access.get(`${mount}/detailed-metadata/?list=true&limit=${PAGE}`);
  const detailed = probe.status === 404 || (probe.status === 200 && !!dataOf(probe)?.key_info);
  if (!detailed && probe.status !== 403 && probe.status !== 200) throw refused(probe, `${mount}/detailed-metadata/`);

  let paths = 0;
  let versions = 0;
  const folders: string[] = [];

  /** Every page of one folder; leaves are counted, subfolders queued. */
  const walkDetailed = async (folder: string, first?: ApiAnswer) => {
    let after = '';
    for (;;) {
      const apiPath = `${mount}/detailed-metadata/${folder}?list=true&limit=${PAGE}${after ? `&after=${encodeURIComponent(after)}` : ''}`;
      const page = first ?? (await access.get(apiPath));
      first = undefined;
      if (page.status === 404) return; // the folder is empty or was deleted meanwhile
      const data = dataOf(page);
      if (page.status !== 200 || !data) throw refused(page, apiPath);
      const keys = data.keys ?? [];
      for (const k of keys) {
        if (k.endsWith('/')) folders.push(`${folder}${k}`);
        else {
          paths++;
          versions += Number(data.key_info?.[k]?.current_version ?? 0);
        }
      }
      if (keys.length < PAGE) return;
      after = keys[keys.length - 1]!;
    }
  };

  const walkPerSecret = async (folder: string) => {
    const listed = await access.get(`${mount}/metadata/${folder}?list=true`);
    if (listed.status === 404) return;
    if (listed.status !== 200) throw refused(listed, `${mount}/metadata/${folder}`);
    const leaves: string[] = [];
    for (const k of dataOf(listed)?.keys ?? []) (k.endsWith('/') ? folders : leaves).push(`${folder}${k}`);
    for (let i = 0; i < leaves.length; i += concurrency) {
      const read = await Promise.all(leaves.slice(i, i + concurrency).map((l) => access.get(`${mount}/metadata/${l}`)));
      read.forEach((r, j) => {
        if (r.status === 404) return; // deleted between the LIST and the read
        if (r.status !== 200) throw refused(r, `${mount}/metadata/${leaves[i + j]}`);
        paths++;
        versions += Number((r.body as { data?: { current_version?: number } }).data?.current_version ?? 0);
      });
    }
  };

  // The probe is the root's first page when the detailed LIST is there.
  await (detailed ? walkDetailed('', probe) : walkPerSecret(''));
  while (folders.length) {
    const batch = folders.splice(0, concurrency);
    await Promise.all(batch.map((f) => (detailed ? walkDetailed(f) : walkPerSecret(f))));
  }
  return { mount, paths, versions, method: detailed ? 'detailed-list' : 'per-secret' };
}
