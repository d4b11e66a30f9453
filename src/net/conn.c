/*
 * Connections: socket and TLS I/O, protocol sniffing, output flushing, timeouts and close.
 *
 * I/O model. A connection is a non-blocking socket watched by a uv_poll_t, so reads go
 * straight into the worker's shared read buffer (no per-connection read buffer while idle)
 * and writes go straight from the connection's output buffer with send(2) or SSL_write().
 * Protocol code never writes to the socket: it appends to conn->out and marks the connection
 * dirty; the worker flushes dirty connections in its prepare and check phases, so everything
 * a burst of input produced leaves in one write.
 *
 * Backpressure. Reading stops while conn->out holds more than SB_CONN_OUT_HIGH bytes or while
 * conn->in holds input the protocol could not take yet (a pipelined HTTP/1.1 request waiting
 * for the previous response). Nothing is read that cannot be processed, so memory per
 * connection stays bounded whatever the peer does.
 *
 * Timeouts. One uv_timer_t per connection, re-armed whenever the state changes: header
 * timeout while a request's headers arrive (measured from its first byte, so trickling bytes
 * does not extend it), idle timeout on keep-alive and while reads or writes stall.
 *
 * Close. sb__conn_close() may run anywhere, including inside parser and nghttp2 callbacks:
 * it only marks the connection, aborts its exchanges and closes the libuv handles. Protocol
 * state and memory are released in the last handle's close callback, after every callback
 * that could still reference them has returned.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

#define SB_LINGER_MS 2000u     /* read and discard after a final response, then close */
#define SB_READS_PER_WAKEUP 8u /* fairness: bytes per wakeup <= 8 * SB_READ_BUF */
#define SB_PUMPS_PER_FLUSH 8u  /* HTTP/2 pump/write rounds per flush */

static const char h2_preface_line[] = "PRI * HTTP/2.0\r\n";

static void on_poll(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *t);
static void set_deadline(sb__conn_t *c, uint64_t deadline);
static void conn_read(sb__conn_t *c);

static uint64_t now_ms(sb__conn_t *c) {
  return uv_now(&c->w->loop);
}

static void set_poll(sb__conn_t *c, int events) {
  if (c->detached || c->closing || events == c->poll_events) return;
  if (events == 0)
    uv_poll_stop(&c->poll);
  else if (uv_poll_start(&c->poll, events, on_poll) != 0) {
    sb__conn_close(c, "poll");
    return;
  }
  c->poll_events = events;
}

static void format_peer(char *out, size_t cap, const struct sockaddr *sa) {
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (sa && sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    port = ntohs(in->sin_port);
  } else if (sa && sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    port = ntohs(in6->sin6_port);
  }
  snprintf(out, cap, "%s:%d", ip, port);
}

static sb__conn_t *conn_alloc(sb__worker_t *w, int fd) {
  sb__conn_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->w = w;
  c->fd = fd;
  if (uv_timer_init(&w->loop, &c->timer) != 0) {
    free(c);
    return NULL;
  }
  c->timer.data = c;
  c->handles_open = 1;
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  w->nconns++;
  sb_counter_add(&w->metrics.conns_accepted, 1);
  c->last_io_ms = c->req_start_ms = uv_now(&w->loop);
  return c;
}

int sb__conn_accept(sb__worker_t *w, int fd, const struct sockaddr *peer) {
  sb__conn_t *c = conn_alloc(w, fd);
  if (!c) {
    close(fd);
    atomic_fetch_sub(&w->srv->conns_open, 1);
    return SB_ENOMEM;
  }
  format_peer(c->peer, sizeof c->peer, peer);
  if (uv_poll_init_socket(&w->loop, &c->poll, fd) != 0) {
    sb__conn_close(c, "poll-init");
    return SB_EIO;
  }
  c->poll.data = c;
  c->handles_open = 2;
  set_poll(c, UV_READABLE);
  sb__conn_update_timer(c);
  return 0;
}

sb__conn_t *sb__conn_new_detached(sb__worker_t *w) {
  sb__conn_t *c = conn_alloc(w, -1);
  if (!c) return NULL;
  atomic_fetch_add(&w->srv->conns_open, 1);
  c->detached = 1;
  snprintf(c->peer, sizeof c->peer, "detached");
  return c;
}

