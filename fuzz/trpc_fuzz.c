/*
 * libFuzzer target: the tRPC request readers of protocols/trpc/wire.c, on their own (the whole
 * front-end runs end to end under rest_fuzz, whose corpus holds tRPC requests too).
 *
 * Input layout: one byte of flags, then three parts separated by 0xff bytes (absent parts are
 * empty): a query string, a procedure path, and a batch input document.
 *   flag bit 0: the path is a batch (split on ',')
 *   flag bit 1: the request is a GET (content-type fallback)
 *   flags >> 2: number of calls the batch document is read for (0 to 63)
 * The query string also serves as a content-type value.
 *
 * Checked: every span a reader returns lies inside its input; every batch member it points
 * at is itself one valid JSON value; split paths cover the path exactly (their lengths plus
 * the separators add up); query lookups return found/absent/ENOMEM only and NUL-terminate.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/trpc/wire.h"
#include "switchboard/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next part of [*p, end) up to a 0xff byte (consumed), as a malloc'd NUL-terminated copy:
 * the readers take C strings where the server hands them C strings. */
static char *part(const uint8_t **p, const uint8_t *end, size_t *len) {
  const uint8_t *s = *p, *e = s;
  while (e < end && *e != 0xff)
    e++;
  *len = (size_t)(e - s);
  char *c = malloc(*len + 1);
  if (!c) abort();
  if (*len) memcpy(c, s, *len);
  c[*len] = '\0';
  *p = e < end ? e + 1 : e;
  return c;
}

static void inside(const sb_trpc_span_t *sp, const char *base, size_t len) {
  if (!sp->p) return;
  if (sp->p < base || sp->p + sp->n > base + len) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  unsigned flags = data[0];
  const uint8_t *p = data + 1, *end = data + size;
  size_t qn, pn, jn;
  char *q = part(&p, end, &qn), *path = part(&p, end, &pn), *json = part(&p, end, &jn);

  /* Query parameters, as the front-end asks for them. */
  static const char *const names[] = {"input", "batch", "lastEventId", "Last-Event-Id", ""};
  sb_buf_t v = {0};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    int rc = sb__trpc_query_get(q, names[i], &v);
    if (rc != 0 && rc != 1 && rc != SB_ENOMEM) abort();
    if (rc == 1 && (sb_buf_pending(&v) > qn || sb_buf_head(&v)[sb_buf_pending(&v)] != '\0'))
      abort();
  }
  sb_buf_free(&v);
  (void)sb__trpc_media(q, (int)(flags & 2));
  (void)sb__trpc_media(NULL, (int)(flags & 2));

  /* Paths. */
  sb_trpc_span_t spans[SB_TRPC_MAX_BATCH];
  size_t n = 0;
  int rc = sb__trpc_split_paths(path, pn, (int)(flags & 1), spans, SB_TRPC_MAX_BATCH, &n);
  if (rc == 0) {
    size_t total = n ? n - 1 : 0;
    for (size_t i = 0; i < n; i++) {
      inside(&spans[i], path, pn);
      total += spans[i].n;
    }
    if (total != pn || n == 0) abort();
  } else if (rc != SB_ELIMIT) {
    abort();
  }

  /* Batch inputs. */
  size_t calls = flags >> 2;
  sb_trpc_span_t in[64];
  const char *why = NULL;
  if (jn) {
    rc = sb__trpc_batch_inputs(json, jn, in, calls, &why);
    if (rc == 0) {
      for (size_t i = 0; i < calls; i++) {
        inside(&in[i], json, jn);
        if (in[i].p && sb__trpc_json_valid(in[i].p, in[i].n, &why)) abort();
      }
    } else if ((rc != SB_EPROTO && rc != SB_EINVAL) || !why) {
      abort();
    }
  }
  char name[64];
  sb__trpc_proc_name(path, name, sizeof name);
  if (strlen(name) >= sizeof name) abort();
  free(q);
  free(path);
  free(json);
  return 0;
}
