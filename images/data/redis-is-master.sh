#!/bin/sh
# Keepalived's tracking script on a Redis instance: passes only where ROLE says master, so the
# VIP follows the master Sentinel elects.
redis-cli --no-auth-warning -a "$(cat /run/redis-password)" role 2>/dev/null | head -n 1 | grep -qx master
