/*
 * Private structures of the net layer, shared by its modules: server.c (workers, listeners,
 * shutdown), conn.c (socket and TLS I/O, timers, flush scheduling), h1.c (HTTP/1.1 on
 * h1_parse.c), h2.c (HTTP/2 on nghttp2), exchange.c (the public sb_http_* API, which
 * dispatches to h1 or h2), builtin.c (/healthz, /metrics).
 *
 * Ownership and threads: a worker owns its loop, its listener and every connection accepted
 * on it; a connection owns its protocol state and the exchanges (sb_http_req) on it until the
 * transport releases them. Nothing here is touched from another thread except the server's
 * atomic connection count, the metrics counters (single writer, any reader) and the stop
 * async handle.
 */
#ifndef SB_NET_INT_H
#define SB_NET_INT_H

#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/metrics.h"
#include "switchboard/http.h"
#include "switchboard/server.h"

#define SB_READ_BUF (64u * 1024u)        /* per-worker read buffer; bytes per read call */
#define SB_CONN_OUT_HIGH (128u * 1024u)  /* stop producing/reading above this much output */
#define SB_CONN_OUT_LOW (32u * 1024u)    /* resume below this */
#define SB_STREAM_OUT_HIGH (64u * 1024u) /* per-exchange response buffer (HTTP/2) */
#define SB_STREAM_OUT_LOW (16u * 1024u)
#define SB_ACCEPT_BATCH 64u     /* accepts per listener wake-up */
#define SB_ACCEPT_RETRY_MS 100u /* re-check a paused listener this often */
#define SB_MAX_ROUTES 64u
#define SB_STATUS_MAX 600 /* metrics index statuses 0..599 */
#define SB_REQ_POOL 64u   /* recycled exchanges kept per worker */

typedef struct sb__worker sb__worker_t;
typedef struct sb__conn sb__conn_t;
typedef struct sb__h1 sb__h1_t;
typedef struct sb__h2 sb__h2_t;

/* ---- metrics (one per worker; single writer: the worker) ---- */
typedef struct sb__net_metrics {
  sb_counter_t conns_accepted;             /* connections accepted */
  sb_counter_t conns_closed;               /* connections closed */
  sb_counter_t requests[2][SB_STATUS_MAX]; /* [proto-1][status] completed exchanges */
  sb_counter_t bytes_in;                   /* bytes read from sockets (pre-TLS) */
  sb_counter_t bytes_out;                  /* bytes written to sockets */
  sb_counter_t protocol_errors;            /* connections closed for bad input */
  sb_counter_t timeouts;                   /* connections closed by a timeout */
  sb_hist_t latency;                       /* handler call -> response complete */
} sb__net_metrics_t;

/* ---- routes (immutable after start; read by every worker) ---- */
typedef struct sb__route {
  char *path;                 /* owned; exact, or prefix when it ends in '/' */
  size_t len;                 /* strlen(path) */
  sb_http_handler_cb handler; /* borrowed */
  void *ud;                   /* borrowed */
} sb__route_t;

struct sb_server {
  sb_server_config_t cfg;   /* copy; strings below are owned copies */
  char *http_addr;          /* owned */
  char *tls_cert, *tls_key; /* owned, may be NULL */
  SSL_CTX *tls;             /* NULL when cleartext only; shared by workers (OpenSSL
                               makes SSL_new on a shared context thread-safe) */
  sb__route_t routes[SB_MAX_ROUTES];
  unsigned nroutes;
  unsigned nworkers;
  sb__worker_t *workers; /* array of nworkers; owned */
  int port;              /* bound port, 0 before start */
  int started;
  _Atomic int stopping;      /* set once by sb_server_stop() */
  void (*on_stop)(void *ud); /* sb_server_on_stop(): runs when stopping is set */
  void *on_stop_ud;
  _Atomic uint32_t conns_open; /* across workers; compared to cfg.max_connections */
  uint64_t start_ms;           /* uv_hrtime()/1e6 at start, for uptime */
};

