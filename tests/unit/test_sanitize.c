/* sanitize.c: every kind of byte an app may print, and the bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/sanitize.h"

#include <string.h>

static void check(const char *in, size_t len, const char *want)
{
    char out[SANITIZE_MAX(64)];
    assert_true(len <= 64);
    size_t n = sanitize_line(in, len, out, sizeof out);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

/* A literal's every byte, NULs included. */
#define CHECK(lit, want) check(lit, sizeof(lit) - 1, want)

static void plain_text_is_kept(void **state)
{
    (void)state;
    CHECK("hello\tworld \\x1b", "hello\tworld \\x1b");
    CHECK("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

static void c0_and_escape_sequences(void **state)
{
    (void)state;
    CHECK("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
    CHECK("a\rb\bc\x07\x7f", "a\\x0db\\x08c\\x07\\x7f");
    CHECK("nul\0in", "nul\\x00in");
    /* An app's line that would look like the supervisor's own, after a CR. */
    CHECK("x\r2026 baton[1] info: y", "x\\x0d2026 baton[1] info: y");
}

static void c1_controls(void **state)
{
    (void)state;
    CHECK("\xc2\x9b"
          "31m",
          "\\u009b31m");                                         /* CSI */
    CHECK("\xc2\x80\xc2\x9f\xc2\xa0", "\\u0080\\u009f\xc2\xa0"); /* U+00A0 is no control */
    CHECK("\x9b"
          "31m",
          "?31m"); /* a lone byte: not UTF-8 */
}

static void malformed_utf8(void **state)
{
    (void)state;
    CHECK("caf\xe9 \xff\xfe", "caf? ??");
    CHECK("\xc0\xaf", "??");           /* overlong */
    CHECK("\xed\xa0\x80", "???");      /* a surrogate */
    CHECK("\xf4\x90\x80\x80", "????"); /* above U+10FFFF */
    CHECK("ab\xe2\x82", "ab??");       /* cut at the end */
}

static void bounded(void **state)
{
    (void)state;
    char out[8];
    /* Never past CAP, never half an escape. */
    size_t n = sanitize_line("\x1b\x1b\x1b", 3, out, sizeof out);
    assert_int_equal(n, 4);
    assert_string_equal(out, "\\x1b");
    n = sanitize_line("abcdefghij", 10, out, sizeof out);
    assert_int_equal(n, 7);
    assert_string_equal(out, "abcdefg");
    char all[256], big[SANITIZE_MAX(256)];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    n = sanitize_line(all, sizeof all, big, sizeof big);
    assert_true(n < sizeof big);
    for (size_t i = 0; i < n; i++)
        assert_true((unsigned char)big[i] >= 0x20 || big[i] == '\t');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_text_is_kept),
        cmocka_unit_test(c0_and_escape_sequences),
        cmocka_unit_test(c1_controls),
        cmocka_unit_test(malformed_utf8),
        cmocka_unit_test(bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
