#!/usr/bin/env bash
# What the multinode scripts need from a node: a running Docker, the tools they call, and
# containers that run from images loaded without a registry.
set -euo pipefail
for tool in docker curl ip iptables brctl busybox; do command -v "$tool" >/dev/null || { echo "missing: $tool"; exit 1; }; done
# Docker starts with the node; under emulation it may still be starting when SSH answers.
timeout 120 sh -c 'until docker info >/dev/null 2>&1; do sleep 1; done' ||
  { echo "docker is not running after 120 s"; systemctl status docker --no-pager; exit 1; }
docker version --format 'docker server {{.Server.Version}}'
# An image from busybox-static, imported offline.
root=$(mktemp -d)
mkdir -p "$root/bin"
cp /bin/busybox "$root/bin/busybox"
for applet in sh ip ping sleep cat; do ln -s busybox "$root/bin/$applet"; done
tar -C "$root" -c . | docker import - lab/busybox:test >/dev/null
gateway=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)
docker run --rm lab/busybox:test sh -c "ip -4 -o addr show eth0; ping -c 1 -W 5 $gateway" | tee /tmp/container.out
grep -q "1 packets received" /tmp/container.out
docker rmi lab/busybox:test >/dev/null
echo "docker ok"
