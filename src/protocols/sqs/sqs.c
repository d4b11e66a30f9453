/*
 * The SQS front-end (include/switchboard/sqs.h): HTTP exchanges in, queue-engine operations
 * out, in either wire protocol.
 *
 * A request's life (gathered and decoded on its worker loop, handed to the broker, encoded
 * in the broker callback, answered on the loop) is the one of every AWS front-end: see
 * protocols/aws/aws.h.
 *
 * A request that starts a long poll keeps its async handle open, so its worker loop keeps
 * running until the poll ends. An explicit WaitTimeSeconds is therefore served in slices of
 * SQS_POLL_SLICE_MS chained on the broker thread, which stop early once the exchange was
 * aborted (client gone, or closed by the server's shutdown): a stopping server waits at most
 * its grace period plus one slice. A queue's default wait (ReceiveMessageWaitTimeSeconds) is
 * one engine wait, unsliced.
 *
 * Out of memory: the request is answered 500 InternalError when possible, else reset.
 */
#include <ctype.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "core/json.h"
#include "core/codec.h"
#include "protocols/sqs/sqs_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"
#include "switchboard/sqs.h"

#define SQS_MAX_REQUEST (SB_BROKER_MESSAGE_MAX * 2u + 65536u) /* a batch, base64'd attrs */
#define SQS_HOST_MAX 256u                                     /* bytes of the Host we echo */
#define SQS_POLICY_MAX 20480u                                 /* bytes of a Policy document */
#define SQS_KV_VALUE_MAX 1000u /* bytes of one kv value the broker keeps (sb_queue_update) */
#define SQS_POLICY_CHUNKS ((SQS_POLICY_MAX + SQS_KV_VALUE_MAX - 1) / SQS_KV_VALUE_MAX)
#define SQS_ARN_MAX 256u       /* bytes of an ARN */
#define SQS_LIST_DEFAULT 1000u /* ListQueues without MaxResults */
#define SQS_MOVE_RATE_MAX 500u
#define SQS_POLL_SLICE_MS                                                                          \
  1000 /* a long poll waits in the engine this long at a time */ /* MaxNumberOfMessagesPerSecond   \
                                                                  */

#define SQS_XMLNS "http://queue.amazonaws.com/doc/2012-11-05/"

struct sb_sqs {
  sb_broker_t *broker; /* borrowed */
  aws_ident_t id;      /* region, account, credential */
  aws_frontend_t fe;   /* how the listener reaches this service */
};

/* ---- errors ---- */

#define E_INTERNAL sb__aws_e_internal
#define E_MISSING sb__aws_e_missing
#define E_ACTION sb__aws_e_action

static const aws_err_t E_NO_QUEUE = {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue",
                                     400, 1};
static const aws_err_t E_QUEUE_EXISTS = {"QueueNameExists", "QueueAlreadyExists", 400, 1};
static const aws_err_t E_PARAM = {"InvalidParameterValue", "InvalidParameterValue", 400, 1};
static const aws_err_t E_ATTR_NAME = {"InvalidAttributeName", "InvalidAttributeName", 400, 1};
static const aws_err_t E_ATTR_VALUE = {"InvalidAttributeValue", "InvalidAttributeValue", 400, 1};
static const aws_err_t E_RECEIPT = {"ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 404, 1};
static const aws_err_t E_NOT_INFLIGHT = {"MessageNotInflight",
                                         "AWS.SimpleQueueService.MessageNotInflight", 400, 1};
static const aws_err_t E_TOO_MANY = {"TooManyEntriesInBatchRequest",
                                     "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400, 1};
static const aws_err_t E_EMPTY_BATCH = {"EmptyBatchRequest",
                                        "AWS.SimpleQueueService.EmptyBatchRequest", 400, 1};
static const aws_err_t E_IDS_NOT_DISTINCT = {
    "BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400, 1};
static const aws_err_t E_BAD_ENTRY_ID = {"InvalidBatchEntryId",
                                         "AWS.SimpleQueueService.InvalidBatchEntryId", 400, 1};
static const aws_err_t E_BATCH_TOO_LONG = {"BatchRequestTooLong",
                                           "AWS.SimpleQueueService.BatchRequestTooLong", 400, 1};
static const aws_err_t E_CONTENTS = {"InvalidMessageContents", "InvalidMessageContents", 400, 1};
static const aws_err_t E_UNSUPPORTED = {"UnsupportedOperation",
                                        "AWS.SimpleQueueService.UnsupportedOperation", 400, 1};
static const aws_err_t E_RESOURCE = {"ResourceNotFoundException", "ResourceNotFoundException", 404,
                                     1};
static const aws_err_t E_OVER_LIMIT = {"OverLimit", "OverLimit", 403, 1};
static const aws_err_t E_SERIALIZATION = {"SerializationException", "SerializationException", 400,
                                          1};

/* ---- requests ---- */

typedef struct sqs_req sqs_req_t;
typedef void (*sqs_action_fn)(sqs_req_t *r);

typedef struct sqs_action {
  const char *name; /* "SendMessage" */
  sqs_action_fn fn; /* checks parameters and starts the operation */
  int needs_queue;  /* 1: resolves QueueUrl into r->queue first */
  int result;       /* 1: the Query response has an <ActionResult> element */
} sqs_action_t;

/* One message of a send being prepared (SendMessage or an entry of SendMessageBatch). */
typedef struct sqs_out_msg {
  const char *id;       /* batch entry id (arena), or NULL */
  char md5_body[33];    /* MD5OfMessageBody */
  char md5_attrs[33];   /* MD5OfMessageAttributes, "" without attributes */
  char md5_sys[33];     /* MD5OfMessageSystemAttributes, "" without them */
  const aws_err_t *err; /* a per-entry failure found before the send, or NULL */
  const char *err_msg;  /* its message (arena or static) */
  int engine_index;     /* index in the engine's batch, -1 when not sent */
} sqs_out_msg_t;

/* Changes to a queue's attributes, parsed on the loop, applied on the broker thread. */
typedef struct sqs_patch {
  int has_vis, has_delay, has_ret, has_max, has_wait, has_redrive, has_cbd, has_fifo;
  uint32_t vis_ms;                     /* VisibilityTimeout, in ms */
  uint32_t delay_ms;                   /* DelaySeconds, in ms */
  uint64_t ret_ms;                     /* MessageRetentionPeriod, in ms */
  uint32_t max_bytes;                  /* MaximumMessageSize */
  uint32_t wait_ms;                    /* ReceiveMessageWaitTimeSeconds, in ms */
  uint32_t max_receive;                /* RedrivePolicy maxReceiveCount; 0 = removed */
  char dlq[SB_BROKER_NAME_MAX + 1];    /* RedrivePolicy's dead-letter queue, "" = removed */
  int cbd;                             /* ContentBasedDeduplication */
  int fifo;                            /* FifoQueue */
  int fifo_only;                       /* an attribute only FIFO queues have was given */
  sb_broker_kv_t kv[SB_BROKER_KV_MAX]; /* front-end attributes and tags; strings in arena */
  size_t n_kv;                         /* entries of kv */
} sqs_patch_t;

struct sqs_req {
  aws_req_t b;                        /* the common part; first, the request is freed through it */
  sb_sqs_t *sqs;                      /* borrowed */
  const sqs_action_t *act;            /* the action, once known */
  char queue[SB_BROKER_NAME_MAX + 1]; /* the queue QueueUrl names */
  /* Per-action state (arena-allocated arrays). */
  sqs_patch_t patch;      /* CreateQueue, SetQueueAttributes, TagQueue, UntagQueue */
  sqs_out_msg_t *msgs;    /* sends: one per request entry */
  sb_broker_msg_t *emsgs; /* sends: the messages handed to the engine */
  size_t n_msgs, n_emsgs; /* counts of the two */
  const char **ids;       /* deletes, visibility changes: entry ids */
  const char **receipts;  /* deletes, visibility changes: receipt handles */
  int64_t *vis;           /* visibility changes: per entry, in ms */
  int *statuses;          /* visibility changes: per entry, filled as groups complete */
  int *done;              /* visibility changes: per entry, 1 once sent to the engine */
  size_t n_entries;       /* entries of the five arrays above */
  const char **sel;       /* receive: requested message attribute names, or NULL */
  size_t n_sel;           /* entries of sel */
  size_t recv_max;        /* receive: MaxNumberOfMessages */
  int64_t recv_vis;       /* receive: visibility in ms, -1 for the queue's */
  uint64_t poll_end_ns;   /* receive: uv_hrtime() when an explicit long poll ends, else 0 */
  unsigned sys_attrs;     /* receive: requested system attributes (SA_* bits) */
  int single;             /* 1 for the non-batch form of a batchable action */
  uint32_t rate;          /* StartMessageMoveTask: messages per second */
  char dest[SB_BROKER_NAME_MAX + 1];  /* StartMessageMoveTask: destination, "" = sources */
  char after[SB_BROKER_NAME_MAX + 1]; /* list pagination: continue after this name */
  size_t max_results;                 /* list pagination: page size, 0 = all */
  sb_queue_config_t cfg;              /* CreateQueue: the configuration to create */
  sqs_permission_t perm;              /* AddPermission, RemovePermission */
  int (*after_dlq)(sqs_req_t *r);     /* runs once RedrivePolicy's queue is known to exist */
};

_Static_assert(offsetof(sqs_req_t, b) == 0, "aws.c frees a request through its head");

/* Records the error to answer; the first one wins. */
#define fail(r, ...) sb__aws_fail(&(r)->b, __VA_ARGS__)

/* Maps an engine status to an AWS error. */
static void fail_status(sqs_req_t *r, int status) {
  switch (status) {
  case SB_ENOTFOUND:
    fail(r, &E_NO_QUEUE, "The specified queue does not exist.");
    break;
  case SB_EINVAL:
    fail(r, &E_PARAM, "One or more parameters are invalid.");
    break;
  case SB_ELIMIT:
    fail(r, &E_OVER_LIMIT, "A limit of the queue was reached.");
    break;
  case SB_ENOSPC:
    fail(r, &E_INTERNAL, "The broker's disk is full.");
    break;
  default:
    fail(r, &E_INTERNAL, "Internal error: %s.", sb_strerror(status));
    break;
  }
}

/* ---- small helpers ---- */

static void queue_url(const sqs_req_t *r, const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s://%s/%s/%s", r->b.tls ? "https" : "http", r->b.host, r->sqs->id.account,
           name);
}

static void queue_arn(const sqs_req_t *r, const char *name, char *out, size_t cap) {
  snprintf(out, cap, "arn:aws:sqs:%s:%s:%s", r->sqs->id.region, r->sqs->id.account, name);
}

static int is_fifo_name(const char *name) {
  size_t n = strlen(name);
  return n > 5 && strcmp(name + n - 5, ".fifo") == 0;
}

/* The queue name at the end of a queue URL, an ARN or a path. */
static const char *last_segment(const char *s, size_t len, char sep, size_t *out_len) {
  size_t i = len;
  while (i > 0 && s[i - 1] != sep)
    i--;
  *out_len = len - i;
  return s + i;
}

static int name_from(const char *s, size_t len, char sep, char out[SB_BROKER_NAME_MAX + 1]) {
  size_t n;
  const char *p = last_segment(s, len, sep, &n);
  if (n == 0 || n > SB_BROKER_NAME_MAX || memchr(p, 0, n)) return -1;
  memcpy(out, p, n);
  out[n] = 0;
  return sb_broker_check_name(out, is_fifo_name(out)) ? -1 : 0;
}

/* A string parameter: NULL when absent; fails InvalidParameterValue when not a string. */
static const aws_node_t *str_param(sqs_req_t *r, const aws_node_t *m, const char *name) {
  const aws_node_t *v = sb__aws_get(m, name);
  if (v && v->kind != AWS_STR) {
    fail(r, &E_PARAM, "Value for parameter %s is invalid.", name);
    return NULL;
  }
  return v;
}

static const aws_node_t *required(sqs_req_t *r, const aws_node_t *m, const char *name) {
  const aws_node_t *v = str_param(r, m, name);
  if (!v && !r->b.err) fail(r, &E_MISSING, "The request must contain the parameter %s.", name);
  return v;
}

static int parse_int(const char *s, size_t len, int64_t *out) {
  if (len == 0 || len > 19) return -1;
  size_t i = 0;
  int neg = 0;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    i = 1;
    if (len == 1) return -1;
  }
  int64_t v = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = neg ? -v : v;
  return 0;
}

/* An integer parameter in [lo, hi]: 1 when present (*out set), 0 when absent, -1 after a
 * failure. */
static int int_param(sqs_req_t *r, const aws_node_t *m, const char *name, int64_t lo, int64_t hi,
                     int64_t *out) {
  const aws_node_t *v = str_param(r, m, name);
  if (!v) return r->b.err ? -1 : 0;
  if (parse_int(v->s, v->len, out) || *out < lo || *out > hi) {
    fail(r, &E_PARAM,
         "Value %.64s for parameter %s is invalid. Reason: must be between %lld and %lld.", v->s,
         name, (long long)lo, (long long)hi);
    return -1;
  }
  return 1;
}

static int is_true(const aws_node_t *v) {
  return v->len == 4 && strncasecmp(v->s, "true", 4) == 0;
}
static int is_bool(const aws_node_t *v) {
  return is_true(v) || (v->len == 5 && strncasecmp(v->s, "false", 5) == 0);
}

/* ---- queue resolution ---- */

static int resolve_queue(sqs_req_t *r) {
  const aws_node_t *u = str_param(r, r->b.p, "QueueUrl");
  if (r->b.err) return -1;
  if (!u) {
    /* The Query protocol may also address the queue by the request's path. */
    const char *path = sb_http_req_path(r->b.http);
    if (r->b.json || strcmp(path, "/") == 0) {
      fail(r, &E_MISSING, "The request must contain the parameter QueueUrl.");
      return -1;
    }
    if (name_from(path, strlen(path), '/', r->queue)) {
      fail(r, &E_NO_QUEUE, "The specified queue does not exist.");
      return -1;
    }
    return 0;
  }
  if (name_from(u->s, u->len, '/', r->queue)) {
    fail(r, &E_NO_QUEUE, "The specified queue does not exist.");
    return -1;
  }
  return 0;
}

static int arn_name(sqs_req_t *r, const aws_node_t *v, char out[SB_BROKER_NAME_MAX + 1]) {
  static const char pre[] = "arn:aws:sqs:";
  if (v->len < sizeof pre || memcmp(v->s, pre, sizeof pre - 1) ||
      name_from(v->s, v->len, ':', out)) {
    fail(r, &E_PARAM, "Value %.128s for parameter %s is invalid. Reason: not a queue ARN.", v->s,
         v->key ? v->key : "Arn");
    return -1;
  }
  return 0;
}

/* ---- queue attributes ---- */

static int add_kv(sqs_req_t *r, const char *name, size_t nlen, const char *value, size_t vlen) {
  sqs_patch_t *pt = &r->patch;
  if (pt->n_kv == SB_BROKER_KV_MAX) {
    fail(r, &E_PARAM, "Too many tags or attributes.");
    return -1;
  }
  char *n = sb_arena_strndup(&r->b.arena, name, nlen);
  char *v = sb_arena_strndup(&r->b.arena, value, vlen);
  if (!n || !v) {
    fail(r, &E_INTERNAL, "Out of memory.");
    return -1;
  }
  pt->kv[pt->n_kv].name = n;
  pt->kv[pt->n_kv].value = v;
  pt->n_kv++;
  return 0;
}

static const char *kv_find(const sb_queue_info_t *q, const char *name) {
  for (size_t i = 0; i < q->n_kv; i++)
    if (strcmp(q->kv[i].name, name) == 0) return q->kv[i].value;
  return NULL;
}

/* ---- the Policy attribute ----
 *
 * A policy document (up to SQS_POLICY_MAX bytes) is longer than one kv value of the broker
 * (SQS_KV_VALUE_MAX), so it is kept in chunks: "Policy" holds the first SQS_KV_VALUE_MAX
 * bytes, "Policy+1", "Policy+2", ... the rest; an update writes every chunk name, empty ones
 * removing what a longer document left. */

static void policy_chunk_name(size_t i, char out[16]) {
  if (i == 0)
    memcpy(out, "Policy", 7);
  else
    snprintf(out, 16, "Policy+%zu", i);
}

/* The queue's Policy document with its chunks joined (in r's arena), or NULL when none. */
static const char *policy_of(sqs_req_t *r, const sb_queue_info_t *q) {
  const char *first = kv_find(q, "Policy");
  if (!first || !*first) return NULL;
  const char *parts[SQS_POLICY_CHUNKS];
  size_t n = 0, total = 0;
  for (; n < SQS_POLICY_CHUNKS; n++) {
    char name[16];
    policy_chunk_name(n, name);
    parts[n] = kv_find(q, name);
    if (!parts[n] || !*parts[n]) break;
    total += strlen(parts[n]);
  }
  if (n == 1) return first;
  char *doc = sb_arena_alloc(&r->b.arena, total + 1);
  if (!doc) return first; /* out of memory: the first chunk, which JSON readers refuse */
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(parts[i]);
    memcpy(doc + o, parts[i], l);
    o += l;
  }
  doc[o] = 0;
  return doc;
}

