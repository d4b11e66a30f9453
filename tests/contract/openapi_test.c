/*
 * Tests of the OpenAPI documents protoc-gen-switchboard generates (src/contract/plugin/
 * emit_openapi.c). testdata/items.proto is compiled at build time by
 * switchboard_add_contract(); its document is read back with the project's JSON reader
 * (contract/json.h) into a small tree and checked against what the REST front-end serves.
 * The last tests run protoc with the plugin themselves (paths from CMake: SB_TEST_PROTOC,
 * SB_TEST_PROTOC_PLUGIN, SB_TEST_PROTO_DIR, SB_TEST_PROTOBUF_INCLUDE_DIR, SB_TEST_EXAMPLES_DIR)
 * to check that the output is deterministic and that comments are escaped.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "items.sb.h"
#include "sb_test.h"

static const sb_service_desc_t *const svc = &items__v1__item_service__desc;
static const sb_service_desc_t *const admin = &items__v1__item_admin__desc;

/* ---- a JSON tree, built with the pull reader ---- */

typedef struct node {
  sb_jtok_t type;     /* SB_JT_OBJ_BEGIN, SB_JT_ARR_BEGIN, SB_JT_STRING, SB_JT_NUMBER, ... */
  char *text;         /* strings and numbers; owned */
  char **keys;        /* object member names, parallel to kids; owned */
  struct node **kids; /* members or elements; owned */
  size_t n;           /* elements of kids */
} node_t;

static void node_free(node_t *n) {
  if (!n) return;
  for (size_t i = 0; i < n->n; i++) {
    node_free(n->kids[i]);
    if (n->keys) free(n->keys[i]);
  }
  free(n->kids);
  free(n->keys);
  free(n->text);
  free(n);
}

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* Parses the value whose first token is tok. NULL on a syntax error. */
static node_t *parse_value(sb_jr_t *r, sb_jtok_t tok) {
  if (tok == SB_JT_ERROR || tok == SB_JT_END || tok == SB_JT_OBJ_END || tok == SB_JT_ARR_END)
    return NULL;
  node_t *n = calloc(1, sizeof *n);
  n->type = tok;
  if (tok == SB_JT_STRING || tok == SB_JT_NUMBER) n->text = dup_n(r->str, r->len);
  if (tok != SB_JT_OBJ_BEGIN && tok != SB_JT_ARR_BEGIN) return n;
  for (;;) {
    sb_jtok_t t = sb_jr_next(r);
    char *key = NULL;
    if (t == SB_JT_OBJ_END || t == SB_JT_ARR_END) return n;
    if (t == SB_JT_KEY) {
      key = dup_n(r->str, r->len);
      t = sb_jr_next(r);
    }
    node_t *kid = parse_value(r, t);
    if (!kid) {
      free(key);
      node_free(n);
      return NULL;
    }
    n->kids = realloc(n->kids, (n->n + 1) * sizeof *n->kids);
    if (tok == SB_JT_OBJ_BEGIN) {
      n->keys = realloc(n->keys, (n->n + 1) * sizeof *n->keys);
      n->keys[n->n] = key;
    }
    n->kids[n->n++] = kid;
  }
}

/* Parses text as exactly one JSON value. NULL when it is not valid JSON. */
static node_t *parse(const char *text, size_t len) {
  sb_jr_t r;
  sb_jr_init(&r, text, len);
  node_t *n = parse_value(&r, sb_jr_next(&r));
  if (n && sb_jr_next(&r) != SB_JT_END) {
    node_free(n);
    n = NULL;
  }
  sb_jr_free(&r);
  return n;
}

/* The member key of object n, or NULL. */
static const node_t *get(const node_t *n, const char *key) {
  if (!n || n->type != SB_JT_OBJ_BEGIN) return NULL;
  for (size_t i = 0; i < n->n; i++)
    if (!strcmp(n->keys[i], key)) return n->kids[i];
  return NULL;
}

/* The node at a path of member names separated by '|' (names contain '/' and '.'). */
static const node_t *at(const node_t *n, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *save = NULL, *k = strtok_r(buf, "|", &save); k && n; k = strtok_r(NULL, "|", &save))
    n = get(n, k);
  return n;
}

/* The text of the string at path, or NULL. */
static const char *str_at(const node_t *n, const char *path) {
  const node_t *s = at(n, path);
  return s && s->type == SB_JT_STRING ? s->text : NULL;
}

/* The element of array n whose member "name" is name, or NULL. */
static const node_t *named(const node_t *n, const char *name) {
  if (!n || n->type != SB_JT_ARR_BEGIN) return NULL;
  for (size_t i = 0; i < n->n; i++)
    if (str_at(n->kids[i], "name") && !strcmp(str_at(n->kids[i], "name"), name)) return n->kids[i];
  return NULL;
}

