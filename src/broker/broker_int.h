/*
 * The broker's insides, shared by broker.c (thread, catalog, operations), queue.c (the work
 * queue engine) and move.c (dead-letter redrive tasks).
 *
 * # Files
 *
 *   <data_dir>/catalog/        a journal of catalog records (queues, move tasks)
 *   <data_dir>/q-<id>/         one journal per queue: its messages and their state changes
 *
 * <id> is the queue's number in 20 decimal digits, assigned once and never reused while the
 * catalog remembers the queue, so a deleted and re-created queue never sees its
 * predecessor's files or receipt handles.
 *
 * # Queue journal records (the journal's own format is in log/segment.h)
 *
 * The first byte of a record's key says what the record is:
 *
 *   key                 value                                timestamp    headers
 *   'm' + id (37 B)     the body                             sent time    attributes + system
 *   'd'                 n x u64 seq: deleted                 delete time  none
 *   'r'                 n x (u64 seq, u32 count, i64 first)  receive time none
 *   'p' + u64 upto      empty: every message with seq < upto purge time   none
 *                       is deleted
 *
 * A message's seq is its record's offset. Integers are little-endian. A message record's
 * headers are its attributes — header name = attribute name, header value = type, one NUL,
 * value bytes — followed by system fields, whose names start with ':' (attribute names never
 * do):
 *
 *   :g group id   :d deduplication id   :t trace header   :v delay in ms (decimal)
 *   :ds source queue, :dc receive count, :df first and :dl last receive time (decimal ms):
 *       the failure metadata a message gains when it is dead-lettered
 *
 * A dead-lettered message is appended to the dead-letter queue with the same id, body,
 * attribute headers and timestamp (so retention keeps counting from the original send) plus
 * the :d* metadata; the source then records a 'd' for it. A redriven message is appended to
 * its destination with the same id, body and attributes, without the :d* fields.
 *
 * Validity: a record whose key is not one of the shapes above, or whose value length is not
 * a multiple of its item size, is skipped by recovery (it cannot come from this code; the
 * journal has already rejected torn or corrupt records).
 *
 * # Recovery of a queue
 *
 * Replay the journal from its first record: 'm' adds a message (delayed until timestamp +
 * :v if that is still ahead), 'r' restores receive counts, 'd' and 'p' remove messages. A
 * 'd' or 'r' for a seq that is not stored (below the journal's first offset, or already
 * deleted) is ignored. Messages older than the queue's retention are dropped. Nothing is in
 * flight after recovery: leases are not persisted, so every undeleted message is visible.
 *
 * # Index snapshots (<data_dir>/q-<id>/index.snap)
 *
 * Replaying a large backlog costs a pass over every record, so a clean shutdown writes the
 * queue's RAM index to index.snap (via a temporary file and rename). Little-endian, host
 * layout (the entry size guards against another build's layout):
 *
 *   off size  field
 *   0   8     magic "SBQSNAP1"
 *   8   4     sizeof(sb__qmsg_t)
 *   12  4     flags: bit 0 FIFO
 *   16  8     applied: every record below this offset is reflected in the snapshot
 *   24  8     n: entries
 *   32  4     groups (FIFO)
 *   36  4     dedup entries (FIFO)
 *   40  8     checksum of everything after the 48-byte header (queue.c, snap_sum: four
 *             multiply-rotate lanes over 8-byte words, fast enough not to slow loading)
 *   48        n sb__qmsg_t, by seq; then per group u16 length + id; then per dedup entry
 *             u16 length + key, i64 expires, u64 seq, 36-byte message id
 *
 * applied is the offset after the last journal acknowledgement the queue processed.
 * Acknowledgements arrive in offset order and every record's effect on the index is applied
 * at the latest when its acknowledgement is processed, so the index then reflects exactly
 * the records below applied (receive counts may be ahead, which is harmless). Recovery loads
 * a snapshot whose checksum holds and whose applied is not beyond the journal's end, drops
 * entries below the journal's first offset (retention removed them: deleted or expired), and
 * replays the records from max(applied, first). The replay is correct for any older snapshot
 * too, which is why the file is kept after loading and a crash later only costs a longer
 * replay; anything wrong with the file means a full replay.
 *
 * # Catalog records
 *
 * Catalog records are journal records whose key is a kind byte and a name, and whose
 * headers hold the fields as decimal or text values (so fields can be added without a new
 * format):
 *
 *   'q' + name     a queue as it is now: id, created, modified, every config field, and the
 *                  front-end attributes as headers named "x:<name>"
 *   'Q' + name     the queue was deleted (header id)
 *   't' + handle   a move task as it is now
 *
 * The catalog replays last-writer-wins by key. Compaction appends every live record again and
 * then lets the journal drop the sealed segments below that snapshot: any suffix of the
 * journal that contains the snapshot replays to the same state, because a delete always
 * follows the put it deletes.
 */
