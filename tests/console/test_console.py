#!/usr/bin/python3
# test_console.py - the operator's console of a real onced, end to end.
#
# Makes a broker home with oncectl (the enterprise start-up case's four
# departments, type and grants), starts the onced just built with its
# console on a free loopback port, drives a known set of exchanges with
# once-demo-enterprise --count 3 (3 publishes, 9 granted requests, one
# request refused NO_GRANT, one revocation, one request of the revoked
# licence: 15 leaves), then checks, against exact numbers:
#
#   access      /healthz and /readyz open; /metrics and /api/v1/ refused
#               (401) without a token and with a wrong one; POST refused;
#               console.token made 0600 by oncectl init
#   metrics     exact counter values, and `promtool check metrics` clean
#               (test_console_live.c holds a client open, publishes chosen
#               subjects and floods refusals for the rest)
#   JSON API    status, departments, types, grants, exchanges (paged by
#               leaf index, no subject), kpis; bad arguments are 400
#   oncectl     status and top print the same numbers
#   prometheus  (section "prometheus") a real Prometheus scraping onced
#               with the token from a credentials_file, and a counter read
#               back through its query API
#   chromium    (section "chromium") the dashboard in headless Chromium,
#               the right numbers in its DOM
#
# Run by meson (tests/console/meson.build) with the sections as arguments;
# the programs come from the environment (ONCED, ONCECTL, ONCE_DEMO).
# Exit 77 (skipped) when promtool, prometheus or chromium is missing
# (deploy/install-test-deps.sh installs them). Waits are bounded polls,
# never timed assertions.
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77
FIELDS = ("name,legal_representative,registered_capital,address,"
          "business_scope,established_on")
GRANTS = [
    ("tax", "tax-registration",
     "name,legal_representative,registered_capital,address,business_scope"),
    ("public-security", "seal-engraving", "name,legal_representative"),
    ("bank", "account-opening",
     "name,legal_representative,registered_capital,address"),
]
DEPARTMENTS = ["market-supervision", "tax", "public-security", "bank"]

failures = []


def check(cond, what):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True,
                          **kw).stdout


