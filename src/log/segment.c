/*
 * Record codec, segment headers, segment scans and index files of the journal. The format is
 * described in segment.h. Nothing here keeps state between calls: every function works on
 * the buffers and file descriptors it is given, on the caller's thread.
 */
#include "log/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/crc32c.h"
#include "switchboard/error.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the journal format is little-endian and is read with memcpy");

static const uint8_t k_seg_magic[8] = {'S', 'B', 'J', 'S', 'E', 'G', 0, 1};
static const uint8_t k_idx_magic[8] = {'S', 'B', 'J', 'I', 'D', 'X', 0, 1};

#define SCAN_CHUNK (1u << 20) /* bytes read per pread while scanning a segment */

static inline uint16_t ld16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}
static inline uint32_t ld32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline uint64_t ld64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static inline void st16(uint8_t *p, uint16_t v) {
  memcpy(p, &v, 2);
}
static inline void st32(uint8_t *p, uint32_t v) {
  memcpy(p, &v, 4);
}
static inline void st64(uint8_t *p, uint64_t v) {
  memcpy(p, &v, 8);
}

/* --- I/O helpers -------------------------------------------------------------------------- */

int sb__pread_full(int fd, void *buf, size_t n, uint64_t pos) {
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t r = pread(fd, p, n, (off_t)pos);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return SB_EAGAIN;
    p += r;
    n -= (size_t)r;
    pos += (uint64_t)r;
  }
  return 0;
}

int sb__pwrite_full(int fd, const void *buf, size_t n, uint64_t pos) {
  const uint8_t *p = buf;
  while (n > 0) {
    ssize_t r = pwrite(fd, p, n, (off_t)pos);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += r;
    n -= (size_t)r;
    pos += (uint64_t)r;
  }
  return 0;
}

/* --- records ------------------------------------------------------------------------------ */

size_t sb__jrec_size(const sb_journal_entry_t *e) {
  if ((e->key_len && !e->key) || (e->value_len && !e->value)) return 0;
  if (e->header_count > SB_JOURNAL_HEADERS_MAX || (e->header_count && !e->headers)) return 0;
  uint64_t n = SB__JREC_FIXED + (uint64_t)e->key_len + e->value_len;
  for (uint16_t i = 0; i < e->header_count; i++) {
    const sb_journal_header_t *h = &e->headers[i];
    if ((h->name_len && !h->name) || (h->value_len && !h->value)) return 0;
    n += SB__JHDR_ENTRY_FIXED + (uint64_t)h->name_len + h->value_len;
  }
  if (n - SB__JREC_FRAME > SB_JOURNAL_RECORD_MAX) return 0;
  return (size_t)n;
}

void sb__jrec_encode(uint8_t *out, const sb_journal_entry_t *e) {
  uint8_t *p = out + SB__JREC_FIXED;
  if (e->key_len) memcpy(p, e->key, e->key_len);
  p += e->key_len;
  if (e->value_len) memcpy(p, e->value, e->value_len);
  p += e->value_len;
  uint8_t *hstart = p;
  for (uint16_t i = 0; i < e->header_count; i++) {
    const sb_journal_header_t *h = &e->headers[i];
    st16(p, h->name_len);
    st32(p + 2, h->value_len);
    p += SB__JHDR_ENTRY_FIXED;
    if (h->name_len) memcpy(p, h->name, h->name_len);
    p += h->name_len;
    if (h->value_len) memcpy(p, h->value, h->value_len);
    p += h->value_len;
  }
  uint32_t len = (uint32_t)(p - out - SB__JREC_FRAME);
  st32(out, len);
  st64(out + 8, 0);
  st64(out + 16, (uint64_t)e->timestamp_ms);
  st32(out + 24, e->key_len);
  st32(out + 28, e->value_len);
  st32(out + 32, (uint32_t)(p - hstart));
  st16(out + 36, e->header_count);
  st16(out + 38, 0);
  /* The partial CRC (len, then everything after the offset) rides in the crc field until
   * sb__jrec_seal adds the offset. */
  uint32_t crc = sb__crc32c(0, out, 4);
  crc = sb__crc32c(crc, out + 16, len - 8);
  st32(out + 4, crc);
}

void sb__jrec_seal(uint8_t *rec, uint64_t offset) {
  st64(rec + 8, offset);
  st32(rec + 4, sb__crc32c(ld32(rec + 4), rec + 8, 8));
}