#ifndef SB_BROKER_INT_H
#define SB_BROKER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/arena.h"
#include "log/journal.h"
#include "switchboard/broker.h"

#define SB__BROKER_PATH_CAP 4096
#define SB__RECORD_ATTR_TYPE_MAX 255
#define SB__QUEUE_READ_BUF (64u << 10) /* a queue reader's buffer (grows for big records) */
#define SB__MOVE_BATCH 10              /* messages a move task has in flight at once */
#define SB__SWEEP_MS 1000              /* retention sweep period */
#define SB__CATALOG_SEGMENT (1u << 20) /* catalog segment size: small so compaction frees */
#define SB__CATALOG_COMPACT (4u << 20) /* compact the catalog beyond this many bytes */

typedef struct sb__queue sb__queue_t;

/* Front-end attributes kept with a queue, topic or subscription: kv[2i] names, kv[2i+1]
 * values, sorted by name, all owned. */
typedef struct sb__kvs {
  char **kv; /* 2 * n strings; owned */
  size_t n;  /* pairs; n <= SB_BROKER_KV_MAX */
} sb__kvs_t;
typedef struct sb__op sb__op_t;
typedef struct sb__topic sb__topic_t;
typedef struct sb__filter sb__filter_t;
typedef struct sb__pubsub sb__pubsub_t;
typedef struct sb__stream sb__stream_t;

/* Message states in a queue's RAM index. */
enum {
  SB__M_VISIBLE = 1, /* can be received */
  SB__M_DELAYED,     /* visible at visible_at */
  SB__M_INFLIGHT,    /* leased until visible_at */
  SB__M_DELETING,    /* a 'd' record is being written */
  SB__M_MOVING,      /* being copied to the dead-letter queue or a move destination */
  SB__M_GONE,        /* deleted: a tombstone until compaction */
};

/* One stored message in RAM: 40 bytes; the body and attributes stay in the journal. */
typedef struct sb__qmsg {
  uint64_t seq;           /* journal offset; entries are sorted by seq */
  int64_t visible_at;     /* ms: when a DELAYED or INFLIGHT message becomes visible */
  int64_t sent_ms;        /* record timestamp */
  uint32_t first_recv;    /* first receive relative to sent_ms (queue.c set_first_recv) */
  uint32_t group;         /* FIFO: index into the queue's groups + 1; 0 otherwise */
  uint16_t receive_count; /* deliveries so far (saturates at 65535) */
  uint8_t state;          /* SB__M_* */
  uint8_t in_ready;       /* standard queues: seq is in the ready ring */
} sb__qmsg_t;

/* A timer entry: a message whose lease or delay ends at `when`. Stale entries (the message's
 * visible_at or state changed since) are skipped when popped. */
typedef struct sb__qtimer {
  int64_t when; /* ms */
  uint64_t seq; /* the message */
} sb__qtimer_t;

/* A FIFO message group. Owned by its queue. */
typedef struct sb__qgroup {
  char *id;          /* NUL-terminated group id; owned */
  uint32_t hnext;    /* next group in the hash chain: index + 1, 0 = end */
  uint64_t *seqs;    /* ring of the group's stored messages in order; owned */
  size_t head, n;    /* ring position and count; n <= cap */
  size_t cap;        /* ring capacity (power of two) */
  uint32_t inflight; /* messages of the group leased now */
  bool in_ready;     /* the group's index is in the queue's ready ring */
} sb__qgroup_t;

/* A deduplication window entry (FIFO): in its queue's hash chain and expiry list. */
typedef struct sb__qdedup {
  struct sb__qdedup *hnext;      /* hash chain */
  struct sb__qdedup *next;       /* expiry list (insertion order = expiry order) */
  int64_t expires;               /* ms; 0 = void (its send failed) */
  uint64_t seq;                  /* the stored message, 0 while its send is pending */
  char id[SB_BROKER_ID_LEN + 1]; /* the message id to answer duplicates with */
  char key[];                    /* dedup id, NUL-terminated */
} sb__qdedup_t;

