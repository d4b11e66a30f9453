#include "rpc/validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/pbjson.h"
#include "switchboard/error.h"

#define AT(m, off) ((const char *)(m) + (off))

int sb__patterns_add(sb__patterns_t *p, const sb_service_desc_t *desc, const char **bad) {
  for (size_t i = 0; i < desc->n_rules; i++) {
    const sb_msg_rules_t *mr = &desc->rules[i];
    for (size_t j = 0; j < mr->n_fields; j++) {
      const char *src = mr->fields[j].pattern;
      if (!src) continue;
      int known = 0;
      for (size_t k = 0; k < p->n && !known; k++)
        known = p->src[k] == src;
      if (known) continue;
      if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 8;
        const char **s = realloc(p->src, cap * sizeof *s);
        if (!s) return SB_ENOMEM;
        p->src = s;
        regex_t *re = realloc(p->re, cap * sizeof *re);
        if (!re) return SB_ENOMEM;
        p->re = re;
        p->cap = cap;
      }
      if (regcomp(&p->re[p->n], src, REG_EXTENDED | REG_NOSUB) != 0) {
        *bad = src;
        return SB_EINVAL;
      }
      p->src[p->n++] = src;
    }
  }
  return 0;
}

void sb__patterns_free(sb__patterns_t *p) {
  for (size_t i = 0; i < p->n; i++)
    regfree(&p->re[i]);
  free(p->src);
  free(p->re);
  memset(p, 0, sizeof *p);
}

/* One validation walk. The path is built in place: each level appends its piece and cuts it
 * off again on the way out. */
typedef struct vctx {
  const sb__patterns_t *pats;      /* borrowed */
  const sb_service_desc_t *desc;   /* borrowed; its rule tables */
  sb_call_t *call;                 /* violations are added to it */
  char path[SB_VALIDATE_PATH_MAX]; /* NUL-terminated; plen <= sizeof path - 1 */
  size_t plen;                     /* bytes of path in use */
  int count;                       /* violations found */
  int err;                         /* SB_ENOMEM once a report could not be stored */
} vctx_t;

