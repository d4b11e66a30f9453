/*
 * switchboard server: worker loops, listeners, routes, limits and graceful shutdown.
 *
 * A server owns N worker threads, each running its own libuv loop with its own listening
 * socket bound to the same address with SO_REUSEPORT; the kernel spreads new connections
 * across them. A connection lives on one worker for its whole life.
 *
 * Lifecycle: sb_server_new() -> sb_server_route()... -> sb_server_start() -> (serve) ->
 * sb_server_stop() (from any thread or a signal) -> sb_server_wait() -> sb_server_free().
 * sb_server_run() does start + wait with SIGINT/SIGTERM wired to a graceful stop.
 */
#ifndef SWITCHBOARD_SERVER_H
#define SWITCHBOARD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults for the limits below; every one can be changed in sb_server_config_t. */
#define SB_DEFAULT_MAX_HEADER_BYTES (16u * 1024u)      /* request line + headers -> 431 */
#define SB_DEFAULT_MAX_BODY_BYTES (8u * 1024u * 1024u) /* request body -> 413 */
#define SB_DEFAULT_HEADER_TIMEOUT_MS 10000u            /* to receive a request's headers */
#define SB_DEFAULT_IDLE_TIMEOUT_MS 60000u              /* keep-alive idle / stalled I/O */
#define SB_DEFAULT_MAX_CONNECTIONS 16384u              /* per server; accept pauses above */
#define SB_DEFAULT_H2_MAX_STREAMS 128u                 /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define SB_DEFAULT_H2_MAX_HEADER_LIST (16u * 1024u)    /* SETTINGS_MAX_HEADER_LIST_SIZE */
#define SB_DEFAULT_SHUTDOWN_GRACE_MS 10000u            /* in-flight requests may finish */

typedef struct sb_server sb_server_t;

/* Server configuration. Zero-initialise, set what you need, and pass to sb_server_new();
 * zero fields take the defaults above. Strings are copied by sb_server_new(). */
typedef struct sb_server_config {
  const char *http_addr;       /* "127.0.0.1:8080", "[::1]:0"; port 0 picks a free port */
  unsigned threads;            /* worker loops; 0 = number of online CPUs */
  const char *tls_cert;        /* PEM certificate chain file; NULL = cleartext */
  const char *tls_key;         /* PEM private key file; required with tls_cert */
  uint32_t max_header_bytes;   /* request line + header bytes per request */
  uint64_t max_body_bytes;     /* request body bytes per request */
  uint32_t header_timeout_ms;  /* from first byte of a request to the end of its headers */
  uint32_t idle_timeout_ms;    /* keep-alive idle time, and longest wait for I/O progress */
  uint32_t max_connections;    /* open connections across all workers */
  uint32_t h2_max_streams;     /* concurrent HTTP/2 streams per connection */
  uint32_t h2_max_header_list; /* HTTP/2 decoded header list bytes per request */
  uint32_t shutdown_grace_ms;  /* how long in-flight requests may run after a stop */
} sb_server_config_t;

/* Creates a server from cfg (copied). Does not bind yet. Returns 0 and sets *out, or
 * SB_EINVAL (bad address, missing key, ...), SB_ETLS (certificate or key unusable) or
 * SB_ENOMEM. The caller frees *out with sb_server_free(). */
int sb_server_new(const sb_server_config_t *cfg, sb_server_t **out);

/* Routes requests whose path equals path (exact) or, when path ends in '/', starts with it
 * (prefix). The longest match wins; method is matched by the handler, not here. handler and
 * ud are borrowed for the server's life. Built-in routes: GET /healthz, GET /metrics.
 * Only before sb_server_start(). Returns 0, SB_EINVAL, SB_ESTATE or SB_ENOMEM. */
int sb_server_route(sb_server_t *srv, const char *path, sb_http_handler_cb handler, void *ud);

/* Binds the listeners and starts the worker threads. Returns 0 or -errno (bind failure),
 * SB_ESTATE (already started) or SB_ENOMEM. */
int sb_server_start(sb_server_t *srv);

/* The port the listeners are bound to (useful with port 0), or 0 before start. */
int sb_server_port(const sb_server_t *srv);

/* Starts a graceful stop: listeners close (new connections are refused), HTTP/2 sessions get
 * GOAWAY, idle HTTP/1.1 connections close, in-flight requests may finish within the grace
 * period, then everything is closed. Safe from any thread and from a signal handler. */
void sb_server_stop(sb_server_t *srv);

/* Registers fn to run once when the server starts to stop: on the thread that calls
 * sb_server_stop(), before the workers are told (sb_server_run calls it from its own thread,
 * not from a signal handler). For what holds requests open, such as long polls, so they can
 * answer within the grace period. One hook; a second call replaces the first. Only before
 * sb_server_start(). */
void sb_server_on_stop(sb_server_t *srv, void (*fn)(void *ud), void *ud);

/* Blocks until every worker has stopped. Returns 0. */
int sb_server_wait(sb_server_t *srv);

/* Starts the server, stops it gracefully on SIGINT or SIGTERM, and waits. Returns 0 after a
 * clean stop, or the error of sb_server_start(). */
int sb_server_run(sb_server_t *srv);

/* Frees a stopped (or never started) server. */
void sb_server_free(sb_server_t *srv);

#ifdef __cplusplus
}
#endif
#endif
