/*
 * What the AWS front-ends (SQS, SNS) share: the request tree and its decoders, the response
 * encoder, SigV4 verification, and the life of a request between its worker loop and the
 * broker thread.
 *
 * ## One request model for two wire protocols
 *
 * SQS speaks the Query protocol (form-encoded `Action=...&Attribute.1.Name=...`, XML answers)
 * and AWS JSON 1.0 (`X-Amz-Target: AmazonSQS.<Action>`, JSON answers). Both decoders build
 * the same tree, shaped like the JSON protocol's input: maps (JSON objects), lists and
 * strings (JSON numbers and booleans keep their text). The Query decoder first nests the
 * dotted keys (`Attribute.1.Name` -> Attribute{1{Name}}) and then rewrites the flattened
 * members botocore's model names with `locationName` into their JSON shape:
 *
 *   Query prefix                             JSON member              shape
 *   Attribute.N.{Name,Value}                 Attributes               map of strings
 *   Tag.N.{Key,Value}                        Tags                     map of strings
 *   MessageAttribute.N.{Name,Value.*}        MessageAttributes        map of maps
 *   MessageSystemAttribute.N.{Name,Value.*}  MessageSystemAttributes  map of maps
 *   AttributeName.N, MessageAttributeName.N, AttributeNames, ...     list of strings
 *     MessageSystemAttributeName.N, TagKey.N, StringListValue.N, BinaryListValue.N
 *   <Action>BatchRequestEntry.N.*            Entries                  list of maps
 *
 * so every action reads one shape. The wrapped form other AWS Query APIs use (SNS:
 * `Tags.member.N.Key`, `Attributes.entry.N.key`) is rewritten the same way, keeping the
 * member's own name (a map whose only member is "member" becomes a list, "entry" a map).
 * Indexes must be decimal 1..AWS_MAX_INDEX; lists come out
 * in index order. Everything lives in the request's arena.
 *
 * ## A request's life and its threads
 *
 * 1. sb__aws_req_start() runs on the worker loop when the headers are complete; the body is
 *    gathered there and, at its end, the service's process() decodes it and starts the action.
 * 2. A bad request is answered at once; a good one starts a broker operation and is then owned
 *    by the broker side (r->pending) until the operation's callback called sb__aws_wake().
 * 3. Callbacks run on the broker thread. They may chain operations; the last one encodes the
 *    response into r->out (the broker's result is only borrowed during the callback, so
 *    encoding there saves a deep copy) and calls sb__aws_wake().
 * 4. On the loop the outcome (r->out, or r->err encoded in the request's protocol) is sent and
 *    the exchange ended; the request is freed or kept for reuse by the loop's next request.
 *
 * Nothing touches a request concurrently: the loop leaves it alone while r->pending, the
 * broker side does not touch it after the wake-up, and the wake-up (a mutex and
 * uv_async_send) orders the broker thread's writes before the loop's reads. A worker loop with
 * live requests keeps an async handle open (aws.c), which keeps the loop running until the
 * last operation ended.
 */
#ifndef SB_PROTOCOLS_AWS_H
#define SB_PROTOCOLS_AWS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "switchboard/http.h"
#include "switchboard/rpc.h"
#include "switchboard/sqs.h"

#define AWS_MAX_PARAMS 4096u /* form pairs or JSON values per request */
#define AWS_MAX_INDEX 1000u  /* largest N of a flattened Query member */
#define AWS_MAX_KEY_DEPTH 8u /* dotted segments of one Query key */
#define AWS_HOST_MAX 256u    /* bytes of the Host kept for URLs */
#define AWS_ERR_MSG_MAX 512u /* bytes of an error message */
/* Queues SNS keeps for its webhooks (sns_int.h); internal, so SQS's ListQueues hides them. */
#define AWS_SNS_HOOK_PREFIX "sns-hook-"
#define AWS_POOL_MAX 64u               /* finished requests a worker loop keeps for reuse */
#define AWS_POOL_BUF_MAX (16u * 1024u) /* a kept request's buffers hold at most this much */

typedef enum aws_kind {
  AWS_STR = 0, /* s/len */
  AWS_LIST,    /* children without keys, in order */
  AWS_MAP,     /* children with keys, in order of first appearance */
} aws_kind_t;

/* A node of a decoded request. Owned by the request's arena. */
typedef struct aws_node {
  aws_kind_t kind;        /* what this node is */
  const char *key;        /* member name in a parent map (NUL-terminated); NULL in a list */
  size_t key_len;         /* bytes of key */
  const char *s;          /* AWS_STR: the value, NUL-terminated (may contain NULs) */
  size_t len;             /* AWS_STR: bytes of s */
  struct aws_node *child; /* AWS_LIST/AWS_MAP: first member */
  struct aws_node *last;  /* AWS_LIST/AWS_MAP: last member, for appends */
  struct aws_node *next;  /* next sibling */
  size_t n;               /* AWS_LIST/AWS_MAP: number of members */
  uint32_t index;         /* Query decoding: the member's numeric index, 0 when none */
} aws_node_t;

