/*
 * sb__crc32c: CRC-32C (Castagnoli), the checksum of every journal record and index file.
 *
 * Parameters: polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value 0xFFFFFFFF, input
 * and output reflected, final XOR 0xFFFFFFFF — the CRC of iSCSI (RFC 3720 B.4), ext4 and
 * Kafka. Check value: sb__crc32c(0, "123456789", 9) == 0xE3069283.
 *
 * The interface chains like zlib's crc32(): sb__crc32c(sb__crc32c(0, a, n), b, m) equals the
 * CRC of a followed by b, which lets a record's checksum be computed in two parts (see the
 * record format in segment.h).
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at run time) and a
 * table-driven slice-by-8 loop otherwise. Thread-safe; no allocation.
 */
#ifndef SB_LOG_CRC32C_H
#define SB_LOG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Returns the CRC-32C of the n bytes at p, continuing from crc (0 to start). */
uint32_t sb__crc32c(uint32_t crc, const void *p, size_t n);

/* The portable table-driven implementation, exposed so tests can compare it with the
 * hardware path on the same inputs. Same contract as sb__crc32c. */
uint32_t sb__crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
