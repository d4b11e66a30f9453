/*
 * The broker: durable work queues (SQS semantics) on the journal, driven from any thread.
 *
 * ## Threads and callbacks
 *
 * A broker owns one thread (its "shard") that owns every queue's state. Every function below
 * is thread-safe: it copies its arguments, hands the operation to the shard and returns at
 * once. The operation's callback then runs ON THE BROKER THREAD, exactly once, when the
 * operation is complete — for writes, after the journal acknowledged them under the queue's
 * fsync policy (with the default, after the fdatasync covering them). A callback must be
 * short and must not block; a front-end copies what it needs and completes its request on its
 * own loop (sb_call_async_finish() does that hand-off). Callbacks may start new broker
 * operations. The result passed to a callback is borrowed for the duration of the callback.
 *
 * ## Messages
 *
 * A message is a body, attributes (name, type, value: SQS message attributes, Kafka and AMQP
 * headers), and system fields (FIFO group and deduplication id, trace header). It gets a
 * stable id (a UUID string) when it is first accepted; the id never changes — not on
 * redelivery, not when the message moves to a dead-letter queue and back — so consumers can
 * be idempotent by id (sb_dedup_* helps them). Each delivery gets a new receipt handle; only
 * the newest handle of a message can delete it or change its visibility.
 *
 * ## Durability
 *
 * A send is acknowledged after the record holding the message is durable; a delete after the
 * record of the delete is. After a crash: every acknowledged send is there, every acknowledged
 * delete stays deleted, messages that were in flight are visible again, and receive counts are
 * at least those of every receive whose record reached the disk (receives are recorded
 * without waiting for the disk, so a count may fall behind by the receives of the last
 * moments before the crash).
 */
#ifndef SWITCHBOARD_BROKER_H
#define SWITCHBOARD_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_BROKER_NAME_MAX 80    /* bytes of a queue name: [A-Za-z0-9_-], ".fifo" suffix */
#define SB_BROKER_ID_LEN 36      /* a message id: a UUID in its 8-4-4-4-12 text form */
#define SB_BROKER_RECEIPT_LEN 56 /* a receipt handle's text form */
#define SB_BROKER_BATCH_MAX 10   /* messages per send, receive, delete or visibility batch */
#define SB_BROKER_MESSAGE_MAX (1u << 20)     /* bytes of body plus attributes, at most */
#define SB_BROKER_ATTRS_MAX 64               /* attributes per message */
#define SB_BROKER_GROUP_MAX 128              /* bytes of a FIFO group or deduplication id */
#define SB_BROKER_WAIT_MAX_MS 20000          /* longest long poll */
#define SB_BROKER_VISIBILITY_MAX_MS 43200000 /* 12 hours */
#define SB_BROKER_DELAY_MAX_MS 900000        /* 15 minutes */
#define SB_BROKER_DEDUP_WINDOW_MS 300000     /* FIFO deduplication window: 5 minutes */
#define SB_BROKER_KV_MAX                                                                           \
  100 /* front-end attributes and tags kept per queue, topic or subscription */

typedef struct sb_broker sb_broker_t;

typedef enum sb_broker_fsync {
  SB_BROKER_FSYNC_ALWAYS = 0, /* acknowledge after the covering fdatasync (the default) */
  SB_BROKER_FSYNC_INTERVAL,   /* acknowledge after write; fdatasync every fsync_interval_ms */
  SB_BROKER_FSYNC_NEVER,      /* acknowledge after write; the kernel decides */
} sb_broker_fsync_t;

/* Options of sb_broker_open(). Start from sb_broker_opts_default(). */
typedef struct sb_broker_opts {
  const char *data_dir;        /* directory of the broker's state; borrowed during open */
  uint64_t disk_reserve_bytes; /* sends that would leave less free disk fail SB_ENOSPC */
  uint64_t segment_bytes;      /* journal segment size; 0 for the journal's default */
} sb_broker_opts_t;

/* A name/value pair a queue keeps for its front-end (tags, protocol-specific attributes). */
typedef struct sb_broker_kv {
  const char *name;  /* NUL-terminated */
  const char *value; /* NUL-terminated */
} sb_broker_kv_t;

/* A queue's configuration. Start from sb_queue_config_default(). Times are in milliseconds. */
typedef struct sb_queue_config {
  uint32_t visibility_ms;     /* lease of a receive, 0..SB_BROKER_VISIBILITY_MAX_MS; 30 s */
  uint32_t delay_ms;          /* default delay of a send, 0..SB_BROKER_DELAY_MAX_MS; 0 */
  uint64_t retention_ms;      /* messages older than this are dropped; 4 days */
  uint32_t max_message_bytes; /* body plus attributes, 1..SB_BROKER_MESSAGE_MAX; 256 KiB */
  uint32_t receive_wait_ms;   /* default long poll, 0..SB_BROKER_WAIT_MAX_MS; 0 */
  uint64_t max_messages;      /* sends beyond this depth fail SB_ELIMIT; 0 = no limit */
  uint32_t max_receive_count; /* receives before the move to dead_letter; 0 = never */
  char dead_letter[SB_BROKER_NAME_MAX + 1]; /* dead-letter queue's name, "" for none */
  bool fifo;                  /* message groups and deduplication; name ends in ".fifo" */
  bool content_dedup;         /* FIFO: a send without a dedup id uses SHA-256 of the body */
  sb_broker_fsync_t fsync;    /* durability of this queue's journal */
  uint32_t fsync_interval_ms; /* for SB_BROKER_FSYNC_INTERVAL */
} sb_queue_config_t;

