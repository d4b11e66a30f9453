/*
 * C identifiers for protobuf names, spelled the way protoc-c (1.4) spells them, so generated
 * switchboard code can name the structs and descriptors protoc-c generated next to it.
 *
 * protoc-c derives every identifier from a dotted name whose package part may be replaced by
 * the file option (pb_c_file).c_package. Each dotted piece is transformed on its own and the
 * pieces are joined with "__":
 *
 *   camel  (type names)        "my_pkg.v1.get_item_request" -> "MyPkg__V1__GetItemRequest"
 *          the first character and every character after a '_' upper-cased, '_' dropped;
 *   lower  (descriptor names)  "my_pkg.v1.ItemService"      -> "my_pkg__v1__item_service"
 *          every upper-case letter lower-cased, with a '_' put before it unless the character
 *          before it was upper-case too or it is the first: "HTTPRule" -> "httprule",
 *          "inner_Msg" -> "inner__msg".
 *
 * The lower transform of a method name is also the member name of protoc-c's service struct
 * and of switchboard's handler table ("GetItem" -> "get_item").
 *
 * Strings are allocated in the arena passed in (see core/arena.h); NULL means out of memory.
 */
#ifndef SB_CONTRACT_PLUGIN_NAMES_H
#define SB_CONTRACT_PLUGIN_NAMES_H

#include "core/arena.h"

/* Returns camel(prefix) "__" camel(rest). Either part may be NULL or empty (then no "__");
 * each is a dotted name whose empty pieces (a leading '.') are skipped. NULL on OOM. */
char *sb_names_camel(sb_arena_t *a, const char *prefix, const char *rest);

/* Returns lower(prefix) "__" lower(rest), with the same rules as sb_names_camel(). */
char *sb_names_lower(sb_arena_t *a, const char *prefix, const char *rest);

/* 1 when s is a C keyword (C17, plus the C23 ones and "asm"/"typeof" that compilers reserve),
 * 0 if not: such a name cannot be a struct member. */
int sb_names_is_c_keyword(const char *s);

#endif
