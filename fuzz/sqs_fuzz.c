/*
 * libFuzzer target: the AWS front-ends' request decoders (src/protocols/aws/decode.c), the
 * Query form decoder and the AWS JSON 1.0 decoder, checked against each other.
 *
 * The first input byte selects the decoder (even: form, odd: JSON); the rest is the body.
 * For each input:
 *   1. Decode. On success the tree must be well formed: maps have keyed members with
 *      distinct keys, lists have unkeyed members, counts match, strings are terminated.
 *   2. Write the tree as JSON (when its strings are valid UTF-8) and decode that with the
 *      JSON decoder: the trees must be equal. So both decoders agree on one model, and the
 *      Query rewriting (Attribute.N.Name -> Attributes{...}) produces what the JSON protocol
 *      would have sent.
 *   3. Every string through the XML text escaper must come out without a raw '<', '&' or CR.
 * With bit 1 of the first byte set, the rest is a queue Policy document instead, edited by
 * AddPermission's and RemovePermission's editor (policy.c; see policy() below); with bit 2
 * set, an SNS webhook endpoint URL for the pusher's URL check (endpoint() below).
 * Any disagreement aborts. Seeds in fuzz/corpus/sqs/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/sns/sns_int.h"
#include "protocols/sqs/sqs_int.h"
#include "switchboard/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "sqs_fuzz: %s\n", what);
    abort();
  }
}

static void well_formed(const aws_node_t *n, int depth) {
  check(depth < 80, "tree too deep");
  if (n->kind == AWS_STR) {
    check(n->s != NULL && n->s[n->len] == 0, "string not terminated");
    return;
  }
  size_t count = 0;
  for (const aws_node_t *c = n->child; c; c = c->next) {
    count++;
    if (n->kind == AWS_MAP) {
      check(c->key != NULL, "map member without key");
      for (const aws_node_t *d = n->child; d != c; d = d->next)
        check(d->key_len != c->key_len || memcmp(d->key, c->key, c->key_len) != 0,
              "duplicate map key");
    } else {
      check(c->key == NULL, "list member with key");
    }
    well_formed(c, depth + 1);
  }
  check(count == n->n, "member count");
}

static void write_json(sb_jw_t *w, const aws_node_t *n) {
  switch (n->kind) {
  case AWS_STR:
    sb_jw_str(w, n->s, n->len);
    break;
  case AWS_LIST:
    sb_jw_arr_begin(w);
    for (const aws_node_t *c = n->child; c; c = c->next)
      write_json(w, c);
    sb_jw_arr_end(w);
    break;
  case AWS_MAP:
    sb_jw_obj_begin(w);
    for (const aws_node_t *c = n->child; c; c = c->next) {
      sb_jw_key(w, c->key, c->key_len);
      write_json(w, c);
    }
    sb_jw_obj_end(w);
    break;
  }
}

static int equal(const aws_node_t *a, const aws_node_t *b) {
  if (a->kind != b->kind || a->n != b->n) return 0;
  if (a->kind == AWS_STR) return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
  for (const aws_node_t *x = a->child, *y = b->child; x; x = x->next, y = y->next) {
    if (!y || (x->key == NULL) != (y->key == NULL)) return 0;
    if (x->key && (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len))) return 0;
    if (!equal(x, y)) return 0;
  }
  return 1;
}

static void escapes(const aws_node_t *n) {
  if (n->kind == AWS_STR) {
    sb_buf_t b = {0};
    check(sb__aws_xml_text(&b, n->s, n->len) == 0, "xml escape failed");
    const uint8_t *p = sb_buf_head(&b);
    for (size_t i = 0; i < sb_buf_pending(&b); i++)
      check(p[i] != '<' && p[i] != '\r' && (p[i] != '&' || i + 1 < sb_buf_pending(&b)),
            "raw markup after escaping");
    sb_buf_free(&b);
    return;
  }
  for (const aws_node_t *c = n->child; c; c = c->next)
    escapes(c);
}

/* The Policy editor (policy.c) on a document from the network (SetQueueAttributes): adding a
 * statement gives a JSON object from which the same statement can be removed again, and
 * removing never fails but for a missing label or a document it refuses. */
