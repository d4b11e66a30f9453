/*
 * gRPC wire pieces: the length-prefixed message reader, framing, gzip, grpc-timeout and
 * grpc-message encoding. The format and its validity rules are described in wire.h.
 */
#include "protocols/grpc/wire.h"

#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "switchboard/error.h"

#define GZIP_WINDOW_BITS (15 + 16) /* zlib: 32 KiB window, gzip wrapper instead of zlib's */
#define ZLIB_WINDOW_BITS 15        /* zlib: 32 KiB window, zlib's own wrapper (RFC 1950) */
#define GZIP_MEM_LEVEL 8           /* zlib's default memory level */

int sb_grpc_reader_read(sb_grpc_reader_t *r, const uint8_t **data, size_t *len,
                        sb_grpc_msg_t *msg) {
  while (r->hdr_have < SB_GRPC_PREFIX) {
    if (*len == 0) return 0;
    r->hdr[r->hdr_have++] = **data;
    (*data)++;
    (*len)--;
    if (r->hdr_have == SB_GRPC_PREFIX) {
      if (r->hdr[0] > 1) return SB_EPROTO;
      r->compressed = r->hdr[0];
      r->need = (uint32_t)r->hdr[1] << 24 | (uint32_t)r->hdr[2] << 16 | (uint32_t)r->hdr[3] << 8 |
                r->hdr[4];
      if (r->need > r->max) return SB_ELIMIT;
      sb_buf_reset(&r->buf);
    }
  }
  size_t have = sb_buf_pending(&r->buf);
  size_t want = r->need - have;
  if (have == 0 && *len >= want) {
    /* The whole payload is in this chunk: hand it out without copying. */
    *msg = (sb_grpc_msg_t){want ? *data : (const uint8_t *)"", want, r->compressed};
    *data += want;
    *len -= want;
    r->hdr_have = 0;
    return 1;
  }
  size_t take = *len < want ? *len : want;
  if (sb_buf_append(&r->buf, *data, take)) return SB_ENOMEM;
  *data += take;
  *len -= take;
  if (take < want) return 0;
  *msg = (sb_grpc_msg_t){sb_buf_head(&r->buf), r->need, r->compressed};
  r->hdr_have = 0;
  return 1;
}

int sb_grpc_reader_partial(const sb_grpc_reader_t *r) {
  return r->hdr_have > 0;
}

void sb_grpc_reader_free(sb_grpc_reader_t *r) {
  sb_buf_free(&r->buf);
}

void sb_grpc_prefix(uint8_t p[SB_GRPC_PREFIX], size_t len, int compressed) {
  p[0] = compressed ? 1 : 0;
  p[1] = (uint8_t)(len >> 24);
  p[2] = (uint8_t)(len >> 16);
  p[3] = (uint8_t)(len >> 8);
  p[4] = (uint8_t)len;
}

int sb_grpc_frame(sb_buf_t *out, const uint8_t *payload, size_t len, int compressed) {
  if (len > UINT32_MAX) return SB_ELIMIT;
  uint8_t p[SB_GRPC_PREFIX];
  sb_grpc_prefix(p, len, compressed);
  int rc = sb_buf_append(out, p, sizeof p);
  if (!rc) rc = sb_buf_append(out, payload, len);
  return rc;
}

/* Before one zlib step: hands z the next piece of input when it used the last (zlib counts in
 * uInt, so at most 1 GiB at a time; *left is what remains after it) and room for
 * SB_GRPC_INFLATE_CHUNK output bytes at the end of out. Returns 0 or SB_ENOMEM. */
static int zstep_prepare(z_stream *z, size_t *left, sb_buf_t *out) {
  if (z->avail_in == 0 && *left) {
    z->avail_in = (uInt)(*left < (1u << 30) ? *left : (1u << 30));
    *left -= z->avail_in;
  }
  int rc = sb_buf_reserve(out, SB_GRPC_INFLATE_CHUNK);
  if (rc) return rc;
  z->next_out = out->data + out->len;
  z->avail_out = SB_GRPC_INFLATE_CHUNK;
  return 0;
}

/* Inflates one member in[0..n) wrapped as window_bits says (gzip or zlib) into out; the
 * contract of sb_grpc_gunzip(). */
