#include "contract/plugin/emit_openapi.h"
#include "core/codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/plugin/rules.h"
#include "switchboard/error.h"

#define OA_MAX_DEPTH 64u      /* nesting of the document; ours never exceeds about 12 */
#define OA_MAX_QUERY_DEPTH 8u /* message levels walked for query parameters */
#define OA_MAX_LOC 64u        /* elements of a source_code_info path we build */

/* Field numbers of descriptor.proto used in source_code_info paths. */
enum {
  LOC_FILE_MESSAGE = 4,  /* FileDescriptorProto.message_type */
  LOC_FILE_ENUM = 5,     /* FileDescriptorProto.enum_type */
  LOC_FILE_SERVICE = 6,  /* FileDescriptorProto.service */
  LOC_MSG_FIELD = 2,     /* DescriptorProto.field */
  LOC_MSG_NESTED = 3,    /* DescriptorProto.nested_type */
  LOC_MSG_ENUM = 4,      /* DescriptorProto.enum_type */
  LOC_ENUM_VALUE = 2,    /* EnumDescriptorProto.value */
  LOC_SERVICE_METHOD = 2 /* ServiceDescriptorProto.method */
};

typedef Google__Protobuf__FileDescriptorProto file_t;
typedef Google__Protobuf__DescriptorProto msg_t;
typedef Google__Protobuf__EnumDescriptorProto enum_t;
typedef Google__Protobuf__FieldDescriptorProto field_t;

/* ---- a pretty-printing JSON writer with a sticky error ---- */

typedef struct jw {
  sb_buf_t *out;               /* borrowed */
  uint8_t first[OA_MAX_DEPTH]; /* 1 while the container at that depth has no member yet */
  unsigned depth;              /* open containers; depth < OA_MAX_DEPTH */
  int after_key;               /* the next value follows a key on the same line */
  int err;                     /* 0 or SB_ENOMEM / SB_EINVAL; nothing is written after it */
} jw_t;

static void jw_raw(jw_t *w, const char *s, size_t n) {
  if (!w->err) w->err = sb_buf_append(w->out, s, n);
}

static void jw_newline(jw_t *w) {
  jw_raw(w, "\n", 1);
  for (unsigned i = 0; i < w->depth; i++)
    jw_raw(w, "  ", 2);
}

/* Whatever must precede a value or a key: a comma and a new line inside containers. */
static void jw_sep(jw_t *w) {
  if (w->after_key) {
    w->after_key = 0;
    return;
  }
  if (w->depth == 0) return;
  if (!w->first[w->depth]) jw_raw(w, ",", 1);
  w->first[w->depth] = 0;
  jw_newline(w);
}

static void jw_open(jw_t *w, char c) {
  jw_sep(w);
  jw_raw(w, &c, 1);
  if (w->depth + 1 >= OA_MAX_DEPTH) {
    if (!w->err) w->err = SB_EINVAL;
    return;
  }
  w->first[++w->depth] = 1;
}

static void jw_close(jw_t *w, char c) {
  if (w->depth == 0) return;
  int empty = w->first[w->depth];
  w->depth--;
  if (!empty) jw_newline(w);
  jw_raw(w, &c, 1);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  size_t len;
  unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0; /* surrogates are not characters */
  return len;
}

/* Writes s[0..n) as a JSON string: '"', '\\' and control characters escaped, valid UTF-8
 * copied, every byte of invalid UTF-8 replaced by U+FFFD. */
static void jw_strn(jw_t *w, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  jw_raw(w, "\"", 1);
  while (p < end) {
    unsigned char c = *p;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      jw_raw(w, e, 2);
      p++;
    } else if (c < 0x20 || c == 0x7f) {
      char e[8];
      if (c == '\n')
        memcpy(e, "\\n", 3);
      else if (c == '\t')
        memcpy(e, "\\t", 3);
      else if (c == '\r')
        memcpy(e, "\\r", 3);
      else
        snprintf(e, sizeof e, "\\u%04x", c);
      jw_raw(w, e, strlen(e));
      p++;
    } else {
      size_t len = utf8_len(p, (size_t)(end - p));
      if (len == 0) {
        jw_raw(w, "\xef\xbf\xbd", 3);
        p++;
      } else {
        jw_raw(w, (const char *)p, len);
        p += len;
      }
    }
  }
  jw_raw(w, "\"", 1);
}

static void jw_str(jw_t *w, const char *s) {
  jw_sep(w);
  jw_strn(w, s, strlen(s));
}

static void jw_key(jw_t *w, const char *k) {
  jw_sep(w);
  jw_strn(w, k, strlen(k));
  jw_raw(w, ": ", 2);
  w->after_key = 1;
}

/* A literal value: a number, true or false, as text. */
static void jw_lit(jw_t *w, const char *text) {
  jw_sep(w);
  jw_raw(w, text, strlen(text));
}

static void jw_kv(jw_t *w, const char *k, const char *v) {
  jw_key(w, k);
  jw_str(w, v);
}

/* ---- the generator's state ---- */

/* A message or enum of any file in the request. */
typedef struct type {
  const char *full;   /* "items.v1.Item", without the leading '.'; in the arena */
  const msg_t *msg;   /* the message, or NULL for an enum */
  const enum_t *en;   /* the enum, or NULL for a message */
  const file_t *file; /* the file that defines it */
  const int32_t *loc; /* its source_code_info path; in the arena */
  size_t loc_len;     /* elements of loc */
  int used;           /* 1 when it gets a components.schemas entry */
} type_t;

/* One operation of the document: a binding of a method. */
typedef struct op {
  const char *key;           /* OpenAPI path, "/items/{id}" */
  const char *verb;          /* "get", "post", ... */
  const char **vars;         /* template variables (request field paths) */
  const char **names;        /* path parameter names in key: vars, unless another binding
                                of the same shape named them first (see paths()) */
  size_t n_vars;             /* elements of vars */
  size_t si, mi;             /* service, method index */
  size_t index;              /* binding index: 0, 1, ... */
  const char *body;          /* NULL, "*" or a field name */
  const char *response_body; /* NULL or a field name */
} op_t;

