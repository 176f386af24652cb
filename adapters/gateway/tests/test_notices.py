#!/usr/bin/python3
"""End to end: subscriptions and the long poll of notices through
once-gateway (adapters/gateway/notices.c), with a real onced.

Three gateways: market supervision's (issues business licences), tax's
(holds a grant on them) and bank's (a department without a grant). Tax
subscribes over REST, a caller waits in GET /v1/notices, market
publishes and revokes, and the long poll returns the notices; bank can
neither subscribe nor gets anything. POST /v1/notices/ack moves the
department's cursor, and the broker prunes the events below it. Every answer is checked against
openapi.yaml's schemas. Run by meson (test gateway-notices-e2e), with the
environment of gateway-e2e (test_gateway.py, whose Env it uses).
"""
import hashlib
import hmac
import http.server
import json
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.environ["ONCE_SOURCE_ROOT"],
                                "adapters/common/tests"))
import test_gateway  # noqa: E402
from adapter_e2e import LICENCE, read, wait_for  # noqa: E402
from test_gateway import (FIELDS, MARKET_TOKEN, TAX_TOKEN,  # noqa: E402
                          auth, publish, requests, uscc)

BANK_TOKEN = "bank-token-0123456789abc"
TAX_READER = "tax-reader-0123456789abc"
ENV = None


def setUpModule():
    global ENV
    ENV = test_gateway.Env()
    test_gateway.ENV = ENV
    ENV.setup_broker(extra_departments=("bank",))
    market = ENV.write_config("market", "market-supervision",
                              ["%s market-app *" % MARKET_TOKEN])
    tax = ENV.write_config("tax", "tax",
                           ["%s tax-app request,notices,metrics" % TAX_TOKEN,
                            "%s tax-reader request" % TAX_READER])
    bank = ENV.write_config("bank", "bank", ["%s bank-app *" % BANK_TOKEN])
    ENV.market = ENV.start_gateway("market", market)
    ENV.tax = ENV.start_gateway("tax", tax)
    ENV.bank = ENV.start_gateway("bank", bank)


def tearDownModule():
    ENV.close()
    if RECEIVER is not None:
        RECEIVER.shutdown()


SECRET = b"webhook-secret-0123456789abcdef"
RECEIVER = None


def verify(secret, header, body, max_age=300):
    """The check docs/ADAPTERS.md gives a receiver."""
    fields = dict(item.split("=", 1) for item in header.split(","))
    signed = fields["t"].encode() + b"." + body
    expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
    return (hmac.compare_digest(expected, fields["v1"])
            and abs(time.time() - int(fields["t"])) <= max_age)


class Receiver(http.server.BaseHTTPRequestHandler):
    """Answers /retry with 500 the first time it sees a leaf, then 200;
    /fail always with 500. Keeps (path, leaf, status, signature ok)."""
    seen = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verify(SECRET, self.headers["Once-Signature"], body)
        leaf = json.loads(body)["notices"][0]["leaf_index"]
        with Receiver.lock:
            first = not any(p == self.path and k == leaf
                            for p, k, _, _, _ in Receiver.seen)
            status = 500 if self.path == "/fail" or first else 200
            Receiver.seen.append((self.path, leaf, status, ok,
                                  json.loads(body)))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


def deliveries(path, leaf):
    with Receiver.lock:
        return [s for p, k, s, _, _ in Receiver.seen
                if p == path and k == leaf]


def start_hook(name, url_path, extra=""):
    secret = os.path.join(ENV.dir, "hook.secret")
    if not os.path.exists(secret):
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600),
                  "wb") as f:
            f.write(SECRET + b"\n")
    conf = ENV.write_config(
        name, "tax", ["%s hook-admin *" % TAX_TOKEN],
        extra="notice_webhook = http://127.0.0.1:%d%s\n"
              "notice_webhook_secret_file = hook.secret\n%s"
        % (RECEIVER.server_address[1], url_path, extra))
    return ENV.start_gateway(name, conf)


def acked(url):
    return call("GET", url, "/v1/subscriptions", TAX_TOKEN).json()["acked"]


def call(method, url, path, token, **kw):
    return requests.request(method, url + path, headers=auth(token),
                            timeout=60, **kw)


def poll(url, token, after, wait):
    return call("GET", url, "/v1/notices", token,
                params={"after": after, "wait": wait})


