/*
 * The C emitter: turns the model of one .proto file into <base>.sb.h and <base>.sb.c.
 *
 * <base>.sb.h, per service S (C names as protoc-c spells them, e.g. Items__V1__ItemService):
 *   - S_Handlers: one typed function pointer per method, in declaration order, and nothing
 *     else, so it has the layout of an array of sb_handler_fn (checked by _Static_assert);
 *   - extern const sb_service_desc_t s__desc;
 *   - static inline int s__register(sb_rpc_t *, const S_Handlers *, void *ud).
 * <base>.sb.c: the HTTP rules, the method table, the serialized FileDescriptorProto, the
 * OpenAPI document (emit_openapi.h) and the service descriptors, all static const data.
 *
 * A file without services still gets both files (a header that includes the protoc-c header,
 * and a source with nothing to define), so a build system can name the outputs before it
 * knows what a .proto contains.
 */
#ifndef SB_CONTRACT_PLUGIN_EMIT_C_H
#define SB_CONTRACT_PLUGIN_EMIT_C_H

#include "contract/plugin/model.h"
#include "core/buf.h"

/* Appends the text of <base>.sb.h for f to out. Returns 0 or SB_ENOMEM. */
int sb_emit_c_header(const sb_model_file_t *f, sb_buf_t *out);

/* Appends the text of <base>.sb.c for f to out. openapi_json (borrowed; NUL-terminated) is
 * the file's OpenAPI document from sb_emit_openapi(): every service's openapi_json points at
 * the same copy of it. Returns 0 or SB_ENOMEM. */
int sb_emit_c_source(const sb_model_file_t *f, const char *openapi_json, sb_buf_t *out);

#endif
