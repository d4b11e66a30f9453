/*
 * Conformance tests of the proto3 JSON mapping (src/contract/pbjson.c) against
 * testdata/conformance.proto (message conformance.v1.All, compiled by
 * switchboard_add_contract() in tests/contract/CMakeLists.txt).
 *
 * Four groups:
 *   - encode: messages built with the generated C types, written with sb_pbjson_write and
 *     compared with the exact expected JSON text (one ENCODES() line per case);
 *   - decode_ok: JSON accepted by sb_pbjson_decode, checked by writing the decoded message
 *     back out and comparing with its canonical form (the encode cases vouch for the writer),
 *     plus tests that look at the decoded C fields directly;
 *   - decode_bad: JSON rejected with SB_EINVAL, a non-NULL err.msg and the exact err.path;
 *   - set_text: sb_pbjson_set_text on path/query-style text values.
 *
 * JSON in the tables is written with single quotes for readability; q() turns every ' into "
 * before use (no case needs a literal single quote).
 *
 * Decoded memory comes from an sb_arena behind a ProtobufCAllocator whose free is a no-op:
 * nothing decoded is ever freed piecewise (protobuf_c_message_free_unpacked must not be used
 * on it), and the arena is reset between cases.
 *
 * Cases marked "REGRESSION" each caught a bug in src/contract/pbjson.c when they were
 * written; they stay as regression tests. The one that corrupted memory runs in a child
 * process so a relapse cannot take the rest of the binary down with it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conformance.pb-c.h"
#include "contract/pbjson.h"
#include "core/arena.h"
#include "core/buf.h"
#include "sb_test.h"
#include "switchboard/error.h"

typedef Conformance__V1__All All;
typedef Conformance__V1__Nested Nested;

/* ---- helpers ---- */

static sb_arena_t arena;

static void *arena_alloc(void *ud, size_t n) {
  return sb_arena_alloc(ud, n);
}
static void arena_free(void *ud, void *p) {
  (void)ud, (void)p; /* released with the arena */
}
static ProtobufCAllocator alloc = {arena_alloc, arena_free, &arena};

/* Every decoded message of the previous case is dropped at once. */
static void fresh(void) {
  static int inited;
  /* The types an Any may hold: All and everything it reaches (the well-known types too). */
  if (!inited)
    sb_arena_init(&arena), sb_pbjson_add_types(&conformance__v1__all__descriptor), inited = 1;
  sb_arena_reset(&arena);
}

/* s with every ' replaced by ", in one of a few rotating static buffers (so two results can
 * be used in one expression). */
static const char *q(const char *s) {
  static char bufs[4][8192];
  static unsigned next;
  char *o = bufs[next++ % 4];
  size_t i = 0;
  for (; s[i] && i < sizeof bufs[0] - 1; i++)
    o[i] = s[i] == '\'' ? '"' : s[i];
  o[i] = '\0';
  return o;
}

/* Writes msg; returns the JSON text (static, NUL-terminated) and the writer's result in *rc. */
static const char *enc(const void *msg, unsigned flags, int *rc) {
  static char out[65536];
  sb_buf_t b = {0};
  sb_jw_t w;
  sb_jw_init(&w, &b);
  *rc = sb_pbjson_write(&w, msg, flags);
  size_t n = sb_buf_pending(&b);
  if (n > sizeof out - 1) n = sizeof out - 1;
  if (n) memcpy(out, sb_buf_head(&b), n);
  out[n] = '\0';
  sb_buf_free(&b);
  return out;
}

/* Decodes the NUL-terminated text json into a fresh All. */
static int dec(const char *json, unsigned flags, All *m, sb_pbjson_err_t *err) {
  conformance__v1__all__init(m);
  return sb_pbjson_decode(json, strlen(json), &m->base, &alloc, flags, err);
}

/* Checks that msg encodes (with flags) to exactly expect (single-quoted form). */
static void check_enc(const void *msg, unsigned flags, const char *expect, const char *file,
                      int line) {
  int rc;
  const char *got = enc(msg, flags, &rc);
  sb_test_record(rc == 0, file, line, "sb_pbjson_write returned %d", rc);
  sb_test_str(got, q(expect), "encoded", "expected", file, line);
}

/* One encode case: body builds m (an All, initialised), then m must encode to expect. */
#define ENCODES(name, expect, ...)                                                                 \
  TEST(enc_##name) {                                                                               \
    fresh();                                                                                       \
    All m = CONFORMANCE__V1__ALL__INIT;                                                            \
    __VA_ARGS__;                                                                                   \
    check_enc(&m, 0, expect, __FILE__, __LINE__);                                                  \
  }

/* One encode case the writer must refuse with SB_EINVAL. */
#define ENCODE_FAILS(name, ...)                                                                    \
  TEST(enc_##name) {                                                                               \
    fresh();                                                                                       \
    All m = CONFORMANCE__V1__ALL__INIT;                                                            \
    __VA_ARGS__;                                                                                   \
    int rc;                                                                                        \
    enc(&m, 0, &rc);                                                                               \
    CHECK_EQ_INT(rc, SB_EINVAL);                                                                   \
  }

static ProtobufCBinaryData bin(const char *s, size_t n) {
  ProtobufCBinaryData b = {n, (uint8_t *)(uintptr_t)s};
  return b;
}

/* ---- encode: scalars and names ---- */

ENCODES(empty, "{}", (void)m)

ENCODES(defaults_omitted, "{}", m.f_int32 = 0; m.f_int64 = 0; m.f_string = ""; m.f_bool = 0;
        m.f_bytes = bin("", 0); m.color = CONFORMANCE__V1__COLOR__COLOR_UNSPECIFIED;
        m.f_double = 0.0; m.f_float = 0.0f)

ENCODES(int32_kinds,
        "{'fInt32':-5,'fUint32':4294967295,'fSint32':-2147483648,'fFixed32':7,"
        "'fSfixed32':-9}",
        m.f_int32 = -5;
        m.f_uint32 = 4294967295u; m.f_sint32 = INT32_MIN; m.f_fixed32 = 7; m.f_sfixed32 = -9)

ENCODES(int64_kinds_as_strings,
        "{'fInt64':'-9223372036854775808','fUint64':'18446744073709551615','fSint64':'-2',"
        "'fFixed64':'8','fSfixed64':'9223372036854775807'}",
        m.f_int64 = INT64_MIN;
        m.f_uint64 = UINT64_MAX; m.f_sint64 = -2; m.f_fixed64 = 8; m.f_sfixed64 = INT64_MAX)

ENCODES(floats, "{'fFloat':0.5,'fDouble':1.25}", m.f_float = 0.5f; m.f_double = 1.25)
ENCODES(double_shortest, "{'fDouble':0.1}", m.f_double = 0.1)
ENCODES(double_negative_zero_is_set, "{'fDouble':-0}", m.f_double = -0.0)
ENCODES(double_nan, "{'fDouble':'NaN'}", m.f_double = NAN)
ENCODES(double_infinities, "{'fFloat':'-Infinity','fDouble':'Infinity'}", m.f_double = INFINITY;
        m.f_float = -INFINITY)
ENCODES(float_nan, "{'fFloat':'NaN'}", m.f_float = NAN)
/* REGRESSION (fixed): a float is widened to double and written as that double's shortest form,
 * 0.10000000149011612, where protobuf's reference implementations (C++, Java, Go) write the
 * float's own shortest form "0.1". Both read back to the same float, so only the text is
 * off. */
ENCODES(float_shortest, "{'fFloat':0.1}", m.f_float = 0.1f)
ENCODES(bool_true, "{'fBool':true}", m.f_bool = 1)
ENCODES(string_escaped, "{'fString':'a\\'\\\\\\n\xc3\xa9'}", m.f_string = "a\"\\\n\xc3\xa9")

ENCODES(camel_case_names, "{'snakeCaseName':1,'field2x':2}", m.snake_case_name = 1; m.field_2x = 2)

TEST(enc_proto_names_flag) {
  fresh();
  All m = CONFORMANCE__V1__ALL__INIT;
  m.snake_case_name = 1;
  m.field_2x = 2;
  m.f_int64 = 3;
  check_enc(&m, SB_PBJSON_PROTO_NAMES, "{'f_int64':'3','snake_case_name':1,'field_2x':2}", __FILE__,
            __LINE__);
}

/* ---- encode: enums, bytes ---- */

ENCODES(enum_name, "{'color':'COLOR_RED'}", m.color = CONFORMANCE__V1__COLOR__COLOR_RED)
ENCODES(enum_negative_name, "{'color':'COLOR_BLUE'}", m.color = CONFORMANCE__V1__COLOR__COLOR_BLUE)
ENCODES(enum_unknown_number, "{'color':7}", m.color = (Conformance__V1__Color)7)
ENCODES(bytes_one, "{'fBytes':'Zg=='}", m.f_bytes = bin("f", 1))
ENCODES(bytes_two, "{'fBytes':'Zm8='}", m.f_bytes = bin("fo", 2))
ENCODES(bytes_three, "{'fBytes':'Zm9v'}", m.f_bytes = bin("foo", 3))
ENCODES(bytes_standard_alphabet, "{'fBytes':'+/8A'}", m.f_bytes = bin("\xfb\xff\x00", 3))

TEST(enc_bytes_long) {
  /* Longer than the writer's stack buffer. */
  fresh();
  static char raw[600];
  static char expect[900];
  memset(raw, 0xff, sizeof raw);
  size_t o = (size_t)snprintf(expect, sizeof expect, "{'fBytes':'");
  for (size_t i = 0; i < sizeof raw / 3; i++)
    memcpy(expect + o, "////", 4), o += 4;
  snprintf(expect + o, sizeof expect - o, "'}");
  All m = CONFORMANCE__V1__ALL__INIT;
  m.f_bytes = bin(raw, sizeof raw);
  check_enc(&m, 0, expect, __FILE__, __LINE__);
}

ENCODE_FAILS(invalid_utf8_string, m.f_string = "a\xff")

/* ---- encode: repeated, nested, maps, oneof ---- */

