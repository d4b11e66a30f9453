/*
 * protocols/trpc/wire.c: the request readers against what @trpc/client sends and what
 * @trpc/server's http/contentType.ts accepts, and the error code table against its
 * rpc/codes.ts and http/getHTTPStatusCode.ts.
 */
#include "protocols/trpc/wire.h"

#include "sb_test.h"
#include "switchboard/error.h"

/* The decoded value of query parameter name, or "<absent>". */
static const char *param(const char *q, const char *name, char *out, size_t cap) {
  sb_buf_t b = {0};
  int rc = sb__trpc_query_get(q, name, &b);
  snprintf(out, cap, "%s", rc == 1 ? (const char *)sb_buf_head(&b) : "<absent>");
  sb_buf_free(&b);
  return out;
}

TEST(query_parameters_decode_like_URLSearchParams) {
  char v[128];
  const char *q = "batch=1&input=%7B%220%22%3A%7B%22id%22%3A1%7D%7D&x=a+b";
  CHECK_EQ_STR(param(q, "batch", v, sizeof v), "1");
  CHECK_EQ_STR(param(q, "input", v, sizeof v), "{\"0\":{\"id\":1}}");
  CHECK_EQ_STR(param(q, "x", v, sizeof v), "a b");
  CHECK_EQ_STR(param(q, "inp", v, sizeof v), "<absent>");
  CHECK_EQ_STR(param("input", "input", v, sizeof v), "");
  /* The first of a repeated parameter; an encoded key; a bad escape kept as it is. */
  CHECK_EQ_STR(param("a=1&a=2", "a", v, sizeof v), "1");
  CHECK_EQ_STR(param("%69nput=7", "input", v, sizeof v), "7");
  CHECK_EQ_STR(param("input=%zz%4", "input", v, sizeof v), "%zz%4");
}

TEST(paths_split_on_commas_only_in_batches) {
  sb_trpc_span_t s[4];
  size_t n = 0;
  CHECK_EQ_INT(sb__trpc_split_paths("a,b", 3, 0, s, 4, &n), 0);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(s[0].n, 3);
  CHECK_EQ_INT(sb__trpc_split_paths("a,,svc.b", 8, 1, s, 4, &n), 0);
  CHECK_EQ_INT(n, 3);
  CHECK(s[0].n == 1 && s[1].n == 0 && s[2].n == 5);
  CHECK_MEM(s[2].p, "svc.b", 5);
  CHECK_EQ_INT(sb__trpc_split_paths("a,b,c,d,e", 9, 1, s, 4, &n), SB_ELIMIT);
}

TEST(batch_inputs_are_keyed_by_index) {
  const char *doc =
      "{ \"1\" : [1, {\"a\":2}] ,\"0\":{\"id\":1},\"01\":3,\"x\":4,\"9\":5,\"0\":null}";
  sb_trpc_span_t in[3];
  const char *why = NULL;
  CHECK_EQ_INT(sb__trpc_batch_inputs(doc, strlen(doc), in, 3, &why), 0);
  /* A repeated key keeps its last value, as JSON.parse does. */
  REQUIRE(in[0].p != NULL);
  CHECK_EQ_INT(in[0].n, 4);
  CHECK_MEM(in[0].p, "null", 4);
  REQUIRE(in[1].p != NULL);
  CHECK_EQ_INT(in[1].n, 12); /* blanks around the value are not part of it */
  CHECK_MEM(in[1].p, "[1, {\"a\":2}]", 12);
  CHECK(in[2].p == NULL); /* "01" is not String(1); "9" is beyond the batch */

  CHECK_EQ_INT(sb__trpc_batch_inputs("[{\"id\":1}]", 10, in, 1, &why), SB_EINVAL);
  CHECK_EQ_STR(why, "\"input\" needs to be an object when doing a batch call");
  CHECK_EQ_INT(sb__trpc_batch_inputs("42", 2, in, 1, &why), SB_EINVAL);
  CHECK_EQ_INT(sb__trpc_batch_inputs("{\"0\":", 5, in, 1, &why), SB_EPROTO);
  CHECK(why != NULL);
  CHECK_EQ_INT(sb__trpc_batch_inputs("{} x", 4, in, 1, &why), SB_EPROTO);
}

