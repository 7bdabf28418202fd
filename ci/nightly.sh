#!/usr/bin/env bash
# The nightly matrix on one host, for cron or a CI system without a matrix of its own: every cell
# of the scenario's matrix, one after another on this machine (they share its caches: images,
# payload bundles, snapshot layers), then the matrix report in reports/matrix-<name>-<time>/.
# Exit 0 only when every cell met its expectation. Extra arguments go to `lab matrix` (--axis,
# --shard i/n to split the cells across hosts; `lab matrix merge` joins the shards' folders).
#
#   ci/nightly.sh                                    # scenarios/two-node-flocker-nightly
#   ci/nightly.sh scenarios/two-node-flocker-nightly --shard 1/2
#   crontab: 17 2 * * *  cd /srv/lab && ci/nightly.sh >> /var/log/lab-nightly.log 2>&1
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-scenarios/two-node-flocker-nightly}
shift || true
exec bin/lab matrix "$scenario" "$@"