struct sb__worker {
  sb_server_t *srv; /* borrowed */
  unsigned index;   /* 0..nworkers-1 */
  uv_loop_t loop;   /* this worker's loop; runs on thread */
  uv_thread_t thread;
  int listen_fd;           /* owned; -1 once closed */
  uv_poll_t listen_poll;   /* readable -> accept */
  int accepting;           /* listen_poll is started */
  uv_timer_t accept_timer; /* retries a paused listener */
  uv_async_t stop_async;   /* sb_server_stop() wakes the loop through this */
  uv_prepare_t prepare;    /* flushes dirty connections before the loop blocks */
  uv_check_t check;        /* flushes dirty connections after I/O callbacks */
  uv_idle_t idle;          /* active while connections stay dirty: poll must not block */
  uv_timer_t grace_timer;  /* force-closes connections when the grace period ends */
  int stopping;            /* stop observed on this loop */
  sb__conn_t *conns;       /* all open connections (doubly linked) */
  unsigned nconns;
  sb__conn_t *dirty;       /* connections needing flush/input processing (singly linked) */
  uint8_t *rbuf;           /* SB_READ_BUF bytes, owned; borrowed by one read at a time */
  uint64_t date_sec;       /* second the cached date header was made for */
  char date[40];           /* "Tue, 24 Nov 2026 10:00:00 GMT" */
  char date_block[96];     /* "date: <date>\r\nserver: switchboard\r\n" for HTTP/1 */
  size_t date_block_len;   /* bytes of date_block */
  sb_http_req_t *req_pool; /* recycled exchanges, linked through next */
  unsigned req_pool_len;   /* entries in req_pool; <= SB_REQ_POOL */
  sb__net_metrics_t metrics;
};

/* Connection protocol, decided by the first bytes (or ALPN). */
enum sb__conn_proto { SB__PROTO_SNIFF = 0, SB__PROTO_H1 = 1, SB__PROTO_H2 = 2 };

struct sb__conn {
  sb__worker_t *w;           /* owner */
  sb__conn_t *next, *prev;   /* in w->conns */
  sb__conn_t *dirty_next;    /* in w->dirty when dirty */
  int fd;                    /* owned; -1 for a detached (fuzz/test) connection */
  uv_poll_t poll;            /* fd readiness; conn is freed after poll and timer close */
  uv_timer_t timer;          /* the one timeout the connection's state calls for */
  int poll_events;           /* UV_READABLE/UV_WRITABLE currently requested */
  SSL *ssl;                  /* owned; NULL for cleartext */
  sb_buf_t out;              /* bytes to write, in order; owned */
  sb_buf_t in;               /* received bytes not yet processed; owned; bounded by
                                SB_READ_BUF plus one partial message */
  sb__h1_t *h1;              /* owned; set when proto == H1 */
  sb__h2_t *h2;              /* owned; set when proto == H2 */
  sb_http_req_t *reqs;       /* exchanges the transport still holds (doubly linked) */
  uint64_t last_io_ms;       /* loop time of the last read or write progress */
  uint64_t deadline_ms;      /* loop time the current timeout expires; 0 = none */
  uint64_t timer_due_ms;     /* when the armed timer fires; 0 = not armed. It may fire before
                                deadline_ms and then re-arms (lazy timeouts, see conn.c). */
  uint64_t req_start_ms;     /* loop time the current h1 request's first byte arrived */
  uint8_t proto;             /* enum sb__conn_proto */
  uint8_t tls_handshaking;   /* SSL_do_handshake has not finished */
  uint8_t closing;           /* sb__conn_close() ran; handles are closing */
  uint8_t close_after_flush; /* close once out is empty */
  uint8_t read_eof;          /* the peer half-closed */
  uint8_t is_dirty;          /* on w->dirty */
  uint8_t need_input;        /* conn->in should be processed at the next flush */
  uint8_t handles_open;      /* poll and timer not yet closed (count) */
  uint8_t detached;          /* no socket: output is discarded (fuzzing) */
  uint8_t lingering;         /* final answer sent; reading and dropping until EOF/timer */
  uint8_t tls_checked;       /* first byte peeked for a TLS ClientHello */
  uint8_t h2_want_write;     /* the HTTP/2 session had more to send after the last pump */
  uint8_t in_need_more;      /* conn->in holds an incomplete unit: keep reading */
  char peer[48];             /* "ip:port" for logs */
};

/* An exchange: one request and its response, on an HTTP/1.1 connection or an HTTP/2 stream.
 * Owned jointly by the transport (until it calls sb__req_transport_done) and the handler
 * (until sb_http_res_end); freed when both have let go. Lives on the conn's loop. */
