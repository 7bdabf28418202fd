import type { KubeObject } from './registry.js';

/**
 * What the 1.2/1.3 apiserver filled in and refused per kind before storing an object: defaults
 * (restartPolicy, dnsPolicy, replicas, the RC selector from its template...) and the validation
 * errors kubectl shows, as [field, reason, message] triples for the 422 Status.
 */

export type Problem = [field: string, reason: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueNotSupported', message: string];
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const required = (field: string): Problem => [field, 'FieldValueRequired', 'Required value'];

function podSpec(spec: Json | undefined, field: string, problems: Problem[]): Json {
  if (!spec) {
    problems.push(required(field));
    return {};
  }
  const containers = (spec.containers ?? []) as Json[];
  if (containers.length === 0) problems.push(required(`${field}.containers`));
  containers.forEach((c, i) => {
    if (!c.name) problems.push(required(`${field}.containers[${i}].name`));
    if (!c.image) problems.push(required(`${field}.containers[${i}].image`));
    c.imagePullPolicy ??= String(c.image ?? '').endsWith(':latest') || !String(c.image ?? '').includes(':') ? 'Always' : 'IfNotPresent';
    c.terminationMessagePath ??= '/dev/termination-log';
    for (const port of (c.ports ?? []) as Json[]) port.protocol ??= 'TCP';
  });
  const policy = (spec.restartPolicy ??= 'Always');
  if (!['Always', 'OnFailure', 'Never'].includes(policy))
    problems.push([`${field}.restartPolicy`, 'FieldValueNotSupported', `Unsupported value: "${policy}": supported values: Always, OnFailure, Never`]);
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.volumes ??= [];
  (spec.volumes as Json[]).forEach((volume, i) => {
    if (!volume.name) problems.push(required(`${field}.volumes[${i}].name`));
    // validateFlockerVolumeSource: the dataset is found by its name.
    if (volume.flocker && !volume.flocker.datasetName) problems.push(required(`${field}.volumes[${i}].flocker.datasetName`));
    else if (volume.flocker && String(volume.flocker.datasetName).includes('/'))
      problems.push([`${field}.volumes[${i}].flocker.datasetName`, 'FieldValueInvalid', `Invalid value: "${volume.flocker.datasetName}": must not contain '/'`]);
  });
  return spec;
}

export function preparePod(pod: KubeObject): Problem[] {
  const problems: Problem[] = [];
  pod.spec = podSpec(pod.spec as Json | undefined, 'spec', problems);
  pod.status = { phase: 'Pending', ...(pod.status as Json | undefined) };
  return problems;
}

export function prepareReplicationController(rc: KubeObject): Problem[] {
  const problems: Problem[] = [];
  const spec = (rc.spec ?? {}) as Json;
  const template = spec.template as Json | undefined;
  if (!template) problems.push(required('spec.template'));
  else template.spec = podSpec(template.spec, 'spec.template.spec', problems);
  const templateLabels = (template?.metadata?.labels ?? {}) as Record<string, string>;
  spec.selector ??= { ...templateLabels };
  rc.metadata = { ...rc.metadata, labels: rc.metadata?.labels ?? { ...templateLabels } };
  spec.replicas ??= 1;
  if (Object.keys(spec.selector).length === 0) problems.push(required('spec.selector'));
  else if (Object.entries(spec.selector as Record<string, string>).some(([k, v]) => templateLabels[k] !== v))
    problems.push(['spec.template.metadata.labels', 'FieldValueInvalid', '`selector` does not match template `labels`']);
  rc.spec = spec;
  rc.status = { replicas: 0, ...(rc.status as Json | undefined) };
  return problems;
}

export function prepareService(service: KubeObject): Problem[] {
  const problems: Problem[] = [];
  const spec = (service.spec ?? {}) as Json;
  const ports = (spec.ports ?? []) as Json[];
  if (ports.length === 0) problems.push(required('spec.ports'));
  ports.forEach((port, i) => {
    port.protocol ??= 'TCP';
    if (!['TCP', 'UDP'].includes(port.protocol))
      problems.push([`spec.ports[${i}].protocol`, 'FieldValueNotSupported', `Unsupported value: "${port.protocol}"`]);
    if (!Number.isInteger(port.port) || port.port < 1 || port.port > 65535)
      problems.push([`spec.ports[${i}].port`, 'FieldValueInvalid', `Invalid value: ${JSON.stringify(port.port)}: must be between 1 and 65535`]);
    port.targetPort ??= port.port;
    if (ports.length > 1 && !port.name) problems.push(required(`spec.ports[${i}].name`));
  });
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  service.spec = spec;
  service.status ??= { loadBalancer: {} };
  return problems;
}

/** The defaulting and validation per resource (plural), for the kinds that have any. */
export const PREPARE: Record<string, (object: KubeObject) => Problem[]> = {
  pods: preparePod,
  replicationcontrollers: prepareReplicationController,
  services: prepareService,
};
