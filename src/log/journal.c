/*
 * The journal: segments on disk (format and recovery in segment.h), the writer pool doing
 * group commit, readers, retention and backpressure (contract in journal.h).
 *
 * Locking: one mutex per journal (j->mu) guards the append queue, the segment list and each
 * segment's committed view (next, end, idx). It is held for list and counter updates only,
 * never across a disk write or fsync: the writer takes a batch, unlocks, writes and syncs,
 * then locks again to publish. Readers lock to find their segment and committed end, and
 * pread without the lock. A segment is reference-counted so retention can unlink it while a
 * reader still reads it through its descriptor.
 */
#include "log/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "switchboard/error.h"
#include "switchboard/log.h"

#define PATH_CAP 4096      /* bytes of a file path under the journal directory */
#define NAME_CAP 40        /* bytes of a segment or index file name */
#define BATCH_IOV_MAX 1024 /* iovecs per pwritev (IOV_MAX on Linux) */

/* One segment. Created and sealed by the writer; removed by retention. refs and the
 * committed view (next, end, idx) are guarded by j->mu; size and fd's file position belong
 * to the writer thread. */
typedef struct jseg {
  uint64_t base;      /* offset of the first record (the file name) */
  uint64_t next;      /* one past the last committed offset; base <= next */
  uint64_t end;       /* committed file length readers may read; end <= size */
  uint64_t size;      /* bytes written to the file (writer only); >= end */
  int64_t created_ms; /* from the header; for rolling by age */
  int fd;             /* O_RDWR descriptor; closed when refs drops to 0 */
  unsigned refs;      /* 1 for the segment list + 1 per reader positioned in it */
  int removed;        /* 1 once retention took it out of the list (file unlinked); mu */
  sb__jindex_t idx;   /* sparse index; grows with the active segment */
} jseg_t;

/* One queued append, from sb_journal_append to its callback. Owned by the queue, then by the
 * writer's batch, which frees it after the callback. */
typedef struct jnode {
  struct jnode *next;   /* queue link */
  sb_journal_ack_cb cb; /* called once */
  void *arg;            /* for cb; borrowed */
  int64_t ts;           /* the record's timestamp, for the index */
  size_t size;          /* bytes at rec */
  uint8_t rec[];        /* the encoded record (segment.h), sealed by the writer */
} jnode_t;

/* The journal. Shared by every thread that appends or reads; fields marked (mu) are guarded
 * by mu, fields marked writer belong to the pool thread running the journal (one at a time), the
 * rest are fixed after open. */
struct sb_journal {
  char *dir;              /* directory path; owned */
  int dir_fd;             /* the directory, for fsync and *at() calls */
  int lock_fd;            /* LOCK file, flock()ed for the journal's life */
  sb_journal_opts_t o;    /* options, copied at open; read-only afterwards */
  pthread_mutex_t mu;     /* guards everything below marked (mu) */
  pthread_cond_t idle;    /* signalled when scheduled drops to 0 while stopping */
  jnode_t *q_head;        /* (mu) queued appends, FIFO */
  jnode_t *q_tail;        /* (mu) last queued, NULL when empty */
  uint64_t q_bytes;       /* (mu) bytes queued */
  int scheduled;          /* (mu) in the pool's run queue or being run; q_head implies it */
  int stopping;           /* (mu) close began: appends get SB_ESTATE */
  sb_journal_t *run_next; /* (pool) next in the pool's run queue */
  int timed;              /* (pool) in the pool's list of interval fsyncs to come */
  int handing;            /* (pool) a pool thread is scheduling it from the timed list */
  jseg_t **segs;          /* (mu) segments by base offset; nsegs >= 1 after open */
  size_t nsegs;           /* (mu) entries in segs */
  size_t segs_cap;        /* (mu) allocated entries */
  uint64_t bytes;         /* (mu) sum of committed segment lengths */
  uint64_t disk_free;     /* (mu) bytes free for us on the file system, last statvfs */
  sb_journal_stats_t st;  /* (mu) counters */
  jseg_t *active;         /* the last segment; replaced by the writer under mu */
  uint64_t next_offset;   /* writer: offset of the next record to write */
  int dirty;              /* writer: records written since the last fdatasync */
  int64_t last_sync_ms;   /* writer: monotonic time of the last fdatasync */
};

/* A reader. Used by one thread at a time (its owner); it takes j->mu only to look at the
 * segment list and a segment's committed end, and holds a reference on its segment. */
struct sb_journal_reader {
  sb_journal_t *j; /* borrowed; outlived by the journal */
  jseg_t *seg;     /* segment read from (a reference held), or NULL to relocate */
  uint64_t pos;    /* file position of the record with offset cur in seg */
  uint64_t cur;    /* offset of the record at pos */
  uint64_t want;   /* first offset to return; records below are skipped */
  int64_t min_ts;  /* skip records older than this until one matches (seek_time) */
  uint64_t limit;  /* seg's committed end when last looked at under the lock */
  int sealed;      /* seg was sealed when limit was read: nothing follows in it */
  uint8_t *buf;    /* window of seg's file at [bpos, bpos + blen); owned */
  size_t cap;      /* bytes allocated at buf */
  size_t cap_min;  /* configured buffer size; cap > cap_min only for a large record */
  uint64_t bpos;   /* file position of buf[0] */
  size_t blen;     /* valid bytes at buf */
};

/* --- small helpers ------------------------------------------------------------------------ */

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void seg_path(const sb_journal_t *j, char *out, uint64_t base, const char *suffix) {
  char name[NAME_CAP];
  sb__jseg_name(name, sizeof name, base, suffix);
  snprintf(out, PATH_CAP, "%s/%s", j->dir, name);
}

/* Maps a failed write's errno to the code callers see: a full disk is recoverable. */
static int write_err(int neg_errno) {
  return neg_errno == -ENOSPC || neg_errno == -EDQUOT ? SB_ENOSPC : neg_errno;
}

