/*
 * The topic engine: topics, subscriptions and fan-out (contract in broker.h, "topics"). Runs
 * on the broker thread. A queue copy of a publish is an ordinary send into the queue (an
 * internal SEND operation run directly, so the queue engine's rules — size, depth, FIFO
 * groups and deduplication — apply unchanged), and a stream copy an ordinary append (an
 * internal STREAM_APPEND); the publish completes when every copy has.
 *
 * Catalog records (see broker_int.h for the catalog itself):
 *   'o' + topic   fifo, created, front-end attributes "x:<name>"
 *   'O' + topic   the topic was deleted (with its subscriptions)
 *   's' + sub id  topic, queue, stream (set instead of queue), filter, filter_body, binding,
 * headers_any, dead_letter, format, header pairs "h:<name>" (value) and "hp:<name>" (presence
 * only), front-end attributes "x:<name>" 'S' + sub id  the subscription was removed
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "broker/filter.h"
#include "switchboard/error.h"

/* --- lookup ------------------------------------------------------------------------------- */

static sb__topic_t *topic_find(sb_broker_t *b, const char *name) {
  bool found;
  size_t i = sb__byname_pos(b->topics, b->n_topics, name, &found);
  return found ? b->topics[i] : NULL;
}

static sb__sub_t *sub_find(sb_broker_t *b, const char *id) {
  for (size_t t = 0; t < b->n_topics; t++)
    for (size_t i = 0; i < b->topics[t]->n_subs; i++)
      if (strcmp(b->topics[t]->subs[i]->id, id) == 0) return b->topics[t]->subs[i];
  return NULL;
}

/* Frees what sub_apply sets: the selection and the attributes. */
static void sub_clear(sb__sub_t *s) {
  free(s->filter);
  sb__filter_free(s->f);
  free(s->binding);
  for (size_t i = 0; i < s->n_headers; i++) {
    free(s->hn[i]);
    free(s->hv[i]);
  }
  free(s->hn);
  free(s->hv);
  sb__kvs_free(&s->kv);
}

static void sub_free(sb__sub_t *s) {
  sub_clear(s);
  free(s);
}

/* Detaches s from its topic; frees it now or when its last copy completes. */
static void sub_remove(sb__sub_t *s) {
  sb__topic_t *t = s->topic;
  if (t) {
    for (size_t i = 0; i < t->n_subs; i++)
      if (t->subs[i] == s) {
        t->subs[i] = t->subs[--t->n_subs];
        break;
      }
  }
  s->topic = NULL;
  if (!s->pending) sub_free(s);
}

static void topic_free(sb__topic_t *t) {
  while (t->n_subs)
    sub_remove(t->subs[t->n_subs - 1]);
  free(t->subs);
  sb__kvs_free(&t->kv);
  free(t);
}

/* --- applying configuration --------------------------------------------------------------- */

/* Fills s's selection, delivery and attributes from c. Returns 0, SB_EINVAL (bad policy) or
 * SB_ENOMEM; s is unchanged on error. */
static int sub_apply(sb__sub_t *s, const sb_sub_config_t *c) {
  sb__sub_t n;
  memset(&n, 0, sizeof n);
  int rc = 0;
  if (c->filter && *c->filter) {
    const char *why;
    rc = sb__filter_compile(c->filter, strlen(c->filter), &n.f, &why);
    if (!rc && !(n.filter = strdup(c->filter))) rc = SB_ENOMEM;
  }
  if (!rc && c->binding && !(n.binding = strdup(c->binding))) rc = SB_ENOMEM;
  if (!rc && c->n_headers) {
    n.hn = calloc(c->n_headers, sizeof *n.hn);
    n.hv = calloc(c->n_headers, sizeof *n.hv);
    if (!n.hn || !n.hv) rc = SB_ENOMEM;
    for (size_t i = 0; i < c->n_headers && !rc; i++) {
      n.n_headers++;
      n.hn[i] = strdup(c->headers[i].name);
      n.hv[i] = c->headers[i].value ? strdup(c->headers[i].value) : NULL;
      if (!n.hn[i] || (c->headers[i].value && !n.hv[i])) rc = SB_ENOMEM;
    }
  }
  for (size_t i = 0; i < s->kv.n && !rc; i++)
    rc = sb__kvs_set(&n.kv, s->kv.kv[2 * i], s->kv.kv[2 * i + 1]);
  for (size_t i = 0; i < c->n_kv && !rc; i++)
    rc = sb__kvs_set(&n.kv, c->kv[i].name, c->kv[i].value);
  if (rc) {
    sub_clear(&n);
    return rc;
  }
  sub_clear(s);
  s->filter = n.filter;
  s->f = n.f;
  s->filter_body = c->filter_body;
  s->binding = n.binding;
  s->hn = n.hn;
  s->hv = n.hv;
  s->n_headers = n.n_headers;
  s->headers_any = c->headers_any;
  s->kv = n.kv;
  snprintf(s->dead_letter, sizeof s->dead_letter, "%s", c->dead_letter);
  snprintf(s->format, sizeof s->format, "%s", c->format);
  return 0;
}

