/*
 * sb_journal: the broker's storage engine — one segmented append-only log per partition, with
 * group commit, recovery, sparse indexes, retention and backpressure. The disk format and the
 * recovery algorithm are described in segment.h.
 *
 * ## Threads
 *
 * Journals share a pool of writer threads (journal.c, "the writer pool": one per open journal
 * up to 8, living for the process). Every disk write and every fsync of records happens on
 * one of them, and one journal is only ever run by one at a time, so everything below holds
 * per journal as if it had a thread of its own; callers never block on the disk:
 *
 *   producer threads                       a writer thread
 *   sb_journal_append(e, cb, arg)
 *     encode + checksum e (caller's CPU)
 *     queue it under the mutex  -------->  take everything queued (up to a batch limit)
 *     return 0                             assign offsets, one pwritev for the batch
 *                                          one fdatasync (fsync=always)
 *                                          publish: readers now see the records
 *                                          cb(arg, 0, offset) for each, in offset order
 *
 * While one batch is being written and synced the next one accumulates, so N producers share
 * one fsync (group commit) without any timer.
 *
 * Acknowledgements are called ON A WRITER THREAD. They must be short and must not block;
 * they may call sb_journal_append and the reader functions, but never sb_journal_close. A
 * libuv front-end copies (status, offset) into a queue owned by its loop and wakes the loop
 * with uv_async_send — the journal stays free of libuv so the broker, tests and tools can use
 * it without a loop.
 *
 * sb_journal_append, sb_journal_retain, sb_journal_bounds, sb_journal_stats and the reader
 * functions are thread-safe (a reader object itself belongs to one thread at a time).
 *
 * ## Durability (sb_journal_fsync_t)
 *
 *   ALWAYS    the acknowledgement runs after the fdatasync covering the record returned;
 *             readers see a record only once it is durable (the default).
 *   INTERVAL  acknowledged after the write(2); fdatasync at most every interval_ms while there
 *             is unsynced data. A crash may lose the last interval_ms of acknowledged records.
 *   NEVER     acknowledged after the write(2); the kernel decides when data reaches the disk.
 *
 * ## Backpressure
 *
 * sb_journal_append refuses a record up front — the callback is then not called — with
 * SB_ELIMIT when the journal would exceed max_bytes, SB_ENOSPC when the file system's free
 * space (statvfs, refreshed by the writer after every batch) minus what is queued would drop
 * below disk_reserve_bytes, and SB_EAGAIN when more than max_pending_bytes wait for the
 * writer. A write or fsync that fails (ENOSPC, EIO) fails exactly the records of that batch:
 * the file is cut back to the last acknowledged byte, their callbacks get SB_ENOSPC or
 * -errno, their offsets are reused, and the next batch tries again — the journal recovers by
 * itself when space returns.
 *
 * ## Memory
 *
 * RAM holds the queued records, one sparse index per segment (16 bytes per index_interval
 * bytes of log) and one bounded buffer per reader. Out of memory fails the call that needed
 * the memory with SB_ENOMEM and leaves the journal usable.
 */
#ifndef SB_LOG_JOURNAL_H
#define SB_LOG_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "log/segment.h"

#define SB_JOURNAL_SEGMENT_BYTES_DEFAULT (64u << 20) /* roll the active segment at this size */
#define SB_JOURNAL_SEGMENT_BYTES_MAX                                                               \
  (1u << 30)                                    /* index positions are u32; a batch may overshoot  \
                                                 */
#define SB_JOURNAL_SEGMENT_BYTES_MIN 4096u      /* smaller segments only make more files */
#define SB_JOURNAL_INDEX_INTERVAL_DEFAULT 4096u /* bytes of log per sparse index entry */
#define SB_JOURNAL_PENDING_DEFAULT (64u << 20)  /* queued bytes before appends get SB_EAGAIN */
#define SB_JOURNAL_BATCH_BYTES_MAX (8u << 20)   /* bytes per write+fsync batch */
#define SB_JOURNAL_READ_BUF_DEFAULT                                                                \
  (256u << 10) /* a reader's buffer, grown only for big records                                    \
                */

typedef enum sb_journal_fsync {
  SB_JOURNAL_FSYNC_ALWAYS = 0, /* ack after the covering fdatasync (default) */
  SB_JOURNAL_FSYNC_INTERVAL,   /* ack after write; fdatasync every interval_ms */
  SB_JOURNAL_FSYNC_NEVER,      /* ack after write; never fdatasync */
} sb_journal_fsync_t;

/* Test-only I/O interposition (fault injection and fsync tracing). Both functions follow the
 * syscall conventions (return -1 and set errno on failure). NULL members use the real calls. */
typedef struct sb__journal_hooks {
  void *ctx; /* passed to both functions; borrowed for the journal's life */
  ssize_t (*pwritev)(void *ctx, int fd, const struct iovec *iov, int iovcnt, off_t pos);
  int (*fdatasync)(void *ctx, int fd); /* every fdatasync that covers records */
} sb__journal_hooks_t;

/* Options of one journal. Start from sb_journal_opts_default(). Copied by sb_journal_open. */
typedef struct sb_journal_opts {
  sb_journal_fsync_t fsync;    /* durability policy */
  uint32_t fsync_interval_ms;  /* for SB_JOURNAL_FSYNC_INTERVAL; >= 1 */
  uint64_t segment_bytes;      /* roll size, MIN..MAX */
  uint64_t segment_ms;         /* roll at this age, checked per batch; 0 = never by age */
  uint64_t retention_ms;       /* drop sealed segments whose newest record is older; 0 = keep */
  uint64_t retention_bytes;    /* drop oldest sealed segments while the log is larger; 0 = keep */
  uint64_t max_bytes;          /* appends over this log size get SB_ELIMIT; 0 = no limit */
  uint64_t disk_reserve_bytes; /* appends that would leave less free disk get SB_ENOSPC */
  uint64_t max_pending_bytes;  /* queued-but-unwritten bytes before SB_EAGAIN */
  uint32_t index_interval;     /* bytes of log between sparse index entries, >= 1 */
  const sb__journal_hooks_t *hooks; /* tests only; NULL in production; borrowed */
} sb_journal_opts_t;

