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
 * Chains. Some calls need an answer of the broker before their operation can start (the
 * stream methods check the partition and the offsets against the stream's bounds first, so a
 * bad one is INVALID_ARGUMENT naming the field rather than a long poll that never ends): the
 * op then has a stage, which op_done runs on the broker thread with the first answer and which
 * starts the next operation with op_done as its callback again; the last one completes the
 * call as above. Stream state may change between the steps (a stream deleted meanwhile answers
 * NOT_FOUND from the second step).
 *
 * Server streams (TailStream, SubscribeChannels) do not use ops: each keeps its own state and
 * uv_async_t on the call's loop for as long as the call runs (see their sections).
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

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "broker.sb.h"
#include "core/arena.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

#define BAPI_LIST_DEFAULT 100u     /* ListQueues/ListTopics/ListRedrives page without a size */
#define BAPI_PEEK_DEFAULT 10u      /* PeekMessages without max_messages */
#define BAPI_SUBJECT_MAX 200u      /* bytes of the text naming what an op is about */
#define BAPI_MESSAGE_MAX 320u      /* bytes of an error message */
#define BAPI_APPEND_MAX 100u       /* records per AppendRecords */
#define BAPI_READ_DEFAULT 100u     /* records of a read, claim or pending list without a max */
#define BAPI_READ_BYTES (1u << 20) /* bytes of a read without max_bytes */
#define BAPI_ACK_MAX 1000u         /* offsets per Ack */
/* How often an open server stream looks whether the broker drains (the server is stopping);
 * a client that goes away is reported by on_cancel. */
#define BAPI_WATCH_MS 1000u
#define BAPI_SUB_NAMES_MAX 100u /* channels, and patterns, per SubscribeChannels */

typedef struct bapi_op bapi_op_t;

/* Builds the response from the engine's result (borrowed for the call) on the broker thread:
 * fills a message in scratch memory from a and hands it to bapi_pack(), or calls bapi_fail(). */
typedef void (*bapi_build_fn)(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a);

/* A step of a chained call, on the broker thread, given the previous operation's result: it
 * starts the next engine operation (whose callback is op_done again) and returns 0, or ends
 * the call: a negative engine code, or 1 after bapi_fail(). */
typedef int (*bapi_stage_fn)(bapi_op_t *op, const sb_broker_result_t *r);

/* Arguments of the stream operations that run as a chain (a check of the stream's partitions
 * and bounds first). Pointers are into the call's memory, which lives until the call is
 * finished, after the chain ended; the broker thread only reads them. */
typedef struct bapi_sargs {
  const char *stream, *group, *consumer;
  uint32_t partition;
  int start;       /* Position of a read */
  uint64_t offset; /* a read's resolved start, or the request's offset */
  int64_t time_ms; /* POSITION_TIME */
  size_t max, max_bytes;
  int64_t wait_ms, min_idle_ms;
  const uint64_t *offsets; /* Ack */
  size_t n_offsets;
  Switchboard__Broker__V1__PartitionOffset **commits; /* CommitOffsets */
  size_t n_commits;
  const sb_broker_msg_t *msgs; /* AppendRecords: one per entry */
  const void *const *keys;
  const size_t *key_lens;
  const int32_t *parts; /* -1: by key */
  const int64_t *stamps;
  size_t n_msgs;
  bapi_stage_fn next; /* after the partition check */
} bapi_sargs_t;

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
  sb_broker_t *b;                 /* the broker, for chained operations */
  bapi_stage_fn stage;            /* the chain's next step, or NULL */
  char field[64];                 /* the field a broker-thread failure names, "" for none */
  bapi_sargs_t sa;                /* chained stream operations */
  void *scratch;                  /* malloc'ed by a step (append results); freed with the op */
  size_t pending;                 /* AppendRecords: appends not answered yet (broker thread) */
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
  free(op->scratch);
  free(op);
}

/* Adds the violation of a failure decided on the broker thread, whose message reads
 * "<field>: <why>"; the violation describes the why. */
static void add_violation(sb_call_t *call, const char *field, const char *message) {
  size_t n = strlen(field);
  if (strncmp(message, field, n) == 0 && message[n] == ':' && message[n + 1] == ' ')
    message += n + 2;
  sb_call_field_violation(call, field, message);
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
  if (code != SB_CODE_OK && op->field[0]) add_violation(op->call, op->field, op->message);
  sb_call_finish(op->call, code, code == SB_CODE_OK ? NULL : op->message);
  uv_close((uv_handle_t *)&op->async, op_closed);
}

