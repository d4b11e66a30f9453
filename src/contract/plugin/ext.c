#include "contract/plugin/ext.h"

#include <string.h>

#include "switchboard/error.h"

#define EXT_VARINT_MAX 10u /* bytes of the longest varint (a 64-bit value) */

/* Wire types (protobuf encoding). */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Decodes the varint at [p, p+n). Returns its length in bytes, or 0 when it is truncated or
 * longer than EXT_VARINT_MAX. */
static size_t read_varint(const uint8_t *p, size_t n, uint64_t *v) {
  uint64_t x = 0;
  for (size_t i = 0; i < n && i < EXT_VARINT_MAX; i++) {
    x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) {
      *v = x;
      return i + 1;
    }
  }
  return 0;
}

/* The payload of an unknown length-delimited field: its data is "<varint length><payload>".
 * Returns 1 and sets *p, *n, or SB_EPROTO when the length does not match the stored size. */
static int len_payload(const ProtobufCMessageUnknownField *f, const uint8_t **p, size_t *n) {
  uint64_t len;
  size_t k = read_varint(f->data, f->len, &len);
  if (k == 0 || len != f->len - k) return SB_EPROTO;
  *p = f->data + k;
  *n = (size_t)len;
  return 1;
}

/* The last unknown field of m numbered field, or NULL. */
static const ProtobufCMessageUnknownField *last_field(const ProtobufCMessage *m, uint32_t field) {
  const ProtobufCMessageUnknownField *found = NULL;
  for (unsigned i = 0; i < m->n_unknown_fields; i++)
    if (m->unknown_fields[i].tag == field) found = &m->unknown_fields[i];
  return found;
}

int sb_ext_varint(const ProtobufCMessage *m, uint32_t field, uint64_t *v) {
  const ProtobufCMessageUnknownField *f = last_field(m, field);
  if (!f) return 0;
  if (f->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT) return SB_EPROTO;
  return read_varint(f->data, f->len, v) == f->len ? 1 : SB_EPROTO;
}

int sb_ext_bytes(const ProtobufCMessage *m, uint32_t field, const uint8_t **p, size_t *n) {
  const ProtobufCMessageUnknownField *f = last_field(m, field);
  if (!f) return 0;
  if (f->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) return SB_EPROTO;
  return len_payload(f, p, n);
}

int sb_ext_message(sb_arena_t *a, const ProtobufCMessage *m, uint32_t field, const uint8_t **p,
                   size_t *n) {
  size_t count = 0, total = 0;
  const uint8_t *one = NULL;
  for (unsigned i = 0; i < m->n_unknown_fields; i++) {
    const ProtobufCMessageUnknownField *f = &m->unknown_fields[i];
    if (f->tag != field) continue;
    if (f->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) return SB_EPROTO;
    size_t len;
    int rc = len_payload(f, &one, &len);
    if (rc < 0) return rc;
    count++;
    total += len;
  }
  if (count == 0) return 0;
  if (count == 1) {
    *p = one;
    *n = total;
    return 1;
  }
  uint8_t *all = sb_arena_alloc(a, total ? total : 1);
  if (!all) return SB_ENOMEM;
  size_t off = 0;
  for (unsigned i = 0; i < m->n_unknown_fields; i++) {
    const ProtobufCMessageUnknownField *f = &m->unknown_fields[i];
    if (f->tag != field) continue;
    const uint8_t *q = NULL;
    size_t len = 0;
    if (len_payload(f, &q, &len) != 1) return SB_EPROTO; /* validated by the first pass */
    memcpy(all + off, q, len);
    off += len;
  }
  *p = all;
  *n = total;
  return 1;
}

int sb_ext_raw_bytes(const uint8_t *msg, size_t len, uint32_t field, const uint8_t **p, size_t *n) {
  int found = 0;
  size_t off = 0;
  while (off < len) {
    uint64_t key, v;
    size_t k = read_varint(msg + off, len - off, &key);
    if (k == 0) return SB_EPROTO;
    off += k;
    switch (key & 7) {
    case WT_VARINT:
      k = read_varint(msg + off, len - off, &v);
      if (k == 0) return SB_EPROTO;
      off += k;
      break;
    case WT_I64:
      if (len - off < 8) return SB_EPROTO;
      off += 8;
      break;
    case WT_I32:
      if (len - off < 4) return SB_EPROTO;
      off += 4;
      break;
    case WT_LEN:
      k = read_varint(msg + off, len - off, &v);
      if (k == 0 || v > len - off - k) return SB_EPROTO;
      off += k;
      if ((key >> 3) == field) {
        *p = msg + off;
        *n = (size_t)v;
        found = 1;
      }
      off += (size_t)v;
      break;
    default: /* groups: no option message of interest uses them */
      return SB_EPROTO;
    }
    if ((key >> 3) == field && (key & 7) != WT_LEN) return SB_EPROTO;
  }
  return found;
}

static void *arena_alloc_cb(void *ud, size_t n) {
  return sb_arena_alloc(ud, n ? n : 1);
}
static void arena_free_cb(void *ud, void *p) {
  (void)ud;
  (void)p;
}

ProtobufCAllocator sb_ext_allocator(sb_arena_t *a) {
  return (ProtobufCAllocator){arena_alloc_cb, arena_free_cb, a};
}
