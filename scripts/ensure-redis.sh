#!/usr/bin/env bash
# Makes sure redis-server and redis-cli are installed, installing Debian's
# packages when they are missing and we may (root with apt-get). The tests
# start their own throwaway servers; nothing is started here.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-redis: installing redis-server and redis-tools from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
  exit 0
fi
echo "ensure-redis: redis-server is not installed and this user cannot install it;" >&2
echo "  install it (Debian/Ubuntu: sudo apt-get install redis-server) or set REDIS_URL" >&2
echo "  the Redis tests will fail because TRYPEMA_REQUIRE_REDIS=1" >&2
