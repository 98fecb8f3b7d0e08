#!/usr/bin/env node
// Offline validation of loginflow's Kubernetes manifests (no cluster, no network).
//
//   node validate.mjs --k8s DIR --alerts FILE              the files under DIR (base, components,
//                                                          overlays): schemas + structure
//   kubectl kustomize DIR | node validate.mjs --rendered - [--expect-autoscaler keda|hpa]
//                                                          a rendered overlay: schemas + how the
//                                                          objects fit together
//        [--expect-namespace NS] [--expect-image IMG] [--expect-replicas N] [--expect-brokers B]
//   node validate.mjs --k8s DIR --alerts FILE --write-prometheusrule
//                                                          regenerate base/prometheusrule.yaml
//
// Schemas: every object is validated against the JSON schema of its apiVersion/kind, compiled
// from the Kubernetes OpenAPI spec (npm kubernetes-models), KEDA's CRDs (@kubernetes-models/keda)
// and prometheus-operator's CRDs (@kubernetes-models/prometheus-operator): types, required
// fields, enums, formats. Those schemas accept unknown fields, so every field of a manifest is
// also probed: replaced by a value no schema accepts, the schema must reject it; a field the
// schema does not look at is reported as unknown (a typo such as `livenesProbe`).
// Exit status 0 when everything holds, 1 otherwise; one line per finding.

import fs from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import YAML from "yaml";

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const flag = (name) => args.includes(name);

let failures = 0;
let passes = 0;
const fail = (where, msg) => {
  failures++;
  console.log(`FAIL ${where}: ${msg}`);
};
const pass = (where, msg) => {
  passes++;
  console.log(`ok   ${where}${msg ? ": " + msg : ""}`);
};

// ---------------------------------------------------------------- schema lookup
const MODULES = {
  "keda.sh": (v, k) => `@kubernetes-models/keda/keda.sh/${v}/${k}`,
  "monitoring.coreos.com": (v, k) => `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${v}/${k}`,
};
async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const spec = MODULES[group]
    ? MODULES[group](version, kind)
    : group
      ? `kubernetes-models/${group}/${version}/${kind}`
      : `kubernetes-models/${version}/${kind}`;
  try {
    const mod = await import(spec);
    return mod[kind] ?? mod.default;
  } catch {
    return undefined;
  }
}

function schemaErrors(Model, obj) {
  try {
    new Model(obj).validate();
    return [];
  } catch (e) {
    if (Array.isArray(e.errors)) return e.errors;
    throw e;
  }
}

const ptr = (parts) => parts.map((p) => "/" + String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("");

function* paths(value, parts = []) {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      yield [...parts, i];
      yield* paths(value[i], [...parts, i]);
    }
  } else if (value && typeof value === "object") {
    for (const k of Object.keys(value)) {
      yield [...parts, k];
      yield* paths(value[k], [...parts, k]);
    }
  }
}

function withValueAt(obj, parts, v) {
  const copy = structuredClone(obj);
  let o = copy;
  for (const p of parts.slice(0, -1)) o = o[p];
  o[parts[parts.length - 1]] = v;
  return copy;
}

// Fields whose schema is intentionally open (x-kubernetes-preserve-unknown-fields or "any").
const OPEN_FIELDS = [];

async function validateObject(obj, where) {
  if (!obj || typeof obj !== "object" || !obj.apiVersion || !obj.kind) {
    fail(where, "not a Kubernetes object (apiVersion and kind required)");
    return;
  }
  const id = `${where} ${obj.kind}/${obj.metadata?.name ?? "?"}`;
  const Model = await modelFor(obj.apiVersion, obj.kind);
  if (!Model) {
    fail(id, `no schema for ${obj.apiVersion} ${obj.kind} (unknown or removed API version?)`);
    return;
  }
  const errs = schemaErrors(Model, obj);
  if (errs.length) {
    fail(id, "schema: " + errs.map((e) => `${e.instancePath || "/"} ${e.message}`).join("; "));
    return;
  }
  // unknown-field probe
  const PROBE = Symbol("probe");
  const unknown = [];
  for (const parts of paths(obj)) {
    if (parts[0] === "apiVersion" || parts[0] === "kind") continue;
    const p = ptr(parts);
    if (OPEN_FIELDS.some((re) => re.test(p))) continue;
    if (unknown.some((u) => p.startsWith(u + "/"))) continue;
    const e = schemaErrors(Model, withValueAt(obj, parts, PROBE));
    if (!e.some((x) => x.instancePath === p || x.instancePath.startsWith(p + "/"))) unknown.push(p);
  }
  if (unknown.length) fail(id, `fields unknown to the ${obj.apiVersion} ${obj.kind} schema: ${unknown.join(", ")}`);
  else pass(id, `valid ${obj.apiVersion} ${obj.kind}`);
}

