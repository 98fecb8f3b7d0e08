#!/usr/bin/env python3
"""A stand-in for `loginflow demo` for testing promql_live.py itself (stdlib only).

Behaves like the demo as far as promql_live.py can see: `stub_exporter.py [--http-port P]
[--rate R]` prints `http=http://127.0.0.1:PORT` on stdout, serves GET /metrics with the metric
families SPEC.md lists (Prometheus text format 0.0.4, values growing at about R records/s),
/healthz and /readyz, and exits 0 on SIGTERM/SIGINT. It is not the product: the registered
live check runs the real `loginflow demo`.
"""
import argparse
import http.server
import os
import random
import signal
import socketserver
import sys
import threading
import time

REASONS = ["too_large", "invalid_json", "not_an_object", "missing_user_id", "invalid_user_id",
           "missing_timestamp", "invalid_timestamp"]
WARNINGS = ["invalid_device_type", "invalid_locale", "invalid_ip", "invalid_app_version", "invalid_device_id"]
DEVICES = {"android": 0.55, "iOS": 0.4, "unknown": 0.05}
LOCALES = ["RU", "US", "DE", "FR", "GB", "IN", "BR", "JP", "CN", "ES", "IT", "CA", "unknown"]
PROC_BUCKETS = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.1, 1.0]
E2E_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]
PARTITIONS = 4


class State:
    def __init__(self, rate):
        self.rate = rate
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.rng = random.Random(42)
        self.proc = [0] * (len(PROC_BUCKETS) + 1)
        self.e2e = [0] * (len(E2E_BUCKETS) + 1)
        self.proc_sum = 0.0
        self.e2e_sum = 0.0
        self.observed = 0

    def records(self):
        return int((time.monotonic() - self.start) * self.rate)

    def observe(self):
        n = self.records()
        with self.lock:
            while self.observed < n:  # a sample of observations keeps this cheap
                k = min(n - self.observed, 50)
                p = self.rng.lognormvariate(-11, 0.6)
                e = self.rng.lognormvariate(-4.5, 0.8)
                self.proc[next((i for i, b in enumerate(PROC_BUCKETS) if p <= b), len(PROC_BUCKETS))] += k
                self.e2e[next((i for i, b in enumerate(E2E_BUCKETS) if e <= b), len(E2E_BUCKETS))] += k
                self.proc_sum += p * k
                self.e2e_sum += e * k
                self.observed += k


def fmt_le(b):
    return repr(float(b)) if b < 1e-4 else ("%g" % b)


def histogram(out, name, help_text, bounds, counts, total):
    out.append(f"# HELP {name} {help_text}\n# TYPE {name} histogram\n")
    cum = 0
    for b, c in zip(bounds, counts):
        cum += c
        out.append(f'{name}_bucket{{le="{fmt_le(b)}"}} {cum}\n')
    cum += counts[-1]
    out.append(f'{name}_bucket{{le="+Inf"}} {cum}\n{name}_count {cum}\n{name}_sum {total}\n')


def exposition(st):
    st.observe()
    n = st.records()
    dlq = n // 100
    out = []
    add = out.append
    add("# HELP loginflow_records_consumed_total Records consumed from the input topic.\n"
        "# TYPE loginflow_records_consumed_total counter\n"
        f"loginflow_records_consumed_total {n}\n")
    add("# HELP loginflow_records_produced_total Output records acknowledged by the brokers.\n"
        "# TYPE loginflow_records_produced_total counter\n"
        f"loginflow_records_produced_total {max(0, n - dlq - 50)}\n")
    add("# HELP loginflow_records_dlq_total Dead letters acknowledged by the brokers.\n"
        "# TYPE loginflow_records_dlq_total counter\n")
    for i, r in enumerate(REASONS):
        add(f'loginflow_records_dlq_total{{reason="{r}"}} {dlq // (i + 1) if i < 5 else 0}\n')
    add("# HELP loginflow_records_warnings_total Fields set to null in valid records.\n"
        "# TYPE loginflow_records_warnings_total counter\n")
    for i, w in enumerate(WARNINGS):
        add(f'loginflow_records_warnings_total{{warning="{w}"}} {n // (50 * (i + 1))}\n')
    add("# HELP loginflow_logins_total Logins by device type.\n# TYPE loginflow_logins_total counter\n")
    for d, f in DEVICES.items():
        add(f'loginflow_logins_total{{device_type="{d.lower()}"}} {int(n * f)}\n')
    add("# HELP loginflow_logins_by_locale_total Logins by locale.\n# TYPE loginflow_logins_by_locale_total counter\n")
    for i, loc in enumerate(LOCALES):
        add(f'loginflow_logins_by_locale_total{{locale="{loc}"}} {n // (i + 2)}\n')
    with st.lock:
        histogram(out, "loginflow_processing_seconds", "Worker time per record.", PROC_BUCKETS, st.proc, st.proc_sum)
        histogram(out, "loginflow_end_to_end_seconds", "Input Kafka timestamp to output acknowledgement.",
                  E2E_BUCKETS, st.e2e, st.e2e_sum)
    add("# HELP loginflow_queue_depth Records waiting for a worker.\n# TYPE loginflow_queue_depth gauge\n"
        f"loginflow_queue_depth {st.rng.randint(0, 40)}\n")
    add("# HELP loginflow_in_flight_records Records consumed and not yet acknowledged.\n"
        "# TYPE loginflow_in_flight_records gauge\n"
        f"loginflow_in_flight_records {st.rng.randint(0, 200)}\n")
    add("# HELP loginflow_consumer_lag Records behind the end of each partition.\n# TYPE loginflow_consumer_lag gauge\n")
    for p in range(PARTITIONS):
        add(f'loginflow_consumer_lag{{partition="{p}"}} {st.rng.randint(0, 30)}\n')
    add("# HELP loginflow_rebalances_total Consumer group rebalances.\n# TYPE loginflow_rebalances_total counter\n"
        'loginflow_rebalances_total{kind="assign"} 1\nloginflow_rebalances_total{kind="revoke"} 0\n'
        'loginflow_rebalances_total{kind="lost"} 0\n')
    add("# HELP loginflow_commits_total Offset commits.\n# TYPE loginflow_commits_total counter\n"
        f"loginflow_commits_total {int(time.monotonic() - st.start)}\n")
    add("# HELP loginflow_producer_errors_total Producer errors by librdkafka error code.\n"
        "# TYPE loginflow_producer_errors_total counter\n")
    add("# HELP loginflow_workers Worker threads.\n# TYPE loginflow_workers gauge\nloginflow_workers 2\n")
    add("# HELP loginflow_build_info Build information.\n# TYPE loginflow_build_info gauge\n"
        'loginflow_build_info{version="0.1.0"} 1\n')
    t = os.times()
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    add("# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        f"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {t.user + t.system}\n")
    add("# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        f"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n")
    return "".join(out).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--http-address", default="127.0.0.1")
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--duration", type=float, default=0)
    a, _ = ap.parse_known_args()
    st = State(a.rate)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/metrics":
                body, ctype = exposition(st), "text/plain; version=0.0.4; charset=utf-8"
            elif self.path in ("/healthz", "/readyz"):
                body, ctype = b"ok\n", "text/plain"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    srv = Server((a.http_address, a.http_port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    signal.signal(signal.SIGINT, lambda *_: threading.Thread(target=srv.shutdown).start())
    if a.duration > 0:
        threading.Timer(a.duration, srv.shutdown).start()
    print(f"http=http://{a.http_address}:{srv.server_address[1]}", flush=True)
    srv.serve_forever()
    print("stub exporter: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
