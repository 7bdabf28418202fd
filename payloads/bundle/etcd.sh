#!/bin/sh
# /usr/local/bin/etcd of the etcd images (2.2.5, 3.0.4): Debian's etcd 3.4 as they ran. They served
# the v2 API (3.4 does when asked), and, told nothing, advertised and formed their cluster on
# localhost; 3.4 instead advertises a host it detects when it listens on 0.0.0.0, which here is an
# IPv6 address it writes without brackets and then refuses ("too many colons"), so the 2016
# defaults are given for what the caller left out. LAB_ETCD_BIN is for the lab's unit test.
name=default
prev=
for arg in "$@"; do
  case "$prev" in -name | --name) name=$arg ;; esac
  case "$arg" in -name=* | --name=*) name=${arg#*=} ;; esac
  prev=$arg
done
given=" $* "
defaults=
default() {
  case "$given" in
    *" -$1="* | *" -$1 "* | *" --$1="* | *" --$1 "*) ;;
    *) defaults="$defaults --$1=$2" ;;
  esac
}
default advertise-client-urls http://localhost:2379,http://localhost:4001
default initial-advertise-peer-urls http://localhost:2380,http://localhost:7001
default initial-cluster "$name=http://localhost:2380,$name=http://localhost:7001"
# shellcheck disable=SC2086 # the defaults are whole flags without spaces
exec "${LAB_ETCD_BIN:-/usr/bin/etcd}" --enable-v2=true $defaults "$@"
