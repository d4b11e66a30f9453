/*
 * The server: worker threads, listeners, routes, TLS context and graceful shutdown.
 *
 * Accepting. Every worker has its own listening socket bound to the same address with
 * SO_REUSEPORT, so the kernel spreads connections across workers with no shared accept lock
 * and no hand-off between threads (measured against one acceptor handing fds to workers in
 * the note on issue 2). The listening socket is watched with a uv_poll_t and accepted with
 * accept4(2) directly, which lets a worker pause accepting (uv_poll_stop) when the server is
 * at max_connections or out of file descriptors: pending connections then wait in the
 * kernel's backlog instead of being accepted and dropped.
 *
 * Stopping. sb_server_stop() sets a flag and wakes every worker through its async handle (safe
 * from signal handlers). Each worker closes its listener (new connections are refused), asks
 * every connection to shut down gracefully, and starts a grace timer; when its last
 * connection is gone, or the grace period ends and the rest are force-closed, it closes its
 * own handles and its loop returns.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/net_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

#define SB_LISTEN_BACKLOG 4096

static void apply_defaults(sb_server_config_t *c) {
  if (!c->max_header_bytes) c->max_header_bytes = SB_DEFAULT_MAX_HEADER_BYTES;
  if (!c->max_body_bytes) c->max_body_bytes = SB_DEFAULT_MAX_BODY_BYTES;
  if (!c->header_timeout_ms) c->header_timeout_ms = SB_DEFAULT_HEADER_TIMEOUT_MS;
  if (!c->idle_timeout_ms) c->idle_timeout_ms = SB_DEFAULT_IDLE_TIMEOUT_MS;
  if (!c->max_connections) c->max_connections = SB_DEFAULT_MAX_CONNECTIONS;
  if (!c->h2_max_streams) c->h2_max_streams = SB_DEFAULT_H2_MAX_STREAMS;
  if (!c->h2_max_header_list) c->h2_max_header_list = SB_DEFAULT_H2_MAX_HEADER_LIST;
  if (!c->shutdown_grace_ms) c->shutdown_grace_ms = SB_DEFAULT_SHUTDOWN_GRACE_MS;
  if (!c->threads) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = n > 0 ? (unsigned)n : 1u;
  }
  if (!c->http_addr) c->http_addr = "127.0.0.1:8080";
}

/* Parses "host:port", "[v6]:port" or ":port" into ss. Returns 0 or SB_EINVAL. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len) {
  char host[256];
  const char *colon;
  memset(ss, 0, sizeof *ss);
  if (addr[0] == '[') {
    const char *end = strchr(addr, ']');
    if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof host) return SB_EINVAL;
    memcpy(host, addr + 1, (size_t)(end - addr - 1));
    host[end - addr - 1] = '\0';
    colon = end + 1;
  } else {
    colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host) return SB_EINVAL;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
  }
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || colon[1] == '\0') return SB_EINVAL;
  if (host[0] == '\0') strcpy(host, "0.0.0.0");
  struct sockaddr_in *in = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (uv_inet_pton(AF_INET, host, &in->sin_addr) == 0) {
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    *len = sizeof *in;
  } else if (uv_inet_pton(AF_INET6, host, &in6->sin6_addr) == 0) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *len = sizeof *in6;
  } else if (strcmp(host, "localhost") == 0) {
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *len = sizeof *in;
  } else {
    return SB_EINVAL;
  }
  return 0;
}

/* ---- TLS ---- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg) {
  (void)ssl;
  (void)arg;
  static const unsigned char ours[] = "\x02h2\x08http/1.1";
  unsigned char *sel = NULL;
  if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

static int tls_setup(sb_server_t *srv) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return SB_ENOMEM;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* RFC 9113 section 9.2: no renegotiation and no compression under HTTP/2. */
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx, srv->tls_cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, srv->tls_key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    char err[256];
    ERR_error_string_n(ERR_get_error(), err, sizeof err);
    sb_log(SB_LOG_ERROR, "tls_config_failed", "cert=%s key=%s error=\"%s\"", srv->tls_cert,
           srv->tls_key, err);
    SSL_CTX_free(ctx);
    return SB_ETLS;
  }
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  srv->tls = ctx;
  return 0;
}