/* A message attribute. In a send everything is borrowed for the call; in a result, borrowed
 * for the callback. type may be empty (Kafka headers have none). Names never start with ':'
 * (reserved for system fields). */
typedef struct sb_broker_attr {
  const char *name;  /* name_len bytes */
  size_t name_len;   /* 1..255 */
  const char *type;  /* type_len bytes: "String", "Number", "Binary", "String.custom", ... */
  size_t type_len;   /* 0..255 */
  const void *value; /* value_len bytes */
  size_t value_len;  /* bytes at value */
} sb_broker_attr_t;

/* A message to send. Borrowed for the call. */
typedef struct sb_broker_msg {
  const void *body;              /* body_len bytes */
  size_t body_len;               /* bytes at body */
  const sb_broker_attr_t *attrs; /* n_attrs attributes, or NULL */
  size_t n_attrs;                /* <= SB_BROKER_ATTRS_MAX */
  const char *group;             /* FIFO message group (required on FIFO queues), or NULL */
  size_t group_len;              /* 1..SB_BROKER_GROUP_MAX when group is set */
  const char *dedup;             /* FIFO deduplication id, or NULL */
  size_t dedup_len;              /* 1..SB_BROKER_GROUP_MAX when dedup is set */
  const char *trace;             /* trace header (AWSTraceHeader), or NULL */
  size_t trace_len;              /* bytes at trace */
  int32_t delay_ms;              /* -1: the queue's delay; else 0..SB_BROKER_DELAY_MAX_MS */
} sb_broker_msg_t;

/* The outcome of one message of a send. */
typedef struct sb_broker_sent {
  int status;                    /* 0 or a negative SB_E* code for this message */
  char id[SB_BROKER_ID_LEN + 1]; /* the message id (on a dedup hit, the original's) */
  uint64_t seq;                  /* the message's sequence number (its journal offset) */
  bool duplicate;                /* a FIFO dedup hit: nothing new was stored */
} sb_broker_sent_t;

/* One delivered message; every pointer is borrowed for the callback. */
typedef struct sb_broker_delivery {
  char id[SB_BROKER_ID_LEN + 1];           /* stable message id */
  char receipt[SB_BROKER_RECEIPT_LEN + 1]; /* this delivery's receipt handle */
  uint64_t seq;                            /* sequence number (journal offset) */
  const uint8_t *body;                     /* body_len bytes */
  size_t body_len;                         /* bytes at body */
  const sb_broker_attr_t *attrs;           /* n_attrs attributes, as sent */
  size_t n_attrs;                          /* count */
  const char *group, *dedup, *trace;       /* system fields or NULL; NUL-terminated */
  int64_t sent_ms;                         /* when the message was first accepted */
  int64_t first_receive_ms;                /* first delivery (this one if receive_count is 1) */
  uint32_t receive_count;                  /* deliveries so far, this one included */
  const char *dlq_source;                  /* on a dead-lettered message: its source queue */
  uint32_t dlq_receive_count;              /* receives in the source queue */
  int64_t dlq_first_receive_ms;            /* first receive in the source queue */
  int64_t dlq_last_receive_ms;             /* last receive in the source queue */
} sb_broker_delivery_t;

/* Depth and age of a queue. */
typedef struct sb_queue_stats {
  uint64_t visible;       /* messages available now */
  uint64_t in_flight;     /* received, not deleted, lease not expired */
  uint64_t delayed;       /* sent with a delay that has not passed */
  int64_t oldest_ms;      /* send time of the oldest stored message; 0 when empty */
  uint64_t sent;          /* messages accepted since start */
  uint64_t received;      /* deliveries since start */
  uint64_t deleted;       /* deletes since start */
  uint64_t dead_lettered; /* moved to the dead-letter queue since start */
  uint64_t expired;       /* dropped by retention since start */
  uint64_t replayed;      /* journal records replayed to open the queue (after its snapshot) */
} sb_queue_stats_t;

/* A queue as the broker knows it. */
typedef struct sb_queue_info {
  const char *name;         /* borrowed */
  sb_queue_config_t config; /* its configuration */
  const sb_broker_kv_t *kv; /* n_kv front-end attributes and tags, sorted by name */
  size_t n_kv;              /* count */
  int64_t created_ms;       /* creation time */
  int64_t modified_ms;      /* last configuration change */
  sb_queue_stats_t stats;   /* depth now */
} sb_queue_info_t;

typedef enum sb_move_state {
  SB_MOVE_RUNNING = 0,
  SB_MOVE_COMPLETED,
  SB_MOVE_CANCELLED,
  SB_MOVE_FAILED,
} sb_move_state_t;

