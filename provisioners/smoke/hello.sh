#!/usr/bin/env bash
# A trivial provisioner: proves that steps run as root, over SSH, with the scenario's environment.
set -euo pipefail
echo "${GREETING:-hello} on $(hostname) ($LAB_ARCH, role $LAB_ROLE, run $LAB_RUN_ID)"
id -u | grep -qx 0
mkdir -p /var/lib/lab
date -u +%FT%TZ > /var/lib/lab/provisioned-at
echo "provisioned at $(cat /var/lib/lab/provisioned-at)"