typedef struct gen {
  sb_arena_t *a;                                               /* temporary memory */
  const Google__Protobuf__Compiler__CodeGeneratorRequest *req; /* borrowed */
  const file_t *fd;                                            /* the file described */
  const sb_model_file_t *f;                                    /* its model */
  type_t *types;                                               /* every type of the request */
  size_t n_types, cap_types;                                   /* n_types <= cap_types */
  const char *error_name; /* components.schemas name of the error body */
  jw_t w;
  int err; /* SB_ENOMEM, or 0 */
} gen_t;

static char *gen_printf(gen_t *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *gen_printf(gen_t *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = n < 0 ? NULL : sb_arena_alloc(g->a, (size_t)n + 1);
  if (!s) {
    g->err = SB_ENOMEM;
    return NULL;
  }
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

static void add_type(gen_t *g, const char *full, const msg_t *m, const enum_t *e, const file_t *f,
                     const int32_t *loc, size_t loc_len) {
  if (g->err || !full) return;
  if (g->n_types == g->cap_types) {
    size_t cap = g->cap_types ? 2 * g->cap_types : 64;
    type_t *t = sb_arena_alloc(g->a, cap * sizeof *t);
    if (!t) {
      g->err = SB_ENOMEM;
      return;
    }
    if (g->n_types) memcpy(t, g->types, g->n_types * sizeof *t);
    g->types = t;
    g->cap_types = cap;
  }
  int32_t *l = sb_arena_alloc(g->a, (loc_len ? loc_len : 1) * sizeof *l);
  if (!l) {
    g->err = SB_ENOMEM;
    return;
  }
  memcpy(l, loc, loc_len * sizeof *l);
  g->types[g->n_types++] = (type_t){full, m, e, f, l, loc_len, 0};
}

/* Records message m (named prefix.m->name, at source path loc) and its nested types. */
static void collect_message(gen_t *g, const file_t *f, const char *prefix, const msg_t *m,
                            int32_t *loc, size_t loc_len) {
  if (loc_len + 2 > OA_MAX_LOC) return; /* absurdly deep nesting: left undescribed */
  const char *full = prefix[0] ? gen_printf(g, "%s.%s", prefix, m->name) : m->name;
  add_type(g, full, m, NULL, f, loc, loc_len);
  if (g->err) return;
  for (size_t i = 0; i < m->n_nested_type; i++) {
    loc[loc_len] = LOC_MSG_NESTED;
    loc[loc_len + 1] = (int32_t)i;
    collect_message(g, f, full, m->nested_type[i], loc, loc_len + 2);
  }
  for (size_t i = 0; i < m->n_enum_type; i++) {
    loc[loc_len] = LOC_MSG_ENUM;
    loc[loc_len + 1] = (int32_t)i;
    add_type(g, gen_printf(g, "%s.%s", full, m->enum_type[i]->name), NULL, m->enum_type[i], f, loc,
             loc_len + 2);
  }
}

static void collect_types(gen_t *g) {
  int32_t loc[OA_MAX_LOC];
  for (size_t fi = 0; fi < g->req->n_proto_file; fi++) {
    const file_t *f = g->req->proto_file[fi];
    const char *pkg = f->package ? f->package : "";
    for (size_t i = 0; i < f->n_message_type; i++) {
      loc[0] = LOC_FILE_MESSAGE;
      loc[1] = (int32_t)i;
      collect_message(g, f, pkg, f->message_type[i], loc, 2);
    }
    for (size_t i = 0; i < f->n_enum_type; i++) {
      loc[0] = LOC_FILE_ENUM;
      loc[1] = (int32_t)i;
      const char *name = f->enum_type[i]->name;
      add_type(g, pkg[0] ? gen_printf(g, "%s.%s", pkg, name) : name, NULL, f->enum_type[i], f, loc,
               2);
    }
  }
}

/* The type named name (with or without the leading '.'), or NULL. */
static type_t *find_type(gen_t *g, const char *name) {
  if (!name) return NULL;
  if (name[0] == '.') name++;
  for (size_t i = 0; i < g->n_types; i++)
    if (!strcmp(g->types[i].full, name)) return &g->types[i];
  return NULL;
}

static int is_map_entry(const msg_t *m) {
  return m && m->options && m->options->has_map_entry && m->options->map_entry;
}

/* The field of m with .proto name or JSON name name[0..n), or NULL. */
static const field_t *find_field(const msg_t *m, const char *name, size_t n);

/* The JSON name of field fd, exactly as pbjson writes it: its json_name option when that
 * differs from the default (protoc fills json_name in for every field), else lowerCamelCase. */
static const char *field_json(gen_t *g, const field_t *fd);

/* lowerCamelCase of a .proto field name, exactly as pbjson writes it. */
static char *json_name(gen_t *g, const char *proto_name) {
  char *s = sb_arena_alloc(g->a, strlen(proto_name) + 1);
  if (!s) {
    g->err = SB_ENOMEM;
    return NULL;
  }
  return sb_json_name(proto_name, s);
}

static const char *field_json(gen_t *g, const field_t *fd) {
  if (fd->json_name && fd->json_name[0]) return fd->json_name;
  return json_name(g, fd->name ? fd->name : "");
}

static const field_t *find_field(const msg_t *m, const char *name, size_t n) {
  if (!m) return NULL;
  for (size_t i = 0; i < m->n_field; i++) {
    const char *fn = m->field[i]->name;
    if (strlen(fn) == n && !memcmp(fn, name, n)) return m->field[i];
  }
  /* The JSON name, by the same rule the server's codec uses. */
  for (size_t i = 0; i < m->n_field; i++) {
    const char *custom = m->field[i]->json_name;
    if (custom && custom[0]) {
      if (strlen(custom) == n && !memcmp(custom, name, n)) return m->field[i];
      continue;
    }
    char jn[256];
    if (strlen(m->field[i]->name) >= sizeof jn) continue; /* only the .proto name matches */
    sb_json_name(m->field[i]->name, jn);
    if (strlen(jn) == n && !memcmp(jn, name, n)) return m->field[i];
  }
  return NULL;
}

/* The comment protoc recorded for the element at path loc of file f: the leading comment,
 * else the trailing one, with the one space after each "//" and surrounding blank space
 * removed. NULL when there is none (or f came without source_code_info). */
static const char *comment(gen_t *g, const file_t *f, const int32_t *loc, size_t loc_len) {
  const Google__Protobuf__SourceCodeInfo *sci = f ? f->source_code_info : NULL;
  if (!sci) return NULL;
  for (size_t i = 0; i < sci->n_location; i++) {
    const Google__Protobuf__SourceCodeInfo__Location *l = sci->location[i];
    if (l->n_path != loc_len || (loc_len && memcmp(l->path, loc, loc_len * sizeof *loc))) continue;
    const char *c =
        l->leading_comments && l->leading_comments[0] ? l->leading_comments : l->trailing_comments;
    if (!c) continue;
    size_t n = strlen(c);
    char *s = sb_arena_alloc(g->a, n + 1);
    if (!s) {
      g->err = SB_ENOMEM;
      return NULL;
    }
    size_t o = 0;
    int bol = 1;
    for (const char *p = c; *p; p++) {
      if (bol && *p == ' ') {
        bol = 0;
        continue;
      }
      bol = *p == '\n';
      s[o++] = *p;
    }
    while (o && (s[o - 1] == '\n' || s[o - 1] == ' ' || s[o - 1] == '\t' || s[o - 1] == '\r'))
      o--;
    s[o] = '\0';
    const char *t = s;
    while (*t == '\n')
      t++;
    return *t ? t : NULL;
  }
  return NULL;
}

/* ---- schemas ---- */

/* Writes the members of the inline schema of well-known type full and returns 1, or returns
 * 0 when full is not one we write inline. */
static int wkt_members(gen_t *g, const char *full) {
  static const struct {
    const char *name, *type, *format;
  } simple[] = {
      {"google.protobuf.Timestamp", "string", "date-time"},
      {"google.protobuf.FieldMask", "string", NULL},
      {"google.protobuf.Empty", "object", NULL},
      {"google.protobuf.Struct", "object", NULL},
      {"google.protobuf.NullValue", "null", NULL},
      {"google.protobuf.DoubleValue", "number", "double"},
      {"google.protobuf.FloatValue", "number", "float"},
      {"google.protobuf.Int64Value", "string", "int64"},
      {"google.protobuf.UInt64Value", "string", "uint64"},
      {"google.protobuf.Int32Value", "integer", "int32"},
      {"google.protobuf.UInt32Value", "integer", "uint32"},
      {"google.protobuf.BoolValue", "boolean", NULL},
      {"google.protobuf.StringValue", "string", NULL},
      {"google.protobuf.BytesValue", "string", "byte"},
  };
  jw_t *w = &g->w;
  if (full[0] == '.') full++;
  for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
    if (strcmp(full, simple[i].name)) continue;
    jw_kv(w, "type", simple[i].type);
    if (simple[i].format) jw_kv(w, "format", simple[i].format);
    return 1;
  }
  if (!strcmp(full, "google.protobuf.Duration")) {
    jw_kv(w, "type", "string");
    jw_kv(w, "pattern", "^-?[0-9]+(\\.[0-9]{1,9})?s$");
    return 1;
  }
  if (!strcmp(full, "google.protobuf.Value")) return 1; /* any JSON value: {} */
  if (!strcmp(full, "google.protobuf.ListValue")) {
    jw_kv(w, "type", "array");
    jw_key(w, "items");
    jw_open(w, '{');
    jw_close(w, '}');
    return 1;
  }
  if (!strcmp(full, "google.protobuf.Any")) {
    jw_kv(w, "type", "object");
    jw_key(w, "properties");
    jw_open(w, '{');
    jw_key(w, "@type");
    jw_open(w, '{');
    jw_kv(w, "type", "string");
    jw_close(w, '}');
    jw_close(w, '}');
    return 1;
  }
  return 0;
}

static int is_wkt(const char *full) {
  if (full[0] == '.') full++;
  static const char *const names[] = {
      "google.protobuf.Timestamp",   "google.protobuf.Duration",    "google.protobuf.FieldMask",
      "google.protobuf.Empty",       "google.protobuf.Struct",      "google.protobuf.Value",
      "google.protobuf.ListValue",   "google.protobuf.NullValue",   "google.protobuf.Any",
      "google.protobuf.DoubleValue", "google.protobuf.FloatValue",  "google.protobuf.Int64Value",
      "google.protobuf.UInt64Value", "google.protobuf.Int32Value",  "google.protobuf.UInt32Value",
      "google.protobuf.BoolValue",   "google.protobuf.StringValue", "google.protobuf.BytesValue",
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(full, names[i])) return 1;
  return 0;
}

/* Well-known types whose JSON form is a string, number or boolean: they can be query and
 * path parameters. */
static int is_scalar_wkt(const char *full) {
  if (full[0] == '.') full++;
  return is_wkt(full) && strcmp(full, "google.protobuf.Empty") &&
         strcmp(full, "google.protobuf.Struct") && strcmp(full, "google.protobuf.Value") &&
         strcmp(full, "google.protobuf.ListValue") && strcmp(full, "google.protobuf.Any");
}

/* The members of a schema for type name: a well-known type inline, else a $ref. */
static void ref_members(gen_t *g, const char *name) {
  if (wkt_members(g, name)) return;
  const type_t *t = find_type(g, name);
  if (!t) return; /* protoc resolved every name; an unknown one stays {} */
  char *ref = gen_printf(g, "#/components/schemas/%s", t->full);
  if (ref) jw_kv(&g->w, "$ref", ref);
}

/* The members of the schema of one value of field fd (an element when it is repeated). */
static void element_members(gen_t *g, const field_t *fd) {
  static const char *const types[][2] = {
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE] = {"number", "double"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT] = {"number", "float"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64] = {"string", "int64"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64] = {"string", "uint64"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32] = {"integer", "int32"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64] = {"string", "uint64"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32] = {"integer", "uint32"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL] = {"boolean", NULL},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING] = {"string", NULL},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES] = {"string", "byte"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32] = {"integer", "uint32"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32] = {"integer", "int32"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64] = {"string", "int64"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32] = {"integer", "int32"},
      [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64] = {"string", "int64"},
  };
  if (fd->type_name && fd->type_name[0]) { /* message, group or enum */
    ref_members(g, fd->type_name);
    return;
  }
  unsigned t = (unsigned)fd->type;
  if (t < sizeof types / sizeof types[0] && types[t][0]) {
    jw_kv(&g->w, "type", types[t][0]);
    if (types[t][1]) jw_kv(&g->w, "format", types[t][1]);
  }
}

