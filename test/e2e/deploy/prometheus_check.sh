#!/usr/bin/env bash
# deploy.prometheus: the Prometheus configuration for docker-compose and the alert rules are
# valid for promtool (Debian's prometheus package), and the rule unit tests pass: every alert
# of deploy/prometheus/alerts.yml fires and stays silent where deploy/prometheus/alerts_test.yml
# says so.
set -euo pipefail
src=${1:?usage: prometheus_check.sh SOURCE_DIR}
cd "$src/deploy/prometheus"
promtool=${PROMTOOL:-promtool}
rc=0
run() {
  echo "+ $*"
  "$@" || { echo "FAIL: $*"; rc=1; }
}
run "$promtool" check config prometheus.yml
run "$promtool" check rules alerts.yml
run "$promtool" test rules alerts_test.yml
# every alert of alerts.yml has a unit test where it fires and one where it does not
/usr/bin/python3 - <<'PY' || rc=1
import sys, yaml
alerts = [r["alert"] for g in yaml.safe_load(open("alerts.yml"))["groups"] for r in g["rules"] if "alert" in r]
cases = [c for t in yaml.safe_load(open("alerts_test.yml"))["tests"] for c in t.get("alert_rule_test", [])]
bad = 0
for a in alerts:
    fires = any(c["alertname"] == a and c.get("exp_alerts") for c in cases)
    silent = any(c["alertname"] == a and not c.get("exp_alerts") for c in cases)
    if not (fires and silent):
        bad += 1
        print(f"FAIL: alert {a} needs unit tests where it fires ({fires}) and where it does not ({silent})")
print(f"{len(alerts) - bad} of {len(alerts)} alerts tested firing and not firing")
sys.exit(1 if bad else 0)
PY
[ $rc -eq 0 ] && echo "prometheus: all passed"
exit $rc