/* R6: the header block holds exactly count entries. */
static int headers_valid(const uint8_t *p, uint32_t n, uint16_t count) {
  uint32_t pos = 0;
  for (uint16_t i = 0; i < count; i++) {
    if (n - pos < SB__JHDR_ENTRY_FIXED) return 0;
    uint64_t need = SB__JHDR_ENTRY_FIXED + (uint64_t)ld16(p + pos) + ld32(p + pos + 2);
    if (need > n - pos) return 0;
    pos += (uint32_t)need;
  }
  return pos == n;
}

int sb__jrec_decode(const uint8_t *p, size_t avail, uint64_t expect, sb_journal_record_t *out,
                    size_t *size) {
  if (avail < SB__JREC_FRAME) { /* R1 */
    *size = SB__JREC_FRAME;
    return SB_EAGAIN;
  }
  uint32_t len = ld32(p);
  if (len < SB__JREC_FIXED - SB__JREC_FRAME || len > SB_JOURNAL_RECORD_MAX) return SB_ECORRUPT;
  if (avail - SB__JREC_FRAME < len) { /* R2 */
    *size = SB__JREC_FRAME + (size_t)len;
    return SB_EAGAIN;
  }
  uint32_t crc = sb__crc32c(0, p, 4); /* R3 */
  crc = sb__crc32c(crc, p + 16, len - 8);
  crc = sb__crc32c(crc, p + 8, 8);
  if (crc != ld32(p + 4)) return SB_ECORRUPT;
  if (ld64(p + 8) != expect) return SB_ECORRUPT; /* R4 */
  uint32_t klen = ld32(p + 24), vlen = ld32(p + 28), hlen = ld32(p + 32);
  uint16_t hcnt = ld16(p + 36);
  /* R5, in 64 bits so three u32 lengths cannot wrap. */
  if ((uint64_t)SB__JREC_FIXED - SB__JREC_FRAME + klen + vlen + hlen != len) return SB_ECORRUPT;
  if (ld16(p + 38) != 0) return SB_ECORRUPT; /* R7 */
  const uint8_t *body = p + SB__JREC_FIXED;
  if (!headers_valid(body + klen + vlen, hlen, hcnt)) return SB_ECORRUPT; /* R6 */
  out->offset = expect;
  out->timestamp_ms = (int64_t)ld64(p + 16);
  out->key = body;
  out->key_len = klen;
  out->value = body + klen;
  out->value_len = vlen;
  out->headers = body + klen + vlen;
  out->headers_len = hlen;
  out->header_count = hcnt;
  *size = SB__JREC_FRAME + (size_t)len;
  return 0;
}

int sb_journal_header_next(const sb_journal_record_t *r, uint32_t *pos, const uint8_t **name,
                           uint16_t *name_len, const uint8_t **value, uint32_t *value_len) {
  if (*pos >= r->headers_len || r->headers_len - *pos < SB__JHDR_ENTRY_FIXED) return 0;
  const uint8_t *p = r->headers + *pos;
  uint16_t nl = ld16(p);
  uint32_t vl = ld32(p + 2);
  if ((uint64_t)SB__JHDR_ENTRY_FIXED + nl + vl > r->headers_len - *pos) return 0;
  *name = p + SB__JHDR_ENTRY_FIXED;
  *name_len = nl;
  *value = p + SB__JHDR_ENTRY_FIXED + nl;
  *value_len = vl;
  *pos += SB__JHDR_ENTRY_FIXED + nl + vl;
  return 1;
}

/* --- segment files ------------------------------------------------------------------------ */

void sb__jseg_header_encode(uint8_t *out, uint64_t base, int64_t created_ms) {
  memcpy(out, k_seg_magic, 8);
  st64(out + 8, base);
  st64(out + 16, (uint64_t)created_ms);
  st32(out + 24, 0);
  st32(out + 28, sb__crc32c(0, out, 28));
}

int sb__jseg_header_decode(const uint8_t *p, size_t n, uint64_t *base, int64_t *created_ms) {
  if (n < SB__JSEG_HDR_SIZE || memcmp(p, k_seg_magic, 8) != 0) return SB_ECORRUPT; /* S1 */
  if (sb__crc32c(0, p, 28) != ld32(p + 28)) return SB_ECORRUPT;                    /* S2 */
  *base = ld64(p + 8);
  *created_ms = (int64_t)ld64(p + 16);
  return 0;
}

void sb__jseg_name(char *out, size_t cap, uint64_t base, const char *suffix) {
  snprintf(out, cap, "%020llu%s", (unsigned long long)base, suffix);
}