static void policy(sb_arena_t *a, const char *body, size_t len) {
  const char *doc = sb_arena_strndup(a, body, len);
  if (!doc) return;
  const char *acc[] = {"111122223333", "444455556666"}, *act[] = {"SendMessage"};
  sqs_permission_t add = {"l", "arn:aws:sqs:us-east-1:000000000000:q", acc, 2, act, 1};
  sqs_permission_t del = {"l", add.arn, NULL, 0, NULL, 0};
  const char *out = NULL, *back = NULL;
  int rc = sb__sqs_policy_edit(a, doc, &add, &out);
  check(rc == 0 || rc == 1 || rc == SB_EINVAL || rc == SB_ELIMIT || rc == SB_ENOMEM,
        "policy edit: unexpected status");
  if (rc == 0) {
    /* Valid JSON, but for nesting: a lone statement one level below the limit goes one
     * level deeper into the Statement list. */
    sb_jr_t jr;
    sb_jr_init(&jr, out, strlen(out));
    sb_jtok_t t;
    while ((t = sb_jr_next(&jr)) != SB_JT_END && t != SB_JT_ERROR)
      ;
    check(t == SB_JT_END || strcmp(jr.err, "nesting too deep") == 0,
          "an edited policy is not valid JSON");
    sb_jr_free(&jr);
    int rc2 = sb__sqs_policy_edit(a, out, &del, &back);
    check(rc2 == 0 || rc2 == SB_ENOMEM || t != SB_JT_END, "the added statement cannot be removed");
  }
  rc = sb__sqs_policy_edit(a, doc, &del, &back);
  check(rc == 0 || rc == 1 || rc == SB_EINVAL || rc == SB_ELIMIT || rc == SB_ENOMEM,
        "policy remove: unexpected status");
}

/* SNS webhook endpoints (Subscribe's Endpoint): the URL check the pusher's client relies on
 * accepts only what it can parse back, and never reads past the string. */
static void endpoint(const char *body, size_t len) {
  char *url = malloc(len + 1);
  if (!url) return;
  memcpy(url, body, len);
  url[len] = 0;
  if (sb__sns_check_url(url) == 0)
    check(!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8), "odd scheme accepted");
  free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  if (data[0] & 4) {
    endpoint((const char *)data + 1, size - 1);
    return 0;
  }
  if (data[0] & 2) {
    sb_arena_t pa;
    sb_arena_init(&pa);
    policy(&pa, (const char *)data + 1, size - 1);
    sb_arena_free(&pa);
    return 0;
  }
  int json = data[0] & 1;
  const char *body = (const char *)data + 1;
  size_t len = size - 1;
  sb_arena_t a;
  sb_arena_init(&a);
  aws_node_t *root = NULL;
  const char *err = NULL;
  int rc = json ? sb__aws_decode_json(&a, body, len, &root, &err)
                : sb__aws_decode_form(&a, body, len, &root, &err);
  check(rc == 0 || rc == SB_ENOMEM || (rc == SB_EINVAL && err != NULL),
        "an error without its description");
  if (rc == 0) {
    check(root && root->kind == AWS_MAP, "root is not a map");
    well_formed(root, 0);
    escapes(root);
    sb_buf_t out = {0};
    sb_jw_t w;
    sb_jw_init(&w, &out);
    write_json(&w, root);
    if (sb_jw_error(&w) == 0) {
      aws_node_t *again = NULL;
      int rc2 = sb__aws_decode_json(&a, sb_buf_head(&out), sb_buf_pending(&out), &again, &err);
      check(rc2 == 0, "re-encoded tree does not decode");
      check(equal(root, again), "JSON round trip changed the tree");
    }
    sb_buf_free(&out);
  }
  sb_arena_free(&a);
  return 0;
}
