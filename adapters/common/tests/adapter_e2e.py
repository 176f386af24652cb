"""What the adapters' end-to-end tests share: a real broker.

A broker home made with oncectl in a temp directory (as the C e2e tests
do), onced listening on an ipc:// socket in it, two departments
(market-supervision issues business licences, tax may request their name
and address for tax registration), valid subjects, and the schemas of
adapters/gateway/openapi.yaml (the spool writes the gateway's documents).
Used by adapters/gateway/tests/test_gateway.py and
adapters/spool/tests/test_spool.py, which import it from
ONCE_SOURCE_ROOT/adapters/common/tests.

Needs Debian's python3-jsonschema and python3-yaml (deploy/
install-test-deps.sh); without them the importing test is skipped (77).
Environment: ONCED, ONCECTL, ONCE_SOURCE_ROOT.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import jsonschema
    import yaml
except ImportError as e:  # pragma: no cover
    print("skipped: %s; run deploy/install-test-deps.sh" % e)
    sys.exit(77)

ONCED = os.environ["ONCED"]
ONCECTL = os.environ["ONCECTL"]
SOURCE = os.environ["ONCE_SOURCE_ROOT"]
OPENAPI_PATH = os.path.join(SOURCE, "adapters/gateway/openapi.yaml")
LICENCE = "business-licence"

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc(n):
    """A valid Unified Social Credit Code made from n (GB 32100)."""
    body = "91110108MA%07d" % n
    s = sum(ALPHABET.index(ch) * WEIGHTS[i] for i, ch in enumerate(body))
    return body + ALPHABET[(31 - s % 31) % 31]


def read(path):
    with open(path) as f:
        return f.read()


def wait_for(predicate, what, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Broker:
    """A broker home and its onced, in a temp directory of its own."""

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        self.home = os.path.join(self.dir, "home")
        self.sock = "ipc://%s/b.sock" % self.dir
        self.onced = None
        self.openapi_text = read(OPENAPI_PATH)
        self.openapi = yaml.safe_load(self.openapi_text)
        self.resolver = jsonschema.RefResolver.from_schema(self.openapi)

    def ctl(self, *args):
        return subprocess.run([ONCECTL, "--home", self.home] + list(args),
                              check=True, stdout=subprocess.PIPE,
                              text=True).stdout

    def setup_broker(self, skew_seconds=300):
        subprocess.run([ONCECTL, "init", self.home, "--listen", self.sock],
                       check=True, stdout=subprocess.DEVNULL)
        conf = os.path.join(self.home, "once.conf")
        text = read(conf).replace("skew_seconds = 300",
                                  "skew_seconds = %d" % skew_seconds)
        with open(conf, "w") as f:
            f.write(text)
        for dept in ("market-supervision", "tax"):
            key = os.path.join(self.dir, dept + ".key")
            subprocess.run([ONCECTL, "keygen", key], check=True,
                           stdout=subprocess.DEVNULL)
            self.ctl("dept", "add", dept, "--key", key + ".pub")
        self.ctl("type", "add", LICENCE, "--issuer", "market-supervision",
                 "--subject", "enterprise", "--fields",
                 "name,legal_representative,address")
        self.ctl("grant", "add", "--requester", "tax", "--type", LICENCE,
                 "--purpose", "tax-registration", "--fields", "name,address")
        self.start_broker()

    def start_broker(self):
        with open(os.path.join(self.dir, "onced.log"), "a") as log:
            # The console off: tests run in parallel, and every home
            # that oncectl init makes names the same console port.
            self.onced = subprocess.Popen([ONCED, "--home", self.home,
                                           "--console-listen="],
                                          stderr=log, stdout=log)
        wait_for(lambda: os.path.exists(self.sock[len("ipc://"):]),
                 "the broker's socket")

    def origin(self):
        """The broker's log origin, as its once.conf names it."""
        return re.search(r"^log_origin = (.*)$",
                         read(os.path.join(self.home, "once.conf")),
                         re.M).group(1)

    def write_config(self, section, name, dept, timeout_ms, own):
        """NAME.conf for dept's adapter: the shared keys (the state in
        NAME.state), then own, the adapter's own lines."""
        conf = os.path.join(self.dir, name + ".conf")
        with open(conf, "w") as f:
            f.write("[%s]\ndepartment = %s\nkey = %s.key\nbroker = %s\n"
                    "broker_key = home/broker.pub\nlog_origin = %s\n"
                    "state_directory = %s.state\ntimeout_ms = %d\n%s"
                    % (section, dept, dept, self.sock, self.origin(), name,
                       timeout_ms, own))
        return conf

    def log_size(self):
        out = self.ctl("log", "status")
        return int(re.search(r"log size\s+(\d+) leaves", out).group(1))

    def validate(self, doc, schema):
        jsonschema.Draft202012Validator(
            {"$ref": "#/components/schemas/" + schema},
            resolver=self.resolver).validate(doc)

    def close_broker(self, keep_variable):
        """Stops onced; removes the directory unless keep_variable is set
        in the environment."""
        if self.onced is not None and self.onced.poll() is None:
            self.onced.send_signal(signal.SIGCONT)
            self.onced.kill()
            self.onced.wait()
        if os.environ.get(keep_variable):
            print("kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
