/*
 * gRPC over HTTP/2: the wire pieces that do not depend on a connection, kept apart from the
 * front-end (grpc.c) so they are unit-tested and fuzzed alone.
 *
 * Message framing (gRPC's PROTOCOL-HTTP2, "Length-Prefixed-Message"). The request and the
 * response bodies are each a sequence of messages, every one prefixed by five bytes:
 *
 *   offset  size  field
 *   0       1     Compressed-Flag: 0 = the payload is as is; 1 = it is compressed with the
 *                 stream's grpc-encoding. Other values are a protocol error.
 *   1       4     Message-Length: payload bytes, unsigned, big-endian
 *   5       n     payload: a serialized protobuf message (possibly compressed)
 *
 * Validity, as the reader enforces it:
 *   1. the flag byte is 0 or 1 (else SB_EPROTO -> INTERNAL);
 *   2. Message-Length <= the receive limit (else SB_ELIMIT -> RESOURCE_EXHAUSTED), checked
 *      before a byte of the payload is buffered, so a peer cannot make us hold more than the
 *      limit;
 *   3. the body ends on a message boundary (a truncated message is INTERNAL; the caller asks
 *      sb_grpc_reader_partial() at end of stream).
 * A compressed payload is inflated with the same limit on its output (compression bombs).
 *
 * Headers. grpc-timeout is 1 to 8 ASCII digits and a unit (H hours, M minutes, S seconds,
 * m milliseconds, u microseconds, n nanoseconds). grpc-message is percent-encoded: bytes
 * outside 0x20..0x7E and '%' itself become %XX.
 */
#ifndef SB_PROTOCOLS_GRPC_WIRE_H
#define SB_PROTOCOLS_GRPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SB_GRPC_PREFIX 5u            /* bytes of a message's length prefix */
#define SB_GRPC_TIMEOUT_DIGITS 8u    /* at most this many digits in grpc-timeout */
#define SB_GRPC_INFLATE_CHUNK 16384u /* output bytes reserved per inflate/deflate step */

/* An incremental reader of length-prefixed messages. Zero-initialise, set max; one per
 * request stream; owned by the stream's front-end state on its loop. */
typedef struct sb_grpc_reader {
  size_t max;         /* largest Message-Length accepted, in bytes */
  uint8_t hdr[5];     /* the prefix being collected */
  uint8_t hdr_have;   /* bytes of hdr collected; 5 once the prefix is complete */
  uint8_t compressed; /* the current message's flag (valid once hdr_have == 5) */
  uint32_t need;      /* payload bytes of the current message */
  sb_buf_t buf;       /* payload collected across chunks; owned */
} sb_grpc_reader_t;

/* One complete message. data is borrowed: valid until the next sb_grpc_reader_read() or
 * sb_grpc_reader_free(). */
typedef struct sb_grpc_msg {
  const uint8_t *data; /* payload (still compressed when compressed == 1) */
  size_t len;          /* bytes of data */
  int compressed;      /* the Compressed-Flag */
} sb_grpc_msg_t;

/* Takes bytes from *data (len *len), advancing both past what it consumed. Returns 1 and
 * fills *msg when a message is complete (call again for the rest of the bytes), 0 when every
 * byte was consumed without completing one, SB_EPROTO for a bad flag byte, SB_ELIMIT for a
 * message over r->max or SB_ENOMEM. After an error the reader must not be fed again. */
int sb_grpc_reader_read(sb_grpc_reader_t *r, const uint8_t **data, size_t *len, sb_grpc_msg_t *msg);
/* 1 when the reader holds part of a message (a stream ending now is truncated). */
int sb_grpc_reader_partial(const sb_grpc_reader_t *r);
void sb_grpc_reader_free(sb_grpc_reader_t *r);

/* Writes the 5-byte prefix of a message of len bytes (len <= UINT32_MAX) into p. */
void sb_grpc_prefix(uint8_t p[SB_GRPC_PREFIX], size_t len, int compressed);
/* Appends the prefix and payload of one message to out. Returns 0 or SB_ENOMEM (out may hold
 * part of it then), or SB_ELIMIT for a payload over 4 GiB - 1. */
int sb_grpc_frame(sb_buf_t *out, const uint8_t *payload, size_t len, int compressed);

/* Inflates a gzip member in[0..n) into out (appended). Returns 0, SB_ELIMIT when the output
 * would exceed max bytes, SB_EPROTO for corrupt or truncated data, or SB_ENOMEM. */
int sb_grpc_gunzip(const uint8_t *in, size_t n, size_t max, sb_buf_t *out);
/* As sb_grpc_gunzip(), for gRPC's "deflate" encoding: one zlib stream (RFC 1950 wrapper around
 * RFC 1951 data), which is what every gRPC implementation sends under that name. */
int sb_grpc_inflate_zlib(const uint8_t *in, size_t n, size_t max, sb_buf_t *out);
/* Compresses in[0..n) as one gzip member, appended to out. Returns 0 or SB_ENOMEM. */
int sb_grpc_gzip(const uint8_t *in, size_t n, sb_buf_t *out);

/* Parses a grpc-timeout value into milliseconds (rounded up, so 1n is 1 ms; at least 1).
 * Returns 0 or SB_EINVAL. */
int sb_grpc_parse_timeout(const char *s, uint64_t *ms);
/* Appends the percent-encoding of s[0..n) (grpc-message rules) and a NUL to out; out's
 * pending bytes are then a C string. Returns 0 or SB_ENOMEM. */
int sb_grpc_pct_encode(const char *s, size_t n, sb_buf_t *out);
/* 1 when the comma-separated list (grpc-accept-encoding) names enc (case-insensitive,
 * spaces around names ignored). list may be NULL. */
int sb_grpc_list_has(const char *list, const char *enc);

#endif
