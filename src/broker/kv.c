/* Front-end attribute lists of queues, topics and subscriptions (sb__kvs_t), and the sorted
 * name indexes of queues and topics (broker_int.h). */
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

/* The name of element i: the first member of the struct it points to. Elements are read with
 * memcpy so one function serves arrays of any struct pointer type. */
static const char *name_at(const void *arr, size_t i) {
  const char *p;
  memcpy(&p, (const char *)arr + i * sizeof(void *), sizeof p);
  return p;
}

size_t sb__byname_pos(const void *arr, size_t n, const char *name, bool *found) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name_at(arr, mid), name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

int sb__byname_insert(void *arrp, size_t *n, size_t *cap, void *item) {
  char *arr;
  memcpy(&arr, arrp, sizeof arr);
  bool found;
  size_t i = sb__byname_pos(arr, *n, (const char *)item, &found);
  if (found) return SB_ESTATE;
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 16;
    char *na = realloc(arr, nc * sizeof(void *));
    if (!na) return SB_ENOMEM;
    arr = na;
    memcpy(arrp, &arr, sizeof arr);
    *cap = nc;
  }
  memmove(arr + (i + 1) * sizeof(void *), arr + i * sizeof(void *), (*n - i) * sizeof(void *));
  memcpy(arr + i * sizeof(void *), &item, sizeof item);
  (*n)++;
  return 0;
}

void sb__byname_remove(void *arr, size_t *n, const void *item) {
  bool found;
  size_t i = sb__byname_pos(arr, *n, (const char *)item, &found);
  if (!found || name_at(arr, i) != (const char *)item) return;
  char *a = arr;
  memmove(a + i * sizeof(void *), a + (i + 1) * sizeof(void *), (*n - i - 1) * sizeof(void *));
  (*n)--;
}