/* ---- server object ---- */

int sb_server_new(const sb_server_config_t *cfg, sb_server_t **out) {
  sb_server_t *srv = calloc(1, sizeof *srv);
  if (!srv) return SB_ENOMEM;
  srv->cfg = *cfg;
  apply_defaults(&srv->cfg);
  srv->http_addr = strdup(srv->cfg.http_addr);
  srv->tls_cert = cfg->tls_cert ? strdup(cfg->tls_cert) : NULL;
  srv->tls_key = cfg->tls_key ? strdup(cfg->tls_key) : NULL;
  srv->cfg.http_addr = srv->http_addr;
  srv->cfg.tls_cert = srv->tls_cert;
  srv->cfg.tls_key = srv->tls_key;
  int rc = 0;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (!srv->http_addr || (cfg->tls_cert && !srv->tls_cert) || (cfg->tls_key && !srv->tls_key))
    rc = SB_ENOMEM;
  else if (parse_addr(srv->http_addr, &ss, &sl) != 0 || !!cfg->tls_cert != !!cfg->tls_key)
    rc = SB_EINVAL;
  else if (cfg->tls_cert)
    rc = tls_setup(srv);
  if (!rc) rc = sb_server_route(srv, "/healthz", sb__builtin_healthz, NULL);
  if (!rc) rc = sb_server_route(srv, "/metrics", sb__builtin_metrics, NULL);
  if (rc) {
    sb_server_free(srv);
    return rc;
  }
  *out = srv;
  return 0;
}

int sb_server_route(sb_server_t *srv, const char *path, sb_http_handler_cb handler, void *ud) {
  if (!path || path[0] != '/' || !handler) return SB_EINVAL;
  if (srv->started) return SB_ESTATE;
  size_t len = strlen(path);
  for (unsigned i = 0; i < srv->nroutes; i++) {
    if (strcmp(srv->routes[i].path, path) == 0) { /* a later registration replaces */
      srv->routes[i].handler = handler;
      srv->routes[i].ud = ud;
      return 0;
    }
  }
  if (srv->nroutes == SB_MAX_ROUTES) return SB_ELIMIT;
  char *copy = strdup(path);
  if (!copy) return SB_ENOMEM;
  srv->routes[srv->nroutes++] = (sb__route_t){copy, len, handler, ud};
  return 0;
}

int sb_server_port(const sb_server_t *srv) {
  return srv->port;
}

/* ---- workers ---- */

