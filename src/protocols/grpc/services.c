/*
 * The gRPC services every listener offers next to the registered ones: health checking
 * (grpc.health.v1) and server reflection (grpc.reflection.v1 and v1alpha). They are built-in
 * to the gRPC front-end only (not REST, not the OpenAPI document), and are ordinary generated
 * contracts (the .proto files in proto/ here) with handlers on the RPC layer's API.
 *
 * Health. Check answers SERVING for "" (the server) and for every registered service, and
 * NOT_FOUND for any other name, as the health checking protocol asks. Watch sends the same
 * status (SERVICE_UNKNOWN for unknown names) and keeps the stream open until the client goes:
 * statuses do not change while a server runs.
 *
 * Reflection. Descriptors come from the generated service descriptions: each service's own
 * file (sb_service_desc_t.file_descriptor) and every file it imports (deps), so a client can
 * rebuild every type without the .proto files. Symbols are found by walking the serialized
 * FileDescriptorProtos (sym_*), which are static data the generator wrote, not network input.
 * v1alpha is the same protocol under another package: its requests and responses are
 * re-encoded to and from the v1 types, whose wire format is identical.
 */
#include <stdlib.h>
#include <string.h>

#include "health.sb.h"
#include "protocols/grpc/services.h"
#include "reflection_v1.sb.h"
#include "reflection_v1alpha.sb.h"
#include "rpc/rpc_int.h"
#include "switchboard/error.h"

#define REFL_MAX_FILES 256u /* distinct files reflection serves (services' files + imports) */
#define REFL_MAX_NAME 512u  /* longest fully-qualified symbol name looked up */

/* FileDescriptorProto and nested descriptor field numbers (google/protobuf/descriptor.proto). */
enum {
  FD_PACKAGE = 2,
  FD_DEPENDENCY = 3,
  FD_MESSAGE = 4,
  FD_ENUM = 5,
  FD_SERVICE = 6,
  FD_EXTENSION = 7,
  MSG_NAME = 1,
  MSG_FIELD = 2,
  MSG_NESTED = 3,
  MSG_ENUM = 4,
  MSG_EXTENSION = 6,
  SVC_NAME = 1,
  SVC_METHOD = 2,
  NAMED_NAME = 1, /* name of an enum, method or field descriptor */
};

/* ---- a minimal protobuf wire walker over trusted descriptor bytes ---- */

typedef struct wire {
  const uint8_t *p, *end; /* unread bytes; p <= end */
} wire_t;

static int get_varint(wire_t *w, uint64_t *v) {
  *v = 0;
  for (unsigned shift = 0; shift < 64 && w->p < w->end; shift += 7) {
    uint8_t b = *w->p++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return 0;
  }
  return -1;
}

/* Reads the next field: its number, and for length-delimited ones the bytes in *sub. Returns 1
 * for a length-delimited field, 0 for any other (skipped), -1 at the end or on bad bytes. */
static int next_field(wire_t *w, unsigned *num, wire_t *sub) {
  uint64_t key, v;
  if (w->p >= w->end || get_varint(w, &key)) return -1;
  *num = (unsigned)(key >> 3);
  switch (key & 7) {
  case 0:
    return get_varint(w, &v) ? -1 : 0;
  case 1:
    if (w->end - w->p < 8) return -1;
    w->p += 8;
    return 0;
  case 5:
    if (w->end - w->p < 4) return -1;
    w->p += 4;
    return 0;
  case 2:
    if (get_varint(w, &v) || v > (uint64_t)(w->end - w->p)) return -1;
    *sub = (wire_t){w->p, w->p + v};
    w->p += v;
    return 1;
  default:
    return -1;
  }
}

/* The string field num of the message in m, or an empty span. */
static wire_t string_field(wire_t m, unsigned want) {
  unsigned num;
  wire_t sub;
  int r;
  while ((r = next_field(&m, &num, &sub)) >= 0)
    if (r == 1 && num == want) return sub;
  return (wire_t){NULL, NULL};
}

/* 1 when prefix + "." + name (or just name when the prefix is empty) equals sym. */
static int name_is(const char *prefix, size_t plen, wire_t name, const char *sym) {
  size_t nlen = (size_t)(name.end - name.p), slen = strlen(sym);
  if (!name.p) return 0;
  if (plen == 0) return nlen == slen && memcmp(name.p, sym, nlen) == 0;
  return plen + 1 + nlen == slen && memcmp(sym, prefix, plen) == 0 && sym[plen] == '.' &&
         memcmp(sym + plen + 1, name.p, nlen) == 0;
}

