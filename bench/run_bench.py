#!/usr/bin/python3
"""End-to-end benchmark harness: loginflow against a passthrough ceiling and the Python consumer
it replaces, side by side, on the embedded broker (`loginflow broker`, its own process).

    make bench                                    # builds the release preset, then runs this
    /usr/bin/python3 bench/run_bench.py [--quick] [--events N] [--runs R] ...

Scenarios (each run gets a fresh broker, so runs cannot disturb each other):
  throughput  the same pre-loaded events (gen --seed), drained by loginflow, by bench/passthrough
              (--runs each, interleaved) and by bench/python_consumer.py (--python-runs, smaller
              count, gzip input because kafka-python cannot read lz4 from the embedded broker)
  matrix      loginflow throughput for --workers 1,2,4 x --ordering key,partition,unordered
  latency     end-to-end latency at fixed offered rates (--latency-fractions of loginflow's
              measured maximum: 50%, 10%), events produced concurrently; loginflow's histogram
              loginflow_end_to_end_seconds, and passthrough's exact percentiles for reference;
              with the client defaults and with consumer fetch.wait.max.ms=10 (the embedded
              broker holds a Fetch that finds no data for the whole wait)
  backlog     loginflow's peak resident memory draining a backlog of --backlog-events

A run counts only if it verifies: every input present on the broker (start offsets 0, end
offsets sum to the count: the embedded broker trims old data silently), every output delivered
(outputs + dead letters == inputs; the Python consumer: outputs == its sent count), and the
group's committed offsets equal the input end offsets in every partition. Otherwise it is kept
in the results marked invalid, with the reasons, and left out of the medians.

Writes bench/results/: results.json (everything), results.csv (one row per run), summary.md
(the tables of docs/BENCHMARKS.md), *.png plots drawn by gnuplot from *.dat, logs/ (every
process's output). Every process started is stopped at the end (SIGTERM, then SIGKILL);
everything listens on loopback only; waits poll with deadlines.

Only the standard library and kafka-python (Debian's python3-kafka) are used.
"""
import argparse
import csv
import datetime
import json
import logging
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
IN, OUT, DLQ = "user-login", "processed-user-login", "user-login-dlq"

logging.getLogger("kafka").setLevel(logging.CRITICAL)  # kafka-python is chatty about retries


