#!/usr/bin/env bash
# Removes what master.sh or worker.sh started. Asks before cleaning /var/lib/kubelet; without a
# terminal it does not ask and takes CLEAN_KUBELET (y or n, default n).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source common.sh

multinode::settings
multinode::turndown
multinode::log "Turned down"
