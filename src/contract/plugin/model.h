/*
 * The generator's model of one .proto file: what protoc-gen-switchboard emits, resolved and
 * validated, with every name already spelled as the generated C needs it.
 *
 * sb_model_build() reads the file's FileDescriptorProto from the CodeGeneratorRequest:
 * services and methods, the C names of request/response types (which may live in imported
 * files), idempotency_level, and the extension options google.api.http (72295728),
 * switchboard.success_status (51001) and switchboard.cache_control (51002); the validation
 * rules (switchboard.field, on fields) of every message a method receives. It also
 * serializes the file's descriptor without source_code_info, for server reflection.
 *
 * Ownership: every pointer in the model is allocated in, or borrowed by, the arena passed to
 * sb_model_build() (the request must outlive the arena's use). Single-threaded.
 */
#ifndef SB_CONTRACT_PLUGIN_MODEL_H
#define SB_CONTRACT_PLUGIN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "google/protobuf/compiler/plugin.pb-c.h"
#include "switchboard/rpc.h"

/* Field numbers of the extensions of google.protobuf.MethodOptions we read. They are facts
 * of proto/google/api/annotations.proto and proto/switchboard/options.proto. */
#define SB_MODEL_EXT_HTTP 72295728u        /* google.api.http: HttpRule */
#define SB_MODEL_EXT_SUCCESS_STATUS 51001u /* switchboard.success_status: int32 */
#define SB_MODEL_EXT_CACHE_CONTROL 51002u  /* switchboard.cache_control: string */
#define SB_MODEL_EXT_TRPC_NAME 51003u      /* switchboard.trpc_name: string */
/* protoc-c's (pb_c_file) FileOptions extension and its c_package field (protobuf-c.proto). */
#define SB_MODEL_EXT_PB_C_FILE 1019u
#define SB_MODEL_PB_C_FILE_C_PACKAGE 6u

/* One HTTP binding, as it goes into an sb_http_rule_t. */
typedef struct sb_model_rule {
  const char *verb;          /* "GET", "PUT", "POST", "DELETE", "PATCH" or the custom kind */
  const char *path;          /* URL template; starts with '/' */
  const char *body;          /* NULL when the rule has no body */
  const char *response_body; /* NULL when the whole response is the body */
} sb_model_rule_t;

typedef struct sb_model_method {
  const char *name;          /* "GetItem" */
  const char *member;        /* handler table member: "get_item" */
  const char *grpc_path;     /* "/items.v1.ItemService/GetItem" */
  const char *in_type;       /* C type of the request: "Items__V1__GetItemRequest" */
  const char *in_desc;       /* its descriptor: "items__v1__get_item_request__descriptor" */
  const char *out_type;      /* C type of the response */
  const char *out_desc;      /* its descriptor */
  const char *kind;          /* the sb_method_kind_t constant, e.g. "SB_METHOD_UNARY" */
  const char *idempotency;   /* the sb_idempotency_t constant */
  sb_model_rule_t *rules;    /* primary rule first, then the additional bindings */
  size_t n_rules;            /* 0 when the method has no google.api.http */
  int32_t success_status;    /* 200-299, or 0 when absent */
  const char *cache_control; /* NULL when absent or empty */
  const char *trpc_name;     /* NULL when absent or empty; else a checked identifier */
} sb_model_method_t;

typedef struct sb_model_service {
  const char *full_name;      /* "items.v1.ItemService" */
  const char *package;        /* "items.v1"; "" without a package */
  const char *c_type;         /* "Items__V1__ItemService" */
  const char *c_lower;        /* "items__v1__item_service" */
  sb_model_method_t *methods; /* in declaration order */
  size_t n_methods;
} sb_model_service_t;

/* A message type the validator must know: it has rules (switchboard/validate.proto) or
 * leads to one that has, and is reachable from a method's request type. */
typedef struct sb_model_vmsg {
  const char *full;        /* "items.v1.CreateItemRequest" */
  const char *desc;        /* protoc-c descriptor variable of the type */
  sb_field_rule_t *fields; /* rules of its own fields, sorted by number; may be empty */
  size_t n_fields;
} sb_model_vmsg_t;

/* A field whose json_name option differs from its lowerCamelCase name. */
typedef struct sb_model_jname {
  const char *desc;      /* protoc-c descriptor variable of its message */
  uint32_t number;       /* the field's number */
  const char *json_name; /* the custom name */
} sb_model_jname_t;
/* One file the modelled file imports, directly or not, serialized for reflection clients,
 * which need every file a descriptor refers to before they can use it. */
typedef struct sb_model_dep {
  const char *name;    /* "google/protobuf/empty.proto" */
  uint8_t *descriptor; /* serialized FileDescriptorProto without source_code_info */
  size_t descriptor_len;
} sb_model_dep_t;

typedef struct sb_model_file {
  const char *name; /* the .proto's name as protoc knows it: "items.proto" */
  const char *base; /* name without ".proto": outputs are base.sb.h, base.sb.c */
  sb_model_service_t *services;
  size_t n_services;
  sb_model_vmsg_t *vmsgs; /* validation tables shared by the file's services */
  size_t n_vmsgs;
  sb_model_jname_t *jnames; /* custom json_names of the file's messages (nested included) */
  size_t n_jnames, cap_jnames;
  uint8_t *descriptor; /* serialized FileDescriptorProto without source_code_info */
  size_t descriptor_len;
  sb_model_dep_t *deps; /* transitive imports, each after its own imports (a client can add
                           them to a descriptor pool in this order) */
  size_t n_deps;
} sb_model_file_t;

/* Builds the model of fd, one of req's proto_file. On success returns 0 and fills *out. When
 * the contract cannot be generated (an unresolvable type, a malformed or unusable option, two
 * methods with the same C name, ...) returns SB_EINVAL and sets *err to a message naming the
 * file and method, in the arena. Returns SB_ENOMEM when the arena runs out. */
int sb_model_build(sb_arena_t *a, const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
                   Google__Protobuf__FileDescriptorProto *fd, sb_model_file_t *out,
                   const char **err);

#endif
