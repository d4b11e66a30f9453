#include "contract/pbjson.h"

#include "core/codec.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "switchboard/error.h"

/* Field storage is reached through the descriptor's byte offsets. */
#define AT(m, off) ((void *)((char *)(m) + (off)))
#define CAT(m, off) ((const void *)((const char *)(m) + (off)))

enum wkt {
  WKT_NONE = 0,
  WKT_TIMESTAMP,
  WKT_DURATION,
  WKT_FIELDMASK,
  WKT_STRUCT,
  WKT_VALUE,
  WKT_LISTVALUE,
  WKT_EMPTY,
  WKT_WRAPPER,
  WKT_ANY,
};

static enum wkt wkt_of(const ProtobufCMessageDescriptor *d) {
  if (strncmp(d->name, "google.protobuf.", 16) != 0) return WKT_NONE;
  const char *n = d->name + 16;
  static const struct {
    const char *name;
    enum wkt kind;
  } table[] = {
      {"Timestamp", WKT_TIMESTAMP}, {"Duration", WKT_DURATION},
      {"FieldMask", WKT_FIELDMASK}, {"Struct", WKT_STRUCT},
      {"Value", WKT_VALUE},         {"ListValue", WKT_LISTVALUE},
      {"Empty", WKT_EMPTY},         {"Any", WKT_ANY},
      {"DoubleValue", WKT_WRAPPER}, {"FloatValue", WKT_WRAPPER},
      {"Int64Value", WKT_WRAPPER},  {"UInt64Value", WKT_WRAPPER},
      {"Int32Value", WKT_WRAPPER},  {"UInt32Value", WKT_WRAPPER},
      {"BoolValue", WKT_WRAPPER},   {"StringValue", WKT_WRAPPER},
      {"BytesValue", WKT_WRAPPER},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(n, table[i].name) == 0) return table[i].kind;
  return WKT_NONE;
}

static const ProtobufCFieldDescriptor *field_by_id(const ProtobufCMessageDescriptor *d,
                                                   uint32_t id) {
  for (unsigned i = 0; i < d->n_fields; i++)
    if (d->fields[i].id == id) return &d->fields[i];
  return NULL;
}

/* protoc's map entries: a repeated field of a nested "<Field>Entry" message of exactly
 * key = 1 and value = 2 (protobuf-c's runtime descriptors have no map_entry flag). */
int sb__pb_is_map(const ProtobufCFieldDescriptor *f) {
  if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE) return 0;
  const ProtobufCMessageDescriptor *e = f->descriptor;
  size_t sl = strlen(e->short_name);
  return e->n_fields == 2 && sl > 5 && strcmp(e->short_name + sl - 5, "Entry") == 0 &&
         e->fields[0].id == 1 && strcmp(e->fields[0].name, "key") == 0 && e->fields[1].id == 2 &&
         strcmp(e->fields[1].name, "value") == 0;
}

size_t sb__pb_elem_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return 8;
  case PROTOBUF_C_TYPE_DOUBLE:
    return sizeof(double);
  case PROTOBUF_C_TYPE_STRING:
    return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(ProtobufCMessage *);
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  default:
    return 4; /* int32 kinds, uint32 kinds, float, enum */
  }
}

const char *sb_pbjson_json_name(const char *proto_name, char *out, size_t cap) {
  size_t n = strlen(proto_name);
  if (cap == 0) return out;
  if (n < cap) return sb_json_name(proto_name, out);
  char *tmp = malloc(n + 1);
  if (!tmp) {
    out[0] = '\0';
    return out;
  }
  snprintf(out, cap, "%s", sb_json_name(proto_name, tmp));
  free(tmp);
  return out;
}

/* Compares key[0..len) with the JSON name of proto_name. */
static int json_name_eq(const char *proto_name, const char *key, size_t len) {
  char small[128];
  size_t n = strlen(proto_name);
  char *jn = n < sizeof small ? small : malloc(n + 1);
  if (!jn) return 0;
  sb_json_name(proto_name, jn);
  int eq = strlen(jn) == len && memcmp(jn, key, len) == 0;
  if (jn != small) free(jn);
  return eq;
}

/* Custom json_name options, which protobuf-c's runtime descriptors do not carry: the
 * generator emits them per contract and the RPC layer registers them here. Sorted by
 * (descriptor, number) for binary search. Written only before servers start (registration),
 * read by every worker after, like the descriptors themselves; the mutex orders writers. */
typedef struct custom_name {
  const ProtobufCMessageDescriptor *desc; /* borrowed static data */
  uint32_t number;
  const char *name; /* borrowed static data */
} custom_name_t;
static custom_name_t *g_names; /* process-wide; grows, never shrinks */
static size_t g_n_names, g_cap_names;
static pthread_mutex_t g_names_mu = PTHREAD_MUTEX_INITIALIZER;

static int cmp_custom(const void *x, const void *y) {
  const custom_name_t *a = x, *b = y;
  if (a->desc != b->desc) return (uintptr_t)a->desc < (uintptr_t)b->desc ? -1 : 1;
  return a->number < b->number ? -1 : a->number > b->number;
}

int sb_pbjson_add_json_name(const ProtobufCMessageDescriptor *d, uint32_t number,
                            const char *name) {
  pthread_mutex_lock(&g_names_mu);
  custom_name_t key = {d, number, name};
  int rc = 0;
  if (g_n_names &&
      bsearch(&key, g_names, g_n_names, sizeof *g_names, cmp_custom)) { /* registered twice */
  } else if (g_n_names == g_cap_names &&
             !(g_names = realloc(g_names, (g_cap_names = g_cap_names ? 2 * g_cap_names : 16) *
                                              sizeof *g_names))) {
    g_n_names = g_cap_names = 0;
    rc = SB_ENOMEM;
  } else {
    g_names[g_n_names++] = key;
    qsort(g_names, g_n_names, sizeof *g_names, cmp_custom);
  }
  pthread_mutex_unlock(&g_names_mu);
  return rc;
}

/* The custom json_name of field f of d, or NULL. */
static const char *custom_json_name(const ProtobufCMessageDescriptor *d,
                                    const ProtobufCFieldDescriptor *f) {
  if (!g_n_names) return NULL;
  custom_name_t key = {d, f->id, NULL};
  const custom_name_t *c = bsearch(&key, g_names, g_n_names, sizeof *g_names, cmp_custom);
  return c ? c->name : NULL;
}

/* Message types google.protobuf.Any may name, by full name (sorted), so that "@type" URLs
 * resolve. Same threading rule as the json_name table: registered before serving. */
static const ProtobufCMessageDescriptor **g_types; /* process-wide; borrowed static data */
static size_t g_n_types, g_cap_types;

static int cmp_type_name(const char *name, size_t len, const ProtobufCMessageDescriptor *d) {
  int c = strncmp(name, d->name, len);
  if (c) return c;
  return d->name[len] ? -1 : 0;
}