/* Appends "." + name to the prefix in buf (length *plen). Returns 0 or -1 when too long. */
static int push_name(char *buf, size_t *plen, wire_t name) {
  size_t nlen = (size_t)(name.end - name.p);
  if (*plen + 1 + nlen + 1 > REFL_MAX_NAME) return -1;
  if (*plen) buf[(*plen)++] = '.';
  if (nlen) memcpy(buf + *plen, name.p, nlen);
  *plen += nlen;
  buf[*plen] = '\0';
  return 0;
}

/* 1 when message m (a DescriptorProto under prefix) or anything nested in it is sym. */
static int message_has(wire_t m, char *prefix, size_t plen, const char *sym, unsigned depth) {
  wire_t name = string_field(m, MSG_NAME);
  if (name_is(prefix, plen, name, sym)) return 1;
  size_t mine = plen;
  if (depth > 32 || push_name(prefix, &mine, name)) return 0;
  unsigned num;
  wire_t sub;
  int r, found = 0;
  while (!found && (r = next_field(&m, &num, &sub)) >= 0) {
    if (r != 1) continue;
    if (num == MSG_NESTED)
      found = message_has(sub, prefix, mine, sym, depth + 1);
    else if (num == MSG_ENUM || num == MSG_EXTENSION || num == MSG_FIELD)
      found = name_is(prefix, mine, string_field(sub, NAMED_NAME), sym);
  }
  prefix[plen] = '\0';
  return found;
}

/* 1 when the file descriptor d defines sym (a message, enum, service, method, field or
 * extension, by its fully-qualified name without a leading dot). */
static int file_has_symbol(const uint8_t *d, size_t n, const char *sym) {
  char prefix[REFL_MAX_NAME];
  size_t plen = 0;
  wire_t pkg = string_field((wire_t){d, d + n}, FD_PACKAGE);
  prefix[0] = '\0';
  if (pkg.p && push_name(prefix, &plen, pkg)) return 0;
  wire_t w = {d, d + n}, sub;
  unsigned num;
  int r;
  while ((r = next_field(&w, &num, &sub)) >= 0) {
    if (r != 1) continue;
    if (num == FD_MESSAGE && message_has(sub, prefix, plen, sym, 0)) return 1;
    if ((num == FD_ENUM || num == FD_EXTENSION) &&
        name_is(prefix, plen, string_field(sub, NAMED_NAME), sym))
      return 1;
    if (num == FD_SERVICE) {
      wire_t sname = string_field(sub, SVC_NAME);
      if (name_is(prefix, plen, sname, sym)) return 1;
      size_t slen = plen;
      if (push_name(prefix, &slen, sname)) continue;
      wire_t m;
      unsigned mnum;
      int mr;
      while ((mr = next_field(&sub, &mnum, &m)) >= 0)
        if (mr == 1 && mnum == SVC_METHOD &&
            name_is(prefix, slen, string_field(m, NAMED_NAME), sym)) {
          prefix[plen] = '\0';
          return 1;
        }
      prefix[plen] = '\0';
    }
  }
  return 0;
}

/* ---- the set of files reflection knows ---- */

static const sb__svc_t *builtin_svcs(size_t *n);

typedef struct files {
  sb_file_desc_t f[REFL_MAX_FILES]; /* distinct by name; static data, borrowed */
  size_t n;
} files_t;

static void files_add(files_t *fs, const char *name, const uint8_t *d, size_t len) {
  if (!name || !d) return;
  for (size_t i = 0; i < fs->n; i++)
    if (strcmp(fs->f[i].name, name) == 0) return;
  if (fs->n < REFL_MAX_FILES) fs->f[fs->n++] = (sb_file_desc_t){name, d, len};
}

static void files_add_svc(files_t *fs, const sb_service_desc_t *d) {
  files_add(fs, d->file_name, d->file_descriptor, d->file_descriptor_len);
  for (size_t i = 0; i < d->n_deps; i++)
    files_add(fs, d->deps[i].name, d->deps[i].data, d->deps[i].len);
}

/* Every file of every service the gRPC front-end serves. */
static void files_collect(const sb_rpc_t *rpc, files_t *fs) {
  fs->n = 0;
  for (size_t i = 0; i < rpc->nsvcs; i++)
    files_add_svc(fs, rpc->svcs[i].desc);
  size_t nb;
  const sb__svc_t *b = builtin_svcs(&nb);
  for (size_t i = 0; i < nb; i++)
    files_add_svc(fs, b[i].desc);
}

static const sb_file_desc_t *files_find(const files_t *fs, const char *name, size_t len) {
  for (size_t i = 0; i < fs->n; i++)
    if (strlen(fs->f[i].name) == len && memcmp(fs->f[i].name, name, len) == 0) return &fs->f[i];
  return NULL;
}

