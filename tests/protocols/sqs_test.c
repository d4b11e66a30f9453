/*
 * Tests of the SQS front-end's codecs (src/protocols/sqs/decode.c, encode.c): the Query form
 * decoder's rewriting of flattened members, the JSON decoder, their agreement, malformed
 * input, the attribute MD5 (vectors computed by tests/interop/sqs_helpers.py's independent
 * implementation of AWS's documented algorithm), the response encoder's two forms and the
 * Policy editor of AddPermission/RemovePermission (src/protocols/sqs/policy.c).
 */
#include <string.h>

#include "protocols/sqs/sqs_int.h"
#include "sb_test.h"
#include "switchboard/error.h"

static const aws_node_t *path(const aws_node_t *m, const char *a, const char *b) {
  const aws_node_t *n = sb__aws_get(m, a);
  return b ? sb__aws_get(n, b) : n;
}

static const aws_node_t *nth(const aws_node_t *l, size_t i) {
  const aws_node_t *c = l ? l->child : NULL;
  while (c && i--)
    c = c->next;
  return c;
}

TEST(sqs_form_flattened_members) {
  sb_arena_t a;
  sb_arena_init(&a);
  const char *body =
      "Action=SendMessageBatch&QueueUrl=http%3A%2F%2Fh%2F0%2Fq"
      "&SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=two+2"
      "&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=one"
      "&SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=k"
      "&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String"
      "&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=v"
      "&AttributeName.2=SentTimestamp&AttributeName.1=All&Attribute.1.Name=VisibilityTimeout"
      "&Attribute.1.Value=5&Tag.1.Key=team&Tag.1.Value=core";
  aws_node_t *r = NULL;
  const char *err = NULL;
  CHECK_EQ_INT(sb__aws_decode_form(&a, body, strlen(body), &r, &err), 0);
  CHECK_EQ_STR(path(r, "Action", NULL)->s, "SendMessageBatch");
  CHECK_EQ_STR(path(r, "QueueUrl", NULL)->s, "http://h/0/q");
  const aws_node_t *en = path(r, "Entries", NULL);
  CHECK(en && en->kind == AWS_LIST && en->n == 2);
  CHECK_EQ_STR(sb__aws_get(nth(en, 0), "Id")->s, "a"); /* sorted by index */
  CHECK_EQ_STR(sb__aws_get(nth(en, 1), "MessageBody")->s, "two 2");
  const aws_node_t *ma = sb__aws_get(nth(en, 0), "MessageAttributes");
  CHECK(ma && ma->kind == AWS_MAP && ma->n == 1);
  CHECK_EQ_STR(path(ma, "k", "StringValue")->s, "v");
  CHECK_EQ_STR(path(ma, "k", "DataType")->s, "String");
  const aws_node_t *an = path(r, "AttributeNames", NULL);
  CHECK(an && an->kind == AWS_LIST && an->n == 2);
  CHECK_EQ_STR(nth(an, 0)->s, "All");
  CHECK_EQ_STR(path(r, "Attributes", "VisibilityTimeout")->s, "5");
  CHECK_EQ_STR(path(r, "Tags", "team")->s, "core");
  sb_arena_free(&a);
}

TEST(sqs_form_and_json_agree) {
  sb_arena_t a;
  sb_arena_init(&a);
  const char *form = "QueueUrl=q&MessageBody=hi&DelaySeconds=5&MessageAttribute.1.Name=n"
                     "&MessageAttribute.1.Value.DataType=Number"
                     "&MessageAttribute.1.Value.StringValue=1.5";
  const char *json = "{\"QueueUrl\":\"q\",\"MessageBody\":\"hi\",\"DelaySeconds\":5,"
                     "\"MessageAttributes\":{\"n\":{\"DataType\":\"Number\",\"StringValue\":"
                     "\"1.5\"}},\"Ignored\":null}";
  aws_node_t *f = NULL, *j = NULL;
  const char *err;
  CHECK_EQ_INT(sb__aws_decode_form(&a, form, strlen(form), &f, &err), 0);
  CHECK_EQ_INT(sb__aws_decode_json(&a, json, strlen(json), &j, &err), 0);
  CHECK_EQ_STR(path(f, "DelaySeconds", NULL)->s, path(j, "DelaySeconds", NULL)->s);
  CHECK_EQ_STR(path(path(f, "MessageAttributes", "n"), "StringValue", NULL)->s,
               path(path(j, "MessageAttributes", "n"), "StringValue", NULL)->s);
  CHECK(sb__aws_get(j, "Ignored") == NULL);                  /* null members are absent */
  CHECK_EQ_INT(sb__aws_decode_json(&a, "", 0, &j, &err), 0); /* an empty body is {} */
  CHECK(j->kind == AWS_MAP && j->n == 0);
  sb_arena_free(&a);
}

