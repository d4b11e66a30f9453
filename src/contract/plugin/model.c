#include "contract/plugin/model.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "contract/plugin/ext.h"
#include "contract/plugin/names.h"
#include "contract/plugin/rules.h"
#include "core/codec.h"
#include "google/api/http.pb-c.h"
#include "switchboard/error.h"

/* Everything one build needs to say where a problem is. */
typedef struct build {
  sb_arena_t *a;                                               /* owns all model memory */
  const Google__Protobuf__Compiler__CodeGeneratorRequest *req; /* borrowed */
  const Google__Protobuf__FileDescriptorProto *fd;             /* the file being modelled */
  const char **err;                                            /* set on SB_EINVAL */
} build_t;

/* printf into the arena. NULL when out of memory. */
static char *aprintf(sb_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *aprintf(sb_arena_t *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *s = sb_arena_alloc(a, (size_t)n + 1);
  if (!s) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* Records a contract error "file: where: what" and returns SB_EINVAL (or SB_ENOMEM when even
 * the message cannot be allocated). */
static int fail(build_t *b, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(build_t *b, const char *where, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  *b->err = aprintf(b->a, "%s: %s: %s", b->fd->name, where, what);
  return *b->err ? SB_EINVAL : SB_ENOMEM;
}

/* The C package of file f: its (pb_c_file).c_package when set, else its proto package.
 * Sets *out (arena or borrowed; "" without a package). Returns 0, SB_EINVAL or SB_ENOMEM. */
static int c_package(build_t *b, const Google__Protobuf__FileDescriptorProto *f, const char **out) {
  *out = f->package ? f->package : "";
  if (!f->options) return 0;
  const uint8_t *opts, *pkg;
  size_t n_opts, n_pkg;
  int rc = sb_ext_message(b->a, &f->options->base, SB_MODEL_EXT_PB_C_FILE, &opts, &n_opts);
  if (rc == 1) rc = sb_ext_raw_bytes(opts, n_opts, SB_MODEL_PB_C_FILE_C_PACKAGE, &pkg, &n_pkg);
  if (rc == SB_ENOMEM) return rc;
  if (rc < 0) return fail(b, "file options", "malformed (pb_c_file) option");
  if (rc == 1 && n_pkg > 0) {
    char *s = sb_arena_strndup(b->a, (const char *)pkg, n_pkg);
    if (!s) return SB_ENOMEM;
    *out = s;
  }
  return 0;
}

/* The message the dotted path rest ("Outer.Inner") names among msgs (recursively), or NULL. */
static const Google__Protobuf__DescriptorProto *
find_in(Google__Protobuf__DescriptorProto *const *msgs, size_t n, const char *rest) {
  const char *dot = strchr(rest, '.');
  size_t len = dot ? (size_t)(dot - rest) : strlen(rest);
  for (size_t i = 0; i < n; i++) {
    const Google__Protobuf__DescriptorProto *m = msgs[i];
    if (!m->name || strlen(m->name) != len || memcmp(m->name, rest, len) != 0) continue;
    if (!dot) return m;
    const Google__Protobuf__DescriptorProto *in =
        find_in(m->nested_type, m->n_nested_type, dot + 1);
    if (in) return in;
  }
  return NULL;
}

/* The message of fully qualified name (with or without the leading '.') among the files of
 * the request, or NULL; *file (when not NULL) is set to the file defining it. */
static const Google__Protobuf__DescriptorProto *
find_message(const build_t *b, const char *full,
             const Google__Protobuf__FileDescriptorProto **file) {
  const char *name = full && full[0] == '.' ? full + 1 : full ? full : "";
  for (size_t i = 0; i < b->req->n_proto_file; i++) {
    const Google__Protobuf__FileDescriptorProto *f = b->req->proto_file[i];
    const char *pkg = f->package ? f->package : "";
    size_t plen = strlen(pkg);
    const char *rest = name;
    if (plen) {
      if (strncmp(name, pkg, plen) != 0 || name[plen] != '.') continue;
      rest = name + plen + 1;
    }
    const Google__Protobuf__DescriptorProto *m = find_in(f->message_type, f->n_message_type, rest);
    if (m) {
      if (file) *file = f;
      return m;
    }
  }
  return NULL;
}

/* Resolves a fully qualified message name (".items.v1.Item") to protoc-c's C type name and
 * descriptor variable. Returns 0, SB_EINVAL (no such message in the request) or SB_ENOMEM. */
static int resolve_type(build_t *b, const char *where, const char *full, const char **type,
                        const char **desc) {
  const char *name = full && full[0] == '.' ? full + 1 : full ? full : "";
  const Google__Protobuf__FileDescriptorProto *f = NULL;
  if (!find_message(b, name, &f))
    return fail(b, where, "message type %s is not defined in any file protoc passed", name);
  const char *pkg = f->package ? f->package : "";
  const char *rest = pkg[0] ? name + strlen(pkg) + 1 : name;
  const char *cpkg;
  int rc = c_package(b, f, &cpkg);
  if (rc) return rc;
  char *t = sb_names_camel(b->a, cpkg, rest);
  char *l = sb_names_lower(b->a, cpkg, rest);
  char *d = l ? aprintf(b->a, "%s__descriptor", l) : NULL;
  if (!t || !d) return SB_ENOMEM;
  if (type) *type = t;
  *desc = d;
  return 0;
}

/* 1 when s is an RFC 9110 token (a method name), 0 if not. */
static int is_token(const char *s) {
  if (!*s) return 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c)) return 0;
  }
  return 1;
}

