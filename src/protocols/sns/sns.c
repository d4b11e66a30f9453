/*
 * The SNS front-end (include/switchboard/sns.h): Query-protocol requests onto the broker's
 * topic engine. Its request decoder, XML encoder, SigV4 check and a request's life between
 * its worker loop and the broker thread are every AWS front-end's (protocols/aws/aws.h).
 *
 * Subscriptions are engine subscriptions of kind SB_SUB_QUEUE. Their SNS attributes live in
 * the subscription's kv pairs ("RawMessageDelivery", "FilterPolicyScope", "RedrivePolicy",
 * "Endpoint"); a non-raw subscription names the formatter "sns", which wraps each copy in
 * SNS's JSON envelope on the broker thread.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/codec.h"
#include "core/json.h"
#include "protocols/sns/sns_int.h"
#include "protocols/aws/aws.h"
#include "switchboard/error.h"
#include "switchboard/sns.h"

#define SNS_XMLNS "http://sns.amazonaws.com/doc/2010-03-31/"
#define SNS_MAX_REQUEST (1u << 21)     /* a batch of ten 256 KiB messages, encoded */
#define SNS_MAX_MESSAGE (256u * 1024u) /* bytes of a message plus its attributes */
#define SNS_MAX_SUBJECT 100u           /* bytes of a Subject */
#define SNS_LIST_PAGE 100u             /* topics per ListTopics page */
#define SNS_ARN_MAX 320u               /* bytes of a topic or subscription ARN */

struct sb_sns {
  sb_broker_t *broker;  /* borrowed */
  aws_ident_t id;       /* region, account, credential */
  aws_frontend_t fe;    /* how the listener reaches this service */
  sns_hooks_t *hooks;   /* the webhook pusher; owned; NULL once stopped */
  sns_signer_t *signer; /* the key that signs webhook envelopes; owned */
};

#define E_INTERNAL sb__aws_e_internal
#define E_MISSING sb__aws_e_missing
#define E_ACTION sb__aws_e_action

static const aws_err_t E_NOT_FOUND = {"NotFound", "NotFound", 404, 1};
static const aws_err_t E_PARAM = {"InvalidParameter", "InvalidParameter", 400, 1};
static const aws_err_t E_PARAM_VALUE = {"ParameterValueInvalid", "ParameterValueInvalid", 400, 1};
static const aws_err_t E_IDS_NOT_DISTINCT = {"BatchEntryIdsNotDistinct", "BatchEntryIdsNotDistinct",
                                             400, 1};
static const aws_err_t E_TOO_MANY = {"TooManyEntriesInBatchRequest", "TooManyEntriesInBatchRequest",
                                     400, 1};
static const aws_err_t E_EMPTY_BATCH = {"EmptyBatchRequest", "EmptyBatchRequest", 400, 1};
static const aws_err_t E_BAD_ENTRY_ID = {"InvalidBatchEntryId", "InvalidBatchEntryId", 400, 1};
typedef struct sns_req sns_req_t;
typedef void (*sns_action_fn)(sns_req_t *r);

typedef struct sns_action {
  const char *name; /* "Publish" */
  sns_action_fn fn; /* checks parameters and starts the operation */
  int result;       /* 1: the response has an <ActionResult> element */
} sns_action_t;

/* One message of Publish or an entry of PublishBatch, ready for the engine. */
typedef struct sns_pub {
  const char *id;                    /* batch entry id (arena) or NULL */
  sb_broker_msg_t msg;               /* the message; pointers into the request's arena */
  sb_broker_kv_t meta[2];            /* Subject and Host for the envelope */
  size_t n_meta;                     /* entries of meta */
  const aws_err_t *err;              /* a failure found before publishing, or NULL */
  const char *err_msg;               /* its message */
  char msg_id[SB_BROKER_ID_LEN + 1]; /* the published message's id */
  uint64_t seq;                      /* its sequence number */
} sns_pub_t;

struct sns_req {
  aws_req_t b;                        /* the common part; first, the request is freed through it */
  sb_sns_t *sns;                      /* borrowed */
  const sns_action_t *act;            /* the action */
  char topic[SB_BROKER_NAME_MAX + 1]; /* the topic the request names */
  char sub_id[SB_BROKER_ID_LEN + 1];  /* the subscription it names */
  char queue[SB_BROKER_NAME_MAX + 1]; /* Subscribe: the target queue */
  char request_id[37];                /* RequestId */
  const aws_err_t *err;               /* the error to answer, or NULL */
  char err_msg[512];                  /* its message */
  sb_buf_t out;                       /* encoded response; owned */
  sb_sub_config_t sub;            /* Subscribe, SetSubscriptionAttributes: the new configuration */
  sb_broker_kv_t kv[8];           /* its kv pairs / SetTopicAttributes' pair */
  size_t n_kv;                    /* entries of kv */
  const char *attr_name;          /* SetSubscriptionAttributes: the attribute */
  const char *attr_value;         /* and its value */
  sns_pub_t *pubs;                /* Publish(Batch): the messages */
  size_t n_pubs, next_pub;        /* count; the next one to publish */
  int batch;                      /* PublishBatch */
  char token[65];                 /* webhooks: the confirmation token */
  char endpoint[SNS_URL_MAX + 1]; /* webhooks: the subscriber's URL */
  sb_queue_config_t qcfg;         /* ConfirmSubscription: the hook queue's configuration */
  char sub_arn[SNS_ARN_MAX];      /* Unsubscribe: the subscription's ARN */
};

_Static_assert(offsetof(sns_req_t, b) == 0, "aws.c frees a request through its head");

/* Records the error to answer; the first one wins. */
#define fail(r, ...) sb__aws_fail(&(r)->b, __VA_ARGS__)

static void fail_status(sns_req_t *r, int st) {
  if (st == SB_ENOTFOUND)
    fail(r, &E_NOT_FOUND, "Topic does not exist");
  else if (st == SB_EINVAL)
    fail(r, &E_PARAM, "Invalid parameter");
  else
    fail(r, &E_INTERNAL, "Internal error: %s", sb_strerror(st));
}

static void topic_arn(const sb_sns_t *s, const char *topic, char *out, size_t cap) {
  snprintf(out, cap, "arn:aws:sns:%s:%s:%s", s->id.region, s->id.account, topic);
}

static void sub_arn(const sb_sns_t *s, const char *topic, const char *id, char *out, size_t cap) {
  snprintf(out, cap, "arn:aws:sns:%s:%s:%s:%s", s->id.region, s->id.account, topic, id);
}

static const char *kv_get(const sb_broker_kv_t *kv, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(kv[i].name, name) == 0) return kv[i].value;
  return NULL;
}

/* The name after the last ':' of an ARN of the given service, checked as a broker name. */
static int arn_tail(const char *arn, size_t len, const char *service, char *out, size_t cap) {
  char pre[32];
  int pl = snprintf(pre, sizeof pre, "arn:aws:%s:", service);
  if (len <= (size_t)pl || memcmp(arn, pre, (size_t)pl) || memchr(arn, 0, len)) return -1;
  const char *c = arn + len;
  while (c > arn && c[-1] != ':')
    c--;
  size_t n = (size_t)(arn + len - c);
  if (n == 0 || n >= cap) return -1;
  memcpy(out, c, n);
  out[n] = 0;
  return 0;
}

static int topic_from_arn(sns_req_t *r, const aws_node_t *v) {
  if (!v || v->kind != AWS_STR || arn_tail(v->s, v->len, "sns", r->topic, sizeof r->topic) ||
      sb_broker_check_name(r->topic, strlen(r->topic) > 5 &&
                                         !strcmp(r->topic + strlen(r->topic) - 5, ".fifo"))) {
    fail(r, v ? &E_NOT_FOUND : &E_MISSING, v ? "Topic does not exist" : "TopicArn is required");
    return -1;
  }
  return 0;
}

/* A subscription ARN: arn:aws:sns:<region>:<account>:<topic>:<id>. */
static int sub_from_arn(sns_req_t *r, const aws_node_t *v) {
  if (!v || v->kind != AWS_STR || arn_tail(v->s, v->len, "sns", r->sub_id, sizeof r->sub_id)) {
    fail(r, v ? &E_NOT_FOUND : &E_MISSING,
         v ? "Subscription does not exist" : "SubscriptionArn is required");
    return -1;
  }
  return 0;
}