/* Adds doc's chunks to r->patch; unless creating, also empties the unused chunk names. */
static int add_policy_kv(sqs_req_t *r, const char *doc, size_t len, int creating) {
  if (len > SQS_POLICY_MAX) {
    fail(r, &E_ATTR_VALUE, "Invalid value for the parameter Policy. Reason: longer than %u bytes.",
         SQS_POLICY_MAX);
    return -1;
  }
  size_t used = (len + SQS_KV_VALUE_MAX - 1) / SQS_KV_VALUE_MAX; /* chunks doc fills */
  for (size_t i = 0; i < (creating ? used : SQS_POLICY_CHUNKS); i++) {
    size_t off = i * SQS_KV_VALUE_MAX;
    size_t n = off < len ? len - off : 0;
    if (n > SQS_KV_VALUE_MAX) n = SQS_KV_VALUE_MAX;
    char name[16];
    policy_chunk_name(i, name);
    if (add_kv(r, name, strlen(name), n ? doc + off : "", n)) return -1;
  }
  return 0;
}

/* Parses RedrivePolicy {"deadLetterTargetArn": ..., "maxReceiveCount": ...}; "" removes. */
static int parse_redrive(sqs_req_t *r, const aws_node_t *v) {
  sqs_patch_t *pt = &r->patch;
  pt->has_redrive = 1;
  pt->dlq[0] = 0;
  pt->max_receive = 0;
  if (v->len == 0) return 0;
  sb_arena_t *a = &r->b.arena;
  aws_node_t *m;
  const char *err;
  if (sb__aws_decode_json(a, v->s, v->len, &m, &err)) goto bad;
  const aws_node_t *arn = sb__aws_get(m, "deadLetterTargetArn");
  const aws_node_t *mrc = sb__aws_get(m, "maxReceiveCount");
  int64_t n;
  if (!arn || arn->kind != AWS_STR || !mrc || mrc->kind != AWS_STR ||
      parse_int(mrc->s, mrc->len, &n) || n < 1 || n > 1000)
    goto bad;
  char dlq[SB_BROKER_NAME_MAX + 1];
  if (name_from(arn->s, arn->len, ':', dlq)) goto bad;
  memcpy(pt->dlq, dlq, sizeof dlq);
  pt->max_receive = (uint32_t)n;
  return 0;
bad:
  fail(r, &E_ATTR_VALUE,
       "Value %.200s for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a "
       "valid JSON map or is missing deadLetterTargetArn or maxReceiveCount (1 to 1000).",
       v->s);
  return -1;
}

static const char *const read_only_attrs[] = {"ApproximateNumberOfMessages",
                                              "ApproximateNumberOfMessagesNotVisible",
                                              "ApproximateNumberOfMessagesDelayed",
                                              "CreatedTimestamp",
                                              "LastModifiedTimestamp",
                                              "QueueArn"};
/* Attributes kept verbatim in the queue's kv pairs; fifo: only FIFO queues have it. */
static const struct {
  const char *name;             /* the attribute */
  int fifo;                     /* 1: FIFO queues only */
  const char *const allowed[3]; /* accepted values, or all NULL for anything */
} kv_attrs[] = {
    {"RedriveAllowPolicy", 0, {NULL, NULL, NULL}},
    {"Policy", 0, {NULL, NULL, NULL}},
    {"KmsMasterKeyId", 0, {NULL, NULL, NULL}},
    {"KmsDataKeyReusePeriodSeconds", 0, {NULL, NULL, NULL}},
    {"SqsManagedSseEnabled", 0, {"true", "false", NULL}},
    {"DeduplicationScope", 1, {"messageGroup", "queue", NULL}},
    {"FifoThroughputLimit", 1, {"perQueue", "perMessageGroupId", NULL}},
};

/* Parses an Attributes map into r->patch. creating: FifoQueue is allowed. */
static int parse_attrs(sqs_req_t *r, const aws_node_t *attrs, int creating) {
  sqs_patch_t *pt = &r->patch;
  if (!attrs) return 0;
  if (attrs->kind != AWS_MAP) {
    fail(r, &E_PARAM, "Attributes must be a map.");
    return -1;
  }
  for (const aws_node_t *a = attrs->child; a; a = a->next) {
    const char *k = a->key;
    if (a->kind != AWS_STR) {
      fail(r, &E_ATTR_VALUE, "Value for attribute %s must be a string.", k);
      return -1;
    }
    int64_t v = 0;
    int num = !parse_int(a->s, a->len, &v);
    struct {
      const char *name;
      int64_t lo, hi;
      int *has;
    } ranges[] = {
        {"VisibilityTimeout", 0, SB_BROKER_VISIBILITY_MAX_MS / 1000, &pt->has_vis},
        {"DelaySeconds", 0, SB_BROKER_DELAY_MAX_MS / 1000, &pt->has_delay},
        {"MessageRetentionPeriod", 60, 1209600, &pt->has_ret},
        {"MaximumMessageSize", 1024, SB_BROKER_MESSAGE_MAX, &pt->has_max},
        {"ReceiveMessageWaitTimeSeconds", 0, SB_BROKER_WAIT_MAX_MS / 1000, &pt->has_wait},
    };
    int done = 0;
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
      if (strcmp(k, ranges[i].name)) continue;
      if (!num || v < ranges[i].lo || v > ranges[i].hi) {
        fail(r, &E_ATTR_VALUE, "Invalid value for the parameter %s.", k);
        return -1;
      }
      *ranges[i].has = 1;
      switch (i) {
      case 0:
        pt->vis_ms = (uint32_t)v * 1000;
        break;
      case 1:
        pt->delay_ms = (uint32_t)v * 1000;
        break;
      case 2:
        pt->ret_ms = (uint64_t)v * 1000;
        break;
      case 3:
        pt->max_bytes = (uint32_t)v;
        break;
      default:
        pt->wait_ms = (uint32_t)v * 1000;
        break;
      }
      done = 1;
    }
    if (done) continue;
    if (strcmp(k, "RedrivePolicy") == 0) {
      if (parse_redrive(r, a)) return -1;
      continue;
    }
    if (strcmp(k, "FifoQueue") == 0 || strcmp(k, "ContentBasedDeduplication") == 0) {
      if (!is_bool(a)) {
        fail(r, &E_ATTR_VALUE, "Invalid value for the parameter %s.", k);
        return -1;
      }
      if (k[0] == 'F') {
        if (!creating) {
          fail(r, &E_ATTR_NAME, "Unknown Attribute FifoQueue.");
          return -1;
        }
        pt->has_fifo = 1;
        pt->fifo = is_true(a);
      } else {
        pt->has_cbd = 1;
        pt->cbd = is_true(a);
        pt->fifo_only = 1;
      }
      continue;
    }
    for (size_t i = 0; i < sizeof read_only_attrs / sizeof read_only_attrs[0]; i++)
      if (strcmp(k, read_only_attrs[i]) == 0) {
        fail(r, &E_ATTR_NAME, "Unknown Attribute %s.", k);
        return -1;
      }
    for (size_t i = 0; i < sizeof kv_attrs / sizeof kv_attrs[0] && !done; i++) {
      if (strcmp(k, kv_attrs[i].name)) continue;
      if (kv_attrs[i].allowed[0]) {
        int ok = 0;
        for (size_t j = 0; j < 3 && kv_attrs[i].allowed[j]; j++)
          ok |= strlen(kv_attrs[i].allowed[j]) == a->len &&
                !memcmp(kv_attrs[i].allowed[j], a->s, a->len);
        if (!ok) {
          fail(r, &E_ATTR_VALUE, "Invalid value for the parameter %s.", k);
          return -1;
        }
      }
      if (kv_attrs[i].fifo) pt->fifo_only = 1;
      if (strcmp(k, "Policy") == 0 ? add_policy_kv(r, a->s, a->len, creating)
                                   : add_kv(r, k, strlen(k), a->s, a->len))
        return -1;
      done = 1;
    }
    if (!done) {
      fail(r, &E_ATTR_NAME, "Unknown Attribute %s.", k);
      return -1;
    }
  }
  return 0;
}