typedef struct sb_journal sb_journal_t;
typedef struct sb_journal_reader sb_journal_reader_t;

/* Counters since open. A snapshot; fields only grow. */
typedef struct sb_journal_stats {
  uint64_t appended; /* records acknowledged with status 0 */
  uint64_t failed;   /* records whose callback got an error */
  uint64_t batches;  /* pwritev batches written */
  uint64_t fsyncs;   /* fdatasync calls covering records */
  uint64_t segments; /* segments currently on disk */
  uint64_t bytes;    /* committed bytes in all segments, headers included */
} sb_journal_stats_t;

/* Called once per successfully queued append, on a writer thread (see "Threads"): status 0
 * and the record's offset, or a negative code (SB_ENOSPC when the disk is full, -errno from
 * a failed write or fdatasync) and offset 0. */
typedef void (*sb_journal_ack_cb)(void *arg, int status, uint64_t offset);

/* Fills o with the defaults: fsync always, 64 MiB segments, no retention, no limits, a 4 KiB
 * index interval. */
void sb_journal_opts_default(sb_journal_opts_t *o);

/* Parses a policy string, "always", "never" or "interval:<ms>", into o->fsync and
 * o->fsync_interval_ms. Returns 0 or SB_EINVAL (o unchanged). */
int sb_journal_parse_fsync(const char *s, sb_journal_opts_t *o);

/* Opens (creating if needed) the journal in directory dir, recovering it as segment.h
 * describes, and joins the writer pool. opts may be NULL for the defaults. Returns 0 and
 * sets *out (caller closes with sb_journal_close); SB_EINVAL for bad options; SB_ESTATE when
 * another process holds the directory's LOCK; SB_ENOMEM; -errno for I/O errors. */
int sb_journal_open(const char *dir, const sb_journal_opts_t *opts, sb_journal_t **out);

/* Stops accepting appends, lets the writer finish everything queued (their callbacks run),
 * joins it, and frees j. Every reader of j must be closed before. Returns 0. */
int sb_journal_close(sb_journal_t *j);

/* Queues e for the writer. e and everything it points to are borrowed for this call only (the
 * record is encoded into the journal's own memory before return). cb (not NULL) is called
 * exactly once when 0 is returned, and never when an error is returned. Returns 0; SB_EINVAL
 * (bad entry, record over SB_JOURNAL_RECORD_MAX); SB_ELIMIT, SB_ENOSPC, SB_EAGAIN
 * (backpressure, see above); SB_ESTATE (closing); SB_ENOMEM. */
int sb_journal_append(sb_journal_t *j, const sb_journal_entry_t *e, sb_journal_ack_cb cb,
                      void *arg);

/* Removes whole sealed segments that are no longer needed: every record below low_water
 * (exclusive; pass 0 for none), or older than retention_ms, or beyond retention_bytes
 * counting from the newest. The active segment is never removed. Readers positioned in a
 * removed segment finish it from their open descriptor. now_ms is the wall clock to judge
 * age by (tests pass their own). Returns the number of segments removed (>= 0). */
int sb_journal_retain(sb_journal_t *j, uint64_t low_water, int64_t now_ms);

/* Sets *first to the lowest offset still stored and *next to the offset the next append
 * will get; the log holds [first, next) (with gaps only after media damage). */
void sb_journal_bounds(sb_journal_t *j, uint64_t *first, uint64_t *next);

/* Copies the counters into *out. */
void sb_journal_stats(sb_journal_t *j, sb_journal_stats_t *out);

/* Opens a reader positioned at offset (an offset below the first stored one starts at the
 * first). buf_cap bounds the reader's buffer (0 for SB_JOURNAL_READ_BUF_DEFAULT); it grows
 * beyond only to hold one record larger than it. Returns 0 and sets *out (caller closes with
 * sb_journal_reader_close), or SB_ENOMEM. */
int sb_journal_reader_open(sb_journal_t *j, uint64_t offset, size_t buf_cap,
                           sb_journal_reader_t **out);

/* Reads the next committed record into *rec; its pointers borrow the reader's buffer until
 * the next call on r. Returns 0; SB_EAGAIN at the end of the committed log (call again
 * later); SB_ECORRUPT when a stored record fails its checks (media damage: the reader stays
 * at it); SB_ENOMEM; -errno. */
int sb_journal_reader_next(sb_journal_reader_t *r, sb_journal_record_t *rec);

/* Moves r to offset (same rule as sb_journal_reader_open). */
void sb_journal_reader_seek(sb_journal_reader_t *r, uint64_t offset);

/* Moves r to the first record, in offset order, whose timestamp is >= ts_ms; the next read
 * returns it (or SB_EAGAIN when no stored record is that recent yet; the reader then
 * continues at the end of the log). Uses the sparse time index, then scans. Returns 0,
 * SB_ENOMEM, SB_ECORRUPT or -errno. */
int sb_journal_reader_seek_time(sb_journal_reader_t *r, int64_t ts_ms);

/* Releases r (and its hold on a removed segment). */
void sb_journal_reader_close(sb_journal_reader_t *r);

#endif
