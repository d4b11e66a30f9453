/*
 * switchboard gen: the contract pipeline without CMake.
 *
 *   switchboard gen [--out DIR] [-I DIR]... FILE.proto...
 *
 * Runs protoc with protoc-c's generator and protoc-gen-switchboard on each contract file,
 * exactly as switchboard_add_contract() does, and then generates the protobuf-c code of every
 * file the contracts import, so that DIR holds everything a build needs besides
 * libswitchboard. The imports libswitchboard itself contains (the well-known types,
 * descriptor.proto, google/api and switchboard options) keep only their headers:
 *
 *   switchboard gen --out gen items.proto
 *   cc main.c $(find gen -name '*.c') -Igen $(pkg-config --cflags --libs switchboard)
 *
 * Tools and files are found in this order: protoc on PATH; protoc-gen-switchboard next to this
 * binary (an installed prefix puts both in bin/), else the one of the build tree this binary
 * came from; the .proto files switchboard ships in <prefix>/share/switchboard/proto, else the
 * source tree's proto/; the system's google/protobuf files where the build found them. The
 * environment may override each: SB_PROTOC, SB_PROTOC_GEN_SWITCHBOARD, SB_PROTO_DIR,
 * SB_PROTOBUF_INCLUDE_DIR.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

#define GEN_MAX_FILES 256 /* contract files plus their imports in one run */
#define GEN_MAX_ARGS (GEN_MAX_FILES + 64)

#ifndef SB_BUILD_PLUGIN
#define SB_BUILD_PLUGIN ""
#endif
#ifndef SB_BUILD_PROTO_DIR
#define SB_BUILD_PROTO_DIR ""
#endif
#ifndef SB_BUILD_PROTOBUF_INCLUDE_DIR
#define SB_BUILD_PROTOBUF_INCLUDE_DIR "/usr/include"
#endif

static int usable(const char *path, int mode) {
  return path && path[0] && access(path, mode) == 0;
}

/* The directory of this executable, into buf. Returns 0, or -1 when /proc cannot tell. */
static int exe_dir(char *buf, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
  if (n <= 0) return -1;
  buf[n] = '\0';
  char *slash = strrchr(buf, '/');
  if (!slash) return -1;
  *slash = '\0';
  return 0;
}

/* Runs argv (argv[0] looked up on PATH); returns its exit status, or -1. */
static int run(char **argv) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execvp(argv[0], argv);
    fprintf(stderr, "switchboard gen: cannot run %s\n", argv[0]);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    ;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void gen_usage(FILE *f) {
  fprintf(f, "usage: switchboard gen [--out DIR] [-I DIR]... FILE.proto...\n"
             "  --out DIR   where the generated C goes (default: .)\n"
             "  -I DIR      an import directory (each file's own directory is one already)\n");
}

/* Whether libswitchboard carries the protobuf-c code of this import (the list of
 * sb_contract_protos in src/contract/plugin/CMakeLists.txt). */
static bool library_provides(const char *name) {
  static const char *const own[] = {"google/api/http.proto", "google/api/annotations.proto",
                                    "switchboard/options.proto", "switchboard/validate.proto",
                                    "google/protobuf/descriptor.proto"};
  static const char *const wkt[] = {
      "any",    "api",       "duration", "empty",   "field_mask", "source_context",
      "struct", "timestamp", "type",     "wrappers"};
  for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
    if (strcmp(name, own[i]) == 0) return true;
  for (size_t i = 0; i < sizeof wkt / sizeof wkt[0]; i++) {
    char full[64];
    snprintf(full, sizeof full, "google/protobuf/%s.proto", wkt[i]);
    if (strcmp(name, full) == 0) return true;
  }
  return false;
}

/* One .proto named as protoc knows it (relative to an import directory). */
typedef struct dep {
  char name[PATH_MAX];
} dep_t;

/* Reads protoc's --dependency_out file (make syntax: "target: dep dep \\ ...") and keeps each
 * dependency that lies under one of the import directories as its name relative to it; a
 * contract file itself (given on the command line) is skipped. Returns the count, or -1. */