/* A move task: messages of a dead-letter queue moved back to their source or another queue. */
typedef struct sb_move_task {
  char handle[40];                          /* task handle */
  char source[SB_BROKER_NAME_MAX + 1];      /* the dead-letter queue */
  char destination[SB_BROKER_NAME_MAX + 1]; /* "" = each message's own source queue */
  uint32_t rate;                            /* messages per second; 0 = as fast as possible */
  sb_move_state_t state;                    /* progress */
  uint64_t moved;                           /* messages moved so far */
  uint64_t to_move;                         /* messages in the dead-letter queue at start */
  int64_t started_ms;                       /* when it started */
  char failure[128];                        /* why it failed, "" otherwise */
} sb_move_task_t;

/* Results: which members are set depends on the operation (see each function). */
typedef struct sb_broker_result {
  const sb_broker_sent_t *sent;            /* send: one per message, in order */
  const sb_broker_delivery_t *deliveries;  /* receive, peek: the messages */
  size_t n;                                /* entries in sent / deliveries / statuses / tasks */
  const int *statuses;                     /* delete, change visibility: per receipt, 0 or code */
  const sb_queue_info_t *queue;            /* get: the queue */
  const char *const *names;                /* list: queue names, sorted */
  size_t n_names;                          /* count */
  const char *next_token;                  /* list: continue after this name, or NULL at end */
  const sb_move_task_t *tasks;             /* move start (one) and move list */
  uint64_t count;                          /* purge: messages removed; publish: deliveries */
  const struct sb_topic_info *topic;       /* topic create, update, get */
  const struct sb_stream_record *records;  /* stream append (one, no payload), stream read */
  size_t n_records;                        /* entries in records */
  const struct sb_stream_info *stream;     /* stream create, get */
  const uint64_t *offsets;                 /* stream committed: one per partition */
  const struct sb_stream_pending *pending; /* stream pending: entries */
  size_t n_pending;                        /* count */
  size_t n_offsets;                        /* partitions */
  const struct sb_sub_info *subs;          /* subscribe (one), subscriptions */
  size_t n_subs;                           /* entries in subs */
} sb_broker_result_t;

/* The one callback shape: status 0 or a negative SB_E* code for the whole operation; r is
 * never NULL and is borrowed for the call. Runs on the broker thread. */
typedef void (*sb_broker_cb)(void *arg, int status, const sb_broker_result_t *r);

void sb_broker_opts_default(sb_broker_opts_t *o);
void sb_queue_config_default(sb_queue_config_t *c);

/* Opens the broker stored in opts->data_dir (creating it), recovers every queue and starts
 * the broker thread. Returns 0 and sets *out (close with sb_broker_close()); SB_EINVAL;
 * SB_ESTATE (another process holds the directory); SB_ENOMEM; -errno. */
int sb_broker_open(const sb_broker_opts_t *opts, sb_broker_t **out);

/* Finishes pending operations (long polls end empty), stops the thread, closes the
 * journals and frees b. Call from a thread other than the broker's. */
void sb_broker_close(sb_broker_t *b);

/* Drains: ends every long poll waiting now (queue receives and stream reads answer with what
 * they have, usually nothing), and from then on long polls do not wait. A server calls it
 * when it starts to stop, so requests held by long polls answer at once instead of holding
 * the shutdown; front-ends with open streams (tails, subscriptions) watch
 * sb_broker_draining() and end them. cb (may be NULL) runs when the waits have ended.
 * Returns 0, SB_ENOMEM or SB_ESTATE (closing). */
int sb_broker_end_waits(sb_broker_t *b, sb_broker_cb cb, void *arg);

/* Whether sb_broker_end_waits() was called. Any thread. */
bool sb_broker_draining(const sb_broker_t *b);

/* Checks a queue name: 1..80 of [A-Za-z0-9_-], FIFO queues end in ".fifo". Returns 0 or
 * SB_EINVAL. */
int sb_broker_check_name(const char *name, bool fifo);

/* Every operation below returns 0 when the operation was handed to the broker (cb, when not
 * NULL, will run exactly once), or SB_EINVAL (bad arguments), SB_ESTATE (the broker is closing) or
 * SB_ENOMEM — then cb never runs. Status codes passed to cb: SB_ENOTFOUND (no such queue),
 * SB_EINVAL, SB_ELIMIT (depth or size limit), SB_ENOSPC (disk reserve), SB_ESTATE (a stale
 * receipt handle, a queue in use), -errno. */

/* Creates a queue, or checks that an existing one has the same configuration (SB_ESTATE
 * when it differs). kv are front-end attributes and tags to keep with it. r->queue is set. */
int sb_queue_create(sb_broker_t *b, const char *name, const sb_queue_config_t *c,
                    const sb_broker_kv_t *kv, size_t n_kv, sb_broker_cb cb, void *arg);
/* Replaces a queue's configuration (FIFO-ness cannot change: SB_EINVAL) and sets the given
 * kv pairs (an empty value removes one). r->queue is set. */
int sb_queue_update(sb_broker_t *b, const char *name, const sb_queue_config_t *c,
                    const sb_broker_kv_t *kv, size_t n_kv, sb_broker_cb cb, void *arg);
