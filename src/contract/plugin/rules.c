#include "contract/plugin/rules.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "contract/plugin/ext.h"
#include "switchboard/error.h"
#include "switchboard/validate.pb-c.h"

typedef Google__Protobuf__FieldDescriptorProto field_t;
typedef Switchboard__FieldRules rules_t;

/* Where a problem is reported. */
typedef struct rctx {
  sb_arena_t *a;      /* owns the pattern copy and the unpacked option */
  sb_field_rule_t *o; /* being filled */
  char *err;          /* description on SB_EINVAL */
  size_t errlen;      /* bytes of err */
} rctx_t;

static int fail(rctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(rctx_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, c->errlen, fmt, ap);
  va_end(ap);
  return SB_EINVAL;
}

/* The FieldRules type case that fits a field of descriptor.proto type t, and its name; 0 for
 * types that take no value rules (bool, message, group). */
static Switchboard__FieldRules__TypeCase case_for(int t) {
  switch (t) {
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING:
    return SWITCHBOARD__FIELD_RULES__TYPE_STRING;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES:
    return SWITCHBOARD__FIELD_RULES__TYPE_BYTES;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32:
    return SWITCHBOARD__FIELD_RULES__TYPE_INT32;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64:
    return SWITCHBOARD__FIELD_RULES__TYPE_INT64;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32:
    return SWITCHBOARD__FIELD_RULES__TYPE_UINT32;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64:
    return SWITCHBOARD__FIELD_RULES__TYPE_UINT64;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32:
    return SWITCHBOARD__FIELD_RULES__TYPE_SINT32;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64:
    return SWITCHBOARD__FIELD_RULES__TYPE_SINT64;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32:
    return SWITCHBOARD__FIELD_RULES__TYPE_FIXED32;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64:
    return SWITCHBOARD__FIELD_RULES__TYPE_FIXED64;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32:
    return SWITCHBOARD__FIELD_RULES__TYPE_SFIXED32;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64:
    return SWITCHBOARD__FIELD_RULES__TYPE_SFIXED64;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT:
    return SWITCHBOARD__FIELD_RULES__TYPE_FLOAT;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE:
    return SWITCHBOARD__FIELD_RULES__TYPE_DOUBLE;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM:
    return SWITCHBOARD__FIELD_RULES__TYPE_ENUM;
  default:
    return SWITCHBOARD__FIELD_RULES__TYPE__NOT_SET;
  }
}

/* The option name of a type case, for messages. */
static const char *case_name(Switchboard__FieldRules__TypeCase k) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field(&switchboard__field_rules__descriptor, (unsigned)k);
  return f ? f->name : "?";
}

/* Copies one range rule (gt/gte/lt/lte of any of the numeric rule messages) into the
 * runtime's MIN/MAX members of the matching domain. */
#define RANGE(c, r, MIN, MAX)                                                                      \
  do {                                                                                             \
    if ((r)->has_gt && (r)->has_gte) return fail(c, "gt and gte cannot be combined");              \
    if ((r)->has_lt && (r)->has_lte) return fail(c, "lt and lte cannot be combined");              \
    if ((r)->has_gt || (r)->has_gte) {                                                             \
      (c)->o->flags |= SB_RULE_MIN | ((r)->has_gt ? SB_RULE_MIN_EXCL : 0u);                        \
      (c)->o->MIN = (r)->has_gt ? (r)->gt : (r)->gte;                                              \
    }                                                                                              \
    if ((r)->has_lt || (r)->has_lte) {                                                             \
      (c)->o->flags |= SB_RULE_MAX | ((r)->has_lt ? SB_RULE_MAX_EXCL : 0u);                        \
      (c)->o->MAX = (r)->has_lt ? (r)->lt : (r)->lte;                                              \
    }                                                                                              \
    if (((c)->o->flags & SB_RULE_MIN) && ((c)->o->flags & SB_RULE_MAX) &&                          \
        (c)->o->MIN > (c)->o->MAX)                                                                 \
      return fail(c, "the lower bound is above the upper bound");                                  \
  } while (0)

