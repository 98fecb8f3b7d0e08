# The pipeline between real third-party Kafka clients: events produced with kafka-python
# (Debian's python3-kafka, run by /usr/bin/python3) and kcat to `loginflow broker`, processed by
# `loginflow run` in a separate process, read back by kafka-python in a consumer group; outputs,
# dead letters (reason headers, value byte for byte), graceful stop (SIGTERM -> exit 0) and the
# group's committed offsets checked. Tools: kcat, python3-kafka (scripts/packages.txt, group test).
set(LOGINFLOW_PIPELINE_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/pipeline)

# 2,000 valid events + malformed ones of every dead-letter kind (but too_large) by kafka-python,
# 500 valid + 4 malformed by kcat; about 5-10 s when it passes, --deadline bounds the wait for
# the outputs.
add_test(NAME e2e.pipeline.third_party_clients
  COMMAND ${LOGINFLOW_SYSTEM_PYTHON} ${LOGINFLOW_PIPELINE_TESTS}/third_party_clients.py
          --loginflow $<TARGET_FILE:loginflow> --valid 2000 --kcat-valid 500 --deadline 60)
set_tests_properties(e2e.pipeline.third_party_clients PROPERTIES LABELS e2e TIMEOUT 150 PROCESSORS 2)
