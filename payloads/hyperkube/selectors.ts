import type { KubeObject } from './registry.js';

/**
 * Label and field selectors as the v1 API takes them in `labelSelector=` and `fieldSelector=`
 * (equality, inequality, set membership and existence), and the map form RCs and services use.
 */

type Requirement = (value: (key: string) => string | undefined) => boolean;

export class SelectorError extends Error {}

/** `app=web,tier!=db,env in (a,b),!legacy` → a predicate over a lookup function. */
export function parseSelector(text: string): Requirement[] {
  const parts = text.match(/[^,(]+(\([^)]*\))?/g) ?? [];
  return parts
    .map((p) => p.trim())
    .filter(Boolean)
    .map((part): Requirement => {
      let m = /^([^!=\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
      if (m) {
        const [, key = '', op, value = ''] = m;
        return op === '!=' ? (get) => get(key) !== value : (get) => get(key) === value;
      }
      m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part);
      if (m) {
        const [, key = '', op, list = ''] = m;
        const values = list.split(',').map((v) => v.trim());
        return op === 'in' ? (get) => values.includes(get(key) ?? '\0') : (get) => !values.includes(get(key) ?? '\0');
      }
      m = /^(!?)([A-Za-z0-9./_-]+)$/.exec(part);
      if (m) return m[1] ? (get) => get(m?.[2] ?? '') === undefined : (get) => get(m?.[2] ?? '') !== undefined;
      throw new SelectorError(`unable to parse requirement: ${part}`);
    });
}

const FIELDS: Record<string, (object: KubeObject) => string | undefined> = {
  'metadata.name': (o) => o.metadata?.name,
  'metadata.namespace': (o) => o.metadata?.namespace,
  'spec.nodeName': (o) => ((o.spec as { nodeName?: string } | undefined)?.nodeName ?? ''),
  'status.phase': (o) => (o.status as { phase?: string } | undefined)?.phase,
};

/** Whether an object matches `labelSelector` and `fieldSelector` (either may be empty). */
export function matches(object: KubeObject, labelSelector: string, fieldSelector: string): boolean {
  const labels = object.metadata?.labels ?? {};
  for (const requirement of parseSelector(fieldSelector)) {
    const ok = requirement((field) => {
      const read = FIELDS[field];
      if (!read) throw new SelectorError(`field label not supported: ${field}`);
      return read(object) ?? '';
    });
    if (!ok) return false;
  }
  return parseSelector(labelSelector).every((requirement) => requirement((key) => labels[key]));
}

/** An RC's or a service's selector map: every pair must be among the labels; an empty map selects nothing. */
export function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  const pairs = Object.entries(selector ?? {});
  return pairs.length > 0 && pairs.every(([k, v]) => labels?.[k] === v);
}
