/*
 * The digests SDKs verify on SQS answers: MD5OfMessageBody and MD5OfMessageAttributes
 * (sqs_int.h). Run on any thread; allocate nothing but OpenSSL's digest context.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#include "protocols/sqs/sqs_int.h"
#include "switchboard/error.h"

/* MD5 fetched from the default provider once: EVP_md5() makes OpenSSL 3 look the algorithm
 * up (under a global lock) on every digest, which showed in profiles of the send path. */
static EVP_MD *md5_alg;
static pthread_once_t md5_once = PTHREAD_ONCE_INIT;

static void md5_fetch(void) {
  md5_alg = EVP_MD_fetch(NULL, "MD5", NULL);
}

static const EVP_MD *md5(void) {
  pthread_once(&md5_once, md5_fetch);
  return md5_alg ? md5_alg : EVP_md5();
}

static pthread_key_t md5_ctx_key;
static pthread_once_t md5_ctx_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *ctx) {
  EVP_MD_CTX_free(ctx);
}

static void ctx_key_make(void) {
  pthread_key_create(&md5_ctx_key, ctx_free);
}

static EVP_MD_CTX *thread_ctx(void) {
  pthread_once(&md5_ctx_once, ctx_key_make);
  EVP_MD_CTX *ctx = pthread_getspecific(md5_ctx_key);
  if (!ctx && (ctx = EVP_MD_CTX_new()) && pthread_setspecific(md5_ctx_key, ctx)) {
    EVP_MD_CTX_free(ctx);
    ctx = NULL;
  }
  return ctx;
}

void sb__sqs_md5_hex(const void *p, size_t len, char out[33]) {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int ml = 0;
  EVP_Digest(p, len, md, &ml, md5(), NULL);
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    out[2 * i] = hx[md[i] >> 4];
    out[2 * i + 1] = hx[md[i] & 15];
  }
  out[32] = 0;
}

static int attr_cmp(const sqs_mattr_t *x, const sqs_mattr_t *y) {
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, n);
  if (c) return c;
  return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static void put_field(EVP_MD_CTX *ctx, const void *p, size_t n) {
  uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
  EVP_DigestUpdate(ctx, be, 4);
  EVP_DigestUpdate(ctx, p, n);
}

int sb__sqs_md5_attrs(sqs_mattr_t *attrs, size_t n, char out[33]) {
  for (size_t i = 1; i < n; i++) /* insertion sort: at most SB_BROKER_ATTRS_MAX */
    for (size_t j = i; j > 0 && attr_cmp(&attrs[j - 1], &attrs[j]) > 0; j--) {
      sqs_mattr_t t = attrs[j];
      attrs[j] = attrs[j - 1];
      attrs[j - 1] = t;
    }
  /* One context per thread, reused: a new one per message showed in the send path's profile.
   * Freed at thread exit (md5_ctx_key's destructor). */
  EVP_MD_CTX *ctx = thread_ctx();
  if (!ctx) return SB_ENOMEM;
  EVP_DigestInit_ex(ctx, md5(), NULL);
  for (size_t i = 0; i < n; i++) {
    put_field(ctx, attrs[i].name, attrs[i].name_len);
    put_field(ctx, attrs[i].type, attrs[i].type_len);
    uint8_t transport = attrs[i].type_len >= 6 && memcmp(attrs[i].type, "Binary", 6) == 0 ? 2 : 1;
    EVP_DigestUpdate(ctx, &transport, 1);
    put_field(ctx, attrs[i].value, attrs[i].value_len);
  }
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int ml = 0;
  EVP_DigestFinal_ex(ctx, md, &ml);
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    out[2 * i] = hx[md[i] >> 4];
    out[2 * i + 1] = hx[md[i] & 15];
  }
  out[32] = 0;
  return 0;
}
