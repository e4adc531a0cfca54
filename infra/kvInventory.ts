// KV v2 inventory: how many secret paths a mount holds and the sum of their current versions.
// Recorded in the manifest when a backup is taken and compared after a restore, so a restore that
// silently lost part of the tree is caught. Reads metadata only, never secret values.
export interface KvInventory {
  mount: string;
  paths: number;
  versions: number;
}

export interface KvAccess {
  /** Keys under a metadata folder ("a", "b/"), [] when the folder does not exist. */
  list(metadataPath: string): Promise<string[]>;
  /** current_version of one secret. */
  currentVersion(metadataPath: string): Promise<number>;
}

export async function kvInventory(mount: string, access: KvAccess, concurrency = 8): Promise<KvInventory> {
  let paths = 0;
  let versions = 0;
  const folders = [''];
  while (folders.length) {
    const batch = folders.splice(0, concurrency);
    const listed = await Promise.all(batch.map(async (f) => ({ f, keys: await access.list(`${mount}/metadata/${f}`) })));
    const leaves: string[] = [];
    for (const { f, keys } of listed) {
      for (const k of keys) (k.endsWith('/') ? folders : leaves).push(`${f}${k}`);
    }
    for (let i = 0; i < leaves.length; i += concurrency) {
      const vs = await Promise.all(leaves.slice(i, i + concurrency).map((l) => access.currentVersion(`${mount}/metadata/${l}`)));
      paths += vs.length;
      versions += vs.reduce((a, b) => a + b, 0);
    }
  }
  return { mount, paths, versions };
}