ENCODES(repeated_scalars,
        "{'rInt32':[1,-2,0],'rInt64':['1','-9'],'rDouble':[1.5,'NaN','-Infinity'],"
        "'rBool':[true,false],'rString':['a',''],'rBytes':['Zg==',''],"
        "'rColor':['COLOR_GREEN','COLOR_UNSPECIFIED',9]}",
        int32_t ri[] = {1, -2, 0};
        int64_t rl[] = {1, -9}; double rd[] = {1.5, NAN, -INFINITY};
        protobuf_c_boolean rb[] = {1, 0}; char *rs[] = {"a", ""};
        ProtobufCBinaryData ry[] = {bin("f", 1), bin("", 0)};
        Conformance__V1__Color rc[] = {2, 0, 9}; m.n_r_int32 = 3; m.r_int32 = ri; m.n_r_int64 = 2;
        m.r_int64 = rl; m.n_r_double = 3; m.r_double = rd; m.n_r_bool = 2; m.r_bool = rb;
        m.n_r_string = 2; m.r_string = rs; m.n_r_bytes = 2; m.r_bytes = ry; m.n_r_color = 3;
        m.r_color = rc)

ENCODES(nested, "{'nested':{'a':1,'name':'x','values':[3,4],'child':{}}}",
        Nested child = CONFORMANCE__V1__NESTED__INIT;
        Nested n = CONFORMANCE__V1__NESTED__INIT; int32_t v[] = {3, 4}; n.a = 1; n.name = "x";
        n.n_values = 2; n.values = v; n.child = &child; m.nested = &n)

ENCODES(repeated_messages, "{'rNested':[{},{'a':2}]}", Nested a = CONFORMANCE__V1__NESTED__INIT;
        Nested b = CONFORMANCE__V1__NESTED__INIT; b.a = 2; Nested * rn[] = {&a, &b};
        m.n_r_nested = 2; m.r_nested = rn)

ENCODES(
    map_string_int32, "{'mStringInt32':{'k':0,'':-1}}",
    Conformance__V1__All__MStringInt32Entry e1 = CONFORMANCE__V1__ALL__MSTRING_INT32_ENTRY__INIT;
    Conformance__V1__All__MStringInt32Entry e2 = CONFORMANCE__V1__ALL__MSTRING_INT32_ENTRY__INIT;
    e1.key = "k"; e2.key = ""; e2.value = -1;
    Conformance__V1__All__MStringInt32Entry * es[] = {&e1, &e2}; m.n_m_string_int32 = 2;
    m.m_string_int32 = es)

ENCODES(map_int_keys,
        "{'mInt32String':{'-7':'a'},'mInt64Int32':{'-9223372036854775808':1},"
        "'mUint32Bool':{'4294967295':false},'mSint32Bytes':{'-1':'Zg=='}}",
        Conformance__V1__All__MInt32StringEntry a = CONFORMANCE__V1__ALL__MINT32_STRING_ENTRY__INIT;
        a.key = -7; a.value = "a"; Conformance__V1__All__MInt32StringEntry * as[] = {&a};
        m.n_m_int32_string = 1; m.m_int32_string = as;
        Conformance__V1__All__MInt64Int32Entry b = CONFORMANCE__V1__ALL__MINT64_INT32_ENTRY__INIT;
        b.key = INT64_MIN; b.value = 1; Conformance__V1__All__MInt64Int32Entry * bs[] = {&b};
        m.n_m_int64_int32 = 1; m.m_int64_int32 = bs;
        Conformance__V1__All__MUint32BoolEntry c = CONFORMANCE__V1__ALL__MUINT32_BOOL_ENTRY__INIT;
        c.key = UINT32_MAX; Conformance__V1__All__MUint32BoolEntry * cs[] = {&c};
        m.n_m_uint32_bool = 1; m.m_uint32_bool = cs;
        Conformance__V1__All__MSint32BytesEntry d = CONFORMANCE__V1__ALL__MSINT32_BYTES_ENTRY__INIT;
        d.key = -1; d.value = bin("f", 1); Conformance__V1__All__MSint32BytesEntry * ds[] = {&d};
        m.n_m_sint32_bytes = 1; m.m_sint32_bytes = ds)

ENCODES(map_bool_keys, "{'mBoolString':{'true':'t','false':''}}",
        Conformance__V1__All__MBoolStringEntry a = CONFORMANCE__V1__ALL__MBOOL_STRING_ENTRY__INIT;
        Conformance__V1__All__MBoolStringEntry b = CONFORMANCE__V1__ALL__MBOOL_STRING_ENTRY__INIT;
        a.key = 1; a.value = "t"; b.key = 0; b.value = "";
        Conformance__V1__All__MBoolStringEntry * es[] = {&a, &b}; m.n_m_bool_string = 2;
        m.m_bool_string = es)

ENCODES(map_uint64_message_and_enum,
        "{'mUint64Nested':{'18446744073709551615':{'a':1}},'mStringColor':{'x':'COLOR_RED'}}",
        Nested n = CONFORMANCE__V1__NESTED__INIT;
        n.a = 1; Conformance__V1__All__MUint64NestedEntry a =
                     CONFORMANCE__V1__ALL__MUINT64_NESTED_ENTRY__INIT;
        a.key = UINT64_MAX; a.value = &n; Conformance__V1__All__MUint64NestedEntry * as[] = {&a};
        m.n_m_uint64_nested = 1; m.m_uint64_nested = as;
        Conformance__V1__All__MStringColorEntry b = CONFORMANCE__V1__ALL__MSTRING_COLOR_ENTRY__INIT;
        b.key = "x"; b.value = CONFORMANCE__V1__COLOR__COLOR_RED;
        Conformance__V1__All__MStringColorEntry * bs[] = {&b}; m.n_m_string_color = 1;
        m.m_string_color = bs)

/* A set oneof member is written even at its default value. */
ENCODES(oneof_string_default, "{'oString':''}",
        m.choice_case = CONFORMANCE__V1__ALL__CHOICE_O_STRING;
        m.o_string = "")
ENCODES(oneof_int64_default, "{'oInt64':'0'}", m.choice_case = CONFORMANCE__V1__ALL__CHOICE_O_INT64;
        m.o_int64 = 0)
ENCODES(oneof_message, "{'oNested':{}}", Nested n = CONFORMANCE__V1__NESTED__INIT;
        m.choice_case = CONFORMANCE__V1__ALL__CHOICE_O_NESTED; m.o_nested = &n)

/* ---- encode: well-known types ---- */

#define TS(sec, ns)                                                                                \
  Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;                               \
  t.seconds = (sec);                                                                               \
  t.nanos = (ns);                                                                                  \
  m.ts = &t
#define DUR(sec, ns)                                                                               \
  Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;                                 \
  d.seconds = (sec);                                                                               \
  d.nanos = (ns);                                                                                  \
  m.dur = &d

ENCODES(timestamp_epoch, "{'ts':'1970-01-01T00:00:00Z'}", TS(0, 0))
ENCODES(timestamp_millis, "{'ts':'2024-02-29T12:34:56.100Z'}", TS(1709210096, 100000000))
ENCODES(timestamp_micros, "{'ts':'2024-02-29T12:34:56.123456Z'}", TS(1709210096, 123456000))
ENCODES(timestamp_nanos, "{'ts':'2024-02-29T12:34:56.000000001Z'}", TS(1709210096, 1))
ENCODES(timestamp_before_epoch, "{'ts':'1969-12-31T23:59:59.500Z'}", TS(-1, 500000000))
ENCODES(timestamp_min, "{'ts':'0001-01-01T00:00:00Z'}", TS(-62135596800LL, 0))
ENCODES(timestamp_max, "{'ts':'9999-12-31T23:59:59.999999999Z'}", TS(253402300799LL, 999999999))
ENCODE_FAILS(timestamp_year_10000, TS(253402300800LL, 0))
ENCODE_FAILS(timestamp_year_0, TS(-62135596801LL, 0))
ENCODE_FAILS(timestamp_negative_nanos, TS(0, -1))

ENCODES(duration_zero, "{'dur':'0s'}", DUR(0, 0))
ENCODES(duration_fraction, "{'dur':'1.500s'}", DUR(1, 500000000))
ENCODES(duration_negative_fraction, "{'dur':'-0.500s'}", DUR(0, -500000000))
ENCODES(duration_negative, "{'dur':'-3.000001s'}", DUR(-3, -1000))
ENCODES(duration_nanos, "{'dur':'0.000000001s'}", DUR(0, 1))
ENCODES(duration_max, "{'dur':'315576000000.999999999s'}", DUR(315576000000LL, 999999999))
ENCODE_FAILS(duration_too_long, DUR(315576000001LL, 0))
ENCODE_FAILS(duration_mixed_signs, DUR(1, -1))

ENCODES(field_mask, "{'mask':'fooBar,a.bC,snakeCaseName'}",
        Google__Protobuf__FieldMask f = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
        char *p[] = {"foo_bar", "a.b_c", "snake_case_name"}; f.n_paths = 3; f.paths = p;
        m.mask = &f)
ENCODES(field_mask_empty, "{'mask':''}",
        Google__Protobuf__FieldMask f = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
        m.mask = &f)

/* REGRESSION (fixed): write_wkt() converts each path segment through fixed 256-byte buffers (seg,
 * jn) with snprintf, so a path segment longer than 255 bytes is silently truncated on output. */
TEST(enc_field_mask_long_path) {
  fresh();
  static char path[301], expect[340];
  memset(path, 'a', 300);
  path[300] = '\0';
  snprintf(expect, sizeof expect, "{'mask':'%s'}", path);
  All m = CONFORMANCE__V1__ALL__INIT;
  Google__Protobuf__FieldMask f = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  char *p[] = {path};
  f.n_paths = 1;
  f.paths = p;
  m.mask = &f;
  check_enc(&m, 0, expect, __FILE__, __LINE__);
}