/* Fills *out from one HttpRule (not its additional_bindings). Returns 0, SB_EINVAL. */
static int convert_rule(build_t *b, const char *where, const Google__Api__HttpRule *r,
                        sb_model_rule_t *out) {
  switch (r->pattern_case) {
  case GOOGLE__API__HTTP_RULE__PATTERN_GET:
    out->verb = "GET";
    out->path = r->get;
    break;
  case GOOGLE__API__HTTP_RULE__PATTERN_PUT:
    out->verb = "PUT";
    out->path = r->put;
    break;
  case GOOGLE__API__HTTP_RULE__PATTERN_POST:
    out->verb = "POST";
    out->path = r->post;
    break;
  case GOOGLE__API__HTTP_RULE__PATTERN_DELETE:
    out->verb = "DELETE";
    out->path = r->delete_;
    break;
  case GOOGLE__API__HTTP_RULE__PATTERN_PATCH:
    out->verb = "PATCH";
    out->path = r->patch;
    break;
  case GOOGLE__API__HTTP_RULE__PATTERN_CUSTOM:
    out->verb = r->custom ? r->custom->kind : NULL;
    out->path = r->custom ? r->custom->path : NULL;
    if (!out->verb || !is_token(out->verb))
      return fail(b, where, "google.api.http custom kind must be an HTTP method name");
    break;
  default:
    return fail(b, where,
                "a google.api.http rule sets no verb (get, put, post, delete, "
                "patch or custom)");
  }
  if (!out->path || out->path[0] != '/')
    return fail(b, where, "google.api.http path must start with '/'");
  out->body = r->body && r->body[0] ? r->body : NULL;
  out->response_body = r->response_body && r->response_body[0] ? r->response_body : NULL;
  return 0;
}

/* Reads google.api.http of opts into m->rules: the rule, then each additional binding. */
static int read_http(build_t *b, const char *where, const ProtobufCMessage *opts,
                     sb_model_method_t *m) {
  const uint8_t *p;
  size_t n;
  int rc = sb_ext_message(b->a, opts, SB_MODEL_EXT_HTTP, &p, &n);
  if (rc == SB_ENOMEM) return rc;
  if (rc < 0) return fail(b, where, "google.api.http is not encoded as a message");
  if (rc == 0) return 0;
  ProtobufCAllocator alloc = sb_ext_allocator(b->a);
  Google__Api__HttpRule *r = google__api__http_rule__unpack(&alloc, n, p);
  if (!r) return fail(b, where, "google.api.http does not decode as google.api.HttpRule");
  m->n_rules = 1 + r->n_additional_bindings;
  m->rules = sb_arena_alloc(b->a, m->n_rules * sizeof *m->rules);
  if (!m->rules) return SB_ENOMEM;
  if ((rc = convert_rule(b, where, r, &m->rules[0]))) return rc;
  for (size_t i = 0; i < r->n_additional_bindings; i++) {
    const Google__Api__HttpRule *extra = r->additional_bindings[i];
    if (extra->n_additional_bindings)
      return fail(b, where, "additional_bindings may not have additional_bindings");
    if ((rc = convert_rule(b, where, extra, &m->rules[1 + i]))) return rc;
  }
  return 0;
}

