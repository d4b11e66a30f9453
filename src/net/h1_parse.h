/*
 * A strict HTTP/1.1 request parser (RFC 9112), written for a server that must not be
 * fooled: every rule below that a lenient parser relaxes is a request-smuggling or
 * response-splitting opening.
 *
 * Shape. A request head (request line + header fields + empty line) is parsed in one pass once
 * it is complete in memory; sb__h1p_head_end() finds its end incrementally, so partial heads
 * are rescanned only from where the last scan stopped. Bodies are framed by Content-Length or
 * by chunked coding, decoded incrementally with sb__h1p_chunk_line().
 *
 * Grammar enforced (anything else is an error with the status to answer):
 *   request-line = method SP request-target SP HTTP-version CRLF
 *     method        1*tchar
 *     request-target 1*( %x21-7E )            (no spaces, no controls, no bytes >= 0x80)
 *     HTTP-version  "HTTP/" DIGIT "." DIGIT   (major != 1 -> 505)
 *   field-line   = field-name ":" OWS field-value OWS CRLF
 *     field-name    1*tchar, no whitespace before ":"
 *     field-value   *( VCHAR / obs-text / SP / HTAB ), no CR, LF or NUL
 *     obs-fold (a line starting with SP or HTAB) is rejected.
 *   Lines end in CRLF only: a bare CR or bare LF anywhere in the head is rejected.
 *   Up to SB_H1P_MAX_EMPTY_LINES empty lines before the request line are skipped (RFC 9112
 *   section 2.2).
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *     chunk-size    1*16HEXDIG; chunk-ext is tchar, "=", ";", quoted text, SP/HTAB, bounded
 *     chunk-data must be followed by exactly CRLF.
 *
 * The parser borrows the caller's bytes and allocates nothing.
 */
#ifndef SB_NET_H1_PARSE_H
#define SB_NET_H1_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define SB_H1P_MAX_EMPTY_LINES 8    /* CRLFs tolerated before a request line */
#define SB_H1P_MAX_CHUNK_LINE 4096u /* chunk-size line including extensions */

/* Called for each header field of a complete head, in order. name/value point into the
 * head (not NUL-terminated; value has no surrounding whitespace). Returns 0 to go on, or an
 * HTTP status to stop parsing with. */
typedef int (*sb__h1p_field_cb)(void *ud, const char *name, size_t nlen, const char *value,
                                size_t vlen);

/* What a request line says. Pointers borrow from the head. */
typedef struct sb__h1p_line {
  const char *method; /* not NUL-terminated */
  size_t method_len;
  const char *target; /* not NUL-terminated */
  size_t target_len;
  int minor; /* HTTP/1.<minor>, 0 or 1 (1.2..1.9 are reported as 1) */
} sb__h1p_line_t;

/* Skips empty lines at the start of p. Returns the number of bytes to skip (a multiple of 2),
 * or -400 when more than SB_H1P_MAX_EMPTY_LINES precede the request or a stray CR/LF does. */
int64_t sb__h1p_skip_empty(const uint8_t *p, size_t len);

/* Looks for the end of a head in p[0..len). *scan is where the previous call stopped (0 at
 * first); it is updated. Returns the head's length including its final CRLFCRLF, or 0 when
 * the head is not complete yet. A bare LF also ends the head (just after it), so that a
 * malformed head is rejected by sb__h1p_parse_head() as soon as it is seen. */
size_t sb__h1p_head_end(const uint8_t *p, size_t len, size_t *scan);

/* Parses a complete head p[0..len) (as measured by sb__h1p_head_end). Fills *line and calls
 * on_field for each field. Returns 0, or the HTTP status to answer: 400 (malformed), 505
 * (HTTP version), or whatever on_field returned. */
int sb__h1p_parse_head(const uint8_t *p, size_t len, sb__h1p_line_t *line,
                       sb__h1p_field_cb on_field, void *ud);

/* Parses a chunk-size line at p. Returns its length including CRLF and sets *size, 0 when the
 * line is not complete yet (and shorter than SB_H1P_MAX_CHUNK_LINE), or -400 when invalid. */
int64_t sb__h1p_chunk_line(const uint8_t *p, size_t len, uint64_t *size);

/* Parses a Content-Length value: digits only, no sign or space, no overflow. Returns 0 and
 * sets *out, or -1. */
int sb__h1p_content_length(const char *v, size_t n, uint64_t *out);

/* Returns 1 when the comma-separated token list v[0..n) contains tok (case-insensitive). */
int sb__h1p_has_token(const char *v, size_t n, const char *tok);

#endif
