#!/usr/bin/env bash
# Builds one bootable Debian image offline from Debian packages.
# Called by lab/images/builder.ts; every input comes from the environment so the recipe hash
# (computed by the caller) covers everything that changes the result.
#   OUT        empty directory that receives disk.qcow2, vmlinuz, initrd.img, keys
#   WORK       scratch directory (removed by the caller)
#   ARCH       amd64 | arm64
#   SUITE      bookworm
#   MIRROR     Debian mirror URL
#   PACKAGES   space-separated packages added to the base set
#   MODULES    kernel modules the slim initramfs loads
#   LOAD_MODULES  kernel modules loaded at boot (modules-load.d), may be empty
#   DISK_SIZE  file system size, e.g. 2G
#   DEB_CACHE  directory that keeps downloaded .debs between builds
#   SETUP      a script that finishes the root file system (given its path), may be empty
# Lines starting with "==> " are progress stages that the caller shows to the user.
set -euo pipefail

stage() { echo "==> $*"; }
rootfs="$WORK/rootfs"
mkdir -p "$rootfs" "$DEB_CACHE"

host_arch=$(dpkg --print-architecture)
base="systemd-sysv,udev,dbus,openssh-server,iproute2,iputils-ping,procps,kmod,initramfs-tools,zstd"

run_in() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

if [ "$ARCH" = "$host_arch" ]; then
  stage "debootstrap $SUITE $ARCH"
  debootstrap --variant=minbase --include="$base" --cache-dir="$DEB_CACHE" "$SUITE" "$rootfs" "$MIRROR"
else
  # A foreign chroot runs its second stage under qemu-user-static through binfmt_misc.
  stage "debootstrap $SUITE $ARCH (first stage)"
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  debootstrap --foreign --arch="$ARCH" --variant=minbase --include="$base" --cache-dir="$DEB_CACHE" "$SUITE" "$rootfs" "$MIRROR"
  stage "debootstrap $SUITE $ARCH (second stage, emulated)"
  run_in /debootstrap/debootstrap --second-stage
fi

