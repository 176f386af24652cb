/*
 * commands.h - the commands of once-audit, one file each.
 *
 * Each takes the arguments from its command word on (argv[0] is the
 * word), parses its own options and returns the exit status (util.h):
 * EXIT_CLEAN, EXIT_PROBLEMS or EXIT_USAGE. main.c dispatches to them.
 */
#ifndef ONCE_TOOLS_AUDIT_COMMANDS_H
#define ONCE_TOOLS_AUDIT_COMMANDS_H

int cmd_verify(int argc, char **argv);      /* verify.c */
int cmd_prove(int argc, char **argv);       /* prove.c */
int cmd_check_proof(int argc, char **argv); /* check_proof.c */
int cmd_consistency(int argc, char **argv); /* consistency.c */
int cmd_subject(int argc, char **argv);     /* subject.c */

#endif
