/*
 * libFuzzer target: the proto3 JSON mapping (src/contract/pbjson.c) decoding arbitrary input
 * into conformance.v1.All (tests/contract/testdata/conformance.proto: every scalar, enums,
 * maps with each key type, a oneof, the well-known types), checked against itself.
 *
 * For each input:
 *   1. Decode with flags 0. On failure err.msg must be set and err.path NUL-terminated.
 *   2. Decode again with SB_PBJSON_IGNORE_UNKNOWN. It must succeed whenever step 1 did, and
 *      then the two messages must write the same JSON.
 *   3. If either decode succeeded: write it (must succeed: everything the decoder accepts is
 *      representable), decode that text (must succeed), write again: the second text must
 *      equal the first byte for byte.
 *   4. The same message written with SB_PBJSON_PROTO_NAMES must decode and write back to the
 *      first text too (both name forms are accepted on input).
 * Any disagreement aborts. Decoded memory comes from one arena, reset after every input.
 * Seeds in fuzz/corpus/pbjson/. With PBJSON_FUZZ_VERBOSE set in the environment, each input's
 * outcome is printed (to check what the seeds reach, run it on the seed files).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.pb-c.h"
#include "contract/pbjson.h"
#include "core/arena.h"
#include "core/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sb_arena_t arena;
static int arena_ready;

static void *arena_alloc(void *ud, size_t n) {
  return sb_arena_alloc(ud, n);
}
static void arena_free(void *ud, void *p) {
  (void)ud, (void)p; /* released with the arena */
}
static ProtobufCAllocator alloc = {arena_alloc, arena_free, &arena};

static void check(int ok, const char *what, const sb_buf_t *a, const sb_buf_t *b) {
  if (ok) return;
  fprintf(stderr, "pbjson_fuzz: %s\n", what);
  if (a) fprintf(stderr, "  first:  %.*s\n", (int)sb_buf_pending(a), (const char *)sb_buf_head(a));
  if (b) fprintf(stderr, "  second: %.*s\n", (int)sb_buf_pending(b), (const char *)sb_buf_head(b));
  abort();
}

/* Writes m into out (emptied first); returns sb_pbjson_write's result. */
static int write_json(const Conformance__V1__All *m, unsigned flags, sb_buf_t *out) {
  sb_buf_reset(out);
  sb_jw_t w;
  sb_jw_init(&w, out);
  return sb_pbjson_write(&w, &m->base, flags);
}

static int decode(const void *p, size_t n, unsigned flags, Conformance__V1__All *m,
                  sb_pbjson_err_t *err) {
  conformance__v1__all__init(m);
  int rc = sb_pbjson_decode(p, n, &m->base, &alloc, flags, err);
  check(rc == 0 || (rc < 0 && err->msg != NULL && memchr(err->path, '\0', sizeof err->path)),
        "decode failed without a message", NULL, NULL);
  return rc;
}

static int same(const sb_buf_t *a, const sb_buf_t *b) {
  return sb_buf_pending(a) == sb_buf_pending(b) &&
         memcmp(sb_buf_head(a), sb_buf_head(b), sb_buf_pending(a)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!arena_ready) sb_arena_init(&arena), arena_ready = 1;
  Conformance__V1__All strict, lax, again;
  sb_pbjson_err_t err;
  sb_buf_t first = {0}, second = {0}, other = {0};

  int strict_ok = decode(data, size, 0, &strict, &err) == 0;
  int lax_ok = decode(data, size, SB_PBJSON_IGNORE_UNKNOWN, &lax, &err) == 0;
  check(!strict_ok || lax_ok, "accepted strictly but not with IGNORE_UNKNOWN", NULL, NULL);
  if (strict_ok) {
    check(write_json(&strict, 0, &first) == 0, "writing a strictly decoded message failed", NULL,
          NULL);
    check(write_json(&lax, 0, &second) == 0, "writing a decoded message failed", NULL, NULL);
    check(same(&first, &second), "IGNORE_UNKNOWN changed an input without unknown fields", &first,
          &second);
  }

  if (getenv("PBJSON_FUZZ_VERBOSE")) {
    if (lax_ok) write_json(&lax, 0, &first);
    fprintf(stderr, "pbjson_fuzz: strict %s, ignore-unknown %s: %.*s\n",
            strict_ok ? "ok" : "rejected", lax_ok ? "ok" : err.msg,
            lax_ok ? (int)sb_buf_pending(&first) : (int)sizeof err.path,
            lax_ok ? (const char *)sb_buf_head(&first) : err.path);
  }

  if (lax_ok) {
    check(write_json(&lax, 0, &first) == 0, "writing a decoded message failed", NULL, NULL);
    int rc = decode(sb_buf_head(&first), sb_buf_pending(&first), 0, &again, &err);
    if (rc) fprintf(stderr, "pbjson_fuzz: %s at \"%s\"\n", err.msg, err.path);
    check(rc == 0, "the written JSON does not decode", &first, NULL);
    check(write_json(&again, 0, &second) == 0, "writing the re-decoded message failed", &first,
          NULL);
    check(same(&first, &second), "re-encoding differs", &first, &second);

    check(write_json(&lax, SB_PBJSON_PROTO_NAMES, &other) == 0, "writing proto names failed", NULL,
          NULL);
    rc = decode(sb_buf_head(&other), sb_buf_pending(&other), 0, &again, &err);
    if (rc) fprintf(stderr, "pbjson_fuzz: %s at \"%s\"\n", err.msg, err.path);
    check(rc == 0, "the JSON written with proto names does not decode", &other, NULL);
    check(write_json(&again, 0, &second) == 0, "writing the proto-names message failed", &other,
          NULL);
    check(same(&first, &second), "proto-names round trip differs", &first, &second);
  }

  sb_buf_free(&first);
  sb_buf_free(&second);
  sb_buf_free(&other);
  sb_arena_reset(&arena);
  return 0;
}
