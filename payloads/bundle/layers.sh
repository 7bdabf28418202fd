#!/usr/bin/env bash
# Makes the file trees of the payload's image layers for one architecture, offline from Debian
# packages: the packages are downloaded by apt into a private apt root (never the host's dpkg
# database) and unpacked with dpkg-deb; no maintainer script runs, nothing runs under emulation.
#   ARCH=amd64|arm64 OUT=<dir> MIRROR=<debian mirror> SUITE=bookworm APT_ROOT=<cache dir> layers.sh
# Writes $OUT/base (libc, busybox, pause), $OUT/etcd (Debian's etcd), $OUT/runtime (Debian's
# Node.js, iproute2 and iptables, for the stand-ins written in TypeScript) and $OUT/storage
# (losetup, mount, blkid, mkfs.ext4: what the Flocker dataset agent runs).
set -euo pipefail
: "${ARCH:?}" "${OUT:?}" "${MIRROR:?}" "${SUITE:?}" "${APT_ROOT:?}"

BASE_PACKAGES=(libc6 libgcc-s1 gcc-12-base busybox-static)
# Only getent is taken from it (the C library's resolver, for nslookup below).
LIBC_BIN=libc-bin
# Only os-release is taken from it: what the images are (cadvisor reads PRETTY_NAME for the kubelet's osImage).
BASE_FILES=base-files
ETCD_PACKAGES=(etcd-server etcd-client)
RUNTIME_PACKAGES=(nodejs iproute2 iptables kmod)
STORAGE_PACKAGES=(mount util-linux e2fsprogs)
# Pulled in by dependencies but never run in a container: package tooling, users, PAM, perl.
SKIP='^(perl|perl-base|perl-modules-.*|libperl.*|dpkg|passwd|adduser|tar|debconf|init-system-helpers|usrmerge|lib.*-perl|libpam.*|libsemanage.*|libaudit.*|libcap-ng0|libcap2-bin|nodejs-doc|netbase|libgdbm.*|libdb5\.3|libkrb5.*|libgssapi-krb5-2|libk5crypto3|libkeyutils1|libcom-err2|libtirpc.*|libsepol2)$'

apt_opts=(-o "Dir=$APT_ROOT" -o "Dir::State::status=$APT_ROOT/var/lib/dpkg/status" -o "APT::Architecture=$ARCH"
  -o "APT::Architectures::=$ARCH" -o "Dir::Etc::Trusted=/etc/apt/trusted.gpg" -o "Dir::Etc::TrustedParts=/etc/apt/trusted.gpg.d"
  -o "Dir::Etc::SourceParts=-" -o "Debug::NoLocking=1" -o "APT::Install-Recommends=false" -q)
mkdir -p "$APT_ROOT/etc/apt/preferences.d" "$APT_ROOT/var/lib/apt/lists/partial" "$APT_ROOT/var/cache/apt/archives/partial" "$APT_ROOT/var/lib/dpkg"
touch "$APT_ROOT/var/lib/dpkg/status"
printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$MIRROR" "$SUITE" >"$APT_ROOT/etc/apt/sources.list"
printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s-security main\n' "${MIRROR%/debian}/debian-security" "$SUITE" >>"$APT_ROOT/etc/apt/sources.list"

echo "lab: downloading ${ARCH} packages for the payload (${BASE_PACKAGES[*]} ${LIBC_BIN} ${BASE_FILES} ${ETCD_PACKAGES[*]} ${RUNTIME_PACKAGES[*]} ${STORAGE_PACKAGES[*]})"
apt-get "${apt_opts[@]}" update >/dev/null
apt-get "${apt_opts[@]}" -y install --download-only "${BASE_PACKAGES[@]}" "$LIBC_BIN" "$BASE_FILES" "${ETCD_PACKAGES[@]}" "${RUNTIME_PACKAGES[@]}" "${STORAGE_PACKAGES[@]}" >/dev/null
archives=$APT_ROOT/var/cache/apt/archives

# The newest downloaded .deb of a package (older versions may linger in the cache).
deb_of() { (shopt -s nullglob; printf '%s\n' "$archives/$1"_*_{"$ARCH",all}.deb | sort -V | tail -1); }