/* The registered type of name[0..len), or NULL. */
static const ProtobufCMessageDescriptor *type_by_name(const char *name, size_t len) {
  size_t lo = 0, hi = g_n_types;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = cmp_type_name(name, len, g_types[mid]);
    if (c == 0) return g_types[mid];
    if (c > 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* Adds d (1) unless present (0), keeping the order; SB_ENOMEM. Caller holds g_names_mu. */
static int add_type_locked(const ProtobufCMessageDescriptor *d) {
  size_t len = strlen(d->name), lo = 0, hi = g_n_types;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = cmp_type_name(d->name, len, g_types[mid]);
    if (c == 0) return 0;
    if (c > 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (g_n_types == g_cap_types) {
    size_t cap = g_cap_types ? 2 * g_cap_types : 32;
    const ProtobufCMessageDescriptor **t = realloc(g_types, cap * sizeof *t);
    if (!t) return SB_ENOMEM;
    g_types = t;
    g_cap_types = cap;
  }
  memmove(g_types + lo + 1, g_types + lo, (g_n_types - lo) * sizeof *g_types);
  g_types[lo] = d;
  g_n_types++;
  return 1;
}

/* Adds d and every message type reachable through its fields. */
static int add_types_locked(const ProtobufCMessageDescriptor *d, unsigned depth) {
  if (depth > SB_JSON_MAX_DEPTH) return 0;
  int rc = add_type_locked(d);
  if (rc <= 0) return rc; /* known already (so are the types below it), or out of memory */
  for (unsigned i = 0; i < d->n_fields; i++)
    if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE &&
        (rc = add_types_locked(d->fields[i].descriptor, depth + 1)) < 0)
      return rc;
  return 0;
}

int sb_pbjson_add_types(const ProtobufCMessageDescriptor *d) {
  pthread_mutex_lock(&g_names_mu);
  int rc = add_types_locked(d, 0);
  pthread_mutex_unlock(&g_names_mu);
  return rc < 0 ? rc : 0;
}

/* The type an Any "@type" URL names: the part after its last '/', which must exist. */
static const ProtobufCMessageDescriptor *type_by_url(const char *url, size_t len) {
  const char *slash = NULL;
  for (size_t i = 0; i < len; i++)
    if (url[i] == '/') slash = url + i;
  if (!slash || slash + 1 == url + len) return NULL;
  return type_by_name(slash + 1, (size_t)(url + len - slash - 1));
}

const ProtobufCFieldDescriptor *sb_pbjson_field(const ProtobufCMessageDescriptor *d,
                                                const char *name, size_t len) {
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (strlen(f->name) == len && memcmp(f->name, name, len) == 0) return f;
    const char *custom = custom_json_name(d, f);
    if (custom ? strlen(custom) == len && memcmp(custom, name, len) == 0
               : json_name_eq(f->name, name, len))
      return f;
  }
  return NULL;
}

/* ---- base64 ---- */

static void write_base64(sb_jw_t *w, const uint8_t *p, size_t n) {
  if (n == 0) {
    sb_jw_str(w, "", 0);
    return;
  }
  size_t olen = (n + 2) / 3 * 4;
  char small[256];
  char *o = olen <= sizeof small ? small : malloc(olen);
  if (!o) {
    w->err = SB_ENOMEM;
    return;
  }
  sb_jw_str(w, o, sb_base64_encode(p, n, o));
  if (o != small) free(o);
}

/* Decodes standard or URL-safe base64, padded or not, into a new allocation. */
static int read_base64(const char *s, size_t n, ProtobufCAllocator *a, ProtobufCBinaryData *out) {
  uint8_t *o = a->alloc(a->allocator_data, SB_BASE64_DECODED_MAX(n));
  long len = o ? sb_base64_decode(s, n, o) : -1;
  if (len < 0) return -1;
  out->data = o;
  out->len = (size_t)len;
  return 0;
}

/* ---- time (proleptic Gregorian, days since 1970-01-01) ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

#define TS_MIN (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TS_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */
#define DUR_MAX 315576000000LL  /* 10,000 years of seconds */

/* Appends 0, 3, 6 or 9 fractional digits for nanos (the shortest exact group). */
static int frac(char *o, int32_t nanos) {
  if (nanos == 0) return 0;
  if (nanos % 1000000 == 0) return sprintf(o, ".%03d", nanos / 1000000);
  if (nanos % 1000 == 0) return sprintf(o, ".%06d", nanos / 1000);
  return sprintf(o, ".%09d", nanos);
}

static int parse_digits(const char *s, size_t n, int64_t *out) {
  int64_t v = 0;
  if (n == 0) return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

/* Parses ".ddddddddd" (1 to 9 digits) at s; returns bytes used (0 when no '.'), -1 bad. */
static int parse_frac(const char *s, size_t n, int32_t *nanos) {
  *nanos = 0;
  if (n == 0 || s[0] != '.') return 0;
  size_t i = 1;
  int32_t v = 0, digits = 0;
  while (i < n && s[i] >= '0' && s[i] <= '9') {
    if (++digits > 9) return -1;
    v = v * 10 + (s[i] - '0');
    i++;
  }
  if (digits == 0) return -1;
  for (int k = digits; k < 9; k++)
    v *= 10;
  *nanos = v;
  return (int)i;
}

static int parse_timestamp(const char *s, size_t n, int64_t *sec, int32_t *nanos) {
  int64_t y, mo, d, h, mi, se;
  if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
      s[16] != ':' || parse_digits(s, 4, &y) || parse_digits(s + 5, 2, &mo) ||
      parse_digits(s + 8, 2, &d) || parse_digits(s + 11, 2, &h) || parse_digits(s + 14, 2, &mi) ||
      parse_digits(s + 17, 2, &se))
    return -1;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59) return -1;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap)) return -1;
  int fl = parse_frac(s + 19, n - 19, nanos);
  if (fl < 0) return -1;
  size_t i = 19 + (size_t)fl;
  int64_t off = 0;
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    int64_t oh, om;
    if (parse_digits(s + i + 1, 2, &oh) || parse_digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
      return -1;
    off = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return -1;
  }
  if (i != n) return -1;
  *sec = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off;
  if (*sec < TS_MIN || *sec > TS_MAX) return -1;
  return 0;
}

static int parse_duration(const char *s, size_t n, int64_t *sec, int32_t *nanos) {
  if (n < 2 || s[n - 1] != 's') return -1;
  n--;
  int neg = s[0] == '-';
  size_t i = neg;
  size_t ds = i;
  while (i < n && s[i] >= '0' && s[i] <= '9')
    i++;
  int64_t v;
  if (i - ds > 12 || parse_digits(s + ds, i - ds, &v)) return -1;
  int fl = parse_frac(s + i, n - i, nanos);
  if (fl < 0 || i + (size_t)fl != n) return -1;
  if (v > DUR_MAX) return -1;
  *sec = neg ? -v : v;
  if (neg) *nanos = -*nanos;
  return 0;
}

/* ---- output ---- */

static void write_message(sb_jw_t *w, const ProtobufCMessage *m, unsigned flags);
static void write_any(sb_jw_t *w, const ProtobufCMessage *m, unsigned flags);

static void write_double(sb_jw_t *w, double v) {
  if (isnan(v))
    sb_jw_str(w, "NaN", 3);
  else if (isinf(v))
    v > 0 ? sb_jw_str(w, "Infinity", 8) : sb_jw_str(w, "-Infinity", 9);
  else
    sb_jw_double(w, v);
}

/* A float in the fewest digits that read back (as a float) to the same value: widening to
 * double first would print 0.1f as 0.10000000149011612. */
static void write_float(sb_jw_t *w, float v) {
  if (!isfinite(v)) {
    write_double(w, (double)v);
    return;
  }
  char buf[32];
  int n = 0;
  for (int prec = 1; prec <= 9; prec++) {
    n = snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
    if (strtof(buf, NULL) == v) break;
  }
  sb_jw_raw(w, buf, (size_t)n);
}