/* The map entry message of fd when fd is a map field, else NULL. */
static const msg_t *map_entry_of(gen_t *g, const field_t *fd) {
  if (fd->label != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED) return NULL;
  const type_t *t = find_type(g, fd->type_name);
  return t && is_map_entry(t->msg) ? t->msg : NULL;
}

/* A JSON Schema keyword with a number value. */
static void kv_num(gen_t *g, const char *k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kv_num(gen_t *g, const char *k, const char *fmt, ...) {
  char text[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  jw_key(&g->w, k);
  jw_lit(&g->w, text);
}

/* The JSON Schema keywords of the value rules of r for one value of field fd. 64-bit
 * integers are JSON strings, which numeric keywords do not constrain, so their bounds (and
 * bytes lengths, which base64 changes) stay with the server's own check. */
static void value_keywords(gen_t *g, const field_t *fd, const sb_field_rule_t *r) {
  uint32_t f = r->flags;
  switch (fd->type) {
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING:
    if (f & SB_RULE_LEN_MIN) kv_num(g, "minLength", "%llu", (unsigned long long)r->len_min);
    if (f & SB_RULE_LEN_MAX) kv_num(g, "maxLength", "%llu", (unsigned long long)r->len_max);
    if (r->pattern) jw_kv(&g->w, "pattern", r->pattern);
    break;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32:
    if (f & SB_RULE_MIN)
      kv_num(g, f & SB_RULE_MIN_EXCL ? "exclusiveMinimum" : "minimum", "%lld", (long long)r->i_min);
    if (f & SB_RULE_MAX)
      kv_num(g, f & SB_RULE_MAX_EXCL ? "exclusiveMaximum" : "maximum", "%lld", (long long)r->i_max);
    break;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32:
    if (f & SB_RULE_MIN)
      kv_num(g, f & SB_RULE_MIN_EXCL ? "exclusiveMinimum" : "minimum", "%llu",
             (unsigned long long)r->u_min);
    if (f & SB_RULE_MAX)
      kv_num(g, f & SB_RULE_MAX_EXCL ? "exclusiveMaximum" : "maximum", "%llu",
             (unsigned long long)r->u_max);
    break;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE:
    if (f & SB_RULE_MIN)
      kv_num(g, f & SB_RULE_MIN_EXCL ? "exclusiveMinimum" : "minimum", "%.17g", r->d_min);
    if (f & SB_RULE_MAX)
      kv_num(g, f & SB_RULE_MAX_EXCL ? "exclusiveMaximum" : "maximum", "%.17g", r->d_max);
    break;
  default:
    break;
  }
}

/* The members of the schema of field fd as a whole (arrays and maps included); r is its
 * validation rules or NULL. */
static void field_members(gen_t *g, const field_t *fd, const sb_field_rule_t *r) {
  jw_t *w = &g->w;
  const msg_t *entry = map_entry_of(g, fd);
  if (entry) {
    /* JSON object keys are strings whatever the key type; the value is field 2. */
    const field_t *value = NULL;
    for (size_t i = 0; i < entry->n_field; i++)
      if (entry->field[i]->number == 2) value = entry->field[i];
    jw_kv(w, "type", "object");
    if (r && (r->flags & SB_RULE_ITEMS_MIN))
      kv_num(g, "minProperties", "%llu", (unsigned long long)r->items_min);
    if (r && (r->flags & SB_RULE_ITEMS_MAX))
      kv_num(g, "maxProperties", "%llu", (unsigned long long)r->items_max);
    jw_key(w, "additionalProperties");
    jw_open(w, '{');
    if (value) element_members(g, value);
    jw_close(w, '}');
  } else if (fd->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED) {
    jw_kv(w, "type", "array");
    if (r && (r->flags & SB_RULE_ITEMS_MIN))
      kv_num(g, "minItems", "%llu", (unsigned long long)r->items_min);
    if (r && (r->flags & SB_RULE_ITEMS_MAX))
      kv_num(g, "maxItems", "%llu", (unsigned long long)r->items_max);
    jw_key(w, "items");
    jw_open(w, '{');
    element_members(g, fd);
    if (r) value_keywords(g, fd, r);
    jw_close(w, '}');
  } else {
    element_members(g, fd);
    if (r) value_keywords(g, fd, r);
  }
}

/* The validation rules of field fd into *r: 1 when it has some, else 0 (the model already
 * refused contracts whose rules are malformed). */
static int field_rules(gen_t *g, const field_t *fd, sb_field_rule_t *r) {
  char why[256];
  int rc = sb_rules_read(g->a, fd, map_entry_of(g, fd) != NULL, r, why, sizeof why);
  if (rc == SB_ENOMEM) g->err = rc;
  return rc == 1;
}

/* The description of field i of message t: its comment, plus a note for oneof members. */
static const char *field_description(gen_t *g, const type_t *t, size_t i) {
  int32_t loc[OA_MAX_LOC + 2];
  memcpy(loc, t->loc, t->loc_len * sizeof *loc);
  loc[t->loc_len] = LOC_MSG_FIELD;
  loc[t->loc_len + 1] = (int32_t)i;
  const char *c = comment(g, t->file, loc, t->loc_len + 2);
  const field_t *fd = t->msg->field[i];
  int synthetic = fd->has_proto3_optional && fd->proto3_optional;
  if (!fd->has_oneof_index || synthetic || (size_t)fd->oneof_index >= t->msg->n_oneof_decl)
    return c;
  const char *oneof = t->msg->oneof_decl[fd->oneof_index]->name;
  return gen_printf(g, "%s%sMember of oneof %s: at most one of its members is set.", c ? c : "",
                    c ? "\n\n" : "", oneof ? oneof : "");
}

/* The members of the schema of field fd with its validation rules as keywords. */
static void field_schema(gen_t *g, const field_t *fd) {
  sb_field_rule_t r;
  field_members(g, fd, field_rules(g, fd, &r) ? &r : NULL);
}

static void message_schema(gen_t *g, const type_t *t) {
  jw_t *w = &g->w;
  jw_kv(w, "type", "object");
  const char *c = comment(g, t->file, t->loc, t->loc_len);
  if (c) jw_kv(w, "description", c);
  if (t->msg->n_field == 0) return;
  jw_key(w, "properties");
  jw_open(w, '{');
  size_t n_required = 0;
  for (size_t i = 0; i < t->msg->n_field; i++) {
    const field_t *fd = t->msg->field[i];
    const char *jn = field_json(g, fd);
    if (!jn) return;
    sb_field_rule_t r;
    int has_rules = field_rules(g, fd, &r);
    n_required += has_rules && (r.flags & SB_RULE_REQUIRED);
    jw_key(w, jn);
    jw_open(w, '{');
    field_members(g, fd, has_rules ? &r : NULL);
    const char *d = field_description(g, t, i);
    if (d) jw_kv(w, "description", d);
    jw_close(w, '}');
  }
  jw_close(w, '}');
  if (n_required == 0) return;
  /* (switchboard.field).required: the member must be present (and, proto3 JSON omitting
   * defaults, hold a non-default value). */
  jw_key(w, "required");
  jw_open(w, '[');
  for (size_t i = 0; i < t->msg->n_field; i++) {
    sb_field_rule_t r;
    if (!field_rules(g, t->msg->field[i], &r) || !(r.flags & SB_RULE_REQUIRED)) continue;
    const char *jn = field_json(g, t->msg->field[i]);
    if (jn) jw_str(w, jn);
  }
  jw_close(w, ']');
}

static void enum_schema(gen_t *g, const type_t *t) {
  jw_t *w = &g->w;
  jw_kv(w, "type", "string");
  const char *c = comment(g, t->file, t->loc, t->loc_len);
  if (c) jw_kv(w, "description", c);
  jw_key(w, "enum");
  jw_open(w, '[');
  for (size_t i = 0; i < t->en->n_value; i++)
    jw_str(w, t->en->value[i]->name ? t->en->value[i]->name : "");
  jw_close(w, ']');
}

/* Marks the type name and everything it reaches for components.schemas. */
static void mark(gen_t *g, const char *name, unsigned depth) {
  type_t *t = find_type(g, name);
  if (!t || t->used || is_wkt(t->full) || depth > 256) return;
  /* A map entry is written as an object, not a schema of its own. */
  if (!is_map_entry(t->msg)) t->used = 1;
  if (!t->msg) return;
  for (size_t i = 0; i < t->msg->n_field; i++)
    if (t->msg->field[i]->type_name) mark(g, t->msg->field[i]->type_name, depth + 1);
}

static int cmp_types(const void *x, const void *y) {
  const type_t *a = *(const type_t *const *)x, *b = *(const type_t *const *)y;
  return strcmp(a->full, b->full);
}

static void error_schema(gen_t *g) {
  jw_t *w = &g->w;
  jw_kv(w, "type", "object");
  jw_kv(w, "description",
        "The body of every error response: the gRPC status code (its number), a message, and "
        "details (google.rpc.Status). The HTTP status is mapped from the code.");
  jw_key(w, "properties");
  jw_open(w, '{');
  jw_key(w, "code");
  jw_open(w, '{');
  jw_kv(w, "type", "integer");
  jw_kv(w, "format", "int32");
  jw_close(w, '}');
  jw_key(w, "message");
  jw_open(w, '{');
  jw_kv(w, "type", "string");
  jw_close(w, '}');
  jw_key(w, "details");
  jw_open(w, '{');
  jw_kv(w, "type", "array");
  jw_key(w, "items");
  jw_open(w, '{');
  jw_kv(w, "type", "object");
  jw_close(w, '}');
  jw_close(w, '}');
  jw_close(w, '}');
}

static void components(gen_t *g) {
  jw_t *w = &g->w;
  size_t n = 0;
  for (size_t i = 0; i < g->n_types; i++)
    n += g->types[i].used;
  const type_t **list = sb_arena_alloc(g->a, (n ? n : 1) * sizeof *list);
  if (!list) {
    g->err = SB_ENOMEM;
    return;
  }
  n = 0;
  for (size_t i = 0; i < g->n_types; i++)
    if (g->types[i].used) list[n++] = &g->types[i];
  qsort(list, n, sizeof *list, cmp_types);
  jw_key(w, "components");
  jw_open(w, '{');
  jw_key(w, "schemas");
  jw_open(w, '{');
  for (size_t i = 0; i < n; i++) {
    jw_key(w, list[i]->full);
    jw_open(w, '{');
    if (list[i]->msg)
      message_schema(g, list[i]);
    else
      enum_schema(g, list[i]);
    jw_close(w, '}');
  }
  jw_key(w, g->error_name);
  jw_open(w, '{');
  error_schema(g);
  jw_close(w, '}');
  jw_close(w, '}');
  jw_close(w, '}');
}

/* ---- paths ---- */

/* Parses template tmpl into op: the OpenAPI path ("{var=pattern}" becomes "{var}") and the
 * variable names. */
static void parse_template(gen_t *g, const char *tmpl, op_t *op) {
  size_t n = strlen(tmpl), nv = 0;
  for (const char *p = tmpl; *p; p++)
    nv += *p == '{';
  char *key = sb_arena_alloc(g->a, n + 1);
  op->vars = sb_arena_alloc(g->a, (nv ? nv : 1) * sizeof *op->vars);
  if (!key || !op->vars) {
    g->err = SB_ENOMEM;
    return;
  }
  size_t o = 0;
  op->n_vars = 0;
  for (const char *p = tmpl; *p;) {
    if (*p != '{') {
      key[o++] = *p++;
      continue;
    }
    const char *close = strchr(p, '}');
    if (!close) { /* the router rejects such a template; keep the text as it is */
      while (*p)
        key[o++] = *p++;
      break;
    }
    const char *eq = memchr(p, '=', (size_t)(close - p));
    const char *vend = eq ? eq : close;
    char *v = sb_arena_strndup(g->a, p + 1, (size_t)(vend - p - 1));
    if (!v) {
      g->err = SB_ENOMEM;
      return;
    }
    op->vars[op->n_vars++] = v;
    key[o++] = '{';
    memcpy(key + o, v, strlen(v));
    o += strlen(v);
    key[o++] = '}';
    p = close + 1;
  }
  key[o] = '\0';
  op->key = key;
}

/* The verb as an OpenAPI operation name, or NULL when OpenAPI has none for it. */
static const char *openapi_verb(const char *verb) {
  static const char *const verbs[][2] = {
      {"GET", "get"},         {"PUT", "put"},   {"POST", "post"},   {"DELETE", "delete"},
      {"OPTIONS", "options"}, {"HEAD", "head"}, {"PATCH", "patch"}, {"TRACE", "trace"},
  };
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
    if (!strcmp(verb, verbs[i][0])) return verbs[i][1];
  return NULL;
}

/* The message type of method (si, mi): its input when in is 1, else its output. */
static const char *method_type(gen_t *g, size_t si, size_t mi, int in) {
  const Google__Protobuf__MethodDescriptorProto *md = g->fd->service[si]->method[mi];
  return in ? md->input_type : md->output_type;
}

/* The field at dotted path (proto or JSON names) in message type_name, or NULL. */
static const field_t *field_at(gen_t *g, const char *type_name, const char *path) {
  const type_t *t = find_type(g, type_name);
  const field_t *fd = NULL;
  for (const char *seg = path;;) {
    if (!t || !t->msg) return NULL;
    const char *dot = strchr(seg, '.');
    size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
    fd = find_field(t->msg, seg, len);
    if (!fd || !dot) return fd;
    t = find_type(g, fd->type_name);
    seg = dot + 1;
  }
}

/* The description of field fd of a message of type type_name (by searching the message). */
static const char *field_comment(gen_t *g, const char *type_name, const field_t *fd) {
  /* The field's owner is the message holding exactly this descriptor. */
  for (size_t ti = 0; ti < g->n_types; ti++) {
    const type_t *t = &g->types[ti];
    if (!t->msg) continue;
    for (size_t i = 0; i < t->msg->n_field; i++)
      if (t->msg->field[i] == fd) return field_description(g, t, i);
  }
  (void)type_name;
  return NULL;
}

/* 1 when dotted path a names the same field as b (each in proto or JSON names). */
static int same_path(gen_t *g, const char *root, const char *a, const char *b) {
  if (!strcmp(a, b)) return 1;
  return field_at(g, root, a) != NULL && field_at(g, root, a) == field_at(g, root, b);
}

typedef struct qwalk {
  const op_t *op;                         /* the operation */
  const char *root;                       /* request type name */
  const msg_t *stack[OA_MAX_QUERY_DEPTH]; /* messages being walked, to stop at recursion */
  size_t depth;                           /* elements of stack */
  int emit;                               /* 1: write parameters; 0: count them */
  size_t count;                           /* parameters seen */
} qwalk_t;

/* Visits the query parameters of message m; proto and json are the dotted prefixes of its
 * fields ("" at the root). */
static void query_walk(gen_t *g, qwalk_t *q, const msg_t *m, const char *proto, const char *json) {
  jw_t *w = &g->w;
  if (q->depth == OA_MAX_QUERY_DEPTH) return;
  for (size_t d = 0; d < q->depth; d++)
    if (q->stack[d] == m) return;
  q->stack[q->depth++] = m;
  for (size_t i = 0; i < m->n_field && !g->err; i++) {
    const field_t *fd = m->field[i];
    const char *name = fd->name ? fd->name : "";
    if (!proto[0] && q->op->body && !strcmp(q->op->body, name)) continue;
    const char *pp = proto[0] ? gen_printf(g, "%s.%s", proto, name) : name;
    const char *jn = field_json(g, fd);
    const char *jp = jn && json[0] ? gen_printf(g, "%s.%s", json, jn) : jn;
    if (!pp || !jp) return;
    int bound = 0;
    for (size_t v = 0; v < q->op->n_vars && !bound; v++)
      bound = same_path(g, q->root, q->op->vars[v], pp);
    if (bound) continue;
    int repeated = fd->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED;
    int is_msg = fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE ||
                 fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP;
    if (is_msg && !is_scalar_wkt(fd->type_name ? fd->type_name : "")) {
      /* A message is set through its fields; lists and maps of messages cannot be. */
      const type_t *t = find_type(g, fd->type_name);
      if (!repeated && t && t->msg && !is_wkt(t->full)) query_walk(g, q, t->msg, pp, jp);
      continue;
    }
    if (is_msg && repeated) continue;
    q->count++;
    if (!q->emit) continue;
    jw_open(w, '{');
    jw_kv(w, "name", jp);
    jw_kv(w, "in", "query");
    sb_field_rule_t qr;
    if (field_rules(g, fd, &qr) && (qr.flags & SB_RULE_REQUIRED)) {
      jw_key(w, "required");
      jw_lit(w, "true");
    }
    const char *c = field_comment(g, q->root, fd);
    if (c) jw_kv(w, "description", c);
    jw_key(w, "schema");
    jw_open(w, '{');
    field_schema(g, fd);
    jw_close(w, '}');
    if (repeated) {
      jw_kv(w, "style", "form");
      jw_key(w, "explode");
      jw_lit(w, "true");
    }
    jw_close(w, '}');
  }
  q->depth--;
}

static void parameters(gen_t *g, const op_t *op) {
  jw_t *w = &g->w;
  const char *root = method_type(g, op->si, op->mi, 1);
  const type_t *rt = find_type(g, root);
  qwalk_t q = {.op = op, .root = root};
  int whole_body = op->body && !strcmp(op->body, "*");
  if (!whole_body && rt && rt->msg && !is_wkt(rt->full)) query_walk(g, &q, rt->msg, "", "");
  if (op->n_vars == 0 && q.count == 0) return;
  jw_key(w, "parameters");
  jw_open(w, '[');
  for (size_t v = 0; v < op->n_vars; v++) {
    const field_t *fd = field_at(g, root, op->vars[v]);
    jw_open(w, '{');
    jw_kv(w, "name", op->names[v]);
    jw_kv(w, "in", "path");
    jw_key(w, "required");
    jw_lit(w, "true");
    const char *c = fd ? field_comment(g, root, fd) : NULL;
    if (strcmp(op->names[v], op->vars[v]) != 0)
      c = gen_printf(g, "Binds the request field %s.%s%s", op->vars[v], c ? " " : "", c ? c : "");
    if (c) jw_kv(w, "description", c);
    jw_key(w, "schema");
    jw_open(w, '{');
    if (fd)
      field_schema(g, fd);
    else
      jw_kv(w, "type", "string");
    jw_close(w, '}');
    jw_close(w, '}');
  }
  if (q.count) {
    q.emit = 1;
    q.count = 0;
    query_walk(g, &q, rt->msg, "", "");
  }
  jw_close(w, ']');
}

/* "content": {"application/json": {"schema": ...}} for the message type name, or for its
 * field field when field is not NULL. */
static void json_content(gen_t *g, const char *type_name, const char *field) {
  jw_t *w = &g->w;
  jw_key(w, "content");
  jw_open(w, '{');
  jw_key(w, "application/json");
  jw_open(w, '{');
  jw_key(w, "schema");
  jw_open(w, '{');
  if (!field) {
    ref_members(g, type_name);
  } else {
    const field_t *fd = field_at(g, type_name, field);
    if (fd) field_schema(g, fd);
  }
  jw_close(w, '}');
  jw_close(w, '}');
  jw_close(w, '}');
}

/* The reason phrase of a 2xx status, for the response's description. */
static const char *reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 203:
    return "Non-Authoritative Information";
  case 204:
    return "No Content";
  case 205:
    return "Reset Content";
  case 206:
    return "Partial Content";
  default:
    return "Success";
  }
}

