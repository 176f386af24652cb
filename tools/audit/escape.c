/*
 * escape.c - once-audit prints text from the log only escaped.
 *
 * Department ids and names, record types, purposes, case ids, file names:
 * everything once-audit prints from an export came from outside, mostly
 * from department systems, and its output is read by people and by
 * scripts. A case id of "X\tGRANTED\n" once added a forged row to the
 * citizen's report of `once-audit subject`; an ESC sequence can rewrite a
 * terminal's screen, and a Unicode bidirectional override can make a line
 * read other than its bytes. Even where the broker refuses such text when
 * it receives it, an auditor also checks logs written before that, or
 * forged, so the report is made safe here whatever the log holds: every
 * field is escaped as it is printed, and a
 * backslash is escaped too, so an escape in the output can only have come
 * from here.
 *
 * Valid UTF-8 stays as it is, since department names are not ASCII; a
 * byte that does not start or continue a valid sequence (an overlong form,
 * a surrogate, past U+10FFFF, cut short) is escaped on its own.
 */
#include "escape.h"

#include <stdint.h>

/* Length of the valid UTF-8 sequence at p (a byte >= 0x80), and its code
 * point; 0 when it is not one. */
static size_t utf8_sequence(const uint8_t *p, uint32_t *cp)
{
    uint8_t lo = 0x80, hi = 0xbf;
    size_t len, i;

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        *cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        *cp = p[0] & 0x0f;
        if (p[0] == 0xe0)
            lo = 0xa0; /* no overlong forms */
        if (p[0] == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        *cp = p[0] & 0x07;
        if (p[0] == 0xf0)
            lo = 0x90;
        if (p[0] == 0xf4)
            hi = 0x8f; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    for (i = 1; i < len; i++) {
        /* The NUL that ends s is below lo: a cut sequence stops here. */
        if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf))
            return 0;
        *cp = (*cp << 6) | (p[i] & 0x3f);
    }
    return len;
}

/* Code points that control how text is laid out rather than print. */
static int is_format_control(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) ||      /* C1 controls */
           cp == 0x200e || cp == 0x200f ||    /* LRM, RLM */
           cp == 0x2028 || cp == 0x2029 ||    /* line, paragraph sep. */
           (cp >= 0x202a && cp <= 0x202e) ||  /* embeddings, overrides */
           (cp >= 0x2066 && cp <= 0x2069) ||  /* isolates */
           cp == 0xfeff;                      /* BOM, zero width */
}

void audit_put_escaped(FILE *f, const char *s)
{
    const uint8_t *p = (const uint8_t *)s;
    uint32_t cp;
    size_t n;

    while (*p != '\0') {
        if (*p == '\\') {
            fputs("\\\\", f);
            p++;
        } else if (*p >= 0x20 && *p < 0x7f) {
            fputc(*p++, f);
        } else if (*p < 0x80 || (n = utf8_sequence(p, &cp)) == 0) {
            fprintf(f, "\\x%02x", *p++);
        } else if (is_format_control(cp)) {
            fprintf(f, "\\u{%04x}", (unsigned)cp);
            p += n;
        } else {
            fwrite(p, 1, n, f);
            p += n;
        }
    }
}
