#!/usr/bin/env python3
"""Checks the Dockerfile without a Docker daemon (stdlib only).

    dockerfile_check.py --source DIR [--binary PATH/TO/loginflow]

1. Build stage = the project's dependency list: the first stage is FROM debian:12 (bookworm),
   copies scripts/install-deps.sh and scripts/packages.txt, and RUNs
   `scripts/install-deps.sh build`; no RUN of that stage installs a package any other way
   (apt-get/apt/aptitude install, dpkg -i, pip, npm, curl|wget downloads). It builds with
   `cmake --preset release`, `cmake --build` and `cmake --install`.
2. Runtime stage lint: the last stage is FROM debian:12-slim, installs no -dev package and
   nothing of the build group, copies the binary from the build stage, runs as a non-root
   numeric USER, has EXPOSE 8080, a HEALTHCHECK on /healthz, ENTRYPOINT ["loginflow"] (exec
   form) and CMD ["run"]; every instruction is known, JSON forms are valid JSON, every stage
   referenced by --from exists.
3. The HEALTHCHECK command really works: it is run with bash against a local HTTP server
   answering /healthz 200 (must pass), 503 (must fail) and against a closed port (must fail).
4. With --binary: every shared library `ldd` resolves for the binary belongs to a Debian
   package that the runtime stage installs, or to a dependency of one (transitively, read
   from the dpkg database), so the slim image has everything the binary needs.
Prints one line per check and `N passed, M failed`; exit status 1 when a check failed.
"""
import argparse
import http.server
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading

KNOWN = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
         "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append(bool(ok))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
    return ok


# ------------------------------------------------------------------------------------------
def parse(text):
    """[(lineno, INSTRUCTION, arguments)] with continuations joined and comments dropped."""
    escape = "\\"
    lines = text.split("\n")
    for ln in lines:  # parser directives come first
        m = re.match(r"#\s*(\w+)\s*=\s*(\S+)\s*$", ln)
        if not m:
            break
        if m.group(1).lower() == "escape":
            escape = m.group(2)
    out, buf, start = [], "", 0
    for i, ln in enumerate(lines, 1):
        s = ln.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):  # comment lines inside a continuation are dropped
            continue
        if not buf:
            start = i
        if s.endswith(escape):
            buf += s[:-1] + " "
            continue
        buf += s
        m = re.match(r"(\S+)\s*(.*)$", buf, re.S)
        out.append((start, m.group(1).upper(), m.group(2).strip()))
        buf = ""
    if buf:
        out.append((start, "<UNTERMINATED>", buf))
    return out


def exec_form(args):
    """The JSON array of an exec-form instruction, or None for the shell form."""
    if args.startswith("["):
        try:
            v = json.loads(args)
            return v if isinstance(v, list) and all(isinstance(x, str) for x in v) else None
        except ValueError:
            return None
    return None


def split_flags(args):
    """`--from=build --chown=x a b` -> ({'from': 'build', 'chown': 'x'}, 'a b')."""
    flags = {}
    while True:
        m = re.match(r"--([\w-]+)(?:=(\S*))?\s+", args)
        if not m:
            return flags, args
        flags[m.group(1)] = m.group(2) if m.group(2) is not None else ""
        args = args[m.end():]


def stages(instructions):
    res = []
    for ln, ins, args in instructions:
        if ins == "FROM":
            flags, rest = split_flags(args + " ")
            parts = rest.split()
            res.append({"image": parts[0] if parts else "", "name": parts[2].lower() if len(parts) >= 3
                        and parts[1].upper() == "AS" else None, "line": ln, "ins": []})
        elif res:
            res[-1]["ins"].append((ln, ins, args))
    return res


INSTALL_BY_HAND = re.compile(
    r"\b(apt-get|apt|aptitude)\s+(-\S+\s+)*install\b|\bdpkg\s+(-\S+\s+)*(-i|--install)\b|"
    r"\bpip3?\s+install\b|\bnpm\s+(install|ci)\b|\b(curl|wget)\b")