static int do_fdatasync(sb_journal_t *j, int fd) {
  const sb__journal_hooks_t *h = j->o.hooks;
  int r;
  do
    r = h && h->fdatasync ? h->fdatasync(h->ctx, fd) : fdatasync(fd);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

static ssize_t do_pwritev(sb_journal_t *j, int fd, const struct iovec *iov, int cnt, off_t pos) {
  const sb__journal_hooks_t *h = j->o.hooks;
  return h && h->pwritev ? h->pwritev(h->ctx, fd, iov, cnt, pos) : pwritev(fd, iov, cnt, pos);
}

static void refresh_disk_free(sb_journal_t *j) {
  if (!j->o.disk_reserve_bytes) return;
  struct statvfs sv;
  if (fstatvfs(j->dir_fd, &sv) != 0) return;
  uint64_t free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
  pthread_mutex_lock(&j->mu);
  j->disk_free = free_bytes;
  pthread_mutex_unlock(&j->mu);
}

/* Drops one reference; the last one closes the file. Caller holds j->mu or owns the segment
 * alone (open/close). */
static void seg_unref(jseg_t *s) {
  if (--s->refs > 0) return;
  if (s->fd >= 0) close(s->fd);
  sb__jindex_free(&s->idx);
  free(s);
}

static int segs_push(sb_journal_t *j, jseg_t *s) {
  if (j->nsegs == j->segs_cap) {
    size_t ncap = j->segs_cap ? j->segs_cap * 2 : 16;
    jseg_t **n = realloc(j->segs, ncap * sizeof *n);
    if (!n) return SB_ENOMEM;
    j->segs = n;
    j->segs_cap = ncap;
  }
  j->segs[j->nsegs++] = s;
  return 0;
}

/* --- options ------------------------------------------------------------------------------ */

void sb_journal_opts_default(sb_journal_opts_t *o) {
  *o = (sb_journal_opts_t){
      .fsync = SB_JOURNAL_FSYNC_ALWAYS,
      .fsync_interval_ms = 1000,
      .segment_bytes = SB_JOURNAL_SEGMENT_BYTES_DEFAULT,
      .max_pending_bytes = SB_JOURNAL_PENDING_DEFAULT,
      .index_interval = SB_JOURNAL_INDEX_INTERVAL_DEFAULT,
  };
}

int sb_journal_parse_fsync(const char *s, sb_journal_opts_t *o) {
  if (!s) return SB_EINVAL;
  if (strcmp(s, "always") == 0) {
    o->fsync = SB_JOURNAL_FSYNC_ALWAYS;
    return 0;
  }
  if (strcmp(s, "never") == 0) {
    o->fsync = SB_JOURNAL_FSYNC_NEVER;
    return 0;
  }
  static const char pfx[] = "interval:";
  if (strncmp(s, pfx, sizeof pfx - 1) != 0) return SB_EINVAL;
  const char *d = s + sizeof pfx - 1;
  uint64_t ms = 0;
  if (!*d) return SB_EINVAL;
  for (; *d; d++) {
    if (*d < '0' || *d > '9') return SB_EINVAL;
    ms = ms * 10 + (uint64_t)(*d - '0');
    if (ms > UINT32_MAX) return SB_EINVAL;
  }
  if (ms == 0) return SB_EINVAL;
  o->fsync = SB_JOURNAL_FSYNC_INTERVAL;
  o->fsync_interval_ms = (uint32_t)ms;
  return 0;
}

static int opts_valid(const sb_journal_opts_t *o) {
  return o->fsync <= SB_JOURNAL_FSYNC_NEVER &&
         (o->fsync != SB_JOURNAL_FSYNC_INTERVAL || o->fsync_interval_ms > 0) &&
         o->segment_bytes >= SB_JOURNAL_SEGMENT_BYTES_MIN &&
         o->segment_bytes <= SB_JOURNAL_SEGMENT_BYTES_MAX && o->index_interval > 0 &&
         o->max_pending_bytes > 0;
}

/* --- recovery ----------------------------------------------------------------------------- */

/* Parses "<20 digits>.seg". Returns 1 and sets *base when name is a segment file name. */
static int parse_seg_name(const char *name, uint64_t *base) {
  uint64_t v = 0;
  for (int i = 0; i < 20; i++) {
    if (name[i] < '0' || name[i] > '9') return 0;
    uint64_t d = (uint64_t)(name[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return 0;
    v = v * 10 + d;
  }
  if (strcmp(name + 20, ".seg") != 0) return 0;
  *base = v;
  return 1;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Lists the segment bases in j->dir, sorted, and deletes leftovers (*.tmp, *.idx without a
 * segment). Sets *out (caller frees) and *n. */
static int list_segments(sb_journal_t *j, uint64_t **out, size_t *n) {
  DIR *d = fdopendir(dup(j->dir_fd));
  if (!d) return -errno;
  rewinddir(d); /* the duplicate shares the position an earlier listing left at the end */
  uint64_t *v = NULL;
  size_t cnt = 0, cap = 0;
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    uint64_t base;
    size_t len = strlen(de->d_name);
    if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
      unlinkat(j->dir_fd, de->d_name, 0);
      continue;
    }
    if (!parse_seg_name(de->d_name, &base)) continue;
    if (cnt == cap) {
      cap = cap ? cap * 2 : 64;
      uint64_t *nv = realloc(v, cap * sizeof *nv);
      if (!nv) {
        rc = SB_ENOMEM;
        break;
      }
      v = nv;
    }
    v[cnt++] = base;
  }
  closedir(d);
  if (rc) {
    free(v);
    return rc;
  }
  if (cnt) qsort(v, cnt, sizeof *v, cmp_u64);
  *out = v;
  *n = cnt;
  return 0;
}

/* Deletes index files whose segment does not exist (left by retention interrupted by a crash,
 * or by a deleted torn segment). */
static void remove_orphan_indexes(sb_journal_t *j, const uint64_t *bases, size_t n) {
  DIR *d = fdopendir(dup(j->dir_fd));
  if (!d) return;
  rewinddir(d); /* the duplicate shares the position an earlier listing left at the end */
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    char segname[NAME_CAP];
    uint64_t base;
    size_t len = strlen(de->d_name);
    if (len != 24 || strcmp(de->d_name + 20, ".idx") != 0) continue;
    snprintf(segname, sizeof segname, "%.20s.seg", de->d_name);
    if (!parse_seg_name(segname, &base)) continue;
    if (!bsearch(&base, bases, n, sizeof *bases, cmp_u64)) unlinkat(j->dir_fd, de->d_name, 0);
  }
  closedir(d);
}

/* Sets a damaged sealed segment aside for inspection instead of deleting evidence. */
static void set_aside(sb_journal_t *j, uint64_t base, const char *why) {
  char from[PATH_CAP], to[PATH_CAP];
  seg_path(j, from, base, ".seg");
  seg_path(j, to, base, ".seg.corrupt");
  rename(from, to);
  seg_path(j, from, base, ".idx");
  unlink(from);
  sb_log(SB_LOG_WARN, "journal_segment_set_aside", "dir=%s base=%llu reason=%s", j->dir,
         (unsigned long long)base, why);
}

/* Opens segment base for recovery step 2. A file shorter than its header is a torn creation
 * (the header is the first write to a new segment and is synced before any record goes in):
 * it is deleted. A complete but invalid header is damage: it is rewritten from the file name,
 * and the records behind it are then judged by their own checks (R1-R7, R4 counting from
 * that base), so a flipped header bit costs no record. Returns 0 and sets *out; 1 when the
 * file was deleted; SB_ENOMEM or -errno. */
static int seg_open(sb_journal_t *j, uint64_t base, jseg_t **out) {
  char path[PATH_CAP];
  seg_path(j, path, base, ".seg");
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat stt;
  uint8_t h[SB__JSEG_HDR_SIZE];
  uint64_t hbase = 0;
  int64_t created = 0;
  int rc = fstat(fd, &stt) == 0 ? 0 : -errno;
  if (!rc && (uint64_t)stt.st_size < SB__JSEG_HDR_SIZE) {
    close(fd);
    sb_log(SB_LOG_WARN, "journal_torn_segment_removed", "dir=%s base=%llu size=%lld", j->dir,
           (unsigned long long)base, (long long)stt.st_size);
    if (unlink(path) != 0 || fsync(j->dir_fd) != 0) return -errno;
    return 1;
  }
  if (!rc) rc = sb__pread_full(fd, h, sizeof h, 0);
  if (!rc && (sb__jseg_header_decode(h, sizeof h, &hbase, &created) != 0 || hbase != base)) {
    sb_log(SB_LOG_WARN, "journal_header_repaired", "dir=%s base=%llu", j->dir,
           (unsigned long long)base);
    created = wall_ms();
    sb__jseg_header_encode(h, base, created);
    rc = sb__pwrite_full(fd, h, sizeof h, 0);
    if (!rc && fdatasync(fd) != 0) rc = -errno;
  }
  jseg_t *s = rc ? NULL : calloc(1, sizeof *s);
  if (!rc && !s) rc = SB_ENOMEM;
  if (rc) {
    close(fd);
    return rc == SB_EAGAIN ? -EIO : rc;
  }
  *s = (jseg_t){.base = base,
                .next = base,
                .end = (uint64_t)stt.st_size,
                .size = (uint64_t)stt.st_size,
                .created_ms = created,
                .fd = fd,
                .refs = 1,
                .idx = {.max_ts = INT64_MIN}};
  *out = s;
  return 0;
}

/* Brings a sealed segment's index into memory: from its index file when that is valid, else
 * by scanning (and rewriting the file). Sets s->next and s->end. */
static int seg_load_sealed(sb_journal_t *j, jseg_t *s) {
  char path[PATH_CAP];
  seg_path(j, path, s->base, ".idx");
  uint64_t next = 0;
  int rc = sb__jindex_read(path, s->base, s->size, &s->idx, &next);
  if (rc == 0) {
    s->next = next;
    return 0;
  }
  if (rc == SB_ENOMEM) return rc;
  uint64_t valid_end = 0;
  rc = sb__jseg_scan(s->fd, s->base, s->size, j->o.index_interval, &s->idx, &valid_end, &next);
  if (rc) return rc;
  s->next = next;
  s->end = valid_end;
  if (valid_end != s->size)
    sb_log(SB_LOG_WARN, "journal_sealed_segment_damaged", "dir=%s base=%llu valid=%llu size=%llu",
           j->dir, (unsigned long long)s->base, (unsigned long long)valid_end,
           (unsigned long long)s->size);
  else
    sb__jindex_write(path, s->base, s->size, next, &s->idx); /* a cache: failure is harmless */
  return 0;
}

/* Scans the active segment and cuts its torn or corrupt tail (recovery step 4). */
static int seg_recover_tail(sb_journal_t *j, jseg_t *s) {
  uint64_t valid_end = 0, next = 0;
  int rc = sb__jseg_scan(s->fd, s->base, s->size, j->o.index_interval, &s->idx, &valid_end, &next);
  if (rc) return rc;
  if (valid_end < s->size) {
    sb_log(SB_LOG_WARN, "journal_tail_truncated", "dir=%s base=%llu from=%llu to=%llu", j->dir,
           (unsigned long long)s->base, (unsigned long long)s->size, (unsigned long long)valid_end);
    if (ftruncate(s->fd, (off_t)valid_end) != 0 || fdatasync(s->fd) != 0) return -errno;
  }
  s->next = next;
  s->end = s->size = valid_end;
  /* The stale index file of a segment that was sealed before a crash lost the next one. */
  char path[PATH_CAP];
  seg_path(j, path, s->base, ".idx");
  unlink(path);
  return 0;
}

/* Creates an empty segment with the given base: header written and, unless fsync=never,
 * synced together with the directory entry, so acknowledged records in it cannot vanish
 * with the file name. */
static int seg_create(sb_journal_t *j, uint64_t base, jseg_t **out) {
  char path[PATH_CAP];
  seg_path(j, path, base, ".seg");
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return write_err(-errno);
  uint8_t h[SB__JSEG_HDR_SIZE];
  int64_t now = wall_ms();
  sb__jseg_header_encode(h, base, now);
  int rc = sb__pwrite_full(fd, h, sizeof h, 0);
  if (!rc && j->o.fsync != SB_JOURNAL_FSYNC_NEVER) {
    if (fdatasync(fd) != 0 || fsync(j->dir_fd) != 0) rc = -errno;
  }
  jseg_t *s = rc ? NULL : calloc(1, sizeof *s);
  if (!rc && !s) rc = SB_ENOMEM;
  if (rc) {
    close(fd);
    unlink(path);
    return write_err(rc);
  }
  *s = (jseg_t){.base = base,
                .next = base,
                .end = SB__JSEG_HDR_SIZE,
                .size = SB__JSEG_HDR_SIZE,
                .created_ms = now,
                .fd = fd,
                .refs = 1,
                .idx = {.max_ts = INT64_MIN}};
  *out = s;
  return 0;
}

static int recover(sb_journal_t *j) {
  uint64_t *bases = NULL;
  size_t n = 0;
  int rc = list_segments(j, &bases, &n);
  if (rc) return rc;
  remove_orphan_indexes(j, bases, n);
  jseg_t **opened = calloc(n + 1, sizeof *opened);
  size_t m = 0;
  if (!opened) rc = SB_ENOMEM;
  for (size_t i = 0; i < n && !rc; i++) {
    jseg_t *s = NULL;
    rc = seg_open(j, bases[i], &s);
    if (rc == 0) opened[m++] = s;
    if (rc == 1) rc = 0;
  }
  int tail_done = 0; /* the last file was recovered as the active segment */
  for (size_t i = 0; i < m && !rc; i++) {
    jseg_t *s = opened[i];
    opened[i] = NULL;
    /* S3: offsets never go backwards across segments. */
    if (j->nsegs > 0 && s->base < j->segs[j->nsegs - 1]->next) {
      set_aside(j, s->base, "overlapping_offsets");
      seg_unref(s);
      continue;
    }
    tail_done = i + 1 == m;
    rc = tail_done ? seg_recover_tail(j, s) : seg_load_sealed(j, s);
    if (!rc) rc = segs_push(j, s);
    if (rc) seg_unref(s);
  }
  if (!rc && j->nsegs > 0 && !tail_done) {
    /* The last file was set aside: the new last segment was loaded as sealed but must take
     * appends again, so it is recovered like an active one. */
    jseg_t *last = j->segs[j->nsegs - 1];
    struct stat stt;
    rc = fstat(last->fd, &stt) == 0 ? 0 : -errno;
    sb__jindex_free(&last->idx);
    last->size = (uint64_t)stt.st_size;
    if (!rc) rc = seg_recover_tail(j, last);
  }
  if (!rc && j->nsegs == 0) {
    jseg_t *s = NULL;
    rc = seg_create(j, 0, &s);
    if (!rc) rc = segs_push(j, s);
    if (rc && s) seg_unref(s);
  }
  if (!rc) {
    for (size_t i = 0; i < j->nsegs; i++)
      j->bytes += j->segs[i]->end;
    j->active = j->segs[j->nsegs - 1];
    j->next_offset = j->active->next;
  }
  for (size_t i = 0; i < m; i++)
    if (opened[i]) seg_unref(opened[i]);
  free(opened);
  free(bases);
  return rc;
}

/* --- the writer --------------------------------------------------------------------------- */

/* Fails every node of a batch with status and frees them. */
static void fail_batch(sb_journal_t *j, jnode_t *batch, int status) {
  uint64_t n = 0;
  for (jnode_t *x = batch, *nx; x; x = nx) {
    nx = x->next;
    x->cb(x->arg, status, 0);
    free(x);
    n++;
  }
  pthread_mutex_lock(&j->mu);
  j->st.failed += n;
  pthread_mutex_unlock(&j->mu);
}

/* Removes sealed segments per the retention rules; returns how many. Caller holds j->mu. */
static int retain_locked(sb_journal_t *j, uint64_t low_water, int64_t now_ms) {
  int removed = 0;
  while (j->nsegs > 1) {
    jseg_t *s = j->segs[0];
    int old =
        j->o.retention_ms && (s->idx.n == 0 || s->idx.max_ts < now_ms - (int64_t)j->o.retention_ms);
    int big = j->o.retention_bytes && j->bytes - s->end >= j->o.retention_bytes;
    if (!(s->next <= low_water || old || big)) break;
    char path[PATH_CAP];
    seg_path(j, path, s->base, ".seg");
    unlink(path);
    seg_path(j, path, s->base, ".idx");
    unlink(path);
    j->bytes -= s->end;
    memmove(j->segs, j->segs + 1, (j->nsegs - 1) * sizeof *j->segs);
    j->nsegs--;
    s->removed = 1;
    seg_unref(s);
    removed++;
  }
  return removed;
}

/* Seals the active segment and starts a new one at next_offset. */
static int roll(sb_journal_t *j) {
  jseg_t *old = j->active;
  if (j->o.fsync != SB_JOURNAL_FSYNC_NEVER && j->dirty) {
    int rc = do_fdatasync(j, old->fd);
    if (rc) return rc;
    j->dirty = 0;
    j->last_sync_ms = mono_ms();
    pthread_mutex_lock(&j->mu);
    j->st.fsyncs++;
    pthread_mutex_unlock(&j->mu);
  }
  jseg_t *s = NULL;
  int rc = seg_create(j, j->next_offset, &s);
  if (rc) return rc;
  /* The old index is complete and no longer changes: only the writer appends to it. */
  char path[PATH_CAP];
  seg_path(j, path, old->base, ".idx");
  sb__jindex_write(path, old->base, old->size, old->next, &old->idx);
  pthread_mutex_lock(&j->mu);
  rc = segs_push(j, s);
  if (!rc) {
    j->active = s;
    j->bytes += s->end;
    retain_locked(j, 0, wall_ms());
  }
  pthread_mutex_unlock(&j->mu);
  if (rc) {
    seg_path(j, path, s->base, ".seg");
    unlink(path);
    seg_unref(s);
  }
  return rc;
}

/* Writes the batch starting at first to the active segment. On failure the file is cut
 * back so nothing of the batch remains and the caller fails the whole batch. */
static int write_batch(sb_journal_t *j, jnode_t *first) {
  jseg_t *s = j->active;
  uint64_t pos = s->size;
  struct iovec iov[BATCH_IOV_MAX];
  jnode_t *x = first;
  int rc = 0;
  while (x && !rc) {
    int cnt = 0;
    size_t chunk = 0;
    for (; x && cnt < BATCH_IOV_MAX; x = x->next, cnt++) {
      iov[cnt] = (struct iovec){x->rec, x->size};
      chunk += x->size;
    }
    /* pwritev may write part of the chunk; continue from where it stopped. */
    int k = 0;
    while (chunk > 0) {
      ssize_t w = do_pwritev(j, s->fd, iov + k, cnt - k, (off_t)pos);
      if (w < 0) {
        if (errno == EINTR) continue;
        rc = write_err(-errno);
        break;
      }
      if (w == 0) {
        rc = SB_EIO;
        break;
      }
      pos += (uint64_t)w;
      chunk -= (size_t)w;
      while (k < cnt && (size_t)w >= iov[k].iov_len)
        w -= (ssize_t)iov[k++].iov_len;
      if (k < cnt) {
        iov[k].iov_base = (uint8_t *)iov[k].iov_base + w;
        iov[k].iov_len -= (size_t)w;
      }
    }
  }
  if (!rc && j->o.fsync == SB_JOURNAL_FSYNC_ALWAYS) {
    rc = do_fdatasync(j, s->fd);
    if (rc) rc = write_err(rc);
  }
  if (rc) {
    /* Nothing of a failed batch may survive: a later batch reuses its offsets, and a crash
     * must not resurrect records whose producers were told they failed. */
    if (ftruncate(s->fd, (off_t)s->size) == 0 && j->o.fsync == SB_JOURNAL_FSYNC_ALWAYS)
      (void)fdatasync(s->fd);
    return rc;
  }
  s->size = pos;
  return 0;
}

/* Takes up to one batch off the queue. Caller holds j->mu. */
static jnode_t *take_batch(sb_journal_t *j) {
  jnode_t *first = j->q_head, *last = NULL;
  size_t b = 0, n = 0;
  for (jnode_t *x = first; x && (n == 0 || b + x->size <= SB_JOURNAL_BATCH_BYTES_MAX);
       x = x->next) {
    b += x->size;
    n++;
    last = x;
  }
  if (!last) return NULL;
  j->q_head = last->next;
  if (!j->q_head) j->q_tail = NULL;
  last->next = NULL;
  j->q_bytes -= b;
  return first;
}

/* Writes, syncs (per policy), publishes and acknowledges one chunk that fits the active
 * segment. */
static void write_chunk(sb_journal_t *j, jnode_t *batch, size_t bytes, size_t count) {
  jseg_t *s = j->active;
  int rc;
  uint64_t pos0 = s->size, off = j->next_offset;
  for (jnode_t *x = batch; x; x = x->next)
    sb__jrec_seal(x->rec, off++);
  rc = write_batch(j, batch);
  if (rc) {
    sb_log(SB_LOG_WARN, "journal_write_failed", "dir=%s records=%zu error=\"%s\"", j->dir, count,
           sb_strerror(rc));
    fail_batch(j, batch, rc);
    return;
  }
  if (j->o.fsync != SB_JOURNAL_FSYNC_ALWAYS) j->dirty = 1;
  j->next_offset = off;

  /* Publish: readers see the batch from here on, and only now may producers hear of it. */
  pthread_mutex_lock(&j->mu);
  uint64_t pos = pos0, o = s->next;
  for (jnode_t *x = batch; x; x = x->next) {
    (void)sb__jindex_add(&s->idx, (uint32_t)(o - s->base), pos, x->ts, j->o.index_interval);
    pos += x->size;
    o++;
  }
  s->end = s->size;
  s->next = off;
  j->bytes += bytes;
  j->st.appended += count;
  j->st.batches++;
  if (j->o.fsync == SB_JOURNAL_FSYNC_ALWAYS) j->st.fsyncs++;
  pthread_mutex_unlock(&j->mu);

  uint64_t first = off - count;
  for (jnode_t *x = batch, *nx; x; x = nx) {
    nx = x->next;
    x->cb(x->arg, 0, first++);
    free(x);
  }
}

/* Splits a batch at segment boundaries, so segments stay within segment_bytes (a single
 * record larger than that gets a segment of its own), rolling in between. */
static void process_batch(sb_journal_t *j, jnode_t *batch) {
  while (batch) {
    jseg_t *s = j->active;
    int has_data = s->size > SB__JSEG_HDR_SIZE;
    int too_big = has_data && s->size + batch->size > j->o.segment_bytes;
    int too_old =
        has_data && j->o.segment_ms && wall_ms() - s->created_ms >= (int64_t)j->o.segment_ms;
    if (too_big || too_old) {
      int rc = roll(j);
      if (rc) {
        fail_batch(j, batch, rc);
        return;
      }
      s = j->active;
    }
    jnode_t *last = batch;
    size_t bytes = batch->size, count = 1;
    while (last->next && s->size + bytes + last->next->size <= j->o.segment_bytes) {
      last = last->next;
      bytes += last->size;
      count++;
    }
    jnode_t *rest = last->next;
    last->next = NULL;
    write_chunk(j, batch, bytes, count);
    batch = rest;
  }
}

static void sync_if_due(sb_journal_t *j, int force) {
  if (!j->dirty || j->o.fsync != SB_JOURNAL_FSYNC_INTERVAL) return;
  if (!force && mono_ms() - j->last_sync_ms < (int64_t)j->o.fsync_interval_ms) return;
  if (do_fdatasync(j, j->active->fd) != 0) return; /* retried at the next interval */
  j->dirty = 0;
  j->last_sync_ms = mono_ms();
  pthread_mutex_lock(&j->mu);
  j->st.fsyncs++;
  pthread_mutex_unlock(&j->mu);
}

/* --- the writer pool ---------------------------------------------------------------------
 *
 * Journals share a few writer threads instead of owning one each, so thousands of queues do
 * not mean thousands of threads. A journal with queued appends is "scheduled": it sits in the
 * pool's run queue or one pool thread is running it, never both and never two threads at
 * once, so its batches are still written, synced and acknowledged strictly in order. A pool
 * thread runs one batch (write, fdatasync, acknowledgements, as before) and puts the journal
 * back at the tail of the run queue when more arrived meanwhile: busy journals take turns,
 * and while one journal's fdatasync is in flight its next batch accumulates (group commit).
 * Journals with fsync=interval that went idle dirty wait in a timed list until their fsync
 * is due, then are scheduled like work.
 *
 * Threads start as journals open, one per open journal up to POOL_THREADS (so that many
 * fdatasyncs of different journals can be in flight at once), and live for the process, as
 * libuv's thread pool does; a fork()ed child starts with an empty pool.
 *
 * Lock order: a journal's mu, then the pool's mu. Acknowledgements run with neither held. */

#define POOL_THREADS 8

typedef struct timed {
  sb_journal_t *j;
  int64_t due; /* monotonic ms of its interval fsync */
} timed_t;

static struct pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;      /* work in the run queue, an earlier timed fsync */
  pthread_cond_t handoff; /* a journal's handing was cleared */
  sb_journal_t *head, *tail;
  timed_t *timed; /* journals waiting for an interval fsync (j->timed set) */
  size_t n_timed, timed_cap;
  size_t journals; /* open journals */
  unsigned n_threads;
  pthread_once_t once;
} g_pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .once = PTHREAD_ONCE_INIT};

