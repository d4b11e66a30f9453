/*
 * switchboard structured logging: one line per event, key=value pairs, on stderr.
 *
 *   ts=2026-11-24T10:00:00.123Z level=info event=listening addr=127.0.0.1:8080 threads=2
 *
 * Each line is written with a single write(2) so lines from different threads never
 * interleave. Values containing spaces, quotes or '=' are quoted by sb_log() callers through
 * sb_log_quote().
 */
#ifndef SWITCHBOARD_LOG_H
#define SWITCHBOARD_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sb_log_level {
  SB_LOG_DEBUG = 0,
  SB_LOG_INFO = 1,
  SB_LOG_WARN = 2,
  SB_LOG_ERROR = 3,
  SB_LOG_OFF = 4,
} sb_log_level_t;

/* Sets the minimum level written (default SB_LOG_INFO). Thread-safe. */
void sb_log_set_level(sb_log_level_t level);
/* Parses "debug", "info", "warn", "error", "off". Returns 0 and sets *out, or SB_EINVAL. */
int sb_log_parse_level(const char *name, sb_log_level_t *out);
/* Returns 1 when lines at level are written. */
int sb_log_enabled(sb_log_level_t level);
/* Copies s into buf (size cap) as a log value: unchanged when it holds no space, quote,
 * '=' or control byte, else double-quoted with \" and \xNN escapes. Always NUL-terminates
 * (truncating). Returns buf. */
const char *sb_log_quote(char *buf, unsigned cap, const char *s, unsigned len);
/* Writes one line: ts, level, event=<event>, then the formatted key=value text (printf
 * style; may be NULL). Lines longer than 2 KiB are truncated. Thread-safe. */
void sb_log(sb_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