TEST(sqs_malformed_input) {
  static const char *forms[] = {
      "A=1&A=2",                               /* repeated */
      "A=1&A.B=2",                             /* a value and a map */
      "A..B=1",                                /* empty segment */
      "M=%zz",                                 /* bad escape */
      "Attribute.x.Name=a",                    /* non-numeric index */
      "Attribute.0.Name=a",                    /* index from 1 */
      "Attribute.1.Value=a",                   /* map entry without its name */
      "Attribute.1.Name=a&Attribute.2.Name=a", /* repeated map key */
      "A.B.C.D.E.F.G.H.I=1",                   /* too deep */
  };
  sb_arena_t a;
  sb_arena_init(&a);
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    aws_node_t *r = NULL;
    const char *err = NULL;
    CHECK_EQ_INT(sb__aws_decode_form(&a, forms[i], strlen(forms[i]), &r, &err), SB_EINVAL);
    CHECK(err != NULL);
  }
  static const char *jsons[] = {"[]", "{\"a\":1,\"a\":2}", "{\"a\":", "{} {}", "\"s\""};
  for (size_t i = 0; i < sizeof jsons / sizeof jsons[0]; i++) {
    aws_node_t *r = NULL;
    const char *err = NULL;
    CHECK_EQ_INT(sb__aws_decode_json(&a, jsons[i], strlen(jsons[i]), &r, &err), SB_EINVAL);
    CHECK(err != NULL);
  }
  sb_arena_free(&a);
}

TEST(sqs_md5_vectors) {
  char out[33];
  sb__sqs_md5_hex("hello world", 11, out);
  CHECK_EQ_STR(out, "5eb63bbbe01eeed093cb22bb8f5acdc3");
  sqs_mattr_t one[] = {{"a", 1, "String", 6, "v", 1}};
  CHECK_EQ_INT(sb__sqs_md5_attrs(one, 1, out), 0);
  CHECK_EQ_STR(out, "a18cbb58171ebf4ce88d9fb787f9210b");
  /* Given unsorted: the digest sorts by name. */
  sqs_mattr_t three[] = {{"n", 1, "Number", 6, "12.50", 5},
                         {"event", 5, "String", 6, "order.created", 13},
                         {"blob", 4, "Binary", 6, "\x00\x01\x02", 3}};
  CHECK_EQ_INT(sb__sqs_md5_attrs(three, 3, out), 0);
  CHECK_EQ_STR(out, "173a656536f0f946d8ded3c20a6090b3");
}

TEST(sqs_encoder_both_forms) {
  sb_buf_t x = {0}, j = {0};
  for (int json = 0; json < 2; json++) {
    aws_enc_t e;
    sb__aws_enc_begin(&e, json ? &j : &x, json, "ListQueueTags", 1,
                      "http://queue.amazonaws.com/doc/2012-11-05/");
    sb__aws_enc_map_begin(&e, "Tags", "Tag", "Key", "Value");
    sb__aws_enc_map_str(&e, "a", 1, "<1&\r>", 5);
    sb__aws_enc_map_end(&e);
    sb__aws_enc_list_begin(&e, "QueueUrls", "QueueUrl");
    sb__aws_enc_item_str(&e, "u", 1);
    sb__aws_enc_list_end(&e);
    sb__aws_enc_end(&e, "ListQueueTags", 1, "rid");
    CHECK_EQ_INT(e.err, 0);
  }
  sb_buf_append(&x, "", 1);
  sb_buf_append(&j, "", 1);
  CHECK_EQ_STR((const char *)sb_buf_head(&j),
               "{\"Tags\":{\"a\":\"<1&\\r>\"},\"QueueUrls\":[\"u\"]}");
  CHECK_EQ_STR((const char *)sb_buf_head(&x),
               "<?xml version=\"1.0\"?><ListQueueTagsResponse "
               "xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><ListQueueTagsResult>"
               "<Tag><Key>a</Key><Value>&lt;1&amp;&#xD;&gt;</Value></Tag><QueueUrl>u</QueueUrl>"
               "</ListQueueTagsResult><ResponseMetadata><RequestId>rid</RequestId>"
               "</ResponseMetadata></ListQueueTagsResponse>");
  sb_buf_free(&x);
  sb_buf_free(&j);
}

