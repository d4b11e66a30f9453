/*
 * The TypeScript emitter: one declaration file per .proto file, <base>.trpc.d.ts, exporting
 * AppRouter, the router type of the tRPC front-end (src/protocols/trpc/trpc.c) as it serves the
 * file's services, so that createTRPCClient<AppRouter>() type-checks procedure names, inputs
 * and outputs against the C server.
 *
 * AppRouter is built from @trpc/server v11's exported types (TRPCBuiltRouter,
 * TRPCQueryProcedure, TRPCMutationProcedure, TRPCSubscriptionProcedure,
 * TRPCDefaultErrorShape), with the procedure definition shape {input, output, meta,
 * errorShape} of 11.x and a root without transformer; other majors are not targeted.
 *
 * Procedures, as the front-end names them: each unary or server-streaming method under its
 * lowerCamelCase name, nested under its service's lowerCamelCase name when two services of
 * the file share the name, or under its switchboard.trpc_name option (top level) when set.
 * NO_SIDE_EFFECTS methods are queries, other unary methods mutations, server-streaming methods
 * subscriptions (output AsyncIterable<message>, or AsyncIterable<{id, data}> when the request
 * message has a last_event_id field: such a stream is resumable and its handler names each event,
 * see sb_call_set_event_id()). Every input may be left out (the server reads it as the empty
 * message).
 *
 * Messages and enums that the file declares or its methods reach are exported in the proto3
 * JSON mapping the server reads and writes (src/contract/pbjson.h): an interface per message
 * named by its name inside its package ("Item", nested "Outer_Inner"; the full name with '_'
 * for '.' when two packages would collide), every member optional (defaults are omitted on
 * the wire), lowerCamelCase or json_name member names, 64-bit integers as strings, enums as
 * unions of their value names, bytes as base64 strings, maps as index signatures, and the
 * well-known types inline in their JSON forms.
 *
 * Single-threaded; temporary memory comes from the arena passed in. Deterministic output.
 */
#ifndef SB_CONTRACT_PLUGIN_EMIT_TS_H
#define SB_CONTRACT_PLUGIN_EMIT_TS_H

#include "core/arena.h"
#include "core/buf.h"
#include "google/protobuf/compiler/plugin.pb-c.h"

/* Appends the declaration file of fd to out. req gives the descriptors of every file fd
 * imports; both are borrowed. Returns 0, SB_ENOMEM, or SB_EINVAL when a type a method or
 * field names is not in the request (protoc never sends such a request). */
int sb_emit_ts(sb_arena_t *a, const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
               const Google__Protobuf__FileDescriptorProto *fd, sb_buf_t *out);

#endif
