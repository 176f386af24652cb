/*
 * report.c - the report of a once-bench run: text for a reader, JSON for
 * a script.
 *
 * A rate alone says little (it moves with the CPU, the disk and whatever
 * else runs), so both forms print the machine's limits first and end with
 * the broker's rates as ratios to them. A request is verified once (its
 * envelope), so its ceiling is verify/s per core x cores; a publish twice
 * (its envelope and the record's issuer signature, both with the
 * publisher's key), so its ceiling is half that, and publishes/s is quoted
 * against the half as well as against single durable LMDB commits (what
 * group commit buys). The text form also says that the
 * broker and the bench shared the machine's cores, because on a small
 * machine that lowers the broker's figures. Field names and layout are an
 * interface (scripts read the JSON, people compare the text across runs):
 * change them only on purpose.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "report.h"

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static double percentile(const uint32_t *sorted, size_t n, double q)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

void summarize_latencies(uint32_t *latency_us, size_t n, latency_summary *s)
{
    qsort(latency_us, n, sizeof(*latency_us), compare_u32);
    s->n = n;
    s->p50 = percentile(latency_us, n, 0.50);
    s->p90 = percentile(latency_us, n, 0.90);
    s->p99 = percentile(latency_us, n, 0.99);
    s->p999 = percentile(latency_us, n, 0.999);
    s->max = n > 0 ? latency_us[n - 1] : 0;
}

void report_latencies(results *r, uint32_t *latency_us, size_t n)
{
    qsort(latency_us, n, sizeof(*latency_us), compare_u32);
    r->p50_us = percentile(latency_us, n, 0.50);
    r->p99_us = percentile(latency_us, n, 0.99);
    r->p999_us = percentile(latency_us, n, 0.999);
    r->max_us = n > 0 ? latency_us[n - 1] : 0;
}

void read_cpu_model(char *out, size_t cap)
{
    char line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");

    snprintf(out, cap, "unknown CPU");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *colon = strchr(line, ':');

        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            colon++;
            while (*colon == ' ' || *colon == '\t')
                colon++;
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(out, cap, "%s", colon);
            break;
        }
    }
    fclose(f);
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

/* The most requests the machine could verify (one signature each): every
 * request ratio's denominator. */
static double verify_capacity(const results *r)
{
    return r->verify_per_core * r->cores;
}

/* The most publishes the machine could verify: two signatures each. */
static double publish_capacity(const results *r)
{
    return verify_capacity(r) / 2;
}

/* onced's CPU microseconds per publish during the publish phase. */
static double publish_cpu_us(const results *r)
{
    return ratio(r->publish_broker_cpu_cores * 1e6, r->publishes_per_s);
}

/* The publish phase's figures in both JSON forms' "broker", and its ratios
 * ending both forms' "ratios": one writer each, so the forms agree. */
static void print_publish_json(const results *r)
{
    printf("\"publishes_per_s\": %.1f, \"publish_broker_cpu_cores\": %.3f, "
           "\"publish_bench_cpu_cores\": %.3f, ", r->publishes_per_s,
           r->publish_broker_cpu_cores, r->publish_bench_cpu_cores);
}

static void print_publish_ratios_json(const results *r)
{
    printf("\"publishes_per_verify_capacity\": %.4f, "
           "\"publishes_per_lmdb_commit\": %.4f}\n",
           ratio(r->publishes_per_s, publish_capacity(r)),
           ratio(r->publishes_per_s, r->lmdb_commits));
}

static void print_publish_ratios_text(const results *r)
{
    printf("  %-44s %8.3f\n", "publishes/s / (verify/s per core x cores/2)",
           ratio(r->publishes_per_s, publish_capacity(r)));
    printf("  %-44s %8.3f\n", "publishes/s / lmdb durable commits/s",
           ratio(r->publishes_per_s, r->lmdb_commits));
}

/* At most 1% of the sends more than 1 ms after their due time. */
static bool schedule_kept(const open_phase *p)
{
    return (double)p->late_sends <= 0.01 * (double)p->due;
}

