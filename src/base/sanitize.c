/* sanitize.c: what an app prints, made safe to show (see sanitize.h). */
#include "base/sanitize.h"

#include <stdio.h>
#include <string.h>

/* The length of the well-formed UTF-8 sequence at P (N bytes left), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t k = c < 0x80                   ? 1
               : (c >= 0xC2 && c <= 0xDF) ? 2
               : (c & 0xF0) == 0xE0       ? 3
               : (c >= 0xF0 && c <= 0xF4) ? 4
                                          : 0;
    if (k == 0 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if (k == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F)))
        return 0; /* overlong, or a surrogate */
    if (k == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F)))
        return 0; /* overlong, or above U+10FFFF */
    return k;
}

size_t sanitize_line(const char *text, size_t len, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < len;) {
        char piece[8];
        size_t k = utf8_len(p + i, len - i), plen;
        if (k == 0) {
            piece[0] = '?';
            plen = 1;
            k = 1;
        } else if (k == 1 && ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)) {
            plen = (size_t)snprintf(piece, sizeof piece, "\\x%02x", p[i]);
        } else if (k == 2 && p[i] == 0xC2 && p[i + 1] <= 0x9F) {
            plen = (size_t)snprintf(piece, sizeof piece, "\\u%04x", p[i + 1]);
        } else {
            memcpy(piece, p + i, k);
            plen = k;
        }
        if (o + plen > cap - 1)
            break;
        memcpy(out + o, piece, plen);
        o += plen;
        i += k;
    }
    out[o] = '\0';
    return o;
}