/* Deletes a queue and its messages. */
int sb_queue_delete(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg);
/* r->queue: configuration, attributes and depth. */
int sb_queue_get(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg);
/* r->names: queues whose name starts with prefix (NULL for all) and sorts after `after`
 * (NULL to start), at most max (1..1000); r->next_token when more follow. */
int sb_queue_list(sb_broker_t *b, const char *prefix, const char *after, size_t max,
                  sb_broker_cb cb, void *arg);
/* r->names: the queues whose dead-letter queue is `name`. */
int sb_queue_dlq_sources(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg);

/* Sends n (1..SB_BROKER_BATCH_MAX) messages; r->sent has one outcome per message (status 0
 * only once the message is durable). The operation's status is 0 unless it failed as a
 * whole (no such queue). */
int sb_queue_send(sb_broker_t *b, const char *queue, const sb_broker_msg_t *msgs, size_t n,
                  sb_broker_cb cb, void *arg);
/* Receives up to max (1..SB_BROKER_BATCH_MAX) messages, leasing each for visibility_ms (-1:
 * the queue's). When none is visible, waits up to wait_ms (-1: the queue's default) for one.
 * A message received more than the queue's max_receive_count times moves to its dead-letter
 * queue instead of being delivered. r->deliveries. */
int sb_queue_receive(sb_broker_t *b, const char *queue, size_t max, int64_t visibility_ms,
                     int64_t wait_ms, sb_broker_cb cb, void *arg);
/* Deletes by receipt handles (1..SB_BROKER_BATCH_MAX); r->statuses per handle: 0, SB_EINVAL
 * (not a handle of this queue), SB_ESTATE (stale: the message was received again since). A
 * handle of a message already deleted succeeds. */
int sb_queue_delete_msgs(sb_broker_t *b, const char *queue, const char *const *receipts, size_t n,
                         sb_broker_cb cb, void *arg);
/* Sets the remaining lease of received messages to visibility_ms from now (0 makes them
 * visible at once). r->statuses per handle as for delete; SB_ENOTFOUND for a message that
 * is gone. */
int sb_queue_change_visibility(sb_broker_t *b, const char *queue, const char *const *receipts,
                               size_t n, int64_t visibility_ms, sb_broker_cb cb, void *arg);
/* Removes every message; r->count. */
int sb_queue_purge(sb_broker_t *b, const char *queue, sb_broker_cb cb, void *arg);
/* Lists up to max stored messages without leasing them (a dry run for a redrive), in
 * sequence order from seq `from`; when attr_name is not NULL, only messages having that
 * attribute (with value attr_value unless NULL). r->deliveries (receipts are empty). */
int sb_queue_peek(sb_broker_t *b, const char *queue, uint64_t from, size_t max,
                  const char *attr_name, const char *attr_value, sb_broker_cb cb, void *arg);

/* Starts moving the messages of dead-letter queue `source` to `destination` (NULL: each one
 * back to the queue it was dead-lettered from) at `rate` messages per second (0: no limit).
 * At most one running task per source (SB_ESTATE). r->tasks has the new task. Messages keep
 * their id, body and attributes. */
int sb_move_start(sb_broker_t *b, const char *source, const char *destination, uint32_t rate,
                  sb_broker_cb cb, void *arg);
/* Cancels a running task; r->tasks has it. SB_ENOTFOUND, SB_ESTATE when not running. */
int sb_move_cancel(sb_broker_t *b, const char *handle, sb_broker_cb cb, void *arg);
/* r->tasks: the tasks of source (NULL: all), newest first, at most max. */
int sb_move_list(sb_broker_t *b, const char *source, size_t max, sb_broker_cb cb, void *arg);

/* --- topics ------------------------------------------------------------------------------
 *
 * A topic fans each published message out to its subscriptions. A subscription delivers into
 * a queue or a stream (durably: the publish is acknowledged once every matching queue and
 * stream holds its copy) or to a callback (ephemeral: not persisted, for push front-ends such
 * as pub/sub). A stream copy is appended under the publish's routing key (or, without one,
 * its message group), so copies with the same key land in the same partition in order;
 * with neither, partitions are taken in turn. Each
 * subscription selects messages with any combination of a filter policy (SNS syntax, on the
 * attributes or on the JSON body), a routing-key pattern (AMQP topic exchange: "*" one word,
 * "#" zero or more) and header matching (AMQP headers exchange); with none, it takes
 * everything (fanout). A copy that cannot be delivered (the queue is gone or full) goes to the
 * subscription's dead-letter queue when it has one, and is counted as failed otherwise.
 *
 * A subscription may name a formatter: a front-end registers it with sb_topic_set_format()
 * (SNS wraps queue deliveries in its JSON envelope this way) and the engine calls it for each
 * copy, so the engine itself knows no protocol. Topics and queue subscriptions are stored in
 * the catalog and survive restarts; callback subscriptions end with the broker. */

#define SB_TOPIC_SUBS_MAX 10000 /* subscriptions per topic */

