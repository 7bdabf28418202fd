#!/bin/bash
# Makes a docker image's root file system a 2016 Docker host as far as the docker-multinode scripts
# can tell (called by build-image.sh with the root file system's path; see ./docker for the CLI):
#  - docker.service starts the daemon as `$(which docker) daemon -H fd:// ...`, the unit's shape
#    then, so the guide's restart_docker finds the ExecStart line by `grep $(which docker)` and its
#    --mtu/--bip land there (on Debian's `/usr/sbin/dockerd` line the grep finds nothing);
#  - /etc/default/docker names DOCKER_OPTS, commented out, as Docker 1.x's Debian packages shipped
#    it (the unit reads the variable; the scripts' non-systemd branch appends its own line);
#  - ifconfig (net-tools) and lsb_release (lsb-release) come from the image's packages.
set -euo pipefail
rootfs=$1
here=$(dirname "$0")
install -m 755 "$here/docker" "$rootfs/usr/local/bin/docker"
unit="$rootfs/lib/systemd/system/docker.service"
fail() { echo "docker-2016/setup.sh: $*" >&2; exit 1; }
grep -q '^ExecStart=/usr/sbin/dockerd ' "$unit" || fail "$unit has no 'ExecStart=/usr/sbin/dockerd' line to give the 2016 shape"
sed -i 's#^ExecStart=/usr/sbin/dockerd #ExecStart=/usr/local/bin/docker daemon #' "$unit"
# The scripts' sed takes the line `grep $(which docker)` finds as its pattern: it must be one line.
[ "$(grep -c /usr/local/bin/docker "$unit")" = 1 ] || fail "$unit names /usr/local/bin/docker on more than its ExecStart line"
printf '%s\n' '# Use DOCKER_OPTS to modify the daemon startup options.' '#DOCKER_OPTS="--dns 8.8.8.8 --dns 8.8.4.4"' >>"$rootfs/etc/default/docker"
