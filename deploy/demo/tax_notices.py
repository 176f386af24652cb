#!/usr/bin/python3
"""The tax bureau of the enterprise start-up demo learns that a licence it
holds was revoked, through its once-gateway (docs/ADAPTERS.md 5a).

    tax_notices.py --gateway URL --token-file FILE subscribe
    tax_notices.py --gateway URL --token-file FILE --codes FILE wait

subscribe: PUT /v1/subscriptions/held/business-licence, a subscription to
every business licence the tax bureau was handed by a request (a log leaf;
the answer's receipt names it). Prints one line.

wait: the long poll. It starts after the subscription's own leaf (GET
/v1/subscriptions: notices only follow it, so no earlier leaf needs
reading), calls GET /v1/notices?after=N&wait=30 again with next_after
until a notice of a revoked licence comes, and prints it as "tax bureau
notified: licence SERIAL revoked ...", SERIAL from the codes file's
"SERIAL SUBJECT" lines: a notice's subject is personal data, and the
demo names licences by their serial. Then it acknowledges the notices up
to that one (POST /v1/notices/ack?through=LEAF: the long poll moves no
cursor at the broker, and the broker keeps every event above the lowest
cursor of the subscribing departments) and prints the department's
cursor: "tax bureau acknowledged ...". Exits 1 when no notice came
within 120 s.

The token needs the `notices` operation. Standard library only.
"""
import argparse
import json
import sys
import time
import urllib.request

LICENCE = "business-licence"
WAIT_SECONDS = 120


def call(args, method, path):
    with open(args.token_file) as f:
        token = f.read().strip()
    req = urllib.request.Request(args.gateway + path, method=method,
                                 data=b"" if method == "POST" else None,
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def subscribe(args):
    doc = call(args, "PUT", "/v1/subscriptions/held/" + LICENCE)
    print("tax bureau (through once-gateway) subscribed to the business "
          "licences it holds: PUT /v1/subscriptions/held/%s (leaf %d)"
          % (LICENCE, doc["receipt"]["leaf_index"]))
    return 0


def wait(args):
    serials = {}
    with open(args.codes) as f:
        for line in f:
            if line.strip():
                serial, subject = line.split()
                serials[subject] = serial
    held = [s for s in call(args, "GET", "/v1/subscriptions")["subscriptions"]
            if s["scope"] == "held" and s.get("type") == LICENCE]
    if not held:
        print("tax bureau: no subscription to the licences held")
        return 1
    after = held[0]["leaf_index"]
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        doc = call(args, "GET", "/v1/notices?after=%d&wait=30" % after)
        for n in doc["notices"]:
            if n["event"] == "revoked" and n["type"] == LICENCE:
                print("tax bureau notified (through once-gateway, GET "
                      "/v1/notices): licence %s revoked, version %d "
                      "(leaf %d)" % (serials.get(n["subject"], "?"),
                                     n["version"], n["leaf_index"]))
                # This is the department's only caller: what it handled
                # is what the department handled.
                ack = call(args, "POST", "/v1/notices/ack?through=%d"
                           % n["leaf_index"])
                print("tax bureau acknowledged the notices up to leaf %d "
                      "(POST /v1/notices/ack): its cursor at the broker is "
                      "%d" % (n["leaf_index"], ack["acked"]))
                return 0
        after = doc["next_after"]
    print("tax bureau: no notice of a revoked licence within %d s"
          % WAIT_SECONDS)
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--codes")
    ap.add_argument("action", choices=["subscribe", "wait"])
    args = ap.parse_args()
    if args.action == "wait" and args.codes is None:
        ap.error("wait needs --codes")
    return subscribe(args) if args.action == "subscribe" else wait(args)


if __name__ == "__main__":
    sys.exit(main())
