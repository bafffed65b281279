#!/usr/bin/env bash
# Makes sure the test dependencies from Debian's packages are installed:
# redis-server, redis-cli (redis-tools) and python3-redis (the scripts are
# also tested from Python). Installs what is missing when we may (root with
# apt-get). The tests start their own throwaway servers; nothing is started
# here.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
/usr/bin/python3 -c 'import redis' >/dev/null 2>&1 || missing+=(python3-redis)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-redis: installing ${missing[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "ensure-redis: missing ${missing[*]} and this user cannot install them;" >&2
echo "  install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}) or set REDIS_URL" >&2
echo "  the Redis tests will fail because TRYPEMA_REQUIRE_REDIS=1" >&2