void sb__conn_mark_dirty(sb__conn_t *c) {
  if (c->is_dirty || c->closing) return;
  c->is_dirty = 1;
  c->dirty_next = c->w->dirty;
  c->w->dirty = c;
}

/* ---- protocol input ---- */

static int start_h1(sb__conn_t *c) {
  c->proto = SB__PROTO_H1;
  return sb__h1_init(c);
}

static int start_h2(sb__conn_t *c) {
  c->proto = SB__PROTO_H2;
  return sb__h2_init(c, NULL, 0, NULL);
}

/* Hands bytes to the connection's protocol. Returns bytes consumed (possibly fewer than len
 * when the protocol must wait) or a negative code when the connection must close. */
static int64_t proto_feed(sb__conn_t *c, const uint8_t *data, size_t len) {
  if (c->proto == SB__PROTO_SNIFF) {
    /* A cleartext connection is HTTP/2 with prior knowledge when it opens with the preface's
     * request line; anything else is HTTP/1.x. nghttp2 then validates the full preface. */
    size_t n = len < 16 ? len : 16;
    int rc;
    if (memcmp(data, h2_preface_line, n) != 0)
      rc = start_h1(c);
    else if (len < 16) {
      c->in_need_more = 1;
      return 0;
    } else
      rc = start_h2(c);
    if (rc < 0) return rc;
  }
  if (c->proto == SB__PROTO_H1) return sb__h1_feed(c, data, len);
  /* HTTP/2 input is held back while output is above the high-water mark: a peer flooding
   * frames that need answers (PING, SETTINGS) cannot make us queue unbounded replies. */
  c->in_need_more = 0;
  if (sb__conn_out_full(c)) return 0;
  return sb__h2_feed(c, data, len);
}

static int process_input(sb__conn_t *c) {
  while (!c->closing && sb_buf_pending(&c->in) > 0) {
    uint8_t proto = c->proto;
    int64_t used = proto_feed(c, sb_buf_head(&c->in), sb_buf_pending(&c->in));
    if (used < 0) {
      sb__conn_close(c, sb_strerror((int)used));
      return (int)used;
    }
    if (c->closing) return SB_ECANCELED;
    sb_buf_consume(&c->in, (size_t)used);
    /* No progress and no protocol switch: the protocol waits for more or for output room. */
    if (used == 0 && proto == c->proto) break;
  }
  if (sb_buf_pending(&c->in) == 0) sb_buf_free(&c->in);
  return 0;
}

int sb__conn_feed(sb__conn_t *c, const uint8_t *data, size_t len) {
  if (c->closing) return SB_ECANCELED;
  if (len == 0) return 0;
  if (c->lingering) return 0;
  if (sb_buf_pending(&c->in) > 0) {
    if (sb_buf_append(&c->in, data, len) != 0) {
      sb__conn_close(c, "oom");
      return SB_ENOMEM;
    }
    return process_input(c);
  }
  uint8_t proto = c->proto;
  int64_t used = proto_feed(c, data, len);
  if (used < 0) {
    sb__conn_close(c, sb_strerror((int)used));
    return (int)used;
  }
  if (c->closing) return SB_ECANCELED;
  if ((size_t)used < len) {
    if (sb_buf_append(&c->in, data + used, len - (size_t)used) != 0) {
      sb__conn_close(c, "oom");
      return SB_ENOMEM;
    }
    /* A protocol switch (h2c upgrade, sniffing) leaves bytes for the new protocol. */
    if (proto != c->proto) return process_input(c);
  }
  return 0;
}

/* ---- output ---- */

/* Writes conn->out to the socket until it is empty or the socket is full. Returns 1 when
 * the socket would block, 0 when everything was written, negative after closing. */
static int write_out(sb__conn_t *c) {
  while (sb_buf_pending(&c->out) > 0) {
    size_t n = sb_buf_pending(&c->out);
    ssize_t w;
    if (c->detached) {
      w = (ssize_t)n;
    } else if (c->ssl) {
      ERR_clear_error();
      int r = SSL_write(c->ssl, sb_buf_head(&c->out), n > INT32_MAX ? INT32_MAX : (int)n);
      if (r <= 0) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return 1;
        sb__conn_close(c, "tls-write");
        return SB_EIO;
      }
      w = r;
    } else {
      w = send(c->fd, sb_buf_head(&c->out), n, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
        sb__conn_close(c, "write");
        return -errno;
      }
    }
    sb_buf_consume(&c->out, (size_t)w);
    sb_counter_add(&c->w->metrics.bytes_out, (uint64_t)w);
    c->last_io_ms = now_ms(c);
  }
  /* Give a large response's buffer back once it has drained; idle connections hold none. */
  if (c->out.cap > 4 * SB_CONN_OUT_HIGH) sb_buf_free(&c->out);
  return 0;
}