static void pool_prefork(void) {
  pthread_mutex_lock(&g_pool.mu);
}
static void pool_postfork_parent(void) {
  pthread_mutex_unlock(&g_pool.mu);
}
static void pool_postfork_child(void) {
  /* The threads stayed in the parent; journals the parent opened are not the child's. */
  g_pool.head = g_pool.tail = NULL;
  g_pool.n_timed = 0;
  g_pool.journals = 0;
  g_pool.n_threads = 0;
  pthread_mutex_unlock(&g_pool.mu);
}

static void pool_init(void) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* interval fsync deadlines use mono_ms */
  pthread_cond_init(&g_pool.cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_cond_init(&g_pool.handoff, NULL);
  pthread_atfork(pool_prefork, pool_postfork_parent, pool_postfork_child);
}

/* Appends j to the run queue. Caller holds j->mu and has just set j->scheduled. */
static void pool_push(sb_journal_t *j) {
  pthread_mutex_lock(&g_pool.mu);
  j->run_next = NULL;
  if (g_pool.tail)
    g_pool.tail->run_next = j;
  else
    g_pool.head = j;
  g_pool.tail = j;
  pthread_cond_signal(&g_pool.cv);
  pthread_mutex_unlock(&g_pool.mu);
}

/* Schedules j unless it already is. Caller holds j->mu. */
static void schedule(sb_journal_t *j) {
  if (j->scheduled) return;
  j->scheduled = 1;
  pool_push(j);
}

