/*
 * Filter policies, routing keys and header matching (contracts in filter.h).
 *
 * A compiled policy is a tree of plain structs owned by its root: keys (a dotted path and its
 * conditions) and "$or" groups (alternative sub-policies). Evaluation gathers the values a key
 * names into a per-call arena and tests the conditions against them; nothing is cached
 * between calls, so a policy is immutable after compilation and may be shared.
 */
#include "broker/filter.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"
#include "switchboard/error.h"

enum {
  C_STR = 1, /* exact string */
  C_NUM,     /* numeric equality */
  C_NULL,    /* JSON null (body) */
  C_TRUE,    /* JSON true (body) */
  C_FALSE,   /* JSON false (body) */
  C_PREFIX,  /* string prefix */
  C_SUFFIX,  /* string suffix */
  C_ICASE,   /* ASCII case-insensitive equality */
  C_EXISTS,  /* presence (exists) or absence */
  C_RANGE,   /* numeric range */
  C_BUT,     /* anything-but the inner conditions */
};

typedef struct cond {
  int kind;                              /* C_* */
  char *s;                               /* string operand, owned; NUL-terminated */
  size_t n;                              /* bytes at s */
  double num;                            /* C_NUM */
  bool exists;                           /* C_EXISTS */
  bool has_lo, has_hi, lo_incl, hi_incl; /* C_RANGE bounds */
  double lo, hi;                         /* C_RANGE */
  struct cond *but;                      /* C_BUT: n_but inner conditions, owned */
  size_t n_but;
} cond_t;

typedef struct fkey {
  char *path;    /* dotted path, owned */
  cond_t *conds; /* n conditions, owned */
  size_t n;
} fkey_t;

typedef struct fgroup {
  sb__filter_t *alts; /* n alternatives (an array of policies), owned */
  size_t n;
} fgroup_t;

struct sb__filter {
  fkey_t *keys; /* all must match */
  size_t n_keys;
  fgroup_t *groups; /* each must have one matching alternative */
  size_t n_groups;
};

enum { V_STR = 1, V_NUM, V_NULL, V_TRUE, V_FALSE, V_OTHER };

typedef struct fval {
  int kind;      /* V_* */
  const char *s; /* V_STR (and the text of V_NUM) */
  size_t n;
  double num; /* V_NUM */
} fval_t;

/* --- compiling ---------------------------------------------------------------------------- */

typedef struct comp {
  sb_jr_t r;
  size_t conds;    /* conditions so far */
  const char *why; /* first error */
} comp_t;

static void cond_free(cond_t *c) {
  free(c->s);
  for (size_t i = 0; i < c->n_but; i++)
    cond_free(&c->but[i]);
  free(c->but);
}

static void policy_clear(sb__filter_t *f) {
  for (size_t i = 0; i < f->n_keys; i++) {
    free(f->keys[i].path);
    for (size_t k = 0; k < f->keys[i].n; k++)
      cond_free(&f->keys[i].conds[k]);
    free(f->keys[i].conds);
  }
  free(f->keys);
  for (size_t i = 0; i < f->n_groups; i++) {
    for (size_t k = 0; k < f->groups[i].n; k++)
      policy_clear(&f->groups[i].alts[k]);
    free(f->groups[i].alts);
  }
  free(f->groups);
  memset(f, 0, sizeof *f);
}

void sb__filter_free(sb__filter_t *f) {
  if (!f) return;
  policy_clear(f);
  free(f);
}

static int fail(comp_t *c, const char *why) {
  if (!c->why) c->why = why;
  return SB_EINVAL;
}

static int str_dup(comp_t *c, char **out, size_t *n) {
  *out = malloc(c->r.len + 1);
  if (!*out) return SB_ENOMEM;
  memcpy(*out, c->r.str, c->r.len);
  (*out)[c->r.len] = 0;
  *n = c->r.len;
  return 0;
}

static int num_of(comp_t *c, double *out) {
  if (sb_json_to_double(c->r.str, c->r.len, out)) return fail(c, "a number is out of range");
  return 0;
}

