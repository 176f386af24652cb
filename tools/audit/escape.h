/*
 * escape.h - once-audit prints text from the log only escaped.
 *
 * See escape.c.
 */
#ifndef ONCE_TOOLS_AUDIT_ESCAPE_H
#define ONCE_TOOLS_AUDIT_ESCAPE_H

#include <stdio.h>

/* Writes s to f with everything that is not printable text escaped:
 * backslash as \\, control bytes (C0, DEL) and bytes that are not UTF-8
 * as \xNN, and the C1 controls and the Unicode line, paragraph and
 * bidirectional controls as \u{XXXX}. Printable ASCII and other UTF-8
 * text (a department's name in Chinese) pass unchanged. */
void audit_put_escaped(FILE *f, const char *s);

#endif
