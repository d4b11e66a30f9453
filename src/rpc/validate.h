/*
 * The contract's validation rules (proto/switchboard/validate.proto), enforced on a decoded
 * request before its handler runs. The RPC layer runs it for every call, so every protocol
 * front-end answers a bad request identically: INVALID_ARGUMENT with one google.rpc.BadRequest
 * field violation per broken rule.
 *
 * The rules are static tables the generator emits per contract file (sb_msg_rules_t). The
 * validator walks the request message and descends only into message fields whose type has
 * a table (the generator lists exactly the types that have rules or lead to one). Patterns
 * are POSIX extended regular expressions compiled once, when the service is registered.
 *
 * Threads: a compiled sb__patterns_t is read-only after registration and shared by every
 * worker (glibc's regexec() is safe to call concurrently on one compiled pattern).
 */
#ifndef SB_RPC_VALIDATE_H
#define SB_RPC_VALIDATE_H

#include <regex.h>

#include "switchboard/rpc.h"

#define SB_VALIDATE_MAX_VIOLATIONS 32u /* violations reported per request; the rest are counted */
#define SB_VALIDATE_MAX_DEPTH 32u      /* nesting the validator descends (decoders bound it too) */
#define SB_VALIDATE_PATH_MAX 256u      /* bytes of one field path; longer paths are cut */

/* The compiled patterns of every registered service. Owned by the registry (sb_rpc_t). */
typedef struct sb__patterns {
  const char **src; /* pattern texts, borrowed from the generated tables (pointer identity) */
  regex_t *re;      /* compiled, parallel to src */
  size_t n, cap;
} sb__patterns_t;

/* Compiles the patterns of desc's rule tables into p (skipping those already there).
 * Returns 0, SB_EINVAL (a pattern does not compile; *bad is set to it) or SB_ENOMEM. */
int sb__patterns_add(sb__patterns_t *p, const sb_service_desc_t *desc, const char **bad);
void sb__patterns_free(sb__patterns_t *p);

/* Checks msg (of desc's method input type) against desc's rules and reports each violation
 * through sb_call_field_violation(call, ...). Returns the number of violations found (which
 * may exceed those reported), or SB_ENOMEM. */
int sb__validate(const sb__patterns_t *p, const sb_service_desc_t *desc, sb_call_t *call,
                 const ProtobufCMessage *msg);

#endif
