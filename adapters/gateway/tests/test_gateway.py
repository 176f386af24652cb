#!/usr/bin/python3
"""End to end: a real onced, real once-gateways on 127.0.0.1, real HTTP.

The broker home is made with oncectl in a temp directory (as the C e2e
tests do), the broker listens on an ipc:// socket there, and two gateways
run beside it: market supervision's (it issues business licences) and
tax's (it may request their name and address for tax registration). Every
answer is checked against the schemas of adapters/gateway/openapi.yaml.

Covers every endpoint's happy path, the error mappings (HTTP's own: 401,
403, 404, 405, 413, 415, 400 naming the field; the broker's: NO_GRANT,
MISSING_PURPOSE, INVALID_SUBJECT, UNKNOWN_TYPE, NOT_FOUND, NOT_ISSUER,
STALE_VERSION; broker slow 504 and unreachable 503 with Retry-After; the
directory's back-off after a failed refresh, counted in /metrics), an
idempotent retry (same key and body: same answer, one version; another
body: 409), refused tokens, start-up refusals (tokens file others can
read, non-loopback without TLS), HTTPS, and SIGTERM finishing a call in
flight and exiting 0.

Run by meson (test gateway-e2e) with /usr/bin/python3, which sees
Debian's python3-requests, python3-jsonschema and python3-yaml
(deploy/install-test-deps.sh installs them). Environment: ONCED, ONCECTL,
ONCE_GATEWAY (the built programs), ONCE_SOURCE_ROOT; GATEWAY_TEST_KEEP=1 keeps the temp directory (the
logs of the broker and the gateways) and prints its path.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.environ["ONCE_SOURCE_ROOT"],
                                "adapters/common/tests"))
import adapter_e2e  # noqa: E402
from adapter_e2e import LICENCE, read, wait_for  # noqa: E402

try:
    import requests
    import yaml
except ImportError as e:  # pragma: no cover
    print("skipped: %s; run deploy/install-test-deps.sh" % e)
    sys.exit(77)

GATEWAY = os.environ["ONCE_GATEWAY"]

MARKET_TOKEN = "market-token-0123456789"
READER_TOKEN = "market-reader-0123456789"
TAX_TOKEN = "tax-token-0123456789abc"
TIMEOUT_MS = 1000
SUBJECTS = []


def uscc(n):
    """A valid subject, remembered: no log may hold it."""
    code = adapter_e2e.uscc(n)
    SUBJECTS.append(code)
    return code


class Env(adapter_e2e.GatewayBroker):
    """The broker home, the broker and the gateways of one run."""

    def __init__(self):
        super().__init__("gw-", TIMEOUT_MS)

    def close(self):
        super().close("GATEWAY_TEST_KEEP")


ENV = None


def setUpModule():
    global ENV
    ENV = Env()
    ENV.setup_broker()
    market = ENV.write_config(
        "market", "market-supervision",
        ["%s market-app *" % MARKET_TOKEN,
         "%s market-reader request" % READER_TOKEN],
        # The market's requests take pool connections one at a time, the
        # tax gateway's are pipelined (the default request_lanes = 1).
        extra="max_body_bytes = 4096\nrequest_lanes = 0\n")
    tax = ENV.write_config("tax", "tax",
                           ["%s tax-app request,catalogue,metrics,publish"
                            % TAX_TOKEN])
    ENV.market = ENV.start_gateway("market", market)
    ENV.tax = ENV.start_gateway("tax", tax)


def tearDownModule():
    ENV.close()


def auth(token):
    return {"Authorization": "Bearer " + token}


def publish(subject, body, token=MARKET_TOKEN, key=None, url=None,
            content_type="application/json"):
    headers = auth(token)
    headers["Content-Type"] = content_type
    if key is not None:
        headers["Idempotency-Key"] = key
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.put("%s/v1/records/%s/%s" % (url or ENV.market, LICENCE,
                                                 subject),
                        data=data, headers=headers, timeout=30)


def request(subject, purpose="tax-registration", case_id="TAX-1", url=None,
            token=TAX_TOKEN, record_type=LICENCE, user=None, **params):
    query = {"purpose": purpose, "case_id": case_id}
    query.update(params)
    headers = auth(token)
    if user is not None:
        # Bytes: the official's name is UTF-8, sent as it is.
        headers["Once-User"] = user.encode()
    return requests.get("%s/v1/records/%s/%s" % (url or ENV.tax, record_type,
                                                 subject),
                        params={k: v for k, v in query.items()
                                if v is not None},
                        headers=headers, timeout=30)


OFFICIAL = "zhang.wei \u5f20\u4f1f"


def leaf_user_suffix(user):
    """The end of a LogLeaf naming user: field 13 (key 0x6a), its length,
    its UTF-8 bytes, after every other field (fields in number order)."""
    raw = user.encode()
    return (bytes([0x6a, len(raw)]) + raw).hex()


FIELDS = {"name": "Acme Ltd", "legal_representative": "Zhang San",
          "address": "1 Chang'an Avenue"}


class Gateway(unittest.TestCase):

    def problem(self, r, status, code):
        self.assertEqual(r.status_code, status, r.text)
        self.assertEqual(r.headers["Content-Type"],
                         "application/problem+json")
        doc = r.json()
        ENV.validate(doc, "Problem")
        self.assertEqual(doc["code"], code, doc)
        self.assertEqual(doc["status"], status)
        codes = dict(ENV.openapi["x-once-error-status"])
        codes.update(ENV.openapi["x-gateway-error-status"])
        self.assertIn(code, codes)
        return doc

    def test_01_health_and_openapi(self):
        r = requests.get(ENV.market + "/v1/health", timeout=30)
        self.assertEqual(r.status_code, 200, r.text)
        ENV.validate(r.json(), "Health")
        r = requests.get(ENV.market + "/v1/openapi.yaml", timeout=30)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.text, ENV.openapi_text)
        self.assertEqual(yaml.safe_load(r.text)["openapi"], "3.1.0")

    def test_02_publish_request_revoke(self):
        subject = uscc(1)
        r = requests.put("%s/v1/records/%s/%s?proof=true"
                         % (ENV.market, LICENCE, subject),
                         json={"fields": FIELDS, "valid_from": "2026-01-01"},
                         headers=auth(MARKET_TOKEN), timeout=30)
        self.assertEqual(r.status_code, 201, r.text)
        doc = r.json()
        ENV.validate(doc, "WriteAnswer")
        self.assertTrue(doc["receipt"]["proof_verified"])
        self.assertEqual(doc["status"], "valid")
        self.assertEqual(doc["issuer"], "market-supervision")
        self.assertIn("version=%d" % doc["version"], r.headers["Location"])
        version = doc["version"]

        r = request(subject, proof="true", user=OFFICIAL)
        self.assertEqual(r.status_code, 200, r.text)
        rec = r.json()
        # The official of Once-User is in the request's leaf, which the
        # gateway checked against the signed checkpoint.
        self.assertTrue(rec["receipt"]["leaf"].endswith(
            leaf_user_suffix(OFFICIAL)), rec["receipt"]["leaf"])
        ENV.validate(rec, "RecordAnswer")
        # Only the granted fields, each checked against its digest.
        self.assertEqual(rec["fields"], {"name": "Acme Ltd",
                                         "address": "1 Chang'an Avenue"})
        self.assertEqual(rec["verified"]["disclosures"], 2)
        self.assertTrue(rec["verified"]["issuer_signature"])
        self.assertEqual(rec["version"], version)
        self.assertEqual(rec["valid_from"], 1767225600000)
        self.assertTrue(rec["receipt"]["proof_verified"])
        self.assertRegex(rec["receipt"]["checkpoint"], r"^\S+\n\d+\n")
        # Without Once-User the leaf names no official.
        r = request(subject, proof="true")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertNotIn(leaf_user_suffix(OFFICIAL),
                         r.json()["receipt"]["leaf"])

        r = requests.post("%s/v1/records/%s/%s/revocations"
                          % (ENV.market, LICENCE, subject),
                          json={"reason": "the company was dissolved"},
                          headers=auth(MARKET_TOKEN), timeout=30)
        self.assertEqual(r.status_code, 201, r.text)
        ENV.validate(r.json(), "WriteAnswer")
        self.assertEqual(r.json()["status"], "revoked")
        self.assertEqual(r.json()["reason"], "the company was dissolved")

        r = request(subject)
        self.assertEqual(r.status_code, 200, r.text)
        ENV.validate(r.json(), "RecordAnswer")
        self.assertEqual(r.json()["status"], "revoked")
        self.assertEqual(r.json()["fields"], {})
        # The reason reached the requester, signed into the revocation.
        self.assertEqual(r.json()["reason"], "the company was dissolved")

    def test_03_catalogue(self):
        r = requests.get(ENV.tax + "/v1/catalogue", headers=auth(TAX_TOKEN),
                         timeout=30)
        self.assertEqual(r.status_code, 200, r.text)
        doc = r.json()
        ENV.validate(doc, "Catalogue")
        self.assertEqual(doc["publish"], [])
        self.assertEqual(doc["request"], [{
            "type": LICENCE, "subject_kind": "enterprise",
            "purposes": [{"purpose": "tax-registration",
                          "fields": ["name", "address"]}]}])
        r = requests.get(ENV.market + "/v1/catalogue",
                         headers=auth(MARKET_TOKEN), timeout=30)
        ENV.validate(r.json(), "Catalogue")
        self.assertEqual(r.json()["publish"][0]["type"], LICENCE)
        self.assertEqual(r.json()["request"], [])

    def test_04_idempotent_retry(self):
        subject = uscc(2)
        body = {"fields": FIELDS}
        first = publish(subject, body, key="order-42")
        self.assertEqual(first.status_code, 201, first.text)
        again = publish(subject, body, key="order-42")
        self.assertEqual(again.status_code, 201, again.text)
        self.assertEqual(again.json(), first.json())
        # One version: the latest is the first answer's.
        self.assertEqual(request(subject).json()["version"],
                         first.json()["version"])
        other = publish(subject, {"fields": {"name": "Other"}},
                        key="order-42")
        self.problem(other, 409, "IDEMPOTENCY_CONFLICT")
        # Keys are per caller: the reader's order-42 is another key (and
        # the reader may not publish).
        self.problem(publish(subject, body, token=READER_TOKEN,
                             key="order-42"), 403, "FORBIDDEN")

    def test_05_refused_tokens(self):
        subject = uscc(3)
        r = requests.get("%s/v1/records/%s/%s" % (ENV.tax, LICENCE, subject),
                         timeout=30)
        self.problem(r, 401, "UNAUTHORIZED")
        self.problem(request(subject, token="not-a-token-at-all-0000"), 401,
                     "UNAUTHORIZED")
        self.problem(publish(subject, {"fields": FIELDS},
                             token=READER_TOKEN), 403, "FORBIDDEN")
        r = requests.get(ENV.market + "/metrics", headers=auth(READER_TOKEN),
                         timeout=30)
        self.problem(r, 403, "FORBIDDEN")

    def test_06_http_refusals(self):
        subject = uscc(4)
        self.problem(publish(subject, "name=x", content_type="text/plain"),
                     415, "UNSUPPORTED_MEDIA_TYPE")
        self.problem(publish(subject, "{\"fields\": "), 400,
                     "INVALID_ARGUMENT")
        doc = self.problem(publish(subject, {"fields": {"name": 7}}), 400,
                           "INVALID_ARGUMENT")
        self.assertIn("fields.name", doc["detail"])
        doc = self.problem(publish(subject, {"fields": FIELDS,
                                             "valid_untill": "2030-01-01"}),
                           400, "INVALID_ARGUMENT")
        self.assertIn("valid_untill", doc["detail"])
        doc = self.problem(publish(subject, {"fields": FIELDS,
                                             "valid_from": "2026-02-31"}),
                           400, "INVALID_ARGUMENT")
        self.assertIn("valid_from", doc["detail"])
        big = {"fields": {"name": "x" * 8000}}
        self.problem(publish(subject, big), 413, "TOO_LARGE")
        r = requests.get(ENV.market + "/v1/nothing", timeout=30)
        self.problem(r, 404, "NO_ROUTE")
        r = requests.delete("%s/v1/records/%s/%s" % (ENV.market, LICENCE,
                                                     subject), timeout=30)
        self.problem(r, 405, "METHOD_NOT_ALLOWED")
        self.problem(request(subject, version="x"), 400, "INVALID_ARGUMENT")
        # A reason the broker would refuse in the signed header.
        r = requests.post("%s/v1/records/%s/%s/revocations"
                          % (ENV.market, LICENCE, subject),
                          json={"reason": "gone \u202e"},
                          headers=auth(MARKET_TOKEN), timeout=30)
        doc = self.problem(r, 400, "INVALID_ARGUMENT")
        self.assertIn("reason", doc["detail"])

    def test_07_broker_refusals(self):
        subject = uscc(5)
        self.assertEqual(publish(subject, {"fields": FIELDS,
                                           "version": 5}).status_code, 201)
        self.problem(publish(subject, {"fields": FIELDS, "version": 3}), 409,
                     "STALE_VERSION")
        self.problem(request(subject, purpose="curiosity"), 403, "NO_GRANT")
        # Once-User under the text rules and the size limit of the
        # protocol; refused before anything is sent.
        self.problem(request(subject, user="zhang\twei"), 400,
                     "INVALID_TEXT")
        self.problem(request(subject, user="u" * 129), 413, "TOO_LARGE")
        self.problem(request(subject, user=""), 400, "INVALID_ARGUMENT")
        self.assertEqual(request(subject, user="u" * 128).status_code, 200)
        self.problem(request(subject, case_id=None), 400, "MISSING_PURPOSE")
        self.problem(request("91110108MA0000000X"), 400, "INVALID_SUBJECT")
        self.problem(request(subject, record_type="no-such-type"), 404,
                     "UNKNOWN_TYPE")
        self.problem(request(uscc(6)), 404, "NOT_FOUND")
        self.problem(publish(uscc(7), {"fields": FIELDS}, token=TAX_TOKEN,
                             url=ENV.tax), 403, "NOT_ISSUER")
        self.problem(publish(uscc(8), {"fields": {"colour": "red"}}), 422,
                     "INVALID_RECORD")

    def test_08_metrics_and_log(self):
        r = requests.get(ENV.tax + "/metrics", headers=auth(TAX_TOKEN),
                         timeout=30)
        self.assertEqual(r.status_code, 200)
        self.assertIn('once_gateway_requests_total{route="request",'
                      'status="200"}', r.text)
        self.assertIn('once_gateway_request_duration_seconds_bucket{'
                      'route="request",le="+Inf"}', r.text)
        for name, (_, _, log_path) in ENV.gateways.items():
            text = read(log_path)
            self.assertIn("access caller=", text)
            for s in SUBJECTS:
                self.assertNotIn(s, text, "a subject in %s's log" % name)

    def test_09_start_refusals(self):
        conf = ENV.write_config("open", "tax", ["%s x request" % TAX_TOKEN],
                                tokens_mode=0o644)
        r = subprocess.run([GATEWAY, "--config", conf], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("chmod 600", r.stderr)
        conf = ENV.write_config("wide", "tax", ["%s x request" % TAX_TOKEN],
                                listen="0.0.0.0:0")
        r = subprocess.run([GATEWAY, "--config", conf], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("without TLS", r.stderr)
        r = subprocess.run([GATEWAY, "--help"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--config", r.stdout)

    @unittest.skipIf(shutil.which("openssl") is None, "no openssl")
    def test_10_tls(self):
        cert = os.path.join(ENV.dir, "cert.pem")
        key = os.path.join(ENV.dir, "cert.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"], check=True,
                       capture_output=True)
        conf = ENV.write_config("tls", "tax", ["%s x request" % TAX_TOKEN],
                                extra="tls_certificate = cert.pem\n"
                                      "tls_key = cert.key\n")
        url = ENV.start_gateway("tls", conf, scheme="https")
        r = requests.get(url + "/v1/health", verify=cert, timeout=30)
        self.assertEqual(r.status_code, 200, r.text)

    def test_11_broker_slow_then_unreachable(self):
        subject = uscc(9)
        self.assertEqual(publish(subject, {"fields": FIELDS}).status_code,
                         201)
        self.assertEqual(request(subject).status_code, 200)
        ENV.onced.send_signal(signal.SIGSTOP)
        try:
            # The broker answered a moment ago: slow, 504.
            self.problem(request(subject), 504, "TIMEOUT")
            # Nothing for two timeouts now: unreachable, 503.
            r = request(subject)
            self.problem(r, 503, "UNAVAILABLE")
            self.assertIn("Retry-After", r.headers)
            r = requests.get(ENV.tax + "/v1/health", timeout=30)
            doc = self.problem(r, 503, "UNAVAILABLE")
            self.assertTrue(any("broker" in p for p in doc["problems"]))
        finally:
            ENV.onced.send_signal(signal.SIGCONT)
        wait_for(lambda: request(subject).status_code == 200,
                 "the broker to answer again")

    def test_12_retry_after_a_lost_answer(self):
        # The broker stops answering while the publish is in flight: the
        # caller gets 504 and the signed envelope stays in the state. The
        # retry with the same key sends the same bytes; whether or not the
        # broker had stored the first, there is one version.
        subject = uscc(11)
        # The market gateway has just heard from the broker (a refusal).
        self.assertEqual(request(uscc(12), url=ENV.market,
                                 token=MARKET_TOKEN).status_code, 403)
        ENV.onced.send_signal(signal.SIGSTOP)
        try:
            self.problem(publish(subject, {"fields": FIELDS}, key="lost-1"),
                         504, "TIMEOUT")
        finally:
            ENV.onced.send_signal(signal.SIGCONT)
        retry = wait_for(lambda: (lambda r: r if r.status_code == 201
                                  else None)(
            publish(subject, {"fields": FIELDS}, key="lost-1")),
            "the retry to be answered")
        rec = request(subject)
        self.assertEqual(rec.status_code, 200, rec.text)
        self.assertEqual(rec.json()["version"], retry.json()["version"])

    def test_13_state_survives_a_restart(self):
        subject = uscc(13)
        first = publish(subject, {"fields": FIELDS}, key="restart-1")
        self.assertEqual(first.status_code, 201, first.text)
        proc, _, _ = ENV.gateways["market"]
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(60), 0)
        ENV.market = ENV.start_gateway(
            "market", os.path.join(ENV.dir, "market.conf"))
        again = publish(subject, {"fields": FIELDS}, key="restart-1")
        self.assertEqual(again.status_code, 201, again.text)
        self.assertEqual(again.json(), first.json())
        self.problem(publish(subject, {"fields": {"name": "x"}},
                             key="restart-1"), 409, "IDEMPOTENCY_CONFLICT")

    def test_14_sigterm_finishes_in_flight(self):
        import threading
        subject = uscc(10)
        self.assertEqual(publish(subject, {"fields": FIELDS}).status_code,
                         201)
        proc, url, _ = ENV.gateways["tax"]
        answers = []
        ENV.onced.send_signal(signal.SIGSTOP)
        t = threading.Thread(target=lambda: answers.append(
            request(subject, url=url)))
        t.start()
        time.sleep(0.3)  # let the call reach the broker
        proc.send_signal(signal.SIGTERM)
        ENV.onced.send_signal(signal.SIGCONT)
        t.join(60)
        self.assertEqual(proc.wait(60), 0)
        self.assertEqual(len(answers), 1)
        self.assertIn(answers[0].status_code, (200, 504))

    def test_13b_pipelined_requests(self):
        # Many callers at once on the tax gateway's one request lane:
        # grants and refusals in flight together, each caller gets the
        # answer to its own request.
        import threading
        subjects = [uscc(40 + i) for i in range(6)]
        for s in subjects:
            self.assertEqual(publish(s, {"fields": FIELDS}).status_code, 201)
        missing = uscc(49)
        calls = []
        for i in range(48):
            s = subjects[i % len(subjects)]
            if i % 8 == 3:
                calls.append((s, "curiosity", 403, "NO_GRANT"))
            elif i % 8 == 5:
                calls.append((missing, "tax-registration", 404, "NOT_FOUND"))
            else:
                calls.append((s, "tax-registration", 200, None))
        answers = [None] * len(calls)

        def call(i):
            s, purpose, _, _ = calls[i]
            answers[i] = request(s, purpose=purpose, case_id="TAX-%d" % i)

        threads = [threading.Thread(target=call, args=(i,))
                   for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for (s, _, status, code), r in zip(calls, answers):
            self.assertIsNotNone(r)
            if code is None:
                self.assertEqual(r.status_code, 200, r.text)
                self.assertEqual(r.json()["subject"], s)
                self.assertEqual(r.json()["fields"]["name"], "Acme Ltd")
            else:
                self.problem(r, status, code)

    def test_16_directory_backoff(self):
        # A gateway that starts with the broker stopped has no directory,
        # and its first refresh fails after a timeout. Calls in the
        # back-off that follows are refused at once (503) instead of each
        # waiting a timeout for another refresh: counted, not timed, by
        # the refreshes /metrics reports (before the back-off: one more
        # per call). /v1/health says the broker is unreachable meanwhile.
        conf = ENV.write_config(
            "backoff", "tax",
            ["%s tax-app request,catalogue,metrics" % TAX_TOKEN])
        calls = 10
        ENV.onced.send_signal(signal.SIGSTOP)
        try:
            url = ENV.start_gateway("backoff", conf)
            for _ in range(calls):
                r = requests.get(url + "/v1/catalogue",
                                 headers=auth(TAX_TOKEN), timeout=30)
                self.problem(r, 503, "UNAVAILABLE")
            metrics = requests.get(url + "/metrics", headers=auth(TAX_TOKEN),
                                   timeout=30).text
            failed = int(re.search(
                r'^once_gateway_directory_refreshes_total\{result="failed"\}'
                r' (\d+)$', metrics, re.M).group(1))
            # One at start, then at most one per back-off interval (1 s,
            # 2 s, 4 s, ... between failures of a second each).
            self.assertGreaterEqual(failed, 1)
            self.assertLessEqual(failed, 3, metrics)
            r = requests.get(url + "/v1/health", timeout=30)
            doc = self.problem(r, 503, "UNAVAILABLE")
            self.assertTrue(any(p.startswith("broker unreachable")
                                for p in doc["problems"]), doc)
        finally:
            ENV.onced.send_signal(signal.SIGCONT)
        # After the back-off the next call refreshes, and it all works.
        wait_for(lambda: requests.get(url + "/v1/catalogue",
                                      headers=auth(TAX_TOKEN),
                                      timeout=30).status_code == 200,
                 "the directory after the back-off")
        self.assertEqual(requests.get(url + "/v1/health",
                                      timeout=30).status_code, 200)
        metrics = requests.get(url + "/metrics", headers=auth(TAX_TOKEN),
                               timeout=30).text
        self.assertRegex(metrics, r'(?m)^once_gateway_directory_refreshes_'
                                  r'total\{result="ok"\} [1-9]')

    def test_99_no_sanitizer_reports(self):
        # Under ASan+UBSan a report in a gateway's or the broker's log is
        # a failure, also when the process went on.
        logs = [path for _, _, path in ENV.gateways.values()]
        logs.append(os.path.join(ENV.dir, "onced.log"))
        for path in logs:
            text = read(path)
            self.assertNotIn("runtime error", text, path)
            self.assertNotIn("Sanitizer", text, path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