const char *sb__worker_date(sb__worker_t *w) {
  uint64_t sec = (uint64_t)time(NULL);
  if (sec != w->date_sec) {
    w->date_sec = sec;
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(w->date, sizeof w->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int n = snprintf(w->date_block, sizeof w->date_block, "date: %s\r\nserver: switchboard\r\n",
                     w->date);
    w->date_block_len = n > 0 ? (size_t)n : 0;
  }
  return w->date;
}

const char *sb__worker_date_block(sb__worker_t *w, size_t *len) {
  sb__worker_date(w);
  *len = w->date_block_len;
  return w->date_block;
}

void sb__worker_free_pool(sb__worker_t *w) {
  while (w->req_pool) {
    sb_http_req_t *r = w->req_pool;
    w->req_pool = r->next;
    free(r);
  }
  w->req_pool_len = 0;
}

static void on_idle(uv_idle_t *h) {
  (void)h;
}

/* Flushes the connections that are dirty now. Connections dirtied while flushing (a handler
 * refilling on on_writable, say) wait for the next phase, so one busy connection cannot
 * starve the loop; while any wait, an active idle handle keeps the poll phase from blocking. */
static void flush_dirty(sb__worker_t *w) {
  sb__conn_t *list = w->dirty;
  w->dirty = NULL;
  while (list) {
    sb__conn_t *c = list;
    list = c->dirty_next;
    c->dirty_next = NULL;
    c->is_dirty = 0;
    sb__conn_flush(c);
  }
  if (w->dirty)
    uv_idle_start(&w->idle, on_idle);
  else
    uv_idle_stop(&w->idle);
}

static void on_prepare(uv_prepare_t *h) {
  flush_dirty(h->data);
}
static void on_check(uv_check_t *h) {
  flush_dirty(h->data);
}

static void on_accept(uv_poll_t *h, int status, int events);

static void listener_resume(sb__worker_t *w) {
  if (w->accepting || w->stopping || w->listen_fd < 0) return;
  if (uv_poll_start(&w->listen_poll, UV_READABLE, on_accept) == 0) w->accepting = 1;
}

static void on_accept_retry(uv_timer_t *t) {
  sb__worker_t *w = t->data;
  if (atomic_load(&w->srv->conns_open) < w->srv->cfg.max_connections)
    listener_resume(w);
  else if (!w->stopping)
    uv_timer_start(&w->accept_timer, on_accept_retry, SB_ACCEPT_RETRY_MS, 0);
}

static void pause_with_retry(sb__worker_t *w) {
  if (w->accepting) {
    uv_poll_stop(&w->listen_poll);
    w->accepting = 0;
  }
  if (!w->stopping) uv_timer_start(&w->accept_timer, on_accept_retry, SB_ACCEPT_RETRY_MS, 0);
}

static void on_accept(uv_poll_t *h, int status, int events) {
  (void)events;
  sb__worker_t *w = h->data;
  if (status < 0 || w->stopping) return;
  for (unsigned i = 0; i < SB_ACCEPT_BATCH; i++) {
    /* Reserve the slot before accepting: workers accept concurrently, and a check followed
     * by an increment would let two of them take the last slot. */
    if (atomic_fetch_add(&w->srv->conns_open, 1) >= w->srv->cfg.max_connections) {
      atomic_fetch_sub(&w->srv->conns_open, 1);
      pause_with_retry(w);
      return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(w->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      atomic_fetch_sub(&w->srv->conns_open, 1);
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        sb_log(SB_LOG_WARN, "accept_paused", "worker=%u error=%s", w->index, strerror(errno));
        pause_with_retry(w);
      }
      return; /* EAGAIN: drained */
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sb__conn_accept(w, fd, (struct sockaddr *)&ss);
  }
}

static void on_handle_closed_noop(uv_handle_t *h) {
  (void)h;
}

/* Closes the worker's own handles so its loop can return. */
static void worker_finish(sb__worker_t *w) {
  if (uv_is_closing((uv_handle_t *)&w->stop_async)) return;
  uv_close((uv_handle_t *)&w->stop_async, on_handle_closed_noop);
  uv_close((uv_handle_t *)&w->prepare, on_handle_closed_noop);
  uv_close((uv_handle_t *)&w->check, on_handle_closed_noop);
  uv_close((uv_handle_t *)&w->idle, on_handle_closed_noop);
  uv_close((uv_handle_t *)&w->grace_timer, on_handle_closed_noop);
  uv_close((uv_handle_t *)&w->accept_timer, on_handle_closed_noop);
  if (w->listen_fd >= 0) {
    uv_close((uv_handle_t *)&w->listen_poll, on_handle_closed_noop);
    close(w->listen_fd);
    w->listen_fd = -1;
  }
}

void sb__worker_conn_closed(sb__worker_t *w) {
  if (w->stopping) {
    if (w->nconns == 0) worker_finish(w);
    return;
  }
  if (!w->accepting && w->listen_fd >= 0 &&
      atomic_load(&w->srv->conns_open) < w->srv->cfg.max_connections)
    listener_resume(w);
}

static void on_grace_over(uv_timer_t *t) {
  sb__worker_t *w = t->data;
  if (w->nconns)
    sb_log(SB_LOG_WARN, "shutdown_grace_over", "worker=%u connections=%u", w->index, w->nconns);
  for (sb__conn_t *c = w->conns, *next; c; c = next) {
    next = c->next;
    sb__conn_close(c, "grace-over");
  }
  if (w->nconns == 0) worker_finish(w);
}

static void on_stop(uv_async_t *h) {
  sb__worker_t *w = h->data;
  if (w->stopping) return;
  w->stopping = 1;
  uv_timer_stop(&w->accept_timer);
  if (w->listen_fd >= 0) {
    uv_poll_stop(&w->listen_poll);
    w->accepting = 0;
    uv_close((uv_handle_t *)&w->listen_poll, on_handle_closed_noop);
    close(w->listen_fd);
    w->listen_fd = -1;
  }
  for (sb__conn_t *c = w->conns, *next; c; c = next) {
    next = c->next;
    sb__conn_shutdown(c);
  }
  if (w->nconns == 0) {
    worker_finish(w);
    return;
  }
  uv_timer_start(&w->grace_timer, on_grace_over, w->srv->cfg.shutdown_grace_ms, 0);
}

static int worker_init_loop(sb__worker_t *w, sb_server_t *srv) {
  w->srv = srv;
  w->listen_fd = -1;
  w->rbuf = malloc(SB_READ_BUF);
  if (!w->rbuf) return SB_ENOMEM;
  int rc = uv_loop_init(&w->loop);
  if (rc) {
    free(w->rbuf);
    w->rbuf = NULL;
    return rc;
  }
  uv_async_init(&w->loop, &w->stop_async, on_stop);
  uv_prepare_init(&w->loop, &w->prepare);
  uv_check_init(&w->loop, &w->check);
  uv_idle_init(&w->loop, &w->idle);
  uv_timer_init(&w->loop, &w->grace_timer);
  uv_timer_init(&w->loop, &w->accept_timer);
  w->stop_async.data = w->prepare.data = w->check.data = w;
  w->grace_timer.data = w->accept_timer.data = w;
  uv_prepare_start(&w->prepare, on_prepare);
  uv_check_start(&w->check, on_check);
  return 0;
}

int sb__worker_init_detached(sb__worker_t *w, sb_server_t *srv) {
  memset(w, 0, sizeof *w);
  return worker_init_loop(w, srv);
}

void sb__worker_free_detached(sb__worker_t *w) {
  for (sb__conn_t *c = w->conns, *next; c; c = next) {
    next = c->next;
    sb__conn_close(c, "free");
  }
  worker_finish(w);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  uv_loop_close(&w->loop);
  sb__worker_free_pool(w);
  free(w->rbuf);
  w->rbuf = NULL;
}

static void worker_main(void *arg) {
  sb__worker_t *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
  /* Run once more for close callbacks queued by the last iteration. */
  uv_run(&w->loop, UV_RUN_NOWAIT);
  uv_loop_close(&w->loop);
  sb__worker_free_pool(w);
}

static int open_listener(sb_server_t *srv, const struct sockaddr_storage *ss, socklen_t sl) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      bind(fd, (const struct sockaddr *)ss, sl) != 0 || listen(fd, SB_LISTEN_BACKLOG) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  (void)srv;
  return fd;
}

/* Raises the soft file-descriptor limit to the hard limit: max_connections needs one each. */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int sb_server_start(sb_server_t *srv) {
  if (srv->started) return SB_ESTATE;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (parse_addr(srv->http_addr, &ss, &sl)) return SB_EINVAL;
  raise_nofile();
  /* A library should not own process-wide signals, but SIGPIPE from a peer that closed while
   * OpenSSL writes would kill the process; send(2) uses MSG_NOSIGNAL, OpenSSL cannot. */
  signal(SIGPIPE, SIG_IGN);
  srv->nworkers = srv->cfg.threads;
  srv->workers = calloc(srv->nworkers, sizeof *srv->workers);
  if (!srv->workers) return SB_ENOMEM;
  int rc = 0;
  unsigned made = 0;
  for (; made < srv->nworkers && !rc; made++) {
    sb__worker_t *w = &srv->workers[made];
    w->index = made;
    rc = worker_init_loop(w, srv);
    if (rc) break;
    int fd = open_listener(srv, &ss, sl);
    if (fd < 0) {
      rc = fd;
      made++;
      break;
    }
    w->listen_fd = fd;
    if (made == 0) {
      /* Port 0: every other worker must bind the port the first one got. */
      struct sockaddr_storage got;
      socklen_t gl = sizeof got;
      getsockname(fd, (struct sockaddr *)&got, &gl);
      uint16_t port = got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                : ((struct sockaddr_in *)&got)->sin_port;
      if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = port;
      else
        ((struct sockaddr_in *)&ss)->sin_port = port;
      srv->port = ntohs(port);
    }
    uv_poll_init_socket(&w->loop, &w->listen_poll, fd);
    w->listen_poll.data = w;
    listener_resume(w);
  }
  if (rc) {
    for (unsigned i = 0; i < made && i < srv->nworkers; i++) {
      sb__worker_t *w = &srv->workers[i];
      if (!w->rbuf) continue;
      w->stopping = 1;
      worker_finish(w);
      uv_run(&w->loop, UV_RUN_DEFAULT);
      uv_loop_close(&w->loop);
      free(w->rbuf);
      w->rbuf = NULL;
    }
    free(srv->workers);
    srv->workers = NULL;
    srv->nworkers = 0;
    srv->port = 0;
    return rc;
  }
  srv->started = 1;
  srv->start_ms = uv_hrtime() / 1000000u;
  for (unsigned i = 0; i < srv->nworkers; i++) {
    rc = uv_thread_create(&srv->workers[i].thread, worker_main, &srv->workers[i]);
    if (rc) {
      sb_log(SB_LOG_ERROR, "thread_create_failed", "error=%s", uv_strerror(rc));
      abort(); /* cannot unwind running workers sanely; startup failure only */
    }
  }
  char host[300];
  snprintf(host, sizeof host, "%s", srv->http_addr);
  char *colon = strrchr(host, ':');
  if (colon) *colon = '\0';
  sb_log(SB_LOG_INFO, "listening", "addr=%s:%d port=%d threads=%u tls=%d", host, srv->port,
         srv->port, srv->nworkers, srv->tls != NULL);
  return 0;
}

void sb_server_stop(sb_server_t *srv) {
  if (!srv->started) return;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&srv->stopping, &expected, 1)) return;
  if (srv->on_stop) srv->on_stop(srv->on_stop_ud);
  for (unsigned i = 0; i < srv->nworkers; i++)
    uv_async_send(&srv->workers[i].stop_async);
}

