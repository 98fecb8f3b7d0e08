#!/usr/bin/env python3
"""Live PromQL check: every query of the Grafana dashboard and of the alert rules returns data
against a real Prometheus server scraping a real `loginflow demo`.

    promql_live.py --source DIR --loginflow BIN            # what `make test` runs

1. Starts the demo (`BIN demo --duration 0 --http-address 127.0.0.1 --http-port P --rate R`)
   and reads the `http=URL` line of its stdout.
2. Starts /usr/bin/prometheus on 127.0.0.1 (free port, temporary data dir) with a temporary
   configuration that scrapes the demo every second as job "loginflow" and loads
   deploy/prometheus/alerts.yml (so Prometheus itself parses the rules: no YAML parser needed).
3. Waits (polling, with deadlines) until the target is up and has --min-samples scrapes.
4. Evaluates, through the HTTP API:
   - every `expr` of grafana/dashboards/loginflow.json (Grafana variables substituted:
     $instance -> .*, $__rate_interval -> 1m, $__range -> 1m, $__interval -> 5s ...) and every
     query variable (label_values(X, l) -> X): each must return at least one non-NaN sample;
   - every alerting/recording rule (as Prometheus parsed it, from /api/v1/rules): the whole
     expression must evaluate without error (an alert is normally empty), and each operand of
     its top-level `or`/`and`/`unless` and comparison operators that is not a number must return
     data (absent(X) -> X), so a rule on a metric the service does not export fails; every rule
     must also have been evaluated by Prometheus without error.
   Queries that return nothing are retried until the deadline (a histogram needs its first
   observations), then reported.
5. Stops everything it started (SIGTERM, then SIGKILL after a grace period; also on Ctrl-C and
   SIGTERM) and removes its temporary directory.
Exit status: 0 all returned data, 1 a query failed, 2 setup failed (demo or Prometheus).
"""
import argparse
import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

