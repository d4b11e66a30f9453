/*
 * BrokerService: the broker's contract served from C (see broker_api.h).
 *
 * ## Threads and the hand-off
 *
 * A handler runs on the worker loop that received the call; the call, its arena
 * (sb_call_alloc) and its response message belong to that loop. Broker callbacks run on the
 * broker's own thread. So every call goes through one op (bapi_op_t):
 *
 *   1. the handler (loop) checks the request, converts it into engine arguments (borrowed by
 *      the engine only for the call: it copies them), creates the op with a uv_async_t on
 *      sb_call_loop(call) and starts the engine operation;
 *   2. the engine's callback (broker thread) builds the response as a protobuf message that
 *      points into the borrowed result and a scratch arena, serializes it into malloc'ed bytes
 *      (the deep copy), frees the scratch and calls uv_async_send();
 *   3. the async callback (loop) decodes those bytes with an allocator backed by the call's
 *      arena, so every string and array of the response lives exactly as long as the call,
 *      copies the decoded struct over the framework's response, finishes the call and closes
 *      the handle, whose close callback frees the op.
 *
 * Serializing costs one encode and one decode per call, which keeps the copy generic (one
 * function for every response type) and leaves no pointer into broker memory on the loop.
 * uv_async_send() orders the broker thread's writes to the op before the loop reads them.
 *
 * An op holds its loop alive (an active handle) until the broker answers, so a long poll in
 * progress delays the end of shutdown by at most SB_BROKER_WAIT_MAX_MS, and the broker must
 * outlive the server (cmd_serve closes it after sb_server_free()). A call cancelled meanwhile
 * (client gone) is still finished, as sb_call_finish() requires; nothing is sent.
 *
 * ## Errors
 *
 * Engine codes map to gRPC codes with a message naming the queue, topic, task or
 * subscription (bapi_map); checks the contract's validation rules cannot express are
 * reported as field violations, like the rules' own.
 *
 * Out of memory: a handler answers RESOURCE_EXHAUSTED; on the broker thread a failed
 * serialization becomes RESOURCE_EXHAUSTED for that call only.
 */
#include "protocols/broker/broker_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "broker.sb.h"
#include "core/arena.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

#define BAPI_LIST_DEFAULT 100u /* ListQueues/ListTopics/ListRedrives page without a size */
#define BAPI_PEEK_DEFAULT 10u  /* PeekMessages without max_messages */
#define BAPI_SUBJECT_MAX 200u  /* bytes of the text naming what an op is about */
#define BAPI_MESSAGE_MAX 320u  /* bytes of an error message */

typedef struct bapi_op bapi_op_t;

/* Builds the response from the engine's result (borrowed for the call) on the broker thread:
 * fills a message in scratch memory from a and hands it to bapi_pack(), or calls bapi_fail(). */
typedef void (*bapi_build_fn)(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a);

/* One call in flight to the broker. Created on the call's loop; written by the broker thread
 * between the engine's callback and uv_async_send(), then read and freed on the loop. */
struct bapi_op {
  uv_async_t async;               /* on sb_call_loop(call); the op is freed in its close_cb */
  sb_call_t *call;                /* the call; loop thread only */
  ProtobufCMessage *res;          /* the framework's response; loop thread only */
  bapi_build_fn build;            /* NULL: the response stays empty */
  const char *kind;               /* "queue", "topic", ...: static, for error messages */
  char subject[BAPI_SUBJECT_MAX]; /* what the op is about, e.g. "queue 'orders'" */
  sb_code_t estate_code;          /* what SB_ESTATE means for this op */
  const char *estate_what;        /* ... and its message after the subject (static) */
  sb_code_t code;                 /* the outcome; set on the broker thread */
  char message[BAPI_MESSAGE_MAX]; /* error message when code != OK */
  uint8_t *packed;                /* serialized response, malloc'ed; NULL when none */
  size_t packed_len;              /* bytes at packed */
};

/* ---- codes and messages ---- */

/* The gRPC code of an engine code in a per-entry result (no subject). */
static sb_code_t entry_code(int rc) {
  switch (rc) {
  case 0:
    return SB_CODE_OK;
  case SB_ENOTFOUND:
    return SB_CODE_NOT_FOUND;
  case SB_EINVAL:
    return SB_CODE_INVALID_ARGUMENT;
  case SB_ELIMIT:
  case SB_ENOSPC:
  case SB_ENOMEM:
    return SB_CODE_RESOURCE_EXHAUSTED;
  case SB_ESTATE:
    return SB_CODE_FAILED_PRECONDITION;
  default:
    return SB_CODE_INTERNAL;
  }
}

/* A per-entry error text (static). */
static const char *entry_error(int rc, bool receipt) {
  switch (rc) {
  case 0:
    return "";
  case SB_EINVAL:
    return receipt ? "not a receipt handle of this queue" : "invalid message";
  case SB_ESTATE:
    return receipt ? "stale receipt handle: the message was received again since"
                   : "not allowed in the current state";
  case SB_ENOTFOUND:
    return receipt ? "the message is gone" : "not found";
  case SB_ELIMIT:
    return "the queue is at its depth or message size limit";
  case SB_ENOSPC:
    return "the disk is below its reserve; retry later";
  default:
    return sb_strerror(rc);
  }
}

static void bapi_fail(bapi_op_t *op, sb_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bapi_fail(bapi_op_t *op, sb_code_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(op->message, sizeof op->message, fmt, ap);
  va_end(ap);
  op->code = code;
}

/* Sets op's outcome from an engine status code for the whole operation. */
static void bapi_map(bapi_op_t *op, int rc) {
  switch (rc) {
  case SB_ENOTFOUND:
    bapi_fail(op, SB_CODE_NOT_FOUND, "%s not found", op->subject);
    break;
  case SB_EINVAL:
    bapi_fail(op, SB_CODE_INVALID_ARGUMENT, "invalid request for %s", op->subject);
    break;
  case SB_ELIMIT:
    bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "%s is at its depth or size limit", op->subject);
    break;
  case SB_ENOSPC:
    bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "%s: the disk is below its reserve; retry later",
              op->subject);
    break;
  case SB_ESTATE:
    bapi_fail(op, op->estate_code, "%s %s", op->subject, op->estate_what);
    break;
  case SB_ENOMEM:
    bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    break;
  default:
    bapi_fail(op, SB_CODE_INTERNAL, "%s: %s", op->subject, sb_strerror(rc));
    break;
  }
}

/* Serializes msg (whose pointers may borrow the engine's result) into op->packed. Broker
 * thread. */
static void bapi_pack(bapi_op_t *op, const ProtobufCMessage *msg) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  op->packed = malloc(n ? n : 1);
  if (!op->packed) {
    bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  op->packed_len = protobuf_c_message_pack(msg, op->packed);
}