static int topic_add_sub(sb__topic_t *t, sb__sub_t *s) {
  if (t->n_subs >= SB_TOPIC_SUBS_MAX) return SB_ELIMIT;
  if (t->n_subs == t->subs_cap) {
    size_t nc = t->subs_cap ? t->subs_cap * 2 : 8;
    sb__sub_t **ns = realloc(t->subs, nc * sizeof *ns);
    if (!ns) return SB_ENOMEM;
    t->subs = ns;
    t->subs_cap = nc;
  }
  t->subs[t->n_subs++] = s;
  s->topic = t;
  return 0;
}

static int topic_insert(sb_broker_t *b, sb__topic_t *t) {
  return sb__byname_insert(&b->topics, &b->n_topics, &b->topics_cap, t);
}

static void topic_unlist(sb_broker_t *b, sb__topic_t *t) {
  sb__byname_remove(b->topics, &b->n_topics, t);
}

/* --- catalog ------------------------------------------------------------------------------ */

static int put_topic(sb_broker_t *b, const sb__topic_t *t, sb__op_t *op) {
  sb__rec_t *r = calloc(1, sizeof *r);
  if (!r) return SB_ENOMEM;
  sb__rec_num(r, "fifo", t->cfg.fifo);
  sb__rec_num(r, "created", t->created_ms);
  for (size_t i = 0; i < t->kv.n; i++)
    sb__rec_pfx(r, "x:", t->kv.kv[2 * i], t->kv.kv[2 * i + 1]);
  int rc = sb__catalog_append(b, 'o', t->name, r, op);
  free(r);
  return rc;
}

static int put_sub(sb_broker_t *b, const sb__sub_t *s, sb__op_t *op) {
  sb__rec_t *r = calloc(1, sizeof *r);
  if (!r) return SB_ENOMEM;
  sb__rec_str(r, "topic", s->topic->name);
  sb__rec_str(r, "queue", s->queue);
  sb__rec_str(r, "stream", s->stream);
  sb__rec_str(r, "filter", s->filter ? s->filter : "");
  sb__rec_num(r, "filter_body", s->filter_body);
  sb__rec_str(r, "binding", s->binding ? s->binding : "");
  sb__rec_num(r, "has_binding", s->binding != NULL);
  sb__rec_num(r, "headers_any", s->headers_any);
  sb__rec_str(r, "dead_letter", s->dead_letter);
  sb__rec_str(r, "format", s->format);
  for (size_t i = 0; i < s->n_headers; i++)
    sb__rec_pfx(r, s->hv[i] ? "h:" : "hp:", s->hn[i], s->hv[i] ? s->hv[i] : "");
  for (size_t i = 0; i < s->kv.n; i++)
    sb__rec_pfx(r, "x:", s->kv.kv[2 * i], s->kv.kv[2 * i + 1]);
  int rc = sb__catalog_append(b, 's', s->id, r, op);
  free(r);
  return rc;
}

static int drop(sb_broker_t *b, char kind, const char *name, sb__op_t *op) {
  sb__rec_t *r = calloc(1, sizeof *r);
  if (!r) return SB_ENOMEM;
  int rc = sb__catalog_append(b, kind, name, r, op);
  free(r);
  return rc;
}

/* Reads the header values of a record that start with prefix into kv pairs (arena). */
static size_t rec_pairs(const sb_journal_record_t *r, const char *prefix, sb_broker_kv_t *out,
                        size_t cap, sb_arena_t *a) {
  size_t n = 0, pl = strlen(prefix);
  uint32_t pos = 0;
  const uint8_t *nm, *v;
  uint16_t nl;
  uint32_t vl;
  while (n < cap && sb_journal_header_next(r, &pos, &nm, &nl, &v, &vl)) {
    if (nl <= pl || memcmp(nm, prefix, pl)) continue;
    out[n].name = sb_arena_strndup(a, (const char *)nm + pl, nl - pl);
    out[n].value = sb_arena_strndup(a, (const char *)v, vl);
    if (out[n].name && out[n].value) n++;
  }
  return n;
}