/* 1 when p[0..n) is an identifier of TypeScript and JavaScript: [A-Za-z_$][A-Za-z0-9_$]*. */
static int ts_identifier(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int alpha =
        (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || p[i] == '_' || p[i] == '$';
    if (!alpha && !(i > 0 && p[i] >= '0' && p[i] <= '9')) return 0;
  }
  return n > 0;
}

/* Reads switchboard.success_status, switchboard.cache_control and switchboard.trpc_name of
 * opts into m. */
static int read_switchboard_options(build_t *b, const char *where, const ProtobufCMessage *opts,
                                    sb_model_method_t *m) {
  uint64_t v;
  int rc = sb_ext_varint(opts, SB_MODEL_EXT_SUCCESS_STATUS, &v);
  if (rc < 0) return fail(b, where, "switchboard.success_status is not encoded as an int32");
  if (rc == 1) {
    int64_t status = (int64_t)v; /* int32 is sign-extended to 64 bits on the wire */
    if (status != 0 && (status < 200 || status > 299))
      return fail(b, where, "switchboard.success_status %lld is not a 2xx status",
                  (long long)status);
    m->success_status = (int32_t)status;
  }
  const uint8_t *p;
  size_t n;
  rc = sb_ext_bytes(opts, SB_MODEL_EXT_CACHE_CONTROL, &p, &n);
  if (rc < 0) return fail(b, where, "switchboard.cache_control is not encoded as a string");
  if (rc == 1 && n > 0) {
    for (size_t i = 0; i < n; i++)
      if (p[i] < 0x20 || p[i] == 0x7f)
        return fail(b, where, "switchboard.cache_control contains a control character");
    char *s = sb_arena_strndup(b->a, (const char *)p, n);
    if (!s) return SB_ENOMEM;
    m->cache_control = s;
  }
  rc = sb_ext_bytes(opts, SB_MODEL_EXT_TRPC_NAME, &p, &n);
  if (rc < 0) return fail(b, where, "switchboard.trpc_name is not encoded as a string");
  if (rc == 1 && n > 0) {
    if (!ts_identifier(p, n))
      return fail(b, where,
                  "switchboard.trpc_name is not an identifier ([A-Za-z_$][A-Za-z0-9_$]*)");
    char *s = sb_arena_strndup(b->a, (const char *)p, n);
    if (!s) return SB_ENOMEM;
    m->trpc_name = s;
  }
  return 0;
}

