/** The CPU architectures the lab makes nodes of (a leaf module: images, machines and the scenario schema read it). */
export const ARCHES = ['amd64', 'arm64'] as const;
export type Arch = (typeof ARCHES)[number];