/* Applies r->patch to c. Returns 0, or fails the request (broker-thread safe: touches r's
 * error fields only). */
static int apply_patch(sqs_req_t *r, sb_queue_config_t *c) {
  const sqs_patch_t *pt = &r->patch;
  if (pt->fifo_only && !c->fifo) {
    fail(r, &E_ATTR_NAME, "Unknown Attribute: an attribute of FIFO queues on a standard queue.");
    return -1;
  }
  if (pt->has_vis) c->visibility_ms = pt->vis_ms;
  if (pt->has_delay) c->delay_ms = pt->delay_ms;
  if (pt->has_ret) c->retention_ms = pt->ret_ms;
  if (pt->has_max) c->max_message_bytes = pt->max_bytes;
  if (pt->has_wait) c->receive_wait_ms = pt->wait_ms;
  if (pt->has_cbd) c->content_dedup = pt->cbd;
  if (pt->has_redrive) {
    memcpy(c->dead_letter, pt->dlq, sizeof c->dead_letter);
    c->max_receive_count = pt->max_receive;
    if (pt->dlq[0] && is_fifo_name(pt->dlq) != c->fifo) {
      fail(r, &E_ATTR_VALUE,
           "Value for parameter RedrivePolicy is invalid. Reason: the dead-letter queue must be "
           "of the same type (FIFO or standard) as the source queue.");
      return -1;
    }
  }
  return 0;
}

/* ---- actions: queues ---- */

static void create_done(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status == SB_ESTATE)
    fail(r, &E_QUEUE_EXISTS,
         "A queue already exists with the same name and a different value "
         "for attribute(s).");
  else if (status == SB_EINVAL)
    fail(r, &E_ATTR_VALUE, "Invalid attribute values for this queue.");
  else if (status)
    fail_status(r, status);
  if (!r->b.err) {
    char url[512];
    queue_url(r, r->queue, url, sizeof url);
    aws_enc_t e;
    sb__aws_begin(&r->b, &e);
    sb__aws_enc_str(&e, "QueueUrl", url, strlen(url));
    sb__aws_end(&r->b, &e);
  }
  sb__aws_wake(&r->b);
}

static int parse_tags(sqs_req_t *r, const aws_node_t *tags) {
  if (!tags) return 0;
  if (tags->kind != AWS_MAP) {
    fail(r, &E_PARAM, "Tags must be a map.");
    return -1;
  }
  for (const aws_node_t *t = tags->child; t; t = t->next) {
    if (t->kind != AWS_STR || t->key_len == 0 || t->key_len > 128 || t->len > 256) {
      fail(r, &E_PARAM, "Invalid tag.");
      return -1;
    }
    char key[140];
    int n = snprintf(key, sizeof key, "tag:%s", t->key);
    if (add_kv(r, key, (size_t)n, t->s, t->len)) return -1;
  }
  return 0;
}

static void start_failed(sqs_req_t *r, int rc) {
  r->b.pending = 0;
  fail_status(r, rc);
}

static int create_step(sqs_req_t *r) {
  return sb_queue_create(r->sqs->broker, r->queue, &r->cfg, r->patch.kv, r->patch.n_kv, create_done,
                         r);
}

/* A RedrivePolicy must name an existing queue (AWS checks it too): look it up first, then run
 * the action's step on the broker thread. */
static void dlq_checked(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  int rc = status;
  if (status == SB_ENOTFOUND) {
    fail(r, &E_ATTR_VALUE,
         "Value for parameter RedrivePolicy is invalid. Reason: Dead letter target does not "
         "exist.");
    sb__aws_wake(&r->b);
    return;
  }
  if (!status) rc = r->after_dlq(r);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

static void start_with_dlq(sqs_req_t *r, int (*step)(sqs_req_t *r)) {
  r->b.pending = 1;
  int rc;
  if (r->patch.has_redrive && r->patch.dlq[0]) {
    r->after_dlq = step;
    rc = sb_queue_get(r->sqs->broker, r->patch.dlq, dlq_checked, r);
  } else {
    rc = step(r);
  }
  if (rc) start_failed(r, rc);
}

static void act_create_queue(sqs_req_t *r) {
  const aws_node_t *name = required(r, r->b.p, "QueueName");
  if (!name) return;
  if (name->len > SB_BROKER_NAME_MAX || memchr(name->s, 0, name->len)) {
    fail(r, &E_PARAM,
         "Can only include alphanumeric characters, hyphens, or underscores. 1 to "
         "80 in length.");
    return;
  }
  memcpy(r->queue, name->s, name->len + 1);
  if (parse_attrs(r, sb__aws_get(r->b.p, "Attributes"), 1)) return;
  const aws_node_t *tags = sb__aws_get(r->b.p, "tags");
  if (!tags) tags = sb__aws_get(r->b.p, "Tags");
  if (parse_tags(r, tags)) return;
  int fifo = is_fifo_name(r->queue);
  if (sb_broker_check_name(r->queue, fifo)) {
    fail(r, &E_PARAM,
         "Can only include alphanumeric characters, hyphens, or underscores. 1 to "
         "80 in length.");
    return;
  }
  if (r->patch.has_fifo && r->patch.fifo != fifo) {
    fail(r, &E_PARAM,
         "The name of a FIFO queue can only include alphanumeric characters, "
         "hyphens, or underscores, must end with .fifo suffix.");
    return;
  }
  if (fifo && !r->patch.has_fifo) {
    fail(r, &E_PARAM, "FifoQueue must be set to true for a queue whose name ends in .fifo.");
    return;
  }
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  c.fifo = fifo;
  if (apply_patch(r, &c)) return;
  r->cfg = c;
  start_with_dlq(r, create_step);
}

static void get_url_done(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status == SB_ENOTFOUND)
    fail(r, &E_NO_QUEUE, "The specified queue does not exist.");
  else if (status)
    fail_status(r, status);
  else {
    char url[512];
    queue_url(r, r->queue, url, sizeof url);
    aws_enc_t e;
    sb__aws_begin(&r->b, &e);
    sb__aws_enc_str(&e, "QueueUrl", url, strlen(url));
    sb__aws_end(&r->b, &e);
  }
  sb__aws_wake(&r->b);
}

static void act_get_queue_url(sqs_req_t *r) {
  const aws_node_t *name = required(r, r->b.p, "QueueName");
  if (!name) return;
  if (name->len > SB_BROKER_NAME_MAX || memchr(name->s, 0, name->len) ||
      sb_broker_check_name(name->s, is_fifo_name(name->s))) {
    fail(r, &E_NO_QUEUE, "The specified queue does not exist.");
    return;
  }
  memcpy(r->queue, name->s, name->len + 1);
  r->b.pending = 1;
  int rc = sb_queue_get(r->sqs->broker, r->queue, get_url_done, r);
  if (rc) start_failed(r, rc);
}

/* A list of queue URLs (ListQueues, ListDeadLetterSourceQueues), paginated by name. */
static void encode_url_list(sqs_req_t *r, const char *json_name, const char *const *names, size_t n,
                            const char *next) {
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  sb__aws_enc_list_begin(&e, json_name, "QueueUrl");
  size_t shown = 0;
  const char *last = NULL;
  size_t hidden = strlen(AWS_SNS_HOOK_PREFIX);
  for (size_t i = 0; i < n; i++) {
    if (r->after[0] && strcmp(names[i], r->after) <= 0) continue;
    /* SNS's webhook queues are its own business, not the account's queues. */
    if (strncmp(names[i], AWS_SNS_HOOK_PREFIX, hidden) == 0) {
      last = names[i];
      continue;
    }
    if (r->max_results && shown == r->max_results) {
      next = last;
      break;
    }
    char url[512];
    queue_url(r, names[i], url, sizeof url);
    sb__aws_enc_item_str(&e, url, strlen(url));
    shown++;
    last = names[i];
  }
  sb__aws_enc_list_end(&e);
  if (next && r->max_results) sb__aws_enc_str(&e, "NextToken", next, strlen(next));
  sb__aws_end(&r->b, &e);
}

static void list_done(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status == SB_ENOTFOUND)
    fail(r, &E_NO_QUEUE, "The specified queue does not exist.");
  else if (status)
    fail_status(r, status);
  else
    encode_url_list(r, strcmp(r->act->name, "ListQueues") == 0 ? "QueueUrls" : "queueUrls",
                    res->names, res->n_names, res->next_token);
  sb__aws_wake(&r->b);
}

static int parse_pagination(sqs_req_t *r) {
  int64_t max;
  int has = int_param(r, r->b.p, "MaxResults", 1, 1000, &max);
  if (has < 0) return -1;
  r->max_results = has ? (size_t)max : 0;
  const aws_node_t *tok = str_param(r, r->b.p, "NextToken");
  if (r->b.err) return -1;
  if (tok && tok->len) {
    if (tok->len > SB_BROKER_NAME_MAX || memchr(tok->s, 0, tok->len)) {
      fail(r, &E_PARAM, "Invalid NextToken.");
      return -1;
    }
    memcpy(r->after, tok->s, tok->len + 1);
  }
  return 0;
}

static void act_list_queues(sqs_req_t *r) {
  const aws_node_t *prefix = str_param(r, r->b.p, "QueueNamePrefix");
  if (r->b.err || parse_pagination(r)) return;
  if (prefix && memchr(prefix->s, 0, prefix->len)) {
    fail(r, &E_PARAM, "Invalid QueueNamePrefix.");
    return;
  }
  r->b.pending = 1;
  /* The engine pages by name too; ask for one more than shown to learn whether more follow. */
  size_t max = r->max_results ? r->max_results + 1 : SQS_LIST_DEFAULT;
  int rc = sb_queue_list(r->sqs->broker, prefix && prefix->len ? prefix->s : NULL,
                         r->after[0] ? r->after : NULL, max, list_done, r);
  if (rc) start_failed(r, rc);
}

static void act_dlq_sources(sqs_req_t *r) {
  if (parse_pagination(r)) return;
  r->b.pending = 1;
  int rc = sb_queue_dlq_sources(r->sqs->broker, r->queue, list_done, r);
  if (rc) start_failed(r, rc);
}

static void simple_done(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status == SB_ENOTFOUND)
    fail(r, &E_NO_QUEUE, "The specified queue does not exist.");
  else if (status)
    fail_status(r, status);
  else
    sb__aws_empty(&r->b);
  sb__aws_wake(&r->b);
}

static void act_delete_queue(sqs_req_t *r) {
  r->b.pending = 1;
  int rc = sb_queue_delete(r->sqs->broker, r->queue, simple_done, r);
  if (rc) start_failed(r, rc);
}

static void act_purge_queue(sqs_req_t *r) {
  r->b.pending = 1;
  int rc = sb_queue_purge(r->sqs->broker, r->queue, simple_done, r);
  if (rc) start_failed(r, rc);
}

/* GetQueueAttributes: the attribute names SQS knows, in the order it lists them. */
static const char *const queue_attr_names[] = {"Policy",
                                               "VisibilityTimeout",
                                               "MaximumMessageSize",
                                               "MessageRetentionPeriod",
                                               "ApproximateNumberOfMessages",
                                               "ApproximateNumberOfMessagesNotVisible",
                                               "CreatedTimestamp",
                                               "LastModifiedTimestamp",
                                               "QueueArn",
                                               "ApproximateNumberOfMessagesDelayed",
                                               "DelaySeconds",
                                               "ReceiveMessageWaitTimeSeconds",
                                               "RedrivePolicy",
                                               "RedriveAllowPolicy",
                                               "FifoQueue",
                                               "ContentBasedDeduplication",
                                               "DeduplicationScope",
                                               "FifoThroughputLimit",
                                               "KmsMasterKeyId",
                                               "KmsDataKeyReusePeriodSeconds",
                                               "SqsManagedSseEnabled"};