/* ---- the hand-off ---- */

static void *call_alloc(void *ud, size_t n) {
  return sb_call_alloc(ud, n ? n : 1);
}

static void call_free(void *ud, void *p) {
  (void)ud, (void)p; /* the call's arena frees everything at once */
}

static void op_closed(uv_handle_t *h) {
  bapi_op_t *op = h->data;
  free(op->packed);
  free(op);
}

/* Loop thread: completes the call from what the broker thread left in op. */
static void op_async(uv_async_t *h) {
  bapi_op_t *op = h->data;
  sb_code_t code = op->code;
  if (code == SB_CODE_OK && op->packed) {
    ProtobufCAllocator alloc = {call_alloc, call_free, op->call};
    ProtobufCMessage *m =
        protobuf_c_message_unpack(op->res->descriptor, &alloc, op->packed_len, op->packed);
    if (m)
      memcpy(op->res, m, op->res->descriptor->sizeof_message);
    else {
      code = SB_CODE_RESOURCE_EXHAUSTED;
      snprintf(op->message, sizeof op->message, "out of memory");
    }
  }
  sb_call_finish(op->call, code, code == SB_CODE_OK ? NULL : op->message);
  uv_close((uv_handle_t *)&op->async, op_closed);
}

/* Broker thread: the engine's callback. */
static void op_done(void *arg, int status, const sb_broker_result_t *r) {
  bapi_op_t *op = arg;
  if (status)
    bapi_map(op, status);
  else if (op->build) {
    sb_arena_t a;
    sb_arena_init(&a);
    op->build(op, r, &a);
    sb_arena_free(&a);
  }
  uv_async_send(&op->async);
}

/* Creates the op of a call about `subject` (printf format). Returns NULL after finishing the
 * call RESOURCE_EXHAUSTED. */