struct sb_http_req {
  sb__conn_t *conn;           /* NULL once the transport let go */
  sb_http_req_t *next, *prev; /* in conn->reqs while the transport holds it */
  sb__worker_t *w;            /* owner loop, valid for the whole life */
  int32_t stream_id;          /* HTTP/2 stream, 0 for HTTP/1 */
  uint8_t proto;              /* SB_HTTP_1 or SB_HTTP_2 */
  uint8_t http_minor;         /* HTTP/1.x minor version */
  /* request */
  const char *method, *path, *query, *authority; /* arena strings, never NULL after dispatch */
  sb_http_header_t *hdrs;                        /* arena array of nhdrs (cap hdr_cap) */
  uint32_t nhdrs, hdr_cap;
  uint32_t header_bytes;  /* counted against the header limit */
  int64_t content_length; /* declared, or -1 */
  uint64_t body_bytes;    /* received so far */
  uint64_t body_limit;    /* request body bytes allowed; 0 = the server's max_body_bytes */
  /* response */
  int status;              /* default 200 */
  sb_http_header_t *rhdrs; /* arena array of response headers */
  uint32_t nrhdrs, rhdr_cap;
  sb_http_header_t *trailers; /* arena array of trailers */
  uint32_t ntrailers, trailer_cap;
  uint32_t res_header_bytes;    /* response header + trailer bytes, against the header limit */
  int64_t res_content_length;   /* declared by the handler, or -1 */
  uint64_t res_body_bytes;      /* written by the handler so far */
  sb_buf_t body;                /* HTTP/2: body bytes not yet framed; owned */
  sb_http_callbacks_t cb;       /* handler callbacks */
  uint64_t start_us;            /* uv_hrtime()/1000 at dispatch, for the latency metric */
  int abort_err;                /* why it was aborted, when aborted */
  unsigned head : 1;            /* HEAD request: no response body on the wire */
  unsigned dispatched : 1;      /* the handler was called */
  unsigned body_done : 1;       /* request body complete */
  unsigned aborted : 1;         /* client gone or reset; writes fail */
  unsigned handler_done : 1;    /* sb_http_res_end() was called */
  unsigned headers_sent : 1;    /* status line / HEADERS are out */
  unsigned chunked : 1;         /* HTTP/1.1 chunked response framing */
  unsigned want_writable : 1;   /* a write returned 1; call on_writable when drained */
  unsigned h2_deferred : 1;     /* HTTP/2 data provider returned DEFERRED */
  unsigned too_large : 1;       /* request headers over the limit (answer 431) */
  unsigned expect_continue : 1; /* client sent Expect: 100-continue and waits */
  unsigned keepalive : 1;       /* HTTP/1 connection may carry another request */
  unsigned discard_body : 1;    /* stop delivering request body (limit answer sent) */
  unsigned body_paused : 1;     /* the handler paused the request body */
  uint64_t h2_unconsumed;       /* HTTP/2 body bytes delivered but not yet given back as window */
  /* Last, so recycling an exchange zeroes the fields above and not the arena's inline
   * block (see sb__req_new). */
  sb_arena_t arena; /* request strings, headers, response headers; owned */
};

/* ---- exchange.c ---- */
/* Allocates an exchange owned by the transport of conn. Returns NULL when out of memory. */
sb_http_req_t *sb__req_new(sb__conn_t *conn, uint8_t proto);
/* Appends a request header (copied into the arena; name lower-cased). Counts bytes against
 * the header limit; over it sets too_large and stores nothing. Returns 0 or SB_ENOMEM. */
int sb__req_add_header(sb_http_req_t *req, const char *name, size_t nlen, const char *value,
                       size_t vlen);
/* Splits target into path and query (copied). Returns 0 or SB_ENOMEM. */
int sb__req_set_target(sb_http_req_t *req, const char *target, size_t len);
/* Routes and calls the handler (or answers 404 / the built-ins). */
void sb__req_dispatch(sb_http_req_t *req);
/* Transport-side events; each calls the handler's callback while it holds the exchange. */
void sb__req_deliver_data(sb_http_req_t *req, const uint8_t *data, size_t len);
void sb__req_deliver_end(sb_http_req_t *req);
void sb__req_abort(sb_http_req_t *req, int err);
void sb__req_deliver_writable(sb_http_req_t *req);
/* The transport lets go (response complete or connection gone): unlinks from the conn,
 * records metrics when complete, frees when the handler let go too. */
void sb__req_transport_done(sb_http_req_t *req);
/* Validation shared by both transports. */
int sb__header_name_ok(const char *s, size_t n);
int sb__header_value_ok(const char *s, size_t n);

/* ---- conn.c ---- */
/* Takes ownership of fd (an accepted, non-blocking socket) and of the slot the caller
 * reserved for it in srv->conns_open, and starts serving it. */
int sb__conn_accept(sb__worker_t *w, int fd, const struct sockaddr *peer);
/* Creates a connection with no socket: output is discarded. Used by fuzz targets and tests
 * to drive the protocol code with bytes; free with sb__conn_close() and a loop run. */
sb__conn_t *sb__conn_new_detached(sb__worker_t *w);
/* Feeds received bytes to the connection's protocol (sniffing it first). Returns 0, or a
 * negative code after which the connection has been closed. */
int sb__conn_feed(sb__conn_t *conn, const uint8_t *data, size_t len);
/* Queues the connection for a flush (and input processing when need_input) in the worker's
 * prepare/check phase. */
void sb__conn_mark_dirty(sb__conn_t *conn);
/* Writes pending output now, as far as the socket takes it. */
void sb__conn_flush(sb__conn_t *conn);
/* Closes the connection: aborts the exchanges it holds and frees everything once the libuv
 * handles are closed. Idempotent; safe from inside protocol callbacks. */