/* Appends file f and, after it, every file it imports (transitively, once each) to out. */
static void closure(const files_t *fs, const sb_file_desc_t *f, const sb_file_desc_t **out,
                    size_t *n) {
  for (size_t i = 0; i < *n; i++)
    if (out[i] == f) return;
  if (*n == REFL_MAX_FILES) return;
  out[(*n)++] = f;
  wire_t w = {f->data, f->data + f->len}, sub;
  unsigned num;
  int r;
  while ((r = next_field(&w, &num, &sub)) >= 0) {
    if (r != 1 || num != FD_DEPENDENCY) continue;
    const sb_file_desc_t *dep = files_find(fs, (const char *)sub.p, (size_t)(sub.end - sub.p));
    if (dep) closure(fs, dep, out, n);
  }
}

/* ---- reflection ---- */

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_res_t;

/* Sends res on call; for v1alpha it is re-encoded as the v1alpha type first (same wire
 * format). Returns as sb_call_send(), or SB_ENOMEM. */
static int send_response(sb_call_t *call, const refl_res_t *res) {
  if (call->svc->desc == &grpc__reflection__v1__server_reflection__desc)
    return sb_call_send(call, &res->base);
  size_t n = protobuf_c_message_get_packed_size(&res->base);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return SB_ENOMEM;
  protobuf_c_message_pack(&res->base, buf);
  ProtobufCMessage *alpha = protobuf_c_message_unpack(
      &grpc__reflection__v1alpha__server_reflection_response__descriptor, NULL, n, buf);
  free(buf);
  if (!alpha) return SB_ENOMEM;
  int rc = sb_call_send(call, alpha);
  protobuf_c_message_free_unpacked(alpha, NULL);
  return rc;
}

/* Makes res an ErrorResponse (err, which res then borrows) with code and a static message. */
static void set_error(refl_res_t *res, Grpc__Reflection__V1__ErrorResponse *err, sb_code_t code,
                      const char *msg) {
  err->error_code = (int32_t)code;
  err->error_message = (char *)msg;
  res->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
  res->error_response = err;
}

/* Answers one reflection request. */
static void reflect(sb_call_t *call, const refl_req_t *req) {
  refl_res_t res = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
  Grpc__Reflection__V1__FileDescriptorResponse fdr =
      GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
  Grpc__Reflection__V1__ListServiceResponse lsr = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
  Grpc__Reflection__V1__ErrorResponse err = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
  res.valid_host = req->host;
  res.original_request = (refl_req_t *)req; /* borrowed for the encode below */
  files_t *fs = malloc(sizeof *fs);
  const sb_file_desc_t **found = malloc(REFL_MAX_FILES * sizeof *found);
  ProtobufCBinaryData *blobs = malloc(REFL_MAX_FILES * sizeof *blobs);
  size_t nb_svc;
  const sb__svc_t *b = builtin_svcs(&nb_svc);
  size_t nsvc = call->rpc->nsvcs + nb_svc;
  Grpc__Reflection__V1__ServiceResponse *svcs = malloc((nsvc ? nsvc : 1) * sizeof *svcs);
  Grpc__Reflection__V1__ServiceResponse **svcp = malloc((nsvc ? nsvc : 1) * sizeof *svcp);
  if (!fs || !found || !blobs || !svcs || !svcp) {
    set_error(&res, &err, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    goto send;
  }
  files_collect(call->rpc, fs);
  const sb_file_desc_t *start = NULL;
  switch (req->message_request_case) {
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
    for (size_t i = 0; i < nsvc; i++) {
      const sb_service_desc_t *d =
          i < call->rpc->nsvcs ? call->rpc->svcs[i].desc : b[i - call->rpc->nsvcs].desc;
      grpc__reflection__v1__service_response__init(&svcs[i]);
      svcs[i].name = (char *)d->full_name;
      svcp[i] = &svcs[i];
    }
    lsr.service = svcp;
    lsr.n_service = nsvc;
    res.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    res.list_services_response = &lsr;
    goto send;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
    start = files_find(fs, req->file_by_filename, strlen(req->file_by_filename));
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
    const char *sym = req->file_containing_symbol;
    if (sym[0] == '.') sym++;
    for (size_t i = 0; i < fs->n && !start; i++)
      if (file_has_symbol(fs->f[i].data, fs->f[i].len, sym)) start = &fs->f[i];
    break;
  }
  default:
    set_error(&res, &err, SB_CODE_UNIMPLEMENTED, "not supported by this server");
    goto send;
  }
  if (!start) {
    set_error(&res, &err, SB_CODE_NOT_FOUND, "not found");
    goto send;
  }
  size_t nf = 0;
  closure(fs, start, found, &nf);
  for (size_t i = 0; i < nf; i++)
    blobs[i] = (ProtobufCBinaryData){found[i]->len, (uint8_t *)found[i]->data};
  fdr.file_descriptor_proto = blobs;
  fdr.n_file_descriptor_proto = nf;
  res.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
  res.file_descriptor_response = &fdr;
send:
  send_response(call, &res);
  free(fs);
  free(found);
  free(blobs);
  free(svcs);
  free(svcp);
}

