/*
 * commands.h - the commands of oncectl, one file per group.
 *
 * Each is a command_fn (cli.h): it parses its own options from argv
 * (argv[0] is its word) and returns the exit status. main.c's table names
 * them with their synopsis and --help text.
 */
#ifndef ONCE_TOOLS_ONCECTL_COMMANDS_H
#define ONCE_TOOLS_ONCECTL_COMMANDS_H

#include "cli.h"

/* init.c */
int cmd_init(const command *cmd, int argc, char **argv);
int cmd_keygen(const command *cmd, int argc, char **argv);

/* dept.c */
int cmd_dept_add(const command *cmd, int argc, char **argv);
int cmd_dept_list(const command *cmd, int argc, char **argv);
int cmd_dept_suspend(const command *cmd, int argc, char **argv);
int cmd_dept_resume(const command *cmd, int argc, char **argv);

/* type.c */
int cmd_type_add(const command *cmd, int argc, char **argv);
int cmd_type_list(const command *cmd, int argc, char **argv);

/* grant.c */
int cmd_grant_add(const command *cmd, int argc, char **argv);
int cmd_grant_revoke(const command *cmd, int argc, char **argv);
int cmd_grant_list(const command *cmd, int argc, char **argv);

/* subscriptions.c */
int cmd_subscriptions(const command *cmd, int argc, char **argv);

/* exchange_log.c */
int cmd_log_status(const command *cmd, int argc, char **argv);
int cmd_log_export(const command *cmd, int argc, char **argv);

#endif