// ---------------------------------------------------------------- kustomization structure
const KUSTOMIZE_KEYS = new Set([
  "apiVersion", "kind", "metadata", "resources", "components", "namespace", "namePrefix", "nameSuffix",
  "labels", "commonLabels", "commonAnnotations", "images", "replicas", "configMapGenerator",
  "secretGenerator", "generatorOptions", "patches", "patchesStrategicMerge", "patchesJson6902",
  "transformers", "generators", "validators", "openapi", "crds", "replacements", "buildMetadata",
  "sortOptions", "helmCharts", "helmGlobals", "configurations", "vars", "bases",
]);

function checkKustomization(file) {
  const where = path.relative(process.cwd(), file);
  const k = YAML.parse(fs.readFileSync(file, "utf8"));
  const dir = path.dirname(file);
  const problems = [];
  const kinds = { "kustomize.config.k8s.io/v1beta1": "Kustomization", "kustomize.config.k8s.io/v1alpha1": "Component" };
  if (kinds[k.apiVersion] !== k.kind) problems.push(`apiVersion/kind ${k.apiVersion} ${k.kind}`);
  for (const key of Object.keys(k)) if (!KUSTOMIZE_KEYS.has(key)) problems.push(`unknown key ${key}`);
  for (const key of ["bases", "patchesStrategicMerge", "patchesJson6902", "commonLabels", "vars"])
    if (k[key]) problems.push(`${key} is deprecated in kustomize v5`);
  const exists = (rel, wantDir) => {
    const p = path.resolve(dir, rel);
    if (!fs.existsSync(p)) return problems.push(`${rel} does not exist`);
    if (wantDir && !fs.existsSync(path.join(p, "kustomization.yaml"))) problems.push(`${rel} has no kustomization.yaml`);
  };
  for (const r of k.resources ?? []) exists(r, fs.existsSync(path.resolve(dir, r)) && fs.statSync(path.resolve(dir, r)).isDirectory());
  for (const c of k.components ?? []) exists(c, true);
  for (const p of k.patches ?? []) {
    if (p.path) exists(p.path);
    if (!p.path && !p.patch) problems.push("a patch with neither path nor patch");
  }
  for (const g of k.configMapGenerator ?? []) {
    for (const f of g.files ?? []) exists(f.includes("=") ? f.split("=")[1] : f);
    for (const l of g.literals ?? []) if (!/^[-._a-zA-Z0-9]+=/.test(l)) problems.push(`bad literal ${l}`);
  }
  if (problems.length) fail(where, problems.join("; "));
  else pass(where, `${k.kind}: keys and referenced files`);
  return k;
}

// ---------------------------------------------------------------- documents
function readDocs(text, where) {
  const docs = [];
  for (const d of YAML.parseAllDocuments(text)) {
    if (d.errors.length) {
      fail(where, "YAML: " + d.errors.map((e) => e.message).join("; "));
      continue;
    }
    const v = d.toJS();
    if (v !== null && v !== undefined) docs.push(v);
  }
  return docs;
}

function promRuleDoc(alertsFile) {
  const alerts = YAML.parse(fs.readFileSync(alertsFile, "utf8"));
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: {
      name: "loginflow",
      labels: { "app.kubernetes.io/name": "loginflow", "app.kubernetes.io/part-of": "loginflow" },
    },
    spec: { groups: alerts.groups },
  };
}

