/*
 * Tests of the structured logger (src/core/log.c): value quoting, level names, level
 * filtering, and the exact shape of a line on stderr (captured through a temporary file).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sb_test.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

/* Quotes s (a string literal or buffer of len bytes) into a fresh buffer of size cap. */
static const char *quote(char *buf, unsigned cap, const char *s, unsigned len) {
  memset(buf, 0x55, cap);
  return sb_log_quote(buf, cap, s, len);
}

TEST(log_quote_plain_values_unchanged) {
  char buf[64];
  CHECK_EQ_STR(quote(buf, sizeof buf, "abc", 3), "abc");
  CHECK_EQ_STR(quote(buf, sizeof buf, "127.0.0.1:8080", 14), "127.0.0.1:8080");
  CHECK_EQ_STR(quote(buf, sizeof buf, "/path?q=1", 5), "/path");
  /* Only len bytes count, not the rest of the string. */
  CHECK_EQ_STR(quote(buf, sizeof buf, "abcdef", 2), "ab");
}

TEST(log_quote_special_values_quoted) {
  char buf[64];
  /* An empty value must still be visible as a value, not as "key=" followed by the next key. */
  CHECK_EQ_STR(quote(buf, sizeof buf, "", 0), "\"\"");
  CHECK_EQ_STR(quote(buf, sizeof buf, "a b", 3), "\"a b\"");
  CHECK_EQ_STR(quote(buf, sizeof buf, "a=b", 3), "\"a=b\"");
  CHECK_EQ_STR(quote(buf, sizeof buf, "a\"b", 3), "\"a\\\"b\"");
  CHECK_EQ_STR(quote(buf, sizeof buf, "a\\b", 3), "\"a\\\\b\"");
  CHECK_EQ_STR(quote(buf, sizeof buf, "a\nb", 3), "\"a\\x0ab\"");
  CHECK_EQ_STR(quote(buf, sizeof buf, "\r\t", 2), "\"\\x0d\\x09\"");
  CHECK_EQ_STR(quote(buf, sizeof buf, "\x7f", 1), "\"\\x7f\"");
  CHECK_EQ_STR(quote(buf, sizeof buf, "\xff\x80", 2), "\"\\xff\\x80\"");
  /* A NUL inside the value is escaped, not a terminator: values come from the network. */
  CHECK_EQ_STR(quote(buf, sizeof buf, "a\0b", 3), "\"a\\x00b\"");
}

/* Returns 1 when q is a well-formed quoted value: "...", with only \" \\ and \xNN escapes,
 * which is what a log reader must be able to rely on even after truncation. */
static int well_formed_quoted(const char *q) {
  size_t n = strlen(q);
  if (n < 2 || q[0] != '"' || q[n - 1] != '"') return 0;
  for (size_t i = 1; i < n - 1; i++) {
    if (q[i] == '"') return 0;
    if (q[i] != '\\') continue;
    if (i + 1 >= n - 1) return 0;
    if (q[i + 1] == '"' || q[i + 1] == '\\') {
      i++;
    } else if (q[i + 1] == 'x') {
      if (i + 3 >= n - 1 || !isxdigit((unsigned char)q[i + 2]) ||
          !isxdigit((unsigned char)q[i + 3]))
        return 0;
      i += 3;
    } else {
      return 0;
    }
  }
  return 1;
}

TEST(log_quote_truncates_without_splitting_escapes) {
  const char nasty[] = "a \"b\\ \n\x01=\xfe end";
  unsigned len = (unsigned)sizeof nasty - 1;
  char full[128];
  quote(full, sizeof full, nasty, len);
  CHECK(well_formed_quoted(full));
  int all_ok = 1;
  for (unsigned cap = 3; cap < sizeof full; cap++) {
    char buf[128];
    quote(buf, cap, nasty, len);
    size_t n = strnlen(buf, cap);
    /* NUL-terminated inside cap, a prefix of the full rendering up to the closing quote, and
     * still a well-formed quoted value. */
    if (n >= cap || !well_formed_quoted(buf) || strncmp(buf, full, n - 1) != 0) {
      all_ok = 0;
      fprintf(stderr, "    cap %u gave [%s]\n", cap, buf);
    }
  }
  CHECK(all_ok);
  /* Plain values truncate to cap - 1 bytes. */
  char small[4];
  CHECK_EQ_STR(quote(small, sizeof small, "abcdef", 6), "abc");
  char one[1];
  CHECK_EQ_STR(quote(one, sizeof one, "abc", 3), "");
  /* cap 0 must not write at all. */
  char untouched = 'u';
  sb_log_quote(&untouched, 0, "abc", 3);
  CHECK_EQ_INT(untouched, 'u');
}

TEST(log_parse_level_names) {
  sb_log_level_t l = SB_LOG_OFF;
  CHECK_EQ_INT(sb_log_parse_level("debug", &l), 0);
  CHECK_EQ_INT(l, SB_LOG_DEBUG);
  CHECK_EQ_INT(sb_log_parse_level("info", &l), 0);
  CHECK_EQ_INT(l, SB_LOG_INFO);
  CHECK_EQ_INT(sb_log_parse_level("warn", &l), 0);
  CHECK_EQ_INT(l, SB_LOG_WARN);
  CHECK_EQ_INT(sb_log_parse_level("error", &l), 0);
  CHECK_EQ_INT(l, SB_LOG_ERROR);
  CHECK_EQ_INT(sb_log_parse_level("off", &l), 0);
  CHECK_EQ_INT(l, SB_LOG_OFF);
  /* Case-insensitive, and the common spelling "warning" is accepted. */
  CHECK_EQ_INT(sb_log_parse_level("DEBUG", &l), 0);
  CHECK_EQ_INT(l, SB_LOG_DEBUG);
  CHECK_EQ_INT(sb_log_parse_level("Warning", &l), 0);
  CHECK_EQ_INT(l, SB_LOG_WARN);
}

