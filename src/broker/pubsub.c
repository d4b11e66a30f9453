/*
 * The pub/sub engine: ephemeral channels and glob patterns (contract in broker.h, "pub/sub").
 *
 * The registry (channels -> subscribers, patterns) lives on the broker thread and changes only
 * through operations posted to it, so a subscribe followed by a publish from one thread is
 * ordered. Delivery copies each message into the subscriber's own bounded buffer, the only
 * state shared with the subscriber's thread (guarded by the subscriber's mutex).
 *
 * Lifetime: a subscriber has two references, its owner's (released by sb_pubsub_close) and
 * the registry's (released on the broker thread once it is unlisted); the last one frees it.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "core/codec.h"
#include "switchboard/error.h"

struct sb_pubsub_sub {
  sb_broker_t *b;
  pthread_mutex_t mu;         /* guards q, head, n, cap, bytes, closed, dropped */
  sb_pubsub_msg_t **q;        /* ring of undelivered messages; owned */
  size_t head, n, cap;        /* ring state; n <= cap */
  size_t bytes, max_bytes;    /* buffered bytes and their bound */
  bool closed;                /* the owner closed it: deliver nothing, notify no more */
  bool dropped;               /* overflowed: unsubscribed from everything */
  sb_pubsub_notify_fn notify; /* borrowed */
  void *ud;                   /* borrowed */
  atomic_int refs;            /* owner + registry */
  /* broker thread only */
  char **names; /* its subscriptions, channels and patterns; owned */
  bool *is_pat; /* parallel to names */
  size_t n_names, cap_names;
};

typedef struct chan {
  struct chan *next;      /* hash chain */
  sb_pubsub_sub_t **subs; /* owned array */
  size_t n, cap;
  char name[]; /* NUL-terminated */
} chan_t;

typedef struct pat {
  char *pat; /* owned */
  size_t len;
  sb_pubsub_sub_t *sub;
} pat_t;

struct sb__pubsub {
  sb_pubsub_sub_t **all; /* every registered subscriber (the registry's references) */
  size_t n_all, cap_all;
  chan_t **buckets; /* chained hash of channels with subscribers; owned */
  size_t n_buckets, n_chans;
  pat_t *pats; /* pattern subscriptions; owned */
  size_t n_pats, cap_pats;
  atomic_ullong published, delivered, dropped, subscribers, channels, patterns;
};

/* --- glob --------------------------------------------------------------------------------- */

bool sb_glob_match(const char *p, size_t pl, const char *s, size_t sl) {
  size_t pi = 0, si = 0, star_p = (size_t)-1, star_s = 0;
  while (si < sl) {
    if (pi < pl) {
      char c = p[pi];
      if (c == '*') {
        star_p = pi++;
        star_s = si;
        continue;
      }
      if (c == '?') {
        pi++;
        si++;
        continue;
      }
      if (c == '[') {
        size_t j = pi + 1;
        bool neg = j < pl && p[j] == '^';
        if (neg) j++;
        bool hit = false, first = true;
        while (j < pl && (p[j] != ']' || first)) {
          first = false;
          if (p[j] == '\\' && j + 1 < pl) {
            hit |= p[j + 1] == s[si];
            j += 2;
          } else if (j + 2 < pl && p[j + 1] == '-' && p[j + 2] != ']') {
            unsigned char lo = (unsigned char)p[j], hi = (unsigned char)p[j + 2];
            if (lo > hi) {
              unsigned char t = lo;
              lo = hi;
              hi = t;
            }
            hit |= (unsigned char)s[si] >= lo && (unsigned char)s[si] <= hi;
            j += 3;
          } else {
            hit |= p[j] == s[si];
            j++;
          }
        }
        if (j < pl && hit != neg) {
          pi = j + 1;
          si++;
          continue;
        }
      } else {
        if (c == '\\' && pi + 1 < pl) c = p[++pi];
        if (c == s[si]) {
          pi++;
          si++;
          continue;
        }
      }
    }
    if (star_p == (size_t)-1) return false;
    pi = star_p + 1;
    si = ++star_s;
  }
  while (pi < pl && p[pi] == '*')
    pi++;
  return pi == pl;
}

/* --- subscribers -------------------------------------------------------------------------- */

