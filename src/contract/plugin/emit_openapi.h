/*
 * The OpenAPI emitter: one OpenAPI 3.1 document (JSON) per .proto file, describing the REST
 * front-end (src/protocols/rest/rest.c) exactly as it serves the file's services.
 *
 * paths: for every method, each google.api.http binding (primary rule, then the additional
 * bindings) and the default route POST /<package>.<Service>/<Method> with body "*", which the
 * REST front-end always adds. Template variables become path parameters (a variable with a
 * pattern, "{name=shelves/<pattern>}", is written "{name}"; "{item.id}" keeps its dotted
 * name); every request field bound neither by the path nor by the body becomes a query
 * parameter (dotted lowerCamelCase names for nested fields; repeated scalars as exploded
 * arrays). operationId is "<Service>_<Method>" for
 * the first binding and "<Service>_<Method>_<i>" for binding i (the default route counts as
 * the last one). A binding whose verb OpenAPI has no operation for (a custom kind such as
 * "LOCK") is left out; of two bindings with the same path and verb only the first is kept,
 * because the router, too, answers with the first match.
 *
 * Responses: the method's success status (204: no content) with the response message or its
 * response_body field as application/json; server-streaming methods 200 with
 * text/event-stream and application/x-ndjson; "default": the shared components.schemas Error
 * ({code, message, details}).
 *
 * components.schemas: every message and enum the file defines or its methods reach, named by
 * full name ("items.v1.Item"), in the proto3 JSON mapping the server writes (src/contract/
 * pbjson.h): lowerCamelCase property names computed from the .proto names as pbjson does (it
 * ignores custom json_name options, so the document does too), 64-bit integers as strings,
 * enums as names, bytes as base64, maps as objects, well-known types inline in their special
 * forms. Descriptions come from the source_code_info protoc sends with the request.
 *
 * The document is pretty-printed (two-space indent, one member per line), strictly valid
 * JSON (invalid UTF-8 in comments becomes U+FFFD) and deterministic: the same request gives
 * the same bytes, because everything is written in declaration order or sorted.
 *
 * Single-threaded; all temporary memory comes from the arena passed in.
 */
#ifndef SB_CONTRACT_PLUGIN_EMIT_OPENAPI_H
#define SB_CONTRACT_PLUGIN_EMIT_OPENAPI_H

#include "contract/plugin/model.h"
#include "core/arena.h"
#include "core/buf.h"
#include "google/protobuf/compiler/plugin.pb-c.h"

/* Appends the OpenAPI document of fd (whose model, from sb_model_build(), is f) to out, as
 * JSON text without a terminating NUL. req gives the descriptors of every file fd imports;
 * req and fd are borrowed. Temporary memory comes from a. Returns 0, SB_ENOMEM, or SB_EINVAL
 * when the document would nest deeper than the writer allows (it never does: schemas refer to
 * messages by $ref). */
int sb_emit_openapi(sb_arena_t *a, const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
                    const Google__Protobuf__FileDescriptorProto *fd, const sb_model_file_t *f,
                    sb_buf_t *out);

#endif
