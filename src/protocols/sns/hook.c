/*
 * http and https webhook delivery of the SNS front-end: the pusher thread and its HTTP/1.1
 * client, over TLS for https (sns_int.h explains the design: one queue per webhook, retries
 * by visibility timeout).
 *
 * The pusher is an ordinary broker client on its own thread: it lists the hook queues,
 * receives from each without waiting, POSTs every message and deletes what was accepted. Each
 * broker call is made synchronous with a condition variable (the callback runs on the broker
 * thread and only copies). It owns nothing of the broker; it must stop before the broker
 * closes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "protocols/aws/aws.h"
#include "protocols/sns/sns_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

#define HOOKS_LIST_MAX 1000 /* hook queues served per round */

/* One received message, copied out of the broker's callback. */
typedef struct hook_msg {
  char receipt[SB_BROKER_RECEIPT_LEN + 1]; /* to delete it after a 2xx */
  char *body;                              /* malloc'ed */
  size_t len;                              /* bytes at body */
} hook_msg_t;

struct sns_hooks {
  sb_broker_t *broker; /* borrowed */
  pthread_t thread;    /* the pusher */
  atomic_int stop;     /* set by sb__sns_hooks_stop */
  char region[64];     /* for ARNs in headers */
  char account[33];    /* for ARNs in headers */
  /* The synchronous-call state; only the pusher and the broker callbacks touch it. */
  pthread_mutex_t mu;                   /* guards done and the results below */
  pthread_cond_t cv;                    /* signalled by the callbacks */
  int done;                             /* the callback ran */
  int status;                           /* its status */
  char **names;                         /* list: malloc'ed names */
  size_t n_names;                       /* entries of names */
  char endpoint[SNS_URL_MAX + 1];       /* get: sns:endpoint */
  char topic[SB_BROKER_NAME_MAX + 1];   /* get: sns:topic */
  char sub[SB_BROKER_ID_LEN + 1];       /* get: sns:sub */
  int unsubscribed;                     /* get: sns:unsubscribed is set */
  char sigver[8];                       /* topic get: its SignatureVersion, "" when unset */
  const sns_signer_t *signer;           /* borrowed; signs the envelopes */
  SSL_CTX *tls;                         /* the TLS client of https webhooks; owned */
  hook_msg_t msgs[SB_BROKER_BATCH_MAX]; /* receive: the messages */
  size_t n_msgs;                        /* entries of msgs */
};

