/*
 * The proto3 JSON mapping, both directions, for any protobuf-c message: driven by the
 * runtime descriptors protoc-c generates (field names, types, offsets), so one codec serves
 * every contract and nothing is generated per message.
 *
 * Output: lowerCamelCase names; 64-bit integers as strings; enums as names (numbers when the
 * value has no name); bytes as standard base64; NaN/Infinity as strings; fields at their
 * default value omitted (proto3 implicit presence), explicit-presence fields written when
 * set; maps as objects; the well-known types in their special forms (Timestamp, Duration,
 * FieldMask, Struct/Value/ListValue, the wrappers, Empty).
 *
 * Input, additionally: original field names; 64-bit integers as numbers; integers written
 * as integral floats ("1e2", 1.0); enums as numbers; URL-safe and unpadded base64; null as
 * "field absent". Rejected with a field path: wrong JSON types, out-of-range numbers,
 * non-integral values for integer fields, unknown enum names, bad base64, a field given twice
 * (also under both its names), two members of one oneof, and unknown fields (unless
 * SB_PBJSON_IGNORE_UNKNOWN).
 *
 * Memory: decoding allocates strings, arrays and sub-messages from the caller's
 * ProtobufCAllocator (normally a per-call arena released in one go); nothing is freed
 * piecewise.
 *
 * Custom json_name options: protobuf-c's runtime descriptors do not carry them, so the
 * generator emits a side table per contract and the RPC layer registers it with
 * sb_pbjson_add_json_name(); output then uses the custom name, and input accepts it and the
 * .proto name.
 *
 * google.protobuf.Any: {"@type": "<prefix>/<full.Name>", ...members} ("value" holding the
 * special form for a packed well-known type). The type must be registered with
 * sb_pbjson_add_types(); the RPC layer registers every message its services use.
 */
#ifndef SB_CONTRACT_PBJSON_H
#define SB_CONTRACT_PBJSON_H

#include <protobuf-c/protobuf-c.h>

#include "core/json.h"

enum sb_pbjson_flags {
  SB_PBJSON_IGNORE_UNKNOWN = 1, /* unknown fields in input are skipped instead of rejected */
  SB_PBJSON_PROTO_NAMES = 2,    /* output uses the .proto field names, not lowerCamelCase */
};

/* Where and why decoding failed. */
typedef struct sb_pbjson_err {
  char path[192];  /* field path, e.g. "item.tags[2]" or "labels[\"k\"]"; "" for the root */
  const char *msg; /* static description */
} sb_pbjson_err_t;

/* Writes msg as one JSON value (an object, or a well-known type's special form). Returns 0
 * or the writer's error (SB_ENOMEM). */
int sb_pbjson_write(sb_jw_t *w, const ProtobufCMessage *msg, unsigned flags);

/* Decodes data (exactly one JSON value, the whole input) into msg, which the caller has
 * initialised for its descriptor. Returns 0, or SB_EINVAL with *err filled. */
int sb_pbjson_decode(const void *data, size_t len, ProtobufCMessage *msg, ProtobufCAllocator *alloc,
                     unsigned flags, sb_pbjson_err_t *err);

/* Sets the field at a dotted path of .proto or JSON names ("item.id") from a text value, as
 * path parameters and query strings carry them: numbers, enum names or numbers, "true" /
 * "false", base64 for bytes, and for well-known types their JSON string forms. Intermediate
 * messages are created. A repeated field gets the value appended. Returns 0, or SB_EINVAL
 * (unknown field, bad value) / SB_ENOTFOUND (no such field) with *err filled. */
int sb_pbjson_set_text(ProtobufCMessage *msg, const char *path, size_t path_len, const char *value,
                       size_t value_len, ProtobufCAllocator *alloc, sb_pbjson_err_t *err);

/* Registers the custom json_name of field number of message d (process-wide; the strings and
 * the descriptor are borrowed static data). Call before servers start: lookups made while
 * serving are not synchronized with it. Registering a field twice keeps the first name.
 * Returns 0 or SB_ENOMEM. */
int sb_pbjson_add_json_name(const ProtobufCMessageDescriptor *d, uint32_t number, const char *name);

/* Registers d and every message type reachable through its fields as types an Any may hold
 * (process-wide, borrowed static data; before servers start, as above). Returns 0 or
 * SB_ENOMEM. */
int sb_pbjson_add_types(const ProtobufCMessageDescriptor *d);

/* Finds a field by .proto name or JSON name (its custom json_name, else lowerCamelCase); NULL
 * when absent. */
const ProtobufCFieldDescriptor *sb_pbjson_field(const ProtobufCMessageDescriptor *d,
                                                const char *name, size_t len);

/* Writes the lowerCamelCase JSON name of a .proto field name into out (cap bytes,
 * NUL-terminated, truncated if needed). Returns out. */
const char *sb_pbjson_json_name(const char *proto_name, char *out, size_t cap);

/* Helpers over protobuf-c's runtime descriptors, shared with the validator (rpc/validate.c). */

/* 1 when f is a map field: a repeated "<Field>Entry" message of exactly key = 1 and
 * value = 2 (protobuf-c's runtime descriptors have no map_entry flag). */
int sb__pb_is_map(const ProtobufCFieldDescriptor *f);
/* The size of one element of a repeated field of type t, as protobuf-c lays arrays out. */
size_t sb__pb_elem_size(ProtobufCType t);
/* 1 when field f of m is present: set (explicit presence), non-default (implicit presence),
 * or non-empty (repeated). */
int sb__pb_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

#endif
