/*
 * text_check.c - the one rule for text an outside party sets: well-formed
 * UTF-8 without control characters.
 *
 * Purposes, case ids, department names, field names, type names and
 * senders all end up in places that people read line by line: the exchange
 * log's leaves (which `once-audit subject` prints as table rows), the
 * broker's log lines, the operator's listings. A tab, a newline or an
 * escape sequence in a case id once let a department print a forged
 * "GRANTED" row under another department's name; a lone byte 0xff made a
 * leaf that strict proto3 parsers (Go's, Python's) refuse to decode,
 * because a proto3 string must be UTF-8. So every such string must be:
 *
 *   - UTF-8 exactly as RFC 3629 defines it: the shortest encoding of each
 *     code point (no overlong forms, which would give one text two
 *     spellings and defeat byte-for-byte comparison of purposes), no
 *     UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF;
 *   - free of the characters that move a terminal's cursor or change what
 *     the following text looks like: C0 controls (NUL, TAB, LF, CR, ESC,
 *     ...), DEL, the C1 controls U+0080..U+009F (U+009B is a one-byte CSI
 *     to some terminals), the Unicode line and paragraph separators
 *     U+2028 and U+2029, and the bidirectional embeddings, overrides and
 *     isolates U+202A..U+202E and U+2066..U+2069, which reorder how a line
 *     is displayed.
 *
 * Everything else (letters of any script, punctuation, spaces, emoji) is
 * allowed: purposes are often Chinese. Field values are not text in this
 * sense (an address holds newlines; a value may be binary) and are never
 * checked here; they never enter a log leaf.
 */
#include "text_check.h"

#include <string.h>

/* A code point that is allowed once it is known to be well formed. */
static bool code_point_is_clean(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
        return false;
    if (cp == 0x2028 || cp == 0x2029)
        return false;
    if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
        return false;
    return true;
}

bool text_is_clean_utf8(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t c = s[i];
        uint32_t cp;
        size_t n, k;

        if (c < 0x80) {
            if (!code_point_is_clean(c))
                return false;
            i++;
            continue;
        }
        /* 0x80..0xc1 never start a shortest-form sequence; 0xf5.. never
         * start one at all. */
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        if (!code_point_is_clean(cp))
            return false;
        i += n + 1;
    }
    return true;
}

bool text_is_clean_string(const char *s, size_t max)
{
    size_t len;

    if (s == NULL)
        return false;
    len = strnlen(s, max + 1);
    return len <= max && text_is_clean_utf8((const uint8_t *)s, len);
}
