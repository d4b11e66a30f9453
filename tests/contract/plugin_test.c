/*
 * Tests of protoc-gen-switchboard (src/contract/plugin/): testdata/items.proto is compiled by
 * switchboard_add_contract() at build time, and these tests check what the generated
 * items.sb.h / items.sb.c describe: the method table, message descriptors, streaming kinds,
 * idempotency, every HTTP binding, our method options, the handler table's layout and the
 * embedded FileDescriptorProto. The last test runs protoc with the plugin on contracts it must
 * reject (paths from CMake: SB_TEST_PROTOC, SB_TEST_PROTOC_PLUGIN, SB_TEST_PROTO_DIR,
 * SB_TEST_PROTOBUF_INCLUDE_DIR).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "items.sb.h"
#include "sb_test.h"

static const sb_service_desc_t *const svc = &items__v1__item_service__desc;
static const sb_service_desc_t *const admin = &items__v1__item_admin__desc;

/* The method named name in d, or NULL. */
static const sb_method_desc_t *method(const sb_service_desc_t *d, const char *name) {
  for (size_t i = 0; i < d->n_methods; i++)
    if (!strcmp(d->methods[i].name, name)) return &d->methods[i];
  return NULL;
}

/* Checks one HTTP rule against the expected method, path, body and response_body. */
#define CHECK_RULE(rule, m, p, b, rb)                                                              \
  do {                                                                                             \
    CHECK_EQ_STR((rule).method, m);                                                                \
    CHECK_EQ_STR((rule).path, p);                                                                  \
    CHECK_EQ_STR((rule).body, b);                                                                  \
    CHECK_EQ_STR((rule).response_body, rb);                                                        \
  } while (0)

TEST(service_names) {
  CHECK_EQ_STR(svc->full_name, "items.v1.ItemService");
  CHECK_EQ_STR(svc->package, "items.v1");
  CHECK_EQ_STR(admin->full_name, "items.v1.ItemAdmin");
  CHECK_EQ_STR(admin->package, "items.v1");
  /* One OpenAPI document per file, shared by its services (openapi_test.c checks it). */
  CHECK(svc->openapi_json != NULL);
  CHECK(admin->openapi_json == svc->openapi_json);
}

TEST(methods_in_declaration_order) {
  static const char *const names[] = {"GetItem",    "CreateItem", "ListItems",
                                      "UpdateItem", "DeleteItem", "WatchItems"};
  REQUIRE(svc->n_methods == 6);
  for (size_t i = 0; i < 6; i++) {
    char path[64];
    snprintf(path, sizeof path, "/items.v1.ItemService/%s", names[i]);
    CHECK_EQ_STR(svc->methods[i].name, names[i]);
    CHECK_EQ_STR(svc->methods[i].path, path);
  }
  REQUIRE(admin->n_methods == 3);
  CHECK_EQ_STR(admin->methods[0].name, "Purge");
  CHECK_EQ_STR(admin->methods[0].path, "/items.v1.ItemAdmin/Purge");
  CHECK_EQ_STR(admin->methods[1].name, "Import");
  CHECK_EQ_STR(admin->methods[2].name, "Sync");
  CHECK_EQ_STR(admin->methods[2].path, "/items.v1.ItemAdmin/Sync");
}