static const aws_node_t *str(const aws_node_t *m, const char *k) {
  const aws_node_t *v = sb__aws_get(m, k);
  return v && v->kind == AWS_STR ? v : NULL;
}

/* ---- responses ---- */

static void started(sns_req_t *r, int rc) {
  if (rc) {
    r->b.pending = 0;
    fail_status(r, rc);
  }
}

/* ---- topics ---- */

static void topic_arn_done(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status == SB_ESTATE)
    fail(r, &E_PARAM,
         "Invalid parameter: Attributes Reason: Topic already exists with different "
         "attributes");
  else if (status)
    fail_status(r, status);
  else {
    char arn[SNS_ARN_MAX];
    topic_arn(r->sns, r->topic, arn, sizeof arn);
    aws_enc_t e;
    sb__aws_begin(&r->b, &e);
    sb__aws_enc_str(&e, "TopicArn", arn, strlen(arn));
    sb__aws_end(&r->b, &e);
  }
  sb__aws_wake(&r->b);
}

static const char *const topic_attrs[] = {"DisplayName",
                                          "Policy",
                                          "DeliveryPolicy",
                                          "KmsMasterKeyId",
                                          "TracingConfig",
                                          "SignatureVersion",
                                          "ContentBasedDeduplication",
                                          "FifoTopic"};

static int topic_attr_known(const char *k) {
  for (size_t i = 0; i < sizeof topic_attrs / sizeof topic_attrs[0]; i++)
    if (strcmp(k, topic_attrs[i]) == 0) return 1;
  return 0;
}

/* SignatureVersion is "1" (SHA1withRSA) or "2" (SHA256withRSA), as AWS accepts. */
static int topic_attr_valid(sns_req_t *r, const char *name, const char *value) {
  if (strcmp(name, "SignatureVersion") || !strcmp(value, "1") || !strcmp(value, "2")) return 1;
  fail(r, &E_PARAM, "Invalid parameter: SignatureVersion");
  return 0;
}

static void act_create_topic(sns_req_t *r) {
  const aws_node_t *name = str(r->b.p, "Name");
  if (!name) {
    fail(r, &E_MISSING, "Name is required");
    return;
  }
  int fifo = name->len > 5 && memcmp(name->s + name->len - 5, ".fifo", 5) == 0;
  if (name->len > SB_BROKER_NAME_MAX || memchr(name->s, 0, name->len) ||
      sb_broker_check_name(name->s, fifo)) {
    fail(r, &E_PARAM, "Invalid parameter: Topic Name");
    return;
  }
  memcpy(r->topic, name->s, name->len + 1);
  sb_topic_config_t c = {fifo};
  const aws_node_t *attrs = sb__aws_get(r->b.p, "Attributes");
  for (const aws_node_t *a = attrs && attrs->kind == AWS_MAP ? attrs->child : NULL; a;
       a = a->next) {
    if (a->kind != AWS_STR || !topic_attr_known(a->key) || r->n_kv == 8) {
      fail(r, &E_PARAM, "Invalid parameter: Attributes Reason: Unknown attribute %.64s", a->key);
      return;
    }
    if (!topic_attr_valid(r, a->key, a->s)) return;
    if (strcmp(a->key, "FifoTopic") == 0 && (strcmp(a->s, "true") == 0) != fifo) {
      fail(r, &E_PARAM,
           "Invalid parameter: Fifo Topic names must end with .fifo and must be "
           "made up of only uppercase and lowercase ASCII letters, numbers, "
           "underscores, and hyphens, and must be between 1 and 256 characters long.");
      return;
    }
    r->kv[r->n_kv++] = (sb_broker_kv_t){a->key, a->s};
  }
  if (fifo && !kv_get(r->kv, r->n_kv, "FifoTopic")) {
    fail(r, &E_PARAM, "Invalid parameter: Fifo Topic names need the FifoTopic attribute true");
    return;
  }
  r->b.pending = 1;
  started(r, sb_topic_create(r->sns->broker, r->topic, &c, r->kv, r->n_kv, topic_arn_done, r));
}

static void simple_done(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status == SB_ENOTFOUND && r->sub_id[0])
    fail(r, &E_NOT_FOUND, "Subscription does not exist");
  else if (status)
    fail_status(r, status);
  else
    sb__aws_empty(&r->b);
  sb__aws_wake(&r->b);
}

static void act_delete_topic(sns_req_t *r) {
  if (topic_from_arn(r, sb__aws_get(r->b.p, "TopicArn"))) return;
  r->b.pending = 1;
  started(r, sb_topic_delete(r->sns->broker, r->topic, simple_done, r));
}

static void list_topics_done(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status) {
    fail_status(r, status);
    sb__aws_wake(&r->b);
    return;
  }
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  sb__aws_enc_wlist_begin(&e, "Topics");
  for (size_t i = 0; i < res->n_names; i++) {
    char arn[SNS_ARN_MAX];
    topic_arn(r->sns, res->names[i], arn, sizeof arn);
    sb__aws_enc_item_begin(&e);
    sb__aws_enc_str(&e, "TopicArn", arn, strlen(arn));
    sb__aws_enc_item_end(&e);
  }
  sb__aws_enc_list_end(&e);
  if (res->next_token) sb__aws_enc_str(&e, "NextToken", res->next_token, strlen(res->next_token));
  sb__aws_end(&r->b, &e);
  sb__aws_wake(&r->b);
}

static void act_list_topics(sns_req_t *r) {
  const aws_node_t *tok = str(r->b.p, "NextToken");
  if (tok && (tok->len > SB_BROKER_NAME_MAX || memchr(tok->s, 0, tok->len))) {
    fail(r, &E_PARAM, "Invalid parameter: NextToken");
    return;
  }
  r->b.pending = 1;
  started(r, sb_topic_list(r->sns->broker, NULL, tok && tok->len ? tok->s : NULL, SNS_LIST_PAGE,
                           list_topics_done, r));
}

static void topic_attrs_done(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status) {
    fail_status(r, status);
    sb__aws_wake(&r->b);
    return;
  }
  const sb_topic_info_t *t = res->topic;
  char arn[SNS_ARN_MAX], n[24];
  topic_arn(r->sns, t->name, arn, sizeof arn);
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  sb__aws_enc_wmap_begin(&e, "Attributes");
  sb__aws_enc_map_str(&e, "TopicArn", 8, arn, strlen(arn));
  sb__aws_enc_map_str(&e, "Owner", 5, r->sns->id.account, strlen(r->sns->id.account));
  snprintf(n, sizeof n, "%zu", t->n_subs);
  sb__aws_enc_map_str(&e, "SubscriptionsConfirmed", 22, n, strlen(n));
  sb__aws_enc_map_str(&e, "SubscriptionsPending", 20, "0", 1);
  sb__aws_enc_map_str(&e, "SubscriptionsDeleted", 20, "0", 1);
  if (!kv_get(t->kv, t->n_kv, "DisplayName")) sb__aws_enc_map_str(&e, "DisplayName", 11, "", 0);
  for (size_t i = 0; i < t->n_kv; i++)
    sb__aws_enc_map_str(&e, t->kv[i].name, strlen(t->kv[i].name), t->kv[i].value,
                        strlen(t->kv[i].value));
  sb__aws_enc_map_end(&e);
  sb__aws_end(&r->b, &e);
  sb__aws_wake(&r->b);
}

static void act_get_topic_attributes(sns_req_t *r) {
  if (topic_from_arn(r, sb__aws_get(r->b.p, "TopicArn"))) return;
  r->b.pending = 1;
  started(r, sb_topic_get(r->sns->broker, r->topic, topic_attrs_done, r));
}