typedef enum sb_sub_kind {
  SB_SUB_QUEUE = 0, /* copies go into a queue */
  SB_SUB_CALLBACK,  /* copies go to a function (not persisted) */
  SB_SUB_STREAM,    /* copies are appended to a stream */
} sb_sub_kind_t;

/* A topic's configuration. */
typedef struct sb_topic_config {
  bool fifo; /* name ends in ".fifo"; subscribers are FIFO queues; publishes carry a group */
} sb_topic_config_t;

/* What a subscription takes and where it delivers. Borrowed for the call. */
typedef struct sb_sub_config {
  char queue[SB_BROKER_NAME_MAX + 1];       /* SB_SUB_QUEUE: the target queue */
  char stream[SB_BROKER_NAME_MAX + 1];      /* SB_SUB_STREAM: the target stream (queue "") */
  const char *filter;                       /* filter policy (JSON), or NULL for none */
  bool filter_body;                         /* apply the policy to the JSON body */
  const char *binding;                      /* routing-key pattern, or NULL for any key */
  const sb_broker_kv_t *headers;            /* header matching: pairs (NULL value = present) */
  size_t n_headers;                         /* 0 = no header matching */
  bool headers_any;                         /* any pair suffices (x-match any) instead of all */
  char dead_letter[SB_BROKER_NAME_MAX + 1]; /* queue for undeliverable copies, "" for none */
  char format[32];                          /* formatter name, "" for the message as published */
  const sb_broker_kv_t *kv;                 /* front-end attributes kept with it */
  size_t n_kv;                              /* count */
} sb_sub_config_t;

/* A subscription as the broker knows it; borrowed for the callback. */
typedef struct sb_sub_info {
  char id[SB_BROKER_ID_LEN + 1]; /* subscription id */
  const char *topic;             /* its topic */
  sb_sub_kind_t kind;            /* queue, stream or callback */
  const char *queue;             /* target queue ("" for the other kinds) */
  const char *stream;            /* target stream ("" for the other kinds) */
  const char *filter;            /* policy text or "" */
  bool filter_body;              /* policy scope */
  const char *binding;           /* routing pattern or "" (any) */
  const sb_broker_kv_t *headers; /* header matching */
  size_t n_headers;              /* count */
  bool headers_any;              /* x-match any */
  const char *dead_letter;       /* "" for none */
  const char *format;            /* "" for none */
  const sb_broker_kv_t *kv;      /* front-end attributes */
  size_t n_kv;                   /* count */
  uint64_t delivered;            /* copies delivered since start */
  uint64_t filtered;             /* publishes it did not take */
  uint64_t failed;               /* copies that could not be delivered */
  uint64_t dead_lettered;        /* copies sent to its dead-letter queue */
} sb_sub_info_t;

typedef struct sb_topic_info {
  const char *name;         /* borrowed */
  sb_topic_config_t config; /* its configuration */
  const sb_broker_kv_t *kv; /* front-end attributes */
  size_t n_kv;              /* count */
  int64_t created_ms;       /* creation time */
  size_t n_subs;            /* subscriptions */
  uint64_t published;       /* publishes since start */
} sb_topic_info_t;

/* A published message as formatters and callbacks see it; borrowed for the call. */
typedef struct sb_topic_message {
  const char *topic;          /* topic name */
  const char *id;             /* the publish's message id (each queue copy has its own) */
  int64_t timestamp_ms;       /* publish time */
  const sb_broker_msg_t *msg; /* body, attributes, group, dedup, trace */
  const char *routing_key;    /* "" when none was given */
  const sb_broker_kv_t *meta; /* publish metadata for formatters (e.g. a subject) */
  size_t n_meta;              /* count */
} sb_topic_message_t;

/* Builds the body of one queue copy. Sets *body (malloc'ed; the broker frees it) and
 * *body_len, and *keep_attrs to keep the message's attributes on the copy. Returns 0, or a
 * negative code to count the copy as failed. Runs on the broker thread. */
typedef int (*sb_topic_format_fn)(void *ud, const sb_topic_message_t *m, const sb_sub_info_t *sub,
                                  char **body, size_t *body_len, bool *keep_attrs);
/* Receives one copy for a callback subscription; on the broker thread; must not block. */
typedef void (*sb_topic_deliver_fn)(void *ud, const sb_topic_message_t *m, const char *sub_id);

/* Registers formatter `name` (up to 31 bytes); fn and ud are borrowed until sb_broker_close.
 * Call before publishes that need it (a copy whose formatter is missing is delivered as
 * published). Returns 0, SB_EINVAL or SB_ELIMIT (more than 8 formatters). */
int sb_topic_set_format(sb_broker_t *b, const char *name, sb_topic_format_fn fn, void *ud);

/* Creates a topic (name rules as for queues), or checks an existing one has the same
 * configuration (SB_ESTATE otherwise). r->topic. */
int sb_topic_create(sb_broker_t *b, const char *name, const sb_topic_config_t *c,
                    const sb_broker_kv_t *kv, size_t n_kv, sb_broker_cb cb, void *arg);
/* Sets front-end attributes (an empty value removes one). r->topic. */
int sb_topic_update(sb_broker_t *b, const char *name, const sb_broker_kv_t *kv, size_t n_kv,
                    sb_broker_cb cb, void *arg);
