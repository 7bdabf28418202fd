#!/usr/bin/env bash
# The guide's "Deploy DNS manually for v1.2.x" step, run on the master once it is up:
#   kubectl get ns; kubectl create namespace kube-system (if missing);
#   sed -e "s/ARCH/${ARCH}/g;" skydns.yaml | kubectl create -f -
# From v1.3.0 the master deploys kube-dns by itself, so there is nothing to do (and it says so).
# kubectl is Debian's (kubernetes-client), talking to the apiserver on localhost:8080.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source common.sh
multinode::main

if [[ ! $K8S_VERSION =~ ^v1\.[0-2]\. ]]; then
  multinode::log "K8S_VERSION ${K8S_VERSION} deploys kube-dns by itself (the guide's manual step is for v1.2.x)"
  exit 0
fi
command -v kubectl >/dev/null || multinode::fail "kubectl is required but not installed"
kubectl_() { kubectl --server=http://localhost:8080 "$@"; }

# The static pods take a while after master.sh returns.
multinode::log "Waiting for the apiserver on localhost:8080"
for ((seconds = 0; ; seconds += 2)); do
  curl -fsS --max-time 5 http://localhost:8080/healthz >/dev/null 2>&1 && break
  ((seconds < 240)) || multinode::fail "the apiserver did not answer on localhost:8080 within 240 s"
  sleep 2
done
kubectl_ get ns
kubectl_ get ns kube-system >/dev/null 2>&1 || kubectl_ create namespace kube-system
multinode::log "Deploying kube-dns (skydns.yaml) for ARCH=${ARCH}"
sed -e "s/ARCH/${ARCH}/g;" skydns.yaml | kubectl_ create -f -
