#!/usr/bin/python3
"""The bank of the enterprise start-up demo: a system that can only write
and read files, beside once-spool (docs/ADAPTERS.md, section 8).

    bank_spool.py SPOOL_DIR --codes FILE [--case-prefix ACCT-2026-]
    bank_spool.py SPOOL_DIR --codes FILE --revoked
    bank_spool.py SPOOL_DIR --codes FILE --notice

For each line "SERIAL SUBJECT" of FILE it writes a request file into
SPOOL_DIR/requests/ (as .NAME.tmp, then renamed: the spool takes only
complete files), for the licence, the purpose account-opening and the
case ACCT-2026-SERIAL, waits until the spool has finished every file
(answers/NAME, or failed/NAME.problem.json) and checks each answer as the
bank would before opening an account: status valid, exactly the fields
its grant gives, each verified against market supervision's signature,
and a receipt with a leaf index. With --revoked it asks once more for
the first line's licence (case ACCT-2026-REVOKED) and expects it answered
revoked, without fields, and prints the issuer's reason.

With --notice it waits for the spool to write a notice of a revoked
licence into SPOOL_DIR/notices/ (the spool's configuration has `notices =
held:business-licence`: it subscribed at its start to every licence the
bank was handed), prints it naming the licence by its serial (the line of
FILE with the notice's subject), and deletes the file, as the bank's
system would once it has handled it; names ending in .tmp are the spool's
files in progress.

Prints one line, exits 0 when every answer is as expected, 1 otherwise.
Standard library only. Names files after the case, never the subject.
"""
import argparse
import json
import os
import sys
import time

LICENCE = "business-licence"
PURPOSE = "account-opening"
GRANTED = {"name", "legal_representative", "registered_capital", "address"}
WAIT_SECONDS = 600


def write_request(spool, name, subject, case_id):
    doc = {"type": LICENCE, "subject": subject, "purpose": PURPOSE,
           "case_id": case_id}
    tmp = os.path.join(spool, "requests", "." + name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, os.path.join(spool, "requests", name))


def wait_finished(spool, names):
    """{name: (answer or None, problem or None)} once every file is
    finished."""
    deadline = time.monotonic() + WAIT_SECONDS
    pending, done = set(names), {}
    while pending:
        if time.monotonic() > deadline:
            sys.exit("bank: %d request files still not finished after %d s"
                     % (len(pending), WAIT_SECONDS))
        sent = set(os.listdir(os.path.join(spool, "sent")))
        failed = set(os.listdir(os.path.join(spool, "failed")))
        for name in [n for n in pending if n in sent or n in failed]:
            which = "answers" if name in sent else "failed"
            path = os.path.join(spool, which, name if name in sent
                                else name + ".problem.json")
            with open(path) as f:
                doc = json.load(f)
            done[name] = (doc, None) if name in sent else (None, doc)
            pending.discard(name)
        if pending:
            time.sleep(0.1)
    return done


def check_valid(answer):
    return (answer is not None and answer.get("status") == "valid" and
            set(answer.get("fields", {})) == GRANTED and
            answer.get("verified", {}).get("issuer_signature") is True and
            answer["verified"].get("disclosures") == len(GRANTED) and
            isinstance(answer.get("receipt", {}).get("leaf_index"), int))


def wait_notice(spool, serials):
    """Waits for a notice file of a revoked licence; prints it and deletes
    it. 0, or 1 when none came within WAIT_SECONDS."""
    notices = os.path.join(spool, "notices")
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for name in sorted(os.listdir(notices)):
            if name.endswith(".tmp") or name.startswith("."):
                continue
            path = os.path.join(notices, name)
            with open(path) as f:
                notice = json.load(f)
            os.unlink(path)
            if notice.get("event") == "revoked" and \
                    notice.get("type") == LICENCE:
                print("bank notified (through once-spool, file notices/%s): "
                      "licence %s revoked, version %d (leaf %d)"
                      % (name, serials.get(notice["subject"], "?"),
                         notice["version"], notice["leaf_index"]))
                return 0
        time.sleep(0.1)
    print("bank: no notice of a revoked licence in %s within %d s"
          % (notices, WAIT_SECONDS))
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spool")
    ap.add_argument("--codes", required=True)
    ap.add_argument("--revoked", action="store_true")
    ap.add_argument("--notice", action="store_true")
    args = ap.parse_args()
    with open(args.codes) as f:
        codes = [line.split() for line in f if line.strip()]
    if args.notice:
        return wait_notice(args.spool, {subject: serial
                                        for serial, subject in codes})
    if args.revoked:
        name = "ACCT-2026-REVOKED.json"
        write_request(args.spool, name, codes[0][1], "ACCT-2026-REVOKED")
        answer, problem = wait_finished(args.spool, [name])[name]
        if answer is None or answer.get("status") != "revoked" or \
                answer.get("fields") != {}:
            print("bank: the revoked licence was not answered as revoked: "
                  "%s" % (problem or answer))
            return 1
        print("bank (through once-spool): the revoked licence is answered "
              "revoked: version %d, signed by %s, reason: %s"
              % (answer["version"], answer["issuer"],
                 answer.get("reason", "")))
        return 0
    names = []
    for serial, subject in codes:
        name = "ACCT-2026-%06d.json" % int(serial)
        write_request(args.spool, name, subject, name[:-len(".json")])
        names.append(name)
    done = wait_finished(args.spool, names)
    bad = [n for n in names if not check_valid(done[n][0])]
    if bad:
        answer, problem = done[bad[0]]
        print("bank: %d of %d answers not usable, the first %s: %s"
              % (len(bad), len(names), bad[0], problem or answer))
        return 1
    print("bank (through once-spool): %d licences answered in answers/, "
          "each checked (granted fields, issuer signature, receipt)"
          % len(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