static void responses(gen_t *g, const op_t *op) {
  jw_t *w = &g->w;
  const sb_model_method_t *m = &g->f->services[op->si].methods[op->mi];
  const char *out = method_type(g, op->si, op->mi, 0);
  const type_t *ot = find_type(g, out);
  const char *out_name = ot ? ot->full : out;
  int streaming = g->fd->service[op->si]->method[op->mi]->server_streaming;
  jw_key(w, "responses");
  jw_open(w, '{');
  if (streaming) {
    jw_key(w, "200");
    jw_open(w, '{');
    const char *d = gen_printf(g,
                               "A stream of %s messages: Server-Sent Events (one \"data: <JSON>\" "
                               "event per message) when the client accepts text/event-stream, "
                               "else newline-delimited JSON.",
                               out_name ? out_name : "");
    if (d) jw_kv(w, "description", d);
    jw_key(w, "content");
    jw_open(w, '{');
    jw_key(w, "text/event-stream");
    jw_open(w, '{');
    jw_key(w, "schema");
    jw_open(w, '{');
    jw_kv(w, "type", "string");
    jw_close(w, '}');
    jw_close(w, '}');
    jw_key(w, "application/x-ndjson");
    jw_open(w, '{');
    jw_key(w, "schema");
    jw_open(w, '{');
    ref_members(g, out);
    jw_close(w, '}');
    jw_close(w, '}');
    jw_close(w, '}');
    jw_close(w, '}');
  } else {
    int status = m->success_status ? m->success_status : 200;
    char code[16];
    snprintf(code, sizeof code, "%d", status);
    jw_key(w, code);
    jw_open(w, '{');
    jw_kv(w, "description", reason(status));
    if (status != 204) json_content(g, out, op->response_body);
    jw_close(w, '}');
  }
  jw_key(w, "default");
  jw_open(w, '{');
  jw_kv(w, "description", "An error; the HTTP status is mapped from the gRPC status code.");
  jw_key(w, "content");
  jw_open(w, '{');
  jw_key(w, "application/json");
  jw_open(w, '{');
  jw_key(w, "schema");
  jw_open(w, '{');
  char *ref = gen_printf(g, "#/components/schemas/%s", g->error_name);
  if (ref) jw_kv(w, "$ref", ref);
  jw_close(w, '}');
  jw_close(w, '}');
  jw_close(w, '}');
  jw_close(w, '}');
  jw_close(w, '}');
}

