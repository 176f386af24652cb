/*
 * enterprise_startup.c - the four departments of the enterprise start-up
 * case, driven through libonce against a running broker.
 *
 * The story: an applicant founds a company. Market supervision issues the
 * business licence; the tax bureau (tax registration), public security
 * (company seal engraving) and a bank (account opening) each need it. Today
 * the applicant carries a photocopy to each; with once, market supervision
 * publishes the licence once and each department fetches the fields its
 * grant allows, checking market supervision's signature itself.
 *
 * This program plays all four department systems, each with its own key and
 * its own CURVE connection, for `--count` generated enterprises with valid
 * Unified Social Credit Codes. It also shows the two refusals a reader of
 * the demo should see: a request with no grant behind it, and a revoked
 * licence answered as revoked. It prints a summary whose last line is
 * `copies avoided: N`, N being the requests served from the registry.
 *
 * --requesters and --phase let other programs play some departments:
 * deploy/demo/enterprise-startup.sh, which sets up the broker (oncectl),
 * runs the tax bureau through once-gateway and the bank through
 * once-spool, and this program for market supervision and public security
 * in three phases (publish; the requests, beside the other two; revoke),
 * so that every licence exists before anyone asks and is revoked only
 * after everyone has asked.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "once/once.h"

#define LICENCE_TYPE "business-licence"
#define ISSUER "market-supervision"
/* Signed into the revocation's header: every requester of licence 0 gets
 * it with the revocation (PROTOCOL.md 4.2). */
#define REVOCATION_REASON "deregistered: the enterprise was dissolved"

enum { DEPT_MARKET, DEPT_TAX, DEPT_POLICE, DEPT_BANK, DEPT_COUNT };

/* One requesting department: its purpose and exactly the fields its grant
 * allows (deploy/demo/enterprise-startup.sh creates the same grants). */
typedef struct requester {
    const char *id;
    const char *purpose;
    const char *case_prefix;
    const char *granted[8];
} requester;

static const char *const department_ids[DEPT_COUNT] = {
    ISSUER, "tax", "public-security", "bank"};

static const requester requesters[] = {
    {"tax", "tax-registration", "TAX",
     {"name", "legal_representative", "registered_capital", "address",
      "business_scope", NULL}},
    {"public-security", "seal-engraving", "SEAL",
     {"name", "legal_representative", NULL}},
    {"bank", "account-opening", "ACCT",
     {"name", "legal_representative", "registered_capital", "address",
      NULL}},
};

static const char *const licence_fields[] = {
    "name", "legal_representative", "registered_capital", "address",
    "business_scope", "established_on"};

enum {
    PHASE_PUBLISH = 1u << 0,
    PHASE_REQUEST = 1u << 1,
    PHASE_REVOKE = 1u << 2,
    PHASE_ALL = PHASE_PUBLISH | PHASE_REQUEST | PHASE_REVOKE
};

#define REQUESTER_COUNT (sizeof(requesters) / sizeof(requesters[0]))

typedef struct demo_options {
    const char *endpoint;
    const char *broker_key;
    const char *key_dir;
    unsigned count;
    unsigned phases;                   /* PHASE_* */
    const char *codes_path;            /* NULL, or where to list codes */
    bool plays[REQUESTER_COUNT];       /* the requesters this program is */
} demo_options;

