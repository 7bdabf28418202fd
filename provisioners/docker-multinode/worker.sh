#!/usr/bin/env bash
# Sets up a worker that joins the master at MASTER_IP: bootstrap Docker, flannel, the main Docker
# on flannel's subnet, the kubelet pointed at the master, and the proxy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source common.sh

if [[ -z ${MASTER_IP:-} ]]; then
  echo "Please export MASTER_IP in your env"
  exit 1
fi
multinode::main
multinode::check_params
multinode::detect_lsb
multinode::turndown
multinode::bootstrap_daemon
multinode::start_flannel
multinode::restart_docker
multinode::start_k8s_worker
multinode::start_k8s_worker_proxy
multinode::log "Done. This worker joins the master at ${MASTER_IP}"
