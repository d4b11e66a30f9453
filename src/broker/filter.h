/*
 * Message selection for topic subscriptions: filter policies (the JSON syntax of SNS
 * subscription filter policies), AMQP topic-exchange routing keys and AMQP headers-exchange
 * matching. Pure functions, no broker state: compiled once at subscribe time, evaluated per
 * publish on the broker thread.
 *
 * ## Filter policies
 *
 * A policy is a JSON object. Each key names an attribute (scope "attributes") or a field of
 * the JSON body (scope "body", nested objects for nested fields); its value is an array of
 * conditions, any of which may match (OR); every key must match (AND). "$or": [policy, ...]
 * adds a group of alternatives of which one must match. Conditions:
 *
 *   "text"                          the value is exactly this string
 *   42                              the value is numerically equal
 *   null, true, false               (body scope) the field holds this literal
 *   {"prefix": "p"}                 string starts with p           {"suffix": "s"}  ends with s
 *   {"equals-ignore-case": "t"}     ASCII case-insensitive equality
 *   {"exists": true|false}          the key is present / absent
 *   {"numeric": [">", 0, "<=", 9]}  a range with one or two bounds (= also allowed alone)
 *   {"anything-but": c}             present and matching none of c: a string, a number, an
 *                                   array of them, or {"prefix": p} / {"suffix": s}
 *
 * Attribute values: type "String..." is a string, "Number..." a number, "String.Array" a JSON
 * array whose elements are matched one by one (any may match); Binary attributes only
 * satisfy "exists". In body scope, an array field matches when any element does.
 */
#ifndef SB_BROKER_FILTER_H
#define SB_BROKER_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "switchboard/broker.h"

#define SB__FILTER_MAX_BYTES (256u << 10) /* largest policy text */
#define SB__FILTER_MAX_CONDS 1024u        /* conditions in one policy, all keys together */
#define SB__FILTER_MAX_DEPTH 16u          /* nesting of objects and "$or" */

typedef struct sb__filter sb__filter_t;

/* Compiles policy text (len bytes). Returns 0 and sets *out (free with sb__filter_free), or
 * SB_EINVAL with a static reason in *why, or SB_ENOMEM. */
int sb__filter_compile(const char *text, size_t len, sb__filter_t **out, const char **why);
void sb__filter_free(sb__filter_t *f);

/* Evaluates f against a message's attributes, or against its body (which must be a JSON
 * object; any other body matches no policy with keys). */
bool sb__filter_match_attrs(const sb__filter_t *f, const sb_broker_attr_t *attrs, size_t n);
bool sb__filter_match_body(const sb__filter_t *f, const void *body, size_t len);

/* AMQP topic-exchange matching: pattern and key are dot-separated words; "*" matches exactly
 * one word, "#" zero or more. */
bool sb__route_match(const char *pattern, const char *key);

/* AMQP headers-exchange matching: every (any_of false) or at least one (any_of true) of the
 * n wanted pairs is present among attrs with an equal value; a wanted pair with a NULL value
 * only requires presence. */
bool sb__headers_match(const sb_broker_kv_t *want, size_t n, bool any_of,
                       const sb_broker_attr_t *attrs, size_t n_attrs);

#endif
