#!/usr/bin/env bash
# After the lab restores a snapshot of this node: waits until its dataset agent is connected to the
# control service again and the control service lists the node (what agent.sh waited for).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source common.sh
flocker::settings
host=$(ip -o route get "${FLOCKER_CONTROL_SERVICE_HOST}" | sed -n 's/.* src \([0-9.]*\).*/\1/p')
if ((FLOCKER_AGENT_WAIT == 0)); then
  # agent.sh did not wait for it either: whether the agent lives is the checks' to find.
  flocker::log "The dataset agent on ${host} is restored (FLOCKER_AGENT_WAIT=0: not waiting for the control service to list it)"
  exit 0
fi
connected() { [[ -n $(ss -Htn state established "dst ${FLOCKER_CONTROL_SERVICE_HOST}:${FLOCKER_AGENT_PORT}") ]] && flocker::api state/nodes | grep -qF "\"${host}\""; }
flocker::wait_for "the dataset agent on ${host} is not connected to ${FLOCKER_CONTROL_SERVICE_HOST}:${FLOCKER_AGENT_PORT}, or the control service does not list it," 120 connected
flocker::log "The dataset agent on ${host} is connected to ${FLOCKER_CONTROL_SERVICE_HOST}:${FLOCKER_AGENT_PORT}"
