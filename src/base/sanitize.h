#ifndef BATON_SANITIZE_H
#define BATON_SANITIZE_H

/* What an app prints, made safe to show: the one place every relay of an
 * app's output goes through (the supervisor's log and `baton logs`,
 * output.c; the keeper's stderr while no supervisor runs, keeper.c), so
 * that no app can drive the operator's terminal or print a line that
 * looks like the supervisor's own.
 *
 * A line in, any bytes: out, valid UTF-8 with no control character but
 * tab:
 *   - C0 controls (U+0000-U+001F but tab) and DEL as "\xNN": an escape
 *     sequence (ESC [ 3 1 m) shows as "\x1b[31m";
 *   - C1 controls (U+0080-U+009F, which terminals may take as escapes:
 *     U+009B is CSI) as "\u00NN";
 *   - a byte that does not begin a well-formed UTF-8 sequence (RFC 3629:
 *     no overlong forms, no surrogates, nothing above U+10FFFF), and a
 *     sequence cut at the end, as '?' (as utf8.h does: what JSON cannot
 *     carry).
 * Everything else, backslashes included, is copied as it is. */

#include <stddef.h>

/* The most a line of N bytes becomes (a C0 byte: 4 characters), with its
 * NUL. */
#define SANITIZE_MAX(n) (4 * (n) + 1)

/* Writes LEN bytes of TEXT, sanitized, into OUT (CAP bytes, at least
 * SANITIZE_MAX(LEN) for nothing to be cut; a cut never splits an escape
 * or a character), NUL-terminated. Returns the length written. */
size_t sanitize_line(const char *text, size_t len, char *out, size_t cap);

#endif
