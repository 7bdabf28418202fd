#!/bin/bash
# Prompts as docker-multinode's turndown does; without an answer on stdin, read fails and so does the script.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
read -r -p "Do you want to clean /var/lib/kubelet? [Y/n] " clean
kube::log "answered ${clean}"
[[ "${clean}" == [Yy] ]]
