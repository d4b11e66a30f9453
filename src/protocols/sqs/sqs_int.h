/*
 * Private pieces of the SQS front-end, shared by its files and its fuzz target.
 *
 * The request tree, its decoders, the response encoder and the request plumbing are shared
 * with SNS (protocols/aws/aws.h).
 */
#ifndef SB_PROTOCOLS_SQS_INT_H
#define SB_PROTOCOLS_SQS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "protocols/aws/aws.h"

#define SQS_MAX_BATCH 10u      /* entries of a batch request (AWS's limit) */
#define SQS_MAX_MSG_ATTRS 10u  /* message attributes per message (AWS's limit) */
#define SQS_MAX_ATTR_NAME 256u /* bytes of a message attribute name */
#define SQS_MAX_BATCH_ID 80u   /* bytes of a batch entry id */
#define SQS_MAX_BODY_TOTAL                                                                         \
  (1u << 20) /* bytes of all messages of one batch (BatchRequestTooLong)                           \
              */

#define SQS_POLICY_STATEMENTS_MAX 20u /* statements of a queue's Policy (AWS's limit) */
#define SQS_POLICY_MEMBERS_MAX 16u    /* top-level members of a Policy document we edit */

/* A permission of AddPermission (accounts and actions given) or RemovePermission (none). */
typedef struct sqs_permission {
  const char *label;           /* the statement's Sid */
  const char *arn;             /* the queue's ARN: the Resource, and the policy's Id */
  const char *const *accounts; /* 12-digit account ids */
  size_t n_accounts;           /* entries of accounts; 0 to remove */
  const char *const *actions;  /* action names without "SQS:" */
  size_t n_actions;            /* entries of actions */
} sqs_permission_t;

/* Adds or removes perm's statement in the Policy document old (NULL or "" for none), keeping
 * everything else of the document as it is (policy.c). Returns 0 with *out the new document
 * in a's memory ("" when no statement is left), 1 when the label already exists (adding) or
 * does not (removing), SB_EINVAL when old is not a JSON object with at most one Statement
 * member, SB_ELIMIT beyond SQS_POLICY_STATEMENTS_MAX statements or SQS_POLICY_MEMBERS_MAX
 * members, or SB_ENOMEM. */
int sb__sqs_policy_edit(sb_arena_t *a, const char *old, const sqs_permission_t *perm,
                        const char **out);

/* MD5 of len bytes as 32 lower-case hex digits and a NUL. */
void sb__sqs_md5_hex(const void *p, size_t len, char out[33]);

/* One message attribute for hashing: value is the string's UTF-8 bytes or the binary bytes. */
typedef struct sqs_mattr {
  const char *name;  /* name_len bytes */
  size_t name_len;   /* bytes of name */
  const char *type;  /* type_len bytes: String, Number, Binary, or one with a ".custom" */
  size_t type_len;   /* bytes of type */
  const void *value; /* value_len bytes */
  size_t value_len;  /* bytes of value */
} sqs_mattr_t;

/* MD5OfMessageAttributes exactly as SQS computes it: the attributes sorted by name (bytes);
 * for each one the name, the data type, one transport byte (1 string, 2 binary) and the
 * value, every field but the transport byte preceded by its length as 4 bytes big-endian;
 * the MD5 of it all in hex. Sorts attrs in place. Returns 0 or SB_ENOMEM. */
int sb__sqs_md5_attrs(sqs_mattr_t *attrs, size_t n, char out[33]);

#endif