static void act_set_topic_attributes(sns_req_t *r) {
  if (topic_from_arn(r, sb__aws_get(r->b.p, "TopicArn"))) return;
  const aws_node_t *n = str(r->b.p, "AttributeName"), *v = str(r->b.p, "AttributeValue");
  if (!n) {
    fail(r, &E_MISSING, "AttributeName is required");
    return;
  }
  if (!topic_attr_known(n->s) || strcmp(n->s, "FifoTopic") == 0) {
    fail(r, &E_PARAM, "Invalid parameter: AttributeName");
    return;
  }
  if (!topic_attr_valid(r, n->s, v ? v->s : "")) return;
  r->kv[0] = (sb_broker_kv_t){n->s, v ? v->s : ""};
  r->n_kv = 1;
  r->b.pending = 1;
  started(r, sb_topic_update(r->sns->broker, r->topic, r->kv, 1, simple_done, r));
}

/* ---- subscriptions ---- */

/* Fills r->sub from a subscription's SNS attributes (r->kv). Returns 0 or fails. */
static int build_sub(sns_req_t *r) {
  const char *raw = kv_get(r->kv, r->n_kv, "RawMessageDelivery");
  const char *filter = kv_get(r->kv, r->n_kv, "FilterPolicy");
  const char *scope = kv_get(r->kv, r->n_kv, "FilterPolicyScope");
  const char *redrive = kv_get(r->kv, r->n_kv, "RedrivePolicy");
  if (raw && strcmp(raw, "true") && strcmp(raw, "false")) {
    fail(r, &E_PARAM,
         "Invalid parameter: Attributes Reason: RawMessageDelivery: Invalid value "
         "[%.32s]. Must be true or false.",
         raw);
    return -1;
  }
  snprintf(r->sub.format, sizeof r->sub.format, "%s", raw && !strcmp(raw, "true") ? "" : "sns");
  r->sub.filter = filter && filter[0] ? filter : NULL;
  if (r->sub.filter) {
    const char *why = NULL;
    if (sb_topic_check_filter(filter, strlen(filter), &why)) {
      fail(r, &E_PARAM, "Invalid parameter: FilterPolicy: %s", why ? why : "invalid");
      return -1;
    }
  }
  if (scope && strcmp(scope, "MessageAttributes") && strcmp(scope, "MessageBody")) {
    fail(r, &E_PARAM,
         "Invalid parameter: Attributes Reason: FilterPolicyScope: Invalid value "
         "[%.32s].",
         scope);
    return -1;
  }
  r->sub.filter_body = scope && !strcmp(scope, "MessageBody");
  r->sub.dead_letter[0] = 0;
  if (redrive && redrive[0]) {
    aws_node_t *m;
    const char *err;
    const aws_node_t *t = NULL;
    if (!sb__aws_decode_json(&r->b.arena, redrive, strlen(redrive), &m, &err))
      t = str(m, "deadLetterTargetArn");
    if (!t || arn_tail(t->s, t->len, "sqs", r->sub.dead_letter, sizeof r->sub.dead_letter)) {
      fail(r, &E_PARAM,
           "Invalid parameter: RedrivePolicy: deadLetterTargetArn must be an SQS "
           "queue ARN");
      return -1;
    }
  }
  r->sub.kv = r->kv;
  r->sub.n_kv = r->n_kv;
  return 0;
}

static const char *const sub_attrs[] = {"RawMessageDelivery", "FilterPolicy",
                                        "FilterPolicyScope",  "RedrivePolicy",
                                        "DeliveryPolicy",     "SubscriptionRoleArn"};

static int sub_attr_known(const char *k) {
  for (size_t i = 0; i < sizeof sub_attrs / sizeof sub_attrs[0]; i++)
    if (strcmp(k, sub_attrs[i]) == 0) return 1;
  return 0;
}

static void subscribed(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status == SB_ENOTFOUND)
    fail(r, &E_NOT_FOUND, "Topic or endpoint queue does not exist");
  else if (status == SB_EINVAL)
    fail(r, &E_PARAM, "Invalid parameter: Attributes");
  else if (status)
    fail_status(r, status);
  else {
    char arn[SNS_ARN_MAX];
    sub_arn(r->sns, r->topic, res->n_subs ? res->subs[0].id : "", arn, sizeof arn);
    aws_enc_t e;
    sb__aws_begin(&r->b, &e);
    sb__aws_enc_str(&e, "SubscriptionArn", arn, strlen(arn));
    sb__aws_end(&r->b, &e);
  }
  sb__aws_wake(&r->b);
}

/* Subscribe is idempotent: an existing subscription of the topic to the same queue is
 * returned as it is. */
static void subs_for_subscribe(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status) {
    subscribed(r, status, res);
    return;
  }
  for (size_t i = 0; i < res->n_subs; i++)
    if (res->subs[i].kind == SB_SUB_QUEUE && strcmp(res->subs[i].queue, r->queue) == 0) {
      sb_broker_result_t one = *res;
      one.subs = &res->subs[i];
      one.n_subs = 1;
      subscribed(r, 0, &one);
      return;
    }
  int rc = sb_topic_subscribe(r->sns->broker, r->topic, &r->sub, subscribed, r);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

/* ---- http webhooks (sns_int.h) ---- */

static void hook_pending(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status || !res->n || res->sent[0].status) {
    fail_status(r, status ? status : res->n ? res->sent[0].status : SB_EIO);
  } else {
    aws_enc_t e;
    sb__aws_begin(&r->b, &e);
    sb__aws_enc_str(&e, "SubscriptionArn", "pending confirmation", 20);
    sb__aws_end(&r->b, &e);
  }
  sb__aws_wake(&r->b);
}

/* A confirmation envelope (SubscriptionConfirmation or UnsubscribeConfirmation) for the
 * webhook of topic with token, into *b (the caller frees it). Its SubscribeURL confirms the
 * subscription (again). Signed by the pusher, which replaces the three placeholder fields
 * (SNS_UNSIGNED). Returns 0, SB_ENOMEM or SB_EINVAL. */
static int confirmation(const sns_req_t *r, const char *type, const char *topic, const char *token,
                        sb_buf_t *b) {
  char arn[SNS_ARN_MAX], t[32], url[1024], text[600];
  topic_arn(r->sns, topic, arn, sizeof arn);
  time_t secs = time(NULL);
  struct tm tm;
  gmtime_r(&secs, &tm);
  strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  int ul = snprintf(url, sizeof url, "http://%s/?Action=ConfirmSubscription&TopicArn=%s&Token=%s",
                    r->b.host, arn, token);
  int unsub = type[0] == 'U';
  int tl = snprintf(text, sizeof text,
                    unsub ? "You have chosen to deactivate subscription %s.\nTo cancel this "
                            "operation and restore the subscription, visit the SubscribeURL "
                            "included in this message."
                          : "You have chosen to subscribe to the topic %s.\nTo confirm the "
                            "subscription, visit the SubscribeURL included in this message.",
                    unsub ? r->sub_arn : arn);
  sb_jw_t w;
  sb_jw_init(&w, b);
  sb_jw_obj_begin(&w);
  sb_jw_key(&w, "Type", 4);
  sb_jw_str(&w, type, strlen(type));
  sb_jw_key(&w, "MessageId", 9);
  sb_jw_str(&w, r->b.request_id, strlen(r->b.request_id));
  sb_jw_key(&w, "Token", 5);
  sb_jw_str(&w, token, strlen(token));
  sb_jw_key(&w, "TopicArn", 8);
  sb_jw_str(&w, arn, strlen(arn));
  sb_jw_key(&w, "Message", 7);
  sb_jw_str(&w, text, (size_t)tl < sizeof text ? (size_t)tl : sizeof text - 1);
  sb_jw_key(&w, "SubscribeURL", 12);
  sb_jw_str(&w, url, (size_t)ul < sizeof url ? (size_t)ul : sizeof url - 1);
  sb_jw_key(&w, "Timestamp", 9);
  sb_jw_str(&w, t, strlen(t));
  sb_jw_key(&w, "SignatureVersion", 16);
  sb_jw_str(&w, "1", 1);
  sb_jw_key(&w, "Signature", 9);
  sb_jw_str(&w, "", 0);
  sb_jw_key(&w, "SigningCertURL", 14);
  sb_jw_str(&w, "", 0);
  sb_jw_obj_end(&w);
  return sb_jw_error(&w);
}

