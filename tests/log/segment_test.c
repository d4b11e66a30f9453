/*
 * Tests of the journal's disk format (src/log/segment.c): record round trip, each validity
 * condition R1-R7 on its own, segment headers (S1-S2), scans that stop at torn or damaged
 * records, and sparse index lookups and files (valid, stale, damaged, missing).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/crc32c.h"
#include "log/segment.h"
#include "sb_test.h"
#include "switchboard/error.h"

/* Encodes one record with key, value and two headers at offset off into a malloc'd buffer. */
static uint8_t *make_rec(uint64_t off, const char *key, const char *val, size_t *size) {
  sb_journal_header_t h[2] = {{"type", 4, "order", 5}, {"empty", 5, NULL, 0}};
  sb_journal_entry_t e = {.key = key,
                          .key_len = (uint32_t)strlen(key),
                          .value = val,
                          .value_len = (uint32_t)strlen(val),
                          .headers = h,
                          .header_count = 2,
                          .timestamp_ms = 1700000000123};
  *size = sb__jrec_size(&e);
  uint8_t *p = malloc(*size);
  sb__jrec_encode(p, &e);
  sb__jrec_seal(p, off);
  return p;
}

/* Recomputes the CRC in the documented order, for tests that break a field on purpose. */
static void reseal_crc(uint8_t *p) {
  uint32_t len;
  memcpy(&len, p, 4);
  uint32_t c = sb__crc32c(0, p, 4);
  c = sb__crc32c(c, p + 16, len - 8);
  c = sb__crc32c(c, p + 8, 8);
  memcpy(p + 4, &c, 4);
}

TEST(record_round_trip) {
  size_t n;
  uint8_t *p = make_rec(42, "k1", "hello", &n);
  REQUIRE(p != NULL);
  CHECK_EQ_INT(n, SB__JREC_FIXED + 2 + 5 + (6 + 4 + 5) + (6 + 5));
  sb_journal_record_t r;
  size_t size = 0;
  CHECK_EQ_INT(sb__jrec_decode(p, n, 42, &r, &size), 0);
  CHECK_EQ_INT(size, n);
  CHECK_EQ_INT(r.offset, 42);
  CHECK_EQ_INT(r.timestamp_ms, 1700000000123);
  CHECK_EQ_INT(r.key_len, 2);
  CHECK_MEM(r.key, "k1", 2);
  CHECK_EQ_INT(r.value_len, 5);
  CHECK_MEM(r.value, "hello", 5);
  CHECK_EQ_INT(r.header_count, 2);
  uint32_t pos = 0;
  const uint8_t *nm, *val;
  uint16_t nl;
  uint32_t vl;
  CHECK_EQ_INT(sb_journal_header_next(&r, &pos, &nm, &nl, &val, &vl), 1);
  CHECK_EQ_INT(nl, 4);
  CHECK_MEM(nm, "type", 4);
  CHECK_EQ_INT(vl, 5);
  CHECK_MEM(val, "order", 5);
  CHECK_EQ_INT(sb_journal_header_next(&r, &pos, &nm, &nl, &val, &vl), 1);
  CHECK_MEM(nm, "empty", 5);
  CHECK_EQ_INT(vl, 0);
  CHECK_EQ_INT(sb_journal_header_next(&r, &pos, &nm, &nl, &val, &vl), 0);
  free(p);
}

TEST(record_short_input_asks_for_more) {
  size_t n;
  uint8_t *p = make_rec(0, "k", "v", &n);
  sb_journal_record_t r;
  size_t size = 0;
  CHECK_EQ_INT(sb__jrec_decode(p, 3, 0, &r, &size), SB_EAGAIN); /* R1 */
  CHECK_EQ_INT(size, 8);
  CHECK_EQ_INT(sb__jrec_decode(p, n - 1, 0, &r, &size), SB_EAGAIN); /* R2 */
  CHECK_EQ_INT(size, n);
  free(p);
}

