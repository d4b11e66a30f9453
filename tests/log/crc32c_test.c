/*
 * Tests of sb__crc32c (src/log/crc32c.c): the standard check value, the RFC 3720 (iSCSI)
 * B.4 vectors, chaining, and agreement of the SSE4.2 and table-driven paths.
 */
#include <string.h>

#include "log/crc32c.h"
#include "sb_test.h"

TEST(crc32c_check_vector) {
  CHECK_EQ_INT(sb__crc32c(0, "123456789", 9), 0xE3069283u);
  CHECK_EQ_INT(sb__crc32c_sw(0, "123456789", 9), 0xE3069283u);
  CHECK_EQ_INT(sb__crc32c(0, "", 0), 0);
}

TEST(crc32c_rfc3720_vectors) {
  uint8_t b[32];
  memset(b, 0, sizeof b);
  CHECK_EQ_INT(sb__crc32c(0, b, 32), 0x8A9136AAu);
  memset(b, 0xFF, sizeof b);
  CHECK_EQ_INT(sb__crc32c(0, b, 32), 0x62A8AB43u);
  for (int i = 0; i < 32; i++)
    b[i] = (uint8_t)i;
  CHECK_EQ_INT(sb__crc32c(0, b, 32), 0x46DD794Eu);
  for (int i = 0; i < 32; i++)
    b[i] = (uint8_t)(31 - i);
  CHECK_EQ_INT(sb__crc32c_sw(0, b, 32), 0x113FDB5Cu);
}

TEST(crc32c_chains_and_paths_agree) {
  uint8_t buf[1031];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof buf; i++) {
    x = x * 1103515245u + 12345u;
    buf[i] = (uint8_t)(x >> 16);
  }
  int agree = 1, chains = 1;
  /* Every start alignment and many lengths, so both the 8-byte loop and the tail run. */
  for (size_t start = 0; start < 9; start++)
    for (size_t len = 0; len + start <= sizeof buf; len += 37) {
      uint32_t hw = sb__crc32c(0, buf + start, len);
      agree &= hw == sb__crc32c_sw(0, buf + start, len);
      size_t cut = len / 3;
      chains &= hw == sb__crc32c(sb__crc32c(0, buf + start, cut), buf + start + cut, len - cut);
    }
  CHECK(agree);
  CHECK(chains);
}