function checkPrometheusRuleIdentity(ruleDoc, alertsFile, where) {
  const alerts = YAML.parse(fs.readFileSync(alertsFile, "utf8"));
  const keys = Object.keys(alerts).filter((x) => x !== "groups");
  if (keys.length) fail(where, `${alertsFile} has keys a PrometheusRule cannot carry: ${keys}`);
  if (isDeepStrictEqual(JSON.parse(JSON.stringify(ruleDoc?.spec?.groups ?? null)), JSON.parse(JSON.stringify(alerts.groups))))
    pass(where, `spec.groups identical to ${path.relative(process.cwd(), alertsFile)} (${alerts.groups.flatMap((g) => g.rules).length} rules)`);
  else
    fail(where, `spec.groups differ from ${alertsFile}: run node deploy/k8s/tools/validate.mjs --k8s deploy/k8s --alerts deploy/prometheus/alerts.yml --write-prometheusrule`);
}

// ---------------------------------------------------------------- rendered-overlay checks
const RUN_FLAGS = ["BROKERS", "GROUP_ID", "INPUT_TOPIC", "OUTPUT_TOPIC", "DLQ_TOPIC", "INSIGHTS_TOPIC", "WORKERS",
  "QUEUE_CAPACITY", "ORDERING", "SHUTDOWN_TIMEOUT", "KAFKA_CONFIG", "HTTP_ADDRESS", "HTTP_PORT",
  "INSIGHTS_INTERVAL", "LOG_LEVEL", "LOG_FORMAT", "X"].map((f) => "LOGINFLOW_" + f);

const seconds = (d) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(d).trim());
  if (!m) return NaN;
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] ?? "s"];
};
const matches = (selector, labels) => Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);

