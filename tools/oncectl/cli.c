/*
 * cli.c - oncectl's command line: the option helpers every command uses.
 *
 * oncectl checks the command line before it touches the database, so that
 * a typo is a usage error (exit 2) that names the bad argument and shows
 * the command's synopsis, while a refusal by the database (an existing id,
 * an unknown issuer) is an operational error (exit 1). Every command takes
 * -h and --help, and every name it is given (department ids, record types,
 * fields) is checked against the one name rule of policy.c here, with the
 * same message, whichever command it came to.
 *
 * Every message goes to stderr prefixed "oncectl: "; stdout carries only
 * results, so lists and keygen's public key can be piped.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void say_error_va(const char *fmt, va_list ap)
{
    fputs("oncectl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void say_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    say_error_va(fmt, ap);
    va_end(ap);
}

static const char *command_word(const command *cmd, char *buf, size_t cap)
{
    if (cmd->group != NULL)
        snprintf(buf, cap, "%s %s", cmd->group, cmd->name);
    else
        snprintf(buf, cap, "%s", cmd->name);
    return buf;
}

int usage_error(const command *cmd, const char *fmt, ...)
{
    char word[32];
    va_list ap;

    va_start(ap, fmt);
    say_error_va(fmt, ap);
    va_end(ap);
    fprintf(stderr, "usage: oncectl [--home HOME] %s\n", cmd->synopsis);
    fprintf(stderr, "Try 'oncectl %s --help' for more.\n",
            command_word(cmd, word, sizeof(word)));
    return EXIT_USAGE;
}

static void print_command_help(const command *cmd)
{
    printf("usage: oncectl [--home HOME] %s\n\n%s", cmd->synopsis, cmd->help);
}

/* One getopt_long step with the messages and exit codes of this tool. -h
 * and --help are accepted by every command. */
int next_option(const command *cmd, int argc, char **argv,
                const struct option *longopts)
{
    int c = getopt_long(argc, argv, ":h", longopts, NULL);

    switch (c) {
    case 'h':
        print_command_help(cmd);
        return OPT_HELP;
    case '?':
        if (optopt != 0)
            usage_error(cmd, "unknown option '-%c'", optopt);
        else
            usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        return OPT_BAD;
    case ':':
        usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        return OPT_BAD;
    default:
        return c;
    }
}

/* Commands without options still take --help; returns OPT_END when only
 * positional arguments are left. */
static int no_options(const command *cmd, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END)
        if (c == OPT_HELP || c == OPT_BAD)
            return c;
    return OPT_END;
}

/* Checks the number of positional arguments left after the options. */
int expect_args(const command *cmd, int argc, char **argv, int min,
                int max, const char *what)
{
    int n = argc - optind;

    if (n < min)
        return usage_error(cmd, "missing %s", what);
    if (n > max)
        return usage_error(cmd, "unexpected argument '%s'",
                           argv[optind + max]);
    return 0;
}

int arguments_only(const command *cmd, int argc, char **argv, int min,
                   int max, const char *what)
{
    int rc = no_options(cmd, argc, argv);

    if (rc != OPT_END)
        return rc == OPT_HELP ? EXIT_SUCCESS : EXIT_USAGE;
    if ((rc = expect_args(cmd, argc, argv, min, max, what)) != 0)
        return rc;
    return OPT_END;
}

int check_name(const command *cmd, const char *what, const char *name)
{
    if (policy_valid_name(name))
        return 0;
    return usage_error(cmd, "invalid %s '%s': use 1 to %d characters of "
                       "a-z 0-9 . _ - starting with a letter or digit",
                       what, name, ONCE_MAX_NAME);
}

/* Appends the comma-separated names in arg to list (count entries so far,
 * at most max); each must follow the name rule. */
int split_names(const command *cmd, const char *option,
                const char *arg, char (*list)[ONCE_MAX_NAME + 1],
                size_t *count, size_t max)
{
    const char *p = arg;

    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len == 0)
            return usage_error(cmd, "empty name in %s '%s'", option, arg);
        if (*count == max)
            return usage_error(cmd, "%s takes at most %zu names", option,
                               max);
        if (len > ONCE_MAX_NAME)
            return usage_error(cmd, "name '%.*s' in %s is longer than %d "
                               "characters", (int)len, p, option,
                               ONCE_MAX_NAME);
        memcpy(list[*count], p, len);
        list[*count][len] = '\0';
        if (!policy_valid_name(list[*count]))
            return usage_error(cmd, "invalid name '%s' in %s: use 1 to %d "
                               "characters of a-z 0-9 . _ - starting with a "
                               "letter or digit", list[*count], option,
                               ONCE_MAX_NAME);
        (*count)++;
        if (end == NULL)
            return 0;
        p = end + 1;
    }
}

int join_path(char *out, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap) {
        say_error("path %s/%s is too long", dir, name);
        return -1;
    }
    return 0;
}

void widen(int *width, const char *text)
{
    int len = (int)strlen(text);

    if (len > *width)
        *width = len;
}

const char *join_names(char *out, size_t cap,
                       const char (*names)[ONCE_MAX_NAME + 1],
                       size_t count)
{
    size_t i, len = 0;

    out[0] = '\0';
    for (i = 0; i < count; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s",
                                i > 0 ? "," : "", names[i]);
    return out;
}
