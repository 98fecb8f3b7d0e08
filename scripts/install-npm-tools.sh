#!/usr/bin/env bash
# Installs the npm tools that `make test` uses, pinned by their package-lock.json:
#   deploy/k8s/tools   offline validators for the Kubernetes manifests (kubernetes-models,
#                      @kubernetes-models/keda, @kubernetes-models/prometheus-operator, yaml)
# Idempotent and quiet when nothing is to do: `npm ci` runs only when node_modules is missing
# or was installed from another package-lock.json. Needs Node.js >= 18 with npm; when npm is
# missing it installs Debian's npm (which brings Debian's nodejs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dirs=(deploy/k8s/tools)

if ! command -v npm >/dev/null 2>&1; then
  echo "install-npm-tools: installing Debian's npm" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

for dir in "${dirs[@]}"; do
  d="$root/$dir"
  stamp="$d/node_modules/.installed-from-lock.sha256"
  want=$(sha256sum "$d/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$d/node_modules" ]; then
    continue
  fi
  echo "install-npm-tools: npm ci in $dir" >&2
  log=$(mktemp)
  if ! (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1); then
    cat "$log" >&2; rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  echo "$want" > "$stamp"
done
