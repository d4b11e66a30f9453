/*
 * libFuzzer target: topic filter policies (src/broker/filter.c), which arrive from the network
 * (SNS SetSubscriptionAttributes, the broker API). The input is split at its first NUL byte
 * into a policy and a message body; the policy is compiled, and when it compiles it is
 * evaluated against the body (body scope) and against attributes made from the body's bytes
 * (attribute scope, with String, Number and String.Array types), and the routing-key matcher
 * runs with the two halves as pattern and key. Crashes, leaks and sanitizer reports are the
 * findings; the results themselves are checked for determinism (same answer twice).
 * Seeds in fuzz/corpus/filter/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  size_t plen = nul ? (size_t)(nul - data) : size;
  const uint8_t *body = nul ? nul + 1 : data + size;
  size_t blen = nul ? size - plen - 1 : 0;
  sb__filter_t *f = NULL;
  const char *why = NULL;
  if (sb__filter_compile((const char *)data, plen, &f, &why) == 0) {
    bool m1 = sb__filter_match_body(f, body, blen);
    bool m2 = sb__filter_match_body(f, body, blen);
    if (m1 != m2) abort();
    sb_broker_attr_t a[3] = {{"a", 1, "String", 6, body, blen},
                             {"n", 1, "Number", 6, body, blen},
                             {"l", 1, "String.Array", 12, body, blen}};
    if (sb__filter_match_attrs(f, a, 3) != sb__filter_match_attrs(f, a, 3)) abort();
    sb__filter_free(f);
  } else if (!why) {
    abort(); /* a refusal always says why (or it was out of memory, which fuzzing is not) */
  }
  char *p = malloc(plen + 1), *k = malloc(blen + 1);
  if (p && k) {
    memcpy(p, data, plen);
    p[plen] = 0;
    memcpy(k, body, blen);
    k[blen] = 0;
    (void)sb__route_match(p, k);
  }
  free(p);
  free(k);
  return 0;
}