/* The hook queue exists: queue the SubscriptionConfirmation message for the pusher. */
static void hook_created(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status) {
    fail_status(r, status);
    sb__aws_wake(&r->b);
    return;
  }
  sb_buf_t b = {0};
  int rc = confirmation(r, "SubscriptionConfirmation", r->topic, r->token, &b);
  if (!rc) {
    sb_broker_msg_t m = {b.data, b.len, NULL, 0, NULL, 0, NULL, 0, NULL, 0, -1};
    rc = sb_queue_send(r->sns->broker, res->queue->name, &m, 1, hook_pending, r);
  }
  sb_buf_free(&b);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

/* The topic exists: create the webhook's queue. */
static void hook_topic_checked(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  char qname[SB_BROKER_NAME_MAX + 1];
  snprintf(qname, sizeof qname, SNS_HOOK_PREFIX "%.16s", r->token);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  c.visibility_ms = SNS_HOOK_RETRY_MS;
  c.retention_ms = SNS_HOOK_RETENTION_MS;
  sb_broker_kv_t kv[] = {{"sns:endpoint", r->endpoint},
                         {"sns:topic", r->topic},
                         {"sns:token", r->token},
                         {"sns:sub", ""}};
  int rc = status ? status
                  : sb_queue_create(r->sns->broker, qname, &c, kv, sizeof kv / sizeof kv[0],
                                    hook_created, r);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

/* proto: "http" or "https"; the endpoint must be a URL of that scheme. */
static void subscribe_http(sns_req_t *r, const char *proto, const aws_node_t *ep) {
  size_t pl = strlen(proto);
  if (!ep || ep->len > SNS_URL_MAX || memchr(ep->s, 0, ep->len) || sb__sns_check_url(ep->s) ||
      strncmp(ep->s, proto, pl) || strncmp(ep->s + pl, "://", 3)) {
    fail(r, &E_PARAM, "Invalid parameter: Endpoint must be an %s:// URL", proto);
    return;
  }
  memcpy(r->endpoint, ep->s, ep->len + 1);
  uint8_t b[32];
  if (RAND_bytes(b, sizeof b) != 1) {
    fail(r, &E_INTERNAL, "No randomness for a token");
    return;
  }
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    r->token[2 * i] = hx[b[i] >> 4];
    r->token[2 * i + 1] = hx[b[i] & 15];
  }
  r->token[64] = 0;
  r->b.pending = 1;
  started(r, sb_topic_get(r->sns->broker, r->topic, hook_topic_checked, r));
}

static void act_subscribe(sns_req_t *r) {
  if (topic_from_arn(r, sb__aws_get(r->b.p, "TopicArn"))) return;
  const aws_node_t *proto = str(r->b.p, "Protocol"), *ep = str(r->b.p, "Endpoint");
  if (!proto) {
    fail(r, &E_MISSING, "Protocol is required");
    return;
  }
  if (strcmp(proto->s, "http") == 0 || strcmp(proto->s, "https") == 0) {
    subscribe_http(r, proto->s, ep);
    return;
  }
  if (strcmp(proto->s, "sqs") != 0) {
    fail(r, &E_PARAM, "Invalid parameter: Protocol: sqs, http and https are supported");
    return;
  }
  if (!ep || arn_tail(ep->s, ep->len, "sqs", r->queue, sizeof r->queue)) {
    fail(r, &E_PARAM, "Invalid parameter: SQS endpoint ARN");
    return;
  }
  memset(&r->sub, 0, sizeof r->sub);
  memcpy(r->sub.queue, r->queue, sizeof r->queue);
  const aws_node_t *attrs = sb__aws_get(r->b.p, "Attributes");
  for (const aws_node_t *a = attrs && attrs->kind == AWS_MAP ? attrs->child : NULL; a;
       a = a->next) {
    if (a->kind != AWS_STR || !sub_attr_known(a->key) || r->n_kv >= 6) {
      fail(r, &E_PARAM, "Invalid parameter: Attributes Reason: Unknown attribute %.64s", a->key);
      return;
    }
    r->kv[r->n_kv++] = (sb_broker_kv_t){a->key, a->s};
  }
  r->kv[r->n_kv++] = (sb_broker_kv_t){"Endpoint", ep->s};
  if (build_sub(r)) return;
  r->b.pending = 1;
  started(r, sb_topic_subs(r->sns->broker, r->topic, NULL, subs_for_subscribe, r));
}

static void confirm_answer(sns_req_t *r, const char *sub_id) {
  char arn[SNS_ARN_MAX];
  sub_arn(r->sns, r->topic, sub_id, arn, sizeof arn);
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  sb__aws_enc_str(&e, "SubscriptionArn", arn, strlen(arn));
  sb__aws_end(&r->b, &e);
}

static void confirm_recorded(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status)
    fail_status(r, status);
  else
    confirm_answer(r, r->sub_id);
  sb__aws_wake(&r->b);
}

