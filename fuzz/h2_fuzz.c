/*
 * libFuzzer target: HTTP/2 frames on one connection, through switchboard's real connection
 * code: sniffing, h2.c on nghttp2 (frames, HPACK, flow control, flood limits), the exchange
 * API and response framing.
 *
 * Every input is prefixed with the 24-byte client connection preface, so the connection is
 * sniffed as HTTP/2 (prior knowledge) and the fuzzer spends its effort on frames rather than
 * on rediscovering the preface. Seeds in fuzz/corpus/h2/ are frame sequences without the
 * preface (made by fuzz/make_h2_corpus.py). The harness is in fuzz_conn.h.
 */
#include "fuzz_conn.h"

/* RFC 9113 section 3.4. */
static const uint8_t h2_preface[24] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_setup();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_one_connection(h2_preface, sizeof h2_preface, data, size);
  return 0;
}