static int build_method(build_t *b, const sb_model_service_t *svc,
                        const Google__Protobuf__MethodDescriptorProto *md, sb_model_method_t *m) {
  int rc;
  m->name = md->name ? md->name : "";
  const char *where = aprintf(b->a, "%s.%s", svc->full_name, m->name);
  const char *lower = sb_names_lower(b->a, NULL, m->name);
  if (!where || !lower) return SB_ENOMEM;
  /* protoc-c declares <service>__<lower>() for each method: it must not be a name we define. */
  if (!strcmp(lower, "desc") || !strcmp(lower, "register"))
    return fail(b, where, "the method name clashes with the generated %s__%s", svc->c_lower, lower);
  m->member = sb_names_is_c_keyword(lower) ? aprintf(b->a, "%s_", lower) : lower;
  m->grpc_path = aprintf(b->a, "/%s/%s", svc->full_name, m->name);
  if (!m->member || !m->grpc_path) return SB_ENOMEM;
  if ((rc = resolve_type(b, where, md->input_type, &m->in_type, &m->in_desc))) return rc;
  if ((rc = resolve_type(b, where, md->output_type, &m->out_type, &m->out_desc))) return rc;

  static const char *const kinds[] = {"SB_METHOD_UNARY", "SB_METHOD_SERVER_STREAMING",
                                      "SB_METHOD_CLIENT_STREAMING", "SB_METHOD_BIDI_STREAMING"};
  m->kind = kinds[(md->server_streaming ? 1 : 0) + (md->client_streaming ? 2 : 0)];
  m->idempotency = "SB_IDEMPOTENCY_UNKNOWN";
  const Google__Protobuf__MethodOptions *o = md->options;
  if (o && o->has_idempotency_level) {
    if (o->idempotency_level ==
        GOOGLE__PROTOBUF__METHOD_OPTIONS__IDEMPOTENCY_LEVEL__NO_SIDE_EFFECTS)
      m->idempotency = "SB_IDEMPOTENCY_NO_SIDE_EFFECTS";
    else if (o->idempotency_level ==
             GOOGLE__PROTOBUF__METHOD_OPTIONS__IDEMPOTENCY_LEVEL__IDEMPOTENT)
      m->idempotency = "SB_IDEMPOTENCY_IDEMPOTENT";
  }
  if (o) {
    if ((rc = read_http(b, where, &o->base, m))) return rc;
    if ((rc = read_switchboard_options(b, where, &o->base, m))) return rc;
  }
  return 0;
}

static int build_service(build_t *b, const char *cpkg,
                         const Google__Protobuf__ServiceDescriptorProto *sd,
                         sb_model_service_t *s) {
  const char *name = sd->name ? sd->name : "";
  s->package = b->fd->package ? b->fd->package : "";
  s->full_name = s->package[0] ? aprintf(b->a, "%s.%s", s->package, name) : name;
  s->c_type = sb_names_camel(b->a, cpkg, name);
  s->c_lower = sb_names_lower(b->a, cpkg, name);
  if (!s->full_name || !s->c_type || !s->c_lower) return SB_ENOMEM;
  s->n_methods = sd->n_method;
  s->methods = sb_arena_alloc(b->a, (s->n_methods ? s->n_methods : 1) * sizeof *s->methods);
  if (!s->methods) return SB_ENOMEM;
  memset(s->methods, 0, (s->n_methods ? s->n_methods : 1) * sizeof *s->methods);
  for (size_t i = 0; i < s->n_methods; i++) {
    int rc = build_method(b, s, sd->method[i], &s->methods[i]);
    if (rc) return rc;
    /* Two methods may differ only in case or underscores ("GetItem", "get_item"). */
    for (size_t j = 0; j < i; j++)
      if (!strcmp(s->methods[j].member, s->methods[i].member))
        return fail(b, s->full_name, "methods %s and %s both become the C name %s",
                    s->methods[j].name, s->methods[i].name, s->methods[i].member);
  }
  return 0;
}

/* ---- validation tables ---- */

/* A message met while collecting validation tables. */
typedef struct vnode {
  const char *full;                           /* without the leading '.' */
  const Google__Protobuf__DescriptorProto *m; /* borrowed from the request */
  sb_field_rule_t *rules;                     /* own rules, sorted by number; arena */
  size_t n_rules;
  size_t *next; /* indexes of the nodes its message fields lead to; arena */
  size_t n_next;
  int needed; /* has rules, or leads to a node that has */
} vnode_t;

typedef struct vgraph {
  vnode_t *nodes; /* arena; grows by copying */
  size_t n, cap;
} vgraph_t;

static int is_map_entry(const Google__Protobuf__DescriptorProto *m) {
  return m && m->options && m->options->has_map_entry && m->options->map_entry;
}

static int cmp_rule(const void *x, const void *y) {
  const sb_field_rule_t *a = x, *c = y;
  return a->number < c->number ? -1 : a->number > c->number;
}

