/*
 * /docs: Swagger UI for the registered contract, served by the REST front-end itself.
 *
 * GET /docs (and /docs/, /docs/index.html) answers a small HTML page of ours that loads
 * Swagger UI's assets from /docs/<asset> and points it at /openapi.json. /docs/<asset> serves
 * a fixed allow-list of files of the swagger-ui-dist npm package (scripts/node-deps.sh
 * installs it; `cmake --install` copies it to <datadir>/switchboard/swagger-ui). Only names in
 * the allow-list are ever opened, so no request path reaches the file system.
 *
 * Where the assets come from, first match wins:
 *   1. sb_rpc_set_docs_dir() (`--docs-dir DIR` of switchboard serve and the examples);
 *   2. a binary that runs from this build tree: <source>/node_modules/swagger-ui-dist (found
 *      by CMake at configure time), then the install directory;
 *   3. any other binary (installed, or a user's program): the install directory
 *      (<datadir>/switchboard/swagger-ui), then the build tree's copy.
 *
 * Files are read once, on the first /docs request, and kept in memory until the registry is
 * freed: the allow-list is about 2 MB, the files never change while the server runs, and a
 * cache keeps disk reads off the network loops on every later request (one loop pays one read
 * of a few milliseconds, once). Every file is bounded by SB_DOCS_MAX_FILE. Responses are
 * streamed from the cache in chunks of SB_DOCS_CHUNK under the exchange's backpressure, so a
 * slow client holds at most one chunk of copies, never the whole bundle. When the required
 * assets are missing, /docs answers 503 with a JSON error (the path goes to the log, not to the
 * client), the rest of the server works, and the next /docs request tries again.
 */
#ifndef SB_PROTOCOLS_REST_DOCS_H
#define SB_PROTOCOLS_REST_DOCS_H

#include <stddef.h>

#include "switchboard/http.h"
#include "switchboard/rpc.h"

#define SB_DOCS_MAX_FILE (8u << 20) /* bytes; a larger asset is refused (the bundle is ~1.7 MB) */
#define SB_DOCS_CHUNK (64u << 10)   /* bytes handed to the exchange per write */

/* One servable name under /docs/. All fields are static data. */
typedef struct sb__docs_asset {
  const char *name;         /* file name in the swagger-ui-dist directory, no '/' */
  const char *content_type; /* Content-Type of the response */
  unsigned required : 1;    /* /docs is unavailable without it */
} sb__docs_asset_t;

struct sb_docs; /* per-registry state: the chosen directory and the cached files */

/* The allow-list entry for name (the part of the path after "/docs/"), or NULL when name is
 * not one of the served assets. Exact, case-sensitive comparison: anything else — "..",
 * a '/', percent-escapes, a trailing dot — is simply not in the list. */
const sb__docs_asset_t *sb__docs_asset(const char *name);

/* Serves req when its path is /docs or under /docs/. Returns 1 when it took the exchange
 * (answered or streaming), 0 when the path is not a docs path (the caller goes on routing).
 * Any worker thread; takes the docs lock briefly. */
int sb__docs_handle(sb_http_req_t *req, sb_rpc_t *rpc);

/* Frees the registry's docs state (cached files, directory). Call only after the server
 * stopped: streaming responses borrow the cached files. docs may be NULL. */
void sb__docs_free(struct sb_docs *docs);

#endif