void sb__topic_replay(sb_broker_t *b, const sb_journal_record_t *r) {
  char name[SB_BROKER_NAME_MAX + 1];
  if (r->key_len < 2 || r->key_len > 1 + SB_BROKER_NAME_MAX) return;
  memcpy(name, r->key + 1, r->key_len - 1);
  name[r->key_len - 1] = 0;
  sb_arena_t a;
  sb_arena_init(&a);
  sb_broker_kv_t kv[SB_BROKER_KV_MAX], hv[SB_BROKER_KV_MAX];
  switch (r->key[0]) {
  case 'o': {
    sb__topic_t *t = topic_find(b, name);
    if (!t) {
      t = calloc(1, sizeof *t);
      if (!t) break;
      snprintf(t->name, sizeof t->name, "%s", name);
      if (topic_insert(b, t)) {
        free(t);
        break;
      }
    }
    t->cfg.fifo = sb__rec_getnum(r, "fifo") != 0;
    t->created_ms = sb__rec_getnum(r, "created");
    sb__kvs_free(&t->kv);
    size_t n = rec_pairs(r, "x:", kv, SB_BROKER_KV_MAX, &a);
    for (size_t i = 0; i < n; i++)
      sb__kvs_set(&t->kv, kv[i].name, kv[i].value);
    break;
  }
  case 'O': {
    sb__topic_t *t = topic_find(b, name);
    if (t) {
      topic_unlist(b, t);
      topic_free(t);
    }
    break;
  }
  case 's': {
    char topic[SB_BROKER_NAME_MAX + 1];
    sb__rec_get(r, "topic", topic, sizeof topic);
    sb__topic_t *t = topic_find(b, topic);
    if (!t) break;
    sb_sub_config_t c;
    memset(&c, 0, sizeof c);
    sb__rec_get(r, "queue", c.queue, sizeof c.queue);
    sb__rec_get(r, "stream", c.stream, sizeof c.stream);
    sb__rec_get(r, "dead_letter", c.dead_letter, sizeof c.dead_letter);
    sb__rec_get(r, "format", c.format, sizeof c.format);
    c.filter_body = sb__rec_getnum(r, "filter_body") != 0;
    c.headers_any = sb__rec_getnum(r, "headers_any") != 0;
    char *filter = malloc(SB__FILTER_MAX_BYTES + 1), binding[512];
    if (!filter) break;
    if (sb__rec_get(r, "filter", filter, SB__FILTER_MAX_BYTES + 1) && *filter) c.filter = filter;
    if (sb__rec_getnum(r, "has_binding") && sb__rec_get(r, "binding", binding, sizeof binding))
      c.binding = binding;
    size_t nh = rec_pairs(r, "h:", hv, SB_BROKER_KV_MAX, &a);
    size_t np = rec_pairs(r, "hp:", hv + nh, SB_BROKER_KV_MAX - nh, &a);
    for (size_t i = nh; i < nh + np; i++)
      hv[i].value = NULL;
    c.headers = hv;
    c.n_headers = nh + np;
    c.kv = kv;
    c.n_kv = rec_pairs(r, "x:", kv, SB_BROKER_KV_MAX, &a);
    sb__sub_t *s = sub_find(b, name);
    bool fresh = !s;
    if (fresh) {
      s = calloc(1, sizeof *s);
      if (s) {
        snprintf(s->id, sizeof s->id, "%.36s", name);
        s->kind = c.stream[0] ? SB_SUB_STREAM : SB_SUB_QUEUE;
        snprintf(s->queue, sizeof s->queue, "%s", c.queue);
        snprintf(s->stream, sizeof s->stream, "%s", c.stream);
      }
    }
    if (s && sub_apply(s, &c) == 0) {
      if (fresh && topic_add_sub(t, s)) sub_free(s);
    } else if (s && fresh) {
      sub_free(s);
    }
    free(filter);
    break;
  }
  case 'S': {
    sb__sub_t *s = sub_find(b, name);
    if (s) sub_remove(s);
    break;
  }
  default:
    break;
  }
  sb_arena_free(&a);
}

void sb__topic_compact(sb_broker_t *b) {
  for (size_t t = 0; t < b->n_topics; t++) {
    if (put_topic(b, b->topics[t], NULL)) return;
    for (size_t i = 0; i < b->topics[t]->n_subs; i++)
      if (b->topics[t]->subs[i]->kind != SB_SUB_CALLBACK && put_sub(b, b->topics[t]->subs[i], NULL))
        return;
  }
}

void sb__topic_free_all(sb_broker_t *b) {
  for (size_t t = 0; t < b->n_topics; t++)
    topic_free(b->topics[t]);
  free(b->topics);
  b->topics = NULL;
  b->n_topics = b->topics_cap = 0;
}

/* --- results ------------------------------------------------------------------------------ */

static const sb_topic_info_t *topic_info(sb__op_t *op, const sb__topic_t *t) {
  sb_topic_info_t *in = sb_arena_alloc(&op->arena, sizeof *in);
  sb_broker_kv_t *kv = sb__kvs_export(&t->kv, &op->arena);
  if (!in || !kv) return NULL;
  in->name = sb_arena_strndup(&op->arena, t->name, strlen(t->name));
  in->config = t->cfg;
  in->kv = kv;
  in->n_kv = t->kv.n;
  in->created_ms = t->created_ms;
  in->n_subs = t->n_subs;
  in->published = t->published;
  return in;
}

static const char *astr(sb__op_t *op, const char *s) {
  return sb_arena_strndup(&op->arena, s ? s : "", s ? strlen(s) : 0);
}

