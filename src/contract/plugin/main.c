/*
 * protoc-gen-switchboard: the protoc plugin of switchboard's contract pipeline.
 *
 *   protoc --plugin=protoc-gen-switchboard=PATH --switchboard_out=DIR \
 *          --c_out=DIR -I... items.proto
 *
 * protoc writes a google.protobuf.compiler.CodeGeneratorRequest to our stdin and reads a
 * CodeGeneratorResponse from our stdout (plugin.proto). For every file to generate we answer
 * <base>.sb.h and <base>.sb.c (see emit_c.h), which build on protoc-c's <base>.pb-c.h; the
 * .sb.c embeds the file's OpenAPI document (see emit_openapi.h). <base>.trpc.d.ts declares the
 * tRPC AppRouter type of the file's services for TypeScript clients (see emit_ts.h).
 *
 * Errors, as the plugin protocol wants them: a problem in the .proto files (an option we
 * cannot use, a name clash) goes into CodeGeneratorResponse.error, and we exit 0 so protoc
 * prints it against the file. A problem with protoc itself (an unreadable request) or with
 * this process (out of memory, a write error) is printed to stderr with exit status 1: no
 * partial output is ever written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/plugin/emit_c.h"
#include "contract/plugin/emit_openapi.h"
#include "contract/plugin/emit_ts.h"
#include "contract/plugin/model.h"
#include "core/arena.h"
#include "core/buf.h"
#include "switchboard/error.h"

#define PLUGIN_NAME "protoc-gen-switchboard"
#define PLUGIN_READ_CHUNK 65536u         /* bytes per read() of the request */
#define PLUGIN_MAX_REQUEST (1024u << 20) /* a request above 1 GiB is not a sane contract */

/* The response being built. Owns its file entries and their names and contents. */
typedef struct response {
  Google__Protobuf__Compiler__CodeGeneratorResponse msg;          /* files point into files[] */
  Google__Protobuf__Compiler__CodeGeneratorResponse__File **ptrs; /* msg.file */
  Google__Protobuf__Compiler__CodeGeneratorResponse__File *files; /* storage, n_cap entries */
  size_t n_cap;
} response_t;

/* Reads all of stdin into b. Returns 0, SB_ENOMEM, SB_ELIMIT or -errno. */
static int read_all(FILE *in, sb_buf_t *b) {
  for (;;) {
    int rc = sb_buf_reserve(b, PLUGIN_READ_CHUNK);
    if (rc) return rc;
    size_t n = fread(b->data + b->len, 1, b->cap - b->len, in);
    b->len += n;
    if (b->len > PLUGIN_MAX_REQUEST) return SB_ELIMIT;
    if (n == 0) return ferror(in) ? -EIO : 0;
  }
}

/* A NUL-terminated, malloc'd copy of the buffer's content; NULL when out of memory. */
static char *buf_to_string(const sb_buf_t *b) {
  char *s = malloc(sb_buf_pending(b) + 1);
  if (!s) return NULL;
  if (sb_buf_pending(b)) memcpy(s, sb_buf_head(b), sb_buf_pending(b));
  s[sb_buf_pending(b)] = '\0';
  return s;
}

/* Adds the file name = base + suffix with the text in b. Returns 0 or SB_ENOMEM. */
static int add_file(response_t *r, const char *base, const char *suffix, const sb_buf_t *b) {
  if (r->msg.n_file == r->n_cap) return SB_ENOMEM; /* sized up front; cannot happen */
  Google__Protobuf__Compiler__CodeGeneratorResponse__File *f = &r->files[r->msg.n_file];
  google__protobuf__compiler__code_generator_response__file__init(f);
  size_t n = strlen(base) + strlen(suffix) + 1;
  f->name = malloc(n);
  f->content = buf_to_string(b);
  if (!f->name || !f->content) {
    free(f->name);
    free(f->content);
    return SB_ENOMEM;
  }
  snprintf(f->name, n, "%s%s", base, suffix);
  r->ptrs[r->msg.n_file++] = f;
  return 0;
}

static void response_free(response_t *r) {
  for (size_t i = 0; r->files && i < r->n_cap; i++) {
    free(r->files[i].name);
    free(r->files[i].content);
  }
  free(r->files);
  free(r->ptrs);
  free(r->msg.error);
}

static Google__Protobuf__FileDescriptorProto *
find_file(const Google__Protobuf__Compiler__CodeGeneratorRequest *req, const char *name) {
  for (size_t i = 0; i < req->n_proto_file; i++)
    if (req->proto_file[i]->name && !strcmp(req->proto_file[i]->name, name))
      return req->proto_file[i];
  return NULL;
}

/* Generates the files of one .proto into r. Returns 0, SB_EINVAL (r->msg.error is set) or
 * SB_ENOMEM. */