/* The Policy editor keeps what it does not own byte for byte: foreign members in their
 * order, escapes in keys, other statements with their whitespace; a lone statement becomes a
 * list; duplicate and missing labels and documents it cannot edit are refused. */
TEST(sqs_policy_edit) {
  sb_arena_t a;
  sb_arena_init(&a);
  const char *acc[] = {"111122223333"}, *act[] = {"SendMessage", "GetQueueUrl"};
  const char *arn = "arn:aws:sqs:us-east-1:000000000000:q";
  sqs_permission_t add = {"l", arn, acc, 1, act, 2};
  sqs_permission_t del = {"l", arn, NULL, 0, NULL, 0};
  const char *out = NULL;
  CHECK_EQ_INT(sb__sqs_policy_edit(&a, NULL, &add, &out), 0);
  CHECK_EQ_STR(out, "{\"Version\":\"2012-10-17\",\"Id\":\"arn:aws:sqs:us-east-1:000000000000:q/"
                    "SQSDefaultPolicy\",\"Statement\":[{\"Sid\":\"l\",\"Effect\":\"Allow\","
                    "\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:root\"},\"Action\":["
                    "\"SQS:SendMessage\",\"SQS:GetQueueUrl\"],\"Resource\":\"arn:aws:sqs:us-"
                    "east-1:000000000000:q\"}]}");
  CHECK_EQ_INT(sb__sqs_policy_edit(&a, out, &add, &out), 1);
  CHECK_EQ_INT(sb__sqs_policy_edit(&a, out, &del, &out), 0);
  CHECK_EQ_STR(out, "");
  CHECK_EQ_INT(sb__sqs_policy_edit(&a, "", &del, &out), 1);

  const char *own = " { \"Id\" : \"x\", \"St\\u0061tement\" : { \"Sid\" : \"o\", \"N\": 1.5e3 } ,"
                    " \"Z\":[true,null] } ";
  CHECK_EQ_INT(sb__sqs_policy_edit(&a, own, &add, &out), 0);
  const char *added = strstr(out, "{\"Sid\":\"l\"");
  CHECK(added != NULL);
  CHECK_EQ_INT(strncmp(out,
                       "{\"Id\":\"x\",\"St\\u0061tement\":[{ \"Sid\" : \"o\", \"N\": 1.5e3 },"
                       "{\"Sid\":\"l\"",
                       66),
               0);
  CHECK(strstr(out, "}],\"Z\":[true,null]}") != NULL);
  CHECK_EQ_INT(sb__sqs_policy_edit(&a, out, &del, &out), 0);
  CHECK_EQ_STR(out, "{\"Id\":\"x\",\"St\\u0061tement\":[{ \"Sid\" : \"o\", \"N\": 1.5e3 }],"
                    "\"Z\":[true,null]}");
  /* No Statement member: one is appended. */
  CHECK_EQ_INT(sb__sqs_policy_edit(&a, "{\"Version\":\"1\"}", &add, &out), 0);
  CHECK_EQ_INT(strncmp(out, "{\"Version\":\"1\",\"Statement\":[{\"Sid\":\"l\"", 38), 0);
  /* Not an object, two Statement members, broken JSON. */
  CHECK_EQ_INT(sb__sqs_policy_edit(&a, "[1]", &add, &out), SB_EINVAL);
  CHECK_EQ_INT(sb__sqs_policy_edit(&a, "{\"Statement\":[],\"Statement\":[]}", &add, &out),
               SB_EINVAL);
  CHECK_EQ_INT(sb__sqs_policy_edit(&a, "{\"Statement\":[{\"Sid\":\"l\"}", &del, &out), SB_EINVAL);
  sb_arena_free(&a);
}