static void operation(gen_t *g, const op_t *op) {
  jw_t *w = &g->w;
  const Google__Protobuf__ServiceDescriptorProto *sd = g->fd->service[op->si];
  const Google__Protobuf__MethodDescriptorProto *md = sd->method[op->mi];
  jw_key(w, op->verb);
  jw_open(w, '{');
  const char *id = op->index ? gen_printf(g, "%s_%s_%zu", sd->name, md->name, op->index)
                             : gen_printf(g, "%s_%s", sd->name, md->name);
  if (id) jw_kv(w, "operationId", id);
  int32_t loc[4] = {LOC_FILE_SERVICE, (int32_t)op->si, LOC_SERVICE_METHOD, (int32_t)op->mi};
  const char *c = comment(g, g->fd, loc, 4);
  if (c) {
    const char *nl = strchr(c, '\n');
    const char *summary = nl ? sb_arena_strndup(g->a, c, (size_t)(nl - c)) : c;
    if (!summary)
      g->err = SB_ENOMEM;
    else
      jw_kv(w, "summary", summary);
    if (nl) jw_kv(w, "description", c);
  } else {
    jw_kv(w, "summary", md->name); /* every operation has one, as linters expect */
  }
  jw_key(w, "tags");
  jw_open(w, '[');
  jw_str(w, sd->name);
  jw_close(w, ']');
  if (md->options && md->options->has_deprecated && md->options->deprecated) {
    jw_key(w, "deprecated");
    jw_lit(w, "true");
  }
  parameters(g, op);
  if (op->body) {
    const char *in = method_type(g, op->si, op->mi, 1);
    jw_key(w, "requestBody");
    jw_open(w, '{');
    jw_key(w, "required");
    jw_lit(w, "true");
    json_content(g, in, strcmp(op->body, "*") ? op->body : NULL);
    jw_close(w, '}');
  }
  responses(g, op);
  jw_close(w, '}');
}