int sb__jseg_scan(int fd, uint64_t base, uint64_t file_size, uint32_t index_interval,
                  sb__jindex_t *idx, uint64_t *valid_end, uint64_t *next) {
  size_t cap = SCAN_CHUNK;
  uint8_t *buf = malloc(cap);
  if (!buf) return SB_ENOMEM;
  uint64_t pos = SB__JSEG_HDR_SIZE; /* file position of the next record */
  uint64_t off = base;              /* its expected offset */
  uint64_t bpos = pos;              /* file position of buf[0] */
  size_t blen = 0;                  /* valid bytes in buf */
  int rc = 0;
  while (pos < file_size) {
    sb_journal_record_t r;
    size_t size = 0;
    int d = sb__jrec_decode(buf + (pos - bpos), blen - (size_t)(pos - bpos), off, &r, &size);
    if (d == 0) {
      rc = sb__jindex_add(idx, (uint32_t)(off - base), pos, r.timestamp_ms, index_interval);
      if (rc) break;
      pos += size;
      off++;
      continue;
    }
    if (d != SB_EAGAIN) break;         /* the first invalid record ends the valid prefix */
    if (pos + size > file_size) break; /* torn: the file ends inside the record */
    /* Refill from pos: move the unread tail to the front, grow for a record larger than the
     * buffer (bounded by SB_JOURNAL_RECORD_MAX), then read as much as fits. */
    size_t keep = blen - (size_t)(pos - bpos);
    memmove(buf, buf + (pos - bpos), keep);
    bpos = pos;
    blen = keep;
    if (size > cap) {
      uint8_t *nb = realloc(buf, size);
      if (!nb) {
        rc = SB_ENOMEM;
        break;
      }
      buf = nb;
      cap = size;
    }
    size_t want = cap - blen;
    if (want > file_size - (bpos + blen)) want = (size_t)(file_size - (bpos + blen));
    rc = sb__pread_full(fd, buf + blen, want, bpos + blen);
    if (rc == SB_EAGAIN) { /* the file shrank under us; treat its end as the end */
      rc = 0;
      break;
    }
    if (rc) break;
    blen += want;
  }
  free(buf);
  *valid_end = pos;
  *next = off;
  return rc;
}

/* --- indexes ------------------------------------------------------------------------------ */

int sb__jindex_add(sb__jindex_t *idx, uint32_t rel, uint64_t pos, int64_t ts, uint32_t interval) {
  if (idx->n == 0) idx->max_ts = INT64_MIN;
  if (ts > idx->max_ts) idx->max_ts = ts;
  if (idx->n > 0 && pos < idx->last_pos + interval) return 0;
  if (idx->n == idx->cap) {
    size_t ncap = idx->cap ? idx->cap * 2 : 64;
    sb__jidx_entry_t *ne = realloc(idx->e, ncap * sizeof *ne);
    if (!ne) return SB_ENOMEM;
    idx->e = ne;
    idx->cap = ncap;
  }
  idx->e[idx->n++] = (sb__jidx_entry_t){.rel = rel, .pos = (uint32_t)pos, .max_ts = idx->max_ts};
  idx->last_pos = pos;
  return 0;
}

/* The position and relative offset of entry k - 1, or of the first record when k == 0. */
static uint64_t entry_before(const sb__jindex_t *idx, size_t k, uint32_t *at_rel) {
  *at_rel = k == 0 ? 0 : idx->e[k - 1].rel;
  return k == 0 ? SB__JSEG_HDR_SIZE : idx->e[k - 1].pos;
}

uint64_t sb__jindex_find_offset(const sb__jindex_t *idx, uint32_t rel, uint32_t *at_rel) {
  size_t lo = 0, hi = idx->n; /* find the first entry with e.rel > rel */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (idx->e[mid].rel <= rel)
      lo = mid + 1;
    else
      hi = mid;
  }
  return entry_before(idx, lo, at_rel);
}

uint64_t sb__jindex_find_time(const sb__jindex_t *idx, int64_t ts, uint32_t *at_rel) {
  size_t lo = 0, hi = idx->n; /* find the first entry with e.max_ts >= ts */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (idx->e[mid].max_ts < ts)
      lo = mid + 1;
    else
      hi = mid;
  }
  return entry_before(idx, lo, at_rel);
}

