/*
 * openloop.h - once-bench at a fixed rate (--rate), and the search for the
 * highest rate whose p99 stays within a target (--find-max-rate). See
 * openloop.c.
 */
#ifndef ONCE_TOOLS_BENCH_OPENLOOP_H
#define ONCE_TOOLS_BENCH_OPENLOOP_H

#include "conn.h"
#include "home.h"
#include "report.h"

/* Connects clients[0..--clients) in ctx, warms up, then runs one phase at
 * --rate for --seconds, or the --find-max-rate search; fills r's open-loop
 * figures. 0 only when the counted phase had no refusal and each client's
 * sample verifies with exactly the granted fields; -1 noted. */
int run_open_loop(bench_home *h, void *ctx, conn *clients, results *r);

#endif