# A layer: Debian's merged /usr, then the packages unpacked into it.
unpack() {
  local dir=$1 pkg deb
  shift
  mkdir -p "$dir/usr/bin" "$dir/usr/sbin" "$dir/usr/lib"
  for link in bin sbin lib; do ln -sfn "usr/$link" "$dir/$link"; done
  [[ $ARCH == amd64 ]] && mkdir -p "$dir/usr/lib64" && ln -sfn usr/lib64 "$dir/lib64"
  for pkg in "$@"; do
    deb=$(deb_of "$pkg")
    [[ -n $deb ]] || { echo "lab: no downloaded package $pkg for $ARCH" >&2; exit 1; }
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$dir"
  done
  rm -rf "$dir/usr/share/doc" "$dir/usr/share/man" "$dir/usr/share/info" "$dir/usr/share/lintian" "$dir/usr/share/locale" "$dir/etc/init.d" "$dir"/usr/lib/*/gconv
}

rm -rf "$OUT"
mkdir -p "$OUT"
unpack "$OUT/base" "${BASE_PACKAGES[@]}"
# busybox provides the shell and the small tools (sh, sleep, ping, wget, httpd, ...).
for applet in sh ash cat cp date echo env grep head hostname kill ln ls mkdir mount mv nc ping ps rm sed sleep sort tail test tr true false umount uname wc wget httpd; do
  ln -sf busybox "$OUT/base/usr/bin/$applet"
done
unpack "$OUT/.libc-bin" "$LIBC_BIN"
cp "$OUT/.libc-bin/usr/bin/getent" "$OUT/base/usr/bin/getent"
rm -rf "$OUT/.libc-bin"
dpkg-deb --fsys-tarfile "$(deb_of "$BASE_FILES")" | tar -x -C "$OUT/base" ./usr/lib/os-release ./etc/os-release
# nslookup as the 2016 busybox (1.24) did it: through the C library's resolver, so resolv.conf's
# search path and ndots:5 apply and `nslookup kubernetes.default` finds
# kubernetes.default.svc.cluster.local. Busybox 1.35's own nslookup sends a dotted name as it is;
# it still answers `nslookup NAME SERVER` (kube-dns's health probe).
cat >"$OUT/base/usr/bin/nslookup" <<'SH'
#!/bin/sh
if test $# -ne 1 || test "${1#-}" != "$1"; then exec busybox nslookup "$@"; fi
server=$(sed -n 's/^nameserver[[:space:]]*//p' /etc/resolv.conf | head -n 1)
echo "Server:    ${server:-127.0.0.1}"
echo "Address 1: ${server:-127.0.0.1}"
echo
addresses=$(getent ahostsv4 "$1" | sed 's/[[:space:]].*//' | sort -u)
if test -z "$addresses"; then
  echo "nslookup: can't resolve '$1'" >&2
  exit 1
fi
echo "Name:      $1"
n=0
for address in $addresses; do
  n=$((n + 1))
  echo "Address $n: $address"
done
SH
chmod 755 "$OUT/base/usr/bin/nslookup"
mkdir -p "$OUT/base/etc" "$OUT/base/tmp" "$OUT/base/root" "$OUT/base/var/run"
chmod 1777 "$OUT/base/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$OUT/base/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$OUT/base/etc/group"
# The pause container holds a pod's namespaces and exits on TERM (as pause does).
cat >"$OUT/base/pause" <<'SH'
#!/bin/sh
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
SH
chmod 755 "$OUT/base/pause"

unpack "$OUT/etcd" "${ETCD_PACKAGES[@]}"
rm -rf "$OUT/etcd/etc/default"

# Everything the runtime packages pull in (as apt resolves them, whatever else the download cache
# holds), less what the base layer has and what never runs here.
deps_of() { apt-get "${apt_opts[@]}" -s install "$@" | awk '/^Inst /{print $2}' | sort -u; }
mapfile -t runtime < <(
  deps_of "${RUNTIME_PACKAGES[@]}" | grep -vxE "$(IFS='|'; echo "${BASE_PACKAGES[*]}|${LIBC_BIN}|${ETCD_PACKAGES[*]}")" | grep -vE "$SKIP"
)
unpack "$OUT/runtime" "${runtime[@]}"
# What maintainer scripts would have done: iptables through nftables as on the node (Debian's
# default, so the rules land where the node's own iptables sees them), and the CA bundle Node loads.
for tool in iptables iptables-save iptables-restore ip6tables; do ln -sf xtables-nft-multi "$OUT/runtime/usr/sbin/$tool"; done
mkdir -p "$OUT/runtime/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$OUT/runtime/etc/ssl/certs/" 2>/dev/null || touch "$OUT/runtime/etc/ssl/certs/ca-certificates.crt"

# The storage layer: what the storage packages add to the base and runtime layers. Only the tools
# the agent runs need their libraries (PAM and the like, for util-linux's login tools, stay out).
mapfile -t storage < <(
  {
    deps_of "${STORAGE_PACKAGES[@]}" | grep -vE "$SKIP"
    # mke2fs needs libcom-err2, which the runtime layer leaves out.
    echo libcom-err2
  } | sort -u | grep -vxF -f <(printf '%s\n' "${BASE_PACKAGES[@]}" "${runtime[@]}")
)
unpack "$OUT/storage" "${storage[@]}"
echo "lab: payload layers for ${ARCH}: base $(du -sh "$OUT/base" | cut -f1), etcd $(du -sh "$OUT/etcd" | cut -f1), runtime $(du -sh "$OUT/runtime" | cut -f1) (${runtime[*]}), storage $(du -sh "$OUT/storage" | cut -f1) (${storage[*]})"
