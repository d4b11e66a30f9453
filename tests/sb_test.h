/*
 * sb_test: the unit-test harness of switchboard, in one header.
 *
 * A test binary is one .c file that includes this header and defines its tests with TEST():
 *
 *   #include "sb_test.h"
 *
 *   TEST(buf_append_grows) {
 *     sb_buf_t b = {0};
 *     CHECK_EQ_INT(sb_buf_append(&b, "ab", 2), 0);
 *     CHECK_MEM(sb_buf_head(&b), "ab", 2);
 *     sb_buf_free(&b);
 *   }
 *
 * The header provides main(): it runs every registered test in definition order (or only the
 * tests named on the command line), prints one line per failed check on stderr as
 * "file:line: test: message", and ends with exactly one line on stdout,
 *
 *   N passed, M failed
 *
 * counting test functions (a test fails when any of its checks failed). The exit status is 0
 * when nothing failed and 1 otherwise, which is what CTest looks at.
 *
 * Checks record a failure and let the test go on, so one run shows every broken expectation.
 * Use REQUIRE() where continuing would crash (a NULL pointer about to be dereferenced): it
 * returns from the test function on failure, which is why it only works directly in a TEST
 * body (void function).
 *
 * Registration uses a constructor function per test (a GCC/Clang attribute; both compilers of
 * the project support it), so a test cannot be written and then forgotten in a list.
 *
 * Define SB_TEST_NO_MAIN before including to supply your own main() (call sb_test_main()).
 * Not thread-safe: checks must run on the thread that runs the test.
 */
#ifndef SB_TEST_H
#define SB_TEST_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_TEST_MAX 512 /* tests per binary; registration beyond this aborts */

typedef void (*sb_test_fn)(void);

/* Harness state. One test binary is one translation unit, so file-scope statics are the
 * simplest correct storage; the unused attribute keeps -Wunused quiet in files that do not
 * use every helper. */
static struct {
  const char *names[SB_TEST_MAX]; /* test function names, in registration order */
  sb_test_fn fns[SB_TEST_MAX];    /* the tests, parallel to names */
  unsigned count;                 /* registered tests; count <= SB_TEST_MAX */
  const char *current;            /* name of the running test, for failure messages */
  unsigned current_failures;      /* failed checks in the running test */
  unsigned checks;                /* checks evaluated so far, across all tests */
} sb_test_state __attribute__((unused));

/* Registers fn under name; called from the constructors TEST() generates, before main(). */
static void sb_test_register(const char *name, sb_test_fn fn) __attribute__((unused));
static void sb_test_register(const char *name, sb_test_fn fn) {
  if (sb_test_state.count >= SB_TEST_MAX) {
    fprintf(stderr, "sb_test: more than %d tests in one binary\n", SB_TEST_MAX);
    abort();
  }
  sb_test_state.names[sb_test_state.count] = name;
  sb_test_state.fns[sb_test_state.count] = fn;
  sb_test_state.count++;
}

/* Records the outcome of one check. ok is the check's result; on failure prints
 * "file:line: test: <printf message>". Returns ok so REQUIRE can branch on it. */
static int sb_test_record(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), unused));
static int sb_test_record(int ok, const char *file, int line, const char *fmt, ...) {
  sb_test_state.checks++;
  if (ok) return 1;
  sb_test_state.current_failures++;
  fprintf(stderr, "%s:%d: %s: ", file, line,
          sb_test_state.current ? sb_test_state.current : "(no test)");
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 0;
}

/* Prints len bytes of p as C-escaped text for a failure message, at most 64 of them, so a
 * mismatch in binary data stays readable and bounded. */
static void sb_test_dump(const char *label, const void *p, size_t len) __attribute__((unused));
static void sb_test_dump(const char *label, const void *p, size_t len) {
  const unsigned char *s = p;
  fprintf(stderr, "    %s (%zu bytes): \"", label, len);
  for (size_t i = 0; i < len && i < 64; i++) {
    if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
      fputc(s[i], stderr);
    else
      fprintf(stderr, "\\x%02x", s[i]);
  }
  fprintf(stderr, "\"%s\n", len > 64 ? "..." : "");
}

/* Compares n bytes at a and b; on mismatch reports the first differing offset and both
 * sides. Either pointer may be NULL only when n is 0. */
static int sb_test_mem(const void *a, const void *b, size_t n, const char *ea, const char *eb,
                       const char *file, int line) __attribute__((unused));