static size_t push(vctx_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t push(vctx_t *v, const char *fmt, ...) {
  size_t old = v->plen;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(v->path + old, sizeof v->path - old, fmt, ap);
  va_end(ap);
  if (n > 0) v->plen = old + (size_t)n < sizeof v->path ? old + (size_t)n : sizeof v->path - 1;
  return old;
}

static void pop(vctx_t *v, size_t old) {
  v->plen = old;
  v->path[old] = '\0';
}

static void report(vctx_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(vctx_t *v, const char *fmt, ...) {
  if (++v->count > (int)SB_VALIDATE_MAX_VIOLATIONS) return;
  char what[SB_VALIDATE_PATH_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (sb_call_field_violation(v->call, v->path, what) == SB_ENOMEM) v->err = SB_ENOMEM;
}

/* The shortest of %.15g and %.17g that reads back as x: bounds print as the contract wrote
 * them (0.1, not 0.10000000000000001). */
static const char *num(char *buf, size_t cap, double x) {
  snprintf(buf, cap, "%.15g", x);
  if (strtod(buf, NULL) != x) snprintf(buf, cap, "%.17g", x);
  return buf;
}

static const sb_msg_rules_t *rules_of(const sb_service_desc_t *d,
                                      const ProtobufCMessageDescriptor *md) {
  for (size_t i = 0; i < d->n_rules; i++)
    if (d->rules[i].desc == md) return &d->rules[i];
  return NULL;
}

/* The rule of field number id, by binary search (the generator sorts them). */
static const sb_field_rule_t *rule_for(const sb_msg_rules_t *mr, uint32_t id) {
  size_t lo = 0, hi = mr->n_fields;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (mr->fields[mid].number == id) return &mr->fields[mid];
    if (mr->fields[mid].number < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static void check_signed(vctx_t *v, const sb_field_rule_t *r, int64_t x) {
  uint32_t f = r->flags;
  if (f & SB_RULE_MIN) {
    if ((f & SB_RULE_MIN_EXCL) && !(x > r->i_min))
      report(v, "must be greater than %lld", (long long)r->i_min);
    else if (!(f & SB_RULE_MIN_EXCL) && !(x >= r->i_min))
      report(v, "must be at least %lld", (long long)r->i_min);
  }
  if (f & SB_RULE_MAX) {
    if ((f & SB_RULE_MAX_EXCL) && !(x < r->i_max))
      report(v, "must be less than %lld", (long long)r->i_max);
    else if (!(f & SB_RULE_MAX_EXCL) && !(x <= r->i_max))
      report(v, "must be at most %lld", (long long)r->i_max);
  }
}

static void check_unsigned(vctx_t *v, const sb_field_rule_t *r, uint64_t x) {
  uint32_t f = r->flags;
  if (f & SB_RULE_MIN) {
    if ((f & SB_RULE_MIN_EXCL) && !(x > r->u_min))
      report(v, "must be greater than %llu", (unsigned long long)r->u_min);
    else if (!(f & SB_RULE_MIN_EXCL) && !(x >= r->u_min))
      report(v, "must be at least %llu", (unsigned long long)r->u_min);
  }
  if (f & SB_RULE_MAX) {
    if ((f & SB_RULE_MAX_EXCL) && !(x < r->u_max))
      report(v, "must be less than %llu", (unsigned long long)r->u_max);
    else if (!(f & SB_RULE_MAX_EXCL) && !(x <= r->u_max))
      report(v, "must be at most %llu", (unsigned long long)r->u_max);
  }
}

/* Written as !(x >= min) rather than x < min so that NaN breaks every bound, as in
 * protovalidate. */
static void check_double(vctx_t *v, const sb_field_rule_t *r, double x) {
  uint32_t f = r->flags;
  char b[32];
  if (f & SB_RULE_MIN) {
    if ((f & SB_RULE_MIN_EXCL) && !(x > r->d_min))
      report(v, "must be greater than %s", num(b, sizeof b, r->d_min));
    else if (!(f & SB_RULE_MIN_EXCL) && !(x >= r->d_min))
      report(v, "must be at least %s", num(b, sizeof b, r->d_min));
  }
  if (f & SB_RULE_MAX) {
    if ((f & SB_RULE_MAX_EXCL) && !(x < r->d_max))
      report(v, "must be less than %s", num(b, sizeof b, r->d_max));
    else if (!(f & SB_RULE_MAX_EXCL) && !(x <= r->d_max))
      report(v, "must be at most %s", num(b, sizeof b, r->d_max));
  }
}

static const char *plural(uint64_t n, const char *one, const char *many) {
  return n == 1 ? one : many;
}

static void check_string(vctx_t *v, const sb_field_rule_t *r, const char *s) {
  if (!s) s = "";
  size_t bytes = strlen(s), chars = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    chars += (*p & 0xc0) != 0x80; /* count every byte that starts a code point */
  uint32_t f = r->flags;
  if ((f & SB_RULE_LEN_MIN) && chars < r->len_min)
    report(v, "must be at least %llu %s", (unsigned long long)r->len_min,
           plural(r->len_min, "character", "characters"));
  if ((f & SB_RULE_LEN_MAX) && chars > r->len_max)
    report(v, "must be at most %llu %s", (unsigned long long)r->len_max,
           plural(r->len_max, "character", "characters"));
  if ((f & SB_RULE_BYTES_MIN) && bytes < r->bytes_min)
    report(v, "must be at least %llu %s", (unsigned long long)r->bytes_min,
           plural(r->bytes_min, "byte", "bytes"));
  if ((f & SB_RULE_BYTES_MAX) && bytes > r->bytes_max)
    report(v, "must be at most %llu %s", (unsigned long long)r->bytes_max,
           plural(r->bytes_max, "byte", "bytes"));
  if (r->pattern) {
    for (size_t i = 0; i < v->pats->n; i++) {
      if (v->pats->src[i] != r->pattern) continue;
      if (regexec(&v->pats->re[i], s, 0, NULL, 0) != 0)
        report(v, "must match the pattern %s", r->pattern);
      break;
    }
  }
}

/* Checks the value rules of r (bounds, lengths, pattern, defined_only) on one value of
 * field f at p. */
static void check_value(vctx_t *v, const sb_field_rule_t *r, const ProtobufCFieldDescriptor *f,
                        const void *p) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    check_signed(v, r, *(const int32_t *)p);
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    check_signed(v, r, *(const int64_t *)p);
    break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    check_unsigned(v, r, *(const uint32_t *)p);
    break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    check_unsigned(v, r, *(const uint64_t *)p);
    break;
  case PROTOBUF_C_TYPE_FLOAT:
    check_double(v, r, *(const float *)p);
    break;
  case PROTOBUF_C_TYPE_DOUBLE:
    check_double(v, r, *(const double *)p);
    break;
  case PROTOBUF_C_TYPE_ENUM:
    if ((r->flags & SB_RULE_DEFINED_ONLY) &&
        !protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int32_t *)p))
      report(v, "must be a value %s defines",
             ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
    break;
  case PROTOBUF_C_TYPE_STRING:
    check_string(v, r, *(char *const *)p);
    break;
  case PROTOBUF_C_TYPE_BYTES: {
    size_t n = ((const ProtobufCBinaryData *)p)->len;
    if ((r->flags & SB_RULE_LEN_MIN) && n < r->len_min)
      report(v, "must be at least %llu %s", (unsigned long long)r->len_min,
             plural(r->len_min, "byte", "bytes"));
    if ((r->flags & SB_RULE_LEN_MAX) && n > r->len_max)
      report(v, "must be at most %llu %s", (unsigned long long)r->len_max,
             plural(r->len_max, "byte", "bytes"));
    break;
  }
  default: /* bool and message fields carry no value rules (the generator refuses them) */
    break;
  }
}

static void check_message(vctx_t *v, const sb_msg_rules_t *mr, const ProtobufCMessage *m,
                          unsigned depth);

/* The path piece of a map entry: labels["k"] for string keys, ids[7] for integer keys. */
static size_t push_map_key(vctx_t *v, const ProtobufCMessage *entry) {
  const ProtobufCFieldDescriptor *kf = &entry->descriptor->fields[0];
  const void *k = AT(entry, kf->offset);
  switch (kf->type) {
  case PROTOBUF_C_TYPE_STRING:
    return push(v, "[\"%s\"]", *(char *const *)k ? *(char *const *)k : "");
  case PROTOBUF_C_TYPE_BOOL:
    return push(v, "[%s]", *(const protobuf_c_boolean *)k ? "true" : "false");
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return push(v, "[%lld]", (long long)*(const int64_t *)k);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return push(v, "[%llu]", (unsigned long long)*(const uint64_t *)k);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return push(v, "[%u]", *(const uint32_t *)k);
  default:
    return push(v, "[%d]", *(const int32_t *)k);
  }
}

static void check_repeated(vctx_t *v, const sb_field_rule_t *r, const sb_msg_rules_t *sub,
                           const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m,
                           unsigned depth) {
  size_t n = *(const size_t *)AT(m, f->quantifier_offset);
  const char *arr = *(char *const *)AT(m, f->offset);
  int map = sb__pb_is_map(f);
  if (r) {
    const char *unit = map ? "entr" : "item";
    if ((r->flags & SB_RULE_REQUIRED) && n == 0) report(v, "is required");
    if ((r->flags & SB_RULE_ITEMS_MIN) && n < r->items_min)
      report(v, "must have at least %llu %s%s", (unsigned long long)r->items_min, unit,
             map ? plural(r->items_min, "y", "ies") : plural(r->items_min, "", "s"));
    if ((r->flags & SB_RULE_ITEMS_MAX) && n > r->items_max)
      report(v, "must have at most %llu %s%s", (unsigned long long)r->items_max, unit,
             map ? plural(r->items_max, "y", "ies") : plural(r->items_max, "", "s"));
  }
  if (!arr) return;
  size_t es = sb__pb_elem_size(f->type);
  for (size_t i = 0; i < n && v->count <= (int)SB_VALIDATE_MAX_VIOLATIONS; i++) {
    const void *item = arr + i * es;
    if (map) {
      const ProtobufCMessage *entry = *(ProtobufCMessage *const *)item;
      const sb_msg_rules_t *er = entry ? rules_of(v->desc, entry->descriptor) : NULL;
      if (!er) continue;
      /* Descend into the value of the entry directly, so the path reads labels["k"].name
       * rather than labels["k"].value.name. */
      const ProtobufCFieldDescriptor *vf = &entry->descriptor->fields[1];
      const ProtobufCMessage *val = vf->type == PROTOBUF_C_TYPE_MESSAGE
                                        ? *(ProtobufCMessage *const *)AT(entry, vf->offset)
                                        : NULL;
      const sb_msg_rules_t *vr = val ? rules_of(v->desc, val->descriptor) : NULL;
      if (!vr) continue;
      size_t mark = push_map_key(v, entry);
      check_message(v, vr, val, depth + 1);
      pop(v, mark);
      continue;
    }
    size_t mark = push(v, "[%zu]", i);
    if (r) check_value(v, r, f, item);
    if (sub) {
      const ProtobufCMessage *sm = *(ProtobufCMessage *const *)item;
      if (sm) check_message(v, sub, sm, depth + 1);
    }
    pop(v, mark);
  }
}

static void check_message(vctx_t *v, const sb_msg_rules_t *mr, const ProtobufCMessage *m,
                          unsigned depth) {
  if (depth > SB_VALIDATE_MAX_DEPTH) return;
  const ProtobufCMessageDescriptor *d = mr->desc;
  for (unsigned i = 0; i < d->n_fields && v->count <= (int)SB_VALIDATE_MAX_VIOLATIONS; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const sb_field_rule_t *r = rule_for(mr, f->id);
    const sb_msg_rules_t *sub =
        f->type == PROTOBUF_C_TYPE_MESSAGE ? rules_of(v->desc, f->descriptor) : NULL;
    if (!r && !sub) continue;
    size_t mark = push(v, v->plen ? ".%s" : "%s", f->name);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      check_repeated(v, r, sub, f, m, depth);
      pop(v, mark);
      continue;
    }
    int has = sb__pb_present(m, f);
    /* Explicit presence: messages, oneof members, proto2 and proto3 `optional` fields. Their
     * rules apply only when set; implicit-presence scalars are checked at any value. */
    int explicit_presence = f->type == PROTOBUF_C_TYPE_MESSAGE ||
                            (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
                            f->label == PROTOBUF_C_LABEL_OPTIONAL;
    if (r && (r->flags & SB_RULE_REQUIRED) && !has)
      report(v, "is required");
    else if (has || !explicit_presence) {
      if (r) check_value(v, r, f, AT(m, f->offset));
      if (sub) check_message(v, sub, *(ProtobufCMessage *const *)AT(m, f->offset), depth + 1);
    }
    pop(v, mark);
  }
}

int sb__validate(const sb__patterns_t *p, const sb_service_desc_t *desc, sb_call_t *call,
                 const ProtobufCMessage *msg) {
  const sb_msg_rules_t *mr = desc->n_rules ? rules_of(desc, msg->descriptor) : NULL;
  if (!mr) return 0;
  vctx_t v = {.pats = p, .desc = desc, .call = call};
  check_message(&v, mr, msg, 0);
  return v.err ? v.err : v.count;
}
