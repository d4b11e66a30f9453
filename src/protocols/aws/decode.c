/*
 * Request decoders of the AWS front-ends: Query (form) and AWS JSON 1.0 into one tree
 * (aws.h explains the shape). Both run on the worker loop that received the request and
 * allocate only from the request's arena.
 */
#include <string.h>

#include "core/json.h"
#include "core/codec.h"
#include "protocols/aws/aws.h"
#include "switchboard/error.h"

typedef struct dctx {
  sb_arena_t *a;   /* the request's arena; borrowed */
  size_t nodes;    /* nodes made so far, <= AWS_MAX_PARAMS */
  const char *err; /* static description of the first error */
} dctx_t;

static aws_node_t *node_new(dctx_t *d, aws_kind_t kind, const char *key, size_t key_len) {
  if (++d->nodes > AWS_MAX_PARAMS) {
    d->err = "too many parameters";
    return NULL;
  }
  aws_node_t *n = sb_arena_alloc(d->a, sizeof *n);
  if (!n) return NULL;
  memset(n, 0, sizeof *n);
  n->kind = kind;
  if (key) {
    n->key = sb_arena_strndup(d->a, key, key_len);
    if (!n->key) return NULL;
    n->key_len = key_len;
  }
  return n;
}

static void append(aws_node_t *p, aws_node_t *c) {
  c->next = NULL;
  if (p->last)
    p->last->next = c;
  else
    p->child = c;
  p->last = c;
  p->n++;
}

static aws_node_t *find(const aws_node_t *m, const char *k, size_t klen) {
  for (aws_node_t *c = m->child; c; c = c->next)
    if (c->key && c->key_len == klen && memcmp(c->key, k, klen) == 0) return c;
  return NULL;
}

const aws_node_t *sb__aws_get(const aws_node_t *m, const char *key) {
  if (!m || m->kind != AWS_MAP) return NULL;
  return find(m, key, strlen(key));
}

/* ---- Query ---- */

enum { R_MAP, R_LIST_STR, R_LIST_MAP };

/* The flattened members of botocore's SQS model (see the table in aws.h). */
static const struct rule {
  const char *query; /* the Query name (locationName) */
  const char *json;  /* the JSON member name */
  int shape;         /* R_MAP, R_LIST_STR or R_LIST_MAP */
  const char *k, *v; /* R_MAP: the entry's key and value member names */
} rules[] = {
    {"Attribute", "Attributes", R_MAP, "Name", "Value"},
    {"Tag", "Tags", R_MAP, "Key", "Value"},
    {"MessageAttribute", "MessageAttributes", R_MAP, "Name", "Value"},
    {"MessageSystemAttribute", "MessageSystemAttributes", R_MAP, "Name", "Value"},
    {"AttributeName", "AttributeNames", R_LIST_STR, NULL, NULL},
    {"MessageAttributeName", "MessageAttributeNames", R_LIST_STR, NULL, NULL},
    {"MessageSystemAttributeName", "MessageSystemAttributeNames", R_LIST_STR, NULL, NULL},
    {"TagKey", "TagKeys", R_LIST_STR, NULL, NULL},
    {"AWSAccountId", "AWSAccountIds", R_LIST_STR, NULL, NULL},
    {"ActionName", "Actions", R_LIST_STR, NULL, NULL},
    {"StringListValue", "StringListValues", R_LIST_STR, NULL, NULL},
    {"BinaryListValue", "BinaryListValues", R_LIST_STR, NULL, NULL},
    {"SendMessageBatchRequestEntry", "Entries", R_LIST_MAP, NULL, NULL},
    {"DeleteMessageBatchRequestEntry", "Entries", R_LIST_MAP, NULL, NULL},
    {"ChangeMessageVisibilityBatchRequestEntry", "Entries", R_LIST_MAP, NULL, NULL},
};