/* Deletes a topic and its subscriptions (queues stay). */
int sb_topic_delete(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg);
int sb_topic_get(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg);
/* r->names: as sb_queue_list, for topics. */
int sb_topic_list(sb_broker_t *b, const char *prefix, const char *after, size_t max,
                  sb_broker_cb cb, void *arg);
/* Adds a queue subscription; SB_EINVAL with a bad filter policy (sb_topic_check_filter says
 * why), SB_ENOTFOUND when the topic or queue does not exist. r->subs[0]. */
int sb_topic_subscribe(sb_broker_t *b, const char *topic, const sb_sub_config_t *c, sb_broker_cb cb,
                       void *arg);
/* Adds a callback subscription (c->queue is ignored); fn and ud are borrowed until it is
 * removed or the broker closes. r->subs[0]. */
int sb_topic_subscribe_callback(sb_broker_t *b, const char *topic, const sb_sub_config_t *c,
                                sb_topic_deliver_fn fn, void *ud, sb_broker_cb cb, void *arg);
/* Replaces a subscription's selection, dead-letter queue, format and attributes (its kind
 * and target stay). r->subs[0]. */
int sb_topic_sub_update(sb_broker_t *b, const char *sub_id, const sb_sub_config_t *c,
                        sb_broker_cb cb, void *arg);
int sb_topic_unsubscribe(sb_broker_t *b, const char *sub_id, sb_broker_cb cb, void *arg);
/* r->subs: the subscriptions of topic (NULL: all topics), or the one whose id is sub_id when
 * sub_id is not NULL. */
int sb_topic_subs(sb_broker_t *b, const char *topic, const char *sub_id, sb_broker_cb cb,
                  void *arg);
/* Publishes m (its delay_ms is ignored) with an optional routing key and metadata. r->sent[0]
 * has the message id (status: 0, or the first delivery error when a copy failed without a
 * dead-letter queue); r->count the copies delivered. SB_ENOTFOUND without the topic. */
int sb_topic_publish(sb_broker_t *b, const char *topic, const sb_broker_msg_t *m,
                     const char *routing_key, const sb_broker_kv_t *meta, size_t n_meta,
                     sb_broker_cb cb, void *arg);
/* Checks a filter policy without subscribing: 0, or SB_EINVAL with a static reason. */
int sb_topic_check_filter(const char *policy, size_t len, const char **why);

/* --- pub/sub -------------------------------------------------------------------------------
 *
 * Fire-and-forget channels (Redis pub/sub semantics): a publish reaches the subscribers of
 * its channel and of every matching pattern at that moment, and nothing is stored. Patterns
 * are globs: '*' any run, '?' one byte, '[abc]' / '[^a-z]' a class, '\' escapes.
 *
 * A subscriber is one consumer (a client connection). Messages for it wait in its own bounded
 * buffer until the front-end takes them; a subscriber whose buffer would exceed its bound is
 * dropped — unsubscribed from everything, marked, notified — rather than letting memory grow
 * (Redis's client-output-buffer-limit for pubsub). Drops are counted.
 *
 * Threads: sb_pubsub_* functions are thread-safe. The notify function runs on the broker
 * thread whenever the subscriber's buffer goes from empty to non-empty or it is dropped; it
 * must only wake its owner (uv_async_send). Subscribe, unsubscribe and publish calls from one
 * thread take effect in the order they were made. */

typedef struct sb_pubsub_sub sb_pubsub_sub_t;
typedef void (*sb_pubsub_notify_fn)(void *ud);

/* One delivered message: a single allocation; free with free(). */
typedef struct sb_pubsub_msg {
  const char *channel; /* NUL-terminated */
  const char *pattern; /* the pattern it matched, or NULL for a channel subscription */
  const uint8_t *data; /* len bytes */
  size_t len;          /* bytes at data */
} sb_pubsub_msg_t;

typedef struct sb_pubsub_stats {
  uint64_t channels;    /* channels with at least one subscriber */
  uint64_t patterns;    /* pattern subscriptions */
  uint64_t subscribers; /* open subscribers */
  uint64_t published;   /* publishes since start */
  uint64_t delivered;   /* messages handed to subscribers */
  uint64_t dropped;     /* subscribers dropped for a full buffer */
} sb_pubsub_stats_t;

#define SB_PUBSUB_NAME_MAX 1024 /* bytes of a channel name or pattern */

/* Opens a subscriber whose buffer holds at most max_bytes of undelivered messages. notify and
 * ud are borrowed until sb_pubsub_close(). Returns 0 and sets *out, SB_EINVAL, SB_ENOMEM or
 * SB_ESTATE (closing). */
int sb_pubsub_open(sb_broker_t *b, size_t max_bytes, sb_pubsub_notify_fn notify, void *ud,
                   sb_pubsub_sub_t **out);
/* Subscribes to a channel (pattern false) or a glob pattern. Returns 0, SB_EINVAL, SB_ENOMEM,
 * or SB_ESTATE when the subscriber was dropped or the broker is closing. */