static int read_deps(const char *path, char **incs, int n_incs, char **files, int n_files,
                     dep_t *out, int cap) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char tok[PATH_MAX];
  int n = 0, c, len = 0, after_colon = 0;
  for (;;) {
    c = fgetc(f);
    if (c == '\\') {
      int d = fgetc(f);
      if (d == '\n') continue; /* line continuation */
      if (d == ' ')
        c = ' ' | 0x100; /* an escaped space belongs to the name */
      else if (d != EOF)
        ungetc(d, f);
    }
    if (c == EOF || c == ' ' || c == '\n' || c == '\t') {
      tok[len] = '\0';
      if (len > 0 && after_colon) {
        int own = 0;
        for (int i = 0; i < n_files && !own; i++) {
          char real[PATH_MAX];
          own = realpath(files[i], real) && strcmp(real, tok) == 0;
        }
        for (int i = 0; i < n_incs && !own && n < cap; i++) {
          size_t il = strlen(incs[i]);
          if (strncmp(tok, incs[i], il) == 0 && tok[il] == '/') {
            snprintf(out[n].name, sizeof out[n].name, "%s", tok + il + 1);
            int dup = 0;
            for (int j = 0; j < n && !dup; j++)
              dup = strcmp(out[j].name, out[n].name) == 0;
            n += !dup;
            break;
          }
        }
      }
      if (len > 0 && tok[len - 1] == ':') after_colon = 1;
      len = 0;
      if (c == EOF) break;
      continue;
    }
    if ((size_t)len + 1 < sizeof tok) tok[len++] = (char)(c & 0xff);
  }
  fclose(f);
  return n;
}