static void timed_remove_locked(sb_journal_t *j) {
  if (!j->timed) return;
  for (size_t i = 0; i < g_pool.n_timed; i++)
    if (g_pool.timed[i].j == j) {
      g_pool.timed[i] = g_pool.timed[--g_pool.n_timed];
      break;
    }
  j->timed = 0;
}

/* Puts idle, dirty j on the timed list. Caller holds j->mu. Without memory the fsync waits
 * for j's next append or its close. */
static void timed_add(sb_journal_t *j) {
  pthread_mutex_lock(&g_pool.mu);
  if (!j->timed && g_pool.n_timed == g_pool.timed_cap) {
    size_t nc = g_pool.timed_cap ? g_pool.timed_cap * 2 : 16;
    timed_t *nt = realloc(g_pool.timed, nc * sizeof *nt);
    if (nt) {
      g_pool.timed = nt;
      g_pool.timed_cap = nc;
    }
  }
  if (!j->timed && g_pool.n_timed < g_pool.timed_cap) {
    g_pool.timed[g_pool.n_timed++] = (timed_t){j, j->last_sync_ms + j->o.fsync_interval_ms};
    j->timed = 1;
    pthread_cond_signal(&g_pool.cv);
  }
  pthread_mutex_unlock(&g_pool.mu);
}

