#ifndef BATON_UTF8_H
#define BATON_UTF8_H

/* What an app writes, and so a rollback reason quoting its stderr, may be
 * any bytes; JSON (the control protocol, `baton logs --json`) takes UTF-8
 * only, and Jansson refuses the rest: a reply built from such bytes would
 * not be sent at all. utf8_sanitize makes S valid UTF-8 in place: each
 * byte that does not begin a well-formed sequence (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), and a sequence cut at
 * the end, becomes '?'. */

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static inline void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n = c < 0x80                   ? 1
                   : (c >= 0xC2 && c <= 0xDF) ? 2
                   : (c & 0xF0) == 0xE0       ? 3
                   : (c >= 0xF0 && c <= 0xF4) ? 4
                                              : 0;
        int ok = n > 0;
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xC0) == 0x80;
        if (ok && n == 3) /* overlong (E0 80..9F) or a surrogate (ED A0..BF) */
            ok = !(c == 0xE0 && p[1] < 0xA0) && !(c == 0xED && p[1] > 0x9F);
        if (ok && n == 4) /* overlong (F0 80..8F) or above U+10FFFF (F4 90..) */
            ok = !(c == 0xF0 && p[1] < 0x90) && !(c == 0xF4 && p[1] > 0x8F);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

/* A malloc'd copy of S made valid UTF-8 (free it), or NULL. */
static inline char *utf8_dup(const char *s)
{
    char *c = strdup(s);
    if (c)
        utf8_sanitize(c);
    return c;
}

#endif
