#!/usr/bin/python3
"""A tax bureau's registration system asks once-gateway for a licence.

The smallest department system that uses once: before a new enterprise is
registered for tax, the system requests its business licence from market
supervision through the tax bureau's own once-gateway, with the purpose
its grant names and the case it works on, checks the answer and prints
what it would use. It links nothing of once: plain HTTPS and JSON with
Debian's python3-requests.

    tax_registration.py --gateway http://127.0.0.1:8444 \\
        --token-file tax.token --case-id TAX-2026-0001 91110108MA00000012

    tax_registration.py --gateway URL --token-file FILE --batch CASES

--batch reads lines "SUBJECT CASE_ID" (the enterprise start-up demo runs it
this way) and requests each in turn on one keep-alive connection.

What is checked before anything is used:
  - the HTTP status: 200 with a RecordAnswer (adapters/gateway/openapi.yaml);
  - the status of the record: "valid" (a revoked licence is not used);
  - the fields: exactly the ones the catalogue (GET /v1/catalogue) says
    this department's grant allows for the purpose, no more, no less, and
    the gateway checked each against the issuer's signature
    (verified.issuer_signature, verified.disclosures);
  - the receipt: its leaf_index in the broker's log, which this system
    keeps with the case as the proof of where the data came from.

Errors are RFC 9457 problems (application/problem+json) whose "code" is
once's stable error code; each maps to what this system does and to its
exit status:
  2  the request itself is wrong (400: INVALID_SUBJECT, MISSING_PURPOSE,
     INVALID_ARGUMENT): fix the input;
  3  this system is not allowed (401 UNAUTHORIZED: the token; 403
     FORBIDDEN, NO_GRANT, SUSPENDED: the token's operations, the
     department's grant or its standing): ask the administrator;
  4  no such licence (404 NOT_FOUND, UNKNOWN_TYPE), or it is revoked: the
     applicant must see market supervision;
  5  the broker is unavailable or slow (any 503, such as UNAVAILABLE; 504
     TIMEOUT; 429 QUOTA_EXCEEDED): retried --retries times after
     Retry-After, then given up, to be tried later;
  6  the answer did not verify (502): never use it, report it;
  7  anything else (an answer that is not the documented one).
In --batch mode the first failure stops the run with its status.

Environment: ONCE_GATEWAY_TOKEN instead of --token-file.
"""
import argparse
import os
import sys
import time

try:
    import requests
except ImportError:  # pragma: no cover
    sys.exit("tax_registration: needs python3-requests (apt install "
             "python3-requests)")

LICENCE = "business-licence"
PURPOSE = "tax-registration"

EXIT_INPUT, EXIT_NOT_ALLOWED, EXIT_NO_LICENCE = 2, 3, 4
EXIT_UNAVAILABLE, EXIT_NOT_VERIFIED, EXIT_UNEXPECTED = 5, 6, 7

# The problem codes this system handles, and what each means for it.
PROBLEM_EXITS = {
    "INVALID_SUBJECT": EXIT_INPUT,
    "MISSING_PURPOSE": EXIT_INPUT,
    "INVALID_ARGUMENT": EXIT_INPUT,
    "UNAUTHORIZED": EXIT_NOT_ALLOWED,
    "FORBIDDEN": EXIT_NOT_ALLOWED,
    "NO_GRANT": EXIT_NOT_ALLOWED,
    "SUSPENDED": EXIT_NOT_ALLOWED,
    "NOT_FOUND": EXIT_NO_LICENCE,
    "UNKNOWN_TYPE": EXIT_NO_LICENCE,
    "UNAVAILABLE": EXIT_UNAVAILABLE,
    "TIMEOUT": EXIT_UNAVAILABLE,
    "QUOTA_EXCEEDED": EXIT_UNAVAILABLE,
}
TRANSIENT = {503, 504, 429}


class Refused(Exception):
    """A request this system cannot use, with the exit status it means."""

    def __init__(self, exit_status, message):
        super().__init__(message)
        self.exit_status = exit_status


def problem_of(response):
    """The RFC 9457 problem of a refusal, as a Refused."""
    if response.headers.get("Content-Type", "").split(";")[0].strip() \
            != "application/problem+json":
        return Refused(EXIT_UNEXPECTED, "HTTP %d without a problem document"
                       % response.status_code)
    try:
        doc = response.json()
        code, detail = doc["code"], doc.get("detail", doc.get("title", ""))
    except (ValueError, KeyError, TypeError):
        return Refused(EXIT_UNEXPECTED, "HTTP %d with a malformed problem"
                       % response.status_code)
    if response.status_code == 502:
        status = EXIT_NOT_VERIFIED
    elif response.status_code in TRANSIENT:
        status = EXIT_UNAVAILABLE
    else:
        status = PROBLEM_EXITS.get(code, EXIT_UNEXPECTED)
    return Refused(status, "%s (HTTP %d): %s"
                   % (code, response.status_code, detail))