function checkRendered(docs, where, expectAutoscaler, alertsFile) {
  const c = (ok, what, detail) => (ok ? pass(where, what) : fail(where, `${what}${detail ? ": " + detail : ""}`));
  const byKind = (k) => docs.filter((d) => d.kind === k);
  const deps = byKind("Deployment");
  c(deps.length === 1, "exactly one Deployment", `${deps.length}`);
  if (deps.length !== 1) return;
  const dep = deps[0];
  const pod = dep.spec.template;
  const ctr = pod.spec.containers.find((x) => x.name === "loginflow") ?? pod.spec.containers[0];
  const ns = dep.metadata.namespace;
  const cms = byKind("ConfigMap");
  const env = {};
  for (const ef of ctr.envFrom ?? []) {
    const cm = ef.configMapRef && cms.find((m) => m.metadata.name === ef.configMapRef.name);
    if (ef.configMapRef) c(!!cm, `envFrom ConfigMap ${ef.configMapRef.name} is part of the output`);
    Object.assign(env, cm?.data ?? {});
  }
  for (const e of ctr.env ?? []) env[e.name] = e.value ?? "(valueFrom)";
  const unknownEnv = Object.keys(env).filter((k) => k.startsWith("LOGINFLOW_") && !RUN_FLAGS.includes(k));
  c(!unknownEnv.length, "every LOGINFLOW_* variable is a `run` flag", unknownEnv.join(", "));
  c(env.LOGINFLOW_BROKERS && env.LOGINFLOW_BROKERS !== "(valueFrom)", "LOGINFLOW_BROKERS is set", env.LOGINFLOW_BROKERS);

  const probe = (p) => p?.httpGet?.path;
  c(probe(ctr.livenessProbe) === "/healthz", "livenessProbe GET /healthz", probe(ctr.livenessProbe));
  c(probe(ctr.readinessProbe) === "/readyz", "readinessProbe GET /readyz", probe(ctr.readinessProbe));
  const httpPort = Number(env.LOGINFLOW_HTTP_PORT ?? 8080);
  const portNames = Object.fromEntries((ctr.ports ?? []).map((p) => [p.name, p.containerPort]));
  const probePort = (p) => (typeof p?.httpGet?.port === "string" ? portNames[p.httpGet.port] : p?.httpGet?.port);
  c([ctr.livenessProbe, ctr.readinessProbe, ctr.startupProbe].filter(Boolean).every((p) => probePort(p) === httpPort),
    `probes use the HTTP port ${httpPort}`);
  const shutdown = seconds(env.LOGINFLOW_SHUTDOWN_TIMEOUT ?? "30s");
  const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
  c(grace > shutdown, `terminationGracePeriodSeconds (${grace}) above the shutdown timeout (${shutdown}s)`);
  const psc = pod.spec.securityContext ?? {};
  const csc = ctr.securityContext ?? {};
  c((csc.runAsNonRoot ?? psc.runAsNonRoot) === true, "runAsNonRoot");
  c((csc.runAsUser ?? psc.runAsUser ?? 0) !== 0, "runAsUser is not 0");
  c(csc.readOnlyRootFilesystem === true, "readOnlyRootFilesystem");
  c(csc.allowPrivilegeEscalation === false, "allowPrivilegeEscalation: false");
  c((csc.capabilities?.drop ?? []).includes("ALL"), "capabilities drop ALL");
  c((csc.seccompProfile ?? psc.seccompProfile)?.type === "RuntimeDefault", "seccompProfile RuntimeDefault");
  const r = ctr.resources ?? {};
  c(r.requests?.cpu && r.requests?.memory && r.limits?.memory, "resources: cpu+memory requests, memory limit");
  c(/:[\w][\w.-]*$|@sha256:/.test(ctr.image) && !/:latest$/.test(ctr.image), "image pinned (tag or digest, not latest)", ctr.image);

  const svcs = byKind("Service");
  const svc = svcs.find((s) => matches(s.spec.selector, pod.metadata.labels));
  c(!!svc, "a Service selects the pods");
  if (svc) {
    const sp = svc.spec.ports.find((p) => portNames[p.targetPort] === httpPort || p.targetPort === httpPort);
    c(!!sp, "the Service targets the HTTP port");
    for (const sm of byKind("ServiceMonitor")) {
      c(matches(sm.spec.selector?.matchLabels, svc.metadata.labels), `ServiceMonitor ${sm.metadata.name} selects the Service`);
      c(sm.spec.endpoints.every((e) => svc.spec.ports.some((p) => p.name === e.port)), "ServiceMonitor endpoints name a Service port");
      c(svc.metadata.name === "loginflow" || sm.spec.jobLabel,
        'the scrape job is "loginflow" (alerts and dashboard select job="loginflow")', svc.metadata.name);
    }
    c(byKind("ServiceMonitor").length === 1, "one ServiceMonitor");
  }
  const pdbs = byKind("PodDisruptionBudget");
  c(pdbs.length === 1 && matches(pdbs[0].spec.selector.matchLabels, pod.metadata.labels), "a PodDisruptionBudget selects the pods");
  c(matches(dep.spec.selector.matchLabels, pod.metadata.labels), "the Deployment selector matches its pod labels");

  const sos = byKind("ScaledObject");
  const hpas = byKind("HorizontalPodAutoscaler");
  c(sos.length + hpas.length === 1, "exactly one autoscaler (ScaledObject or HPA; both would fight)",
    `${sos.length} ScaledObject, ${hpas.length} HPA`);
  if (expectAutoscaler) c((expectAutoscaler === "keda" ? sos : hpas).length === 1, `autoscaler is ${expectAutoscaler}`);
  if (opt("--expect-image")) c(ctr.image === opt("--expect-image"), `image is ${opt("--expect-image")}`, ctr.image);
  if (opt("--expect-namespace")) c(ns === opt("--expect-namespace"), `namespace is ${opt("--expect-namespace")}`, ns);
  if (opt("--expect-replicas")) {
    const want = Number(opt("--expect-replicas"));
    c(dep.spec.replicas === want, `Deployment replicas ${want}`, dep.spec.replicas);
    for (const so of sos) c(so.spec.minReplicaCount === want, `ScaledObject minReplicaCount ${want}`, so.spec.minReplicaCount);
  }
  if (opt("--expect-brokers")) c(env.LOGINFLOW_BROKERS === opt("--expect-brokers"), "brokers set by the overlay", env.LOGINFLOW_BROKERS);
  for (const so of sos) {
    c(so.spec.scaleTargetRef.name === dep.metadata.name && (so.spec.scaleTargetRef.kind ?? "Deployment") === "Deployment",
      "ScaledObject scales the Deployment");
    for (const t of so.spec.triggers) {
      c(t.type === "kafka", "ScaledObject trigger is kafka (consumer-group lag)", t.type);
      for (const [k, v] of Object.entries(t.metadata ?? {}))
        if (k.endsWith("FromEnv")) c(v in env, `ScaledObject ${k}=${v} exists in the container env`);
      const group = t.metadata.consumerGroup ?? env[t.metadata.consumerGroupFromEnv];
      const topic = t.metadata.topic ?? env[t.metadata.topicFromEnv];
      c(group === (env.LOGINFLOW_GROUP_ID ?? "loginflow"), "ScaledObject watches loginflow's consumer group", group);
      c(topic === (env.LOGINFLOW_INPUT_TOPIC ?? "user-login"), "ScaledObject watches the input topic", topic);
    }
    c(so.spec.minReplicaCount <= so.spec.maxReplicaCount, "ScaledObject min <= max");
  }
  for (const h of hpas) {
    c(h.spec.scaleTargetRef.name === dep.metadata.name && h.spec.scaleTargetRef.kind === "Deployment", "HPA scales the Deployment");
    c(h.spec.minReplicas <= h.spec.maxReplicas, "HPA min <= max");
    if (h.spec.metrics.some((m) => m.resource?.name === "cpu")) c(r.requests?.cpu, "HPA on CPU: the container requests CPU");
  }
  const rules = byKind("PrometheusRule");
  c(rules.length === 1, "one PrometheusRule");
  if (rules.length === 1 && alertsFile) checkPrometheusRuleIdentity(rules[0], alertsFile, where);
  const nsObjs = byKind("Namespace");
  if (ns || nsObjs.length) {
    const names = new Set(docs.filter((d) => !["Namespace"].includes(d.kind)).map((d) => d.metadata.namespace));
    c(names.size === 1 && (!nsObjs.length || names.has(nsObjs[0].metadata.name)),
      "every namespaced object is in the overlay's namespace", [...names].join(","));
  }
  c(!byKind("Secret").some((s) => s.data || s.stringData), "no Secret with data in the manifests");
  const sa = pod.spec.serviceAccountName;
  c(!sa || byKind("ServiceAccount").some((s) => s.metadata.name === sa), "the pod's ServiceAccount is part of the output");
}