/* A long-poll receive waiting for messages, linked into its queue's waiter list. */
typedef struct sb__waiter {
  struct sb__waiter *prev, *next;
  sb__op_t *op;     /* the receive operation */
  int64_t deadline; /* ms */
} sb__waiter_t;

/* A queue. Owned by the broker thread; freed once deleted and no journal acknowledgement is
 * outstanding (pending == 0). */
struct sb__queue {
  char name[SB_BROKER_NAME_MAX + 1]; /* first member: sb__byname_* index it */
  uint64_t id;                       /* directory and receipt-handle number */
  sb_queue_config_t cfg;             /* current configuration */
  sb__kvs_t kv;                      /* front-end attributes and tags */
  int64_t created_ms, modified_ms;
  sb_journal_t *j;         /* the queue's journal; owned */
  sb_journal_reader_t *rd; /* random-access reader for bodies; owned */
  uint64_t pending;        /* journal appends whose acknowledgement is not yet processed */
  uint64_t applied;        /* the index reflects every record below this offset (snapshots) */
  bool deleted;            /* removed from the catalog; freed when pending reaches 0 */

  sb__qmsg_t *m;         /* entries [head, len) sorted by seq, GONE ones included; owned */
  size_t head, len, cap; /* vector positions; head <= len <= cap */
  uint64_t live;         /* entries not GONE */
  uint64_t n_visible, n_inflight, n_delayed; /* depth counters */
  uint64_t sending; /* sends appended, not yet acknowledged (count toward depth) */

  uint64_t *ready; /* ring of ready seqs (standard) or group indices (FIFO); owned */
  size_t ready_head, ready_n, ready_cap; /* ring; ready_cap is a power of two */

  sb__qtimer_t *timers; /* min-heap by when; owned */
  /* Retention works from the head of the entries, which are in seq order; sent_ms mostly is
   * too, except for copies that keep an older send time (dead-lettered and redriven
   * messages). Those also go into this min-heap by sent_ms (when = sent_ms), so they expire
   * on time even behind younger messages. Stale entries (deleted since) are skipped. */
  sb__qtimer_t *old;
  size_t n_old, old_cap;
  int64_t newest_sent_ms; /* the largest sent_ms inserted so far */
  size_t n_timers, timers_cap;

  sb__qgroup_t *groups; /* FIFO groups; owned */
  size_t n_groups, groups_cap;
  uint32_t *group_hash;  /* chain heads: group index + 1, 0 empty; owned */
  size_t group_hash_cap; /* power of two, >= n_groups */

  sb__qdedup_t **dd_buckets;        /* FIFO dedup window hash (dd_cap chains); owned */
  size_t dd_cap, dd_n;              /* buckets (power of two), entries */
  sb__qdedup_t *dd_first, *dd_last; /* expiry list, oldest first; owns the entries */

  sb__waiter_t *wait_first, *wait_last; /* long polls, oldest first */
  int64_t next_deadline;  /* earliest timer or waiter deadline registered with the broker */
  sb_queue_stats_t stats; /* counters (depth fields are filled on demand) */
};

/* The kinds of operation the broker thread runs. */
typedef enum sb__op_kind {
  SB__OP_CREATE,
  SB__OP_UPDATE,
  SB__OP_DELETE_QUEUE,
  SB__OP_GET,
  SB__OP_LIST,
  SB__OP_DLQ_SOURCES,
  SB__OP_SEND,
  SB__OP_RECEIVE,
  SB__OP_DELETE,
  SB__OP_VISIBILITY,
  SB__OP_PURGE,
  SB__OP_PEEK,
  SB__OP_MOVE_START,
  SB__OP_MOVE_CANCEL,
  SB__OP_MOVE_LIST,
  SB__OP_TOPIC_CREATE,
  SB__OP_TOPIC_UPDATE,
  SB__OP_TOPIC_DELETE,
  SB__OP_TOPIC_GET,
  SB__OP_TOPIC_LIST,
  SB__OP_SUBSCRIBE,
  SB__OP_SUB_UPDATE,
  SB__OP_UNSUBSCRIBE,
  SB__OP_SUBS,
  SB__OP_PUBLISH,
  SB__OP_PS_OPEN,
  SB__OP_PS_SUBSCRIBE,
  SB__OP_PS_UNSUBSCRIBE,
  SB__OP_PS_PUBLISH,
  SB__OP_PS_CLOSE,
  SB__OP_STREAM_CREATE,
  SB__OP_STREAM_DELETE,
  SB__OP_STREAM_GET,
  SB__OP_STREAM_LIST,
  SB__OP_STREAM_APPEND,
  SB__OP_STREAM_READ,
  SB__OP_STREAM_TIME,
  SB__OP_STREAM_COMMIT,
  SB__OP_STREAM_COMMITTED,
  SB__OP_STREAM_GREAD,
  SB__OP_STREAM_ACK,
  SB__OP_STREAM_CLAIM,
  SB__OP_STREAM_PENDING,
  SB__OP_END_WAITS, /* end every long poll now */
} sb__op_kind_t;

