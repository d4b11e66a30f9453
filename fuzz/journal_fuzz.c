/*
 * libFuzzer target: journal recovery and reading (src/log/segment.c, src/log/journal.c) on
 * arbitrary segment bytes, model-checked against an independent decoder.
 *
 * Input: byte 0 selects the mode. Even: the rest is the record area of segment 0 and the
 * harness writes a valid header before it (so the fuzzer spends its time on records). Odd:
 * the rest is the whole file, header included.
 *
 * For each input:
 *   1. The model walks the record area with its own checks: the frame, the length bounds,
 *      the CRC recomputed with the table-driven sb__crc32c_sw in the documented order, the
 *      offset sequence, and the field lengths. It stops at the first record that fails. In
 *      whole-file mode the header does not matter (recovery rewrites a bad one from the file
 *      name) unless the file is shorter than a header (a torn creation: no records).
 *   2. The bytes are written as <tmp>/00000000000000000000.seg and the journal is opened
 *      (recovery must succeed whatever the bytes), then read from offset 0 to the end.
 *   3. Every record served must equal the model's record at that offset (timestamp, key,
 *      value, header block): only CRC-valid records are ever served. In header mode the
 *      count must match the model's exactly (nothing valid is dropped either).
 *   4. One append after recovery must get the next offset and read back.
 * Any disagreement aborts.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/crc32c.h"
#include "log/journal.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MODEL_MAX 4096 /* records the model remembers; inputs are at most 64 KiB */

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "journal_fuzz: %s\n", what);
    abort();
  }
}

typedef struct mrec {
  const uint8_t *p; /* the record in the input; borrowed */
  uint32_t len;     /* its len field */
} mrec_t;

static uint32_t u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t u64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* The model: returns the number of valid records at the start of p[0..n). */
static size_t model(const uint8_t *p, size_t n, mrec_t *out) {
  size_t pos = 0, k = 0;
  while (k < MODEL_MAX && n - pos >= 8) {
    const uint8_t *r = p + pos;
    uint32_t len = u32(r);
    if (len < 32 || len > SB_JOURNAL_RECORD_MAX || len > n - pos - 8) break;
    uint32_t c = sb__crc32c_sw(0, r, 4);
    c = sb__crc32c_sw(c, r + 16, len - 8);
    c = sb__crc32c_sw(c, r + 8, 8);
    if (c != u32(r + 4) || u64(r + 8) != k) break;
    uint64_t kl = u32(r + 24), vl = u32(r + 28), hl = u32(r + 32);
    if (32 + kl + vl + hl != len || r[38] || r[39]) break;
    uint16_t cnt;
    memcpy(&cnt, r + 36, 2);
    const uint8_t *h = r + 40 + kl + vl;
    uint64_t hp = 0;
    int ok = 1;
    for (uint16_t i = 0; i < cnt && ok; i++) {
      if (hl - hp < 6) {
        ok = 0;
        break;
      }
      uint16_t nl;
      memcpy(&nl, h + hp, 2);
      uint64_t need = 6 + (uint64_t)nl + u32(h + hp + 2);
      if (need > hl - hp)
        ok = 0;
      else
        hp += need;
    }
    if (!ok || hp != hl) break;
    out[k++] = (mrec_t){r, len};
    pos += 8 + (size_t)len;
  }
  return k;
}

static void rm_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  char p[512];
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static atomic_int g_done;
static atomic_int g_status;
static void on_ack(void *arg, int status, uint64_t offset) {
  (void)arg, (void)offset;
  atomic_store(&g_status, status);
  atomic_store(&g_done, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mrec_t recs[MODEL_MAX];
  static int quiet;
  if (!quiet) {
    sb_log_set_level(SB_LOG_OFF); /* recovery warns about every damaged input */
    quiet = 1;
  }
  if (size < 1) return 0;
  int raw = data[0] & 1;
  const uint8_t *body = data + 1;
  size_t n = size - 1;
  uint8_t *file = malloc(n + SB__JSEG_HDR_SIZE);
  size_t flen;
  if (raw) {
    memcpy(file, body, n);
    flen = n;
  } else {
    sb__jseg_header_encode(file, 0, 1);
    memcpy(file + SB__JSEG_HDR_SIZE, body, n);
    flen = n + SB__JSEG_HDR_SIZE;
  }
  /* The model of recovery step 2: a file shorter than a header is deleted; any other header
   * is repaired from the file name (base 0), so the records behind it count either way. */
  size_t nmodel = 0;
  if (flen >= SB__JSEG_HDR_SIZE)
    nmodel = model(file + SB__JSEG_HDR_SIZE, flen - SB__JSEG_HDR_SIZE, recs);

  const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  char dir[256], path[300];
  snprintf(dir, sizeof dir, "%s/sb-journal-fuzz.XXXXXX", tmp);
  check(mkdtemp(dir) != NULL, "mkdtemp");
  snprintf(path, sizeof path, "%s/00000000000000000000.seg", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  check(fd >= 0 && write(fd, file, flen) == (ssize_t)flen, "write segment");
  close(fd);

  sb_journal_opts_t o;
  sb_journal_opts_default(&o);
  o.fsync = SB_JOURNAL_FSYNC_NEVER;
  o.index_interval = 64;
  sb_journal_t *j = NULL;
  check(sb_journal_open(dir, &o, &j) == 0, "recovery refused to open");
  sb_journal_reader_t *r = NULL;
  check(sb_journal_reader_open(j, 0, 64, &r) == 0, "reader_open");
  sb_journal_record_t rec;
  size_t served = 0;
  int rc;
  while ((rc = sb_journal_reader_next(r, &rec)) == 0) {
    check(rec.offset == served && served < nmodel, "served a record the model rejects");
    const uint8_t *m = recs[served].p;
    uint32_t kl = u32(m + 24), vl = u32(m + 28), hl = u32(m + 32);
    check((uint64_t)rec.timestamp_ms == u64(m + 16), "timestamp differs");
    check(rec.key_len == kl && memcmp(rec.key, m + 40, kl) == 0, "key differs");
    check(rec.value_len == vl && memcmp(rec.value, m + 40 + kl, vl) == 0, "value differs");
    check(rec.headers_len == hl && memcmp(rec.headers, m + 40 + kl + vl, hl) == 0,
          "headers differ");
    served++;
  }
  check(rc == SB_EAGAIN, "reading a recovered journal failed");
  check(served == nmodel, "recovery dropped valid records");

  /* The journal takes appends where the valid prefix ended. */
  atomic_store(&g_done, 0);
  sb_journal_entry_t e = {.value = "after", .value_len = 5, .timestamp_ms = 7};
  check(sb_journal_append(j, &e, on_ack, NULL) == 0, "append after recovery");
  while (!atomic_load(&g_done))
    usleep(10);
  check(atomic_load(&g_status) == 0, "append after recovery failed");
  check(sb_journal_reader_next(r, &rec) == 0 && rec.offset == nmodel && rec.value_len == 5 &&
            memcmp(rec.value, "after", 5) == 0,
        "appended record does not read back");
  sb_journal_reader_close(r);
  sb_journal_close(j);
  rm_dir(dir);
  free(file);
  return 0;
}
