#!/usr/bin/env bash
set -euo pipefail
hostname impostor
date -s '+60 seconds' >/dev/null
echo "hostname is now $(hostname); clock moved 60 s ahead"
