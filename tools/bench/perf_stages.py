#!/usr/bin/env python3
"""perf_stages.py - onced's CPU by stage of a request, from `perf script`.

Why. A flat profile of onced is dominated by anonymous addresses (libsodium
and libzmq ship without symbols) and by functions such as malloc or mdb_put
that several stages call. What docs/PERFORMANCE.md needs is the share of
each *stage* of a request: the envelope's signature check, the policy
reads, the log leaf, the commit, and so on. So each sample's call stack
(recorded with --call-graph dwarf, which unwinds through libraries built
without frame pointers) is walked from the innermost frame outwards and
charged to the first function that names a stage; a sample on a libzmq
background thread is charged to CURVE when it is in libsodium, else to
libzmq's transport, and one on the console thread (MHD-single) to the
console's step it is in. A sample whose stack names no stage is charged to
its thread ("I/O: other", "worker: receive, other", "writer: receive,
other") by the names onced gives its threads, else to "other". The
"kernel" column is
the part of a stage's samples spent in the kernel (system calls, the
wake-ups of the threads a request passes through, the file system under
the commit).

Usage: perf script -F comm,dso,sym -i perf.data | perf_stages.py [US]
With US, the CPU microseconds per request measured in the same run
(onced's cpu cores / requests per second), each share is also printed in
microseconds.
"""
import sys

# function -> stage; the innermost frame that is a key decides.
STAGES = {
    "envelope_verify": "worker: envelope verify (Ed25519)",
    "wire_check_envelope": "worker: decode envelope",
    "wire_check_request": "worker: decode request",
    "digest_sha256": "worker: digests (envelope, record)",
    "policy_department_get": "worker: policy reads",
    "policy_type_get": "worker: policy reads",
    "policy_grant_get": "worker: policy reads",
    "load_record": "worker: record read",
    "registry_get_record": "worker: record read",
    "check_replay": "worker: replay window",
    "replay_admit": "worker: replay window",
    "audit_subject_hash": "worker: subject hash for the leaf",
    "once__response__pack": "worker: answer encode",
    "once__response__get_packed_size": "worker: answer encode",
    "answer_logged": "worker: hand-off to the writer",
    "to_writer": "worker: hand-off to the writer",
    "mdb_txn_renew": "worker: read transaction renew/reset",
    "mdb_txn_reset": "worker: read transaction renew/reset",
    "worker_main": "worker: receive, other",
    "append_leaf": "writer: log leaf + evidence",
    "auditlog_append": "writer: log leaf + evidence",
    "auditlog_size": "writer: log leaf + evidence",
    "replay_reply_put": "writer: stored answer for retries",
    "replay_reply_put_rebuilt": "writer: stored answer for retries",
    "prune_replies": "writer: stored answer for retries (prune)",
    "make_reply": "writer: receipt",
    "notices_commit_job": "writer: notices (held, events)",
    "notices_committed": "writer: notices hand-off",
    "held_buffer_flush": "writer: records held, flush (sorted puts)",
    "notices_held_collect": "writer: records held, kept in memory",
    "sign_checkpoint": "writer: checkpoint",
    "commit_pending_checkpoint": "writer: checkpoint",
    "store_commit": "writer: commit (incl. fsync)",
    "mdb_txn_commit": "writer: commit (incl. fsync)",
    "store_begin": "writer: begin transaction",
    "replay_finish": "writer: in-memory answer for retries",
    "reply_message": "writer: reply envelope",
    "send_reply": "writer: reply hand-off",
    "writer_main": "writer: receive, other",
    "conn_limit_seen": "I/O: conn_limit_seen",
    "pending_charge": "I/O: pending charge",
    "pending_release": "I/O: pending release",
    "read_message": "I/O: read message",
    "dispatch": "I/O: dispatch to workers",
    "forward_answers": "I/O: forward answers",
    "io_main": "I/O: other",
}

# The console thread (libmicrohttpd's, named MHD-single): what it does for
# a scrape or an API call; the rest of it is HTTP.
CONSOLE_STAGES = {
    "kpi_update": "console: KPIs from new leaves",
    "kpi_write_metrics": "console: /metrics text",
    "metrics_write_data_path": "console: /metrics text",
    "metrics_write_process": "console: process metrics (/proc)",
    "metrics_map_use": "console: map use (free list)",
    "readers_used": "console: reader slots",
    "metrics_write_store": "console: store and log state",
    "metrics_log_state": "console: store and log state",
    "console_api_get": "console: JSON API",
    "console_health": "console: health checks",
    "console_metrics": "console: /metrics, other",
}

# The stage of a sample whose stack names none, by onced's thread names.
THREAD_OTHER = (
    ("onced-io", "I/O: other"),
    ("onced-worker", "worker: receive, other"),
    ("onced-writer", "writer: receive, other"),
)


def classify(comm, frames):
    if comm.startswith("MHD"):
        for _dso, sym in frames:
            name = sym.split("+")[0].replace(" (inlined)", "")
            if name in CONSOLE_STAGES:
                return CONSOLE_STAGES[name]
        return "console: HTTP (libmicrohttpd), other"
    if comm.startswith("ZMQbg"):
        if frames and "libsodium" in frames[0][0]:
            return "libzmq I/O thread: CURVE crypto"
        return "libzmq I/O thread: transport, syscalls"
    for _dso, sym in frames:
        name = sym.split("+")[0].replace(" (inlined)", "")
        if name in STAGES:
            return STAGES[name]
    # onced names its threads (pthread_setname_np): a stack that names no
    # stage is still charged to its thread.
    for prefix, stage in THREAD_OTHER:
        if comm.startswith(prefix):
            return stage
    return "other (stack without a stage)"


def samples(lines):
    comm, frames = None, []
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
        elif not line.startswith((" ", "\t")):
            comm = line.split()[0]
        else:
            parts = line.strip().split(None, 1)
            rest = parts[1] if len(parts) > 1 else ""
            dso = rest[rest.rfind("(") + 1:-1] if rest.endswith(")") else ""
            sym = rest[:rest.rfind("(")].strip() if "(" in rest else rest
            frames.append((dso, sym))
    if comm is not None:
        yield comm, frames


def main():
    us = float(sys.argv[1]) if len(sys.argv) > 1 else None
    counts, kernel, total = {}, {}, 0
    for comm, frames in samples(sys.stdin):
        stage = classify(comm, frames)
        counts[stage] = counts.get(stage, 0) + 1
        if frames and "kernel" in frames[0][0]:
            kernel[stage] = kernel.get(stage, 0) + 1
        total += 1
    if total == 0:
        sys.exit("perf_stages.py: no samples")
    print("%-44s %7s %7s %8s" % ("stage", "share", "kernel",
                                 "us/req" if us else ""))
    for stage, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        share = n / total
        print("%-44s %6.1f%% %6.0f%% %8s" % (
            stage, 100 * share, 100 * kernel.get(stage, 0) / n,
            "%.1f" % (share * us) if us else ""))
    print("%-44s %6.1f%%" % ("all stages: in the kernel",
                             100 * sum(kernel.values()) / total))
    print("%-44s %7d" % ("samples", total))


main()
