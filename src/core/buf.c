#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "switchboard/error.h"

#define SB_BUF_MIN_CAP 256u

int sb_buf_reserve(sb_buf_t *b, size_t n) {
  if (b->cap - b->len >= n) return 0;
  /* Compact first when the consumed prefix alone makes enough room. */
  if (b->off > 0 && b->cap - (b->len - b->off) >= n) {
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    return 0;
  }
  size_t pending = b->len - b->off;
  if (n > SIZE_MAX / 2 - pending) return SB_ENOMEM;
  size_t want = pending + n, cap = b->cap ? b->cap : SB_BUF_MIN_CAP;
  while (cap < want)
    cap *= 2;
  uint8_t *p = malloc(cap);
  if (!p) return SB_ENOMEM;
  if (pending) memcpy(p, b->data + b->off, pending);
  free(b->data);
  b->data = p;
  b->cap = cap;
  b->off = 0;
  b->len = pending;
  return 0;
}

int sb_buf_append(sb_buf_t *b, const void *p, size_t n) {
  if (n == 0) return 0;
  int rc = sb_buf_reserve(b, n);
  if (rc) return rc;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int sb_buf_appendf(sb_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return SB_EINVAL;
  if ((size_t)n < sizeof small) return sb_buf_append(b, small, (size_t)n);
  int rc = sb_buf_reserve(b, (size_t)n + 1);
  if (rc) return rc;
  va_start(ap, fmt);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void sb_buf_consume(sb_buf_t *b, size_t n) {
  b->off += n;
  if (b->off >= b->len) b->off = b->len = 0;
}

void sb_buf_reset(sb_buf_t *b) {
  b->off = b->len = 0;
}

void sb_buf_free(sb_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->off = b->len = b->cap = 0;
}