# ------------------------------------------------------------------------------------------
# PromQL operand splitting (no full parser: a tokenizer that respects strings and brackets)

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:ms|s|m|h|d|w|y)?(?:\d+(?:ms|s|m|h|d|w|y))*|[Ii]nf|NaN)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|<=|>=|=~|!~|[-+*/%^<>=,(){}\[\]@:])
""", re.X)

_LEVELS = [{"or"}, {"and", "unless"}, {"==", "!=", "<", ">", "<=", ">="}]
_OPEN, _CLOSE = "([{", ")]}"


def tokenize(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot tokenize PromQL at {pos}: {expr[pos:pos + 20]!r}")
        kind = m.lastgroup
        if kind not in ("ws", "comment"):
            out.append((kind, m.group(), m.start(), m.end()))
        pos = m.end()
    return out


def _depths(tokens):
    depth, res = 0, []
    for kind, text, _, _ in tokens:
        if kind == "op" and text in _CLOSE:
            depth -= 1
        res.append(depth)
        if kind == "op" and text in _OPEN:
            depth += 1
    return res


def _strip_modifiers(expr):
    """Removes a leading `bool`, `on(...)`/`ignoring(...)`, `group_left/right(...)`."""
    toks = tokenize(expr)
    i = 0
    while i < len(toks) and toks[i][0] == "ident" and toks[i][1] in (
            "bool", "on", "ignoring", "group_left", "group_right"):
        i += 1
        if i < len(toks) and toks[i][1] == "(":
            depth = 0
            while i < len(toks):
                if toks[i][1] == "(":
                    depth += 1
                elif toks[i][1] == ")":
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
    return expr[toks[i][2]:] if i < len(toks) else ""


def operands(expr):
    """The operands of the top-level set and comparison operators of expr, recursively.
    `a > 0 and on(job) b > 1000` -> [a, 0, b, 1000]; `(x)` -> operands(x)."""
    expr = expr.strip()
    toks = tokenize(expr)
    if not toks:
        return []
    depth = _depths(toks)
    for level in _LEVELS:
        cuts = [i for i, t in enumerate(toks) if depth[i] == 0 and (
            (t[0] == "ident" and t[1] in level) or (t[0] == "op" and t[1] in level))]
        if cuts:
            parts, start = [], 0
            for c in cuts:
                parts.append(expr[start:toks[c][2]])
                start = toks[c][3]
            parts.append(expr[start:])
            res = []
            for j, part in enumerate(parts):
                res += operands(_strip_modifiers(part) if j else part)
            return res
    if toks[0][1] == "(" and toks[-1][1] == ")" and all(d > 0 for d in depth[1:-1]):
        return operands(expr[toks[0][3]:toks[-1][2]])
    return [expr]


def is_literal(expr):
    toks = tokenize(expr)
    return all(t[0] == "num" or t[1] in "+-()" for t in toks)


def unwrap_absent(expr):
    m = re.fullmatch(r"\s*(absent|absent_over_time)\s*\((.*)\)\s*", expr, re.S)
    return m.group(2) if m else expr


# ------------------------------------------------------------------------------------------
# Grafana

GRAFANA_VARS = {
    "__rate_interval": "1m", "__interval": "5s", "__interval_ms": "5000", "__range": "1m",
    "__range_s": "60", "__range_ms": "60000", "__from": "0", "__to": "0",
}


def substitute(expr, variables):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in GRAFANA_VARS:
            return GRAFANA_VARS[name]
        if name in variables:
            return variables[name]
        raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", repl, expr)


def dashboard_queries(path):
    """[(where, promql)] for every panel target and query variable of a dashboard JSON."""
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    variables = {}
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "datasource":
            variables[v["name"]] = "prometheus"
        elif v.get("type") in ("query", "custom", "interval", "textbox", "constant"):
            variables[v["name"]] = ".*" if v.get("type") == "query" else str(
                (v.get("current") or {}).get("value") or v.get("query") or ".*")
    out = []
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", q or "", re.S)
        m = m or re.fullmatch(r"\s*query_result\((.*)\)\s*", q or "", re.S)
        if m:
            out.append((f"variable ${v['name']}", substitute(m.group(1), variables)))

    def walk(panels, prefix=""):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"panel {p.get('title')!r} {t.get('refId', '')}".rstrip(),
                                substitute(t["expr"], variables)))
            walk(p.get("panels", []), prefix)
    walk(dash.get("panels", []))
    return out


# ------------------------------------------------------------------------------------------
# processes

CHILDREN = []


def _die_with_parent():
    """In the child: SIGTERM when this script dies, even by SIGKILL (a CTest timeout)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start(cmd, **kw):
    # own process group (stop_all kills it whole), and a parent-death signal
    p = subprocess.Popen(cmd, start_new_session=True, preexec_fn=_die_with_parent, **kw)
    CHILDREN.append(p)
    return p


def stop_all(grace=15.0):
    for p in CHILDREN:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for p in CHILDREN:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"promql_live: pid {p.pid} ({p.args[0]}) ignored SIGTERM for {grace:.0f}s: SIGKILL",
                  file=sys.stderr)
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the process group: children of children too
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if p.returncode not in (0, None):
            print(f"promql_live: note: {os.path.basename(str(p.args[0]))} exited with status {p.returncode} "
                  "after SIGTERM (a clean stop exits 0)", file=sys.stderr)


