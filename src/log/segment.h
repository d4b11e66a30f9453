/*
 * The journal's disk format: segment files, records, index files, and how they are recovered.
 *
 * ## Files
 *
 * One journal (one partition of a queue or stream) is one directory:
 *
 *   <dir>/LOCK                        flock()ed by the process that has the journal open
 *   <dir>/00000000000000000000.seg    segment: header + records, base offset 0
 *   <dir>/00000000000000000000.idx    sparse index of a sealed segment (optional, rebuildable)
 *   <dir>/00000000000000041234.seg    the next segment starts at offset 41234
 *
 * A segment's file name is its base offset (the offset of its first record) in 20 decimal
 * digits, so names sort like offsets. Records are appended to the last segment only (the
 * active one); the others are sealed and never change again. All integers are little-endian.
 *
 * ## Segment header (32 bytes, at file position 0)
 *
 *   off size field
 *   0   8    magic       "SBJSEG" 0x00 0x01 (the last byte is the format version)
 *   8   8    base        u64, offset of the first record; equals the number in the file name
 *   16  8    created_ms  i64, wall-clock creation time (ms since the epoch) for rolling by age
 *   24  4    reserved    0
 *   28  4    crc         CRC-32C of bytes [0, 28)
 *
 * ## Record (at file position 32 and after, back to back, no padding)
 *
 *   off size field
 *   0   4    len         u32, bytes of the record after this 8-byte frame: 32 + K + V + H
 *   4   4    crc         u32, CRC-32C, see below
 *   8   8    offset      u64, the record's offset: base for the first record, +1 per record
 *   16  8    timestamp   i64, ms since the epoch, chosen by the producer (not monotonic)
 *   24  4    key_len     K
 *   28  4    value_len   V
 *   32  4    headers_len H, bytes of the header block
 *   36  2    header_cnt  number of entries in the header block
 *   38  2    flags       0 (reserved)
 *   40  K    key
 *   40+K V   value
 *   40+K+V H header block: header_cnt entries, each
 *              u16 name_len, u32 value_len, name bytes, value bytes
 *
 * The checksum is CRC-32C (crc32c.h) of three byte ranges in this order: [0, 4) (len), then
 * [16, 8 + len) (everything after the offset), then [8, 16) (offset). The odd order lets the
 * producer thread checksum the whole payload before the writer thread knows the record's
 * offset; the writer then only extends the CRC over 8 bytes (sb__jrec_seal).
 *
 * ## Validity conditions of a record at file position p of a segment with base b
 *
 *   R1. p + 8 <= end of file (the frame is present).
 *   R2. 32 <= len <= SB_JOURNAL_RECORD_MAX and p + 8 + len <= end of file.
 *   R3. crc matches.
 *   R4. offset == b for the first record, previous offset + 1 for the others.
 *   R5. 32 + key_len + value_len + headers_len == len (no field overflows another).
 *   R6. the header block holds exactly header_cnt entries and no byte more.
 *   R7. flags == 0.
 *
 * A segment's valid prefix is its header (conditions S1-S3 below) followed by the longest run
 * of records that each satisfy R1-R7. Nothing after the first invalid record is ever read:
 * the reader and the recovery scan both check every condition of every record they touch, so
 * a corrupt record is never served, and a record is only reachable through its predecessors
 * or through an index entry pointing at a record that itself passes R1-R7.
 *
 *   S1. the file holds at least 32 bytes and the magic matches;
 *   S2. the header crc matches;
 *   S3. base equals the number in the file name, and is >= the previous segment's next offset.
 *
 * ## Index file (.idx), one per sealed segment
 *
 *   off size field
 *   0   8    magic       "SBJIDX" 0x00 0x01
 *   8   8    base        u64, base offset of the segment
 *   16  8    seg_size    u64, length of the segment file this index describes
 *   24  8    next        u64, one past the last record's offset
 *   32  8    max_ts      i64, largest timestamp in the segment (INT64_MIN if empty)
 *   40  4    count       u32, entries that follow
 *   44  4    crc         CRC-32C of [0, 44) followed by all entries
 *   48  16*n entries:    u32 rel (offset - base), u32 pos (file position of that record),
 *                        i64 max_ts (largest timestamp of the records up to and including it)
 *
 * Entries are sparse: the first record, then the first record starting at least
 * index_interval bytes after the previous entry. Entries are sorted by rel, pos and max_ts
 * alike, so both offset lookup (last entry with rel <= target) and time lookup (first entry
 * with max_ts >= t: every record before the preceding entry is older than t) are binary
 * searches followed by a short scan. An index is valid when the magic, base, crc and count
 * check out and seg_size equals the segment's current length; anything else is "stale" and
 * the index is rebuilt by scanning the segment. The active segment has no index file: its
 * index lives in memory and is rebuilt by the recovery scan.
 *
 * ## Recovery (sb_journal_open)
 *
 *   1. Take the LOCK. List *.seg names; delete *.idx without a segment and *.tmp files.
 *   2. Check every segment header (S1, S2, base equal to the name). A file shorter than the
 *      header was being created when the process died (a new segment's header is written and
 *      synced before any record): delete it. A complete but invalid header is damage: rewrite
 *      it from the file name; the records behind it keep or lose their validity on their own
 *      (R4 counts from that base), so one flipped header bit costs no record. A segment whose
 *      base is below the previous segment's next offset (S3) contradicts the log's order:
 *      it is renamed <name>.corrupt for inspection and skipped.
 *   3. For every sealed segment load its index; if missing or stale, scan the segment
 *      (validity conditions above) to rebuild it and write it back. A sealed segment whose
 *      valid prefix ends before its file does is kept as is (media damage; never written to
 *      again): readers get its valid prefix, then continue with the next segment, and the
 *      offsets in between are a gap. (Damage inside a segment whose index is still valid is
 *      found when a reader reaches it: the read fails with SB_ECORRUPT, nothing is served.)
 *   4. Scan the active (last) segment; truncate the file at the end of its valid prefix and
 *      fdatasync it. With fsync=always every acknowledged record was fsynced before its
 *      acknowledgement, so it lies in the valid prefix and survives; only the torn tail of an
 *      unacknowledged batch is cut.
 *   5. With no segment left, create segment 0. Appends continue at the next offset.
 *
 * Recovery never fails because of content; it fails only on I/O errors (-errno), out of
 * memory, or when another process holds the LOCK.
 */