static void write_scalar(sb_jw_t *w, const ProtobufCFieldDescriptor *f, const void *p,
                         unsigned flags) {
  char num[24];
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    sb_jw_int(w, *(const int32_t *)p);
    break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    sb_jw_uint(w, *(const uint32_t *)p);
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: {
    int n = snprintf(num, sizeof num, "%lld", (long long)*(const int64_t *)p);
    sb_jw_str(w, num, (size_t)n);
    break;
  }
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: {
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)*(const uint64_t *)p);
    sb_jw_str(w, num, (size_t)n);
    break;
  }
  case PROTOBUF_C_TYPE_FLOAT:
    write_float(w, *(const float *)p);
    break;
  case PROTOBUF_C_TYPE_DOUBLE:
    write_double(w, *(const double *)p);
    break;
  case PROTOBUF_C_TYPE_BOOL:
    sb_jw_bool(w, *(const protobuf_c_boolean *)p != 0);
    break;
  case PROTOBUF_C_TYPE_ENUM: {
    int v = *(const int *)p;
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    if (strcmp(ed->name, "google.protobuf.NullValue") == 0) {
      sb_jw_null(w);
      break;
    }
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
    if (ev)
      sb_jw_str(w, ev->name, strlen(ev->name));
    else
      sb_jw_int(w, v);
    break;
  }
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)p;
    s ? sb_jw_str(w, s, strlen(s)) : sb_jw_str(w, "", 0);
    break;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *b = p;
    write_base64(w, b->data, b->len);
    break;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
    if (sub)
      write_message(w, sub, flags);
    else
      sb_jw_null(w);
    break;
  }
  }
}

/* Whether field f of m is present for output (proto3 rules; see pbjson.h). */
int sb__pb_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return *(const size_t *)CAT(m, f->quantifier_offset) > 0;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    return *(const uint32_t *)CAT(m, f->quantifier_offset) == f->id;
  const void *p = CAT(m, f->offset);
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) return *(ProtobufCMessage *const *)p != NULL;
  if (f->label == PROTOBUF_C_LABEL_REQUIRED) return 1;
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING)
    return *(const protobuf_c_boolean *)CAT(m, f->quantifier_offset) != 0;
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)p;
    return f->label == PROTOBUF_C_LABEL_OPTIONAL ? s != NULL && s != f->default_value
                                                 : s != NULL && s[0] != '\0';
  }
  case PROTOBUF_C_TYPE_BYTES:
    return ((const ProtobufCBinaryData *)p)->len > 0;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return *(const uint64_t *)p != 0;
  case PROTOBUF_C_TYPE_DOUBLE: {
    double d = *(const double *)p;
    return d != 0 || signbit(d);
  }
  case PROTOBUF_C_TYPE_FLOAT: {
    float d = *(const float *)p;
    return d != 0 || signbit(d);
  }
  case PROTOBUF_C_TYPE_BOOL:
    return *(const protobuf_c_boolean *)p != 0;
  default:
    return *(const int32_t *)p != 0;
  }
}

static void write_map_key(sb_jw_t *w, const ProtobufCFieldDescriptor *kf, const void *p) {
  char buf[32];
  int n;
  switch (kf->type) {
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)p;
    sb_jw_key(w, s ? s : "", s ? strlen(s) : 0);
    return;
  }
  case PROTOBUF_C_TYPE_BOOL:
    n = snprintf(buf, sizeof buf, "%s", *(const protobuf_c_boolean *)p ? "true" : "false");
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    n = snprintf(buf, sizeof buf, "%lld", (long long)*(const int64_t *)p);
    break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)*(const uint64_t *)p);
    break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    n = snprintf(buf, sizeof buf, "%u", *(const uint32_t *)p);
    break;
  default:
    n = snprintf(buf, sizeof buf, "%d", *(const int32_t *)p);
    break;
  }
  sb_jw_key(w, buf, (size_t)n);
}

static void write_field_value(sb_jw_t *w, const ProtobufCMessage *m,
                              const ProtobufCFieldDescriptor *f, unsigned flags) {
  const void *p = CAT(m, f->offset);
  if (f->label != PROTOBUF_C_LABEL_REPEATED) {
    write_scalar(w, f, p, flags);
    return;
  }
  size_t n = *(const size_t *)CAT(m, f->quantifier_offset);
  const char *arr = *(char *const *)p;
  size_t es = sb__pb_elem_size(f->type);
  if (sb__pb_is_map(f)) {
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    sb_jw_obj_begin(w);
    for (size_t i = 0; i < n; i++) {
      const ProtobufCMessage *e = *(ProtobufCMessage *const *)(arr + i * es);
      write_map_key(w, &ed->fields[0], CAT(e, ed->fields[0].offset));
      write_scalar(w, &ed->fields[1], CAT(e, ed->fields[1].offset), flags);
    }
    sb_jw_obj_end(w);
    return;
  }
  sb_jw_arr_begin(w);
  for (size_t i = 0; i < n; i++)
    write_scalar(w, f, arr + i * es, flags);
  sb_jw_arr_end(w);
}