class Notices(unittest.TestCase):

    def problem(self, r, status, code):
        self.assertEqual(r.status_code, status, r.text)
        self.assertEqual(r.json()["code"], code, r.text)
        ENV.validate(r.json(), "Problem")

    def test_01_subscribe_list_cancel(self):
        path = "/v1/subscriptions/types/" + LICENCE
        r = call("PUT", ENV.tax, path, TAX_TOKEN)
        self.assertEqual(r.status_code, 200, r.text)
        ENV.validate(r.json(), "SubscriptionAnswer")
        self.assertEqual(r.json()["subscription"],
                         {"scope": "type", "type": LICENCE})
        r = call("PUT", ENV.tax, "/v1/subscriptions/held", TAX_TOKEN)
        self.assertEqual(r.status_code, 200, r.text)
        r = call("GET", ENV.tax, "/v1/subscriptions", TAX_TOKEN)
        self.assertEqual(r.status_code, 200, r.text)
        ENV.validate(r.json(), "SubscriptionList")
        scopes = sorted(s["scope"] for s in r.json()["subscriptions"])
        self.assertEqual(scopes, ["held", "type"])
        r = call("DELETE", ENV.tax, "/v1/subscriptions/held", TAX_TOKEN)
        self.assertEqual(r.status_code, 200, r.text)
        ENV.validate(r.json(), "SubscriptionAnswer")
        self.assertFalse(r.json()["active"])
        self.problem(call("DELETE", ENV.tax, "/v1/subscriptions/held",
                          TAX_TOKEN), 404, "NOT_FOUND")
        subject = uscc(900)
        r = call("PUT", ENV.tax, "/v1/subscriptions/subjects/%s/%s"
                 % (LICENCE, subject), TAX_TOKEN)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["subscription"]["subject"], subject)
        self.assertEqual(call("DELETE", ENV.tax, "/v1/subscriptions/subjects/"
                              "%s/%s" % (LICENCE, subject),
                              TAX_TOKEN).status_code, 200)

    def test_02_refusals(self):
        # A department without a grant cannot subscribe.
        self.problem(call("PUT", ENV.bank, "/v1/subscriptions/types/"
                          + LICENCE, BANK_TOKEN), 403, "NO_GRANT")
        # A token without the notices operation.
        self.problem(call("GET", ENV.tax, "/v1/notices", TAX_READER), 403,
                     "FORBIDDEN")
        self.problem(call("GET", ENV.tax, "/v1/notices?wait=31", TAX_TOKEN),
                     400, "INVALID_ARGUMENT")
        self.problem(call("GET", ENV.tax, "/v1/notices?after=x", TAX_TOKEN),
                     400, "INVALID_ARGUMENT")
        self.problem(call("POST", ENV.tax, "/v1/notices", TAX_TOKEN,
                          json={}), 405, "METHOD_NOT_ALLOWED")
        self.problem(call("GET", ENV.tax, "/v1/subscriptions/nope/x",
                          TAX_TOKEN), 404, "NO_ROUTE")

    def test_03_long_poll_gets_the_revocation(self):
        r = call("PUT", ENV.tax, "/v1/subscriptions/types/" + LICENCE,
                 TAX_TOKEN)
        self.assertEqual(r.status_code, 200, r.text)
        start = r.json()["receipt"]["leaf_index"]
        subject = uscc(901)
        answers = []

        def wait_for_revocation():
            after = start
            while not any(n["event"] == "revoked" and n["subject"] == subject
                          for a in answers for n in a["notices"]):
                r = poll(ENV.tax, TAX_TOKEN, after, 30)
                self.assertEqual(r.status_code, 200, r.text)
                ENV.validate(r.json(), "NoticeList")
                answers.append(r.json())
                after = r.json()["next_after"]
        waiter = threading.Thread(target=wait_for_revocation)
        waiter.start()
        self.assertEqual(publish(subject, {"fields": FIELDS}).status_code,
                         201)
        r = requests.post("%s/v1/records/%s/%s/revocations"
                          % (ENV.market, LICENCE, subject),
                          json={"reason": "struck off"},
                          headers=auth(MARKET_TOKEN), timeout=30)
        self.assertEqual(r.status_code, 201, r.text)
        waiter.join(120)
        self.assertFalse(waiter.is_alive())
        notices = [n for a in answers for n in a["notices"]]
        self.assertEqual([n["event"] for n in notices
                          if n["subject"] == subject],
                         ["new_version", "revoked"])
        self.assertTrue(all(n["leaf_index"] > start for n in notices))
        # The cursor is the caller's: after the last next_after, nothing.
        r = poll(ENV.tax, TAX_TOKEN, answers[-1]["next_after"], 0)
        self.assertEqual(r.json()["notices"], [])
        # From the start again: the same notices (the gateway acked none).
        r = poll(ENV.tax, TAX_TOKEN, start, 0)
        self.assertEqual([n["leaf_index"] for n in r.json()["notices"]],
                         [n["leaf_index"] for n in notices])
        # A department without a grant gets nothing, from the beginning.
        r = poll(ENV.bank, BANK_TOKEN, 0, 1)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["notices"], [])

    def test_04_webhook_retried_then_acked(self):
        global RECEIVER
        RECEIVER = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                   Receiver)
        threading.Thread(target=RECEIVER.serve_forever, daemon=True).start()
        hook = start_hook("hook", "/retry",
                          "notice_webhook_backoff_ms = 100\n")
        subject = uscc(902)
        self.assertEqual(publish(subject, {"fields": FIELDS}).status_code,
                         201)
        r = requests.post("%s/v1/records/%s/%s/revocations"
                          % (ENV.market, LICENCE, subject),
                          json={"reason": "struck off"},
                          headers=auth(MARKET_TOKEN), timeout=30)
        self.assertEqual(r.status_code, 201, r.text)
        leaf = r.json()["receipt"]["leaf_index"]
        # Refused once (500), delivered the second time, then acked.
        wait_for(lambda: 200 in deliveries("/retry", leaf), "the delivery",
                 120)
        wait_for(lambda: acked(hook) >= leaf, "the acknowledgement", 60)
        self.assertEqual(deliveries("/retry", leaf), [500, 200])
        with Receiver.lock:
            self.assertTrue(all(ok for _, _, _, ok, _ in Receiver.seen))
            notice = [b for p, k, _, _, b in Receiver.seen if k == leaf][0]
        self.assertEqual(notice["notices"][0]["event"], "revoked")
        self.assertEqual(notice["notices"][0]["subject"], subject)
        ENV.validate({"notices": notice["notices"], "next_after": leaf},
                     "NoticeList")
        # A later notice arrives after it; the acked one is not sent again.
        later = uscc(903)
        self.assertEqual(publish(later, {"fields": FIELDS}).status_code, 201)
        wait_for(lambda: any(b["notices"][0]["subject"] == later
                             and s == 200 for _, _, s, _, b in Receiver.seen),
                 "the later delivery", 120)
        self.assertEqual(deliveries("/retry", leaf), [500, 200])
        text = call("GET", hook, "/metrics", TAX_TOKEN).text
        self.assertRegex(text, r'deliveries_total\{result="delivered"\} '
                         r'[1-9]')
        self.assertRegex(text, r'deliveries_total\{result="failed"\} [1-9]')
        proc = ENV.gateways["hook"][0]
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(60), 0)

    def test_05_webhook_dead_letter(self):
        hook = start_hook("hook2", "/fail", "notice_webhook_attempts = 2\n"
                          "notice_webhook_backoff_ms = 100\n")
        subject = uscc(904)
        r = publish(subject, {"fields": FIELDS})
        self.assertEqual(r.status_code, 201)
        leaf = r.json()["receipt"]["leaf_index"]
        dead = os.path.join(ENV.dir, "hook2.state",
                            "webhook-dead-letters.jsonl")
        wait_for(lambda: os.path.exists(dead) and str(leaf) in read(dead),
                 "the dead letter", 120)
        self.assertEqual(os.stat(dead).st_mode & 0o777, 0o600)
        lines = [json.loads(x) for x in read(dead).splitlines()]
        self.assertIn(subject, [n["notices"][0]["subject"] for n in lines])
        wait_for(lambda: acked(hook) >= leaf, "the acknowledgement", 60)
        self.assertEqual(deliveries("/fail", leaf), [500, 500])
        text = call("GET", hook, "/metrics", TAX_TOKEN).text
        self.assertRegex(text, r"dead_letters_total [1-9]")

    def test_06_acknowledge(self):
        # The dead-letter gateway acknowledges what it handles: stopped,
        # only POST /v1/notices/ack moves the department's cursor.
        proc = ENV.gateways["hook2"][0]
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(60), 0)
        leaves = []
        for i in (905, 906):
            r = publish(uscc(i), {"fields": FIELDS})
            self.assertEqual(r.status_code, 201, r.text)
            leaves.append(r.json()["receipt"]["leaf_index"])
        first, newest = leaves
        before = acked(ENV.tax)
        self.assertLess(before, first)
        # Every event up to first is still there for a pull from 0.
        r = poll(ENV.tax, TAX_TOKEN, 0, 0)
        self.assertIn(first, [n["leaf_index"] for n in r.json()["notices"]])
        # Refusals move nothing.
        for bad in ("x", "-1", "1.5", "+1", " 1", "0x10", "",
                    "18446744073709551616", "9223372036854775808"):
            self.problem(call("POST", ENV.tax, "/v1/notices/ack", TAX_TOKEN,
                              params={"through": bad}), 400,
                         "INVALID_ARGUMENT")
        self.problem(call("POST", ENV.tax, "/v1/notices/ack", TAX_TOKEN),
                     400, "INVALID_ARGUMENT")
        self.problem(call("POST", ENV.tax, "/v1/notices/ack", TAX_TOKEN,
                          params={"through": newest + 1000}), 404,
                     "NOT_FOUND")
        self.problem(call("POST", ENV.tax, "/v1/notices/ack", TAX_READER,
                          params={"through": first}), 403, "FORBIDDEN")
        self.problem(call("GET", ENV.tax, "/v1/notices/ack", TAX_TOKEN,
                          params={"through": first}), 405,
                     "METHOD_NOT_ALLOWED")
        self.assertEqual(acked(ENV.tax), before)
        # The acknowledgement: the cursor, in the answer and the list.
        r = call("POST", ENV.tax, "/v1/notices/ack", TAX_TOKEN,
                 params={"through": first})
        self.assertEqual(r.status_code, 200, r.text)
        ENV.validate(r.json(), "NoticeAckAnswer")
        self.assertEqual(r.json()["acked"], first)
        self.assertEqual(acked(ENV.tax), first)
        # Below the cursor changes nothing.
        r = call("POST", ENV.tax, "/v1/notices/ack", TAX_TOKEN,
                 params={"through": before})
        self.assertEqual(r.json()["acked"], first)
        # Tax is the only department that subscribes: the broker prunes
        # every event up to first (a pull from 0 no longer finds them),
        # and keeps the one above the cursor.
        wait_for(lambda: all(n["leaf_index"] > first for n in
                             poll(ENV.tax, TAX_TOKEN, 0, 0).json()["notices"]),
                 "the events up to the cursor pruned", 60)
        r = poll(ENV.tax, TAX_TOKEN, 0, 0)
        self.assertIn(newest, [n["leaf_index"] for n in r.json()["notices"]])
        # Counted as a route of their own, apart from the long poll's waits.
        text = call("GET", ENV.tax, "/metrics", TAX_TOKEN).text
        self.assertRegex(text, r'requests_total\{route="notice_ack",'
                         r'status="200"\} 2\n')
        self.assertRegex(text, r'requests_total\{route="notice_ack",'
                         r'status="400"\} 10\n')
        # The long poll goes on after the acknowledgement.
        later = uscc(907)
        got = []

        def wait_for_later():
            r = poll(ENV.tax, TAX_TOKEN, newest, 30)
            got.extend(n["subject"] for n in r.json()["notices"])
        waiter = threading.Thread(target=wait_for_later)
        waiter.start()
        self.assertEqual(publish(later, {"fields": FIELDS}).status_code, 201)
        waiter.join(120)
        self.assertIn(later, got)

    def test_07_metrics_and_log(self):
        r = call("GET", ENV.market, "/metrics", MARKET_TOKEN)
        self.assertIn('route="subscriptions"', r.text + "".join(
            call("GET", ENV.bank, "/metrics", BANK_TOKEN).text))
        for _, _, path in ENV.gateways.values():
            text = read(path)
            for subject in test_gateway.SUBJECTS:
                self.assertNotIn(subject, text, path)
            self.assertNotIn("runtime error", text, path)
            self.assertNotIn("Sanitizer", text, path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