int sb_server_wait(sb_server_t *srv) {
  if (!srv->started) return 0;
  for (unsigned i = 0; i < srv->nworkers; i++)
    uv_thread_join(&srv->workers[i].thread);
  srv->started = 0;
  return 0;
}

int sb_server_run(sb_server_t *srv) {
  /* Signals are taken synchronously on this thread: workers inherit the blocked mask, so
   * SIGINT/SIGTERM never interrupt a worker, and no async-signal-safety puzzles arise. */
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  int rc = sb_server_start(srv);
  if (rc) {
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
  }
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  sb_log(SB_LOG_INFO, "stopping", "signal=%s grace_ms=%u", sig == SIGINT ? "SIGINT" : "SIGTERM",
         srv->cfg.shutdown_grace_ms);
  sb_server_stop(srv);
  sb_server_wait(srv);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  sb_log(SB_LOG_INFO, "stopped", NULL);
  return 0;
}

void sb_server_on_stop(sb_server_t *srv, void (*fn)(void *ud), void *ud) {
  if (srv->started) return;
  srv->on_stop = fn;
  srv->on_stop_ud = ud;
}

void sb_server_free(sb_server_t *srv) {
  if (!srv) return;
  if (srv->started) {
    sb_server_stop(srv);
    sb_server_wait(srv);
  }
  for (unsigned i = 0; i < srv->nworkers; i++)
    free(srv->workers[i].rbuf);
  free(srv->workers);
  for (unsigned i = 0; i < srv->nroutes; i++)
    free(srv->routes[i].path);
  if (srv->tls) SSL_CTX_free(srv->tls);
  free(srv->http_addr);
  free(srv->tls_cert);
  free(srv->tls_key);
  free(srv);
}
