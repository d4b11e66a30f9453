/*
 * libFuzzer target: the gRPC front-end's message path. The input is a gRPC request body (a
 * sequence of length-prefixed messages, as the fuzzer mutates it) after one selector byte; the
 * harness wraps it in a well-formed HTTP/2 request, so the fuzzer's effort goes into the
 * message framer (protocols/grpc/wire.c), gzip inflation, protobuf decoding into the method's
 * input type, stream delivery to handlers, response encoding and the built-in reflection and
 * health services, not into rediscovering HPACK.
 *
 * Selector byte:
 *   bits 0-2  the method (table below: all four streaming shapes, an empty message,
 *             reflection v1 and v1alpha, health);
 *   bits 3-4  the protocol: gRPC, gRPC-Web text (the body is base64), Connect streaming
 *             (binary envelopes), Connect unary with JSON (the body is one JSON message);
 *   bit  5    gzip announced for the request (so compressed flags and bodies are meaningful);
 *   bit  6    a timeout header (the deadline timer is armed and torn down);
 *   bit  7    DATA frames of 7 bytes (else 16 KiB): messages cross frame boundaries.
 *
 * Handlers answer within the input (no timers), so every call ends when its stream does or when
 * the connection closes; the connection harness (cuts, loop runs, leak checks) is
 * fuzz_conn.h's. Seeds in fuzz/corpus/grpc/ (fuzz/make_grpc_corpus.py).
 */
#include "fuzz_conn.h"
#include "switchboard/rpc.h"
#include "test.sb.h"

#define FUZZ_GRPC_MAX_FRAME 16384u /* SETTINGS_MAX_FRAME_SIZE default */
#define FUZZ_GRPC_HEAD 512u        /* bytes of preface, SETTINGS and HEADERS */

static sb_rpc_t *fuzz_rpc; /* process lifetime, like fuzz_srv */

static const char *const fuzz_paths[8] = {
    "/grpc.testing.TestService/UnaryCall",
    "/grpc.testing.TestService/StreamingOutputCall",
    "/grpc.testing.TestService/StreamingInputCall",
    "/grpc.testing.TestService/FullDuplexCall",
    "/grpc.testing.TestService/EmptyCall",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.health.v1.Health/Check",
};
/* Per protocol: content-type, its compression header and its timeout header and value. */
static const struct {
  const char *ct, *enc, *timeout, *timeout_value;
} fuzz_protos[4] = {
    {"application/grpc", "grpc-encoding", "grpc-timeout", "5S"},
    {"application/grpc-web-text", "grpc-encoding", "grpc-timeout", "5S"},
    {"application/connect+proto", "connect-content-encoding", "connect-timeout-ms", "5000"},
    {"application/json", "content-encoding", "connect-timeout-ms", "5000"},
};

/* ---- handlers: everything the request asks for, bounded, at once ---- */

#define FUZZ_MAX_RESPONSES 8u /* responses sent per request message */
#define FUZZ_MAX_BODY 4096    /* bytes of payload per response */
static uint8_t fuzz_zeros[FUZZ_MAX_BODY];

static void fill(Grpc__Testing__Payload *p, int32_t size) {
  p->body.data = fuzz_zeros;
  p->body.len = size < 0 ? 0 : size > FUZZ_MAX_BODY ? FUZZ_MAX_BODY : (size_t)size;
}

static void empty_call(sb_call_t *call, const Grpc__Testing__Empty *req, Grpc__Testing__Empty *res,
                       void *ud) {
  (void)req, (void)res, (void)ud;
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void unary_call(sb_call_t *call, const Grpc__Testing__SimpleRequest *req,
                       Grpc__Testing__SimpleResponse *res, void *ud) {
  (void)ud;
  size_t n = 0;
  const uint8_t *bin = sb_call_metadata_bin(call, "x-grpc-test-echo-trailing-bin", &n);
  if (bin) sb_call_set_trailer(call, "x-grpc-test-echo-trailing-bin", bin, n);
  if (req->response_status && req->response_status->code) {
    sb_call_set_trailer(call, "grpc-status-details-bin", "\x08\x03", 2);
    sb_call_finish(call, (sb_code_t)(req->response_status->code & 0xff),
                   req->response_status->message);
    return;
  }
  if (req->response_compressed) sb_call_set_compress(call, req->response_compressed->value);
  Grpc__Testing__Payload *p = sb_call_alloc(call, sizeof *p);
  if (!p) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, NULL);
    return;
  }
  grpc__testing__payload__init(p);
  fill(p, req->response_size);
  res->payload = p;
  res->username = req->payload && req->payload->body.len ? "echo" : NULL;
  sb_call_finish(call, SB_CODE_OK, NULL);
}