/* Whether two OpenAPI path keys differ only in the names inside their braces. */
static int same_shape(const char *a, const char *b) {
  while (*a && *b) {
    if (*a == '{' && *b == '{') {
      a = strchr(a, '}');
      b = strchr(b, '}');
      if (!a || !b) return 0;
    } else if (*a != *b) {
      return 0;
    }
    a++;
    b++;
  }
  return *a == *b;
}

static void paths(gen_t *g) {
  jw_t *w = &g->w;
  const sb_model_file_t *f = g->f;
  size_t n = 0;
  for (size_t si = 0; si < f->n_services; si++)
    for (size_t mi = 0; mi < f->services[si].n_methods; mi++)
      n += f->services[si].methods[mi].n_rules + 1;
  op_t *ops = sb_arena_alloc(g->a, (n ? n : 1) * sizeof *ops);
  if (!ops) {
    g->err = SB_ENOMEM;
    return;
  }
  size_t k = 0;
  for (size_t si = 0; si < f->n_services; si++) {
    for (size_t mi = 0; mi < f->services[si].n_methods; mi++) {
      const sb_model_method_t *m = &f->services[si].methods[mi];
      for (size_t r = 0; r <= m->n_rules && !g->err; r++) {
        /* Binding n_rules is the default route the REST front-end always adds. */
        sb_model_rule_t def = {"POST", m->grpc_path, "*", NULL};
        const sb_model_rule_t *rule = r < m->n_rules ? &m->rules[r] : &def;
        op_t *op = &ops[k];
        *op = (op_t){.verb = openapi_verb(rule->verb),
                     .si = si,
                     .mi = mi,
                     .index = r,
                     .body = rule->body,
                     .response_body = rule->response_body};
        if (!op->verb) continue;
        parse_template(g, rule->path, op);
        if (g->err) break;
        op->names = op->vars;
        /* OpenAPI treats "/items/{id}" and "/items/{item.id}" as the same path: a binding
         * whose shape matches an earlier one takes its key and parameter names; the router
         * binds variables by position, so the request is the same. */
        for (size_t j = 0; j < k; j++) {
          if (ops[j].n_vars == op->n_vars && strcmp(ops[j].key, op->key) != 0 &&
              same_shape(ops[j].key, op->key)) {
            op->key = ops[j].key;
            op->names = ops[j].names;
            break;
          }
        }
        int dup = 0;
        for (size_t j = 0; j < k && !dup; j++)
          dup = !strcmp(ops[j].key, op->key) && !strcmp(ops[j].verb, op->verb);
        if (!dup) k++;
      }
    }
  }
  if (g->err) return;
  jw_key(w, "paths");
  jw_open(w, '{');
  for (size_t i = 0; i < k && !g->err; i++) {
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++)
      seen = !strcmp(ops[j].key, ops[i].key);
    if (seen) continue;
    jw_key(w, ops[i].key);
    jw_open(w, '{');
    for (size_t j = i; j < k; j++)
      if (!strcmp(ops[j].key, ops[i].key)) operation(g, &ops[j]);
    jw_close(w, '}');
  }
  jw_close(w, '}');
}