static int sb_test_mem(const void *a, const void *b, size_t n, const char *ea, const char *eb,
                       const char *file, int line) {
  if (n == 0) return sb_test_record(1, file, line, "%s", "");
  if (!a || !b) return sb_test_record(0, file, line, "CHECK_MEM(%s, %s): NULL pointer", ea, eb);
  const unsigned char *x = a, *y = b;
  size_t i = 0;
  while (i < n && x[i] == y[i])
    i++;
  if (i == n) return sb_test_record(1, file, line, "%s", "");
  sb_test_record(0, file, line, "CHECK_MEM(%s, %s, %zu): first difference at offset %zu", ea, eb, n,
                 i);
  sb_test_dump(ea, a, n);
  sb_test_dump(eb, b, n);
  return 0;
}

/* Compares two NUL-terminated strings; NULL equals only NULL. */
static int sb_test_str(const char *a, const char *b, const char *ea, const char *eb,
                       const char *file, int line) __attribute__((unused));
static int sb_test_str(const char *a, const char *b, const char *ea, const char *eb,
                       const char *file, int line) {
  int ok = (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
  if (ok) return sb_test_record(1, file, line, "%s", "");
  sb_test_record(0, file, line, "CHECK_EQ_STR(%s, %s)", ea, eb);
  if (a)
    sb_test_dump(ea, a, strlen(a));
  else
    fprintf(stderr, "    %s: NULL\n", ea);
  if (b)
    sb_test_dump(eb, b, strlen(b));
  else
    fprintf(stderr, "    %s: NULL\n", eb);
  return 0;
}

/* Defines and registers a test function `name` (an identifier, unique in the file). */
#define TEST(name)                                                                                 \
  static void name(void);                                                                          \
  __attribute__((constructor)) static void sb_test_reg_##name(void) {                              \
    sb_test_register(#name, name);                                                                 \
  }                                                                                                \
  static void name(void)

/* Each check evaluates its arguments exactly once. */
#define CHECK(cond) ((void)sb_test_record(!!(cond), __FILE__, __LINE__, "CHECK(%s)", #cond))

/* Integer equality; both sides are converted to intmax_t (pass unsigned values that fit). */
#define CHECK_EQ_INT(a, b)                                                                         \
  do {                                                                                             \
    intmax_t sb_test_a_ = (intmax_t)(a), sb_test_b_ = (intmax_t)(b);                               \
    sb_test_record(sb_test_a_ == sb_test_b_, __FILE__, __LINE__,                                   \
                   "CHECK_EQ_INT(%s, %s): %" PRIdMAX " != %" PRIdMAX, #a, #b, sb_test_a_,          \
                   sb_test_b_);                                                                    \
  } while (0)

#define CHECK_EQ_STR(a, b) ((void)sb_test_str((a), (b), #a, #b, __FILE__, __LINE__))

#define CHECK_MEM(a, b, n) ((void)sb_test_mem((a), (b), (n), #a, #b, __FILE__, __LINE__))

/* Like CHECK, but returns from the (void) test function when cond is false. */
#define REQUIRE(cond)                                                                              \
  do {                                                                                             \
    if (!sb_test_record(!!(cond), __FILE__, __LINE__, "REQUIRE(%s)", #cond)) return;               \
  } while (0)

/* Runs the registered tests (all, or those named in argv[1..]), prints the summary line and
 * returns the process exit status: 0 when every selected test passed, 1 otherwise (also when
 * a name on the command line matches no test, so a typo cannot pass silently). */
static int sb_test_main(int argc, char **argv) __attribute__((unused));
static int sb_test_main(int argc, char **argv) {
  unsigned passed = 0, failed = 0;
  for (int a = 1; a < argc; a++) {
    unsigned i = 0;
    while (i < sb_test_state.count && strcmp(argv[a], sb_test_state.names[i]) != 0)
      i++;
    if (i == sb_test_state.count) {
      fprintf(stderr, "sb_test: no test named %s\n", argv[a]);
      failed++;
    }
  }
  for (unsigned i = 0; i < sb_test_state.count; i++) {
    if (argc > 1) {
      int wanted = 0;
      for (int a = 1; a < argc && !wanted; a++)
        wanted = !strcmp(argv[a], sb_test_state.names[i]);
      if (!wanted) continue;
    }
    sb_test_state.current = sb_test_state.names[i];
    sb_test_state.current_failures = 0;
    sb_test_state.fns[i]();
    if (sb_test_state.current_failures) {
      fprintf(stderr, "FAIL %s (%u failed checks)\n", sb_test_state.names[i],
              sb_test_state.current_failures);
      failed++;
    } else {
      passed++;
    }
  }
  sb_test_state.current = NULL;
  /* stderr is unbuffered and stdout may be a pipe: flush so the summary comes last. */
  fflush(stderr);
  printf("%u passed, %u failed\n", passed, failed);
  fflush(stdout);
  return failed ? 1 : 0;
}

#ifndef SB_TEST_NO_MAIN
int main(int argc, char **argv) {
  return sb_test_main(argc, argv);
}
#endif

#endif