/* The rules of every field of m (named full), checked; *out gets them sorted by number. */
static int message_rules(build_t *b, const char *full, const Google__Protobuf__DescriptorProto *m,
                         sb_field_rule_t **out, size_t *n_out) {
  *out = sb_arena_alloc(b->a, (m->n_field ? m->n_field : 1) * sizeof **out);
  if (!*out) return SB_ENOMEM;
  *n_out = 0;
  for (size_t i = 0; i < m->n_field; i++) {
    const Google__Protobuf__FieldDescriptorProto *f = m->field[i];
    int is_map = f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED &&
                 f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE &&
                 is_map_entry(find_message(b, f->type_name, NULL));
    char why[256];
    int rc = sb_rules_read(b->a, f, is_map, &(*out)[*n_out], why, sizeof why);
    if (rc == SB_ENOMEM) return rc;
    if (rc < 0) {
      const char *where = aprintf(b->a, "%s.%s", full, f->name ? f->name : "");
      return where ? fail(b, where, "(switchboard.field): %s", why) : SB_ENOMEM;
    }
    if (rc == 1) (*n_out)++;
  }
  qsort(*out, *n_out, sizeof **out, cmp_rule);
  return 0;
}

/* The node of message full, added (with its rules) when new. Sets *idx. */
static int vnode_of(build_t *b, vgraph_t *g, const char *full, size_t *idx) {
  if (full[0] == '.') full++;
  for (size_t i = 0; i < g->n; i++)
    if (!strcmp(g->nodes[i].full, full)) {
      *idx = i;
      return 0;
    }
  const Google__Protobuf__DescriptorProto *m = find_message(b, full, NULL);
  if (!m) return fail(b, full, "message type is not defined in any file protoc passed");
  if (g->n == g->cap) {
    size_t cap = g->cap ? 2 * g->cap : 16;
    vnode_t *n = sb_arena_alloc(b->a, cap * sizeof *n);
    if (!n) return SB_ENOMEM;
    if (g->n) memcpy(n, g->nodes, g->n * sizeof *n);
    g->nodes = n;
    g->cap = cap;
  }
  vnode_t *v = &g->nodes[g->n];
  memset(v, 0, sizeof *v);
  v->full = full;
  v->m = m;
  int rc = message_rules(b, full, m, &v->rules, &v->n_rules);
  if (rc) return rc;
  v->needed = v->n_rules > 0;
  *idx = g->n++;
  return 0;
}

/* Collects the messages reachable from the request types of the file's methods, keeps those
 * that have rules or lead to one, and resolves their descriptor names. */
static int build_vmsgs(build_t *b, sb_model_file_t *out) {
  vgraph_t g = {0};
  int rc;
  size_t idx;
  for (size_t i = 0; i < b->fd->n_service; i++)
    for (size_t j = 0; j < b->fd->service[i]->n_method; j++)
      if ((rc = vnode_of(b, &g, b->fd->service[i]->method[j]->input_type, &idx))) return rc;
  /* Breadth first: nodes appended while walking are walked in turn. */
  for (size_t i = 0; i < g.n; i++) {
    const Google__Protobuf__DescriptorProto *m = g.nodes[i].m;
    size_t *next = sb_arena_alloc(b->a, (m->n_field ? m->n_field : 1) * sizeof *next);
    if (!next) return SB_ENOMEM;
    size_t n_next = 0;
    for (size_t k = 0; k < m->n_field; k++) {
      const Google__Protobuf__FieldDescriptorProto *f = m->field[k];
      if (f->type != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE) continue;
      if ((rc = vnode_of(b, &g, f->type_name, &idx))) return rc;
      next[n_next++] = idx;
    }
    g.nodes[i].next = next; /* g.nodes may have moved: index again */
    g.nodes[i].n_next = n_next;
  }
  /* needed = has rules or leads to a needed node: iterate to the fixed point (cycles allowed). */
  for (int changed = 1; changed;) {
    changed = 0;
    for (size_t i = 0; i < g.n; i++) {
      if (g.nodes[i].needed) continue;
      for (size_t k = 0; k < g.nodes[i].n_next && !g.nodes[i].needed; k++)
        if (g.nodes[g.nodes[i].next[k]].needed) g.nodes[i].needed = changed = 1;
    }
  }
  size_t n = 0;
  for (size_t i = 0; i < g.n; i++)
    n += (size_t)g.nodes[i].needed;
  out->vmsgs = sb_arena_alloc(b->a, (n ? n : 1) * sizeof *out->vmsgs);
  if (!out->vmsgs) return SB_ENOMEM;
  for (size_t i = 0; i < g.n; i++) {
    if (!g.nodes[i].needed) continue;
    sb_model_vmsg_t *v = &out->vmsgs[out->n_vmsgs++];
    v->full = g.nodes[i].full;
    v->fields = g.nodes[i].rules;
    v->n_fields = g.nodes[i].n_rules;
    if ((rc = resolve_type(b, v->full, v->full, NULL, &v->desc))) return rc;
  }
  return 0;
}

