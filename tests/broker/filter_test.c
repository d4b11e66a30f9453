/*
 * Tests of filter policies, AMQP routing keys and header matching (src/broker/filter.c),
 * with the examples of SNS's filter-policy documentation as the reference behaviour.
 */
#include <string.h>

#include "broker/filter.h"
#include "sb_test.h"
#include "switchboard/error.h"

static sb__filter_t *compile(const char *p) {
  sb__filter_t *f = NULL;
  const char *why = NULL;
  int rc = sb__filter_compile(p, strlen(p), &f, &why);
  if (rc) fprintf(stderr, "compile %s: %s\n", p, why ? why : "?");
  return f;
}

static bool bad(const char *p) {
  sb__filter_t *f = NULL;
  const char *why = NULL;
  int rc = sb__filter_compile(p, strlen(p), &f, &why);
  sb__filter_free(f);
  return rc == SB_EINVAL && why != NULL;
}

#define S(n, v)                                                                                    \
  { n, strlen(n), "String", 6, v, strlen(v) }
#define N(n, v)                                                                                    \
  { n, strlen(n), "Number", 6, v, strlen(v) }
#define A(n, v)                                                                                    \
  { n, strlen(n), "String.Array", 12, v, strlen(v) }

static bool attrs(const char *policy, const sb_broker_attr_t *a, size_t n) {
  sb__filter_t *f = compile(policy);
  bool m = f && sb__filter_match_attrs(f, a, n);
  sb__filter_free(f);
  return m;
}

static bool body(const char *policy, const char *b) {
  sb__filter_t *f = compile(policy);
  bool m = f && sb__filter_match_body(f, b, strlen(b));
  sb__filter_free(f);
  return m;
}

TEST(exact_prefix_and_or_across_values) {
  sb_broker_attr_t a[] = {S("store", "example_corp"), N("price_usd", "210.75"),
                          S("event", "order_placed")};
  CHECK(attrs("{\"store\": [\"example_corp\"]}", a, 3));
  CHECK(!attrs("{\"store\": [\"other\"]}", a, 3));
  CHECK(attrs("{\"store\": [\"other\", \"example_corp\"]}", a, 3));
  CHECK(attrs("{\"event\": [{\"prefix\": \"order\"}]}", a, 3));
  CHECK(attrs("{\"event\": [{\"suffix\": \"_placed\"}]}", a, 3));
  CHECK(attrs("{\"store\": [{\"equals-ignore-case\": \"EXAMPLE_CORP\"}]}", a, 3));
  /* AND across keys */
  CHECK(attrs("{\"store\": [\"example_corp\"], \"event\": [\"order_placed\"]}", a, 3));
  CHECK(!attrs("{\"store\": [\"example_corp\"], \"event\": [\"order_cancelled\"]}", a, 3));
  /* a string condition does not match a Number attribute */
  CHECK(!attrs("{\"price_usd\": [\"210.75\"]}", a, 3));
}

TEST(numeric_anything_but_exists) {
  sb_broker_attr_t a[] = {N("price", "210.75"), S("kind", "book")};
  CHECK(attrs("{\"price\": [{\"numeric\": [\">=\", 100]}]}", a, 2));
  CHECK(attrs("{\"price\": [{\"numeric\": [\">\", 0, \"<=\", 210.75]}]}", a, 2));
  CHECK(!attrs("{\"price\": [{\"numeric\": [\"<\", 100]}]}", a, 2));
  CHECK(attrs("{\"price\": [{\"numeric\": [\"=\", 210.75]}]}", a, 2));
  CHECK(attrs("{\"price\": [210.75]}", a, 2));
  CHECK(attrs("{\"kind\": [{\"anything-but\": [\"toy\", \"game\"]}]}", a, 2));
  CHECK(!attrs("{\"kind\": [{\"anything-but\": \"book\"}]}", a, 2));
  CHECK(!attrs("{\"kind\": [{\"anything-but\": {\"prefix\": \"bo\"}}]}", a, 2));
  CHECK(!attrs("{\"missing\": [{\"anything-but\": \"x\"}]}", a, 2)); /* needs presence */
  CHECK(attrs("{\"kind\": [{\"exists\": true}]}", a, 2));
  CHECK(attrs("{\"missing\": [{\"exists\": false}]}", a, 2));
  CHECK(!attrs("{\"kind\": [{\"exists\": false}]}", a, 2));
}

