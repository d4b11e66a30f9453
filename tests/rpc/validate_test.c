/*
 * Tests of the validator (src/rpc/validate.c) on the tables protoc-gen-switchboard generates
 * from tests/contract/testdata/validation.proto: one message with a rule of every kind. Each
 * test starts from a request that passes and breaks one thing, and compares the complete
 * list of violations ("path: description" lines) with what it expects.
 */
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "contract/pbjson.h"
#include "core/buf.h"
#include "rpc/rpc_int.h"
#include "switchboard/error.h"
#include "sb_test.h"
#include "validation.sb.h"

static const sb__call_ops_t no_ops = {0};
static const sb__svc_t svc = {&vt__v__desc, NULL, NULL};

/* A request that breaks no rule; the Child values it points to are static. */
static Vt__Child kid, deep;
static Vt__Child *kids_arr[1];
static char *tags_arr[1] = {"x"};
static uint8_t one_byte[1] = {7};

static void valid(Vt__All *m) {
  vt__all__init(m);
  vt__child__init(&kid);
  vt__child__init(&deep);
  kid.name = "c";
  deep.name = "d";
  kids_arr[0] = &deep;
  m->s = "ab";
  m->pat = "abc";
  m->b = (ProtobufCBinaryData){1, one_byte};
  m->i32 = 5;
  m->i64 = 0;
  m->u32 = 1;
  m->u64 = 0;
  m->si = -1;
  m->f = 1;
  m->d = 0.5;
  m->color = VT__COLOR__COLOR_RED;
  m->n_tags = 1;
  m->tags = tags_arr;
  m->child = &kid;
  m->must = "m";
  m->n_children = 1;
  m->children = kids_arr;
}

/* Validates m with a fresh call; writes the violations as "path: description\n" lines into
 * out and returns sb__validate()'s result. */
static int run(sb__patterns_t *p, const ProtobufCMessage *m, char *out, size_t cap) {
  sb_call_t *call = sb__call_new(NULL, &svc, 0, &no_ops, NULL, NULL);
  if (!call) return -1;
  int n = sb__validate(p, &vt__v__desc, call, m);
  size_t len = 0;
  out[0] = '\0';
  for (const sb__violation_t *v = call->violations; v; v = v->next) {
    int k = snprintf(out + len, cap - len, "%s: %s\n", v->field, v->description);
    if (k > 0) len += (size_t)k < cap - len ? (size_t)k : cap - len - 1;
  }
  sb__call_free(call);
  return n;
}

static sb__patterns_t pats;

static void setup(void) {
  if (pats.n) return;
  const char *bad = NULL;
  CHECK_EQ_INT(sb__patterns_add(&pats, &vt__v__desc, &bad), 0);
}

/* Validates m and checks the exact violation list. */
#define EXPECT(m, want)                                                                            \
  do {                                                                                             \
    char got_[2048];                                                                               \
    setup();                                                                                       \
    int n_ = run(&pats, &(m).base, got_, sizeof got_);                                             \
    CHECK_EQ_STR(got_, want);                                                                      \
    int lines_ = 0;                                                                                \
    for (const char *c_ = want; *c_; c_++)                                                         \
      lines_ += *c_ == '\n';                                                                       \
    CHECK_EQ_INT(n_, lines_);                                                                      \
  } while (0)

TEST(tables_list_only_messages_with_rules_or_leading_to_them) {
  /* All, Child (own rules) and All.KidsEntry (leads to Child); not Plain. */
  CHECK_EQ_INT(vt__v__desc.n_rules, 3);
  int all = 0, child = 0, entry = 0;
  for (size_t i = 0; i < vt__v__desc.n_rules; i++) {
    const ProtobufCMessageDescriptor *d = vt__v__desc.rules[i].desc;
    CHECK(d != &vt__plain__descriptor);
    all += d == &vt__all__descriptor;
    child += d == &vt__child__descriptor;
    entry += d == &vt__all__kids_entry__descriptor;
  }
  CHECK(all == 1 && child == 1 && entry == 1);
}

TEST(valid_request_passes) {
  Vt__All m;
  valid(&m);
  EXPECT(m, "");
}

TEST(messages_without_rules_are_not_walked) {
  Vt__Plain p = VT__PLAIN__INIT;
  char got[64];
  setup();
  CHECK_EQ_INT(run(&pats, &p.base, got, sizeof got), 0);
}