/* Whether the connection may read more input now (see the backpressure note above). */
static int can_read(const sb__conn_t *c) {
  if (c->closing || c->read_eof) return 0;
  if (c->lingering) return 1;
  if (sb__conn_out_full(c)) return 0;
  /* Unprocessed input that is not an incomplete unit means the protocol is paused. */
  if (sb_buf_pending(&c->in) > 0 && !c->in_need_more) return 0;
  return 1;
}

void sb__conn_update_poll(sb__conn_t *c) {
  if (c->closing || c->tls_handshaking) return;
  int ev = can_read(c) ? UV_READABLE : 0;
  if (sb_buf_pending(&c->out) > 0) ev |= UV_WRITABLE;
  set_poll(c, ev);
}

/* Stops sending and reads (and drops) what the peer still sends for a short while, so the
 * kernel does not answer unread input with a reset that destroys our final response. */
static void start_lingering(sb__conn_t *c) {
  if (c->detached || c->lingering) {
    sb__conn_close(c, "done");
    return;
  }
  c->lingering = 1;
  if (c->ssl) SSL_shutdown(c->ssl);
  shutdown(c->fd, SHUT_WR);
  if (c->read_eof) {
    sb__conn_close(c, "done");
    return;
  }
  set_deadline(c, now_ms(c) + SB_LINGER_MS);
  set_poll(c, UV_READABLE);
}

/* Whether the connection has nothing left to do and should close now. */
static int finished(const sb__conn_t *c) {
  if (sb_buf_pending(&c->out) > 0) return 0;
  if (c->proto == SB__PROTO_H1 && !sb__h1_idle(c)) return 0;
  if (c->close_after_flush) return 1;
  /* A half-closed HTTP/1 client gets its answers; afterwards there is nothing to read. */
  return c->read_eof && (c->proto != SB__PROTO_H1 || sb_buf_pending(&c->in) == 0);
}

void sb__conn_flush(sb__conn_t *c) {
  if (c->closing || c->lingering) return;
  if (c->need_input) {
    c->need_input = 0;
    if (process_input(c) < 0) return;
  }
  /* TLS may hold decrypted bytes that epoll cannot see; read them when we can take them. */
  if (c->ssl && !c->tls_handshaking && can_read(c) && SSL_pending(c->ssl) > 0) conn_read(c);
  if (c->closing) return;
  for (unsigned round = 0; round < SB_PUMPS_PER_FLUSH; round++) {
    if (c->h2 && sb__h2_pump(c) < 0) {
      sb__conn_close(c, "h2");
      return;
    }
    int blocked = write_out(c);
    if (blocked < 0) return;
    if (blocked || !c->h2 || sb_buf_pending(&c->out) > 0) break;
    if (!c->h2_want_write) break;
  }
  if (sb_buf_pending(&c->out) < SB_CONN_OUT_LOW) {
    if (c->proto == SB__PROTO_H1 && c->reqs) sb__req_deliver_writable(c->reqs);
    if (c->closing) return;
    /* Input held back by output backpressure can go on now. */
    if (sb_buf_pending(&c->in) > 0 && c->proto == SB__PROTO_H2) {
      if (process_input(c) < 0) return;
      if (c->h2 && sb__h2_pump(c) < 0) {
        sb__conn_close(c, "h2");
        return;
      }
      if (write_out(c) < 0) return;
    }
  }
  if (finished(c)) {
    start_lingering(c);
    return;
  }
  sb__conn_update_poll(c);
  sb__conn_update_timer(c);
}

/* ---- timers ---- */

/* Sets when the connection's current timeout expires. Moving a deadline later (every
 * request on a keep-alive connection does) touches no timer: the armed timer fires early,
 * sees the later deadline and re-arms once. Only an earlier deadline re-arms at once. */
static void set_deadline(sb__conn_t *c, uint64_t deadline) {
  c->deadline_ms = deadline;
  if (!deadline || (c->timer_due_ms && c->timer_due_ms <= deadline)) return;
  uint64_t now = now_ms(c);
  uv_timer_start(&c->timer, on_timer, deadline > now ? deadline - now : 0, 0);
  c->timer_due_ms = deadline;
}