typedef struct demo_totals {
    unsigned published;
    unsigned served;
    unsigned verified;
    unsigned refused_as_expected;
    unsigned revoked_answers;
} demo_totals;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: once-demo-enterprise --endpoint EP --broker-key FILE "
            "--keys DIR [--count N]\n"
            "\n"
            "Plays market supervision, tax, public security and a bank "
            "against a\n"
            "running onced: publishes N business licences, requests each from "
            "the\n"
            "three requesters with their purposes and case ids, verifies "
            "every copy\n"
            "against market supervision's signature and granted fields, shows "
            "a\n"
            "request without a grant refused and a revoked licence answered "
            "as\n"
            "revoked, and ends with 'copies avoided: N'.\n"
            "\n"
            "  --endpoint EP      broker endpoint, e.g. tcp://127.0.0.1:7700\n"
            "  --broker-key FILE  the broker's public key file (broker.pub)\n"
            "  --keys DIR         DIR/<department>.key and .key.pub for "
            "the four departments\n"
            "  --count N          enterprises to generate (default 3000)\n"
            "  --requesters LIST  the requesters played, a comma list of "
            "tax,\n"
            "                     public-security, bank (default all "
            "three)\n"
            "  --phase PHASE      publish (the licences), request (every "
            "licence by\n"
            "                     each requester played, and the refusal "
            "when\n"
            "                     public-security is), revoke (licence 0, "
            "with a\n"
            "                     reason; the bank's\n"
            "                     request of it when the bank is played) or "
            "all\n"
            "                     (the default: the three in turn; a "
            "single phase\n"
            "                     ends with one line of its counts, not "
            "the summary)\n"
            "  --codes FILE       with publish: also write the licences' "
            "codes to\n"
            "                     FILE (new, 0600), one \"SERIAL CODE\" a "
            "line, for\n"
            "                     the departments played elsewhere\n");
}

/* GB 11714 organization code: 8 characters and a check character, weights
 * 3,7,9,10,5,8,4,2 mod 11. Digits only here, which the standard allows. */
