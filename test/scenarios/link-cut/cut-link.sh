#!/usr/bin/env bash
set -euo pipefail
dev=$(ip -o -4 addr show | awk -v a="$LAB_ADDRESS" '$4 ~ "^"a"/" {print $2}')
ip link set "$dev" down
echo "took $dev ($LAB_ADDRESS) down on $(hostname)"