static int inflate_member(const uint8_t *in, size_t n, size_t max, sb_buf_t *out, int window_bits) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, window_bits) != Z_OK) return SB_ENOMEM;
  size_t start = sb_buf_pending(out);
  int rc = 0;
  z.next_in = (Bytef *)(uintptr_t)in;
  size_t left = n;
  for (;;) {
    if ((rc = zstep_prepare(&z, &left, out))) break;
    int zr = inflate(&z, Z_NO_FLUSH);
    out->len += SB_GRPC_INFLATE_CHUNK - z.avail_out;
    if (sb_buf_pending(out) - start > max) {
      rc = SB_ELIMIT;
      break;
    }
    if (zr == Z_STREAM_END) {
      /* One member per message: trailing bytes are not ours to guess at. */
      if (z.avail_in || left) rc = SB_EPROTO;
      break;
    }
    if (zr == Z_MEM_ERROR) {
      rc = SB_ENOMEM;
      break;
    }
    if (zr != Z_OK && zr != Z_BUF_ERROR) {
      rc = SB_EPROTO;
      break;
    }
    /* No progress possible: the input ended inside the member. */
    if (zr == Z_BUF_ERROR && z.avail_in == 0 && !left && z.avail_out) {
      rc = SB_EPROTO;
      break;
    }
  }
  inflateEnd(&z);
  return rc;
}

int sb_grpc_gunzip(const uint8_t *in, size_t n, size_t max, sb_buf_t *out) {
  return inflate_member(in, n, max, out, GZIP_WINDOW_BITS);
}

int sb_grpc_inflate_zlib(const uint8_t *in, size_t n, size_t max, sb_buf_t *out) {
  return inflate_member(in, n, max, out, ZLIB_WINDOW_BITS);
}

int sb_grpc_gzip(const uint8_t *in, size_t n, sb_buf_t *out) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZIP_WINDOW_BITS, GZIP_MEM_LEVEL,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    return SB_ENOMEM;
  int rc = 0;
  z.next_in = (Bytef *)(uintptr_t)in;
  size_t left = n;
  for (;;) {
    if ((rc = zstep_prepare(&z, &left, out))) break;
    int zr = deflate(&z, left || z.avail_in ? Z_NO_FLUSH : Z_FINISH);
    out->len += SB_GRPC_INFLATE_CHUNK - z.avail_out;
    if (zr == Z_STREAM_END) break;
    if (zr != Z_OK && zr != Z_BUF_ERROR) {
      rc = SB_ENOMEM;
      break;
    }
  }
  deflateEnd(&z);
  return rc;
}

int sb_grpc_parse_timeout(const char *s, uint64_t *ms) {
  size_t digits = strspn(s, "0123456789");
  if (digits == 0 || digits > SB_GRPC_TIMEOUT_DIGITS || !s[digits] || s[digits + 1])
    return SB_EINVAL;
  uint64_t v = 0;
  for (size_t i = 0; i < digits; i++)
    v = v * 10 + (uint64_t)(s[i] - '0');
  /* At most 99999999 of any unit: hours fit in 64 bits as milliseconds. */
  switch (s[digits]) {
  case 'H':
    v *= 3600000u;
    break;
  case 'M':
    v *= 60000u;
    break;
  case 'S':
    v *= 1000u;
    break;
  case 'm':
    break;
  case 'u':
    v = (v + 999u) / 1000u;
    break;
  case 'n':
    v = (v + 999999u) / 1000000u;
    break;
  default:
    return SB_EINVAL;
  }
  *ms = v ? v : 1;
  return 0;
}

int sb_grpc_pct_encode(const char *s, size_t n, sb_buf_t *out) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    uint8_t c = (uint8_t)s[i];
    int rc;
    if (c < 0x20 || c > 0x7e || c == '%') {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      rc = sb_buf_append(out, e, 3);
    } else {
      rc = sb_buf_append(out, &s[i], 1);
    }
    if (rc) return rc;
  }
  return sb_buf_append(out, "", 1);
}

int sb_grpc_list_has(const char *list, const char *enc) {
  size_t el = strlen(enc);
  while (list && *list) {
    list += strspn(list, " \t,");
    size_t n = strcspn(list, ",");
    size_t t = n;
    while (t && (list[t - 1] == ' ' || list[t - 1] == '\t'))
      t--;
    if (t == el && strncasecmp(list, enc, el) == 0) return 1;
    list += n;
  }
  return 0;
}
