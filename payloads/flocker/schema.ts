/**
 * The request schemas of Flocker 1.14's REST API (flocker/control/schema/types.yml and
 * endpoints.yml), checked by hand with the messages Python's jsonschema gave (Draft 4), so a 400
 * reads as the real one did: `{"description": "The provided JSON doesn't match the required
 * schema.", "errors": ["'primary' is a required property", ...]}`.
 */

export const UUID_PATTERN = '^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$';
const UUID_RE = new RegExp(UUID_PATTERN);
export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID_RE.test(value);

/** The smallest dataset Flocker accepted (64 MiB) and the granularity of sizes. */
export const MINIMUM_SIZE = 67_108_864;
export const SIZE_MULTIPLE = 1024;
/** What a dataset gets when maximum_size is omitted: 100 GiB, Flocker's DEFAULT_DATASET_SIZE. */
export const DEFAULT_MAXIMUM_SIZE = 107_374_182_400;

export const SCHEMA_ERROR_DESCRIPTION = "The provided JSON doesn't match the required schema.";

/** Python's repr(), as jsonschema's messages print values. */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(value);
  if (typeof value === 'string') {
    const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
    const body = value
      .replace(/\\/g, '\\\\')
      .replace(/\n/g, '\\n')
      .replace(/\r/g, '\\r')
      .replace(/\t/g, '\\t')
      .replace(new RegExp(quote, 'g'), `\\${quote}`);
    return `${quote}${body}${quote}`;
  }
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`)
      .join(', ')}}`;
  }
  return String(value);
}

type Check = (value: unknown, errors: string[]) => void;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function typeError(value: unknown, types: string[]): string {
  return `${pyRepr(value)} is not of type ${types.map((t) => pyRepr(t)).join(', ')}`;
}

const uuidString: Check = (value, errors) => {
  if (typeof value !== 'string') errors.push(typeError(value, ['string']));
  else if (!UUID_RE.test(value)) errors.push(`${pyRepr(value)} does not match ${pyRepr(UUID_PATTERN)}`);
};

const maximumSize: Check = (value, errors) => {
  if (value === null) return;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    errors.push(typeError(value, ['integer', 'null']));
    return;
  }
  if (value < MINIMUM_SIZE) errors.push(`${pyRepr(value)} is less than the minimum of ${MINIMUM_SIZE}`);
  if (value % SIZE_MULTIPLE !== 0) errors.push(`${pyRepr(value)} is not a multiple of ${SIZE_MULTIPLE}`);
};

const METADATA_KEY = /^.{1,256}$/su;
const metadata: Check = (value, errors) => {
  if (!isObject(value)) {
    errors.push(typeError(value, ['object']));
    return;
  }
  const keys = Object.keys(value);
  if (keys.length > 16) errors.push(`${pyRepr(value)} has too many properties`);
  const extra = keys.filter((k) => !METADATA_KEY.test(k));
  if (extra.length) errors.push(additional(extra));
  for (const key of keys.filter((k) => METADATA_KEY.test(k))) {
    const item = value[key];
    if (typeof item !== 'string') errors.push(typeError(item, ['string']));
    else if ([...item].length > 256) errors.push(`${pyRepr(item)} is too long`);
  }
};

const expires: Check = (value, errors) => {
  if (value === null) return;
  if (typeof value !== 'number') errors.push(typeError(value, ['number', 'null']));
  else if (value < 0) errors.push(`${pyRepr(value)} is less than the minimum of 0`);
};

function additional(extra: string[]): string {
  return `Additional properties are not allowed (${extra.map((k) => pyRepr(k)).join(', ')} ${extra.length === 1 ? 'was' : 'were'} unexpected)`;
}

function objectSchema(properties: Record<string, Check>, required: string[]): (body: unknown) => string[] {
  return (body) => {
    const errors: string[] = [];
    if (!isObject(body)) return [typeError(body, ['object'])];
    const extra = Object.keys(body).filter((k) => !(k in properties));
    if (extra.length) errors.push(additional(extra));
    for (const name of required) if (!(name in body)) errors.push(`${pyRepr(name)} is a required property`);
    for (const [name, check] of Object.entries(properties)) if (name in body) check(body[name], errors);
    return errors;
  };
}

/** POST /v1/configuration/datasets (configuration_datasets_create). */
export const validateDatasetCreate = objectSchema({ primary: uuidString, dataset_id: uuidString, maximum_size: maximumSize, metadata }, [
  'primary',
]);

/** POST /v1/configuration/datasets/<id> (configuration_datasets_update): only a move. */
export const validateDatasetUpdate = objectSchema({ primary: uuidString }, []);

/** POST /v1/configuration/leases (lease). */
export const validateLease = objectSchema({ dataset_id: uuidString, node_uuid: uuidString, expires }, [
  'dataset_id',
  'node_uuid',
  'expires',
]);

const stringValue: Check = (value, errors) => {
  if (typeof value !== 'string') errors.push(typeError(value, ['string']));
};

const reportedDatasets: Check = (value, errors) => {
  if (!Array.isArray(value)) {
    errors.push(typeError(value, ['array']));
    return;
  }
  const item = objectSchema({ dataset_id: uuidString, maximum_size: maximumSizeState, path: stringValue }, ['dataset_id']);
  for (const entry of value) errors.push(...item(entry));
};

function maximumSizeState(value: unknown, errors: string[]): void {
  if (value !== null && (typeof value !== 'number' || !Number.isInteger(value) || value < 0))
    errors.push(typeError(value, ['integer', 'null']));
}

/** POST /agent/v1/state: what a dataset agent reports (the lab's JSON stand-in for AMP's NodeStateCommand). */
export const validateAgentState = objectSchema({ node_uuid: uuidString, host: stringValue, era: stringValue, datasets: reportedDatasets }, [
  'node_uuid',
  'host',
  'era',
  'datasets',
]);
