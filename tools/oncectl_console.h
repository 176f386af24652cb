/*
 * oncectl_console.h - oncectl's commands for the operator's console: the
 * token (`init`, `console token`), `status` and `top`. See
 * oncectl_console.c.
 */
#ifndef ONCE_ONCECTL_CONSOLE_H
#define ONCE_ONCECTL_CONSOLE_H

#include <stdbool.h>

/* Writes a new token to HOME/console.token (0600): with replace false the
 * file must not exist (O_EXCL); with replace true it is replaced
 * atomically. Prints what failed to stderr. 0 or -1. */
int oncectl_console_token_write(const char *home, bool replace);

/* `oncectl console token`: a new token; EXIT_* status. */
int oncectl_console_token(const char *home);

/* `oncectl status`: one screen from the console API; `oncectl top`: the
 * same, redrawn every interval_ms until q (or iterations screens when
 * iterations > 0). EXIT_* status. */
int oncectl_status(const char *home);
int oncectl_top(const char *home, unsigned interval_ms, unsigned iterations);

#endif