/* Values of every kind, in a Struct, a ListValue and alone. */
static Google__Protobuf__Value vnull(void) {
  Google__Protobuf__Value v = GOOGLE__PROTOBUF__VALUE__INIT;
  v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
  v.null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
  return v;
}
static Google__Protobuf__Value vnum(double d) {
  Google__Protobuf__Value v = GOOGLE__PROTOBUF__VALUE__INIT;
  v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
  v.number_value = d;
  return v;
}
static Google__Protobuf__Value vstr(char *s) {
  Google__Protobuf__Value v = GOOGLE__PROTOBUF__VALUE__INIT;
  v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  v.string_value = s;
  return v;
}
static Google__Protobuf__Value vbool(int b) {
  Google__Protobuf__Value v = GOOGLE__PROTOBUF__VALUE__INIT;
  v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
  v.bool_value = b;
  return v;
}

ENCODES(
    struct_every_kind, "{'st':{'n':null,'x':0,'s':'','b':false,'o':{},'l':[]}}",
    Google__Protobuf__Value v[6] = {vnull(), vnum(0), vstr(""), vbool(0)};
    Google__Protobuf__Struct inner = GOOGLE__PROTOBUF__STRUCT__INIT;
    Google__Protobuf__ListValue lv = GOOGLE__PROTOBUF__LIST_VALUE__INIT;
    v[4] = (Google__Protobuf__Value)GOOGLE__PROTOBUF__VALUE__INIT;
    v[4].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE; v[4].struct_value = &inner;
    v[5] = (Google__Protobuf__Value)GOOGLE__PROTOBUF__VALUE__INIT;
    v[5].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE; v[5].list_value = &lv;
    static char *keys[] = {"n", "x", "s", "b", "o", "l"};
    Google__Protobuf__Struct__FieldsEntry e[6]; Google__Protobuf__Struct__FieldsEntry * ep[6];
    for (int i = 0; i < 6; i++) {
      e[i] = (Google__Protobuf__Struct__FieldsEntry)GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
      e[i].key = keys[i];
      e[i].value = &v[i];
      ep[i] = &e[i];
    } Google__Protobuf__Struct st = GOOGLE__PROTOBUF__STRUCT__INIT;
    st.n_fields = 6; st.fields = ep; m.st = &st)

ENCODES(list_value, "{'list':[1.5,'x',true,null]}",
        Google__Protobuf__Value v[4] = {vnum(1.5), vstr("x"), vbool(1), vnull()};
        Google__Protobuf__Value * vp[4] = {&v[0], &v[1], &v[2], &v[3]};
        Google__Protobuf__ListValue lv = GOOGLE__PROTOBUF__LIST_VALUE__INIT; lv.n_values = 4;
        lv.values = vp; m.list = &lv)
ENCODES(value_number, "{'val':-2.5}", Google__Protobuf__Value v = vnum(-2.5); m.val = &v)
ENCODES(value_null, "{'val':null}", Google__Protobuf__Value v = vnull(); m.val = &v)
ENCODES(value_unset_is_null, "{'val':null}",
        Google__Protobuf__Value v = GOOGLE__PROTOBUF__VALUE__INIT;
        m.val = &v)
ENCODES(empty_struct_and_list, "{'st':{},'list':[]}",
        Google__Protobuf__Struct st = GOOGLE__PROTOBUF__STRUCT__INIT;
        Google__Protobuf__ListValue lv = GOOGLE__PROTOBUF__LIST_VALUE__INIT; m.st = &st;
        m.list = &lv)
ENCODES(empty_message, "{'empty':{}}", Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
        m.empty = &e)

ENCODES(wrappers_at_default,
        "{'wInt32':0,'wInt64':'0','wUint32':0,'wUint64':'0','wFloat':0,'wDouble':0,"
        "'wBool':false,'wString':'','wBytes':''}",
        Google__Protobuf__Int32Value a = GOOGLE__PROTOBUF__INT32_VALUE__INIT;
        Google__Protobuf__Int64Value b = GOOGLE__PROTOBUF__INT64_VALUE__INIT;
        Google__Protobuf__UInt32Value c = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
        Google__Protobuf__UInt64Value d = GOOGLE__PROTOBUF__UINT64_VALUE__INIT;
        Google__Protobuf__FloatValue e = GOOGLE__PROTOBUF__FLOAT_VALUE__INIT;
        Google__Protobuf__DoubleValue f = GOOGLE__PROTOBUF__DOUBLE_VALUE__INIT;
        Google__Protobuf__BoolValue g = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
        Google__Protobuf__StringValue h = GOOGLE__PROTOBUF__STRING_VALUE__INIT;
        Google__Protobuf__BytesValue i = GOOGLE__PROTOBUF__BYTES_VALUE__INIT; m.w_int32 = &a;
        m.w_int64 = &b; m.w_uint32 = &c; m.w_uint64 = &d; m.w_float = &e; m.w_double = &f;
        m.w_bool = &g; m.w_string = &h; m.w_bytes = &i)

ENCODES(wrappers_with_values,
        "{'wInt64':'-5','wUint64':'18446744073709551615','wDouble':'NaN','wString':'s',"
        "'wBytes':'Zm8=','rWInt64':['1','0']}",
        Google__Protobuf__Int64Value b = GOOGLE__PROTOBUF__INT64_VALUE__INIT;
        b.value = -5; Google__Protobuf__UInt64Value d = GOOGLE__PROTOBUF__UINT64_VALUE__INIT;
        d.value = UINT64_MAX;
        Google__Protobuf__DoubleValue f = GOOGLE__PROTOBUF__DOUBLE_VALUE__INIT; f.value = NAN;
        Google__Protobuf__StringValue h = GOOGLE__PROTOBUF__STRING_VALUE__INIT; h.value = "s";
        Google__Protobuf__BytesValue i = GOOGLE__PROTOBUF__BYTES_VALUE__INIT;
        i.value = bin("fo", 2);
        Google__Protobuf__Int64Value r1 = GOOGLE__PROTOBUF__INT64_VALUE__INIT;
        Google__Protobuf__Int64Value r0 = GOOGLE__PROTOBUF__INT64_VALUE__INIT; r1.value = 1;
        Google__Protobuf__Int64Value * rw[] = {&r1, &r0}; m.w_int64 = &b; m.w_uint64 = &d;
        m.w_double = &f; m.w_string = &h; m.w_bytes = &i; m.n_r_w_int64 = 2; m.r_w_int64 = rw)

ENCODES(repeated_timestamps_and_values, "{'rTs':['1970-01-01T00:00:01Z'],'rVal':[null,'v']}",
        Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        t.seconds = 1; Google__Protobuf__Timestamp * tp[] = {&t}; m.n_r_ts = 1; m.r_ts = tp;
        Google__Protobuf__Value v[2] = {vnull(), vstr("v")};
        Google__Protobuf__Value * vp[] = {&v[0], &v[1]}; m.n_r_val = 2; m.r_val = vp)

TEST(enc_top_level_wkt) {
  /* A well-known type as the whole document is its special form, not an object. */
  Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
  d.seconds = 5;
  check_enc(&d, 0, "'5s'", __FILE__, __LINE__);
  Google__Protobuf__Int32Value w = GOOGLE__PROTOBUF__INT32_VALUE__INIT;
  w.value = 3;
  check_enc(&w, 0, "3", __FILE__, __LINE__);
}

/* ---- decode: accepted input, checked through the canonical re-encoding ---- */