#define N_QUEUE_ATTRS (sizeof queue_attr_names / sizeof queue_attr_names[0])

static void get_attrs_done(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status == SB_ENOTFOUND) {
    fail(r, &E_NO_QUEUE, "The specified queue does not exist.");
  } else if (status) {
    fail_status(r, status);
  } else {
    const sb_queue_info_t *q = res->queue;
    const sb_queue_config_t *c = &q->config;
    aws_enc_t e;
    sb__aws_begin(&r->b, &e);
    sb__aws_enc_map_begin(&e, "Attributes", "Attribute", "Name", "Value");
    for (size_t i = 0; i < N_QUEUE_ATTRS; i++) {
      if (!(r->sys_attrs & (1u << i))) continue;
      const char *n = queue_attr_names[i];
      char v[600];
      v[0] = 0;
      const char *val = v;
      switch (i) {
      case 1:
        snprintf(v, sizeof v, "%u", c->visibility_ms / 1000);
        break;
      case 2:
        snprintf(v, sizeof v, "%u", c->max_message_bytes);
        break;
      case 3:
        snprintf(v, sizeof v, "%llu", (unsigned long long)(c->retention_ms / 1000));
        break;
      case 4:
        snprintf(v, sizeof v, "%llu", (unsigned long long)q->stats.visible);
        break;
      case 5:
        snprintf(v, sizeof v, "%llu", (unsigned long long)q->stats.in_flight);
        break;
      case 6:
        snprintf(v, sizeof v, "%lld", (long long)(q->created_ms / 1000));
        break;
      case 7:
        snprintf(v, sizeof v, "%lld", (long long)(q->modified_ms / 1000));
        break;
      case 8:
        queue_arn(r, q->name, v, sizeof v);
        break;
      case 9:
        snprintf(v, sizeof v, "%llu", (unsigned long long)q->stats.delayed);
        break;
      case 10:
        snprintf(v, sizeof v, "%u", c->delay_ms / 1000);
        break;
      case 11:
        snprintf(v, sizeof v, "%u", c->receive_wait_ms / 1000);
        break;
      case 12:
        if (!c->dead_letter[0]) continue;
        {
          char arn[SQS_ARN_MAX];
          queue_arn(r, c->dead_letter, arn, sizeof arn);
          snprintf(v, sizeof v, "{\"deadLetterTargetArn\":\"%s\",\"maxReceiveCount\":%u}", arn,
                   c->max_receive_count);
        }
        break;
      case 14:
        if (!c->fifo) continue;
        val = "true";
        break;
      case 15:
        if (!c->fifo) continue;
        val = c->content_dedup ? "true" : "false";
        break;
      case 16:
      case 17:
        if (!c->fifo) continue;
        val = kv_find(q, n);
        if (!val) val = i == 16 ? "queue" : "perQueue";
        break;
      default:
        val = strcmp(n, "Policy") == 0 ? policy_of(r, q) : kv_find(q, n);
        if (!val) continue;
        break;
      }
      sb__aws_enc_map_str(&e, n, strlen(n), val, strlen(val));
    }
    sb__aws_enc_map_end(&e);
    sb__aws_end(&r->b, &e);
  }
  sb__aws_wake(&r->b);
}

static void act_get_queue_attributes(sqs_req_t *r) {
  const aws_node_t *names = sb__aws_get(r->b.p, "AttributeNames");
  r->sys_attrs = 0;
  if (names && names->kind != AWS_LIST) {
    fail(r, &E_PARAM, "AttributeNames must be a list.");
    return;
  }
  for (const aws_node_t *n = names ? names->child : NULL; n; n = n->next) {
    if (n->kind != AWS_STR) {
      fail(r, &E_ATTR_NAME, "Unknown Attribute.");
      return;
    }
    if (strcmp(n->s, "All") == 0) {
      r->sys_attrs = ~0u;
      continue;
    }
    size_t i = 0;
    while (i < N_QUEUE_ATTRS && strcmp(n->s, queue_attr_names[i]))
      i++;
    if (i == N_QUEUE_ATTRS) {
      fail(r, &E_ATTR_NAME, "Unknown Attribute %.256s.", n->s);
      return;
    }
    r->sys_attrs |= 1u << i;
  }
  r->b.pending = 1;
  int rc = sb_queue_get(r->sqs->broker, r->queue, get_attrs_done, r);
  if (rc) start_failed(r, rc);
}

/* The second half of a read-modify-write (SetQueueAttributes, TagQueue, UntagQueue). */
static void update_got(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status) {
    simple_done(r, status, res);
    return;
  }
  sb_queue_config_t c = res->queue->config;
  if (apply_patch(r, &c)) {
    sb__aws_wake(&r->b);
    return;
  }
  /* TagQueue may not push a queue over its tag limit. */
  int rc =
      sb_queue_update(r->sqs->broker, r->queue, &c, r->patch.kv, r->patch.n_kv, simple_done, r);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

static int get_for_update(sqs_req_t *r) {
  return sb_queue_get(r->sqs->broker, r->queue, update_got, r);
}

static void act_set_queue_attributes(sqs_req_t *r) {
  const aws_node_t *attrs = sb__aws_get(r->b.p, "Attributes");
  if (!attrs) {
    fail(r, &E_MISSING, "The request must contain the parameter Attributes.");
    return;
  }
  if (parse_attrs(r, attrs, 0)) return;
  start_with_dlq(r, get_for_update);
}

static void act_tag_queue(sqs_req_t *r) {
  const aws_node_t *tags = sb__aws_get(r->b.p, "Tags");
  if (!tags) {
    fail(r, &E_MISSING, "The request must contain the parameter Tags.");
    return;
  }
  if (parse_tags(r, tags)) return;
  r->b.pending = 1;
  int rc = sb_queue_get(r->sqs->broker, r->queue, update_got, r);
  if (rc) start_failed(r, rc);
}

static void act_untag_queue(sqs_req_t *r) {
  const aws_node_t *keys = sb__aws_get(r->b.p, "TagKeys");
  if (!keys || keys->kind != AWS_LIST) {
    fail(r, &E_MISSING, "The request must contain the parameter TagKeys.");
    return;
  }
  for (const aws_node_t *k = keys->child; k; k = k->next) {
    if (k->kind != AWS_STR || k->len == 0 || k->len > 128) {
      fail(r, &E_PARAM, "Invalid tag key.");
      return;
    }
    char key[140];
    int n = snprintf(key, sizeof key, "tag:%s", k->s);
    if (add_kv(r, key, (size_t)n, "", 0)) return;
  }
  r->b.pending = 1;
  int rc = sb_queue_get(r->sqs->broker, r->queue, update_got, r);
  if (rc) start_failed(r, rc);
}

static void tags_done(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status) {
    simple_done(r, status, res);
    return;
  }
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  sb__aws_enc_map_begin(&e, "Tags", "Tag", "Key", "Value");
  for (size_t i = 0; i < res->queue->n_kv; i++) {
    const sb_broker_kv_t *kv = &res->queue->kv[i];
    if (strncmp(kv->name, "tag:", 4)) continue;
    sb__aws_enc_map_str(&e, kv->name + 4, strlen(kv->name + 4), kv->value, strlen(kv->value));
  }
  sb__aws_enc_map_end(&e);
  sb__aws_end(&r->b, &e);
  sb__aws_wake(&r->b);
}

static void act_list_queue_tags(sqs_req_t *r) {
  r->b.pending = 1;
  int rc = sb_queue_get(r->sqs->broker, r->queue, tags_done, r);
  if (rc) start_failed(r, rc);
}

/* ---- actions: permissions ---- */

/* The actions AddPermission may grant (AWS refuses the owner-only ones). */
static const char *const grantable[] = {"*",
                                        "SendMessage",
                                        "ReceiveMessage",
                                        "DeleteMessage",
                                        "ChangeMessageVisibility",
                                        "GetQueueAttributes",
                                        "GetQueueUrl",
                                        "ListDeadLetterSourceQueues",
                                        "PurgeQueue"};

static void permission_got(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status) {
    simple_done(r, status, res);
    return;
  }
  char arn[SQS_ARN_MAX];
  queue_arn(r, r->queue, arn, sizeof arn);
  r->perm.arn = arn;
  const char *doc = NULL;
  int rc = sb__sqs_policy_edit(&r->b.arena, policy_of(r, res->queue), &r->perm, &doc);
  if (rc == 1 && r->perm.n_accounts)
    fail(r, &E_PARAM, "Value %s for parameter Label is invalid. Reason: Already exists.",
         r->perm.label);
  else if (rc == 1)
    fail(r, &E_PARAM,
         "Value %s for parameter Label is invalid. Reason: can't find label on existing policy.",
         r->perm.label);
  else if (rc == SB_ELIMIT)
    fail(r, &E_OVER_LIMIT, "%u Statements were found, maximum allowed is %u.",
         SQS_POLICY_STATEMENTS_MAX + 1, SQS_POLICY_STATEMENTS_MAX);
  else if (rc == SB_EINVAL)
    fail(r, &E_PARAM,
         "Value for parameter Policy is invalid. Reason: the queue's policy is not a JSON "
         "object this action can edit.");
  else if (rc)
    fail_status(r, rc);
  if (rc) {
    sb__aws_wake(&r->b);
    return;
  }
  if (add_policy_kv(r, doc, strlen(doc), 0)) {
    sb__aws_wake(&r->b);
    return;
  }
  rc = sb_queue_update(r->sqs->broker, r->queue, &res->queue->config, r->patch.kv, r->patch.n_kv,
                       simple_done, r);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

/* The Label parameter: AWS's [A-Za-z0-9_-]{1,80}. */
static int permission_label(sqs_req_t *r) {
  const aws_node_t *l = str_param(r, r->b.p, "Label");
  if (r->b.err) return -1;
  if (!l || l->len == 0) {
    fail(r, &E_MISSING, "The request must contain the parameter Label.");
    return -1;
  }
  int ok = l->len <= 80;
  for (size_t i = 0; ok && i < l->len; i++)
    ok = isalnum((unsigned char)l->s[i]) || l->s[i] == '-' || l->s[i] == '_';
  if (!ok) {
    fail(r, &E_PARAM,
         "Value %.128s for parameter Label is invalid. Reason: Must be between 1 and 80 "
         "characters, alphanumeric, hyphens and underscores only.",
         sb__aws_valid_text(l->s, l->len) ? l->s : "?");
    return -1;
  }
  r->perm.label = l->s;
  return 0;
}

/* A non-empty list of strings: its items in the arena, or NULL after a failure. */
static const char **string_list(sqs_req_t *r, const char *name, size_t *n) {
  const aws_node_t *l = sb__aws_get(r->b.p, name);
  /* botocore's Query serializer sends an empty list as one empty value. */
  if (!l || (l->kind == AWS_LIST && l->n == 0) || (l->kind == AWS_STR && l->len == 0)) {
    fail(r, &E_MISSING, "The request must contain the parameter %s.", name);
    return NULL;
  }
  if (l->kind != AWS_LIST) {
    fail(r, &E_PARAM, "Value for parameter %s is invalid. Reason: must be a list.", name);
    return NULL;
  }
  const char **v = sb_arena_alloc(&r->b.arena, l->n * sizeof *v);
  if (!v) {
    fail(r, &E_INTERNAL, "Out of memory.");
    return NULL;
  }
  size_t i = 0;
  for (const aws_node_t *c = l->child; c; c = c->next) {
    if (c->kind != AWS_STR || !sb__aws_valid_text(c->s, c->len) || strlen(c->s) != c->len) {
      fail(r, &E_PARAM, "Value for parameter %s is invalid.", name);
      return NULL;
    }
    v[i++] = c->s;
  }
  *n = i;
  return v;
}

