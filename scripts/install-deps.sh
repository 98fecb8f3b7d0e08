#!/usr/bin/env bash
# Installs the Debian packages loginflow needs that are not installed yet.
# Idempotent and quiet when nothing is missing.
#   scripts/install-deps.sh            build + test packages
#   scripts/install-deps.sh build      only the build group (the Dockerfile uses this)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
groups=${1:-build,test}
wanted=$(awk -v g=",$groups," '!/^#/ && NF==2 && index(g, ","$1",") {print $2}' "$here/packages.txt")
missing=()
for p in $wanted; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