int sb_pubsub_subscribe(sb_pubsub_sub_t *s, const char *name, bool pattern);
/* Unsubscribes from one channel or pattern, or from all of that kind when name is NULL. */
int sb_pubsub_unsubscribe(sb_pubsub_sub_t *s, const char *name, bool pattern);
/* Publishes len bytes to channel; r->count is the number of deliveries (cb may be NULL). */
int sb_pubsub_publish(sb_broker_t *b, const char *channel, const void *data, size_t len,
                      sb_broker_cb cb, void *arg);
/* Moves up to max delivered messages into out (the caller frees each). Returns how many. */
size_t sb_pubsub_take(sb_pubsub_sub_t *s, sb_pubsub_msg_t **out, size_t max);
/* Whether the subscriber was dropped for exceeding its buffer. */
bool sb_pubsub_dropped(sb_pubsub_sub_t *s);
/* Ends the subscriber: no notify runs after this returns; undelivered messages are freed. */
void sb_pubsub_close(sb_pubsub_sub_t *s);
/* A snapshot of the counters (thread-safe). */
void sb_pubsub_stats(sb_broker_t *b, sb_pubsub_stats_t *out);
/* Glob matching as for patterns; exposed for front-ends (PUBSUB CHANNELS pattern) and tests. */
bool sb_glob_match(const char *pattern, size_t plen, const char *s, size_t slen);

/* --- streams -------------------------------------------------------------------------------
 *
 * A stream is a replayable log in N partitions (Kafka topics, Redis Streams): appends get an
 * offset per partition and stay readable by anyone from any offset or time until retention
 * removes them; consumer groups keep committed offsets per partition, persisted in the
 * catalog, and their lag is the distance from the committed offset to the end. A partition is
 * one journal: appends to it are acknowledged under the stream's fsync policy. */

#define SB_STREAM_PARTITIONS_MAX 256   /* partitions of one stream */
#define SB_STREAM_GROUP_MAX 64         /* bytes of a consumer group name */
#define SB_STREAM_KEY_MAX 4096         /* bytes of a record key */
#define SB_STREAM_LATEST UINT64_MAX    /* read position: the end of the partition */
#define SB_STREAM_NO_OFFSET UINT64_MAX /* a group has no committed offset for the partition */

typedef struct sb_stream_config {
  uint32_t partitions;        /* 1..SB_STREAM_PARTITIONS_MAX */
  uint64_t retention_ms;      /* drop records older than this; 0 = keep */
  uint64_t retention_bytes;   /* per partition, drop the oldest beyond this; 0 = keep */
  uint64_t max_bytes;         /* per partition: appends beyond fail SB_ELIMIT; 0 = no limit */
  uint64_t segment_bytes;     /* journal segment size; 0 = the broker's */
  sb_broker_fsync_t fsync;    /* durability of appends */
  uint32_t fsync_interval_ms; /* for SB_BROKER_FSYNC_INTERVAL */
} sb_stream_config_t;

/* One record; pointers are borrowed for the callback. */
typedef struct sb_stream_record {
  uint32_t partition;            /* its partition */
  uint64_t offset;               /* its offset in the partition */
  int64_t timestamp_ms;          /* append time, or the producer's timestamp */
  const uint8_t *key;            /* key_len bytes (may be empty) */
  size_t key_len;                /* bytes at key */
  const uint8_t *value;          /* value_len bytes */
  size_t value_len;              /* bytes at value */
  const sb_broker_attr_t *attrs; /* headers */
  size_t n_attrs;                /* count */
  uint32_t deliveries;           /* group reads and claims: deliveries to the group so far */
} sb_stream_record_t;

/* One entry of a group's pending list (delivered by a group read, not yet acknowledged). */
typedef struct sb_stream_pending {
  uint32_t partition;   /* its partition */
  uint64_t offset;      /* its offset */
  const char *consumer; /* the consumer it was last delivered to */
  uint32_t deliveries;  /* times delivered */
  int64_t idle_ms;      /* since the last delivery */
} sb_stream_pending_t;

typedef struct sb_stream_group_info {
  const char *name;          /* group name */
  const uint64_t *committed; /* per partition, or SB_STREAM_NO_OFFSET */
  uint64_t lag;              /* records after the committed offsets, all partitions */
} sb_stream_group_info_t;

typedef struct sb_stream_info {
  const char *name;                     /* borrowed */
  sb_stream_config_t config;            /* its configuration */
  const uint64_t *first;                /* per partition: the lowest stored offset */
  const uint64_t *next;                 /* per partition: the offset of the next append */
  const sb_stream_group_info_t *groups; /* consumer groups with committed offsets */
  size_t n_groups;                      /* count */
  int64_t created_ms;                   /* creation time */
} sb_stream_info_t;

void sb_stream_config_default(sb_stream_config_t *c);
/* Creates a stream (names as for queues, without ".fifo"), or checks an existing one has the
 * same configuration (SB_ESTATE otherwise). r->stream. */
int sb_stream_create(sb_broker_t *b, const char *name, const sb_stream_config_t *c, sb_broker_cb cb,
                     void *arg);
