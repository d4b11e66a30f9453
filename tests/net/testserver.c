/*
 * sb-testserver: the server the interop tests drive.
 *
 * It is switchboard's HTTP core with the built-in routes (/healthz, /metrics) plus test routes
 * that exercise what a real handler does: streaming request bodies with flow control (/echo),
 * answering later from a timer (/delay), streaming responses under backpressure (/stream,
 * /sse), trailers (/trailers), header inspection (/headers) and a handler that breaks its own
 * content-length (/length-mismatch). The exact behaviour of each route is in the HTTP
 * behaviour spec and in the comment above its handler.
 *
 * It is written against the public API only (include/switchboard/), as an embedding service
 * would be, so the interop suite also tests that the public API is sufficient. The one
 * exception is src/core/config.h: sb-testserver accepts exactly the flags of
 * `switchboard serve`, and sharing the parser is how that stays true.
 *
 *   sb-testserver [serve] [--http ADDR:PORT] [--threads N] [--log-level L] ...
 *
 * Exit status: 0 after a clean stop (SIGINT/SIGTERM), 1 when the server fails to start,
 * 2 for bad flags.
 *
 * Threading: every handler and callback below runs on the worker loop that owns the exchange;
 * per-request state (job_t) is owned by that loop and never shared.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/config.h"
#include "switchboard/error.h"
#include "switchboard/http.h"
#include "switchboard/log.h"
#include "switchboard/server.h"

/* Limits on query parameters, so a typo in a test cannot make the server allocate gigabytes
 * or hold a request for hours. */
#define TS_MAX_DELAY_MS 600000u            /* /delay?ms */
#define TS_MAX_INTERVAL_MS 600000u         /* /stream and /sse interval_ms */
#define TS_MAX_ITEMS 10000000u             /* /stream chunks, /sse events */
#define TS_MAX_CHUNK (16u * 1024u * 1024u) /* /stream size, bytes */
#define TS_DEFAULT_CHUNK 1024u             /* /stream size when absent */

/* ---- small helpers ---- */

/* Looks up key in query ("a=1&b=2", without '?') and parses its value as a decimal integer
 * in [0, max]. Returns 0 and sets *out (to def when the key is absent), or -1 when the value
 * is empty, not all digits, or over max. The first occurrence of key wins. No percent-decoding:
 * every parameter of the test routes is a plain number. */
static int query_uint(const char *query, const char *key, uint64_t def, uint64_t max,
                      uint64_t *out) {
  size_t klen = strlen(key);
  *out = def;
  for (const char *p = query; p && *p;) {
    const char *amp = strchr(p, '&');
    size_t plen = amp ? (size_t)(amp - p) : strlen(p);
    if (plen >= klen && strncmp(p, key, klen) == 0 && (plen == klen || p[klen] == '=')) {
      if (plen <= klen + 1) return -1; /* "key" or "key=" */
      uint64_t n = 0;
      for (const char *v = p + klen + 1; v < p + plen; v++) {
        if (*v < '0' || *v > '9') return -1;
        uint64_t d = (uint64_t)(*v - '0');
        if (d > max || n > (max - d) / 10) return -1;
        n = n * 10 + d;
      }
      *out = n;
      return 0;
    }
    p = amp ? amp + 1 : NULL;
  }
  return 0;
}

/* Answers with a complete text/plain response. */
static void reply_text(sb_http_req_t *req, int status, const char *text) {
  sb_http_respond(req, status, "text/plain", text, strlen(text));
}

/* ---- timed and streamed responses ---- */

/* What a job produces. */
enum job_kind {
  JOB_DELAY,  /* one "done\n" response after interval_ms */
  JOB_STREAM, /* total chunks of size bytes of 'x' */
  JOB_SSE,    /* total events "data: <i>\n\n" */
};

/* The state of one /delay, /stream or /sse exchange.
 *
 * Lifetime: allocated by the handler, which passes the exchange to the job. The job gives the
 * exchange back exactly once, through job_release(), when it finished writing or when the
 * client went away (on_abort); job_release() also closes the timer, and the job is freed in
 * the timer's close callback, because libuv may touch a handle until that callback ran.
 * Callbacks of the exchange (ud = the job) stop once sb_http_res_end() was called, so none
 * can arrive after the job is freed. */