TEST(message_descriptors_are_protoc_c_ones) {
  REQUIRE(svc->n_methods == 6);
  const sb_method_desc_t *m = svc->methods;
  CHECK(m[0].input == &items__v1__get_item_request__descriptor);
  CHECK(m[0].output == &items__v1__item__descriptor);
  CHECK(m[1].input == &items__v1__create_item_request__descriptor);
  CHECK(m[1].output == &items__v1__item__descriptor);
  CHECK(m[2].input == &items__v1__list_items_request__descriptor);
  CHECK(m[2].output == &items__v1__list_items_response__descriptor);
  CHECK(m[3].input == &items__v1__update_item_request__descriptor);
  CHECK(m[3].output == &items__v1__item__descriptor);
  CHECK(m[4].input == &items__v1__delete_item_request__descriptor);
  /* A type from an imported file: its descriptor comes from sb_contract_protos. */
  CHECK(m[4].output == &google__protobuf__empty__descriptor);
  CHECK(m[5].input == &items__v1__watch_items_request__descriptor);
  CHECK(m[5].output == &items__v1__item_event__descriptor);
  /* The request type really is the protoc-c message, field mask included. */
  CHECK_EQ_STR(m[3].input->name, "items.v1.UpdateItemRequest");
  const ProtobufCFieldDescriptor *mask =
      protobuf_c_message_descriptor_get_field_by_name(m[3].input, "update_mask");
  REQUIRE(mask != NULL);
  CHECK(mask->descriptor == &google__protobuf__field_mask__descriptor);
  REQUIRE(admin->n_methods == 3);
  CHECK(admin->methods[0].input == &google__protobuf__empty__descriptor);
  CHECK(admin->methods[1].input == &items__v1__item__descriptor);
  CHECK(admin->methods[2].output == &items__v1__item_event__descriptor);
}

TEST(kinds) {
  for (size_t i = 0; i < svc->n_methods; i++)
    CHECK_EQ_INT(svc->methods[i].kind, strcmp(svc->methods[i].name, "WatchItems")
                                           ? SB_METHOD_UNARY
                                           : SB_METHOD_SERVER_STREAMING);
  REQUIRE(admin->n_methods == 3);
  CHECK_EQ_INT(admin->methods[0].kind, SB_METHOD_UNARY);
  CHECK_EQ_INT(admin->methods[1].kind, SB_METHOD_CLIENT_STREAMING);
  CHECK_EQ_INT(admin->methods[2].kind, SB_METHOD_BIDI_STREAMING);
}

TEST(idempotency) {
  REQUIRE(svc->n_methods == 6);
  CHECK_EQ_INT(method(svc, "GetItem")->idempotency, SB_IDEMPOTENCY_NO_SIDE_EFFECTS);
  CHECK_EQ_INT(method(svc, "ListItems")->idempotency, SB_IDEMPOTENCY_NO_SIDE_EFFECTS);
  CHECK_EQ_INT(method(svc, "UpdateItem")->idempotency, SB_IDEMPOTENCY_IDEMPOTENT);
  CHECK_EQ_INT(method(svc, "CreateItem")->idempotency, SB_IDEMPOTENCY_UNKNOWN);
  CHECK_EQ_INT(method(svc, "DeleteItem")->idempotency, SB_IDEMPOTENCY_UNKNOWN);
  CHECK_EQ_INT(method(svc, "WatchItems")->idempotency, SB_IDEMPOTENCY_UNKNOWN);
}

TEST(http_rules) {
  const sb_method_desc_t *m = method(svc, "GetItem");
  REQUIRE(m != NULL);
  /* The primary rule, then each additional binding; custom verbs use custom.kind. */
  REQUIRE(m->n_http == 3);
  CHECK_RULE(m->http[0], "GET", "/items/{id}", NULL, NULL);
  CHECK_RULE(m->http[1], "GET", "/v1/items/{id}", NULL, NULL);
  CHECK_RULE(m->http[2], "HEAD", "/items/{id}", NULL, NULL);

  m = method(svc, "CreateItem");
  REQUIRE(m != NULL && m->n_http == 1);
  CHECK_RULE(m->http[0], "POST", "/items", "*", NULL);

  m = method(svc, "ListItems");
  REQUIRE(m != NULL && m->n_http == 1);
  CHECK_RULE(m->http[0], "GET", "/items", NULL, "items");

  m = method(svc, "UpdateItem");
  REQUIRE(m != NULL && m->n_http == 2);
  CHECK_RULE(m->http[0], "PATCH", "/items/{item.id}", "item", NULL);
  CHECK_RULE(m->http[1], "PUT", "/items/{item.id}", "*", NULL);

  m = method(svc, "DeleteItem");
  REQUIRE(m != NULL && m->n_http == 1);
  CHECK_RULE(m->http[0], "DELETE", "/items/{id}", NULL, NULL);

  m = method(svc, "WatchItems");
  REQUIRE(m != NULL && m->n_http == 1);
  CHECK_RULE(m->http[0], "GET", "/items:watch", NULL, NULL);

  /* Without google.api.http there is no binding: REST uses its default convention. */
  for (size_t i = 0; i < admin->n_methods; i++) {
    CHECK_EQ_INT(admin->methods[i].n_http, 0);
    CHECK(admin->methods[i].http == NULL);
  }
}