void sb__conn_update_timer(sb__conn_t *c) {
  if (c->closing || c->lingering || c->detached) return;
  const sb_server_config_t *cfg = &c->w->srv->cfg;
  uint64_t now = now_ms(c), timeout = 0;
  if (sb_buf_pending(&c->out) > 0) {
    timeout = cfg->idle_timeout_ms; /* a peer that stopped reading */
  } else if (c->tls_handshaking || c->proto == SB__PROTO_SNIFF) {
    /* From accept: a peer trickling its first bytes gets no extension, and a silent one is
     * an idle connection as much as a slow request. */
    uint32_t limit = cfg->header_timeout_ms < cfg->idle_timeout_ms ? cfg->header_timeout_ms
                                                                   : cfg->idle_timeout_ms;
    uint64_t end = c->req_start_ms + limit;
    timeout = end > now ? end - now : 1;
  } else if (c->proto == SB__PROTO_H1) {
    switch (sb__h1_wait_state(c)) {
    case SB__H1_WAIT_IDLE:
      timeout = cfg->idle_timeout_ms;
      break;
    case SB__H1_WAIT_HEADERS: {
      uint64_t end = c->req_start_ms + cfg->header_timeout_ms;
      timeout = end > now ? end - now : 1;
      break;
    }
    case SB__H1_WAIT_BODY:
      timeout = cfg->idle_timeout_ms;
      break;
    default:
      timeout = 0;
      break; /* a handler is working; it owns the pace */
    }
  } else if (c->h2 && c->reqs == NULL) {
    timeout = cfg->idle_timeout_ms;
  }
  set_deadline(c, timeout ? now + timeout : 0);
}

static void on_timer(uv_timer_t *t) {
  sb__conn_t *c = t->data;
  c->timer_due_ms = 0;
  if (!c->deadline_ms) return;
  if (now_ms(c) < c->deadline_ms) {
    set_deadline(c, c->deadline_ms);
    return;
  }
  if (c->lingering) {
    sb__conn_close(c, "linger-done");
    return;
  }
  sb_counter_add(&c->w->metrics.timeouts, 1);
  sb_log(SB_LOG_DEBUG, "conn_timeout", "peer=%s", c->peer);
  if (c->h2) sb__h2_shutdown(c);
  sb__conn_close(c, "timeout");
}

/* ---- input ---- */

static void tls_handshake(sb__conn_t *c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    c->tls_handshaking = 0;
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    int rc = 0;
    if (alen == 2 && memcmp(alpn, "h2", 2) == 0)
      rc = start_h2(c);
    else if (alen == 8 && memcmp(alpn, "http/1.1", 8) == 0)
      rc = start_h1(c);
    if (rc < 0) {
      sb__conn_close(c, "h2-init");
      return;
    }
    sb__conn_update_poll(c);
    sb__conn_update_timer(c);
    conn_read(c);
    sb__conn_mark_dirty(c);
    return;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ) {
    set_poll(c, UV_READABLE);
  } else if (e == SSL_ERROR_WANT_WRITE) {
    set_poll(c, UV_READABLE | UV_WRITABLE);
  } else {
    sb_counter_add(&c->w->metrics.protocol_errors, 1);
    sb_log(SB_LOG_DEBUG, "tls_handshake_failed", "peer=%s", c->peer);
    sb__conn_close(c, "tls-handshake");
  }
}

/* On the first readable event of a TLS-enabled listener, peek at the first byte: a TLS
 * record starts with 0x16 (handshake); anything else is cleartext HTTP on the same port. */
static int maybe_start_tls(sb__conn_t *c) {
  uint8_t b;
  ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
  if (n <= 0) return 0; /* EOF or error: the normal read path handles it */
  c->tls_checked = 1;
  if (b != 0x16) return 0;
  c->ssl = SSL_new(c->w->srv->tls);
  if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
    sb__conn_close(c, "tls-new");
    return 1;
  }
  SSL_set_accept_state(c->ssl);
  c->tls_handshaking = 1;
  tls_handshake(c);
  return 1;
}

/* Reads up to SB_READS_PER_WAKEUP buffers and feeds them. Returns when the socket is
 * drained, the connection cannot take more, or it closed. */
