#!/usr/bin/env bash
# Shared part of the docker-multinode install (the 2016 kube-deploy guide, v1.2.x/v1.3.x era):
# a bootstrap Docker daemon runs etcd and flannel, the main Docker is restarted on flannel's
# subnet, and the kubelet runs in a hyperkube container. Written for the lab from the guide's
# documented behaviour; every option can be overridden by exporting it first, as in the guide.
# Sourced by master.sh, worker.sh, turndown.sh and offline.sh.

# Settings and their defaults. `multinode::main` needs K8S_VERSION; turndown runs `multinode::settings` alone.
multinode::main() {
  # The guide fetches stable.txt when K8S_VERSION is unset; offline that fails, and says so.
  if [[ -z ${K8S_VERSION:-} ]]; then
    K8S_VERSION=$(curl -fsSL --max-time 10 https://storage.googleapis.com/kubernetes-release/release/stable.txt 2>/dev/null) ||
      multinode::fail "K8S_VERSION is not set and the latest stable version could not be fetched: export K8S_VERSION (e.g. v1.3.0)"
  fi
  multinode::settings
  HYPERKUBE_IMAGE="${REG_PREFIX}/hyperkube-${ARCH}:${K8S_VERSION}"
  multinode::flocker_settings
}

# The Flocker fork's additions: where the kubelets find the control service and the API user's
# certificate (cluster.crt, kubernetes.crt, kubernetes.key in FLOCKER_USER_CA_DIR), which is
# mounted into the kubelet containers. Another directory than /etc/flocker keeps the node's own
# key (node.key) away from the kubelet.
multinode::flocker_settings() {
  FLOCKER_CONTROL_SERVICE_PORT=${FLOCKER_CONTROL_SERVICE_PORT:-4523}
  FLOCKER_CONTROL_SERVICE_HOST=${FLOCKER_CONTROL_SERVICE_HOST:-${MASTER_IP:-}}
  FLOCKER_USER_CA_DIR=${FLOCKER_USER_CA_DIR:-/etc/flocker/}
  FLOCKER_CONTROL_SERVICE_CA_FILE=${FLOCKER_CONTROL_SERVICE_CA_FILE:-${FLOCKER_USER_CA_DIR}cluster.crt}
  FLOCKER_CONTROL_SERVICE_CLIENT_KEY_FILE=${FLOCKER_CONTROL_SERVICE_CLIENT_KEY_FILE:-${FLOCKER_USER_CA_DIR}kubernetes.key}
  FLOCKER_CONTROL_SERVICE_CLIENT_CERT_FILE=${FLOCKER_CONTROL_SERVICE_CLIENT_CERT_FILE:-${FLOCKER_USER_CA_DIR}kubernetes.crt}
  KUBELET_MOUNTS="${KUBELET_MOUNTS:-} -v ${FLOCKER_USER_CA_DIR}:${FLOCKER_USER_CA_DIR}"
}

multinode::settings() {
  ETCD_VERSION=${ETCD_VERSION:-"2.2.5"}
  FLANNEL_VERSION=${FLANNEL_VERSION:-"0.5.5"}
  FLANNEL_IPMASQ=${FLANNEL_IPMASQ:-"true"}
  FLANNEL_BACKEND=${FLANNEL_BACKEND:-"udp"}
  FLANNEL_NETWORK=${FLANNEL_NETWORK:-"10.1.0.0/16"}
  RESTART_POLICY=${RESTART_POLICY:-"unless-stopped"}
  TIMEOUT_FOR_SERVICES=${TIMEOUT_FOR_SERVICES:-20}
  BOOTSTRAP_DOCKER_SOCK="unix:///var/run/docker-bootstrap.sock"
  FLANNEL_SUBNET_DIR=${FLANNEL_SUBNET_DIR:-/run/flannel}
  REG_PREFIX=${REG_PREFIX:-"gcr.io/google_containers"}

  case "$(uname -m)" in
    x86_64*) ARCH=amd64 ;;
    aarch64*) ARCH=arm64 ;;
    arm*) ARCH=arm ;;
    ppc64le*) ARCH=ppc64le ;;
    *) multinode::fail "unsupported architecture $(uname -m)" ;;
  esac
  NET_INTERFACE=${NET_INTERFACE:-$(ip -o -4 route show to default | awk '{print $5}' | head -1)}

  ETCD_IMAGE="${REG_PREFIX}/etcd-${ARCH}:${ETCD_VERSION}"
  FLANNEL_IMAGE="${REG_PREFIX}/flannel-${ARCH}:${FLANNEL_VERSION}"
  PAUSE_VERSION=${PAUSE_VERSION:-"3.0"}
  PAUSE_IMAGE="${REG_PREFIX}/pause-${ARCH}:${PAUSE_VERSION}"
}

