/** The JSON shapes the emulated Flocker's control service, agents and clients exchange. */

/** A dataset as GET /v1/configuration/datasets lists it (maximum_size absent when unlimited). */
export interface DatasetConfiguration {
  dataset_id: string;
  primary: string;
  metadata: Record<string, string>;
  deleted: boolean;
  maximum_size?: number;
}

/** POST /v1/configuration/datasets. */
export interface DatasetCreate {
  primary: string;
  dataset_id?: string;
  maximum_size?: number | null;
  metadata?: Record<string, string>;
}

/** A dataset as GET /v1/state/datasets lists it: primary and path only while attached somewhere. */
export interface DatasetState {
  dataset_id: string;
  primary?: string;
  maximum_size?: number;
  path?: string;
}

/** A lease as the API shows it: expires is the seconds left, or null for a lease that never expires. */
export interface Lease {
  dataset_id: string;
  node_uuid: string;
  expires: number | null;
}

export interface NodeInfo {
  host: string;
  uuid: string;
}

/**
 * A dataset as the control service sends it to the agents: the API's configuration plus `origin`,
 * the node it was created for (lab addition; see agent.ts: a loopback volume is only ever created
 * on that node, so moving a dataset never creates an empty volume elsewhere).
 */
export interface AgentDataset extends DatasetConfiguration {
  origin?: string;
}

/** The answer to an agent's state report: the whole configuration. */
export interface AgentConfiguration {
  datasets: AgentDataset[];
  leases: Lease[];
}

/** One dataset a node reports: the volume exists on it; `path` when attached and mounted there. */
export interface ReportedDataset {
  dataset_id: string;
  maximum_size: number | null;
  path?: string;
}

/** POST /agent/v1/state. */
export interface AgentStateReport {
  node_uuid: string;
  host: string;
  era: string;
  datasets: ReportedDataset[];
}
