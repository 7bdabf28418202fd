# Sourced by the scripts beside it, as docker-multinode's common.sh is.
kube::log() { echo "+++ [$(date +'%Y%m%d %H:%M:%S')] $*"; }
IP_ADDRESS=${IP_ADDRESS:-$(hostname -I | cut -d' ' -f1)}
