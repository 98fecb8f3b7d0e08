#!/usr/bin/env bash
# deploy.k8s.kustomize: the Kustomize overlays rendered OFFLINE (`kubectl kustomize`, no
# cluster) and the rendered objects validated: schemas, how they fit together (selectors,
# ports, probes, env, autoscaler, namespace), and the overlay's settings.
#   1. overlays/example (KEDA ScaledObject)
#   2. overlays/example with the components/hpa lines it documents uncommented (plain HPA)
#   3. base alone
# Exit 77 (CTest: skipped) when no kubectl with a built-in kustomize is installed.
set -euo pipefail
src=${1:?usage: k8s_kustomize.sh SOURCE_DIR}
cd "$src"
tools=deploy/k8s/tools
if [ ! -d "$tools/node_modules/kubernetes-models" ]; then
  echo "deploy/k8s/tools/node_modules is missing: run scripts/install-npm-tools.sh" >&2
  exit 1
fi
if ! command -v kubectl >/dev/null || ! kubectl kustomize --help >/dev/null 2>&1; then
  echo "SKIP: no kubectl with kustomize here (the schema check deploy.k8s.schema still ran)" >&2
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

validate() {  # NAME, rendered file, validate.mjs options...
  local name=$1 file=$2; shift 2
  node "$tools/validate.mjs" --rendered "$file" --name "$name" --alerts deploy/prometheus/alerts.yml "$@"
}
rc=0

kubectl kustomize deploy/k8s/overlays/example > "$tmp/example.yaml"
validate overlays/example "$tmp/example.yaml" --expect-autoscaler keda --expect-namespace loginflow \
  --expect-image registry.example.com/platform/loginflow:0.1.0 --expect-replicas 3 \
  --expect-brokers kafka-0.kafka-brokers.kafka.svc:9092,kafka-1.kafka-brokers.kafka.svc:9092,kafka-2.kafka-brokers.kafka.svc:9092 \
  || rc=1

# the HPA alternative, exactly as the example overlay's comment tells a user to enable it
mkdir "$tmp/hpa"
k8s_rel=$(realpath --relative-to="$tmp/hpa" deploy/k8s)
cp deploy/k8s/overlays/example/*.yaml "$tmp/hpa/"
sed -i -e 's|^# components:|components:|' -e 's|^#   - \.\./\.\./components/hpa|  - ../../components/hpa|' \
  -e "s|\.\./\.\./|$k8s_rel/|g" "$tmp/hpa/kustomization.yaml"
grep -q "^  - $k8s_rel/components/hpa" "$tmp/hpa/kustomization.yaml" \
  || { echo "FAIL overlays/example no longer documents '# components: / #   - ../../components/hpa'"; rc=1; }
kubectl kustomize "$tmp/hpa" > "$tmp/hpa.yaml"
validate overlays/example+components/hpa "$tmp/hpa.yaml" --expect-autoscaler hpa --expect-namespace loginflow || rc=1

kubectl kustomize deploy/k8s/base > "$tmp/base.yaml"
validate base "$tmp/base.yaml" --expect-autoscaler keda --expect-image loginflow:0.1.0 || rc=1
exit $rc
