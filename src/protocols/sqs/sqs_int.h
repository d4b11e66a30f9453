/*
 * Private pieces of the SQS front-end, shared by its files and its fuzz target.
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
 * Indexes must be decimal 1..SQS_MAX_INDEX; lists come out
 * in index order. Everything lives in the request's arena.
 */
#ifndef SB_PROTOCOLS_SQS_INT_H
#define SB_PROTOCOLS_SQS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/buf.h"
#include "switchboard/http.h"

#define SQS_MAX_PARAMS 4096u   /* form pairs or JSON values per request */
#define SQS_MAX_INDEX 1000u    /* largest N of a flattened Query member */
#define SQS_MAX_KEY_DEPTH 8u   /* dotted segments of one Query key */
#define SQS_MAX_BATCH 10u      /* entries of a batch request (AWS's limit) */
#define SQS_MAX_MSG_ATTRS 10u  /* message attributes per message (AWS's limit) */
#define SQS_MAX_ATTR_NAME 256u /* bytes of a message attribute name */
#define SQS_MAX_BATCH_ID 80u   /* bytes of a batch entry id */
#define SQS_MAX_BODY_TOTAL                                                                         \
  (1u << 20) /* bytes of all messages of one batch (BatchRequestTooLong)                           \
              */

typedef enum sqs_kind {
  SQS_STR = 0, /* s/len */
  SQS_LIST,    /* children without keys, in order */
  SQS_MAP,     /* children with keys, in order of first appearance */
} sqs_kind_t;

/* A node of a decoded request. Owned by the request's arena. */
typedef struct sqs_node {
  sqs_kind_t kind;        /* what this node is */
  const char *key;        /* member name in a parent map (NUL-terminated); NULL in a list */
  size_t key_len;         /* bytes of key */
  const char *s;          /* SQS_STR: the value, NUL-terminated (may contain NULs) */
  size_t len;             /* SQS_STR: bytes of s */
  struct sqs_node *child; /* SQS_LIST/SQS_MAP: first member */
  struct sqs_node *last;  /* SQS_LIST/SQS_MAP: last member, for appends */
  struct sqs_node *next;  /* next sibling */
  size_t n;               /* SQS_LIST/SQS_MAP: number of members */
  uint32_t index;         /* Query decoding: the member's numeric index, 0 when none */
} sqs_node_t;

/* Decodes a form-encoded Query request body into a map (*out). Returns 0, or SB_EINVAL with
 * *err a static description (malformed escape, conflicting keys, bad index, too many
 * parameters), or SB_ENOMEM. */
int sb__sqs_decode_form(sb_arena_t *a, const char *body, size_t len, sqs_node_t **out,
                        const char **err);
/* Decodes an AWS JSON 1.0 request body (one JSON object; empty means {}) into a map. Returns
 * as sb__sqs_decode_form(). */
int sb__sqs_decode_json(sb_arena_t *a, const void *body, size_t len, sqs_node_t **out,
                        const char **err);
/* The member named key of map m, or NULL (also when m is NULL or not a map). */
const sqs_node_t *sb__sqs_get(const sqs_node_t *m, const char *key);

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

/* Verifies the request's SigV4 signature (Authorization header form) over body[0..len)
 * against the one credential key_id/secret, with now_s the server's clock (Unix seconds).
 * Returns 0, or SB_EINVAL / SB_ENOMEM with *code the AWS error code to answer
 * (MissingAuthenticationToken, IncompleteSignature, InvalidClientTokenId,
 * SignatureDoesNotMatch, RequestExpired, InternalError). Runs on the request's loop. */
int sb__sqs_sigv4_check(sb_http_req_t *req, const void *body, size_t len, const char *key_id,
                        const char *secret, int64_t now_s, const char **code);

/* ---- response encoder (encode.c) ---- */

/* Writes one response in either protocol from one sequence of calls: XML for Query (the
 * result inside <ActionResponse><ActionResult>, lists and maps flattened the way botocore's
 * model says), a JSON object for JSON 1.0. Names are static strings. The first error
 * (SB_ENOMEM, SB_EINVAL for text JSON cannot carry) sticks in err; the buffer is borrowed. */
#define SQS_ENC_DEPTH 8u
typedef struct sqs_enc {
  sb_buf_t *out; /* borrowed; the encoded response is appended */
  int json;      /* 1: JSON 1.0, 0: Query XML */
  struct {
    const char *item;  /* list: the XML element of an item; map: the entry's element */
    const char *kname; /* map: the XML element of an entry's key ("Name", "Key") */
    const char *vname; /* map: the XML element of an entry's value ("Value") */
    const char *wrap;  /* wrapped list or map: the element around its items, else NULL */
  } st[SQS_ENC_DEPTH]; /* open lists and maps, innermost last */
  unsigned depth;      /* entries of st in use */
  int err;             /* first error, 0 when none */
  sb_jw_t jw;          /* JSON writer over out */
} sqs_enc_t;

void sb__sqs_enc_begin(sqs_enc_t *e, sb_buf_t *out, int json, const char *action, int result);
/* The same with another XML namespace (SNS's). */
void sb__sqs_enc_begin_ns(sqs_enc_t *e, sb_buf_t *out, int json, const char *action, int result,
                          const char *xmlns);
void sb__sqs_enc_end(sqs_enc_t *e, const char *action, int result, const char *request_id);
/* Wrapped forms (SNS): <name><member>...</member></name> and <name><entry><key/><value/>
 * </entry></name>; close with sb__sqs_enc_list_end / sb__sqs_enc_map_end. */
void sb__sqs_enc_wlist_begin(sqs_enc_t *e, const char *name);
void sb__sqs_enc_wmap_begin(sqs_enc_t *e, const char *name);
void sb__sqs_enc_str(sqs_enc_t *e, const char *name, const char *s, size_t len);
void sb__sqs_enc_int(sqs_enc_t *e, const char *name, int64_t v);
void sb__sqs_enc_bool(sqs_enc_t *e, const char *name, int v);
void sb__sqs_enc_list_begin(sqs_enc_t *e, const char *json_name, const char *xml_item);
void sb__sqs_enc_list_end(sqs_enc_t *e);
void sb__sqs_enc_item_begin(sqs_enc_t *e);
void sb__sqs_enc_item_end(sqs_enc_t *e);
void sb__sqs_enc_item_str(sqs_enc_t *e, const char *s, size_t len);
void sb__sqs_enc_map_begin(sqs_enc_t *e, const char *json_name, const char *xml_entry,
                           const char *kname, const char *vname);
void sb__sqs_enc_map_end(sqs_enc_t *e);
void sb__sqs_enc_map_str(sqs_enc_t *e, const char *k, size_t klen, const char *v, size_t vlen);
void sb__sqs_enc_entry_begin(sqs_enc_t *e, const char *k, size_t klen);
void sb__sqs_enc_entry_end(sqs_enc_t *e);
/* Appends s as XML character data: &, <, > and CR escaped (a raw CR would come back as LF
 * and break the body's MD5). */
int sb__sqs_xml_text(sb_buf_t *out, const char *s, size_t len);

#endif