static void confirm_subscribed(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  int rc = status;
  if (!rc && res->n_subs) {
    memcpy(r->sub_id, res->subs[0].id, sizeof r->sub_id);
    /* Remember the subscription on the hook queue: the pusher names it in its headers, and a
     * second confirmation answers the same ARN. */
    r->kv[0] = (sb_broker_kv_t){"sns:sub", r->sub_id};
    /* A confirmation after Unsubscribe (the UnsubscribeConfirmation's SubscribeURL, while the
     * queue still exists) restores the subscription: the queue stays. */
    r->kv[1] = (sb_broker_kv_t){"sns:unsubscribed", ""};
    rc = sb_queue_update(r->sns->broker, r->queue, &r->qcfg, r->kv, 2, confirm_recorded, r);
  }
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

static void confirm_got_queue(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  const sb_queue_info_t *q = status ? NULL : res->queue;
  const char *tok = q ? kv_get(q->kv, q->n_kv, "sns:token") : NULL;
  const char *topic = q ? kv_get(q->kv, q->n_kv, "sns:topic") : NULL;
  if (!tok || strcmp(tok, r->token) || !topic || strcmp(topic, r->topic)) {
    fail(r, &E_PARAM, "Invalid token");
    sb__aws_wake(&r->b);
    return;
  }
  const char *sub = kv_get(q->kv, q->n_kv, "sns:sub");
  if (sub && sub[0]) {
    confirm_answer(r, sub);
    sb__aws_wake(&r->b);
    return;
  }
  r->qcfg = q->config;
  const char *ep = kv_get(q->kv, q->n_kv, "sns:endpoint");
  snprintf(r->endpoint, sizeof r->endpoint, "%s", ep ? ep : "");
  memset(&r->sub, 0, sizeof r->sub);
  memcpy(r->sub.queue, r->queue, sizeof r->sub.queue);
  snprintf(r->sub.format, sizeof r->sub.format, "sns");
  r->kv[0] = (sb_broker_kv_t){"Protocol", strncmp(r->endpoint, "https:", 6) ? "http" : "https"};
  r->kv[1] = (sb_broker_kv_t){"Endpoint", r->endpoint};
  r->sub.kv = r->kv;
  r->sub.n_kv = 2;
  int rc = sb_topic_subscribe(r->sns->broker, r->topic, &r->sub, confirm_subscribed, r);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

static void act_confirm_subscription(sns_req_t *r) {
  if (topic_from_arn(r, sb__aws_get(r->b.p, "TopicArn"))) return;
  const aws_node_t *tok = str(r->b.p, "Token");
  if (!tok) {
    fail(r, &E_MISSING, "Token is required");
    return;
  }
  int ok = tok->len == 64;
  for (size_t i = 0; ok && i < 64; i++)
    ok = isxdigit((unsigned char)tok->s[i]);
  if (!ok) {
    fail(r, &E_PARAM, "Invalid token");
    return;
  }
  memcpy(r->token, tok->s, 65);
  snprintf(r->queue, sizeof r->queue, SNS_HOOK_PREFIX "%.16s", r->token);
  r->b.pending = 1;
  started(r, sb_queue_get(r->sns->broker, r->queue, confirm_got_queue, r));
}

/* The UnsubscribeConfirmation is queued: mark the queue for the pusher. Queued first, so the
 * pusher never finds the queue marked and empty before the message is in it. */
static void unsub_queued(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  int rc = status ? status : res->n && res->sent[0].status ? res->sent[0].status : 0;
  r->kv[0] = (sb_broker_kv_t){"sns:unsubscribed", "1"};
  r->kv[1] = (sb_broker_kv_t){"sns:sub", ""};
  if (!rc) rc = sb_queue_update(r->sns->broker, r->queue, &r->qcfg, r->kv, 2, simple_done, r);
  if (rc) simple_done(r, rc, res);
}

/* A webhook's queue outlives its subscription by one message: SNS tells the endpoint with an
 * UnsubscribeConfirmation. The queue is marked sns:unsubscribed; the pusher deletes it once
 * that message is delivered, or once the queue is empty (it expired undelivered). */
static void unsub_got_queue(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  const char *token = status ? NULL : kv_get(res->queue->kv, res->queue->n_kv, "sns:token");
  const char *topic = status ? NULL : kv_get(res->queue->kv, res->queue->n_kv, "sns:topic");
  if (!token || !topic) { /* nothing to tell: the subscription is gone, so is the queue */
    int rc = sb_queue_delete(r->sns->broker, r->queue, simple_done, r);
    if (rc) simple_done(r, rc, res);
    return;
  }
  r->qcfg = res->queue->config;
  sb_buf_t b = {0};
  int rc = confirmation(r, "UnsubscribeConfirmation", topic, token, &b);
  if (!rc) {
    sb_broker_msg_t m = {b.data, b.len, NULL, 0, NULL, 0, NULL, 0, NULL, 0, -1};
    rc = sb_queue_send(r->sns->broker, r->queue, &m, 1, unsub_queued, r);
  }
  sb_buf_free(&b);
  if (rc) simple_done(r, rc, res);
}

static void unsubscribed(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (!status && r->queue[0]) {
    int rc = sb_queue_get(r->sns->broker, r->queue, unsub_got_queue, r);
    if (!rc) return;
    status = rc;
  }
  simple_done(r, status, res);
}

static void sub_for_unsubscribe(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status || !res->n_subs) {
    simple_done(r, status ? status : SB_ENOTFOUND, res);
    return;
  }
  const sb_sub_info_t *s = &res->subs[0];
  const char *proto = kv_get(s->kv, s->n_kv, "Protocol");
  r->queue[0] = 0;
  if (proto && (!strcmp(proto, "http") || !strcmp(proto, "https")) &&
      !strncmp(s->queue, SNS_HOOK_PREFIX, strlen(SNS_HOOK_PREFIX)))
    snprintf(r->queue, sizeof r->queue, "%s", s->queue);
  sub_arn(r->sns, s->topic, s->id, r->sub_arn, sizeof r->sub_arn);
  int rc = sb_topic_unsubscribe(r->sns->broker, r->sub_id, unsubscribed, r);
  if (rc) simple_done(r, rc, res);
}

static void act_unsubscribe(sns_req_t *r) {
  if (sub_from_arn(r, sb__aws_get(r->b.p, "SubscriptionArn"))) return;
  r->b.pending = 1;
  started(r, sb_topic_subs(r->sns->broker, NULL, r->sub_id, sub_for_unsubscribe, r));
}

static void queue_arn(const sb_sns_t *s, const char *queue, char *out, size_t cap) {
  snprintf(out, cap, "arn:aws:sqs:%s:%s:%s", s->id.region, s->id.account, queue);
}

/* A subscription's Endpoint: its webhook URL, or its queue's ARN. */
static void sub_endpoint(const sb_sns_t *s, const sb_sub_info_t *sub, char *out, size_t cap) {
  const char *ep = kv_get(sub->kv, sub->n_kv, "Endpoint");
  const char *proto = kv_get(sub->kv, sub->n_kv, "Protocol");
  if (ep && proto && strcmp(proto, "sqs"))
    snprintf(out, cap, "%s", ep);
  else
    queue_arn(s, sub->queue, out, cap);
}

static void list_subs_done(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status) {
    fail_status(r, status);
    sb__aws_wake(&r->b);
    return;
  }
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  sb__aws_enc_wlist_begin(&e, "Subscriptions");
  for (size_t i = 0; i < res->n_subs; i++) {
    const sb_sub_info_t *s = &res->subs[i];
    if (s->kind != SB_SUB_QUEUE) continue;
    char arn[SNS_ARN_MAX];
    sb__aws_enc_item_begin(&e);
    sub_arn(r->sns, s->topic, s->id, arn, sizeof arn);
    sb__aws_enc_str(&e, "SubscriptionArn", arn, strlen(arn));
    sb__aws_enc_str(&e, "Owner", r->sns->id.account, strlen(r->sns->id.account));
    const char *proto = kv_get(s->kv, s->n_kv, "Protocol");
    sb__aws_enc_str(&e, "Protocol", proto ? proto : "sqs", proto ? strlen(proto) : 3);
    sub_endpoint(r->sns, s, arn, sizeof arn);
    sb__aws_enc_str(&e, "Endpoint", arn, strlen(arn));
    topic_arn(r->sns, s->topic, arn, sizeof arn);
    sb__aws_enc_str(&e, "TopicArn", arn, strlen(arn));
    sb__aws_enc_item_end(&e);
  }
  sb__aws_enc_list_end(&e);
  sb__aws_end(&r->b, &e);
  sb__aws_wake(&r->b);
}

static void act_list_subscriptions(sns_req_t *r) {
  r->b.pending = 1;
  started(r, sb_topic_subs(r->sns->broker, NULL, NULL, list_subs_done, r));
}

static void topic_for_list(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  int rc = status ? status : sb_topic_subs(r->sns->broker, r->topic, NULL, list_subs_done, r);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

static void act_list_subscriptions_by_topic(sns_req_t *r) {
  if (topic_from_arn(r, sb__aws_get(r->b.p, "TopicArn"))) return;
  r->b.pending = 1;
  started(r, sb_topic_get(r->sns->broker, r->topic, topic_for_list, r));
}

static void sub_attrs_done(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status || !res->n_subs) {
    fail(r, &E_NOT_FOUND, "Subscription does not exist");
    sb__aws_wake(&r->b);
    return;
  }
  const sb_sub_info_t *s = &res->subs[0];
  char arn[SNS_ARN_MAX];
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  sb__aws_enc_wmap_begin(&e, "Attributes");
  sub_arn(r->sns, s->topic, s->id, arn, sizeof arn);
  sb__aws_enc_map_str(&e, "SubscriptionArn", 15, arn, strlen(arn));
  topic_arn(r->sns, s->topic, arn, sizeof arn);
  sb__aws_enc_map_str(&e, "TopicArn", 8, arn, strlen(arn));
  sb__aws_enc_map_str(&e, "Owner", 5, r->sns->id.account, strlen(r->sns->id.account));
  const char *proto = kv_get(s->kv, s->n_kv, "Protocol");
  sb__aws_enc_map_str(&e, "Protocol", 8, proto ? proto : "sqs", proto ? strlen(proto) : 3);
  sub_endpoint(r->sns, s, arn, sizeof arn);
  sb__aws_enc_map_str(&e, "Endpoint", 8, arn, strlen(arn));
  sb__aws_enc_map_str(&e, "PendingConfirmation", 19, "false", 5);
  sb__aws_enc_map_str(&e, "ConfirmationWasAuthenticated", 28, "true", 4);
  const char *raw = kv_get(s->kv, s->n_kv, "RawMessageDelivery");
  sb__aws_enc_map_str(&e, "RawMessageDelivery", 18, raw ? raw : "false", raw ? strlen(raw) : 5);
  for (size_t i = 0; i < s->n_kv; i++) {
    const char *k = s->kv[i].name;
    if (!strcmp(k, "RawMessageDelivery") || !strcmp(k, "Endpoint") || !strcmp(k, "Protocol") ||
        !s->kv[i].value[0])
      continue;
    sb__aws_enc_map_str(&e, k, strlen(k), s->kv[i].value, strlen(s->kv[i].value));
  }
  sb__aws_enc_map_end(&e);
  sb__aws_end(&r->b, &e);
  sb__aws_wake(&r->b);
}