void sb__conn_close(sb__conn_t *conn, const char *why);
/* Re-evaluates the connection's timeout after its state changed. */
void sb__conn_update_timer(sb__conn_t *conn);
/* Starts or stops reading according to the connection's backpressure state. */
void sb__conn_update_poll(sb__conn_t *conn);
/* Graceful stop of one connection: close when idle, GOAWAY for HTTP/2, else close after the
 * exchange in flight. */
void sb__conn_shutdown(sb__conn_t *conn);
/* Returns 1 when out is above the high-water mark. */
static inline int sb__conn_out_full(const sb__conn_t *c) {
  return sb_buf_pending(&c->out) >= SB_CONN_OUT_HIGH;
}

/* ---- h1.c ---- */
/* What an HTTP/1 connection is waiting for, which decides its timeout. */
enum sb__h1_wait {
  SB__H1_WAIT_IDLE = 0,    /* between requests (keep-alive) */
  SB__H1_WAIT_HEADERS = 1, /* inside a request's line or headers */
  SB__H1_WAIT_BODY = 2,    /* inside a request body */
  SB__H1_WAIT_HANDLER = 3, /* request complete, response in progress */
};
int sb__h1_wait_state(const sb__conn_t *conn);
int sb__h1_init(sb__conn_t *conn);
void sb__h1_free(sb__conn_t *conn);
/* Parses as much of data as the connection can take now. Returns the number of bytes
 * consumed (the rest must be kept and fed again later), or a negative code when the
 * connection must close (a response may already be queued). */
int64_t sb__h1_feed(sb__conn_t *conn, const uint8_t *data, size_t len);
/* Returns 1 when no handler on the connection is still producing a response (safe to close
 * once the output is flushed). */
int sb__h1_idle(const sb__conn_t *conn);
int sb__h1_res_start(sb_http_req_t *req);
int sb__h1_res_write(sb_http_req_t *req, const void *data, size_t len);
int sb__h1_res_end(sb_http_req_t *req);
/* Resumes parsing after the handler unpaused the request body. */
void sb__h1_body_resume(sb_http_req_t *req);

/* ---- h2.c ---- */
/* Starts an HTTP/2 session on conn. For an h2c upgrade, settings/settings_len is the decoded
 * HTTP2-Settings payload and upgraded is the HTTP/1.1 request that becomes stream 1;
 * otherwise both are NULL/0. Returns 0 or a negative code. */
int sb__h2_init(sb__conn_t *conn, const uint8_t *settings, size_t settings_len,
                sb_http_req_t *upgraded);
void sb__h2_free(sb__conn_t *conn);
/* Feeds bytes to the session. Returns bytes consumed or a negative code (close). */
int64_t sb__h2_feed(sb__conn_t *conn, const uint8_t *data, size_t len);
/* Moves frames the session wants to send into conn->out (up to the high-water mark).
 * Returns 0, or a negative code (close). Sets close_after_flush when the session is over. */
int sb__h2_pump(sb__conn_t *conn);
/* Sends GOAWAY for a graceful stop. */
void sb__h2_shutdown(sb__conn_t *conn);
int sb__h2_res_start(sb_http_req_t *req);
int sb__h2_res_write(sb_http_req_t *req, const void *data, size_t len);
int sb__h2_res_end(sb_http_req_t *req);
/* The stream was aborted by the handler side (bad content-length): reset it. */
void sb__h2_reset(sb_http_req_t *req, uint32_t error_code);
/* Returns the window held back while the handler paused the request body. */
void sb__h2_body_resume(sb_http_req_t *req);

/* ---- server.c ---- */
/* Called after a connection of w was freed: resumes a paused listener, finishes a stop. */
void sb__worker_conn_closed(sb__worker_t *w);
/* The cached IMF-fixdate for the current second. */
const char *sb__worker_date(sb__worker_t *w);
/* The cached "date: ...\r\nserver: switchboard\r\n" block; sets *len. */
const char *sb__worker_date_block(sb__worker_t *w, size_t *len);
/* Frees the worker's recycled exchanges (at teardown). */
void sb__worker_free_pool(sb__worker_t *w);
/* Initialises w as a worker without a listener or thread, on its own loop (fuzz/tests). */
int sb__worker_init_detached(sb__worker_t *w, sb_server_t *srv);
void sb__worker_free_detached(sb__worker_t *w);

/* ---- builtin.c ---- */
void sb__builtin_healthz(sb_http_req_t *req, void *ud);
void sb__builtin_metrics(sb_http_req_t *req, void *ud);
void sb__builtin_not_found(sb_http_req_t *req, void *ud);
/* Answers status with a short text body and Connection: close semantics where needed;
 * used for protocol-level errors (400, 413, 431, 505) before or instead of a handler. */
void sb__respond_error(sb_http_req_t *req, int status);

#endif