static void write_wkt(sb_jw_t *w, const ProtobufCMessage *m, enum wkt k, unsigned flags) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  char buf[64];
  switch (k) {
  case WKT_TIMESTAMP:
  case WKT_DURATION: {
    const ProtobufCFieldDescriptor *fs = field_by_id(d, 1), *fn = field_by_id(d, 2);
    int64_t sec = fs ? *(const int64_t *)CAT(m, fs->offset) : 0;
    int32_t nanos = fn ? *(const int32_t *)CAT(m, fn->offset) : 0;
    if (k == WKT_TIMESTAMP) {
      if (sec < TS_MIN || sec > TS_MAX || nanos < 0 || nanos > 999999999) {
        w->err = SB_EINVAL;
        return;
      }
      int64_t days = sec >= 0 ? sec / 86400 : (sec - 86399) / 86400;
      int64_t rem = sec - days * 86400, y;
      unsigned mo, dd;
      civil_from_days(days, &y, &mo, &dd);
      int n = sprintf(buf, "%04lld-%02u-%02uT%02d:%02d:%02d", (long long)y, mo, dd,
                      (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
      n += frac(buf + n, nanos);
      buf[n++] = 'Z';
      sb_jw_str(w, buf, (size_t)n);
    } else {
      if (sec < -DUR_MAX || sec > DUR_MAX || nanos < -999999999 || nanos > 999999999 ||
          (sec > 0 && nanos < 0) || (sec < 0 && nanos > 0)) {
        w->err = SB_EINVAL;
        return;
      }
      int neg = sec < 0 || nanos < 0;
      int n = sprintf(buf, "%s%lld", neg ? "-" : "", (long long)llabs(sec));
      n += frac(buf + n, nanos < 0 ? -nanos : nanos);
      buf[n++] = 's';
      sb_jw_str(w, buf, (size_t)n);
    }
    return;
  }
  case WKT_FIELDMASK: {
    const ProtobufCFieldDescriptor *f = field_by_id(d, 1);
    size_t n = f ? *(const size_t *)CAT(m, f->quantifier_offset) : 0;
    char *const *paths = f ? *(char **const *)CAT(m, f->offset) : NULL;
    sb_buf_t out = {0};
    for (size_t i = 0; i < n; i++) {
      if (i) sb_buf_append(&out, ",", 1);
      char *jn = malloc(strlen(paths[i]) + 1);
      if (!jn) {
        w->err = SB_ENOMEM;
        break;
      }
      sb_json_name(paths[i], jn); /* before strlen: argument order is unspecified */
      sb_buf_append(&out, jn, strlen(jn));
      free(jn);
    }
    sb_jw_str(w, out.data ? (const char *)sb_buf_head(&out) : "", sb_buf_pending(&out));
    sb_buf_free(&out);
    return;
  }
  case WKT_STRUCT: {
    const ProtobufCFieldDescriptor *f = field_by_id(d, 1);
    if (f)
      write_field_value(w, m, f, flags);
    else
      sb_jw_obj_begin(w), sb_jw_obj_end(w);
    return;
  }
  case WKT_LISTVALUE: {
    const ProtobufCFieldDescriptor *f = field_by_id(d, 1);
    if (f)
      write_field_value(w, m, f, flags);
    else
      sb_jw_arr_begin(w), sb_jw_arr_end(w);
    return;
  }
  case WKT_VALUE: {
    for (unsigned i = 0; i < d->n_fields; i++) {
      const ProtobufCFieldDescriptor *f = &d->fields[i];
      if (sb__pb_present(m, f)) {
        write_field_value(w, m, f, flags);
        return;
      }
    }
    sb_jw_null(w); /* an unset Value is null */
    return;
  }
  case WKT_WRAPPER: {
    const ProtobufCFieldDescriptor *f = field_by_id(d, 1);
    if (f) write_scalar(w, f, CAT(m, f->offset), flags);
    return;
  }
  case WKT_EMPTY:
    sb_jw_obj_begin(w);
    sb_jw_obj_end(w);
    return;
  case WKT_ANY:
    write_any(w, m, flags);
    return;
  default:
    break;
  }
  w->err = SB_EINVAL;
}

/* The members of a message object (without its braces). */
static void write_members(sb_jw_t *w, const ProtobufCMessage *m, unsigned flags) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const char *custom;
    if (!sb__pb_present(m, f)) continue;
    if (flags & SB_PBJSON_PROTO_NAMES) {
      sb_jw_key(w, f->name, strlen(f->name));
    } else if ((custom = custom_json_name(d, f))) {
      sb_jw_key(w, custom, strlen(custom));
    } else {
      char jn[128];
      sb_pbjson_json_name(f->name, jn, sizeof jn);
      sb_jw_key(w, jn, strlen(jn));
    }
    write_field_value(w, m, f, flags);
  }
}

static void write_message(sb_jw_t *w, const ProtobufCMessage *m, unsigned flags) {
  enum wkt k = wkt_of(m->descriptor);
  if (k != WKT_NONE) {
    write_wkt(w, m, k, flags);
    return;
  }
  sb_jw_obj_begin(w);
  write_members(w, m, flags);
  sb_jw_obj_end(w);
}

/* google.protobuf.Any: {"@type": url, <the members of the packed message>}, or for a packed
 * well-known type {"@type": url, "value": <its special form>}; an empty Any is {}. The type
 * must have been registered (sb_pbjson_add_types) and the bytes must decode as it. */
static void write_any(sb_jw_t *w, const ProtobufCMessage *m, unsigned flags) {
  const ProtobufCFieldDescriptor *fu = field_by_id(m->descriptor, 1),
                                 *fv = field_by_id(m->descriptor, 2);
  const char *url = fu ? *(char *const *)CAT(m, fu->offset) : NULL;
  const ProtobufCBinaryData *v = fv ? (const ProtobufCBinaryData *)CAT(m, fv->offset) : NULL;
  if (!url || !url[0]) {
    sb_jw_obj_begin(w);
    sb_jw_obj_end(w);
    return;
  }
  const ProtobufCMessageDescriptor *td = type_by_url(url, strlen(url));
  ProtobufCMessage *inner = td && v ? protobuf_c_message_unpack(td, NULL, v->len, v->data) : NULL;
  if (!inner) {
    w->err = SB_EINVAL; /* an unknown type, or bytes that are not that type */
    return;
  }
  sb_jw_obj_begin(w);
  sb_jw_key(w, "@type", 5);
  sb_jw_str(w, url, strlen(url));
  if (wkt_of(td) != WKT_NONE) {
    sb_jw_key(w, "value", 5);
    write_message(w, inner, flags);
  } else {
    write_members(w, inner, flags);
  }
  sb_jw_obj_end(w);
  protobuf_c_message_free_unpacked(inner, NULL);
}

int sb_pbjson_write(sb_jw_t *w, const ProtobufCMessage *msg, unsigned flags) {
  write_message(w, msg, flags);
  return sb_jw_error(w);
}

/* ---- input ---- */

typedef struct rctx {
  sb_jr_t *r;
  ProtobufCAllocator *a;
  unsigned flags;
  sb_pbjson_err_t *err;
  size_t plen;   /* current length of err->path */
  int skip_type; /* the next object read is an Any's: its "@type" member is not a field */
} rctx_t;

static int fail(rctx_t *c, const char *msg) {
  if (!c->err->msg) c->err->msg = msg;
  return SB_EINVAL;
}

/* Appends a path component; returns the previous length for pop(). */
static size_t push(rctx_t *c, const char *fmt, const char *s, size_t n) {
  size_t old = c->plen;
  size_t cap = sizeof c->err->path;
  if (c->plen < cap) {
    int k = snprintf(c->err->path + c->plen, cap - c->plen, fmt, (int)n, s);
    if (k > 0) c->plen = c->plen + (size_t)k < cap ? c->plen + (size_t)k : cap - 1;
  }
  return old;
}

static void pop(rctx_t *c, size_t old) {
  /* The path of an error stays as it was when the error happened. */
  if (c->err->msg) return;
  c->plen = old;
  c->err->path[old] = '\0';
}

static void *zalloc(rctx_t *c, size_t n) {
  void *p = c->a->alloc(c->a->allocator_data, n ? n : 1);
  if (p) memset(p, 0, n);
  return p;
}