int sb__jindex_write(const char *path, uint64_t base, uint64_t seg_size, uint64_t next,
                     const sb__jindex_t *idx) {
  size_t body = idx->n * SB__JIDX_ENTRY_SIZE;
  uint8_t *buf = malloc(SB__JIDX_HDR_SIZE + body);
  if (!buf) return SB_ENOMEM;
  memcpy(buf, k_idx_magic, 8);
  st64(buf + 8, base);
  st64(buf + 16, seg_size);
  st64(buf + 24, next);
  st64(buf + 32, (uint64_t)(idx->n ? idx->max_ts : INT64_MIN));
  st32(buf + 40, (uint32_t)idx->n);
  uint8_t *p = buf + SB__JIDX_HDR_SIZE;
  for (size_t i = 0; i < idx->n; i++, p += SB__JIDX_ENTRY_SIZE) {
    st32(p, idx->e[i].rel);
    st32(p + 4, idx->e[i].pos);
    st64(p + 8, (uint64_t)idx->e[i].max_ts);
  }
  uint32_t crc = sb__crc32c(0, buf, 44);
  st32(buf + 44, sb__crc32c(crc, buf + SB__JIDX_HDR_SIZE, body));

  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int rc = 0;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) rc = -errno;
  if (!rc) rc = sb__pwrite_full(fd, buf, SB__JIDX_HDR_SIZE + body, 0);
  if (fd >= 0) close(fd);
  /* No fsync: an index is a cache. A torn or lost one fails its CRC or size check and is
   * rebuilt from the segment, which is the only source of truth. */
  if (!rc && rename(tmp, path) != 0) rc = -errno;
  if (rc) unlink(tmp);
  free(buf);
  return rc;
}

int sb__jindex_read(const char *path, uint64_t base, uint64_t seg_size, sb__jindex_t *idx,
                    uint64_t *next) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? SB_ENOTFOUND : -errno;
  uint8_t h[SB__JIDX_HDR_SIZE];
  int rc = sb__pread_full(fd, h, sizeof h, 0);
  if (rc == SB_EAGAIN) rc = SB_ECORRUPT;
  if (!rc && (memcmp(h, k_idx_magic, 8) != 0 || ld64(h + 8) != base || ld64(h + 16) != seg_size))
    rc = SB_ECORRUPT;
  uint32_t count = rc ? 0 : ld32(h + 40);
  /* A segment of seg_size bytes cannot have more entries than records. */
  if (!rc && (uint64_t)count * SB__JREC_FIXED > seg_size) rc = SB_ECORRUPT;
  uint8_t *body = NULL;
  if (!rc) {
    body = malloc((size_t)count * SB__JIDX_ENTRY_SIZE + 1);
    idx->e = malloc(((size_t)count + 1) * sizeof *idx->e);
    if (!body || !idx->e) rc = SB_ENOMEM;
  }
  if (!rc) rc = sb__pread_full(fd, body, (size_t)count * SB__JIDX_ENTRY_SIZE, SB__JIDX_HDR_SIZE);
  if (rc == SB_EAGAIN) rc = SB_ECORRUPT;
  if (!rc) {
    uint32_t crc = sb__crc32c(0, h, 44);
    crc = sb__crc32c(crc, body, (size_t)count * SB__JIDX_ENTRY_SIZE);
    if (crc != ld32(h + 44)) rc = SB_ECORRUPT;
  }
  close(fd);
  if (!rc) {
    idx->cap = (size_t)count + 1;
    idx->n = count;
    for (uint32_t i = 0; i < count; i++) {
      const uint8_t *p = body + (size_t)i * SB__JIDX_ENTRY_SIZE;
      idx->e[i] = (sb__jidx_entry_t){ld32(p), ld32(p + 4), (int64_t)ld64(p + 8)};
      /* Entries must be sorted and inside the segment, or lookups could land mid-record;
       * decode would still refuse such a position, but a stale index should be rebuilt. */
      if (idx->e[i].pos < SB__JSEG_HDR_SIZE || idx->e[i].pos >= seg_size ||
          (i > 0 && (idx->e[i].rel <= idx->e[i - 1].rel || idx->e[i].pos <= idx->e[i - 1].pos)))
        rc = SB_ECORRUPT;
    }
    idx->max_ts = (int64_t)ld64(h + 32);
    idx->last_pos = count ? idx->e[count - 1].pos : 0;
    *next = ld64(h + 24);
    if (*next < base) rc = SB_ECORRUPT;
  }
  free(body);
  if (rc) sb__jindex_free(idx);
  return rc;
}

void sb__jindex_free(sb__jindex_t *idx) {
  free(idx->e);
  *idx = (sb__jindex_t){.max_ts = INT64_MIN};
}
