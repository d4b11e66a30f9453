/*
 * libFuzzer target: HTTP/1.x on one connection (request lines, headers, content-length and
 * chunked bodies, pipelining, Expect, h2c upgrade, limits), through switchboard's real
 * connection code: sniffing, h1.c and its strict parser, the exchange API and response framing.
 *
 * Inputs are raw client bytes; seeds in fuzz/corpus/http1/. The harness (cutting the stream
 * into pieces, running the loop, closing, leak-freedom per input) is in fuzz_conn.h.
 * Note that an input starting with "PRI * HTTP/2.0\r\n" is sniffed as HTTP/2; h2_fuzz.c
 * covers that side.
 */
#include "fuzz_conn.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_setup();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_one_connection(NULL, 0, data, size);
  return 0;
}