/* Sends the responses req asks for. Returns 0, or -1 when the call can no longer send. */
static int respond(sb_call_t *call, const Grpc__Testing__StreamingOutputCallRequest *req) {
  for (size_t i = 0; i < req->n_response_parameters && i < FUZZ_MAX_RESPONSES; i++) {
    const Grpc__Testing__ResponseParameters *rp = req->response_parameters[i];
    Grpc__Testing__Payload p = GRPC__TESTING__PAYLOAD__INIT;
    Grpc__Testing__StreamingOutputCallResponse res =
        GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
    fill(&p, rp->size);
    res.payload = &p;
    sb_call_set_compress(call, rp->compressed && rp->compressed->value);
    if (sb_call_send(call, &res.base) < 0) return -1;
  }
  return 0;
}

static void streaming_output_call(sb_call_t *call,
                                  const Grpc__Testing__StreamingOutputCallRequest *req,
                                  Grpc__Testing__StreamingOutputCallResponse *res, void *ud) {
  (void)res, (void)ud;
  int rc = respond(call, req);
  sb_code_t code = req->response_status ? (sb_code_t)(req->response_status->code & 0xff) : 0;
  sb_call_finish(call, rc ? SB_CODE_CANCELLED : code, NULL);
}

static void finish_ok(sb_call_t *call, void *ud) {
  (void)ud;
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void finish_cancelled(sb_call_t *call, void *ud) {
  (void)ud;
  sb_call_finish(call, SB_CODE_CANCELLED, NULL);
}

static void input_message(sb_call_t *call, const ProtobufCMessage *msg, void *ud) {
  Grpc__Testing__StreamingInputCallResponse *res = ud;
  const Grpc__Testing__StreamingInputCallRequest *req = (const void *)msg;
  if (req->payload) res->aggregated_payload_size += (int32_t)(req->payload->body.len & 0xffff);
  /* Exercise the receive-side flow control the way a slow consumer would. */
  sb_call_pause_recv(call, 1);
  sb_call_pause_recv(call, 0);
}

static void streaming_input_call(sb_call_t *call, Grpc__Testing__StreamingInputCallResponse *res,
                                 void *ud) {
  (void)ud;
  sb_call_stream_t cbs = {
      .on_message = input_message, .on_end = finish_ok, .on_cancel = finish_cancelled, .ud = res};
  sb_call_set_stream(call, &cbs);
}

static void duplex_message(sb_call_t *call, const ProtobufCMessage *msg, void *ud) {
  (void)ud;
  const Grpc__Testing__StreamingOutputCallRequest *req = (const void *)msg;
  if (req->response_status && req->response_status->code) {
    sb_call_finish(call, (sb_code_t)(req->response_status->code & 0xff),
                   req->response_status->message);
    return;
  }
  if (respond(call, req)) sb_call_finish(call, SB_CODE_CANCELLED, NULL);
}

static void full_duplex_call(sb_call_t *call, void *ud) {
  (void)ud;
  const char *v = sb_call_metadata(call, "x-grpc-test-echo-initial");
  if (v) sb_call_set_header(call, "x-grpc-test-echo-initial", v, strlen(v));
  sb_call_stream_t cbs = {
      .on_message = duplex_message, .on_end = finish_ok, .on_cancel = finish_cancelled};
  sb_call_set_stream(call, &cbs);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_setup();
  if (sb_rpc_new(fuzz_srv, &fuzz_rpc) != 0) abort();
  sb_rpc_set_max_recv(fuzz_rpc, FUZZ_MAX_BODY_BYTES / 2);
  static const Grpc__Testing__TestService_Handlers handlers = {
      .empty_call = empty_call,
      .unary_call = unary_call,
      .streaming_output_call = streaming_output_call,
      .streaming_input_call = streaming_input_call,
      .full_duplex_call = full_duplex_call,
      .half_duplex_call = full_duplex_call,
  };
  if (grpc__testing__test_service__register(fuzz_rpc, &handlers, NULL) != 0) abort();
  return 0;
}

/* ---- the HTTP/2 request around the body ---- */

static size_t put_frame_head(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t sid) {
  p[0] = (uint8_t)(len >> 16);
  p[1] = (uint8_t)(len >> 8);
  p[2] = (uint8_t)len;
  p[3] = type;
  p[4] = flags;
  p[5] = (uint8_t)(sid >> 24);
  p[6] = (uint8_t)(sid >> 16);
  p[7] = (uint8_t)(sid >> 8);
  p[8] = (uint8_t)sid;
  return 9;
}

/* An HPACK string literal without Huffman coding; every string here is under 127 bytes. */
static size_t put_str(uint8_t *p, const char *s) {
  size_t n = strlen(s);
  p[0] = (uint8_t)n;
  memcpy(p + 1, s, n);
  return n + 1;
}

/* A literal header field without indexing, with a new name (RFC 7541 section 6.2.2). */
static size_t put_field(uint8_t *p, const char *name, const char *value) {
  size_t o = 0;
  p[o++] = 0x00;
  o += put_str(p + o, name);
  o += put_str(p + o, value);
  return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  uint8_t sel = data[0];
  const uint8_t *body = data + 1;
  size_t blen = size - 1;
  size_t step = sel & 128 ? 7 : FUZZ_GRPC_MAX_FRAME;
  unsigned proto = (sel >> 3) & 3;

  uint8_t head[FUZZ_GRPC_HEAD];
  size_t o = 0;
  memcpy(head, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
  o = 24;
  o += put_frame_head(head + o, 0, 0x4, 0, 0); /* empty SETTINGS */
  size_t hdr_at = o;
  o += 9;
  size_t block = o;
  head[o++] = 0x83; /* :method POST */
  head[o++] = 0x86; /* :scheme http */
  head[o++] = 0x04; /* :path, literal with indexed name */
  o += put_str(head + o, fuzz_paths[sel & 7]);
  head[o++] = 0x01; /* :authority */
  o += put_str(head + o, "fuzz");
  o += put_field(head + o, "content-type", fuzz_protos[proto].ct);
  o += put_field(head + o, "connect-protocol-version", "1");
  o += put_field(head + o, "te", "trailers");
  o += put_field(head + o, "grpc-accept-encoding", "identity,gzip");
  o += put_field(head + o, "x-grpc-test-echo-trailing-bin", "q6ur");
  o += put_field(head + o, "x-grpc-test-echo-initial", "value");
  if (sel & 32) o += put_field(head + o, fuzz_protos[proto].enc, "gzip");
  if (sel & 64)
    o += put_field(head + o, fuzz_protos[proto].timeout, fuzz_protos[proto].timeout_value);
  put_frame_head(head + hdr_at, o - block, 0x1, blen ? 0x4 : 0x5, 1); /* END_HEADERS */

  /* The body as DATA frames of step bytes, the last one ending the stream. */
  size_t nframes = blen ? (blen + step - 1) / step : 0;
  uint8_t *frames = malloc(nframes * 9 + blen + 1);
  if (!frames) return 0;
  size_t f = 0;
  for (size_t off = 0; off < blen; off += step) {
    size_t n = blen - off < step ? blen - off : step;
    f += put_frame_head(frames + f, n, 0x0, off + n == blen ? 0x1 : 0x0, 1);
    memcpy(frames + f, body + off, n);
    f += n;
  }
  fuzz_one_connection(head, o, frames, f);
  free(frames);
  return 0;
}
