#!/usr/bin/python3
"""The examples of adapters/examples/, run as a department would run them.

A real onced and two real once-gateways on 127.0.0.1, started by the
adapters' shared harness (adapters/common/tests/adapter_e2e.py, as
gateway-e2e starts them): market supervision's (it issues business
licences) and tax's (it may request their name and address for tax
registration). Then:

  - curl-walkthrough.sh, all seven steps (catalogue, publish, an
    idempotent retry, request, revoke, request answered revoked, a refused
    token), must exit 0, and the broker's log must hold one publish for
    the two PUTs;
  - python/tax_registration.py requests a published licence and prints
    what it would use, checked (status, the granted fields, the receipt's
    leaf index); and each refusal maps to its documented exit status: a
    licence never published (4), a revoked one (4), an invalid subject
    (2), a wrong token (3), the broker stopped (5, after its retries);
    --batch over several cases;
  - no sanitizer report in the gateways' or the broker's log.

Run by meson (test examples-e2e) with /usr/bin/python3 (Debian's
python3-requests). Environment: ONCED, ONCECTL, ONCE_GATEWAY,
ONCE_SOURCE_ROOT; EXAMPLES_TEST_KEEP=1 keeps the temp directory.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import unittest

SOURCE = os.environ["ONCE_SOURCE_ROOT"]
sys.path.insert(0, os.path.join(SOURCE, "adapters/common/tests"))
import adapter_e2e  # noqa: E402
from adapter_e2e import LICENCE, uscc  # noqa: E402

try:
    import requests
except ImportError as e:  # pragma: no cover
    print("skipped: %s; run deploy/install-test-deps.sh" % e)
    sys.exit(77)

EXAMPLES = os.path.join(SOURCE, "adapters/examples")
WALKTHROUGH = os.path.join(EXAMPLES, "curl-walkthrough.sh")
TAX_REGISTRATION = os.path.join(EXAMPLES, "python/tax_registration.py")
MARKET_TOKEN = "market-token-0123456789"
TAX_TOKEN = "tax-token-0123456789abc"
FIELDS = {"name": "Acme Ltd", "legal_representative": "Zhang San",
          "address": "1 Chang'an Avenue"}
ENV = None


def setUpModule():
    global ENV
    ENV = adapter_e2e.GatewayBroker("ex-", 1000)
    ENV.setup_broker()
    ENV.market = ENV.start_gateway("market", ENV.write_config(
        "market", "market-supervision", ["%s market-app *" % MARKET_TOKEN]))
    ENV.tax = ENV.start_gateway("tax", ENV.write_config(
        "tax", "tax", ["%s tax-app request,catalogue" % TAX_TOKEN]))
    ENV.token_file = os.path.join(ENV.dir, "tax.token")
    with open(ENV.token_file, "w") as f:
        f.write(TAX_TOKEN + "\n")
    os.chmod(ENV.token_file, 0o600)


def tearDownModule():
    ENV.close("EXAMPLES_TEST_KEEP")


def publish(subject):
    r = requests.put("%s/v1/records/%s/%s" % (ENV.market, LICENCE, subject),
                     json={"fields": FIELDS}, timeout=30,
                     headers={"Authorization": "Bearer " + MARKET_TOKEN})
    assert r.status_code == 201, r.text


def tax_registration(*args, token_file=None):
    return subprocess.run(
        ["/usr/bin/python3", TAX_REGISTRATION, "--gateway", ENV.tax,
         "--token-file", token_file or ENV.token_file, "--retries", "1"]
        + list(args), capture_output=True, text=True, timeout=120)


class Examples(unittest.TestCase):

    @unittest.skipIf(shutil.which("curl") is None, "no curl")
    def test_1_curl_walkthrough(self):
        subject = uscc(100)
        before = ENV.log_size()
        env = dict(os.environ, MARKET_URL=ENV.market,
                   MARKET_TOKEN=MARKET_TOKEN, TAX_URL=ENV.tax,
                   TAX_TOKEN=TAX_TOKEN)
        r = subprocess.run(["bash", WALKTHROUGH, subject], env=env,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("all 7 steps answered as expected", r.stdout)
        self.assertIn("HTTP 401", r.stdout)
        self.assertNotIn(TAX_TOKEN, r.stdout)
        # Leaves: the catalogue asks nothing of the log; one publish (the
        # retry is the same envelope), two requests, one revocation, and
        # the refused token never reached the broker.
        self.assertEqual(ENV.log_size() - before, 4)
        r = subprocess.run(["bash", WALKTHROUGH, "--help"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertIn("MARKET_URL", r.stdout)

    def test_2_tax_registration_uses_a_licence(self):
        subject = uscc(101)
        publish(subject)
        r = tax_registration("--case-id", "TAX-2026-0101", subject)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.fullmatch(r"case TAX-2026-0101: register Acme Ltd, legal "
                         r"representative -, at 1 Chang'an Avenue \(licence "
                         r"version \d+ by market-supervision, log leaf "
                         r"(\d+)\)\n", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertLess(int(m.group(1)), ENV.log_size())

    def test_3_batch(self):
        subjects = [uscc(110 + i) for i in range(3)]
        for s in subjects:
            publish(s)
        batch = os.path.join(ENV.dir, "cases.txt")
        with open(batch, "w") as f:
            for i, s in enumerate(subjects):
                f.write("%s TAX-2026-%04d\n" % (s, 110 + i))
        r = tax_registration("--batch", batch, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "tax_registration: 3 licences checked "
                                   "and used\n")

    def test_4_refusals_map_to_exit_statuses(self):
        never = uscc(120)
        r = tax_registration("--case-id", "TAX-1", never)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("NOT_FOUND (HTTP 404)", r.stderr)
        self.assertNotIn(never, r.stderr)
        r = tax_registration("--case-id", "TAX-1", "91110108MA0000000X")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("INVALID_SUBJECT (HTTP 400)", r.stderr)
        wrong = os.path.join(ENV.dir, "wrong.token")
        with open(wrong, "w") as f:
            f.write("not-a-token-of-this-gateway\n")
        r = tax_registration("--case-id", "TAX-1", never, token_file=wrong)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("UNAUTHORIZED (HTTP 401)", r.stderr)

        revoked = uscc(121)
        publish(revoked)
        r = requests.post("%s/v1/records/%s/%s/revocations"
                          % (ENV.market, LICENCE, revoked),
                          json={"reason": "dissolved"}, timeout=30,
                          headers={"Authorization": "Bearer " + MARKET_TOKEN})
        self.assertEqual(r.status_code, 201, r.text)
        r = tax_registration("--case-id", "TAX-2", revoked)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("revoked", r.stderr)

    def test_5_broker_stopped(self):
        subject = uscc(130)
        publish(subject)
        ENV.onced.send_signal(signal.SIGSTOP)
        try:
            r = tax_registration("--case-id", "TAX-3", subject)
        finally:
            ENV.onced.send_signal(signal.SIGCONT)
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertRegex(r.stderr, r"(UNAVAILABLE \(HTTP 503\)|TIMEOUT "
                                   r"\(HTTP 504\))")

    def test_9_no_sanitizer_reports(self):
        # Under ASan+UBSan a report in a gateway's or the broker's log is
        # a failure, also when the process went on.
        logs = [log for _, _, log in ENV.gateways.values()]
        logs.append(os.path.join(ENV.dir, "onced.log"))
        for log in logs:
            text = adapter_e2e.read(log)
            self.assertNotIn("runtime error", text, log)
            self.assertNotIn("Sanitizer", text, log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