multinode::log() { echo "+++ [$(date +'%m%d %H:%M:%S')] $*"; }
multinode::fail() {
  echo "!!! [$(date +'%m%d %H:%M:%S')] $*" >&2
  exit 1
}

# Root, a running Docker, a well-formed version; then every setting, in the guide's format.
multinode::check_params() {
  [[ $(id -u) == 0 ]] || multinode::fail "Please run as root"
  for binary in curl ip docker; do
    command -v "$binary" >/dev/null || multinode::fail "$binary is required but not installed"
  done
  docker info >/dev/null 2>&1 || multinode::fail "Docker is not running on this machine"
  [[ $K8S_VERSION =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-(beta|alpha)\.(0|[1-9][0-9]*))?$ ]] ||
    multinode::fail "Invalid value for K8S_VERSION: ${K8S_VERSION}"
  for name in K8S_VERSION ETCD_VERSION FLANNEL_VERSION FLANNEL_IPMASQ FLANNEL_NETWORK FLANNEL_BACKEND RESTART_POLICY MASTER_IP ARCH NET_INTERFACE \
    FLOCKER_CONTROL_SERVICE_HOST FLOCKER_USER_CA_DIR; do
    multinode::log "${name} is set to: ${!name:-}"
  done
}

# Which way restart_docker must go: the distribution, or systemd whenever it runs.
multinode::detect_lsb() {
  if [[ -d /run/systemd/system ]]; then
    LSB_DIST=systemd
  elif [[ -r /etc/os-release ]]; then
    LSB_DIST=$(. /etc/os-release && echo "${ID}")
  else
    multinode::fail "Cannot tell which distribution this is"
  fi
  case "${LSB_DIST}" in
    ubuntu | debian | amzn | centos | systemd) ;;
    *) multinode::fail "Unsupported distribution: ${LSB_DIST}" ;;
  esac
  multinode::log "Detected ${LSB_DIST}"
}

# Polls `cmd` once a second until it succeeds, for up to TIMEOUT_FOR_SERVICES seconds.
multinode::wait_for() {
  local what=$1 seconds=0
  shift
  until "$@" >/dev/null 2>&1; do
    ((++seconds > TIMEOUT_FOR_SERVICES)) && multinode::fail "${what} did not come up within ${TIMEOUT_FOR_SERVICES} s"
    sleep 1
  done
}

# A second Docker daemon on its own socket, without bridge or iptables, for etcd and flannel.
# (The guide starts it as `docker daemon ... --graph`; Debian's Docker 20.10 calls them dockerd and
# --data-root, and both daemons share the node's containerd, so each needs a containerd namespace of its own.)
multinode::bootstrap_daemon() {
  if ! docker -H "${BOOTSTRAP_DOCKER_SOCK}" info >/dev/null 2>&1; then
    dockerd -H "${BOOTSTRAP_DOCKER_SOCK}" -p /var/run/docker-bootstrap.pid --iptables=false --ip-masq=false --bridge=none \
      --data-root=/var/lib/docker-bootstrap --exec-root=/var/run/docker-bootstrap \
      --containerd-namespace=docker-bootstrap --containerd-plugins-namespace=docker-bootstrap-plugins \
      2>/var/log/docker-bootstrap.log 1>/dev/null &
    disown
  fi
  multinode::wait_for "the bootstrap Docker daemon" docker -H "${BOOTSTRAP_DOCKER_SOCK}" ps
  multinode::log "Bootstrap Docker daemon is running"
}

multinode::start_etcd() {
  multinode::log "Launching etcd..."
  docker -H "${BOOTSTRAP_DOCKER_SOCK}" run -d --restart="${RESTART_POLICY}" --net=host -v /var/lib/kubelet/etcd:/var/etcd \
    "${ETCD_IMAGE}" /usr/local/bin/etcd --listen-client-urls="http://127.0.0.1:4001,http://${MASTER_IP}:4001" \
    --advertise-client-urls="http://${MASTER_IP}:4001" --data-dir=/var/etcd/data >/dev/null
  multinode::wait_for "etcd" curl -fs http://localhost:4001/v2/machines
  # The network flannel hands out subnets from.
  docker -H "${BOOTSTRAP_DOCKER_SOCK}" run --rm --net=host "${ETCD_IMAGE}" etcdctl set /coreos.com/network/config \
    "{ \"Network\": \"${FLANNEL_NETWORK}\", \"Backend\": {\"Type\": \"${FLANNEL_BACKEND}\"}}" >/dev/null
  sleep 2
}

