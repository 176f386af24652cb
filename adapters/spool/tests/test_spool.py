#!/usr/bin/python3
"""End to end: a real onced, real once-spool processes, real files.

The broker home is made with oncectl in a temp directory (as the gateway's
test does), the broker listens on an ipc:// socket there, and two spools
run beside it: market supervision's (it publishes business licences from
its outbox/) and tax's (it requests their name and address from its
requests/). Answers are checked against the schemas of
adapters/gateway/openapi.yaml: the spool writes the gateway's documents.

Covers: publish (sent/ and the receipt), request (answers/ with the
verified granted fields and the receipt), refusals ending in failed/ with
a problem.json naming the code (bad JSON naming the member, a field the
type does not have, no grant), files not taken (.tmp, hidden), a name
reused with another content, start-up refusals, SIGTERM finishing the file
in hand and exiting 0, and the crash test: kill -9 of the spool mid-batch
of 200 files, three times, then a restart: every file ends in sent/ or
failed/ exactly once and the broker's log grew by exactly one leaf per
file (a second version of any record would be a second leaf).

Run by meson (test spool-e2e) with /usr/bin/python3. Environment: ONCED,
ONCECTL, ONCE_SPOOL (the built programs), ONCE_SOURCE_ROOT;
SPOOL_TEST_KEEP=1 keeps the temp directory and prints its path.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.environ["ONCE_SOURCE_ROOT"],
                                "adapters/common/tests"))
from adapter_e2e import Broker, LICENCE, read, uscc, wait_for  # noqa: E402

SPOOL = os.environ["ONCE_SPOOL"]
FIELDS = {"name": "Acme Ltd", "legal_representative": "Zhang San",
          "address": "1 Chang'an Avenue"}


def drop(directory, name, doc):
    """Writes a file the way the spool's rule says: a .tmp name, renamed."""
    tmp = os.path.join(directory, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    os.rename(tmp, os.path.join(directory, name))


class Env(Broker):
    """The broker home, the broker and the spools of one run."""

    def __init__(self):
        super().__init__("spool-")
        self.spools = {}

    def spool_config(self, name, dept, timeout_ms=2000, extra=""):
        return self.write_config("spool", name, dept, timeout_ms,
                                 "spool_directory = %s.spool\n%s"
                                 % (name, extra))

    def start(self, name, conf):
        log_path = os.path.join(self.dir, name + ".log")
        starts = (read(log_path).count("spooling")
                  if os.path.exists(log_path) else 0)
        with open(log_path, "a") as log:
            proc = subprocess.Popen([SPOOL, "--config", conf], stderr=log,
                                    stdout=log)
        self.spools[name] = proc
        root = os.path.join(self.dir, name + ".spool")

        def started():
            if proc.poll() is not None:
                raise AssertionError("spool %s exited: %s"
                                     % (name, read(log_path)))
            return read(log_path).count("spooling") > starts
        wait_for(started, name + " to start", 60)
        return root

    def close(self):
        for proc in self.spools.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        logs = "".join(read(os.path.join(self.dir, f))
                       for f in os.listdir(self.dir) if f.endswith(".log"))
        self.close_broker("SPOOL_TEST_KEEP")
        return logs


ENV = None


def setUpModule():
    global ENV
    ENV = Env()
    ENV.setup_broker()
    ENV.market = ENV.start("market", ENV.spool_config("market",
                                                      "market-supervision"))
    ENV.tax = ENV.start("tax", ENV.spool_config("tax", "tax"))


def tearDownModule():
    logs = ENV.close()
    # A sanitizer build reports to stderr, which is in the logs.
    if "runtime error" in logs or "Sanitizer" in logs:
        raise AssertionError("a sanitizer reported:\n" + logs)


def path(root, *parts):
    return os.path.join(root, *parts)


def done_notices(directory):
    """The notice files a system takes: not the .tmp being written."""
    return sorted(n for n in os.listdir(directory)
                  if not n.endswith(".tmp"))


def record(subject, **extra):
    doc = {"type": LICENCE, "subject": subject, "fields": dict(FIELDS)}
    doc.update(extra)
    return doc


class Spool(unittest.TestCase):

    def wait_file(self, p):
        wait_for(lambda: os.path.exists(p), p, 60)
        # Written under a .tmp name and renamed: complete when it exists.
        return p

    def problem(self, root, name, code):
        doc = json.loads(read(self.wait_file(
            path(root, "failed", name + ".problem.json"))))
        ENV.validate(doc, "Problem")
        self.assertEqual(doc["code"], code, doc)
        self.assertTrue(os.path.exists(path(root, "failed", name)))
        return doc

    def test_publish_and_request(self):
        subject = uscc(1)
        drop(path(ENV.market, "outbox"), "licence-1.json", record(subject))
        receipt = json.loads(read(self.wait_file(
            path(ENV.market, "sent", "licence-1.json.receipt.json"))))
        ENV.validate(receipt, "WriteAnswer")
        self.assertEqual(receipt["subject"], subject)
        self.assertEqual(receipt["status"], "valid")
        self.assertIn("leaf_index", receipt["receipt"])
        self.assertTrue(receipt["receipt"]["proof_verified"])
        self.assertTrue(os.path.exists(path(ENV.market, "sent",
                                            "licence-1.json")))
        self.assertEqual(os.listdir(path(ENV.market, "outbox")), [])

        drop(path(ENV.tax, "requests"), "ask-1.json",
             {"type": LICENCE, "subject": subject,
              "purpose": "tax-registration", "case_id": "TAX-1",
              "user": "li.na", "proof": True})
        answer_path = self.wait_file(path(ENV.tax, "answers", "ask-1.json"))
        answer = json.loads(read(answer_path))
        ENV.validate(answer, "RecordAnswer")
        self.assertEqual(answer["fields"], {"name": FIELDS["name"],
                                            "address": FIELDS["address"]})
        self.assertEqual(answer["version"], receipt["version"])
        self.assertTrue(answer["verified"]["issuer_signature"])
        self.assertEqual(answer["verified"]["disclosures"], 2)
        self.assertTrue(answer["receipt"]["proof_verified"])
        # The file's user is the official of the request's leaf: field 13,
        # the leaf's last (0x6a, length 5, "li.na").
        self.assertTrue(answer["receipt"]["leaf"].endswith(
            (bytes([0x6a, 5]) + b"li.na").hex()), answer["receipt"])
        self.assertEqual(os.stat(answer_path).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(path(ENV.tax, "answers")).st_mode & 0o777,
                         0o700)
        self.wait_file(path(ENV.tax, "sent", "ask-1.json"))
        # No subject in the spools' log lines.
        for name in ("market", "tax"):
            self.assertNotIn(subject, read(path(ENV.dir, name + ".log")))

    def test_notices(self):
        # A second tax spool writes the notices of its subscription.
        conf = ENV.spool_config("taxn", "tax",
                                extra="notices = type:%s\n" % LICENCE)
        root = ENV.start("taxn", conf)
        notices = path(root, "notices")
        self.assertEqual(os.stat(notices).st_mode & 0o777, 0o700)
        # The spool's thread subscribes after start; notices come of the
        # records published after the subscription.
        wait_for(lambda: "notices: subscribed" in read(
            path(ENV.dir, "taxn.log")), "the subscription", 60)
        drop(path(ENV.market, "outbox"), "n-1.json", record(uscc(601)))
        wait_for(lambda: done_notices(notices) or None, "a notice", 60)
        first = done_notices(notices)[0]
        doc = json.loads(read(path(notices, first)))
        self.assertEqual(first, "%020d.json" % doc["leaf_index"])
        self.assertEqual(doc["type"], LICENCE)
        self.assertEqual(doc["event"], "new_version")
        self.assertEqual(os.stat(path(notices, first)).st_mode & 0o777,
                         0o600)
        # Acknowledged once written: after a restart only newer notices
        # come, not those the system already took.
        ENV.spools["taxn"].send_signal(signal.SIGTERM)
        self.assertEqual(ENV.spools["taxn"].wait(60), 0)
        for name in done_notices(notices):
            os.unlink(path(notices, name))
        ENV.start("taxn", conf)
        subject = uscc(700)
        drop(path(ENV.market, "outbox"), "n-last.json", record(subject))
        wait_for(lambda: done_notices(notices) or None, "the last notice",
                 60)
        names = done_notices(notices)
        self.assertEqual(len(names), 1, names)
        self.assertEqual(json.loads(read(path(notices, names[0])))["subject"],
                         subject)
        self.assertNotIn(subject, read(path(ENV.dir, "taxn.log")))

    def test_refusals(self):
        outbox = path(ENV.market, "outbox")
        drop(outbox, "bad-json.json", '{"type": ')
        doc = self.problem(ENV.market, "bad-json.json", "INVALID_ARGUMENT")
        self.assertEqual(doc["status"], 400)
        drop(outbox, "bad-member.json", record(uscc(2), valid_untill="x"))
        doc = self.problem(ENV.market, "bad-member.json", "INVALID_ARGUMENT")
        self.assertIn("valid_untill", doc["detail"])
        bad = record(uscc(3))
        bad["fields"]["colour"] = "red"
        drop(outbox, "bad-field.json", bad)
        self.problem(ENV.market, "bad-field.json", "INVALID_RECORD")
        drop(outbox, "lines.json", json.dumps(record(uscc(4))) + "\n" +
             json.dumps(record(uscc(5))) + "\n")
        self.problem(ENV.market, "lines.json", "INVALID_ARGUMENT")
        drop(path(ENV.tax, "requests"), "nosy.json",
             {"type": LICENCE, "subject": uscc(1), "purpose": "curiosity",
              "case_id": "X"})
        self.problem(ENV.tax, "nosy.json", "NO_GRANT")
        drop(path(ENV.tax, "requests"), "bad-user.json",
             {"type": LICENCE, "subject": uscc(1),
              "purpose": "tax-registration", "case_id": "X",
              "user": "li\nna"})
        self.problem(ENV.tax, "bad-user.json", "INVALID_TEXT")
        self.assertEqual(os.listdir(path(ENV.tax, "answers")).count(
            "nosy.json"), 0)

    def test_incomplete_files_not_taken(self):
        outbox = path(ENV.market, "outbox")
        with open(path(outbox, "half.json.tmp"), "w") as f:
            f.write(json.dumps(record(uscc(6))))
        with open(path(outbox, ".hidden.json"), "w") as f:
            f.write(json.dumps(record(uscc(7))))
        drop(outbox, "after.json", record(uscc(8)))
        self.wait_file(path(ENV.market, "sent", "after.json"))
        self.assertEqual(sorted(os.listdir(outbox)),
                         [".hidden.json", "half.json.tmp"])
        os.rename(path(outbox, "half.json.tmp"), path(outbox, "half.json"))
        self.wait_file(path(ENV.market, "sent", "half.json"))
        os.unlink(path(outbox, ".hidden.json"))

    def test_name_reused(self):
        outbox = path(ENV.market, "outbox")
        drop(outbox, "daily.json", record(uscc(9), version=1))
        self.wait_file(path(ENV.market, "sent", "daily.json.receipt.json"))
        drop(outbox, "daily.json", record(uscc(9), version=2))
        wait_for(lambda: [n for n in os.listdir(path(ENV.market, "sent"))
                          if re.match(r"daily\.json\.[0-9a-f]{16}$", n)],
                 "the second daily.json")
        # The same bytes under the same name twice more: each finished,
        # the spool still running.
        for n in (2, 3):
            drop(outbox, "daily.json", record(uscc(9), version=2))
            self.wait_file(path(ENV.market, "sent",
                                "daily.json.%s.%d" % (
                                    [m for m in os.listdir(path(
                                        ENV.market, "sent"))
                                     if re.match(r"daily\.json\.[0-9a-f]"
                                                 r"{16}$", m)][0][11:], n)))

    def test_startup_refusals(self):
        conf = ENV.spool_config("loose", "market-supervision")
        os.makedirs(path(ENV.dir, "loose.spool", "answers"))
        os.chmod(path(ENV.dir, "loose.spool", "answers"), 0o755)
        r = subprocess.run([SPOOL, "--config", conf], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("chmod 700", r.stderr)
        # The market spool holds its directories: a second one is refused.
        r = subprocess.run([SPOOL, "--config",
                            path(ENV.dir, "market.conf")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("another once-spool", r.stderr)
        r = subprocess.run([SPOOL, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("spool_directory", r.stdout)

    def test_envelope_too_old(self):
        """The broker away longer than its skew window: the kept envelope
        is signed anew with the same version, published once."""
        env = Env()
        try:
            env.setup_broker(skew_seconds=2)
            root = env.start("old", env.spool_config(
                "old", "market-supervision", timeout_ms=500))
            size = env.log_size()
            env.onced.send_signal(signal.SIGSTOP)
            drop(path(root, "outbox"), "late.json", record(uscc(50)))
            log = path(env.dir, "old.log")
            wait_for(lambda: "will retry" in read(log), "a retry")
            time.sleep(4)
            env.onced.send_signal(signal.SIGCONT)
            doc = json.loads(read(self.wait_file(
                path(root, "sent", "late.json.receipt.json"))))
            self.assertEqual(doc["status"], "valid")
            self.assertIn("signing it anew with the same version",
                          read(log))
            env.spools["old"].send_signal(signal.SIGTERM)
            self.assertEqual(env.spools["old"].wait(timeout=60), 0)
            # One stored publish; the stale copies were refused unlogged
            # or logged as refusals, never as a second version.
            self.assertGreaterEqual(env.log_size() - size, 1)
        finally:
            env.close()

    def test_import_resumed_after_kill(self):
        """once-spool import: kill -9 mid-file, run again: every row
        published once, all with the file's version."""
        conf = path(ENV.dir, "market.conf")
        csv_path = path(ENV.dir, "licences.csv")
        with open(csv_path, "w") as f:
            f.write("uscc,name,legal_representative,address\r\n")
            for i in range(300):
                f.write('%s,"Firm %d, Ltd","Rep ""%d""",Road %d\r\n'
                        % (uscc(3000 + i), i, i, i))
        args = [SPOOL, "import", csv_path, "--type", LICENCE,
                "--subject-column", "uscc", "--config", conf]
        bad = path(ENV.dir, "bad.csv")
        with open(bad, "w") as f:
            f.write('uscc,name\n%s,"open\n' % uscc(2999))
        size = ENV.log_size()
        r = subprocess.run(args[:2] + [bad] + args[3:], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("row 1: malformed CSV", r.stderr)
        self.assertEqual(ENV.log_size(), size)

        # The import goes in batches of 64 rows (8 connections x 8 rows,
        # adapters/spool/import.c) and keeps a batch's answers in one
        # commit after its last row is answered; the next batch is sent
        # only after that commit. So a leaf of the second batch in the log
        # means the first batch's 64 answers are kept: the resume must
        # find them answered. (At 60 leaves the kill could land before
        # that commit; the resume then rightly re-sends all 64 kept
        # envelopes, gets the broker's stored answers and finds none
        # answered before.) The kill lands anywhere after that, often with
        # rows of a batch published but their answers not kept.
        batch = 64
        with open(path(ENV.dir, "import.log"), "w") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=log)
        wait_for(lambda: ENV.log_size() > size + batch, "a second batch",
                 120)
        proc.kill()
        proc.wait()
        r = subprocess.run(args, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"import: 300 rows: (\d+) published now, (\d+) "
                      r"answered before, 0 refused", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(int(m.group(1)) + int(m.group(2)), 300, r.stdout)
        self.assertGreaterEqual(int(m.group(2)), batch, r.stdout)
        self.assertEqual(ENV.log_size() - size, 300)
        # A third run publishes nothing.
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        self.assertIn("0 published now, 300 answered before", r.stdout)
        self.assertEqual(ENV.log_size() - size, 300)
        # The records are there, with the file's time as their version.
        drop(path(ENV.tax, "requests"), "imported.json",
             {"type": LICENCE, "subject": uscc(3007),
              "purpose": "tax-registration", "case_id": "TAX-7"})
        answer = json.loads(read(self.wait_file(
            path(ENV.tax, "answers", "imported.json"))))
        self.assertEqual(answer["fields"], {"name": "Firm 7, Ltd",
                                            "address": "Road 7"})
        self.assertEqual(answer["version"],
                         os.stat(csv_path).st_mtime_ns // 1000000)

    def test_import_interrupted_with_connections(self):
        """once-spool import --connections 4, SIGINT mid-file: exit 1 at
        row N, every row before N answered and kept (the resume finds them
        answered), and the resume publishes the rest, each row once."""
        conf = path(ENV.dir, "market.conf")
        csv_path = path(ENV.dir, "interrupted.csv")
        with open(csv_path, "w") as f:
            f.write("uscc,name,legal_representative,address\n")
            for i in range(300):
                f.write("%s,Firm %d,Rep %d,Road %d\n"
                        % (uscc(4000 + i), i, i, i))
        args = [SPOOL, "import", csv_path, "--type", LICENCE,
                "--subject-column", "uscc", "--config", conf,
                "--connections", "4"]
        r = subprocess.run(args[:-1] + ["65"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        size = ENV.log_size()
        proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        wait_for(lambda: ENV.log_size() >= size + 40, "40 rows", 120)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            self.skipTest("the import finished before the signal")
        self.assertEqual(proc.returncode, 1, err)
        m = re.search(r"interrupted at row (\d+)", err)
        self.assertIsNotNone(m, err)
        done = int(m.group(1)) - 1
        self.assertGreaterEqual(ENV.log_size() - size, done)
        r = subprocess.run(args, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"import: 300 rows: (\d+) published now, (\d+) "
                      r"answered before, 0 refused", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(int(m.group(1)) + int(m.group(2)), 300)
        self.assertGreaterEqual(int(m.group(2)), done)
        self.assertEqual(ENV.log_size() - size, 300)

    def test_zz_crash_and_sigterm(self):
        """kill -9 mid-batch, three times; then SIGTERM."""
        ENV.spools["market"].kill()
        ENV.spools["market"].wait()
        conf = path(ENV.dir, "market.conf")
        outbox = path(ENV.market, "outbox")
        sent_before = set(os.listdir(path(ENV.market, "sent")))
        failed_before = set(os.listdir(path(ENV.market, "failed")))
        size_before = ENV.log_size()
        names = ["batch-%03d.json" % i for i in range(200)]
        for i, name in enumerate(names):
            drop(outbox, name, record(uscc(1000 + i)))

        def finished():
            return [n for n in os.listdir(path(ENV.market, "sent")) +
                    os.listdir(path(ENV.market, "failed"))
                    if re.match(r"batch-\d{3}\.json$", n)]
        for kill_at in (40, 90, 140):
            ENV.start("market", conf)
            wait_for(lambda: len(finished()) >= kill_at, "%d files" % kill_at,
                     seconds=120)
            ENV.spools["market"].send_signal(signal.SIGKILL)
            ENV.spools["market"].wait()
        ENV.start("market", conf)
        wait_for(lambda: len(finished()) == 200, "all 200 files", 180)
        done = finished()
        self.assertEqual(sorted(done), names)   # each exactly once
        self.assertEqual([n for n in done if n in os.listdir(
            path(ENV.market, "failed"))], [])
        self.assertEqual(os.listdir(outbox), [])
        self.assertEqual(os.listdir(path(ENV.market, "work", "outbox")), [])
        receipts = [n for n in os.listdir(path(ENV.market, "sent"))
                    if n.startswith("batch-") and n.endswith(".receipt.json")]
        self.assertEqual(len(receipts), 200)
        leaves = set(json.loads(read(path(ENV.market, "sent", n)))
                     ["receipt"]["leaf_index"] for n in receipts)
        self.assertEqual(len(leaves), 200)
        # One leaf per file: no record was published twice.
        self.assertEqual(ENV.log_size() - size_before, 200)
        self.assertTrue(set(os.listdir(path(ENV.market, "sent")))
                        >= sent_before)
        self.assertEqual(set(os.listdir(path(ENV.market, "failed"))),
                         failed_before)

        # SIGTERM: the file in hand is finished, the spool exits 0.
        for i in range(20):
            drop(outbox, "term-%02d.json" % i, record(uscc(2000 + i)))
        wait_for(lambda: any(n.startswith("term-") for n in os.listdir(
            path(ENV.market, "sent"))), "a term- file")
        ENV.spools["market"].send_signal(signal.SIGTERM)
        self.assertEqual(ENV.spools["market"].wait(timeout=60), 0)
        self.assertEqual(os.listdir(path(ENV.market, "work", "outbox")), [])
        left = [n for n in os.listdir(outbox) if n.startswith("term-")]
        sent = [n for n in os.listdir(path(ENV.market, "sent"))
                if re.match(r"term-\d\d\.json$", n)]
        self.assertEqual(len(left) + len(sent), 20)


if __name__ == "__main__":
    unittest.main(verbosity=2)
