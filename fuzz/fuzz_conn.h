/*
 * Shared harness of the connection fuzz targets (http1_fuzz.c, h2_fuzz.c).
 *
 * Each input becomes the byte stream a client sends on one connection. The stream goes into a
 * detached connection (no socket: output is discarded) on a detached worker, so the whole
 * protocol stack runs (sniffing, http-parser or nghttp2, the exchange API, a streaming
 * handler, response framing, close) with no I/O and no threads. This file is included by
 * exactly one translation unit per target, hence the static definitions.
 *
 * Splitting. Real peers deliver bytes in arbitrary pieces, and most parser bugs hide at piece
 * boundaries, so the first byte of the input chooses how the stream is cut:
 *   bits 0-1  number of extra cuts (1 to 4 pieces);
 *   bit  2    run the worker loop between pieces (flushes, deferred callbacks, pipelining);
 *   all bits  seed for the cut positions.
 * The first byte is still part of the stream: a seed file stays a plain, readable request.
 *
 * The handler echoes the body with a trailer, pauses the body when a write reports
 * backpressure, and also pauses it when a body chunk starts with 'P'; the harness resumes that
 * one after the next loop run. So flow control is exercised although a detached connection's
 * output always drains.
 *
 * Lifetime of the connection. A connection frees itself in the close callbacks of its libuv
 * handles, which run inside uv_run(). So the pointer from sb__conn_new_detached() is only
 * used until the loop first runs; after that the connection is found again through the
 * worker's list (it is the worker's only connection, and it stays listed until freed).
 * Every input ends with no connection left, so LeakSanitizer can check each input alone.
 *
 * Set SB_FUZZ_LOG=debug to see the server's log lines (off by default: they would drown
 * libFuzzer's output and cost time; the logging code is covered by unit tests).
 */
#ifndef SB_FUZZ_CONN_H
#define SB_FUZZ_CONN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"
#include "switchboard/error.h"
#include "switchboard/http.h"
#include "switchboard/log.h"
#include "switchboard/server.h"

/* libFuzzer's entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_HEADER_BYTES 4096u /* small limits reach the 431/413 paths with short inputs */
#define FUZZ_MAX_BODY_BYTES 65536u
#define FUZZ_H2_MAX_STREAMS 16u
#define FUZZ_H2_MAX_HEADER_LIST 4096u
#define FUZZ_DRAIN_ROUNDS 16 /* loop runs allowed for a closed connection to be freed */

static sb_server_t *fuzz_srv;    /* process lifetime; never freed (still reachable at exit) */
static sb__worker_t fuzz_worker; /* detached worker; owns the loop every input runs on */

/* ---- the handler: echo the body back as a stream, end with a trailer ---- */

/* An exchange whose body the handler paused on its own account (a data chunk starting with
 * 'P'); the harness resumes it after the next loop run, so pause and resume happen at every
 * point the cuts of the input allow. At most one at a time; cleared before the handler ends
 * that exchange, after which it must not be touched. */
static sb_http_req_t *fuzz_paused;

static void fuzz_on_data(sb_http_req_t *req, const uint8_t *data, size_t len, void *ud) {
  /* Backpressure as a well-behaved handler applies it: pause on 1, resume on writable. */
  int rc = sb_http_res_write(req, data, len);
  if (rc == 1)
    sb_http_req_pause_body(req, 1);
  else if (len && data[0] == 'P' && !fuzz_paused && sb_http_req_pause_body(req, 1) == 0)
    fuzz_paused = req;
}

static void fuzz_let_go(sb_http_req_t *req) {
  if (fuzz_paused == req) fuzz_paused = NULL;
}

static void fuzz_on_end(sb_http_req_t *req, void *ud) {
  fuzz_let_go(req);
  sb_http_res_trailer(req, "x-fuzz-bytes", "1");
  sb_http_res_end(req);
}

static void fuzz_on_abort(sb_http_req_t *req, int err, void *ud) {
  fuzz_let_go(req);
  sb_http_res_end(req);
}

static void fuzz_on_writable(sb_http_req_t *req, void *ud) {
  if (fuzz_paused != req) sb_http_req_pause_body(req, 0);
}

/* Resumes the exchange the handler paused, if any. Runs on the loop's thread between runs,
 * as a timer callback would. */
static void fuzz_resume(void) {
  sb_http_req_t *req = fuzz_paused;
  fuzz_paused = NULL;
  if (req) sb_http_req_pause_body(req, 0);
}

static void fuzz_handler(sb_http_req_t *req, void *ud) {
  /* Touch every accessor and every byte of every header, so ASan sees any string that is not
   * what the exchange claims (a wrong length, a missing NUL). */
  volatile size_t sum = strlen(sb_http_req_method(req)) + strlen(sb_http_req_path(req)) +
                        strlen(sb_http_req_query(req)) + strlen(sb_http_req_authority(req));
  size_t n = sb_http_req_header_count(req);
  for (size_t i = 0; i < n; i++) {
    const sb_http_header_t *h = sb_http_req_header_at(req, i);
    if (!h) continue;
    sum += strlen(h->name) + strlen(h->value);
    sum += h->name_len + h->value_len;
  }
  size_t vlen = 0;
  const char *ct = sb_http_req_header(req, "content-type", &vlen);
  (void)sb_http_req_content_length(req);
  (void)sb_http_req_proto(req);
  (void)sb_http_req_is_tls(req);
  (void)sum;

  sb_http_res_status(req, 200);
  /* Reflecting request data into response headers exercises header validation with hostile
   * values; failures are expected and ignored. */
  if (ct) sb_http_res_header_n(req, "content-type", 12, ct, vlen);
  sb_http_res_header(req, "x-path", sb_http_req_path(req));
  sb_http_callbacks_t cbs = {
      .on_data = fuzz_on_data,
      .on_end = fuzz_on_end,
      .on_abort = fuzz_on_abort,
      .on_writable = fuzz_on_writable,
  };
  sb_http_req_set_callbacks(req, &cbs);
  /* Headers before the body, as a long-lived stream would do. */
  (void)sb_http_res_flush_headers(req);
}

