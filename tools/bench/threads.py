#!/usr/bin/env python3
"""threads.py - onced's CPU and sleeps per request, thread by thread.

Why. perf says which functions onced's CPU goes to, but not how often each
thread falls asleep and is woken, which is what a request's hand-offs
between threads cost when the broker is not saturated: every inproc
message to a thread that sleeps is a wake-up (an eventfd write, a poll
that returns, on a virtual machine an idle vCPU woken). This runs one
once-bench, reads every thread of the onced it started (named by
pthread_setname_np: onced-io, onced-worker-N, onced-writer; libzmq's
ZMQbg/IO/N; MHD-single for the console) from /proc/PID/task/*: schedstat
(CPU time in ns, not stat's 10 ms ticks) and status (voluntary and
involuntary context switches), every 50 ms from the start of the request
phase to onced's exit, and prints each thread's CPU microseconds and
sleeps (voluntary switches) per request.

The window runs from the bench's "warming up" line (open loop, --rate; it
counts the warm-up's requests, start_rate x 0.5 s, and the idle signing
of the phase's envelopes) or its "running" line (closed loop) to the end
of onced, its drain and stop included; the requests are the answers the
bench counted in that window (its JSON). Both add a little idle time; at
thousands of requests a second it is noise.

With THREADS_SYSCALLS=1 in the environment it also counts each thread's
system calls (perf stat on the raw_syscalls:sys_enter tracepoint; root or
kernel.perf_event_paranoid -1): on a virtual machine every one is a trip
through the hypervisor, and libzmq's inproc hand-off makes several on
each side.

Usage: tools/bench/threads.py BUILD_DIR [ONCE-BENCH OPTIONS]
e.g.   tools/bench/threads.py build --rate 3000 --seconds 8
       ONCED=/other/build/broker/onced tools/bench/threads.py build --seconds 8
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time


def read_threads(pid):
    """{tid: (comm, cpu_ns, voluntary, involuntary)} of onced now."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        base = "/proc/%d/task/%s/" % (pid, tid)
        try:
            with open(base + "comm") as f:
                comm = f.read().strip()
            with open(base + "schedstat") as f:
                cpu = int(f.read().split()[0])
            vol = invol = 0
            with open(base + "status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[int(tid)] = (comm, cpu, vol, invol)
    return out


def onced_child(bench_pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(bench_pid), "-x", "onced"],
                             capture_output=True, text=True).stdout.split()
    except OSError:
        return None
    return int(out[0]) if out else None


def group_name(comm):
    # One line per kind of thread; workers and libzmq's threads summed.
    return re.sub(r"\d+$", "N", comm) if comm.startswith(
        ("onced-worker-", "ZMQbg/IO/")) else comm


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build, args = sys.argv[1], sys.argv[2:]
    bench = os.path.join(build, "tools/bench/once-bench")
    open_loop = "--rate" in args
    log = tempfile.NamedTemporaryFile(prefix="once-threads-", suffix=".log",
                                      delete=False)
    proc = subprocess.Popen([bench, "--json"] + args,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    marker = "warming up" if open_loop else "running"
    start, last, pid, t0, t1 = None, {}, None, None, None
    # THREADS_SYSCALLS=1: also count each thread's system calls (perf
    # stat on the raw_syscalls tracepoint: root, or perf_event_paranoid
    # -1), the cost a wake-up pays on both sides.
    syscalls = os.environ.get("THREADS_SYSCALLS") == "1"
    perf, perf_out = None, log.name + ".perf"
    while proc.poll() is None:
        if pid is None:
            pid = onced_child(proc.pid)
        if pid is not None:
            now = read_threads(pid)
            if start is None:
                with open(log.name) as f:
                    if marker in f.read():
                        start, t0 = dict(now), time.monotonic()
                        if syscalls:
                            perf = subprocess.Popen(
                                ["perf", "stat", "--per-thread", "-x,",
                                 "-e", "raw_syscalls:sys_enter",
                                 "-o", perf_out, "-p", str(pid)],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
            if start is not None and now:
                last.update(now)
                t1 = time.monotonic()
        time.sleep(0.05)
    stdout = proc.stdout.read()
    calls = {}
    if perf is not None:
        perf.wait()
        for line in open(perf_out):
            f = line.strip().split(",")
            if len(f) > 2 and "-" in f[0] and f[1].isdigit():
                calls[int(f[0].rsplit("-", 1)[1])] = int(f[1])
        os.unlink(perf_out)
    with open(log.name) as f:
        bench_log = f.read()
    os.unlink(log.name)
    if proc.returncode != 0 or start is None:
        sys.stderr.write(bench_log)
        sys.exit("threads.py: the bench failed")
    d = json.loads(stdout)
    b = d["broker"]
    if open_loop:
        p = b["phases"][0]
        # The warm-up's answers, at --start-rate for 0.5 s (openloop.c).
        warm = re.search(r"warming up at (\d+)/s", bench_log)
        requests = p["answered"] + int(warm.group(1)) // 2
        summary = ("rate %.0f/s achieved %.0f/s, p50 %.0f us, p99 %.0f us, "
                   "late sends %d, onced %.2f cores, bench %.2f cores" % (
                       p["rate"], p["achieved_per_s"], p["latency_us"]["p50"],
                       p["latency_us"]["p99"], p["late_sends"],
                       p["broker_cpu_cores"], p["bench_cpu_cores"]))
    else:
        requests = b["answers_total"]
        summary = ("closed loop %.0f requests/s, p50 %.0f us, p99 %.0f us, "
                   "onced %.2f cores, bench %.2f cores" % (
                       b["requests_per_s"], b["latency_us"]["p50"],
                       b["latency_us"]["p99"], b["broker_cpu_cores"],
                       b["bench_cpu_cores"]))
    rows = {}
    for tid, (comm, cpu, vol, invol) in last.items():
        c0, v0, i0 = (start[tid][1:] if tid in start else (0, 0, 0))
        g = rows.setdefault(group_name(comm), [0, 0, 0, 0, 0])
        g[0] += 1
        g[1] += cpu - c0
        g[2] += vol - v0
        g[3] += invol - i0
        g[4] += calls.get(tid, 0)
    print(summary)
    print("load average %s; %d requests in %.1f s of window" % (
        " ".join(open("/proc/loadavg").read().split()[:3]), requests,
        (t1 or 0) - (t0 or 0)))
    print("%-20s %3s %10s %10s %10s %10s" % (
        "thread", "n", "us/req", "sleeps/req", "preempt/req",
        "syscalls/req" if syscalls else ""))
    tot = [0, 0, 0, 0]
    for name, (n, cpu, vol, invol, sc) in sorted(rows.items(),
                                                 key=lambda kv: -kv[1][1]):
        print("%-20s %3d %10.1f %10.2f %10.2f %10s" % (
            name, n, cpu / 1e3 / requests, vol / requests, invol / requests,
            "%.2f" % (sc / requests) if syscalls else ""))
        tot[0] += cpu
        tot[1] += vol
        tot[2] += invol
        tot[3] += sc
    print("%-20s %3s %10.1f %10.2f %10.2f %10s" % (
        "all", "", tot[0] / 1e3 / requests, tot[1] / requests,
        tot[2] / requests, "%.2f" % (tot[3] / requests) if syscalls else ""))


main()