static int push_cond(comp_t *c, cond_t **v, size_t *n, cond_t x) {
  if (++c->conds > SB__FILTER_MAX_CONDS) {
    cond_free(&x);
    return fail(c, "too many conditions");
  }
  cond_t *nv = realloc(*v, (*n + 1) * sizeof *nv);
  if (!nv) {
    cond_free(&x);
    return SB_ENOMEM;
  }
  *v = nv;
  nv[(*n)++] = x;
  return 0;
}

/* Parses the value after "anything-but": a scalar, an array of scalars, or a prefix/suffix
 * object. */
static int parse_but(comp_t *c, sb_jtok_t t, cond_t *out) {
  out->kind = C_BUT;
  bool arr = t == SB_JT_ARR_BEGIN;
  if (arr) t = sb_jr_next(&c->r);
  for (;;) {
    cond_t x;
    memset(&x, 0, sizeof x);
    if (t == SB_JT_STRING) {
      x.kind = C_STR;
      if (str_dup(c, &x.s, &x.n)) return SB_ENOMEM;
    } else if (t == SB_JT_NUMBER) {
      x.kind = C_NUM;
      if (num_of(c, &x.num)) return SB_EINVAL;
    } else if (t == SB_JT_OBJ_BEGIN && !arr) {
      if (sb_jr_next(&c->r) != SB_JT_KEY) return fail(c, "anything-but needs prefix or suffix");
      bool pre = c->r.len == 6 && memcmp(c->r.str, "prefix", 6) == 0;
      bool suf = c->r.len == 6 && memcmp(c->r.str, "suffix", 6) == 0;
      if (!pre && !suf) return fail(c, "anything-but supports prefix and suffix objects");
      if (sb_jr_next(&c->r) != SB_JT_STRING) return fail(c, "prefix and suffix take a string");
      x.kind = pre ? C_PREFIX : C_SUFFIX;
      if (str_dup(c, &x.s, &x.n)) return SB_ENOMEM;
      if (sb_jr_next(&c->r) != SB_JT_OBJ_END) {
        cond_free(&x);
        return fail(c, "anything-but takes one operator");
      }
    } else if (t == SB_JT_ARR_END && arr && out->n_but) {
      return 0;
    } else {
      return fail(c, "anything-but takes strings or numbers");
    }
    int rc = push_cond(c, &out->but, &out->n_but, x);
    if (rc) return rc;
    if (!arr) return 0;
    t = sb_jr_next(&c->r);
  }
}

static int parse_numeric(comp_t *c, cond_t *out) {
  out->kind = C_RANGE;
  if (sb_jr_next(&c->r) != SB_JT_ARR_BEGIN) return fail(c, "numeric takes an array");
  int bounds = 0;
  for (;;) {
    sb_jtok_t t = sb_jr_next(&c->r);
    if (t == SB_JT_ARR_END) break;
    if (t != SB_JT_STRING || c->r.len > 2) return fail(c, "numeric: expected an operator");
    char op[3] = {0};
    memcpy(op, c->r.str, c->r.len);
    if (sb_jr_next(&c->r) != SB_JT_NUMBER) return fail(c, "numeric: expected a number");
    double v;
    if (num_of(c, &v)) return SB_EINVAL;
    if (++bounds > 2) return fail(c, "numeric takes at most two bounds");
    if (!strcmp(op, "=")) {
      if (bounds != 1) return fail(c, "numeric = stands alone");
      out->has_lo = out->has_hi = out->lo_incl = out->hi_incl = true;
      out->lo = out->hi = v;
      bounds = 2;
    } else if (!strcmp(op, ">") || !strcmp(op, ">=")) {
      if (out->has_lo) return fail(c, "numeric: two lower bounds");
      out->has_lo = true;
      out->lo = v;
      out->lo_incl = op[1] == '=';
    } else if (!strcmp(op, "<") || !strcmp(op, "<=")) {
      if (out->has_hi) return fail(c, "numeric: two upper bounds");
      out->has_hi = true;
      out->hi = v;
      out->hi_incl = op[1] == '=';
    } else {
      return fail(c, "numeric: unknown operator");
    }
  }
  if (!bounds) return fail(c, "numeric needs a bound");
  if (out->has_lo && out->has_hi && out->lo > out->hi) return fail(c, "numeric: empty range");
  return 0;
}