/* A count pair (min_len/max_len, min_items/max_items, ...). */
static int count_pair(rctx_t *c, int has_lo, uint64_t lo, int has_hi, uint64_t hi, uint32_t flag_lo,
                      uint32_t flag_hi, uint64_t *dst_lo, uint64_t *dst_hi, const char *what) {
  if (has_lo) {
    c->o->flags |= flag_lo;
    *dst_lo = lo;
  }
  if (has_hi) {
    c->o->flags |= flag_hi;
    *dst_hi = hi;
  }
  if (has_lo && has_hi && lo > hi) return fail(c, "min_%s is above max_%s", what, what);
  return 0;
}

/* inf and nan bounds are refused: the generated tables print bounds as C literals, and a
 * NaN bound would reject every value. */
static int finite_bounds(rctx_t *c) {
  if (((c->o->flags & SB_RULE_MIN) && !isfinite(c->o->d_min)) ||
      ((c->o->flags & SB_RULE_MAX) && !isfinite(c->o->d_max)))
    return fail(c, "bounds must be finite numbers");
  return 0;
}

/* The value rules of r (its type case) for a value of descriptor.proto type t. */
static int value_rules(rctx_t *c, const rules_t *r, int t) {
  Switchboard__FieldRules__TypeCase k = r->type_case;
  if (k == SWITCHBOARD__FIELD_RULES__TYPE__NOT_SET) return 0;
  if (k == SWITCHBOARD__FIELD_RULES__TYPE_REPEATED || k == SWITCHBOARD__FIELD_RULES__TYPE_MAP)
    return fail(c, "%s rules on a field that is not %s", case_name(k),
                k == SWITCHBOARD__FIELD_RULES__TYPE_MAP ? "a map" : "repeated");
  Switchboard__FieldRules__TypeCase want = case_for(t);
  if (k != want) {
    if (want == SWITCHBOARD__FIELD_RULES__TYPE__NOT_SET)
      return fail(c, "%s rules on a field of a type that takes only `required`", case_name(k));
    return fail(c, "%s rules on a %s field", case_name(k), case_name(want));
  }
  switch (k) {
  case SWITCHBOARD__FIELD_RULES__TYPE_STRING: {
    const Switchboard__StringRules *s = r->string;
    int rc = count_pair(c, s->has_min_len, s->min_len, s->has_max_len, s->max_len, SB_RULE_LEN_MIN,
                        SB_RULE_LEN_MAX, &c->o->len_min, &c->o->len_max, "len");
    if (!rc)
      rc = count_pair(c, s->has_min_bytes, s->min_bytes, s->has_max_bytes, s->max_bytes,
                      SB_RULE_BYTES_MIN, SB_RULE_BYTES_MAX, &c->o->bytes_min, &c->o->bytes_max,
                      "bytes");
    if (rc) return rc;
    if (s->pattern) {
      /* The server compiles it with the same flags; refusing it here keeps a contract that
       * cannot be served from being generated. */
      regex_t re;
      int e = regcomp(&re, s->pattern, REG_EXTENDED | REG_NOSUB);
      if (e != 0) {
        char why[128];
        regerror(e, &re, why, sizeof why);
        return fail(c, "pattern %s is not a POSIX extended regular expression: %s", s->pattern,
                    why);
      }
      regfree(&re);
      c->o->pattern = sb_arena_strndup(c->a, s->pattern, strlen(s->pattern));
      if (!c->o->pattern) return SB_ENOMEM;
    }
    return 0;
  }
  case SWITCHBOARD__FIELD_RULES__TYPE_BYTES:
    return count_pair(c, r->bytes->has_min_len, r->bytes->min_len, r->bytes->has_max_len,
                      r->bytes->max_len, SB_RULE_LEN_MIN, SB_RULE_LEN_MAX, &c->o->len_min,
                      &c->o->len_max, "len");
  case SWITCHBOARD__FIELD_RULES__TYPE_INT32:
    RANGE(c, r->int32, i_min, i_max);
    return 0;
  case SWITCHBOARD__FIELD_RULES__TYPE_SINT32:
    RANGE(c, r->sint32, i_min, i_max);
    return 0;
  case SWITCHBOARD__FIELD_RULES__TYPE_SFIXED32:
    RANGE(c, r->sfixed32, i_min, i_max);
    return 0;
  case SWITCHBOARD__FIELD_RULES__TYPE_INT64:
    RANGE(c, r->int64, i_min, i_max);
    return 0;
  case SWITCHBOARD__FIELD_RULES__TYPE_SINT64:
    RANGE(c, r->sint64, i_min, i_max);
    return 0;
  case SWITCHBOARD__FIELD_RULES__TYPE_SFIXED64:
    RANGE(c, r->sfixed64, i_min, i_max);
    return 0;
  case SWITCHBOARD__FIELD_RULES__TYPE_UINT32:
    RANGE(c, r->uint32, u_min, u_max);
    return 0;
  case SWITCHBOARD__FIELD_RULES__TYPE_FIXED32:
    RANGE(c, r->fixed32, u_min, u_max);
    return 0;
  case SWITCHBOARD__FIELD_RULES__TYPE_UINT64:
    RANGE(c, r->uint64, u_min, u_max);
    return 0;
  case SWITCHBOARD__FIELD_RULES__TYPE_FIXED64:
    RANGE(c, r->fixed64, u_min, u_max);
    return 0;
  case SWITCHBOARD__FIELD_RULES__TYPE_FLOAT:
    RANGE(c, r->float_, d_min, d_max);
    return finite_bounds(c);
  case SWITCHBOARD__FIELD_RULES__TYPE_DOUBLE:
    RANGE(c, r->double_, d_min, d_max);
    return finite_bounds(c);
  case SWITCHBOARD__FIELD_RULES__TYPE_ENUM:
    if (r->enum_->has_defined_only && r->enum_->defined_only) c->o->flags |= SB_RULE_DEFINED_ONLY;
    return 0;
  default:
    return fail(c, "unknown rule kind %d", (int)k);
  }
}