def http(url, token=None, method="GET"):
    req = urllib.request.Request(url, method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(what, probe, seconds=60):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            v = probe()
            if v:
                return v
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise SystemExit("gave up waiting for " + what)


def metric(text, name, labels=""):
    pat = r"^" + re.escape(name + ("{" + labels + "}" if labels else "")) + r" (\S+)$"
    m = re.search(pat, text, re.M)
    return float(m.group(1)) if m else None


class Broker:
    def __init__(self, work):
        self.work = work
        self.home = os.path.join(work, "home")
        self.keys = os.path.join(work, "keys")
        self.endpoint = "ipc://" + os.path.join(work, "b.sock")
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.proc = None
        ctl = os.environ["ONCECTL"]
        run(ctl, "init", self.home, "--listen", self.endpoint, "--name",
            "console-test")
        self.set_console_port(self.port)
        os.mkdir(self.keys, 0o700)
        for d in DEPARTMENTS:
            run(ctl, "keygen", os.path.join(self.keys, d + ".key"))
            run(ctl, "--home", self.home, "dept", "add", d, "--key",
                os.path.join(self.keys, d + ".key.pub"), "--name", "Dept " + d)
        run(ctl, "--home", self.home, "type", "add", "business-licence",
            "--issuer", "market-supervision", "--subject", "enterprise",
            "--fields", FIELDS)
        for who, purpose, fields in GRANTS:
            run(ctl, "--home", self.home, "grant", "add", "--requester", who,
                "--type", "business-licence", "--purpose", purpose,
                "--fields", fields)
        with open(os.path.join(self.home, "console.token")) as f:
            self.token = f.read().strip()

    def set_console_port(self, port):
        """The console where this test wants it, as an operator would."""
        self.port = port
        self.base = "http://127.0.0.1:%d" % port
        conf = os.path.join(self.home, "once.conf")
        with open(conf) as f:
            text = f.read()
        text = re.sub(r"^console_listen = .*$",
                      "console_listen = 127.0.0.1:%d" % port, text, flags=re.M)
        with open(conf, "w") as f:
            f.write(text)

    def start(self):
        self.log = open(os.path.join(self.work, "onced.log"), "w")
        self.proc = subprocess.Popen(
            [os.environ["ONCED"], "--home", self.home, "--log-level", "info"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("onced's console", lambda: self.proc.poll() is None and
                 http(self.base + "/healthz")[0] == 200, 30)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, path, token=True):
        return http(self.base + path, self.token if token else None)

    def json(self, name):
        status, body = self.get("/api/v1/" + name)
        assert status == 200, (name, status, body)
        return json.loads(body)


def exchanges(b):
    out = run(os.environ["ONCE_DEMO"], "--endpoint", b.endpoint,
              "--broker-key", os.path.join(b.home, "broker.pub"), "--keys",
              b.keys, "--count", "3")
    check("copies avoided: 9" in out, "the demo's 3 enterprises ran")
    # Every leaf committed is counted by the console (a bounded poll: the
    # demo's last answer left after its commit, so this is immediate).
    wait_for("15 leaves", lambda: b.json("status")["log"]["tree_size"] == 15)


def test_access(b):
    mode = stat.S_IMODE(os.stat(os.path.join(b.home, "console.token")).st_mode)
    check(mode == 0o600, "console.token is 0600")
    check(re.fullmatch(r"[0-9a-f]{64}", b.token) is not None,
          "the token is 64 hex digits")
    check(b.get("/healthz", False) == (200, "ok\n"), "/healthz open, ok")
    check(b.get("/readyz", False)[0] == 200, "/readyz open, ready")
    check(b.get("/metrics", False)[0] == 401, "/metrics without token: 401")
    check(b.get("/api/v1/status", False)[0] == 401,
          "/api/v1/status without token: 401")
    wrong = ("0" if b.token[0] != "0" else "1") + b.token[1:]
    check(http(b.base + "/metrics", wrong)[0] == 401,
          "/metrics with a wrong token: 401")
    check(http(b.base + "/metrics", b.token[:-1])[0] == 401,
          "/metrics with a short token: 401")
    check(http(b.base + "/api/v1/status", b.token, "POST")[0] == 405,
          "POST: 405, the console is read-only")
    check(b.get("/nothing")[0] == 404, "an unknown path: 404")
    check(b.get("/api/v1/nothing")[0] == 404, "an unknown API: 404")
    status, page = b.get("/", False)
    check(status == 200 and "<title>once console</title>" in page,
          "the dashboard page is served")


def test_startup(b):
    """A console port taken stops onced at start (exit 1, saying why); a
    home without a token file serves only the health checks."""
    other = Broker(tempfile.mkdtemp(dir=b.work))
    other.set_console_port(b.port)
    with open(os.path.join(other.work, "onced.log"), "w") as log:
        r = subprocess.run([os.environ["ONCED"], "--home", other.home],
                           stdout=log, stderr=subprocess.STDOUT, timeout=60)
    with open(os.path.join(other.work, "onced.log")) as f:
        said = f.read()
    check(r.returncode == 1 and "cannot serve the console on 127.0.0.1:%d"
          % b.port in said, "a console port in use: onced exits 1 and says "
          "so")
    os.unlink(os.path.join(other.home, "console.token"))
    other.set_console_port(free_port())
    other.start()
    try:
        check(other.get("/healthz", False)[0] == 200,
              "without console.token: /healthz still answers")
        check(other.get("/metrics")[0] == 401,
              "without console.token: /metrics refused even with a token")
        other.stop()
        # oncectl console token makes a new one; onced reads it at start.
        run(os.environ["ONCECTL"], "--home", other.home, "console", "token")
        path = os.path.join(other.home, "console.token")
        with open(path) as f:
            fresh = f.read().strip()
        check(stat.S_IMODE(os.stat(path).st_mode) == 0o600 and
              re.fullmatch(r"[0-9a-f]{64}", fresh) and fresh != other.token,
              "oncectl console token: a new 0600 token")
        other.token = fresh
        other.start()
        check(other.get("/metrics")[0] == 200,
              "the new token opens /metrics after a restart")
        run(os.environ["ONCECTL"], "--home", other.home, "console", "token")
        check(other.get("/metrics")[0] == 200,
              "a replaced token applies at the next start, not before")
    finally:
        other.stop()


def test_metrics(b):
    # The demo closed its connections; libzmq reports that to the ZAP
    # thread as it happens.
    wait_for("the demo's connections to close", lambda: metric(
        b.get("/metrics")[1], "once_connected_departments") == 0)
    status, text = b.get("/metrics")
    check(status == 200, "/metrics with the token: 200")
    ex = 'once_exchanges_total'
    expect = [
        (ex, 'kind="publish",decision="granted",code="NONE"', 3),
        (ex, 'kind="request",decision="granted",code="NONE"', 10),
        (ex, 'kind="request",decision="refused",code="NO_GRANT"', 1),
        (ex, 'kind="revoke",decision="granted",code="NONE"', 1),
        # Every answer: the 15 logged exchanges and the 4 clients' pings.
        ("once_request_duration_seconds_count", "", 19),
        ("once_commit_group_size_sum", "", 15),
        ("once_log_tree_size", "", 15),
        ("once_records", 'type="business-licence"', 3),
        ("once_record_versions", "", 4),
        ("once_copies_avoided_total", "", 10),
        ("once_log_refusals_total", 'code="NO_GRANT"', 1),
        ("once_department_exchanges_total",
         'department="tax",kind="request",decision="granted"', 3),
        ("once_department_exchanges_total",
         'department="bank",kind="request",decision="granted"', 4),
        ("once_department_exchanges_total",
         'department="public-security",kind="request",decision="refused"', 1),
        ("once_type_exchanges_total",
         'type="business-licence",kind="publish",decision="granted"', 3),
        ("once_publish_freshness_seconds_count", "", 3),
        ("once_queue_depth", 'queue="workers"', 0),
        ("once_queue_depth", 'queue="writer"', 0),
        ("once_queue_depth", 'queue="answers"', 0),
        ("once_exchanges_unlogged_total", 'reason="refusal_budget"', 0),
        ("once_exchanges_unlogged_total", 'reason="unattributed"', 0),
        # The demo's clients are gone (awaited above).
        ("once_connected_departments", "", 0),
        ("once_commit_failures_total", "", 0),
        ("once_console_database_up", "", 1),
    ]
    for name, labels, value in expect:
        got = metric(text, name, labels)
        check(got == value, "%s{%s} = %s (got %s)" % (name, labels, value,
                                                       got))
    size = metric(text, "once_lmdb_map_size_bytes")
    mark = metric(text, "once_lmdb_map_high_water_bytes")
    check(size is not None and mark is not None and
          0 < metric(text, "once_lmdb_map_used_bytes") < mark < size,
          "map: used below the high-water mark below the map size")
    check(abs(metric(text, "once_sharing_rate") - 10 / 11) < 1e-5,
          "once_sharing_rate = 10/11")
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_start_time_seconds",
                 "once_lmdb_map_used_bytes", "once_lmdb_readers_used"):
        v = metric(text, name)
        check(v is not None and v > 0, name + " present and positive")
    promtool = shutil.which("promtool")
    if promtool is None:
        print("skip promtool: not installed (deploy/install-test-deps.sh)")
        return
    r = subprocess.run([promtool, "check", "metrics"], input=text,
                       capture_output=True, text=True)
    check(r.returncode == 0, "promtool check metrics is clean: " +
          (r.stdout + r.stderr).strip())


def test_api(b):
    st = b.json("status")
    check(st["name"] == "console-test" and st["log_origin"] == "console-test",
          "status: name and log origin")
    check(st["log"]["tree_size"] == 15, "status: tree size 15")
    check(st["log"]["checkpoint"].startswith("console-test\n"),
          "status: the newest checkpoint is a signed note of the log")
    check(st["since_start"]["granted"] == 14 and
          st["since_start"]["refused"] == 1, "status: 14 granted, 1 refused")
    check(0 < st["map"]["used_bytes"] < st["map"]["size_bytes"],
          "status: map use")
    depts = {d["id"]: d for d in b.json("departments")["departments"]}
    check(sorted(depts) == sorted(DEPARTMENTS), "departments: all four")
    check(depts["market-supervision"]["publishes"] == 3 and
          depts["market-supervision"]["revokes"] == 1,
          "departments: market supervision published 3, revoked 1")
    check(depts["tax"]["requests_granted"] == 3 and
          depts["bank"]["requests_granted"] == 4 and
          depts["public-security"]["requests_refused"] == 1,
          "departments: requests per department")
    check(all(d["status"] == "active" and d["last_seen_ms"] > 0
              for d in depts.values()), "departments: active, seen")
    check(all(d["connected"] is False and d["connections"] == 0
              for d in depts.values()), "departments: none connected now")
    check(st["connected_departments"] == 0 and
          st["queues"] == {"workers": 0, "writer": 0, "answers": 0},
          "status: nobody connected, the queues empty")
    types = b.json("types")["types"]
    check(len(types) == 1 and types[0]["name"] == "business-licence" and
          types[0]["requests_granted"] == 10 and
          types[0]["issuers"] == ["market-supervision"],
          "types: business-licence with 10 granted requests")
    grants = b.json("grants")["grants"]
    check(sorted((g["requester"], g["purpose"]) for g in grants) ==
          sorted((w, p) for w, p, _ in GRANTS), "grants: the three")
    page = b.json("exchanges?limit=5")
    idx = [x["index"] for x in page["exchanges"]]
    check(idx == [14, 13, 12, 11, 10] and page["next_before"] == 10,
          "exchanges: newest first, paged by leaf index")
    older = b.json("exchanges?before=10&limit=100")["exchanges"]
    check([x["index"] for x in older] == list(range(9, -1, -1)),
          "exchanges: the next page")
    check(all("subject" not in json.dumps(x) for x in older + page["exchanges"]),
          "exchanges: never a subject")
    refused = [x for x in older + page["exchanges"]
               if x["decision"] == "refused"]
    check(len(refused) == 1 and refused[0]["error"] == "NO_GRANT" and
          refused[0]["department"] == "public-security",
          "exchanges: the one refusal")
    for bad in ("limit=0", "limit=101", "limit=abc", "before=-1",
                "before=99999999999999999999999"):
        check(b.get("/api/v1/exchanges?" + bad)[0] == 400,
              "exchanges?%s: 400" % bad)
    k = b.json("kpis")
    check(k["copies_avoided"]["total"] == 10, "kpis: 10 copies avoided")
    check(k["copies_avoided"]["per_type"] == {"business-licence": 10},
          "kpis: per type")
    check(k["copies_avoided"]["per_department"] ==
          {"tax": 3, "public-security": 3, "bank": 4},
          "kpis: per requesting department")
    check(sum(d["copies_avoided"] for d in k["copies_avoided"]["per_day"])
          == 10, "kpis: per day")
    check(abs(k["sharing_rate"] - 10 / 11) < 1e-9 and k["requests"] == 11,
          "kpis: sharing rate 10/11")
    check(k["refusals_by_code"] == {"NO_GRANT": 1}, "kpis: refusals by code")
    check(k["publish_freshness"]["count"] == 3, "kpis: freshness of 3")
    check(k["participation"] == {"registered": 4, "publishing": 1,
                                 "requesting": 3, "idle_30_days": 0},
          "kpis: participation")
    check(len(k["last_hour"]) == 60 and
          sum(m["granted"] + m["refused"] for m in k["last_hour"]) == 15,
          "kpis: the last hour holds the 15 exchanges")


def test_oncectl(b):
    ctl = os.environ["ONCECTL"]
    out = run(ctl, "--home", b.home, "status")
    check("copies avoided 10;" in out and "ready" in out and
          "15 leaves" in out, "oncectl status: " + out.splitlines()[0])
    check(re.search(r"^tax\s+active\s+0\s+3\s+0$", out, re.M) is not None,
          "oncectl status: the tax row")
    out = run(ctl, "--home", b.home, "top", "--iterations", "2",
              stdin=subprocess.DEVNULL)
    check(out.count("copies avoided 10;") == 2, "oncectl top: two screens")


def test_prometheus(b):
    prom = shutil.which("prometheus")
    if prom is None:
        print("skip prometheus: not installed (deploy/install-test-deps.sh)")
        return SKIP
    d = os.path.join(b.work, "prometheus")
    os.mkdir(d)
    port = free_port()
    token_file = os.path.join(b.home, "console.token")
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1s\n"
                "scrape_configs:\n  - job_name: once\n"
                "    authorization:\n      type: Bearer\n"
                "      credentials_file: %s\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                % (token_file, b.port))
    log = open(os.path.join(d, "log"), "w")
    p = subprocess.Popen([prom, "--config.file=" + os.path.join(d, "prometheus.yml"),
                          "--storage.tsdb.path=" + os.path.join(d, "data"),
                          "--web.listen-address=127.0.0.1:%d" % port],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        def copies():
            s, body = http("http://127.0.0.1:%d/api/v1/query?query="
                           "once_copies_avoided_total" % port)
            r = json.loads(body)["data"]["result"] if s == 200 else []
            return r[0]["value"][1] if r else None
        value = wait_for("Prometheus to scrape onced", copies, 90)
        check(value == "10", "prometheus scraped once_copies_avoided_total "
              "= 10 with the token")
        s, body = http("http://127.0.0.1:%d/api/v1/targets" % port)
        health = [t["health"] for t in json.loads(body)["data"]["activeTargets"]]
        check(health == ["up"], "prometheus: the target is up")
    finally:
        p.terminate()
        p.wait(30)
    return 0


def test_chromium(b):
    chrome = shutil.which("chromium")
    if chrome is None:
        print("skip chromium: not installed (deploy/install-test-deps.sh)")
        return SKIP
    profile = tempfile.mkdtemp(dir=b.work)
    r = subprocess.run(
        [chrome, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--user-data-dir=" + profile, "--virtual-time-budget=10000",
         "--dump-dom", b.base + "/#token=" + b.token],
        capture_output=True, text=True, timeout=120)
    dom = r.stdout

    def text(id_):
        m = re.search(r'id="%s"[^>]*>([^<]*)<' % re.escape(id_), dom)
        return m.group(1) if m else None
    check('data-state="live"' in dom, "chromium: the dashboard went live")
    check(text("copies-avoided") == "10", "chromium: copies avoided 10 "
          "(got %s)" % text("copies-avoided"))
    check(text("sharing-rate") == "90.9%", "chromium: sharing rate 90.9%")
    check(text("requests") == "11" and text("publishes") == "3",
          "chromium: 11 requests, 3 publishes")
    check(text("tree-size") == "15", "chromium: tree size 15")
    check(text("participation") == "1 / 3 / 0", "chromium: participation")
    check(text("health") == "ready", "chromium: ready")
    check(text("connected") == "0" and text("queue-workers") == "0" and
          text("queue-writer") == "0" and text("queue-answers") == "0",
          "chromium: nobody connected, the queues empty")
    check(dom.count("<tr><td>market-supervision</td>") == 1 and
          ">NO_GRANT<" in dom, "chromium: departments and refusals drawn")
    check(b.token not in dom, "chromium: the token is not in the page")
    return 0


def main():
    sections = sys.argv[1:] or ["core"]
    work = tempfile.mkdtemp(prefix="once-console-")
    b = Broker(work)
    rc = 0
    try:
        b.start()
        exchanges(b)
        if "core" in sections:
            test_access(b)
            test_startup(b)
            test_metrics(b)
            test_api(b)
            test_oncectl(b)
        if "prometheus" in sections:
            rc = test_prometheus(b) or rc
        if "chromium" in sections:
            rc = test_chromium(b) or rc
    finally:
        b.stop()
        # A clean stop, and no sanitizer report (ASan, UBSan and TSan
        # builds run this too; their reports go to onced's log).
        with open(os.path.join(work, "onced.log")) as f:
            said = f.read()
        check(b.proc is not None and b.proc.returncode == 0,
              "onced stopped cleanly (exit %s)" %
              (b.proc.returncode if b.proc else None))
        check("Sanitizer" not in said and "runtime error" not in said,
              "no sanitizer report in onced's log")
        if failures or os.environ.get("CONSOLE_KEEP"):
            print("kept " + work)
            with open(os.path.join(work, "onced.log")) as f:
                sys.stdout.write(f.read()[-4000:])
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("%d failed" % len(failures))
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
