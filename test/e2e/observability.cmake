# Observability against a real peer: Debian's Prometheus server scrapes a live `loginflow run`
# that processes a known backlog; its query API must return every SPEC metric with the true
# values, agreeing with a direct scrape, /insights and `promtool check metrics`.
set(LOGINFLOW_OBSERVABILITY_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/observability)
add_test(NAME e2e.observability.prometheus_values
  COMMAND ${LOGINFLOW_SYSTEM_PYTHON} ${LOGINFLOW_OBSERVABILITY_TESTS}/prometheus_values.py
          --loginflow $<TARGET_FILE:loginflow> --events 5000 --deadline 100)
set_tests_properties(e2e.observability.prometheus_values PROPERTIES LABELS e2e TIMEOUT 150 PROCESSORS 2)
