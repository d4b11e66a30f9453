/*
 * Idempotency keys: a retried non-safe request (same key, same method, same request) gets the
 * stored response instead of running the handler again; the same key with a different request
 * is refused.
 *
 * The store is shared by every worker (a request and its retry may land on different loops),
 * so it is guarded by a mutex; each operation is a hash lookup. Entries expire after the
 * window and the store is bounded in bytes: the oldest entries go first when it is full.
 *
 * States of a key: absent -> pending (the first request is running) -> done (response stored)
 * -> expired. A retry while pending is refused (the caller answers 409), so the handler never
 * runs twice concurrently for one key.
 */
#ifndef SB_RPC_IDEMPOTENCY_H
#define SB_RPC_IDEMPOTENCY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/codec.h"

#define SB_IDEM_DEFAULT_WINDOW_MS (24u * 3600u * 1000u) /* how long a key is remembered */
#define SB_IDEM_DEFAULT_MAX_BYTES (64u * 1024u * 1024u) /* stored keys + responses */
#define SB_IDEM_MAX_KEY 255u                            /* longest accepted key */

typedef struct sb_idem sb_idem_t;

enum sb_idem_result {
  SB_IDEM_NEW = 0,      /* first use: run the request, then sb__idem_complete/abandon */
  SB_IDEM_REPLAY = 1,   /* a stored response was copied out: send it */
  SB_IDEM_MISMATCH = 2, /* the key was used for a different request (answer 422) */
  SB_IDEM_PENDING = 3,  /* the first request with this key is still running (answer 409) */
};

/* A stored response, as sb__idem_begin() copies it out. body is owned by the caller. */
typedef struct sb_idem_response {
  int status;
  char content_type[64];
  sb_buf_t body;
} sb_idem_response_t;

int sb__idem_new(uint64_t window_ms, size_t max_bytes, sb_idem_t **out);
void sb__idem_free(sb_idem_t *s);

/* Starts a request with key under scope (the method), whose content hashes to fingerprint.
 * now_ms is a monotonic clock. Returns an enum sb_idem_result, or SB_ENOMEM. On
 * SB_IDEM_REPLAY, *out holds the stored response (caller frees out->body). */
int sb__idem_begin(sb_idem_t *s, const char *scope, const char *key, uint64_t fingerprint,
                   uint64_t now_ms, sb_idem_response_t *out);
/* Stores the response of a request that got SB_IDEM_NEW. */
void sb__idem_complete(sb_idem_t *s, const char *scope, const char *key, int status,
                       const char *content_type, const void *body, size_t len, uint64_t now_ms);
/* Forgets a pending key (the request failed in a way a retry should re-run). */
void sb__idem_abandon(sb_idem_t *s, const char *scope, const char *key);

#endif
