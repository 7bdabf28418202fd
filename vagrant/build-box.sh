#!/usr/bin/env bash
# Turns a lab image into a vagrant-libvirt box (an uncompressed tar: the disk is already qcow2).
#   vagrant/build-box.sh <image folder> <out.box>
# The box carries the image's kernel, initrd and client key, and a Vagrantfile that boots the
# kernel directly and logs in as root with that key, so `vagrant up --provider=libvirt` works with
# the box alone.
set -euo pipefail
image=$1 out=$2
arch=$(sed -n 's/.*"arch": *"\([a-z0-9]*\)".*/\1/p' "$image/image.json" | head -1)
case "$arch" in
  amd64) console=ttyS0 machine=pc ;;
  arm64) console=ttyAMA0 machine=virt ;;
  *) echo "build-box: unknown arch in $image/image.json" >&2; exit 2 ;;
esac
work=$(mktemp -d "$(dirname "$out")/.box-XXXXXX")
trap 'rm -rf "$work"' EXIT
ln "$image/disk.qcow2" "$work/box.img" 2>/dev/null || cp "$image/disk.qcow2" "$work/box.img"
cp "$image/vmlinuz" "$image/initrd.img" "$image/id_ed25519" "$work/"
size=$(qemu-img info --output=json "$image/disk.qcow2" | sed -n 's/.*"virtual-size": *\([0-9]*\).*/\1/p' | head -1)
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' $(((size + 1073741823) / 1073741824)) > "$work/metadata.json"
cat > "$work/Vagrantfile" <<VAGRANTFILE
# Box defaults for a lab image ($arch): direct kernel boot, root login with the image's key.
box_dir = File.dirname(__FILE__)
Vagrant.configure("2") do |config|
  config.ssh.username = "root"
  config.ssh.private_key_path = File.join(box_dir, "id_ed25519")
  config.ssh.insert_key = false
  # Vagrant runs its guest commands through sudo; the image logs in as root and has no sudo.
  config.ssh.sudo_command = "%c"
  config.vm.synced_folder ".", "/vagrant", disabled: true
  # The image has no /etc/fstab for Vagrant to edit (its root is the whole disk).
  config.vm.allow_fstab_modification = false
  config.vm.provider :libvirt do |libvirt|
    libvirt.machine_type = "$machine"
    libvirt.kernel = File.join(box_dir, "vmlinuz")
    libvirt.initrd = File.join(box_dir, "initrd.img")
    libvirt.cmd_line = "console=$console root=/dev/vda rw quiet panic=-1 net.ifnames=0"
    libvirt.disk_bus = "virtio"
    libvirt.graphics_type = "none"
    libvirt.video_type = "none"
  end
end
VAGRANTFILE
tar -C "$work" -cf "$out.part" metadata.json Vagrantfile box.img vmlinuz initrd.img id_ed25519
mv "$out.part" "$out"