/* Runs one batch of j (j->scheduled is set and this thread owns j's writer fields). */
static void run_journal(sb_journal_t *j) {
  pthread_mutex_lock(&j->mu);
  jnode_t *batch = take_batch(j);
  pthread_mutex_unlock(&j->mu);
  if (batch) process_batch(j, batch);
  sync_if_due(j, 0);
  refresh_disk_free(j);
  pthread_mutex_lock(&j->mu);
  if (j->q_head) {
    pool_push(j); /* still scheduled: back of the queue */
  } else {
    j->scheduled = 0;
    if (j->dirty && j->o.fsync == SB_JOURNAL_FSYNC_INTERVAL && !j->stopping) timed_add(j);
    if (j->stopping) pthread_cond_broadcast(&j->idle);
  }
  pthread_mutex_unlock(&j->mu);
}

static void *pool_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g_pool.mu);
  for (;;) {
    if (g_pool.head) {
      sb_journal_t *j = g_pool.head;
      g_pool.head = j->run_next;
      if (!g_pool.head) g_pool.tail = NULL;
      pthread_mutex_unlock(&g_pool.mu);
      run_journal(j);
      pthread_mutex_lock(&g_pool.mu);
      continue;
    }
    size_t first = 0;
    for (size_t i = 1; i < g_pool.n_timed; i++)
      if (g_pool.timed[i].due < g_pool.timed[first].due) first = i;
    if (!g_pool.n_timed) {
      pthread_cond_wait(&g_pool.cv, &g_pool.mu);
    } else if (g_pool.timed[first].due <= mono_ms()) {
      sb_journal_t *j = g_pool.timed[first].j;
      timed_remove_locked(j);
      j->handing = 1; /* close waits for it to clear before it waits for the run */
      pthread_mutex_unlock(&g_pool.mu);
      pthread_mutex_lock(&j->mu); /* j->mu before the pool's */
      schedule(j);
      pthread_mutex_unlock(&j->mu);
      pthread_mutex_lock(&g_pool.mu);
      j->handing = 0;
      pthread_cond_broadcast(&g_pool.handoff);
    } else {
      int64_t due = g_pool.timed[first].due;
      struct timespec ts = {.tv_sec = due / 1000, .tv_nsec = (due % 1000) * 1000000};
      pthread_cond_timedwait(&g_pool.cv, &g_pool.mu, &ts);
    }
  }
  return NULL;
}