/* Parses one operator object; its '{' was consumed. */
static int parse_op(comp_t *c, cond_t *out) {
  if (sb_jr_next(&c->r) != SB_JT_KEY) return fail(c, "an empty operator object");
  char op[24];
  if (c->r.len >= sizeof op) return fail(c, "unknown operator");
  memcpy(op, c->r.str, c->r.len);
  op[c->r.len] = 0;
  int rc = 0;
  sb_jtok_t t;
  if (!strcmp(op, "prefix") || !strcmp(op, "suffix") || !strcmp(op, "equals-ignore-case")) {
    if (sb_jr_next(&c->r) != SB_JT_STRING) return fail(c, "prefix, suffix and case take a string");
    out->kind = op[0] == 'p' ? C_PREFIX : op[0] == 's' ? C_SUFFIX : C_ICASE;
    rc = str_dup(c, &out->s, &out->n);
  } else if (!strcmp(op, "exists")) {
    t = sb_jr_next(&c->r);
    if (t != SB_JT_TRUE && t != SB_JT_FALSE) return fail(c, "exists takes true or false");
    out->kind = C_EXISTS;
    out->exists = t == SB_JT_TRUE;
  } else if (!strcmp(op, "numeric")) {
    rc = parse_numeric(c, out);
  } else if (!strcmp(op, "anything-but")) {
    rc = parse_but(c, sb_jr_next(&c->r), out);
  } else {
    return fail(c, "unknown operator");
  }
  if (rc) return rc;
  if (sb_jr_next(&c->r) != SB_JT_OBJ_END) return fail(c, "an operator object has one key");
  return 0;
}

static int parse_conds(comp_t *c, fkey_t *k) {
  for (;;) {
    sb_jtok_t t = sb_jr_next(&c->r);
    if (t == SB_JT_ARR_END) return k->n ? 0 : fail(c, "an empty condition list");
    cond_t x;
    memset(&x, 0, sizeof x);
    int rc = 0;
    switch (t) {
    case SB_JT_STRING:
      x.kind = C_STR;
      rc = str_dup(c, &x.s, &x.n);
      break;
    case SB_JT_NUMBER:
      x.kind = C_NUM;
      rc = num_of(c, &x.num);
      break;
    case SB_JT_NULL:
      x.kind = C_NULL;
      break;
    case SB_JT_TRUE:
      x.kind = C_TRUE;
      break;
    case SB_JT_FALSE:
      x.kind = C_FALSE;
      break;
    case SB_JT_OBJ_BEGIN:
      rc = parse_op(c, &x);
      break;
    default:
      rc = fail(c, t == SB_JT_ERROR ? "invalid JSON" : "a condition must be a value or operator");
    }
    if (rc) {
      cond_free(&x);
      return rc;
    }
    if ((rc = push_cond(c, &k->conds, &k->n, x))) return rc;
  }
}

static int parse_policy(comp_t *c, sb__filter_t *f, const char *prefix, unsigned depth);

static int parse_or(comp_t *c, sb__filter_t *f, const char *prefix, unsigned depth) {
  if (sb_jr_next(&c->r) != SB_JT_ARR_BEGIN) return fail(c, "$or takes an array of policies");
  fgroup_t g = {NULL, 0};
  int rc = 0;
  for (;;) {
    sb_jtok_t t = sb_jr_next(&c->r);
    if (t == SB_JT_ARR_END) break;
    if (t != SB_JT_OBJ_BEGIN) {
      rc = fail(c, "$or takes an array of policies");
      break;
    }
    sb__filter_t *na = realloc(g.alts, (g.n + 1) * sizeof *na);
    if (!na) {
      rc = SB_ENOMEM;
      break;
    }
    g.alts = na;
    memset(&g.alts[g.n], 0, sizeof g.alts[g.n]);
    rc = parse_policy(c, &g.alts[g.n++], prefix, depth + 1);
    if (rc) break;
  }
  if (!rc && g.n < 2) rc = fail(c, "$or needs at least two policies");
  fgroup_t *ng = rc ? NULL : realloc(f->groups, (f->n_groups + 1) * sizeof *ng);
  if (!rc && !ng) rc = SB_ENOMEM;
  if (rc) {
    for (size_t i = 0; i < g.n; i++)
      policy_clear(&g.alts[i]);
    free(g.alts);
    return rc;
  }
  f->groups = ng;
  f->groups[f->n_groups++] = g;
  return 0;
}