/* A journal acknowledgement's continuation, run on the broker thread. */
typedef void (*sb__ack_fn)(sb_broker_t *b, void *ctx, int status, uint64_t seq);
typedef struct sb__ack sb__ack_t;

/* Little-endian integers of `bytes` bytes (1..8) in record values and snapshot files. */
static inline uint64_t sb__get_le(const uint8_t *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}
static inline void sb__put_le(uint8_t *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* One operation. Allocated by the API function (copies of every argument live in its arena),
 * queued to the broker thread, freed after its callback ran. */
struct sb__op {
  sb__op_t *next; /* inbox link */
  sb__op_kind_t kind;
  sb_broker_cb cb;
  void *arg;
  sb_arena_t arena;                   /* argument copies and result memory */
  char name[SB_BROKER_NAME_MAX + 1];  /* the queue (or DLQ source) */
  char name2[SB_BROKER_NAME_MAX + 1]; /* destination, prefix, after, handle */
  bool has_name2;
  sb_queue_config_t cfg;
  sb_broker_kv_t *kv;
  size_t n_kv;
  sb_broker_msg_t *msgs; /* SEND: arena copies */
  char **receipts;       /* DELETE, VISIBILITY */
  size_t n;              /* messages, receipts, max */
  int64_t visibility_ms, wait_ms;
  uint64_t from;                /* PEEK */
  char *attr_name, *attr_value; /* PEEK filter */
  uint32_t rate;                /* MOVE_START */

  /* progress */
  size_t outstanding;       /* journal acknowledgements still expected */
  int status;               /* the operation's status */
  sb_broker_sent_t *sent;   /* SEND results */
  sb_broker_delivery_t *dl; /* RECEIVE/PEEK results */
  size_t n_dl;
  int *statuses;               /* DELETE/VISIBILITY */
  uint64_t count;              /* PURGE */
  sb__waiter_t waiter;         /* RECEIVE long poll */
  const sb_queue_info_t *info; /* CREATE, UPDATE, GET */
  char **names;                /* LIST, DLQ_SOURCES */
  size_t n_names;
  const char *next_token; /* LIST */
  sb_move_task_t *tasks;  /* MOVE_* */
  size_t n_tasks;

  /* topics */
  sb_topic_config_t tcfg;            /* TOPIC_CREATE */
  sb_sub_config_t sub;               /* SUBSCRIBE, SUB_UPDATE: arena copies */
  sb_topic_deliver_fn deliver;       /* callback subscriptions */
  void *deliver_ud;                  /* their argument */
  char *routing_key;                 /* PUBLISH, or NULL */
  sb_broker_kv_t *meta;              /* PUBLISH metadata */
  size_t n_meta;                     /* count */
  const sb_topic_info_t *topic_info; /* TOPIC_CREATE/UPDATE/GET result */
  sb_sub_info_t *subs_out;           /* SUBSCRIBE/SUB_UPDATE/SUBS result */
  size_t n_subs_out;                 /* count */
  sb_pubsub_sub_t *ps;               /* PS_*: the subscriber */

  /* streams */
  sb_stream_config_t scfg;             /* STREAM_CREATE */
  int32_t partition;                   /* APPEND (-1: by key), READ, TIME */
  uint8_t *key;                        /* APPEND key (arena) */
  size_t key_len;                      /* bytes at key */
  int64_t ts;                          /* APPEND timestamp, TIME target */
  size_t max_bytes;                    /* READ */
  uint64_t *offsets;                   /* COMMIT input, COMMITTED result (arena) */
  size_t n_offsets;                    /* count */
  const sb_stream_info_t *stream_info; /* CREATE/GET result */
  sb_stream_record_t *records;         /* APPEND/READ result (arena) */
  size_t n_records;                    /* count */
  sb_stream_pending_t *pending;        /* PENDING result (arena) */
  size_t n_pending;                    /* count */

  sb__queue_t *ack_queue; /* the queue a continuation works on (sends, deletes, purges) */
};

typedef struct sb__move sb__move_t;

/* A subscription. Owned by its topic; freed once removed and no copy is in flight. */
typedef struct sb__sub {
  char id[SB_BROKER_ID_LEN + 1];
  sb__topic_t *topic; /* owner; NULL once removed */
  sb_sub_kind_t kind;
  char queue[SB_BROKER_NAME_MAX + 1];  /* SB_SUB_QUEUE's target */
  char stream[SB_BROKER_NAME_MAX + 1]; /* SB_SUB_STREAM's target */
  char *filter;                        /* policy text or NULL; owned */
  sb__filter_t *f;                     /* compiled policy or NULL; owned */
  bool filter_body;
  char *binding;   /* routing pattern or NULL; owned */
  char **hn, **hv; /* n_headers names and values (a NULL value = presence); owned */
  size_t n_headers;
  bool headers_any;
  char dead_letter[SB_BROKER_NAME_MAX + 1];
  char format[32];
  sb__kvs_t kv;
  sb_topic_deliver_fn fn; /* callback subscriptions */
  void *ud;
  uint64_t pending; /* queue and stream copies in flight */
  uint64_t delivered, filtered, failed, dead_lettered;
} sb__sub_t;

struct sb__topic {
  char name[SB_BROKER_NAME_MAX + 1]; /* first member: sb__byname_* index it */
  sb_topic_config_t cfg;
  sb__kvs_t kv;
  int64_t created_ms;
  uint64_t published;
  sb__sub_t **subs; /* owned */
  size_t n_subs, subs_cap;
};

#define SB__FORMATS_MAX 8

typedef struct sb__format {
  char name[32];
  sb_topic_format_fn fn;
  void *ud;
} sb__format_t;

/* The broker. The inbox is the only state shared between threads. */
struct sb_broker {
  char dir[SB__BROKER_PATH_CAP - 512]; /* room for "/q-<id>/<file>" under it */
  sb_broker_opts_t opts;
  uv_loop_t loop;   /* the broker thread's loop */
  uv_async_t wake;  /* inbox doorbell */
  uv_timer_t timer; /* earliest queue deadline */
  uv_timer_t sweep; /* retention and catalog compaction */
  uv_thread_t thread;
  pthread_mutex_t mu; /* guards inbox_first/last, acks_first/last and closing */
  sb__op_t *inbox_first, *inbox_last;
  sb__ack_t *acks_first, *acks_last; /* journal acknowledgements (broker.c, struct sb__ack) */
  bool closing;                      /* no new operations */
  _Atomic bool draining;             /* sb_broker_end_waits: long polls do not wait */
  bool stopping;                     /* broker thread: finish and exit */

  /* broker thread only */
  sb_journal_t *catalog;
  uint64_t catalog_pending; /* catalog appends not yet acknowledged */
  sb__queue_t **queues;     /* live queues sorted by name */
  size_t n_queues, queues_cap;
  sb__queue_t **dead; /* deleted queues waiting for pending == 0 */
  size_t n_dead, dead_cap;
  uint64_t next_queue_id;
  sb__qtimer_t *deadlines; /* min-heap of (when, queue id): queues with something due */
  size_t n_deadlines, deadlines_cap;
  sb__topic_t **topics;                  /* topics sorted by name */
  size_t n_topics, topics_cap;           /* count, allocated */
  sb__format_t formats[SB__FORMATS_MAX]; /* guarded by mu (registered from any thread) */
  size_t n_formats;                      /* count */
  sb__stream_t **streams;                /* streams sorted by name */
  size_t n_streams, streams_cap;         /* count, allocated */
  sb__pubsub_t *ps;                      /* pub/sub registry (broker thread; counters atomic) */
  sb__move_t *moves;                     /* move tasks, newest first */
  uint64_t next_move;                    /* task handle counter */
};

/* --- record.c: attributes in journal records ---------------------------------------------- */
typedef struct sb__hdrs {
  sb_journal_header_t h[SB_BROKER_ATTRS_MAX + 12]; /* attributes + system fields */
  size_t n;                                        /* used */
} sb__hdrs_t;
/* Add a header (value copied into a), a decimal number, or an attribute (type NUL value).
 * Return 0, SB_EINVAL (too many) or SB_ENOMEM. */
int sb__hdr_add(sb__hdrs_t *hs, sb_arena_t *a, const char *name, const void *v, size_t vl);
int sb__hdr_add_num(sb__hdrs_t *hs, sb_arena_t *a, const char *name, int64_t v);
int sb__hdr_add_attr(sb__hdrs_t *hs, sb_arena_t *a, const sb_broker_attr_t *at);
/* Reads the attributes of record r into an array in a (copies). Returns 0 or SB_ENOMEM. */
int sb__read_attrs(sb_arena_t *a, const sb_journal_record_t *r, const sb_broker_attr_t **out,
                   size_t *n_out);

/* --- kv.c ------------------------------------------------------------------------------- */
/* Sets name to value (an empty value removes it). Returns 0, SB_ELIMIT or SB_ENOMEM. */
int sb__kvs_set(sb__kvs_t *k, const char *name, const char *value);
void sb__kvs_free(sb__kvs_t *k);
/* Copies k into arena memory as an array of pairs; returns NULL when out of memory. */
sb_broker_kv_t *sb__kvs_export(const sb__kvs_t *k, sb_arena_t *a);

/* Sorted name indexes: arrays of pointers to structs whose FIRST member is their
 * NUL-terminated name (sb__queue_t, sb__topic_t). arrp points to the array pointer. */
size_t sb__byname_pos(const void *arr, size_t n, const char *name, bool *found);
/* Returns 0, SB_ESTATE (the name is taken) or SB_ENOMEM. */
int sb__byname_insert(void *arrp, size_t *n, size_t *cap, void *item);
/* Removes item (found by its name) when it is in the array. */
void sb__byname_remove(void *arr, size_t *n, const void *item);

/* --- broker.c ----------------------------------------------------------------------------- */
int64_t sb__now_ms(void);
/* Completes op: runs its callback with its results, then frees it. */
void sb__op_finish(sb_broker_t *b, sb__op_t *op, int status);
/* Appends e to q's journal (q NULL: the catalog); fn(b, ctx, status, seq) runs on the broker
 * thread once durable or failed, and q stays allocated until then (q->pending). Returns 0 or
 * the append's error (fn then never runs). */
int sb__append(sb_broker_t *b, sb__queue_t *q, const sb_journal_entry_t *e, sb__ack_fn fn,
               void *ctx);
sb__queue_t *sb__queue_find(sb_broker_t *b, const char *name);
sb__queue_t *sb__queue_by_id(sb_broker_t *b, uint64_t id);
/* Adds a deadline-heap entry (when in ms; id is a queue id, MOVE, or a stream id above
 * SB__STREAM_DEADLINE_BASE). */
void sb__deadline_push(sb_broker_t *b, int64_t when, uint64_t id);
/* Appends e to journal j (not a queue's: no pending accounting); fn as for sb__append. */
int sb__append_j(sb_broker_t *b, sb_journal_t *j, const sb_journal_entry_t *e, sb__ack_fn fn,
                 void *ctx);
/* Tells the broker that q has something due at `when` (ms). */
void sb__queue_schedule(sb_broker_t *b, sb__queue_t *q, int64_t when);
/* A queue's pending acknowledgement was processed; frees a deleted queue at zero. */
void sb__queue_unpend(sb_broker_t *b, sb__queue_t *q);
int sb__catalog_put_move(sb_broker_t *b, const sb_move_task_t *t);
/* Asks for a move-task tick at `when` (ms; 0 = as soon as possible). */
void sb__move_schedule(sb_broker_t *b, int64_t when);

/* Catalog record building and reading, shared by the catalog's writers. */
typedef struct sb__rec {
  sb_journal_header_t h[48 + 2 * SB_BROKER_KV_MAX];
  size_t n;
  char num[32][24]; /* storage of decimal values */
  size_t n_num;
  char names[2 * SB_BROKER_KV_MAX][264]; /* storage of prefixed names */
  size_t n_names;
} sb__rec_t;
void sb__rec_str(sb__rec_t *r, const char *name, const char *v);
void sb__rec_num(sb__rec_t *r, const char *name, int64_t v);
/* Adds "<prefix><name>" = value. */
void sb__rec_pfx(sb__rec_t *r, const char *prefix, const char *name, const char *v);
/* Appends a catalog record with key (kind byte + name); op (or NULL) finishes when durable. */
int sb__catalog_append(sb_broker_t *b, char kind, const char *name, sb__rec_t *r, sb__op_t *op);
bool sb__rec_get(const sb_journal_record_t *r, const char *name, char *out, size_t cap);
int64_t sb__rec_getnum(const sb_journal_record_t *r, const char *name);
sb__op_t *sb__op_new(sb__op_kind_t kind, sb_broker_cb cb, void *arg);
/* Queues op for the broker thread (takes ownership). Returns 0 or SB_ESTATE (closing). */
int sb__post(sb_broker_t *b, sb__op_t *op);
/* Allocates an op carrying a checked name (<= SB_BROKER_NAME_MAX bytes). */
int sb__name_op(sb_broker_t *b, sb__op_kind_t kind, const char *name, sb_broker_cb cb, void *arg,
                sb__op_t **out);
/* An op with just a name, posted. */
int sb__simple_op(sb_broker_t *b, sb__op_kind_t kind, const char *name, sb_broker_cb cb, void *arg);
/* A listing op (prefix, start after, at most max in 1..1000), posted. */
int sb__list_op(sb_broker_t *b, sb__op_kind_t kind, const char *prefix, const char *after,
                size_t max, sb_broker_cb cb, void *arg);
/* Runs a LIST-kind op over a sorted name index (queues, topics, streams): prefix op->name,
 * after op->name2, at most op->n; finishes op. */
void sb__run_list(sb_broker_t *b, sb__op_t *op, const void *arr, size_t n);
/* Journal options for a queue or stream with this durability. */
void sb__journal_opts(sb_broker_t *b, sb_broker_fsync_t fsync, uint32_t interval_ms,
                      sb_journal_opts_t *jo);
/* Copies n front-end pairs into op->kv. Returns 0, SB_EINVAL or SB_ENOMEM. */
int sb__copy_kv(sb__op_t *op, const sb_broker_kv_t *kv, size_t n);
/* Copies n bytes and a NUL into a; NULL for NULL p or out of memory. */
const char *sb__arena_copy(sb_arena_t *a, const void *p, size_t n);
/* Checks one message attribute / one message to send. Return 0 or SB_EINVAL. */
int sb__check_attr(const sb_broker_attr_t *a);
int sb__check_msg(const sb_broker_msg_t *m);
/* Deep-copies m into arena a as *c. Returns 0 or SB_ENOMEM. */
int sb__copy_msg(sb_arena_t *a, const sb_broker_msg_t *m, sb_broker_msg_t *c);
void sb__op_free(sb__op_t *op);

/* --- stream.c ----------------------------------------------------------------------------- */
#define SB__STREAM_DEADLINE_BASE (1ull << 62) /* deadline ids at and above are stream ids */
void sb__stream_run(sb_broker_t *b, sb__op_t *op);
bool sb__stream_exists(sb_broker_t *b, const char *name);
/* Applies a catalog record of kind 'x', 'X' or 'c' during recovery. */
void sb__stream_replay(sb_broker_t *b, const sb_journal_record_t *r);
/* Opens the journals of every recovered stream. */
int sb__stream_open_all(sb_broker_t *b);
void sb__stream_compact(sb_broker_t *b);
void sb__stream_sweep(sb_broker_t *b, int64_t now);
/* Runs the long-poll timeouts of stream id; returns its next deadline or INT64_MAX. */
int64_t sb__stream_due(sb_broker_t *b, uint64_t id, int64_t now);
/* Ends long polls and closes every journal (shutdown, before the final drain). */
void sb__stream_close_all(sb_broker_t *b);
/* Ends every stream long poll now. */
void sb__stream_end_waits(sb_broker_t *b);
void sb__stream_free_all(sb_broker_t *b);
/* Whether a live stream has this id (its s-<id>-* directories are not orphans). */
bool sb__stream_owns(sb_broker_t *b, uint64_t id);

/* --- pubsub.c ----------------------------------------------------------------------------- */
int sb__pubsub_init(sb_broker_t *b);
void sb__pubsub_run(sb_broker_t *b, sb__op_t *op);
void sb__pubsub_free_all(sb_broker_t *b);

/* --- topic.c ------------------------------------------------------------------------------ */
void sb__topic_run(sb_broker_t *b, sb__op_t *op);
/* Applies a catalog record of kind 'o', 'O', 's' or 'S' during recovery. */
void sb__topic_replay(sb_broker_t *b, const sb_journal_record_t *r);
/* Appends every topic and queue subscription again (catalog compaction). */
void sb__topic_compact(sb_broker_t *b);
void sb__topic_free_all(sb_broker_t *b);

/* --- queue.c ------------------------------------------------------------------------------ */
/* Opens q's journal and replays it (see "Recovery of a queue"). */
int sb__queue_open(sb_broker_t *b, sb__queue_t *q);
/* Closes the journal and frees every RAM structure of q (not q itself). */
void sb__queue_close(sb__queue_t *q);
/* Writes q's index snapshot (best effort: on any failure the old file, or none, stays). Call
 * only when no acknowledgement of q is outstanding, i.e. at shutdown after the last drain. */
void sb__queue_snapshot(sb_broker_t *b, sb__queue_t *q);
void sb__queue_send(sb_broker_t *b, sb__queue_t *q, sb__op_t *op);
/* A random UUID in text form (stable message and subscription ids). */
void sb__make_id(char out[SB_BROKER_ID_LEN + 1]);
void sb__queue_receive(sb_broker_t *b, sb__queue_t *q, sb__op_t *op);
void sb__queue_delete_msgs(sb_broker_t *b, sb__queue_t *q, sb__op_t *op);
void sb__queue_visibility(sb_broker_t *b, sb__queue_t *q, sb__op_t *op);
void sb__queue_purge(sb_broker_t *b, sb__queue_t *q, sb__op_t *op);
void sb__queue_peek(sb_broker_t *b, sb__queue_t *q, sb__op_t *op);
/* Runs q's due timers and long-poll timeouts, and returns the next deadline (INT64_MAX for
 * none). */
int64_t sb__queue_tick(sb_broker_t *b, sb__queue_t *q, int64_t now);
/* Drops messages past retention; returns the low-water seq for journal retention. */
void sb__queue_sweep(sb_broker_t *b, sb__queue_t *q, int64_t now);
/* Ends every long poll of q with what it has (on delete and close). */
void sb__queue_end_waiters(sb_broker_t *b, sb__queue_t *q);
void sb__queue_fill_stats(const sb__queue_t *q, sb_queue_stats_t *s);
/* Reads the stored record of seq into *rec (borrowing q's reader). Returns 0 or a code. */
int sb__queue_read(sb__queue_t *q, uint64_t seq, sb_journal_record_t *rec);
/* Finds the entry of seq, or NULL. */
sb__qmsg_t *sb__queue_entry(sb__queue_t *q, uint64_t seq);
/* Appends a copy of record rec to q (a dead-letter move or a redrive): with_dlq adds the
 * failure metadata of src_entry from queue src, otherwise the :d* fields are dropped.
 * fn(b, ctx, status, seq) runs once the copy is durable and indexed in q. */
int sb__queue_append_copy(sb_broker_t *b, sb__queue_t *q, const sb_journal_record_t *rec,
                          const sb__queue_t *src, const sb__qmsg_t *src_entry, int64_t ts,
                          sb__ack_fn fn, void *ctx);
/* Removes seq from q durably (a 'd' record); fn runs when done. */
int sb__queue_remove(sb_broker_t *b, sb__queue_t *q, uint64_t seq, sb__ack_fn fn, void *ctx);
/* Makes a MOVING entry visible again after a failed move. */
void sb__queue_unmove(sb_broker_t *b, sb__queue_t *q, uint64_t seq);
/* Marks the next visible message at or after `from` MOVING and sets *seq; false if none. */
bool sb__queue_take_visible(sb__queue_t *q, uint64_t from, uint64_t *seq);

/* --- move.c ------------------------------------------------------------------------------- */
void sb__move_start(sb_broker_t *b, sb__op_t *op);
void sb__move_cancel(sb_broker_t *b, sb__op_t *op);
void sb__move_list(sb_broker_t *b, sb__op_t *op);
/* Resumes a task recovered from the catalog (state RUNNING). */
int sb__move_restore(sb_broker_t *b, const sb_move_task_t *t, uint64_t cursor);
/* Advances running tasks that may proceed at now; returns the next deadline. */
int64_t sb__move_tick(sb_broker_t *b, int64_t now);
void sb__move_free_all(sb_broker_t *b);

#endif
