#!/usr/bin/env bash
echo "about to fail on purpose"
exit 3