/* Decodes a form-encoded Query request body into a map (*out). Returns 0, or SB_EINVAL with
 * *err a static description (malformed escape, conflicting keys, bad index, too many
 * parameters), or SB_ENOMEM. */
int sb__aws_decode_form(sb_arena_t *a, const char *body, size_t len, aws_node_t **out,
                        const char **err);
/* Decodes an AWS JSON 1.0 request body (one JSON object; empty means {}) into a map. Returns
 * as sb__aws_decode_form(). */
int sb__aws_decode_json(sb_arena_t *a, const void *body, size_t len, aws_node_t **out,
                        const char **err);
/* The member named key of map m, or NULL (also when m is NULL or not a map). */
const aws_node_t *sb__aws_get(const aws_node_t *m, const char *key);

/* Verifies the request's SigV4 signature (Authorization header form) over body[0..len)
 * against the one credential key_id/secret, with now_s the server's clock (Unix seconds).
 * Returns 0, or SB_EINVAL / SB_ENOMEM with *code the AWS error code to answer
 * (MissingAuthenticationToken, IncompleteSignature, InvalidClientTokenId,
 * SignatureDoesNotMatch, RequestExpired, InternalError). Runs on the request's loop. */
int sb__aws_sigv4_check(sb_http_req_t *req, const void *body, size_t len, const char *key_id,
                        const char *secret, int64_t now_s, const char **code);

/* ---- response encoder (encode.c) ---- */

/* Writes one response in either protocol from one sequence of calls: XML for Query (the
 * result inside <ActionResponse><ActionResult>, lists and maps flattened the way botocore's
 * model says), a JSON object for JSON 1.0. Names are static strings. The first error
 * (SB_ENOMEM, SB_EINVAL for text JSON cannot carry) sticks in err; the buffer is borrowed. */
#define AWS_ENC_DEPTH 8u
typedef struct aws_enc {
  sb_buf_t *out; /* borrowed; the encoded response is appended */
  int json;      /* 1: JSON 1.0, 0: Query XML */
  struct {
    const char *item;  /* list: the XML element of an item; map: the entry's element */
    const char *kname; /* map: the XML element of an entry's key ("Name", "Key") */
    const char *vname; /* map: the XML element of an entry's value ("Value") */
    const char *wrap;  /* wrapped list or map: the element around its items, else NULL */
  } st[AWS_ENC_DEPTH]; /* open lists and maps, innermost last */
  unsigned depth;      /* entries of st in use */
  int err;             /* first error, 0 when none */
  sb_jw_t jw;          /* JSON writer over out */
} aws_enc_t;

/* xmlns: the service's XML namespace. */
void sb__aws_enc_begin(aws_enc_t *e, sb_buf_t *out, int json, const char *action, int result,
                       const char *xmlns);
void sb__aws_enc_end(aws_enc_t *e, const char *action, int result, const char *request_id);
/* Wrapped forms (SNS's Query API): <name><member>...</member></name> and
 * <name><entry><key/><value/>
 * </entry></name>; close with sb__aws_enc_list_end / sb__aws_enc_map_end. */
void sb__aws_enc_wlist_begin(aws_enc_t *e, const char *name);
void sb__aws_enc_wmap_begin(aws_enc_t *e, const char *name);
void sb__aws_enc_str(aws_enc_t *e, const char *name, const char *s, size_t len);
void sb__aws_enc_int(aws_enc_t *e, const char *name, int64_t v);
void sb__aws_enc_bool(aws_enc_t *e, const char *name, int v);
void sb__aws_enc_list_begin(aws_enc_t *e, const char *json_name, const char *xml_item);
void sb__aws_enc_list_end(aws_enc_t *e);
void sb__aws_enc_item_begin(aws_enc_t *e);
void sb__aws_enc_item_end(aws_enc_t *e);
void sb__aws_enc_item_str(aws_enc_t *e, const char *s, size_t len);
void sb__aws_enc_map_begin(aws_enc_t *e, const char *json_name, const char *xml_entry,
                           const char *kname, const char *vname);
void sb__aws_enc_map_end(aws_enc_t *e);
void sb__aws_enc_map_str(aws_enc_t *e, const char *k, size_t klen, const char *v, size_t vlen);
void sb__aws_enc_entry_begin(aws_enc_t *e, const char *k, size_t klen);
void sb__aws_enc_entry_end(aws_enc_t *e);
/* Appends s as XML character data: &, <, > and CR escaped (a raw CR would come back as LF
 * and break the body's MD5). */
int sb__aws_xml_text(sb_buf_t *out, const char *s, size_t len);

/* Message text AWS accepts: UTF-8 of #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
 * #x10000-#x10FFFF (what XML 1.0 can carry). 1 or 0. */
int sb__aws_valid_text(const char *s, size_t len);

/* ---- requests (aws.c) ---- */

/* An AWS error: its JSON shape name, its Query code (also in x-amzn-query-error) and
 * status. */