typedef struct job {
  uv_timer_t timer;     /* delay / interval timer on the exchange's loop; data = this job */
  sb_http_req_t *req;   /* the exchange, held until released; NULL afterwards */
  enum job_kind kind;   /* what to write */
  uint64_t total;       /* chunks or events to write */
  uint64_t done;        /* chunks or events written so far; done <= total */
  uint64_t interval_ms; /* delay, or pause between items; 0 = as fast as backpressure allows */
  size_t size;          /* JOB_STREAM: bytes per chunk */
  char *chunk;          /* JOB_STREAM: size bytes of 'x'; owned, freed with the job */
  int blocked;          /* a write returned 1: nothing more until on_writable */
} job_t;

static void job_closed(uv_handle_t *h) {
  job_t *j = h->data;
  free(j->chunk);
  free(j);
}

/* Takes the exchange back from the job and closes its timer. Returns the exchange, which the
 * caller must end, or NULL when it was already released. */
static sb_http_req_t *job_release(job_t *j) {
  sb_http_req_t *req = j->req;
  if (!req) return NULL;
  j->req = NULL;
  uv_close((uv_handle_t *)&j->timer, job_closed); /* also stops it */
  return req;
}

/* Ends the response (if the job still holds it). */
static void job_finish(job_t *j) {
  sb_http_req_t *req = job_release(j);
  if (req) sb_http_res_end(req);
}

/* Writes item number j->done. Returns what sb_http_res_write() returned. */
static int job_write_item(job_t *j) {
  int rc;
  if (j->kind == JOB_STREAM) {
    rc = sb_http_res_write(j->req, j->chunk, j->size);
  } else {
    char ev[48];
    int n = snprintf(ev, sizeof ev, "data: %llu\n\n", (unsigned long long)j->done);
    rc = sb_http_res_write(j->req, ev, (size_t)n);
  }
  j->done++;
  return rc;
}

/* Writes what may be written now: one item per timer tick when there is an interval, else
 * items until the exchange pushes back (a write returning 1) or the last one is out. Ends the
 * response after the last item, or when a write fails (the client is gone). */
static void job_pump(job_t *j) {
  while (j->req && !j->blocked && j->done < j->total) {
    int rc = job_write_item(j);
    /* A write may report the client gone through on_abort before it returns, and on_abort
     * releases the exchange: check before touching it again. */
    if (!j->req) return;
    if (rc < 0) {
      job_finish(j);
      return;
    }
    if (rc == 1) {
      j->blocked = 1;
      if (j->interval_ms) uv_timer_stop(&j->timer);
    }
    if (j->interval_ms) break;
  }
  /* Ending with bytes still buffered is fine: the server sends them before finishing. */
  if (j->req && j->done == j->total) job_finish(j);
}

static void job_on_timer(uv_timer_t *t) {
  job_t *j = t->data;
  if (j->kind == JOB_DELAY) {
    sb_http_req_t *req = job_release(j);
    if (req) reply_text(req, 200, "done\n");
    return;
  }
  job_pump(j);
}

static void job_on_writable(sb_http_req_t *req, void *ud) {
  job_t *j = ud;
  if (!j->req || !j->blocked) return;
  j->blocked = 0;
  if (j->interval_ms)
    uv_timer_start(&j->timer, job_on_timer, j->interval_ms, j->interval_ms);
  else
    job_pump(j);
}

/* The client went away: stop producing, and give the exchange back (the lifetime rules of
 * http.h require sb_http_res_end() even after an abort). */
static void job_on_abort(sb_http_req_t *req, int err, void *ud) {
  job_finish(ud);
}

/* Creates a job holding req, with its timer initialised on the exchange's loop. Returns NULL
 * (having answered 503) when out of memory. */
static job_t *job_new(sb_http_req_t *req, enum job_kind kind, uint64_t total,
                      uint64_t interval_ms) {
  job_t *j = calloc(1, sizeof *j);
  if (!j) {
    reply_text(req, 503, "out of memory\n");
    return NULL;
  }
  uv_timer_init(sb_http_req_loop(req), &j->timer);
  j->timer.data = j;
  j->req = req;
  j->kind = kind;
  j->total = total;
  j->interval_ms = interval_ms;
  return j;
}