static char *sdup(ProtobufCAllocator *a, const char *s, size_t n) {
  char *p = a->alloc(a->allocator_data, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

static ProtobufCMessage *new_message(ProtobufCAllocator *a, const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *m = a->alloc(a->allocator_data, d->sizeof_message);
  if (m) protobuf_c_message_init(d, m);
  return m;
}

static int read_message(rctx_t *c, sb_jtok_t tok, ProtobufCMessage *m);

/* Converts number text (from a JSON number or a string) into a scalar slot. */
static int number_into(rctx_t *c, ProtobufCType t, const char *s, size_t n, int was_string,
                       void *dst) {
  int64_t i;
  uint64_t u;
  double dv;
  int rc;
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    rc = sb_json_to_int64(s, n, &i);
    if (rc == 0 && (i < INT32_MIN || i > INT32_MAX)) rc = -2;
    if (rc) return fail(c, rc == -2 ? "value out of range for int32" : "not an integer");
    *(int32_t *)dst = (int32_t)i;
    return 0;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    rc = sb_json_to_uint64(s, n, &u);
    if (rc == 0 && u > UINT32_MAX) rc = -2;
    if (rc) return fail(c, rc == -2 ? "value out of range for uint32" : "not an unsigned integer");
    *(uint32_t *)dst = (uint32_t)u;
    return 0;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    rc = sb_json_to_int64(s, n, &i);
    if (rc) return fail(c, rc == -2 ? "value out of range for int64" : "not an integer");
    *(int64_t *)dst = i;
    return 0;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    rc = sb_json_to_uint64(s, n, &u);
    if (rc) return fail(c, rc == -2 ? "value out of range for uint64" : "not an unsigned integer");
    *(uint64_t *)dst = u;
    return 0;
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_DOUBLE:
    if (was_string && n == 3 && memcmp(s, "NaN", 3) == 0)
      dv = NAN;
    else if (was_string && n == 8 && memcmp(s, "Infinity", 8) == 0)
      dv = INFINITY;
    else if (was_string && n == 9 && memcmp(s, "-Infinity", 9) == 0)
      dv = -INFINITY;
    else {
      rc = sb_json_to_double(s, n, &dv);
      if (rc) return fail(c, rc == -2 ? "value out of range" : "not a number");
    }
    if (t == PROTOBUF_C_TYPE_FLOAT) {
      /* Values that round to FLT_MAX (its shortest text, 3.4028235e38, is above it) are in
       * range; from the halfway point to the next power of two, they would round to
       * infinity. Converting an out-of-range double to float is undefined, so clamp. */
      if (isfinite(dv) && fabs(dv) >= 3.4028235677973366e38)
        return fail(c, "value out of range for float");
      if (isfinite(dv) && dv > FLT_MAX) dv = FLT_MAX;
      if (isfinite(dv) && dv < -FLT_MAX) dv = -FLT_MAX;
      *(float *)dst = (float)dv;
    } else {
      *(double *)dst = dv;
    }
    return 0;
  default:
    return fail(c, "not a number field");
  }
}

/* Reads one value (first token tok) of field f's element type into dst. */
static int read_single(rctx_t *c, const ProtobufCFieldDescriptor *f, sb_jtok_t tok, void *dst) {
  sb_jr_t *r = c->r;
  switch (f->type) {
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessageDescriptor *md = f->descriptor;
    ProtobufCMessage *sub = new_message(c->a, md);
    if (!sub) return fail(c, "out of memory");
    int rc = read_message(c, tok, sub);
    if (rc) return rc;
    *(ProtobufCMessage **)dst = sub;
    return 0;
  }
  case PROTOBUF_C_TYPE_STRING:
    if (tok != SB_JT_STRING) return fail(c, "expected a string");
    if (!(*(char **)dst = sdup(c->a, r->str, r->len))) return fail(c, "out of memory");
    return 0;
  case PROTOBUF_C_TYPE_BYTES:
    if (tok != SB_JT_STRING) return fail(c, "expected a base64 string");
    if (read_base64(r->str, r->len, c->a, dst)) return fail(c, "invalid base64");
    return 0;
  case PROTOBUF_C_TYPE_BOOL:
    if (tok != SB_JT_TRUE && tok != SB_JT_FALSE) return fail(c, "expected true or false");
    *(protobuf_c_boolean *)dst = tok == SB_JT_TRUE;
    return 0;
  case PROTOBUF_C_TYPE_ENUM: {
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    if (tok == SB_JT_STRING) {
      const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, r->str);
      if (!ev) return fail(c, "unknown enum value name");
      *(int *)dst = ev->value;
      return 0;
    }
    if (tok == SB_JT_NUMBER) {
      int32_t v;
      int rc = number_into(c, PROTOBUF_C_TYPE_INT32, r->str, r->len, 0, &v);
      if (rc) return rc;
      *(int *)dst = v;
      return 0;
    }
    return fail(c, "expected an enum name or number");
  }
  default:
    if (tok == SB_JT_NUMBER) return number_into(c, f->type, r->str, r->len, 0, dst);
    if (tok == SB_JT_STRING) return number_into(c, f->type, r->str, r->len, 1, dst);
    return fail(c, "expected a number");
  }
}

/* Growable scratch array for a repeated field being read; copied into the allocator at the
 * end so the allocator need not support realloc. */
typedef struct vec {
  sb_buf_t b;
  size_t n;
} vec_t;

static void *vec_slot(vec_t *v, size_t es) {
  if (sb_buf_reserve(&v->b, es)) return NULL;
  void *p = v->b.data + v->b.len;
  memset(p, 0, es);
  v->b.len += es;
  v->n++;
  return p;
}

static int vec_commit(rctx_t *c, vec_t *v, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  size_t bytes = sb_buf_pending(&v->b);
  void *arr = NULL;
  if (bytes) {
    arr = c->a->alloc(c->a->allocator_data, bytes);
    if (!arr) {
      sb_buf_free(&v->b);
      return fail(c, "out of memory");
    }
    memcpy(arr, sb_buf_head(&v->b), bytes);
  }
  sb_buf_free(&v->b);
  *(void **)AT(m, f->offset) = arr;
  *(size_t *)AT(m, f->quantifier_offset) = v->n;
  return 0;
}

/* Parses a map key's text into the entry's key field. */
static int map_key_into(rctx_t *c, const ProtobufCFieldDescriptor *kf, const char *s, size_t n,
                        void *dst) {
  switch (kf->type) {
  case PROTOBUF_C_TYPE_STRING:
    if (!(*(char **)dst = sdup(c->a, s, n))) return fail(c, "out of memory");
    return 0;
  case PROTOBUF_C_TYPE_BOOL:
    if (n == 4 && memcmp(s, "true", 4) == 0)
      *(protobuf_c_boolean *)dst = 1;
    else if (n == 5 && memcmp(s, "false", 5) == 0)
      *(protobuf_c_boolean *)dst = 0;
    else
      return fail(c, "map key must be true or false");
    return 0;
  default:
    return number_into(c, kf->type, s, n, 1, dst);
  }
}

/* The keys of one map being read: a set of the parsed key values, so "1" and "1e0" for an
 * integer key are the same key. Open addressing over indexes into keys. */
typedef struct keyset {
  sb_buf_t bytes;  /* key values, concatenated */
  sb_buf_t spans;  /* size_t pairs (offset, length) into bytes */
  uint32_t *slots; /* 0 = empty, else span index + 1 */
  size_t cap, n;   /* slots; keys */
} keyset_t;

/* Adds key k; returns 1 if it was there already, 0 if added, -1 when out of memory. */
static int keyset_add(keyset_t *ks, const void *k, size_t n) {
  if ((ks->n + 1) * 2 > ks->cap) {
    size_t ncap = ks->cap ? ks->cap * 2 : 16;
    uint32_t *ns = calloc(ncap, sizeof *ns);
    if (!ns) return -1;
    const size_t *sp = (const size_t *)(const void *)ks->spans.data;
    for (size_t i = 0; i < ks->n; i++) {
      size_t j = sb_fnv1a(SB_FNV_SEED, ks->bytes.data + sp[2 * i], sp[2 * i + 1]) & (ncap - 1);
      while (ns[j])
        j = (j + 1) & (ncap - 1);
      ns[j] = (uint32_t)(i + 1);
    }
    free(ks->slots);
    ks->slots = ns;
    ks->cap = ncap;
  }
  size_t j = sb_fnv1a(SB_FNV_SEED, k, n) & (ks->cap - 1);
  while (ks->slots[j]) {
    const size_t *sp = (const size_t *)(const void *)ks->spans.data + 2 * (ks->slots[j] - 1);
    if (sp[1] == n && (n == 0 || memcmp(ks->bytes.data + sp[0], k, n) == 0)) return 1;
    j = (j + 1) & (ks->cap - 1);
  }
  size_t span[2] = {sb_buf_pending(&ks->bytes), n};
  if (sb_buf_append(&ks->bytes, k, n) || sb_buf_append(&ks->spans, span, sizeof span)) return -1;
  ks->slots[j] = (uint32_t)(++ks->n);
  return 0;
}

