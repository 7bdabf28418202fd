#!/usr/bin/env bash
# After the lab restores a snapshot of this node: waits until the apiserver at MASTER_IP answers and
# this node's kubelet has posted its status since the restore, Ready (the node controller then
# counts its heartbeats from now). Exits 1, saying what it last saw, after READY_TIMEOUT seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source common.sh
multinode::settings
: "${MASTER_IP:?}"
READY_TIMEOUT=${READY_TIMEOUT:-180}
node=$(multinode::node_ip)
since=${LAB_RESTORED_AT:-$(date -u +%s)}

# The node's Ready condition as "<status> <lastHeartbeatTime>", from the apiserver's JSON.
ready_condition() {
  curl -fsS --max-time 10 "http://${MASTER_IP}:8080/api/v1/nodes/${node}" | tr -d '\n ' |
    grep -o '{[^{}]*"type":"Ready"[^{}]*}' |
    sed -n 's/.*"status":"\([A-Za-z]*\)".*"lastHeartbeatTime":"\([^"]*\)".*/\1 \2/p; s/.*"lastHeartbeatTime":"\([^"]*\)".*"status":"\([A-Za-z]*\)".*/\2 \1/p' | head -1
}

last=""
for ((waited = 0; waited < READY_TIMEOUT; waited += 2)); do
  if status=$(ready_condition 2>&1) && [[ -n ${status} ]]; then
    read -r ready heartbeat <<<"${status}"
    if [[ ${ready} == True ]] && (($(date -u -d "${heartbeat}" +%s) >= since)); then
      multinode::log "Node ${node} is Ready, posting its status (last heartbeat ${heartbeat})"
      exit 0
    fi
  fi
  last=${status:-}
  sleep 2
done
multinode::fail "node ${node} did not post a Ready status within ${READY_TIMEOUT} s of the restore (last seen: ${last:-nothing})"