#ifndef SB_LOG_SEGMENT_H
#define SB_LOG_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#define SB__JSEG_HDR_SIZE 32u             /* bytes of the segment header */
#define SB__JREC_FRAME 8u                 /* len + crc */
#define SB__JREC_FIXED 40u                /* bytes of a record before its key */
#define SB__JIDX_HDR_SIZE 48u             /* bytes of the index file header */
#define SB__JIDX_ENTRY_SIZE 16u           /* bytes of one index entry */
#define SB__JHDR_ENTRY_FIXED 6u           /* u16 name_len + u32 value_len per header entry */
#define SB_JOURNAL_RECORD_MAX (16u << 20) /* largest len field: bounds every read buffer */
#define SB_JOURNAL_HEADERS_MAX 1024u      /* header entries per record */

/* One record header (name/value pair), as given to sb_journal_append. Borrowed. */
typedef struct sb_journal_header {
  const void *name;   /* name bytes, not NUL-terminated */
  uint16_t name_len;  /* bytes at name */
  const void *value;  /* value bytes */
  uint32_t value_len; /* bytes at value */
} sb_journal_header_t;

/* A record to append. Every pointer is borrowed for the duration of the append call only. */
typedef struct sb_journal_entry {
  const void *key;                    /* may be NULL when key_len == 0 */
  uint32_t key_len;                   /* bytes at key */
  const void *value;                  /* may be NULL when value_len == 0 */
  uint32_t value_len;                 /* bytes at value */
  const sb_journal_header_t *headers; /* header_count entries, or NULL */
  uint16_t header_count;              /* <= SB_JOURNAL_HEADERS_MAX */
  int64_t timestamp_ms;               /* ms since the epoch; 0 means "now" on append */
} sb_journal_entry_t;

/* A record read back. Pointers borrow the reader's buffer until the next call on that reader
 * (or its close). */
typedef struct sb_journal_record {
  uint64_t offset;      /* the record's offset */
  int64_t timestamp_ms; /* as appended */
  const uint8_t *key;   /* key_len bytes */
  uint32_t key_len;     /* bytes at key */
  const uint8_t *value; /* value_len bytes */
  uint32_t value_len;   /* bytes at value */
  const uint8_t
      *headers;          /* the raw header block (format above); walk with sb_journal_header_next */
  uint32_t headers_len;  /* bytes at headers */
  uint16_t header_count; /* entries in the block */
} sb_journal_record_t;

/* One sparse index entry (see "Index file"). */
typedef struct sb__jidx_entry {
  uint32_t rel;   /* offset - segment base */
  uint32_t pos;   /* file position of the record */
  int64_t max_ts; /* largest timestamp of the segment's records up to and including it */
} sb__jidx_entry_t;

/* The in-memory sparse index of one segment. Owned by its segment; the journal's mutex guards
 * it for segments that are still growing. */
typedef struct sb__jindex {
  sb__jidx_entry_t *e; /* entries, sorted by rel; owned (malloc) */
  size_t n;            /* entries in use; n <= cap */
  size_t cap;          /* allocated entries */
  uint64_t last_pos;   /* pos of the last entry; meaningless while n == 0 */
  int64_t max_ts;      /* largest timestamp of all records indexed or not; INT64_MIN if none */
} sb__jindex_t;

/* --- records ------------------------------------------------------------------------------ */

/* Returns the encoded size of e (frame included), or 0 when e is invalid (a length over
 * SB_JOURNAL_RECORD_MAX, too many headers, NULL data with a non-zero length). */