static void act_add_permission(sqs_req_t *r) {
  if (permission_label(r)) return;
  size_t na = 0, nx = 0;
  const char **acc = string_list(r, "AWSAccountIds", &na);
  if (!acc) return;
  const char **act = string_list(r, "Actions", &nx);
  if (!act) return;
  for (size_t i = 0; i < na; i++) {
    size_t n = strlen(acc[i]);
    int ok = n == 12;
    for (size_t k = 0; ok && k < n; k++)
      ok = acc[i][k] >= '0' && acc[i][k] <= '9';
    if (!ok) {
      fail(r, &E_PARAM,
           "Value %.64s for parameter PrincipalId is invalid. Reason: Unable to verify.", acc[i]);
      return;
    }
  }
  for (size_t i = 0; i < nx; i++) {
    int ok = 0;
    for (size_t k = 0; k < sizeof grantable / sizeof grantable[0]; k++)
      ok |= strcmp(act[i], grantable[k]) == 0;
    if (!ok) {
      fail(r, &E_PARAM,
           "Value SQS:%.64s for parameter ActionName is invalid. Reason: Only the queue owner is "
           "allowed to invoke this action.",
           act[i]);
      return;
    }
  }
  r->perm.accounts = acc;
  r->perm.n_accounts = na;
  r->perm.actions = act;
  r->perm.n_actions = nx;
  r->b.pending = 1;
  int rc = sb_queue_get(r->sqs->broker, r->queue, permission_got, r);
  if (rc) start_failed(r, rc);
}

static void act_remove_permission(sqs_req_t *r) {
  if (permission_label(r)) return;
  r->b.pending = 1;
  int rc = sb_queue_get(r->sqs->broker, r->queue, permission_got, r);
  if (rc) start_failed(r, rc);
}

/* ---- actions: messages ---- */

static int valid_attr_name(const char *s, size_t n) {
  if (n == 0 || n > SQS_MAX_ATTR_NAME || s[0] == '.' || s[n - 1] == '.') return 0;
  if ((n >= 4 && strncasecmp(s, "aws.", 4) == 0) || (n >= 7 && strncasecmp(s, "amazon.", 7) == 0))
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.')) return 0;
    if (c == '.' && i + 1 < n && s[i + 1] == '.') return 0;
  }
  return 1;
}

static int valid_number(const char *s, size_t n) {
  double d;
  /* The JSON number grammar minus leading zeros' strictness is what SQS accepts in spirit;
   * reuse the strict one, after allowing a leading '+'. */
  if (n && s[0] == '+') s++, n--;
  return n > 0 && sb_json_to_double(s, n, &d) == 0;
}

/* Valid FIFO group and deduplication ids: 1..128 of alphanumerics and punctuation. */
static int valid_group_id(const char *s, size_t n) {
  if (n == 0 || n > SB_BROKER_GROUP_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] >= 0x21 && s[i] <= 0x7e)) return 0;
  return 1;
}

/* Prepares one message from a SendMessage request or batch entry m into out (engine message)
 * and o (digests). Returns 0, or -1 with o->err set. */
static int prep_message(sqs_req_t *r, const aws_node_t *m, sb_broker_msg_t *out, sqs_out_msg_t *o) {
  memset(out, 0, sizeof *out);
  out->delay_ms = -1;
#define ENTRY_FAIL(E, ...)                                                                         \
  do {                                                                                             \
    char _b[1024];                                                                                 \
    snprintf(_b, sizeof _b, __VA_ARGS__);                                                          \
    o->err = (E);                                                                                  \
    o->err_msg = sb_arena_strndup(&r->b.arena, _b, strlen(_b));                                    \
    if (!o->err_msg) o->err_msg = "invalid";                                                       \
    return -1;                                                                                     \
  } while (0)
  const aws_node_t *body = sb__aws_get(m, "MessageBody");
  if (!body || body->kind != AWS_STR)
    ENTRY_FAIL(&E_MISSING, "The request must contain the parameter MessageBody.");
  if (body->len == 0) ENTRY_FAIL(&E_MISSING, "The request must contain the parameter MessageBody.");
  if (!sb__aws_valid_text(body->s, body->len))
    ENTRY_FAIL(&E_CONTENTS, "Invalid binary character in the message body; see the allowed "
                            "characters in the SQS documentation.");
  out->body = body->s;
  out->body_len = body->len;
  sb__sqs_md5_hex(body->s, body->len, o->md5_body);
  const aws_node_t *d = sb__aws_get(m, "DelaySeconds");
  if (d) {
    int64_t v;
    if (d->kind != AWS_STR || parse_int(d->s, d->len, &v) || v < 0 || v > 900)
      ENTRY_FAIL(&E_PARAM, "Value for parameter DelaySeconds is invalid. Reason: must be between 0 "
                           "and 900, if provided.");
    if (is_fifo_name(r->queue))
      ENTRY_FAIL(&E_PARAM,
                 "Value %lld for parameter DelaySeconds is invalid. Reason: The request include "
                 "parameter that is not valid for this queue type.",
                 (long long)v);
    out->delay_ms = (int32_t)(v * 1000);
  }
  const aws_node_t *g = sb__aws_get(m, "MessageGroupId");
  const aws_node_t *dd = sb__aws_get(m, "MessageDeduplicationId");
  if (g) {
    if (g->kind != AWS_STR || !valid_group_id(g->s, g->len))
      ENTRY_FAIL(&E_PARAM, "Value for parameter MessageGroupId is invalid.");
    out->group = g->s;
    out->group_len = g->len;
  } else if (is_fifo_name(r->queue)) {
    ENTRY_FAIL(&E_MISSING, "The request must contain the parameter MessageGroupId.");
  }
  if (dd) {
    if (dd->kind != AWS_STR || !valid_group_id(dd->s, dd->len))
      ENTRY_FAIL(&E_PARAM, "Value for parameter MessageDeduplicationId is invalid.");
    if (!is_fifo_name(r->queue))
      ENTRY_FAIL(&E_PARAM, "The request include parameter MessageDeduplicationId that is not valid "
                           "for this queue type.");
    out->dedup = dd->s;
    out->dedup_len = dd->len;
  }
  const aws_node_t *ma = sb__aws_get(m, "MessageAttributes");
  if (ma && ma->kind != AWS_MAP) ENTRY_FAIL(&E_PARAM, "MessageAttributes must be a map.");
  size_t na = ma ? ma->n : 0;
  if (na > SQS_MAX_MSG_ATTRS)
    ENTRY_FAIL(&E_PARAM, "Number of message attributes [%zu] exceeds the allowed maximum [%u].", na,
               SQS_MAX_MSG_ATTRS);
  if (na) {
    sb_broker_attr_t *attrs = sb_arena_alloc(&r->b.arena, na * sizeof *attrs);
    sqs_mattr_t *h = sb_arena_alloc(&r->b.arena, na * sizeof *h);
    if (!attrs || !h) ENTRY_FAIL(&E_INTERNAL, "Out of memory.");
    size_t i = 0;
    for (const aws_node_t *a = ma->child; a; a = a->next, i++) {
      if (!valid_attr_name(a->key, a->key_len))
        ENTRY_FAIL(&E_PARAM, "Message attribute name '%.256s' is invalid.", a->key);
      const aws_node_t *dt = sb__aws_get(a, "DataType");
      if (!dt || dt->kind != AWS_STR || dt->len == 0)
        ENTRY_FAIL(&E_PARAM,
                   "The message attribute '%.256s' must contain non-empty message attribute type.",
                   a->key);
      int is_bin = 0;
      if (dt->len >= 6 && memcmp(dt->s, "String", 6) == 0 && (dt->len == 6 || dt->s[6] == '.'))
        is_bin = 0;
      else if (dt->len >= 6 && memcmp(dt->s, "Number", 6) == 0 && (dt->len == 6 || dt->s[6] == '.'))
        is_bin = 0;
      else if (dt->len >= 6 && memcmp(dt->s, "Binary", 6) == 0 && (dt->len == 6 || dt->s[6] == '.'))
        is_bin = 1;
      else
        ENTRY_FAIL(&E_PARAM,
                   "The type of message (user) attribute '%.256s' is invalid. You must use only "
                   "the following supported type prefixes: Binary, Number, String.",
                   a->key);
      if (dt->len > 256 || (dt->len > 6 && dt->len == 7) || !sb__aws_valid_text(dt->s, dt->len))
        ENTRY_FAIL(&E_PARAM, "Message attribute '%.256s' has an invalid type.", a->key);
      const aws_node_t *sv = sb__aws_get(a, "StringValue");
      const aws_node_t *bv = sb__aws_get(a, "BinaryValue");
      const void *val;
      size_t vlen;
      if (is_bin) {
        if (!bv || bv->kind != AWS_STR || bv->len == 0)
          ENTRY_FAIL(&E_PARAM,
                     "The message attribute '%.256s' with type 'Binary' must use field 'Binary'.",
                     a->key);
        uint8_t *raw = sb_arena_alloc(&r->b.arena, SB_BASE64_DECODED_MAX(bv->len) + 1);
        if (!raw) ENTRY_FAIL(&E_INTERNAL, "Out of memory.");
        long n = sb_base64_decode(bv->s, bv->len, raw);
        if (n < 0)
          ENTRY_FAIL(&E_PARAM, "The message attribute '%.256s' has an invalid base64 value.",
                     a->key);
        val = raw;
        vlen = (size_t)n;
      } else {
        if (!sv || sv->kind != AWS_STR || sv->len == 0)
          ENTRY_FAIL(&E_PARAM,
                     "The message attribute '%.256s' must contain non-empty message attribute "
                     "value for message attribute type '%.64s'.",
                     a->key, dt->s);
        if (!sb__aws_valid_text(sv->s, sv->len))
          ENTRY_FAIL(&E_CONTENTS, "Invalid characters in the value of message attribute '%.256s'.",
                     a->key);
        if (dt->s[0] == 'N' && !valid_number(sv->s, sv->len))
          ENTRY_FAIL(&E_PARAM,
                     "Can't cast the value of message (user) attribute '%.256s' to a number.",
                     a->key);
        val = sv->s;
        vlen = sv->len;
      }
      attrs[i] = (sb_broker_attr_t){a->key, a->key_len, dt->s, dt->len, val, vlen};
      h[i] = (sqs_mattr_t){a->key, a->key_len, dt->s, dt->len, val, vlen};
    }
    out->attrs = attrs;
    out->n_attrs = na;
    if (sb__sqs_md5_attrs(h, na, o->md5_attrs)) ENTRY_FAIL(&E_INTERNAL, "Out of memory.");
  }
  const aws_node_t *sa = sb__aws_get(m, "MessageSystemAttributes");
  if (sa && sa->kind != AWS_MAP) ENTRY_FAIL(&E_PARAM, "MessageSystemAttributes must be a map.");
  for (const aws_node_t *a = sa ? sa->child : NULL; a; a = a->next) {
    const aws_node_t *sv = sb__aws_get(a, "StringValue");
    const aws_node_t *dt = sb__aws_get(a, "DataType");
    if (strcmp(a->key, "AWSTraceHeader") || !sv || sv->kind != AWS_STR || !dt ||
        dt->kind != AWS_STR || strcmp(dt->s, "String") || !sb__aws_valid_text(sv->s, sv->len))
      ENTRY_FAIL(&E_PARAM,
                 "Message system attribute '%.256s' is invalid: only AWSTraceHeader of type String "
                 "is supported.",
                 a->key);
    out->trace = sv->s;
    out->trace_len = sv->len;
    sqs_mattr_t h = {a->key, a->key_len, dt->s, dt->len, sv->s, sv->len};
    sb__sqs_md5_attrs(&h, 1, o->md5_sys);
  }
#undef ENTRY_FAIL
  return 0;
}

/* Maps a per-message send status to an error. */
static void send_status_err(int st, const aws_err_t **e, const char **msg) {
  switch (st) {
  case SB_ELIMIT:
    *e = &E_PARAM;
    *msg = "One or more parameters are invalid. Reason: Message must be shorter than the "
           "queue's MaximumMessageSize (body plus attribute names, types and values).";
    break;
  case SB_EINVAL:
    *e = &E_PARAM;
    *msg = "The queue should either have ContentBasedDeduplication enabled or "
           "MessageDeduplicationId provided explicitly";
    break;
  case SB_ENOSPC:
    *e = &E_INTERNAL;
    *msg = "The broker's disk is full.";
    break;
  default:
    *e = &E_INTERNAL;
    *msg = "Internal error.";
    break;
  }
}