static void conn_read(sb__conn_t *c) {
  sb__worker_t *w = c->w;
  for (unsigned i = 0; i < SB_READS_PER_WAKEUP; i++) {
    if (!can_read(c)) break;
    ssize_t n;
    if (c->ssl) {
      ERR_clear_error();
      int r = SSL_read(c->ssl, w->rbuf, SB_READ_BUF);
      if (r <= 0) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
        if (e == SSL_ERROR_ZERO_RETURN)
          n = 0;
        else {
          sb__conn_close(c, "tls-read");
          return;
        }
      } else {
        n = r;
      }
    } else {
      n = recv(c->fd, w->rbuf, SB_READ_BUF, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        sb__conn_close(c, "read");
        return;
      }
    }
    if (n == 0) {
      c->read_eof = 1;
      if (c->lingering) {
        sb__conn_close(c, "done");
        return;
      }
      /* HTTP/2 has no half-close at the connection level: the session is over. An HTTP/1
       * request cut off in its headers or body can never complete either. */
      int wait = c->proto == SB__PROTO_H1 ? sb__h1_wait_state(c) : -1;
      if (c->proto != SB__PROTO_H1 || wait == SB__H1_WAIT_HEADERS ||
          (wait == SB__H1_WAIT_BODY && !sb__h1_idle(c))) {
        sb__conn_close(c, "eof");
        return;
      }
      break;
    }
    sb_counter_add(&w->metrics.bytes_in, (uint64_t)n);
    c->last_io_ms = now_ms(c);
    if (c->lingering) continue;
    if (sb__conn_feed(c, w->rbuf, (size_t)n) < 0) return;
    if (!c->ssl && (size_t)n < SB_READ_BUF) break;
  }
  sb__conn_mark_dirty(c);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sb__conn_t *c = h->data;
  if (c->closing) return;
  if (status < 0) {
    sb__conn_close(c, "poll-error");
    return;
  }
  if (c->tls_handshaking) {
    tls_handshake(c);
    return;
  }
  if ((events & UV_READABLE) && c->w->srv->tls && !c->tls_checked && !c->ssl &&
      c->proto == SB__PROTO_SNIFF) {
    if (maybe_start_tls(c)) return;
  }
  if (events & UV_WRITABLE) {
    sb__conn_flush(c);
    if (c->closing) return;
  }
  if (events & UV_READABLE) conn_read(c);
}

/* ---- close ---- */

static void on_handle_closed(uv_handle_t *h) {
  sb__conn_t *c = h->data;
  if (--c->handles_open > 0) return;
  sb__worker_t *w = c->w;
  if (c->is_dirty) {
    sb__conn_t **pp = &w->dirty;
    while (*pp && *pp != c)
      pp = &(*pp)->dirty_next;
    if (*pp) *pp = c->dirty_next;
  }
  if (c->h1) sb__h1_free(c);
  if (c->h2) sb__h2_free(c);
  if (c->ssl) SSL_free(c->ssl);
  if (c->fd >= 0) close(c->fd);
  sb_buf_free(&c->out);
  sb_buf_free(&c->in);
  if (c->prev)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  w->nconns--;
  atomic_fetch_sub(&w->srv->conns_open, 1);
  sb_counter_add(&w->metrics.conns_closed, 1);
  free(c);
  sb__worker_conn_closed(w);
}

void sb__conn_close(sb__conn_t *c, const char *why) {
  if (c->closing) return;
  c->closing = 1;
  if (sb_log_enabled(SB_LOG_DEBUG))
    sb_log(SB_LOG_DEBUG, "conn_close", "peer=%s why=%s", c->peer, why);
  while (c->reqs) {
    sb_http_req_t *req = c->reqs;
    sb__req_abort(req, SB_ECANCELED);
    sb__req_transport_done(req);
  }
  if (!c->detached) {
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, on_handle_closed);
  }
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

void sb__conn_shutdown(sb__conn_t *c) {
  if (c->closing) return;
  if (c->h2) {
    sb__h2_shutdown(c);
    sb__conn_mark_dirty(c);
    return;
  }
  c->close_after_flush = 1;
  if (c->proto != SB__PROTO_H1 || sb__h1_idle(c)) {
    if (sb_buf_pending(&c->out) == 0) sb__conn_close(c, "shutdown");
    return;
  }
  sb__conn_mark_dirty(c);
}
