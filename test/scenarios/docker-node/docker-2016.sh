#!/usr/bin/env bash
# The 2016 Docker host the docker-multinode scripts expect, each point in the form they use it
# (the lab's own script, not theirs): `docker daemon` with --graph for a second daemon, the
# systemd unit found and edited by `$(which docker)`, ifconfig and lsb_release.
set -eu
sock=unix:///var/run/docker-bootstrap.sock
echo "lsb_release: $(lsb_release -si)"
command -v ifconfig
docker daemon -H "$sock" -p /var/run/docker-bootstrap.pid --iptables=false --ip-masq=false --bridge=none \
  --graph=/var/lib/docker-bootstrap --exec-root=/var/run/docker-bootstrap 2>/var/log/docker-bootstrap.log 1>/dev/null &
for _ in $(seq 60); do docker -H "$sock" ps >/dev/null 2>&1 && break; sleep 1; done
docker -H "$sock" ps >/dev/null || { echo "the bootstrap daemon did not come up"; cat /var/log/docker-bootstrap.log; exit 1; }
echo "bootstrap root: $(docker -H "$sock" info --format '{{.DockerRootDir}}')"
# Each daemon sees its own containers only, though both share the node's containerd.
root=$(mktemp -d)
mkdir -p "$root/bin" && cp /bin/busybox "$root/bin/" && for a in sh ip sleep cat; do ln -s busybox "$root/bin/$a"; done
tar -C "$root" -c . | docker -H "$sock" import - lab/busybox:2016 >/dev/null
tar -C "$root" -c . | docker import - lab/busybox:2016 >/dev/null
docker -H "$sock" run -d --net=host --name in-bootstrap lab/busybox:2016 sleep 600 >/dev/null
# (A daemon started with --bridge=none deletes docker0, as Docker's did then: the main daemon's
# containers wait for restart_docker below, which makes it again.)

# restart_docker's systemd branch: the unit is the first line of `systemctl cat`, its ExecStart the
# line that holds `which docker`, and the flags are appended to that line as it stands.
DOCKER_CONF=$(systemctl cat docker | head -1 | awk '{print $2}')
line=$(grep "$(which docker)" "$DOCKER_CONF")
echo "unit line: $line"
sed -e "s@${line}@${line} --mtu=1472@g" -i "$DOCKER_CONF"
line=$(grep "$(which docker)" "$DOCKER_CONF")
sed -e "s@${line}@${line} --bip=10.1.15.1/24@g" -i "$DOCKER_CONF"
# (docker0 is gone already, see above: the scripts, without errexit, go on past these.)
ifconfig docker0 down || true
brctl delbr docker0 || true
systemctl daemon-reload
systemctl restart docker
docker info >/dev/null
ip -4 -o addr show docker0 | awk '{print "docker0", $4}'
docker run --rm lab/busybox:2016 cat /sys/class/net/eth0/mtu | sed 's/^/container mtu /'
docker run -d --name in-main lab/busybox:2016 sleep 600 >/dev/null
echo "main lists: $(docker ps --format '{{.Names}}' | xargs)"
# The main daemon's restart cleans up containerd's tasks of its own namespace only: the bootstrap
# daemon's container runs on (flannel and etcd there must outlive restart_docker).
echo "bootstrap after restart: $(docker -H "$sock" ps --format '{{.Names}}' | xargs)"