class Gateway:
    """The tax bureau's once-gateway, over one keep-alive session."""

    def __init__(self, url, token, retries, timeout=30):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + token
        self.retries = retries
        self.timeout = timeout

    def get(self, path, params=None):
        """The JSON of a 200 answer; transient refusals are retried after
        their Retry-After; any other refusal raises Refused."""
        for attempt in range(self.retries + 1):
            try:
                r = self.session.get(self.url + path, params=params,
                                     timeout=self.timeout)
            except requests.RequestException as e:
                raise Refused(EXIT_UNAVAILABLE, "the gateway cannot be "
                              "reached: %s" % e)
            if r.status_code == 200:
                try:
                    return r.json()
                except ValueError:
                    raise Refused(EXIT_UNEXPECTED, "a 200 answer that is not "
                                  "JSON")
            if r.status_code not in TRANSIENT or attempt == self.retries:
                raise problem_of(r)
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 30.0))
        raise AssertionError("not reached")

    def granted_fields(self):
        """The fields the catalogue says this department may request for
        tax registration."""
        doc = self.get("/v1/catalogue")
        for t in doc.get("request", []):
            if t.get("type") != LICENCE:
                continue
            for p in t.get("purposes", []):
                if p.get("purpose") == PURPOSE:
                    return set(p.get("fields", []))
        raise Refused(EXIT_NOT_ALLOWED, "the catalogue grants no %s for %s"
                      % (LICENCE, PURPOSE))

    def licence(self, subject, case_id, granted):
        """The checked licence of subject for case_id."""
        doc = self.get("/v1/records/%s/%s" % (LICENCE, subject),
                       {"purpose": PURPOSE, "case_id": case_id})
        try:
            status, fields = doc["status"], doc["fields"]
            verified, leaf = doc["verified"], doc["receipt"]["leaf_index"]
        except (KeyError, TypeError):
            raise Refused(EXIT_UNEXPECTED, "an answer without the documented "
                          "members")
        if status == "revoked":
            raise Refused(EXIT_NO_LICENCE, "the licence is revoked (version "
                          "%s): the applicant must see market supervision"
                          % doc.get("version"))
        if status != "valid":
            raise Refused(EXIT_UNEXPECTED, "unknown status %r" % status)
        if set(fields) != granted or doc.get("binary_fields"):
            raise Refused(EXIT_NOT_VERIFIED, "fields %s, the grant is %s"
                          % (sorted(fields), sorted(granted)))
        if verified.get("issuer_signature") is not True or \
                verified.get("disclosures") != len(fields):
            raise Refused(EXIT_NOT_VERIFIED, "the gateway did not verify "
                          "every field")
        if not isinstance(leaf, int) or leaf < 0:
            raise Refused(EXIT_UNEXPECTED, "no receipt leaf index")
        return doc


def use(doc, case_id):
    """What the registration would do with the licence."""
    f = doc["fields"]
    print("case %s: register %s, legal representative %s, at %s "
          "(licence version %d by %s, log leaf %d)"
          % (case_id, f.get("name", "-"), f.get("legal_representative", "-"),
             f.get("address", "-"), doc["version"], doc["issuer"],
             doc["receipt"]["leaf_index"]))


def main(argv):
    ap = argparse.ArgumentParser(
        description="Request a business licence for tax registration "
                    "through once-gateway.")
    ap.add_argument("--gateway", required=True, help="the gateway's URL")
    ap.add_argument("--token-file", help="a file holding the bearer token "
                    "(else ONCE_GATEWAY_TOKEN)")
    ap.add_argument("--case-id", help="the tax case (one subject)")
    ap.add_argument("--batch", help='a file of lines "SUBJECT CASE_ID"')
    ap.add_argument("--retries", type=int, default=2,
                    help="retries of a 503/504/429 (default 2)")
    ap.add_argument("--quiet", action="store_true",
                    help="only the summary (with --batch)")
    ap.add_argument("subject", nargs="?", help="the enterprise's USCC")
    args = ap.parse_args(argv)
    if (args.batch is None) == (args.subject is None) or \
            (args.subject is not None and args.case_id is None):
        ap.error("give SUBJECT with --case-id, or --batch FILE")
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
    else:
        token = os.environ.get("ONCE_GATEWAY_TOKEN", "")
    if not token:
        ap.error("no token: --token-file or ONCE_GATEWAY_TOKEN")
    if args.batch:
        with open(args.batch) as f:
            cases = [line.split() for line in f if line.strip()]
    else:
        cases = [[args.subject, args.case_id]]

    gw = Gateway(args.gateway, token, args.retries)
    used = 0
    try:
        granted = gw.granted_fields()
        for subject, case_id in cases:
            doc = gw.licence(subject, case_id, granted)
            used += 1
            if not args.quiet:
                use(doc, case_id)
    except Refused as e:
        # The subject is the applicant's identifier: the message names the
        # case, not the code.
        print("tax_registration: case %s: %s"
              % (cases[used][1] if used < len(cases) else "-", e),
              file=sys.stderr)
        return e.exit_status
    if args.batch:
        print("tax_registration: %d licences checked and used" % used)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