int sb_cli_gen(int argc, char **argv) {
  const char *out = ".";
  char *incs[64];
  int n_incs = 0;
  char *files[GEN_MAX_FILES];
  int n_files = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      gen_usage(stdout);
      return 0;
    } else if (!strcmp(a, "--out") && i + 1 < argc) {
      out = argv[++i];
    } else if (!strcmp(a, "-I") && i + 1 < argc && n_incs < 48) {
      incs[n_incs++] = argv[++i];
    } else if (!strncmp(a, "-I", 2) && a[2] && n_incs < 48) {
      incs[n_incs++] = (char *)a + 2;
    } else if (a[0] != '-' && n_files < GEN_MAX_FILES) {
      files[n_files++] = argv[i];
    } else {
      fprintf(stderr, "switchboard gen: unexpected argument '%s'\n", a);
      gen_usage(stderr);
      return 2;
    }
  }
  if (n_files == 0) {
    gen_usage(stderr);
    return 2;
  }

  char dir[PATH_MAX], plugin[PATH_MAX + 32], protos[PATH_MAX + 32];
  const char *protoc = getenv("SB_PROTOC") ? getenv("SB_PROTOC") : "protoc";
  const char *p = getenv("SB_PROTOC_GEN_SWITCHBOARD");
  if (!usable(p, X_OK) && exe_dir(dir, sizeof dir) == 0) {
    snprintf(plugin, sizeof plugin, "%s/protoc-gen-switchboard", dir);
    p = usable(plugin, X_OK) ? plugin : SB_BUILD_PLUGIN;
  }
  if (!usable(p, X_OK)) {
    fprintf(stderr, "switchboard gen: protoc-gen-switchboard not found "
                    "(set SB_PROTOC_GEN_SWITCHBOARD)\n");
    return 1;
  }
  const char *pd = getenv("SB_PROTO_DIR");
  if (!usable(pd, R_OK) && exe_dir(dir, sizeof dir) == 0) {
    snprintf(protos, sizeof protos, "%s/../share/switchboard/proto", dir);
    pd = usable(protos, R_OK) ? protos : SB_BUILD_PROTO_DIR;
  }
  const char *sys = getenv("SB_PROTOBUF_INCLUDE_DIR") ? getenv("SB_PROTOBUF_INCLUDE_DIR")
                                                      : SB_BUILD_PROTOBUF_INCLUDE_DIR;
  if (mkdir(out, 0755) != 0 && access(out, W_OK) != 0) {
    fprintf(stderr, "switchboard gen: cannot write to %s\n", out);
    return 1;
  }

  /* Import directories, canonical, so dependency paths can be made relative to them: each
   * file's own directory first (as the CMake helper does), then -I, ours, the system's. */
  static char canon[GEN_MAX_FILES + 64][PATH_MAX];
  char *all[GEN_MAX_FILES + 64];
  int n_all = 0;
  for (int i = 0; i < n_files; i++) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", files[i]);
    char *slash = strrchr(tmp, '/');
    if (slash)
      *slash = '\0';
    else
      snprintf(tmp, sizeof tmp, ".");
    if (realpath(tmp, canon[n_all])) all[n_all] = canon[n_all], n_all++;
  }
  for (int i = 0; i < n_incs; i++)
    if (realpath(incs[i], canon[n_all])) all[n_all] = canon[n_all], n_all++;
  if (realpath(pd, canon[n_all])) all[n_all] = canon[n_all], n_all++;
  if (realpath(sys, canon[n_all])) all[n_all] = canon[n_all], n_all++;

  char depfile[PATH_MAX], plugin_arg[PATH_MAX + 64], c_out[PATH_MAX + 16], sb_out[PATH_MAX + 32],
      dep_arg[PATH_MAX + 32];
  snprintf(depfile, sizeof depfile, "%s/.switchboard-gen.d", out);
  snprintf(plugin_arg, sizeof plugin_arg, "--plugin=protoc-gen-switchboard=%s", p);
  snprintf(c_out, sizeof c_out, "--c_out=%s", out);
  snprintf(sb_out, sizeof sb_out, "--switchboard_out=%s", out);
  snprintf(dep_arg, sizeof dep_arg, "--dependency_out=%s", depfile);
  static char iargs[GEN_MAX_FILES + 64][PATH_MAX + 3];
  char *av[GEN_MAX_ARGS + GEN_MAX_FILES];
  int n = 0;
  av[n++] = (char *)protoc;
  av[n++] = plugin_arg;
  av[n++] = c_out;
  av[n++] = sb_out;
  av[n++] = dep_arg;
  for (int i = 0; i < n_all; i++) {
    snprintf(iargs[i], sizeof iargs[i], "-I%s", all[i]);
    av[n++] = iargs[i];
  }
  int first_file = n;
  for (int i = 0; i < n_files; i++) {
    char *real = realpath(files[i], NULL);
    if (!real) {
      fprintf(stderr, "switchboard gen: %s: no such file\n", files[i]);
      return 1;
    }
    av[n++] = real;
  }
  av[n] = NULL;
  int rc = run(av);
  for (int i = first_file; i < n; i++)
    free(av[i]);
  if (rc != 0) return 1;

  /* The imports: protobuf-c code only (they declare no services of the user's). */
  static dep_t deps[GEN_MAX_FILES];
  int nd = read_deps(depfile, all, n_all, files, n_files, deps, GEN_MAX_FILES);
  unlink(depfile);
  if (nd < 0) {
    fprintf(stderr, "switchboard gen: protoc wrote no dependency list\n");
    return 1;
  }
  if (nd == 0) return 0;
  n = 0;
  av[n++] = (char *)protoc;
  av[n++] = c_out;
  for (int i = 0; i < n_all; i++)
    av[n++] = iargs[i];
  for (int i = 0; i < nd; i++)
    av[n++] = deps[i].name;
  av[n] = NULL;
  if (run(av) != 0) return 1;
  /* libswitchboard already contains the code of the protos it ships or relies on (the
   * well-known types, descriptor.proto, google/api and switchboard options): keep their
   * headers for the includes, drop their .c files so nothing is defined twice. */
  for (int i = 0; i < nd; i++) {
    if (!library_provides(deps[i].name)) continue;
    char c_file[PATH_MAX * 2];
    size_t l = strlen(deps[i].name);
    if (l < 6) continue;
    snprintf(c_file, sizeof c_file, "%s/%.*s.pb-c.c", out, (int)(l - 6), deps[i].name);
    unlink(c_file);
  }
  return 0;
}