static void act_get_subscription_attributes(sns_req_t *r) {
  if (sub_from_arn(r, sb__aws_get(r->b.p, "SubscriptionArn"))) return;
  r->b.pending = 1;
  started(r, sb_topic_subs(r->sns->broker, NULL, r->sub_id, sub_attrs_done, r));
}

/* SetSubscriptionAttributes: read the subscription, replace one attribute, update. */
static void sub_for_set(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  if (status || !res->n_subs) {
    fail(r, &E_NOT_FOUND, "Subscription does not exist");
    sb__aws_wake(&r->b);
    return;
  }
  const sb_sub_info_t *s = &res->subs[0];
  r->n_kv = 0;
  for (size_t i = 0; i < s->n_kv && r->n_kv < 7; i++) {
    if (!strcmp(s->kv[i].name, r->attr_name)) continue;
    char *n = sb_arena_strndup(&r->b.arena, s->kv[i].name, strlen(s->kv[i].name));
    char *v = sb_arena_strndup(&r->b.arena, s->kv[i].value, strlen(s->kv[i].value));
    if (!n || !v) {
      fail(r, &E_INTERNAL, "Out of memory");
      sb__aws_wake(&r->b);
      return;
    }
    r->kv[r->n_kv++] = (sb_broker_kv_t){n, v};
  }
  r->kv[r->n_kv++] = (sb_broker_kv_t){r->attr_name, r->attr_value};
  memset(&r->sub, 0, sizeof r->sub);
  if (build_sub(r)) {
    sb__aws_wake(&r->b);
    return;
  }
  int rc = sb_topic_sub_update(r->sns->broker, r->sub_id, &r->sub, simple_done, r);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

static void act_set_subscription_attributes(sns_req_t *r) {
  if (sub_from_arn(r, sb__aws_get(r->b.p, "SubscriptionArn"))) return;
  const aws_node_t *n = str(r->b.p, "AttributeName"), *v = str(r->b.p, "AttributeValue");
  if (!n || !sub_attr_known(n->s)) {
    fail(r, n ? &E_PARAM : &E_MISSING, "Invalid parameter: AttributeName");
    return;
  }
  r->attr_name = n->s;
  r->attr_value = v ? v->s : "";
  /* Checked here too, so a bad value fails before the read. */
  r->kv[0] = (sb_broker_kv_t){r->attr_name, r->attr_value};
  r->n_kv = 1;
  if (build_sub(r)) return;
  r->n_kv = 0;
  r->b.pending = 1;
  started(r, sb_topic_subs(r->sns->broker, NULL, r->sub_id, sub_for_set, r));
}

/* ---- publishing ---- */

/* Prepares one message of Publish or a PublishBatch entry m into p. Returns 0 or -1 with
 * p->err set. fifo: the topic is FIFO (by name). */
static int prep_pub(sns_req_t *r, const aws_node_t *m, sns_pub_t *p, int fifo) {
#define PFAIL(E, ...)                                                                              \
  do {                                                                                             \
    char _b[600];                                                                                  \
    snprintf(_b, sizeof _b, __VA_ARGS__);                                                          \
    p->err = (E);                                                                                  \
    p->err_msg = sb_arena_strndup(&r->b.arena, _b, strlen(_b));                                    \
    if (!p->err_msg) p->err_msg = "invalid";                                                       \
    return -1;                                                                                     \
  } while (0)
  memset(&p->msg, 0, sizeof p->msg);
  p->msg.delay_ms = -1;
  const aws_node_t *msg = str(m, "Message");
  if (!msg || msg->len == 0) PFAIL(&E_PARAM, "Invalid parameter: Empty message");
  const char *body = msg->s;
  size_t blen = msg->len;
  const aws_node_t *structure = str(m, "MessageStructure");
  if (structure) {
    if (strcmp(structure->s, "json")) PFAIL(&E_PARAM, "Invalid parameter: MessageStructure");
    aws_node_t *j;
    const char *err;
    const aws_node_t *d = NULL;
    if (!sb__aws_decode_json(&r->b.arena, msg->s, msg->len, &j, &err)) {
      d = str(j, "sqs");
      if (!d) d = str(j, "default");
    }
    if (!d)
      PFAIL(&E_PARAM,
            "Invalid parameter: Message Structure - No default entry in JSON message body");
    body = d->s;
    blen = d->len;
  }
  p->msg.body = body;
  p->msg.body_len = blen;
  size_t size = blen;
  const aws_node_t *subject = str(m, "Subject");
  p->n_meta = 0;
  if (subject) {
    if (subject->len == 0 || subject->len > SNS_MAX_SUBJECT ||
        memchr(subject->s, '\n', subject->len))
      PFAIL(&E_PARAM, "Invalid parameter: Subject");
    p->meta[p->n_meta++] = (sb_broker_kv_t){"Subject", subject->s};
  }
  p->meta[p->n_meta++] = (sb_broker_kv_t){"Host", r->b.host};
  const aws_node_t *ma = sb__aws_get(m, "MessageAttributes");
  if (ma && ma->kind == AWS_MAP && ma->n) {
    if (ma->n > 10) PFAIL(&E_PARAM, "Invalid parameter: too many message attributes");
    sb_broker_attr_t *attrs = sb_arena_alloc(&r->b.arena, ma->n * sizeof *attrs);
    if (!attrs) PFAIL(&E_INTERNAL, "Out of memory");
    size_t i = 0;
    for (const aws_node_t *a = ma->child; a; a = a->next, i++) {
      const aws_node_t *dt = str(a, "DataType"), *sv = str(a, "StringValue"),
                       *bv = str(a, "BinaryValue");
      if (!dt)
        PFAIL(&E_PARAM_VALUE,
              "The message attribute '%.64s' must contain non-empty message attribute type.",
              a->key);
      int bin = dt->len >= 6 && !memcmp(dt->s, "Binary", 6);
      int known =
          bin || (dt->len >= 6 && (!memcmp(dt->s, "String", 6) || !memcmp(dt->s, "Number", 6)));
      if (!known)
        PFAIL(&E_PARAM_VALUE,
              "The message attribute '%.64s' has an invalid message attribute type, the set of "
              "supported type prefixes is Binary, Number, and String.",
              a->key);
      const void *val;
      size_t vlen;
      if (bin) {
        if (!bv)
          PFAIL(&E_PARAM_VALUE,
                "The message attribute '%.64s' with type 'Binary' must use field 'Binary'.",
                a->key);
        uint8_t *raw = sb_arena_alloc(&r->b.arena, SB_BASE64_DECODED_MAX(bv->len) + 1);
        long n = raw ? sb_base64_decode(bv->s, bv->len, raw) : -1;
        if (n < 0)
          PFAIL(&E_PARAM_VALUE, "The message attribute '%.64s' has an invalid binary value.",
                a->key);
        val = raw;
        vlen = (size_t)n;
      } else {
        if (!sv || sv->len == 0)
          PFAIL(&E_PARAM_VALUE,
                "The message attribute '%.64s' must contain non-empty message attribute value for "
                "message attribute type '%.32s'.",
                a->key, dt->s);
        double d;
        if (dt->s[0] == 'N' && sb_json_to_double(sv->s, sv->len, &d))
          PFAIL(&E_PARAM_VALUE, "Could not cast message attribute '%.64s' value to number.",
                a->key);
        val = sv->s;
        vlen = sv->len;
      }
      attrs[i] = (sb_broker_attr_t){a->key, a->key_len, dt->s, dt->len, val, vlen};
      size += a->key_len + dt->len + vlen;
    }
    p->msg.attrs = attrs;
    p->msg.n_attrs = ma->n;
  }
  if (size > SNS_MAX_MESSAGE) PFAIL(&E_PARAM, "Invalid parameter: Message too long");
  const aws_node_t *g = str(m, "MessageGroupId"), *dd = str(m, "MessageDeduplicationId");
  if (fifo && !g)
    PFAIL(&E_PARAM, "Invalid parameter: The MessageGroupId parameter is required for FIFO topics");
  if (!fifo && dd)
    PFAIL(&E_PARAM, "Invalid parameter: MessageDeduplicationId Reason: The request includes "
                    "MessageDeduplicationId parameter that is not valid for this topic type");
  if (g) {
    if (g->len == 0 || g->len > SB_BROKER_GROUP_MAX)
      PFAIL(&E_PARAM, "Invalid parameter: MessageGroupId");
    p->msg.group = g->s;
    p->msg.group_len = g->len;
  }
  if (dd) {
    if (dd->len == 0 || dd->len > SB_BROKER_GROUP_MAX)
      PFAIL(&E_PARAM, "Invalid parameter: MessageDeduplicationId");
    p->msg.dedup = dd->s;
    p->msg.dedup_len = dd->len;
  }
#undef PFAIL
  return 0;
}

static void publish_next(sns_req_t *r);

static void encode_publish(sns_req_t *r) {
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  if (!r->batch) {
    sns_pub_t *p = &r->pubs[0];
    if (p->err) {
      fail(r, p->err, "%s", p->err_msg);
      return;
    }
    sb__aws_enc_str(&e, "MessageId", p->msg_id, strlen(p->msg_id));
    if (p->msg.group) {
      char seq[24];
      int n = snprintf(seq, sizeof seq, "%020llu", (unsigned long long)p->seq);
      sb__aws_enc_str(&e, "SequenceNumber", seq, (size_t)n);
    }
  } else {
    sb__aws_enc_wlist_begin(&e, "Successful");
    for (size_t i = 0; i < r->n_pubs; i++) {
      sns_pub_t *p = &r->pubs[i];
      if (p->err) continue;
      sb__aws_enc_item_begin(&e);
      sb__aws_enc_str(&e, "Id", p->id, strlen(p->id));
      sb__aws_enc_str(&e, "MessageId", p->msg_id, strlen(p->msg_id));
      sb__aws_enc_item_end(&e);
    }
    sb__aws_enc_list_end(&e);
    sb__aws_enc_wlist_begin(&e, "Failed");
    for (size_t i = 0; i < r->n_pubs; i++) {
      sns_pub_t *p = &r->pubs[i];
      if (!p->err) continue;
      sb__aws_enc_item_begin(&e);
      sb__aws_enc_str(&e, "Id", p->id, strlen(p->id));
      sb__aws_enc_str(&e, "Code", p->err->code, strlen(p->err->code));
      sb__aws_enc_str(&e, "Message", p->err_msg, strlen(p->err_msg));
      sb__aws_enc_bool(&e, "SenderFault", p->err->sender);
      sb__aws_enc_item_end(&e);
    }
    sb__aws_enc_list_end(&e);
  }
  sb__aws_end(&r->b, &e);
}

static void published(void *arg, int status, const sb_broker_result_t *res) {
  sns_req_t *r = arg;
  sns_pub_t *p = &r->pubs[r->next_pub++];
  if (status == SB_ENOTFOUND) {
    fail(r, &E_NOT_FOUND, "Topic does not exist");
    sb__aws_wake(&r->b);
    return;
  }
  if (status) {
    p->err = &E_INTERNAL;
    p->err_msg = "The message could not be published.";
  } else if (res->n) {
    memcpy(p->msg_id, res->sent[0].id, sizeof p->msg_id);
    p->seq = res->sent[0].seq;
  }
  publish_next(r);
}

/* Publishes the remaining messages one by one (from the broker thread after the first). */
static void publish_next(sns_req_t *r) {
  while (r->next_pub < r->n_pubs && r->pubs[r->next_pub].err)
    r->next_pub++;
  if (r->next_pub == r->n_pubs) {
    encode_publish(r);
    sb__aws_wake(&r->b);
    return;
  }
  sns_pub_t *p = &r->pubs[r->next_pub];
  int rc =
      sb_topic_publish(r->sns->broker, r->topic, &p->msg, NULL, p->meta, p->n_meta, published, r);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

static int is_fifo(const char *name) {
  size_t n = strlen(name);
  return n > 5 && !strcmp(name + n - 5, ".fifo");
}

static void act_publish(sns_req_t *r) {
  const aws_node_t *arn = sb__aws_get(r->b.p, "TopicArn");
  if (!arn) arn = sb__aws_get(r->b.p, "TargetArn");
  if (topic_from_arn(r, arn)) return;
  r->pubs = sb_arena_alloc(&r->b.arena, sizeof *r->pubs);
  if (!r->pubs) {
    fail(r, &E_INTERNAL, "Out of memory");
    return;
  }
  memset(r->pubs, 0, sizeof *r->pubs);
  r->n_pubs = 1;
  if (prep_pub(r, r->b.p, &r->pubs[0], is_fifo(r->topic))) {
    fail(r, r->pubs[0].err, "%s", r->pubs[0].err_msg);
    return;
  }
  r->b.pending = 1;
  publish_next(r);
}

static void act_publish_batch(sns_req_t *r) {
  if (topic_from_arn(r, sb__aws_get(r->b.p, "TopicArn"))) return;
  const aws_node_t *en = sb__aws_get(r->b.p, "PublishBatchRequestEntries");
  if (en && en->kind == AWS_STR && en->len == 0) en = NULL;
  if (!en || en->kind != AWS_LIST || en->n == 0) {
    fail(r, &E_EMPTY_BATCH, "The batch request doesn't contain any entries");
    return;
  }
  if (en->n > 10) {
    fail(r, &E_TOO_MANY, "The batch request contains more entries than permissible");
    return;
  }
  r->batch = 1;
  r->pubs = sb_arena_alloc(&r->b.arena, en->n * sizeof *r->pubs);
  if (!r->pubs) {
    fail(r, &E_INTERNAL, "Out of memory");
    return;
  }
  memset(r->pubs, 0, en->n * sizeof *r->pubs);
  r->n_pubs = en->n;
  size_t i = 0;
  for (const aws_node_t *a = en->child; a; a = a->next, i++) {
    const aws_node_t *id = str(a, "Id");
    int ok = id && id->len > 0 && id->len <= 80;
    for (size_t k = 0; ok && k < id->len; k++)
      ok = isalnum((unsigned char)id->s[k]) || id->s[k] == '-' || id->s[k] == '_';
    if (!ok) {
      fail(r, &E_BAD_ENTRY_ID,
           "The Id of a batch entry in a batch request doesn't abide by the "
           "specification");
      return;
    }
    for (size_t k = 0; k < i; k++)
      if (!strcmp(r->pubs[k].id, id->s)) {
        fail(r, &E_IDS_NOT_DISTINCT, "Two or more batch entries in the request have the same Id");
        return;
      }
    r->pubs[i].id = id->s;
    prep_pub(r, a, &r->pubs[i], is_fifo(r->topic));
  }
  r->b.pending = 1;
  publish_next(r);
}

/* ---- the SNS envelope ---- */

static void iso_time(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* Builds the JSON envelope SNS puts around a message it delivers to an SQS queue. */
static int format_envelope(void *ud, const sb_topic_message_t *m, const sb_sub_info_t *sub,
                           char **body, size_t *body_len, bool *keep_attrs) {
  const sb_sns_t *s = ud;
  sb_buf_t b = {0};
  sb_jw_t w;
  sb_jw_init(&w, &b);
  char arn[SNS_ARN_MAX], t[32], url[1024];
  const char *subject = kv_get(m->meta, m->n_meta, "Subject");
  const char *host = kv_get(m->meta, m->n_meta, "Host");
  sb_jw_obj_begin(&w);
  sb_jw_key(&w, "Type", 4);
  sb_jw_str(&w, "Notification", 12);
  sb_jw_key(&w, "MessageId", 9);
  sb_jw_str(&w, m->id, strlen(m->id));
  topic_arn(s, m->topic, arn, sizeof arn);
  sb_jw_key(&w, "TopicArn", 8);
  sb_jw_str(&w, arn, strlen(arn));
  if (subject) {
    sb_jw_key(&w, "Subject", 7);
    sb_jw_str(&w, subject, strlen(subject));
  }
  sb_jw_key(&w, "Message", 7);
  sb_jw_str(&w, (const char *)m->msg->body, m->msg->body_len);
  iso_time(m->timestamp_ms, t);
  sb_jw_key(&w, "Timestamp", 9);
  sb_jw_str(&w, t, strlen(t));
  /* These three fields must come out as SNS_UNSIGNED: the webhook pusher signs by replacing
   * them. Deliveries to SQS subscriptions stay unsigned (an RSA signature per copy on the
   * broker thread would bound every fan-out); the fields keep their places for parsers. */
  sb_jw_key(&w, "SignatureVersion", 16);
  sb_jw_str(&w, "1", 1);
  sb_jw_key(&w, "Signature", 9);
  sb_jw_str(&w, "", 0);
  sb_jw_key(&w, "SigningCertURL", 14);
  sb_jw_str(&w, "", 0);
  int n = snprintf(url, sizeof url, "http://%s/?Action=Unsubscribe&SubscriptionArn=%s:%s",
                   host ? host : "localhost", arn, sub->id);
  sb_jw_key(&w, "UnsubscribeURL", 14);
  sb_jw_str(&w, url, (size_t)n < sizeof url ? (size_t)n : sizeof url - 1);
  if (m->msg->n_attrs) {
    sb_jw_key(&w, "MessageAttributes", 17);
    sb_jw_obj_begin(&w);
    for (size_t i = 0; i < m->msg->n_attrs; i++) {
      const sb_broker_attr_t *a = &m->msg->attrs[i];
      sb_jw_key(&w, a->name, a->name_len);
      sb_jw_obj_begin(&w);
      sb_jw_key(&w, "Type", 4);
      sb_jw_str(&w, a->type, a->type_len);
      sb_jw_key(&w, "Value", 5);
      if (a->type_len >= 6 && !memcmp(a->type, "Binary", 6)) {
        char *b64 = malloc((a->value_len + 2) / 3 * 4 + 1);
        if (!b64) {
          sb_buf_free(&b);
          return SB_ENOMEM;
        }
        size_t bl = sb_base64_encode(a->value, a->value_len, b64);
        sb_jw_str(&w, b64, bl);
        free(b64);
      } else {
        sb_jw_str(&w, a->value, a->value_len);
      }
      sb_jw_obj_end(&w);
    }
    sb_jw_obj_end(&w);
  }
  sb_jw_obj_end(&w);
  if (sb_jw_error(&w)) {
    sb_buf_free(&b);
    return SB_EINVAL;
  }
  *body = (char *)b.data; /* the broker frees it */
  *body_len = b.len;
  *keep_attrs = false;
  return 0;
}

/* ---- dispatch and HTTP ---- */

static const sns_action_t actions[] = {
    {"CreateTopic", act_create_topic, 1},
    {"ListTopics", act_list_topics, 1},
    {"DeleteTopic", act_delete_topic, 0},
    {"GetTopicAttributes", act_get_topic_attributes, 1},
    {"SetTopicAttributes", act_set_topic_attributes, 0},
    {"Subscribe", act_subscribe, 1},
    {"ConfirmSubscription", act_confirm_subscription, 1},
    {"Unsubscribe", act_unsubscribe, 0},
    {"ListSubscriptions", act_list_subscriptions, 1},
    {"ListSubscriptionsByTopic", act_list_subscriptions_by_topic, 1},
    {"GetSubscriptionAttributes", act_get_subscription_attributes, 1},
    {"SetSubscriptionAttributes", act_set_subscription_attributes, 0},
    {"Publish", act_publish, 1},
    {"PublishBatch", act_publish_batch, 1},
};
static const sns_action_t unknown_action = {"Unknown", NULL, 0};

static void process(aws_req_t *b) {
  sns_req_t *r = (sns_req_t *)b;
  r->sns = b->owner;
  r->act = &unknown_action;
  if (sb__aws_decode_query(b)) return;
  const aws_node_t *an = str(b->p, "Action");
  /* ConfirmSubscription needs no signature: its token is the credential (SubscribeURL). */
  if (r->sns->id.key_id[0] && !(an && !strcmp(an->s, "ConfirmSubscription")) &&
      sb__aws_auth(b, r->sns->id.key_id, r->sns->id.secret))
    return;
  if (!an) {
    fail(r, &E_MISSING, "The request must contain the parameter Action.");
    return;
  }
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
    if (!strcmp(actions[i].name, an->s)) r->act = &actions[i];
  if (r->act == &unknown_action) {
    fail(r, &E_ACTION, "The action %.64s is not valid for this endpoint.", an->s);
    return;
  }
  b->action = r->act->name;
  b->result = r->act->result;
  r->act->fn(r);
}

static const aws_service_t service = {
    .xmlns = SNS_XMLNS,
    .req_size = sizeof(sns_req_t),
    .max_request = SNS_MAX_REQUEST,
    .too_long = &E_PARAM,
    .process = process,
};

/* Claims Query requests signed for SNS (credential scope ".../sns/aws4_request") and the
 * unsigned GET of a SubscribeURL. */
static int claim(sb_http_req_t *req, void *ud) {
  if (!strcmp(sb_http_req_method(req), "GET") &&
      !strncmp(sb_http_req_query(req), "Action=ConfirmSubscription&", 27))
    return 1;
  const char *auth = sb_http_req_header(req, "authorization", NULL);
  if (!auth || !strstr(auth, "/sns/aws4_request")) return 0;
  const char *m = sb_http_req_method(req);
  if (!strcmp(m, "GET")) return strstr(sb_http_req_query(req), "Action=") != NULL;
  if (strcmp(m, "POST")) return 0;
  size_t n = 0;
  const char *ct = sb_http_req_header(req, "content-type", &n);
  return ct && n >= 33 && !strncasecmp(ct, "application/x-www-form-urlencoded", 33);
}

/* The signing certificate, at the path every SigningCertURL names. */
static int claim_cert(sb_http_req_t *req, void *ud) {
  const sb_sns_t *s = ud;
  return s->signer && !strcmp(sb_http_req_method(req), "GET") &&
         !strcmp(sb_http_req_path(req), sb__sns_signer_cert_path(s->signer));
}

static void serve_cert(sb_http_req_t *req, void *ud) {
  const sb_sns_t *s = ud;
  size_t n = 0;
  const char *pem = sb__sns_signer_cert(s->signer, &n);
  sb_http_respond(req, 200, "application/x-x509-ca-cert", pem, n);
}

int sb_sns_attach(sb_rpc_t *rpc, sb_broker_t *broker, const sb_sqs_config_t *cfg, sb_sns_t **out) {
  if (!rpc || !broker || !out) return SB_EINVAL;
  sb_sns_t *s = calloc(1, sizeof *s);
  if (!s) return SB_ENOMEM;
  s->broker = broker;
  s->fe = (aws_frontend_t){&service, s};
  if (sb__aws_ident(cfg, &s->id)) {
    free(s);
    return SB_EINVAL;
  }
  int rc = sb_topic_set_format(broker, "sns", format_envelope, s);
  if (rc) {
    free(s);
    return rc;
  }
  /* From here the broker's formatter borrows s until sb_broker_close(): on a failure below
   * s stays allocated (and is lost) rather than left dangling there. */
  rc = sb__aws_add_frontend(rpc, claim, &s->fe);
  if (!rc)
    rc = sb__sns_signer_open(cfg ? cfg->sns_signing_key : NULL, cfg ? cfg->data_dir : NULL,
                             &s->signer);
  if (!rc) rc = sb_rpc_add_frontend(rpc, claim_cert, serve_cert, s);
  if (rc) return rc;
  rc = sb__sns_hooks_start(broker, s->id.region, s->id.account, s->signer,
                           cfg ? cfg->sns_webhook_ca : NULL, &s->hooks);
  if (rc) return rc;
  *out = s;
  return 0;
}

void sb_sns_stop(sb_sns_t *s) {
  if (!s) return;
  sb__sns_hooks_stop(s->hooks);
  s->hooks = NULL;
}

void sb_sns_free(sb_sns_t *s) {
  sb_sns_stop(s);
  if (s) {
    sb__aws_ident_clear(&s->id);
    sb__sns_signer_free(s->signer);
  }
  free(s);
}