static void keyset_free(keyset_t *ks) {
  sb_buf_free(&ks->bytes);
  sb_buf_free(&ks->spans);
  free(ks->slots);
}

static int read_repeated(rctx_t *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                         sb_jtok_t tok) {
  sb_jr_t *r = c->r;
  vec_t v = {{0}, 0};
  size_t es = sb__pb_elem_size(f->type);
  int rc = 0;
  if (sb__pb_is_map(f)) {
    if (tok != SB_JT_OBJ_BEGIN) return fail(c, "expected an object (map)");
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    keyset_t seen = {{0}, {0}, NULL, 0, 0};
    while (!rc) {
      tok = sb_jr_next(r);
      if (tok == SB_JT_OBJ_END) break;
      if (tok != SB_JT_KEY) {
        rc = fail(c, r->err ? r->err : "expected a key");
        break;
      }
      size_t old = push(c, "[\"%.*s\"]", r->str, r->len);
      ProtobufCMessage *e = new_message(c->a, ed);
      ProtobufCMessage **slot = vec_slot(&v, es);
      if (!e || !slot) {
        rc = fail(c, "out of memory");
        break;
      }
      *slot = e;
      rc = map_key_into(c, &ed->fields[0], r->str, r->len, AT(e, ed->fields[0].offset));
      if (!rc) {
        const void *kp = AT(e, ed->fields[0].offset);
        size_t kn = sb__pb_elem_size(ed->fields[0].type);
        if (ed->fields[0].type == PROTOBUF_C_TYPE_STRING) {
          kp = *(char *const *)kp;
          kn = strlen(kp);
        }
        int dup = keyset_add(&seen, kp, kn);
        if (dup) rc = fail(c, dup > 0 ? "map key given more than once" : "out of memory");
      }
      if (!rc) {
        tok = sb_jr_next(r);
        if (tok == SB_JT_ERROR)
          rc = fail(c, r->err);
        else if (tok == SB_JT_NULL &&
                 wkt_of(ed->fields[1].type == PROTOBUF_C_TYPE_MESSAGE
                            ? (const ProtobufCMessageDescriptor *)ed->fields[1].descriptor
                            : ed) != WKT_VALUE)
          rc = fail(c, "null is not allowed as a map value");
        else
          rc = read_single(c, &ed->fields[1], tok, AT(e, ed->fields[1].offset));
      }
      pop(c, old);
    }
    keyset_free(&seen);
  } else {
    if (tok != SB_JT_ARR_BEGIN) return fail(c, "expected an array");
    for (size_t i = 0; !rc; i++) {
      tok = sb_jr_next(r);
      if (tok == SB_JT_ARR_END) break;
      if (tok == SB_JT_ERROR) {
        rc = fail(c, r->err);
        break;
      }
      char idx[24];
      int il = snprintf(idx, sizeof idx, "%zu", i);
      size_t old = push(c, "[%.*s]", idx, (size_t)il);
      int is_value = f->type == PROTOBUF_C_TYPE_MESSAGE &&
                     wkt_of((const ProtobufCMessageDescriptor *)f->descriptor) == WKT_VALUE;
      void *slot = vec_slot(&v, es);
      if (!slot)
        rc = fail(c, "out of memory");
      else if (tok == SB_JT_NULL && !is_value)
        rc = fail(c, "null is not allowed in an array");
      else
        rc = read_single(c, f, tok, slot);
      pop(c, old);
    }
  }
  if (rc) {
    sb_buf_free(&v.b);
    return rc;
  }
  return vec_commit(c, &v, m, f);
}

static int read_field(rctx_t *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                      sb_jtok_t tok) {
  if (tok == SB_JT_ERROR) return fail(c, c->r->err);
  int is_value = f->type == PROTOBUF_C_TYPE_MESSAGE &&
                 wkt_of((const ProtobufCMessageDescriptor *)f->descriptor) == WKT_VALUE;
  if (tok == SB_JT_NULL && !is_value) {
    /* null means "absent": the field keeps its default (NullValue enums are null too). */
    if (f->type == PROTOBUF_C_TYPE_ENUM &&
        strcmp(((const ProtobufCEnumDescriptor *)f->descriptor)->name,
               "google.protobuf.NullValue") == 0 &&
        (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
      *(uint32_t *)AT(m, f->quantifier_offset) = f->id;
    return 0;
  }
  if (f->label == PROTOBUF_C_LABEL_REPEATED) return read_repeated(c, m, f, tok);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t *cs = AT(m, f->quantifier_offset);
    if (*cs != 0 && *cs != f->id) return fail(c, "more than one field of a oneof is set");
    *cs = f->id;
  } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
             f->type != PROTOBUF_C_TYPE_MESSAGE) {
    *(protobuf_c_boolean *)AT(m, f->quantifier_offset) = 1;
  }
  return read_single(c, f, tok, AT(m, f->offset));
}

/* google.protobuf.Any from {"@type": url, ...members} (or {"@type": url, "value": v} for a
 * well-known type); "@type" may come anywhere in the object, so the object is read twice:
 * once for the URL, once as the named message. The message is packed into the Any's bytes. */
static int read_any(rctx_t *c, sb_jtok_t tok, ProtobufCMessage *m) {
  sb_jr_t *r = c->r;
  if (tok == SB_JT_ERROR) return fail(c, r->err);
  if (tok != SB_JT_OBJ_BEGIN) return fail(c, "expected an object");
  const uint8_t *start = r->p - 1; /* the '{' (the reader stands just after it) */
  if (sb_jr_skip(r, tok)) return fail(c, r->err);
  size_t span = (size_t)(r->p - start);

  sb_jr_t r1;
  sb_jr_init(&r1, start, span);
  sb_jtok_t t = sb_jr_next(&r1);
  char *url = NULL;
  size_t members = 0;
  int rc = 0;
  while (!rc && (t = sb_jr_next(&r1)) == SB_JT_KEY) {
    members++;
    if (r1.len == 5 && memcmp(r1.str, "@type", 5) == 0) {
      if (sb_jr_next(&r1) != SB_JT_STRING) {
        rc = fail(c, "@type must be a string");
        break;
      }
      if (!(url = sdup(c->a, r1.str, r1.len))) rc = fail(c, "out of memory");
    } else if (sb_jr_skip(&r1, t)) {
      rc = fail(c, r1.err);
    }
  }
  sb_jr_free(&r1);
  if (rc) return rc;
  if (!url) return members ? fail(c, "an Any needs an \"@type\" member") : 0;
  const ProtobufCMessageDescriptor *td = type_by_url(url, strlen(url));
  if (!td) return fail(c, "@type names a type this server does not know");
  ProtobufCMessage *inner = new_message(c->a, td);
  if (!inner) return fail(c, "out of memory");

  sb_jr_t r2;
  sb_jr_init(&r2, start, span);
  sb_jr_t *outer = c->r;
  c->r = &r2;
  if (wkt_of(td) == WKT_NONE) {
    c->skip_type = 1;
    rc = read_message(c, sb_jr_next(&r2), inner);
  } else {
    /* {"@type": ..., "value": <the special form>}: "value" is the only other member. */
    sb_jr_next(&r2);
    int got = 0;
    while (!rc && (t = sb_jr_next(&r2)) == SB_JT_KEY) {
      if (r2.len == 5 && memcmp(r2.str, "@type", 5) == 0) {
        if (sb_jr_skip(&r2, t)) rc = fail(c, r2.err);
      } else if (r2.len == 5 && memcmp(r2.str, "value", 5) == 0) {
        size_t old = push(c, c->plen ? ".%.*s" : "%.*s", "value", 5);
        rc = read_message(c, sb_jr_next(&r2), inner);
        if (!rc) pop(c, old);
        got = 1;
      } else {
        push(c, c->plen ? ".%.*s" : "%.*s", r2.str, r2.len);
        rc = fail(c, "unknown field");
      }
    }
    if (!rc && !got) rc = fail(c, "an Any holding a well-known type needs \"value\"");
  }
  c->r = outer;
  c->skip_type = 0;
  sb_jr_free(&r2);
  if (rc) return rc;
  size_t n = protobuf_c_message_get_packed_size(inner);
  uint8_t *bytes = c->a->alloc(c->a->allocator_data, n ? n : 1);
  if (!bytes) return fail(c, "out of memory");
  protobuf_c_message_pack(inner, bytes);
  const ProtobufCFieldDescriptor *fu = field_by_id(m->descriptor, 1),
                                 *fv = field_by_id(m->descriptor, 2);
  if (!fu || !fv) return fail(c, "not a google.protobuf.Any");
  *(char **)AT(m, fu->offset) = url;
  *(ProtobufCBinaryData *)AT(m, fv->offset) = (ProtobufCBinaryData){n, bytes};
  return 0;
}

