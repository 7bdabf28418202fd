#!/usr/bin/env bash
# Starts the Flocker control service on this node (REST API on FLOCKER_CONTROL_SERVICE_PORT, 4523;
# agents on 4524), with /etc/flocker/cluster.crt, control-service.crt and control-service.key.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source common.sh
flocker::settings
flocker::check_params
for file in cluster.crt control-service.crt control-service.key; do flocker::need "${FLOCKER_CERTS}/${file}"; done

if [[ $FLOCKER_INSTALL == packages ]]; then
  flocker::install_packages clusterhq-flocker-node
  flocker::install_packages clusterhq-flocker-cli
  systemctl enable flocker-control
  systemctl restart flocker-control
else
  image="clusterhq/flocker-control-service:${FLOCKER_VERSION}"
  flocker::need_image "$image"
  docker rm -f flocker-control-service >/dev/null 2>&1 || true
  flocker::log "Launching the Flocker control service (${image})"
  docker run -d --name=flocker-control-service --restart=always --net=host \
    -v "${FLOCKER_CERTS}:/etc/flocker:ro" -v /var/lib/flocker:/var/lib/flocker "$image" \
    --port="tcp:${FLOCKER_CONTROL_SERVICE_PORT}" --agent-port="tcp:${FLOCKER_AGENT_PORT}" >/dev/null
fi
flocker::wait_for "the control service did not answer on ${FLOCKER_CONTROL_SERVICE_HOST}:${FLOCKER_CONTROL_SERVICE_PORT}" 120 flocker::api version
version=$(flocker::api version | sed -n 's/.*"flocker": *"\([^"]*\)".*/\1/p' || true)
flocker::log "Flocker ${version} control service is up at https://${FLOCKER_CONTROL_SERVICE_HOST}:${FLOCKER_CONTROL_SERVICE_PORT}/v1"