typedef struct aws_err {
  const char *name; /* JSON __type after the service's prefix */
  const char *code; /* Query <Code> */
  int status;       /* HTTP status */
  int sender;       /* 1: the caller's fault (Type Sender), 0: Receiver */
} aws_err_t;

typedef struct aws_req aws_req_t;

/* What differs between the services. Static. */
typedef struct aws_service {
  const char *json_type;     /* prefix of a JSON error's __type; NULL: no JSON protocol */
  const char *xmlns;         /* XML namespace of responses */
  int xml_detail;            /* XML errors carry an empty <Detail/> */
  size_t req_size;           /* bytes of the service's request, which begins with aws_req_t */
  size_t max_request;        /* bytes of a request body */
  const aws_err_t *too_long; /* the answer to a longer one */
  /* Runs on the loop once the whole body is in and nothing failed yet: decodes and checks
   * the request and either starts a broker operation (r->pending = 1) or leaves the outcome
   * (r->out or r->err) to be sent at once. */
  void (*process)(aws_req_t *r);
} aws_service_t;

/* The common head of a service's request. Allocated zeroed by sb__aws_req_start(), freed
 * after the exchange ended; its buffers and arena are owned and freed with it. */
struct aws_req {
  const aws_service_t *svc;      /* static */
  void *owner;                   /* the service's state (sb_sqs_t, sb_sns_t); borrowed */
  sb_http_req_t *http;           /* the exchange, until it is answered */
  struct aws_loop *lp;           /* the hand-offs of the request's loop (aws.c) */
  struct aws_req *next;          /* in that loop's list of ended or idle requests */
  int json;                      /* 1: AWS JSON 1.0, 0: Query */
  int tls;                       /* the request came over TLS: https URLs */
  int pending;                   /* a broker operation owns the request */
  int responded;                 /* the answer was sent */
  atomic_int aborted;            /* the client went away; the broker side may read it */
  sb_buf_t in;                   /* request body */
  sb_buf_t out;                  /* encoded response */
  sb_arena_t arena;              /* decoded parameters and per-action state */
  aws_node_t *p;                 /* the decoded parameters (a map) */
  char host[AWS_HOST_MAX];       /* Host header (or "localhost"), for URLs */
  char request_id[37];           /* x-amzn-RequestId, a random UUID */
  const char *action;            /* the action's name for responses ("Unknown" until known) */
  int result;                    /* 1: its Query response has an <ActionResult> element */
  const aws_err_t *err;          /* the error to answer, or NULL */
  char err_msg[AWS_ERR_MSG_MAX]; /* its message */
};

/* Errors every AWS service answers alike. */
extern const aws_err_t sb__aws_e_internal;  /* InternalError, 500 */
extern const aws_err_t sb__aws_e_missing;   /* MissingParameter */
extern const aws_err_t sb__aws_e_action;    /* InvalidAction */
extern const aws_err_t sb__aws_e_malformed; /* MalformedQueryString */

/* Starts and ends a successful response of r->action into r->out (an encoding failure
 * becomes InternalError); sb__aws_empty() is the response without result members. */
void sb__aws_begin(aws_req_t *r, aws_enc_t *e);
void sb__aws_end(aws_req_t *r, aws_enc_t *e);
void sb__aws_empty(aws_req_t *r);

/* A service attached to an rpc listener; lives inside the service's state. */
typedef struct aws_frontend {
  const aws_service_t *svc; /* static */
  void *owner;              /* the service's state, whose member this is */
} aws_frontend_t;

/* Attaches fe's service to rpc's listener (sb_rpc_add_frontend): requests claim() accepts
 * become requests of the service. fe is borrowed until the listener is freed. */
int sb__aws_add_frontend(sb_rpc_t *rpc, sb_rpc_claim_cb claim, aws_frontend_t *fe);
/* Records the error to answer; the first one wins. */
void sb__aws_fail(aws_req_t *r, const aws_err_t *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends the broker side of a pending request: the loop answers it. Broker thread only. */
void sb__aws_wake(aws_req_t *r);
/* Decodes the Query parameters (the form body, or a GET's query string) into r->p; fails
 * MalformedQueryString on bad input. 0 or -1. */
int sb__aws_decode_query(aws_req_t *r);
/* Verifies the request's SigV4 signature against the credential key_id/secret; fails with
 * AWS's error. 0 or -1. */
int sb__aws_auth(aws_req_t *r, const char *key_id, const char *secret);

/* The region, account and credential of cfg (or the defaults), checked. Returns 0 or
 * SB_EINVAL. */
typedef struct aws_ident {
  char region[64];  /* for ARNs */
  char account[33]; /* for URLs and ARNs */
  char key_id[129]; /* SigV4 access key id; "" in dev mode (nothing verified) */
  char secret[129]; /* its secret access key; cleansed by sb__aws_ident_clear() */
} aws_ident_t;
int sb__aws_ident(const sb_sqs_config_t *cfg, aws_ident_t *out);
void sb__aws_ident_clear(aws_ident_t *id);

#endif