multinode::start_flannel() {
  multinode::log "Launching flannel..."
  rm -f "${FLANNEL_SUBNET_DIR}/subnet.env"
  mkdir -p "${FLANNEL_SUBNET_DIR}"
  docker -H "${BOOTSTRAP_DOCKER_SOCK}" run -d --restart="${RESTART_POLICY}" --net=host --privileged -v /dev/net:/dev/net \
    -v "${FLANNEL_SUBNET_DIR}:/run/flannel" "${FLANNEL_IMAGE}" /opt/bin/flanneld --etcd-endpoints="http://${MASTER_IP}:4001" \
    --ip-masq="${FLANNEL_IPMASQ}" --iface="${NET_INTERFACE}" >/dev/null
  multinode::wait_for "flannel's subnet.env" test -s "${FLANNEL_SUBNET_DIR}/subnet.env"
  # shellcheck disable=SC1091
  source "${FLANNEL_SUBNET_DIR}/subnet.env"
  multinode::log "FLANNEL_SUBNET is set to: ${FLANNEL_SUBNET}"
  multinode::log "FLANNEL_MTU is set to: ${FLANNEL_MTU}"
}

# Adds --mtu and --bip to a config line, or replaces the values already there.
multinode::replace_mtu_bip() {
  local file=$1 marker=$2
  if grep -q -- "--mtu=" "$file"; then
    sed -i "s#--mtu=[0-9]*#--mtu=${FLANNEL_MTU}#g" "$file"
  else
    sed -i "/${marker//\//\\/}/ s#\$# --mtu=${FLANNEL_MTU}#" "$file"
  fi
  if grep -q -- "--bip=" "$file"; then
    sed -i "s#--bip=[0-9./]*#--bip=${FLANNEL_SUBNET}#g" "$file"
  else
    sed -i "/${marker//\//\\/}/ s#\$# --bip=${FLANNEL_SUBNET}#" "$file"
  fi
}

# Restarts the main Docker on flannel's subnet and MTU, the way each init system wants it.
multinode::restart_docker() {
  multinode::log "Restarting main docker daemon on ${FLANNEL_SUBNET} (MTU ${FLANNEL_MTU})"
  case "${LSB_DIST}" in
    systemd)
      # (awk reads it all: with `head -1`, systemctl may die of SIGPIPE and pipefail stops the script)
      DOCKER_CONF=$(systemctl cat docker | awk 'NR == 1 {print $2}')
      cp -f "${DOCKER_CONF}" "${DOCKER_CONF}.backup"
      multinode::replace_mtu_bip "${DOCKER_CONF}" "ExecStart="
      sed -i 's/^\(MountFlags=\).*/\1shared/' "${DOCKER_CONF}"
      ip link set docker0 down 2>/dev/null || true
      brctl delbr docker0 2>/dev/null || ip link del docker0 2>/dev/null || true
      systemctl daemon-reload
      systemctl restart docker
      ;;
    ubuntu | debian)
      local conf=/etc/default/docker
      touch "$conf"
      if grep -q '^DOCKER_OPTS=' "$conf"; then
        multinode::replace_mtu_bip "$conf" "^DOCKER_OPTS="
        sed -i 's/" --mtu/ --mtu/; s/\(--bip=[0-9./]*\)$/\1"/' "$conf"
      else
        echo "DOCKER_OPTS=\"--mtu=${FLANNEL_MTU} --bip=${FLANNEL_SUBNET}\"" >>"$conf"
      fi
      service docker stop
      while pgrep -x dockerd >/dev/null; do sleep 1; done
      service docker start
      ;;
    amzn | centos)
      local conf=/etc/sysconfig/docker
      if grep -q '^OPTIONS=' "$conf"; then multinode::replace_mtu_bip "$conf" "^OPTIONS="; else echo "OPTIONS=\"--mtu=${FLANNEL_MTU} --bip=${FLANNEL_SUBNET}\"" >>"$conf"; fi
      ip link set docker0 down 2>/dev/null || true
      brctl delbr docker0 2>/dev/null || true
      service docker restart
      ;;
  esac
  multinode::wait_for "the main Docker daemon" docker info
}

