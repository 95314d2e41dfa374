/*
 * @peculiar/x509 uses tsyringe, which insists on a Reflect metadata API (reflect-metadata is
 * not installed). This is the small part of it tsyringe calls, on a WeakMap. Import it
 * before @peculiar/x509.
 */
type Meta = Map<unknown, unknown>;
const store = new WeakMap<object, Map<string | symbol | undefined, Meta>>();
const R = Reflect as unknown as Record<string, unknown>;

function metaOf(target: object, prop: string | symbol | undefined, create: boolean): Meta | undefined {
  let byProp = store.get(target);
  if (!byProp && create) store.set(target, (byProp = new Map()));
  let m = byProp?.get(prop);
  if (!m && create && byProp) byProp.set(prop, (m = new Map()));
  return m;
}

if (typeof R.getMetadata !== "function") {
  R.defineMetadata = (key: unknown, value: unknown, target: object, prop?: string | symbol) => void metaOf(target, prop, true)!.set(key, value);
  R.getOwnMetadata = (key: unknown, target: object, prop?: string | symbol) => metaOf(target, prop, false)?.get(key);
  R.getMetadata = (key: unknown, target: object, prop?: string | symbol) => {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t) as object | null) {
      const m = metaOf(t, prop, false);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  R.hasMetadata = (key: unknown, target: object, prop?: string | symbol) => (R.getMetadata as (k: unknown, t: object, p?: string | symbol) => unknown)(key, target, prop) !== undefined;
  R.metadata = (key: unknown, value: unknown) => (target: object, prop?: string | symbol) => void metaOf(target, prop, true)!.set(key, value);
}

export {};
