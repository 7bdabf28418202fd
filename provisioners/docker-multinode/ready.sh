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
since=$(date -u +%s)
kubectl=(kubectl --server="http://${MASTER_IP}:8080" --request-timeout=20s)

last=""
for ((waited = 0; waited < READY_TIMEOUT; waited += 2)); do
  if status=$("${kubectl[@]}" get node "${node}" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}' 2>&1); then
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