static void signal_done(sns_hooks_t *h, int status) {
  h->status = status;
  h->done = 1;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

static void list_cb(void *arg, int status, const sb_broker_result_t *r) {
  sns_hooks_t *h = arg;
  pthread_mutex_lock(&h->mu);
  h->names = NULL;
  h->n_names = 0;
  if (!status && r->n_names) {
    h->names = calloc(r->n_names, sizeof *h->names);
    for (size_t i = 0; h->names && i < r->n_names; i++)
      if ((h->names[i] = strdup(r->names[i]))) h->n_names++;
  }
  signal_done(h, status);
}

static void copy_kv(const sb_queue_info_t *q, const char *name, char *out, size_t cap) {
  out[0] = 0;
  for (size_t i = 0; i < q->n_kv; i++)
    if (strcmp(q->kv[i].name, name) == 0) snprintf(out, cap, "%s", q->kv[i].value);
}

static void get_cb(void *arg, int status, const sb_broker_result_t *r) {
  sns_hooks_t *h = arg;
  pthread_mutex_lock(&h->mu);
  if (!status) {
    copy_kv(r->queue, "sns:endpoint", h->endpoint, sizeof h->endpoint);
    copy_kv(r->queue, "sns:topic", h->topic, sizeof h->topic);
    copy_kv(r->queue, "sns:sub", h->sub, sizeof h->sub);
    char u[4];
    copy_kv(r->queue, "sns:unsubscribed", u, sizeof u);
    h->unsubscribed = u[0] != 0;
  }
  signal_done(h, status);
}

static void topic_cb(void *arg, int status, const sb_broker_result_t *r) {
  sns_hooks_t *h = arg;
  pthread_mutex_lock(&h->mu);
  h->sigver[0] = 0;
  for (size_t i = 0; !status && i < r->topic->n_kv; i++)
    if (strcmp(r->topic->kv[i].name, "SignatureVersion") == 0)
      snprintf(h->sigver, sizeof h->sigver, "%s", r->topic->kv[i].value);
  signal_done(h, status);
}

static void receive_cb(void *arg, int status, const sb_broker_result_t *r) {
  sns_hooks_t *h = arg;
  pthread_mutex_lock(&h->mu);
  h->n_msgs = 0;
  for (size_t i = 0; !status && i < r->n && i < SB_BROKER_BATCH_MAX; i++) {
    hook_msg_t *m = &h->msgs[h->n_msgs];
    m->body = malloc(r->deliveries[i].body_len + 1);
    if (!m->body) continue; /* not deleted: it comes back after the visibility timeout */
    memcpy(m->body, r->deliveries[i].body, r->deliveries[i].body_len);
    m->body[r->deliveries[i].body_len] = 0;
    m->len = r->deliveries[i].body_len;
    memcpy(m->receipt, r->deliveries[i].receipt, sizeof m->receipt);
    h->n_msgs++;
  }
  signal_done(h, status);
}

static void plain_cb(void *arg, int status, const sb_broker_result_t *r) {
  sns_hooks_t *h = arg;
  pthread_mutex_lock(&h->mu);
  signal_done(h, status);
}

/* Waits for the callback of an operation started with rc (0: started). */
static int wait_op(sns_hooks_t *h, int rc) {
  if (rc) return rc;
  pthread_mutex_lock(&h->mu);
  while (!h->done)
    pthread_cond_wait(&h->cv, &h->mu);
  h->done = 0;
  rc = h->status;
  pthread_mutex_unlock(&h->mu);
  return rc;
}

static const char *str_member(const aws_node_t *m, const char *k, size_t *len) {
  const aws_node_t *v = sb__aws_get(m, k);
  if (!v || v->kind != AWS_STR) return NULL;
  if (len) *len = v->len;
  return v->s;
}

/* The envelope body[0..len) (NUL-terminated) with its signature, SignatureVersion and
 * SigningCertURL filled in (malloc'ed, *out_len bytes), or NULL when it has no placeholder
 * or cannot be signed (then it goes out as it is). */
static char *sign_envelope(const sns_hooks_t *h, int version, const char *body, size_t len,
                           size_t *out_len) {
  const char *ph = h->signer ? strstr(body, SNS_UNSIGNED) : NULL;
  if (!ph) return NULL;
  sb_arena_t a;
  sb_arena_init(&a);
  aws_node_t *root = NULL;
  const char *err = NULL;
  sb_buf_t canon = {0}, url = {0}, out = {0};
  char *res = NULL;
  char sig[SNS_SIGNATURE_MAX];
  if (sb__aws_decode_json(&a, body, len, &root, &err)) goto done;
  sns_envelope_t e = {0};
  e.type = str_member(root, "Type", NULL);
  e.message = str_member(root, "Message", &e.message_len);
  e.message_id = str_member(root, "MessageId", NULL);
  e.subject = str_member(root, "Subject", NULL);
  e.subscribe_url = str_member(root, "SubscribeURL", NULL);
  e.timestamp = str_member(root, "Timestamp", NULL);
  e.token = str_member(root, "Token", NULL);
  e.topic_arn = str_member(root, "TopicArn", NULL);
  /* The certificate is on the server the envelope's own links point at. */
  const char *link = e.subscribe_url ? e.subscribe_url : str_member(root, "UnsubscribeURL", NULL);
  const char *host = link ? strstr(link, "://") : NULL;
  if (!e.type || !host) goto done;
  size_t origin = (size_t)(host + 3 - link) + strcspn(host + 3, "/?#");
  if (sb__sns_string_to_sign(&e, &canon) || sb__sns_sign(h->signer, version, sb_buf_head(&canon),
                                                         sb_buf_pending(&canon), sig, sizeof sig))
    goto done;
  if (sb_buf_append(&url, link, origin) ||
      sb_buf_append(&url, sb__sns_signer_cert_path(h->signer),
                    strlen(sb__sns_signer_cert_path(h->signer))))
    goto done;
  sb_jw_t w;
  sb_jw_init(&w, &out);
  size_t pre = (size_t)(ph - body), unsigned_len = strlen(SNS_UNSIGNED);
  if (sb_buf_append(&out, body, pre) ||
      sb_buf_appendf(&out, "\"SignatureVersion\":\"%d\",\"Signature\":\"%s\",\"SigningCertURL\":",
                     version, sig))
    goto done;
  sb_jw_str(&w, (const char *)sb_buf_head(&url), sb_buf_pending(&url));
  if (sb_jw_error(&w) || sb_buf_append(&out, ph + unsigned_len, len - pre - unsigned_len))
    goto done;
  res = malloc(sb_buf_pending(&out) + 1);
  if (res) {
    *out_len = sb_buf_pending(&out);
    memcpy(res, sb_buf_head(&out), *out_len);
    res[*out_len] = 0;
  }
done:
  if (!res) sb_log(SB_LOG_WARN, "sns_sign_failed", "bytes=%zu sent=unsigned", len);
  sb_buf_free(&canon);
  sb_buf_free(&url);
  sb_buf_free(&out);
  sb_arena_free(&a);
  return res;
}

static void push_queue(sns_hooks_t *h, const char *queue, int *sent) {
  if (wait_op(h, sb_queue_get(h->broker, queue, get_cb, h)) || !h->endpoint[0]) return;
  if (wait_op(h, sb_queue_receive(h->broker, queue, SB_BROKER_BATCH_MAX, -1, 0, receive_cb, h)))
    return;
  size_t n = h->n_msgs;
  int unsubscribed = h->unsubscribed, drop = unsubscribed && n == 0;
  hook_msg_t msgs[SB_BROKER_BATCH_MAX];
  memcpy(msgs, h->msgs, n * sizeof msgs[0]);
  const char *ok[SB_BROKER_BATCH_MAX];
  size_t n_ok = 0;
  int version = 1;
  if (n && !wait_op(h, sb_topic_get(h->broker, h->topic, topic_cb, h)) &&
      strcmp(h->sigver, "2") == 0)
    version = 2;
  for (size_t i = 0; i < n; i++) {
    static const char unsub_type[] = "{\"Type\":\"UnsubscribeConfirmation\"";
    int confirm = strncmp(msgs[i].body, "{\"Type\":\"SubscriptionConfirmation\"", 34) == 0;
    int unsub = strncmp(msgs[i].body, unsub_type, sizeof unsub_type - 1) == 0;
    char hdrs[1024];
    snprintf(hdrs, sizeof hdrs,
             "x-amz-sns-message-type: %s\r\nx-amz-sns-topic-arn: arn:aws:sns:%s:%s:%s\r\n"
             "%s%s%s%s%s%s%s%s%s"
             "content-type: text/plain; charset=UTF-8\r\n",
             confirm ? "SubscriptionConfirmation"
             : unsub ? "UnsubscribeConfirmation"
                     : "Notification",
             h->region, h->account, h->topic,
             h->sub[0] ? "x-amz-sns-subscription-arn: arn:aws:sns:" : "",
             h->sub[0] ? h->region : "", h->sub[0] ? ":" : "", h->sub[0] ? h->account : "",
             h->sub[0] ? ":" : "", h->sub[0] ? h->topic : "", h->sub[0] ? ":" : "",
             h->sub[0] ? h->sub : "", h->sub[0] ? "\r\n" : "");
    size_t slen = 0;
    char *signed_body = sign_envelope(h, version, msgs[i].body, msgs[i].len, &slen);
    const char *why = NULL;
    int st = sb__sns_http_post(h->tls, h->endpoint, hdrs, signed_body ? signed_body : msgs[i].body,
                               signed_body ? slen : msgs[i].len, &why);
    free(signed_body);
    if (st >= 200 && st < 300) {
      ok[n_ok++] = msgs[i].receipt;
      drop |= unsub && unsubscribed;
    } else {
      char q[96];
      char e[SNS_URL_MAX + 3];
      sb_log(SB_LOG_WARN, "sns_webhook_failed",
             "queue=%s endpoint=%s status=%d error=\"%s\" retry_ms=%u",
             sb_log_quote(q, sizeof q, queue, (unsigned)strlen(queue)),
             sb_log_quote(e, sizeof e, h->endpoint, (unsigned)strlen(h->endpoint)), st,
             why      ? why
             : st < 0 ? sb_strerror(st)
                      : "not a 2xx answer",
             SNS_HOOK_RETRY_MS);
    }
  }
  if (n_ok) wait_op(h, sb_queue_delete_msgs(h->broker, queue, ok, n_ok, plain_cb, h));
  /* An unsubscribed webhook's queue goes once its UnsubscribeConfirmation was delivered, or
   * expired undelivered. */
  if (drop) wait_op(h, sb_queue_delete(h->broker, queue, plain_cb, h));
  for (size_t i = 0; i < n; i++)
    free(msgs[i].body);
  *sent += (int)n;
}

static void *pusher(void *arg) {
  sns_hooks_t *h = arg;
  while (!atomic_load(&h->stop)) {
    int sent = 0;
    if (!wait_op(h, sb_queue_list(h->broker, SNS_HOOK_PREFIX, NULL, HOOKS_LIST_MAX, list_cb, h))) {
      char **names = h->names;
      size_t n = h->n_names;
      for (size_t i = 0; i < n && !atomic_load(&h->stop); i++)
        push_queue(h, names[i], &sent);
      for (size_t i = 0; i < n; i++)
        free(names[i]);
      free(names);
    }
    if (!sent) {
      struct timespec ts = {0, SNS_HOOK_POLL_MS * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  return NULL;
}

/* The TLS client: TLS 1.2 or later, peers verified against the system's trust store and
 * ca_file. */
static SSL_CTX *tls_client(const char *ca_file) {
  SSL_CTX *c = SSL_CTX_new(TLS_client_method());
  if (!c) return NULL;
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
  if (SSL_CTX_set_default_verify_paths(c) != 1 ||
      (ca_file && SSL_CTX_load_verify_locations(c, ca_file, NULL) != 1)) {
    SSL_CTX_free(c);
    return NULL;
  }
  return c;
}

int sb__sns_hooks_start(sb_broker_t *b, const char *region, const char *account,
                        const sns_signer_t *signer, const char *ca_file, sns_hooks_t **out) {
  sns_hooks_t *h = calloc(1, sizeof *h);
  if (!h) return SB_ENOMEM;
  h->broker = b;
  h->signer = signer;
  h->tls = tls_client(ca_file);
  if (!h->tls) {
    sb_log(SB_LOG_ERROR, "sns_webhook_ca_failed", "file=\"%s\"", ca_file ? ca_file : "");
    free(h);
    return SB_ETLS;
  }
  snprintf(h->region, sizeof h->region, "%s", region);
  snprintf(h->account, sizeof h->account, "%s", account);
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  int rc = pthread_create(&h->thread, NULL, pusher, h);
  if (rc) {
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    SSL_CTX_free(h->tls);
    free(h);
    return -rc;
  }
  *out = h;
  return 0;
}

void sb__sns_hooks_stop(sns_hooks_t *h) {
  if (!h) return;
  atomic_store(&h->stop, 1);
  pthread_join(h->thread, NULL);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
  SSL_CTX_free(h->tls);
  free(h);
}

/* ---- a minimal HTTP/1.1 client, over TCP or TLS ---- */

typedef struct url {
  int tls;                    /* https */
  char host[256];             /* host name or address (IPv6 without brackets) */
  char port[8];               /* decimal port */
  char path[SNS_URL_MAX + 1]; /* path and query, at least "/" */
} url_t;

static int parse_url(const char *s, url_t *u) {
  if (!s || strlen(s) > SNS_URL_MAX) return SB_EINVAL;
  if (!strncmp(s, "http://", 7))
    u->tls = 0;
  else if (!strncmp(s, "https://", 8))
    u->tls = 1;
  else
    return SB_EINVAL;
  const char *h = s + (u->tls ? 8 : 7);
  size_t hl;
  const char *p;
  if (*h == '[') { /* an IPv6 address */
    hl = strcspn(h + 1, "]");
    if (h[1 + hl] != ']' || hl == 0 || hl >= sizeof u->host) return SB_EINVAL;
    memcpy(u->host, h + 1, hl);
    p = h + hl + 2;
  } else {
    hl = strcspn(h, ":/?#");
    if (hl == 0 || hl >= sizeof u->host) return SB_EINVAL;
    memcpy(u->host, h, hl);
    p = h + hl;
  }
  u->host[hl] = 0;
  snprintf(u->port, sizeof u->port, u->tls ? "443" : "80");
  if (*p == ':') {
    size_t pl = strspn(p + 1, "0123456789");
    if (pl == 0 || pl > 5 || atoi(p + 1) < 1 || atoi(p + 1) > 65535) return SB_EINVAL;
    memcpy(u->port, p + 1, pl);
    u->port[pl] = 0;
    p += 1 + pl;
  }
  if (*p && *p != '/' && *p != '?') return SB_EINVAL;
  snprintf(u->path, sizeof u->path, "%s%s", *p == '/' ? "" : "/", p);
  for (const char *c = s; *c; c++)
    if ((unsigned char)*c <= 0x20 || *c == 0x7f) return SB_EINVAL;
  return 0;
}

int sb__sns_check_url(const char *url) {
  url_t u;
  return parse_url(url, &u);
}

/* One connection: a socket, and its TLS session for https. */
typedef struct conn {
  int fd;   /* -1 when closed */
  SSL *ssl; /* NULL for plain http */
} conn_t;

static int conn_write(conn_t *c, const char *p, size_t n) {
  while (n) {
    ssize_t w;
    if (c->ssl) {
      size_t done = 0;
      w = SSL_write_ex(c->ssl, p, n, &done) == 1 ? (ssize_t)done : -1;
      if (w < 0) return SB_ETLS;
    } else {
      w = send(c->fd, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return w < 0 ? -errno : SB_EIO;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static ssize_t conn_read(conn_t *c, char *p, size_t n) {
  if (c->ssl) {
    size_t got = 0;
    return SSL_read_ex(c->ssl, p, n, &got) == 1 ? (ssize_t)got : -1;
  }
  for (;;) {
    ssize_t r = recv(c->fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

/* The TLS handshake, verifying the peer for u's host (a name, or an address literal). */
static int tls_start(SSL_CTX *tls, conn_t *c, const url_t *u, const char **why) {
  c->ssl = SSL_new(tls);
  if (!c->ssl) return SB_ENOMEM;
  unsigned char addr[16];
  int is_ip = inet_pton(AF_INET, u->host, addr) == 1 || inet_pton(AF_INET6, u->host, addr) == 1;
  X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
  X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  int ok = SSL_set_fd(c->ssl, c->fd) == 1 &&
           (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, u->host) == 1
                  : SSL_set_tlsext_host_name(c->ssl, u->host) == 1 &&
                        X509_VERIFY_PARAM_set1_host(vp, u->host, 0) == 1);
  if (!ok) return SB_ETLS;
  if (SSL_connect(c->ssl) == 1) return 0;
  long v = SSL_get_verify_result(c->ssl);
  *why = v != X509_V_OK ? X509_verify_cert_error_string(v) : "TLS handshake failed";
  ERR_clear_error();
  return SB_ETLS;
}

static void conn_close(conn_t *c) {
  if (c->ssl) {
    SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
  }
  if (c->fd >= 0) close(c->fd);
  ERR_clear_error();
}

/* Connects to the first address of u's host that answers. */
static int conn_open(conn_t *c, const url_t *u) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
  if (getaddrinfo(u->host, u->port, &hints, &ai) || !ai) return SB_EINVAL;
  struct timeval tv = {SNS_HOOK_TIMEOUT_MS / 1000, (SNS_HOOK_TIMEOUT_MS % 1000) * 1000};
  int rc = SB_EINVAL;
  for (struct addrinfo *a = ai; a; a = a->ai_next) {
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      rc = -errno;
      continue;
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      c->fd = fd;
      rc = 0;
      break;
    }
    rc = -errno;
    close(fd);
  }
  freeaddrinfo(ai);
  return rc;
}

int sb__sns_http_post(SSL_CTX *tls, const char *url, const char *headers, const void *body,
                      size_t len, const char **why) {
  url_t u;
  *why = NULL;
  if (parse_url(url, &u)) return SB_EINVAL;
  if (u.tls && !tls) return SB_ETLS;
  conn_t c = {-1, NULL};
  int rc = conn_open(&c, &u);
  if (!rc && u.tls) rc = tls_start(tls, &c, &u, why);
  int v6 = strchr(u.host, ':') != NULL;
  char head[2048];
  int hl =
      snprintf(head, sizeof head,
               "POST %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: switchboard-sns\r\n"
               "%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
               u.path, v6 ? "[" : "", u.host, v6 ? "]" : "", u.port, headers ? headers : "", len);
  if (!rc && (hl < 0 || (size_t)hl >= sizeof head)) rc = SB_EINVAL;
  if (!rc) rc = conn_write(&c, head, (size_t)hl);
  if (!rc && len) rc = conn_write(&c, body, len);
  int status = rc;
  if (!rc) {
    /* Only the status line matters: "HTTP/1.x NNN". */
    char resp[64];
    size_t got = 0;
    while (got < 12) {
      ssize_t r = conn_read(&c, resp + got, sizeof resp - 1 - got);
      if (r <= 0) break;
      got += (size_t)r;
    }
    resp[got] = 0;
    status = got >= 12 && !strncmp(resp, "HTTP/1.", 7) ? atoi(resp + 9) : SB_EPROTO;
  }
  conn_close(&c);
  return status;
}