/* Parses the members of an object whose '{' was consumed; nested objects add their keys to
 * f under "prefix.key". */
static int parse_policy(comp_t *c, sb__filter_t *f, const char *prefix, unsigned depth) {
  if (depth > SB__FILTER_MAX_DEPTH) return fail(c, "the policy nests too deeply");
  for (;;) {
    sb_jtok_t t = sb_jr_next(&c->r);
    if (t == SB_JT_OBJ_END) return 0;
    if (t != SB_JT_KEY) return fail(c, "invalid JSON");
    size_t pl = strlen(prefix), kl = c->r.len;
    if (kl == 3 && memcmp(c->r.str, "$or", 3) == 0) {
      int rc = parse_or(c, f, prefix, depth);
      if (rc) return rc;
      continue;
    }
    char *path = malloc(pl + kl + 2);
    if (!path) return SB_ENOMEM;
    memcpy(path, prefix, pl);
    size_t o = pl;
    if (pl) path[o++] = '.';
    memcpy(path + o, c->r.str, kl);
    path[o + kl] = 0;
    t = sb_jr_next(&c->r);
    int rc;
    if (t == SB_JT_OBJ_BEGIN) {
      rc = parse_policy(c, f, path, depth + 1);
      free(path);
    } else if (t == SB_JT_ARR_BEGIN) {
      fkey_t k = {path, NULL, 0};
      rc = parse_conds(c, &k);
      fkey_t *nk = rc ? NULL : realloc(f->keys, (f->n_keys + 1) * sizeof *nk);
      if (!rc && !nk) rc = SB_ENOMEM;
      if (rc) {
        free(k.path);
        for (size_t i = 0; i < k.n; i++)
          cond_free(&k.conds[i]);
        free(k.conds);
      } else {
        f->keys = nk;
        f->keys[f->n_keys++] = k;
      }
    } else {
      free(path);
      rc = fail(c, "a key takes an array of conditions or a nested object");
    }
    if (rc) return rc;
  }
}

int sb__filter_compile(const char *text, size_t len, sb__filter_t **out, const char **why) {
  *why = NULL;
  if (!text || len > SB__FILTER_MAX_BYTES) {
    *why = "the policy is too large";
    return SB_EINVAL;
  }
  comp_t c;
  memset(&c, 0, sizeof c);
  sb_jr_init(&c.r, text, len);
  sb__filter_t *f = calloc(1, sizeof *f);
  if (!f) {
    sb_jr_free(&c.r);
    return SB_ENOMEM;
  }
  int rc = sb_jr_next(&c.r) == SB_JT_OBJ_BEGIN ? parse_policy(&c, f, "", 0)
                                               : fail(&c, "a policy is a JSON object");
  if (!rc && sb_jr_next(&c.r) != SB_JT_END) rc = fail(&c, "invalid JSON");
  sb_jr_free(&c.r);
  if (rc) {
    sb__filter_free(f);
    *why = c.why ? c.why : "out of memory";
    return rc;
  }
  *out = f;
  return 0;
}

/* --- evaluating --------------------------------------------------------------------------- */

static bool str_is(const fval_t *v, const char *s, size_t n) {
  return v->kind == V_STR && v->n == n && memcmp(v->s, s, n) == 0;
}