/* The document of testdata/items.proto, parsed once. */
static node_t *doc(void) {
  static node_t *d;
  if (!d && svc->openapi_json) d = parse(svc->openapi_json, strlen(svc->openapi_json));
  return d;
}

/* ---- the generated document ---- */

TEST(document_is_one_json_object) {
  REQUIRE(svc->openapi_json != NULL);
  const node_t *d = doc();
  REQUIRE(d != NULL);
  CHECK_EQ_INT(d->type, SB_JT_OBJ_BEGIN);
  CHECK_EQ_STR(str_at(d, "openapi"), "3.1.0");
  CHECK_EQ_STR(str_at(d, "info|title"), "items.v1");
  CHECK_EQ_STR(str_at(d, "info|version"), "1");
}

TEST(both_services_share_the_file_document) {
  REQUIRE(svc->openapi_json != NULL && admin->openapi_json != NULL);
  CHECK_EQ_STR(admin->openapi_json, svc->openapi_json);
  /* Methods of both services are described. */
  CHECK_EQ_STR(str_at(doc(), "paths|/items.v1.ItemAdmin/Purge|post|operationId"),
               "ItemAdmin_Purge");
  CHECK_EQ_STR(str_at(doc(), "paths|/items.v1.ItemAdmin/Sync|post|operationId"), "ItemAdmin_Sync");
}