TEST(switchboard_options) {
  CHECK_EQ_INT(method(svc, "CreateItem")->success_status, 201);
  CHECK_EQ_INT(method(svc, "DeleteItem")->success_status, 204);
  CHECK_EQ_INT(method(svc, "GetItem")->success_status, 0);
  CHECK_EQ_STR(method(svc, "GetItem")->cache_control, "max-age=60");
  CHECK_EQ_STR(method(svc, "CreateItem")->cache_control, NULL);
  for (size_t i = 0; i < admin->n_methods; i++) {
    CHECK_EQ_INT(admin->methods[i].success_status, 0);
    CHECK(admin->methods[i].cache_control == NULL);
  }
}

/* Typed handlers: they fit the generated table without casts, and dispatch calls them. */
static int get_item_calls, watch_items_calls;
static const void *last_req;

static void get_item(sb_call_t *call, const Items__V1__GetItemRequest *req, Items__V1__Item *res,
                     void *ud) {
  (void)call, (void)res, (void)ud;
  get_item_calls++;
  last_req = req;
}
static void watch_items(sb_call_t *call, const Items__V1__WatchItemsRequest *req,
                        Items__V1__ItemEvent *res, void *ud) {
  (void)call, (void)req, (void)res, (void)ud;
  watch_items_calls++;
}

TEST(dispatch_calls_the_typed_member) {
  /* dispatch(mi) calls member mi with the method's own types; a NULL member reports -1 so
   * the RPC layer answers UNIMPLEMENTED. */
  Items__V1__ItemService_Handlers h = {.get_item = get_item, .watch_items = watch_items};
  REQUIRE(svc->dispatch != NULL);
  Items__V1__GetItemRequest req = ITEMS__V1__GET_ITEM_REQUEST__INIT;
  Items__V1__Item res = ITEMS__V1__ITEM__INIT;
  CHECK_EQ_INT(svc->dispatch(&h, 0, NULL, &req.base, &res.base, NULL), 0);
  CHECK_EQ_INT(get_item_calls, 1);
  CHECK(last_req == &req);
  CHECK_EQ_INT(svc->dispatch(&h, 1, NULL, &req.base, &res.base, NULL), -1); /* create_item */
  Items__V1__WatchItemsRequest wreq = ITEMS__V1__WATCH_ITEMS_REQUEST__INIT;
  Items__V1__ItemEvent ev = ITEMS__V1__ITEM_EVENT__INIT;
  CHECK_EQ_INT(svc->dispatch(&h, 5, NULL, &wreq.base, &ev.base, NULL), 0);
  CHECK_EQ_INT(watch_items_calls, 1);
  CHECK_EQ_INT(svc->dispatch(&h, 6, NULL, &req.base, &res.base, NULL), -1); /* out of range */
  CHECK(admin->dispatch != NULL);
}