/* Checks the rules of every message the file defines, reachable from a method or not, so a
 * mistake is reported where it is written. */
static int check_rules(build_t *b, const char *prefix,
                       Google__Protobuf__DescriptorProto *const *msgs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *name = msgs[i]->name ? msgs[i]->name : "";
    const char *full = prefix[0] ? aprintf(b->a, "%s.%s", prefix, name) : name;
    if (!full) return SB_ENOMEM;
    sb_field_rule_t *rules;
    size_t n_rules;
    int rc = message_rules(b, full, msgs[i], &rules, &n_rules);
    if (!rc) rc = check_rules(b, full, msgs[i]->nested_type, msgs[i]->n_nested_type);
    if (rc) return rc;
  }
  return 0;
}

/* Collects the fields of msgs (named under prefix, recursively) whose json_name is not the
 * default lowerCamelCase of their name. */
static int collect_jnames(build_t *b, sb_model_file_t *out, const char *prefix,
                          Google__Protobuf__DescriptorProto *const *msgs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const Google__Protobuf__DescriptorProto *m = msgs[i];
    const char *full = prefix[0] ? aprintf(b->a, "%s.%s", prefix, m->name ? m->name : "")
                       : m->name ? m->name
                                 : "";
    if (!full) return SB_ENOMEM;
    const char *desc = NULL;
    for (size_t k = 0; k < m->n_field; k++) {
      const Google__Protobuf__FieldDescriptorProto *f = m->field[k];
      if (!f->json_name || !f->name) continue;
      char *def = sb_arena_alloc(b->a, strlen(f->name) + 1);
      if (!def) return SB_ENOMEM;
      if (!strcmp(sb_json_name(f->name, def), f->json_name)) continue;
      int rc;
      if (!desc && (rc = resolve_type(b, full, full, NULL, &desc))) return rc;
      if (out->n_jnames == out->cap_jnames) {
        size_t cap = out->cap_jnames ? 2 * out->cap_jnames : 8;
        sb_model_jname_t *nj = sb_arena_alloc(b->a, cap * sizeof *nj);
        if (!nj) return SB_ENOMEM;
        if (out->n_jnames) memcpy(nj, out->jnames, out->n_jnames * sizeof *nj);
        out->jnames = nj;
        out->cap_jnames = cap;
      }
      out->jnames[out->n_jnames++] = (sb_model_jname_t){desc, (uint32_t)f->number, f->json_name};
    }
    int rc = collect_jnames(b, out, full, m->nested_type, m->n_nested_type);
    if (rc) return rc;
  }
  return 0;
}

/* Serializes fd without source_code_info (comments and spans: large, and not needed by
 * reflection clients) into the arena; sets *data and *len. Returns 0 or SB_ENOMEM. */
static int pack_descriptor(sb_arena_t *a, Google__Protobuf__FileDescriptorProto *fd, uint8_t **data,
                           size_t *len) {
  Google__Protobuf__SourceCodeInfo *sci = fd->source_code_info;
  fd->source_code_info = NULL;
  size_t n = google__protobuf__file_descriptor_proto__get_packed_size(fd);
  *data = sb_arena_alloc(a, n ? n : 1);
  if (*data) *len = google__protobuf__file_descriptor_proto__pack(fd, *data);
  fd->source_code_info = sci;
  return *data ? 0 : SB_ENOMEM;
}