/* Registers the job's callbacks and starts producing. */
static void job_start(job_t *j) {
  sb_http_callbacks_t cbs = {
      .on_abort = job_on_abort,
      .on_writable = job_on_writable,
      .ud = j,
  };
  sb_http_req_set_callbacks(j->req, &cbs);
  if (j->kind == JOB_DELAY) {
    uv_timer_start(&j->timer, job_on_timer, j->interval_ms, 0);
    return;
  }
  if (j->interval_ms) {
    /* A slow stream shows its status at once, as a real event stream would. */
    int rc = sb_http_res_flush_headers(j->req);
    if (rc < 0) {
      job_finish(j);
      return;
    }
  }
  /* The first item goes out now; the timer paces the rest. */
  job_pump(j);
  if (j->req && !j->blocked && j->interval_ms)
    uv_timer_start(&j->timer, job_on_timer, j->interval_ms, j->interval_ms);
}

/* GET /delay?ms=N : 200 "done\n" after N ms (default 0), from a timer; never blocks. */
static void route_delay(sb_http_req_t *req, void *ud) {
  uint64_t ms;
  if (query_uint(sb_http_req_query(req), "ms", 0, TS_MAX_DELAY_MS, &ms)) {
    reply_text(req, 400, "bad query: ms\n");
    return;
  }
  job_t *j = job_new(req, JOB_DELAY, 1, ms);
  if (j) job_start(j);
}

/* GET /stream?chunks=N&size=M&interval_ms=I : N chunks (default 1) of M bytes (default 1024)
 * of 'x', one every I ms (default 0 = as fast as backpressure allows). */
static void route_stream(sb_http_req_t *req, void *ud) {
  const char *q = sb_http_req_query(req);
  uint64_t chunks, size, interval;
  if (query_uint(q, "chunks", 1, TS_MAX_ITEMS, &chunks) ||
      query_uint(q, "size", TS_DEFAULT_CHUNK, TS_MAX_CHUNK, &size) ||
      query_uint(q, "interval_ms", 0, TS_MAX_INTERVAL_MS, &interval)) {
    reply_text(req, 400, "bad query: chunks, size, interval_ms\n");
    return;
  }
  char *chunk = malloc(size ? size : 1);
  if (!chunk) {
    reply_text(req, 503, "out of memory\n");
    return;
  }
  memset(chunk, 'x', size);
  job_t *j = job_new(req, JOB_STREAM, size ? chunks : 0, interval);
  if (!j) {
    free(chunk);
    return;
  }
  j->chunk = chunk;
  j->size = size;
  sb_http_res_header(req, "content-type", "application/octet-stream");
  job_start(j);
}

/* GET /sse?events=N&interval_ms=I : text/event-stream with N events (default 1)
 * "data: <i>\n\n", i from 0, one every I ms (default 0). */
static void route_sse(sb_http_req_t *req, void *ud) {
  const char *q = sb_http_req_query(req);
  uint64_t events, interval;
  if (query_uint(q, "events", 1, TS_MAX_ITEMS, &events) ||
      query_uint(q, "interval_ms", 0, TS_MAX_INTERVAL_MS, &interval)) {
    reply_text(req, 400, "bad query: events, interval_ms\n");
    return;
  }
  job_t *j = job_new(req, JOB_SSE, events, interval);
  if (!j) return;
  sb_http_res_header(req, "content-type", "text/event-stream");
  sb_http_res_header(req, "cache-control", "no-cache");
  job_start(j);
}

/* ---- request-driven responses ---- */

/* Echo flow control: when the response buffer is above its high-water mark (a write returned
 * 1), stop taking the request body until it drains, so a client that sends faster than it
 * reads makes the server stop reading it instead of buffering without bound. */
static void echo_on_data(sb_http_req_t *req, const uint8_t *data, size_t len, void *ud) {
  /* A negative result means the client is gone; on_abort follows or already ran and ends the
   * exchange. */
  if (sb_http_res_write(req, data, len) == 1) sb_http_req_pause_body(req, 1);
}

static void echo_on_writable(sb_http_req_t *req, void *ud) {
  sb_http_req_pause_body(req, 0);
}

static void echo_on_end(sb_http_req_t *req, void *ud) {
  sb_http_res_end(req);
}

/* on_end and on_abort are exclusive for an exchange the handler still holds (on_abort comes
 * only before the response ended, and nothing comes after sb_http_res_end), so each ends the
 * exchange without extra state. */
static void echo_on_abort(sb_http_req_t *req, int err, void *ud) {
  sb_http_res_end(req);
}