static void encode_failed(aws_enc_t *e, const char *id, const aws_err_t *err, const char *msg) {
  sb__aws_enc_item_begin(e);
  sb__aws_enc_str(e, "Id", id, strlen(id));
  sb__aws_enc_bool(e, "SenderFault", err->sender);
  sb__aws_enc_str(e, "Code", err->code, strlen(err->code));
  sb__aws_enc_str(e, "Message", msg, strlen(msg));
  sb__aws_enc_item_end(e);
}

static void send_done(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status) {
    if (status == SB_ENOTFOUND)
      fail(r, &E_NO_QUEUE, "The specified queue does not exist.");
    else
      fail_status(r, status);
    sb__aws_wake(&r->b);
    return;
  }
  int fifo = is_fifo_name(r->queue);
  for (size_t i = 0; i < r->n_msgs; i++) {
    sqs_out_msg_t *o = &r->msgs[i];
    if (o->engine_index < 0) continue;
    int st = res->sent[o->engine_index].status;
    if (st) send_status_err(st, &o->err, &o->err_msg);
  }
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  if (r->single) {
    sqs_out_msg_t *o = &r->msgs[0];
    if (o->err) {
      fail(r, o->err, "%s", o->err_msg);
      sb__aws_wake(&r->b);
      return;
    }
    const sb_broker_sent_t *s = &res->sent[0];
    sb__aws_enc_str(&e, "MD5OfMessageBody", o->md5_body, 32);
    if (o->md5_attrs[0]) sb__aws_enc_str(&e, "MD5OfMessageAttributes", o->md5_attrs, 32);
    if (o->md5_sys[0]) sb__aws_enc_str(&e, "MD5OfMessageSystemAttributes", o->md5_sys, 32);
    sb__aws_enc_str(&e, "MessageId", s->id, strlen(s->id));
    if (fifo) {
      char seq[24];
      int n = snprintf(seq, sizeof seq, "%020llu", (unsigned long long)s->seq);
      sb__aws_enc_str(&e, "SequenceNumber", seq, (size_t)n);
    }
  } else {
    sb__aws_enc_list_begin(&e, "Successful", "SendMessageBatchResultEntry");
    for (size_t i = 0; i < r->n_msgs; i++) {
      const sqs_out_msg_t *o = &r->msgs[i];
      if (o->err) continue;
      const sb_broker_sent_t *s = &res->sent[o->engine_index];
      sb__aws_enc_item_begin(&e);
      sb__aws_enc_str(&e, "Id", o->id, strlen(o->id));
      sb__aws_enc_str(&e, "MessageId", s->id, strlen(s->id));
      sb__aws_enc_str(&e, "MD5OfMessageBody", o->md5_body, 32);
      if (o->md5_attrs[0]) sb__aws_enc_str(&e, "MD5OfMessageAttributes", o->md5_attrs, 32);
      if (o->md5_sys[0]) sb__aws_enc_str(&e, "MD5OfMessageSystemAttributes", o->md5_sys, 32);
      if (fifo) {
        char seq[24];
        int n = snprintf(seq, sizeof seq, "%020llu", (unsigned long long)s->seq);
        sb__aws_enc_str(&e, "SequenceNumber", seq, (size_t)n);
      }
      sb__aws_enc_item_end(&e);
    }
    sb__aws_enc_list_end(&e);
    sb__aws_enc_list_begin(&e, "Failed", "BatchResultErrorEntry");
    for (size_t i = 0; i < r->n_msgs; i++)
      if (r->msgs[i].err) encode_failed(&e, r->msgs[i].id, r->msgs[i].err, r->msgs[i].err_msg);
    sb__aws_enc_list_end(&e);
  }
  sb__aws_end(&r->b, &e);
  sb__aws_wake(&r->b);
}

/* Checks a batch's Entries: present, 1..10, ids valid and distinct. Returns the list or NULL
 * after a failure. */
static const aws_node_t *batch_entries(sqs_req_t *r) {
  const aws_node_t *en = sb__aws_get(r->b.p, "Entries");
  if (en && en->kind == AWS_STR && en->len == 0) en = NULL; /* "Entries=": an empty list */
  if (en && en->kind != AWS_LIST) {
    fail(r, &E_PARAM, "Entries must be a list.");
    return NULL;
  }
  if (!en || en->n == 0) {
    fail(r, &E_EMPTY_BATCH,
         "There should be at least one SendMessageBatchRequestEntry in the request.");
    return NULL;
  }
  if (en->n > SQS_MAX_BATCH) {
    fail(r, &E_TOO_MANY, "Maximum number of entries per request are %u. You have sent %zu.",
         SQS_MAX_BATCH, en->n);
    return NULL;
  }
  for (const aws_node_t *a = en->child; a; a = a->next) {
    const aws_node_t *id = a->kind == AWS_MAP ? sb__aws_get(a, "Id") : NULL;
    if (!id || id->kind != AWS_STR) {
      fail(r, &E_MISSING, "The request must contain the parameter Id in every batch entry.");
      return NULL;
    }
    int ok = id->len > 0 && id->len <= SQS_MAX_BATCH_ID;
    for (size_t i = 0; ok && i < id->len; i++)
      ok = isalnum((unsigned char)id->s[i]) || id->s[i] == '-' || id->s[i] == '_';
    if (!ok) {
      fail(r, &E_BAD_ENTRY_ID,
           "A batch entry id can only contain alphanumeric characters, "
           "hyphens and underscores. It can be at most 80 letters long.");
      return NULL;
    }
    for (const aws_node_t *b = en->child; b != a; b = b->next) {
      const aws_node_t *bid = sb__aws_get(b, "Id");
      if (bid->len == id->len && memcmp(bid->s, id->s, id->len) == 0) {
        fail(r, &E_IDS_NOT_DISTINCT, "Id %.80s repeated.", id->s);
        return NULL;
      }
    }
  }
  return en;
}

static void start_send(sqs_req_t *r) {
  r->b.pending = 1;
  int rc = sb_queue_send(r->sqs->broker, r->queue, r->emsgs, r->n_emsgs, send_done, r);
  if (rc) start_failed(r, rc);
}

static int alloc_msgs(sqs_req_t *r, size_t n) {
  r->msgs = sb_arena_alloc(&r->b.arena, n * sizeof *r->msgs);
  r->emsgs = sb_arena_alloc(&r->b.arena, n * sizeof *r->emsgs);
  if (!r->msgs || !r->emsgs) {
    fail(r, &E_INTERNAL, "Out of memory.");
    return -1;
  }
  memset(r->msgs, 0, n * sizeof *r->msgs);
  r->n_msgs = n;
  return 0;
}

static void act_send_message(sqs_req_t *r) {
  if (alloc_msgs(r, 1)) return;
  r->single = 1;
  sqs_out_msg_t *o = &r->msgs[0];
  if (prep_message(r, r->b.p, &r->emsgs[0], o)) {
    fail(r, o->err, "%s", o->err_msg);
    return;
  }
  o->engine_index = 0;
  r->n_emsgs = 1;
  start_send(r);
}

static void act_send_message_batch(sqs_req_t *r) {
  const aws_node_t *en = batch_entries(r);
  if (!en || alloc_msgs(r, en->n)) return;
  size_t i = 0, total = 0;
  for (const aws_node_t *a = en->child; a; a = a->next, i++) {
    sqs_out_msg_t *o = &r->msgs[i];
    o->id = sb__aws_get(a, "Id")->s;
    o->engine_index = -1;
    if (prep_message(r, a, &r->emsgs[r->n_emsgs], o)) continue;
    const sb_broker_msg_t *m = &r->emsgs[r->n_emsgs];
    total += m->body_len;
    for (size_t k = 0; k < m->n_attrs; k++)
      total += m->attrs[k].name_len + m->attrs[k].type_len + m->attrs[k].value_len;
    o->engine_index = (int)r->n_emsgs++;
  }
  if (total > SQS_MAX_BODY_TOTAL) {
    fail(r, &E_BATCH_TOO_LONG,
         "Batch requests cannot be longer than %u bytes. You have sent %zu bytes.",
         SQS_MAX_BODY_TOTAL, total);
    return;
  }
  if (r->n_emsgs == 0) {
    /* Every entry failed its checks: answer the Failed list without touching the queue. */
    sb_broker_result_t none;
    memset(&none, 0, sizeof none);
    r->b.pending = 1; /* send_done wakes the loop, which clears it */
    send_done(r, 0, &none);
    return;
  }
  start_send(r);
}

/* System attributes a receive may ask for (bits of r->sys_attrs). */
static const char *const sys_names[] = {"SenderId",
                                        "SentTimestamp",
                                        "ApproximateReceiveCount",
                                        "ApproximateFirstReceiveTimestamp",
                                        "SequenceNumber",
                                        "MessageDeduplicationId",
                                        "MessageGroupId",
                                        "AWSTraceHeader",
                                        "DeadLetterQueueSourceArn"};
#define N_SYS (sizeof sys_names / sizeof sys_names[0])

static int parse_sys_names(sqs_req_t *r, const aws_node_t *l) {
  if (!l) return 0;
  if (l->kind != AWS_LIST) {
    fail(r, &E_PARAM, "AttributeNames must be a list.");
    return -1;
  }
  for (const aws_node_t *n = l->child; n; n = n->next) {
    if (n->kind != AWS_STR) continue;
    if (strcmp(n->s, "All") == 0) {
      r->sys_attrs = ~0u;
      continue;
    }
    size_t i = 0;
    while (i < N_SYS && strcmp(n->s, sys_names[i]))
      i++;
    /* Queue attribute names are accepted here too (older SDK models list them); they select
     * nothing. */
    if (i < N_SYS) r->sys_attrs |= 1u << i;
  }
  return 0;
}

static int attr_selected(const sqs_req_t *r, const char *name, size_t len) {
  for (size_t i = 0; i < r->n_sel; i++) {
    const char *s = r->sel[i];
    size_t n = strlen(s);
    if (strcmp(s, "All") == 0 || strcmp(s, ".*") == 0) return 1;
    if (n >= 2 && strcmp(s + n - 2, ".*") == 0) {
      if (len >= n - 1 && memcmp(name, s, n - 1) == 0) return 1;
    } else if (n == len && memcmp(s, name, n) == 0) {
      return 1;
    }
  }
  return 0;
}

static void receive_done(void *arg, int status, const sb_broker_result_t *res);

/* Waits in the engine for at most SQS_POLL_SLICE_MS of what is left of the long poll, so a
 * poll whose client went away (or whose server is stopping and closed it) ends within a slice
 * instead of holding its worker loop for up to 20 s. Returns 0 or a start error. */
static int receive_slice(sqs_req_t *r, int64_t wait_ms) {
  if (r->poll_end_ns) {
    uint64_t now = uv_hrtime();
    int64_t left = now < r->poll_end_ns ? (int64_t)((r->poll_end_ns - now) / 1000000u) : 0;
    wait_ms = left < SQS_POLL_SLICE_MS ? left : SQS_POLL_SLICE_MS;
  }
  return sb_queue_receive(r->sqs->broker, r->queue, r->recv_max, r->recv_vis, wait_ms, receive_done,
                          r);
}