static int parse_index(const aws_node_t *c, uint32_t *out) {
  if (!c->key || c->key_len == 0 || c->key_len > 4 || c->key[0] == '0') return -1;
  uint32_t v = 0;
  for (size_t i = 0; i < c->key_len; i++) {
    if (c->key[i] < '0' || c->key[i] > '9') return -1;
    v = v * 10 + (uint32_t)(c->key[i] - '0');
  }
  if (v > AWS_MAX_INDEX) return -1;
  *out = v;
  return 0;
}

static int normalize(dctx_t *d, aws_node_t *m);

/* Rewrites the flattened member c (a map of index -> item) by rule r into a new node. */
static aws_node_t *apply_rule(dctx_t *d, const struct rule *r, aws_node_t *c) {
  if (c->kind == AWS_STR && c->len == 0) {
    /* botocore sends an empty list as "Name=": an empty list (or map). */
    return node_new(d, r->shape == R_MAP ? AWS_MAP : AWS_LIST, r->json, strlen(r->json));
  }
  if (c->kind != AWS_MAP) {
    d->err = "a list or map parameter needs an index";
    return NULL;
  }
  /* Sort the indexed items (insertion sort: at most a few hundred, usually ten). */
  aws_node_t *sorted = NULL;
  for (aws_node_t *it = c->child, *nx; it; it = nx) {
    nx = it->next;
    if (parse_index(it, &it->index)) {
      d->err = "a list or map index must be a number from 1";
      return NULL;
    }
    aws_node_t **pp = &sorted;
    while (*pp && (*pp)->index < it->index)
      pp = &(*pp)->next;
    it->next = *pp;
    *pp = it;
  }
  aws_node_t *out = node_new(d, r->shape == R_MAP ? AWS_MAP : AWS_LIST, r->json, strlen(r->json));
  if (!out) return NULL;
  for (aws_node_t *it = sorted, *nx; it; it = nx) {
    nx = it->next;
    if (r->shape == R_LIST_STR) {
      if (it->kind != AWS_STR) {
        d->err = "a list item must be a value";
        return NULL;
      }
      it->key = NULL;
      it->key_len = 0;
      append(out, it);
    } else if (r->shape == R_LIST_MAP) {
      if (it->kind != AWS_MAP) {
        d->err = "a batch entry must have members";
        return NULL;
      }
      if (normalize(d, it)) return NULL;
      it->key = NULL;
      it->key_len = 0;
      append(out, it);
    } else {
      const aws_node_t *k = it->kind == AWS_MAP ? find(it, r->k, strlen(r->k)) : NULL;
      aws_node_t *v = it->kind == AWS_MAP ? find(it, r->v, strlen(r->v)) : NULL;
      if (!k || k->kind != AWS_STR) {
        d->err = "a map entry needs its name";
        return NULL;
      }
      if (find(out, k->s, k->len)) {
        d->err = "a map entry name is repeated";
        return NULL;
      }
      if (!v) {
        v = node_new(d, AWS_STR, NULL, 0);
        if (!v) return NULL;
        v->s = "";
      } else if (v->kind == AWS_MAP && normalize(d, v)) {
        return NULL;
      }
      v->key = k->s;
      v->key_len = k->len;
      append(out, v);
    }
  }
  return out;
}

/* The wrapped form of the Query protocol (SNS, and AWS query APIs generally): a list is
 * "Name.member.N[.field]", a map "Name.entry.N.{key,value}" (or {Name,Value} when the model
 * names them so). Recognised by a map whose only member is "member" or "entry". Returns the
 * rewritten node, c itself when c is not wrapped, or NULL with d->err set (or unset: out of
 * memory). */
static aws_node_t *apply_wrapped(dctx_t *d, aws_node_t *c) {
  if (c->kind != AWS_MAP || c->n != 1 || c->child->kind != AWS_MAP) return c;
  const aws_node_t *w = c->child;
  int list = w->key_len == 6 && memcmp(w->key, "member", 6) == 0;
  int map = w->key_len == 5 && memcmp(w->key, "entry", 5) == 0;
  if (!list && !map) return c;
  struct rule r = {NULL, c->key, R_MAP, "key", "value"};
  if (list) {
    int strs = 0, maps = 0;
    for (const aws_node_t *it = w->child; it; it = it->next)
      strs += it->kind == AWS_STR, maps += it->kind == AWS_MAP;
    if (strs && maps) {
      d->err = "a list mixes values and structures";
      return NULL;
    }
    r.shape = strs ? R_LIST_STR : R_LIST_MAP;
  } else if (w->child && w->child->kind == AWS_MAP && find(w->child, "Name", 4)) {
    r.k = "Name";
    r.v = "Value";
  }
  return apply_rule(d, &r, (aws_node_t *)w);
}

