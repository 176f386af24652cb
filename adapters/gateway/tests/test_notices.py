#!/usr/bin/python3
"""End to end: subscriptions and the long poll of notices through
once-gateway (adapters/gateway/notices.c), with a real onced.

Three gateways: market supervision's (issues business licences), tax's
(holds a grant on them) and bank's (a department without a grant). Tax
subscribes over REST, a caller waits in GET /v1/notices, market
publishes and revokes, and the long poll returns the notices; bank can
neither subscribe nor gets anything. Every answer is checked against
openapi.yaml's schemas. Run by meson (test gateway-notices-e2e), with the
environment of gateway-e2e (test_gateway.py, whose Env it uses).
"""
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.environ["ONCE_SOURCE_ROOT"],
                                "adapters/common/tests"))
import test_gateway  # noqa: E402
from adapter_e2e import LICENCE, read  # noqa: E402
from test_gateway import (FIELDS, MARKET_TOKEN, TAX_TOKEN, auth,  # noqa: E402,E501
                          publish, requests, uscc)

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
                           ["%s tax-app request,notices" % TAX_TOKEN,
                            "%s tax-reader request" % TAX_READER])
    bank = ENV.write_config("bank", "bank", ["%s bank-app *" % BANK_TOKEN])
    ENV.market = ENV.start_gateway("market", market)
    ENV.tax = ENV.start_gateway("tax", tax)
    ENV.bank = ENV.start_gateway("bank", bank)


def tearDownModule():
    ENV.close()


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

    def test_04_metrics_and_log(self):
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
