#!/usr/bin/env python3
"""e2e: a real Prometheus server scrapes a live `loginflow run`; its query API returns every
SPEC metric with the true values.

    prometheus_values.py --loginflow BIN [--events 5000] [--deadline 100]

All on 127.0.0.1:
 1. starts `BIN broker --partitions 4` (first stdout line `bootstrap=HOST:PORT`);
 2. produces --events events with `BIN gen --bad-fraction 0.05` and waits for it to exit 0;
 3. starts `BIN run --workers 2` with its HTTP endpoint on a free port;
 4. starts /usr/bin/prometheus (free port, temporary data dir) scraping it every second;
 5. waits until Prometheus reports every event consumed and accounted for (outputs + dead
    letters), then until Prometheus's latest sample of every series of the counter families
    equals a direct scrape of /metrics (the counters are frozen once the backlog is done);
 6. checks the values: consumed == --events, produced + dead letters == --events, dead
    letters of several reasons, logins by device type and by locale each summing to produced,
    workers == 2, build_info{version} == 1, process_* present; /insights' cumulative view
    agrees with Prometheus; `promtool check metrics` passes on the exposition;
 7. SIGTERMs loginflow (exit 0 expected) and stops everything it started.
Exit status: 0 pass, 1 a check failed, 2 setup failed.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy"))
from promql_live import Prom, free_port, http_get, start, stop_all  # noqa: E402

FAMILIES = [
    "loginflow_records_consumed_total",
    "loginflow_records_produced_total",
    "loginflow_records_dlq_total",
    "loginflow_records_warnings_total",
    "loginflow_logins_total",
    "loginflow_logins_by_locale_total",
    "loginflow_processing_seconds_count",
    "loginflow_end_to_end_seconds_count",
    "loginflow_workers",
    "loginflow_build_info",
]
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def parse_exposition(text):
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def prom_samples(P, family):
    """{(name, frozenset(labels without job/instance)): value} from Prometheus."""
    out = {}
    for r in P.api("query", query=f'{family}{{job="loginflow"}}')["result"]:
        labels = frozenset((k, v) for k, v in r["metric"].items() if k not in ("__name__", "job", "instance"))
        out[(r["metric"]["__name__"], labels)] = float(r["value"][1])
    return out


def scalar(P, q):
    r = P.api("query", query=q)["result"]
    return float(r[0]["value"][1]) if r else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loginflow", required=True)
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--promtool", default="/usr/bin/promtool")
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--deadline", type=float, default=100.0)
    a = ap.parse_args()
    deadline = time.monotonic() + a.deadline
    tmp = tempfile.mkdtemp(prefix="loginflow-promvalues-")
    failures = []

    def check(ok, what):
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    def wait_until(cond, what):
        while time.monotonic() < deadline:
            try:
                if cond():
                    return True
            except (OSError, RuntimeError, urllib.error.URLError, KeyError, IndexError, ValueError):
                pass
            time.sleep(0.25)
        print(f"prometheus_values: timed out waiting for {what}", file=sys.stderr)
        return False

    run = None
    try:
        # 1. broker
        broker = start([a.loginflow, "broker", "--partitions", "4"], stdout=subprocess.PIPE,
                       stderr=open(os.path.join(tmp, "broker.log"), "wb"), stdin=subprocess.DEVNULL)
        line = broker.stdout.readline().decode().strip()
        if not line.startswith("bootstrap="):
            print(f"prometheus_values: SETUP FAILED: broker printed {line!r}", file=sys.stderr)
            return 2
        bootstrap = line.split("=", 1)[1]
        # keep reading its stdout, so that it never blocks on a full pipe
        threading.Thread(target=lambda: broker.stdout.read(), daemon=True).start()

        # 2. the events
        gen = subprocess.run([a.loginflow, "gen", "--brokers", bootstrap, "--count", str(a.events),
                              "--bad-fraction", "0.05", "--seed", "5"], capture_output=True,
                             timeout=max(1.0, deadline - time.monotonic()))
        if gen.returncode != 0:
            print(f"prometheus_values: SETUP FAILED: gen exited {gen.returncode}: {gen.stderr.decode()[-2000:]}",
                  file=sys.stderr)
            return 2

        # 3. loginflow run
        http_port = free_port()
        run_log = open(os.path.join(tmp, "run.log"), "w+b")
        run = start([a.loginflow, "run", "--brokers", bootstrap, "--group-id", "promvalues", "--workers", "2",
                     "--http-address", "127.0.0.1", "--http-port", str(http_port), "--insights-interval", "1s",
                     "-X", "consumer.session.timeout.ms=6000", "-X", "consumer.heartbeat.interval.ms=500"],
                    stdout=run_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        target = f"127.0.0.1:{http_port}"

        # 4. prometheus
        prom_port = free_port()
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            json.dump({"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                       "scrape_configs": [{"job_name": "loginflow", "static_configs": [{"targets": [target]}]}]}, f)
        start([a.prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp}/data",
               f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
              stdout=open(os.path.join(tmp, "prometheus.log"), "wb"), stderr=subprocess.STDOUT,
              stdin=subprocess.DEVNULL)
        P = Prom(f"http://127.0.0.1:{prom_port}")
        if not wait_until(lambda: http_get(f"http://127.0.0.1:{prom_port}/-/ready", 2)[0] == 200, "prometheus"):
            return 2

        # 5. everything accounted for, then Prometheus == a direct scrape for every series
        n = float(a.events)
        if not wait_until(lambda: scalar(P, 'sum(loginflow_records_produced_total{job="loginflow"}) + '
                                            'sum(loginflow_records_dlq_total{job="loginflow"})') == n,
                          "every event accounted for in Prometheus"):
            run_log.seek(0)
            print(run_log.read()[-3000:].decode(errors="replace"), file=sys.stderr)
            return 1
        direct = {}

        def same():
            nonlocal direct
            status, body = http_get(f"http://{target}/metrics", 5)
            direct = parse_exposition(body.decode())
            for fam in FAMILIES:
                want = {k: v for k, v in direct.items() if k[0] == fam}
                if not want or prom_samples(P, fam) != want:
                    return False
            return True

        check(wait_until(same, "Prometheus to agree with /metrics"),
              "Prometheus's latest sample of every series equals the direct scrape")

        # 6. the values
        def v(name, **labels):
            return direct.get((name, frozenset(labels.items())))

        produced = v("loginflow_records_produced_total")
        dlq = {dict(k[1])["reason"]: val for k, val in direct.items() if k[0] == "loginflow_records_dlq_total"}
        check(v("loginflow_records_consumed_total") == n, f"records_consumed_total == {a.events}")
        check(produced is not None and produced + sum(dlq.values()) == n, "produced + dead letters == events")
        check(sum(1 for x in dlq.values() if x > 0) >= 5, f"dead letters of several reasons: {dlq}")
        check(produced is not None and 0.9 * n <= produced < n, f"produced {produced} ~ 95% of the events")
        for fam in ("loginflow_logins_total", "loginflow_logins_by_locale_total"):
            total = scalar(P, f'sum({fam}{{job="loginflow"}})')
            check(total == produced, f"sum({fam}) == produced ({total} vs {produced})")
        check(scalar(P, 'loginflow_logins_total{job="loginflow",device_type="unknown"}') > 0,
              "missing device types count as unknown")
        check(v("loginflow_processing_seconds_count") == n, "processing_seconds_count == events")
        check(v("loginflow_end_to_end_seconds_count") == produced, "end_to_end_seconds_count == produced")
        check(scalar(P, 'loginflow_workers{job="loginflow"}') == 2, "workers == 2")
        version = subprocess.run([a.loginflow, "--version"], capture_output=True).stdout.decode().split()[-1]
        check(scalar(P, f'loginflow_build_info{{job="loginflow",version="{version}"}}') == 1,
              f"build_info{{version=\"{version}\"}} == 1")
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
            value = scalar(P, f'{name}{{job="loginflow"}}')
            check(value is not None and value > 0, f"{name} > 0")
        # consumer_lag comes from librdkafka's statistics, emitted every statistics.interval.ms
        # (5 s) from the start: a short run can be done before the first one reaches Prometheus.
        check(wait_until(lambda: scalar(P, 'sum(loginflow_consumer_lag{job="loginflow"})') is not None,
                         "consumer_lag in Prometheus"), "consumer_lag present")
        labels = " ".join(str(dict(k[1])) for k in direct if k[1])
        check(not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", labels), "no user id in any label")

        status, body = http_get(f"http://{target}/insights", 5)
        cumulative = json.loads(body)["cumulative"]
        check(cumulative["records"] == produced and cumulative["dead_letters"] == sum(dlq.values()),
              "/insights cumulative agrees with Prometheus")

        expo = os.path.join(tmp, "metrics.txt")
        with open(expo, "wb") as f:
            f.write(http_get(f"http://{target}/metrics", 5)[1])
        with open(expo, "rb") as f:
            lint = subprocess.run([a.promtool, "check", "metrics"], stdin=f, capture_output=True)
        check(lint.returncode == 0, f"promtool check metrics: {(lint.stdout + lint.stderr).decode().strip() or 'clean'}")

        # 7. graceful stop
        run.terminate()
        try:
            code = run.wait(timeout=35)
        except subprocess.TimeoutExpired:
            code = None
        check(code == 0, f"loginflow exits 0 on SIGTERM (got {code})")
    finally:
        stop_all(grace=10)
        subprocess.run(["rm", "-rf", tmp])
    if failures:
        print(f"prometheus_values: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("prometheus_values: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
