import { describe, expect, test } from 'vitest';
import { step, useCluster } from '../../../lab/checks/api.js';

/**
 * Each node reaches the run's cloud where a guest of an OpenStack reached it (10.0.2.100, Keystone
 * on 5000) and gets a token with the credentials in /etc/lab/openstack.env, whose catalog points
 * the guest at Cinder and Nova on the same address. Plain bash: the base image has no HTTP client.
 */
const lab = useCluster();

const TOKEN_REQUEST = `. /etc/lab/openstack.env
body="{\\"auth\\":{\\"tenantName\\":\\"$OS_TENANT_NAME\\",\\"passwordCredentials\\":{\\"username\\":\\"$OS_USERNAME\\",\\"password\\":\\"$OS_PASSWORD\\"}}}"
exec 3<>/dev/tcp/10.0.2.100/5000
printf 'POST /v2.0/tokens HTTP/1.1\\r\\nHost: 10.0.2.100:5000\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s' "\${#body}" "$body" >&3
timeout 20 cat <&3`;

describe('cloud', () => {
  for (const spec of lab.specs) {
    test(`${spec.name} gets a token from Keystone at 10.0.2.100:5000`, async () => {
      const node = await lab.node(spec.name);
      const mode = await step(`the credentials file on ${spec.name}`, () => node.succeed('stat -c %a /etc/lab/openstack.env'));
      expect(mode.trim(), 'only root may read the cloud credentials').toBe('600');
      const answer = await step(`${spec.name} asks Keystone v2.0 for a token`, () =>
        node.succeed(`bash -c '${TOKEN_REQUEST.replace(/'/g, "'\\''")}'`, { timeout: 40 }),
      );
      expect(answer, `Keystone's answer to ${spec.name}:\n${answer}`).toMatch(/^HTTP\/1\.1 200 /);
      expect(answer).toContain('"publicURL":"http://10.0.2.100:8776/v2/');
      expect(answer).toContain('"publicURL":"http://10.0.2.100:8774/v2.1/');
    });
  }
});