static int sub_info(sb__op_t *op, const sb__sub_t *s, sb_sub_info_t *in) {
  memset(in, 0, sizeof *in);
  memcpy(in->id, s->id, sizeof in->id);
  in->topic = astr(op, s->topic ? s->topic->name : "");
  in->kind = s->kind;
  in->queue = astr(op, s->queue);
  in->stream = astr(op, s->stream);
  in->filter = astr(op, s->filter);
  in->filter_body = s->filter_body;
  in->binding = astr(op, s->binding);
  in->headers_any = s->headers_any;
  in->dead_letter = astr(op, s->dead_letter);
  in->format = astr(op, s->format);
  sb_broker_kv_t *h = sb_arena_alloc(&op->arena, (s->n_headers + 1) * sizeof *h);
  if (!h) return SB_ENOMEM;
  for (size_t i = 0; i < s->n_headers; i++) {
    h[i].name = astr(op, s->hn[i]);
    h[i].value = s->hv[i] ? astr(op, s->hv[i]) : NULL;
  }
  in->headers = h;
  in->n_headers = s->n_headers;
  in->kv = sb__kvs_export(&s->kv, &op->arena);
  in->n_kv = s->kv.n;
  in->delivered = s->delivered;
  in->filtered = s->filtered;
  in->failed = s->failed;
  in->dead_lettered = s->dead_lettered;
  return in->kv && in->topic && in->queue && in->stream ? 0 : SB_ENOMEM;
}

static void result_sub(sb_broker_t *b, sb__op_t *op, const sb__sub_t *s) {
  op->subs_out = sb_arena_alloc(&op->arena, sizeof *op->subs_out);
  if (!op->subs_out || sub_info(op, s, op->subs_out)) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  op->n_subs_out = 1;
}

/* --- publish ------------------------------------------------------------------------------ */

typedef struct copy {
  sb_broker_t *b;
  sb__op_t *parent;    /* the publish */
  sb__sub_t *sub;      /* counts the copy; pending keeps it allocated */
  bool to_dlq;         /* this send is the dead-letter attempt */
  sb_broker_msg_t msg; /* the copy as sent (parent's arena) */
} copy_t;

static void publish_step_done(sb_broker_t *b, sb__op_t *op) {
  if (--op->outstanding == 0) sb__op_finish(b, op, 0);
}

static void send_copy(sb_broker_t *b, copy_t *c, const char *queue);

/* Settles copy c with status st: counts it, or retries it into the dead-letter queue. */
static void copy_settle(copy_t *c, int st) {
  sb__op_t *p = c->parent;
  sb_broker_t *b = c->b;
  sb__sub_t *s = c->sub;
  s->pending--;
  if (st == 0) {
    if (c->to_dlq)
      s->dead_lettered++;
    else
      s->delivered++;
    if (!c->to_dlq) p->count++;
  } else if (!c->to_dlq && s->dead_letter[0]) {
    c->to_dlq = true;
    s->failed++;
    s->pending++;
    send_copy(b, c, s->dead_letter);
    return; /* send_copy settles the step */
  } else {
    if (!c->to_dlq) s->failed++;
    if (p->sent[0].status == 0) p->sent[0].status = st;
  }
  if (!s->topic && !s->pending) sub_free(s);
  publish_step_done(b, p);
}

static void copy_done(void *arg, int status, const sb_broker_result_t *r) {
  copy_settle(arg, status ? status : (r->n ? r->sent[0].status : SB_EINVAL));
}

static void stream_copy_done(void *arg, int status, const sb_broker_result_t *r) {
  (void)r;
  copy_settle(arg, status);
}

/* Appends copy c to stream, keyed by the publish's routing key or else its group; always
 * ends in copy_settle. */
static void append_copy(sb_broker_t *b, copy_t *c, const char *stream) {
  sb__op_t *op = sb__op_new(SB__OP_STREAM_APPEND, stream_copy_done, c);
  if (!op) {
    copy_settle(c, SB_ENOMEM);
    return;
  }
  snprintf(op->name, sizeof op->name, "%s", stream);
  op->msgs = &c->msg; /* lives in the parent's arena, which outlives this op */
  op->n = 1;
  op->partition = -1;
  const char *key =
      c->parent->routing_key && *c->parent->routing_key ? c->parent->routing_key : c->msg.group;
  if (key && *key) {
    size_t kl = strlen(key);
    op->key_len = kl < SB_STREAM_KEY_MAX ? kl : SB_STREAM_KEY_MAX;
    if (!(op->key = (uint8_t *)sb__arena_copy(&op->arena, key, op->key_len))) {
      sb__op_free(op);
      copy_settle(c, SB_ENOMEM);
      return;
    }
  }
  sb__stream_run(b, op);
}

/* Sends copy c into queue; always ends in copy_done (directly when the queue is missing). */
static void send_copy(sb_broker_t *b, copy_t *c, const char *queue) {
  sb__queue_t *q = sb__queue_find(b, queue);
  sb_broker_result_t none;
  memset(&none, 0, sizeof none);
  if (!q) {
    copy_done(c, SB_ENOTFOUND, &none);
    return;
  }
  sb__op_t *op = sb__op_new(SB__OP_SEND, copy_done, c);
  if (!op) {
    copy_done(c, SB_ENOMEM, &none);
    return;
  }
  snprintf(op->name, sizeof op->name, "%s", queue);
  op->msgs = &c->msg; /* lives in the parent's arena, which outlives this op */
  op->n = 1;
  sb__queue_send(b, q, op);
}