static void sub_unref(sb_pubsub_sub_t *s) {
  if (atomic_fetch_sub(&s->refs, 1) != 1) return;
  for (size_t i = 0; i < s->n; i++)
    free(s->q[(s->head + i) % s->cap]);
  free(s->q);
  for (size_t i = 0; i < s->n_names; i++)
    free(s->names[i]);
  free(s->names);
  free(s->is_pat);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int sb__pubsub_init(sb_broker_t *b) {
  b->ps = calloc(1, sizeof *b->ps);
  if (!b->ps) return SB_ENOMEM;
  b->ps->n_buckets = 64;
  b->ps->buckets = calloc(b->ps->n_buckets, sizeof *b->ps->buckets);
  if (!b->ps->buckets) {
    free(b->ps);
    b->ps = NULL;
    return SB_ENOMEM;
  }
  return 0;
}

static chan_t **chan_slot(sb__pubsub_t *ps, const char *name) {
  chan_t **pp = &ps->buckets[sb_fnv1a(SB_FNV_SEED, name, strlen(name)) & (ps->n_buckets - 1)];
  while (*pp && strcmp((*pp)->name, name) != 0)
    pp = &(*pp)->next;
  return pp;
}

static void grow_buckets(sb__pubsub_t *ps) {
  if (ps->n_chans < ps->n_buckets) return;
  size_t nb = ps->n_buckets * 2;
  chan_t **nbk = calloc(nb, sizeof *nbk);
  if (!nbk) return; /* longer chains, still correct */
  for (size_t i = 0; i < ps->n_buckets; i++)
    for (chan_t *c = ps->buckets[i], *n; c; c = n) {
      n = c->next;
      size_t h = sb_fnv1a(SB_FNV_SEED, c->name, strlen(c->name)) & (nb - 1);
      c->next = nbk[h];
      nbk[h] = c;
    }
  free(ps->buckets);
  ps->buckets = nbk;
  ps->n_buckets = nb;
}

static bool has_name(const sb_pubsub_sub_t *s, const char *name, bool pat) {
  for (size_t i = 0; i < s->n_names; i++)
    if (s->is_pat[i] == pat && strcmp(s->names[i], name) == 0) return true;
  return false;
}

static int do_subscribe(sb_broker_t *b, sb_pubsub_sub_t *s, const char *name, bool pat) {
  sb__pubsub_t *ps = b->ps;
  if (has_name(s, name, pat)) return 0;
  if (s->n_names == s->cap_names) {
    size_t nc = s->cap_names ? s->cap_names * 2 : 4;
    char **nn = realloc(s->names, nc * sizeof *nn);
    if (!nn) return SB_ENOMEM;
    s->names = nn;
    bool *np = realloc(s->is_pat, nc * sizeof *np);
    if (!np) return SB_ENOMEM;
    s->is_pat = np;
    s->cap_names = nc;
  }
  char *copy = strdup(name);
  if (!copy) return SB_ENOMEM;
  if (pat) {
    if (ps->n_pats == ps->cap_pats) {
      size_t nc = ps->cap_pats ? ps->cap_pats * 2 : 16;
      pat_t *np = realloc(ps->pats, nc * sizeof *np);
      if (!np) {
        free(copy);
        return SB_ENOMEM;
      }
      ps->pats = np;
      ps->cap_pats = nc;
    }
    char *pc = strdup(name);
    if (!pc) {
      free(copy);
      return SB_ENOMEM;
    }
    ps->pats[ps->n_pats++] = (pat_t){pc, strlen(pc), s};
    atomic_fetch_add(&ps->patterns, 1);
  } else {
    chan_t **pp = chan_slot(ps, name);
    if (!*pp) {
      size_t nl = strlen(name);
      chan_t *c = calloc(1, sizeof *c + nl + 1);
      if (!c) {
        free(copy);
        return SB_ENOMEM;
      }
      memcpy(c->name, name, nl + 1);
      *pp = c;
      ps->n_chans++;
      atomic_fetch_add(&ps->channels, 1);
    }
    chan_t *c = *pp;
    if (c->n == c->cap) {
      size_t nc = c->cap ? c->cap * 2 : 4;
      sb_pubsub_sub_t **ns = realloc(c->subs, nc * sizeof *ns);
      if (!ns) {
        free(copy);
        return SB_ENOMEM;
      }
      c->subs = ns;
      c->cap = nc;
    }
    c->subs[c->n++] = s;
    grow_buckets(ps);
  }
  s->names[s->n_names] = copy;
  s->is_pat[s->n_names++] = pat;
  return 0;
}

static void do_unsubscribe_one(sb__pubsub_t *ps, sb_pubsub_sub_t *s, const char *name, bool pat) {
  if (pat) {
    for (size_t i = 0; i < ps->n_pats; i++)
      if (ps->pats[i].sub == s && strcmp(ps->pats[i].pat, name) == 0) {
        free(ps->pats[i].pat);
        ps->pats[i] = ps->pats[--ps->n_pats];
        atomic_fetch_sub(&ps->patterns, 1);
        break;
      }
    return;
  }
  chan_t **pp = chan_slot(ps, name);
  chan_t *c = *pp;
  if (!c) return;
  for (size_t i = 0; i < c->n; i++)
    if (c->subs[i] == s) {
      c->subs[i] = c->subs[--c->n];
      break;
    }
  if (!c->n) {
    *pp = c->next;
    free(c->subs);
    free(c);
    ps->n_chans--;
    atomic_fetch_sub(&ps->channels, 1);
  }
}

/* Removes name (NULL: every name of that kind) from s's subscriptions. */
static void do_unsubscribe(sb_broker_t *b, sb_pubsub_sub_t *s, const char *name, bool pat) {
  sb__pubsub_t *ps = b->ps;
  if (!ps) return;
  for (size_t i = 0; i < s->n_names;) {
    if (s->is_pat[i] != pat || (name && strcmp(s->names[i], name) != 0)) {
      i++;
      continue;
    }
    do_unsubscribe_one(ps, s, s->names[i], pat);
    free(s->names[i]);
    s->names[i] = s->names[--s->n_names];
    s->is_pat[i] = s->is_pat[s->n_names];
  }
}

/* Copies a message into s's buffer; returns false when s overflowed and must be dropped. */
static bool deliver(sb__pubsub_t *ps, sb_pubsub_sub_t *s, const char *chan, const char *pat,
                    const void *data, size_t len) {
  size_t cl = strlen(chan), pl = pat ? strlen(pat) : 0;
  size_t size = sizeof(sb_pubsub_msg_t) + cl + 1 + (pat ? pl + 1 : 0) + len;
  pthread_mutex_lock(&s->mu);
  bool ok = true, wake = false;
  if (s->closed || s->dropped) {
    pthread_mutex_unlock(&s->mu);
    return true;
  }
  if (s->bytes + size > s->max_bytes) {
    s->dropped = true;
    for (size_t i = 0; i < s->n; i++)
      free(s->q[(s->head + i) % s->cap]);
    s->n = s->head = s->bytes = 0;
    ok = false;
    wake = true;
  } else {
    if (s->n == s->cap) {
      size_t nc = s->cap ? s->cap * 2 : 16;
      sb_pubsub_msg_t **nq = malloc(nc * sizeof *nq);
      if (nq) {
        for (size_t i = 0; i < s->n; i++)
          nq[i] = s->q[(s->head + i) % s->cap];
        free(s->q);
        s->q = nq;
        s->head = 0;
        s->cap = nc;
      }
    }
    sb_pubsub_msg_t *m = s->n < s->cap ? malloc(size) : NULL;
    if (m) {
      char *p = (char *)(m + 1);
      memcpy(p, chan, cl + 1);
      m->channel = p;
      p += cl + 1;
      m->pattern = NULL;
      if (pat) {
        memcpy(p, pat, pl + 1);
        m->pattern = p;
        p += pl + 1;
      }
      if (len) memcpy(p, data, len);
      m->data = (const uint8_t *)p;
      m->len = len;
      wake = s->n == 0;
      s->q[(s->head + s->n++) % s->cap] = m;
      s->bytes += size;
      atomic_fetch_add(&ps->delivered, 1);
    }
  }
  if (wake) s->notify(s->ud);
  pthread_mutex_unlock(&s->mu);
  return ok;
}

static void drop_sub(sb_broker_t *b, sb_pubsub_sub_t *s) {
  do_unsubscribe(b, s, NULL, false);
  do_unsubscribe(b, s, NULL, true);
  atomic_fetch_add(&b->ps->dropped, 1);
}

static void do_publish(sb_broker_t *b, sb__op_t *op) {
  sb__pubsub_t *ps = b->ps;
  const char *chan = op->attr_name;
  const sb_broker_msg_t *m = &op->msgs[0];
  atomic_fetch_add(&ps->published, 1);
  /* Overflowing subscribers are dropped after the walk: dropping edits the lists walked. */
  sb_pubsub_sub_t *drop[64];
  size_t n_drop = 0;
  chan_t *c = *chan_slot(ps, chan);
  for (size_t i = 0; c && i < c->n; i++) {
    op->count++;
    if (!deliver(ps, c->subs[i], chan, NULL, m->body, m->body_len) && n_drop < 64)
      drop[n_drop++] = c->subs[i];
  }
  size_t cl = strlen(chan);
  for (size_t i = 0; i < ps->n_pats; i++) {
    pat_t *p = &ps->pats[i];
    if (!sb_glob_match(p->pat, p->len, chan, cl)) continue;
    op->count++;
    if (!deliver(ps, p->sub, chan, p->pat, m->body, m->body_len) && n_drop < 64)
      drop[n_drop++] = p->sub;
  }
  for (size_t i = 0; i < n_drop; i++)
    if (drop[i]->n_names) drop_sub(b, drop[i]);
  sb__op_finish(b, op, 0);
}

void sb__pubsub_run(sb_broker_t *b, sb__op_t *op) {
  sb_pubsub_sub_t *s = op->ps;
  switch (op->kind) {
  case SB__OP_PS_PUBLISH:
    do_publish(b, op);
    return;
  case SB__OP_PS_OPEN: {
    sb__pubsub_t *ps = b->ps;
    if (ps->n_all == ps->cap_all) {
      size_t nc = ps->cap_all ? ps->cap_all * 2 : 16;
      sb_pubsub_sub_t **na = realloc(ps->all, nc * sizeof *na);
      if (!na) {
        /* Unregistered: it can never be reached, so it can be let go at once. */
        pthread_mutex_lock(&s->mu);
        s->dropped = true;
        pthread_mutex_unlock(&s->mu);
        sub_unref(s);
        break;
      }
      ps->all = na;
      ps->cap_all = nc;
    }
    ps->all[ps->n_all++] = s;
    atomic_fetch_add(&ps->subscribers, 1);
    break;
  }
  case SB__OP_PS_SUBSCRIBE:
    /* A subscribe that fails for memory leaves the subscriber as it was; the front-end
     * already confirmed it, as Redis would have, so the only honest outcome is a drop. */
    if (!s->dropped && do_subscribe(b, s, op->attr_name, op->has_name2)) {
      pthread_mutex_lock(&s->mu);
      s->dropped = true;
      s->notify(s->ud);
      pthread_mutex_unlock(&s->mu);
      drop_sub(b, s);
    }
    break;
  case SB__OP_PS_UNSUBSCRIBE:
    do_unsubscribe(b, s, op->attr_name, op->has_name2);
    break;
  case SB__OP_PS_CLOSE: {
    sb__pubsub_t *ps = b->ps;
    do_unsubscribe(b, s, NULL, false);
    do_unsubscribe(b, s, NULL, true);
    for (size_t i = 0; i < ps->n_all; i++)
      if (ps->all[i] == s) {
        ps->all[i] = ps->all[--ps->n_all];
        atomic_fetch_sub(&ps->subscribers, 1);
        sub_unref(s); /* the registry's reference */
        break;
      }
    break;
  }
  default:
    break;
  }
  sb__op_free(op);
}

void sb__pubsub_free_all(sb_broker_t *b) {
  sb__pubsub_t *ps = b->ps;
  if (!ps) return;
  for (size_t i = 0; i < ps->n_buckets; i++)
    for (chan_t *c = ps->buckets[i], *n; c; c = n) {
      n = c->next;
      free(c->subs);
      free(c);
    }
  for (size_t i = 0; i < ps->n_pats; i++)
    free(ps->pats[i].pat);
  free(ps->pats);
  free(ps->buckets);
  /* Subscribers still open keep their owner's reference; the owner must close them before
   * sb_broker_close returns to it (broker.h). */
  for (size_t i = 0; i < ps->n_all; i++) {
    sb_pubsub_sub_t *s = ps->all[i];
    for (size_t k = 0; k < s->n_names; k++)
      free(s->names[k]);
    s->n_names = 0;
    sub_unref(s);
  }
  free(ps->all);
  free(ps);
  b->ps = NULL;
}

/* --- public entry points ------------------------------------------------------------------ */

static int ps_post(sb_broker_t *b, sb__op_kind_t kind, sb_pubsub_sub_t *s, const char *name,
                   bool pat) {
  if (name && (!*name || strlen(name) > SB_PUBSUB_NAME_MAX)) return SB_EINVAL;
  sb__op_t *op = sb__op_new(kind, NULL, NULL);
  if (!op) return SB_ENOMEM;
  op->ps = s;
  op->has_name2 = pat;
  if (name && !(op->attr_name = sb_arena_strndup(&op->arena, name, strlen(name)))) {
    sb__op_free(op);
    return SB_ENOMEM;
  }
  return sb__post(b, op);
}

int sb_pubsub_open(sb_broker_t *b, size_t max_bytes, sb_pubsub_notify_fn notify, void *ud,
                   sb_pubsub_sub_t **out) {
  if (!b || !notify || max_bytes < 64) return SB_EINVAL;
  sb_pubsub_sub_t *s = calloc(1, sizeof *s);
  if (!s) return SB_ENOMEM;
  s->b = b;
  pthread_mutex_init(&s->mu, NULL);
  s->max_bytes = max_bytes;
  s->notify = notify;
  s->ud = ud;
  atomic_init(&s->refs, 2);
  int rc = ps_post(b, SB__OP_PS_OPEN, s, NULL, false);
  if (rc) {
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int sb_pubsub_subscribe(sb_pubsub_sub_t *s, const char *name, bool pattern) {
  if (!s || !name) return SB_EINVAL;
  if (sb_pubsub_dropped(s)) return SB_ESTATE;
  return ps_post(s->b, SB__OP_PS_SUBSCRIBE, s, name, pattern);
}

int sb_pubsub_unsubscribe(sb_pubsub_sub_t *s, const char *name, bool pattern) {
  if (!s) return SB_EINVAL;
  return ps_post(s->b, SB__OP_PS_UNSUBSCRIBE, s, name, pattern);
}

int sb_pubsub_publish(sb_broker_t *b, const char *channel, const void *data, size_t len,
                      sb_broker_cb cb, void *arg) {
  if (!b || !channel || !*channel || strlen(channel) > SB_PUBSUB_NAME_MAX ||
      len > SB_BROKER_MESSAGE_MAX || (len && !data))
    return SB_EINVAL;
  sb__op_t *op = sb__op_new(SB__OP_PS_PUBLISH, cb, arg);
  if (!op) return SB_ENOMEM;
  op->attr_name = sb_arena_strndup(&op->arena, channel, strlen(channel));
  op->msgs = sb_arena_alloc(&op->arena, sizeof *op->msgs);
  if (!op->attr_name || !op->msgs) {
    sb__op_free(op);
    return SB_ENOMEM;
  }
  memset(op->msgs, 0, sizeof *op->msgs);
  op->msgs->body = sb__arena_copy(&op->arena, data ? data : "", len);
  op->msgs->body_len = len;
  if (!op->msgs->body) {
    sb__op_free(op);
    return SB_ENOMEM;
  }
  return sb__post(b, op);
}

size_t sb_pubsub_take(sb_pubsub_sub_t *s, sb_pubsub_msg_t **out, size_t max) {
  pthread_mutex_lock(&s->mu);
  size_t k = 0;
  while (k < max && s->n) {
    sb_pubsub_msg_t *m = s->q[s->head];
    s->head = (s->head + 1) % s->cap;
    s->n--;
    s->bytes -=
        sizeof *m + strlen(m->channel) + 1 + (m->pattern ? strlen(m->pattern) + 1 : 0) + m->len;
    out[k++] = m;
  }
  pthread_mutex_unlock(&s->mu);
  return k;
}

bool sb_pubsub_dropped(sb_pubsub_sub_t *s) {
  pthread_mutex_lock(&s->mu);
  bool d = s->dropped;
  pthread_mutex_unlock(&s->mu);
  return d;
}

void sb_pubsub_close(sb_pubsub_sub_t *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->closed = true;
  pthread_mutex_unlock(&s->mu);
  /* The broker unlists it and drops the registry's reference; when the broker is already
   * closing (the post is refused), its shutdown does that. */
  (void)ps_post(s->b, SB__OP_PS_CLOSE, s, NULL, false);
  sub_unref(s);
}

void sb_pubsub_stats(sb_broker_t *b, sb_pubsub_stats_t *out) {
  memset(out, 0, sizeof *out);
  sb__pubsub_t *ps = b->ps; /* set before the broker thread starts, freed after it ends */
  if (ps) {
    out->channels = atomic_load(&ps->channels);
    out->patterns = atomic_load(&ps->patterns);
    out->subscribers = atomic_load(&ps->subscribers);
    out->published = atomic_load(&ps->published);
    out->delivered = atomic_load(&ps->delivered);
    out->dropped = atomic_load(&ps->dropped);
  }
}