/* Broker thread: the engine's callback. */
static void op_done(void *arg, int status, const sb_broker_result_t *r) {
  bapi_op_t *op = arg;
  if (status)
    bapi_map(op, status);
  else if (op->stage) {
    bapi_stage_fn stage = op->stage;
    op->stage = NULL;
    int rc = stage(op, r);
    if (rc == 0) return; /* the next operation runs; its callback is this function */
    if (rc == SB_ESTATE) /* a start refused: the broker is closing */
      bapi_fail(op, SB_CODE_UNAVAILABLE, "the broker is shutting down");
    else if (rc < 0)
      bapi_map(op, rc);
  } else if (op->build) {
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

/* Checks a stream name field; answers the call and returns -1 when it is bad. */
static int check_stream(sb_call_t *call, const char *field, const char *name) {
  if (name && name[0] && sb_broker_check_name(name, false) == 0) return 0;
  return bad_field(call, field, "must be 1..80 characters of [A-Za-z0-9_-]");
}

/* A group or consumer name: 1..64 bytes without '/'. */
static int check_group(sb_call_t *call, const char *field, const char *name) {
  if (name && name[0] && strlen(name) <= SB_STREAM_GROUP_MAX && !strchr(name, '/')) return 0;
  return bad_field(call, field, "must be 1..64 bytes without '/'");
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
  m->stream = (char *)(s->stream ? s->stream : "");
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
  bool to_stream = req->stream && req->stream[0];
  if (check_name(call, "topic", req->topic)) return;
  if (to_stream && req->queue && req->queue[0]) {
    bad_field(call, "stream", "set queue or stream, not both");
    return;
  }
  if (to_stream ? check_stream(call, "stream", req->stream) : check_name(call, "queue", req->queue))
    return;
  sb_sub_config_t c;
  memset(&c, 0, sizeof c);
  if (to_stream)
    snprintf(c.stream, sizeof c.stream, "%s", req->stream);
  else
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
  bapi_op_t *op = op_new(call, &res->base, build_sub, "topic '%s' or %s '%s'", req->topic,
                         to_stream ? "stream" : "queue", to_stream ? req->stream : req->queue);
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

/* ---- streams ---- */

typedef Switchboard__Broker__V1__Record Record;

static sb_broker_fsync_t fsync_in(Switchboard__Broker__V1__Fsync f) {
  return f == SWITCHBOARD__BROKER__V1__FSYNC__FSYNC_INTERVAL ? SB_BROKER_FSYNC_INTERVAL
         : f == SWITCHBOARD__BROKER__V1__FSYNC__FSYNC_NEVER  ? SB_BROKER_FSYNC_NEVER
                                                             : SB_BROKER_FSYNC_ALWAYS;
}

static Switchboard__Broker__V1__Fsync fsync_out(sb_broker_fsync_t f) {
  return f == SB_BROKER_FSYNC_INTERVAL ? SWITCHBOARD__BROKER__V1__FSYNC__FSYNC_INTERVAL
         : f == SB_BROKER_FSYNC_NEVER  ? SWITCHBOARD__BROKER__V1__FSYNC__FSYNC_NEVER
                                       : SWITCHBOARD__BROKER__V1__FSYNC__FSYNC_ALWAYS;
}

/* Sets *bytes or *text from n bytes at p, by the body/text rule. Returns -1 out of memory. */
static int bytes_or_text(sb_arena_t *a, const uint8_t *p, size_t n, ProtobufCBinaryData *bytes,
                         char **text) {
  if (utf8_valid(p, n) && !memchr(p, 0, n)) {
    *text = sb_arena_strndup(a, n ? (const char *)p : "", n);
    return *text ? 0 : -1;
  }
  bytes->data = (uint8_t *)p;
  bytes->len = n;
  return 0;
}

static Record *record_of(sb_arena_t *a, const sb_stream_record_t *rec) {
  Record *m = NEW(a, Record, switchboard__broker__v1__record__init);
  if (!m) return NULL;
  m->partition = rec->partition;
  m->offset = rec->offset;
  m->time = ts(a, rec->timestamp_ms);
  m->deliveries = rec->deliveries;
  if (rec->key_len && bytes_or_text(a, rec->key, rec->key_len, &m->key, &m->key_text)) return NULL;
  if (bytes_or_text(a, rec->value, rec->value_len, &m->value, &m->text)) return NULL;
  if (rec->n_attrs) {
    m->headers = sb_arena_alloc(a, rec->n_attrs * sizeof *m->headers);
    if (!m->headers) return NULL;
    for (size_t k = 0; k < rec->n_attrs; k++) {
      Switchboard__Broker__V1__Record__HeadersEntry *e =
          NEW(a, Switchboard__Broker__V1__Record__HeadersEntry,
              switchboard__broker__v1__record__headers_entry__init);
      if (!e) return NULL;
      e->key = sb_arena_strndup(a, rec->attrs[k].name, rec->attrs[k].name_len);
      e->value = attr_value(a, &rec->attrs[k]);
      if (!e->key || !e->value) return NULL;
      m->headers[m->n_headers++] = e;
    }
  }
  return m;
}

/* r->records -> repeated Record; -1 (after bapi_fail) when out of memory. */
static int records_of(bapi_op_t *op, sb_arena_t *a, const sb_broker_result_t *r, Record ***out,
                      size_t *n_out) {
  *n_out = 0;
  if (!r->n_records) return 0;
  *out = sb_arena_alloc(a, r->n_records * sizeof **out);
  for (size_t i = 0; *out && i < r->n_records; i++) {
    if (!((*out)[i] = record_of(a, &r->records[i]))) break;
    (*n_out)++;
  }
  if (*n_out == r->n_records) return 0;
  bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
  return -1;
}

static void build_stream(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  const sb_stream_info_t *s = r->stream;
  Switchboard__Broker__V1__Stream m = SWITCHBOARD__BROKER__V1__STREAM__INIT;
  Switchboard__Broker__V1__StreamConfig c = SWITCHBOARD__BROKER__V1__STREAM_CONFIG__INIT;
  uint32_t np = s->config.partitions;
  m.name = (char *)s->name;
  c.partitions = np;
  c.retention_ms = s->config.retention_ms;
  c.retention_bytes = s->config.retention_bytes;
  c.max_bytes = s->config.max_bytes;
  c.segment_bytes = s->config.segment_bytes;
  c.fsync = fsync_out(s->config.fsync);
  c.fsync_interval_ms = s->config.fsync_interval_ms;
  m.config = &c;
  m.create_time = ts(a, s->created_ms);
  m.partitions = sb_arena_alloc(a, (np ? np : 1) * sizeof *m.partitions);
  m.groups = sb_arena_alloc(a, (s->n_groups ? s->n_groups : 1) * sizeof *m.groups);
  if (!m.partitions || !m.groups) goto oom;
  for (uint32_t p = 0; p < np; p++) {
    Switchboard__Broker__V1__PartitionInfo *pi = NEW(a, Switchboard__Broker__V1__PartitionInfo,
                                                     switchboard__broker__v1__partition_info__init);
    if (!pi) goto oom;
    pi->partition = p;
    pi->first_offset = s->first[p];
    pi->next_offset = s->next[p];
    m.partitions[m.n_partitions++] = pi;
  }
  for (size_t i = 0; i < s->n_groups; i++) {
    const sb_stream_group_info_t *g = &s->groups[i];
    Switchboard__Broker__V1__ConsumerGroup *cg = NEW(a, Switchboard__Broker__V1__ConsumerGroup,
                                                     switchboard__broker__v1__consumer_group__init);
    if (!cg) goto oom;
    cg->name = (char *)g->name;
    cg->lag = g->lag;
    cg->committed = sb_arena_alloc(a, (np ? np : 1) * sizeof *cg->committed);
    if (!cg->committed) goto oom;
    for (uint32_t p = 0; p < np; p++) {
      if (g->committed[p] == SB_STREAM_NO_OFFSET) continue;
      Switchboard__Broker__V1__PartitionOffset *po =
          NEW(a, Switchboard__Broker__V1__PartitionOffset,
              switchboard__broker__v1__partition_offset__init);
      if (!po) goto oom;
      po->partition = p;
      po->offset = g->committed[p];
      cg->committed[cg->n_committed++] = po;
    }
    m.groups[m.n_groups++] = cg;
  }
  bapi_pack(op, &m.base);
  return;
oom:
  bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
}

static void build_streams(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  (void)a;
  Switchboard__Broker__V1__ListStreamsResponse m =
      SWITCHBOARD__BROKER__V1__LIST_STREAMS_RESPONSE__INIT;
  m.names = (char **)r->names;
  m.n_names = r->n_names;
  m.next_page_token = (char *)(r->next_token ? r->next_token : "");
  bapi_pack(op, &m.base);
}

static void build_read(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__ReadRecordsResponse m =
      SWITCHBOARD__BROKER__V1__READ_RECORDS_RESPONSE__INIT;
  if (records_of(op, a, r, &m.records, &m.n_records)) return;
  m.end_offset = r->count;
  /* An empty read continues where it started (the start is never past the end: checked). */
  m.next_offset = r->n_records               ? r->records[r->n_records - 1].offset + 1
                  : op->sa.offset > r->count ? op->sa.offset
                                             : r->count;
  bapi_pack(op, &m.base);
}

static void build_group_read(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__ReadGroupResponse m = SWITCHBOARD__BROKER__V1__READ_GROUP_RESPONSE__INIT;
  if (records_of(op, a, r, &m.records, &m.n_records) == 0) bapi_pack(op, &m.base);
}

static void build_claim(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__ClaimResponse m = SWITCHBOARD__BROKER__V1__CLAIM_RESPONSE__INIT;
  if (records_of(op, a, r, &m.records, &m.n_records)) return;
  m.next_offset = r->count;
  bapi_pack(op, &m.base);
}

static void build_ack(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  (void)a;
  Switchboard__Broker__V1__AckResponse m = SWITCHBOARD__BROKER__V1__ACK_RESPONSE__INIT;
  m.acknowledged = r->count;
  bapi_pack(op, &m.base);
}

static void build_pending(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__ListPendingResponse m =
      SWITCHBOARD__BROKER__V1__LIST_PENDING_RESPONSE__INIT;
  m.total = r->count;
  m.entries = sb_arena_alloc(a, (r->n_pending ? r->n_pending : 1) * sizeof *m.entries);
  if (!m.entries) goto oom;
  for (size_t i = 0; i < r->n_pending; i++) {
    const sb_stream_pending_t *p = &r->pending[i];
    Switchboard__Broker__V1__PendingEntry *e =
        NEW(a, Switchboard__Broker__V1__PendingEntry, switchboard__broker__v1__pending_entry__init);
    if (!e) goto oom;
    e->partition = p->partition;
    e->offset = p->offset;
    e->consumer = (char *)(p->consumer ? p->consumer : "");
    e->deliveries = p->deliveries;
    e->idle_ms = p->idle_ms > 0 ? (uint64_t)p->idle_ms : 0;
    m.entries[m.n_entries++] = e;
  }
  bapi_pack(op, &m.base);
  return;
oom:
  bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
}

static void build_committed(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  Switchboard__Broker__V1__CommittedOffsets m = SWITCHBOARD__BROKER__V1__COMMITTED_OFFSETS__INIT;
  m.offsets = sb_arena_alloc(a, (r->n_offsets ? r->n_offsets : 1) * sizeof *m.offsets);
  if (!m.offsets) goto oom;
  for (size_t p = 0; p < r->n_offsets; p++) {
    if (r->offsets[p] == SB_STREAM_NO_OFFSET) continue;
    Switchboard__Broker__V1__PartitionOffset *po =
        NEW(a, Switchboard__Broker__V1__PartitionOffset,
            switchboard__broker__v1__partition_offset__init);
    if (!po) goto oom;
    po->partition = (uint32_t)p;
    po->offset = r->offsets[p];
    m.offsets[m.n_offsets++] = po;
  }
  bapi_pack(op, &m.base);
  return;
oom:
  bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
}

/* Ends a chain step with INVALID_ARGUMENT naming `field` (the loop adds the violation). */
static int stage_bad(bapi_op_t *op, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int stage_bad(bapi_op_t *op, const char *field, const char *fmt, ...) {
  char why[BAPI_MESSAGE_MAX - 80];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  snprintf(op->field, sizeof op->field, "%s", field);
  bapi_fail(op, SB_CODE_INVALID_ARGUMENT, "%s: %s", field, why);
  return 1;
}

/* First step of the partition-bound methods, after sb_stream_get: the partition must exist;
 * then sa.next starts the operation proper. */
static int stage_partition(bapi_op_t *op, const sb_broker_result_t *r) {
  const sb_stream_info_t *s = r->stream;
  if (op->sa.partition >= s->config.partitions)
    return stage_bad(op, "partition", "%s has %u partition(s), numbered from 0", op->subject,
                     s->config.partitions);
  return op->sa.next(op, r);
}

/* Starts a chain: sb_stream_get, then stage_partition, then next. */
static void start_checked(bapi_op_t *op, bapi_stage_fn next) {
  op->sa.next = next;
  op->stage = stage_partition;
  op_started(op, sb_stream_get(op->b, op->sa.stream, op_done, op), "stream");
}

static int read_now(bapi_op_t *op) {
  op->build = build_read;
  return sb_stream_read(op->b, op->sa.stream, op->sa.partition, op->sa.offset, op->sa.max,
                        op->sa.max_bytes, op->sa.wait_ms, op_done, op);
}

static int stage_read_at_time(bapi_op_t *op, const sb_broker_result_t *r) {
  op->sa.offset = r->count;
  return read_now(op);
}

static int stage_read(bapi_op_t *op, const sb_broker_result_t *r) {
  uint32_t p = op->sa.partition;
  uint64_t first = r->stream->first[p], next = r->stream->next[p];
  switch (op->sa.start) {
  case SWITCHBOARD__BROKER__V1__POSITION__POSITION_BEGINNING:
    op->sa.offset = first;
    break;
  case SWITCHBOARD__BROKER__V1__POSITION__POSITION_LATEST:
    op->sa.offset = next;
    break;
  case SWITCHBOARD__BROKER__V1__POSITION__POSITION_TIME:
    op->stage = stage_read_at_time;
    return sb_stream_offset_for_time(op->b, op->sa.stream, p, op->sa.time_ms, op_done, op);
  default:
    if (op->sa.offset > next)
      return stage_bad(op, "offset",
                       "%llu is past the end of partition %u (its next offset is %llu)",
                       (unsigned long long)op->sa.offset, p, (unsigned long long)next);
  }
  return read_now(op);
}

static int stage_group_read(bapi_op_t *op, const sb_broker_result_t *r) {
  (void)r;
  op->build = build_group_read;
  return sb_stream_group_read(op->b, op->sa.stream, op->sa.group, op->sa.consumer, op->sa.partition,
                              op->sa.max, op->sa.wait_ms, op_done, op);
}

static int stage_ack(bapi_op_t *op, const sb_broker_result_t *r) {
  (void)r;
  op->build = build_ack;
  return sb_stream_ack(op->b, op->sa.stream, op->sa.group, op->sa.partition, op->sa.offsets,
                       op->sa.n_offsets, op_done, op);
}

static int stage_claim(bapi_op_t *op, const sb_broker_result_t *r) {
  (void)r;
  op->build = build_claim;
  return sb_stream_claim(op->b, op->sa.stream, op->sa.group, op->sa.consumer, op->sa.partition,
                         op->sa.min_idle_ms, op->sa.offset, op->sa.max, op_done, op);
}

static int stage_pending(bapi_op_t *op, const sb_broker_result_t *r) {
  (void)r;
  op->build = build_pending;
  return sb_stream_pending(op->b, op->sa.stream, op->sa.group, op->sa.partition, op->sa.max,
                           op_done, op);
}

static int stage_committed(bapi_op_t *op, const sb_broker_result_t *r) {
  (void)r;
  op->build = build_committed;
  return sb_stream_committed(op->b, op->sa.stream, op->sa.group, op_done, op);
}

/* CommitOffsets after sb_stream_get: every partition exists, appears once, and its offset is
 * not past its end; then the commit, then the committed offsets as the answer. */
static int stage_commit(bapi_op_t *op, const sb_broker_result_t *r) {
  const sb_stream_info_t *s = r->stream;
  uint32_t np = s->config.partitions, top = 0;
  uint64_t *offs = malloc(np * sizeof *offs);
  if (!offs) return SB_ENOMEM;
  for (uint32_t p = 0; p < np; p++)
    offs[p] = SB_STREAM_NO_OFFSET;
  for (size_t i = 0; i < op->sa.n_commits; i++) {
    const Switchboard__Broker__V1__PartitionOffset *c = op->sa.commits[i];
    char field[48];
    int bad = 0;
    if (c->partition >= np) {
      snprintf(field, sizeof field, "offsets[%zu].partition", i);
      bad = stage_bad(op, field, "%s has %u partition(s)", op->subject, np);
    } else if (offs[c->partition] != SB_STREAM_NO_OFFSET) {
      snprintf(field, sizeof field, "offsets[%zu].partition", i);
      bad = stage_bad(op, field, "partition %u is listed twice", c->partition);
    } else if (c->offset > s->next[c->partition]) {
      snprintf(field, sizeof field, "offsets[%zu].offset", i);
      bad = stage_bad(op, field, "%llu is past the end of partition %u (its next offset is %llu)",
                      (unsigned long long)c->offset, c->partition,
                      (unsigned long long)s->next[c->partition]);
    }
    if (bad) {
      free(offs);
      return bad;
    }
    offs[c->partition] = c->offset;
    if (c->partition + 1 > top) top = c->partition + 1;
  }
  op->stage = stage_committed;
  /* The engine copies the offsets before returning. */
  int rc = sb_stream_commit(op->b, op->sa.stream, op->sa.group, offs, top, op_done, op);
  free(offs);
  return rc;
}

/* AppendRecords: results per entry, filled by append_done on the broker thread. */
typedef struct bapi_appended {
  bapi_op_t *op;
  int status;
  uint32_t partition;
  uint64_t offset;
  int64_t timestamp_ms;
} bapi_appended_t;

static void build_append(bapi_op_t *op) {
  bapi_appended_t *res = op->scratch;
  size_t n = op->sa.n_msgs, failed = 0;
  for (size_t i = 0; i < n; i++)
    failed += res[i].status != 0;
  if (failed == n) {
    if (res[0].status == SB_EINVAL)
      bapi_fail(op, SB_CODE_INVALID_ARGUMENT, "%s: records[0] is not a valid record", op->subject);
    else
      bapi_map(op, res[0].status);
    return;
  }
  sb_arena_t a;
  sb_arena_init(&a);
  Switchboard__Broker__V1__AppendRecordsResponse m =
      SWITCHBOARD__BROKER__V1__APPEND_RECORDS_RESPONSE__INIT;
  m.results = sb_arena_alloc(&a, n * sizeof *m.results);
  for (size_t i = 0; m.results && i < n; i++) {
    Switchboard__Broker__V1__AppendResult *e = NEW(&a, Switchboard__Broker__V1__AppendResult,
                                                   switchboard__broker__v1__append_result__init);
    if (!e) break;
    if (!res[i].status) {
      e->partition = res[i].partition;
      e->offset = res[i].offset;
      e->time = ts(&a, res[i].timestamp_ms);
    }
    e->code = (int32_t)entry_code(res[i].status);
    e->error = (char *)(res[i].status == SB_ELIMIT ? "the partition is at its size limit"
                                                   : entry_error(res[i].status, false));
    m.results[m.n_results++] = e;
  }
  if (m.n_results == n)
    bapi_pack(op, &m.base);
  else
    bapi_fail(op, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
  sb_arena_free(&a);
}

static void append_done(void *arg, int status, const sb_broker_result_t *r) {
  bapi_appended_t *e = arg;
  bapi_op_t *op = e->op;
  e->status = status;
  if (!status && r->n_records) {
    e->partition = r->records[0].partition;
    e->offset = r->records[0].offset;
    e->timestamp_ms = r->records[0].timestamp_ms;
  }
  if (--op->pending) return;
  build_append(op);
  uv_async_send(&op->async);
}

/* After sb_stream_get: explicit partitions must exist; then every append is started (they run
 * in order), and the last to answer completes the call. */
static int stage_append(bapi_op_t *op, const sb_broker_result_t *r) {
  uint32_t np = r->stream->config.partitions;
  for (size_t i = 0; i < op->sa.n_msgs; i++)
    if (op->sa.parts[i] >= 0 && (uint32_t)op->sa.parts[i] >= np) {
      char field[48];
      snprintf(field, sizeof field, "records[%zu].partition", i);
      return stage_bad(op, field, "%s has %u partition(s), numbered from 0", op->subject, np);
    }
  bapi_appended_t *res = calloc(op->sa.n_msgs, sizeof *res);
  if (!res) return SB_ENOMEM;
  op->scratch = res;
  /* Callbacks run on this thread, so none runs before this loop ends. */
  op->pending = 1;
  for (size_t i = 0; i < op->sa.n_msgs; i++) {
    res[i].op = op;
    int rc =
        sb_stream_append(op->b, op->sa.stream, op->sa.parts[i], op->sa.keys[i], op->sa.key_lens[i],
                         &op->sa.msgs[i], op->sa.stamps[i], append_done, &res[i]);
    if (rc)
      res[i].status = rc;
    else
      op->pending++;
  }
  if (--op->pending) return 0;
  build_append(op); /* nothing was started */
  return 1;
}

static void create_stream(sb_call_t *call, const Switchboard__Broker__V1__CreateStreamRequest *req,
                          Switchboard__Broker__V1__Stream *res, void *ud) {
  if (check_stream(call, "name", req->name)) return;
  sb_stream_config_t c;
  sb_stream_config_default(&c);
  const Switchboard__Broker__V1__StreamConfig *q = req->config;
  if (q) {
    if (q->partitions > SB_STREAM_PARTITIONS_MAX) {
      bad_field(call, "config.partitions", "at most 256");
      return;
    }
    if (q->partitions) c.partitions = q->partitions;
    c.retention_ms = q->retention_ms;
    c.retention_bytes = q->retention_bytes;
    c.max_bytes = q->max_bytes;
    c.segment_bytes = q->segment_bytes;
    c.fsync = fsync_in(q->fsync);
    c.fsync_interval_ms = q->fsync_interval_ms;
  }
  bapi_op_t *op = op_new(call, &res->base, build_stream, "stream '%s'", req->name);
  if (!op) return;
  op->estate_code = SB_CODE_ALREADY_EXISTS;
  op->estate_what = "already exists with another configuration";
  op_started(op, sb_stream_create(ud, req->name, &c, op_done, op), "config.segment_bytes");
}

static void get_stream(sb_call_t *call, const Switchboard__Broker__V1__GetStreamRequest *req,
                       Switchboard__Broker__V1__Stream *res, void *ud) {
  if (check_stream(call, "name", req->name)) return;
  bapi_op_t *op = op_new(call, &res->base, build_stream, "stream '%s'", req->name);
  if (op) op_started(op, sb_stream_get(ud, req->name, op_done, op), "name");
}

static void list_streams(sb_call_t *call, const Switchboard__Broker__V1__ListStreamsRequest *req,
                         Switchboard__Broker__V1__ListStreamsResponse *res, void *ud) {
  size_t max = req->page_size ? req->page_size : BAPI_LIST_DEFAULT;
  bapi_op_t *op = op_new(call, &res->base, build_streams, "streams");
  if (op)
    op_started(op,
               sb_stream_list(ud, req->prefix && req->prefix[0] ? req->prefix : NULL,
                              req->page_token && req->page_token[0] ? req->page_token : NULL, max,
                              op_done, op),
               "page_token");
}

static void delete_stream(sb_call_t *call, const Switchboard__Broker__V1__DeleteStreamRequest *req,
                          Google__Protobuf__Empty *res, void *ud) {
  if (check_stream(call, "name", req->name)) return;
  bapi_op_t *op = op_new(call, &res->base, NULL, "stream '%s'", req->name);
  if (op) op_started(op, sb_stream_delete(ud, req->name, op_done, op), "name");
}

static void append_records(sb_call_t *call,
                           const Switchboard__Broker__V1__AppendRecordsRequest *req,
                           Switchboard__Broker__V1__AppendRecordsResponse *res, void *ud) {
  if (check_stream(call, "stream", req->stream)) return;
  size_t n = req->n_records;
  if (n < 1 || n > BAPI_APPEND_MAX) {
    bad_field(call, "records", "1..100 records per call");
    return;
  }
  sb_broker_msg_t *msgs = sb_call_alloc(call, n * sizeof *msgs);
  const void **keys = sb_call_alloc(call, n * sizeof *keys);
  size_t *key_lens = sb_call_alloc(call, n * sizeof *key_lens);
  int32_t *parts = sb_call_alloc(call, n * sizeof *parts);
  int64_t *stamps = sb_call_alloc(call, n * sizeof *stamps);
  if (!msgs || !keys || !key_lens || !parts || !stamps) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const Switchboard__Broker__V1__AppendEntry *e = req->records[i];
    char field[64];
    memset(&msgs[i], 0, sizeof msgs[i]);
    snprintf(field, sizeof field, "records[%zu].text", i);
    if (payload_in(call, field, &e->value, e->text, &msgs[i])) return;
    snprintf(field, sizeof field, "records[%zu].headers", i);
    if (ATTRS_IN(call, e->headers, e->n_headers, field, msgs[i].attrs)) return;
    msgs[i].n_attrs = e->n_headers;
    msgs[i].delay_ms = -1;
    if (e->key.len && e->key_text && e->key_text[0]) {
      snprintf(field, sizeof field, "records[%zu].key_text", i);
      bad_field(call, field, "set key or key_text, not both");
      return;
    }
    keys[i] = e->key.len ? (const void *)e->key.data : (const void *)e->key_text;
    key_lens[i] = e->key.len ? e->key.len : e->key_text ? strlen(e->key_text) : 0;
    if (key_lens[i] > SB_STREAM_KEY_MAX) {
      snprintf(field, sizeof field, "records[%zu].key", i);
      bad_field(call, field, "at most 4096 bytes");
      return;
    }
    if (!key_lens[i]) keys[i] = NULL;
    parts[i] = -1;
    if (e->partition) {
      if (e->partition->value >= SB_STREAM_PARTITIONS_MAX) {
        snprintf(field, sizeof field, "records[%zu].partition", i);
        bad_field(call, field, "at most 255");
        return;
      }
      parts[i] = (int32_t)e->partition->value;
    }
    stamps[i] = e->timestamp_ms;
  }
  bapi_op_t *op = op_new(call, &res->base, NULL, "stream '%s'", req->stream);
  if (!op) return;
  op->b = ud;
  op->sa.stream = req->stream;
  op->sa.msgs = msgs;
  op->sa.keys = keys;
  op->sa.key_lens = key_lens;
  op->sa.parts = parts;
  op->sa.stamps = stamps;
  op->sa.n_msgs = n;
  op->stage = stage_append;
  op_started(op, sb_stream_get(ud, req->stream, op_done, op), "stream");
}

static void read_records(sb_call_t *call, const Switchboard__Broker__V1__ReadRecordsRequest *req,
                         Switchboard__Broker__V1__ReadRecordsResponse *res, void *ud) {
  if (check_stream(call, "stream", req->stream)) return;
  if (req->wait_time_ms > SB_BROKER_WAIT_MAX_MS) {
    bad_field(call, "wait_time_ms", "must be at most 20000");
    return;
  }
  bapi_op_t *op = op_new(call, &res->base, NULL, "stream '%s'", req->stream);
  if (!op) return;
  op->b = ud;
  op->sa.stream = req->stream;
  op->sa.partition = req->partition;
  op->sa.start = req->start;
  op->sa.offset = req->offset;
  op->sa.time_ms = req->time_ms;
  op->sa.max = req->max_records ? req->max_records : BAPI_READ_DEFAULT;
  op->sa.max_bytes = req->max_bytes ? req->max_bytes : BAPI_READ_BYTES;
  op->sa.wait_ms = req->wait_time_ms;
  start_checked(op, stage_read);
}

static void commit_offsets(sb_call_t *call,
                           const Switchboard__Broker__V1__CommitOffsetsRequest *req,
                           Switchboard__Broker__V1__CommittedOffsets *res, void *ud) {
  if (check_stream(call, "stream", req->stream) || check_group(call, "group", req->group)) return;
  if (req->n_offsets < 1) {
    bad_field(call, "offsets", "at least one partition's offset");
    return;
  }
  bapi_op_t *op = op_new(call, &res->base, NULL, "stream '%s'", req->stream);
  if (!op) return;
  op->b = ud;
  op->sa.stream = req->stream;
  op->sa.group = req->group;
  op->sa.commits = req->offsets;
  op->sa.n_commits = req->n_offsets;
  op->stage = stage_commit;
  op_started(op, sb_stream_get(ud, req->stream, op_done, op), "stream");
}

static void get_committed_offsets(sb_call_t *call,
                                  const Switchboard__Broker__V1__GetCommittedOffsetsRequest *req,
                                  Switchboard__Broker__V1__CommittedOffsets *res, void *ud) {
  if (check_stream(call, "stream", req->stream) || check_group(call, "group", req->group)) return;
  bapi_op_t *op = op_new(call, &res->base, build_committed, "stream '%s'", req->stream);
  if (op) op_started(op, sb_stream_committed(ud, req->stream, req->group, op_done, op), "group");
}

/* The common part of the group methods: names checked, op created with its arguments. */
static bapi_op_t *group_op(sb_call_t *call, ProtobufCMessage *res, sb_broker_t *b,
                           const char *stream, const char *group, const char *consumer,
                           uint32_t partition) {
  if (check_stream(call, "stream", stream) || check_group(call, "group", group) ||
      (consumer && check_group(call, "consumer", consumer)))
    return NULL;
  bapi_op_t *op = op_new(call, res, NULL, "stream '%s'", stream);
  if (!op) return NULL;
  op->b = b;
  op->sa.stream = stream;
  op->sa.group = group;
  op->sa.consumer = consumer;
  op->sa.partition = partition;
  return op;
}

static void read_group(sb_call_t *call, const Switchboard__Broker__V1__ReadGroupRequest *req,
                       Switchboard__Broker__V1__ReadGroupResponse *res, void *ud) {
  if (req->wait_time_ms > SB_BROKER_WAIT_MAX_MS) {
    bad_field(call, "wait_time_ms", "must be at most 20000");
    return;
  }
  bapi_op_t *op = group_op(call, &res->base, ud, req->stream, req->group,
                           req->consumer ? req->consumer : "", req->partition);
  if (!op) return;
  op->sa.max = req->max_records ? req->max_records : BAPI_READ_DEFAULT;
  op->sa.wait_ms = req->wait_time_ms;
  start_checked(op, stage_group_read);
}

static void ack(sb_call_t *call, const Switchboard__Broker__V1__AckRequest *req,
                Switchboard__Broker__V1__AckResponse *res, void *ud) {
  if (req->n_offsets < 1 || req->n_offsets > BAPI_ACK_MAX) {
    bad_field(call, "offsets", "1..1000 offsets");
    return;
  }
  bapi_op_t *op = group_op(call, &res->base, ud, req->stream, req->group, NULL, req->partition);
  if (!op) return;
  op->sa.offsets = req->offsets;
  op->sa.n_offsets = req->n_offsets;
  start_checked(op, stage_ack);
}

static void claim(sb_call_t *call, const Switchboard__Broker__V1__ClaimRequest *req,
                  Switchboard__Broker__V1__ClaimResponse *res, void *ud) {
  if (req->min_idle_ms > INT64_MAX) {
    bad_field(call, "min_idle_ms", "too large");
    return;
  }
  bapi_op_t *op = group_op(call, &res->base, ud, req->stream, req->group,
                           req->consumer ? req->consumer : "", req->partition);
  if (!op) return;
  op->sa.min_idle_ms = (int64_t)req->min_idle_ms;
  op->sa.offset = req->start_offset;
  op->sa.max = req->max_records ? req->max_records : BAPI_READ_DEFAULT;
  start_checked(op, stage_claim);
}

static void list_pending(sb_call_t *call, const Switchboard__Broker__V1__ListPendingRequest *req,
                         Switchboard__Broker__V1__ListPendingResponse *res, void *ud) {
  bapi_op_t *op = group_op(call, &res->base, ud, req->stream, req->group, NULL, req->partition);
  if (!op) return;
  op->sa.max = req->max_entries ? req->max_entries : BAPI_READ_DEFAULT;
  start_checked(op, stage_pending);
}

/* ---- TailStream ----
 *
 * A tail follows partitions with one long-polling read in flight per partition. Its state
 * lives on the call's loop; the broker thread hands results back as batches (a serialized
 * ReadRecordsResponse each) through a list guarded by mu and the tail's uv_async_t.
 *
 *   1. setup (broker thread, chained from the handler): sb_stream_get, then the group's
 *      committed offsets, then sb_stream_offset_for_time per partition, as the request needs;
 *      it resolves every followed partition's start offset and hands over one setup batch;
 *   2. the loop starts a read per partition; each answer is sent record by record, and the
 *      partition's next read starts from its next offset — unless the transport is full
 *      (sb_call_send() returned 1): then reads wait for on_writable, so a slow client holds at
 *      most one batch per partition in memory;
 *   3. when the client goes away (on_cancel) or a read fails, the call is finished at once;
 *      the tail is freed once every read in flight has answered (each waits at most
 *      BAPI_TAIL_POLL_MS), so nothing of the broker's points at freed memory. */

#define BAPI_TAIL_POLL_MS 1000          /* long poll of one read; bounds the wait after a cancel */
#define BAPI_TAIL_BATCH 100             /* records per read */
#define BAPI_TAIL_BYTES (256u << 10)    /* about this many bytes per read */
#define BAPI_TAIL_SETUP UINT32_MAX      /* batch index of the setup's result */
#define BAPI_TAIL_UNRESOLVED UINT64_MAX /* a start offset still to look up by time */

typedef struct tail tail_t;

/* The argument of one partition's reads (or of the setup) and the place of its answer: each
 * has at most one operation in flight, so an answer never waits for a free slot. The answer
 * fields are written by the broker thread before the slot is queued and read by the loop
 * after it took it from the queue. */
typedef struct tail_slot {
  tail_t *t;
  uint32_t idx;           /* index into the tail's partitions, or BAPI_TAIL_SETUP */
  struct tail_slot *next; /* in the ready queue */
  int status;             /* engine status of the answer */
  uint8_t *packed;        /* ReadRecordsResponse, malloc'ed; NULL when status != 0 */
  size_t len;             /* bytes at packed */
} tail_slot_t;

struct tail {
  uv_async_t async;   /* on the call's loop; the tail is freed once it and watch closed */
  uv_timer_t watch;   /* looks for a draining broker (BAPI_WATCH_MS) */
  int handles;        /* of async and watch, not closed yet */
  sb_broker_t *b;     /* borrowed */
  sb_call_t *call;    /* loop thread; NULL once finished */
  pthread_mutex_t mu; /* guards ready */
  tail_slot_t *ready, **ready_end; /* answers handed to the loop, oldest first */
  tail_slot_t setup;               /* the setup's answer */
  /* Request, copied by the handler; read-only afterwards. */
  char stream[SB_BROKER_NAME_MAX + 1];
  char group[SB_STREAM_GROUP_MAX + 1];
  int start;
  uint64_t offset;
  int64_t time_ms;
  uint32_t *want; /* requested partitions (malloc'ed), NULL for all */
  size_t n_want;
  /* Resolved by the setup on the broker thread, owned by the loop after the setup batch. */
  uint32_t n_parts;               /* followed partitions */
  uint32_t *parts;                /* their numbers; malloc'ed */
  uint64_t *pos;                  /* next offset to read per followed partition; malloc'ed */
  tail_slot_t *slots;             /* read arguments; malloc'ed */
  int step;                       /* setup: which answer comes next (broker thread) */
  uint32_t time_i;                /* setup: partition looked up by time (broker thread) */
  char field[32];                 /* setup failure: the field to name, "" */
  char message[BAPI_MESSAGE_MAX]; /* setup failure message */
  sb_code_t code;                 /* setup failure code */
  /* Loop thread only. */
  unsigned inflight;  /* engine operations whose batch the loop has not taken yet */
  uint8_t *reading;   /* per followed partition: a read is in flight */
  bool ready_to_read; /* setup done */
  bool blocked;       /* the transport is full: reads wait for on_writable */
};

enum { TAIL_STEP_GET, TAIL_STEP_COMMITTED, TAIL_STEP_TIME };

static void tail_closed(uv_handle_t *h) {
  tail_t *t = h->data;
  if (--t->handles) return;
  pthread_mutex_destroy(&t->mu);
  free(t->want);
  free(t->parts);
  free(t->pos);
  free(t->slots);
  free(t->reading);
  free(t);
}

/* Broker thread: hands an answer to the loop. The send happens under mu, so once the loop
 * took the last answer no uv_async_send() can still be running on the handle it closes. */
static void tail_push(tail_slot_t *sl, int status, uint8_t *packed, size_t len) {
  tail_t *t = sl->t;
  sl->status = status;
  sl->packed = packed;
  sl->len = len;
  sl->next = NULL;
  pthread_mutex_lock(&t->mu);
  *t->ready_end = sl;
  t->ready_end = &sl->next;
  uv_async_send(&t->async);
  pthread_mutex_unlock(&t->mu);
}

static void tail_setup_fail(tail_t *t, sb_code_t code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void tail_setup_fail(tail_t *t, sb_code_t code, const char *field, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->message, sizeof t->message, fmt, ap);
  va_end(ap);
  t->code = code;
  snprintf(t->field, sizeof t->field, "%s", field ? field : "");
}

static void tail_setup_cb(void *arg, int status, const sb_broker_result_t *r);

/* Broker thread: the next time lookup, or the end of the setup. */
static void tail_setup_next(tail_t *t) {
  while (t->time_i < t->n_parts && t->pos[t->time_i] != BAPI_TAIL_UNRESOLVED)
    t->time_i++;
  if (t->time_i < t->n_parts) {
    t->step = TAIL_STEP_TIME;
    int rc = sb_stream_offset_for_time(t->b, t->stream, t->parts[t->time_i], t->time_ms,
                                       tail_setup_cb, t);
    if (!rc) return;
    tail_push(&t->setup, rc, NULL, 0);
    return;
  }
  tail_push(&t->setup, 0, NULL, 0);
}

/* Broker thread: resolves a partition's start from the request's position. */
static uint64_t tail_start_of(const tail_t *t, const sb_stream_info_t *s, uint32_t p, bool group) {
  switch (t->start) {
  case SWITCHBOARD__BROKER__V1__POSITION__POSITION_OFFSET:
    return t->offset;
  case SWITCHBOARD__BROKER__V1__POSITION__POSITION_BEGINNING:
    return s->first[p];
  case SWITCHBOARD__BROKER__V1__POSITION__POSITION_TIME:
    return BAPI_TAIL_UNRESOLVED;
  case SWITCHBOARD__BROKER__V1__POSITION__POSITION_LATEST:
    return s->next[p];
  default:
    return group ? s->first[p] : s->next[p];
  }
}

static void tail_setup_cb(void *arg, int status, const sb_broker_result_t *r) {
  tail_t *t = arg;
  if (status) {
    tail_push(&t->setup, status, NULL, 0);
    return;
  }
  if (t->step == TAIL_STEP_TIME) {
    t->pos[t->time_i++] = r->count;
    tail_setup_next(t);
    return;
  }
  if (t->step == TAIL_STEP_COMMITTED) {
    for (uint32_t i = 0; i < t->n_parts; i++)
      if (t->parts[i] < r->n_offsets && r->offsets[t->parts[i]] != SB_STREAM_NO_OFFSET)
        t->pos[i] = r->offsets[t->parts[i]];
    tail_setup_next(t);
    return;
  }
  const sb_stream_info_t *s = r->stream;
  uint32_t np = s->config.partitions;
  t->n_parts = t->n_want ? (uint32_t)t->n_want : np;
  t->parts = malloc(t->n_parts * sizeof *t->parts);
  t->pos = malloc(t->n_parts * sizeof *t->pos);
  if (!t->parts || !t->pos) {
    tail_push(&t->setup, SB_ENOMEM, NULL, 0);
    return;
  }
  for (uint32_t i = 0; i < t->n_parts; i++) {
    uint32_t p = t->n_want ? t->want[i] : i;
    if (p >= np) {
      char field[32];
      snprintf(field, sizeof field, "partitions[%u]", i);
      tail_setup_fail(t, SB_CODE_INVALID_ARGUMENT, field,
                      "%s: stream '%s' has %u partition(s), numbered from 0", field, t->stream, np);
      tail_push(&t->setup, 0, NULL, 0);
      return;
    }
    for (uint32_t k = 0; k < i; k++)
      if (t->parts[k] == p) {
        tail_setup_fail(t, SB_CODE_INVALID_ARGUMENT, "partitions", "partitions: %u is listed twice",
                        p);
        tail_push(&t->setup, 0, NULL, 0);
        return;
      }
    t->parts[i] = p;
    t->pos[i] = tail_start_of(t, s, p, t->group[0] != 0);
    if (t->start == SWITCHBOARD__BROKER__V1__POSITION__POSITION_OFFSET && t->offset > s->next[p]) {
      tail_setup_fail(t, SB_CODE_INVALID_ARGUMENT, "offset",
                      "offset: %llu is past the end of partition %u (its next offset is %llu)",
                      (unsigned long long)t->offset, p, (unsigned long long)s->next[p]);
      tail_push(&t->setup, 0, NULL, 0);
      return;
    }
  }
  if (t->group[0]) {
    t->step = TAIL_STEP_COMMITTED;
    int rc = sb_stream_committed(t->b, t->stream, t->group, tail_setup_cb, t);
    if (rc) tail_push(&t->setup, rc, NULL, 0);
    return;
  }
  tail_setup_next(t);
}

/* Broker thread: one partition's read answered. */
static void tail_read_cb(void *arg, int status, const sb_broker_result_t *r) {
  tail_slot_t *sl = arg;
  uint8_t *packed = NULL;
  size_t len = 0;
  if (!status) {
    sb_arena_t a;
    sb_arena_init(&a);
    Switchboard__Broker__V1__ReadRecordsResponse m =
        SWITCHBOARD__BROKER__V1__READ_RECORDS_RESPONSE__INIT;
    m.records = r->n_records ? sb_arena_alloc(&a, r->n_records * sizeof *m.records) : NULL;
    for (size_t i = 0; m.records && i < r->n_records; i++) {
      if (!(m.records[i] = record_of(&a, &r->records[i]))) break;
      m.n_records++;
    }
    if (m.n_records == r->n_records) {
      m.next_offset = r->n_records ? r->records[r->n_records - 1].offset + 1 : sl->t->pos[sl->idx];
      len = protobuf_c_message_get_packed_size(&m.base);
      packed = malloc(len ? len : 1);
      if (packed) protobuf_c_message_pack(&m.base, packed);
    }
    if (!packed) status = SB_ENOMEM;
    sb_arena_free(&a);
  }
  tail_push(sl, status, packed, len);
}

static void tail_close(tail_t *t) {
  if (uv_is_closing((uv_handle_t *)&t->async)) return;
  uv_close((uv_handle_t *)&t->async, tail_closed);
  uv_close((uv_handle_t *)&t->watch, tail_closed);
}

static void tail_finish(tail_t *t, sb_code_t code, const char *message) {
  if (!t->call) return;
  sb_call_finish(t->call, code, message);
  t->call = NULL;
  uv_timer_stop(&t->watch);
  if (!t->inflight) tail_close(t);
}

/* Loop: maps an engine failure of a read or of the setup onto the call's end. */
static void tail_fail(tail_t *t, int status) {
  char msg[BAPI_MESSAGE_MAX];
  if (status == SB_ENOTFOUND) {
    snprintf(msg, sizeof msg, "stream '%s' not found", t->stream);
    tail_finish(t, SB_CODE_NOT_FOUND, msg);
  } else if (status == SB_ESTATE)
    tail_finish(t, SB_CODE_UNAVAILABLE, "the broker is shutting down");
  else if (status == SB_ENOMEM)
    tail_finish(t, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
  else {
    snprintf(msg, sizeof msg, "stream '%s': %s", t->stream, sb_strerror(status));
    tail_finish(t, SB_CODE_INTERNAL, msg);
  }
}

/* Loop: starts partition idx's next read. */
static void tail_read(tail_t *t, uint32_t idx) {
  int rc = sb_stream_read(t->b, t->stream, t->parts[idx], t->pos[idx], BAPI_TAIL_BATCH,
                          BAPI_TAIL_BYTES, BAPI_TAIL_POLL_MS, tail_read_cb, &t->slots[idx]);
  if (rc) {
    tail_fail(t, rc);
    return;
  }
  t->reading[idx] = 1;
  t->inflight++;
}

static void tail_read_idle(tail_t *t) {
  for (uint32_t i = 0; t->call && !t->blocked && i < t->n_parts; i++)
    if (!t->reading[i]) tail_read(t, i);
}

/* Loop: sends one answer's records and moves its partition on. */
static void tail_deliver(tail_t *t, const tail_slot_t *bt) {
  t->reading[bt->idx] = 0;
  Switchboard__Broker__V1__ReadRecordsResponse *m = (void *)protobuf_c_message_unpack(
      &switchboard__broker__v1__read_records_response__descriptor, NULL, bt->len, bt->packed);
  if (!m) {
    tail_finish(t, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  for (size_t i = 0; i < m->n_records && t->call; i++) {
    int rc = sb_call_send(t->call, &m->records[i]->base);
    if (rc < 0)
      tail_finish(t, SB_CODE_CANCELLED, "the client went away");
    else if (rc == 1)
      t->blocked = true; /* the rest of this batch still goes: it is already in memory */
  }
  t->pos[bt->idx] = m->next_offset;
  protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void tail_async(uv_async_t *h) {
  tail_t *t = h->data;
  pthread_mutex_lock(&t->mu);
  tail_slot_t *list = t->ready;
  t->ready = NULL;
  t->ready_end = &t->ready;
  pthread_mutex_unlock(&t->mu);
  if (t->call && sb_call_cancelled(t->call))
    tail_finish(t, SB_CODE_CANCELLED, "the client went away");
  while (list) {
    tail_slot_t *bt = list;
    list = bt->next;
    t->inflight--;
    if (!t->call) {
      /* finished: only draining */
    } else if (bt->status)
      tail_fail(t, bt->status);
    else if (bt->idx == BAPI_TAIL_SETUP) {
      if (t->code != SB_CODE_OK) {
        if (t->field[0]) add_violation(t->call, t->field, t->message);
        tail_finish(t, t->code, t->message);
      } else {
        t->reading = calloc(t->n_parts, 1);
        t->slots = malloc(t->n_parts * sizeof *t->slots);
        if (!t->reading || !t->slots) tail_finish(t, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
        for (uint32_t i = 0; t->call && i < t->n_parts; i++)
          t->slots[i] = (tail_slot_t){.t = t, .idx = i};
        t->ready_to_read = true;
      }
    } else
      tail_deliver(t, bt);
    free(bt->packed);
    bt->packed = NULL;
  }
  if (t->call && t->ready_to_read) tail_read_idle(t);
  if (!t->call && !t->inflight) tail_close(t);
}

static void tail_on_writable(sb_call_t *call, void *ud) {
  (void)call;
  tail_t *t = ud;
  t->blocked = false;
  if (t->ready_to_read) tail_read_idle(t);
}

static void tail_watch(uv_timer_t *h) {
  tail_t *t = h->data;
  if (t->call && sb_broker_draining(t->b))
    tail_finish(t, SB_CODE_UNAVAILABLE, "the server is shutting down");
}

static void tail_on_cancel(sb_call_t *call, void *ud) {
  (void)call;
  tail_finish(ud, SB_CODE_CANCELLED, "the client went away");
}

static void tail_stream(sb_call_t *call, const Switchboard__Broker__V1__TailStreamRequest *req,
                        Switchboard__Broker__V1__Record *res, void *ud) {
  (void)res;
  if (check_stream(call, "stream", req->stream)) return;
  if (req->group && req->group[0] && check_group(call, "group", req->group)) return;
  if (req->n_partitions > SB_STREAM_PARTITIONS_MAX) {
    bad_field(call, "partitions", "at most 256");
    return;
  }
  tail_t *t = calloc(1, sizeof *t);
  if (t && req->n_partitions) {
    t->want = malloc(req->n_partitions * sizeof *t->want);
    if (t->want) memcpy(t->want, req->partitions, req->n_partitions * sizeof *t->want);
  }
  if (!t || (req->n_partitions && !t->want) ||
      uv_async_init(sb_call_loop(call), &t->async, tail_async)) {
    if (t) free(t->want);
    free(t);
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  t->async.data = t;
  uv_timer_init(sb_call_loop(call), &t->watch);
  t->watch.data = t;
  t->handles = 2;
  uv_timer_start(&t->watch, tail_watch, BAPI_WATCH_MS, BAPI_WATCH_MS);
  pthread_mutex_init(&t->mu, NULL);
  t->ready_end = &t->ready;
  t->b = ud;
  t->call = call;
  snprintf(t->stream, sizeof t->stream, "%s", req->stream);
  snprintf(t->group, sizeof t->group, "%s", req->group ? req->group : "");
  t->start = req->start;
  t->offset = req->offset;
  t->time_ms = req->time_ms;
  t->n_want = req->n_partitions;
  sb_call_stream_t cbs = {NULL, NULL, tail_on_writable, tail_on_cancel, t};
  sb_call_set_stream(call, &cbs);
  t->setup = (tail_slot_t){.t = t, .idx = BAPI_TAIL_SETUP};
  t->step = TAIL_STEP_GET;
  t->inflight = 1; /* the setup: it hands over exactly one answer */
  int rc = sb_stream_get(t->b, t->stream, tail_setup_cb, t);
  if (rc) {
    t->inflight = 0;
    tail_fail(t, rc);
  }
}

/* ---- pub/sub ----
 *
 * SubscribeChannels owns one engine subscriber for the life of the call. The engine's notify
 * (broker thread) only wakes the call's loop; the loop takes messages and sends them while the
 * transport accepts more. When the client reads too slowly, sb_call_send() reports a full
 * transport and the loop stops taking: the subscriber's bounded buffer then fills, the engine
 * drops the subscriber, and the stream ends RESOURCE_EXHAUSTED. Memory per subscriber is the
 * engine's buffer plus one batch of BAPI_SUB_TAKE messages.
 *
 * The first event says the subscriptions are in place. Subscribes are posted to the broker
 * thread, which runs operations in the order they were posted; so once an operation posted
 * after them (a one-name queue listing, the barrier) has answered, they have taken effect and
 * every publish from then on reaches the subscriber. */

#define BAPI_SUB_BUFFER_DEFAULT (1u << 20) /* a subscriber's buffer without buffer_bytes */
#define BAPI_SUB_BUFFER_MIN 1024u          /* smallest buffer_bytes accepted */
#define BAPI_SUB_TAKE 32u                  /* messages taken from the engine at once */

typedef struct chsub {
  uv_async_t async;     /* on the call's loop; the chsub is freed once it and watch closed */
  uv_timer_t watch;     /* looks for a draining broker (BAPI_WATCH_MS) */
  int handles;          /* of async and watch, not closed yet */
  sb_broker_t *b;       /* borrowed */
  sb_call_t *call;      /* loop thread; NULL once finished */
  sb_pubsub_sub_t *sub; /* the engine subscriber; NULL once closed */
  size_t buffer_bytes;  /* its bound */
  pthread_mutex_t mu;   /* guards barrier_done */
  bool barrier_done;    /* the barrier answered (set on the broker thread) */
  bool confirmed;       /* loop: the subscribed event went out */
  bool blocked;         /* loop: the transport is full; wait for on_writable */
  uint32_t n_channels, n_patterns;
} chsub_t;

static void chsub_closed(uv_handle_t *h) {
  chsub_t *c = h->data;
  if (--c->handles) return;
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* Broker thread: only wakes the loop (the engine's rule for notify functions). */
static void chsub_notify(void *ud) {
  chsub_t *c = ud;
  uv_async_send(&c->async);
}

static void chsub_barrier(void *arg, int status, const sb_broker_result_t *r) {
  (void)status, (void)r;
  chsub_t *c = arg;
  pthread_mutex_lock(&c->mu);
  c->barrier_done = true;
  uv_async_send(&c->async);
  pthread_mutex_unlock(&c->mu);
}

static bool chsub_barrier_done(chsub_t *c) {
  pthread_mutex_lock(&c->mu);
  bool d = c->barrier_done;
  pthread_mutex_unlock(&c->mu);
  return d;
}

/* Loop: ends the call (once) and the subscriber; the handle closes once the barrier, the only
 * other thing that can still wake it, has answered. */
static void chsub_finish(chsub_t *c, sb_code_t code, const char *message) {
  if (c->call) {
    sb_call_finish(c->call, code, message);
    c->call = NULL;
  }
  if (c->sub) {
    sb_pubsub_close(c->sub); /* no notify runs after this */
    c->sub = NULL;
  }
  uv_timer_stop(&c->watch);
  if (chsub_barrier_done(c) && !uv_is_closing((uv_handle_t *)&c->async)) {
    uv_close((uv_handle_t *)&c->async, chsub_closed);
    uv_close((uv_handle_t *)&c->watch, chsub_closed);
  }
}

static int chsub_send(chsub_t *c, const Switchboard__Broker__V1__ChannelEvent *ev) {
  int rc = sb_call_send(c->call, &ev->base);
  if (rc < 0) {
    chsub_finish(c, SB_CODE_CANCELLED, "the client went away");
    return -1;
  }
  if (rc == 1) c->blocked = true;
  return 0;
}

/* Loop: the subscribed event once the barrier answered, then messages while the transport
 * takes them. */
static void chsub_pump(chsub_t *c) {
  if (!c->call || sb_call_cancelled(c->call)) {
    chsub_finish(c, SB_CODE_CANCELLED, "the client went away");
    return;
  }
  if (!c->confirmed) {
    if (!chsub_barrier_done(c)) return;
    Switchboard__Broker__V1__SubscribedEvent se = SWITCHBOARD__BROKER__V1__SUBSCRIBED_EVENT__INIT;
    Switchboard__Broker__V1__ChannelEvent ev = SWITCHBOARD__BROKER__V1__CHANNEL_EVENT__INIT;
    se.channels = c->n_channels;
    se.patterns = c->n_patterns;
    ev.subscribed = &se;
    c->confirmed = true;
    if (chsub_send(c, &ev)) return;
  }
  if (sb_pubsub_dropped(c->sub)) {
    char msg[BAPI_MESSAGE_MAX];
    snprintf(msg, sizeof msg,
             "subscriber dropped: it read too slowly and more than %zu bytes of messages waited "
             "for it",
             c->buffer_bytes);
    chsub_finish(c, SB_CODE_RESOURCE_EXHAUSTED, msg);
    return;
  }
  while (c->call && !c->blocked) {
    sb_pubsub_msg_t *msgs[BAPI_SUB_TAKE];
    size_t n = sb_pubsub_take(c->sub, msgs, BAPI_SUB_TAKE);
    for (size_t i = 0; i < n; i++) {
      if (c->call) {
        sb_arena_t a;
        sb_arena_init(&a);
        Switchboard__Broker__V1__ChannelMessage cm = SWITCHBOARD__BROKER__V1__CHANNEL_MESSAGE__INIT;
        Switchboard__Broker__V1__ChannelEvent ev = SWITCHBOARD__BROKER__V1__CHANNEL_EVENT__INIT;
        cm.channel = (char *)msgs[i]->channel;
        cm.pattern = (char *)(msgs[i]->pattern ? msgs[i]->pattern : "");
        ev.message = &cm;
        if (bytes_or_text(&a, msgs[i]->data, msgs[i]->len, &cm.data, &cm.text))
          chsub_finish(c, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
        else
          chsub_send(c, &ev);
        sb_arena_free(&a);
      }
      free(msgs[i]);
    }
    if (n < BAPI_SUB_TAKE) break;
  }
}

static void chsub_async(uv_async_t *h) {
  chsub_pump(h->data);
}

static void chsub_on_writable(sb_call_t *call, void *ud) {
  (void)call;
  chsub_t *c = ud;
  c->blocked = false;
  chsub_pump(c);
}

static void chsub_watch(uv_timer_t *h) {
  chsub_t *c = h->data;
  if (c->call && sb_broker_draining(c->b))
    chsub_finish(c, SB_CODE_UNAVAILABLE, "the server is shutting down");
}

static void chsub_on_cancel(sb_call_t *call, void *ud) {
  (void)call;
  chsub_finish(ud, SB_CODE_CANCELLED, "the client went away");
}

/* Checks a channel or pattern list; answers the call and returns -1 when one is bad. */
static int check_channels(sb_call_t *call, const char *what, char **names, size_t n) {
  if (n > BAPI_SUB_NAMES_MAX) return bad_field(call, what, "at most 100");
  for (size_t i = 0; i < n; i++)
    if (!names[i] || !names[i][0] || strlen(names[i]) > SB_PUBSUB_NAME_MAX) {
      char field[40];
      snprintf(field, sizeof field, "%s[%zu]", what, i);
      return bad_field(call, field, "must be 1..1024 bytes");
    }
  return 0;
}

static void subscribe_channels(sb_call_t *call,
                               const Switchboard__Broker__V1__SubscribeChannelsRequest *req,
                               Switchboard__Broker__V1__ChannelEvent *res, void *ud) {
  (void)res;
  if (check_channels(call, "channels", req->channels, req->n_channels) ||
      check_channels(call, "patterns", req->patterns, req->n_patterns))
    return;
  if (!req->n_channels && !req->n_patterns) {
    bad_field(call, "channels", "name at least one channel or pattern");
    return;
  }
  if (req->buffer_bytes && req->buffer_bytes < BAPI_SUB_BUFFER_MIN) {
    bad_field(call, "buffer_bytes", "at least 1024");
    return;
  }
  chsub_t *c = calloc(1, sizeof *c);
  if (!c || uv_async_init(sb_call_loop(call), &c->async, chsub_async)) {
    free(c);
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  c->async.data = c;
  uv_timer_init(sb_call_loop(call), &c->watch);
  c->watch.data = c;
  c->handles = 2;
  uv_timer_start(&c->watch, chsub_watch, BAPI_WATCH_MS, BAPI_WATCH_MS);
  pthread_mutex_init(&c->mu, NULL);
  c->b = ud;
  c->call = call;
  c->buffer_bytes = req->buffer_bytes ? req->buffer_bytes : BAPI_SUB_BUFFER_DEFAULT;
  c->n_channels = (uint32_t)req->n_channels;
  c->n_patterns = (uint32_t)req->n_patterns;
  sb_call_stream_t cbs = {NULL, NULL, chsub_on_writable, chsub_on_cancel, c};
  sb_call_set_stream(call, &cbs);
  c->barrier_done = true; /* until the barrier is posted, nothing else can wake the handle */
  int rc = sb_pubsub_open(ud, c->buffer_bytes, chsub_notify, c, &c->sub);
  if (rc) c->sub = NULL;
  for (size_t i = 0; !rc && i < req->n_channels; i++)
    rc = sb_pubsub_subscribe(c->sub, req->channels[i], false);
  for (size_t i = 0; !rc && i < req->n_patterns; i++)
    rc = sb_pubsub_subscribe(c->sub, req->patterns[i], true);
  if (!rc) {
    c->barrier_done = false;
    rc = sb_queue_list(ud, NULL, NULL, 1, chsub_barrier, c);
    if (rc) c->barrier_done = true;
  }
  if (rc)
    chsub_finish(c, rc == SB_ENOMEM ? SB_CODE_RESOURCE_EXHAUSTED : SB_CODE_UNAVAILABLE,
                 rc == SB_ENOMEM ? "out of memory" : "the broker is shutting down");
}

static void build_channel_publish(bapi_op_t *op, const sb_broker_result_t *r, sb_arena_t *a) {
  (void)a;
  Switchboard__Broker__V1__PublishChannelResponse m =
      SWITCHBOARD__BROKER__V1__PUBLISH_CHANNEL_RESPONSE__INIT;
  m.receivers = r->count;
  bapi_pack(op, &m.base);
}

static void publish_channel(sb_call_t *call,
                            const Switchboard__Broker__V1__PublishChannelRequest *req,
                            Switchboard__Broker__V1__PublishChannelResponse *res, void *ud) {
  if (!req->channel || !req->channel[0] || strlen(req->channel) > SB_PUBSUB_NAME_MAX) {
    bad_field(call, "channel", "must be 1..1024 bytes");
    return;
  }
  sb_broker_msg_t m;
  memset(&m, 0, sizeof m);
  if (payload_in(call, "text", &req->data, req->text, &m)) return;
  if (m.body_len > SB_BROKER_MESSAGE_MAX) {
    bad_field(call, "data", "at most 1 MiB");
    return;
  }
  bapi_op_t *op = op_new(call, &res->base, build_channel_publish, "channel '%s'", req->channel);
  if (op)
    op_started(op, sb_pubsub_publish(ud, req->channel, m.body, m.body_len, op_done, op), "channel");
}

static void get_pub_sub_stats(sb_call_t *call,
                              const Switchboard__Broker__V1__GetPubSubStatsRequest *req,
                              Switchboard__Broker__V1__PubSubStats *res, void *ud) {
  (void)req;
  sb_pubsub_stats_t s;
  sb_pubsub_stats(ud, &s);
  res->channels = s.channels;
  res->patterns = s.patterns;
  res->subscribers = s.subscribers;
  res->published = s.published;
  res->delivered = s.delivered;
  res->dropped = s.dropped;
  sb_call_finish(call, SB_CODE_OK, NULL);
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
    .create_stream = create_stream,
    .get_stream = get_stream,
    .list_streams = list_streams,
    .delete_stream = delete_stream,
    .append_records = append_records,
    .read_records = read_records,
    .tail_stream = tail_stream,
    .commit_offsets = commit_offsets,
    .get_committed_offsets = get_committed_offsets,
    .read_group = read_group,
    .ack = ack,
    .claim = claim,
    .list_pending = list_pending,
    .publish_channel = publish_channel,
    .subscribe_channels = subscribe_channels,
    .get_pub_sub_stats = get_pub_sub_stats,
};

int sb_broker_api_register(sb_rpc_t *rpc, sb_broker_t *b) {
  return switchboard__broker__v1__broker_service__register(rpc, &handlers, b);
}