/* Registers an open journal, starting a pool thread while there are no more threads than
 * journals (up to POOL_THREADS). Returns 0 or -errno. */
static int pool_join(void) {
  pthread_once(&g_pool.once, pool_init);
  pthread_mutex_lock(&g_pool.mu);
  int rc = 0;
  if (g_pool.n_threads < POOL_THREADS && g_pool.n_threads <= g_pool.journals) {
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int e = pthread_create(&t, &at, pool_main, NULL);
    pthread_attr_destroy(&at);
    if (e == 0)
      g_pool.n_threads++;
    else if (!g_pool.n_threads)
      rc = -e; /* no thread at all: the journal could never write */
  }
  if (!rc) g_pool.journals++;
  pthread_mutex_unlock(&g_pool.mu);
  return rc;
}

/* Unregisters closing j: off the timed list, and no pool thread still about to schedule it
 * (it may have scheduled it: close then waits for that run). */
static void pool_leave(sb_journal_t *j) {
  pthread_mutex_lock(&g_pool.mu);
  timed_remove_locked(j);
  while (j->handing)
    pthread_cond_wait(&g_pool.handoff, &g_pool.mu);
  g_pool.journals--;
  pthread_mutex_unlock(&g_pool.mu);
}

/* --- open, close, append ------------------------------------------------------------------ */