TEST(or_groups_and_arrays) {
  sb_broker_attr_t a[] = {S("source", "aws.cloudwatch"), A("tags", "[\"red\", \"blue\", 3]")};
  CHECK(attrs("{\"$or\": [{\"source\": [\"aws.cloudwatch\"]}, {\"x\": [\"y\"]}]}", a, 2));
  CHECK(!attrs("{\"$or\": [{\"source\": [\"nope\"]}, {\"x\": [\"y\"]}]}", a, 2));
  CHECK(attrs("{\"tags\": [\"blue\"]}", a, 2));
  CHECK(attrs("{\"tags\": [3]}", a, 2));
  CHECK(!attrs("{\"tags\": [\"green\"]}", a, 2));
}

TEST(body_scope_with_nesting) {
  const char *b = "{\"order\": {\"type\": \"created\", \"total\": 42.5, \"items\": [\"a\", "
                  "\"b\"]}, \"customer\": {\"vip\": true}, \"note\": null}";
  CHECK(body("{\"order\": {\"type\": [\"created\"]}}", b));
  CHECK(body("{\"order\": {\"total\": [{\"numeric\": [\">\", 40]}]}}", b));
  CHECK(body("{\"order\": {\"items\": [\"b\"]}}", b));
  CHECK(body("{\"customer\": {\"vip\": [true]}}", b));
  CHECK(body("{\"note\": [null]}", b));
  CHECK(!body("{\"order\": {\"type\": [\"cancelled\"]}}", b));
  CHECK(!body("{\"type\": [\"created\"]}", b)); /* paths are absolute */
  CHECK(!body("{\"order\": {\"type\": [\"created\"]}}", "not json"));
}

TEST(bad_policies_are_refused_with_a_reason) {
  CHECK(bad(""));
  CHECK(bad("[]"));
  CHECK(bad("{\"a\": \"b\"}"));
  CHECK(bad("{\"a\": []}"));
  CHECK(bad("{\"a\": [{\"wat\": 1}]}"));
  CHECK(bad("{\"a\": [{\"numeric\": [\">\", 5, \"<\", 1]}]}"));
  CHECK(bad("{\"a\": [{\"numeric\": [\"~\", 5]}]}"));
  CHECK(bad("{\"a\": [{\"prefix\": 5}]}"));
  CHECK(bad("{\"$or\": [{\"a\": [\"b\"]}]}"));
  CHECK(bad("{\"a\": [\"b\"],}"));
  char deep[200] = "";
  for (int i = 0; i < 20; i++)
    strcat(deep, "{\"a\":");
  strcat(deep, "[1]");
  for (int i = 0; i < 20; i++)
    strcat(deep, "}");
  CHECK(bad(deep));
}

TEST(amqp_topic_routing) {
  CHECK(sb__route_match("stock.usd.nyse", "stock.usd.nyse"));
  CHECK(sb__route_match("stock.*.nyse", "stock.usd.nyse"));
  CHECK(!sb__route_match("stock.*.nyse", "stock.nyse"));
  CHECK(sb__route_match("stock.#", "stock.usd.nyse"));
  CHECK(sb__route_match("stock.#", "stock"));
  CHECK(sb__route_match("#", "anything.at.all"));
  CHECK(sb__route_match("#", ""));
  CHECK(sb__route_match("#.nyse", "stock.usd.nyse"));
  CHECK(sb__route_match("*.#.nyse", "stock.nyse"));
  CHECK(!sb__route_match("*.*.nyse", "stock.nyse"));
  CHECK(sb__route_match("a.#.b.#.c", "a.x.b.y.z.c"));
  CHECK(!sb__route_match("a.#.b.#.c", "a.x.c"));
  CHECK(sb__route_match("", ""));
  CHECK(!sb__route_match("a", ""));
  CHECK(!sb__route_match("a.b", "a.bb"));
}

TEST(amqp_headers_matching) {
  sb_broker_attr_t a[] = {S("format", "pdf"), S("type", "report")};
  sb_broker_kv_t all[] = {{"format", "pdf"}, {"type", "report"}};
  sb_broker_kv_t mixed[] = {{"format", "pdf"}, {"type", "log"}};
  sb_broker_kv_t present[] = {{"format", NULL}};
  CHECK(sb__headers_match(all, 2, false, a, 2));
  CHECK(!sb__headers_match(mixed, 2, false, a, 2));
  CHECK(sb__headers_match(mixed, 2, true, a, 2));
  CHECK(sb__headers_match(present, 1, false, a, 2));
  CHECK(!sb__headers_match(mixed + 1, 1, true, a, 2));
}
