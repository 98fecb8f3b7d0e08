#!/usr/bin/env bash
# deploy.k8s.schema: every manifest under deploy/k8s (base, components, overlays) validated
# OFFLINE against the Kubernetes / KEDA / prometheus-operator JSON schemas, with an
# unknown-field probe; kustomization files checked for keys and referenced files; the
# PrometheusRule proven identical to deploy/prometheus/alerts.yml.
# Tools: deploy/k8s/tools (npm ci, by scripts/install-npm-tools.sh).
set -euo pipefail
src=${1:?usage: k8s_schema.sh SOURCE_DIR}
cd "$src"
tools=deploy/k8s/tools
if [ ! -d "$tools/node_modules/kubernetes-models" ]; then
  echo "deploy/k8s/tools/node_modules is missing: run scripts/install-npm-tools.sh" >&2
  exit 1
fi
exec node "$tools/validate.mjs" --k8s deploy/k8s --alerts deploy/prometheus/alerts.yml