static int serialize(build_t *b, Google__Protobuf__FileDescriptorProto *fd, sb_model_file_t *out) {
  return pack_descriptor(b->a, fd, &out->descriptor, &out->descriptor_len);
}

static Google__Protobuf__FileDescriptorProto *request_file(build_t *b, const char *name) {
  for (size_t i = 0; i < b->req->n_proto_file; i++)
    if (b->req->proto_file[i]->name && !strcmp(b->req->proto_file[i]->name, name))
      return b->req->proto_file[i];
  return NULL;
}

/* Appends the imports of fd to out->deps, depth first, each after its own imports and each
 * once. protoc sends every file a requested file imports, so a missing one is a protoc bug. */
static int collect_deps(build_t *b, const Google__Protobuf__FileDescriptorProto *fd,
                        sb_model_file_t *out, size_t cap, unsigned depth) {
  if (depth > b->req->n_proto_file) return fail(b, "imports", "import cycle");
  for (size_t i = 0; i < fd->n_dependency; i++) {
    const char *name = fd->dependency[i];
    int seen = 0;
    for (size_t j = 0; j < out->n_deps && !seen; j++)
      seen = !strcmp(out->deps[j].name, name);
    if (seen) continue;
    Google__Protobuf__FileDescriptorProto *dep = request_file(b, name);
    if (!dep) return fail(b, name, "imported file missing from the request");
    int rc = collect_deps(b, dep, out, cap, depth + 1);
    if (rc) return rc;
    if (out->n_deps == cap) return fail(b, name, "too many imports");
    sb_model_dep_t *d = &out->deps[out->n_deps];
    d->name = name;
    if ((rc = pack_descriptor(b->a, dep, &d->descriptor, &d->descriptor_len))) return rc;
    out->n_deps++;
  }
  return 0;
}

int sb_model_build(sb_arena_t *a, const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
                   Google__Protobuf__FileDescriptorProto *fd, sb_model_file_t *out,
                   const char **err) {
  build_t b = {a, req, fd, err};
  memset(out, 0, sizeof *out);
  out->name = fd->name ? fd->name : "";
  /* The name is pasted into #include "..." lines, where escapes do not exist. */
  for (const unsigned char *p = (const unsigned char *)out->name; *p; p++)
    if (*p == '"' || *p == '\\' || *p < 0x20 || *p == 0x7f)
      return fail(&b, "file name", "contains a quote, a backslash or a control character");
  size_t len = strlen(out->name);
  static const char suffix[] = ".proto";
  if (len > sizeof suffix - 1 && !strcmp(out->name + len - (sizeof suffix - 1), suffix))
    len -= sizeof suffix - 1;
  out->base = sb_arena_strndup(a, out->name, len);
  if (!out->base) return SB_ENOMEM;

  const char *cpkg;
  int rc = c_package(&b, fd, &cpkg);
  if (rc) return rc;
  out->n_services = fd->n_service;
  out->services =
      sb_arena_alloc(a, (out->n_services ? out->n_services : 1) * sizeof *out->services);
  if (!out->services) return SB_ENOMEM;
  for (size_t i = 0; i < out->n_services; i++)
    if ((rc = build_service(&b, cpkg, fd->service[i], &out->services[i]))) return rc;
  if ((rc = check_rules(&b, fd->package ? fd->package : "", fd->message_type, fd->n_message_type)))
    return rc;
  if ((rc = build_vmsgs(&b, out))) return rc;
  if ((rc = collect_jnames(&b, out, fd->package ? fd->package : "", fd->message_type,
                           fd->n_message_type)))
    return rc;
  /* Every import is one of the request's files, so there are fewer than n_proto_file. */
  size_t cap = req->n_proto_file ? req->n_proto_file : 1;
  out->deps = sb_arena_alloc(a, cap * sizeof *out->deps);
  if (!out->deps) return SB_ENOMEM;
  if (out->n_services && (rc = collect_deps(&b, fd, out, cap, 0))) return rc;
  return serialize(&b, fd, out);
}
