/* Front-end attribute lists of queues, topics and subscriptions (sb__kvs_t, broker_int.h). */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "switchboard/error.h"

int sb__kvs_set(sb__kvs_t *k, const char *name, const char *value) {
  size_t i = 0;
  while (i < k->n && strcmp(k->kv[2 * i], name) < 0)
    i++;
  bool exists = i < k->n && strcmp(k->kv[2 * i], name) == 0;
  if (!*value) {
    if (!exists) return 0;
    free(k->kv[2 * i]);
    free(k->kv[2 * i + 1]);
    memmove(k->kv + 2 * i, k->kv + 2 * i + 2, (k->n - i - 1) * 2 * sizeof *k->kv);
    k->n--;
    return 0;
  }
  char *v = strdup(value);
  if (!v) return SB_ENOMEM;
  if (exists) {
    free(k->kv[2 * i + 1]);
    k->kv[2 * i + 1] = v;
    return 0;
  }
  if (k->n >= SB_BROKER_KV_MAX) {
    free(v);
    return SB_ELIMIT;
  }
  char *n = strdup(name);
  char **nk = n ? realloc(k->kv, (k->n + 1) * 2 * sizeof *nk) : NULL;
  if (!nk) {
    free(n);
    free(v);
    return SB_ENOMEM;
  }
  k->kv = nk;
  memmove(k->kv + 2 * i + 2, k->kv + 2 * i, (k->n - i) * 2 * sizeof *k->kv);
  k->kv[2 * i] = n;
  k->kv[2 * i + 1] = v;
  k->n++;
  return 0;
}

void sb__kvs_free(sb__kvs_t *k) {
  for (size_t i = 0; i < k->n * 2; i++)
    free(k->kv[i]);
  free(k->kv);
  k->kv = NULL;
  k->n = 0;
}

sb_broker_kv_t *sb__kvs_export(const sb__kvs_t *k, sb_arena_t *a) {
  sb_broker_kv_t *out = sb_arena_alloc(a, (k->n + 1) * sizeof *out);
  if (!out) return NULL;
  for (size_t i = 0; i < k->n; i++) {
    out[i].name = sb_arena_strndup(a, k->kv[2 * i], strlen(k->kv[2 * i]));
    out[i].value = sb_arena_strndup(a, k->kv[2 * i + 1], strlen(k->kv[2 * i + 1]));
    if (!out[i].name || !out[i].value) return NULL;
  }
  return out;
}