int sb_stream_delete(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg);
/* r->stream: bounds of every partition, groups and their lag. */
int sb_stream_get(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg);
int sb_stream_list(sb_broker_t *b, const char *prefix, const char *after, size_t max,
                   sb_broker_cb cb, void *arg);
/* Appends one record to `partition`, or (-1) to the partition the key hashes to (round robin
 * without a key). m's body is the value and its attributes the headers (group, dedup, trace
 * and delay are ignored); timestamp_ms 0 means now. r->records[0] has the partition, offset
 * and timestamp (no payload) once the record is durable. */
int sb_stream_append(sb_broker_t *b, const char *stream, int32_t partition, const void *key,
                     size_t key_len, const sb_broker_msg_t *m, int64_t timestamp_ms,
                     sb_broker_cb cb, void *arg);
/* Reads records of one partition from `offset` (below the first stored offset: from the
 * first; SB_STREAM_LATEST: only what is appended from now on), at most max_records and about
 * max_bytes (at least one record is returned when one is there); when there is nothing, waits
 * up to wait_ms for an append. r->records, r->count = the partition's next offset. */
int sb_stream_read(sb_broker_t *b, const char *stream, uint32_t partition, uint64_t offset,
                   size_t max_records, size_t max_bytes, int64_t wait_ms, sb_broker_cb cb,
                   void *arg);
/* r->count: the offset of the first record of the partition whose timestamp is >= ts_ms, or
 * the partition's next offset when there is none (replay from a time). */
int sb_stream_offset_for_time(sb_broker_t *b, const char *stream, uint32_t partition, int64_t ts_ms,
                              sb_broker_cb cb, void *arg);
/* Commits a group's offsets (the next offset to consume) for n partitions; an entry of
 * SB_STREAM_NO_OFFSET leaves that partition as it is. Durable when cb runs with 0. */
int sb_stream_commit(sb_broker_t *b, const char *stream, const char *group, const uint64_t *offsets,
                     size_t n, sb_broker_cb cb, void *arg);
/* r->offsets: the group's committed offset per partition (SB_STREAM_NO_OFFSET if none). */
int sb_stream_committed(sb_broker_t *b, const char *stream, const char *group, sb_broker_cb cb,
                        void *arg);

/* Consumer groups with pending lists (Redis Streams' XREADGROUP / XACK / XCLAIM / XPENDING):
 * a group read hands `consumer` up to max records of the partition that no member of the
 * group has received yet (starting at the group's committed offset, or the first record),
 * and puts each on the group's pending list until it is acknowledged; a claim moves pending
 * records idle for at least min_idle_ms to another consumer and delivers them again. Acks are
 * durable when their callback runs; deliveries and claims are recorded without waiting (after
 * a crash a record may be delivered again: at least once). */

/* r->records with deliveries set; waits up to wait_ms when there is nothing new. */
int sb_stream_group_read(sb_broker_t *b, const char *stream, const char *group,
                         const char *consumer, uint32_t partition, size_t max, int64_t wait_ms,
                         sb_broker_cb cb, void *arg);
/* Removes n offsets of the partition from the group's pending list; r->count how many were
 * pending. */
int sb_stream_ack(sb_broker_t *b, const char *stream, const char *group, uint32_t partition,
                  const uint64_t *offsets, size_t n, sb_broker_cb cb, void *arg);
/* Claims for `consumer` up to max pending records of the partition, at offsets >= start, idle
 * for at least min_idle_ms. r->records (deliveries incremented), r->count the offset to
 * continue from (0 when the pending list was scanned to its end). */
int sb_stream_claim(sb_broker_t *b, const char *stream, const char *group, const char *consumer,
                    uint32_t partition, int64_t min_idle_ms, uint64_t start, size_t max,
                    sb_broker_cb cb, void *arg);
/* r->pending: up to max entries of the partition's pending list from the lowest offset;
 * r->count the total pending in that partition. */
int sb_stream_pending(sb_broker_t *b, const char *stream, const char *group, uint32_t partition,
                      size_t max, sb_broker_cb cb, void *arg);

/* Formats a receipt handle; sb_broker_parse_receipt() reverses it. Exposed for tests and
 * front-ends that need to tell a malformed handle (0 / SB_EINVAL) from a stale one. */
int sb_broker_parse_receipt(const char *s, uint64_t *queue_id, uint64_t *seq, uint32_t *count);

/* --- consumer-side deduplication --------------------------------------------------------- */

/* A bounded set of message ids seen recently, for consumers that must process each message
 * once although delivery is at least once: remember the id after processing, skip ids
 * already remembered. Holds at most `capacity` ids, evicting the oldest; ids older than
 * ttl_ms are forgotten. Not thread-safe; caller frees with sb_dedup_free(). */
typedef struct sb_dedup sb_dedup_t;
int sb_dedup_new(size_t capacity, int64_t ttl_ms, sb_dedup_t **out);
/* Returns 1 when id was seen within ttl (nothing changes), 0 after remembering it now, or
 * SB_EINVAL for an empty id. */
int sb_dedup_check_and_add(sb_dedup_t *d, const char *id, size_t len, int64_t now_ms);
void sb_dedup_free(sb_dedup_t *d);

#endif
