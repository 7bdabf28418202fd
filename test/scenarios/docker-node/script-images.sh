#!/usr/bin/env bash
# The images the 2016-2017 scripts name, where scripts with no offline step of their own look for
# them: etcd and flannel under every name in the bootstrap daemon's data root (started by
# docker-2016.sh in the scripts' form), hyperkube in the main Docker; and etcd 3.0.4 run with the
# flags the later scripts pass, answering /health and the v2 API on 2379.
set -eu
sock=unix:///var/run/docker-bootstrap.sock
arch=$(dpkg --print-architecture)
gcr=gcr.io/google_containers
for image in "$gcr/etcd-$arch:2.2.5" "$gcr/etcd-$arch:3.0.4" "$gcr/flannel-$arch:0.5.5" "quay.io/coreos/flannel:v0.6.1-$arch"; do
  docker -H "$sock" image inspect "$image" >/dev/null && echo "bootstrap has $image"
done
docker image inspect "$gcr/hyperkube-$arch:$K8S_VERSION" >/dev/null && echo "main has hyperkube $K8S_VERSION"
echo "quay flannel reports $(docker -H "$sock" run --rm "quay.io/coreos/flannel:v0.6.1-$arch" /opt/bin/flanneld --version)"
echo "gcr flannel reports $(docker -H "$sock" run --rm "$gcr/flannel-$arch:0.5.5" /opt/bin/flanneld --version)"
docker -H "$sock" run -d --name lab-etcd3 --net=host "$gcr/etcd-$arch:3.0.4" /usr/local/bin/etcd \
  --listen-client-urls=http://0.0.0.0:2379,http://0.0.0.0:4001 --advertise-client-urls=http://localhost:2379,http://localhost:4001 \
  --listen-peer-urls=http://0.0.0.0:2380 --data-dir=/var/etcd/data >/dev/null
for _ in $(seq 60); do curl -fsS http://localhost:2379/health >/dev/null 2>&1 && break; sleep 1; done
curl -fsS http://localhost:2379/health >/dev/null || { docker -H "$sock" ps -a; docker -H "$sock" logs lab-etcd3 2>&1 | tail -20; exit 1; }
echo "etcd 3.0.4 health: $(curl -fsS http://localhost:2379/health)"
curl -fsS -XPUT http://localhost:2379/v2/keys/coreos.com/network/config -d value='{"Network":"10.1.0.0/16"}' >/dev/null
echo "etcd 3.0.4 v2: $(curl -fsS http://localhost:4001/v2/keys/coreos.com/network/config)"
docker -H "$sock" rm -f lab-etcd3 >/dev/null