static bool selected(const sb__sub_t *s, const sb_broker_msg_t *m, const char *rk) {
  if (s->binding && !sb__route_match(s->binding, rk ? rk : "")) return false;
  if (s->n_headers) {
    sb_broker_kv_t want[SB_BROKER_KV_MAX];
    size_t n = s->n_headers < SB_BROKER_KV_MAX ? s->n_headers : SB_BROKER_KV_MAX;
    for (size_t i = 0; i < n; i++)
      want[i] = (sb_broker_kv_t){s->hn[i], s->hv[i]};
    if (!sb__headers_match(want, n, s->headers_any, m->attrs, m->n_attrs)) return false;
  }
  if (s->f) {
    return s->filter_body ? sb__filter_match_body(s->f, m->body, m->body_len)
                          : sb__filter_match_attrs(s->f, m->attrs, m->n_attrs);
  }
  return true;
}

static const sb__format_t *format_find(sb_broker_t *b, const char *name, sb__format_t *out) {
  bool found = false;
  pthread_mutex_lock(&b->mu);
  for (size_t i = 0; i < b->n_formats; i++)
    if (strcmp(b->formats[i].name, name) == 0) {
      *out = b->formats[i];
      found = true;
    }
  pthread_mutex_unlock(&b->mu);
  return found ? out : NULL;
}

static void run_publish(sb_broker_t *b, sb__op_t *op) {
  sb__topic_t *t = topic_find(b, op->name);
  if (!t) {
    sb__op_finish(b, op, SB_ENOTFOUND);
    return;
  }
  sb_broker_msg_t *m = &op->msgs[0];
  if (t->cfg.fifo && !m->group) {
    sb__op_finish(b, op, SB_EINVAL);
    return;
  }
  m->delay_ms = -1;
  op->sent = sb_arena_alloc(&op->arena, sizeof *op->sent);
  if (!op->sent) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  memset(op->sent, 0, sizeof *op->sent);
  sb__make_id(op->sent[0].id);
  t->published++;
  sb_topic_message_t tm = {
      t->name,  op->sent[0].id, sb__now_ms(), m, op->routing_key ? op->routing_key : "",
      op->meta, op->n_meta};
  op->outstanding = 1;
  /* Copies may complete synchronously (a missing queue) and subscriptions may not change
   * meanwhile, but a callback may unsubscribe: walk a snapshot. */
  size_t n = t->n_subs;
  sb__sub_t **subs = sb_arena_alloc(&op->arena, (n + 1) * sizeof *subs);
  if (!subs) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  if (n) memcpy(subs, t->subs, n * sizeof *subs); /* t->subs is NULL without subscribers */
  for (size_t i = 0; i < n; i++)
    subs[i]->pending++;
  for (size_t i = 0; i < n; i++) {
    sb__sub_t *s = subs[i];
    s->pending--;
    if (!s->topic) {
      if (!s->pending) sub_free(s);
      continue;
    }
    if (!selected(s, m, op->routing_key)) {
      s->filtered++;
      continue;
    }
    if (s->kind == SB_SUB_CALLBACK) {
      s->fn(s->ud, &tm, s->id);
      s->delivered++;
      op->count++;
      continue;
    }
    copy_t *c = sb_arena_alloc(&op->arena, sizeof *c);
    if (!c) {
      s->failed++;
      continue;
    }
    *c = (copy_t){b, op, s, false, *m};
    sb__format_t fmt;
    if (s->format[0] && format_find(b, s->format, &fmt)) {
      sb_sub_info_t info;
      char *body = NULL;
      size_t body_len = 0;
      bool keep = false;
      if (sub_info(op, s, &info) || fmt.fn(fmt.ud, &tm, &info, &body, &body_len, &keep)) {
        free(body);
        s->failed++;
        continue;
      }
      c->msg.body = sb__arena_copy(&op->arena, body ? body : "", body_len);
      c->msg.body_len = body_len;
      free(body);
      if (!c->msg.body) {
        s->failed++;
        continue;
      }
      if (!keep) {
        c->msg.attrs = NULL;
        c->msg.n_attrs = 0;
      }
    }
    s->pending++;
    op->outstanding++;
    if (s->kind == SB_SUB_STREAM)
      append_copy(b, c, s->stream);
    else
      send_copy(b, c, s->queue);
  }
  publish_step_done(b, op);
}

/* --- running topic operations ------------------------------------------------------------- */

