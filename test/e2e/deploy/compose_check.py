#!/usr/bin/env python3
"""deploy.compose: docker-compose.yml is accepted by Debian's docker-compose (v1.29,
`config -q`, no daemon needed) and wires the stack as docs/OPERATIONS.md describes.

    compose_check.py SOURCE_DIR

Checks, on the configuration as docker-compose itself resolves it (`docker-compose config`):
  - the services kafka, kafka-setup, data-generator, loginflow, prometheus, grafana;
  - Kafka in KRaft mode (process roles with a controller, a quorum, no ZooKeeper anywhere);
  - kafka-setup creates user-login, processed-user-login, user-login-dlq, login-insights,
    and the generator and loginflow start only after it completed successfully;
  - the data generator produces to user-login on kafka:9092;
  - loginflow is built from the Dockerfile, scalable (no container_name, no fixed host port),
    configured by LOGINFLOW_* variables that are all `run` flags, pointed at kafka:9092, and
    given a stop grace period above its shutdown timeout;
  - Prometheus mounts deploy/prometheus and discovers the loginflow replicas by DNS (A records
    of the service name, the port loginflow listens on);
  - Grafana mounts the provisioning and dashboards folders where the provisioning files say,
    and the dashboard's data source is the provisioned one.
Uses /usr/bin/python3 with PyYAML (python3-yaml, a dependency of docker-compose).
"""
import json
import os
import re
import subprocess
import sys

import yaml

RESULTS = []
RUN_FLAGS = {"LOGINFLOW_" + f for f in (
    "BROKERS GROUP_ID INPUT_TOPIC OUTPUT_TOPIC DLQ_TOPIC INSIGHTS_TOPIC WORKERS QUEUE_CAPACITY ORDERING "
    "SHUTDOWN_TIMEOUT KAFKA_CONFIG HTTP_ADDRESS HTTP_PORT INSIGHTS_INTERVAL LOG_LEVEL LOG_FORMAT X").split()}


def check(name, ok, detail=""):
    RESULTS.append(bool(ok))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
    return ok


def seconds(d, default=10.0):
    if d is None:
        return default
    total, found = 0.0, False
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(d)):
        found = True
        total += float(num) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    return total if found else float(d)


def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def mounts(svc):
    """{container path: host path} of bind mounts."""
    out = {}
    for v in svc.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) >= 2:
                out[parts[1]] = parts[0]
        elif v.get("type") == "bind":
            out[v["target"]] = v["source"]
    return out