static void receive_done(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status) {
    simple_done(r, status, res);
    return;
  }
  if (!res->n && r->poll_end_ns && uv_hrtime() + 1000000u < r->poll_end_ns &&
      !atomic_load(&r->b.aborted)) {
    int rc = receive_slice(r, 0);
    if (!rc) return;
    fail_status(r, rc);
    sb__aws_wake(&r->b);
    return;
  }
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  if (res->n) sb__aws_enc_list_begin(&e, "Messages", "Message");
  sqs_mattr_t h[SB_BROKER_ATTRS_MAX];
  for (size_t i = 0; i < res->n; i++) {
    const sb_broker_delivery_t *d = &res->deliveries[i];
    sb__aws_enc_item_begin(&e);
    sb__aws_enc_str(&e, "MessageId", d->id, strlen(d->id));
    sb__aws_enc_str(&e, "ReceiptHandle", d->receipt, strlen(d->receipt));
    char md5[33];
    sb__sqs_md5_hex(d->body, d->body_len, md5);
    sb__aws_enc_str(&e, "MD5OfBody", md5, 32);
    sb__aws_enc_str(&e, "Body", (const char *)d->body, d->body_len);
    if (r->sys_attrs) {
      sb__aws_enc_map_begin(&e, "Attributes", "Attribute", "Name", "Value");
      for (size_t k = 0; k < N_SYS; k++) {
        if (!(r->sys_attrs & (1u << k))) continue;
        char v[SQS_ARN_MAX];
        const char *val = v;
        switch (k) {
        case 0:
          snprintf(v, sizeof v, "%s", r->sqs->id.account);
          break;
        case 1:
          snprintf(v, sizeof v, "%lld", (long long)d->sent_ms);
          break;
        case 2:
          snprintf(v, sizeof v, "%u", d->receive_count);
          break;
        case 3:
          snprintf(v, sizeof v, "%lld", (long long)d->first_receive_ms);
          break;
        case 4:
          if (!is_fifo_name(r->queue)) continue;
          snprintf(v, sizeof v, "%020llu", (unsigned long long)d->seq);
          break;
        case 5:
          val = d->dedup;
          break;
        case 6:
          val = d->group;
          break;
        case 7:
          val = d->trace;
          break;
        default:
          if (!d->dlq_source) continue;
          queue_arn(r, d->dlq_source, v, sizeof v);
          break;
        }
        if (val) sb__aws_enc_map_str(&e, sys_names[k], strlen(sys_names[k]), val, strlen(val));
      }
      sb__aws_enc_map_end(&e);
    }
    size_t nh = 0;
    for (size_t k = 0; k < d->n_attrs && nh < SB_BROKER_ATTRS_MAX; k++) {
      const sb_broker_attr_t *a = &d->attrs[k];
      if (!attr_selected(r, a->name, a->name_len)) continue;
      h[nh++] = (sqs_mattr_t){a->name, a->name_len, a->type, a->type_len, a->value, a->value_len};
    }
    if (nh) {
      char amd5[33];
      if (sb__sqs_md5_attrs(h, nh, amd5)) e.err = SB_ENOMEM;
      sb__aws_enc_str(&e, "MD5OfMessageAttributes", amd5, 32);
      sb__aws_enc_map_begin(&e, "MessageAttributes", "MessageAttribute", "Name", "Value");
      for (size_t k = 0; k < nh; k++) {
        /* Names are bounded and NUL-free (checked at send); copy to terminate. */
        char name[SQS_MAX_ATTR_NAME + 1];
        size_t nl = h[k].name_len < SQS_MAX_ATTR_NAME ? h[k].name_len : SQS_MAX_ATTR_NAME;
        memcpy(name, h[k].name, nl);
        name[nl] = 0;
        sb__aws_enc_entry_begin(&e, name, nl);
        int bin = h[k].type_len >= 6 && memcmp(h[k].type, "Binary", 6) == 0;
        if (bin) {
          size_t cap = (h[k].value_len + 2) / 3 * 4 + 1;
          char *b64 = malloc(cap);
          if (!b64) {
            e.err = SB_ENOMEM;
          } else {
            size_t bl = sb_base64_encode(h[k].value, h[k].value_len, b64);
            sb__aws_enc_str(&e, "BinaryValue", b64, bl);
            free(b64);
          }
        } else {
          sb__aws_enc_str(&e, "StringValue", h[k].value, h[k].value_len);
        }
        sb__aws_enc_str(&e, "DataType", h[k].type, h[k].type_len);
        sb__aws_enc_entry_end(&e);
      }
      sb__aws_enc_map_end(&e);
    }
    sb__aws_enc_item_end(&e);
  }
  if (res->n) sb__aws_enc_list_end(&e);
  sb__aws_end(&r->b, &e);
  sb__aws_wake(&r->b);
}

static void act_receive_message(sqs_req_t *r) {
  int64_t max = 1, vis = -1, wait = -1, v;
  int has;
  if ((has = int_param(r, r->b.p, "MaxNumberOfMessages", 1, SQS_MAX_BATCH, &v)) < 0) return;
  if (has) max = v;
  if ((has = int_param(r, r->b.p, "VisibilityTimeout", 0, SB_BROKER_VISIBILITY_MAX_MS / 1000, &v)) <
      0)
    return;
  if (has) vis = v * 1000;
  if ((has = int_param(r, r->b.p, "WaitTimeSeconds", 0, SB_BROKER_WAIT_MAX_MS / 1000, &v)) < 0)
    return;
  if (has) wait = v * 1000;
  if (parse_sys_names(r, sb__aws_get(r->b.p, "AttributeNames")) ||
      parse_sys_names(r, sb__aws_get(r->b.p, "MessageSystemAttributeNames")))
    return;
  const aws_node_t *sel = sb__aws_get(r->b.p, "MessageAttributeNames");
  if (sel && sel->kind == AWS_LIST && sel->n) {
    r->sel = sb_arena_alloc(&r->b.arena, sel->n * sizeof *r->sel);
    if (!r->sel) {
      fail(r, &E_INTERNAL, "Out of memory.");
      return;
    }
    for (const aws_node_t *n = sel->child; n; n = n->next)
      if (n->kind == AWS_STR) r->sel[r->n_sel++] = n->s;
  }
  /* ReceiveRequestAttemptId is accepted; retried receives are not replayed (every receive
   * leases new messages). */
  r->b.pending = 1;
  r->recv_max = (size_t)max;
  r->recv_vis = vis;
  if (wait > SQS_POLL_SLICE_MS) r->poll_end_ns = uv_hrtime() + (uint64_t)wait * 1000000u;
  int rc = receive_slice(r, wait);
  if (rc) start_failed(r, rc);
}

/* Deletes and visibility changes: Id/ReceiptHandle(/VisibilityTimeout) per entry. */
static int parse_receipt_entries(sqs_req_t *r, int with_vis) {
  const aws_node_t *en;
  size_t n;
  if (r->single) {
    en = NULL;
    n = 1;
  } else {
    en = batch_entries(r);
    if (!en) return -1;
    n = en->n;
  }
  r->ids = sb_arena_alloc(&r->b.arena, n * sizeof *r->ids);
  r->receipts = sb_arena_alloc(&r->b.arena, n * sizeof *r->receipts);
  r->vis = sb_arena_alloc(&r->b.arena, n * sizeof *r->vis);
  r->statuses = sb_arena_alloc(&r->b.arena, n * sizeof *r->statuses);
  r->done = sb_arena_alloc(&r->b.arena, n * sizeof *r->done);
  if (!r->ids || !r->receipts || !r->vis || !r->statuses || !r->done) {
    fail(r, &E_INTERNAL, "Out of memory.");
    return -1;
  }
  r->n_entries = n;
  const aws_node_t *a = en ? en->child : r->b.p;
  for (size_t i = 0; i < n; i++, a = a->next) {
    r->ids[i] = en ? sb__aws_get(a, "Id")->s : "";
    r->statuses[i] = 0;
    r->done[i] = 0;
    const aws_node_t *rh = required(r, a, "ReceiptHandle");
    if (!rh) return -1;
    r->receipts[i] = rh->s;
    r->vis[i] = 0;
    if (with_vis) {
      int64_t v;
      int has = int_param(r, a, "VisibilityTimeout", 0, SB_BROKER_VISIBILITY_MAX_MS / 1000, &v);
      if (has < 0) return -1;
      if (!has) {
        fail(r, &E_MISSING, "The request must contain the parameter VisibilityTimeout.");
        return -1;
      }
      r->vis[i] = v * 1000;
    }
  }
  return 0;
}

/* The outcome of one delete or visibility change. */
static void entry_err(int st, int vis, const aws_err_t **e, const char **msg) {
  if (st == SB_EINVAL) {
    *e = &E_RECEIPT;
    *msg = "The input receipt handle is invalid.";
  } else if (st == SB_ESTATE) {
    *e = vis ? &E_NOT_INFLIGHT : &E_RECEIPT;
    *msg = vis ? "Message does not exist or is not available for visibility timeout change."
               : "The receipt handle has expired.";
  } else if (st == SB_ENOTFOUND) {
    *e = vis ? &E_NOT_INFLIGHT : &E_RECEIPT;
    *msg = "Message does not exist or is not available for visibility timeout change.";
  } else {
    *e = &E_INTERNAL;
    *msg = "Internal error.";
  }
}

static void entries_encode(sqs_req_t *r, int vis) {
  if (r->single) {
    if (r->statuses[0]) {
      const aws_err_t *e;
      const char *msg;
      entry_err(r->statuses[0], vis, &e, &msg);
      fail(r, e, "%s", msg);
    } else {
      sb__aws_empty(&r->b);
    }
    return;
  }
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  sb__aws_enc_list_begin(&e, "Successful",
                         vis ? "ChangeMessageVisibilityBatchResultEntry"
                             : "DeleteMessageBatchResultEntry");
  for (size_t i = 0; i < r->n_entries; i++) {
    if (r->statuses[i]) continue;
    sb__aws_enc_item_begin(&e);
    sb__aws_enc_str(&e, "Id", r->ids[i], strlen(r->ids[i]));
    sb__aws_enc_item_end(&e);
  }
  sb__aws_enc_list_end(&e);
  sb__aws_enc_list_begin(&e, "Failed", "BatchResultErrorEntry");
  for (size_t i = 0; i < r->n_entries; i++) {
    if (!r->statuses[i]) continue;
    const aws_err_t *er;
    const char *msg;
    entry_err(r->statuses[i], vis, &er, &msg);
    encode_failed(&e, r->ids[i], er, msg);
  }
  sb__aws_enc_list_end(&e);
  sb__aws_end(&r->b, &e);
}

static void delete_done(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status) {
    simple_done(r, status, res);
    return;
  }
  for (size_t i = 0; i < r->n_entries && i < res->n; i++)
    r->statuses[i] = res->statuses[i];
  entries_encode(r, 0);
  sb__aws_wake(&r->b);
}

static void act_delete_message(sqs_req_t *r) {
  if (parse_receipt_entries(r, 0)) return;
  r->b.pending = 1;
  int rc =
      sb_queue_delete_msgs(r->sqs->broker, r->queue, r->receipts, r->n_entries, delete_done, r);
  if (rc) start_failed(r, rc);
}

static void act_delete_message_single(sqs_req_t *r) {
  r->single = 1;
  act_delete_message(r);
}

/* Visibility changes go to the engine one group of equal timeouts at a time. */
static void vis_next(sqs_req_t *r);

static void vis_done(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status) {
    simple_done(r, status, res);
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < r->n_entries; i++)
    if (r->done[i] == 1) {
      r->statuses[i] = k < res->n ? res->statuses[k] : SB_EIO;
      r->done[i] = 2;
      k++;
    }
  vis_next(r);
}

static void vis_next(sqs_req_t *r) {
  size_t first = 0;
  while (first < r->n_entries && r->done[first])
    first++;
  if (first == r->n_entries) {
    entries_encode(r, 1);
    sb__aws_wake(&r->b);
    return;
  }
  const char *group[SQS_MAX_BATCH];
  size_t n = 0;
  for (size_t i = first; i < r->n_entries; i++)
    if (!r->done[i] && r->vis[i] == r->vis[first]) {
      r->done[i] = 1;
      group[n++] = r->receipts[i];
    }
  int rc =
      sb_queue_change_visibility(r->sqs->broker, r->queue, group, n, r->vis[first], vis_done, r);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

static void act_change_visibility(sqs_req_t *r) {
  if (parse_receipt_entries(r, 1)) return;
  r->b.pending = 1;
  vis_next(r);
}

static void act_change_visibility_single(sqs_req_t *r) {
  r->single = 1;
  act_change_visibility(r);
}

/* ---- actions: move tasks ---- */

static const char *move_state_name(sb_move_state_t s) {
  switch (s) {
  case SB_MOVE_RUNNING:
    return "RUNNING";
  case SB_MOVE_COMPLETED:
    return "COMPLETED";
  case SB_MOVE_CANCELLED:
    return "CANCELLED";
  default:
    return "FAILED";
  }
}

static void move_started(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status == SB_ENOTFOUND)
    fail(r, &E_RESOURCE,
         "The resource that you specified for the SourceArn parameter doesn't exist.");
  else if (status == SB_ESTATE)
    fail(r, &E_UNSUPPORTED, "There is already a task running for the source queue.");
  else if (status)
    fail_status(r, status);
  else {
    aws_enc_t e;
    sb__aws_begin(&r->b, &e);
    const char *h = res->n ? res->tasks[0].handle : "";
    sb__aws_enc_str(&e, "TaskHandle", h, strlen(h));
    sb__aws_end(&r->b, &e);
  }
  sb__aws_wake(&r->b);
}

