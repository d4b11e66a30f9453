/*
 * Validation rules of one field, read from its (switchboard.field) option
 * (proto/switchboard/validate.proto, FieldOptions extension 51001) and checked against the
 * field: a rule for another type than the field's, gt together with gte, a minimum above its
 * maximum or a pattern regcomp() refuses is a contract error, reported with the field's name.
 *
 * The result is the runtime's own sb_field_rule_t (include/switchboard/rpc.h), so the C
 * emitter prints it as is and the OpenAPI emitter turns the same struct into JSON Schema
 * keywords: both read one interpretation of the option.
 *
 * Ownership: the pattern string points into the arena passed in. Single-threaded.
 */
#ifndef SB_CONTRACT_PLUGIN_RULES_H
#define SB_CONTRACT_PLUGIN_RULES_H

#include <stddef.h>

#include "core/arena.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "switchboard/rpc.h"

#define SB_RULES_EXT_FIELD 51001u /* switchboard.field: FieldRules, on FieldOptions */

/* Reads the rules of field f. is_map says whether f is a map field (the caller knows its
 * entry type). Returns 1 and fills *out (out->number = f's number) when f has rules, 0 when it
 * has none, SB_EINVAL with a description in err (errlen bytes) when the option is malformed or
 * does not fit the field, or SB_ENOMEM. */
int sb_rules_read(sb_arena_t *a, const Google__Protobuf__FieldDescriptorProto *f, int is_map,
                  sb_field_rule_t *out, char *err, size_t errlen);

#endif