static int generate(const Google__Protobuf__Compiler__CodeGeneratorRequest *req, const char *name,
                    response_t *r) {
  Google__Protobuf__FileDescriptorProto *fd = find_file(req, name);
  if (!fd) {
    const char *what = ": protoc sent no descriptor for this file";
    r->msg.error = malloc(strlen(name) + strlen(what) + 1);
    if (!r->msg.error) return SB_ENOMEM;
    sprintf(r->msg.error, "%s%s", name, what);
    return SB_EINVAL;
  }
  sb_arena_t arena;
  sb_arena_init(&arena);
  sb_model_file_t model;
  const char *err = NULL;
  sb_buf_t h = {0}, c = {0}, oa = {0}, ts = {0};
  int rc = sb_model_build(&arena, req, fd, &model, &err);
  if (rc == SB_EINVAL) {
    r->msg.error = strdup(err);
    if (!r->msg.error) rc = SB_ENOMEM;
  }
  if (rc == 0) rc = sb_emit_c_header(&model, &h);
  /* The OpenAPI document becomes a string in <base>.sb.c: NUL-terminate it. */
  if (rc == 0 && model.n_services > 0) rc = sb_emit_openapi(&arena, req, fd, &model, &oa);
  if (rc == 0 && model.n_services > 0) rc = sb_buf_append(&oa, "", 1);
  if (rc == 0)
    rc = sb_emit_c_source(&model, model.n_services ? (const char *)sb_buf_head(&oa) : NULL, &c);
  if (rc == 0) rc = add_file(r, model.base, ".sb.h", &h);
  if (rc == 0) rc = add_file(r, model.base, ".sb.c", &c);
  if (rc == 0) rc = sb_emit_ts(&arena, req, fd, &ts);
  if (rc == SB_EINVAL && !r->msg.error) {
    r->msg.error = strdup("a method or field names a type protoc did not describe");
    if (!r->msg.error) rc = SB_ENOMEM;
  }
  if (rc == 0) rc = add_file(r, model.base, ".trpc.d.ts", &ts);
  sb_buf_free(&h);
  sb_buf_free(&c);
  sb_buf_free(&oa);
  sb_buf_free(&ts);
  sb_arena_free(&arena);
  return rc;
}

/* Writes all of [p, p+n) to out and flushes. Returns 0 or -errno. */
static int write_all(FILE *out, const uint8_t *p, size_t n) {
  if (fwrite(p, 1, n, out) != n || fflush(out) != 0) return -EIO;
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1) {
    fprintf(stderr,
            "%s: run by protoc (--plugin=%s=PATH --switchboard_out=DIR), "
            "not by hand\n",
            PLUGIN_NAME, PLUGIN_NAME);
    return 1;
  }
  sb_buf_t in = {0};
  int rc = read_all(stdin, &in);
  if (rc) {
    fprintf(stderr, "%s: reading the request: %s\n", PLUGIN_NAME,
            rc == SB_ELIMIT   ? "too large"
            : rc == SB_ENOMEM ? "out of memory"
                              : "I/O error");
    sb_buf_free(&in);
    return 1;
  }
  Google__Protobuf__Compiler__CodeGeneratorRequest *req =
      google__protobuf__compiler__code_generator_request__unpack(NULL, sb_buf_pending(&in),
                                                                 sb_buf_head(&in));
  sb_buf_free(&in);
  if (!req) {
    fprintf(stderr, "%s: stdin is not a CodeGeneratorRequest\n", PLUGIN_NAME);
    return 1;
  }

  response_t r = {0};
  google__protobuf__compiler__code_generator_response__init(&r.msg);
  /* proto3 `optional` changes nothing for us: the descriptors already say what protoc-c
   * generated. Declaring it lets contracts use it. */
  r.msg.has_supported_features = 1;
  r.msg.supported_features =
      GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__FEATURE__FEATURE_PROTO3_OPTIONAL;
  r.n_cap = 3 * req->n_file_to_generate;
  r.files = calloc(r.n_cap ? r.n_cap : 1, sizeof *r.files);
  r.ptrs = calloc(r.n_cap ? r.n_cap : 1, sizeof *r.ptrs);
  rc = r.files && r.ptrs ? 0 : SB_ENOMEM;
  if (rc == 0 && req->parameter && req->parameter[0]) {
    const char *what = "protoc-gen-switchboard takes no parameters, got: ";
    r.msg.error = malloc(strlen(what) + strlen(req->parameter) + 1);
    if (r.msg.error) sprintf(r.msg.error, "%s%s", what, req->parameter);
    rc = r.msg.error ? SB_EINVAL : SB_ENOMEM;
  }
  for (size_t i = 0; rc == 0 && i < req->n_file_to_generate; i++)
    rc = generate(req, req->file_to_generate[i], &r);
  if (rc == SB_EINVAL) {
    /* A contract error: the response carries the message and no files (those generated
     * before the error stay owned by r until response_free). */
    r.msg.n_file = 0;
    rc = 0;
  }
  r.msg.file = r.ptrs;

  uint8_t *packed = NULL;
  if (rc == 0) {
    size_t n = google__protobuf__compiler__code_generator_response__get_packed_size(&r.msg);
    packed = malloc(n ? n : 1);
    if (!packed)
      rc = SB_ENOMEM;
    else
      n = google__protobuf__compiler__code_generator_response__pack(&r.msg, packed);
    if (packed) rc = write_all(stdout, packed, n);
  }
  if (rc)
    fprintf(stderr, "%s: %s\n", PLUGIN_NAME, rc == SB_ENOMEM ? "out of memory" : "write error");
  free(packed);
  response_free(&r);
  google__protobuf__compiler__code_generator_request__free_unpacked(req, NULL);
  return rc ? 1 : 0;
}