size_t sb__jrec_size(const sb_journal_entry_t *e);
/* Encodes e into out (exactly sb__jrec_size(e) bytes) with offset 0 and a partial CRC that
 * sb__jrec_seal completes. */
void sb__jrec_encode(uint8_t *out, const sb_journal_entry_t *e);
/* Sets the offset of an encoded record and completes its CRC. Call exactly once. */
void sb__jrec_seal(uint8_t *rec, uint64_t offset);
/* Decodes the record at p, given avail bytes from p to the end of the valid data. expect is the
 * offset condition R4 requires. Returns 0 and fills *out (pointers into p) and *size (frame
 * included); SB_EAGAIN when avail is too short for the record (R1/R2 with more data to come:
 * *size is then the bytes needed, or 8 when even the frame is missing); SB_ECORRUPT when any
 * other condition fails. */
int sb__jrec_decode(const uint8_t *p, size_t avail, uint64_t expect, sb_journal_record_t *out,
                    size_t *size);

/* Walks a header block: *pos starts at 0. Returns 1 and sets the name/value pointers for the
 * next entry, 0 at the end of the block (only valid blocks reach readers). */
int sb_journal_header_next(const sb_journal_record_t *r, uint32_t *pos, const uint8_t **name,
                           uint16_t *name_len, const uint8_t **value, uint32_t *value_len);

/* --- segment files ------------------------------------------------------------------------ */

/* Writes the 32-byte segment header for base and created_ms into out. */
void sb__jseg_header_encode(uint8_t *out, uint64_t base, int64_t created_ms);
/* Checks S1-S2 on the n bytes at p. Returns 0 and sets *base and *created_ms, or
 * SB_ECORRUPT. */
int sb__jseg_header_decode(const uint8_t *p, size_t n, uint64_t *base, int64_t *created_ms);
/* Formats "<20-digit base><suffix>" into out (cap >= 21 + strlen(suffix)). */
void sb__jseg_name(char *out, size_t cap, uint64_t base, const char *suffix);

/* Scans the records of the segment open as fd (file_size bytes long, base offset base) from
 * position SB__JSEG_HDR_SIZE, checking R1-R7. Rebuilds idx (which must be empty) with one
 * entry per index_interval bytes. Sets *valid_end to the end of the valid prefix and *next to
 * one past the last valid offset. Memory use is bounded by SB_JOURNAL_RECORD_MAX plus the
 * index. Returns 0 (whatever the content), SB_ENOMEM or -errno from pread. */
int sb__jseg_scan(int fd, uint64_t base, uint64_t file_size, uint32_t index_interval,
                  sb__jindex_t *idx, uint64_t *valid_end, uint64_t *next);

/* --- indexes ------------------------------------------------------------------------------ */

/* Records a record at pos with offset base + rel and timestamp ts: updates max_ts, and adds an
 * entry when the index is empty or pos >= last_pos + interval. Returns 0 or SB_ENOMEM. */
int sb__jindex_add(sb__jindex_t *idx, uint32_t rel, uint64_t pos, int64_t ts, uint32_t interval);
/* Returns the file position to start scanning at for offset base + rel: the pos of the last
 * entry with entry.rel <= rel, or SB__JSEG_HDR_SIZE when there is none; *at_rel is set to the
 * relative offset of the record at that position. */
uint64_t sb__jindex_find_offset(const sb__jindex_t *idx, uint32_t rel, uint32_t *at_rel);
/* Returns the file position to start scanning at for the first record with timestamp >= ts:
 * the pos of the entry before the first entry whose max_ts >= ts (SB__JSEG_HDR_SIZE if none);
 * *at_rel is set as for sb__jindex_find_offset. */
uint64_t sb__jindex_find_time(const sb__jindex_t *idx, int64_t ts, uint32_t *at_rel);
/* Writes idx as the index file at path (through path.tmp and rename, so a crash leaves the old
 * file or the new one). Returns 0, SB_ENOMEM or -errno. */
int sb__jindex_write(const char *path, uint64_t base, uint64_t seg_size, uint64_t next,
                     const sb__jindex_t *idx);
/* Loads the index file at path into idx (which must be empty) when it is valid for a segment
 * with base and seg_size (see "Index file"). Returns 0 and sets *next; SB_ENOTFOUND when the
 * file does not exist; SB_ECORRUPT when it is stale or damaged; SB_ENOMEM or -errno. */
int sb__jindex_read(const char *path, uint64_t base, uint64_t seg_size, sb__jindex_t *idx,
                    uint64_t *next);
/* Frees the entries; the index is empty and reusable afterwards. */
void sb__jindex_free(sb__jindex_t *idx);

/* pread/pwrite of exactly n bytes, retrying EINTR and short transfers. Return 0, -errno, or
 * for sb__pread_full SB_EAGAIN when the file ended first. */
int sb__pread_full(int fd, void *buf, size_t n, uint64_t pos);
int sb__pwrite_full(int fd, const void *buf, size_t n, uint64_t pos);

#endif