TEST(record_each_validity_condition) {
  size_t n, size;
  sb_journal_record_t r;
  uint8_t *p = make_rec(7, "key", "value", &n);
  uint8_t *q = malloc(n);

  memcpy(q, p, n); /* R2: len below the fixed part */
  uint32_t small = 10;
  memcpy(q, &small, 4);
  CHECK_EQ_INT(sb__jrec_decode(q, n, 7, &r, &size), SB_ECORRUPT);
  memcpy(q, p, n); /* R2: len over the maximum */
  uint32_t huge = SB_JOURNAL_RECORD_MAX + 1;
  memcpy(q, &huge, 4);
  CHECK_EQ_INT(sb__jrec_decode(q, n, 7, &r, &size), SB_ECORRUPT);

  int flips_caught = 1; /* R3: every single-bit flip anywhere is caught */
  for (size_t i = 0; i < n; i++)
    for (int bit = 0; bit < 8; bit++) {
      memcpy(q, p, n);
      q[i] ^= (uint8_t)(1u << bit);
      int rc = sb__jrec_decode(q, n, 7, &r, &size);
      flips_caught &= rc != 0;
    }
  CHECK(flips_caught);

  CHECK_EQ_INT(sb__jrec_decode(p, n, 8, &r, &size), SB_ECORRUPT); /* R4 */

  memcpy(q, p, n); /* R5: key_len disagrees with len, CRC made valid */
  uint32_t k = 4;
  memcpy(q + 24, &k, 4);
  reseal_crc(q);
  CHECK_EQ_INT(sb__jrec_decode(q, n, 7, &r, &size), SB_ECORRUPT);

  memcpy(q, p, n); /* R6: one header more than the block holds */
  uint16_t cnt = 3;
  memcpy(q + 36, &cnt, 2);
  reseal_crc(q);
  CHECK_EQ_INT(sb__jrec_decode(q, n, 7, &r, &size), SB_ECORRUPT);

  memcpy(q, p, n); /* R7 */
  q[38] = 1;
  reseal_crc(q);
  CHECK_EQ_INT(sb__jrec_decode(q, n, 7, &r, &size), SB_ECORRUPT);

  memcpy(q, p, n); /* the control: the unmodified copy, resealed, still decodes */
  reseal_crc(q);
  CHECK_EQ_INT(sb__jrec_decode(q, n, 7, &r, &size), 0);
  free(q);
  free(p);
}

TEST(record_invalid_entries_are_refused) {
  sb_journal_entry_t e = {.key = NULL, .key_len = 3};
  CHECK_EQ_INT(sb__jrec_size(&e), 0);
  e = (sb_journal_entry_t){.value = "x", .value_len = SB_JOURNAL_RECORD_MAX};
  CHECK_EQ_INT(sb__jrec_size(&e), 0);
  e = (sb_journal_entry_t){.header_count = 1, .headers = NULL};
  CHECK_EQ_INT(sb__jrec_size(&e), 0);
  e = (sb_journal_entry_t){0};
  CHECK_EQ_INT(sb__jrec_size(&e), SB__JREC_FIXED);
}

TEST(segment_header) {
  uint8_t h[SB__JSEG_HDR_SIZE];
  sb__jseg_header_encode(h, 1234, 99);
  uint64_t base = 0;
  int64_t created = 0;
  CHECK_EQ_INT(sb__jseg_header_decode(h, sizeof h, &base, &created), 0);
  CHECK_EQ_INT(base, 1234);
  CHECK_EQ_INT(created, 99);
  CHECK_EQ_INT(sb__jseg_header_decode(h, sizeof h - 1, &base, &created), SB_ECORRUPT); /* S1 */
  h[9] ^= 1;
  CHECK_EQ_INT(sb__jseg_header_decode(h, sizeof h, &base, &created), SB_ECORRUPT); /* S2 */
  char name[64];
  sb__jseg_name(name, sizeof name, 41234, ".seg");
  CHECK_EQ_STR(name, "00000000000000041234.seg");
}

/* Writes a segment with base 100 and count records to a temp file; returns its fd and sets
 * *ends[i] to the file position after record i. */
static int write_segment(char *path, int count, uint64_t *ends) {
  strcpy(path, "/tmp/sb-segtest.XXXXXX");
  int fd = mkstemp(path);
  uint8_t h[SB__JSEG_HDR_SIZE];
  sb__jseg_header_encode(h, 100, 0);
  uint64_t pos = 0;
  sb__pwrite_full(fd, h, sizeof h, 0);
  pos = sizeof h;
  for (int i = 0; i < count; i++) {
    char val[64];
    snprintf(val, sizeof val, "value-%d", i);
    size_t n;
    uint8_t *p = make_rec(100 + (uint64_t)i, "k", val, &n);
    sb__pwrite_full(fd, p, n, pos);
    pos += n;
    ends[i] = pos;
    free(p);
  }
  return fd;
}

