#include "core/codec.h"

long sb_base64_decode(const char *s, size_t n, uint8_t *out) {
  while (n > 0 && s[n - 1] == '=')
    n--;
  if (n % 4 == 1) return -1; /* one leftover character cannot encode a byte */
  uint32_t acc = 0;
  int bits = 0;
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+' || c == '-' ? 62
            : c == '/' || c == '_' ? 63
                                   : -1;
    if (v < 0) return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[len++] = (uint8_t)(acc >> bits);
    }
  }
  return (long)len;
}

size_t sb_base64_encode(const uint8_t *p, size_t n, char *out) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t j = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    out[j++] = abc[v >> 18 & 63];
    out[j++] = abc[v >> 12 & 63];
    out[j++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
    out[j++] = i + 2 < n ? abc[v & 63] : '=';
  }
  return j;
}

char *sb_json_name(const char *proto_name, char *out) {
  size_t o = 0;
  int up = 0;
  for (const char *p = proto_name; *p; p++) {
    if (*p == '_') {
      up = 1;
      continue;
    }
    out[o++] = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 32) : *p;
    up = 0;
  }
  out[o] = '\0';
  return out;
}

uint64_t sb_fnv1a(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 1099511628211ull;
  }
  return h;
}

static int hex_value(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

long sb_pct_decode(const char *s, size_t n, char *out, int plus_space) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++, o++) {
    if (s[i] != '%') {
      out[o] = plus_space && s[i] == '+' ? ' ' : s[i];
      continue;
    }
    int hi = i + 2 < n ? hex_value(s[i + 1]) : -1, lo = hi < 0 ? -1 : hex_value(s[i + 2]);
    if (lo < 0) return -1;
    out[o] = (char)(hi << 4 | lo);
    i += 2;
  }
  out[o] = '\0';
  return (long)o;
}