def sweep_stale_tmpdirs():
    """Removes the temporary directories of earlier runs that were SIGKILLed (their owner
    process is gone), so that a killed run leaves nothing behind for long."""
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if not name.startswith("loginflow-promql-"):
            continue
        try:
            with open(os.path.join(path, "owner.pid")) as f:
                os.kill(int(f.read().strip()), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (OSError, ValueError):
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


class Prom:
    def __init__(self, base):
        self.base = base

    def api(self, path, **params):
        url = f"{self.base}/api/v1/{path}"
        data = urllib.parse.urlencode(params).encode() if params else None
        try:
            with urllib.request.urlopen(url, data=data, timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"{}")
        if body.get("status") != "success":
            raise RuntimeError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, q):
        """(has_data, description)."""
        data = self.api("query", query=q)
        kind, result = data["resultType"], data["result"]
        if kind == "scalar" or kind == "string":
            v = float(result[1]) if kind == "scalar" else 0.0
            return (not math.isnan(v)), f"{kind} {result[1]}"
        if kind == "vector":
            good = [r for r in result if not math.isnan(float(r["value"][1]))]
            return bool(good), f"{len(good)} series" + (f" ({len(result) - len(good)} NaN)" if len(good) < len(result) else "")
        good = [r for r in result if r["values"]]
        return bool(good), f"{len(good)} range series"


