#!/usr/bin/env bash
echo "slow step started"
sleep 120
