# Deployment deliverables (Dockerfile, docker-compose.yml, Prometheus config and alerts, Grafana
# dashboard, Kubernetes manifests), checked without a Docker daemon or a cluster.
# Tools: docker-compose, promtool/prometheus, python3-yaml (scripts/packages.txt, group test);
# kubectl with its built-in kustomize (on the machine image; deploy.k8s.kustomize is skipped
# without it); the npm validators in deploy/k8s/tools (scripts/install-npm-tools.sh).
set(LOGINFLOW_DEPLOY_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/deploy)

# 1. docker-compose.yml: Debian's docker-compose v1 accepts it, and the services fit together.
add_test(NAME e2e.deploy.compose
  COMMAND ${LOGINFLOW_SYSTEM_PYTHON} ${LOGINFLOW_DEPLOY_TESTS}/compose_check.py ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.deploy.compose PROPERTIES LABELS e2e TIMEOUT 60)

# 2. promtool: check config, check rules, test rules (every alert firing and not firing).
add_test(NAME e2e.deploy.prometheus
  COMMAND bash ${LOGINFLOW_DEPLOY_TESTS}/prometheus_check.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.deploy.prometheus PROPERTIES LABELS e2e TIMEOUT 60)

# 3. Kubernetes manifests: JSON-schema validation offline (Kubernetes, KEDA, prometheus-operator),
#    PrometheusRule == deploy/prometheus/alerts.yml, and the Kustomize overlays rendered.
add_test(NAME e2e.deploy.k8s.schema
  COMMAND bash ${LOGINFLOW_DEPLOY_TESTS}/k8s_schema.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.deploy.k8s.schema PROPERTIES LABELS e2e TIMEOUT 60)
add_test(NAME e2e.deploy.k8s.kustomize
  COMMAND bash ${LOGINFLOW_DEPLOY_TESTS}/k8s_kustomize.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.deploy.k8s.kustomize PROPERTIES LABELS e2e TIMEOUT 60 SKIP_RETURN_CODE 77)

# 4. Dockerfile: the build stage installs exactly `scripts/install-deps.sh build`; structure
#    lint; the HEALTHCHECK command run against a local server; the runtime stage's packages
#    provide every library `ldd` finds in the built binary.
add_test(NAME e2e.deploy.dockerfile
  COMMAND ${LOGINFLOW_SYSTEM_PYTHON} ${LOGINFLOW_DEPLOY_TESTS}/dockerfile_check.py
          --source ${PROJECT_SOURCE_DIR} --binary $<TARGET_FILE:loginflow>)
set_tests_properties(e2e.deploy.dockerfile PROPERTIES LABELS e2e TIMEOUT 60)

# 5. Live PromQL: `loginflow demo` scraped by a real Prometheus server; every query of the
#    Grafana dashboard and of the alert rules must return data.
add_test(NAME e2e.deploy.promql_live
  COMMAND ${LOGINFLOW_SYSTEM_PYTHON} ${LOGINFLOW_DEPLOY_TESTS}/promql_live.py
          --source ${PROJECT_SOURCE_DIR} --loginflow $<TARGET_FILE:loginflow> --deadline 85)
set_tests_properties(e2e.deploy.promql_live PROPERTIES LABELS e2e TIMEOUT 120 PROCESSORS 2)