TEST(segment_scan_stops_at_damage) {
  char path[64];
  uint64_t ends[50];
  int fd = write_segment(path, 50, ends);
  REQUIRE(fd >= 0);
  sb__jindex_t idx = {0};
  uint64_t valid = 0, next = 0;
  CHECK_EQ_INT(sb__jseg_scan(fd, 100, ends[49], 256, &idx, &valid, &next), 0);
  CHECK_EQ_INT(valid, ends[49]);
  CHECK_EQ_INT(next, 150);
  CHECK(idx.n > 1 && idx.n < 50); /* sparse: one entry per 256 bytes */
  sb__jindex_free(&idx);
  /* A torn last record: the file ends 3 bytes early. */
  CHECK_EQ_INT(sb__jseg_scan(fd, 100, ends[49] - 3, 256, &idx, &valid, &next), 0);
  CHECK_EQ_INT(valid, ends[48]);
  CHECK_EQ_INT(next, 149);
  sb__jindex_free(&idx);
  /* A flipped bit in record 20: records 20.. are beyond the valid prefix. */
  uint8_t b;
  pread(fd, &b, 1, (off_t)ends[19] + 45);
  b ^= 0x10;
  pwrite(fd, &b, 1, (off_t)ends[19] + 45);
  CHECK_EQ_INT(sb__jseg_scan(fd, 100, ends[49], 256, &idx, &valid, &next), 0);
  CHECK_EQ_INT(valid, ends[19]);
  CHECK_EQ_INT(next, 120);
  sb__jindex_free(&idx);
  close(fd);
  unlink(path);
}

TEST(index_lookups) {
  sb__jindex_t idx = {0};
  /* Records of 100 bytes at 32, 132, ...; timestamps 10, 5, 30, 20, 40, ... (not sorted). */
  int64_t ts[10] = {10, 5, 30, 20, 40, 35, 50, 60, 55, 70};
  for (uint32_t i = 0; i < 10; i++)
    CHECK_EQ_INT(sb__jindex_add(&idx, i, 32 + 100 * i, ts[i], 200), 0);
  CHECK_EQ_INT(idx.n, 5); /* records 0, 2, 4, 6, 8 */
  CHECK_EQ_INT(idx.max_ts, 70);
  uint32_t at = 99;
  CHECK_EQ_INT(sb__jindex_find_offset(&idx, 0, &at), 32);
  CHECK_EQ_INT(at, 0);
  CHECK_EQ_INT(sb__jindex_find_offset(&idx, 5, &at), 32 + 400);
  CHECK_EQ_INT(at, 4);
  CHECK_EQ_INT(sb__jindex_find_offset(&idx, 1000, &at), 32 + 800);
  CHECK_EQ_INT(at, 8);
  /* First record with ts >= 25 is record 2 (30): the scan must start at or before it. */
  uint64_t pos = sb__jindex_find_time(&idx, 25, &at);
  CHECK(pos <= 32 + 200);
  CHECK_EQ_INT(pos, 32 + 100 * at);
  /* ts >= 45: record 6 (50); entries' max_ts: 10, 30, 40, 50, 60 -> start at entry of rec 4. */
  CHECK_EQ_INT(sb__jindex_find_time(&idx, 45, &at), 32 + 400);
  CHECK_EQ_INT(sb__jindex_find_time(&idx, -1, &at), SB__JSEG_HDR_SIZE);
  sb__jindex_free(&idx);
}

TEST(index_file_valid_stale_damaged_missing) {
  char path[] = "/tmp/sb-idxtest.XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  sb__jindex_t idx = {0}, back = {0};
  for (uint32_t i = 0; i < 100; i++)
    sb__jindex_add(&idx, i, 32 + 50 * i, 1000 + i, 120);
  CHECK_EQ_INT(sb__jindex_write(path, 7, 5032, 107, &idx), 0);
  uint64_t next = 0;
  CHECK_EQ_INT(sb__jindex_read(path, 7, 5032, &back, &next), 0);
  CHECK_EQ_INT(next, 107);
  CHECK_EQ_INT(back.n, idx.n);
  CHECK_EQ_INT(back.max_ts, 1099);
  CHECK(back.n == idx.n && memcmp(back.e, idx.e, idx.n * sizeof *idx.e) == 0);
  sb__jindex_free(&back);
  CHECK_EQ_INT(sb__jindex_read(path, 7, 5033, &back, &next), SB_ECORRUPT); /* stale size */
  CHECK_EQ_INT(sb__jindex_read(path, 8, 5032, &back, &next), SB_ECORRUPT); /* other base */
  fd = open(path, O_RDWR);
  uint8_t b;
  pread(fd, &b, 1, 60);
  b ^= 4;
  pwrite(fd, &b, 1, 60);
  close(fd);
  CHECK_EQ_INT(sb__jindex_read(path, 7, 5032, &back, &next), SB_ECORRUPT); /* bit flip */
  CHECK(back.e == NULL);
  unlink(path);
  CHECK_EQ_INT(sb__jindex_read(path, 7, 5032, &back, &next), SB_ENOTFOUND);
  sb__jindex_free(&idx);
}
