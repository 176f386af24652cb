"""What the adapters' end-to-end tests share: a real broker.

A broker home made with oncectl in a temp directory (as the C e2e tests
do), onced listening on an ipc:// socket in it, two departments
(market-supervision issues business licences, tax may request their name
and address for tax registration), valid subjects, and the schemas of
adapters/gateway/openapi.yaml (the spool writes the gateway's documents).
Used by adapters/gateway/tests/test_gateway.py,
adapters/spool/tests/test_spool.py and
adapters/examples/tests/test_examples.py, which import it from
ONCE_SOURCE_ROOT/adapters/common/tests. Gateways (below the broker) start
with a tokens file and port 0, their bound port read from their log.

Needs Debian's python3-jsonschema and python3-yaml (deploy/
install-test-deps.sh); without them the importing test is skipped (77).
Environment: ONCED, ONCECTL, ONCE_SOURCE_ROOT; ONCE_GATEWAY for the
gateways.
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

    def setup_broker(self, skew_seconds=300, extra_departments=()):
        subprocess.run([ONCECTL, "init", self.home, "--listen", self.sock],
                       check=True, stdout=subprocess.DEVNULL)
        conf = os.path.join(self.home, "once.conf")
        text = read(conf).replace("skew_seconds = 300",
                                  "skew_seconds = %d" % skew_seconds)
        with open(conf, "w") as f:
            f.write(text)
        for dept in ("market-supervision", "tax") + tuple(extra_departments):
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


class GatewayBroker(Broker):
    """A broker and once-gateways beside it, each with its tokens file and
    its log in the broker's temp directory."""

    def __init__(self, prefix, timeout_ms):
        super().__init__(prefix)
        self.timeout_ms = timeout_ms
        self.gateways = {}

    def write_config(self, name, dept, tokens, extra="", listen="127.0.0.1:0",
                     tokens_mode=0o600):
        """NAME.conf and NAME.tokens (lines "TOKEN CALLER OPS")."""
        tokens_path = os.path.join(self.dir, name + ".tokens")
        with open(tokens_path, "w") as f:
            f.write("# token caller operations\n")
            for line in tokens:
                f.write(line + "\n")
        os.chmod(tokens_path, tokens_mode)
        return super().write_config(
            "gateway", name, dept, self.timeout_ms,
            "listen = %s\ntokens = %s.tokens\n%s" % (listen, name, extra))

    def start_gateway(self, name, conf, scheme="http"):
        """Starts os.environ["ONCE_GATEWAY"] on conf; its URL."""
        log_path = os.path.join(self.dir, name + ".log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([os.environ["ONCE_GATEWAY"], "--config",
                                     conf], stderr=log, stdout=log)

        def port():
            m = re.search(r"port (\d+)", read(log_path))
            if proc.poll() is not None:
                raise AssertionError("gateway %s exited: %s"
                                     % (name, read(log_path)))
            return m and int(m.group(1))
        url = "%s://127.0.0.1:%d" % (scheme, wait_for(port, name + "'s port"))
        self.gateways[name] = (proc, url, log_path)
        return url

    def close(self, keep_variable):
        for proc, _, _ in self.gateways.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.close_broker(keep_variable)