TEST(file_descriptor_unpacks) {
  REQUIRE(svc->file_descriptor != NULL && svc->file_descriptor_len > 0);
  /* One file, one descriptor: both services point at the same bytes. */
  CHECK(admin->file_descriptor == svc->file_descriptor);
  CHECK_EQ_INT(admin->file_descriptor_len, svc->file_descriptor_len);

  Google__Protobuf__FileDescriptorProto *fd = google__protobuf__file_descriptor_proto__unpack(
      NULL, svc->file_descriptor_len, svc->file_descriptor);
  REQUIRE(fd != NULL);
  CHECK_EQ_STR(fd->name, "items.proto");
  CHECK_EQ_STR(fd->package, "items.v1");
  CHECK_EQ_STR(fd->syntax, "proto3");
  CHECK(fd->source_code_info == NULL);
  CHECK_EQ_INT(fd->n_dependency, 4);
  CHECK_EQ_INT(fd->n_service, 2);
  if (fd->n_service == 2) {
    const Google__Protobuf__ServiceDescriptorProto *s = fd->service[0];
    CHECK_EQ_STR(s->name, "ItemService");
    CHECK_EQ_INT(s->n_method, 6);
    CHECK_EQ_STR(fd->service[1]->name, "ItemAdmin");
    if (s->n_method == 6) {
      CHECK_EQ_STR(s->method[0]->name, "GetItem");
      CHECK_EQ_STR(s->method[0]->input_type, ".items.v1.GetItemRequest");
      CHECK(s->method[5]->server_streaming);
      /* Options survive, custom ones included, so reflection clients see the bindings. */
      const Google__Protobuf__MethodOptions *o = s->method[0]->options;
      REQUIRE(o != NULL);
      CHECK_EQ_INT(o->idempotency_level,
                   GOOGLE__PROTOBUF__METHOD_OPTIONS__IDEMPOTENCY_LEVEL__NO_SIDE_EFFECTS);
      int has_http = 0;
      for (unsigned i = 0; i < o->base.n_unknown_fields; i++)
        has_http |= o->base.unknown_fields[i].tag == 72295728u;
      CHECK(has_http);
    }
  }
  google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
}

/* Runs protoc with protoc-gen-switchboard on a contract of the messages msgs and a service
 * whose body is rpcs, in dir. Returns protoc's exit status and puts its stderr into err
 * (NUL-terminated). */
static int run_plugin_with(const char *dir, const char *msgs, const char *rpcs, char *err,
                           size_t errlen) {
  char path[512], cmd[2048];
  snprintf(path, sizeof path, "%s/bad.proto", dir);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f,
          "syntax = \"proto3\";\npackage e;\n"
          "import \"google/api/annotations.proto\";\nimport \"switchboard/options.proto\";\n"
          "import \"switchboard/validate.proto\";\n%s\nservice S { %s }\n",
          msgs, rpcs);
  fclose(f);
  snprintf(cmd, sizeof cmd,
           "'%s' --plugin=protoc-gen-switchboard='%s' --switchboard_out='%s' -I'%s' -I'%s' "
           "-I'%s' '%s' 2>'%s/err.txt'",
           SB_TEST_PROTOC, SB_TEST_PROTOC_PLUGIN, dir, dir, SB_TEST_PROTO_DIR,
           SB_TEST_PROTOBUF_INCLUDE_DIR, path, dir);
  int status = system(cmd);
  snprintf(path, sizeof path, "%s/err.txt", dir);
  err[0] = '\0';
  if ((f = fopen(path, "r"))) {
    size_t n = fread(err, 1, errlen - 1, f);
    err[n] = '\0';
    fclose(f);
  }
  return status;
}

static int run_plugin(const char *dir, const char *rpcs, char *err, size_t errlen) {
  return run_plugin_with(dir, "message M { int32 a = 1; }", rpcs, err, errlen);
}

/* Removes what run_plugin_with() leaves in dir, and dir. */
static void clean_dir(const char *dir) {
  static const char *const leftovers[] = {"bad.proto", "err.txt", "bad.sb.c", "bad.sb.h"};
  char path[512];
  for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, leftovers[i]);
    unlink(path);
  }
  rmdir(dir);
}