static bool cond_match(const cond_t *c, const fval_t *v) {
  switch (c->kind) {
  case C_STR:
    return str_is(v, c->s, c->n);
  case C_NUM:
    return v->kind == V_NUM && v->num == c->num;
  case C_NULL:
    return v->kind == V_NULL;
  case C_TRUE:
    return v->kind == V_TRUE;
  case C_FALSE:
    return v->kind == V_FALSE;
  case C_PREFIX:
    return v->kind == V_STR && v->n >= c->n && memcmp(v->s, c->s, c->n) == 0;
  case C_SUFFIX:
    return v->kind == V_STR && v->n >= c->n && memcmp(v->s + v->n - c->n, c->s, c->n) == 0;
  case C_ICASE:
    if (v->kind != V_STR || v->n != c->n) return false;
    for (size_t i = 0; i < c->n; i++)
      if (tolower((unsigned char)v->s[i]) != tolower((unsigned char)c->s[i])) return false;
    return true;
  case C_RANGE:
    if (v->kind != V_NUM) return false;
    if (c->has_lo && (c->lo_incl ? v->num < c->lo : v->num <= c->lo)) return false;
    if (c->has_hi && (c->hi_incl ? v->num > c->hi : v->num >= c->hi)) return false;
    return true;
  default:
    return false;
  }
}

static bool key_match(const fkey_t *k, const fval_t *vals, size_t nv) {
  for (size_t i = 0; i < k->n; i++) {
    const cond_t *c = &k->conds[i];
    if (c->kind == C_EXISTS) {
      if ((nv > 0) == c->exists) return true;
      continue;
    }
    if (c->kind == C_BUT) {
      if (!nv) continue;
      bool hit = false;
      for (size_t j = 0; j < nv && !hit; j++)
        for (size_t b = 0; b < c->n_but && !hit; b++)
          hit = cond_match(&c->but[b], &vals[j]);
      if (!hit) return true;
      continue;
    }
    for (size_t j = 0; j < nv; j++)
      if (cond_match(c, &vals[j])) return true;
  }
  return false;
}

/* Where the values of a key come from. */
typedef struct source {
  const sb_broker_attr_t *attrs; /* attribute scope */
  size_t n_attrs;
  const char **paths; /* body scope: leaf paths ... */
  fval_t *leaves;     /* ... and their values */
  size_t n_leaves;
  sb_arena_t *arena; /* scratch for String.Array values */
} source_t;

static void scalar_val(sb_jtok_t t, const char *s, size_t n, fval_t *v, sb_arena_t *a) {
  memset(v, 0, sizeof *v);
  switch (t) {
  case SB_JT_STRING:
    v->kind = V_STR;
    v->s = sb_arena_strndup(a, s, n);
    v->n = v->s ? n : 0;
    break;
  case SB_JT_NUMBER:
    v->kind = sb_json_to_double(s, n, &v->num) == 0 ? V_NUM : V_OTHER;
    break;
  case SB_JT_NULL:
    v->kind = V_NULL;
    break;
  case SB_JT_TRUE:
    v->kind = V_TRUE;
    break;
  case SB_JT_FALSE:
    v->kind = V_FALSE;
    break;
  default:
    v->kind = V_OTHER;
  }
}

/* The values of attribute a; returns the count written to out (cap entries). */
static size_t attr_values(const sb_broker_attr_t *a, fval_t *out, size_t cap, sb_arena_t *ar) {
  const char *ty = a->type ? a->type : "";
  size_t tl = a->type_len;
  if (tl >= 12 && memcmp(ty, "String.Array", 12) == 0) {
    sb_jr_t r;
    sb_jr_init(&r, a->value, a->value_len);
    size_t n = 0;
    if (sb_jr_next(&r) == SB_JT_ARR_BEGIN) {
      for (sb_jtok_t t; (t = sb_jr_next(&r)) != SB_JT_ARR_END && n < cap;) {
        if (t == SB_JT_ERROR || t == SB_JT_END) break;
        if (t == SB_JT_OBJ_BEGIN || t == SB_JT_ARR_BEGIN) {
          if (sb_jr_skip(&r, t)) break;
          continue;
        }
        scalar_val(t, r.str, r.len, &out[n++], ar);
      }
    }
    sb_jr_free(&r);
    return n;
  }
  if (tl >= 6 && memcmp(ty, "Number", 6) == 0) {
    out[0].kind = sb_json_to_double(a->value, a->value_len, &out[0].num) == 0 ? V_NUM : V_OTHER;
    if (out[0].kind == V_OTHER) {
      /* SNS numbers may be written with a leading '+' or as "5." in attributes. */
      char tmp[64];
      if (a->value_len < sizeof tmp) {
        memcpy(tmp, a->value, a->value_len);
        tmp[a->value_len] = 0;
        char *end;
        double d = strtod(tmp, &end);
        if (end != tmp && !*end) out[0] = (fval_t){V_NUM, NULL, 0, d};
      }
    }
    return 1;
  }
  if (tl >= 6 && memcmp(ty, "String", 6) == 0) {
    out[0] = (fval_t){V_STR, a->value, a->value_len, 0};
    return 1;
  }
  out[0] = (fval_t){V_OTHER, NULL, 0, 0};
  return 1;
}

