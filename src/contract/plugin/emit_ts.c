#include "contract/plugin/emit_ts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/plugin/ext.h"
#include "contract/plugin/model.h"
#include "core/codec.h"
#include "switchboard/error.h"

#define TS_MAX_DEPTH 64u /* nesting of message names resolved; protoc allows far less in use */

typedef Google__Protobuf__FileDescriptorProto file_t;
typedef Google__Protobuf__DescriptorProto msg_t;
typedef Google__Protobuf__EnumDescriptorProto enum_t;
typedef Google__Protobuf__FieldDescriptorProto field_t;
typedef Google__Protobuf__MethodDescriptorProto method_t;

/* A message or enum the file's declarations reach. */
typedef struct tsref {
  const char *full; /* ".items.v1.Item" as field type_names spell it; borrowed or arena */
  const char *pkg;  /* its file's package */
  const char *rel;  /* the name inside the package, "Outer.Inner"; arena */
  const msg_t *msg; /* the message, or NULL */
  const enum_t *en; /* the enum, or NULL */
  const char *ts;   /* the exported TypeScript name; arena */
} tsref_t;

typedef struct ts {
  sb_arena_t *a;                                               /* temporary memory */
  const Google__Protobuf__Compiler__CodeGeneratorRequest *req; /* borrowed */
  tsref_t *refs;                                               /* arena; grows by copy */
  size_t n, cap;
  sb_buf_t *out; /* borrowed */
  int err;       /* first error: SB_ENOMEM, SB_EINVAL; sticky */
} ts_t;

static void put(ts_t *g, const char *s) {
  if (!g->err) g->err = sb_buf_append(g->out, s, strlen(s));
}

static char *dupn(ts_t *g, const char *s, size_t n) {
  char *d = sb_arena_strndup(g->a, s, n);
  if (!d && !g->err) g->err = SB_ENOMEM;
  return d;
}

/* The JSON forms of the well-known types, or NULL for other names. */
static const char *wkt_ts(const char *full) {
  static const char *const map[][2] = {
      {".google.protobuf.Timestamp", "string"},
      {".google.protobuf.Duration", "string"},
      {".google.protobuf.FieldMask", "string"},
      {".google.protobuf.Empty", "Record<string, never>"},
      {".google.protobuf.Struct", "{ [key: string]: JsonValue }"},
      {".google.protobuf.Value", "JsonValue"},
      {".google.protobuf.ListValue", "JsonValue[]"},
      {".google.protobuf.NullValue", "null"},
      {".google.protobuf.Any", "{ \"@type\": string; [key: string]: unknown }"},
      {".google.protobuf.DoubleValue", "number"},
      {".google.protobuf.FloatValue", "number"},
      {".google.protobuf.Int64Value", "string"},
      {".google.protobuf.UInt64Value", "string"},
      {".google.protobuf.Int32Value", "number"},
      {".google.protobuf.UInt32Value", "number"},
      {".google.protobuf.BoolValue", "boolean"},
      {".google.protobuf.StringValue", "string"},
      {".google.protobuf.BytesValue", "string"},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i][0], full) == 0) return map[i][1];
  return NULL;
}

/* Finds rel ("Outer.Inner") among msgs/enums of one scope, descending into nested types. */
static int find_in(const char *rel, msg_t *const *msgs, size_t nm, enum_t *const *enums, size_t ne,
                   const msg_t **m, const enum_t **e, unsigned depth) {
  if (depth > TS_MAX_DEPTH) return 0;
  size_t head = strcspn(rel, ".");
  for (size_t i = 0; i < nm; i++) {
    const msg_t *x = msgs[i];
    if (strlen(x->name) != head || memcmp(x->name, rel, head) != 0) continue;
    if (!rel[head]) {
      *m = x;
      return 1;
    }
    return find_in(rel + head + 1, x->nested_type, x->n_nested_type, x->enum_type, x->n_enum_type,
                   m, e, depth + 1);
  }
  for (size_t i = 0; i < ne && !rel[head]; i++)
    if (strcmp(enums[i]->name, rel) == 0) {
      *e = enums[i];
      return 1;
    }
  return 0;
}

static tsref_t *lookup(ts_t *g, const char *full);

