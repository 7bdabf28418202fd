#!/usr/bin/env bash
# Installs without internet access (after kube-deploy PR #168, never merged upstream):
#   offline.sh list [prefix]       every image the install needs, one per line
#   offline.sh pull                pulls them all (on a machine with access)
#   offline.sh push <prefix>       retags and pushes them to a private registry
#   offline.sh bootstrap [prefix]  makes etcd and flannel available to the bootstrap daemon
#                                  (pulling <prefix>/<image> and retagging first, when given)
# K8S_VERSION must be exported: there is no stable.txt to ask. The lab also honours
# OFFLINE_BUNDLE, a `docker save` archive loaded into the main Docker before bootstrap.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source common.sh

[[ -n ${K8S_VERSION:-} ]] || multinode::fail "K8S_VERSION must be exported when installing offline"
multinode::main
ALL_IMAGES=("${ETCD_IMAGE}" "${FLANNEL_IMAGE}" "${HYPERKUBE_IMAGE}" "${PAUSE_IMAGE}")

# The images the hyperkube image's own manifests name, plus the four above.
offline::list() {
  local prefix=${1:-$REG_PREFIX} hyperkube=${HYPERKUBE_IMAGE#"${REG_PREFIX}/"}
  {
    docker run --rm "${prefix}/${hyperkube}" /bin/sh -c 'grep -hor "gcr.io/[^\" ]*" /etc/kubernetes' | sed "s#gcr.io/google_containers#${REG_PREFIX}#"
    printf '%s\n' "${ALL_IMAGES[@]}"
  } | sed 's/ARCH/'"${ARCH}"'/g' | sort -u
}

offline::retag_from() {
  local prefix=$1 image
  for image in $(offline::list "$prefix"); do
    docker pull "${prefix}/${image#"${REG_PREFIX}/"}"
    docker tag "${prefix}/${image#"${REG_PREFIX}/"}" "${image}"
  done
}

# etcd and flannel run in the bootstrap daemon: copy them over from the main one if it lacks them
# (in one `docker save`, so the layers they share travel once).
offline::bootstrap_images() {
  local image missing=()
  for image in "${ETCD_IMAGE}" "${FLANNEL_IMAGE}"; do
    docker -H "${BOOTSTRAP_DOCKER_SOCK}" image inspect "${image}" >/dev/null 2>&1 || missing+=("${image}")
  done
  if ((${#missing[@]})); then
    multinode::log "Loading ${missing[*]} into the bootstrap daemon"
    docker save "${missing[@]}" | docker -H "${BOOTSTRAP_DOCKER_SOCK}" load >/dev/null
  fi
}

case "${1:-}" in
  list) offline::list "${2:-}" ;;
  pull) for image in $(offline::list); do docker pull "$image"; done ;;
  push)
    if [[ -z ${2:-} ]]; then
      echo "Must specify registry_prefix for 'push'"
      exit 255
    fi
    for image in $(offline::list); do
      docker tag "$image" "$2/${image#"${REG_PREFIX}/"}"
      docker push "$2/${image#"${REG_PREFIX}/"}"
    done
    ;;
  bootstrap)
    multinode::check_params
    multinode::detect_lsb
    multinode::turndown
    if [[ -n ${OFFLINE_BUNDLE:-} ]]; then
      multinode::log "Loading the image bundle ${OFFLINE_BUNDLE}"
      docker load -i "${OFFLINE_BUNDLE}" >/dev/null
    fi
    if [[ -n ${2:-} ]]; then offline::retag_from "$2"; fi
    multinode::bootstrap_daemon
    offline::bootstrap_images
    multinode::turndown
    ;;
  *)
    echo "Usage: $0 bootstrap|list|pull|push"
    exit 1
    ;;
esac