#define VALS_MAX 256 /* values of one key considered (array elements beyond are ignored) */

static bool policy_match(const sb__filter_t *f, const source_t *src) {
  fval_t vals[VALS_MAX];
  for (size_t i = 0; i < f->n_keys; i++) {
    const fkey_t *k = &f->keys[i];
    size_t nv = 0;
    if (src->attrs || !src->paths) {
      for (size_t a = 0; a < src->n_attrs; a++) {
        const sb_broker_attr_t *at = &src->attrs[a];
        if (at->name_len == strlen(k->path) && memcmp(at->name, k->path, at->name_len) == 0) {
          nv = attr_values(at, vals, VALS_MAX, src->arena);
          break;
        }
      }
    } else {
      for (size_t l = 0; l < src->n_leaves && nv < VALS_MAX; l++)
        if (strcmp(src->paths[l], k->path) == 0) vals[nv++] = src->leaves[l];
    }
    if (!key_match(k, vals, nv)) return false;
  }
  for (size_t g = 0; g < f->n_groups; g++) {
    bool any = false;
    for (size_t a = 0; a < f->groups[g].n && !any; a++)
      any = policy_match(&f->groups[g].alts[a], src);
    if (!any) return false;
  }
  return true;
}

bool sb__filter_match_attrs(const sb__filter_t *f, const sb_broker_attr_t *attrs, size_t n) {
  sb_arena_t a;
  sb_arena_init(&a);
  source_t src = {attrs, n, NULL, NULL, 0, &a};
  bool m = policy_match(f, &src);
  sb_arena_free(&a);
  return m;
}

#define LEAVES_MAX 4096 /* body fields considered */

bool sb__filter_match_body(const sb__filter_t *f, const void *body, size_t len) {
  sb_arena_t a;
  sb_arena_init(&a);
  const char **paths = sb_arena_alloc(&a, LEAVES_MAX * sizeof *paths);
  fval_t *leaves = sb_arena_alloc(&a, LEAVES_MAX * sizeof *leaves);
  bool ok = paths && leaves;
  size_t n = 0;
  sb_jr_t r;
  sb_jr_init(&r, body, len);
  /* path stack: the key of each open object level (arrays keep their parent's key) */
  char path[1024];
  size_t plen[SB_JSON_MAX_DEPTH + 1];
  bool is_obj[SB_JSON_MAX_DEPTH + 1];
  unsigned depth = 0;
  size_t cur = 0; /* length of path including the pending key */
  plen[0] = 0;
  if (!ok || sb_jr_next(&r) != SB_JT_OBJ_BEGIN) ok = false;
  is_obj[0] = true;
  while (ok) {
    sb_jtok_t t = sb_jr_next(&r);
    if (t == SB_JT_ERROR) {
      ok = false;
      break;
    }
    if (t == SB_JT_END) break;
    if (t == SB_JT_KEY) {
      size_t base = plen[depth];
      size_t need = base + (base ? 1 : 0) + r.len;
      if (need >= sizeof path) {
        ok = false;
        break;
      }
      cur = base;
      if (base) path[cur++] = '.';
      memcpy(path + cur, r.str, r.len);
      cur += r.len;
      path[cur] = 0;
      continue;
    }
    if (t == SB_JT_OBJ_BEGIN || t == SB_JT_ARR_BEGIN) {
      if (depth + 1 > SB_JSON_MAX_DEPTH) {
        ok = false;
        break;
      }
      size_t keep = is_obj[depth] ? cur : plen[depth];
      depth++;
      plen[depth] = keep;
      is_obj[depth] = t == SB_JT_OBJ_BEGIN;
      continue;
    }
    if (t == SB_JT_OBJ_END || t == SB_JT_ARR_END) {
      if (depth == 0) continue; /* the top-level object closed: SB_JT_END follows */
      depth--;
      cur = plen[depth];
      continue;
    }
    if (n < LEAVES_MAX) {
      size_t pl = is_obj[depth] ? cur : plen[depth];
      paths[n] = sb_arena_strndup(&a, path, pl);
      scalar_val(t, r.str, r.len, &leaves[n], &a);
      if (paths[n]) n++;
    }
  }
  sb_jr_free(&r);
  bool m = false;
  if (ok) {
    source_t src = {NULL, 0, paths, leaves, n, &a};
    m = policy_match(f, &src);
  } else {
    m = f->n_keys == 0 && f->n_groups == 0;
  }
  sb_arena_free(&a);
  return m;
}