/* ANY /echo : 200 application/octet-stream, the request body streamed back as it arrives. */
static void route_echo(sb_http_req_t *req, void *ud) {
  sb_http_res_header(req, "content-type", "application/octet-stream");
  sb_http_callbacks_t cbs = {
      .on_data = echo_on_data,
      .on_end = echo_on_end,
      .on_abort = echo_on_abort,
      .on_writable = echo_on_writable,
  };
  sb_http_req_set_callbacks(req, &cbs);
}

/* ANY /headers : "METHOD PATH QUERY\n" (QUERY "-" when empty), then "name: value\n" for each
 * request header in arrival order. */
static void route_headers(sb_http_req_t *req, void *ud) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) {
    reply_text(req, 503, "out of memory\n");
    return;
  }
  const char *query = sb_http_req_query(req);
  fprintf(f, "%s %s %s\n", sb_http_req_method(req), sb_http_req_path(req), *query ? query : "-");
  size_t n = sb_http_req_header_count(req);
  for (size_t i = 0; i < n; i++) {
    const sb_http_header_t *h = sb_http_req_header_at(req, i);
    if (!h) continue;
    /* Lengths, not strings: the value is exactly what the client sent. */
    fwrite(h->name, 1, h->name_len, f);
    fputs(": ", f);
    fwrite(h->value, 1, h->value_len, f);
    fputc('\n', f);
  }
  if (fclose(f) != 0 || !text) {
    free(text);
    reply_text(req, 503, "out of memory\n");
    return;
  }
  sb_http_respond(req, 200, "text/plain", text, len);
  free(text);
}

/* GET /trailers : 200 "hello\n" with trailers x-checksum: abc123 and x-status: 0. */
static void route_trailers(sb_http_req_t *req, void *ud) {
  sb_http_res_header(req, "content-type", "text/plain");
  /* RFC 9110 6.6.2: announce the trailer fields so intermediaries and clients expect them. */
  sb_http_res_header(req, "trailer", "x-checksum, x-status");
  sb_http_res_write(req, "hello\n", 6);
  sb_http_res_trailer(req, "x-checksum", "abc123");
  sb_http_res_trailer(req, "x-status", "0");
  sb_http_res_end(req);
}

/* GET /length-mismatch : declares content-length 10, writes 5 bytes and ends. The server must
 * then close the connection (HTTP/1.1) or reset the stream (HTTP/2) rather than let the client
 * wait for 5 bytes that never come. */
static void route_length_mismatch(sb_http_req_t *req, void *ud) {
  sb_http_res_header(req, "content-type", "text/plain");
  sb_http_res_header(req, "content-length", "10");
  sb_http_res_write(req, "12345", 5);
  sb_http_res_end(req); /* returns SB_ELIMIT, which is the point */
}

/* ---- main ---- */

static const struct {
  const char *path;
  sb_http_handler_cb handler;
} routes[] = {
    {"/echo", route_echo},
    {"/delay", route_delay},
    {"/stream", route_stream},
    {"/trailers", route_trailers},
    {"/headers", route_headers},
    {"/sse", route_sse},
    {"/length-mismatch", route_length_mismatch},
};

static void usage(FILE *out) {
  fprintf(out, "usage: sb-testserver [serve] [flags]\n\nflags:\n%s", sb_serve_usage());
}

int main(int argc, char **argv) {
  int first = 1;
  if (argc > first && strcmp(argv[first], "serve") == 0) first++;
  if (argc > first && (strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  sb_serve_opts_t opts;
  char err[256];
  if (sb_serve_parse(argc - first, argv + first, &opts, err, sizeof err) != 0) {
    fprintf(stderr, "sb-testserver: %s (see --help)\n", err);
    return 2;
  }
  sb_log_set_level(opts.log_level);

  sb_server_t *srv = NULL;
  int rc = sb_server_new(&opts.server, &srv);
  if (rc) {
    fprintf(stderr, "sb-testserver: cannot create server: %s\n", sb_strerror(rc));
    return 2; /* sb_server_new only fails on invalid configuration or memory */
  }
  for (size_t i = 0; i < sizeof routes / sizeof routes[0] && !rc; i++)
    rc = sb_server_route(srv, routes[i].path, routes[i].handler, NULL);
  if (!rc) rc = sb_server_run(srv);
  sb_server_free(srv);
  if (rc) {
    fprintf(stderr, "sb-testserver: %s\n", sb_strerror(rc));
    return 1;
  }
  return 0;
}