static int read_wkt(rctx_t *c, sb_jtok_t tok, ProtobufCMessage *m, enum wkt k) {
  sb_jr_t *r = c->r;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  switch (k) {
  case WKT_TIMESTAMP:
  case WKT_DURATION: {
    if (tok != SB_JT_STRING) return fail(c, "expected a string");
    int64_t sec;
    int32_t nanos;
    if ((k == WKT_TIMESTAMP ? parse_timestamp : parse_duration)(r->str, r->len, &sec, &nanos))
      return fail(c, k == WKT_TIMESTAMP ? "invalid RFC 3339 timestamp" : "invalid duration");
    const ProtobufCFieldDescriptor *fs = field_by_id(d, 1), *fn = field_by_id(d, 2);
    if (fs) *(int64_t *)AT(m, fs->offset) = sec;
    if (fn) *(int32_t *)AT(m, fn->offset) = nanos;
    return 0;
  }
  case WKT_FIELDMASK: {
    if (tok != SB_JT_STRING) return fail(c, "expected a string");
    const ProtobufCFieldDescriptor *f = field_by_id(d, 1);
    if (!f) return 0;
    size_t n = r->len ? 1 : 0;
    for (size_t i = 0; i < r->len; i++)
      n += r->str[i] == ',';
    char **paths = n ? zalloc(c, n * sizeof *paths) : NULL;
    if (n && !paths) return fail(c, "out of memory");
    const char *s = r->str, *end = r->str + r->len;
    for (size_t i = 0; i < n; i++) {
      const char *comma = memchr(s, ',', (size_t)(end - s));
      const char *e = comma ? comma : end;
      /* lowerCamel back to snake_case: each capital becomes "_" + lower-case. */
      size_t caps = 0;
      for (const char *q = s; q < e; q++) {
        if (*q == '_') return fail(c, "field mask paths are lowerCamelCase in JSON");
        caps += *q >= 'A' && *q <= 'Z';
      }
      char *o = c->a->alloc(c->a->allocator_data, (size_t)(e - s) + caps + 1);
      if (!o) return fail(c, "out of memory");
      size_t k2 = 0;
      for (const char *q = s; q < e; q++) {
        if (*q >= 'A' && *q <= 'Z') {
          o[k2++] = '_';
          o[k2++] = (char)(*q + 32);
        } else {
          o[k2++] = *q;
        }
      }
      o[k2] = '\0';
      paths[i] = o;
      s = e + 1;
    }
    *(char ***)AT(m, f->offset) = paths;
    *(size_t *)AT(m, f->quantifier_offset) = n;
    return 0;
  }
  case WKT_STRUCT: {
    const ProtobufCFieldDescriptor *f = field_by_id(d, 1);
    if (tok != SB_JT_OBJ_BEGIN) return fail(c, "expected an object");
    return f ? read_repeated(c, m, f, tok) : sb_jr_skip(r, tok) ? fail(c, r->err) : 0;
  }
  case WKT_LISTVALUE: {
    const ProtobufCFieldDescriptor *f = field_by_id(d, 1);
    if (tok != SB_JT_ARR_BEGIN) return fail(c, "expected an array");
    return f ? read_repeated(c, m, f, tok) : sb_jr_skip(r, tok) ? fail(c, r->err) : 0;
  }
  case WKT_VALUE: {
    /* kind: null_value = 1, number_value = 2, string_value = 3, bool_value = 4,
     * struct_value = 5, list_value = 6 (google/protobuf/struct.proto). */
    uint32_t id = tok == SB_JT_NULL                         ? 1
                  : tok == SB_JT_NUMBER                     ? 2
                  : tok == SB_JT_STRING                     ? 3
                  : tok == SB_JT_TRUE || tok == SB_JT_FALSE ? 4
                  : tok == SB_JT_OBJ_BEGIN                  ? 5
                  : tok == SB_JT_ARR_BEGIN                  ? 6
                                                            : 0;
    const ProtobufCFieldDescriptor *f = id ? field_by_id(d, id) : NULL;
    if (!f) return fail(c, tok == SB_JT_ERROR ? r->err : "unexpected value");
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) *(uint32_t *)AT(m, f->quantifier_offset) = id;
    if (id == 1) {
      *(int *)AT(m, f->offset) = 0;
      return 0;
    }
    if (id == 2) {
      double dv;
      int rc = sb_json_to_double(r->str, r->len, &dv);
      if (rc) return fail(c, "number out of range");
      *(double *)AT(m, f->offset) = dv;
      return 0;
    }
    return read_single(c, f, tok, AT(m, f->offset));
  }
  case WKT_WRAPPER: {
    const ProtobufCFieldDescriptor *f = field_by_id(d, 1);
    if (!f) return fail(c, "malformed wrapper type");
    return read_single(c, f, tok, AT(m, f->offset));
  }
  case WKT_EMPTY:
    if (tok != SB_JT_OBJ_BEGIN) return fail(c, "expected an object");
    tok = sb_jr_next(r);
    if (tok != SB_JT_OBJ_END) {
      if (tok == SB_JT_ERROR) return fail(c, r->err);
      if (c->flags & SB_PBJSON_IGNORE_UNKNOWN)
        return sb_jr_skip(r, SB_JT_OBJ_BEGIN) ? fail(c, r->err) : 0;
      return fail(c, "google.protobuf.Empty takes no fields");
    }
    return 0;
  case WKT_ANY:
    return read_any(c, tok, m);
  default:
    return fail(c, "unsupported well-known type");
  }
}

