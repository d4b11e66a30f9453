/*
 * sb_buf: a growable byte buffer with a read offset, used for connection output and
 * per-stream response bodies.
 *
 * Layout: data[0 .. off) is consumed, data[off .. len) is pending, data[len .. cap) is free.
 * Invariant: off <= len <= cap. Ownership: the struct owns data; sb_buf_free() releases it.
 * Not thread-safe: each buffer belongs to the loop that owns its connection.
 */
#ifndef SB_CORE_BUF_H
#define SB_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct sb_buf {
  uint8_t *data; /* heap storage, NULL when cap == 0; owned */
  size_t off;    /* bytes already consumed from the front */
  size_t len;    /* end of pending bytes; off <= len */
  size_t cap;    /* allocated bytes; len <= cap */
} sb_buf_t;

/* Pending (unconsumed) bytes. */
static inline size_t sb_buf_pending(const sb_buf_t *b) {
  return b->len - b->off;
}
/* The first pending byte; NULL for a buffer that never allocated (NULL + 0 is undefined). */
static inline const uint8_t *sb_buf_head(const sb_buf_t *b) {
  return b->data ? b->data + b->off : NULL;
}

/* Makes room for at least n more bytes after len (compacting or growing). Returns 0 or
 * SB_ENOMEM. */
int sb_buf_reserve(sb_buf_t *b, size_t n);
/* Appends n bytes. Returns 0 or SB_ENOMEM (buffer unchanged). */
int sb_buf_append(sb_buf_t *b, const void *p, size_t n);
/* Appends a printf-formatted string. Returns 0, SB_ENOMEM or SB_EINVAL. */
int sb_buf_appendf(sb_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Marks n pending bytes consumed (n <= pending); resets to empty when all are consumed. */
void sb_buf_consume(sb_buf_t *b, size_t n);
/* Drops all pending bytes, keeping the storage. */
void sb_buf_reset(sb_buf_t *b);
/* Releases the storage; the buffer is empty and reusable afterwards. */
void sb_buf_free(sb_buf_t *b);

#endif