static void run_create(sb_broker_t *b, sb__op_t *op) {
  sb__topic_t *t = topic_find(b, op->name);
  if (t) {
    if (t->cfg.fifo != op->tcfg.fifo) {
      sb__op_finish(b, op, SB_ESTATE);
      return;
    }
    op->topic_info = topic_info(op, t);
    sb__op_finish(b, op, 0);
    return;
  }
  t = calloc(1, sizeof *t);
  if (!t) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  snprintf(t->name, sizeof t->name, "%s", op->name);
  t->cfg = op->tcfg;
  t->created_ms = sb__now_ms();
  int rc = 0;
  for (size_t i = 0; i < op->n_kv && !rc; i++)
    rc = sb__kvs_set(&t->kv, op->kv[i].name, op->kv[i].value);
  if (!rc) rc = topic_insert(b, t);
  if (rc) {
    topic_free(t);
    sb__op_finish(b, op, rc);
    return;
  }
  op->topic_info = topic_info(op, t);
  if ((rc = put_topic(b, t, op))) {
    topic_unlist(b, t);
    topic_free(t);
    sb__op_finish(b, op, rc);
  }
}

static void run_subscribe(sb_broker_t *b, sb__topic_t *t, sb__op_t *op) {
  sb_sub_config_t *c = &op->sub;
  bool callback = op->deliver != NULL, to_stream = !callback && c->stream[0];
  if (to_stream && !sb__stream_exists(b, c->stream)) {
    sb__op_finish(b, op, SB_ENOTFOUND);
    return;
  }
  if (!callback && !to_stream) {
    sb__queue_t *q = sb__queue_find(b, c->queue);
    if (!q) {
      sb__op_finish(b, op, SB_ENOTFOUND);
      return;
    }
    if (q->cfg.fifo != t->cfg.fifo) {
      sb__op_finish(b, op, SB_EINVAL);
      return;
    }
  }
  sb__sub_t *s = calloc(1, sizeof *s);
  if (!s) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  sb__make_id(s->id);
  s->kind = callback ? SB_SUB_CALLBACK : to_stream ? SB_SUB_STREAM : SB_SUB_QUEUE;
  if (to_stream)
    snprintf(s->stream, sizeof s->stream, "%s", c->stream);
  else if (!callback)
    snprintf(s->queue, sizeof s->queue, "%s", c->queue);
  s->fn = op->deliver;
  s->ud = op->deliver_ud;
  int rc = sub_apply(s, c);
  if (!rc) rc = topic_add_sub(t, s);
  if (rc) {
    sub_free(s);
    sb__op_finish(b, op, rc);
    return;
  }
  result_sub(b, op, s);
  if (callback) {
    sb__op_finish(b, op, 0);
    return;
  }
  if ((rc = put_sub(b, s, op))) {
    sub_remove(s);
    op->n_subs_out = 0;
    sb__op_finish(b, op, rc);
  }
}

static void run_subs(sb_broker_t *b, sb__op_t *op) {
  size_t n = 0;
  for (size_t t = 0; t < b->n_topics; t++)
    n += b->topics[t]->n_subs;
  op->subs_out = sb_arena_alloc(&op->arena, (n + 1) * sizeof *op->subs_out);
  if (!op->subs_out) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  for (size_t t = 0; t < b->n_topics; t++) {
    sb__topic_t *tp = b->topics[t];
    if (op->name[0] && strcmp(tp->name, op->name) != 0) continue;
    for (size_t i = 0; i < tp->n_subs; i++) {
      if (op->has_name2 && strcmp(tp->subs[i]->id, op->name2) != 0) continue;
      if (sub_info(op, tp->subs[i], &op->subs_out[op->n_subs_out])) {
        sb__op_finish(b, op, SB_ENOMEM);
        return;
      }
      op->n_subs_out++;
    }
  }
  sb__op_finish(b, op, op->has_name2 && !op->n_subs_out ? SB_ENOTFOUND : 0);
}

void sb__topic_run(sb_broker_t *b, sb__op_t *op) {
  if (op->kind == SB__OP_TOPIC_CREATE) {
    run_create(b, op);
    return;
  }
  if (op->kind == SB__OP_TOPIC_LIST) {
    sb__run_list(b, op, b->topics, b->n_topics);
    return;
  }
  if (op->kind == SB__OP_SUBS) {
    run_subs(b, op);
    return;
  }
  if (op->kind == SB__OP_SUB_UPDATE || op->kind == SB__OP_UNSUBSCRIBE) {
    sb__sub_t *s = sub_find(b, op->name);
    if (!s) {
      sb__op_finish(b, op, SB_ENOTFOUND);
      return;
    }
    int rc;
    if (op->kind == SB__OP_UNSUBSCRIBE) {
      bool durable = s->kind != SB_SUB_CALLBACK;
      char id[SB_BROKER_ID_LEN + 1];
      memcpy(id, s->id, sizeof id);
      sub_remove(s);
      rc = durable ? drop(b, 'S', id, op) : 0;
      if (rc || !durable) sb__op_finish(b, op, rc);
      return;
    }
    rc = sub_apply(s, &op->sub);
    if (rc) {
      sb__op_finish(b, op, rc);
      return;
    }
    result_sub(b, op, s);
    bool durable = s->kind != SB_SUB_CALLBACK;
    rc = durable ? put_sub(b, s, op) : 0;
    if (rc || !durable) sb__op_finish(b, op, rc);
    return;
  }
  sb__topic_t *t = topic_find(b, op->name);
  if (!t) {
    sb__op_finish(b, op, SB_ENOTFOUND);
    return;
  }
  int rc = 0;
  switch (op->kind) {
  case SB__OP_TOPIC_UPDATE:
    for (size_t i = 0; i < op->n_kv && !rc; i++)
      rc = sb__kvs_set(&t->kv, op->kv[i].name, op->kv[i].value);
    if (!rc) op->topic_info = topic_info(op, t);
    if (!rc) rc = put_topic(b, t, op);
    if (rc) sb__op_finish(b, op, rc);
    break;
  case SB__OP_TOPIC_DELETE:
    rc = drop(b, 'O', t->name, op);
    if (rc) {
      sb__op_finish(b, op, rc);
      break;
    }
    topic_unlist(b, t);
    topic_free(t);
    break;
  case SB__OP_TOPIC_GET:
    op->topic_info = topic_info(op, t);
    sb__op_finish(b, op, op->topic_info ? 0 : SB_ENOMEM);
    break;
  case SB__OP_SUBSCRIBE:
    run_subscribe(b, t, op);
    break;
  case SB__OP_PUBLISH:
    run_publish(b, op);
    break;
  default:
    sb__op_finish(b, op, SB_EINVAL);
  }
}