TEST(string_lengths_count_code_points_and_bytes) {
  Vt__All m;
  valid(&m);
  m.s = "a";
  EXPECT(m, "s: must be at least 2 characters\n");
  m.s = "h\xc3\xa9"; /* "hé": 2 code points, 3 bytes */
  EXPECT(m, "");
  m.s = "h\xc3\xa9ll";
  EXPECT(m, "s: must be at most 3 characters\n");
  valid(&m);
  m.pat = "abcde";
  EXPECT(m, "pat: must be at most 4 bytes\n");
}

TEST(pattern) {
  Vt__All m;
  valid(&m);
  m.pat = "ab1";
  EXPECT(m, "pat: must match the pattern ^[a-z]+$\n");
  m.pat = "";
  EXPECT(m, "pat: must match the pattern ^[a-z]+$\n");
}

TEST(bytes_length) {
  Vt__All m;
  valid(&m);
  m.b.len = 0;
  EXPECT(m, "b: must be at least 1 byte\n");
}

TEST(integer_ranges_exclusive_and_inclusive) {
  Vt__All m;
  valid(&m);
  m.i32 = 0;
  EXPECT(m, "i32: must be greater than 0\n");
  m.i32 = 10;
  EXPECT(m, "i32: must be less than 10\n");
  valid(&m);
  m.i64 = 6;
  EXPECT(m, "i64: must be at most 5\n");
  m.i64 = -6;
  EXPECT(m, "i64: must be at least -5\n");
  valid(&m);
  m.u32 = 0;
  EXPECT(m, "u32: must be at least 1\n");
  valid(&m);
  m.u64 = UINT64_MAX;
  EXPECT(m, "u64: must be at most 100\n");
  valid(&m);
  m.si = 0;
  EXPECT(m, "si: must be less than 0\n");
  valid(&m);
  m.sf64 = INT64_MIN;
  EXPECT(m, "sf64: must be greater than -9223372036854775808\n");
}

TEST(floating_ranges_and_nan) {
  Vt__All m;
  valid(&m);
  m.f = 0.5f;
  EXPECT(m, "f: must be greater than 0.5\n");
  valid(&m);
  m.d = 1;
  EXPECT(m, "d: must be less than 1\n");
  m.d = NAN; /* breaks every bound */
  EXPECT(m, "d: must be at least 0\nd: must be less than 1\n");
}

TEST(enum_defined_only) {
  Vt__All m;
  valid(&m);
  m.color = (Vt__Color)7;
  EXPECT(m, "color: must be a value vt.Color defines\n");
  m.color = VT__COLOR__COLOR_UNSPECIFIED;
  EXPECT(m, "");
}

TEST(repeated_counts_and_item_rules) {
  Vt__All m;
  valid(&m);
  char *tags[3] = {"a", "", "c"};
  m.tags = tags;
  m.n_tags = 3;
  EXPECT(m, "tags: must have at most 2 items\ntags[1]: must be at least 1 character\n");
}

TEST(required_message_scalar_and_repeated) {
  Vt__All m;
  valid(&m);
  m.child = NULL;
  m.must = "";
  m.n_children = 0;
  EXPECT(m, "child: is required\nmust: is required\nchildren: is required\n");
}

TEST(nested_paths_follow_messages_lists_and_maps) {
  Vt__All m;
  valid(&m);
  Vt__Child inner = VT__CHILD__INIT, bad = VT__CHILD__INIT;
  inner.name = "";
  kid.next = &inner; /* child.next.name */
  bad.name = "";
  Vt__Child *list[2] = {&deep, &bad};
  m.children = list;
  m.n_children = 2;
  Vt__All__KidsEntry e = VT__ALL__KIDS_ENTRY__INIT, *entries[1] = {&e};
  e.key = "k";
  e.value = &bad;
  m.kids = entries;
  m.n_kids = 1;
  EXPECT(m, "kids[\"k\"].name: must be at least 1 character\n"
            "child.next.name: must be at least 1 character\n"
            "children[1].name: must be at least 1 character\n");
  kid.next = NULL;
}

TEST(explicit_presence_fields_are_checked_only_when_set) {
  Vt__All m;
  valid(&m);
  /* (protoc-c cannot generate proto3 `optional` fields: oneof members and messages are the
   * explicit-presence fields a proto3 contract has.) */
  m.choice_case = VT__ALL__CHOICE_ONE_I;
  m.one_i = 1;
  EXPECT(m, "");
  m.choice_case = VT__ALL__CHOICE_ONE_S;
  m.one_s = "abc";
  EXPECT(m, "one_s: must be at least 5 characters\n");
}

