#!/usr/bin/env bash
# The fork's quick fix for Flocker #2841, as a user applies it to a running node: Flocker's
# flocker/node/agents/cinder.py in the dataset agent's container replaced by one whose adapter
# table is keyed "2.0" and "1.0", then the agent started again (its restart policy alone would
# start it from the same broken module). The tree under site/ is copied from / down, so the
# module's folder is made where the container lacks it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
module=/opt/flocker/lib/python2.7/site-packages/flocker/node/agents/cinder.py
docker cp site/. flocker-dataset-agent:/
docker restart flocker-dataset-agent >/dev/null
echo "Replaced ${module} in flocker-dataset-agent and restarted it"