static void refl_message(sb_call_t *call, const ProtobufCMessage *msg, void *ud) {
  (void)ud;
  if (msg->descriptor == &grpc__reflection__v1__server_reflection_request__descriptor) {
    reflect(call, (const refl_req_t *)(const void *)msg);
    return;
  }
  /* v1alpha: the same bytes decode as the v1 request. */
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(n ? n : 1);
  refl_req_t *req = NULL;
  if (buf) {
    protobuf_c_message_pack(msg, buf);
    req = grpc__reflection__v1__server_reflection_request__unpack(NULL, n, buf);
    free(buf);
  }
  if (!req) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  reflect(call, req);
  grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
}

static void stream_done(sb_call_t *call, void *ud) {
  (void)ud;
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void reflection_info(sb_call_t *call, void *ud) {
  (void)ud;
  sb_call_stream_t cbs = {
      .on_message = refl_message, .on_end = stream_done, .on_cancel = stream_done, .ud = NULL};
  sb_call_set_stream(call, &cbs);
}

/* ---- health ---- */

/* 1 when name is "" or a service this server serves. */
static int known_service(const sb_rpc_t *rpc, const char *name) {
  if (!name[0]) return 1;
  for (size_t i = 0; i < rpc->nsvcs; i++)
    if (strcmp(rpc->svcs[i].desc->full_name, name) == 0) return 1;
  size_t nb;
  const sb__svc_t *b = builtin_svcs(&nb);
  for (size_t i = 0; i < nb; i++)
    if (strcmp(b[i].desc->full_name, name) == 0) return 1;
  return 0;
}

static void health_check(sb_call_t *call, const Grpc__Health__V1__HealthCheckRequest *req,
                         Grpc__Health__V1__HealthCheckResponse *res, void *ud) {
  (void)ud;
  if (!known_service(call->rpc, req->service)) {
    sb_call_finish(call, SB_CODE_NOT_FOUND, "unknown service");
    return;
  }
  res->status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void health_watch(sb_call_t *call, const Grpc__Health__V1__HealthCheckRequest *req,
                         Grpc__Health__V1__HealthCheckResponse *res, void *ud) {
  (void)ud;
  res->status = known_service(call->rpc, req->service)
                    ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                    : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
  if (sb_call_send(call, &res->base) < 0) {
    sb_call_finish(call, SB_CODE_CANCELLED, NULL);
    return;
  }
  /* The status never changes: hold the stream until the client leaves. */
  sb_call_stream_t cbs = {.on_cancel = stream_done};
  sb_call_set_stream(call, &cbs);
}

/* ---- the table ---- */

static const Grpc__Health__V1__Health_Handlers health_handlers = {
    .check = health_check,
    .watch = health_watch,
};
static const Grpc__Reflection__V1__ServerReflection_Handlers refl_v1_handlers = {
    .server_reflection_info = reflection_info,
};
static const Grpc__Reflection__V1alpha__ServerReflection_Handlers refl_v1alpha_handlers = {
    .server_reflection_info = reflection_info,
};

static const sb__svc_t builtins[] = {
    {&grpc__health__v1__health__desc, &health_handlers, NULL},
    {&grpc__reflection__v1__server_reflection__desc, &refl_v1_handlers, NULL},
    {&grpc__reflection__v1alpha__server_reflection__desc, &refl_v1alpha_handlers, NULL},
};

static const sb__svc_t *builtin_svcs(size_t *n) {
  *n = sizeof builtins / sizeof builtins[0];
  return builtins;
}

const sb__svc_t *sb__grpc_builtin(const sb_rpc_t *rpc, const char *path, size_t *mi) {
  (void)rpc;
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
    const sb_service_desc_t *d = builtins[i].desc;
    for (size_t m = 0; m < d->n_methods; m++)
      if (strcmp(d->methods[m].path, path) == 0) {
        *mi = m;
        return &builtins[i];
      }
  }
  return NULL;
}
