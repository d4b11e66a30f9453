#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "switchboard/error.h"
#include "switchboard/log.h"

#define SB_LOG_LINE_MAX 2048u

static _Atomic int g_level = SB_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void sb_log_set_level(sb_log_level_t level) {
  atomic_store(&g_level, (int)level);
}

int sb_log_enabled(sb_log_level_t level) {
  return (int)level >= atomic_load(&g_level);
}

int sb_log_parse_level(const char *name, sb_log_level_t *out) {
  for (int i = 0; i <= SB_LOG_OFF; i++) {
    if (strcasecmp(name, level_names[i]) == 0) {
      *out = (sb_log_level_t)i;
      return 0;
    }
  }
  if (strcasecmp(name, "warning") == 0) {
    *out = SB_LOG_WARN;
    return 0;
  }
  return SB_EINVAL;
}

const char *sb_log_quote(char *buf, unsigned cap, const char *s, unsigned len) {
  if (cap == 0) return buf;
  int plain = len > 0;
  for (unsigned i = 0; i < len && plain; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) plain = 0;
  }
  unsigned o = 0;
  if (plain) {
    for (unsigned i = 0; i < len && o + 1 < cap; i++)
      buf[o++] = s[i];
    buf[o] = '\0';
    return buf;
  }
  static const char hex[] = "0123456789abcdef";
  if (o + 1 < cap) buf[o++] = '"';
  for (unsigned i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      if (o + 3 >= cap) break;
      buf[o++] = '\\';
      buf[o++] = (char)c;
    } else if (c < ' ' || c >= 0x7f) {
      if (o + 5 >= cap) break;
      buf[o++] = '\\';
      buf[o++] = 'x';
      buf[o++] = hex[c >> 4];
      buf[o++] = hex[c & 15];
    } else {
      if (o + 2 >= cap) break;
      buf[o++] = (char)c;
    }
  }
  if (o + 1 < cap) buf[o++] = '"';
  buf[o] = '\0';
  return buf;
}

void sb_log(sb_log_level_t level, const char *event, const char *fmt, ...) {
  if (!sb_log_enabled(level) || level >= SB_LOG_OFF) return;
  char line[SB_LOG_LINE_MAX];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000L, level_names[level], event);
  if (n < 0) return;
  size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  if (fmt && *fmt && len < sizeof line - 2) {
    line[len++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + len, sizeof line - len, fmt, ap);
    va_end(ap);
    if (m > 0) len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
  }
  if (len >= sizeof line - 1) len = sizeof line - 2;
  line[len++] = '\n';
  /* One write per line keeps lines whole across threads; a short write to a pipe of this
   * size cannot happen (PIPE_BUF covers it only up to 4 KiB, and lines are capped at 2). */
  ssize_t w;
  do {
    w = write(STDERR_FILENO, line, len);
  } while (w < 0 && errno == EINTR);
}