static const struct {
  const char *in;  /* single-quoted JSON */
  unsigned flags;  /* sb_pbjson_flags */
  const char *out; /* the decoded message written back (single-quoted) */
} decode_ok[] = {
    /* Names: lowerCamelCase and the .proto name are both accepted. */
    {"{}", 0, "{}"},
    {" \t\n{ 'fInt32' : 1 }\r\n", 0, "{'fInt32':1}"},
    {"{'fInt32':1}", 0, "{'fInt32':1}"},
    {"{'f_int32':1}", 0, "{'fInt32':1}"},
    {"{'snake_case_name':3}", 0, "{'snakeCaseName':3}"},
    {"{'snakeCaseName':3}", 0, "{'snakeCaseName':3}"},
    {"{'field_2x':4}", 0, "{'field2x':4}"},
    {"{'field2x':4}", 0, "{'field2x':4}"},
    /* 64-bit integers: numbers or strings in, strings out. */
    {"{'fInt64':'-9223372036854775808'}", 0, "{'fInt64':'-9223372036854775808'}"},
    {"{'fInt64':-9223372036854775808}", 0, "{'fInt64':'-9223372036854775808'}"},
    {"{'fInt64':9223372036854775807}", 0, "{'fInt64':'9223372036854775807'}"},
    {"{'fUint64':18446744073709551615}", 0, "{'fUint64':'18446744073709551615'}"},
    {"{'fUint64':'18446744073709551615'}", 0, "{'fUint64':'18446744073709551615'}"},
    {"{'fSint64':-2,'fFixed64':'3','fSfixed64':-4}", 0,
     "{'fSint64':'-2','fFixed64':'3','fSfixed64':'-4'}"},
    /* 32-bit integers: strings accepted too; the range ends are inclusive. */
    {"{'fInt32':'-7'}", 0, "{'fInt32':-7}"},
    {"{'fInt32':2147483647,'fSint32':-2147483648}", 0,
     "{'fInt32':2147483647,'fSint32':-2147483648}"},
    {"{'fUint32':4294967295,'fFixed32':'0'}", 0, "{'fUint32':4294967295}"},
    {"{'fSfixed32':-1}", 0, "{'fSfixed32':-1}"},
    /* Integral floats for integers. */
    {"{'fInt32':1e2}", 0, "{'fInt32':100}"},
    {"{'fInt32':1.0}", 0, "{'fInt32':1}"},
    {"{'fInt32':-0}", 0, "{}"},
    {"{'fUint32':5E0}", 0, "{'fUint32':5}"},
    {"{'fInt64':'1e2'}", 0, "{'fInt64':'100'}"},
    {"{'fUint64':1.5e1}", 0, "{'fUint64':'15'}"},
    {"{'fInt32':12.50e1}", 0, "{'fInt32':125}"},
    /* Floating point: numbers, numeric strings and the three special strings. */
    {"{'fDouble':'NaN'}", 0, "{'fDouble':'NaN'}"},
    {"{'fDouble':'Infinity'}", 0, "{'fDouble':'Infinity'}"},
    {"{'fDouble':'-Infinity'}", 0, "{'fDouble':'-Infinity'}"},
    {"{'fFloat':'NaN'}", 0, "{'fFloat':'NaN'}"},
    {"{'fFloat':'-Infinity'}", 0, "{'fFloat':'-Infinity'}"},
    {"{'fDouble':'1.5'}", 0, "{'fDouble':1.5}"},
    {"{'fDouble':1e308}", 0, "{'fDouble':1e+308}"},
    {"{'fDouble':-2.5e-3}", 0, "{'fDouble':-0.0025}"},
    {"{'fDouble':0}", 0, "{}"},
    {"{'fFloat':-0.5}", 0, "{'fFloat':-0.5}"},
    {"{'fFloat':3.4028234663852886e38}", 0, "{'fFloat':3.4028235e+38}"},
    {"{'fFloat':-3.4028234663852886e38}", 0, "{'fFloat':-3.4028235e+38}"},
    /* Booleans, strings (escapes decoded, UTF-8 kept), bytes in every base64 dialect. */
    {"{'fBool':true}", 0, "{'fBool':true}"},
    {"{'fBool':false}", 0, "{}"},
    {"{'fString':'a\\u00e9\\ud83d\\ude00\\n'}", 0, "{'fString':'a\xc3\xa9\xf0\x9f\x98\x80\\n'}"},
    {"{'fString':''}", 0, "{}"},
    {"{'fBytes':'Zm9v'}", 0, "{'fBytes':'Zm9v'}"},
    {"{'fBytes':'Zg=='}", 0, "{'fBytes':'Zg=='}"},
    {"{'fBytes':'Zg'}", 0, "{'fBytes':'Zg=='}"},
    {"{'fBytes':'Zm8'}", 0, "{'fBytes':'Zm8='}"},
    {"{'fBytes':'-_8A'}", 0, "{'fBytes':'+/8A'}"},
    {"{'fBytes':'+/8A'}", 0, "{'fBytes':'+/8A'}"},
    {"{'fBytes':'-_8'}", 0, "{'fBytes':'+/8='}"},
    {"{'fBytes':''}", 0, "{}"},
    /* Enums: names, known and unknown numbers. */
    {"{'color':'COLOR_RED'}", 0, "{'color':'COLOR_RED'}"},
    {"{'color':2}", 0, "{'color':'COLOR_GREEN'}"},
    {"{'color':-3}", 0, "{'color':'COLOR_BLUE'}"},
    {"{'color':99}", 0, "{'color':99}"},
    {"{'color':'COLOR_UNSPECIFIED'}", 0, "{}"},
    {"{'color':0}", 0, "{}"},
    /* null means absent, for every kind of field but Value. */
    {"{'fInt32':null,'fString':null,'fBytes':null,'color':null}", 0, "{}"},
    {"{'nested':null,'rInt32':null,'mStringInt32':null,'oNested':null}", 0, "{}"},
    {"{'ts':null,'dur':null,'mask':null,'st':null,'list':null,'empty':null,'wInt32':null}", 0,
     "{}"},
    {"{'val':null}", 0, "{'val':null}"},
    /* Repeated. */
    {"{'rInt32':[1,2,3]}", 0, "{'rInt32':[1,2,3]}"},
    {"{'rInt32':[]}", 0, "{}"},
    {"{'rInt64':[1,'2',-3e0]}", 0, "{'rInt64':['1','2','-3']}"},
    {"{'rDouble':['NaN',1.5,'-Infinity']}", 0, "{'rDouble':['NaN',1.5,'-Infinity']}"},
    {"{'rBool':[true,false]}", 0, "{'rBool':[true,false]}"},
    {"{'rString':['a','']}", 0, "{'rString':['a','']}"},
    {"{'rBytes':['Zg','']}", 0, "{'rBytes':['Zg==','']}"},
    {"{'rColor':['COLOR_RED',2,0]}", 0,
     "{'rColor':['COLOR_RED','COLOR_GREEN','COLOR_UNSPECIFIED']}"},
    {"{'r_nested':[{},{'a':1}]}", 0, "{'rNested':[{},{'a':1}]}"},
    /* Nested messages, with both name forms inside. */
    {"{'nested':{'a':1,'child':{'child':{'name':'deep','values':[7]}}}}", 0,
     "{'nested':{'a':1,'child':{'child':{'name':'deep','values':[7]}}}}"},
    {"{'nested':{}}", 0, "{'nested':{}}"},
    /* Maps with every key type; values at their default are still entries. */
    {"{'mStringInt32':{'k':1,'':0}}", 0, "{'mStringInt32':{'k':1,'':0}}"},
    {"{'mStringInt32':{}}", 0, "{}"},
    {"{'mInt32String':{'-1':'a','2':''}}", 0, "{'mInt32String':{'-1':'a','2':''}}"},
    {"{'mBoolString':{'true':'t','false':'f'}}", 0, "{'mBoolString':{'true':'t','false':'f'}}"},
    {"{'mUint64Nested':{'18446744073709551615':{'a':1},'0':{}}}", 0,
     "{'mUint64Nested':{'18446744073709551615':{'a':1},'0':{}}}"},
    {"{'mStringColor':{'x':'COLOR_GREEN','y':1,'z':0}}", 0,
     "{'mStringColor':{'x':'COLOR_GREEN','y':'COLOR_RED','z':'COLOR_UNSPECIFIED'}}"},
    {"{'mInt64Int32':{'-9223372036854775808':1}}", 0, "{'mInt64Int32':{'-9223372036854775808':1}}"},
    {"{'mUint32Bool':{'4294967295':true,'0':false}}", 0,
     "{'mUint32Bool':{'4294967295':true,'0':false}}"},
    {"{'mSint32Bytes':{'-5':'Zg'}}", 0, "{'mSint32Bytes':{'-5':'Zg=='}}"},
    /* Oneof: one member, default values written; a null member does not count. */
    {"{'oString':'x'}", 0, "{'oString':'x'}"},
    {"{'o_string':''}", 0, "{'oString':''}"},
    {"{'oInt64':'5'}", 0, "{'oInt64':'5'}"},
    {"{'oInt64':0}", 0, "{'oInt64':'0'}"},
    {"{'oNested':{}}", 0, "{'oNested':{}}"},
    {"{'oString':null,'oInt64':1}", 0, "{'oInt64':'1'}"},
    {"{'oInt64':1,'oString':null}", 0, "{'oInt64':'1'}"},
    /* Unknown fields skipped on request, whatever their value. */
    {"{'bogus':{'x':[1,{'y':null}]},'fInt32':1,'zz':'s'}", SB_PBJSON_IGNORE_UNKNOWN,
     "{'fInt32':1}"},
    {"{'nested':{'zz':1,'a':2}}", SB_PBJSON_IGNORE_UNKNOWN, "{'nested':{'a':2}}"},
    {"{'empty':{'x':1}}", SB_PBJSON_IGNORE_UNKNOWN, "{'empty':{}}"},
    /* Timestamp: 0 to 9 fractional digits in, 0/3/6/9 out; offsets normalised to Z. */
    {"{'ts':'1970-01-01T00:00:00Z'}", 0, "{'ts':'1970-01-01T00:00:00Z'}"},
    {"{'ts':'2024-02-29T12:34:56.1Z'}", 0, "{'ts':'2024-02-29T12:34:56.100Z'}"},
    {"{'ts':'2024-02-29T12:34:56.123Z'}", 0, "{'ts':'2024-02-29T12:34:56.123Z'}"},
    {"{'ts':'2024-02-29T12:34:56.123456Z'}", 0, "{'ts':'2024-02-29T12:34:56.123456Z'}"},
    {"{'ts':'2024-02-29T12:34:56.123456789Z'}", 0, "{'ts':'2024-02-29T12:34:56.123456789Z'}"},
    {"{'ts':'2024-02-29T12:34:56.12345678Z'}", 0, "{'ts':'2024-02-29T12:34:56.123456780Z'}"},
    {"{'ts':'2024-02-29T12:34:56.000Z'}", 0, "{'ts':'2024-02-29T12:34:56Z'}"},
    {"{'ts':'1970-01-01T01:00:00+01:00'}", 0, "{'ts':'1970-01-01T00:00:00Z'}"},
    {"{'ts':'1969-12-31T18:30:00.5-05:30'}", 0, "{'ts':'1970-01-01T00:00:00.500Z'}"},
    {"{'ts':'2000-01-01t00:00:00z'}", 0, "{'ts':'2000-01-01T00:00:00Z'}"},
    {"{'ts':'0001-01-01T00:00:00Z'}", 0, "{'ts':'0001-01-01T00:00:00Z'}"},
    {"{'ts':'9999-12-31T23:59:59.999999999Z'}", 0, "{'ts':'9999-12-31T23:59:59.999999999Z'}"},
    {"{'ts':'2000-02-29T00:00:00Z'}", 0, "{'ts':'2000-02-29T00:00:00Z'}"},
    /* Duration. */
    {"{'dur':'1.5s'}", 0, "{'dur':'1.500s'}"},
    {"{'dur':'-0.5s'}", 0, "{'dur':'-0.500s'}"},
    {"{'dur':'0s'}", 0, "{'dur':'0s'}"},
    {"{'dur':'-0s'}", 0, "{'dur':'0s'}"},
    {"{'dur':'3s'}", 0, "{'dur':'3s'}"},
    {"{'dur':'1.000000001s'}", 0, "{'dur':'1.000000001s'}"},
    {"{'dur':'-1.01s'}", 0, "{'dur':'-1.010s'}"},
    {"{'dur':'315576000000s'}", 0, "{'dur':'315576000000s'}"},
    {"{'dur':'-315576000000.999999999s'}", 0, "{'dur':'-315576000000.999999999s'}"},
    /* FieldMask: lowerCamel in JSON, snake_case inside. */
    {"{'mask':'fooBar,a.bC'}", 0, "{'mask':'fooBar,a.bC'}"},
    {"{'mask':''}", 0, "{'mask':''}"},
    /* Struct / Value / ListValue hold any JSON. */
    {"{'st':{}}", 0, "{'st':{}}"},
    {"{'st':{'a':null,'b':1.5,'c':'s','d':true,'e':{'f':[]},'g':[1,'x',null,{}]}}", 0,
     "{'st':{'a':null,'b':1.5,'c':'s','d':true,'e':{'f':[]},'g':[1,'x',null,{}]}}"},
    {"{'val':1}", 0, "{'val':1}"},
    {"{'val':'s'}", 0, "{'val':'s'}"},
    {"{'val':'NaN'}", 0, "{'val':'NaN'}"},
    {"{'val':false}", 0, "{'val':false}"},
    {"{'val':{'k':[]}}", 0, "{'val':{'k':[]}}"},
    {"{'val':[[],[null]]}", 0, "{'val':[[],[null]]}"},
    {"{'list':[1,null,'a',[],{}]}", 0, "{'list':[1,null,'a',[],{}]}"},
    {"{'list':[]}", 0, "{'list':[]}"},
    {"{'rVal':[null,1]}", 0, "{'rVal':[null,1]}"},
    {"{'mVal':{'a':null,'b':{}}}", 0, "{'mVal':{'a':null,'b':{}}}"},
    {"{'empty':{}}", 0, "{'empty':{}}"},
    /* Wrappers: bare values, written even at the default. */
    {"{'wInt32':0}", 0, "{'wInt32':0}"},
    {"{'wInt32':'-3'}", 0, "{'wInt32':-3}"},
    {"{'wInt64':5}", 0, "{'wInt64':'5'}"},
    {"{'wInt64':'-5'}", 0, "{'wInt64':'-5'}"},
    {"{'wUint32':4294967295}", 0, "{'wUint32':4294967295}"},
    {"{'wUint64':'18446744073709551615'}", 0, "{'wUint64':'18446744073709551615'}"},
    {"{'wFloat':'NaN'}", 0, "{'wFloat':'NaN'}"},
    {"{'wDouble':1.5}", 0, "{'wDouble':1.5}"},
    {"{'wBool':false}", 0, "{'wBool':false}"},
    {"{'wString':''}", 0, "{'wString':''}"},
    {"{'wBytes':'Zg'}", 0, "{'wBytes':'Zg=='}"},
    {"{'rWInt64':[1,'2']}", 0, "{'rWInt64':['1','2']}"},
    /* Any: the packed message's members beside "@type" (which may come anywhere); a packed
     * well-known type under "value"; an empty Any is {}. */
    {"{'any':{'@type':'type.googleapis.com/conformance.v1.Nested','a':1,'name':'n'}}", 0,
     "{'any':{'@type':'type.googleapis.com/conformance.v1.Nested','a':1,'name':'n'}}"},
    {"{'any':{'name':'n','@type':'type.googleapis.com/conformance.v1.Nested'}}", 0,
     "{'any':{'@type':'type.googleapis.com/conformance.v1.Nested','name':'n'}}"},
    {"{'any':{'@type':'x.com/conformance.v1.Nested','child':{'a':2}}}", 0,
     "{'any':{'@type':'x.com/conformance.v1.Nested','child':{'a':2}}}"},
    {"{'any':{'@type':'type.googleapis.com/google.protobuf.Duration','value':'1.5s'}}", 0,
     "{'any':{'@type':'type.googleapis.com/google.protobuf.Duration','value':'1.500s'}}"},
    {"{'any':{'value':{'k':[1]},'@type':'type.googleapis.com/google.protobuf.Struct'}}", 0,
     "{'any':{'@type':'type.googleapis.com/google.protobuf.Struct','value':{'k':[1]}}}"},
    {"{'any':{}}", 0, "{'any':{}}"},
    {"{'rAny':[{'@type':'t/conformance.v1.Nested','a':1},{}]}", 0,
     "{'rAny':[{'@type':'t/conformance.v1.Nested','a':1},{}]}"},
    {"{'any':{'@type':'t/conformance.v1.Nested','zz':1}}", SB_PBJSON_IGNORE_UNKNOWN,
     "{'any':{'@type':'t/conformance.v1.Nested'}}"},
};

