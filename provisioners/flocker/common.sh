#!/usr/bin/env bash
# Shared part of the Flocker install on docker-multinode nodes (Flocker 1.13/1.14, 2016): the
# control service on one node, a dataset agent on every node, the cluster's certificates in
# /etc/flocker as Flocker's docs place them. Sourced by control.sh and agent.sh; every setting can
# be overridden by exporting it first.
#
#   FLOCKER_INSTALL=packages   ClusterHQ's packages and their systemd units (the 2016 install docs;
#                              needs ClusterHQ's repository, so the internet)
#   FLOCKER_INSTALL=containers ClusterHQ's images (clusterhq/flocker-control-service,
#                              clusterhq/flocker-dataset-agent), already in the node's Docker
#                              (the lab's offline bundle loads them)

flocker::settings() {
  FLOCKER_VERSION=${FLOCKER_VERSION:-1.14.0}
  FLOCKER_INSTALL=${FLOCKER_INSTALL:-packages}
  FLOCKER_CONTROL_SERVICE_HOST=${FLOCKER_CONTROL_SERVICE_HOST:-${MASTER_IP:-}}
  FLOCKER_CONTROL_SERVICE_PORT=${FLOCKER_CONTROL_SERVICE_PORT:-4523}
  FLOCKER_AGENT_PORT=${FLOCKER_AGENT_PORT:-4524}
  FLOCKER_DATASET_BACKEND=${FLOCKER_DATASET_BACKEND:-loopback}
  FLOCKER_LOOPBACK_ROOT=${FLOCKER_LOOPBACK_ROOT:-/var/lib/flocker/loopback}
  FLOCKER_OPENSTACK_RC=${FLOCKER_OPENSTACK_RC:-/etc/lab/openstack.env}
  # Seconds agent.sh waits for the control service to list the node; 0 starts the agent and returns.
  FLOCKER_AGENT_WAIT=${FLOCKER_AGENT_WAIT:-120}
  FLOCKER_USER_CA_DIR=${FLOCKER_USER_CA_DIR:-/etc/flocker/}
  FLOCKER_USER=${FLOCKER_USER:-kubernetes}
  # Where Flocker reads its own certificates and agent.yml (the lab's tests point it elsewhere).
  FLOCKER_CERTS=${FLOCKER_CERTS:-/etc/flocker}
}

flocker::log() { echo "+++ [$(date +'%m%d %H:%M:%S')] $*"; }
flocker::fail() {
  echo "!!! [$(date +'%m%d %H:%M:%S')] $*" >&2
  exit 1
}

flocker::check_params() {
  [[ $(id -u) == 0 ]] || flocker::fail "Please run as root"
  [[ -n $FLOCKER_CONTROL_SERVICE_HOST ]] || flocker::fail "Please export FLOCKER_CONTROL_SERVICE_HOST (or MASTER_IP) in your env"
  [[ $FLOCKER_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || flocker::fail "Invalid value for FLOCKER_VERSION: ${FLOCKER_VERSION}"
  case "$FLOCKER_INSTALL" in packages | containers) ;; *) flocker::fail "FLOCKER_INSTALL must be packages or containers, not ${FLOCKER_INSTALL}" ;; esac
  for name in FLOCKER_VERSION FLOCKER_INSTALL FLOCKER_CONTROL_SERVICE_HOST FLOCKER_CONTROL_SERVICE_PORT FLOCKER_DATASET_BACKEND FLOCKER_USER_CA_DIR; do
    flocker::log "${name} is set to: ${!name:-}"
  done
}

# A certificate file the node must hold before a service can start (the lab copies them as the
# docs tell users to scp them); keys must be private to root.
flocker::need() {
  local file=$1
  [[ -s $file ]] || flocker::fail "${file} is missing: copy it from the machine that ran flocker-ca (lab certs makes a set)"
  if [[ $file == *.key ]]; then
    [[ $(stat -c %a "$file") == 600 ]] || flocker::fail "${file} must be mode 0600 (it is $(stat -c %a "$file"))"
  fi
}

# ClusterHQ's repository and packages, as the 2016 install docs had them (Ubuntu 16.04).
flocker::install_packages() {
  local package=$1
  if dpkg-query -W -f '${Version}' "$package" 2>/dev/null | grep -q "^${FLOCKER_VERSION}"; then return; fi
  flocker::log "Installing ${package} ${FLOCKER_VERSION} from ClusterHQ's repository"
  apt-get -y install apt-transport-https software-properties-common
  add-apt-repository -y "deb https://clusterhq-archive.s3.amazonaws.com/ubuntu/$(lsb_release --release --short)/\$(ARCH) /"
  printf 'Package: *\nPin: origin clusterhq-archive.s3.amazonaws.com\nPin-Priority: 700\n' >/etc/apt/preferences.d/buildbot-700
  apt-get update
  apt-get -y install --force-yes "${package}=${FLOCKER_VERSION}-1"
}

# The image of a Flocker service must already be in the node's Docker (no registry offline).
flocker::need_image() {
  local image=$1
  docker image inspect "$image" >/dev/null 2>&1 ||
    flocker::fail "${image} is not in this node's Docker: load it first (offline.sh bootstrap loads the lab's bundle) or docker pull it"
}

# Polls `cmd` every 2 s for up to `seconds`.
flocker::wait_for() {
  local what=$1 seconds=$2 waited=0
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((waited >= seconds)) && flocker::fail "${what} within ${seconds} s"
    sleep 2
    ((waited += 2))
  done
}

# The control service's REST API as the API user (the certificate the kubelets use).
flocker::api() {
  curl -fsS --max-time 20 --cacert "${FLOCKER_USER_CA_DIR%/}/cluster.crt" --cert "${FLOCKER_USER_CA_DIR%/}/${FLOCKER_USER}.crt" \
    --key "${FLOCKER_USER_CA_DIR%/}/${FLOCKER_USER}.key" "https://${FLOCKER_CONTROL_SERVICE_HOST}:${FLOCKER_CONTROL_SERVICE_PORT}/v1/$1"
}