/* ---- the document ---- */

static void info(gen_t *g) {
  jw_t *w = &g->w;
  const char *title = g->fd->package && g->fd->package[0] ? g->fd->package : NULL;
  if (!title) {
    sb_buf_t names = {0};
    for (size_t i = 0; i < g->fd->n_service && !g->err; i++)
      g->err = sb_buf_appendf(&names, "%s%s", i ? ", " : "", g->fd->service[i]->name);
    if (!g->err)
      title = gen_printf(g, "%.*s", (int)sb_buf_pending(&names),
                         names.data ? (const char *)sb_buf_head(&names) : "");
    sb_buf_free(&names);
    if (!title) title = g->f->name;
  }
  jw_key(w, "info");
  jw_open(w, '{');
  jw_kv(w, "title", title);
  const char *d = gen_printf(g, "Generated by protoc-gen-switchboard from %s.", g->f->name);
  if (d) jw_kv(w, "description", d);
  jw_kv(w, "version", "1");
  jw_close(w, '}');
}

static void tags(gen_t *g) {
  jw_t *w = &g->w;
  if (g->fd->n_service == 0) return;
  jw_key(w, "tags");
  jw_open(w, '[');
  for (size_t i = 0; i < g->fd->n_service; i++) {
    jw_open(w, '{');
    jw_kv(w, "name", g->fd->service[i]->name);
    int32_t loc[2] = {LOC_FILE_SERVICE, (int32_t)i};
    const char *c = comment(g, g->fd, loc, 2);
    if (c) jw_kv(w, "description", c);
    jw_close(w, '}');
  }
  jw_close(w, ']');
}