/* --- public entry points ------------------------------------------------------------------ */

int sb_topic_set_format(sb_broker_t *b, const char *name, sb_topic_format_fn fn, void *ud) {
  if (!b || !name || !*name || strlen(name) >= 32 || !fn) return SB_EINVAL;
  pthread_mutex_lock(&b->mu);
  int rc = 0;
  size_t i = 0;
  while (i < b->n_formats && strcmp(b->formats[i].name, name) != 0)
    i++;
  if (i == b->n_formats) {
    if (b->n_formats == SB__FORMATS_MAX)
      rc = SB_ELIMIT;
    else
      b->n_formats++;
  }
  if (!rc) {
    snprintf(b->formats[i].name, sizeof b->formats[i].name, "%s", name);
    b->formats[i].fn = fn;
    b->formats[i].ud = ud;
  }
  pthread_mutex_unlock(&b->mu);
  return rc;
}

int sb_topic_check_filter(const char *policy, size_t len, const char **why) {
  sb__filter_t *f = NULL;
  const char *w = NULL;
  int rc = sb__filter_compile(policy, len, &f, &w);
  sb__filter_free(f);
  if (why) *why = w;
  return rc;
}

int sb_topic_create(sb_broker_t *b, const char *name, const sb_topic_config_t *c,
                    const sb_broker_kv_t *kv, size_t n_kv, sb_broker_cb cb, void *arg) {
  bool fifo = c && c->fifo;
  if (sb_broker_check_name(name, fifo)) return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_TOPIC_CREATE, name, cb, arg, &op);
  if (rc) return rc;
  op->tcfg.fifo = fifo;
  if ((rc = sb__copy_kv(op, kv, n_kv))) {
    sb__op_free(op);
    return rc;
  }
  return sb__post(b, op);
}

int sb_topic_update(sb_broker_t *b, const char *name, const sb_broker_kv_t *kv, size_t n_kv,
                    sb_broker_cb cb, void *arg) {
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_TOPIC_UPDATE, name, cb, arg, &op);
  if (rc) return rc;
  if ((rc = sb__copy_kv(op, kv, n_kv))) {
    sb__op_free(op);
    return rc;
  }
  return sb__post(b, op);
}

int sb_topic_delete(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg) {
  return sb__simple_op(b, SB__OP_TOPIC_DELETE, name, cb, arg);
}
int sb_topic_get(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg) {
  return sb__simple_op(b, SB__OP_TOPIC_GET, name, cb, arg);
}
int sb_topic_unsubscribe(sb_broker_t *b, const char *sub_id, sb_broker_cb cb, void *arg) {
  return sb__simple_op(b, SB__OP_UNSUBSCRIBE, sub_id, cb, arg);
}

int sb_topic_list(sb_broker_t *b, const char *prefix, const char *after, size_t max,
                  sb_broker_cb cb, void *arg) {
  return sb__list_op(b, SB__OP_TOPIC_LIST, prefix, after, max, cb, arg);
}