TEST(plugin_rejects_bad_validation_rules) {
  static const struct {
    const char *msgs;   /* the message definitions */
    const char *expect; /* a piece of the plugin's error message */
  } cases[] = {
      {"message M { int32 a = 1 [(switchboard.field).string.min_len = 1]; }",
       "e.M.a: (switchboard.field): string rules on a int32 field"},
      {"message M { int32 a = 1 [(switchboard.field).int32 = {gt: 1, gte: 2}]; }",
       "gt and gte cannot be combined"},
      {"message M { int32 a = 1 [(switchboard.field).int32 = {gte: 5, lte: 2}]; }",
       "the lower bound is above the upper bound"},
      {"message M { string a = 1 [(switchboard.field).string.pattern = \"([a-z\"]; }",
       "is not a POSIX extended regular expression"},
      {"message M { string a = 1 [(switchboard.field).string = {min_len: 3, max_len: 1}]; }",
       "min_len is above max_len"},
      {"message M { repeated string a = 1 [(switchboard.field).string.min_len = 1]; }",
       "put item rules in repeated.items"},
      {"message M { repeated string a = 1 [(switchboard.field).repeated.items.required = true]; }",
       "repeated.items cannot be required"},
      {"message M { map<string, int32> a = 1 [(switchboard.field).repeated.max_items = 1]; }",
       "on a map field (use map)"},
      {"message M { M a = 1 [(switchboard.field).string.min_len = 1]; }", "takes only `required`"},
      {"message M { double a = 1 [(switchboard.field).double = {gt: inf}]; }",
       "bounds must be finite numbers"},
      /* A message no method receives is checked too. */
      {"message M { int32 a = 1; }\nmessage U { bool b = 1 [(switchboard.field).int32.gt = 0]; }",
       "e.U.b: (switchboard.field): int32 rules on a field of a type that takes only"},
  };
  char dir[] = "/tmp/sb_plugin_test_XXXXXX";
  REQUIRE(mkdtemp(dir) != NULL);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[4096];
    int status = run_plugin_with(dir, cases[i].msgs, "rpc A(M) returns (M);", err, sizeof err);
    CHECK(status != 0 && status != -1);
    if (!strstr(err, cases[i].expect)) CHECK_EQ_STR(err, cases[i].expect); /* reports both texts */
  }
  /* The same fields with fitting rules generate. */
  char err[4096];
  CHECK_EQ_INT(
      run_plugin_with(dir,
                      "message M { int32 a = 1 [(switchboard.field).int32.gt = 1];\n"
                      "  repeated string t = 2 [(switchboard.field).repeated = {"
                      "max_items: 2, items: {string: {pattern: \"^a\"}}}];\n"
                      "  map<string, int32> m = 3 [(switchboard.field).map.max_pairs = 1];\n"
                      "  M self = 4 [(switchboard.field).required = true]; }",
                      "rpc A(M) returns (M);", err, sizeof err),
      0);
  CHECK(strstr(err, "switchboard.field") == NULL); /* protoc may warn of unused imports */
  clean_dir(dir);
}

TEST(plugin_rejects_bad_contracts) {
  static const struct {
    const char *rpcs;   /* the service body */
    const char *expect; /* a piece of the plugin's error message */
  } cases[] = {
      {"rpc A(M) returns (M) { option (switchboard.success_status) = 404; }",
       "e.S.A: switchboard.success_status 404 is not a 2xx status"},
      {"rpc A(M) returns (M) { option (google.api.http) = { body: \"*\" }; }", "sets no verb"},
      {"rpc A(M) returns (M) { option (google.api.http) = { get: \"/a\" additional_bindings "
       "{ get: \"/b\" additional_bindings { get: \"/c\" } } }; }",
       "additional_bindings may not have additional_bindings"},
      {"rpc A(M) returns (M) { option (google.api.http) = { get: \"a\" }; }",
       "path must start with '/'"},
      {"rpc A(M) returns (M) { option (switchboard.cache_control) = \"a\\nb\"; }",
       "control character"},
      {"rpc Desc(M) returns (M);", "clashes with the generated e__s__desc"},
      {"rpc GetItem(M) returns (M); rpc get_item(M) returns (M);",
       "methods GetItem and get_item both become the C name get_item"},
  };
  char dir[] = "/tmp/sb_plugin_test_XXXXXX";
  REQUIRE(mkdtemp(dir) != NULL);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[4096];
    int status = run_plugin(dir, cases[i].rpcs, err, sizeof err);
    CHECK(status != 0 && status != -1);
    if (!strstr(err, cases[i].expect)) CHECK_EQ_STR(err, cases[i].expect); /* reports both texts */
  }
  /* A valid contract still generates, so the failures above are about the contract. */
  char err[4096];
  CHECK_EQ_INT(run_plugin(dir, "rpc A(M) returns (M);", err, sizeof err), 0);
  char path[512];
  snprintf(path, sizeof path, "%s/bad.sb.c", dir);
  CHECK(access(path, R_OK) == 0);
  clean_dir(dir);
}