int sb_emit_openapi(sb_arena_t *a, const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
                    const Google__Protobuf__FileDescriptorProto *fd, const sb_model_file_t *f,
                    sb_buf_t *out) {
  gen_t g = {.a = a, .req = req, .fd = fd, .f = f, .error_name = "Error"};
  g.w.out = out;
  collect_types(&g);
  if (g.err) return g.err;
  /* Everything the file defines, and everything its methods reach. */
  for (size_t i = 0; i < g.n_types; i++)
    if (g.types[i].file == fd) mark(&g, g.types[i].full, 0);
  for (size_t si = 0; si < fd->n_service; si++)
    for (size_t mi = 0; mi < fd->service[si]->n_method; mi++) {
      mark(&g, fd->service[si]->method[mi]->input_type, 0);
      mark(&g, fd->service[si]->method[mi]->output_type, 0);
    }
  /* A package-less message called Error keeps its name; ours moves aside. */
  const type_t *clash = find_type(&g, "Error");
  if (clash && clash->used) g.error_name = "switchboard.Error";

  jw_t *w = &g.w;
  jw_open(w, '{');
  jw_kv(w, "openapi", "3.1.0");
  info(&g);
  /* Relative to wherever the document is served from; no authentication is defined. */
  jw_key(w, "servers");
  jw_open(w, '[');
  jw_open(w, '{');
  jw_kv(w, "url", "/");
  jw_close(w, '}');
  jw_close(w, ']');
  jw_key(w, "security");
  jw_open(w, '[');
  jw_close(w, ']');
  tags(&g);
  paths(&g);
  components(&g);
  jw_close(w, '}');
  jw_raw(w, "\n", 1);
  return g.err ? g.err : w->err;
}