/* Resolves every message or enum the fields of m name (recursively, through lookup). */
static void reach_fields(ts_t *g, const msg_t *m) {
  for (size_t i = 0; i < m->n_field && !g->err; i++)
    if (m->field[i]->type_name && !wkt_ts(m->field[i]->type_name))
      lookup(g, m->field[i]->type_name);
  for (size_t i = 0; i < m->n_nested_type && !g->err; i++) /* map entries are fields' types */
    if (m->nested_type[i]->options && m->nested_type[i]->options->map_entry)
      reach_fields(g, m->nested_type[i]);
}

static int is_map_entry(const msg_t *m) {
  return m && m->options && m->options->has_map_entry && m->options->map_entry;
}

/* The reference for full (".pkg.Name"), adding it and what it reaches when new. */
static tsref_t *lookup(ts_t *g, const char *full) {
  for (size_t i = 0; i < g->n; i++)
    if (strcmp(g->refs[i].full, full) == 0) return &g->refs[i];
  for (size_t fi = 0; fi < g->req->n_proto_file && !g->err; fi++) {
    const file_t *f = g->req->proto_file[fi];
    const char *pkg = f->package ? f->package : "";
    size_t pl = strlen(pkg);
    const char *rel;
    if (pl == 0)
      rel = full + 1;
    else if (strncmp(full + 1, pkg, pl) == 0 && full[pl + 1] == '.')
      rel = full + pl + 2;
    else
      continue;
    const msg_t *m = NULL;
    const enum_t *e = NULL;
    if (!find_in(rel, f->message_type, f->n_message_type, f->enum_type, f->n_enum_type, &m, &e, 0))
      continue;
    if (is_map_entry(m)) return NULL; /* written inline by its field */
    if (g->n == g->cap) {
      size_t cap = g->cap ? 2 * g->cap : 32;
      tsref_t *r = sb_arena_alloc(g->a, cap * sizeof *r);
      if (!r) {
        g->err = SB_ENOMEM;
        return NULL;
      }
      if (g->n) memcpy(r, g->refs, g->n * sizeof *r);
      g->refs = r;
      g->cap = cap;
    }
    tsref_t *t = &g->refs[g->n++];
    char *ts = dupn(g, rel, strlen(rel));
    for (char *p = ts; p && *p; p++)
      if (*p == '.') *p = '_';
    *t = (tsref_t){dupn(g, full, strlen(full)), pkg, dupn(g, rel, strlen(rel)), m, e, ts};
    size_t idx = g->n - 1;
    if (m) reach_fields(g, m);
    return g->err ? NULL : &g->refs[idx];
  }
  if (!g->err) g->err = SB_EINVAL;
  return NULL;
}

/* Two packages exporting the same name: both get their full names. */
static void disambiguate(ts_t *g) {
  for (size_t i = 0; i < g->n; i++)
    for (size_t j = i + 1; j < g->n; j++) {
      if (strcmp(g->refs[i].ts, g->refs[j].ts) != 0) continue;
      tsref_t *pair[2] = {&g->refs[i], &g->refs[j]};
      for (int k = 0; k < 2; k++) {
        char *s = dupn(g, pair[k]->full + 1, strlen(pair[k]->full + 1));
        for (char *p = s; p && *p; p++)
          if (*p == '.') *p = '_';
        if (s) pair[k]->ts = s;
      }
    }
}

static int cmp_refs(const void *x, const void *y) {
  return strcmp(((const tsref_t *)x)->ts, ((const tsref_t *)y)->ts);
}

/* The TypeScript type of one value of field f (not the repeated or map wrapper). */
static const char *scalar_ts(ts_t *g, const field_t *f) {
  switch (f->type) {
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32:
    return "number";
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64:
    return "string";
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL:
    return "boolean";
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES:
    return "string";
  default:
    break;
  }
  const char *w = f->type_name ? wkt_ts(f->type_name) : NULL;
  if (w) return w;
  tsref_t *t = f->type_name ? lookup(g, f->type_name) : NULL;
  return t ? t->ts : "unknown";
}

/* The map entry message a map field names, or NULL. */
static const msg_t *entry_of(ts_t *g, const msg_t *owner, const field_t *f) {
  if (f->label != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED || !f->type_name)
    return NULL;
  const char *dot = strrchr(f->type_name, '.');
  for (size_t i = 0; dot && i < owner->n_nested_type; i++)
    if (is_map_entry(owner->nested_type[i]) && strcmp(owner->nested_type[i]->name, dot + 1) == 0)
      return owner->nested_type[i];
  (void)g;
  return NULL;
}