# ------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, help="the project source directory")
    ap.add_argument("--loginflow", required=True, help="the loginflow binary (runs `loginflow demo`)")
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--rate", default="2000")
    ap.add_argument("--min-samples", type=int, default=20, help="scrapes (1 s apart) to wait for")
    ap.add_argument("--deadline", type=float, default=85.0, help="seconds for the whole check")
    a = ap.parse_args()
    t0 = time.monotonic()
    deadline = t0 + a.deadline
    dashboard = os.path.join(a.source, "grafana", "dashboards", "loginflow.json")
    alerts = os.path.join(a.source, "deploy", "prometheus", "alerts.yml")
    queries = dashboard_queries(dashboard)  # fails early on a broken dashboard or variable

    sweep_stale_tmpdirs()
    tmp = tempfile.mkdtemp(prefix="loginflow-promql-")
    with open(os.path.join(tmp, "owner.pid"), "w") as f:
        f.write(str(os.getpid()))

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return run(a, tmp, deadline, queries, alerts, t0)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def run(a, tmp, deadline, queries, alerts, t0):
    def left():
        return deadline - time.monotonic()

    # ---- 1. the demo
    demo_port = free_port()
    demo_args = ["demo", "--duration", "0", "--http-address", "127.0.0.1",
                 "--http-port", str(demo_port), "--rate", a.rate]
    cmd = [a.loginflow] + demo_args
    demo_log = open(os.path.join(tmp, "demo.log"), "w+b")
    demo = start(cmd, stdout=subprocess.PIPE, stderr=demo_log, stdin=subprocess.DEVNULL)
    found = {}
    got_url = threading.Event()

    def reader():  # reads the demo's stdout to the end, so that it never blocks on a full pipe
        for line in demo.stdout:
            demo_log.write(b"stdout: " + line)
            m = re.match(rb"\s*http=(\S+)", line)
            if m and "url" not in found:
                found["url"] = m.group(1).decode().rstrip("/")
                got_url.set()
        got_url.set()
    threading.Thread(target=reader, daemon=True).start()

    def demo_failed(msg):
        demo_log.flush()
        demo_log.seek(0)
        tail = demo_log.read()[-3000:].decode(errors="replace")
        print(f"promql_live: SETUP FAILED: {msg}\n--- demo output (end) ---\n{tail}", file=sys.stderr)
        return 2

    if not got_url.wait(timeout=min(30, left())) or "url" not in found:
        return demo_failed(f"`{shlex.join(cmd)}` printed no http=URL line "
                           f"(exit status {demo.poll()})")
    url = found["url"]
    print(f"promql_live: demo up at {url} ({time.monotonic() - t0:.1f}s): {shlex.join(cmd)}")
    target = urllib.parse.urlparse(url).netloc

    # ---- 2. Prometheus
    prom_port = free_port()
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w") as f:
        # JSON is YAML: no YAML writer needed
        json.dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [os.path.abspath(alerts)],
            "scrape_configs": [{"job_name": "loginflow", "metrics_path": "/metrics",
                                "static_configs": [{"targets": [target]}]}],
        }, f, indent=1)
    prom_log = open(os.path.join(tmp, "prometheus.log"), "w+b")
    prom = start([a.prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp}/data",
                  f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn",
                  "--storage.tsdb.retention.time=1h"],
                 stdout=prom_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{prom_port}"
    P = Prom(base)

    def prom_failed(msg):
        prom_log.flush()
        prom_log.seek(0)
        print(f"promql_live: SETUP FAILED: {msg}\n--- prometheus log (end) ---\n"
              f"{prom_log.read()[-3000:].decode(errors='replace')}", file=sys.stderr)
        return 2

    while True:
        try:
            if http_get(f"{base}/-/ready", timeout=2)[0] == 200:
                break
        except (OSError, urllib.error.URLError):
            pass
        if prom.poll() is not None:
            return prom_failed(f"prometheus exited with status {prom.returncode}")
        if left() <= 0:
            return prom_failed("prometheus not ready before the deadline")
        time.sleep(0.2)
    print(f"promql_live: prometheus ready at {base} ({time.monotonic() - t0:.1f}s)")

    # ---- 3. enough data
    q_samples = 'count_over_time(up{job="loginflow"}[5m])'
    samples = 0
    while True:
        if demo.poll() is not None:
            return demo_failed(f"the demo exited with status {demo.returncode} while being scraped")
        try:
            r = P.api("query", query=q_samples)["result"]
            samples = int(float(r[0]["value"][1])) if r else 0
            up = P.api("query", query='up{job="loginflow"}')["result"]
            if up and up[0]["value"][1] == "1" and samples >= a.min_samples:
                break
        except (OSError, RuntimeError, urllib.error.URLError):
            pass
        if left() <= 0:
            targets = P.api("targets")["activeTargets"]
            errs = "; ".join(f"{t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}" for t in targets)
            return demo_failed(f"only {samples} successful scrapes of the demo before the deadline ({errs})")
        time.sleep(0.5)
    print(f"promql_live: {samples} scrapes collected ({time.monotonic() - t0:.1f}s)")

    # ---- 4. the rules, as Prometheus parsed them
    rules = []
    while True:
        groups = P.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if rules and not any(r.get("lastEvaluation", "0001").startswith("0001") for r in rules):
            break
        if left() <= 0:
            break
        time.sleep(0.5)
    if not rules:
        return prom_failed(f"prometheus loaded no rule from {alerts}")

    checks = []  # (where, promql, must_have_data)
    for where, q in queries:
        checks.append((where, q, True))
    for r in rules:
        name = r.get("name")
        checks.append((f"rule {name} (whole expression, may be empty)", r["query"], False))
        for i, op in enumerate(operands(r["query"])):
            if is_literal(op):
                continue
            checks.append((f"rule {name} operand {i + 1}", unwrap_absent(op).strip(), True))

    # ---- 5. evaluate, retrying the empty ones until the deadline
    status = {}
    pending = list(range(len(checks)))
    while True:
        still = []
        for i in pending:
            where, q, need = checks[i]
            try:
                ok, desc = P.query(q)
                status[i] = ("ok" if ok or not need else "NO DATA", desc)
                if need and not ok:
                    still.append(i)
            except (RuntimeError, OSError, urllib.error.URLError) as e:
                status[i] = ("ERROR", str(e))  # a syntax error does not heal: no retry
        pending = still
        if not pending or left() <= 0:
            break
        time.sleep(1.0)

    failed = 0
    for i, (where, q, need) in enumerate(checks):
        st, desc = status[i]
        if st != "ok":
            failed += 1
        print(f"{'ok  ' if st == 'ok' else 'FAIL'} {where}: {st} - {desc}\n       {q}")
    for r in rules:
        if r.get("health") == "err":
            failed += 1
            print(f"FAIL rule {r.get('name')}: Prometheus failed to evaluate it: {r.get('lastError')}")
    print(f"promql_live: {len(checks) - failed} passed, {failed} failed "
          f"({len(queries)} dashboard queries, {len(rules)} rules; {time.monotonic() - t0:.1f}s)")
    if demo.poll() is not None:
        print(f"promql_live: note: the demo exited early with status {demo.returncode}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