TEST(paths_and_operation_ids) {
  const node_t *d = doc();
  REQUIRE(d != NULL);
  static const char *const cases[][2] = {
      {"paths|/items/{id}|get|operationId", "ItemService_GetItem"},
      {"paths|/v1/items/{id}|get|operationId", "ItemService_GetItem_1"},
      {"paths|/items/{id}|head|operationId", "ItemService_GetItem_2"},
      {"paths|/items.v1.ItemService/GetItem|post|operationId", "ItemService_GetItem_3"},
      {"paths|/items|get|operationId", "ItemService_ListItems"},
      {"paths|/items|post|operationId", "ItemService_CreateItem"},
      {"paths|/items/{id}|patch|operationId", "ItemService_UpdateItem"},
      {"paths|/items/{id}|put|operationId", "ItemService_UpdateItem_1"},
      {"paths|/items/{id}|delete|operationId", "ItemService_DeleteItem"},
      {"paths|/items:watch|get|operationId", "ItemService_WatchItems"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK_EQ_STR(str_at(d, cases[i][0]), cases[i][1]);
  const node_t *tags = at(d, "paths|/items|get|tags");
  REQUIRE(tags != NULL && tags->n == 1);
  CHECK_EQ_STR(tags->kids[0]->text, "ItemService");
}

TEST(path_and_query_parameters) {
  const node_t *d = doc();
  REQUIRE(d != NULL);
  const node_t *id = named(at(d, "paths|/items/{id}|get|parameters"), "id");
  REQUIRE(id != NULL);
  CHECK_EQ_STR(str_at(id, "in"), "path");
  CHECK(at(id, "required") && at(id, "required")->type == SB_JT_TRUE);
  CHECK_EQ_STR(str_at(id, "schema|type"), "integer");
  CHECK_EQ_STR(str_at(id, "schema|format"), "uint32");

  const node_t *list = at(d, "paths|/items|get|parameters");
  CHECK_EQ_STR(str_at(named(list, "pageSize"), "in"), "query");
  CHECK_EQ_STR(str_at(named(list, "pageSize"), "schema|format"), "uint32");
  CHECK_EQ_STR(str_at(named(list, "pageToken"), "in"), "query");
  CHECK_EQ_STR(str_at(named(list, "pageToken"), "schema|type"), "string");

  /* PATCH binds item.id in the path and item as the body: only update_mask is left. Its
   * template has the shape of GET /items/{id}, so it shares that OpenAPI path (OpenAPI
   * forbids two paths differing only in variable names); the parameter is named "id" and
   * says which field it binds. */
  CHECK(at(d, "paths|/items/{item.id}") == NULL);
  const node_t *patch = at(d, "paths|/items/{id}|patch|parameters");
  REQUIRE(patch != NULL);
  CHECK_EQ_INT(patch->n, 2);
  CHECK_EQ_STR(str_at(named(patch, "id"), "in"), "path");
  const char *binds = str_at(named(patch, "id"), "description");
  CHECK(binds != NULL && strstr(binds, "item.id") != NULL);
  CHECK_EQ_STR(str_at(named(patch, "updateMask"), "in"), "query");
  CHECK_EQ_STR(str_at(d, "paths|/items/{id}|patch|requestBody|content|application/json|"
                         "schema|$ref"),
               "#/components/schemas/items.v1.Item");
  /* PUT takes the whole request as body: no query parameters. */
  const node_t *put = at(d, "paths|/items/{id}|put|parameters");
  REQUIRE(put != NULL);
  CHECK_EQ_INT(put->n, 1);
  CHECK_EQ_STR(str_at(d, "paths|/items/{id}|put|requestBody|content|application/json|"
                         "schema|$ref"),
               "#/components/schemas/items.v1.UpdateItemRequest");
  /* The default route takes the whole request too. */
  CHECK(at(d, "paths|/items.v1.ItemService/GetItem|post|parameters") == NULL);
  CHECK_EQ_STR(str_at(d, "paths|/items.v1.ItemService/GetItem|post|requestBody|content|"
                         "application/json|schema|$ref"),
               "#/components/schemas/items.v1.GetItemRequest");
}

TEST(responses) {
  const node_t *d = doc();
  REQUIRE(d != NULL);
  CHECK_EQ_STR(str_at(d, "paths|/items|post|responses|201|content|application/json|schema|$ref"),
               "#/components/schemas/items.v1.Item");
  CHECK(at(d, "paths|/items|post|responses|200") == NULL);
  const node_t *del = at(d, "paths|/items/{id}|delete|responses|204");
  REQUIRE(del != NULL);
  CHECK(get(del, "content") == NULL);
  CHECK_EQ_STR(str_at(d, "paths|/items/{id}|get|responses|default|content|application/json|"
                         "schema|$ref"),
               "#/components/schemas/Error");
  /* response_body "items": the array field, not the whole response. */
  CHECK_EQ_STR(str_at(d, "paths|/items|get|responses|200|content|application/json|schema|type"),
               "array");
  CHECK_EQ_STR(str_at(d, "paths|/items|get|responses|200|content|application/json|schema|items|"
                         "$ref"),
               "#/components/schemas/items.v1.Item");
  /* Server streaming: SSE or NDJSON. */
  const node_t *watch = at(d, "paths|/items:watch|get|responses|200|content");
  CHECK_EQ_STR(str_at(watch, "text/event-stream|schema|type"), "string");
  CHECK_EQ_STR(str_at(watch, "application/x-ndjson|schema|$ref"),
               "#/components/schemas/items.v1.ItemEvent");
  CHECK(at(d, "paths|/items:watch|get|requestBody") == NULL);
  CHECK_EQ_STR(str_at(named(at(d, "paths|/items:watch|get|parameters"), "sinceId"), "in"), "query");
}

TEST(component_schemas) {
  const node_t *d = doc();
  REQUIRE(d != NULL);
  const node_t *item = at(d, "components|schemas|items.v1.Item");
  REQUIRE(item != NULL);
  CHECK_EQ_STR(str_at(item, "type"), "object");
  CHECK_EQ_STR(str_at(item, "properties|id|type"), "integer");
  CHECK_EQ_STR(str_at(item, "properties|id|format"), "uint32");
  CHECK_EQ_STR(str_at(item, "properties|name|type"), "string");
  CHECK_EQ_STR(str_at(item, "properties|price|type"), "number");
  CHECK_EQ_STR(str_at(item, "properties|price|format"), "double");
  /* lowerCamelCase names, as the server writes them. */
  const node_t *list = at(d, "components|schemas|items.v1.ListItemsResponse|properties");
  CHECK(get(list, "nextPageToken") != NULL);
  CHECK(get(list, "next_page_token") == NULL);
  CHECK_EQ_STR(str_at(list, "items|items|$ref"), "#/components/schemas/items.v1.Item");
  /* Well-known types are inline. */
  CHECK_EQ_STR(str_at(d, "components|schemas|items.v1.UpdateItemRequest|properties|updateMask|"
                         "type"),
               "string");
  CHECK(at(d, "components|schemas|google.protobuf.FieldMask") == NULL);
  const node_t *err = at(d, "components|schemas|Error|properties");
  CHECK_EQ_STR(str_at(err, "code|format"), "int32");
  CHECK_EQ_STR(str_at(err, "message|type"), "string");
  CHECK_EQ_STR(str_at(err, "details|type"), "array");
  CHECK_EQ_STR(str_at(err, "details|items|type"), "object");
}

/* ---- running the plugin ---- */

/* Reads all of path into a malloc'd NUL-terminated string, or NULL. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, len = 0;
  char *s = malloc(cap);
  for (size_t n; (n = fread(s + len, 1, cap - len - 1, f)) > 0;) {
    len += n;
    if (cap - len < 2) s = realloc(s, cap *= 2);
  }
  fclose(f);
  s[len] = '\0';
  return s;
}

/* Runs protoc with the plugin on dir/name (importing from dir) into out. Returns its status. */
static int run_plugin(const char *dir, const char *name, const char *out) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "'%s' --plugin=protoc-gen-switchboard='%s' --switchboard_out='%s' -I'%s' -I'%s' "
           "-I'%s' '%s/%s'",
           SB_TEST_PROTOC, SB_TEST_PROTOC_PLUGIN, out, dir, SB_TEST_PROTO_DIR,
           SB_TEST_PROTOBUF_INCLUDE_DIR, dir, name);
  return system(cmd);
}