static void move_sources(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status == SB_ENOTFOUND) {
    move_started(r, status, res);
    return;
  }
  if (!status && res->n_names == 0) {
    fail(r, &E_PARAM, "Source queue must be configured as a Dead Letter Queue.");
    sb__aws_wake(&r->b);
    return;
  }
  int rc = status ? status
                  : sb_move_start(r->sqs->broker, r->queue, r->dest[0] ? r->dest : NULL, r->rate,
                                  move_started, r);
  if (rc) {
    fail_status(r, rc);
    sb__aws_wake(&r->b);
  }
}

static void act_start_move(sqs_req_t *r) {
  const aws_node_t *src = required(r, r->b.p, "SourceArn");
  if (!src || arn_name(r, src, r->queue)) return;
  const aws_node_t *dst = str_param(r, r->b.p, "DestinationArn");
  if (r->b.err || (dst && arn_name(r, dst, r->dest))) return;
  int64_t v;
  int has = int_param(r, r->b.p, "MaxNumberOfMessagesPerSecond", 1, SQS_MOVE_RATE_MAX, &v);
  if (has < 0) return;
  r->rate = has ? (uint32_t)v : 0;
  r->b.pending = 1;
  int rc = sb_queue_dlq_sources(r->sqs->broker, r->queue, move_sources, r);
  if (rc) start_failed(r, rc);
}

static void move_listed(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status == SB_ENOTFOUND) {
    move_started(r, status, res);
    return;
  }
  if (status) {
    fail_status(r, status);
    sb__aws_wake(&r->b);
    return;
  }
  aws_enc_t e;
  sb__aws_begin(&r->b, &e);
  sb__aws_enc_list_begin(&e, "Results", "ListMessageMoveTasksResultEntry");
  for (size_t i = 0; i < res->n; i++) {
    const sb_move_task_t *t = &res->tasks[i];
    char arn[SQS_ARN_MAX];
    sb__aws_enc_item_begin(&e);
    if (t->state == SB_MOVE_RUNNING)
      sb__aws_enc_str(&e, "TaskHandle", t->handle, strlen(t->handle));
    const char *st = move_state_name(t->state);
    sb__aws_enc_str(&e, "Status", st, strlen(st));
    queue_arn(r, t->source, arn, sizeof arn);
    sb__aws_enc_str(&e, "SourceArn", arn, strlen(arn));
    if (t->destination[0]) {
      queue_arn(r, t->destination, arn, sizeof arn);
      sb__aws_enc_str(&e, "DestinationArn", arn, strlen(arn));
    }
    if (t->rate) sb__aws_enc_int(&e, "MaxNumberOfMessagesPerSecond", t->rate);
    sb__aws_enc_int(&e, "ApproximateNumberOfMessagesMoved", (int64_t)t->moved);
    sb__aws_enc_int(&e, "ApproximateNumberOfMessagesToMove", (int64_t)t->to_move);
    if (t->failure[0]) sb__aws_enc_str(&e, "FailureReason", t->failure, strlen(t->failure));
    sb__aws_enc_int(&e, "StartedTimestamp", t->started_ms);
    sb__aws_enc_item_end(&e);
  }
  sb__aws_enc_list_end(&e);
  sb__aws_end(&r->b, &e);
  sb__aws_wake(&r->b);
}

static void act_list_moves(sqs_req_t *r) {
  const aws_node_t *src = required(r, r->b.p, "SourceArn");
  if (!src || arn_name(r, src, r->queue)) return;
  int64_t v;
  int has = int_param(r, r->b.p, "MaxResults", 1, 10, &v);
  if (has < 0) return;
  r->b.pending = 1;
  /* Existence first: the engine lists tasks of any name. */
  int rc = sb_move_list(r->sqs->broker, r->queue, has ? (size_t)v : 1, move_listed, r);
  if (rc) start_failed(r, rc);
}

static void move_cancelled(void *arg, int status, const sb_broker_result_t *res) {
  sqs_req_t *r = arg;
  if (status == SB_ENOTFOUND)
    fail(r, &E_RESOURCE, "The task handle does not name a message move task.");
  else if (status == SB_ESTATE)
    fail(r, &E_UNSUPPORTED, "Only a running message move task can be cancelled.");
  else if (status)
    fail_status(r, status);
  else {
    aws_enc_t e;
    sb__aws_begin(&r->b, &e);
    sb__aws_enc_int(&e, "ApproximateNumberOfMessagesMoved",
                    res->n ? (int64_t)res->tasks[0].moved : 0);
    sb__aws_end(&r->b, &e);
  }
  sb__aws_wake(&r->b);
}

static void act_cancel_move(sqs_req_t *r) {
  const aws_node_t *h = required(r, r->b.p, "TaskHandle");
  if (!h) return;
  if (h->len == 0 || h->len >= sizeof(((sb_move_task_t *)0)->handle) || memchr(h->s, 0, h->len)) {
    fail(r, &E_RESOURCE, "The task handle does not name a message move task.");
    return;
  }
  r->b.pending = 1;
  int rc = sb_move_cancel(r->sqs->broker, h->s, move_cancelled, r);
  if (rc) start_failed(r, rc);
}

/* ---- dispatch ---- */

static const sqs_action_t actions[] = {
    {"CreateQueue", act_create_queue, 0, 1},
    {"GetQueueUrl", act_get_queue_url, 0, 1},
    {"ListQueues", act_list_queues, 0, 1},
    {"DeleteQueue", act_delete_queue, 1, 0},
    {"GetQueueAttributes", act_get_queue_attributes, 1, 1},
    {"SetQueueAttributes", act_set_queue_attributes, 1, 0},
    {"SendMessage", act_send_message, 1, 1},
    {"SendMessageBatch", act_send_message_batch, 1, 1},
    {"ReceiveMessage", act_receive_message, 1, 1},
    {"DeleteMessage", act_delete_message_single, 1, 0},
    {"DeleteMessageBatch", act_delete_message, 1, 1},
    {"ChangeMessageVisibility", act_change_visibility_single, 1, 0},
    {"ChangeMessageVisibilityBatch", act_change_visibility, 1, 1},
    {"PurgeQueue", act_purge_queue, 1, 0},
    {"TagQueue", act_tag_queue, 1, 0},
    {"UntagQueue", act_untag_queue, 1, 0},
    {"ListQueueTags", act_list_queue_tags, 1, 1},
    {"AddPermission", act_add_permission, 1, 0},
    {"RemovePermission", act_remove_permission, 1, 0},
    {"ListDeadLetterSourceQueues", act_dlq_sources, 1, 1},
    {"StartMessageMoveTask", act_start_move, 0, 1},
    {"ListMessageMoveTasks", act_list_moves, 0, 1},
    {"CancelMessageMoveTask", act_cancel_move, 0, 1},
};

static const sqs_action_t *find_action(const char *s, size_t n) {
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
    if (strlen(actions[i].name) == n && memcmp(actions[i].name, s, n) == 0) return &actions[i];
  return NULL;
}

/* The action's name for responses when the request named none we know. */
static const sqs_action_t unknown_action = {"Unknown", NULL, 0, 0};

static void process(aws_req_t *b) {
  sqs_req_t *r = (sqs_req_t *)b;
  r->sqs = b->owner;
  r->act = &unknown_action;
  if (r->sqs->id.key_id[0] && sb__aws_auth(b, r->sqs->id.key_id, r->sqs->id.secret)) return;
  if (b->json) {
    size_t tl = 0;
    const char *t = sb_http_req_header(b->http, "x-amz-target", &tl);
    const char *dot = t ? memchr(t, '.', tl) : NULL;
    const sqs_action_t *a = dot ? find_action(dot + 1, tl - (size_t)(dot + 1 - t)) : NULL;
    if (!a) {
      fail(r, &E_ACTION, "The action %.64s is not valid for this endpoint.", dot ? dot + 1 : "");
      return;
    }
    r->act = a;
    b->action = a->name;
    b->result = a->result;
    const char *err = NULL;
    size_t blen = sb_buf_pending(&b->in);
    const uint8_t *body = blen ? sb_buf_head(&b->in) : (const uint8_t *)"";
    int rc = sb__aws_decode_json(&b->arena, body, blen, &b->p, &err);
    if (rc) {
      fail(r, rc == SB_ENOMEM ? &E_INTERNAL : &E_SERIALIZATION, "%s", err ? err : "out of memory");
      return;
    }
  } else {
    if (sb__aws_decode_query(b)) return;
    const aws_node_t *an = sb__aws_get(b->p, "Action");
    if (!an || an->kind != AWS_STR) {
      fail(r, &E_MISSING, "The request must contain the parameter Action.");
      return;
    }
    const sqs_action_t *a = find_action(an->s, an->len);
    if (!a) {
      fail(r, &E_ACTION, "The action %.64s is not valid for this endpoint.", an->s);
      return;
    }
    r->act = a;
    b->action = a->name;
    b->result = a->result;
  }
  if (r->act->needs_queue && resolve_queue(r)) return;
  r->act->fn(r);
}

/* ---- HTTP ---- */

static const aws_service_t service = {
    .json_type = "com.amazonaws.sqs#",
    .xmlns = SQS_XMLNS,
    .xml_detail = 1,
    .req_size = sizeof(sqs_req_t),
    .max_request = SQS_MAX_REQUEST,
    .too_long = &E_BATCH_TOO_LONG,
    .process = process,
};

static int prefix_ci(const char *s, size_t n, const char *p) {
  size_t pl = strlen(p);
  return n >= pl && strncasecmp(s, p, pl) == 0;
}

/* Claims AWS JSON requests for SQS and Query requests (form POST, or GET with Action=) sent
 * to "/" or to a queue path "/<account>/<name>" that are unsigned or signed for "sqs". */
static int claim(sb_http_req_t *req, void *ud) {
  size_t n = 0;
  const char *t = sb_http_req_header(req, "x-amz-target", &n);
  if (t) return prefix_ci(t, n, "AmazonSQS.");
  const char *path = sb_http_req_path(req);
  const char *m = sb_http_req_method(req);
  int form;
  if (strcmp(m, "POST") == 0) {
    const char *ct = sb_http_req_header(req, "content-type", &n);
    form = ct && prefix_ci(ct, n, "application/x-www-form-urlencoded");
  } else if (strcmp(m, "GET") == 0) {
    const char *q = sb_http_req_query(req);
    form = strncmp(q, "Action=", 7) == 0 || strstr(q, "&Action=") != NULL;
  } else {
    return 0;
  }
  if (!form) return 0;
  if (strcmp(path, "/") != 0) {
    /* /<account>/<queue>: two segments. */
    const char *p2 = strchr(path + 1, '/');
    if (!p2 || p2 == path + 1 || !p2[1] || strchr(p2 + 1, '/')) return 0;
  }
  const char *auth = sb_http_req_header(req, "authorization", &n);
  if (auth && strstr(auth, "/aws4_request") && !strstr(auth, "/sqs/aws4_request")) return 0;
  return 1;
}

int sb_sqs_attach(sb_rpc_t *rpc, sb_broker_t *broker, const sb_sqs_config_t *cfg, sb_sqs_t **out) {
  if (!rpc || !broker || !out) return SB_EINVAL;
  sb_sqs_t *s = calloc(1, sizeof *s);
  if (!s) return SB_ENOMEM;
  s->broker = broker;
  s->fe = (aws_frontend_t){&service, s};
  int rc = sb__aws_ident(cfg, &s->id);
  if (!rc) rc = sb__aws_add_frontend(rpc, claim, &s->fe);
  if (rc) {
    sb__aws_ident_clear(&s->id);
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void sb_sqs_free(sb_sqs_t *s) {
  if (s) sb__aws_ident_clear(&s->id);
  free(s);
}