static int read_message(rctx_t *c, sb_jtok_t tok, ProtobufCMessage *m) {
  sb_jr_t *r = c->r;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  enum wkt k = wkt_of(d);
  if (k != WKT_NONE) return read_wkt(c, tok, m, k);
  if (tok == SB_JT_ERROR) return fail(c, r->err);
  if (tok != SB_JT_OBJ_BEGIN) return fail(c, "expected an object");
  int skip_type = c->skip_type; /* this level only */
  c->skip_type = 0;
  /* A field may appear once, under either of its names. */
  uint64_t seen_small[4] = {0};
  uint64_t *seen = d->n_fields <= 256 ? seen_small : calloc((d->n_fields + 63) / 64, 8);
  if (!seen) return fail(c, "out of memory");
  int rc = 0;
  for (;;) {
    tok = sb_jr_next(r);
    if (tok == SB_JT_OBJ_END) break;
    if (tok != SB_JT_KEY) {
      rc = fail(c, tok == SB_JT_ERROR ? r->err : "expected a key");
      break;
    }
    if (skip_type && r->len == 5 && memcmp(r->str, "@type", 5) == 0) {
      if (sb_jr_skip(r, tok)) {
        rc = fail(c, r->err);
        break;
      }
      continue;
    }
    const ProtobufCFieldDescriptor *f = sb_pbjson_field(d, r->str, r->len);
    size_t old = push(c, c->plen ? ".%.*s" : "%.*s", r->str, r->len);
    if (!f) {
      if (!(c->flags & SB_PBJSON_IGNORE_UNKNOWN)) {
        rc = fail(c, "unknown field");
        break;
      }
      tok = sb_jr_next(r);
      if (tok == SB_JT_ERROR || sb_jr_skip(r, tok)) {
        rc = fail(c, r->err);
        break;
      }
      pop(c, old);
      continue;
    }
    unsigned idx = (unsigned)(f - d->fields);
    if (seen[idx / 64] >> (idx % 64) & 1) {
      rc = fail(c, "field given more than once");
      break;
    }
    seen[idx / 64] |= 1ull << (idx % 64);
    rc = read_field(c, m, f, sb_jr_next(r));
    if (rc) break;
    pop(c, old);
  }
  if (seen != seen_small) free(seen);
  return rc;
}

int sb_pbjson_decode(const void *data, size_t len, ProtobufCMessage *msg, ProtobufCAllocator *alloc,
                     unsigned flags, sb_pbjson_err_t *err) {
  memset(err, 0, sizeof *err);
  sb_jr_t r;
  sb_jr_init(&r, data, len);
  rctx_t c = {&r, alloc, flags, err, 0, 0};
  int rc = read_message(&c, sb_jr_next(&r), msg);
  if (!rc) {
    sb_jtok_t t = sb_jr_next(&r);
    if (t != SB_JT_END) rc = fail(&c, t == SB_JT_ERROR ? r.err : "unexpected data after the value");
  }
  sb_jr_free(&r);
  return rc;
}

/* ---- text values (path and query parameters) ---- */

int sb_pbjson_set_text(ProtobufCMessage *msg, const char *path, size_t path_len, const char *value,
                       size_t value_len, ProtobufCAllocator *alloc, sb_pbjson_err_t *err) {
  memset(err, 0, sizeof *err);
  snprintf(err->path, sizeof err->path, "%.*s", (int)path_len, path);
  ProtobufCMessage *m = msg;
  const char *seg = path, *end = path + path_len;
  for (;;) {
    const char *dot = memchr(seg, '.', (size_t)(end - seg));
    const char *se = dot ? dot : end;
    const ProtobufCFieldDescriptor *f = sb_pbjson_field(m->descriptor, seg, (size_t)(se - seg));
    if (!f) {
      err->msg = "unknown field";
      return SB_ENOTFOUND;
    }
    if (dot) {
      if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED) {
        err->msg = "not a message field";
        return SB_EINVAL;
      }
      ProtobufCMessage **sub = AT(m, f->offset);
      if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        /* The storage is shared by the oneof's members: it holds this message only when this
         * member is the one set. */
        uint32_t cs = *(uint32_t *)AT(m, f->quantifier_offset);
        if (cs && cs != f->id) {
          err->msg = "more than one field of a oneof is set";
          return SB_EINVAL;
        }
        if (!cs) *sub = NULL;
      }
      if (!*sub && !(*sub = new_message(alloc, f->descriptor))) {
        err->msg = "out of memory";
        return SB_ENOMEM;
      }
      if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) *(uint32_t *)AT(m, f->quantifier_offset) = f->id;
      m = *sub;
      seg = dot + 1;
      continue;
    }
    /* Build a one-token JSON document for the value so the JSON rules apply unchanged:
     * strings, enum names and text forms of well-known types become JSON strings; numbers
     * and booleans stay bare. */
    int bare = 0;
    const ProtobufCFieldDescriptor *vf = f;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && wkt_of(f->descriptor) == WKT_WRAPPER)
      vf = field_by_id(f->descriptor, 1); /* a wrapper takes its value's text form */
    if (vf && vf->type == PROTOBUF_C_TYPE_BOOL) {
      bare = (value_len == 4 && memcmp(value, "true", 4) == 0) ||
             (value_len == 5 && memcmp(value, "false", 5) == 0);
      if (!bare) {
        err->msg = "expected true or false";
        return SB_EINVAL;
      }
    }
    sb_buf_t doc = {0};
    sb_jw_t w;
    sb_jw_init(&w, &doc);
    if (bare)
      sb_jw_raw(&w, value, value_len);
    else if (f->type == PROTOBUF_C_TYPE_ENUM && value_len &&
             ((value[0] >= '0' && value[0] <= '9') || value[0] == '-'))
      sb_jw_raw(&w, value, value_len);
    else
      sb_jw_str(&w, value, value_len);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      /* Append: wrap the value in an array and merge with what is there. */
      size_t n = *(size_t *)AT(m, f->quantifier_offset);
      size_t es = sb__pb_elem_size(f->type);
      sb_buf_t one = {0};
      sb_buf_append(&one, "[", 1);
      sb_buf_append(&one, sb_buf_head(&doc), sb_buf_pending(&doc));
      sb_buf_append(&one, "]", 1);
      sb_buf_free(&doc);
      void *old = *(void **)AT(m, f->offset);
      sb_jr_t r;
      sb_jr_init(&r, sb_buf_head(&one), sb_buf_pending(&one));
      rctx_t c = {&r, alloc, 0, err, strlen(err->path), 0};
      int rc = w.err ? fail(&c, "invalid text") : read_repeated(&c, m, f, sb_jr_next(&r));
      sb_jr_free(&r);
      sb_buf_free(&one);
      if (rc) return rc;
      void *added = *(void **)AT(m, f->offset);
      char *merged = alloc->alloc(alloc->allocator_data, (n + 1) * es);
      if (!merged) return SB_ENOMEM;
      if (n) memcpy(merged, old, n * es);
      memcpy(merged + n * es, added, es);
      *(void **)AT(m, f->offset) = merged;
      *(size_t *)AT(m, f->quantifier_offset) = n + 1;
      return 0;
    }
    sb_jr_t r;
    sb_jr_init(&r, sb_buf_head(&doc), sb_buf_pending(&doc));
    rctx_t c = {&r, alloc, 0, err, strlen(err->path), 0};
    int rc = w.err ? fail(&c, "invalid text") : read_field(&c, m, f, sb_jr_next(&r));
    sb_jr_free(&r);
    sb_buf_free(&doc);
    if (rc && !err->msg) err->msg = "invalid value";
    return rc ? SB_EINVAL : 0;
  }
}