/* Copies c into op->sub (arena). */
static int copy_sub(sb__op_t *op, const sb_sub_config_t *c) {
  if (!c) return SB_EINVAL;
  if (c->filter) {
    const char *why;
    if (sb_topic_check_filter(c->filter, strlen(c->filter), &why)) return SB_EINVAL;
  }
  if ((c->binding && strlen(c->binding) > 255) || c->n_headers > SB_BROKER_KV_MAX ||
      (c->n_headers && !c->headers) || memchr(c->format, 0, sizeof c->format) == NULL)
    return SB_EINVAL;
  op->sub = *c;
  sb_arena_t *a = &op->arena;
  op->sub.filter = c->filter ? sb_arena_strndup(a, c->filter, strlen(c->filter)) : NULL;
  op->sub.binding = c->binding ? sb_arena_strndup(a, c->binding, strlen(c->binding)) : NULL;
  if ((c->filter && !op->sub.filter) || (c->binding && !op->sub.binding)) return SB_ENOMEM;
  if (c->n_headers) {
    sb_broker_kv_t *h = sb_arena_alloc(a, c->n_headers * sizeof *h);
    if (!h) return SB_ENOMEM;
    for (size_t i = 0; i < c->n_headers; i++) {
      if (!c->headers[i].name || !*c->headers[i].name) return SB_EINVAL;
      h[i].name = sb_arena_strndup(a, c->headers[i].name, strlen(c->headers[i].name));
      h[i].value = c->headers[i].value
                       ? sb_arena_strndup(a, c->headers[i].value, strlen(c->headers[i].value))
                       : NULL;
    }
    op->sub.headers = h;
  }
  int rc = sb__copy_kv(op, c->kv, c->n_kv);
  op->sub.kv = op->kv;
  op->sub.n_kv = op->n_kv;
  return rc;
}

static int sub_op(sb_broker_t *b, sb__op_kind_t kind, const char *name, const sb_sub_config_t *c,
                  sb_topic_deliver_fn fn, void *ud, sb_broker_cb cb, void *arg) {
  sb__op_t *op;
  int rc = sb__name_op(b, kind, name, cb, arg, &op);
  if (rc) return rc;
  if ((rc = copy_sub(op, c))) {
    sb__op_free(op);
    return rc;
  }
  op->deliver = fn;
  op->deliver_ud = ud;
  return sb__post(b, op);
}

int sb_topic_subscribe(sb_broker_t *b, const char *topic, const sb_sub_config_t *c, sb_broker_cb cb,
                       void *arg) {
  if (!c || !memchr(c->queue, 0, sizeof c->queue) || !memchr(c->stream, 0, sizeof c->stream))
    return SB_EINVAL;
  if (c->stream[0] ? c->queue[0] || sb_broker_check_name(c->stream, false)
                   : sb_broker_check_name(c->queue, false) && sb_broker_check_name(c->queue, true))
    return SB_EINVAL;
  return sub_op(b, SB__OP_SUBSCRIBE, topic, c, NULL, NULL, cb, arg);
}

int sb_topic_subscribe_callback(sb_broker_t *b, const char *topic, const sb_sub_config_t *c,
                                sb_topic_deliver_fn fn, void *ud, sb_broker_cb cb, void *arg) {
  if (!fn) return SB_EINVAL;
  return sub_op(b, SB__OP_SUBSCRIBE, topic, c, fn, ud, cb, arg);
}

int sb_topic_sub_update(sb_broker_t *b, const char *sub_id, const sb_sub_config_t *c,
                        sb_broker_cb cb, void *arg) {
  return sub_op(b, SB__OP_SUB_UPDATE, sub_id, c, NULL, NULL, cb, arg);
}

int sb_topic_subs(sb_broker_t *b, const char *topic, const char *sub_id, sb_broker_cb cb,
                  void *arg) {
  if (sub_id && strlen(sub_id) > SB_BROKER_NAME_MAX) return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_SUBS, topic ? topic : "", cb, arg, &op);
  if (rc) return rc;
  if (sub_id) {
    snprintf(op->name2, sizeof op->name2, "%s", sub_id);
    op->has_name2 = true;
  }
  return sb__post(b, op);
}

int sb_topic_publish(sb_broker_t *b, const char *topic, const sb_broker_msg_t *m,
                     const char *routing_key, const sb_broker_kv_t *meta, size_t n_meta,
                     sb_broker_cb cb, void *arg) {
  if (!m || sb__check_msg(m) || (routing_key && strlen(routing_key) > 255) ||
      n_meta > SB_BROKER_KV_MAX)
    return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_PUBLISH, topic, cb, arg, &op);
  if (rc) return rc;
  op->msgs = sb_arena_alloc(&op->arena, sizeof *op->msgs);
  rc = op->msgs ? sb__copy_msg(&op->arena, m, op->msgs) : SB_ENOMEM;
  if (!rc && routing_key) {
    op->routing_key = sb_arena_strndup(&op->arena, routing_key, strlen(routing_key));
    if (!op->routing_key) rc = SB_ENOMEM;
  }
  if (!rc && n_meta) {
    op->meta = sb_arena_alloc(&op->arena, n_meta * sizeof *op->meta);
    if (!op->meta) rc = SB_ENOMEM;
    for (size_t i = 0; i < n_meta && !rc; i++) {
      if (!meta[i].name || !meta[i].value) {
        rc = SB_EINVAL;
        break;
      }
      op->meta[i].name = sb_arena_strndup(&op->arena, meta[i].name, strlen(meta[i].name));
      op->meta[i].value = sb_arena_strndup(&op->arena, meta[i].value, strlen(meta[i].value));
      if (!op->meta[i].name || !op->meta[i].value) rc = SB_ENOMEM;
    }
    op->n_meta = n_meta;
  }
  if (rc) {
    sb__op_free(op);
    return rc;
  }
  op->n = 1;
  return sb__post(b, op);
}