TEST(media_types) {
  CHECK_EQ_INT(sb__trpc_media("application/json", 0), SB_TRPC_MEDIA_JSON);
  CHECK_EQ_INT(sb__trpc_media(" Application/JSON ; charset=utf-8", 0), SB_TRPC_MEDIA_JSON);
  CHECK_EQ_INT(sb__trpc_media("application/json+x", 0), SB_TRPC_MEDIA_BAD);
  CHECK_EQ_INT(sb__trpc_media("text/plain", 0), SB_TRPC_MEDIA_BAD);
  CHECK_EQ_INT(sb__trpc_media("text/plain", 1), SB_TRPC_MEDIA_JSON); /* GET falls back */
  CHECK_EQ_INT(sb__trpc_media(NULL, 0), SB_TRPC_MEDIA_NONE);
  CHECK_EQ_INT(sb__trpc_media(NULL, 1), SB_TRPC_MEDIA_JSON);
  CHECK_EQ_INT(sb__trpc_media("multipart/form-data; boundary=x", 0), SB_TRPC_MEDIA_OTHER);
  CHECK_EQ_INT(sb__trpc_media("application/octet-stream", 0), SB_TRPC_MEDIA_OTHER);
}

TEST(codes_match_trpc_server) {
  const sb_trpc_err_t *e = sb__trpc_err(sb__trpc_code_of(SB_CODE_NOT_FOUND));
  CHECK_EQ_STR(e->key, "NOT_FOUND");
  CHECK_EQ_INT(e->number, -32004);
  CHECK_EQ_INT(e->http, 404);
  e = sb__trpc_err(sb__trpc_code_of(SB_CODE_INVALID_ARGUMENT));
  CHECK(e->number == -32600 && e->http == 400);
  e = sb__trpc_err(sb__trpc_code_of(SB_CODE_UNAUTHENTICATED));
  CHECK(!strcmp(e->key, "UNAUTHORIZED") && e->number == -32001 && e->http == 401);
  e = sb__trpc_err(sb__trpc_code_of(SB_CODE_UNIMPLEMENTED));
  CHECK(!strcmp(e->key, "NOT_IMPLEMENTED") && e->number == -32603 && e->http == 501);
  e = sb__trpc_err(sb__trpc_code_of(SB_CODE_RESOURCE_EXHAUSTED));
  CHECK(!strcmp(e->key, "TOO_MANY_REQUESTS") && e->number == -32029 && e->http == 429);
  e = sb__trpc_err(sb__trpc_code_of(SB_CODE_CANCELLED));
  CHECK(e->number == -32099 && e->http == 499);
  e = sb__trpc_err(sb__trpc_code_of(SB_CODE_DATA_LOSS));
  CHECK(!strcmp(e->key, "INTERNAL_SERVER_ERROR") && e->http == 500);
  e = sb__trpc_err(SB_TRPC_UNSUPPORTED_MEDIA_TYPE);
  CHECK(e->number == -32015 && e->http == 415);
  e = sb__trpc_err(SB_TRPC_METHOD_NOT_SUPPORTED);
  CHECK(e->number == -32005 && e->http == 405);
}

TEST(procedure_names) {
  char n[16];
  CHECK_EQ_STR(sb__trpc_proc_name("GetItem", n, sizeof n), "getItem");
  CHECK_EQ_STR(sb__trpc_proc_name("already", n, sizeof n), "already");
  CHECK_EQ_STR(sb__trpc_proc_name("AVeryLongMethodName", n, 8), "aVeryLo");
}