static void message_decl(ts_t *g, const tsref_t *t) {
  put(g, "export interface ");
  put(g, t->ts);
  put(g, " {\n");
  for (size_t i = 0; i < t->msg->n_field; i++) {
    const field_t *f = t->msg->field[i];
    char def[256];
    const char *name = f->json_name && f->json_name[0] ? f->json_name : NULL;
    if (!name && strlen(f->name) < sizeof def) name = sb_json_name(f->name, def);
    put(g, "  ");
    put(g, name ? name : f->name);
    put(g, "?: ");
    const msg_t *entry = entry_of(g, t->msg, f);
    if (entry && entry->n_field == 2) {
      const field_t *v = entry->field[0]->number == 2 ? entry->field[0] : entry->field[1];
      put(g, "{ [key: string]: ");
      put(g, scalar_ts(g, v));
      put(g, " }");
    } else if (f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED) {
      const char *e = scalar_ts(g, f);
      int paren = strchr(e, ' ') != NULL;
      put(g, paren ? "(" : "");
      put(g, e);
      put(g, paren ? ")[]" : "[]");
    } else {
      put(g, scalar_ts(g, f));
    }
    put(g, ";\n");
  }
  put(g, "}\n\n");
}

static void enum_decl(ts_t *g, const tsref_t *t) {
  put(g, "export type ");
  put(g, t->ts);
  put(g, " =");
  for (size_t i = 0; i < t->en->n_value; i++) {
    put(g, i ? " | \"" : " \"");
    put(g, t->en->value[i]->name);
    put(g, "\"");
  }
  put(g, t->en->n_value ? ";\n\n" : " never;\n\n");
}

/* The input or output type of a method as TypeScript. */
static const char *method_type(ts_t *g, const char *name) {
  const char *w = wkt_ts(name);
  if (w) return w;
  const tsref_t *t = lookup(g, name);
  return t ? t->ts : "unknown";
}

/* 1 when the request message of m declares last_event_id (a resumable subscription). */
static int tracked(ts_t *g, const method_t *m) {
  const tsref_t *t = wkt_ts(m->input_type) ? NULL : lookup(g, m->input_type);
  for (size_t i = 0; t && t->msg && i < t->msg->n_field; i++)
    if (strcmp(t->msg->field[i]->name, "last_event_id") == 0) return 1;
  return 0;
}

static void lower_first(char *s) {
  if (s[0] >= 'A' && s[0] <= 'Z') s[0] = (char)(s[0] + 32);
}

/* The procedure name of m: its switchboard.trpc_name (the model checked it is an identifier;
 * *fixed = 1), else the method name with a lower-case first letter. */
static const char *proc_name(const method_t *m, char out[256], int *fixed) {
  const uint8_t *p;
  size_t n;
  *fixed = m->options && sb_ext_bytes(&m->options->base, SB_MODEL_EXT_TRPC_NAME, &p, &n) == 1 &&
           n > 0 && n < 256;
  if (*fixed) {
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
  }
  snprintf(out, 256, "%s", m->name);
  lower_first(out);
  return out;
}

/* 1 when the procedure name of m (in service si) is also one of another service of fd. */
static int clashes(const file_t *fd, size_t si, const method_t *m) {
  for (size_t sj = 0; sj < fd->n_service; sj++) {
    if (sj == si) continue;
    for (size_t k = 0; k < fd->service[sj]->n_method; k++) {
      const method_t *o = fd->service[sj]->method[k];
      if (o->client_streaming) continue;
      char a[256], b[256];
      int fa, fb;
      proc_name(m, a, &fa);
      proc_name(o, b, &fb);
      if (!fa && !fb && strcmp(a, b) == 0) return 1;
    }
  }
  return 0;
}

static void procedure(ts_t *g, const method_t *m, const char *indent) {
  char name[256];
  int fixed;
  proc_name(m, name, &fixed);
  int query = m->options && m->options->has_idempotency_level &&
              m->options->idempotency_level ==
                  GOOGLE__PROTOBUF__METHOD_OPTIONS__IDEMPOTENCY_LEVEL__NO_SIDE_EFFECTS;
  const char *kind = m->server_streaming ? "TRPCSubscriptionProcedure"
                     : query             ? "TRPCQueryProcedure"
                                         : "TRPCMutationProcedure";
  const char *in = method_type(g, m->input_type), *out = method_type(g, m->output_type);
  put(g, indent);
  put(g, name);
  put(g, ": ");
  put(g, kind);
  put(g, "<{ input: ");
  put(g, in);
  put(g, " | undefined; output: ");
  if (m->server_streaming) {
    put(g, tracked(g, m) ? "AsyncIterable<{ id: string; data: " : "AsyncIterable<");
    put(g, out);
    put(g, tracked(g, m) ? " }, void, any>" : ", void, any>");
  } else {
    put(g, out);
  }
  put(g, "; meta: object; errorShape: TRPCDefaultErrorShape }>;\n");
}