int sb_rules_read(sb_arena_t *a, const field_t *f, int is_map, sb_field_rule_t *out, char *err,
                  size_t errlen) {
  memset(out, 0, sizeof *out);
  out->number = (uint32_t)f->number;
  if (!f->options) return 0;
  const uint8_t *p;
  size_t n;
  int rc = sb_ext_message(a, &f->options->base, SB_RULES_EXT_FIELD, &p, &n);
  if (rc == SB_ENOMEM) return rc;
  rctx_t c = {a, out, err, errlen};
  if (rc < 0) return fail(&c, "malformed (switchboard.field) option");
  if (rc == 0) return 0;
  ProtobufCAllocator alloc = sb_ext_allocator(a);
  rules_t *r = switchboard__field_rules__unpack(&alloc, n, p);
  if (!r) return fail(&c, "malformed (switchboard.field) option");

  if (r->has_required && r->required) out->flags |= SB_RULE_REQUIRED;
  int repeated = f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED;
  Switchboard__FieldRules__TypeCase k = r->type_case;
  if (is_map) {
    if (k == SWITCHBOARD__FIELD_RULES__TYPE_MAP)
      rc = count_pair(&c, r->map->has_min_pairs, r->map->min_pairs, r->map->has_max_pairs,
                      r->map->max_pairs, SB_RULE_ITEMS_MIN, SB_RULE_ITEMS_MAX, &out->items_min,
                      &out->items_max, "pairs");
    else if (k != SWITCHBOARD__FIELD_RULES__TYPE__NOT_SET)
      rc = fail(&c, "%s rules on a map field (use map)", case_name(k));
  } else if (repeated) {
    if (k == SWITCHBOARD__FIELD_RULES__TYPE_REPEATED) {
      const Switchboard__RepeatedRules *rr = r->repeated;
      rc = count_pair(&c, rr->has_min_items, rr->min_items, rr->has_max_items, rr->max_items,
                      SB_RULE_ITEMS_MIN, SB_RULE_ITEMS_MAX, &out->items_min, &out->items_max,
                      "items");
      if (!rc && rr->items) {
        if (rr->items->has_required)
          rc = fail(&c, "repeated.items cannot be required (use repeated.min_items)");
        else
          rc = value_rules(&c, rr->items, (int)f->type);
      }
    } else if (k != SWITCHBOARD__FIELD_RULES__TYPE__NOT_SET) {
      rc =
          fail(&c, "%s rules on a repeated field (put item rules in repeated.items)", case_name(k));
    }
  } else {
    rc = value_rules(&c, r, (int)f->type);
  }
  if (rc) return rc;
  return out->flags || out->pattern ? 1 : 0;
}