/* --- AMQP routing ------------------------------------------------------------------------- */

#define ROUTE_WORDS_MAX 128 /* words of a pattern or key (AMQP keys are <= 255 bytes) */

typedef struct words {
  const char *w[ROUTE_WORDS_MAX]; /* word starts */
  size_t n_w[ROUTE_WORDS_MAX];    /* word lengths */
  size_t n;
} words_t;

static bool split(const char *s, words_t *out) {
  out->n = 0;
  for (;;) {
    if (out->n == ROUTE_WORDS_MAX) return false;
    size_t l = strcspn(s, ".");
    out->w[out->n] = s;
    out->n_w[out->n++] = l;
    if (!s[l]) return true;
    s += l + 1;
  }
}

/* memo[pi][ki]: 0 unknown, 1 no, 2 yes — the table bounds the work by np x nk even for
 * patterns full of '#'. */
static bool route_at(const words_t *p, const words_t *k, size_t pi, size_t ki,
                     uint8_t (*memo)[ROUTE_WORDS_MAX + 1]) {
  if (memo[pi][ki]) return memo[pi][ki] == 2;
  bool m;
  if (pi == p->n) {
    m = ki == k->n;
  } else if (p->n_w[pi] == 1 && p->w[pi][0] == '#') {
    m = route_at(p, k, pi + 1, ki, memo) || (ki < k->n && route_at(p, k, pi, ki + 1, memo));
  } else if (ki == k->n) {
    m = false;
  } else {
    bool word = (p->n_w[pi] == 1 && p->w[pi][0] == '*') ||
                (p->n_w[pi] == k->n_w[ki] && memcmp(p->w[pi], k->w[ki], k->n_w[ki]) == 0);
    m = word && route_at(p, k, pi + 1, ki + 1, memo);
  }
  memo[pi][ki] = m ? 2 : 1;
  return m;
}

bool sb__route_match(const char *pattern, const char *key) {
  if (!pattern || !key) return false;
  words_t p, k;
  if (!split(pattern, &p) || !split(key, &k)) return false;
  /* An empty routing key is zero words, not one empty word. */
  if (!*key) k.n = 0;
  if (!*pattern) p.n = 0;
  static _Thread_local uint8_t memo[ROUTE_WORDS_MAX + 1][ROUTE_WORDS_MAX + 1];
  for (size_t i = 0; i <= p.n; i++)
    memset(memo[i], 0, k.n + 1);
  return route_at(&p, &k, 0, 0, memo);
}

bool sb__headers_match(const sb_broker_kv_t *want, size_t n, bool any_of,
                       const sb_broker_attr_t *attrs, size_t n_attrs) {
  if (!n) return true;
  for (size_t i = 0; i < n; i++) {
    bool hit = false;
    size_t nl = strlen(want[i].name);
    for (size_t a = 0; a < n_attrs && !hit; a++) {
      const sb_broker_attr_t *at = &attrs[a];
      if (at->name_len != nl || memcmp(at->name, want[i].name, nl)) continue;
      hit = !want[i].value || (at->value_len == strlen(want[i].value) &&
                               memcmp(at->value, want[i].value, at->value_len) == 0);
    }
    if (any_of && hit) return true;
    if (!any_of && !hit) return false;
  }
  return !any_of;
}