static void print_phase_text(const char *label, const open_phase *p)
{
    printf("  %-10s %9.0f %9.0f %7.0f %7.0f %7.0f %7.0f %8.0f %6" PRIu64
           " %6" PRIu64 " %5.2f %5.2f%s\n", label, p->rate, p->achieved,
           p->latency.p50, p->latency.p90, p->latency.p99, p->latency.p999,
           p->latency.max, p->errors, p->late_sends, p->broker_cpu_cores,
           p->bench_cpu_cores, schedule_kept(p) ? "" : "  schedule NOT kept");
}

/* The open-loop section: every phase, then the rate found and the ratios. */
static void print_open_text(const results *r)
{
    double capacity = verify_capacity(r);
    const open_phase *counted;

    printf("\nopen loop (%lu clients, %lu driver threads; latency in us from "
           "each request's due time)\n", opt.clients, opt.threads);
    printf("  %-10s %9s %9s %7s %7s %7s %7s %8s %6s %6s %5s %5s\n", "phase",
           "rate/s", "achieved", "p50", "p90", "p99", "p99.9", "max",
           "errors", "late", "onced", "bench");
    for (size_t i = 0; i < r->n_phases; i++) {
        char label[32];

        snprintf(label, sizeof(label), "%s%zu",
                 opt.find_max_rate ? (r->phases[i].pass ? "pass " : "fail ")
                                   : "rate ", i + 1);
        print_phase_text(label, &r->phases[i]);
    }
    if (opt.find_max_rate && r->max_found)
        print_phase_text("half max", &r->at_half);
    printf("  (late: sends more than 1 ms after their due time; onced, "
           "bench: cpu cores used)\n");
    printf("\nratios\n");
    if (opt.find_max_rate) {
        if (!r->max_found) {
            printf("  no rate kept p99 <= %.1f ms\n", opt.p99_target_ms);
            return;
        }
        printf("  %-44s %8.0f /s\n", "max rate with p99 <= target",
               r->max_rate);
        printf("  %-44s %8.1f ms\n", "  (target)", opt.p99_target_ms);
        printf("  %-44s %8.3f\n", "max rate / (verify/s per core x cores)",
               ratio(r->max_rate, capacity));
        printf("  %-44s %8.0f / %.0f us\n", "p50 / p99 at half the max rate",
               r->at_half.latency.p50, r->at_half.latency.p99);
        return;
    }
    counted = &r->phases[0];
    printf("  %-44s %8.3f\n", "achieved/s / (verify/s per core x cores)",
           ratio(counted->achieved, capacity));
    printf("  %-44s %8.3f\n", "achieved/s / zeromq curve echo/s",
           ratio(counted->achieved, r->echo_curve));
}

