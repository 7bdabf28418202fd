#!/bin/sh
# /usr/local/bin/etcdctl of the etcd images: 2.2.5's spoke the v2 API, as Debian's 3.4 does when asked.
export ETCDCTL_API="${ETCDCTL_API:-2}"
exec /usr/bin/etcdctl "$@"
