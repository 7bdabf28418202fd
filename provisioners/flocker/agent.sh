#!/usr/bin/env bash
# Starts a Flocker dataset agent on this node: writes /etc/flocker/agent.yml (the control service,
# and the dataset backend: loopback files under FLOCKER_LOOPBACK_ROOT, or openstack: Cinder volumes
# of the cloud whose openrc is FLOCKER_OPENSTACK_RC), then waits (FLOCKER_AGENT_WAIT seconds, 120;
# 0 does not wait) until the control service lists this node. Needs /etc/flocker/cluster.crt,
# node.crt and node.key.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source common.sh
flocker::settings
flocker::check_params
for file in cluster.crt node.crt node.key; do flocker::need "${FLOCKER_CERTS}/${file}"; done

case "$FLOCKER_DATASET_BACKEND" in
  loopback) backend="  backend: \"loopback\"
  root_path: \"${FLOCKER_LOOPBACK_ROOT}\"" ;;
  openstack)
    # The cloud's credentials as an openrc (the lab's cloud gives every node one).
    [[ -r $FLOCKER_OPENSTACK_RC ]] || flocker::fail "FLOCKER_DATASET_BACKEND=openstack needs the cloud's credentials in ${FLOCKER_OPENSTACK_RC} (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_TENANT_NAME, OS_REGION_NAME)"
    # shellcheck disable=SC1090
    source "$FLOCKER_OPENSTACK_RC"
    backend="  backend: \"openstack\"
  region: \"${OS_REGION_NAME}\"
  auth_plugin: \"password\"
  auth_url: \"${OS_AUTH_URL}\"
  username: \"${OS_USERNAME}\"
  password: \"${OS_PASSWORD}\"
  tenant_name: \"${OS_TENANT_NAME:-${OS_PROJECT_NAME:-}}\"
  verify_peer: false" ;;
  *) flocker::fail "FLOCKER_DATASET_BACKEND=${FLOCKER_DATASET_BACKEND}: write your own /etc/flocker/agent.yml for it (this script writes loopback and openstack)" ;;
esac
# It may hold the cloud's password: root's alone.
install -m 0600 /dev/null "${FLOCKER_CERTS}/agent.yml"
cat >"${FLOCKER_CERTS}/agent.yml" <<YAML
"version": 1
"control-service":
  "hostname": "${FLOCKER_CONTROL_SERVICE_HOST}"
  "port": ${FLOCKER_AGENT_PORT}
"dataset":
${backend}
YAML
flocker::log "Wrote ${FLOCKER_CERTS}/agent.yml (${FLOCKER_DATASET_BACKEND} backend)"

if [[ $FLOCKER_INSTALL == packages ]]; then
  flocker::install_packages clusterhq-flocker-node
  systemctl enable flocker-dataset-agent
  systemctl restart flocker-dataset-agent
else
  image="clusterhq/flocker-dataset-agent:${FLOCKER_VERSION}"
  flocker::need_image "$image"
  docker rm -f flocker-dataset-agent >/dev/null 2>&1 || true
  flocker::log "Launching the Flocker dataset agent (${image})"
  # Its mounts under /flocker must reach the host (and the pods' containers): rshared.
  docker run -d --name=flocker-dataset-agent --restart=always --net=host --privileged \
    -v "${FLOCKER_CERTS}:/etc/flocker:ro" -v /dev:/dev -v /flocker:/flocker:rshared -v /var/lib/flocker:/var/lib/flocker "$image" >/dev/null
fi

# The control service knows a node by the address its agent connects from (Flocker's _get_external_ip).
host=$(ip -o route get "${FLOCKER_CONTROL_SERVICE_HOST}" | sed -n 's/.* src \([0-9.]*\).*/\1/p')
if ((FLOCKER_AGENT_WAIT == 0)); then
  flocker::log "The dataset agent on ${host} is started (FLOCKER_AGENT_WAIT=0: not waiting for the control service to list it)"
  exit 0
fi
flocker::wait_for "the control service does not list this node (${host})" "$FLOCKER_AGENT_WAIT" bash -c "source common.sh; flocker::settings; flocker::api state/nodes | grep -qF '\"${host}\"'"
flocker::log "The dataset agent on ${host} is connected to ${FLOCKER_CONTROL_SERVICE_HOST}:${FLOCKER_AGENT_PORT}"