/* Rewrites the flattened members of map m in place, recursively. */
static int normalize(dctx_t *d, aws_node_t *m) {
  aws_node_t *kids = m->child;
  m->child = m->last = NULL;
  m->n = 0;
  for (aws_node_t *c = kids, *nx; c; c = nx) {
    nx = c->next;
    const struct rule *r = NULL;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
      if (c->key_len == strlen(rules[i].query) && memcmp(c->key, rules[i].query, c->key_len) == 0)
        r = &rules[i];
    /* A plain value under a flattened name is another API's scalar (SNS's AttributeName). */
    if (r && c->kind == AWS_STR && c->len > 0) r = NULL;
    aws_node_t *o = c;
    if (r) {
      o = apply_rule(d, r, c);
      if (!o) return d->err ? SB_EINVAL : SB_ENOMEM;
    } else if ((o = apply_wrapped(d, c)) == NULL) {
      return d->err ? SB_EINVAL : SB_ENOMEM;
    } else if (o == c && c->kind == AWS_MAP && normalize(d, c)) {
      return d->err ? SB_EINVAL : SB_ENOMEM;
    }
    if (find(m, o->key, o->key_len)) {
      d->err = "a parameter is given twice";
      return SB_EINVAL;
    }
    append(m, o);
  }
  return 0;
}

static int add_pair(dctx_t *d, aws_node_t *root, char *key, size_t klen, const char *val,
                    size_t vlen) {
  aws_node_t *cur = root;
  size_t depth = 0;
  for (;;) {
    char *dot = memchr(key, '.', klen);
    size_t seg = dot ? (size_t)(dot - key) : klen;
    if (seg == 0 || ++depth > AWS_MAX_KEY_DEPTH) {
      d->err = "malformed parameter name";
      return SB_EINVAL;
    }
    aws_node_t *c = find(cur, key, seg);
    if (!dot) {
      if (c) {
        d->err = "a parameter is given twice or conflicts with another";
        return SB_EINVAL;
      }
      c = node_new(d, AWS_STR, key, seg);
      if (!c) return d->err ? SB_EINVAL : SB_ENOMEM;
      c->s = sb_arena_strndup(d->a, val, vlen);
      if (!c->s) return SB_ENOMEM;
      c->len = vlen;
      append(cur, c);
      return 0;
    }
    if (!c) {
      c = node_new(d, AWS_MAP, key, seg);
      if (!c) return d->err ? SB_EINVAL : SB_ENOMEM;
      append(cur, c);
    } else if (c->kind != AWS_MAP) {
      d->err = "a parameter conflicts with another";
      return SB_EINVAL;
    }
    cur = c;
    key += seg + 1;
    klen -= seg + 1;
  }
}

int sb__aws_decode_form(sb_arena_t *a, const char *body, size_t len, aws_node_t **out,
                        const char **err) {
  dctx_t d = {a, 0, NULL};
  *err = NULL;
  aws_node_t *root = node_new(&d, AWS_MAP, NULL, 0);
  if (!root) return SB_ENOMEM;
  /* One scratch buffer holds a decoded key and value at a time (decoding never grows). */
  char *scratch = sb_arena_alloc(a, len + 2);
  if (!scratch) return SB_ENOMEM;
  size_t i = 0;
  while (i < len) {
    const char *p = body + i;
    const char *amp = memchr(p, '&', len - i);
    size_t plen = amp ? (size_t)(amp - p) : len - i;
    i += plen + 1;
    if (plen == 0) continue;
    const char *eq = memchr(p, '=', plen);
    size_t kraw = eq ? (size_t)(eq - p) : plen;
    long kl = sb_pct_decode(p, kraw, scratch, 1);
    long vl = eq ? sb_pct_decode(eq + 1, plen - kraw - 1, scratch + kl + 1, 1) : 0;
    if (kl < 0 || vl < 0) {
      *err = "malformed percent-encoding";
      return SB_EINVAL;
    }
    if (!eq) scratch[kl + 1] = 0;
    int rc = add_pair(&d, root, scratch, (size_t)kl, scratch + kl + 1, (size_t)vl);
    if (rc) {
      *err = d.err;
      return rc;
    }
  }
  int rc = normalize(&d, root);
  if (rc) {
    *err = d.err;
    return rc;
  }
  *out = root;
  return 0;
}