TEST(violations_are_capped_but_counted) {
  Vt__All m;
  valid(&m);
  static char *many[100];
  for (size_t i = 0; i < 100; i++)
    many[i] = "";
  m.tags = many;
  m.n_tags = 100;
  setup();
  sb_call_t *call = sb__call_new(NULL, &svc, 0, &no_ops, NULL, NULL);
  REQUIRE(call != NULL);
  int n = sb__validate(&pats, &vt__v__desc, call, &m.base);
  CHECK(n > (int)SB_VALIDATE_MAX_VIOLATIONS);
  CHECK_EQ_INT(call->n_violations, SB_VALIDATE_MAX_VIOLATIONS);
  sb__call_free(call);
}

TEST(patterns_compile_once) {
  sb__patterns_t p = {0};
  const char *bad = NULL;
  CHECK_EQ_INT(sb__patterns_add(&p, &vt__v__desc, &bad), 0);
  CHECK_EQ_INT(p.n, 1);
  CHECK_EQ_INT(sb__patterns_add(&p, &vt__v__desc, &bad), 0);
  CHECK_EQ_INT(p.n, 1);
  sb__patterns_free(&p);
}

static void *sys_alloc(void *ud, size_t n) {
  (void)ud;
  return malloc(n);
}
static void sys_free(void *ud, void *p) {
  (void)ud;
  free(p);
}

/* Custom json_name options travel in the service descriptor and reach the JSON mapping when
 * the service is registered. */
TEST(json_names_registered_with_the_service) {
  CHECK_EQ_INT(vt__v__desc.n_json_names, 1);
  REQUIRE(vt__v__desc.n_json_names == 1);
  CHECK(vt__v__desc.json_names[0].desc == &vt__named__descriptor);
  CHECK_EQ_INT(vt__v__desc.json_names[0].number, 1);
  CHECK_EQ_STR(vt__v__desc.json_names[0].json_name, "login");

  sb_server_config_t cfg = {.http_addr = "127.0.0.1:0", .threads = 1};
  sb_server_t *srv = NULL;
  sb_rpc_t *rpc = NULL;
  static const Vt__V_Handlers h = {0};
  REQUIRE(sb_server_new(&cfg, &srv) == 0);
  REQUIRE(sb_rpc_new(srv, &rpc) == 0);
  CHECK_EQ_INT(sb_rpc_register(rpc, &vt__v__desc, &h, NULL), 0);

  Vt__Named n = VT__NAMED__INIT;
  n.user_name = "ada";
  n.plain_field = 2;
  sb_buf_t out = {0};
  sb_jw_t w;
  sb_jw_init(&w, &out);
  CHECK_EQ_INT(sb_pbjson_write(&w, &n.base, 0), 0);
  static const char want[] = "{\"login\":\"ada\",\"plainField\":2}";
  CHECK_EQ_INT(sb_buf_pending(&out), sizeof want - 1);
  if (sb_buf_pending(&out) == sizeof want - 1) CHECK_MEM(sb_buf_head(&out), want, sizeof want - 1);
  sb_buf_free(&out);

  /* Input takes the custom name and the .proto name, not the default camel name. */
  ProtobufCAllocator alloc = {sys_alloc, sys_free, NULL};
  static const char *const accepted[] = {"{\"login\":\"x\"}", "{\"user_name\":\"x\"}"};
  for (size_t i = 0; i < 2; i++) {
    Vt__Named in = VT__NAMED__INIT;
    sb_pbjson_err_t err;
    CHECK_EQ_INT(sb_pbjson_decode(accepted[i], strlen(accepted[i]), &in.base, &alloc, 0, &err), 0);
    CHECK(in.user_name && strcmp(in.user_name, "x") == 0);
    if (in.user_name) free(in.user_name);
  }
  Vt__Named in = VT__NAMED__INIT;
  sb_pbjson_err_t err;
  CHECK_EQ_INT(sb_pbjson_decode("{\"userName\":\"x\"}", 14, &in.base, &alloc, 0, &err), SB_EINVAL);
  CHECK_EQ_STR(err.path, "userName");
  sb_rpc_free(rpc);
  sb_server_free(srv);
}

TEST(z_cleanup) {
  sb__patterns_free(&pats); /* runs last: tests run in definition order */
  CHECK(pats.n == 0);
}