def packages_of_group(source, group):
    with open(os.path.join(source, "scripts", "packages.txt")) as f:
        return [ln.split()[1] for ln in f if ln.strip() and not ln.startswith("#")
                and len(ln.split()) == 2 and ln.split()[0] == group]


def apt_installed_names(run_args):
    """Package names after `apt-get install` in a RUN line (options skipped)."""
    names = []
    for m in re.finditer(r"\b(?:apt-get|apt)\s+(?:-\S+\s+)*install((?:\s+(?:-\S+|[a-z0-9][a-z0-9+.:=~-]*))+)", run_args):
        names += [w.split("=")[0] for w in m.group(1).split() if not w.startswith("-")]
    return names


# ------------------------------------------------------------------------------------------
def healthcheck_works(cmd):
    """Runs the HEALTHCHECK command (exec form) against local servers."""
    class H(http.server.BaseHTTPRequestHandler):
        code = 200

        def do_GET(self):
            self.send_response(self.code if self.path == "/healthz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    class H503(H):
        code = 503

    def run_against(port):
        env = dict(os.environ, LOGINFLOW_HTTP_PORT=str(port))
        try:
            return subprocess.run(cmd, env=env, timeout=10, capture_output=True).returncode
        except subprocess.TimeoutExpired:
            return "timeout"

    results = {}
    for label, handler in (("200", H), ("503", H503)):
        srv = http.server.HTTPServer(("127.0.0.1", 0), handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        results[label] = run_against(srv.server_address[1])
        srv.shutdown()
        srv.server_close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    results["closed"] = run_against(closed)
    return results


# ------------------------------------------------------------------------------------------
def dpkg_owner(path):
    real = os.path.realpath(path)
    for p in dict.fromkeys([path, real, real.replace("/usr/lib/", "/lib/", 1), path.replace("/lib/", "/usr/lib/", 1)]):
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return None


def depends_closure(roots):
    """Installed packages reachable from roots through Depends/Pre-Depends (dpkg database)."""
    seen, todo = set(), list(roots)
    while todo:
        pkg = todo.pop()
        if pkg in seen:
            continue
        seen.add(pkg)
        r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", pkg],
                           capture_output=True, text=True)
        if r.returncode != 0:
            continue
        for alt in r.stdout.split(","):
            for choice in alt.split("|"):
                name = re.sub(r"\(.*?\)|:\w+", "", choice).strip()
                if name:
                    todo.append(name)
    return seen


def ldd_check(binary, runtime_pkgs):
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if not check("ldd runs on the binary", r.returncode == 0, r.stderr.strip()):
        return
    libs, missing = [], []
    for ln in r.stdout.splitlines():
        m = re.match(r"\s*(\S+)\s*=>\s*(\S+)", ln)
        if m:
            if m.group(2) == "not":
                missing.append(m.group(1))
            else:
                libs.append(m.group(2))
        else:
            m = re.match(r"\s*(/\S+)", ln)  # the dynamic loader itself
            if m:
                libs.append(m.group(1))
    check("ldd resolves every library", not missing, f"not found: {missing}")
    closure = depends_closure(runtime_pkgs)
    bad = []
    for lib in libs:
        owner = dpkg_owner(lib)
        if owner is None or owner not in closure:
            bad.append(f"{lib} ({owner or 'no Debian package'})")
    check(f"every library of the binary ({len(libs)}) comes with the runtime stage's packages",
          not bad, "not provided by " + " ".join(runtime_pkgs) + ": " + ", ".join(bad))


# ------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--dockerfile")
    ap.add_argument("--binary", help="a built loginflow, for the ldd check")
    a = ap.parse_args()
    path = a.dockerfile or os.path.join(a.source, "Dockerfile")
    with open(path) as f:
        instructions = parse(f.read())

    unknown = [f"line {ln}: {ins}" for ln, ins, _ in instructions if ins not in KNOWN]
    check("every instruction is a Dockerfile instruction", not unknown, ", ".join(unknown))
    bad_json = [f"line {ln}: {ins}" for ln, ins, args in instructions
                if args.startswith("[") and ins in ("RUN", "CMD", "ENTRYPOINT", "SHELL") and exec_form(args) is None]
    check("exec forms are valid JSON string arrays", not bad_json, ", ".join(bad_json))
    st = stages(instructions)
    if not check("multi-stage: at least two FROM", len(st) >= 2, f"{len(st)} stage(s)"):
        return finish()
    names = {s["name"] for s in st if s["name"]}
    refs = [split_flags(args + " ")[0].get("from") for s in st for _, ins, args in s["ins"] if ins == "COPY"]
    bad_refs = [r for r in refs if r and r.lower() not in names and not r.isdigit() and ":" not in r and "/" not in r]
    check("every COPY --from names a stage", not bad_refs, ", ".join(bad_refs))

    # ---- build stage
    build = st[0]
    check("build stage FROM debian:12 (bookworm)",
          re.fullmatch(r"(docker\.io/(library/)?)?debian:(12|bookworm)(@sha256:[0-9a-f]{64})?", build["image"]),
          build["image"])
    runs = [(ln, args) for ln, ins, args in build["ins"] if ins == "RUN"]
    copies = " ".join(args for _, ins, args in build["ins"] if ins in ("COPY", "ADD"))
    deps_runs = [ln for ln, args in runs if re.search(r"(^|[\s/])scripts/install-deps\.sh\s+build(\s|$|&|;)", args)]
    check("build stage RUNs scripts/install-deps.sh build", deps_runs)
    check("install-deps.sh and packages.txt are copied before it runs",
          re.search(r"scripts/install-deps\.sh", copies) and re.search(r"scripts/packages\.txt", copies)
          or re.search(r"(^|\s)\.\s", copies + " "))
    by_hand = [f"line {ln}: {INSTALL_BY_HAND.search(args).group(0)}" for ln, args in runs if INSTALL_BY_HAND.search(args)]
    check("build stage installs no package other than through install-deps.sh", not by_hand, "; ".join(by_hand))
    check("build stage has no ADD from a URL",
          not [a2 for _, ins, a2 in build["ins"] if ins == "ADD" and re.search(r"https?://", a2)])
    allrun = " && ".join(args for _, args in runs)
    check("build stage builds with cmake --preset release, --build, --install",
          all(re.search(p, allrun) for p in (r"cmake\s+--preset[ =]release", r"cmake\s+--build", r"cmake\s+--install")))
    build_group = packages_of_group(a.source, "build")
    check("scripts/packages.txt has a build group with the -dev libraries",
          build_group and any(p.endswith("-dev") for p in build_group), f"{build_group}")
    with open(os.path.join(a.source, "scripts", "install-deps.sh")) as f:
        check("install-deps.sh reads scripts/packages.txt by group", "packages.txt" in f.read())

    # ---- runtime stage
    rt = st[-1]
    check("runtime stage FROM debian:12-slim",
          re.fullmatch(r"(docker\.io/(library/)?)?debian:(12|bookworm)-slim(@sha256:[0-9a-f]{64})?", rt["image"]), rt["image"])
    rt_runs = " && ".join(args for _, ins, args in rt["ins"] if ins == "RUN")
    rt_pkgs = apt_installed_names(rt_runs)
    check("runtime stage installs no -dev package and nothing of the build group",
          not [p for p in rt_pkgs if p.endswith("-dev") or p in build_group],
          f"{[p for p in rt_pkgs if p.endswith('-dev') or p in build_group]}")
    check("runtime stage apt-get install uses --no-install-recommends and cleans the lists",
          not rt_pkgs or ("--no-install-recommends" in rt_runs and "rm -rf /var/lib/apt/lists" in rt_runs))
    check("runtime stage copies loginflow from the build stage",
          any(ins == "COPY" and split_flags(args + " ")[0].get("from") and "loginflow" in args for _, ins, args in rt["ins"]))
    users = [args.split()[0] for _, ins, args in rt["ins"] if ins == "USER"]
    user = users[-1].split(":")[0] if users else "root"
    check("runtime stage runs as a non-root numeric USER", user.isdigit() and user != "0", f"USER {user}")
    expose = " ".join(args for _, ins, args in rt["ins"] if ins == "EXPOSE")
    check("EXPOSE 8080", re.search(r"(^|\s)8080(/tcp)?(\s|$)", expose), expose)
    ep = [exec_form(args) for _, ins, args in rt["ins"] if ins == "ENTRYPOINT"]
    check("ENTRYPOINT [\"loginflow\"] in exec form (signals reach the process)",
          ep and ep[-1] and os.path.basename(ep[-1][0]) == "loginflow", f"{ep}")
    cmd = [exec_form(args) for _, ins, args in rt["ins"] if ins == "CMD"]
    check("CMD [\"run\"]", cmd and cmd[-1] == ["run"], f"{cmd}")
    hc = [args for _, ins, args in rt["ins"] if ins == "HEALTHCHECK"]
    hc_cmd = None
    if check("HEALTHCHECK on /healthz", hc and "/healthz" in hc[-1] and not hc[-1].upper().startswith("NONE"),
             f"{hc}"):
        flags, rest = split_flags(hc[-1] + " ")
        bad_flags = set(flags) - {"interval", "timeout", "start-period", "start-interval", "retries"}
        check("HEALTHCHECK options are valid", not bad_flags, f"{bad_flags}")
        m = re.match(r"CMD\s+(.*)$", rest.strip(), re.S)
        if m:
            hc_cmd = exec_form(m.group(1).strip()) or ["/bin/sh", "-c", m.group(1).strip()]
        check("HEALTHCHECK CMD in exec form", m and exec_form(m.group(1).strip()))
    if hc_cmd:
        tool = hc_cmd[0]
        check(f"HEALTHCHECK tool `{tool}` is in debian:12-slim or installed by the runtime stage",
              tool in ("bash", "/bin/bash", "/usr/bin/bash") or os.path.basename(tool) in rt_pkgs, tool)
        if os.path.basename(tool) == "bash":
            r = healthcheck_works(hc_cmd)
            check("HEALTHCHECK succeeds on /healthz 200", r["200"] == 0, f"exit {r['200']}")
            check("HEALTHCHECK fails on /healthz 503", r["503"] not in (0, "timeout"), f"exit {r['503']}")
            check("HEALTHCHECK fails when nothing listens", r["closed"] not in (0, "timeout"), f"exit {r['closed']}")
    stopsig = [args for _, ins, args in rt["ins"] if ins == "STOPSIGNAL"]
    check("STOPSIGNAL is SIGTERM (or unset)", not stopsig or stopsig[-1] in ("SIGTERM", "15"), f"{stopsig}")
    env_text = " ".join(args for _, ins, args in rt["ins"] if ins in ("ENV", "ARG"))
    check("no secret in ENV/ARG", not re.search(r"(?i)(password|secret|sasl\.|ssl\.key)", env_text), env_text)

    # ---- .dockerignore
    di = os.path.join(a.source, ".dockerignore")
    if check(".dockerignore exists", os.path.isfile(di)):
        with open(di) as f:
            pats = {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}
        check(".dockerignore keeps .git and build trees out of the context",
              ".git" in pats and any(p.startswith("build") or p.startswith("**/build") for p in pats))
        needed = ["scripts/install-deps.sh", "scripts/packages.txt", "CMakeLists.txt", "CMakePresets.json", "src", "include"]
        ignored = [n for n in needed if n in pats or n.split("/")[0] + "/" in pats or n.split("/")[0] in pats]
        check(".dockerignore keeps what the build needs", not ignored, f"{ignored}")

    if a.binary:
        ldd_check(a.binary, rt_pkgs)
    return finish()


def finish():
    failed = RESULTS.count(False)
    print(f"dockerfile: {len(RESULTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
