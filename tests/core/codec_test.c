/*
 * Tests of src/core/codec.c against the specifications' own vectors: RFC 4648 section 10 for
 * base64, and the FNV-1a 64-bit reference values.
 */
#include <string.h>

#include "core/codec.h"
#include "sb_test.h"

static const char *const rfc4648[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

TEST(base64_rfc4648_vectors_both_ways) {
  for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
    const char *plain = rfc4648[i][0], *enc = rfc4648[i][1];
    char out[16];
    size_t n = sb_base64_encode((const uint8_t *)plain, strlen(plain), out);
    CHECK_EQ_INT(n, strlen(enc));
    CHECK_MEM(out, enc, n);
    uint8_t dec[16];
    CHECK_EQ_INT(sb_base64_decode(enc, strlen(enc), dec), (long)strlen(plain));
    CHECK_MEM(dec, plain, strlen(plain));
    /* Unpadded input decodes the same. */
    size_t bare = strlen(enc);
    while (bare && enc[bare - 1] == '=')
      bare--;
    CHECK_EQ_INT(sb_base64_decode(enc, bare, dec), (long)strlen(plain));
  }
}

TEST(base64_url_safe_alphabet_and_errors) {
  const uint8_t raw[] = {0xfb, 0xff, 0xbf};
  char std[8];
  CHECK_EQ_INT(sb_base64_encode(raw, 3, std), 4);
  CHECK_MEM(std, "+/+/", 4);
  uint8_t dec[8];
  CHECK_EQ_INT(sb_base64_decode("-_-_", 4, dec), 3);
  CHECK_MEM(dec, raw, 3);
  CHECK_EQ_INT(sb_base64_decode("Zm9v!", 5, dec), -1); /* not in either alphabet */
  CHECK_EQ_INT(sb_base64_decode("Z", 1, dec), -1);     /* a lone sextet holds no byte */
  CHECK_EQ_INT(sb_base64_decode("Zm 9v", 5, dec), -1);
}

TEST(fnv1a_reference_values) {
  CHECK(sb_fnv1a(SB_FNV_SEED, "", 0) == 0xcbf29ce484222325ull);
  CHECK(sb_fnv1a(SB_FNV_SEED, "a", 1) == 0xaf63dc4c8601ec8cull);
  CHECK(sb_fnv1a(SB_FNV_SEED, "foobar", 6) == 0x85944171f73967e8ull);
  /* Continuing from a previous value equals hashing the concatenation. */
  CHECK(sb_fnv1a(sb_fnv1a(SB_FNV_SEED, "foo", 3), "bar", 3) == 0x85944171f73967e8ull);
}

TEST(json_name_follows_protoc) {
  char out[64];
  CHECK_EQ_STR(sb_json_name("update_mask", out), "updateMask");
  CHECK_EQ_STR(sb_json_name("id", out), "id");
  CHECK_EQ_STR(sb_json_name("field_2x", out), "field2x"); /* only letters are capitalised */
  CHECK_EQ_STR(sb_json_name("a__b", out), "aB");
  CHECK_EQ_STR(sb_json_name("trailing_", out), "trailing");
  CHECK_EQ_STR(sb_json_name("item.page_size", out), "item.pageSize"); /* dotted paths */
  CHECK_EQ_STR(sb_json_name("Already_Camel", out), "AlreadyCamel");
}