/* Decodes the C string literals of Sb__openapi_json in a generated .sb.c (the escapes the
 * emitter uses: \" \\ \? \n and three-digit octal). NULL when it is not there. */
static char *openapi_of(const char *sbc) {
  const char *p = strstr(sbc, "Sb__openapi_json[] =");
  if (!p) return NULL;
  const char *end = strstr(p, ";\n");
  char *out = malloc(strlen(p) + 1);
  size_t o = 0;
  for (p = strchr(p, '"'); p && p < end; p = strchr(p, '"')) {
    for (p++; *p != '"'; p++) {
      if (*p != '\\') {
        out[o++] = *p;
        continue;
      }
      p++;
      if (*p >= '0' && *p <= '7') {
        out[o++] = (char)((p[0] - '0') * 64 + (p[1] - '0') * 8 + (p[2] - '0'));
        p += 2;
      } else {
        out[o++] = *p == 'n' ? '\n' : *p;
      }
    }
    p++;
  }
  out[o] = '\0';
  return out;
}

TEST(output_is_deterministic) {
  char d1[] = "/tmp/sb_openapi_test_XXXXXX", d2[] = "/tmp/sb_openapi_test_XXXXXX";
  REQUIRE(mkdtemp(d1) != NULL && mkdtemp(d2) != NULL);
  CHECK_EQ_INT(run_plugin(SB_TEST_EXAMPLES_DIR, "items.proto", d1), 0);
  CHECK_EQ_INT(run_plugin(SB_TEST_EXAMPLES_DIR, "items.proto", d2), 0);
  char p1[512], p2[512];
  snprintf(p1, sizeof p1, "%s/items.sb.c", d1);
  snprintf(p2, sizeof p2, "%s/items.sb.c", d2);
  char *a = slurp(p1), *b = slurp(p2);
  REQUIRE(a != NULL && b != NULL);
  CHECK(strcmp(a, b) == 0);
  char *json = openapi_of(a);
  REQUIRE(json != NULL);
  node_t *n = parse(json, strlen(json));
  CHECK(n != NULL);
  /* The example has no extra HEAD binding, so the default route is binding 2. */
  CHECK_EQ_STR(str_at(n, "paths|/items.v1.ItemService/GetItem|post|operationId"),
               "ItemService_GetItem_2");
  CHECK_EQ_STR(str_at(n, "paths|/items|get|responses|200|content|application/json|schema|$ref"),
               "#/components/schemas/items.v1.ListItemsResponse");
  node_free(n);
  free(json);
  free(a);
  free(b);
  static const char *const files[] = {"items.sb.c", "items.sb.h"};
  for (size_t i = 0; i < 2; i++) {
    snprintf(p1, sizeof p1, "%s/%s", d1, files[i]);
    snprintf(p2, sizeof p2, "%s/%s", d2, files[i]);
    unlink(p1);
    unlink(p2);
  }
  rmdir(d1);
  rmdir(d2);
}