def log(msg):
    print(f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


class RunInvalid(Exception):
    """A run that cannot be verified (or failed): recorded as invalid, with the reason."""


# ---------------------------------------------------------------------------------------------
# Processes

class Proc:
    """A child process with its output in logs/NAME.out and .err; stopped by stop() or at exit."""
    alive = []

    def __init__(self, name, cmd, logdir):
        self.name = name
        self.cmd = [str(c) for c in cmd]
        self.out_path = logdir / f"{name}.out"
        self.err_path = logdir / f"{name}.err"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.p = subprocess.Popen(self.cmd, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL)
        self.pid = self.p.pid
        self.started = time.monotonic()
        Proc.alive.append(self)

    def running(self):
        return self.p.poll() is None

    def cpu_s(self):
        """utime + stime from /proc/PID/stat, seconds; None once the process is gone."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            return None

    def status_kib(self, key):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def stdout_text(self):
        return self.out_path.read_text(errors="replace")

    def stderr_text(self):
        return self.err_path.read_text(errors="replace")

    def wait(self, timeout):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=30.0):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit status."""
        rc = self.p.poll()
        if rc is None:
            try:
                self.p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            rc = self.wait(timeout)
            if rc is None:
                log(f"{self.name} (pid {self.pid}) did not stop within {timeout:.0f} s: SIGKILL")
                self.p.kill()
                rc = self.p.wait()
        self._out.close()
        self._err.close()
        if self in Proc.alive:
            Proc.alive.remove(self)
        return rc

    @classmethod
    def stop_all(cls):
        for p in list(reversed(cls.alive)):
            p.stop(timeout=10)


def wait_for(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a true value (returned), or raises RunInvalid after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise RunInvalid(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def system_busy_s():
    """CPU seconds spent by the whole machine, not idle (/proc/stat): to see others' load."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# ---------------------------------------------------------------------------------------------
# The broker and the probe (kafka-python: offsets only, never records)

class Broker:
    def __init__(self, bench, partitions, tag):
        self.partitions = partitions
        self.proc = Proc(f"{tag}.broker", [bench.loginflow, "broker", "--partitions", partitions], bench.logdir)

        def bootstrap():
            m = re.match(r"bootstrap=(\S+)\n", self.proc.stdout_text())
            if not m and not self.proc.running():
                raise RunInvalid(f"the broker exited: {self.proc.stderr_text()[-500:]}")
            return m.group(1) if m else None
        try:
            self.bootstrap = wait_for(bootstrap, 30, "the broker's bootstrap line")
        except RunInvalid:
            self.proc.stop()
            raise

    def stop(self):
        return self.proc.stop()


class Probe:
    """End offsets and committed offsets, from the broker."""

    def __init__(self, bootstrap, topics):
        from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
        self.TopicPartition = TopicPartition
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="bench-probe")
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-probe")
        self.tps = {}
        for t in topics:
            ps = wait_for(lambda: self.consumer.partitions_for_topic(t), 30, f"metadata of {t}")
            self.tps[t] = [TopicPartition(t, p) for p in sorted(ps)]

    def ends(self, topics):
        """{topic: [end offset per partition]}"""
        tps = [tp for t in topics for tp in self.tps[t]]
        hi = self.consumer.end_offsets(tps)
        return {t: [hi[tp] for tp in self.tps[t]] for t in topics}

    def starts(self, topic):
        lo = self.consumer.beginning_offsets(self.tps[topic])
        return [lo[tp] for tp in self.tps[topic]]

    def committed(self, group, topic):
        """[committed offset per partition] (-1: none yet)"""
        res = self.admin.list_consumer_group_offsets(group, partitions=self.tps[topic])
        return [res[tp].offset if tp in res else -1 for tp in self.tps[topic]]

    def close(self):
        for c in (self.consumer, self.admin):
            try:
                c.close()
            except Exception:  # noqa: BLE001 (best effort at teardown)
                pass


# ---------------------------------------------------------------------------------------------
# Prometheus text (loginflow's /metrics)

def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def histogram(text, name):
    """[(upper bound, cumulative count)] including +Inf."""
    out = []
    for m in re.finditer(r"^" + re.escape(name) + r'_bucket\{le="([^"]+)"\} (\S+)$', text, re.M):
        out.append((float(m.group(1)), float(m.group(2))))
    return sorted(out)


def hist_diff(b, a):
    da = dict(a)
    return [(le, c - da.get(le, 0.0)) for le, c in b]


def hist_quantile(h, q):
    """Prometheus' histogram_quantile: linear interpolation within the bucket."""
    total = h[-1][1] if h else 0
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in h:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / (c - prev_c) if c > prev_c else 1.0)
        prev_le, prev_c = le, c
    return prev_le


def hist_fraction_le(h, bound):
    total = h[-1][1] if h else 0
    for le, c in h:
        if abs(le - bound) < 1e-12:
            return c / total if total else None
    return None


def latency_partitions(args, count):
    """Partitions for a latency run of `count` events: --latency-partitions, else a power of two
    (at least 64) that keeps each partition under 30,000 events, well inside the embedded
    broker's retention (about 52,000 of these events per partition with lz4)."""
    if args.latency_partitions:
        return args.latency_partitions
    n = 64
    while count / n > 30_000:
        n *= 2
    return n


# ---------------------------------------------------------------------------------------------
# Systems under test

class Loginflow:
    name = "loginflow"
    group = "loginflow"

    def __init__(self, workers=None, ordering=None, props=()):
        self.workers, self.ordering, self.props = workers, ordering, list(props)
        self.port = None

    def start(self, bench, bootstrap, tag):
        cmd = [bench.loginflow, "run", "--brokers", bootstrap, "--group-id", self.group,
               "--http-address", "127.0.0.1", "--http-port", "0"]
        if self.workers:
            cmd += ["--workers", self.workers]
        if self.ordering:
            cmd += ["--ordering", self.ordering]
        for p in self.props:
            cmd += ["-X", p]
        cmd += bench.args.loginflow_args.split()
        self.proc = Proc(f"{tag}.loginflow", cmd, bench.logdir)

        def port():
            m = re.search(r"http 127\.0\.0\.1:(\d+)", self.proc.stdout_text() + self.proc.stderr_text())
            if not m and not self.proc.running():
                raise RunInvalid(f"loginflow exited at start: {self.proc.stderr_text()[-500:]}")
            return int(m.group(1)) if m else None
        self.port = wait_for(port, 60, "loginflow's HTTP port in its log")
        return self.proc

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def expected(self, n):
        return n  # outputs + dead letters

    def produced(self, ends):
        return sum(ends[OUT]) + sum(ends[DLQ])

    def summary(self, proc):
        lines = proc.stderr_text().strip().splitlines()  # spdlog writes to stderr
        return {"log_tail": [ln for ln in lines if "stopp" in ln or "error" in ln or "warn" in ln][-5:]}


class Passthrough:
    name = "passthrough"
    group = "passthrough"

    def __init__(self, latency_skip=None, props=()):
        self.latency_skip, self.props = latency_skip, list(props)

    def start(self, bench, bootstrap, tag):
        cmd = [bench.passthrough, "--brokers", bootstrap, "--group-id", self.group]
        if self.latency_skip is not None:
            cmd += ["--latency", "--latency-skip", self.latency_skip]
        for p in self.props:
            cmd += ["-X", p]
        self.proc = Proc(f"{tag}.passthrough", cmd, bench.logdir)
        return self.proc

    def ready(self):
        return "assigned" in self.proc.stderr_text()

    def expected(self, n):
        return n

    def produced(self, ends):
        return sum(ends[OUT])

    def summary(self, proc):
        lines = proc.stdout_text().strip().splitlines()
        return json.loads(lines[-1]) if lines else {}


class Python:
    name = "python"
    group = "python-consumer"

    def start(self, bench, bootstrap, tag):
        self.proc = Proc(f"{tag}.python", [sys.executable, ROOT / "bench/python_consumer.py", "--brokers", bootstrap,
                                           "--group-id", self.group], bench.logdir)
        return self.proc

    def progress(self):
        """(processed, sent, errors) from its last progress line, or None."""
        m = None
        for m in re.finditer(r"^processed=(\d+) sent=(\d+) errors=(\d+) ", self.proc.stdout_text(), re.M):
            pass
        return tuple(int(x) for x in m.groups()) if m else None

    def expected(self, n):
        p = self.progress()
        return p[1] if p and p[0] >= n else None  # known once everything was consumed

    def produced(self, ends):
        return sum(ends[OUT])

    def summary(self, proc):
        lines = proc.stdout_text().strip().splitlines()
        try:
            return json.loads(lines[-1])
        except (IndexError, ValueError):
            return {}


# ---------------------------------------------------------------------------------------------
# The harness

class Bench:
    def __init__(self, args):
        self.args = args
        self.build = (ROOT / args.build_dir).resolve()
        self.loginflow = self.build / "loginflow"
        self.passthrough = self.build / "bench" / "passthrough"
        self.out = (ROOT / args.out).resolve()
        self.logdir = self.out / "logs"
        self.runs = []
        self.seq = 0

    # -- pieces ---------------------------------------------------------------------------
    def generate(self, bootstrap, tag, count, compression, rate=None, wait=True):
        cmd = [self.loginflow, "gen", "--brokers", bootstrap, "--count", count, "--seed", self.args.seed,
               "--bad-fraction", self.args.bad_fraction, "-X", f"compression.type={compression}"]
        if rate:
            cmd += ["--rate", f"{rate:.0f}"]
        g = Proc(f"{tag}.gen", cmd, self.logdir)
        if not wait:
            return g
        rc = g.wait(max(120, count / 20000))
        if rc is None:
            g.stop()
            raise RunInvalid("gen did not finish in time")
        g.stop()
        if rc != 0:
            raise RunInvalid(f"gen exited {rc}: {g.stderr_text()[-300:]}")
        return g

    def verify_inputs(self, probe, count):
        starts, ends = probe.starts(IN), probe.ends([IN])[IN]
        present = sum(ends) - sum(starts)
        if sum(starts) != 0 or present != count:
            raise RunInvalid(f"inputs not all present: start offsets sum {sum(starts)}, end offsets sum {sum(ends)}, "
                             f"{present} of {count} present (retention of the embedded broker?)")
        return {"start_offsets": sum(starts), "end_offsets": sum(ends)}

    @staticmethod
    def end_run(run, procs, probe, broker):
        """Stops what a run started (processes first, then the probe and the broker) and settles
        whether the run is valid."""
        for p in procs:
            if p:
                p.stop(timeout=30)
        if probe:
            probe.close()
        if broker:
            broker.stop()
        run["valid"] = not run["invalid_reasons"]
        run["loadavg_after"] = loadavg()

    def record(self, run):
        self.runs.append(run)
        status = "valid" if run["valid"] else "INVALID: " + "; ".join(run["invalid_reasons"])
        rate = f"{run['rate']:,.0f} msgs/s" if run.get("rate") else "-"
        log(f"  {run['scenario']}/{run['system']} {run.get('config_label', '')} run {run['run']}: {rate} ({status})")

    # -- one drain: pre-load, then let the system under test consume the backlog ------------
    def drain(self, scenario, sut, events, partitions, compression, run_no, config_label=""):
        self.seq += 1
        tag = f"{self.seq:02d}-{scenario}-{sut.name}{('-' + config_label) if config_label else ''}-r{run_no}"
        run = {"scenario": scenario, "system": sut.name, "run": run_no, "config_label": config_label,
               "events": events, "partitions": partitions, "input_compression": compression,
               "workers": getattr(sut, "workers", None), "ordering": getattr(sut, "ordering", None),
               "valid": False, "invalid_reasons": [], "loadavg_before": loadavg()}
        broker = probe = proc = None
        try:
            broker = Broker(self, partitions, tag)
            probe = Probe(broker.bootstrap, [IN, OUT, DLQ])
            t = time.monotonic()
            self.generate(broker.bootstrap, tag, events, compression)
            run["preload_s"] = time.monotonic() - t
            run["inputs"] = self.verify_inputs(probe, events)
            run["broker_rss_after_preload_mib"] = (broker.proc.status_kib("VmRSS") or 0) / 1024

            proc = sut.start(self, broker.bootstrap, tag)
            timeline = self.follow(sut, proc, broker, probe, events)
            run["sut_rss_peak_mib"] = (proc.status_kib("VmHWM") or 0) / 1024
            run["broker_rss_peak_mib"] = (broker.proc.status_kib("VmHWM") or 0) / 1024
            rc = proc.stop(timeout=60)
            run["sut_exit"] = rc
            run["sut_summary"] = sut.summary(proc)
            self.analyse(run, sut, timeline, events)
            self.verify_final(run, sut, probe, events, rc)
        except RunInvalid as e:
            run["invalid_reasons"].append(str(e))
        except Exception as e:  # noqa: BLE001 (a client error: the run is invalid, the bench goes on)
            run["invalid_reasons"].append(f"{type(e).__name__}: {e}")
        finally:
            self.end_run(run, [proc], probe, broker)
        self.record(run)
        return run

    def sample(self, sut, proc, broker, probe):
        t0 = time.monotonic()
        ends = probe.ends([IN, OUT, DLQ])
        committed = probe.committed(sut.group, IN)
        t1 = time.monotonic()
        return {"t": (t0 + t1) / 2, "produced": sut.produced(ends), "out": sum(ends[OUT]), "dlq": sum(ends[DLQ]),
                "in_ends": ends[IN], "committed": committed, "sut_cpu": proc.cpu_s(), "broker_cpu": broker.proc.cpu_s(),
                "busy": system_busy_s(), "self_cpu": time.process_time()}

    def follow(self, sut, proc, broker, probe, events, until=None, on_sample=None):
        """Polls until everything is produced and committed; returns the samples."""
        limit = self.args.min_rate_python if sut.name == "python" else self.args.min_rate
        deadline = time.monotonic() + max(120.0, events / limit)
        timeline = []
        while True:
            start = time.monotonic()
            s = self.sample(sut, proc, broker, probe)
            expected = sut.expected(events)
            s["expected"] = expected
            timeline.append(s)
            if on_sample:
                on_sample(s)
            done_out = expected is not None and s["produced"] >= expected
            done_commit = s["committed"] == s["in_ends"]
            if done_out and done_commit and (until is None or until()):
                return timeline
            if not proc.running():
                raise RunInvalid(f"{sut.name} exited early with status {proc.p.returncode}: "
                                 f"{proc.stderr_text()[-300:]}")
            if time.monotonic() > deadline:
                raise RunInvalid(f"not complete before the deadline: produced {s['produced']} of {expected}, "
                                 f"committed {sum(max(c, 0) for c in s['committed'])} of {sum(s['in_ends'])}")
            time.sleep(max(0.0, self.args.poll_interval - (time.monotonic() - start)))

    def analyse(self, run, sut, tl, events):
        expected = tl[-1]["expected"]
        run["expected_outputs"] = expected
        first = next((i for i, s in enumerate(tl) if s["produced"] > 0), None)
        last = next((i for i, s in enumerate(tl) if s["produced"] >= expected), None)
        committed = next(i for i, s in enumerate(tl) if s["produced"] >= expected and s["committed"] == s["in_ends"])
        if first is None or last is None or last - first < 2:
            raise RunInvalid("too short to measure: fewer than 3 probe samples between the first and the last output")
        a, b = tl[first], tl[last]
        # Interpolate when the last output landed between the two last samples.
        p = tl[last - 1]
        t_end = b["t"]
        if b["produced"] > p["produced"]:
            t_end = p["t"] + (b["t"] - p["t"]) * (expected - p["produced"]) / (b["produced"] - p["produced"])
        elapsed = t_end - a["t"]
        records = (expected - a["produced"]) * events / expected  # input records handled in the window
        run["window_s"] = elapsed
        run["rate"] = records / elapsed
        run["time_to_first_output_s"] = a["t"] - tl[0]["t"]
        run["commit_lag_s"] = tl[committed]["t"] - t_end
        run["rate_including_commit"] = records / (tl[committed]["t"] - a["t"])
        m = records / 1e6
        run["sut_cpu_s"] = b["sut_cpu"] - a["sut_cpu"]
        run["broker_cpu_s"] = b["broker_cpu"] - a["broker_cpu"]
        run["sut_cpu_s_per_m"] = run["sut_cpu_s"] / m
        run["broker_cpu_s_per_m"] = run["broker_cpu_s"] / m
        run["sut_cpu_total_s"] = tl[-1]["sut_cpu"]
        run["sut_cores"] = run["sut_cpu_s"] / elapsed
        busy = b["busy"] - a["busy"]
        own = run["sut_cpu_s"] + run["broker_cpu_s"] + (b["self_cpu"] - a["self_cpu"])
        run["other_cpu_cores"] = max(0.0, busy - own) / elapsed  # load from other processes: noise
        run["samples"] = len(tl)
        t0 = tl[0]["t"]
        run["timeline"] = [[round(x["t"] - t0, 3), x["produced"], sum(max(c, 0) for c in x["committed"]),
                            x["sut_cpu"], x["broker_cpu"]] for x in tl]

    def verify_final(self, run, sut, probe, events, rc):
        ends = probe.ends([IN, OUT, DLQ])
        committed = probe.committed(sut.group, IN)
        produced = sut.produced(ends)
        run["final"] = {"inputs": sum(ends[IN]), "outputs": sum(ends[OUT]), "dead_letters": sum(ends[DLQ]),
                        "committed": sum(max(c, 0) for c in committed)}
        if sum(ends[IN]) != events:
            run["invalid_reasons"].append(f"input end offsets {sum(ends[IN])} != {events}")
        expected = run.get("expected_outputs")
        if sut.name == "python":
            s = run.get("sut_summary") or {}
            expected = s.get("sent")
            if s.get("consumed") != events:
                run["invalid_reasons"].append(f"the Python consumer consumed {s.get('consumed')} of {events}")
        if produced != expected:
            run["invalid_reasons"].append(f"outputs{' + dead letters' if sut.name == 'loginflow' else ''} "
                                          f"{produced} != expected {expected}")
        if committed != ends[IN]:
            run["invalid_reasons"].append("committed offsets != input end offsets after the stop")
        if rc != 0:
            run["invalid_reasons"].append(f"{sut.name} exited {rc} on SIGTERM")
        if sut.name == "passthrough" and (run.get("sut_summary") or {}).get("failed", 0):
            run["invalid_reasons"].append("passthrough reported failed deliveries")

    # -- latency at a fixed offered rate -----------------------------------------------------
    def latency(self, sut, rate, variant, fraction=None, run_no=1):
        a = self.args
        self.seq += 1
        tag = f"{self.seq:02d}-latency-{sut.name}-{re.sub(r'[^A-Za-z0-9.=-]+', '_', variant)}-r{run_no}"
        count = int(rate * a.latency_duration)
        partitions = latency_partitions(a, count)
        run = {"scenario": "latency", "system": sut.name, "run": run_no, "config_label": variant,
               "client_properties": sut.props, "fraction_of_max": fraction,
               "events": count, "partitions": partitions, "input_compression": "lz4", "offered_rate": rate,
               "duration_s": a.latency_duration, "warmup_s": a.latency_warmup, "valid": False,
               "invalid_reasons": [], "loadavg_before": loadavg()}
        broker = probe = proc = gen = None
        try:
            broker = Broker(self, partitions, tag)
            probe = Probe(broker.bootstrap, [IN, OUT, DLQ])
            proc = sut.start(self, broker.bootstrap, tag)
            wait_for(sut.ready, 60, f"{sut.name} to be assigned its partitions")
            gen = self.generate(broker.bootstrap, tag, count, "lz4", rate=rate, wait=False)
            snap = {}
            max_lag = [0]

            def on_sample(s):
                max_lag[0] = max(max_lag[0], sum(s["in_ends"]) - s["produced"])
                if isinstance(sut, Loginflow) and "a" not in snap and s["produced"] > 0:
                    snap.setdefault("first_t", s["t"])
                    if s["t"] - snap["first_t"] >= a.latency_warmup:
                        snap["a"] = histogram(scrape(sut.port), "loginflow_end_to_end_seconds")

            timeline = self.follow(sut, proc, broker, probe, count, until=lambda: not gen.running(),
                                   on_sample=on_sample)
            gen_rc = gen.stop()
            if gen_rc != 0:
                raise RunInvalid(f"gen exited {gen_rc}")
            m = re.search(r"in ([\d.]+) s \((\d+)/s\)", gen.stdout_text())
            run["achieved_rate"] = float(m.group(2)) if m else None
            run["max_lag_records"] = max_lag[0]
            run["inputs"] = self.verify_inputs(probe, count)
            if isinstance(sut, Loginflow):
                # /metrics merges the shards every second: wait until it has seen every output.
                outs = timeline[-1]["out"]

                def settled():
                    try:
                        h = histogram(scrape(sut.port), "loginflow_end_to_end_seconds")
                    except (urllib.error.URLError, OSError):
                        return None
                    return h if h and h[-1][1] >= outs else None
                b = wait_for(settled, 30, "/metrics to count every output", interval=0.2)
                if "a" not in snap:
                    raise RunInvalid("the run was shorter than the warm-up")
                h = hist_diff(b, snap["a"])
                run["latency_source"] = "loginflow_end_to_end_seconds histogram (interpolated within buckets)"
                run["latency_count"] = h[-1][1]
                run["p50_ms"], run["p99_ms"], run["p999_ms"] = (
                    1000 * hist_quantile(h, q) for q in (0.5, 0.99, 0.999))
                run["fraction_le_20ms"] = hist_fraction_le(h, 0.02)
                run["histogram"] = h
            run["sut_rss_peak_mib"] = (proc.status_kib("VmHWM") or 0) / 1024
            rc = proc.stop(timeout=60)
            run["sut_exit"] = rc
            run["sut_summary"] = sut.summary(proc)
            if isinstance(sut, Passthrough):
                lat = run["sut_summary"].get("latency_ms", {})
                run["latency_source"] = "exact, per record (passthrough --latency)"
                run["latency_count"] = lat.get("count")
                run["p50_ms"], run["p99_ms"], run["p999_ms"] = lat.get("p50"), lat.get("p99"), lat.get("p999")
            run["expected_outputs"] = sut.expected(count)
            self.verify_final(run, sut, probe, count, rc)
        except RunInvalid as e:
            run["invalid_reasons"].append(str(e))
        except Exception as e:  # noqa: BLE001
            run["invalid_reasons"].append(f"{type(e).__name__}: {e}")
        finally:
            self.end_run(run, [gen, proc], probe, broker)
        self.runs.append(run)
        status = "valid" if run["valid"] else "INVALID: " + "; ".join(run["invalid_reasons"])
        p99 = f"p50 {run.get('p50_ms') or 0:.2f} ms, p99 {run.get('p99_ms') or 0:.2f} ms, p999 {run.get('p999_ms') or 0:.2f} ms"
        log(f"  latency/{sut.name} [{variant}] at {rate:,.0f}/s: {p99} ({status})")
        return run


# ---------------------------------------------------------------------------------------------
# Summary, files, plots

def med(runs, key):
    v = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(v) if v else None


def summarise(bench, meta):
    runs = bench.runs
    valid = [r for r in runs if r["valid"]]
    s = {"throughput": {}, "matrix": [], "latency": {}, "backlog": None}
    for system in ("loginflow", "passthrough", "python"):
        rs = [r for r in valid if r["scenario"] == "throughput" and r["system"] == system]
        all_rs = [r for r in runs if r["scenario"] == "throughput" and r["system"] == system]
        if not all_rs:
            continue
        s["throughput"][system] = {
            "events": all_rs[0]["events"], "runs": len(all_rs), "valid_runs": len(rs),
            "rates": [round(r["rate"]) for r in rs],
            "rate_median": med(rs, "rate"), "rate_including_commit_median": med(rs, "rate_including_commit"),
            "sut_cpu_s_per_m": med(rs, "sut_cpu_s_per_m"), "broker_cpu_s_per_m": med(rs, "broker_cpu_s_per_m"),
            "sut_cores": med(rs, "sut_cores"), "sut_rss_peak_mib": med(rs, "sut_rss_peak_mib"),
            "other_cpu_cores": med(rs, "other_cpu_cores")}
    t = s["throughput"]

    def ratio(a, b):
        x, y = (t.get(a) or {}).get("rate_median"), (t.get(b) or {}).get("rate_median")
        return x / y if x and y else None
    s["ratios"] = {"loginflow_over_passthrough": ratio("loginflow", "passthrough"),
                   "loginflow_over_python": ratio("loginflow", "python")}
    cells = {}
    for r in [r for r in runs if r["scenario"] == "matrix"]:
        cells.setdefault((r["workers"], r["ordering"]), []).append(r)
    for (w, o), rs in cells.items():
        ok = [r for r in rs if r["valid"]]
        s["matrix"].append({"workers": w, "ordering": o, "runs": len(rs), "valid_runs": len(ok), "valid": bool(ok),
                            "rate": med(ok, "rate"), "sut_cpu_s_per_m": med(ok, "sut_cpu_s_per_m"),
                            "sut_rss_peak_mib": med(ok, "sut_rss_peak_mib")})
    for r in [r for r in runs if r["scenario"] == "latency"]:
        s["latency"][f"{r['system']} [{r['config_label']}]"] = {k: r.get(k) for k in (
            "system", "config_label", "fraction_of_max",
            "valid", "offered_rate", "achieved_rate", "p50_ms", "p99_ms", "p999_ms", "fraction_le_20ms",
            "latency_count", "max_lag_records", "latency_source")}
    b = [r for r in runs if r["scenario"] == "backlog"]
    if b:
        r = b[-1]
        s["backlog"] = {k: r.get(k) for k in ("valid", "events", "partitions", "rate", "sut_rss_peak_mib",
                                               "broker_rss_peak_mib", "sut_cpu_s_per_m")}

    bl = s["backlog"] or {}
    targets = []

    def target(name, goal, measured, met):
        targets.append({"target": name, "goal": goal, "measured": measured,
                        "met": None if met is None else bool(met)})
    r1, r2 = s["ratios"]["loginflow_over_passthrough"], s["ratios"]["loginflow_over_python"]
    target("throughput vs passthrough", ">= 0.8x", r1, None if r1 is None else r1 >= 0.8)
    target("throughput vs Python", ">= 50x", r2, None if r2 is None else r2 >= 50)
    first = meta["args"]["latency_fractions"][0] if meta["args"]["latency_fractions"] else None
    lats = [x for x in s["latency"].values() if x["system"] == "loginflow"
            and x["fraction_of_max"] in (first, None)] or [{}]
    for x in lats:
        f = x.get("fraction_le_20ms")
        target(f"p99 end-to-end latency{' [' + x['config_label'] + ']' if x else ' at 50% of max'}", "<= 20 ms",
               x.get("p99_ms"), None if f is None or not x.get("valid") else f >= 0.99)
    rss = bl.get("sut_rss_peak_mib")
    target("peak RSS with a backlog", "<= 150 MiB", rss, None if rss is None or not bl.get("valid") else rss <= 150)
    s["targets"] = targets
    return s


def fmt(v, spec=",.0f", none="-"):
    return none if v is None else format(v, spec)


def write_markdown(path, meta, s):
    L = []
    L.append(f"Run of {meta['date']} on {meta['machine']['nproc']} CPUs ({meta['machine']['cpu_model']}), "
             f"`{meta['command']}`.\n")
    L.append("| system | events | valid runs | msgs/s (median) | runs | CPU s / M records (system) | "
             "CPU s / M records (broker) | cores used | peak RSS MiB | other load (cores) |")
    L.append("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, t in s["throughput"].items():
        L.append(f"| {name} | {t['events']:,} | {t['valid_runs']}/{t['runs']} | {fmt(t['rate_median'])} | "
                 f"{', '.join(f'{x:,}' for x in t['rates'])} | {fmt(t['sut_cpu_s_per_m'], '.2f')} | "
                 f"{fmt(t['broker_cpu_s_per_m'], '.2f')} | {fmt(t['sut_cores'], '.2f')} | "
                 f"{fmt(t['sut_rss_peak_mib'], '.1f')} | {fmt(t['other_cpu_cores'], '.2f')} |")
    r = s["ratios"]
    L.append("")
    L.append(f"Ratios: loginflow / passthrough = **{fmt(r['loginflow_over_passthrough'], '.2f')}**, "
             f"loginflow / Python = **{fmt(r['loginflow_over_python'], '.1f')}**.\n")
    if s["latency"]:
        L.append("| latency at a fixed rate | offered msgs/s | achieved | p50 ms | p99 ms | p99.9 ms | "
                 "share ≤ 20 ms | max lag | source |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for name, x in s["latency"].items():
            share = fmt(x["fraction_le_20ms"] * 100 if x["fraction_le_20ms"] is not None else None, ".2f") + \
                ("%" if x["fraction_le_20ms"] is not None else "")
            L.append(f"| {name}{'' if x['valid'] else ' (INVALID)'} | {fmt(x['offered_rate'])} | "
                     f"{fmt(x['achieved_rate'])} | {fmt(x['p50_ms'], '.2f')} | {fmt(x['p99_ms'], '.2f')} | "
                     f"{fmt(x['p999_ms'], '.2f')} | {share} | {fmt(x['max_lag_records'])} | {x['latency_source']} |")
        L.append("")
    if s["matrix"]:
        orderings = sorted({m["ordering"] for m in s["matrix"]}, key=["key", "partition", "unordered"].index)
        workers = sorted({m["workers"] for m in s["matrix"]})
        L.append("| loginflow msgs/s | " + " | ".join(f"--ordering {o}" for o in orderings) + " |")
        L.append("| --- |" + " ---: |" * len(orderings))
        for w in workers:
            cells = []
            for o in orderings:
                m = next((m for m in s["matrix"] if m["workers"] == w and m["ordering"] == o), None)
                cells.append("-" if m is None else (fmt(m["rate"]) if m["valid"] else "invalid"))
            L.append(f"| --workers {w} | " + " | ".join(cells) + " |")
        L.append("")
    if s["backlog"]:
        b = s["backlog"]
        L.append(f"Backlog: {b['events']:,} events on {b['partitions']} partitions"
                 f"{'' if b['valid'] else ' (INVALID)'}: loginflow peak RSS **{fmt(b['sut_rss_peak_mib'], '.1f')} MiB** "
                 f"(VmHWM), drained at {fmt(b['rate'])} msgs/s; the broker peaked at "
                 f"{fmt(b['broker_rss_peak_mib'], ',.0f')} MiB.\n")
    L.append("| target | goal | measured | met |")
    L.append("| --- | --- | ---: | --- |")
    for t in s["targets"]:
        v = t["measured"]
        unit = {"throughput vs passthrough": "x", "throughput vs Python": "x"}.get(t["target"], "")
        if "latency" in t["target"]:
            unit = " ms"
        if "RSS" in t["target"]:
            unit = " MiB"
        met = "not measured" if t["met"] is None else ("**met**" if t["met"] else "**not met**")
        L.append(f"| {t['target']} | {t['goal']} | {fmt(v, '.2f')}{unit if v is not None else ''} | {met} |")
    path.write_text("\n".join(L) + "\n")


CSV_FIELDS = ["scenario", "system", "config_label", "run", "valid", "invalid_reasons", "events", "partitions",
              "input_compression", "workers", "ordering", "rate", "rate_including_commit", "window_s",
              "commit_lag_s", "time_to_first_output_s", "sut_cpu_s", "sut_cpu_s_per_m", "broker_cpu_s_per_m",
              "sut_cores", "other_cpu_cores", "sut_rss_peak_mib", "broker_rss_peak_mib", "offered_rate",
              "achieved_rate", "p50_ms", "p99_ms", "p999_ms", "fraction_le_20ms", "max_lag_records", "sut_exit"]


def write_csv(path, runs):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in runs:
            row = dict(r)
            row["invalid_reasons"] = "; ".join(r["invalid_reasons"])
            for k, v in row.items():
                if isinstance(v, float):
                    row[k] = f"{v:.6g}"
            w.writerow(row)


def plots(out, s, runs):
    """Writes the .dat files and plots.gp, runs gnuplot. Returns the PNGs drawn."""
    gp = ["set terminal pngcairo size 900,520 noenhanced font ',10'", "set grid ytics", "set key top right"]
    pngs = []
    t = {k: v for k, v in s["throughput"].items() if v["rate_median"]}
    if t:
        with open(out / "throughput.dat", "w") as f:
            f.write("# system msgs_per_s sut_cpu_s_per_m broker_cpu_s_per_m rss_mib\n")
            for name, x in t.items():
                f.write(f"{name} {x['rate_median'] or 0:.1f} {x['sut_cpu_s_per_m'] or 0:.3f} "
                        f"{x['broker_cpu_s_per_m'] or 0:.3f} {x['sut_rss_peak_mib'] or 0:.1f}\n")
        gp += ["set output 'throughput.png'",
               "set title 'Throughput draining the same pre-loaded events (median of the valid runs)'",
               "set ylabel 'records/s (log scale)'", "set logscale y", "set style fill solid 0.6 border -1",
               "set boxwidth 0.6", "set yrange [100:*]", "unset key",
               "plot 'throughput.dat' using 0:2:xtic(1) with boxes lc rgb '#4477aa', "
               "'' using 0:2:(sprintf('%.0f', $2)) with labels offset 0,1", "unset logscale y", "set yrange [*:*]"]
        pngs.append("throughput.png")
        gp += ["set output 'cpu.png'", "set title 'CPU seconds per million records (median of the valid runs)'",
               "set ylabel 'CPU s / M records (log scale)'", "set logscale y", "set yrange [0.1:*]",
               "set style data histograms", "set style histogram clustered gap 1", "set key top left",
               "plot 'throughput.dat' using 3:xtic(1) title 'system under test' lc rgb '#4477aa', "
               "'' using 4 title 'broker' lc rgb '#cc6677'", "unset logscale y", "set yrange [*:*]",
               "set style data lines"]
        pngs.append("cpu.png")
    if any(m["rate"] for m in s["matrix"]):
        orderings = [o for o in ("key", "partition", "unordered") if any(m["ordering"] == o for m in s["matrix"])]
        workers = sorted({m["workers"] for m in s["matrix"]})
        with open(out / "workers.dat", "w") as f:
            f.write("# workers " + " ".join(orderings) + "\n")
            for w in workers:
                vals = []
                for o in orderings:
                    m = next((m for m in s["matrix"] if m["workers"] == w and m["ordering"] == o), None)
                    vals.append(f"{m['rate']:.1f}" if m and m["rate"] else "NaN")
                f.write(f"{w} " + " ".join(vals) + "\n")
        series = ", ".join(f"'workers.dat' using 1:{i + 2} with linespoints lw 2 pt 7 title '--ordering {o}'"
                           for i, o in enumerate(orderings))
        gp += ["set output 'workers.png'", "set title 'loginflow throughput against workers and ordering'",
               "set xlabel '--workers'", "set ylabel 'records/s'", "set yrange [0:*]", "set key bottom right",
               f"set xtics ({', '.join(str(w) for w in workers)})", "set logscale x 2", f"plot {series}",
               "unset logscale x", "set xtics autofreq", "unset xlabel", "set yrange [*:*]"]
        pngs.append("workers.png")
    firsts = {}
    for r in runs:
        if r["scenario"] == "throughput" and r["valid"] and r.get("timeline") and r["system"] not in firsts:
            firsts[r["system"]] = r
    if firsts:
        series = []
        for name, r in firsts.items():
            tl, exp = r["timeline"], r["expected_outputs"]
            start = next(x[0] for x in tl if x[1] > 0)
            with open(out / f"progress_{name}.dat", "w") as f:
                f.write("# seconds since the first output, outputs (% of expected), committed (% of inputs)\n")
                for x in tl:
                    if x[0] >= start - 0.5:
                        f.write(f"{x[0] - start:.3f} {100 * x[1] / exp:.3f} {100 * x[2] / r['events']:.3f}\n")
                    if x[1] >= exp:
                        break
            series.append(f"'progress_{name}.dat' using 1:2 with lines lw 2 title '{name} ({r['events']:,} events)'")
        gp += ["set output 'progress.png'", "set title 'Progress of the first valid throughput run of each system "
               "(outputs acknowledged, sampled every probe)'", "set xlabel 'seconds since the first output'",
               "set ylabel '% of the outputs'", "set yrange [0:105]", "set xrange [-0.5:*]", "set key bottom right",
               "plot " + ", ".join(series), "unset xlabel", "set yrange [*:*]", "set xrange [*:*]"]
        pngs.append("progress.png")
    lat = {k: v for k, v in s["latency"].items() if v.get("p50_ms") is not None}
    if lat:
        with open(out / "latency.dat", "w") as f:
            f.write("# system p50_ms p99_ms p999_ms label_line1 label_line2 label_line3\n")
            for name, x in lat.items():
                variant, _, frac = (x.get("config_label") or "").partition(" @ ")
                variant = re.sub(r"fetch\.wait\.max\.ms=(\d+)", r"fetch wait \1 ms", variant)
                f.write(f"\"{name}\" {x['p50_ms']:.3f} {x['p99_ms']:.3f} {x['p999_ms']:.3f} "
                        f"\"{x['system']}\" \"{variant}\" \"{frac + ' of max' if frac else ''}\"\n")
        gp += ["set terminal pngcairo size 1100,560 noenhanced font ',10'",
               "set output 'latency.png'", "set xtics noenhanced font ',8'", "set rmargin 16",
               "set title 'End-to-end latency at a fixed offered rate (% of loginflow max), input timestamp to "
               "output acknowledged'",
               "set ylabel 'ms (log scale)'", "set logscale y",
               f"set yrange [1:{max(max(x['p999_ms'], x['p99_ms']) for x in lat.values()) * 4:.0f}]",
               "set bmargin 5", "set style data histograms",
               "set style histogram clustered gap 1", "set style fill solid 0.6 border -1", "set key top left",
               "set arrow 1 from graph 0, first 20 to graph 1, first 20 nohead dt 2 lc rgb 'red'",
               "set label 1 'p99 target 20 ms' at graph 1.01, first 20 tc rgb 'red'",
               "plot 'latency.dat' using 2:xtic(strcol(5).\"\\n\".strcol(6).\"\\n\".strcol(7)) title 'p50' lc rgb '#88ccee', "
               "'' using 3 title 'p99' lc rgb '#4477aa', '' using 4 title 'p99.9' lc rgb '#332288'",
               "unset arrow 1", "unset label 1", "unset logscale y", "set bmargin", "set rmargin"]
        pngs.append("latency.png")
    (out / "plots.gp").write_text("\n".join(gp) + "\n")
    if not pngs:
        return []
    if not shutil.which("gnuplot"):
        log("gnuplot not found: plots.gp written, no PNG drawn")
        return []
    r = subprocess.run(["gnuplot", "plots.gp"], cwd=out, capture_output=True, text=True)
    if r.returncode != 0:
        log(f"gnuplot failed: {r.stderr.strip()[-500:]}")
        return []
    return pngs


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_mib": mem, "kernel": platform.release(),
            "python": platform.python_version()}


def git_info():
    def run(*a):
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
    return {"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain"))}


# ---------------------------------------------------------------------------------------------

def latency_variants(args):
    """(label, librdkafka properties): the defaults, and the consumer's fetch wait shortened.

    The embedded broker answers a Fetch that finds no data only after the whole
    fetch.wait.max.ms (500 ms by default), even when data arrives meanwhile (a real broker
    answers as soon as fetch.min.bytes are there), so the defaults measure the mock's wait."""
    out = [("defaults", [])]
    if args.latency_fetch_wait_ms:
        w = args.latency_fetch_wait_ms
        out.append((f"fetch.wait.max.ms={w}", [f"consumer.fetch.wait.max.ms={w}"]))
    return out


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small counts, one run each: a smoke test (~3 min)")
    ap.add_argument("--events", type=int, help="events per loginflow/passthrough run [1,000,000; quick 50,000]")
    ap.add_argument("--runs", type=int, help="runs of loginflow and of passthrough (median reported) [3; quick 1]")
    ap.add_argument("--python-events", type=int, help="events of a Python consumer run [100,000; quick 5,000]")
    ap.add_argument("--python-runs", type=int, help="runs of the Python consumer [1]")
    ap.add_argument("--partitions", type=int, default=32, help="partitions of every topic [32]")
    ap.add_argument("--matrix-events", type=int, help="events per workers x ordering run [= --events]")
    ap.add_argument("--matrix-runs", type=int, default=1, help="runs of each workers x ordering cell (median) [1]")
    ap.add_argument("--workers", default="1,2,4", help="workers of the matrix [1,2,4]")
    ap.add_argument("--orderings", default="key,partition,unordered", help="orderings of the matrix")
    ap.add_argument("--latency-fractions", default="0.5,0.1",
                    help="offered rates as fractions of loginflow's max; the first is the target's [0.5,0.1]")
    ap.add_argument("--latency-duration", type=float, help="seconds of offered load [30; quick 8]")
    ap.add_argument("--latency-partitions", type=int,
                    help="partitions of the latency runs [enough for rate x duration events: "
                         "a power of two, at least 64, with at most 30,000 events each]")
    ap.add_argument("--latency-rate", type=float, help="offered rate, instead of the fraction of the max")
    ap.add_argument("--latency-fetch-wait-ms", type=int, default=10,
                    help="also measure latency with consumer fetch.wait.max.ms=N (0: only the defaults) [10]")
    ap.add_argument("--latency-warmup", type=float, help="seconds left out at the start [5; quick 2]")
    ap.add_argument("--backlog-events", type=int, help="events of the memory run [5,000,000; quick 200,000]")
    ap.add_argument("--backlog-partitions", type=int,
                    help="partitions of the memory run [128: 5M lz4 events need ~100 with 5 MiB each]")
    ap.add_argument("--scenarios", default="throughput,matrix,latency,backlog",
                    help="which scenarios to run, comma-separated")
    ap.add_argument("--systems", default="loginflow,passthrough,python",
                    help="systems of the throughput scenario, comma-separated")
    ap.add_argument("--seed", type=int, default=42, help="gen --seed (same seed, same events) [42]")
    ap.add_argument("--bad-fraction", type=float, default=0.01, help="malformed fraction [0.01]")
    ap.add_argument("--min-rate", type=float, default=5000, help="a run slower than this (msgs/s) times out")
    ap.add_argument("--min-rate-python", type=float, default=300, help="the same for the Python consumer")
    ap.add_argument("--poll-interval", type=float,
                    help="seconds between two probes of the broker's offsets during a run [0.1; quick 0.025]")
    ap.add_argument("--loginflow-args", default="", help="more options for every `loginflow run` (experiments)")
    ap.add_argument("--build-dir", default="build/release", help="where loginflow and bench/passthrough are")
    ap.add_argument("--out", default="bench/results", help="results directory [bench/results]")
    a = ap.parse_args(argv)
    q = a.quick

    def default(name, quick, full):
        if getattr(a, name) is None:
            setattr(a, name, quick if q else full)
    default("events", 50_000, 1_000_000)
    default("runs", 1, 3)
    default("python_events", 5_000, 100_000)
    default("python_runs", 1, 1)
    default("matrix_events", a.events, a.events)
    default("latency_duration", 8.0, 30.0)
    default("latency_warmup", 2.0, 5.0)
    default("latency_partitions", a.partitions, 0)  # 0: from the offered rate (latency_partitions())
    default("backlog_events", 200_000, 5_000_000)
    default("backlog_partitions", a.partitions, 128)
    default("poll_interval", 0.025, 0.1)
    a.scenarios = [x.strip() for x in a.scenarios.split(",") if x.strip()]
    a.latency_fractions = [float(x) for x in a.latency_fractions.split(",") if x.strip()]
    a.systems = [x.strip() for x in a.systems.split(",") if x.strip()]
    a.workers = [int(x) for x in a.workers.split(",")]
    a.orderings = [x.strip() for x in a.orderings.split(",")]
    return a


def main(argv):
    args = parse_args(argv)
    bench = Bench(args)
    for exe in (bench.loginflow, bench.passthrough):
        if not exe.exists():
            sys.exit(f"run_bench: {exe} is missing: cmake --preset release -DLOGINFLOW_BUILD_BENCH=ON && "
                     f"cmake --build --preset release")
    try:
        import kafka  # noqa: F401 (only checks that it is there)
    except ImportError:
        sys.exit("run_bench: kafka-python is missing (Debian: apt-get install python3-kafka; run with /usr/bin/python3)")
    bench.out.mkdir(parents=True, exist_ok=True)
    if bench.logdir.exists():
        shutil.rmtree(bench.logdir)
    bench.logdir.mkdir()
    for pattern in ("*.png", "*.dat", "plots.gp", "results.json", "results.csv", "summary.md"):
        for f in bench.out.glob(pattern):  # what an earlier run wrote: nothing stale is left beside the new
            f.unlink()

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(["bench/run_bench.py", *argv]) if argv else "bench/run_bench.py",
            "machine": machine(), "git": git_info(), "loadavg_start": loadavg(),
            "args": {k: v for k, v in vars(args).items()}}
    log(f"run_bench: {meta['machine']['nproc']} CPUs ({meta['machine']['cpu_model']}), load {meta['loadavg_start']}, "
        f"results in {bench.out}")
    t0 = time.monotonic()
    interrupted = False
    try:
        if "throughput" in args.scenarios:
            log(f"throughput: {args.events:,} events x {args.runs} runs each (loginflow, passthrough), "
                f"{args.partitions} partitions, lz4")
            for i in range(1, args.runs + 1):
                if "loginflow" in args.systems:
                    bench.drain("throughput", Loginflow(), args.events, args.partitions, "lz4", i)
                if "passthrough" in args.systems:
                    bench.drain("throughput", Passthrough(), args.events, args.partitions, "lz4", i)
            if "python" in args.systems:
                log(f"throughput: the Python consumer, {args.python_events:,} events x {args.python_runs}, "
                    f"gzip input")
                for i in range(1, args.python_runs + 1):
                    bench.drain("throughput", Python(), args.python_events, args.partitions, "gzip", i)
        if "matrix" in args.scenarios:
            log(f"matrix: workers {args.workers} x ordering {args.orderings}, {args.matrix_events:,} events, "
                f"{args.matrix_runs} run(s) each")
            for i in range(1, args.matrix_runs + 1):
                for w in args.workers:
                    for o in args.orderings:
                        bench.drain("matrix", Loginflow(workers=w, ordering=o), args.matrix_events, args.partitions,
                                    "lz4", i, config_label=f"w{w}-{o}")
        if "latency" in args.scenarios:
            lf = [r["rate"] for r in bench.runs if r["valid"] and r["scenario"] == "throughput"
                  and r["system"] == "loginflow"]
            if not lf:
                lf = [r["rate"] for r in bench.runs if r["valid"] and r["scenario"] == "matrix"
                      and r["workers"] == os.cpu_count() and r["ordering"] == "key"]
            if lf or args.latency_rate:
                fractions = [None] if args.latency_rate else args.latency_fractions
                for fraction in fractions:
                    rate = args.latency_rate or fraction * statistics.median(lf)
                    how = "as asked" if args.latency_rate else f"{fraction:.0%} of loginflow's max"
                    log(f"latency: {rate:,.0f}/s offered ({how}) for {args.latency_duration:.0f} s on "
                        f"{latency_partitions(args, int(rate * args.latency_duration))} partitions, "
                        f"first {args.latency_warmup:.0f} s left out")
                    for variant, props in latency_variants(args):
                        label = variant if fraction is None else f"{variant} @ {fraction:.0%}"
                        bench.latency(Loginflow(props=props), rate, label, fraction)
                        bench.latency(Passthrough(latency_skip=args.latency_warmup, props=props), rate, label,
                                      fraction)
            else:
                log("latency: skipped (no valid loginflow throughput run to take the rate from)")
        if "backlog" in args.scenarios:
            log(f"backlog: {args.backlog_events:,} events on {args.backlog_partitions} partitions, loginflow")
            bench.drain("backlog", Loginflow(), args.backlog_events, args.backlog_partitions, "lz4", 1)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping every process, writing what was measured")
    finally:
        Proc.stop_all()

    meta["elapsed_s"] = time.monotonic() - t0
    meta["loadavg_end"] = loadavg()
    meta["interrupted"] = interrupted
    lib = next((r["sut_summary"].get("librdkafka") for r in bench.runs
                if r["system"] == "passthrough" and isinstance(r.get("sut_summary"), dict)), None)
    meta["librdkafka"] = lib
    s = summarise(bench, meta)
    (bench.out / "results.json").write_text(json.dumps({"meta": meta, "summary": s, "runs": bench.runs}, indent=1,
                                                       default=str) + "\n")
    write_csv(bench.out / "results.csv", bench.runs)
    write_markdown(bench.out / "summary.md", meta, s)
    pngs = plots(bench.out, s, bench.runs)
    print()
    print((bench.out / "summary.md").read_text())
    invalid = [r for r in bench.runs if not r["valid"]]
    log(f"done in {meta['elapsed_s'] / 60:.1f} min: {len(bench.runs)} runs, {len(invalid)} invalid; "
        f"{bench.out}/results.json, results.csv, summary.md{', ' + ', '.join(pngs) if pngs else ''}")
    return 1 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
