#include "contract/plugin/names.h"

#include <string.h>

#include "core/buf.h"

/* ASCII-only classification: protobuf identifiers are ASCII, and <ctype.h> depends on the
 * locale. */
static int is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}
static int is_lower(char c) {
  return c >= 'a' && c <= 'z';
}

typedef int (*piece_fn)(sb_buf_t *out, const char *p, size_t n);

/* Appends one dotted piece [p, p+n) in camel form. Returns 0 or SB_ENOMEM. */
static int camel_piece(sb_buf_t *out, const char *p, size_t n) {
  int up = 1;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c == '_') {
      up = 1;
      continue;
    }
    if (up && is_lower(c)) c = (char)(c - 'a' + 'A');
    up = 0;
    int rc = sb_buf_append(out, &c, 1);
    if (rc) return rc;
  }
  return 0;
}

/* Appends one dotted piece [p, p+n) in lower form. Returns 0 or SB_ENOMEM. */
static int lower_piece(sb_buf_t *out, const char *p, size_t n) {
  int prev_upper = 1; /* no '_' before the first character */
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    int up = is_upper(c);
    int rc = 0;
    if (up && !prev_upper) rc = sb_buf_append(out, "_", 1);
    if (up) c = (char)(c - 'A' + 'a');
    prev_upper = up;
    if (rc || (rc = sb_buf_append(out, &c, 1))) return rc;
  }
  return 0;
}

/* Appends the pieces of dotted, transformed and joined with "__"; *first tracks whether
 * anything was appended yet (across the prefix and the rest). */
static int join_pieces(sb_buf_t *out, const char *dotted, piece_fn piece, int *first) {
  const char *p = dotted ? dotted : "";
  while (*p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (n > 0) {
      int rc = *first ? 0 : sb_buf_append(out, "__", 2);
      if (rc || (rc = piece(out, p, n))) return rc;
      *first = 0;
    }
    p += n;
    if (*p == '.') p++;
  }
  return 0;
}

/* Builds the joined name in a temporary buffer and copies it into the arena. */
static char *make_name(sb_arena_t *a, const char *prefix, const char *rest, piece_fn piece) {
  sb_buf_t b = {0};
  int first = 1;
  char *s = NULL;
  if (join_pieces(&b, prefix, piece, &first) == 0 && join_pieces(&b, rest, piece, &first) == 0)
    s = sb_arena_strndup(a, b.len ? (const char *)sb_buf_head(&b) : "", sb_buf_pending(&b));
  sb_buf_free(&b);
  return s;
}

char *sb_names_camel(sb_arena_t *a, const char *prefix, const char *rest) {
  return make_name(a, prefix, rest, camel_piece);
}

char *sb_names_lower(sb_arena_t *a, const char *prefix, const char *rest) {
  return make_name(a, prefix, rest, lower_piece);
}

int sb_names_is_c_keyword(const char *s) {
  static const char *const keywords[] = {
      "alignas",  "alignof",      "asm",      "auto",          "bool",
      "break",    "case",         "char",     "const",         "constexpr",
      "continue", "default",      "do",       "double",        "else",
      "enum",     "extern",       "false",    "float",         "for",
      "goto",     "if",           "inline",   "int",           "long",
      "nullptr",  "register",     "restrict", "return",        "short",
      "signed",   "sizeof",       "static",   "static_assert", "struct",
      "switch",   "thread_local", "true",     "typedef",       "typeof",
      "union",    "unsigned",     "void",     "volatile",      "while",
  };
  for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
    if (strcmp(s, keywords[i]) == 0) return 1;
  return 0;
}