def main():
    src = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    os.chdir(src)
    r = subprocess.run(["docker-compose", "-f", "docker-compose.yml", "config", "-q"],
                       capture_output=True, text=True, env=dict(os.environ, DOCKER_HOST="unix:///nonexistent"))
    if not check("docker-compose -f docker-compose.yml config -q", r.returncode == 0, r.stderr.strip()):
        return finish()
    r = subprocess.run(["docker-compose", "-f", "docker-compose.yml", "config"], capture_output=True, text=True,
                       env=dict(os.environ, DOCKER_HOST="unix:///nonexistent"))
    cfg = yaml.safe_load(r.stdout)
    with open("docker-compose.yml") as f:
        raw = yaml.safe_load(f)
    check("compose file format 3.x", str(raw.get("version", "")).startswith("3"), raw.get("version"))
    svcs = cfg["services"]
    want = ["kafka", "kafka-setup", "data-generator", "loginflow", "prometheus", "grafana"]
    check("services " + ", ".join(want), all(s in svcs for s in want), f"have {sorted(svcs)}")
    if not all(s in svcs for s in want):
        return finish()

    # ---- Kafka (KRaft)
    kenv = env_of(svcs["kafka"])
    check("Kafka in KRaft mode (process roles with controller, quorum voters)",
          "controller" in kenv.get("KAFKA_PROCESS_ROLES", "") and kenv.get("KAFKA_CONTROLLER_QUORUM_VOTERS"))
    check("no ZooKeeper", not any("zookeeper" in json.dumps(s).lower() for s in svcs.values()))
    check("Kafka advertises kafka:9092 on the compose network",
          "kafka:9092" in kenv.get("KAFKA_ADVERTISED_LISTENERS", ""), kenv.get("KAFKA_ADVERTISED_LISTENERS"))
    check("Kafka has a healthcheck", svcs["kafka"].get("healthcheck", {}).get("test"))

    # ---- topic setup
    setup = svcs["kafka-setup"]
    script = json.dumps(setup.get("command", "")) + json.dumps(setup.get("entrypoint", ""))
    for t in ("user-login", "processed-user-login", "user-login-dlq", "login-insights"):
        check(f"kafka-setup creates {t}", re.search(r"create\s+" + re.escape(t) + r"\b", script) or
              re.search(r"--topic\s+" + re.escape(t) + r"\b", script))
    check("kafka-setup waits for a healthy Kafka",
          (setup.get("depends_on") or {}).get("kafka", {}).get("condition") == "service_healthy")
    check("kafka-setup is one-shot (restart: no)", str(setup.get("restart", "no")) == "no")
    for name in ("data-generator", "loginflow"):
        dep = (svcs[name].get("depends_on") or {}).get("kafka-setup", {})
        check(f"{name} starts after kafka-setup completed successfully",
              dep.get("condition") == "service_completed_successfully", f"{dep}")

    # ---- data generator
    gen = svcs["data-generator"]
    genv = env_of(gen)
    check("data generator image mpradeep954/fetch-de-data-gen", gen.get("image", "").startswith("mpradeep954/fetch-de-data-gen"))
    check("data generator produces to user-login on kafka:9092",
          genv.get("BOOTSTRAP_SERVERS") == "kafka:9092" and genv.get("KAFKA_TOPIC") == "user-login", f"{genv}")

    # ---- loginflow
    lf = svcs["loginflow"]
    lenv = env_of(lf)
    build = lf.get("build") or {}
    check("loginflow is built from the Dockerfile in the repository",
          os.path.realpath(build.get("context", "")) == src and build.get("dockerfile", "Dockerfile") == "Dockerfile",
          f"{build}")
    check("loginflow has no container_name (scalable)", "container_name" not in lf)
    fixed = []
    for p in lf.get("ports") or []:
        if isinstance(p, dict):
            if p.get("published"):
                fixed.append(p)
        elif re.match(r"^(\S+:)?\d+(-\d+)?:\d+", str(p)):
            fixed.append(p)
    check("loginflow publishes no fixed host port (scalable)", not fixed, f"{fixed}")
    bad = sorted(k for k in lenv if k.startswith("LOGINFLOW_") and k not in RUN_FLAGS)
    check("every LOGINFLOW_* variable of loginflow is a `run` flag", not bad, f"{bad}")
    check("loginflow connects to kafka:9092", lenv.get("LOGINFLOW_BROKERS") == "kafka:9092", lenv.get("LOGINFLOW_BROKERS"))
    http_port = int(lenv.get("LOGINFLOW_HTTP_PORT", "8080"))
    grace = seconds(lf.get("stop_grace_period"))
    shutdown = seconds(lenv.get("LOGINFLOW_SHUTDOWN_TIMEOUT", "30s"))
    check(f"loginflow stop_grace_period ({grace:g}s) above its shutdown timeout ({shutdown:g}s)", grace > shutdown)
    check("loginflow stops with SIGTERM", lf.get("stop_signal", "SIGTERM") == "SIGTERM")

    # ---- Prometheus
    prom = svcs["prometheus"]
    pm = mounts(prom)
    check("Prometheus mounts deploy/prometheus at /etc/prometheus",
          os.path.realpath(pm.get("/etc/prometheus", "")) == os.path.join(src, "deploy", "prometheus"), f"{pm}")
    with open("deploy/prometheus/prometheus.yml") as f:
        pcfg = yaml.safe_load(f)
    jobs = {j["job_name"]: j for j in pcfg.get("scrape_configs", [])}
    lfjob = jobs.get("loginflow", {})
    dns = [d for d in lfjob.get("dns_sd_configs", [])]
    check('Prometheus job "loginflow" (the alerts and dashboard select it)', bool(lfjob))
    check("Prometheus discovers every loginflow replica by DNS A records of the service name",
          any("loginflow" in d.get("names", []) and d.get("type", "SRV") == "A" and d.get("port") == http_port
              for d in dns), f"{dns}")
    check("Prometheus loads the alert rules", "alerts.yml" in pcfg.get("rule_files", []))

    # ---- Grafana
    gm = mounts(svcs["grafana"])
    check("Grafana mounts grafana/provisioning at /etc/grafana/provisioning",
          os.path.realpath(gm.get("/etc/grafana/provisioning", "")) == os.path.join(src, "grafana", "provisioning"), f"{gm}")
    with open("grafana/provisioning/dashboards/loginflow.yml") as f:
        prov = yaml.safe_load(f)
    paths = [p.get("options", {}).get("path") for p in prov.get("providers", [])]
    check("the dashboard provider's path is where grafana/dashboards is mounted",
          any(os.path.realpath(gm.get(p, "")) == os.path.join(src, "grafana", "dashboards") for p in paths),
          f"providers {paths}, mounts {gm}")
    with open("grafana/provisioning/datasources/prometheus.yml") as f:
        ds = yaml.safe_load(f)["datasources"]
    prom_ds = [d for d in ds if d.get("type") == "prometheus"]
    check("a Prometheus data source pointing at the prometheus service",
          any(re.match(r"https?://prometheus:9090/?$", d.get("url", "")) for d in prom_ds), f"{prom_ds}")
    with open("grafana/dashboards/loginflow.json") as f:
        dash = json.load(f)
    dsvar = [v for v in dash.get("templating", {}).get("list", []) if v.get("type") == "datasource"]
    uids = {d.get("uid") for d in prom_ds}
    check("the dashboard's default data source is the provisioned one",
          dsvar and (dsvar[0].get("current") or {}).get("value") in uids, f"{dsvar[:1]} vs {uids}")
    return finish()


def finish():
    failed = RESULTS.count(False)
    print(f"compose: {len(RESULTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