static void make_organization_code(char out[10], unsigned serial)
{
    static const int weights[8] = {3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0, check, i;

    snprintf(out, 10, "%08u", 10000000u + serial);
    for (i = 0; i < 8; i++)
        sum += (out[i] - '0') * weights[i];
    check = 11 - sum % 11;
    out[8] = check == 10 ? 'X' : check == 11 ? '0' : (char)('0' + check);
    out[9] = '\0';
}

/* 9 (industry and commerce), 1 (enterprise), 110108 (Beijing Haidian),
 * the organization code, then the GB 32100 check character. */
static int make_credit_code(char out[19], unsigned serial)
{
    char org[10];

    make_organization_code(org, serial);
    snprintf(out, 19, "91110108%s", org);
    /* The check character goes where snprintf put the terminator. */
    out[18] = '\0';
    return once_uscc_check_char(out, &out[17]) < 0 ? -1 : 0;
}

static int open_department(once_client **client, const demo_options *opt,
                           const char *id, const uint8_t broker_pk[32])
{
    char path[4096];
    once_keypair kp;
    once_error err = {0};
    int rc;

    snprintf(path, sizeof(path), "%s/%s.key", opt->key_dir, id);
    if (once_keypair_load(&kp, path, &err) < 0) {
        fprintf(stderr, "demo: %s: %s\n", path, err.message);
        return -1;
    }
    rc = once_client_open(client, opt->endpoint, id, &kp, broker_pk, NULL,
                          &err);
    once_keypair_wipe(&kp);
    if (rc < 0) {
        fprintf(stderr, "demo: %s cannot connect: %s\n", id, err.message);
        return -1;
    }
    if (once_client_ping(*client, &err) < 0) {
        fprintf(stderr, "demo: %s: broker not answering: %s\n", id,
                err.message);
        return -1;
    }
    return 0;
}

static int publish_licence(once_client *market, const once_keypair *issuer,
                           const char *code, unsigned serial, uint64_t version)
{
    char name[96], representative[64], capital[32], address[128];
    const char *values[6];
    once_record *r = NULL;
    once_error err = {0};
    size_t i;
    int rc;

    snprintf(name, sizeof(name), "Haidian Enterprise No. %u Co., Ltd.",
             serial);
    snprintf(representative, sizeof(representative), "Representative %u",
             serial);
    snprintf(capital, sizeof(capital), "%u0000 CNY", 10 + serial % 990);
    snprintf(address, sizeof(address), "%u Zhongguancun Street, Haidian, "
             "Beijing", 1 + serial % 400);
    values[0] = name;
    values[1] = representative;
    values[2] = capital;
    values[3] = address;
    values[4] = "software development; technical services";
    values[5] = "2026-11-29";
    rc = once_record_new(&r, LICENCE_TYPE, code, version, ISSUER,
                         1796000000000ull, 0, &err);
    for (i = 0; rc == 0 && i < 6; i++)
        rc = once_record_add_text(r, licence_fields[i], values[i], &err);
    if (rc == 0)
        rc = once_record_sign(r, issuer, &err);
    if (rc == 0)
        rc = once_client_publish(market, r, &err);
    if (rc < 0)
        fprintf(stderr, "demo: publish of licence %u failed: %s\n", serial,
                err.message);
    once_record_free(r);
    return rc;
}

/* The copy must verify against the issuer's key and disclose exactly the
 * granted fields. */
static bool copy_is_exactly_granted(const once_record *copy,
                                    const requester *who,
                                    const uint8_t issuer_pk[32])
{
    size_t granted = 0, i;
    const uint8_t *value;
    size_t len;

    if (once_record_verify(copy, issuer_pk, NULL) < 0)
        return false;
    while (who->granted[granted] != NULL)
        granted++;
    if (once_record_disclosure_count(copy) != granted)
        return false;
    for (i = 0; i < granted; i++)
        if (once_record_field_value(copy, who->granted[i], &value, &len) < 0)
            return false;
    return true;
}

static int request_licence(once_client *client, const requester *who,
                           const char *code, unsigned serial,
                           const uint8_t issuer_pk[32], demo_totals *totals)
{
    char case_id[64];
    once_record *copy = NULL;
    once_error err = {0};
    int rc;

    snprintf(case_id, sizeof(case_id), "%s-2026-%06u", who->case_prefix,
             serial);
    rc = once_client_request(client, LICENCE_TYPE, code, who->purpose,
                             case_id, 0, &copy, &err);
    if (rc < 0) {
        fprintf(stderr, "demo: %s request %s failed: %s\n", who->id, case_id,
                err.message);
        return rc;
    }
    totals->served++;
    if (!copy_is_exactly_granted(copy, who, issuer_pk)) {
        fprintf(stderr, "demo: %s got a copy that does not verify or "
                "discloses other fields than granted (%s)\n", who->id,
                case_id);
        once_record_free(copy);
        return -1;
    }
    totals->verified++;
    once_record_free(copy);
    return 0;
}

/* Public security asks for the licence under the tax bureau's purpose, for
 * which it has no grant: the broker must refuse with NO_GRANT. */
static int show_refusal(once_client *police, const char *code,
                        demo_totals *totals)
{
    once_record *copy = NULL;
    once_error err = {0};
    int rc = once_client_request(police, LICENCE_TYPE, code,
                                 "tax-registration", "SEAL-2026-REFUSED", 0,
                                 &copy, &err);

    if (rc == -ONCE_ERR_NO_GRANT) {
        printf("refused as expected: public-security asking for "
               "tax-registration: %s\n", err.message);
        totals->refused_as_expected++;
        return 0;
    }
    once_record_free(copy);
    fprintf(stderr, "demo: a request without a grant was not refused with "
            "NO_GRANT (got %s)\n", once_error_name(rc));
    return -1;
}

/* Market supervision revokes one licence, with its reason; the bank's
 * next request gets the signed revocation, not the old fields (asked
 * elsewhere when bank is NULL: the bank is not played here; the script
 * then also shows the notices the bank and the tax bureau receive). */
static int show_revocation(once_client *market, once_client *bank,
                           const once_keypair *issuer,
                           const uint8_t issuer_pk[32], const char *code,
                           demo_totals *totals)
{
    once_record *revocation = NULL, *answer = NULL;
    once_error err = {0};
    int rc;

    rc = once_record_new_revocation_reason(&revocation, LICENCE_TYPE, code,
                                           2, ISSUER, REVOCATION_REASON,
                                           &err);
    if (rc == 0)
        rc = once_record_sign(revocation, issuer, &err);
    if (rc == 0)
        rc = once_client_revoke(market, revocation, &err);
    once_record_free(revocation);
    if (rc == 0 && bank == NULL) {
        printf("market-supervision revoked licence 0: version 2, reason: "
               "%s\n", REVOCATION_REASON);
        return 0;
    }
    if (rc == 0)
        rc = once_client_request(bank, LICENCE_TYPE, code, "account-opening",
                                 "ACCT-2026-REVOKED", 0, &answer, &err);
    if (rc < 0) {
        fprintf(stderr, "demo: revocation step failed: %s\n", err.message);
        return rc;
    }
    if (once_record_status_of(answer) != ONCE_STATUS_REVOKED ||
        once_record_verify(answer, issuer_pk, NULL) < 0) {
        fprintf(stderr, "demo: a revoked licence was not answered as a "
                "signed revocation\n");
        once_record_free(answer);
        return -1;
    }
    printf("revoked licence answered as revoked: version %llu, signed by "
           "%s, reason: %s\n", (unsigned long long)once_record_version(answer),
           once_record_issuer(answer), once_record_reason(answer));
    totals->revoked_answers++;
    once_record_free(answer);
    return 0;
}

/* "tax,bank" into plays[]; -1 for a name that is not a requester's or an
 * empty list. */
static int parse_requesters(const char *list, bool plays[REQUESTER_COUNT])
{
    const char *p = list;
    size_t r, n, named = 0;

    for (r = 0; r < REQUESTER_COUNT; r++)
        plays[r] = false;
    while (*p != '\0') {
        n = strcspn(p, ",");
        for (r = 0; r < REQUESTER_COUNT; r++)
            if (strlen(requesters[r].id) == n &&
                strncmp(p, requesters[r].id, n) == 0)
                break;
        if (r == REQUESTER_COUNT)
            return -1;
        plays[r] = true;
        named++;
        p += n;
        if (*p == ',')
            p++;
    }
    return named > 0 ? 0 : -1;
}

static int parse_options(int argc, char **argv, demo_options *opt)
{
    static const struct option long_options[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"broker-key", required_argument, NULL, 'b'},
        {"keys", required_argument, NULL, 'k'},
        {"count", required_argument, NULL, 'n'},
        {"requesters", required_argument, NULL, 'r'},
        {"phase", required_argument, NULL, 'p'},
        {"codes", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    char *end;
    unsigned long count;
    size_t r;

    opt->count = 3000;
    opt->phases = PHASE_ALL;
    for (r = 0; r < REQUESTER_COUNT; r++)
        opt->plays[r] = true;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 'e': opt->endpoint = optarg; break;
        case 'b': opt->broker_key = optarg; break;
        case 'k': opt->key_dir = optarg; break;
        case 'n':
            count = strtoul(optarg, &end, 10);
            if (*end != '\0' || count == 0 || count > 1000000) {
                fprintf(stderr, "demo: --count takes 1..1000000\n");
                return 2;
            }
            opt->count = (unsigned)count;
            break;
        case 'r':
            if (parse_requesters(optarg, opt->plays) < 0) {
                fprintf(stderr, "demo: --requesters takes a comma list of "
                        "tax, public-security, bank\n");
                return 2;
            }
            break;
        case 'p':
            opt->phases = strcmp(optarg, "publish") == 0 ? PHASE_PUBLISH
                          : strcmp(optarg, "request") == 0 ? PHASE_REQUEST
                          : strcmp(optarg, "revoke") == 0  ? PHASE_REVOKE
                          : strcmp(optarg, "all") == 0     ? PHASE_ALL
                                                           : 0;
            if (opt->phases == 0) {
                fprintf(stderr, "demo: --phase takes publish, request, "
                        "revoke or all\n");
                return 2;
            }
            break;
        case 'c': opt->codes_path = optarg; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    if (!opt->endpoint || !opt->broker_key || !opt->key_dir) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* A new file, 0600, never through a planted name or link. */
static FILE *open_codes(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

    if (f == NULL) {
        fprintf(stderr, "demo: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    return f;
}

static int run_demo(const demo_options *opt, once_client *clients[DEPT_COUNT],
                    const once_keypair *issuer, demo_totals *totals)
{
    char code[19];
    unsigned i;
    size_t r;

    if (opt->phases & PHASE_PUBLISH) {
        FILE *codes = NULL;

        if (opt->codes_path != NULL && (codes = open_codes(opt->codes_path))
                                           == NULL)
            return -1;
        printf("market-supervision publishes %u business licences\n",
               opt->count);
        for (i = 0; i < opt->count; i++) {
            if (make_credit_code(code, i) < 0 ||
                publish_licence(clients[DEPT_MARKET], issuer, code, i, 1) < 0) {
                if (codes != NULL)
                    fclose(codes);
                return -1;
            }
            totals->published++;
            if (codes != NULL)
                fprintf(codes, "%u %s\n", i, code);
        }
        if (codes != NULL && fclose(codes) != 0) {
            fprintf(stderr, "demo: %s: %s\n", opt->codes_path,
                    strerror(errno));
            return -1;
        }
        /* Named so the script can print this enterprise's access report. */
        make_credit_code(code, 0);
        printf("example enterprise (licence 0): %s\n", code);
    }
    if (opt->phases & PHASE_REQUEST) {
        for (r = 0; r < REQUESTER_COUNT; r++)
            if (opt->plays[r])
                printf("%s requests every licence\n", requesters[r].id);
        for (i = 0; i < opt->count; i++) {
            make_credit_code(code, i);
            for (r = 0; r < REQUESTER_COUNT; r++)
                if (opt->plays[r] &&
                    request_licence(clients[DEPT_TAX + r], &requesters[r],
                                    code, i, issuer->public_key, totals) < 0)
                    return -1;
        }
        make_credit_code(code, 0);
        if (opt->plays[DEPT_POLICE - DEPT_TAX] &&
            show_refusal(clients[DEPT_POLICE], code, totals) < 0)
            return -1;
    }
    if (opt->phases & PHASE_REVOKE) {
        make_credit_code(code, 0);
        return show_revocation(clients[DEPT_MARKET],
                               opt->plays[DEPT_BANK - DEPT_TAX]
                                   ? clients[DEPT_BANK] : NULL,
                               issuer, issuer->public_key, code, totals);
    }
    return 0;
}

int main(int argc, char **argv)
{
    demo_options opt = {0};
    demo_totals totals = {0};
    once_client *clients[DEPT_COUNT] = {0};
    uint8_t broker_pk[32];
    once_keypair issuer;
    once_error err = {0};
    char path[4096];
    int rc, i;

    if ((rc = parse_options(argc, argv, &opt)) != 0)
        return rc == 1 ? 0 : rc;
    if (once_init() < 0) {
        fprintf(stderr, "demo: libsodium failed to initialise\n");
        return 1;
    }
    if (once_public_key_load(broker_pk, opt.broker_key, &err) < 0) {
        fprintf(stderr, "demo: %s: %s\n", opt.broker_key, err.message);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/%s.key", opt.key_dir, ISSUER);
    if (once_keypair_load(&issuer, path, &err) < 0) {
        fprintf(stderr, "demo: %s: %s\n", path, err.message);
        return 1;
    }
    rc = 0;
    for (i = 0; i < DEPT_COUNT && rc == 0; i++)
        if (i == DEPT_MARKET || opt.plays[i - DEPT_TAX])
            rc = open_department(&clients[i], &opt, department_ids[i],
                                 broker_pk);
    if (rc == 0)
        rc = run_demo(&opt, clients, &issuer, &totals);
    once_keypair_wipe(&issuer);
    for (i = 0; i < DEPT_COUNT; i++)
        once_client_close(clients[i]);

    if (opt.phases != PHASE_ALL) {
        /* One phase of several: the caller sums up. */
        printf("%s: %u published, %u served, %u verified, %u refused as "
               "expected, %u answered revoked\n",
               opt.phases == PHASE_PUBLISH   ? "publish phase"
               : opt.phases == PHASE_REQUEST ? "request phase"
                                             : "revoke phase",
               totals.published, totals.served, totals.verified,
               totals.refused_as_expected, totals.revoked_answers);
        return rc == 0 ? 0 : 1;
    }
    printf("\nsummary\n");
    printf("licences published:            %u\n", totals.published);
    printf("requests served:               %u\n", totals.served);
    printf("copies verified (signature and granted fields): %u\n",
           totals.verified);
    printf("requests refused (no grant):   %u\n", totals.refused_as_expected);
    printf("revoked licences answered:     %u\n", totals.revoked_answers);
    printf("copies avoided: %u\n", totals.served);
    return rc == 0 ? 0 : 1;
}