/* ---- setup ---- */

static void fuzz_setup(void) {
  sb_log_level_t level = SB_LOG_OFF;
  const char *env = getenv("SB_FUZZ_LOG");
  if (env) sb_log_parse_level(env, &level);
  sb_log_set_level(level);

  sb_server_config_t cfg = {0};
  cfg.http_addr = "127.0.0.1:0";
  cfg.threads = 1;
  cfg.max_header_bytes = FUZZ_MAX_HEADER_BYTES;
  cfg.max_body_bytes = FUZZ_MAX_BODY_BYTES;
  cfg.h2_max_streams = FUZZ_H2_MAX_STREAMS;
  cfg.h2_max_header_list = FUZZ_H2_MAX_HEADER_LIST;
  /* Nothing to recover from: a harness that cannot start must not report "no crashes". */
  if (sb_server_new(&cfg, &fuzz_srv) != 0) abort();
  if (sb_server_route(fuzz_srv, "/", fuzz_handler, NULL) != 0) abort();
  if (sb__worker_init_detached(&fuzz_worker, fuzz_srv) != 0) abort();
}

/* ---- one input ---- */

/* Picks up to 3 cut positions in [0, len] from the control byte b, ascending. Returns the
 * number of cuts. */
static unsigned fuzz_cuts(uint8_t b, size_t len, size_t cuts[3]) {
  unsigned n = b & 3u;
  uint32_t x = (uint32_t)b * 2654435761u;
  for (unsigned i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    cuts[i] = (size_t)(x >> 8) % (len + 1);
  }
  for (unsigned i = 1; i < n; i++) /* insertion sort of at most 3 */
    for (unsigned k = i; k > 0 && cuts[k - 1] > cuts[k]; k--) {
      size_t t = cuts[k];
      cuts[k] = cuts[k - 1];
      cuts[k - 1] = t;
    }
  return n;
}

/* Runs the worker loop once without blocking: flushes dirty connections, delivers deferred
 * callbacks and runs close callbacks (which may free the connection). */
static void fuzz_loop_once(void) {
  uv_run(&fuzz_worker.loop, UV_RUN_NOWAIT);
}

/* Feeds prefix (may be empty) followed by data to a fresh connection, as described at the
 * top of this file, then closes it and runs the loop until it is freed. */
static void fuzz_one_connection(const uint8_t *prefix, size_t plen, const uint8_t *data,
                                size_t size) {
  const uint8_t *bytes = data;
  uint8_t *joined = NULL;
  size_t len = size;
  if (plen) {
    joined = malloc(plen + size);
    if (!joined) return;
    memcpy(joined, prefix, plen);
    if (size) memcpy(joined + plen, data, size);
    bytes = joined;
    len = plen + size;
  }
  uint8_t control = size ? data[0] : 0;
  size_t cuts[3];
  unsigned ncuts = fuzz_cuts(control, len, cuts);
  int loop_between = (control >> 2) & 1u;

  sb__conn_t *c = sb__conn_new_detached(&fuzz_worker);
  if (!c) {
    free(joined);
    return;
  }
  size_t off = 0;
  for (unsigned i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : len;
    if (end <= off) continue;
    /* The connection is alive here: it was created or re-found in the worker's list since the
     * loop last ran. A connection that closed itself while feeding stays allocated until the
     * loop runs, so reading its closing flag is safe. */
    if (c->closing) break;
    int rc = sb__conn_feed(c, bytes + off, end - off);
    off = end;
    if (rc < 0 || c->closing) break;
    if (loop_between && off < len) {
      fuzz_loop_once();
      fuzz_resume();
      c = fuzz_worker.conns; /* NULL when it closed and was freed */
      if (!c) break;
    }
  }
  free(joined);

  /* Flush what the input produced (responses, GOAWAY), as the worker does after a read; then
   * let a paused body go on, and flush what that produced. */
  fuzz_loop_once();
  fuzz_resume();
  fuzz_loop_once();
  /* The peer hangs up. The connection may have closed (and been freed) in the run above, so
   * it is looked up again rather than used through the old pointer. */
  for (sb__conn_t *k = fuzz_worker.conns, *next; k; k = next) {
    next = k->next;
    if (!k->closing) sb__conn_close(k, "fuzz");
  }
  for (int i = 0; i < FUZZ_DRAIN_ROUNDS && fuzz_worker.conns; i++)
    fuzz_loop_once();
  /* A connection that does not go away within a few loop runs leaks its memory, and the
   * next input would start with it still listed: treat it as a bug. */
  if (fuzz_worker.conns) abort();
  /* Closing aborted every exchange, and the handler let go of each on abort. */
  if (fuzz_paused) abort();
}

#endif