TEST(log_parse_level_rejects_unknown) {
  sb_log_level_t l = SB_LOG_ERROR;
  CHECK_EQ_INT(sb_log_parse_level("", &l), SB_EINVAL);
  CHECK_EQ_INT(sb_log_parse_level("verbose", &l), SB_EINVAL);
  CHECK_EQ_INT(sb_log_parse_level("infos", &l), SB_EINVAL);
  CHECK_EQ_INT(sb_log_parse_level("inf", &l), SB_EINVAL);
  CHECK_EQ_INT(sb_log_parse_level(" info", &l), SB_EINVAL);
  CHECK_EQ_INT(sb_log_parse_level("1", &l), SB_EINVAL);
  /* A failed parse leaves the output alone. */
  CHECK_EQ_INT(l, SB_LOG_ERROR);
}

/* Runs fn with stderr redirected to a temporary file and returns what was written (at most
 * cap - 1 bytes, NUL-terminated). */
static size_t capture_stderr(void (*fn)(void), char *out, size_t cap) {
  fflush(stderr);
  FILE *tmp = tmpfile();
  if (!tmp) return 0;
  int saved = dup(STDERR_FILENO);
  dup2(fileno(tmp), STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  rewind(tmp);
  size_t n = fread(out, 1, cap - 1, tmp);
  out[n] = '\0';
  fclose(tmp);
  return n;
}

static void emit_listening(void) {
  sb_log_set_level(SB_LOG_INFO);
  sb_log(SB_LOG_INFO, "listening", "addr=%s port=%d", "127.0.0.1:8080", 8080);
}

TEST(log_line_format) {
  char out[4096];
  size_t n = capture_stderr(emit_listening, out, sizeof out);
  /* ts=2026-11-24T10:00:00.123Z level=info event=listening addr=127.0.0.1:8080 port=8080 */
  const char *tmpl = "ts=dddd-dd-ddTdd:dd:dd.dddZ ";
  size_t tl = strlen(tmpl);
  REQUIRE(n > tl);
  int ts_ok = 1;
  for (size_t i = 0; i < tl; i++) {
    if (tmpl[i] == 'd' ? !isdigit((unsigned char)out[i]) : out[i] != tmpl[i]) ts_ok = 0;
  }
  CHECK(ts_ok);
  CHECK_EQ_STR(out + tl, "level=info event=listening addr=127.0.0.1:8080 port=8080\n");
}

static void emit_filtered(void) {
  sb_log_set_level(SB_LOG_WARN);
  sb_log(SB_LOG_DEBUG, "dropped_debug", NULL);
  sb_log(SB_LOG_INFO, "dropped_info", "k=%d", 1);
  sb_log(SB_LOG_WARN, "kept_warn", NULL);
  sb_log(SB_LOG_ERROR, "kept_error", NULL);
  sb_log_set_level(SB_LOG_OFF);
  sb_log(SB_LOG_ERROR, "dropped_error", NULL);
  /* OFF is a threshold, not a level to log at. */
  sb_log_set_level(SB_LOG_DEBUG);
  sb_log(SB_LOG_OFF, "dropped_off", NULL);
  sb_log_set_level(SB_LOG_INFO);
}

TEST(log_level_filtering) {
  char out[4096];
  capture_stderr(emit_filtered, out, sizeof out);
  CHECK(strstr(out, "dropped") == NULL);
  CHECK(strstr(out, "level=warn event=kept_warn\n") != NULL);
  CHECK(strstr(out, "level=error event=kept_error\n") != NULL);
  int lines = 0;
  for (const char *p = out; *p; p++)
    lines += *p == '\n';
  CHECK_EQ_INT(lines, 2);

  sb_log_set_level(SB_LOG_INFO);
  CHECK(!sb_log_enabled(SB_LOG_DEBUG));
  CHECK(sb_log_enabled(SB_LOG_INFO));
  CHECK(sb_log_enabled(SB_LOG_ERROR));
  sb_log_set_level(SB_LOG_ERROR);
  CHECK(!sb_log_enabled(SB_LOG_WARN));
  sb_log_set_level(SB_LOG_INFO);
}

static void emit_long(void) {
  static char big[5000];
  memset(big, 'v', sizeof big - 1);
  sb_log(SB_LOG_INFO, "long", "value=%s", big);
}

TEST(log_long_line_truncated_to_one_line) {
  char out[8192];
  size_t n = capture_stderr(emit_long, out, sizeof out);
  /* Lines are capped at 2 KiB so one write(2) keeps them whole; still exactly one line. */
  CHECK(n > 1000);
  CHECK(n <= 2048);
  REQUIRE(n > 0);
  CHECK_EQ_INT(out[n - 1], '\n');
  CHECK(memchr(out, '\n', n - 1) == NULL);
}