// ---------------------------------------------------------------- main
async function main() {
  const alertsFile = opt("--alerts");
  if (opt("--rendered") !== undefined) {
    const src = opt("--rendered");
    const text = src === "-" ? fs.readFileSync(0, "utf8") : fs.readFileSync(src, "utf8");
    const where = opt("--name") ?? (src === "-" ? "rendered" : src);
    const docs = readDocs(text, where);
    if (!docs.length) fail(where, "no objects rendered");
    for (const d of docs) await validateObject(d, where);
    checkRendered(docs, where, opt("--expect-autoscaler"), alertsFile);
  } else {
    const root = opt("--k8s");
    if (!root || !alertsFile) {
      console.error("usage: validate.mjs --k8s DIR --alerts FILE [--write-prometheusrule] | --rendered FILE|- [--alerts FILE]");
      process.exit(2);
    }
    const ruleFile = path.join(root, "base", "prometheusrule.yaml");
    if (flag("--write-prometheusrule")) {
      const header =
        "# GENERATED from deploy/prometheus/alerts.yml: do not edit; edit that file and run\n" +
        "#   node deploy/k8s/tools/validate.mjs --k8s deploy/k8s --alerts deploy/prometheus/alerts.yml --write-prometheusrule\n" +
        "# (make test checks that the two are identical). Your Prometheus may select rules by a\n" +
        "# label (e.g. release: kube-prometheus-stack): add it in your overlay.\n";
      fs.writeFileSync(ruleFile, header + YAML.stringify(promRuleDoc(alertsFile), { lineWidth: 0 }));
      console.log(`wrote ${ruleFile}`);
      return;
    }
    const files = [];
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.name === "tools" || e.name === "node_modules") continue;
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.ya?ml$/.test(e.name)) files.push(p);
      }
    };
    walk(root);
    files.sort();
    for (const f of files) {
      if (path.basename(f) === "kustomization.yaml") {
        checkKustomization(f);
        continue;
      }
      const rel = path.relative(process.cwd(), f);
      for (const d of readDocs(fs.readFileSync(f, "utf8"), rel)) {
        await validateObject(d, rel);
        if (d.kind === "PrometheusRule") checkPrometheusRuleIdentity(d, alertsFile, rel);
      }
    }
    if (!files.some((f) => f === ruleFile)) fail(ruleFile, "missing: run with --write-prometheusrule");
  }
  console.log(`k8s: ${passes} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(e.stack ?? String(e));
  process.exit(2);
});
