/*
 * A queue's Policy attribute as AddPermission and RemovePermission maintain it (sqs_int.h).
 *
 * The document may also have been written whole by SetQueueAttributes, so it is edited, not
 * rebuilt: its members are copied as they are, in their order, and only "Statement" is
 * rewritten — the statements that stay are copied byte for byte, the new one is appended.
 * A statement is identified by its "Sid", which AWS takes from the permission's label.
 * Runs on the broker thread (in a request's callback); allocates in the request's arena and
 * in buffers it frees.
 */
#include <string.h>

#include "core/json.h"
#include "protocols/sqs/sqs_int.h"
#include "switchboard/error.h"

/* A byte range of the old document. */
typedef struct span {
  const char *p; /* first byte */
  size_t n;      /* bytes */
} span_t;

typedef struct pdoc {
  span_t keys[SQS_POLICY_MEMBERS_MAX];     /* top-level member names (raw JSON strings) */
  span_t vals[SQS_POLICY_MEMBERS_MAX];     /* their values (raw JSON) */
  size_t n;                                /* members */
  int stmt;                                /* index of "Statement" in keys, -1 when absent */
  span_t st[SQS_POLICY_STATEMENTS_MAX];    /* its statements (raw JSON objects or values) */
  int st_match[SQS_POLICY_STATEMENTS_MAX]; /* 1: the statement's Sid is the label */
  size_t n_st;                             /* statements */
} pdoc_t;

/* The start of the token sb_jr_next() returns next, from where the reader stands: past
 * whitespace and the separators it has not consumed yet. */
static const char *token_start(const sb_jr_t *r) {
  const uint8_t *p = r->p;
  while (p < r->end &&
         (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',' || *p == ':'))
    p++;
  return (const char *)p;
}

/* Reads the members of the object whose OBJ_BEGIN was just returned, up to its end. 1 when
 * its Sid is label, 0 when not, -1 on a syntax error. */
static int object_sid_is(sb_jr_t *r, const char *label, size_t llen) {
  int match = 0;
  for (;;) {
    sb_jtok_t t = sb_jr_next(r);
    if (t == SB_JT_OBJ_END) return match;
    if (t != SB_JT_KEY) return -1;
    int is_sid = r->len == 3 && memcmp(r->str, "Sid", 3) == 0;
    t = sb_jr_next(r);
    if (t == SB_JT_ERROR) return -1;
    if (is_sid && t == SB_JT_STRING)
      match = r->len == llen && memcmp(r->str, label, llen) == 0;
    else if (sb_jr_skip(r, t))
      return -1;
  }
}

/* Reads one statement (any JSON value; only objects have a Sid) into d. */
static int read_statement(pdoc_t *d, sb_jr_t *r, const char *start, sb_jtok_t t, const char *label,
                          size_t llen) {
  if (d->n_st == SQS_POLICY_STATEMENTS_MAX) return SB_ELIMIT;
  int m = 0;
  if (t == SB_JT_OBJ_BEGIN) {
    m = object_sid_is(r, label, llen);
    if (m < 0) return SB_EINVAL;
  } else if (t == SB_JT_ERROR || sb_jr_skip(r, t)) {
    return SB_EINVAL;
  }
  d->st[d->n_st] = (span_t){start, (size_t)((const char *)r->p - start)};
  d->st_match[d->n_st] = m;
  d->n_st++;
  return 0;
}

/* Parses doc into d: its top-level members and its statements. 0, SB_EINVAL (not a JSON
 * object, or two Statement members) or SB_ELIMIT. */
static int parse(pdoc_t *d, const char *doc, size_t len, const char *label) {
  size_t llen = strlen(label);
  sb_jr_t r;
  sb_jr_init(&r, doc, len);
  int rc = SB_EINVAL;
  d->n = d->n_st = 0;
  d->stmt = -1;
  if (sb_jr_next(&r) != SB_JT_OBJ_BEGIN) goto out;
  for (;;) {
    const char *kstart = token_start(&r);
    sb_jtok_t t = sb_jr_next(&r);
    if (t == SB_JT_OBJ_END) break;
    if (t != SB_JT_KEY) goto out;
    if (d->n == SQS_POLICY_MEMBERS_MAX) {
      rc = SB_ELIMIT;
      goto out;
    }
    int is_stmt = r.len == 9 && memcmp(r.str, "Statement", 9) == 0;
    if (is_stmt && d->stmt >= 0) goto out;
    d->keys[d->n] = (span_t){kstart, (size_t)((const char *)r.p - kstart)};
    const char *vstart = token_start(&r);
    t = sb_jr_next(&r);
    if (t == SB_JT_ERROR) goto out;
    if (is_stmt && t == SB_JT_ARR_BEGIN) {
      d->stmt = (int)d->n;
      for (;;) {
        const char *sstart = token_start(&r);
        t = sb_jr_next(&r);
        if (t == SB_JT_ARR_END) break;
        if ((rc = read_statement(d, &r, sstart, t, label, llen))) goto out;
        rc = SB_EINVAL;
      }
    } else if (is_stmt) {
      d->stmt = (int)d->n;
      if ((rc = read_statement(d, &r, vstart, t, label, llen))) goto out;
      rc = SB_EINVAL;
    } else if (sb_jr_skip(&r, t)) {
      goto out;
    }
    d->vals[d->n] = (span_t){vstart, (size_t)((const char *)r.p - vstart)};
    d->n++;
  }
  rc = sb_jr_next(&r) == SB_JT_END ? 0 : SB_EINVAL;
out:
  sb_jr_free(&r);
  return rc;
}

