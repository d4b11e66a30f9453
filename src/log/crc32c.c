#include "log/crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82F63B78u
#define CRC32C_SLICES 8 /* table rows: bytes consumed per step of the software loop */

/* g_table[k][b]: the CRC contribution of byte b followed by k zero bytes. Written once under
 * g_once, read-only afterwards. */
static uint32_t g_table[CRC32C_SLICES][256];
static int g_have_sse42; /* 1 when the crc32 instruction is usable; set under g_once */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void) {
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int i = 0; i < 8; i++)
      c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
    g_table[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; b++)
    for (int k = 1; k < CRC32C_SLICES; k++)
      g_table[k][b] = (g_table[k - 1][b] >> 8) ^ g_table[0][g_table[k - 1][b] & 0xFF];
#if defined(__x86_64__)
  __builtin_cpu_init();
  g_have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc32c_sw_raw(uint32_t c, const uint8_t *p, size_t n) {
  while (n >= 8) {
    /* Little-endian load; the journal only runs on little-endian hosts (segment.c asserts). */
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = g_table[7][lo & 0xFF] ^ g_table[6][(lo >> 8) & 0xFF] ^ g_table[5][(lo >> 16) & 0xFF] ^
        g_table[4][lo >> 24] ^ g_table[3][hi & 0xFF] ^ g_table[2][(hi >> 8) & 0xFF] ^
        g_table[1][(hi >> 16) & 0xFF] ^ g_table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--)
    c = (c >> 8) ^ g_table[0][(c ^ *p++) & 0xFF];
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw_raw(uint32_t c, const uint8_t *p,
                                                                size_t n) {
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c64 = __builtin_ia32_crc32di(c64, v);
    p += 8;
    n -= 8;
  }
  c = (uint32_t)c64;
  while (n--)
    c = __builtin_ia32_crc32qi(c, *p++);
  return c;
}
#endif

uint32_t sb__crc32c_sw(uint32_t crc, const void *p, size_t n) {
  pthread_once(&g_once, crc32c_init);
  return ~crc32c_sw_raw(~crc, p, n);
}

uint32_t sb__crc32c(uint32_t crc, const void *p, size_t n) {
  pthread_once(&g_once, crc32c_init);
#if defined(__x86_64__)
  if (g_have_sse42) return ~crc32c_hw_raw(~crc, p, n);
#endif
  return ~crc32c_sw_raw(~crc, p, n);
}