TEST(comments_and_types_are_described) {
  char dir[] = "/tmp/sb_openapi_test_XXXXXX";
  REQUIRE(mkdtemp(dir) != NULL);
  char path[512];
  snprintf(path, sizeof path, "%s/c.proto", dir);
  FILE *f = fopen(path, "w");
  REQUIRE(f != NULL);
  fputs("syntax = \"proto3\";\npackage c;\n"
        "import \"google/api/annotations.proto\";\n"
        "import \"google/protobuf/timestamp.proto\";\n"
        "import \"google/protobuf/duration.proto\";\n"
        "import \"google/protobuf/wrappers.proto\";\n"
        "import \"google/protobuf/struct.proto\";\n"
        "// A \"quoted\" \\ back-slashed caf\xc3\xa9 message?? /* not a comment */\n"
        "message M {\n"
        "  // The id.\n  int64 id = 1;\n"
        "  uint64 big = 2;\n  bytes data = 3;\n  E e = 4;\n  map<string, int32> counts = 5;\n"
        "  google.protobuf.Timestamp at = 6;\n  google.protobuf.Duration took = 7;\n"
        "  google.protobuf.Int64Value maybe = 8;\n  google.protobuf.Value any = 9;\n"
        "  oneof choice { string a = 10; int32 b = 11; }\n"
        "  repeated string tags = 12;\n  Inner inner = 13;\n"
        "  message Inner { sint32 n = 1; }\n"
        "}\n"
        "enum E { E_UNSPECIFIED = 0; E_ONE = 1; }\n"
        "service S {\n"
        "  // Gets an M.\n  // Second line.\n"
        "  rpc Get(M) returns (M) { option (google.api.http) = { get: \"/v1/{id=ms/*}\" }; }\n"
        "}\n",
        f);
  fclose(f);
  CHECK_EQ_INT(run_plugin(dir, "c.proto", dir), 0);
  snprintf(path, sizeof path, "%s/c.sb.c", dir);
  char *sbc = slurp(path);
  REQUIRE(sbc != NULL);
  char *json = openapi_of(sbc);
  REQUIRE(json != NULL);
  node_t *d = parse(json, strlen(json));
  REQUIRE(d != NULL);
  const node_t *m = at(d, "components|schemas|c.M");
  CHECK_EQ_STR(str_at(m, "description"),
               "A \"quoted\" \\ back-slashed caf\xc3\xa9 message?? /* not a comment */");
  CHECK_EQ_STR(str_at(m, "properties|id|description"), "The id.");
  CHECK_EQ_STR(str_at(m, "properties|id|type"), "string");
  CHECK_EQ_STR(str_at(m, "properties|id|format"), "int64");
  CHECK_EQ_STR(str_at(m, "properties|big|format"), "uint64");
  CHECK_EQ_STR(str_at(m, "properties|data|format"), "byte");
  CHECK_EQ_STR(str_at(m, "properties|e|$ref"), "#/components/schemas/c.E");
  CHECK_EQ_STR(str_at(m, "properties|counts|type"), "object");
  CHECK_EQ_STR(str_at(m, "properties|counts|additionalProperties|format"), "int32");
  CHECK_EQ_STR(str_at(m, "properties|at|format"), "date-time");
  CHECK_EQ_STR(str_at(m, "properties|took|pattern"), "^-?[0-9]+(\\.[0-9]{1,9})?s$");
  CHECK_EQ_STR(str_at(m, "properties|maybe|format"), "int64");
  CHECK(at(m, "properties|any") && at(m, "properties|any")->n == 0);
  CHECK(str_at(m, "properties|a|description") &&
        strstr(str_at(m, "properties|a|description"), "oneof choice"));
  CHECK_EQ_STR(str_at(m, "properties|tags|items|type"), "string");
  CHECK_EQ_STR(str_at(m, "properties|inner|$ref"), "#/components/schemas/c.M.Inner");
  CHECK_EQ_STR(str_at(d, "components|schemas|c.M.Inner|properties|n|format"), "int32");
  CHECK(at(d, "components|schemas|c.M.CountsEntry") == NULL);
  const node_t *e = at(d, "components|schemas|c.E|enum");
  REQUIRE(e != NULL && e->n == 2);
  CHECK_EQ_STR(e->kids[1]->text, "E_ONE");
  /* {id=ms/<pattern>} is the parameter "id"; the rest of M is query parameters. */
  const node_t *op = at(d, "paths|/v1/{id}|get");
  REQUIRE(op != NULL);
  CHECK_EQ_STR(str_at(op, "summary"), "Gets an M.");
  CHECK_EQ_STR(str_at(op, "description"), "Gets an M.\nSecond line.");
  const node_t *params = get(op, "parameters");
  CHECK_EQ_STR(str_at(named(params, "id"), "in"), "path");
  CHECK_EQ_STR(str_at(named(params, "inner.n"), "in"), "query");
  CHECK_EQ_STR(str_at(named(params, "tags"), "schema|type"), "array");
  CHECK(named(params, "tags") && at(named(params, "tags"), "explode") &&
        at(named(params, "tags"), "explode")->type == SB_JT_TRUE);
  CHECK(named(params, "counts") == NULL); /* maps cannot be query parameters */
  CHECK(named(params, "any") == NULL);
  CHECK(named(params, "at") != NULL);
  node_free(d);
  free(json);
  free(sbc);
  static const char *const files[] = {"c.proto", "c.sb.c", "c.sb.h"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

TEST(zz_free_document) {
  node_free(doc());
}
