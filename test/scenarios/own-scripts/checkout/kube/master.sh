#!/bin/bash
# Needs common.sh beside it, and the node's own address in IP_ADDRESS.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ip -4 -o addr show | grep -q " ${IP_ADDRESS}/" || { echo "!!! ${IP_ADDRESS} is not an address of $(hostname)"; exit 1; }
kube::log "$(hostname) uses IP_ADDRESS=${IP_ADDRESS}"
