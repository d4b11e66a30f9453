/*
 * Message attributes in journal records, shared by the queue and stream engines: each
 * attribute is one record header whose name is the attribute's name and whose value is its
 * type, one NUL byte, and its value bytes (broker_int.h). Names starting with ':' are system
 * fields and are not attributes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker_int.h"
#include "switchboard/error.h"

int sb__hdr_add(sb__hdrs_t *hs, sb_arena_t *a, const char *name, const void *v, size_t vl) {
  if (hs->n >= sizeof hs->h / sizeof hs->h[0]) return SB_EINVAL;
  size_t nl = strlen(name);
  char *nm = sb_arena_strndup(a, name, nl);
  void *vv = vl ? sb_arena_alloc(a, vl) : NULL;
  if (!nm || (vl && !vv)) return SB_ENOMEM;
  if (vl) memcpy(vv, v, vl);
  hs->h[hs->n++] = (sb_journal_header_t){nm, (uint16_t)nl, vv, (uint32_t)vl};
  return 0;
}

int sb__hdr_add_num(sb__hdrs_t *hs, sb_arena_t *a, const char *name, int64_t v) {
  char t[24];
  int l = snprintf(t, sizeof t, "%" PRId64, v);
  return sb__hdr_add(hs, a, name, t, (size_t)l);
}

/* The attribute header value: type, NUL, bytes. */
int sb__hdr_add_attr(sb__hdrs_t *hs, sb_arena_t *a, const sb_broker_attr_t *at) {
  if (hs->n >= sizeof hs->h / sizeof hs->h[0]) return SB_EINVAL;
  size_t vl = at->type_len + 1 + at->value_len;
  char *nm = sb_arena_strndup(a, at->name, at->name_len);
  uint8_t *v = sb_arena_alloc(a, vl);
  if (!nm || !v) return SB_ENOMEM;
  if (at->type_len) memcpy(v, at->type, at->type_len);
  v[at->type_len] = 0;
  if (at->value_len) memcpy(v + at->type_len + 1, at->value, at->value_len);
  hs->h[hs->n++] = (sb_journal_header_t){nm, (uint16_t)at->name_len, v, (uint32_t)vl};
  return 0;
}

int sb__read_attrs(sb_arena_t *a, const sb_journal_record_t *r, const sb_broker_attr_t **out,
                   size_t *n_out) {
  sb_broker_attr_t *at = sb_arena_alloc(a, (r->header_count + 1) * sizeof *at);
  if (!at) return SB_ENOMEM;
  uint32_t pos = 0;
  const uint8_t *n, *v;
  uint16_t nl;
  uint32_t vl;
  size_t k = 0;
  while (sb_journal_header_next(r, &pos, &n, &nl, &v, &vl)) {
    if (!nl || n[0] == ':') continue;
    const uint8_t *z = memchr(v, 0, vl);
    if (!z) continue;
    size_t tl = (size_t)(z - v);
    char *nm = sb_arena_strndup(a, (const char *)n, nl);
    char *ty = sb_arena_strndup(a, (const char *)v, tl);
    size_t dl = vl - tl - 1;
    uint8_t *dv = sb_arena_alloc(a, dl ? dl : 1);
    if (!nm || !ty || !dv) return SB_ENOMEM;
    if (dl) memcpy(dv, z + 1, dl);
    at[k++] = (sb_broker_attr_t){nm, nl, ty, tl, dv, dl};
  }
  *out = at;
  *n_out = k;
  return 0;
}