void print_text(const results *r)
{
    printf("once-bench: %d core%s, %s\n", r->cores, r->cores == 1 ? "" : "s",
           r->cpu_model);
    printf("caveat: the broker and this bench share the machine's %d "
           "core%s;\n        the broker's figures are lower than on a "
           "machine of its own.\n", r->cores, r->cores == 1 ? "" : "s");
    printf("\nmachine limits\n");
    printf("  %-36s %12.0f /s   (%zu-byte message, 1 thread)\n",
           "ed25519 verify, per core", r->verify_per_core,
           r->verify_message_bytes);
    printf("  %-36s %12.0f /s   (per core x %d)\n",
           "ed25519 verify, all cores", verify_capacity(r),
           r->cores);
    printf("  %-36s %12.0f /s   (measured, %d threads)\n",
           "ed25519 verify, all cores", r->verify_all_cores, r->cores);
    printf("  %-36s %12.0f /s   (%s, 4 dealers x 64 in flight, 256 B)\n",
           "zeromq echo, plain", r->echo_plain, opt.tcp ? "tcp" : "ipc");
    printf("  %-36s %12.0f /s   (%s, same, CURVE)\n", "zeromq echo, curve",
           r->echo_curve, opt.tcp ? "tcp" : "ipc");
    printf("  %-36s %12.0f /s   (one put per txn, fsync%s)\n",
           "lmdb durable commits", r->lmdb_commits, r->fs_note);
    if (!r->broker_ran) {
        printf("\nbroker run skipped (--limits-only)\n");
        return;
    }
    printf("\nbroker run (%lu records, %lu clients x window %lu, %lu driver "
           "threads, onced workers %lu%s)\n", r->records, opt.clients,
           opt.window, opt.threads, opt.workers == 0 ? (unsigned long)r->cores
                                                     : opt.workers,
           opt.workers == 0 ? " = cores" : "");
    /* The log cannot be turned off: these are the rates with it. */
    printf("  %-36s %12s      (every publish and request is a leaf, "
           "committed before its answer; a signed checkpoint each second)\n",
           "exchange log", "on");
    printf("  %-36s %12.0f /s   (%lu in %.2f s, window %lu on %zu "
           "connection%s)\n", "publishes", r->publishes_per_s, r->records,
           r->publish_seconds, opt.publish_window, r->publish_connections,
           r->publish_connections == 1 ? "" : "s");
    if (r->publishes_per_s > 0)
        printf("  %-36s %12.2f     (bench: %.2f; %.1f us of onced cpu a "
               "publish)\n", "cpu cores used by onced, publishing",
               r->publish_broker_cpu_cores, r->publish_bench_cpu_cores,
               publish_cpu_us(r));
    if (r->open_loop) {
        print_open_text(r);
        print_publish_ratios_text(r);
        return;
    }
    printf("  %-36s %12.0f /s   (%" PRIu64 " in %.2f s)\n",
           "granted requests", r->requests_per_s, r->requests_ok,
           r->request_seconds);
    printf("  %-36s %8.0f / %.0f / %.0f us   (max %.0f)\n",
           "latency p50 / p99 / p99.9", r->p50_us, r->p99_us, r->p999_us,
           r->max_us);
    printf("  %-36s %12" PRIu64 "\n", "errors", r->errors);
    printf("  %-36s %12.2f     (bench: %.2f)\n", "cpu cores used by onced",
           r->broker_cpu_cores, r->bench_cpu_cores);
    if (opt.console)
        printf("  %-36s %12.4f\n", "of which the console thread",
               r->console_cpu_cores);
    printf("  %-36s %12zu     (signed in %.1f s before the timed phase%s)\n",
           "pre-signed request envelopes", r->presigned, r->presign_seconds,
           r->presigned_exhausted ? "; ran out early" : "");
    printf("\nratios\n");
    printf("  %-44s %8.3f\n", "requests/s / (verify/s per core x cores)",
           ratio(r->requests_per_s, verify_capacity(r)));
    printf("  %-44s %8.3f\n", "requests/s / zeromq curve echo/s",
           ratio(r->requests_per_s, r->echo_curve));
    printf("  %-44s %8.3f\n", "requests/s / zeromq plain echo/s",
           ratio(r->requests_per_s, r->echo_plain));
    print_publish_ratios_text(r);
}

static void print_phase_json(const open_phase *p)
{
    printf("{\"rate\": %.1f, \"seconds\": %.3f, \"due\": %" PRIu64 ", "
           "\"answered\": %" PRIu64 ", \"errors\": %" PRIu64 ", "
           "\"achieved_per_s\": %.1f, \"latency_us\": {\"p50\": %.0f, "
           "\"p90\": %.0f, \"p99\": %.0f, \"p99.9\": %.0f, \"max\": %.0f}, "
           "\"late_sends\": %" PRIu64 ", \"max_send_lag_us\": %.0f, "
           "\"schedule_kept\": %s, \"broker_cpu_cores\": %.2f, "
           "\"bench_cpu_cores\": %.2f, \"pass\": %s}", p->rate, p->seconds,
           p->due, p->answered, p->errors, p->achieved, p->latency.p50,
           p->latency.p90, p->latency.p99, p->latency.p999, p->latency.max,
           p->late_sends, p->max_lag_us, schedule_kept(p) ? "true" : "false",
           p->broker_cpu_cores, p->bench_cpu_cores,
           p->pass ? "true" : "false");
}