/* ---- JSON ---- */

/* Builds the value whose first token tok was just read. Returns the node, or NULL with d->err
 * set (syntax, limits) or unset (out of memory). *skip is set for a JSON null. */
static aws_node_t *json_value(dctx_t *d, sb_jr_t *r, sb_jtok_t tok, int *skip) {
  *skip = 0;
  aws_node_t *n;
  switch (tok) {
  case SB_JT_STRING:
  case SB_JT_NUMBER:
    n = node_new(d, AWS_STR, NULL, 0);
    if (!n) return NULL;
    n->s = sb_arena_strndup(d->a, r->str, r->len);
    n->len = r->len;
    return n->s ? n : NULL;
  case SB_JT_TRUE:
  case SB_JT_FALSE:
    n = node_new(d, AWS_STR, NULL, 0);
    if (!n) return NULL;
    n->s = tok == SB_JT_TRUE ? "true" : "false";
    n->len = strlen(n->s);
    return n;
  case SB_JT_NULL:
    *skip = 1;
    return NULL;
  case SB_JT_ARR_BEGIN:
  case SB_JT_OBJ_BEGIN: {
    int obj = tok == SB_JT_OBJ_BEGIN;
    n = node_new(d, obj ? AWS_MAP : AWS_LIST, NULL, 0);
    if (!n) return NULL;
    for (;;) {
      sb_jtok_t t = sb_jr_next(r);
      if (t == (obj ? SB_JT_OBJ_END : SB_JT_ARR_END)) return n;
      char *key = NULL;
      size_t klen = 0;
      if (obj) {
        if (t != SB_JT_KEY) break;
        klen = r->len;
        key = sb_arena_strndup(d->a, r->str, r->len);
        if (!key) return NULL;
        if (find(n, key, klen)) {
          d->err = "a member is given twice";
          return NULL;
        }
        t = sb_jr_next(r);
      }
      int sk;
      aws_node_t *c = json_value(d, r, t, &sk);
      if (sk) continue;
      if (!c) return NULL;
      c->key = key;
      c->key_len = klen;
      append(n, c);
    }
    break;
  }
  default:
    break;
  }
  d->err = r->err ? r->err : "malformed JSON";
  return NULL;
}

int sb__aws_decode_json(sb_arena_t *a, const void *body, size_t len, aws_node_t **out,
                        const char **err) {
  dctx_t d = {a, 0, NULL};
  *err = NULL;
  sb_jr_t r;
  sb_jr_init(&r, body, len);
  sb_jtok_t t = sb_jr_next(&r);
  int rc = 0;
  aws_node_t *root = NULL;
  if (len == 0) {
    root = node_new(&d, AWS_MAP, NULL, 0);
    rc = root ? 0 : SB_ENOMEM;
  } else if (t != SB_JT_OBJ_BEGIN) {
    d.err = "the request body must be a JSON object";
    rc = SB_EINVAL;
  } else {
    int skip;
    root = json_value(&d, &r, t, &skip);
    if (root && sb_jr_next(&r) != SB_JT_END) {
      d.err = r.err ? r.err : "malformed JSON";
      root = NULL;
    }
    if (!root) rc = d.err ? SB_EINVAL : SB_ENOMEM;
  }
  sb_jr_free(&r);
  *err = d.err;
  if (!rc) *out = root;
  return rc;
}
