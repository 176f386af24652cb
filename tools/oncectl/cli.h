/*
 * cli.h - oncectl's command line: the command table's entry, the option
 * helpers every command uses, and the messages and exit codes they give.
 *
 * See cli.c.
 */
#ifndef ONCE_TOOLS_ONCECTL_CLI_H
#define ONCE_TOOLS_ONCECTL_CLI_H

#include <getopt.h>
#include <stddef.h>

#include "once/once.h"
#include "policy.h"

/* Exit status: EXIT_SUCCESS, the operation failed, or a usage error. */
#define EXIT_FAILED 1
#define EXIT_USAGE 2

/* A key prefix is enough to tell keys apart by eye and to compare with a
 * .pub file; the whole key is in that file. */
#define KEY_PREFIX_BYTES 8

/* The longest comma-joined lists join_names writes. */
#define ISSUER_LIST_MAX (POLICY_MAX_ISSUERS * (ONCE_MAX_NAME + 1))
#define FIELD_LIST_MAX (ONCE_MAX_FIELDS * (ONCE_MAX_NAME + 1))

/* One entry of the command table (main.c). A command_fn gets the
 * arguments from its command word on and returns the exit status. */
typedef struct command command;
typedef int (*command_fn)(const command *cmd, int argc, char **argv);

struct command {
    const char *group;    /* "dept", "type", "grant", or NULL */
    const char *name;
    const char *synopsis; /* after "oncectl " */
    const char *summary;  /* one line for the global help */
    const char *help;     /* the command's own --help text */
    command_fn run;
};

/* What next_option returns besides an option's character. */
enum { OPT_END = -1, OPT_HELP = -2, OPT_BAD = -3 };

/* "oncectl: " and the message on stderr. */
void say_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the problem and the command's synopsis; returns EXIT_USAGE. */
int usage_error(const command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One getopt_long step (set optind to 0 before the first): an option's
 * character, OPT_END, OPT_HELP after printing the command's --help, or
 * OPT_BAD after printing what is wrong. */
int next_option(const command *cmd, int argc, char **argv,
                const struct option *longopts);

/* For a command without options: handles --help, then checks that
 * min..max positional arguments follow (what names the first one missing).
 * OPT_END when the command is to run, with its arguments from optind;
 * else the exit status to return. */
int arguments_only(const command *cmd, int argc, char **argv, int min,
                   int max, const char *what);

/* Checks the number of positional arguments left after the options: 0,
 * or EXIT_USAGE after printing what is wrong. */
int expect_args(const command *cmd, int argc, char **argv, int min, int max,
                const char *what);

/* 0 when name follows the name rule of ids, types and fields, else
 * EXIT_USAGE after saying so (what: which argument it is). */
int check_name(const command *cmd, const char *what, const char *name);

/* Appends the comma-separated names in arg to list (count entries so far,
 * at most max); each must follow the name rule. 0, or EXIT_USAGE. */
int split_names(const command *cmd, const char *option, const char *arg,
                char (*list)[ONCE_MAX_NAME + 1], size_t *count, size_t max);

/* dir/name into out; -1 with a message when it does not fit. */
int join_path(char *out, size_t cap, const char *dir, const char *name);

/* The list commands measure their columns in a first pass: widens *width
 * to text's length. */
void widen(int *width, const char *text);

/* Joins names with commas into out (large enough for count names). */
const char *join_names(char *out, size_t cap,
                       const char (*names)[ONCE_MAX_NAME + 1], size_t count);

#endif
