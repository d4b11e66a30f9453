/*
 * Small encodings shared across layers: base64 (RFC 4648) and the FNV-1a hash.
 */
#ifndef SB_CORE_CODEC_H
#define SB_CORE_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Bytes sb_base64_decode() may write for n input characters. */
#define SB_BASE64_DECODED_MAX(n) ((n) / 4 * 3 + 3)

/* Decodes s[0..n) as base64 in either alphabet (standard "+/" or URL-safe "-_"), with or
 * without '=' padding, into out (at least SB_BASE64_DECODED_MAX(n) bytes). Returns the
 * decoded length, or -1 when s is not base64. */
long sb_base64_decode(const char *s, size_t n, uint8_t *out);

/* Encodes p[0..n) as padded standard base64 into out (at least (n + 2) / 3 * 4 bytes).
 * Returns the encoded length. */
size_t sb_base64_encode(const uint8_t *p, size_t n, char *out);

/* Percent-decodes s[0..n) into out (at least n + 1 bytes, NUL-terminated); plus_space turns
 * '+' into ' ' (form-encoded query strings). Returns the decoded length, or -1 for a '%' not
 * followed by two hex digits. */
long sb_pct_decode(const char *s, size_t n, char *out, int plus_space);
/* The JSON name protoc gives a .proto field name (proto3 JSON mapping): each '_' is dropped
 * and the letter after it capitalised ("update_mask" -> "updateMask"). Applied to a dotted
 * path, each segment converts on its own. out holds strlen(proto_name) + 1 bytes. Returns
 * out. One rule for the server's JSON codec and the OpenAPI generator, so they cannot drift. */
char *sb_json_name(const char *proto_name, char *out);

/* FNV-1a over n bytes, continuing from h (start with SB_FNV_SEED). Not for adversarial keys
 * where collisions cost more than a compare. */
#define SB_FNV_SEED 14695981039346656037ull /* the 64-bit FNV offset basis */
uint64_t sb_fnv1a(uint64_t h, const void *p, size_t n);

#endif