# The kubelet's folder must be a shared mount so volumes it mounts reach the containers.
multinode::make_shared_kubelet_dir() {
  mkdir -p /var/lib/kubelet
  if ! mountpoint -q /var/lib/kubelet; then mount --bind /var/lib/kubelet /var/lib/kubelet; fi
  mount --make-shared /var/lib/kubelet
}

multinode::node_ip() { ip -o -4 addr list "${NET_INTERFACE}" | awk '{print $4}' | cut -d/ -f1 | head -1; }

# kubelet flags both roles share; the master adds its manifests, the worker points at MASTER_IP.
multinode::run_kubelet() {
  multinode::make_shared_kubelet_dir
  docker run -d --net=host --pid=host --privileged --restart="${RESTART_POLICY}" \
    -v /sys:/sys:rw -v /var/run:/var/run:rw -v /run:/run:rw -v /var/lib/docker:/var/lib/docker:rw \
    -v /var/lib/kubelet:/var/lib/kubelet:shared -v /var/log/containers:/var/log/containers:rw \
    -e FLOCKER_CONTROL_SERVICE_HOST="${FLOCKER_CONTROL_SERVICE_HOST}" -e FLOCKER_CONTROL_SERVICE_PORT="${FLOCKER_CONTROL_SERVICE_PORT}" \
    -e FLOCKER_CONTROL_SERVICE_CA_FILE="${FLOCKER_CONTROL_SERVICE_CA_FILE}" \
    -e FLOCKER_CONTROL_SERVICE_CLIENT_KEY_FILE="${FLOCKER_CONTROL_SERVICE_CLIENT_KEY_FILE}" \
    -e FLOCKER_CONTROL_SERVICE_CLIENT_CERT_FILE="${FLOCKER_CONTROL_SERVICE_CLIENT_CERT_FILE}" \
    ${KUBELET_MOUNTS:-} "${HYPERKUBE_IMAGE}" /hyperkube kubelet --allow-privileged "$@" \
    --cluster-dns=10.0.0.10 --cluster-domain=cluster.local --hostname-override="$(multinode::node_ip)" --v=2 >/dev/null
}

multinode::start_k8s_master() {
  multinode::log "Launching Kubernetes master components..."
  multinode::run_kubelet --api-servers=http://localhost:8080 --config=/etc/kubernetes/manifests-multi
}

multinode::start_k8s_worker() {
  multinode::log "Launching Kubernetes worker components..."
  multinode::run_kubelet --api-servers="http://${MASTER_IP}:8080"
}

multinode::start_k8s_worker_proxy() {
  docker run -d --net=host --privileged --restart="${RESTART_POLICY}" "${HYPERKUBE_IMAGE}" /hyperkube proxy \
    --master="http://${MASTER_IP}:8080" --v=2 >/dev/null
}

# Asks yes/no on a terminal; without one (a provisioner) the answer comes from `var`, or `default`.
multinode::ask() {
  local question=$1 var=$2 default=$3 answer
  if [[ -t 0 ]]; then
    read -r -p "${question} [y/N] " answer
  else
    answer=${!var:-$default}
    echo "${question} ${answer} (from ${var}, no terminal)"
  fi
  [[ $answer =~ ^[yY] ]]
}

# Stops what a previous install left: the bootstrap daemon's containers, the daemon, then the
# kubelet's containers (hyperkube and pause), and optionally the kubelet's folder.
multinode::turndown() {
  if docker -H "${BOOTSTRAP_DOCKER_SOCK}" ps >/dev/null 2>&1; then
    multinode::log "Killing the bootstrap daemon's containers"
    docker -H "${BOOTSTRAP_DOCKER_SOCK}" rm -f $(docker -H "${BOOTSTRAP_DOCKER_SOCK}" ps -q) >/dev/null 2>&1 || true
    kill "$(cat /var/run/docker-bootstrap.pid 2>/dev/null)" 2>/dev/null || true
    rm -f /var/run/docker-bootstrap.pid
  fi
  local kube_containers
  kube_containers=$(docker ps -a | grep -E "hyperkube|/pause" | awk '{print $1}' || true)
  if [[ -n $kube_containers ]]; then
    multinode::log "Killing the kubelet's containers"
    docker rm -f $kube_containers >/dev/null 2>&1 || true
  fi
  if [[ -d /var/lib/kubelet ]] && multinode::ask "Do you want to clean /var/lib/kubelet?" CLEAN_KUBELET n; then
    grep /var/lib/kubelet /proc/mounts | awk '{print $2}' | sort -r | xargs -r umount
    rm -rf /var/lib/kubelet
  fi
}
