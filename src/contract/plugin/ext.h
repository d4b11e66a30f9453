/*
 * Extension values of options, read from the raw protobuf wire format.
 *
 * protoc hands a plugin its FileDescriptorProtos with every option serialized, custom options
 * (extensions such as google.api.http = 72295728) included. The protobuf-c decoder knows only
 * the fields of descriptor.proto, so it keeps extensions as unknown fields: tag, wire type and
 * the field's bytes after the key. For a length-delimited field those bytes still begin with
 * the varint length, which these functions check against the stored size.
 *
 * The protobuf rules for a field seen more than once hold: the last value wins for scalars
 * and strings, and the values of a message field are merged, which on the wire is the same as
 * concatenating their payloads.
 *
 * Every function returns 1 when the field is present, 0 when it is absent, or SB_EPROTO when
 * it is present with another wire type or malformed bytes (the .proto author declared the
 * extension with another type than ours).
 */
#ifndef SB_CONTRACT_PLUGIN_EXT_H
#define SB_CONTRACT_PLUGIN_EXT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

/* A varint field of m (int32, int64, uint32, uint64, bool, enum) into *v, raw: an int32 of -1
 * arrives as 2^64 - 1. */
int sb_ext_varint(const ProtobufCMessage *m, uint32_t field, uint64_t *v);

/* A string or bytes field of m: *p and *n are set to its payload (the last occurrence's),
 * borrowed from m. The payload is not NUL-terminated. */
int sb_ext_bytes(const ProtobufCMessage *m, uint32_t field, const uint8_t **p, size_t *n);

/* A message field of m: *p and *n are set to the concatenated payloads of every occurrence,
 * copied into the arena a when there is more than one (else borrowed from m). Returns
 * SB_ENOMEM too, when a copy fails. */
int sb_ext_message(sb_arena_t *a, const ProtobufCMessage *m, uint32_t field, const uint8_t **p,
                   size_t *n);

/* Like sb_ext_bytes(), over serialized message bytes [msg, msg+len) instead of a decoded
 * message: for options inside an extension whose message protoc-c cannot generate. */
int sb_ext_raw_bytes(const uint8_t *msg, size_t len, uint32_t field, const uint8_t **p, size_t *n);

/* A protobuf-c allocator over the arena a, for unpacking option messages that live as long
 * as the arena: nothing is freed one by one. */
ProtobufCAllocator sb_ext_allocator(sb_arena_t *a);

#endif