static void print_open_json(const results *r)
{
    double capacity = verify_capacity(r);

    printf("  \"broker\": {\"records\": %lu, \"clients\": %lu, "
           "\"threads\": %lu, ", r->records, opt.clients, opt.threads);
    print_publish_json(r);
    printf("\"p99_target_ms\": %.3f, \"phases\": [", opt.p99_target_ms);
    for (size_t i = 0; i < r->n_phases; i++) {
        printf("%s\n    ", i > 0 ? "," : "");
        print_phase_json(&r->phases[i]);
    }
    printf("],\n    \"max_rate\": %.1f, \"at_half_max\": ",
           r->max_found ? r->max_rate : 0);
    if (r->max_found)
        print_phase_json(&r->at_half);
    else
        printf("null");
    printf("},\n");
    printf("  \"ratios\": {\"max_rate_per_verify_capacity\": %.4f, "
           "\"achieved_per_verify_capacity\": %.4f, ",
           r->max_found ? ratio(r->max_rate, capacity) : 0,
           opt.find_max_rate ? 0 : ratio(r->phases[0].achieved, capacity));
    print_publish_ratios_json(r);
}

void print_json(const results *r)
{
    printf("{\n");
    printf("  \"machine\": {\"cores\": %d, \"cpu\": \"", r->cores);
    for (const char *p = r->cpu_model; *p; p++)
        if (*p != '"' && *p != '\\')
            putchar(*p);
    printf("\", \"shared_with_broker\": true},\n");
    printf("  \"limits\": {\"ed25519_verify_per_core\": %.0f, "
           "\"ed25519_verify_all_cores\": %.0f, "
           "\"ed25519_verify_all_cores_measured\": %.0f, "
           "\"verify_message_bytes\": %zu, "
           "\"zmq_echo_plain\": %.0f, \"zmq_echo_curve\": %.0f, "
           "\"transport\": \"%s\", \"lmdb_durable_commits\": %.0f},\n",
           r->verify_per_core, verify_capacity(r),
           r->verify_all_cores, r->verify_message_bytes, r->echo_plain,
           r->echo_curve, opt.tcp ? "tcp" : "ipc", r->lmdb_commits);
    if (r->broker_ran && r->open_loop) {
        print_open_json(r);
    } else if (r->broker_ran) {
        printf("  \"broker\": {\"records\": %lu, \"clients\": %lu, "
               "\"window\": %lu, \"threads\": %lu, \"seconds\": %.3f, ",
               r->records, opt.clients, opt.window, opt.threads,
               r->request_seconds);
        print_publish_json(r);
        printf("\"requests\": %" PRIu64 ", "
               "\"answers_total\": %" PRIu64 ", "
               "\"requests_per_s\": %.1f, \"latency_us\": {\"p50\": %.0f, "
               "\"p99\": %.0f, \"p99.9\": %.0f, \"max\": %.0f}, "
               "\"errors\": %" PRIu64 ", \"broker_cpu_cores\": %.2f, "
               "\"bench_cpu_cores\": %.2f, \"console_cpu_cores\": %.4f, "
               "\"presigned\": %zu, \"presigned_exhausted\": %s},\n",
               r->requests_ok,
               r->requests_total, r->requests_per_s, r->p50_us, r->p99_us, r->p999_us,
               r->max_us, r->errors, r->broker_cpu_cores, r->bench_cpu_cores,
               r->console_cpu_cores, r->presigned, r->presigned_exhausted ? "true" : "false");
        printf("  \"ratios\": {\"requests_per_verify_capacity\": %.4f, "
               "\"requests_per_zmq_curve_echo\": %.4f, "
               "\"requests_per_zmq_plain_echo\": %.4f, ",
               ratio(r->requests_per_s, verify_capacity(r)),
               ratio(r->requests_per_s, r->echo_curve),
               ratio(r->requests_per_s, r->echo_plain));
        print_publish_ratios_json(r);
    } else {
        printf("  \"broker\": null,\n  \"ratios\": null\n");
    }
    printf("}\n");
}

