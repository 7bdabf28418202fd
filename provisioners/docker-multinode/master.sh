#!/usr/bin/env bash
# Sets up the master: bootstrap Docker, etcd and the flannel config, flannel, the main Docker on
# flannel's subnet, then the kubelet with the master manifests (apiserver, controller-manager,
# scheduler as static pods). Export any option first to override it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source common.sh

MASTER_IP=${MASTER_IP:-$(hostname -I | awk '{print $1}')}
multinode::main
multinode::check_params
multinode::detect_lsb
multinode::turndown
multinode::bootstrap_daemon
multinode::start_etcd
multinode::start_flannel
multinode::restart_docker
multinode::start_k8s_master
multinode::log "Done. The master is ready at http://${MASTER_IP}:8080 (give the static pods a minute)"