int sb_emit_ts(sb_arena_t *a, const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
               const Google__Protobuf__FileDescriptorProto *fd, sb_buf_t *out) {
  ts_t g = {a, req, NULL, 0, 0, out, 0};
  /* Everything the file declares, then whatever its methods reach. */
  const char *pkg = fd->package ? fd->package : "";
  for (size_t i = 0; i < fd->n_message_type && !g.err; i++) {
    char full[512];
    snprintf(full, sizeof full, pkg[0] ? ".%s.%s" : ".%s%s", pkg, fd->message_type[i]->name);
    lookup(&g, full);
  }
  for (size_t i = 0; i < fd->n_enum_type && !g.err; i++) {
    char full[512];
    snprintf(full, sizeof full, pkg[0] ? ".%s.%s" : ".%s%s", pkg, fd->enum_type[i]->name);
    lookup(&g, full);
  }
  for (size_t si = 0; si < fd->n_service && !g.err; si++)
    for (size_t mi = 0; mi < fd->service[si]->n_method && !g.err; mi++) {
      const method_t *m = fd->service[si]->method[mi];
      if (!wkt_ts(m->input_type)) lookup(&g, m->input_type);
      if (!wkt_ts(m->output_type)) lookup(&g, m->output_type);
    }
  if (g.err) return g.err;
  disambiguate(&g);
  qsort(g.refs, g.n, sizeof *g.refs, cmp_refs);

  put(&g, "// Generated by protoc-gen-switchboard from ");
  put(&g, fd->name ? fd->name : "(unnamed)");
  put(&g, ". Do not edit.\n"
          "// The tRPC router of the file's services as switchboard serves them: use it as\n"
          "//   createTRPCClient<AppRouter>({ links: [httpBatchLink({ url })] })\n"
          "// Targets @trpc/server 11.x (its v11 router and procedure types); messages are in\n"
          "// their proto3 JSON form.\n"
          "import type {\n"
          "  TRPCBuiltRouter,\n"
          "  TRPCDefaultErrorShape,\n"
          "  TRPCMutationProcedure,\n"
          "  TRPCQueryProcedure,\n"
          "  TRPCSubscriptionProcedure,\n"
          "} from '@trpc/server';\n\n"
          "export type JsonValue = null | boolean | number | string | JsonValue[] | "
          "{ [key: string]: JsonValue };\n\n");
  for (size_t i = 0; i < g.n; i++) {
    if (g.refs[i].msg)
      message_decl(&g, &g.refs[i]);
    else
      enum_decl(&g, &g.refs[i]);
  }
  put(&g, "type Root = {\n  ctx: object;\n  meta: object;\n  errorShape: TRPCDefaultErrorShape;\n"
          "  transformer: false;\n};\n\n");
  put(&g, "export type AppRouter = TRPCBuiltRouter<\n  Root,\n  {\n");
  /* Names no other service shares first, then each service's shared ones under its name. */
  for (size_t si = 0; si < fd->n_service; si++)
    for (size_t mi = 0; mi < fd->service[si]->n_method; mi++) {
      const method_t *m = fd->service[si]->method[mi];
      if (!m->client_streaming && !clashes(fd, si, m)) procedure(&g, m, "    ");
    }
  for (size_t si = 0; si < fd->n_service; si++) {
    const Google__Protobuf__ServiceDescriptorProto *s = fd->service[si];
    int open = 0;
    for (size_t mi = 0; mi < s->n_method; mi++) {
      const method_t *m = s->method[mi];
      if (m->client_streaming || !clashes(fd, si, m)) continue; /* client streams: no tRPC shape */
      if (!open) {
        char sn[256];
        snprintf(sn, sizeof sn, "%s", s->name);
        lower_first(sn);
        put(&g, "    ");
        put(&g, sn);
        put(&g, ": {\n");
        open = 1;
      }
      procedure(&g, m, "      ");
    }
    if (open) put(&g, "    };\n");
  }
  put(&g, "  }\n>;\n");
  return g.err;
}