TEST(decode_ok_table) {
  for (size_t i = 0; i < sizeof decode_ok / sizeof decode_ok[0]; i++) {
    fresh();
    All m;
    sb_pbjson_err_t err;
    const char *in = q(decode_ok[i].in);
    int rc = dec(in, decode_ok[i].flags, &m, &err);
    if (rc != 0) {
      sb_test_record(0, __FILE__, __LINE__, "decode_ok[%zu] %s: rc %d, path \"%s\", %s", i, in, rc,
                     err.path, err.msg ? err.msg : "(no msg)");
      continue;
    }
    int wrc;
    const char *got = enc(&m, 0, &wrc);
    if (wrc != 0 || strcmp(got, q(decode_ok[i].out)) != 0)
      sb_test_record(0, __FILE__, __LINE__, "decode_ok[%zu] %s: wrote %s (rc %d), expected %s", i,
                     in, got, wrc, q(decode_ok[i].out));
  }
}

/* ---- decode: the C fields themselves ---- */

TEST(decode_fields_scalars) {
  fresh();
  All m;
  sb_pbjson_err_t err;
  REQUIRE(dec(q("{'fInt64':'-9223372036854775808','fUint64':18446744073709551615,"
                "'fFloat':'Infinity','fDouble':-0.0,'fBytes':'-_8','fString':'\\u00e9',"
                "'color':-3,'snake_case_name':5,'field2x':6}"),
              0, &m, &err) == 0);
  CHECK(m.f_int64 == INT64_MIN);
  CHECK(m.f_uint64 == UINT64_MAX);
  CHECK(isinf(m.f_float) && m.f_float > 0);
  CHECK(m.f_double == 0 && signbit(m.f_double));
  CHECK_EQ_INT(m.f_bytes.len, 2);
  CHECK_MEM(m.f_bytes.data, "\xfb\xff", 2);
  CHECK_EQ_STR(m.f_string, "\xc3\xa9");
  CHECK_EQ_INT(m.color, CONFORMANCE__V1__COLOR__COLOR_BLUE);
  CHECK_EQ_INT(m.snake_case_name, 5);
  CHECK_EQ_INT(m.field_2x, 6);
  CHECK(err.msg == NULL);
}

TEST(decode_fields_containers) {
  fresh();
  All m;
  sb_pbjson_err_t err;
  REQUIRE(dec(q("{'rInt64':[1,'2'],'mBoolString':{'true':'t'},'mUint64Nested':{'7':{'a':1}},"
                "'oNested':{'name':'n'},'nested':{'child':{}},'rNested':[{'values':[1,2]}]}"),
              0, &m, &err) == 0);
  REQUIRE(m.n_r_int64 == 2);
  CHECK(m.r_int64[0] == 1 && m.r_int64[1] == 2);
  REQUIRE(m.n_m_bool_string == 1);
  CHECK(m.m_bool_string[0]->key == 1);
  CHECK_EQ_STR(m.m_bool_string[0]->value, "t");
  REQUIRE(m.n_m_uint64_nested == 1);
  CHECK(m.m_uint64_nested[0]->key == 7);
  REQUIRE(m.m_uint64_nested[0]->value != NULL);
  CHECK_EQ_INT(m.m_uint64_nested[0]->value->a, 1);
  CHECK_EQ_INT(m.choice_case, CONFORMANCE__V1__ALL__CHOICE_O_NESTED);
  REQUIRE(m.o_nested != NULL);
  CHECK_EQ_STR(m.o_nested->name, "n");
  REQUIRE(m.nested != NULL);
  CHECK(m.nested->child != NULL && m.nested->child->child == NULL);
  REQUIRE(m.n_r_nested == 1);
  CHECK_EQ_INT(m.r_nested[0]->n_values, 2);
}