static void journal_free(sb_journal_t *j) {
  for (size_t i = 0; i < j->nsegs; i++)
    seg_unref(j->segs[i]);
  free(j->segs);
  if (j->lock_fd >= 0) close(j->lock_fd); /* releases the flock */
  if (j->dir_fd >= 0) close(j->dir_fd);
  pthread_cond_destroy(&j->idle);
  pthread_mutex_destroy(&j->mu);
  free(j->dir);
  free(j);
}

int sb_journal_open(const char *dir, const sb_journal_opts_t *opts, sb_journal_t **out) {
  sb_journal_opts_t o;
  if (opts)
    o = *opts;
  else
    sb_journal_opts_default(&o);
  if (!dir || !*dir || strlen(dir) > PATH_CAP - 64 || !opts_valid(&o)) return SB_EINVAL;
  sb_journal_t *j = calloc(1, sizeof *j);
  if (!j) return SB_ENOMEM;
  j->o = o;
  j->dir_fd = j->lock_fd = -1;
  j->disk_free = UINT64_MAX;
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->idle, NULL);
  int rc = 0;
  j->dir = strdup(dir);
  if (!j->dir) rc = SB_ENOMEM;
  if (!rc && mkdir(dir, 0755) != 0 && errno != EEXIST) rc = -errno;
  if (!rc && (j->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) rc = -errno;
  if (!rc && (j->lock_fd = openat(j->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
    rc = -errno;
  if (!rc && flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0)
    rc = errno == EWOULDBLOCK ? SB_ESTATE : -errno;
  if (!rc) rc = recover(j);
  if (!rc) {
    refresh_disk_free(j);
    j->last_sync_ms = mono_ms();
    rc = pool_join();
  }
  if (rc) {
    journal_free(j);
    return rc;
  }
  *out = j;
  return 0;
}

int sb_journal_close(sb_journal_t *j) {
  pthread_mutex_lock(&j->mu);
  j->stopping = 1;
  while (j->scheduled) /* a pool thread finishes what was queued */
    pthread_cond_wait(&j->idle, &j->mu);
  pthread_mutex_unlock(&j->mu);
  /* A pool thread taking j off the timed list schedules it without the pool lock: leave the
   * pool (which waits for such a hand-off), then wait for the run it may have started. */
  pool_leave(j);
  pthread_mutex_lock(&j->mu);
  while (j->scheduled)
    pthread_cond_wait(&j->idle, &j->mu);
  pthread_mutex_unlock(&j->mu);
  sync_if_due(j, 1); /* no pool thread touches j any more */
  journal_free(j);
  return 0;
}

int sb_journal_append(sb_journal_t *j, const sb_journal_entry_t *e, sb_journal_ack_cb cb,
                      void *arg) {
  if (!e || !cb) return SB_EINVAL;
  size_t size = sb__jrec_size(e);
  if (!size) return SB_EINVAL;
  jnode_t *x = malloc(sizeof *x + size);
  if (!x) return SB_ENOMEM;
  sb_journal_entry_t copy = *e;
  if (copy.timestamp_ms == 0) copy.timestamp_ms = wall_ms();
  /* Encoding and checksumming happen here, on the producer's thread, so N producers spread
   * that CPU over N cores; the writer only adds the offset to each CRC. */
  sb__jrec_encode(x->rec, &copy);
  *x = (jnode_t){.cb = cb, .arg = arg, .ts = copy.timestamp_ms, .size = size};
  int rc = 0;
  pthread_mutex_lock(&j->mu);
  uint64_t after = j->bytes + j->q_bytes + size;
  if (j->stopping)
    rc = SB_ESTATE;
  else if (j->o.max_bytes && after > j->o.max_bytes)
    rc = SB_ELIMIT;
  else if (j->o.disk_reserve_bytes && (j->disk_free < j->o.disk_reserve_bytes ||
                                       j->disk_free - j->o.disk_reserve_bytes < j->q_bytes + size))
    rc = SB_ENOSPC;
  else if (j->q_bytes > 0 && j->q_bytes + size > j->o.max_pending_bytes)
    rc = SB_EAGAIN;
  if (!rc) {
    if (j->q_tail)
      j->q_tail->next = x;
    else
      j->q_head = x;
    j->q_tail = x;
    j->q_bytes += size;
    schedule(j);
  }
  pthread_mutex_unlock(&j->mu);
  if (rc) free(x);
  return rc;
}

int sb_journal_retain(sb_journal_t *j, uint64_t low_water, int64_t now_ms) {
  pthread_mutex_lock(&j->mu);
  int n = retain_locked(j, low_water, now_ms);
  pthread_mutex_unlock(&j->mu);
  return n;
}

void sb_journal_bounds(sb_journal_t *j, uint64_t *first, uint64_t *next) {
  pthread_mutex_lock(&j->mu);
  *first = j->segs[0]->base;
  *next = j->segs[j->nsegs - 1]->next;
  pthread_mutex_unlock(&j->mu);
}

void sb_journal_stats(sb_journal_t *j, sb_journal_stats_t *out) {
  pthread_mutex_lock(&j->mu);
  *out = j->st;
  out->segments = j->nsegs;
  out->bytes = j->bytes;
  pthread_mutex_unlock(&j->mu);
}

/* --- readers ------------------------------------------------------------------------------ */

int sb_journal_reader_open(sb_journal_t *j, uint64_t offset, size_t buf_cap,
                           sb_journal_reader_t **out) {
  sb_journal_reader_t *r = calloc(1, sizeof *r);
  if (!r) return SB_ENOMEM;
  r->j = j;
  r->cap_min = buf_cap ? buf_cap : SB_JOURNAL_READ_BUF_DEFAULT;
  if (r->cap_min < SB__JREC_FIXED) r->cap_min = SB__JREC_FIXED;
  r->buf = malloc(r->cap_min);
  if (!r->buf) {
    free(r);
    return SB_ENOMEM;
  }
  r->cap = r->cap_min;
  r->want = offset;
  r->min_ts = INT64_MIN;
  *out = r;
  return 0;
}

static void reader_drop_seg(sb_journal_reader_t *r) {
  if (!r->seg) return;
  pthread_mutex_lock(&r->j->mu);
  seg_unref(r->seg);
  pthread_mutex_unlock(&r->j->mu);
  r->seg = NULL;
  r->blen = 0;
}

void sb_journal_reader_seek(sb_journal_reader_t *r, uint64_t offset) {
  reader_drop_seg(r);
  r->want = offset;
  r->min_ts = INT64_MIN;
}

void sb_journal_reader_close(sb_journal_reader_t *r) {
  if (!r) return;
  reader_drop_seg(r);
  free(r->buf);
  free(r);
}

/* Positions r in segment index i at the nearest indexed record at or before offset want.
 * Caller holds j->mu. */
static void reader_enter(sb_journal_reader_t *r, size_t i, uint64_t want, uint64_t pos,
                         uint32_t rel) {
  jseg_t *s = r->j->segs[i];
  s->refs++;
  r->seg = s;
  r->pos = pos;
  r->cur = s->base + rel;
  r->want = want;
  r->limit = s->end;
  r->blen = 0;
}

/* Finds the segment holding r->want (or the first one after a gap) and enters it. Caller
 * holds j->mu. */
static void reader_locate(sb_journal_reader_t *r) {
  sb_journal_t *j = r->j;
  size_t lo = 0, hi = j->nsegs; /* first segment with base > want */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (j->segs[mid]->base <= r->want)
      lo = mid + 1;
    else
      hi = mid;
  }
  size_t i = lo == 0 ? 0 : lo - 1;
  /* Past the end of segment i (a gap, or the end of a sealed segment): the next one. */
  while (i + 1 < j->nsegs && r->want >= j->segs[i]->next)
    i++;
  jseg_t *s = j->segs[i];
  uint64_t want = r->want < s->base ? s->base : r->want;
  uint64_t rel = want - s->base;
  uint32_t at = 0;
  uint64_t pos =
      sb__jindex_find_offset(&s->idx, rel > UINT32_MAX ? UINT32_MAX : (uint32_t)rel, &at);
  reader_enter(r, i, want, pos, at);
}

int sb_journal_reader_seek_time(sb_journal_reader_t *r, int64_t ts_ms) {
  sb_journal_t *j = r->j;
  reader_drop_seg(r);
  pthread_mutex_lock(&j->mu);
  size_t i = 0;
  while (i < j->nsegs && (j->segs[i]->idx.n == 0 || j->segs[i]->idx.max_ts < ts_ms))
    i++;
  if (i == j->nsegs) { /* nothing that recent: wait at the end */
    r->want = j->segs[j->nsegs - 1]->next;
    r->min_ts = INT64_MIN;
  } else {
    uint32_t at = 0;
    uint64_t pos = sb__jindex_find_time(&j->segs[i]->idx, ts_ms, &at);
    reader_enter(r, i, j->segs[i]->base + at, pos, at);
    r->min_ts = ts_ms;
  }
  pthread_mutex_unlock(&j->mu);
  return 0;
}

/* Makes buf hold at least need bytes from file position r->pos (need <= limit - pos). */
static int reader_fill(sb_journal_reader_t *r, size_t need) {
  if (r->pos < r->bpos || r->pos > r->bpos + r->blen) {
    r->blen = 0;
    r->bpos = r->pos;
  }
  size_t keep = r->blen - (size_t)(r->pos - r->bpos);
  memmove(r->buf, r->buf + (r->pos - r->bpos), keep);
  r->bpos = r->pos;
  r->blen = keep;
  /* Shrink back after a large record so one big record does not pin its buffer. */
  size_t want_cap = need > r->cap_min ? need : r->cap_min;
  if (want_cap < keep) want_cap = keep;
  if (want_cap != r->cap && (need > r->cap || r->cap > r->cap_min)) {
    uint8_t *nb = realloc(r->buf, want_cap);
    if (!nb) return SB_ENOMEM;
    r->buf = nb;
    r->cap = want_cap;
  }
  uint64_t avail = r->limit - (r->bpos + r->blen);
  size_t n = r->cap - r->blen;
  if (n > avail) n = (size_t)avail;
  int rc = sb__pread_full(r->seg->fd, r->buf + r->blen, n, r->bpos + r->blen);
  if (rc == SB_EAGAIN) return SB_ECORRUPT; /* committed bytes missing: the file was damaged */
  if (rc) return rc;
  r->blen += n;
  return 0;
}

int sb_journal_reader_next(sb_journal_reader_t *r, sb_journal_record_t *rec) {
  sb_journal_t *j = r->j;
  for (;;) {
    if (!r->seg || r->pos >= r->limit) {
      /* Refresh the committed view (and move on from an exhausted sealed segment). */
      pthread_mutex_lock(&j->mu);
      if (r->seg && r->pos >= r->seg->end && r->seg != j->segs[j->nsegs - 1]) {
        r->want = r->cur > r->want ? r->cur : r->want;
        seg_unref(r->seg);
        r->seg = NULL;
      }
      if (!r->seg) reader_locate(r);
      r->limit = r->seg->end;
      int more = r->pos < r->limit;
      pthread_mutex_unlock(&j->mu);
      if (!more) return SB_EAGAIN;
    }
    size_t size = 0;
    size_t have =
        r->pos >= r->bpos && r->pos <= r->bpos + r->blen ? r->blen - (size_t)(r->pos - r->bpos) : 0;
    int d =
        have ? sb__jrec_decode(r->buf + (r->pos - r->bpos), have, r->cur, rec, &size) : SB_EAGAIN;
    if (!have) size = SB__JREC_FRAME;
    if (d == SB_EAGAIN) {
      if (size > r->limit - r->pos) return SB_ECORRUPT; /* a committed record cannot be torn */
      int rc = reader_fill(r, size);
      if (rc) return rc;
      continue;
    }
    if (d) {
      sb_log(SB_LOG_ERROR, "journal_corrupt_record", "dir=%s base=%llu pos=%llu offset=%llu",
             j->dir, (unsigned long long)r->seg->base, (unsigned long long)r->pos,
             (unsigned long long)r->cur);
      return SB_ECORRUPT;
    }
    r->pos += size;
    r->cur++;
    if (rec->offset < r->want || rec->timestamp_ms < r->min_ts) continue;
    r->min_ts = INT64_MIN;
    r->want = r->cur;
    return 0;
  }
}