mounted=()
cleanup() { for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 143' TERM INT
for m in proc sys dev; do mount --bind "/$m" "$rootfs/$m"; mounted=("$rootfs/$m" "${mounted[@]}"); done

# No service may start inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"; chmod +x "$rootfs/usr/sbin/policy-rc.d"

# A slim initramfs: only the modules a virtio guest needs to find its root disk.
echo "MODULES=list" > "$rootfs/etc/initramfs-tools/conf.d/lab.conf"
echo "COMPRESS=zstd" >> "$rootfs/etc/initramfs-tools/conf.d/lab.conf"
printf '%s\n' $MODULES > "$rootfs/etc/initramfs-tools/modules"
[ -n "${LOAD_MODULES:-}" ] && printf '%s\n' $LOAD_MODULES > "$rootfs/etc/modules-load.d/lab.conf"

stage "installing kernel and packages"
echo "deb $MIRROR $SUITE main" > "$rootfs/etc/apt/sources.list"
run_in apt-get -q update >/dev/null
kernel_pkg="linux-image-$ARCH"
# shellcheck disable=SC2086
run_in apt-get -q -y --no-install-recommends -o Dir::Cache::archives=/var/cache/apt/archives install "$kernel_pkg" $PACKAGES

stage "configuring"
if [ -n "${SETUP:-}" ]; then bash "$SETUP" "$rootfs"; fi
echo "lab" > "$rootfs/etc/hostname"
echo "/dev/vda / ext4 rw,relatime 0 1" > "$rootfs/etc/fstab"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$rootfs/etc/hosts"
mkdir -p "$rootfs/etc/systemd/network" "$rootfs/usr/lib/systemd/network"
# The management NIC has this MAC (each VM has its own user-mode network), unless the kernel
# command line names another (lab.mgmt_mac=..., when VMs share one management network: Vagrant).
# The default lives in /usr/lib so that the boot unit's file of the same name in /run overrides it.
cat > "$rootfs/usr/lib/systemd/network/10-mgmt.network" <<NET
[Match]
MACAddress=52:54:00:1a:b0:01
[Network]
DHCP=ipv4
[DHCPv4]
UseDNS=no
# Leases follow the MAC: clones of one image would otherwise ask with the same client ID.
ClientIdentifier=mac
NET
# The cluster NIC: its MAC and address come from the kernel command line, so one image serves
# every node (lab.cluster_mac=52:54:00:1a:c0:01 lab.cluster_ip=10.77.0.11/24).
cat > "$rootfs/usr/local/sbin/lab-cluster-net" <<'SH'
#!/bin/sh
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    lab.cluster_ip=*) ip=${arg#*=} ;;
    lab.cluster_mac=*) mac=${arg#*=} ;;
    lab.mgmt_mac=*) mgmt=${arg#*=} ;;
  esac
done
mkdir -p /run/systemd/network
[ -n "$mgmt" ] && printf '[Match]\nMACAddress=%s\n[Network]\nDHCP=ipv4\n[DHCPv4]\nUseDNS=no\nClientIdentifier=mac\n' "$mgmt" \
  > /run/systemd/network/10-mgmt.network
[ -n "$ip" ] && [ -n "$mac" ] || exit 0
printf '[Match]\nMACAddress=%s\n[Link]\nRequiredForOnline=no\n[Network]\nAddress=%s\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' "$mac" "$ip" \
  > /run/systemd/network/20-cluster.network
SH
chmod 755 "$rootfs/usr/local/sbin/lab-cluster-net"
cat > "$rootfs/etc/systemd/system/lab-cluster-net.service" <<'UNIT'
[Unit]
Description=Lab NIC settings (management MAC, cluster address) from the kernel command line
DefaultDependencies=no
Before=systemd-networkd.service
After=local-fs.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lab-cluster-net
[Install]
WantedBy=systemd-networkd.service
UNIT
run_in systemctl enable systemd-networkd lab-cluster-net >/dev/null 2>&1
run_in systemctl mask systemd-networkd-wait-online.service systemd-firstboot.service \
  e2scrub_reap.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
  man-db.timer dpkg-db-backup.timer systemd-timesyncd.service >/dev/null 2>&1 || true

# One pinned host key per image, one client key per image.
rm -f "$rootfs"/etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N "" -C "lab-host" -f "$rootfs/etc/ssh/ssh_host_ed25519_key"
cp "$rootfs/etc/ssh/ssh_host_ed25519_key.pub" "$OUT/host_key.pub"
ssh-keygen -q -t ed25519 -N "" -C "lab-client" -f "$OUT/id_ed25519"
install -d -m 700 "$rootfs/root/.ssh"
install -m 600 "$OUT/id_ed25519.pub" "$rootfs/root/.ssh/authorized_keys"
cat > "$rootfs/etc/ssh/sshd_config.d/lab.conf" <<SSHD
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
SSHD
passwd -R "$rootfs" -d root >/dev/null

stage "cleaning"
rm -f "$rootfs/usr/sbin/policy-rc.d"
run_in apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/tmp/*
cleanup; mounted=()

stage "extracting kernel and initrd"
kernel=$(ls "$rootfs"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$rootfs"/boot/initrd.img-* | sort -V | tail -1)
cp "$kernel" "$OUT/vmlinuz"; cp "$initrd" "$OUT/initrd.img"
basename "$kernel" | sed 's/^vmlinuz-//' > "$OUT/kernel-version"

stage "making disk ($DISK_SIZE)"
mkfs.ext4 -q -F -L root -d "$rootfs" "$WORK/disk.raw" "$DISK_SIZE"
qemu-img convert -O qcow2 "$WORK/disk.raw" "$OUT/disk.qcow2"
rm -f "$WORK/disk.raw"
stage "done"