/* Writes one string, or a list of them when there are several (AWS's shape). */
static void one_or_list(sb_jw_t *w, sb_buf_t *tmp, const char *prefix, const char *suffix,
                        const char *const *v, size_t n) {
  if (n > 1) sb_jw_arr_begin(w);
  for (size_t i = 0; i < n; i++) {
    sb_buf_reset(tmp);
    if (sb_buf_appendf(tmp, "%s%s%s", prefix, v[i], suffix)) {
      if (!w->err) w->err = SB_ENOMEM;
      return;
    }
    sb_jw_str(w, (const char *)sb_buf_head(tmp), sb_buf_pending(tmp));
  }
  if (n > 1) sb_jw_arr_end(w);
}

/* The statement AddPermission appends. */
static void new_statement(sb_jw_t *w, sb_buf_t *tmp, const sqs_permission_t *perm) {
  sb_jw_obj_begin(w);
  sb_jw_key(w, "Sid", 3);
  sb_jw_str(w, perm->label, strlen(perm->label));
  sb_jw_key(w, "Effect", 6);
  sb_jw_str(w, "Allow", 5);
  sb_jw_key(w, "Principal", 9);
  sb_jw_obj_begin(w);
  sb_jw_key(w, "AWS", 3);
  one_or_list(w, tmp, "arn:aws:iam::", ":root", perm->accounts, perm->n_accounts);
  sb_jw_obj_end(w);
  sb_jw_key(w, "Action", 6);
  one_or_list(w, tmp, "SQS:", "", perm->actions, perm->n_actions);
  sb_jw_key(w, "Resource", 8);
  sb_jw_str(w, perm->arn, strlen(perm->arn));
  sb_jw_obj_end(w);
}

static void put(sb_buf_t *b, int *err, const char *p, size_t n) {
  if (!*err && sb_buf_append(b, p, n)) *err = SB_ENOMEM;
}

int sb__sqs_policy_edit(sb_arena_t *a, const char *old, const sqs_permission_t *perm,
                        const char **out) {
  pdoc_t *d = sb_arena_alloc(a, sizeof *d);
  if (!d) return SB_ENOMEM;
  d->n = d->n_st = 0;
  d->stmt = -1;
  size_t olen = old ? strlen(old) : 0;
  if (olen) {
    int rc = parse(d, old, olen, perm->label);
    if (rc) return rc;
  }
  size_t found = 0;
  for (size_t i = 0; i < d->n_st; i++)
    found += (size_t)d->st_match[i];
  int adding = perm->n_accounts > 0;
  if (adding ? found != 0 : found == 0) return 1;
  if (adding &&
      (d->n_st >= SQS_POLICY_STATEMENTS_MAX || (d->stmt < 0 && d->n >= SQS_POLICY_MEMBERS_MAX)))
    return SB_ELIMIT;
  if (!adding && found == d->n_st) {
    *out = ""; /* the last statement went: no policy left */
    return 0;
  }
  sb_buf_t buf = {0}, st = {0}, tmp = {0};
  int err = 0;
  if (adding) {
    sb_jw_t w;
    sb_jw_init(&w, &st);
    new_statement(&w, &tmp, perm);
    err = w.err;
  }
  put(&buf, &err, "{", 1);
  if (d->n == 0) {
    sb_jw_t w;
    sb_jw_init(&w, &buf);
    sb_buf_reset(&tmp);
    if (!err && sb_buf_appendf(&tmp, "%s/SQSDefaultPolicy", perm->arn)) err = SB_ENOMEM;
    put(&buf, &err, "\"Version\":\"2012-10-17\",\"Id\":", 28);
    if (!err) sb_jw_str(&w, (const char *)sb_buf_head(&tmp), sb_buf_pending(&tmp));
    if (!err) err = w.err;
  }
  for (size_t m = 0; m <= d->n; m++) {
    int is_stmt = m < d->n ? (int)m == d->stmt : d->stmt < 0;
    if (!is_stmt && m == d->n) break;
    if (m > 0 || d->n == 0) put(&buf, &err, ",", 1);
    if (m < d->n) {
      put(&buf, &err, d->keys[m].p, d->keys[m].n);
      put(&buf, &err, ":", 1);
    } else {
      put(&buf, &err, "\"Statement\":", 12);
    }
    if (!is_stmt) {
      put(&buf, &err, d->vals[m].p, d->vals[m].n);
      continue;
    }
    put(&buf, &err, "[", 1);
    int first = 1;
    for (size_t i = 0; i < d->n_st; i++) {
      if (d->st_match[i]) continue;
      if (!first) put(&buf, &err, ",", 1);
      put(&buf, &err, d->st[i].p, d->st[i].n);
      first = 0;
    }
    if (adding) {
      if (!first) put(&buf, &err, ",", 1);
      put(&buf, &err, (const char *)sb_buf_head(&st), sb_buf_pending(&st));
    }
    put(&buf, &err, "]", 1);
  }
  put(&buf, &err, "}", 1);
  char *doc =
      err ? NULL : sb_arena_strndup(a, (const char *)sb_buf_head(&buf), sb_buf_pending(&buf));
  sb_buf_free(&buf);
  sb_buf_free(&st);
  sb_buf_free(&tmp);
  if (!doc) return err ? err : SB_ENOMEM;
  *out = doc;
  return 0;
}