static bapi_op_t *op_new(sb_call_t *call, ProtobufCMessage *res, bapi_build_fn build,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bapi_op_t *op_new(sb_call_t *call, ProtobufCMessage *res, bapi_build_fn build,
                         const char *fmt, ...) {
  bapi_op_t *op = calloc(1, sizeof *op);
  if (!op || uv_async_init(sb_call_loop(call), &op->async, op_async)) {
    free(op);
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  op->async.data = op;
  op->call = call;
  op->res = res;
  op->build = build;
  op->estate_code = SB_CODE_FAILED_PRECONDITION;
  op->estate_what = "is in use";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(op->subject, sizeof op->subject, fmt, ap);
  va_end(ap);
  return op;
}

/* After starting the engine operation: rc 0 means the callback will run. Otherwise the
 * operation never started: the call is answered here (SB_EINVAL names `field`) and the op
 * is closed. */
static void op_started(bapi_op_t *op, int rc, const char *field) {
  if (!rc) return;
  sb_call_t *call = op->call;
  if (rc == SB_EINVAL) {
    sb_call_field_violation(call, field, "invalid value");
    bapi_fail(op, SB_CODE_INVALID_ARGUMENT, "invalid %s for %s", field, op->subject);
  } else if (rc == SB_ESTATE)
    bapi_fail(op, SB_CODE_UNAVAILABLE, "the broker is shutting down");
  else
    bapi_map(op, rc);
  sb_call_finish(call, op->code, op->message);
  uv_close((uv_handle_t *)&op->async, op_closed);
}

/* Answers INVALID_ARGUMENT with one field violation. Returns -1 for `return` chains. */
static int bad_field(sb_call_t *call, const char *field, const char *why) {
  sb_call_field_violation(call, field, why);
  char msg[BAPI_MESSAGE_MAX];
  snprintf(msg, sizeof msg, "%s: %s", field, why);
  sb_call_finish(call, SB_CODE_INVALID_ARGUMENT, msg);
  return -1;
}

static bool ends_with_fifo(const char *s) {
  size_t n = strlen(s);
  return n >= 5 && strcmp(s + n - 5, ".fifo") == 0;
}

/* Checks a queue or topic name field; answers the call and returns -1 when it is bad. */
static int check_name(sb_call_t *call, const char *field, const char *name) {
  if (name && name[0] && sb_broker_check_name(name, ends_with_fifo(name)) == 0) return 0;
  return bad_field(call, field,
                   "must be 1..80 characters of [A-Za-z0-9_-], ending in .fifo for FIFO");
}

/* ---- engine results -> messages (broker thread, scratch memory from a) ---- */

#define NEW(a, type, init)                                                                         \
  ({                                                                                               \
    type *m_ = sb_arena_alloc((a), sizeof(type));                                                  \
    if (m_) init(m_);                                                                              \
    m_;                                                                                            \
  })

/* A Timestamp for ms since the epoch; NULL for 0 (unset) or out of memory. */
static Google__Protobuf__Timestamp *ts(sb_arena_t *a, int64_t ms) {
  if (ms <= 0) return NULL;
  Google__Protobuf__Timestamp *t =
      NEW(a, Google__Protobuf__Timestamp, google__protobuf__timestamp__init);
  if (!t) return NULL;
  t->seconds = ms / 1000;
  t->nanos = (int32_t)(ms % 1000) * 1000000;
  return t;
}

/* 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
static int utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0)
      len = 2, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0)
      len = 3, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0)
      len = 4, cp = c & 0x07;
    else
      return 0;
    if (n - i < len) return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += len;
  }
  return 1;
}

/* Builds a string->string map of entry type E (key, value members) from engine kv pairs. */
#define KV_MAP(a, E, init, kv, n, out, n_out)                                                      \
  do {                                                                                             \
    (n_out) = 0;                                                                                   \
    if (!(n)) break;                                                                               \
    E **arr_ = sb_arena_alloc((a), (n) * sizeof *arr_);                                            \
    if (!arr_) break;                                                                              \
    for (size_t k_ = 0; k_ < (n); k_++) {                                                          \
      E *e_ = NEW(a, E, init);                                                                     \
      if (!e_) break;                                                                              \
      e_->key = (char *)(kv)[k_].name;                                                             \
      e_->value = (char *)((kv)[k_].value ? (kv)[k_].value : "");                                  \
      arr_[(n_out)++] = e_;                                                                        \
    }                                                                                              \
    (out) = arr_;                                                                                  \
  } while (0)

static Switchboard__Broker__V1__AttributeValue *attr_value(sb_arena_t *a,
                                                           const sb_broker_attr_t *at) {
  Switchboard__Broker__V1__AttributeValue *v = NEW(a, Switchboard__Broker__V1__AttributeValue,
                                                   switchboard__broker__v1__attribute_value__init);
  if (!v) return NULL;
  v->type = sb_arena_strndup(a, at->type ? at->type : "", at->type_len);
  bool binary = at->type_len >= 6 && memcmp(at->type, "Binary", 6) == 0;
  if (!binary && utf8_valid(at->value, at->value_len) && !memchr(at->value, 0, at->value_len))
    v->string_value = sb_arena_strndup(a, at->value, at->value_len);
  else {
    v->binary_value.data = (uint8_t *)at->value;
    v->binary_value.len = at->value_len;
  }
  if (!v->type || (!binary && v->string_value == NULL && !v->binary_value.data)) return NULL;
  return v;
}

static Switchboard__Broker__V1__Message *message_of(sb_arena_t *a, const sb_broker_delivery_t *d) {
  Switchboard__Broker__V1__Message *m =
      NEW(a, Switchboard__Broker__V1__Message, switchboard__broker__v1__message__init);
  if (!m) return NULL;
  m->message_id = (char *)d->id;
  m->receipt_handle = (char *)d->receipt;
  m->sequence = d->seq;
  if (utf8_valid(d->body, d->body_len) && !memchr(d->body, 0, d->body_len)) {
    m->text = sb_arena_strndup(a, (const char *)d->body, d->body_len);
    if (!m->text) return NULL;
  } else {
    m->body.data = (uint8_t *)d->body;
    m->body.len = d->body_len;
  }
  if (d->n_attrs) {
    m->attributes = sb_arena_alloc(a, d->n_attrs * sizeof *m->attributes);
    if (!m->attributes) return NULL;
    for (size_t k = 0; k < d->n_attrs; k++) {
      Switchboard__Broker__V1__Message__AttributesEntry *e =
          NEW(a, Switchboard__Broker__V1__Message__AttributesEntry,
              switchboard__broker__v1__message__attributes_entry__init);
      if (!e) return NULL;
      e->key = sb_arena_strndup(a, d->attrs[k].name, d->attrs[k].name_len);
      e->value = attr_value(a, &d->attrs[k]);
      if (!e->key || !e->value) return NULL;
      m->attributes[m->n_attributes++] = e;
    }
  }
  m->group = (char *)(d->group ? d->group : "");
  m->dedup_id = (char *)(d->dedup ? d->dedup : "");
  m->sent_time = ts(a, d->sent_ms);
  m->first_receive_time = ts(a, d->first_receive_ms);
  m->receive_count = d->receive_count;
  if (d->dlq_source && d->dlq_source[0]) {
    Switchboard__Broker__V1__DeadLetterInfo *dl =
        NEW(a, Switchboard__Broker__V1__DeadLetterInfo,
            switchboard__broker__v1__dead_letter_info__init);
    if (!dl) return NULL;
    dl->source_queue = (char *)d->dlq_source;
    dl->receive_count = d->dlq_receive_count;
    dl->first_receive_time = ts(a, d->dlq_first_receive_ms);
    dl->last_receive_time = ts(a, d->dlq_last_receive_ms);
    m->dead_letter = dl;
  }
  return m;
}

/* Deliveries -> repeated Message; returns -1 (after bapi_fail) when out of memory. */
static int messages_of(bapi_op_t *op, sb_arena_t *a, const sb_broker_result_t *r,
                       Switchboard__Broker__V1__Message ***out, size_t *n_out) {
  *n_out = 0;
  if (!r->n) return 0;
  *out = sb_arena_alloc(a, r->n * sizeof **out);
  if (!*out) goto oom;
  for (size_t i = 0; i < r->n; i++) {
    (*out)[i] = message_of(a, &r->deliveries[i]);
    if (!(*out)[i]) goto oom;
    (*n_out)++;
  }
  return 0;
oom:
  bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
  return -1;
}

static void build_queue(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  const sb_queue_info_t *q = r->queue;
  Switchboard__Broker__V1__Queue m = SWITCHBOARD__BROKER__V1__QUEUE__INIT;
  Switchboard__Broker__V1__QueueConfig c = SWITCHBOARD__BROKER__V1__QUEUE_CONFIG__INIT;
  Switchboard__Broker__V1__QueueStats s = SWITCHBOARD__BROKER__V1__QUEUE_STATS__INIT;
  Google__Protobuf__UInt32Value vis = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
  m.name = (char *)q->name;
  vis.value = q->config.visibility_ms;
  c.visibility_timeout_ms = &vis;
  c.delay_ms = q->config.delay_ms;
  c.retention_ms = q->config.retention_ms;
  c.max_message_bytes = q->config.max_message_bytes;
  c.receive_wait_ms = q->config.receive_wait_ms;
  c.max_messages = q->config.max_messages;
  c.max_receive_count = q->config.max_receive_count;
  c.dead_letter_queue = (char *)q->config.dead_letter;
  c.fifo = q->config.fifo;
  c.content_based_dedup = q->config.content_dedup;
  c.fsync =
      q->config.fsync == SB_BROKER_FSYNC_INTERVAL ? SWITCHBOARD__BROKER__V1__FSYNC__FSYNC_INTERVAL
      : q->config.fsync == SB_BROKER_FSYNC_NEVER  ? SWITCHBOARD__BROKER__V1__FSYNC__FSYNC_NEVER
                                                  : SWITCHBOARD__BROKER__V1__FSYNC__FSYNC_ALWAYS;
  c.fsync_interval_ms = q->config.fsync_interval_ms;
  m.config = &c;
  KV_MAP(a, Switchboard__Broker__V1__Queue__AttributesEntry,
         switchboard__broker__v1__queue__attributes_entry__init, q->kv, q->n_kv, m.attributes,
         m.n_attributes);
  m.create_time = ts(a, q->created_ms);
  m.update_time = ts(a, q->modified_ms);
  s.visible = q->stats.visible;
  s.in_flight = q->stats.in_flight;
  s.delayed = q->stats.delayed;
  s.oldest_message_time = ts(a, q->stats.oldest_ms);
  s.sent = q->stats.sent;
  s.received = q->stats.received;
  s.deleted = q->stats.deleted;
  s.dead_lettered = q->stats.dead_lettered;
  s.expired = q->stats.expired;
  m.stats = &s;
  bapi_pack(op, &m.base);
}

/* ListQueues and ListTopics share one response layout (names, next_page_token). */
static void build_names(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  (void)a;
  Switchboard__Broker__V1__ListQueuesResponse m =
      SWITCHBOARD__BROKER__V1__LIST_QUEUES_RESPONSE__INIT;
  m.names = (char **)r->names;
  m.n_names = r->n_names;
  m.next_page_token = (char *)(r->next_token ? r->next_token : "");
  bapi_pack(op, &m.base);
}

static void build_topics(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  (void)a;
  Switchboard__Broker__V1__ListTopicsResponse m =
      SWITCHBOARD__BROKER__V1__LIST_TOPICS_RESPONSE__INIT;
  m.names = (char **)r->names;
  m.n_names = r->n_names;
  m.next_page_token = (char *)(r->next_token ? r->next_token : "");
  bapi_pack(op, &m.base);
}

static void build_dlq_sources(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  (void)a;
  Switchboard__Broker__V1__ListDeadLetterSourcesResponse m =
      SWITCHBOARD__BROKER__V1__LIST_DEAD_LETTER_SOURCES_RESPONSE__INIT;
  m.queues = (char **)r->names;
  m.n_queues = r->n_names;
  bapi_pack(op, &m.base);
}

static void build_purge(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  (void)a;
  Switchboard__Broker__V1__PurgeQueueResponse m =
      SWITCHBOARD__BROKER__V1__PURGE_QUEUE_RESPONSE__INIT;
  m.purged = r->count;
  bapi_pack(op, &m.base);
}

static void build_send(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__SendMessagesResponse m =
      SWITCHBOARD__BROKER__V1__SEND_MESSAGES_RESPONSE__INIT;
  size_t failed = 0;
  for (size_t i = 0; i < r->n; i++)
    failed += r->sent[i].status != 0;
  if (r->n && failed == r->n) {
    int rc = r->sent[0].status;
    bapi_fail(op, entry_code(rc), "%s: message not sent: %s", op->subject, entry_error(rc, false));
    return;
  }
  m.results = sb_arena_alloc(a, (r->n ? r->n : 1) * sizeof *m.results);
  if (!m.results) goto oom;
  for (size_t i = 0; i < r->n; i++) {
    Switchboard__Broker__V1__SendResult *e =
        NEW(a, Switchboard__Broker__V1__SendResult, switchboard__broker__v1__send_result__init);
    if (!e) goto oom;
    const sb_broker_sent_t *s = &r->sent[i];
    if (!s->status) {
      e->message_id = (char *)s->id;
      e->sequence = s->seq;
      e->duplicate = s->duplicate;
    }
    e->code = (int32_t)entry_code(s->status);
    e->error = (char *)entry_error(s->status, false);
    m.results[m.n_results++] = e;
  }
  bapi_pack(op, &m.base);
  return;
oom:
  bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
}

static void build_receive(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__ReceiveMessagesResponse m =
      SWITCHBOARD__BROKER__V1__RECEIVE_MESSAGES_RESPONSE__INIT;
  if (messages_of(op, a, r, &m.messages, &m.n_messages) == 0) bapi_pack(op, &m.base);
}

static void build_peek(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__PeekMessagesResponse m =
      SWITCHBOARD__BROKER__V1__PEEK_MESSAGES_RESPONSE__INIT;
  if (messages_of(op, a, r, &m.messages, &m.n_messages)) return;
  if (r->n) m.next_sequence = r->deliveries[r->n - 1].seq + 1;
  bapi_pack(op, &m.base);
}

/* DeleteMessages and ChangeVisibility: one EntryStatus per receipt handle. */
static void build_statuses(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__DeleteMessagesResponse m =
      SWITCHBOARD__BROKER__V1__DELETE_MESSAGES_RESPONSE__INIT;
  size_t failed = 0;
  for (size_t i = 0; i < r->n; i++)
    failed += r->statuses[i] != 0;
  if (r->n && failed == r->n) {
    int rc = r->statuses[0];
    bapi_fail(op, entry_code(rc), "%s: receipt_handles[0]: %s", op->subject, entry_error(rc, true));
    return;
  }
  m.results = sb_arena_alloc(a, (r->n ? r->n : 1) * sizeof *m.results);
  if (!m.results) goto oom;
  for (size_t i = 0; i < r->n; i++) {
    Switchboard__Broker__V1__EntryStatus *e =
        NEW(a, Switchboard__Broker__V1__EntryStatus, switchboard__broker__v1__entry_status__init);
    if (!e) goto oom;
    e->code = (int32_t)entry_code(r->statuses[i]);
    e->error = (char *)entry_error(r->statuses[i], true);
    m.results[m.n_results++] = e;
  }
  /* ChangeVisibilityResponse has the same single field, so the bytes decode as either. */
  bapi_pack(op, &m.base);
  return;
oom:
  bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
}

static Switchboard__Broker__V1__RedriveTask *task_of(sb_arena_t *a, const sb_move_task_t *t) {
  Switchboard__Broker__V1__RedriveTask *m =
      NEW(a, Switchboard__Broker__V1__RedriveTask, switchboard__broker__v1__redrive_task__init);
  if (!m) return NULL;
  m->handle = (char *)t->handle;
  m->source_queue = (char *)t->source;
  m->destination_queue = (char *)t->destination;
  m->rate = t->rate;
  switch (t->state) {
  case SB_MOVE_RUNNING:
    m->state = SWITCHBOARD__BROKER__V1__REDRIVE_STATE__REDRIVE_STATE_RUNNING;
    break;
  case SB_MOVE_COMPLETED:
    m->state = SWITCHBOARD__BROKER__V1__REDRIVE_STATE__REDRIVE_STATE_COMPLETED;
    break;
  case SB_MOVE_CANCELLED:
    m->state = SWITCHBOARD__BROKER__V1__REDRIVE_STATE__REDRIVE_STATE_CANCELLED;
    break;
  default:
    m->state = SWITCHBOARD__BROKER__V1__REDRIVE_STATE__REDRIVE_STATE_FAILED;
    break;
  }
  m->moved = t->moved;
  m->to_move = t->to_move;
  m->start_time = ts(a, t->started_ms);
  m->failure = (char *)t->failure;
  return m;
}

static void build_task(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__RedriveTask *m = r->n ? task_of(a, &r->tasks[0]) : NULL;
  if (!m) {
    bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  bapi_pack(op, &m->base);
}

static void build_tasks(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__ListRedrivesResponse m =
      SWITCHBOARD__BROKER__V1__LIST_REDRIVES_RESPONSE__INIT;
  m.tasks = sb_arena_alloc(a, (r->n ? r->n : 1) * sizeof *m.tasks);
  if (!m.tasks) goto oom;
  for (size_t i = 0; i < r->n; i++) {
    if (!(m.tasks[i] = task_of(a, &r->tasks[i]))) goto oom;
    m.n_tasks++;
  }
  bapi_pack(op, &m.base);
  return;
oom:
  bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
}

static void build_topic(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  const sb_topic_info_t *t = r->topic;
  Switchboard__Broker__V1__Topic m = SWITCHBOARD__BROKER__V1__TOPIC__INIT;
  m.name = (char *)t->name;
  m.fifo = t->config.fifo;
  KV_MAP(a, Switchboard__Broker__V1__Topic__AttributesEntry,
         switchboard__broker__v1__topic__attributes_entry__init, t->kv, t->n_kv, m.attributes,
         m.n_attributes);
  m.create_time = ts(a, t->created_ms);
  m.subscription_count = t->n_subs;
  m.published = t->published;
  bapi_pack(op, &m.base);
}

static Switchboard__Broker__V1__Subscription *sub_of(sb_arena_t *a, const sb_sub_info_t *s) {
  Switchboard__Broker__V1__Subscription *m =
      NEW(a, Switchboard__Broker__V1__Subscription, switchboard__broker__v1__subscription__init);
  if (!m) return NULL;
  m->id = (char *)s->id;
  m->topic = (char *)(s->topic ? s->topic : "");
  m->queue = (char *)(s->queue ? s->queue : "");
  m->filter_policy = (char *)(s->filter ? s->filter : "");
  m->filter_body = s->filter_body;
  m->binding_key = (char *)(s->binding ? s->binding : "");
  KV_MAP(a, Switchboard__Broker__V1__Subscription__HeadersEntry,
         switchboard__broker__v1__subscription__headers_entry__init, s->headers, s->n_headers,
         m->headers, m->n_headers);
  m->headers_match_any = s->headers_any;
  m->dead_letter_queue = (char *)(s->dead_letter ? s->dead_letter : "");
  KV_MAP(a, Switchboard__Broker__V1__Subscription__AttributesEntry,
         switchboard__broker__v1__subscription__attributes_entry__init, s->kv, s->n_kv,
         m->attributes, m->n_attributes);
  m->delivered = s->delivered;
  m->filtered = s->filtered;
  m->failed = s->failed;
  m->dead_lettered = s->dead_lettered;
  return m;
}

static void build_sub(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__Subscription *m = r->n_subs ? sub_of(a, &r->subs[0]) : NULL;
  if (!m) {
    bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  bapi_pack(op, &m->base);
}

static void build_subs(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__ListSubscriptionsResponse m =
      SWITCHBOARD__BROKER__V1__LIST_SUBSCRIPTIONS_RESPONSE__INIT;
  m.subscriptions = sb_arena_alloc(a, (r->n_subs ? r->n_subs : 1) * sizeof *m.subscriptions);
  if (!m.subscriptions) goto oom;
  for (size_t i = 0; i < r->n_subs; i++) {
    if (!(m.subscriptions[i] = sub_of(a, &r->subs[i]))) goto oom;
    m.n_subscriptions++;
  }
  bapi_pack(op, &m.base);
  return;
oom:
  bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
}

static void build_publish(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  (void)a;
  Switchboard__Broker__V1__PublishResponse m = SWITCHBOARD__BROKER__V1__PUBLISH_RESPONSE__INIT;
  if (r->n) {
    m.message_id = (char *)r->sent[0].id;
    m.error = (char *)entry_error(r->sent[0].status, false);
  }
  m.deliveries = r->count;
  bapi_pack(op, &m.base);
}

/* ---- requests -> engine arguments (loop thread, memory from the call) ---- */

/* Engine kv pairs from a string->string map (entries have key and value). NULL values of
 * header maps mean "present", which "" stands for in the contract. */
#define KV_IN(call, entries, n, empty_is_null, out)                                                \
  do {                                                                                             \
    (out) = NULL;                                                                                  \
    if (!(n)) break;                                                                               \
    sb_broker_kv_t *kv_ = sb_call_alloc((call), (n) * sizeof *kv_);                                \
    if (!kv_) break;                                                                               \
    for (size_t k_ = 0; k_ < (n); k_++) {                                                          \
      kv_[k_].name = (entries)[k_]->key ? (entries)[k_]->key : "";                                 \
      kv_[k_].value = (entries)[k_]->value ? (entries)[k_]->value : "";                            \
      if ((empty_is_null) && !kv_[k_].value[0]) kv_[k_].value = NULL;                              \
    }                                                                                              \
    (out) = kv_;                                                                                   \
  } while (0)

/* Attribute map entries (key, AttributeValue) -> engine attributes; field names the map for
 * violations. Returns 0, or -1 after answering the call. */
#define ATTRS_IN(call, entries, n, field, out)                                                     \
  ({                                                                                               \
    int rc_ = 0;                                                                                   \
    (out) = NULL;                                                                                  \
    if (n) {                                                                                       \
      sb_broker_attr_t *at_ = sb_call_alloc((call), (n) * sizeof *at_);                            \
      if (!at_) {                                                                                  \
        sb_call_finish((call), SB_CODE_RESOURCE_EXHAUSTED, "out of memory");                       \
        rc_ = -1;                                                                                  \
      }                                                                                            \
      for (size_t k_ = 0; !rc_ && k_ < (n); k_++)                                                  \
        rc_ = attr_in((call), (entries)[k_]->key, (entries)[k_]->value, (field), &at_[k_]);        \
      (out) = at_;                                                                                 \
    }                                                                                              \
    rc_;                                                                                           \
  })

static int attr_in(sb_call_t *call, const char *key,
                   const Switchboard__Broker__V1__AttributeValue *v, const char *field,
                   sb_broker_attr_t *out) {
  char path[128];
  snprintf(path, sizeof path, "%s[\"%.60s\"]", field, key ? key : "");
  if (!key || !key[0] || key[0] == ':' || strlen(key) > 255)
    return bad_field(call, path, "attribute names are 1..255 bytes and do not start with ':'");
  bool binary = v && v->binary_value.len > 0;
  if (binary && v->string_value && v->string_value[0])
    return bad_field(call, path, "set string_value or binary_value, not both");
  const char *type = v && v->type && v->type[0] ? v->type : binary ? "Binary" : "String";
  *out = (sb_broker_attr_t){
      .name = key, .name_len = strlen(key), .type = type, .type_len = strlen(type)};
  if (binary) {
    out->value = v->binary_value.data;
    out->value_len = v->binary_value.len;
  } else {
    out->value = v && v->string_value ? v->string_value : "";
    out->value_len = strlen(out->value);
  }
  return 0;
}

/* ---- handlers ---- */

typedef Switchboard__Broker__V1__QueueConfig QueueConfig;

static void create_queue(sb_call_t *call, const Switchboard__Broker__V1__CreateQueueRequest *req,
                         Switchboard__Broker__V1__Queue *res, void *ud) {
  if (check_name(call, "name", req->name)) return;
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  const QueueConfig *q = req->config;
  if (q) {
    if (q->visibility_timeout_ms) {
      if (q->visibility_timeout_ms->value > SB_BROKER_VISIBILITY_MAX_MS) {
        bad_field(call, "config.visibility_timeout_ms", "must be at most 43200000 (12 hours)");
        return;
      }
      c.visibility_ms = q->visibility_timeout_ms->value;
    }
    c.delay_ms = q->delay_ms;
    if (q->retention_ms) c.retention_ms = q->retention_ms;
    if (q->max_message_bytes) c.max_message_bytes = q->max_message_bytes;
    c.receive_wait_ms = q->receive_wait_ms;
    c.max_messages = q->max_messages;
    c.max_receive_count = q->max_receive_count;
    if (q->dead_letter_queue && q->dead_letter_queue[0]) {
      if (check_name(call, "config.dead_letter_queue", q->dead_letter_queue)) return;
      snprintf(c.dead_letter, sizeof c.dead_letter, "%s", q->dead_letter_queue);
    }
    c.fifo = q->fifo;
    c.content_dedup = q->content_based_dedup;
    c.fsync = q->fsync == SWITCHBOARD__BROKER__V1__FSYNC__FSYNC_INTERVAL ? SB_BROKER_FSYNC_INTERVAL
              : q->fsync == SWITCHBOARD__BROKER__V1__FSYNC__FSYNC_NEVER  ? SB_BROKER_FSYNC_NEVER
                                                                         : SB_BROKER_FSYNC_ALWAYS;
    c.fsync_interval_ms = q->fsync_interval_ms;
  }
  if (c.fifo && !ends_with_fifo(req->name)) {
    bad_field(call, "config.fifo", "a FIFO queue's name ends in .fifo");
    return;
  }
  c.fifo = ends_with_fifo(req->name);
  if (c.max_receive_count && !c.dead_letter[0]) {
    bad_field(call, "config.max_receive_count", "needs a dead_letter_queue");
    return;
  }
  sb_broker_kv_t *kv;
  KV_IN(call, req->attributes, req->n_attributes, false, kv);
  if (req->n_attributes && !kv) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  bapi_op_t *op = op_new(call, &res->base, build_queue, "queue '%s'", req->name);
  if (!op) return;
  op->estate_code = SB_CODE_ALREADY_EXISTS;
  op->estate_what = "already exists with another configuration";
  op_started(op, sb_queue_create(ud, req->name, &c, kv, req->n_attributes, op_done, op), "config");
}

static void get_queue(sb_call_t *call, const Switchboard__Broker__V1__GetQueueRequest *req,
                      Switchboard__Broker__V1__Queue *res, void *ud) {
  if (check_name(call, "name", req->name)) return;
  bapi_op_t *op = op_new(call, &res->base, build_queue, "queue '%s'", req->name);
  if (op) op_started(op, sb_queue_get(ud, req->name, op_done, op), "name");
}

static void list_queues(sb_call_t *call, const Switchboard__Broker__V1__ListQueuesRequest *req,
                        Switchboard__Broker__V1__ListQueuesResponse *res, void *ud) {
  size_t max = req->page_size ? req->page_size : BAPI_LIST_DEFAULT;
  bapi_op_t *op = op_new(call, &res->base, build_names, "queues");
  if (op)
    op_started(op,
               sb_queue_list(ud, req->prefix && req->prefix[0] ? req->prefix : NULL,
                             req->page_token && req->page_token[0] ? req->page_token : NULL, max,
                             op_done, op),
               "page_token");
}

static void delete_queue(sb_call_t *call, const Switchboard__Broker__V1__DeleteQueueRequest *req,
                         Google__Protobuf__Empty *res, void *ud) {
  if (check_name(call, "name", req->name)) return;
  bapi_op_t *op = op_new(call, &res->base, NULL, "queue '%s'", req->name);
  if (op) op_started(op, sb_queue_delete(ud, req->name, op_done, op), "name");
}

static void purge_queue(sb_call_t *call, const Switchboard__Broker__V1__PurgeQueueRequest *req,
                        Switchboard__Broker__V1__PurgeQueueResponse *res, void *ud) {
  if (check_name(call, "name", req->name)) return;
  bapi_op_t *op = op_new(call, &res->base, build_purge, "queue '%s'", req->name);
  if (op) op_started(op, sb_queue_purge(ud, req->name, op_done, op), "name");
}

/* The body of a send or publish: the bytes of `body` or of `text`, at most one of them set.
 * Returns 0, or -1 after answering the call. */
static int payload_in(sb_call_t *call, const char *field, const ProtobufCBinaryData *body,
                      const char *text, sb_broker_msg_t *m) {
  if (body->len && text && text[0]) return bad_field(call, field, "set body or text, not both");
  if (body->len) {
    m->body = body->data;
    m->body_len = body->len;
  } else {
    m->body = text ? text : "";
    m->body_len = strlen(m->body);
  }
  return 0;
}

static void send_messages(sb_call_t *call, const Switchboard__Broker__V1__SendMessagesRequest *req,
                          Switchboard__Broker__V1__SendMessagesResponse *res, void *ud) {
  if (check_name(call, "queue", req->queue)) return;
  if (req->n_messages < 1 || req->n_messages > SB_BROKER_BATCH_MAX) {
    bad_field(call, "messages", "1..10 messages per call");
    return;
  }
  sb_broker_msg_t *msgs = sb_call_alloc(call, req->n_messages * sizeof *msgs);
  if (!msgs) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  for (size_t i = 0; i < req->n_messages; i++) {
    const Switchboard__Broker__V1__SendEntry *e = req->messages[i];
    sb_broker_msg_t *m = &msgs[i];
    memset(m, 0, sizeof *m);
    char field[64];
    snprintf(field, sizeof field, "messages[%zu].text", i);
    if (payload_in(call, field, &e->body, e->text, m)) return;
    snprintf(field, sizeof field, "messages[%zu].attributes", i);
    if (ATTRS_IN(call, e->attributes, e->n_attributes, field, m->attrs)) return;
    m->n_attrs = e->n_attributes;
    if (e->group && e->group[0]) m->group = e->group, m->group_len = strlen(e->group);
    if (e->dedup_id && e->dedup_id[0]) m->dedup = e->dedup_id, m->dedup_len = strlen(e->dedup_id);
    m->delay_ms = -1;
    if (e->delay_ms) {
      if (e->delay_ms->value > SB_BROKER_DELAY_MAX_MS) {
        snprintf(field, sizeof field, "messages[%zu].delay_ms", i);
        bad_field(call, field, "must be at most 900000 (15 minutes)");
        return;
      }
      m->delay_ms = (int32_t)e->delay_ms->value;
    }
  }
  bapi_op_t *op = op_new(call, &res->base, build_send, "queue '%s'", req->queue);
  if (op)
    op_started(op, sb_queue_send(ud, req->queue, msgs, req->n_messages, op_done, op), "messages");
}

static void receive_messages(sb_call_t *call,
                             const Switchboard__Broker__V1__ReceiveMessagesRequest *req,
                             Switchboard__Broker__V1__ReceiveMessagesResponse *res, void *ud) {
  if (check_name(call, "queue", req->queue)) return;
  int64_t vis = -1, wait = -1;
  if (req->visibility_timeout_ms) {
    if (req->visibility_timeout_ms->value > SB_BROKER_VISIBILITY_MAX_MS) {
      bad_field(call, "visibility_timeout_ms", "must be at most 43200000 (12 hours)");
      return;
    }
    vis = req->visibility_timeout_ms->value;
  }
  if (req->wait_time_ms) {
    if (req->wait_time_ms->value > SB_BROKER_WAIT_MAX_MS) {
      bad_field(call, "wait_time_ms", "must be at most 20000");
      return;
    }
    wait = req->wait_time_ms->value;
  }
  bapi_op_t *op = op_new(call, &res->base, build_receive, "queue '%s'", req->queue);
  if (op)
    op_started(op,
               sb_queue_receive(ud, req->queue, req->max_messages ? req->max_messages : 1, vis,
                                wait, op_done, op),
               "max_messages");
}

/* Checks the receipt handle list of a delete or visibility change. */
static int check_receipts(sb_call_t *call, char *const *r, size_t n) {
  if (n < 1 || n > SB_BROKER_BATCH_MAX) return bad_field(call, "receipt_handles", "1..10 handles");
  for (size_t i = 0; i < n; i++) {
    uint64_t q, s;
    uint32_t c;
    if (!r[i] || sb_broker_parse_receipt(r[i], &q, &s, &c)) {
      char field[40];
      snprintf(field, sizeof field, "receipt_handles[%zu]", i);
      return bad_field(call, field, "not a receipt handle");
    }
  }
  return 0;
}

static void delete_messages(sb_call_t *call,
                            const Switchboard__Broker__V1__DeleteMessagesRequest *req,
                            Switchboard__Broker__V1__DeleteMessagesResponse *res, void *ud) {
  if (check_name(call, "queue", req->queue) ||
      check_receipts(call, req->receipt_handles, req->n_receipt_handles))
    return;
  bapi_op_t *op = op_new(call, &res->base, build_statuses, "queue '%s'", req->queue);
  if (op)
    op_started(op,
               sb_queue_delete_msgs(ud, req->queue, (const char *const *)req->receipt_handles,
                                    req->n_receipt_handles, op_done, op),
               "receipt_handles");
}

static void change_visibility(sb_call_t *call,
                              const Switchboard__Broker__V1__ChangeVisibilityRequest *req,
                              Switchboard__Broker__V1__ChangeVisibilityResponse *res, void *ud) {
  if (check_name(call, "queue", req->queue) ||
      check_receipts(call, req->receipt_handles, req->n_receipt_handles))
    return;
  bapi_op_t *op = op_new(call, &res->base, build_statuses, "queue '%s'", req->queue);
  if (op)
    op_started(op,
               sb_queue_change_visibility(ud, req->queue, (const char *const *)req->receipt_handles,
                                          req->n_receipt_handles, req->visibility_timeout_ms,
                                          op_done, op),
               "visibility_timeout_ms");
}

static void peek_messages(sb_call_t *call, const Switchboard__Broker__V1__PeekMessagesRequest *req,
                          Switchboard__Broker__V1__PeekMessagesResponse *res, void *ud) {
  if (check_name(call, "queue", req->queue)) return;
  const char *name = req->attribute_name && req->attribute_name[0] ? req->attribute_name : NULL;
  const char *value =
      name && req->attribute_value && req->attribute_value[0] ? req->attribute_value : NULL;
  if (!name && req->attribute_value && req->attribute_value[0]) {
    bad_field(call, "attribute_value", "needs attribute_name");
    return;
  }
  bapi_op_t *op = op_new(call, &res->base, build_peek, "queue '%s'", req->queue);
  if (op)
    op_started(op,
               sb_queue_peek(ud, req->queue, req->from_sequence,
                             req->max_messages ? req->max_messages : BAPI_PEEK_DEFAULT, name, value,
                             op_done, op),
               "attribute_name");
}

static void start_redrive(sb_call_t *call, const Switchboard__Broker__V1__StartRedriveRequest *req,
                          Switchboard__Broker__V1__RedriveTask *res, void *ud) {
  if (check_name(call, "source_queue", req->source_queue)) return;
  const char *dest =
      req->destination_queue && req->destination_queue[0] ? req->destination_queue : NULL;
  if (dest && check_name(call, "destination_queue", dest)) return;
  bapi_op_t *op = op_new(call, &res->base, build_task, "queue '%s'%s%s%s", req->source_queue,
                         dest ? " or destination '" : "", dest ? dest : "", dest ? "'" : "");
  if (!op) return;
  op->estate_code = SB_CODE_ALREADY_EXISTS;
  op->estate_what = "already has a running redrive";
  op_started(op, sb_move_start(ud, req->source_queue, dest, req->rate, op_done, op), "rate");
}

static void list_redrives(sb_call_t *call, const Switchboard__Broker__V1__ListRedrivesRequest *req,
                          Switchboard__Broker__V1__ListRedrivesResponse *res, void *ud) {
  const char *src = req->source_queue && req->source_queue[0] ? req->source_queue : NULL;
  if (src && check_name(call, "source_queue", src)) return;
  bapi_op_t *op = op_new(call, &res->base, build_tasks, "redrives of '%s'", src ? src : "*");
  if (op)
    op_started(
        op,
        sb_move_list(ud, src, req->max_results ? req->max_results : BAPI_LIST_DEFAULT, op_done, op),
        "max_results");
}

static void cancel_redrive(sb_call_t *call,
                           const Switchboard__Broker__V1__CancelRedriveRequest *req,
                           Switchboard__Broker__V1__RedriveTask *res, void *ud) {
  bapi_op_t *op = op_new(call, &res->base, build_task, "redrive task '%s'", req->handle);
  if (!op) return;
  op->estate_what = "is not running";
  op_started(op, sb_move_cancel(ud, req->handle, op_done, op), "handle");
}

static void
list_dead_letter_sources(sb_call_t *call,
                         const Switchboard__Broker__V1__ListDeadLetterSourcesRequest *req,
                         Switchboard__Broker__V1__ListDeadLetterSourcesResponse *res, void *ud) {
  if (check_name(call, "queue", req->queue)) return;
  bapi_op_t *op = op_new(call, &res->base, build_dlq_sources, "queue '%s'", req->queue);
  if (op) op_started(op, sb_queue_dlq_sources(ud, req->queue, op_done, op), "queue");
}

static void create_topic(sb_call_t *call, const Switchboard__Broker__V1__CreateTopicRequest *req,
                         Switchboard__Broker__V1__Topic *res, void *ud) {
  if (check_name(call, "name", req->name)) return;
  if (req->fifo && !ends_with_fifo(req->name)) {
    bad_field(call, "fifo", "a FIFO topic's name ends in .fifo");
    return;
  }
  sb_topic_config_t c = {.fifo = ends_with_fifo(req->name)};
  sb_broker_kv_t *kv;
  KV_IN(call, req->attributes, req->n_attributes, false, kv);
  if (req->n_attributes && !kv) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  bapi_op_t *op = op_new(call, &res->base, build_topic, "topic '%s'", req->name);
  if (!op) return;
  op->estate_code = SB_CODE_ALREADY_EXISTS;
  op->estate_what = "already exists with another configuration";
  op_started(op, sb_topic_create(ud, req->name, &c, kv, req->n_attributes, op_done, op),
             "attributes");
}

static void get_topic(sb_call_t *call, const Switchboard__Broker__V1__GetTopicRequest *req,
                      Switchboard__Broker__V1__Topic *res, void *ud) {
  if (check_name(call, "name", req->name)) return;
  bapi_op_t *op = op_new(call, &res->base, build_topic, "topic '%s'", req->name);
  if (op) op_started(op, sb_topic_get(ud, req->name, op_done, op), "name");
}

static void list_topics(sb_call_t *call, const Switchboard__Broker__V1__ListTopicsRequest *req,
                        Switchboard__Broker__V1__ListTopicsResponse *res, void *ud) {
  size_t max = req->page_size ? req->page_size : BAPI_LIST_DEFAULT;
  bapi_op_t *op = op_new(call, &res->base, build_topics, "topics");
  if (op)
    op_started(op,
               sb_topic_list(ud, req->prefix && req->prefix[0] ? req->prefix : NULL,
                             req->page_token && req->page_token[0] ? req->page_token : NULL, max,
                             op_done, op),
               "page_token");
}

static void delete_topic(sb_call_t *call, const Switchboard__Broker__V1__DeleteTopicRequest *req,
                         Google__Protobuf__Empty *res, void *ud) {
  if (check_name(call, "name", req->name)) return;
  bapi_op_t *op = op_new(call, &res->base, NULL, "topic '%s'", req->name);
  if (op) op_started(op, sb_topic_delete(ud, req->name, op_done, op), "name");
}

static void subscribe(sb_call_t *call, const Switchboard__Broker__V1__SubscribeRequest *req,
                      Switchboard__Broker__V1__Subscription *res, void *ud) {
  if (check_name(call, "topic", req->topic) || check_name(call, "queue", req->queue)) return;
  sb_sub_config_t c;
  memset(&c, 0, sizeof c);
  snprintf(c.queue, sizeof c.queue, "%s", req->queue);
  if (req->filter_policy && req->filter_policy[0]) {
    const char *why = "invalid filter policy";
    if (sb_topic_check_filter(req->filter_policy, strlen(req->filter_policy), &why)) {
      bad_field(call, "filter_policy", why);
      return;
    }
    c.filter = req->filter_policy;
  }
  c.filter_body = req->filter_body;
  c.binding = req->binding_key && req->binding_key[0] ? req->binding_key : NULL;
  sb_broker_kv_t *headers, *kv;
  KV_IN(call, req->headers, req->n_headers, true, headers);
  KV_IN(call, req->attributes, req->n_attributes, false, kv);
  if ((req->n_headers && !headers) || (req->n_attributes && !kv)) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  c.headers = headers;
  c.n_headers = req->n_headers;
  c.headers_any = req->headers_match_any;
  if (req->dead_letter_queue && req->dead_letter_queue[0]) {
    if (check_name(call, "dead_letter_queue", req->dead_letter_queue)) return;
    snprintf(c.dead_letter, sizeof c.dead_letter, "%s", req->dead_letter_queue);
  }
  c.kv = kv;
  c.n_kv = req->n_attributes;
  bapi_op_t *op =
      op_new(call, &res->base, build_sub, "topic '%s' or queue '%s'", req->topic, req->queue);
  if (op) op_started(op, sb_topic_subscribe(ud, req->topic, &c, op_done, op), "binding_key");
}

static void list_subscriptions(sb_call_t *call,
                               const Switchboard__Broker__V1__ListSubscriptionsRequest *req,
                               Switchboard__Broker__V1__ListSubscriptionsResponse *res, void *ud) {
  const char *topic = req->topic && req->topic[0] ? req->topic : NULL;
  if (topic && check_name(call, "topic", topic)) return;
  bapi_op_t *op = op_new(call, &res->base, build_subs, "topic '%s'", topic ? topic : "*");
  if (op) op_started(op, sb_topic_subs(ud, topic, NULL, op_done, op), "topic");
}

static void unsubscribe(sb_call_t *call, const Switchboard__Broker__V1__UnsubscribeRequest *req,
                        Google__Protobuf__Empty *res, void *ud) {
  bapi_op_t *op = op_new(call, &res->base, NULL, "subscription '%s'", req->id);
  if (op) op_started(op, sb_topic_unsubscribe(ud, req->id, op_done, op), "id");
}

static void publish(sb_call_t *call, const Switchboard__Broker__V1__PublishRequest *req,
                    Switchboard__Broker__V1__PublishResponse *res, void *ud) {
  if (check_name(call, "topic", req->topic)) return;
  sb_broker_msg_t m;
  memset(&m, 0, sizeof m);
  if (payload_in(call, "text", &req->body, req->text, &m)) return;
  if (ATTRS_IN(call, req->attributes, req->n_attributes, "attributes", m.attrs)) return;
  m.n_attrs = req->n_attributes;
  if (req->group && req->group[0]) m.group = req->group, m.group_len = strlen(req->group);
  if (req->dedup_id && req->dedup_id[0])
    m.dedup = req->dedup_id, m.dedup_len = strlen(req->dedup_id);
  m.delay_ms = -1;
  bapi_op_t *op = op_new(call, &res->base, build_publish, "topic '%s'", req->topic);
  if (op)
    op_started(op,
               sb_topic_publish(ud, req->topic, &m,
                                req->routing_key && req->routing_key[0] ? req->routing_key : NULL,
                                NULL, 0, op_done, op),
               "routing_key");
}

static const Switchboard__Broker__V1__BrokerService_Handlers handlers = {
    .create_queue = create_queue,
    .get_queue = get_queue,
    .list_queues = list_queues,
    .delete_queue = delete_queue,
    .purge_queue = purge_queue,
    .send_messages = send_messages,
    .receive_messages = receive_messages,
    .delete_messages = delete_messages,
    .change_visibility = change_visibility,
    .peek_messages = peek_messages,
    .start_redrive = start_redrive,
    .list_redrives = list_redrives,
    .cancel_redrive = cancel_redrive,
    .list_dead_letter_sources = list_dead_letter_sources,
    .create_topic = create_topic,
    .get_topic = get_topic,
    .list_topics = list_topics,
    .delete_topic = delete_topic,
    .subscribe = subscribe,
    .list_subscriptions = list_subscriptions,
    .unsubscribe = unsubscribe,
    .publish = publish,
};

int sb_broker_api_register(sb_rpc_t *rpc, sb_broker_t *b) {
  return switchboard__broker__v1__broker_service__register(rpc, &handlers, b);
}