TEST(decode_fields_wkt) {
  fresh();
  All m;
  sb_pbjson_err_t err;
  REQUIRE(dec(q("{'ts':'1969-12-31T23:59:59.999Z','dur':'-1.5s','mask':'fooBar,x.yZ',"
                "'st':{'k':[true]},'val':'s','wUint64':'9','wBytes':'','empty':{}}"),
              0, &m, &err) == 0);
  REQUIRE(m.ts && m.dur && m.mask && m.st && m.val && m.w_uint64 && m.w_bytes && m.empty);
  CHECK_EQ_INT(m.ts->seconds, -1);
  CHECK_EQ_INT(m.ts->nanos, 999000000);
  CHECK_EQ_INT(m.dur->seconds, -1);
  CHECK_EQ_INT(m.dur->nanos, -500000000);
  REQUIRE(m.mask->n_paths == 2);
  CHECK_EQ_STR(m.mask->paths[0], "foo_bar");
  CHECK_EQ_STR(m.mask->paths[1], "x.y_z");
  REQUIRE(m.st->n_fields == 1);
  CHECK_EQ_STR(m.st->fields[0]->key, "k");
  const Google__Protobuf__Value *v = m.st->fields[0]->value;
  REQUIRE(v != NULL && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
  REQUIRE(v->list_value->n_values == 1);
  CHECK_EQ_INT(v->list_value->values[0]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
  CHECK(v->list_value->values[0]->bool_value);
  CHECK_EQ_INT(m.val->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
  CHECK_EQ_STR(m.val->string_value, "s");
  CHECK(m.w_uint64->value == 9);
  CHECK_EQ_INT(m.w_bytes->value.len, 0);
}

TEST(decode_top_level_wkt) {
  fresh();
  sb_pbjson_err_t err;
  Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  CHECK_EQ_INT(sb_pbjson_decode(q("'1970-01-02T00:00:00Z'"), 22, &t.base, &alloc, 0, &err), 0);
  CHECK_EQ_INT(t.seconds, 86400);
  Google__Protobuf__BoolValue b = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
  CHECK_EQ_INT(sb_pbjson_decode("true", 4, &b.base, &alloc, 0, &err), 0);
  CHECK(b.value);
  Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
  CHECK_EQ_INT(sb_pbjson_decode("[]", 2, &e.base, &alloc, 0, &err), SB_EINVAL);
}

/* ---- decode: rejected input ---- */

static const struct {
  const char *in;   /* single-quoted JSON ("\\'" never needed) */
  unsigned flags;   /* sb_pbjson_flags */
  const char *path; /* expected err.path (single-quoted) */
} decode_bad[] = {
    /* Not one JSON object. */
    {"", 0, ""},
    {"[]", 0, ""},
    {"1", 0, ""},
    {"null", 0, ""},
    {"{", 0, ""},
    {"{} {}", 0, ""},
    {"{'fInt32':1,}", 0, ""},
    /* Integers: non-integral, out of range, wrong types. */
    {"{'fInt32':1.5}", 0, "fInt32"},
    {"{'fInt32':'1.5'}", 0, "fInt32"},
    {"{'fInt32':1e-1}", 0, "fInt32"},
    {"{'fInt32':2147483648}", 0, "fInt32"},
    {"{'fInt32':-2147483649}", 0, "fInt32"},
    {"{'fSint32':1e10}", 0, "fSint32"},
    {"{'fUint32':-1}", 0, "fUint32"},
    {"{'fUint32':4294967296}", 0, "fUint32"},
    {"{'fFixed32':'-1'}", 0, "fFixed32"},
    {"{'fInt64':'9223372036854775808'}", 0, "fInt64"},
    {"{'fInt64':-9223372036854775809}", 0, "fInt64"},
    {"{'fInt64':1e19}", 0, "fInt64"},
    {"{'fUint64':'-1'}", 0, "fUint64"},
    {"{'fUint64':18446744073709551616}", 0, "fUint64"},
    {"{'fInt32':'abc'}", 0, "fInt32"},
    {"{'fInt32':' 1'}", 0, "fInt32"},
    {"{'fInt32':'0x10'}", 0, "fInt32"},
    {"{'fInt32':'01'}", 0, "fInt32"},
    {"{'fInt32':true}", 0, "fInt32"},
    {"{'fInt32':[1]}", 0, "fInt32"},
    {"{'fInt64':{}}", 0, "fInt64"},
    /* Floating point. */
    {"{'fFloat':3.5e38}", 0, "fFloat"},
    {"{'fFloat':-1e39}", 0, "fFloat"},
    {"{'fDouble':1e400}", 0, "fDouble"},
    {"{'fDouble':'nan'}", 0, "fDouble"},
    {"{'fDouble':'inf'}", 0, "fDouble"},
    {"{'fDouble':'-NaN'}", 0, "fDouble"},
    {"{'fFloat':'Infinityx'}", 0, "fFloat"},
    {"{'fDouble':true}", 0, "fDouble"},
    {"{'fDouble':NaN}", 0, "fDouble"},
    /* Booleans, strings, UTF-8. */
    {"{'fBool':'true'}", 0, "fBool"},
    {"{'fBool':1}", 0, "fBool"},
    {"{'fString':1}", 0, "fString"},
    {"{'fString':['a']}", 0, "fString"},
    {"{'fString':'\xff'}", 0, "fString"},
    {"{'fString':'\xc0\xaf'}", 0, "fString"},
    {"{'fString':'\xed\xa0\x80'}", 0, "fString"},
    {"{'fString':'\\ud800'}", 0, "fString"},
    {"{'fString':'\\udc00x'}", 0, "fString"},
    {"{'fString':'\\ud800\\u0041'}", 0, "fString"},
    {"{'\xff':1}", 0, ""},
    /* Bytes. */
    {"{'fBytes':'Z'}", 0, "fBytes"},
    {"{'fBytes':'Zm9v!'}", 0, "fBytes"},
    {"{'fBytes':'Zg=a'}", 0, "fBytes"},
    {"{'fBytes':'Zm 9v'}", 0, "fBytes"},
    {"{'fBytes':1}", 0, "fBytes"},
    /* Enums. */
    {"{'color':'COLOR_PURPLE'}", 0, "color"},
    {"{'color':'color_red'}", 0, "color"},
    {"{'color':''}", 0, "color"},
    {"{'color':1.5}", 0, "color"},
    {"{'color':2147483648}", 0, "color"},
    {"{'color':true}", 0, "color"},
    {"{'rColor':['COLOR_RED','NOPE']}", 0, "rColor[1]"},
    {"{'mStringColor':{'k':'NOPE'}}", 0, "mStringColor['k']"},
    /* Messages and containers of the wrong shape. */
    {"{'nested':1}", 0, "nested"},
    {"{'nested':[]}", 0, "nested"},
    {"{'nested':'x'}", 0, "nested"},
    {"{'rInt32':1}", 0, "rInt32"},
    {"{'rInt32':{}}", 0, "rInt32"},
    {"{'rInt32':[1,null]}", 0, "rInt32[1]"},
    {"{'rNested':[null]}", 0, "rNested[0]"},
    {"{'mStringInt32':[]}", 0, "mStringInt32"},
    {"{'mStringInt32':{'k':null}}", 0, "mStringInt32['k']"},
    /* Error paths through nesting. */
    {"{'nested':{'values':[1,2,'x']}}", 0, "nested.values[2]"},
    {"{'nested':{'child':{'a':'x'}}}", 0, "nested.child.a"},
    {"{'mStringInt32':{'k':'x'}}", 0, "mStringInt32['k']"},
    {"{'m_string_int32':{'ok':1,'k':1.5}}", 0, "m_string_int32['k']"},
    {"{'rNested':[{},{'bogus':1}]}", 0, "rNested[1].bogus"},
    {"{'mUint64Nested':{'1':{'a':true}}}", 0, "mUint64Nested['1'].a"},
    {"{'st':{'a':{'b':[1,1e999]}}}", 0, "st['a']['b'][1]"},
    /* Map keys. */
    {"{'mInt32String':{'x':'a'}}", 0, "mInt32String['x']"},
    {"{'mInt32String':{'2147483648':'a'}}", 0, "mInt32String['2147483648']"},
    {"{'mInt32String':{'1.5':'a'}}", 0, "mInt32String['1.5']"},
    {"{'mInt32String':{'':'a'}}", 0, "mInt32String['']"},
    {"{'mBoolString':{'True':'a'}}", 0, "mBoolString['True']"},
    {"{'mBoolString':{'1':'a'}}", 0, "mBoolString['1']"},
    {"{'mUint64Nested':{'-1':{}}}", 0, "mUint64Nested['-1']"},
    {"{'mUint32Bool':{'4294967296':true}}", 0, "mUint32Bool['4294967296']"},
    {"{'mUint32Bool':{'1':1}}", 0, "mUint32Bool['1']"},
    /* Oneof: two members. */
    {"{'oString':'a','oInt64':1}", 0, "oInt64"},
    {"{'oNested':{},'o_string':'x'}", 0, "o_string"},
    /* Duplicates, also under the other name. */
    {"{'fInt32':1,'fInt32':2}", 0, "fInt32"},
    {"{'fInt32':1,'f_int32':1}", 0, "f_int32"},
    {"{'snakeCaseName':1,'snake_case_name':1}", 0, "snake_case_name"},
    {"{'fInt32':null,'fInt32':1}", 0, "fInt32"},
    {"{'rInt32':[1],'r_int32':[2]}", 0, "r_int32"},
    {"{'nested':{'a':1,'a':1}}", 0, "nested.a"},
    {"{'oString':'a','oString':'a'}", 0, "oString"},
    /* Unknown fields. */
    {"{'bogus':1}", 0, "bogus"},
    {"{'fint32':1}", 0, "fint32"},
    {"{'FInt32':1}", 0, "FInt32"},
    {"{'f-int32':1}", 0, "f-int32"},
    {"{'nested':{'zz':1}}", 0, "nested.zz"},
    {"{'empty':{'x':1}}", 0, "empty"},
    {"{'bogus':[}", SB_PBJSON_IGNORE_UNKNOWN, "bogus"},
    /* Timestamp. */
    {"{'ts':'1970-01-01T00:00:00'}", 0, "ts"},
    {"{'ts':'1970-01-01 00:00:00Z'}", 0, "ts"},
    {"{'ts':'0000-12-31T00:00:00Z'}", 0, "ts"},
    {"{'ts':'10000-01-01T00:00:00Z'}", 0, "ts"},
    {"{'ts':'-0001-01-01T00:00:00Z'}", 0, "ts"},
    {"{'ts':'1970-13-01T00:00:00Z'}", 0, "ts"},
    {"{'ts':'1970-00-01T00:00:00Z'}", 0, "ts"},
    {"{'ts':'1970-02-30T00:00:00Z'}", 0, "ts"},
    {"{'ts':'2023-02-29T00:00:00Z'}", 0, "ts"},
    {"{'ts':'1900-02-29T00:00:00Z'}", 0, "ts"},
    {"{'ts':'1970-01-01T24:00:00Z'}", 0, "ts"},
    {"{'ts':'1970-01-01T00:60:00Z'}", 0, "ts"},
    {"{'ts':'1970-01-01T00:00:60Z'}", 0, "ts"},
    {"{'ts':'1970-01-01T00:00:00.Z'}", 0, "ts"},
    {"{'ts':'1970-01-01T00:00:00.1234567890Z'}", 0, "ts"},
    {"{'ts':'1970-01-01T00:00:00+0100'}", 0, "ts"},
    {"{'ts':'1970-01-01T00:00:00+24:00'}", 0, "ts"},
    {"{'ts':'1970-01-01T00:00:00Zx'}", 0, "ts"},
    {"{'ts':'0001-01-01T00:00:00+00:01'}", 0, "ts"},
    {"{'ts':'9999-12-31T23:59:59-00:01'}", 0, "ts"},
    {"{'ts':0}", 0, "ts"},
    {"{'ts':{'seconds':1}}", 0, "ts"},
    {"{'rTs':['1970-01-01T00:00:00Z','x']}", 0, "rTs[1]"},
    /* Duration. */
    {"{'dur':'1.5'}", 0, "dur"},
    {"{'dur':'s'}", 0, "dur"},
    {"{'dur':'-s'}", 0, "dur"},
    {"{'dur':'1.5ss'}", 0, "dur"},
    {"{'dur':'+1s'}", 0, "dur"},
    {"{'dur':'--1s'}", 0, "dur"},
    {"{'dur':' 1s'}", 0, "dur"},
    {"{'dur':'1.s'}", 0, "dur"},
    {"{'dur':'1e3s'}", 0, "dur"},
    {"{'dur':'1.0000000001s'}", 0, "dur"},
    {"{'dur':'315576000001s'}", 0, "dur"},
    {"{'dur':'-315576000001s'}", 0, "dur"},
    {"{'dur':'9999999999999s'}", 0, "dur"},
    {"{'dur':1.5}", 0, "dur"},
    /* FieldMask. */
    {"{'mask':'foo_bar'}", 0, "mask"},
    {"{'mask':['a']}", 0, "mask"},
    /* Struct, Value, ListValue, Empty. */
    {"{'st':[]}", 0, "st"},
    {"{'st':1}", 0, "st"},
    {"{'val':1e400}", 0, "val"},
    {"{'list':{}}", 0, "list"},
    {"{'list':null,'list':[]}", 0, "list"},
    {"{'empty':[]}", 0, "empty"},
    {"{'empty':null,'empty':{}}", 0, "empty"},
    /* Wrappers are bare values, not objects. */
    {"{'wInt32':'x'}", 0, "wInt32"},
    {"{'wInt32':2147483648}", 0, "wInt32"},
    {"{'wInt32':{'value':1}}", 0, "wInt32"},
    {"{'wUint32':-1}", 0, "wUint32"},
    {"{'wBool':'true'}", 0, "wBool"},
    {"{'wString':1}", 0, "wString"},
    {"{'wBytes':'!'}", 0, "wBytes"},
    {"{'wFloat':1e39}", 0, "wFloat"},
    {"{'rWInt64':[null]}", 0, "rWInt64[0]"},
    /* Any. */
    {"{'any':{'a':1}}", 0, "any"},                           /* no @type */
    {"{'any':{'@type':1}}", 0, "any"},                       /* not a string */
    {"{'any':{'@type':'conformance.v1.Nested'}}", 0, "any"}, /* no '/' */
    {"{'any':{'@type':'t/no.Such'}}", 0, "any"},             /* unknown type */
    {"{'any':{'@type':'t/conformance.v1.Nested','zz':1}}", 0, "any.zz"},
    {"{'any':{'@type':'t/conformance.v1.Nested','a':'x'}}", 0, "any.a"},
    {"{'any':{'@type':'t/google.protobuf.Duration'}}", 0, "any"}, /* no value */
    {"{'any':{'@type':'t/google.protobuf.Duration','value':'x'}}", 0, "any.value"},
    {"{'any':{'@type':'t/google.protobuf.Duration','value':'1s','x':1}}", 0, "any.x"},
    {"{'any':[]}", 0, "any"},
};

TEST(decode_bad_table) {
  for (size_t i = 0; i < sizeof decode_bad / sizeof decode_bad[0]; i++) {
    fresh();
    All m;
    sb_pbjson_err_t err;
    const char *in = q(decode_bad[i].in);
    int rc = dec(in, decode_bad[i].flags, &m, &err);
    const char *path = q(decode_bad[i].path);
    if (rc != SB_EINVAL || !err.msg || strcmp(err.path, path) != 0)
      sb_test_record(0, __FILE__, __LINE__,
                     "decode_bad[%zu] %s: rc %d (want %d), path \"%s\" (want \"%s\"), msg %s", i,
                     in, rc, SB_EINVAL, err.path, path, err.msg ? err.msg : "NULL");
  }
}

/* REGRESSION (fixed): a key repeated inside a map (or a Struct) is accepted, and the message then
 * holds two entries for one key and is written back with the key twice. Duplicate names are
 * rejected for message fields; a JSON object standing for a map must follow the same rule
 * (protobuf-java and Go's protojson reject it: "duplicate map key"). */
TEST(decode_duplicate_map_key) {
  static const struct {
    const char *in, *path;
  } cases[] = {
      {"{'mStringInt32':{'k':1,'k':2}}", "mStringInt32['k']"},
      {"{'mInt32String':{'1':'a','1':'b'}}", "mInt32String['1']"},
      {"{'st':{'a':1,'a':2}}", "st['a']"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fresh();
    All m;
    sb_pbjson_err_t err;
    const char *in = q(cases[i].in);
    int rc = dec(in, 0, &m, &err);
    int wrc;
    const char *path = q(cases[i].path);
    if (rc != SB_EINVAL || !err.msg || strcmp(err.path, path) != 0)
      sb_test_record(0, __FILE__, __LINE__,
                     "%s: rc %d, path \"%s\" (want %d, \"%s\"); written as %s", in, rc, err.path,
                     SB_EINVAL, path, rc ? "-" : enc(&m, 0, &wrc));
  }
}

TEST(decode_too_deep) {
  /* Nesting beyond SB_JSON_MAX_DEPTH is refused, not recursed into. */
  fresh();
  static char in[2048];
  size_t o = 0;
  for (int i = 0; i < 70; i++)
    o += (size_t)snprintf(in + o, sizeof in - o, "{\"child\":");
  in[o++] = '1';
  for (int i = 0; i < 70; i++)
    in[o++] = '}';
  in[o] = '\0';
  Nested n = CONFORMANCE__V1__NESTED__INIT;
  sb_pbjson_err_t err;
  CHECK_EQ_INT(sb_pbjson_decode(in, o, &n.base, &alloc, 0, &err), SB_EINVAL);
  CHECK(err.msg != NULL);
}

TEST(decode_err_cleared_on_success) {
  fresh();
  All m;
  sb_pbjson_err_t err;
  CHECK_EQ_INT(dec("{\"bogus\":1}", 0, &m, &err), SB_EINVAL);
  CHECK_EQ_INT(dec("{\"fInt32\":1}", 0, &m, &err), 0);
  CHECK(err.msg == NULL);
  CHECK_EQ_STR(err.path, "");
}

/* ---- decode then encode with the .proto names ---- */

TEST(decode_then_proto_names) {
  fresh();
  All m;
  sb_pbjson_err_t err;
  REQUIRE(dec(q("{'snakeCaseName':1,'nested':{'values':[1]},'mStringInt32':{'k':1}}"), 0, &m,
              &err) == 0);
  check_enc(&m, SB_PBJSON_PROTO_NAMES,
            "{'nested':{'values':[1]},'snake_case_name':1,'m_string_int32':{'k':1}}", __FILE__,
            __LINE__);
}

/* ---- sb_pbjson_set_text ---- */

static const struct {
  const char *steps[3][2]; /* (path, value) pairs applied in order; all but the last succeed */
  int rc;                  /* expected result of the last step */
  const char *out;         /* expected encoding afterwards when rc == 0 (single-quoted) */
} set_text[] = {
    /* Numbers from their text, by either name. */
    {{{"fInt32", "42"}}, 0, "{'fInt32':42}"},
    {{{"f_int32", "-1"}}, 0, "{'fInt32':-1}"},
    {{{"fInt32", "1e2"}}, 0, "{'fInt32':100}"},
    {{{"fInt64", "9223372036854775807"}}, 0, "{'fInt64':'9223372036854775807'}"},
    {{{"fUint64", "18446744073709551615"}}, 0, "{'fUint64':'18446744073709551615'}"},
    {{{"fUint32", "4294967295"}}, 0, "{'fUint32':4294967295}"},
    {{{"fDouble", "1.5"}}, 0, "{'fDouble':1.5}"},
    {{{"fDouble", "NaN"}}, 0, "{'fDouble':'NaN'}"},
    {{{"fFloat", "-Infinity"}}, 0, "{'fFloat':'-Infinity'}"},
    {{{"fInt32", "1.5"}}, SB_EINVAL, NULL},
    {{{"fInt32", "2147483648"}}, SB_EINVAL, NULL},
    {{{"fUint32", "-1"}}, SB_EINVAL, NULL},
    {{{"fInt32", ""}}, SB_EINVAL, NULL},
    {{{"fInt32", "abc"}}, SB_EINVAL, NULL},
    {{{"fDouble", "1e400"}}, SB_EINVAL, NULL},
    /* Booleans: exactly true / false. */
    {{{"fBool", "true"}}, 0, "{'fBool':true}"},
    {{{"fBool", "true"}, {"fBool", "false"}}, 0, "{}"},
    {{{"fBool", "1"}}, SB_EINVAL, NULL},
    {{{"fBool", "TRUE"}}, SB_EINVAL, NULL},
    {{{"fBool", ""}}, SB_EINVAL, NULL},
    /* Enums by name or number. */
    {{{"color", "COLOR_GREEN"}}, 0, "{'color':'COLOR_GREEN'}"},
    {{{"color", "1"}}, 0, "{'color':'COLOR_RED'}"},
    {{{"color", "-3"}}, 0, "{'color':'COLOR_BLUE'}"},
    {{{"color", "COLOR_X"}}, SB_EINVAL, NULL},
    {{{"color", "1x"}}, SB_EINVAL, NULL},
    /* Strings are taken verbatim; bytes are base64. */
    {{{"fString", "hello \"world\" \\"}}, 0, "{'fString':'hello \\'world\\' \\\\'}"},
    {{{"fString", "x"}, {"fString", ""}}, 0, "{}"},
    {{{"fString", "\xff"}}, SB_EINVAL, NULL},
    {{{"fBytes", "Zm9v"}}, 0, "{'fBytes':'Zm9v'}"},
    {{{"fBytes", "-_8"}}, 0, "{'fBytes':'+/8='}"},
    {{{"fBytes", "!!"}}, SB_EINVAL, NULL},
    /* Dotted paths create the messages on the way. */
    {{{"nested.a", "5"}}, 0, "{'nested':{'a':5}}"},
    {{{"nested.child.name", "x"}}, 0, "{'nested':{'child':{'name':'x'}}}"},
    {{{"nested.a", "1"}, {"nested.name", "n"}}, 0, "{'nested':{'a':1,'name':'n'}}"},
    {{{"oNested.a", "2"}}, 0, "{'oNested':{'a':2}}"},
    {{{"ts.seconds", "3"}}, 0, "{'ts':'1970-01-01T00:00:03Z'}"},
    /* Repeated fields are appended to. */
    {{{"rInt32", "1"}, {"rInt32", "2"}, {"r_int32", "3"}}, 0, "{'rInt32':[1,2,3]}"},
    {{{"rString", "a"}, {"rString", ""}}, 0, "{'rString':['a','']}"},
    {{{"rColor", "COLOR_RED"}, {"rColor", "2"}}, 0, "{'rColor':['COLOR_RED','COLOR_GREEN']}"},
    {{{"nested.values", "7"}, {"nested.values", "8"}}, 0, "{'nested':{'values':[7,8]}}"},
    {{{"rTs", "1970-01-01T00:00:01Z"}, {"rTs", "1970-01-01T00:00:02Z"}},
     0,
     "{'rTs':['1970-01-01T00:00:01Z','1970-01-01T00:00:02Z']}"},
    {{{"rInt32", "1"}, {"rInt32", "x"}}, SB_EINVAL, NULL},
    /* Well-known types from their JSON string forms. */
    {{{"ts", "2024-01-01T00:00:00.5+01:00"}}, 0, "{'ts':'2023-12-31T23:00:00.500Z'}"},
    {{{"dur", "-1.5s"}}, 0, "{'dur':'-1.500s'}"},
    {{{"mask", "fooBar,x"}}, 0, "{'mask':'fooBar,x'}"},
    {{{"wInt32", "5"}}, 0, "{'wInt32':5}"},
    {{{"wInt64", "-5"}}, 0, "{'wInt64':'-5'}"},
    {{{"wString", "hi"}}, 0, "{'wString':'hi'}"},
    {{{"wBytes", "Zg"}}, 0, "{'wBytes':'Zg=='}"},
    {{{"wDouble", "Infinity"}}, 0, "{'wDouble':'Infinity'}"},
    /* REGRESSION (fixed): a BoolValue from text. set_text quotes every value of a message field, so
     * "true" reaches the BoolValue reader as the JSON string "true" and is refused ("expected
     * true or false"); the plain bool field above takes the same text. */
    {{{"wBool", "true"}}, 0, "{'wBool':true}"},
    {{{"val", "s"}}, 0, "{'val':'s'}"},
    {{{"ts", "yesterday"}}, SB_EINVAL, NULL},
    {{{"dur", "1"}}, SB_EINVAL, NULL},
    /* Oneof: the second member is refused. */
    {{{"oString", "a"}, {"oString", "b"}}, 0, "{'oString':'b'}"},
    {{{"oString", "a"}, {"oInt64", "1"}}, SB_EINVAL, NULL},
    /* Paths that do not lead to a settable field. */
    {{{"bogus", "1"}}, SB_ENOTFOUND, NULL},
    {{{"nested.bogus", "1"}}, SB_ENOTFOUND, NULL},
    {{{"bogus.a", "1"}}, SB_ENOTFOUND, NULL},
    {{{"", "1"}}, SB_ENOTFOUND, NULL},
    {{{"nested.", "1"}}, SB_ENOTFOUND, NULL},
    {{{"fInt32.a", "1"}}, SB_EINVAL, NULL},
    {{{"rNested.a", "1"}}, SB_EINVAL, NULL},
    {{{"nested", "x"}}, SB_EINVAL, NULL},
    {{{"mStringInt32", "x"}}, SB_EINVAL, NULL},
};

TEST(set_text_table) {
  for (size_t i = 0; i < sizeof set_text / sizeof set_text[0]; i++) {
    fresh();
    All m = CONFORMANCE__V1__ALL__INIT;
    sb_pbjson_err_t err;
    int rc = 0;
    const char *p = "";
    for (size_t s = 0; s < 3 && set_text[i].steps[s][0]; s++) {
      p = set_text[i].steps[s][0];
      const char *v = set_text[i].steps[s][1];
      rc = sb_pbjson_set_text(&m.base, p, strlen(p), v, strlen(v), &alloc, &err);
      int last = s == 2 || !set_text[i].steps[s + 1][0];
      if (!last && rc != 0) break; /* reported below as a wrong rc */
    }
    if (rc != set_text[i].rc) {
      sb_test_record(0, __FILE__, __LINE__, "set_text[%zu] %s: rc %d, want %d (path \"%s\", %s)", i,
                     p, rc, set_text[i].rc, err.path, err.msg ? err.msg : "no msg");
      continue;
    }
    if (rc != 0) {
      if (!err.msg) sb_test_record(0, __FILE__, __LINE__, "set_text[%zu] %s: no err.msg", i, p);
      continue;
    }
    int wrc;
    const char *got = enc(&m, 0, &wrc);
    if (wrc != 0 || strcmp(got, q(set_text[i].out)) != 0)
      sb_test_record(0, __FILE__, __LINE__, "set_text[%zu] %s: wrote %s (rc %d), expected %s", i, p,
                     got, wrc, q(set_text[i].out));
  }
}

TEST(set_text_error_path_scalar) {
  fresh();
  All m = CONFORMANCE__V1__ALL__INIT;
  sb_pbjson_err_t err;
  CHECK_EQ_INT(sb_pbjson_set_text(&m.base, "nested.a", 8, "x", 1, &alloc, &err), SB_EINVAL);
  CHECK_EQ_STR(err.path, "nested.a");
  CHECK(err.msg != NULL);
  CHECK_EQ_INT(sb_pbjson_set_text(&m.base, "nested.zz", 9, "1", 1, &alloc, &err), SB_ENOTFOUND);
  CHECK_EQ_STR(err.path, "nested.zz");
  CHECK(err.msg != NULL);
}

/* REGRESSION (fixed): for a repeated field, set_text parses the value as a one-element array with a
 * fresh path context, so err.path becomes "[0]" and loses the field's path. */
TEST(set_text_error_path_repeated) {
  fresh();
  All m = CONFORMANCE__V1__ALL__INIT;
  sb_pbjson_err_t err;
  CHECK_EQ_INT(sb_pbjson_set_text(&m.base, "rInt32", 6, "x", 1, &alloc, &err), SB_EINVAL);
  CHECK(strncmp(err.path, "rInt32", 6) == 0);
  if (strncmp(err.path, "rInt32", 6) != 0) fprintf(stderr, "    err.path: \"%s\"\n", err.path);
  CHECK(err.msg != NULL);
}

/* Runs fn in a child process; returns 1 when the child exited with status 0, 0 when it
 * failed or died (a crash is reported, not fatal to the other tests). */
static int in_child(void (*fn)(void), const char *what) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) {
    fn();
    _exit(0);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 1;
  if (WIFSIGNALED(status))
    fprintf(stderr, "    %s: child died with signal %d\n", what, WTERMSIG(status));
  else
    fprintf(stderr, "    %s: child exited with status %d\n", what, WEXITSTATUS(status));
  return 0;
}

/* A dotted path through a oneof message member while another member of the oneof is set:
 * either refused, or the oneof switches to a fresh message. Anything else reuses the union's
 * string pointer or integer as a message. */
static void oneof_path_after(const char *first, const char *value) {
  fresh();
  All m = CONFORMANCE__V1__ALL__INIT;
  sb_pbjson_err_t err;
  if (sb_pbjson_set_text(&m.base, first, strlen(first), value, strlen(value), &alloc, &err))
    _exit(2);
  int rc = sb_pbjson_set_text(&m.base, "oNested.a", 9, "1", 1, &alloc, &err);
  if (rc == SB_EINVAL) _exit(0);
  if (rc == 0 && m.choice_case == CONFORMANCE__V1__ALL__CHOICE_O_NESTED && m.o_nested &&
      m.o_nested->a == 1 && m.o_nested->base.descriptor == &conformance__v1__nested__descriptor)
    _exit(0);
  _exit(3);
}
static void oneof_path_after_string(void) {
  oneof_path_after("oString", "abc");
}
static void oneof_path_after_int64(void) {
  oneof_path_after("oInt64", "5");
}

/* REGRESSION (fixed): sb_pbjson_set_text's walk down a dotted path takes the oneof member's storage
 * as a message pointer without looking at the oneof case, so after oString ("abc") or
 * oInt64 (5) is set, "oNested.a" dereferences the string or the integer 5 as a
 * ProtobufCMessage * (memory corruption / crash). Run in a child. */
TEST(set_text_oneof_path_after_other_member) {
  CHECK(in_child(oneof_path_after_string, "oString=abc then oNested.a=1"));
  CHECK(in_child(oneof_path_after_int64, "oInt64=5 then oNested.a=1"));
}

TEST(field_lookup_and_names) {
  const ProtobufCMessageDescriptor *d = &conformance__v1__all__descriptor;
  CHECK(sb_pbjson_field(d, "snake_case_name", 15) == sb_pbjson_field(d, "snakeCaseName", 13));
  CHECK(sb_pbjson_field(d, "snakeCaseName", 13) != NULL);
  CHECK(sb_pbjson_field(d, "field2x", 7) != NULL);
  CHECK(sb_pbjson_field(d, "snakecasename", 13) == NULL);
  CHECK(sb_pbjson_field(d, "snakeCaseNam", 12) == NULL);
  char out[32];
  CHECK_EQ_STR(sb_pbjson_json_name("snake_case_name", out, sizeof out), "snakeCaseName");
  CHECK_EQ_STR(sb_pbjson_json_name("field_2x", out, sizeof out), "field2x");
  CHECK_EQ_STR(sb_pbjson_json_name("r_w_int64", out, sizeof out), "rWInt64");
  CHECK_EQ_STR(sb_pbjson_json_name("snake_case_name", out, 6), "snake");
}

/* Every accepted input's encoding is stable: decoding what was written gives it again. */
TEST(round_trip_is_stable) {
  for (size_t i = 0; i < sizeof decode_ok / sizeof decode_ok[0]; i++) {
    fresh();
    All a, b;
    sb_pbjson_err_t err;
    if (dec(q(decode_ok[i].in), decode_ok[i].flags, &a, &err) != 0) continue; /* reported above */
    int rc;
    static char first[65536];
    snprintf(first, sizeof first, "%s", enc(&a, 0, &rc));
    if (dec(first, 0, &b, &err) != 0) {
      sb_test_record(0, __FILE__, __LINE__, "round trip [%zu]: %s does not decode (%s at %s)", i,
                     first, err.msg, err.path);
      continue;
    }
    const char *second = enc(&b, 0, &rc);
    if (strcmp(first, second) != 0)
      sb_test_record(0, __FILE__, __LINE__, "round trip [%zu]: %s became %s", i, first, second);
  }
}
