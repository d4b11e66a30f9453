/*
 * /docs: Swagger UI served from the swagger-ui-dist npm package (see docs.h for the rules:
 * the allow-list, where the directory comes from, the cache and its bounds).
 *
 * Our own two files — the HTML page and the script that starts Swagger UI — are compiled in,
 * so the page can carry a Content-Security-Policy without 'unsafe-inline' for scripts: every
 * script the page runs comes from /docs/ of this server.
 */
#include "protocols/rest/docs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "core/codec.h"
#include "rpc/rpc_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

/* CMake passes these for this file only (CMakeLists.txt, "Swagger UI"); the fallbacks keep
 * the file compilable on its own, with an install-only default. */
#ifndef SB_DOCS_INSTALL_DIR
#define SB_DOCS_INSTALL_DIR "/usr/local/share/switchboard/swagger-ui"
#endif
#ifndef SB_DOCS_BUILD_DIR
#define SB_DOCS_BUILD_DIR ""
#endif
#ifndef SB_DOCS_BUILD_TREE
#define SB_DOCS_BUILD_TREE ""
#endif

#define DOCS_PROBE "swagger-ui-bundle.js" /* a directory holding this is a swagger-ui-dist */

/* The page. Absolute asset paths, so /docs and /docs/ load the same page. */
static const char page_html[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>API docs - switchboard</title>\n"
    "<link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\">\n"
    "<link rel=\"icon\" type=\"image/png\" href=\"/docs/favicon-32x32.png\" sizes=\"32x32\">\n"
    "<link rel=\"icon\" type=\"image/png\" href=\"/docs/favicon-16x16.png\" sizes=\"16x16\">\n"
    "</head>\n"
    "<body>\n"
    "<div id=\"swagger-ui\"></div>\n"
    "<script src=\"/docs/swagger-ui-bundle.js\"></script>\n"
    "<script src=\"/docs/switchboard-init.js\"></script>\n"
    "</body>\n"
    "</html>\n";

/* Starts Swagger UI on the served document. validatorUrl null: the default badge would make
 * every visitor's browser send our document to a third-party validator. queryConfigEnabled
 * stays off, so ?url= cannot point the page at another document. */
static const char init_js[] =
    "window.addEventListener('load', function () {\n"
    "  window.ui = SwaggerUIBundle({\n"
    "    url: '/openapi.json',\n"
    "    dom_id: '#swagger-ui',\n"
    "    deepLinking: true,\n"
    "    validatorUrl: null,\n"
    "    oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect.html',\n"
    "    presets: [SwaggerUIBundle.presets.apis],\n"
    "    layout: 'BaseLayout'\n"
    "  });\n"
    "});\n";

#define HTML "text/html; charset=utf-8"
#define JS "text/javascript; charset=utf-8"

/* The allow-list. Index 0 is the page that /docs and /docs/ answer. Entries with builtin set
 * are ours; the others are read from the swagger-ui-dist directory. CMakeLists.txt installs
 * the same file names. */
static const struct {
  sb__docs_asset_t a;
  const char *builtin; /* our content (a string literal), or NULL for a dist file */
} assets[] = {
    {{"index.html", HTML, 1}, page_html},
    {{"switchboard-init.js", JS, 1}, init_js},
    {{"swagger-ui.css", "text/css; charset=utf-8", 1}, NULL},
    {{"swagger-ui-bundle.js", JS, 1}, NULL},
    {{"favicon-32x32.png", "image/png", 0}, NULL},
    {{"favicon-16x16.png", "image/png", 0}, NULL},
    {{"oauth2-redirect.html", HTML, 0}, NULL},
    {{"oauth2-redirect.js", JS, 0}, NULL},
};
#define NASSETS (sizeof assets / sizeof assets[0])

/* Sent with every HTML answer: scripts only from this origin; Swagger UI sets inline styles
 * and draws icons from data: URIs; requests made by "Try it out" go to this origin. */
static const char csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'self'";

/* One cached asset. */
typedef struct docs_file {
  const char *data; /* builtin literal, or owned heap copy of the file; NULL when absent */
  size_t len;       /* bytes in data; len <= SB_DOCS_MAX_FILE */
  unsigned owned;   /* 1 when data is heap memory freed with the cache */
  char etag[24];    /* "\"<16 hex digits>\"": FNV-1a of data */
} docs_file_t;

/* Per-registry docs state. Every field is guarded by docs_mu; once loaded is set, files[] is
 * immutable until sb__docs_free() or a new directory (both before the server runs), so
 * streams read it without the lock. */
struct sb_docs {
  char *dir;                  /* owned; set by sb_rpc_set_docs_dir(), NULL for the default */
  docs_file_t files[NASSETS]; /* parallel to assets[] */
  unsigned loaded : 1;        /* files[] holds every required asset */
  unsigned warned : 1;        /* the unavailable warning was logged (once per registry) */
};

/* Guards every sb_docs: creating rpc->docs and the one-time load. Process-wide because the
 * REST handler runs on every worker thread and the registry has no lock of its own; only
 * /docs requests take it, and each holds it for a pointer check after the first load. */
static pthread_mutex_t docs_mu = PTHREAD_MUTEX_INITIALIZER;

/* The index of name in assets[], or NASSETS when it is not there. */
static size_t asset_index(const char *name) {
  size_t i = 0;
  while (i < NASSETS && strcmp(assets[i].a.name, name) != 0)
    i++;
  return i;
}

const sb__docs_asset_t *sb__docs_asset(const char *name) {
  size_t i = asset_index(name);
  return i < NASSETS ? &assets[i].a : NULL;
}

static void files_clear(struct sb_docs *d) {
  for (size_t i = 0; i < NASSETS; i++) {
    if (d->files[i].owned) free((void *)d->files[i].data);
    d->files[i] = (docs_file_t){0};
  }
  d->loaded = 0;
}

void sb__docs_free(struct sb_docs *docs) {
  if (!docs) return;
  files_clear(docs);
  free(docs->dir);
  free(docs);
}

/* Creates rpc->docs when missing. Caller holds docs_mu. Returns 0 or SB_ENOMEM. */
static int docs_get(sb_rpc_t *rpc, struct sb_docs **out) {
  if (!rpc->docs && !(rpc->docs = calloc(1, sizeof *rpc->docs))) return SB_ENOMEM;
  *out = rpc->docs;
  return 0;
}

int sb_rpc_set_docs_dir(sb_rpc_t *rpc, const char *dir) {
  char *copy = NULL;
  if (dir && !(copy = strdup(dir))) return SB_ENOMEM;
  pthread_mutex_lock(&docs_mu);
  struct sb_docs *d;
  int rc = docs_get(rpc, &d);
  if (!rc) {
    files_clear(d);
    free(d->dir);
    d->dir = copy;
    copy = NULL;
  }
  pthread_mutex_unlock(&docs_mu);
  free(copy);
  return rc;
}

static int has_probe(const char *dir) {
  char p[PATH_MAX];
  int n = snprintf(p, sizeof p, "%s/" DOCS_PROBE, dir);
  return dir[0] && n > 0 && (size_t)n < sizeof p && access(p, R_OK) == 0;
}

/* The default directory (docs.h, rules 2 and 3): a binary inside this build tree prefers the
 * build's own node_modules copy; anything else prefers the installed copy. Falls back to the
 * other when the preferred one has no assets, and returns the preferred one when neither
 * has (so the log names where it looked first). */
static const char *default_dir(void) {
  static const char tree[] = SB_DOCS_BUILD_TREE;
  char exe[PATH_MAX];
  size_t n = sizeof exe;
  int in_tree = tree[0] && uv_exepath(exe, &n) == 0 && strncmp(exe, tree, sizeof tree - 1) == 0 &&
                exe[sizeof tree - 1] == '/';
  const char *first = in_tree ? SB_DOCS_BUILD_DIR : SB_DOCS_INSTALL_DIR;
  const char *second = in_tree ? SB_DOCS_INSTALL_DIR : SB_DOCS_BUILD_DIR;
  if (!has_probe(first) && has_probe(second)) return second;
  return first[0] ? first : second;
}

/* Reads dir/name whole into a new buffer (caller frees *data). Returns 0, -errno, or
 * SB_ELIMIT when the file is not a regular file of at most SB_DOCS_MAX_FILE bytes. */
static int read_file(const char *dir, const char *name, char **data, size_t *len) {
  char p[PATH_MAX];
  int n = snprintf(p, sizeof p, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= sizeof p) return -ENAMETOOLONG;
  int fd;
  do
    fd = open(p, O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return -errno;
  struct stat st;
  int rc = fstat(fd, &st) != 0 ? -errno : 0;
  if (!rc && (!S_ISREG(st.st_mode) || st.st_size > (off_t)SB_DOCS_MAX_FILE)) rc = SB_ELIMIT;
  char *buf = rc ? NULL : malloc(st.st_size ? (size_t)st.st_size : 1);
  if (!rc && !buf) rc = SB_ENOMEM;
  size_t got = 0;
  while (!rc && got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) rc = -errno;
    if (r == 0) rc = -EIO; /* the file shrank while we read it */
    if (r > 0) got += (size_t)r;
  }
  close(fd);
  if (rc) {
    free(buf);
    return rc;
  }
  *data = buf;
  *len = got;
  return 0;
}

static void set_etag(docs_file_t *f) {
  snprintf(f->etag, sizeof f->etag, "\"%016llx\"",
           (unsigned long long)sb_fnv1a(SB_FNV_SEED, f->data, f->len));
}

/* Loads every asset into d->files. Caller holds docs_mu. Returns 0, or the error of the first
 * required asset that could not be read (its index in *bad); optional ones may be absent. */
static int docs_load(struct sb_docs *d, const char *dir, size_t *bad) {
  for (size_t i = 0; i < NASSETS; i++) {
    docs_file_t *f = &d->files[i];
    if (assets[i].builtin) {
      f->data = assets[i].builtin;
      f->len = strlen(assets[i].builtin);
    } else {
      char *data;
      int rc = read_file(dir, assets[i].a.name, &data, &f->len);
      if (rc && assets[i].a.required) {
        files_clear(d);
        *bad = i;
        return rc;
      }
      if (rc) continue;
      f->data = data;
      f->owned = 1;
    }
    set_etag(f);
  }
  d->loaded = 1;
  return 0;
}

/* Makes sure rpc's assets are loaded and returns the cached file of asset index i in *out
 * (data NULL when that optional asset is absent). Returns 0, SB_ENOMEM, or the load error. */
static int docs_file(sb_rpc_t *rpc, size_t i, const docs_file_t **out) {
  pthread_mutex_lock(&docs_mu);
  struct sb_docs *d;
  int rc = docs_get(rpc, &d);
  if (!rc && !d->loaded) {
    const char *dir = d->dir ? d->dir : default_dir();
    size_t bad = 0;
    rc = docs_load(d, dir, &bad);
    if (rc && !d->warned) {
      /* Once per registry: a docs page that nobody installed is not worth a line per hit. */
      d->warned = 1;
      sb_log(SB_LOG_WARN, "docs_unavailable",
             "dir=\"%s\" file=%s error=\"%s\" hint=\"run scripts/node-deps.sh or pass "
             "--docs-dir\"",
             dir, assets[bad].a.name, sb_strerror(rc));
    } else if (!rc) {
      sb_log(SB_LOG_INFO, "docs_loaded", "dir=\"%s\"", dir);
    }
  }
  if (!rc) *out = &d->files[i];
  pthread_mutex_unlock(&docs_mu);
  return rc;
}

/* ---- answering ---- */

/* A streaming answer: one per exchange, freed when the response ends. */
typedef struct docs_stream {
  sb_http_req_t *req; /* held until sb_http_res_end() */
  const char *data;   /* borrowed from the cache, which outlives every exchange */
  size_t len;         /* bytes to send */
  size_t off;         /* bytes handed to the exchange so far; off <= len */
} docs_stream_t;

/* Writes chunks until the exchange pushes back (then on_writable resumes) or the body is
 * done or the write failed (then the response ends and the stream is freed). */
static void stream_pump(docs_stream_t *s) {
  while (s->off < s->len) {
    size_t n = s->len - s->off < SB_DOCS_CHUNK ? s->len - s->off : SB_DOCS_CHUNK;
    int rc = sb_http_res_write(s->req, s->data + s->off, n);
    if (rc < 0) break;
    s->off += n;
    if (rc == 1) return;
  }
  sb_http_res_end(s->req);
  free(s);
}

static void stream_writable(sb_http_req_t *req, void *ud) {
  (void)req;
  stream_pump(ud);
}

static void stream_abort(sb_http_req_t *req, int err, void *ud) {
  (void)err;
  sb_http_res_end(req);
  free(ud);
}

/* Error bodies in the REST front-end's shape {"code","message","details"}. Static text only:
 * the client learns what is wrong, the log learns where. */
static void respond_error(sb_http_req_t *req, int status, const char *body) {
  sb_http_res_header(req, "cache-control", "no-store");
  sb_http_respond(req, status, "application/json", body, strlen(body));
}

int sb__docs_handle(sb_http_req_t *req, sb_rpc_t *rpc) {
  const char *path = sb_http_req_path(req);
  if (strncmp(path, "/docs", 5) != 0 || (path[5] != '\0' && path[5] != '/')) return 0;
  const char *method = sb_http_req_method(req);
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    sb_http_res_header(req, "allow", "GET, HEAD");
    respond_error(req, 405,
                  "{\"code\":12,\"message\":\"/docs answers GET and HEAD only\",\"details\":[]}");
    return 1;
  }
  const char *name = path[5] == '\0' || path[6] == '\0' ? assets[0].a.name : path + 6;
  size_t i = asset_index(name);
  if (i == NASSETS) {
    respond_error(req, 404, "{\"code\":5,\"message\":\"no such file under /docs\",\"details\":[]}");
    return 1;
  }
  const sb__docs_asset_t *a = &assets[i].a;
  const docs_file_t *f = NULL;
  int rc = docs_file(rpc, i, &f);
  if (rc == SB_ENOMEM) {
    respond_error(req, 503, "{\"code\":14,\"message\":\"out of memory\",\"details\":[]}");
    return 1;
  }
  if (rc) {
    respond_error(req, 503,
                  "{\"code\":14,\"message\":\"Swagger UI is not available: its assets (npm "
                  "package swagger-ui-dist) were not found on the server; see the server "
                  "log\",\"details\":[]}");
    return 1;
  }
  if (!f->data) {
    respond_error(req, 404,
                  "{\"code\":5,\"message\":\"this Swagger UI file is not installed\","
                  "\"details\":[]}");
    return 1;
  }
  /* Our own files change with the binary: revalidate every time (cheap, with the ETag). The
   * dist's files change only when the pinned package does: a day in caches, then the ETag. */
  sb_http_res_header(req, "cache-control",
                     assets[i].builtin ? "no-cache" : "public, max-age=86400");
  sb_http_res_header(req, "etag", f->etag);
  sb_http_res_header(req, "x-content-type-options", "nosniff");
  if (strcmp(a->content_type, HTML) == 0) sb_http_res_header(req, "content-security-policy", csp);
  const char *inm = sb_http_req_header(req, "if-none-match", NULL);
  if (inm && (strstr(inm, f->etag) || strcmp(inm, "*") == 0)) {
    sb_http_respond(req, 304, NULL, NULL, 0);
    return 1;
  }
  docs_stream_t *s = malloc(sizeof *s);
  if (!s) {
    respond_error(req, 503, "{\"code\":14,\"message\":\"out of memory\",\"details\":[]}");
    return 1;
  }
  *s = (docs_stream_t){req, f->data, f->len, 0};
  char clen[24];
  snprintf(clen, sizeof clen, "%zu", f->len);
  sb_http_res_header(req, "content-type", a->content_type);
  sb_http_res_header(req, "content-length", clen);
  sb_http_callbacks_t cbs = {.on_abort = stream_abort, .on_writable = stream_writable, .ud = s};
  sb_http_req_set_callbacks(req, &cbs);
  stream_pump(s);
  return 1;
}
