/*
 * The gRPC interop test server: grpc.testing.TestService (test.proto) as gRPC's interop test
 * description specifies it, on switchboard's handler API.
 *
 *   build/examples/interop --http 127.0.0.1:50051
 *
 * What each method does:
 *   EmptyCall            answers an empty message.
 *   UnaryCall,           answers response_size zero bytes, or response_status when its code is
 *   CacheableUnaryCall   not 0; compresses the answer when response_compressed says so; checks
 *                        that the request arrived compressed as expect_compressed says.
 *                        CacheableUnaryCall builds its answer on a thread of its own and
 *                        completes from there (sb_call_async_finish), as a handler that waits
 *                        on a database would.
 *   StreamingOutputCall  one response per response_parameters entry (size, interval_us,
 *                        compressed), then response_status.
 *   StreamingInputCall   sums the request payload sizes.
 *   FullDuplexCall       answers each request's response_parameters as it arrives.
 *   HalfDuplexCall       takes every request first, then answers them in order.
 *   UnimplementedCall    has no handler: UNIMPLEMENTED.
 * Every method echoes x-grpc-test-echo-initial as a response header and
 * x-grpc-test-echo-trailing-bin as a trailer.
 *
 * Streams never block the loop: waits are libuv timers on the call's loop, and a send that
 * reports a full buffer waits for on_writable.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/config.h"
#include "switchboard/switchboard.h"
#include "test.sb.h"

#define INTEROP_MAX_PAYLOAD (4u * 1024u * 1024u) /* largest response size honoured, bytes */
#define INTEROP_MAX_DETAILS 256u /* bytes of an encoded google.rpc.Status we attach */
#define ECHO_INITIAL "x-grpc-test-echo-initial"
#define ECHO_TRAILING "x-grpc-test-echo-trailing-bin"

/* Response payloads are zeros: every response body points here (never written; shared by all
 * worker threads read-only). */
static uint8_t zeros[INTEROP_MAX_PAYLOAD];

static void echo_metadata(sb_call_t *call) {
  const char *v = sb_call_metadata(call, ECHO_INITIAL);
  if (v) sb_call_set_header(call, ECHO_INITIAL, v, strlen(v));
  size_t n = 0;
  const uint8_t *b = sb_call_metadata_bin(call, ECHO_TRAILING, &n);
  if (b) sb_call_set_trailer(call, ECHO_TRAILING, b, n);
}

/* Points p at size zero bytes. Returns 0, or -1 for a size out of range. */
static int fill_payload(Grpc__Testing__Payload *p, int32_t size) {
  if (size < 0 || (uint32_t)size > INTEROP_MAX_PAYLOAD) return -1;
  p->type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
  p->body.data = zeros;
  p->body.len = (size_t)size;
  return 0;
}

/* The client says whether this request should have arrived compressed. Returns 0 when it
 * did as expected (or the client does not care), else the message to fail with. */
static const char *compression_mismatch(sb_call_t *call, const Grpc__Testing__BoolValue *expect) {
  if (!expect) return NULL;
  int got = sb_call_request_compressed(call);
  if (expect->value && !got) return "expected a compressed request";
  if (!expect->value && got) return "expected an uncompressed request";
  return NULL;
}

/* Finishes the call with the requested status, with a google.rpc.Status carrying the same code
 * and message in grpc-status-details-bin (the protocol's rich error trailer). */
static void finish_status(sb_call_t *call, const Grpc__Testing__EchoStatus *st) {
  /* google.rpc.Status: 1 = code (int32), 2 = message (string); encoded by hand because the
   * example has no generated code for it. Messages longer than the buffer go without it. */
  uint8_t details[INTEROP_MAX_DETAILS];
  size_t msg_len = st->message ? strlen(st->message) : 0;
  if (st->code > 0 && st->code < 128 && msg_len < 128 && msg_len + 4 <= sizeof details) {
    size_t n = 0;
    details[n++] = 0x08; /* field 1, varint */
    details[n++] = (uint8_t)st->code;
    details[n++] = 0x12; /* field 2, length-delimited */
    details[n++] = (uint8_t)msg_len;
    if (msg_len) memcpy(details + n, st->message, msg_len);
    sb_call_set_trailer(call, "grpc-status-details-bin", details, n + msg_len);
  }
  sb_call_finish(call, (sb_code_t)st->code, st->message);
}

static void empty_call(sb_call_t *call, const Grpc__Testing__Empty *req, Grpc__Testing__Empty *res,
                       void *ud) {
  (void)req, (void)res, (void)ud;
  echo_metadata(call);
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void unary_call(sb_call_t *call, const Grpc__Testing__SimpleRequest *req,
                       Grpc__Testing__SimpleResponse *res, void *ud) {
  (void)ud;
  echo_metadata(call);
  const char *bad = compression_mismatch(call, req->expect_compressed);
  if (bad) {
    sb_call_finish(call, SB_CODE_INVALID_ARGUMENT, bad);
    return;
  }
  if (req->response_status && req->response_status->code) {
    finish_status(call, req->response_status);
    return;
  }
  if (req->response_compressed) sb_call_set_compress(call, req->response_compressed->value);
  Grpc__Testing__Payload *p = sb_call_alloc(call, sizeof *p);
  if (!p) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  grpc__testing__payload__init(p);
  if (fill_payload(p, req->response_size)) {
    sb_call_finish(call, SB_CODE_INVALID_ARGUMENT, "response_size out of range");
    return;
  }
  res->payload = p;
  sb_call_finish(call, SB_CODE_OK, NULL);
}

/* CacheableUnaryCall: the same answer, produced off the loop. */
typedef struct offloop {
  sb_call_t *call;                         /* borrowed until completed */
  const Grpc__Testing__SimpleRequest *req; /* borrowed: lives until the call finishes */
  Grpc__Testing__SimpleResponse *res;      /* the call's response, filled by the thread */
  Grpc__Testing__Payload payload;          /* res->payload points here */
  sb_call_async_t *done;                   /* completes the call on its loop */
} offloop_t;

static void *offloop_run(void *arg) {
  offloop_t *o = arg;
  sb_code_t code = SB_CODE_OK;
  const char *msg = NULL;
  grpc__testing__payload__init(&o->payload);
  if (o->req->response_status && o->req->response_status->code) {
    code = (sb_code_t)o->req->response_status->code;
    msg = o->req->response_status->message;
  } else if (fill_payload(&o->payload, o->req->response_size)) {
    code = SB_CODE_INVALID_ARGUMENT;
    msg = "response_size out of range";
  } else {
    o->res->payload = &o->payload;
  }
  sb_call_async_finish(o->done, code, msg);
  return NULL;
}

static void cacheable_unary_call(sb_call_t *call, const Grpc__Testing__SimpleRequest *req,
                                 Grpc__Testing__SimpleResponse *res, void *ud) {
  (void)ud;
  echo_metadata(call);
  /* The state lives in the call's memory: it goes away with the call, after completion. */
  offloop_t *o = sb_call_alloc(call, sizeof *o);
  sb_call_async_t *done = NULL;
  pthread_t t;
  pthread_attr_t attr;
  if (!o || sb_call_async_new(call, &done)) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  *o = (offloop_t){call, req, res, GRPC__TESTING__PAYLOAD__INIT, done};
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, offloop_run, o)) offloop_run(o); /* no thread: do it here */
  pthread_attr_destroy(&attr);
}

/* ---- streams ---- */

/* One response still to send. */
typedef struct pending {
  int32_t size;         /* payload bytes */
  uint32_t interval_us; /* wait before sending */
  int8_t compressed;    /* 1 compress, 0 do not, -1 unspecified */
  uint8_t waited;       /* the interval already passed */
} pending_t;

/* State of one streaming call. Owned by the call's handler from creation until done(); freed
 * in the timer's close callback (the timer is always initialised). Lives on the call's loop. */
typedef struct stream {
  sb_call_t *call;                                      /* borrowed until done() */
  uv_timer_t timer;                                     /* interval waits */
  pending_t *q;                                         /* responses to send, q[head..n); owned */
  size_t head, n, cap;                                  /* head <= n <= cap */
  Grpc__Testing__StreamingInputCallResponse *input_res; /* StreamingInputCall's response */
  int64_t aggregated;    /* StreamingInputCall: payload bytes received */
  unsigned half : 1;     /* HalfDuplexCall: answer only after the end */
  unsigned ended : 1;    /* no more requests */
  unsigned waiting : 1;  /* a timer or on_writable is pending */
  unsigned finished : 1; /* done() ran */
  sb_code_t code;        /* status to finish with once the queue is empty */
  char *message;         /* its message (owned), or NULL */
} stream_t;

static void free_stream(uv_handle_t *h) {
  stream_t *s = h->data;
  free(s->q);
  free(s->message);
  free(s);
}

static void done(stream_t *s, sb_code_t code, const char *message) {
  if (s->finished) return;
  s->finished = 1;
  sb_call_finish(s->call, code, message);
  uv_close((uv_handle_t *)&s->timer, free_stream);
}

static void pump(stream_t *s);

static void on_timer(uv_timer_t *t) {
  stream_t *s = t->data;
  s->waiting = 0;
  pump(s);
}

/* Sends what is due; finishes once everything was sent and the requests ended. */
static void pump(stream_t *s) {
  while (!s->finished && !s->waiting && s->head < s->n && (!s->half || s->ended)) {
    pending_t *p = &s->q[s->head];
    if (p->interval_us && !p->waited) {
      p->waited = 1;
      s->waiting = 1;
      uv_timer_start(&s->timer, on_timer, (p->interval_us + 999u) / 1000u, 0);
      return;
    }
    s->head++;
    Grpc__Testing__Payload payload = GRPC__TESTING__PAYLOAD__INIT;
    Grpc__Testing__StreamingOutputCallResponse res =
        GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
    if (fill_payload(&payload, p->size)) {
      done(s, SB_CODE_INVALID_ARGUMENT, "size out of range");
      return;
    }
    res.payload = &payload;
    sb_call_set_compress(s->call, p->compressed == 1);
    int rc = sb_call_send(s->call, &res.base);
    if (rc < 0) {
      done(s, SB_CODE_CANCELLED, NULL);
      return;
    }
    if (rc == 1) {
      /* The client reads slower than it asks: stop taking requests until it caught up. */
      s->waiting = 1;
      sb_call_pause_recv(s->call, 1);
    }
  }
  if (!s->finished && s->ended && s->head == s->n) done(s, s->code, s->message);
}

/* Queues the responses one request asks for, and remembers its status. Returns 0 or -1 (out of
 * memory; the call was finished). */
static int queue(stream_t *s, const Grpc__Testing__StreamingOutputCallRequest *req) {
  if (s->n + req->n_response_parameters > s->cap) {
    size_t ncap = (s->n + req->n_response_parameters) * 2 + 4;
    pending_t *nq = realloc(s->q, ncap * sizeof *nq);
    if (!nq) {
      done(s, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
      return -1;
    }
    s->q = nq;
    s->cap = ncap;
  }
  for (size_t i = 0; i < req->n_response_parameters; i++) {
    const Grpc__Testing__ResponseParameters *rp = req->response_parameters[i];
    s->q[s->n++] = (pending_t){rp->size, rp->interval_us > 0 ? (uint32_t)rp->interval_us : 0,
                               (int8_t)(rp->compressed ? rp->compressed->value : -1), 0};
  }
  if (req->response_status && req->response_status->code) {
    free(s->message);
    s->code = (sb_code_t)req->response_status->code;
    s->message = req->response_status->message ? strdup(req->response_status->message) : NULL;
  }
  return 0;
}

static void on_writable(sb_call_t *call, void *ud) {
  stream_t *s = ud;
  s->waiting = 0;
  sb_call_pause_recv(call, 0);
  pump(s);
}

static void on_cancel(sb_call_t *call, void *ud) {
  (void)call;
  done(ud, SB_CODE_CANCELLED, NULL);
}

static void on_duplex_message(sb_call_t *call, const ProtobufCMessage *msg, void *ud) {
  stream_t *s = ud;
  (void)call;
  const Grpc__Testing__StreamingOutputCallRequest *req = (const void *)msg;
  if (queue(s, req)) return;
  /* A request asking for an error status ends the call with it, after what is queued. */
  if (req->response_status && req->response_status->code) s->ended = 1;
  pump(s);
}

static void on_input_message(sb_call_t *call, const ProtobufCMessage *msg, void *ud) {
  stream_t *s = ud;
  const Grpc__Testing__StreamingInputCallRequest *req = (const void *)msg;
  const char *bad = compression_mismatch(call, req->expect_compressed);
  if (bad) {
    done(s, SB_CODE_INVALID_ARGUMENT, bad);
    return;
  }
  if (req->payload) s->aggregated += (int64_t)req->payload->body.len;
}

static void on_stream_end(sb_call_t *call, void *ud) {
  stream_t *s = ud;
  (void)call;
  if (s->input_res) {
    s->input_res->aggregated_payload_size =
        s->aggregated > INT32_MAX ? INT32_MAX : (int32_t)s->aggregated;
    done(s, SB_CODE_OK, NULL);
    return;
  }
  s->ended = 1;
  pump(s);
}

/* Creates the state of a streaming call with on_message as its request callback. Returns NULL
 * after finishing the call RESOURCE_EXHAUSTED. */
static stream_t *stream_new(sb_call_t *call, sb_call_msg_cb on_message) {
  stream_t *s = calloc(1, sizeof *s);
  if (!s) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  s->call = call;
  uv_timer_init(sb_call_loop(call), &s->timer);
  s->timer.data = s;
  echo_metadata(call);
  sb_call_stream_t cbs = {.on_message = on_message,
                          .on_end = on_stream_end,
                          .on_writable = on_writable,
                          .on_cancel = on_cancel,
                          .ud = s};
  sb_call_set_stream(call, &cbs);
  return s;
}

static void streaming_output_call(sb_call_t *call,
                                  const Grpc__Testing__StreamingOutputCallRequest *req,
                                  Grpc__Testing__StreamingOutputCallResponse *res, void *ud) {
  (void)res, (void)ud;
  stream_t *s = stream_new(call, NULL);
  if (!s || queue(s, req)) return;
  s->ended = 1;
  pump(s);
}

static void streaming_input_call(sb_call_t *call, Grpc__Testing__StreamingInputCallResponse *res,
                                 void *ud) {
  (void)ud;
  stream_t *s = stream_new(call, on_input_message);
  if (s) s->input_res = res;
}

static void full_duplex_call(sb_call_t *call, void *ud) {
  (void)ud;
  stream_new(call, on_duplex_message);
}

static void half_duplex_call(sb_call_t *call, void *ud) {
  (void)ud;
  stream_t *s = stream_new(call, on_duplex_message);
  if (s) s->half = 1;
}

int main(int argc, char **argv) {
  sb_serve_opts_t opts;
  char err[256];
  int skip = argc > 1 && strcmp(argv[1], "serve") == 0;
  if (sb_serve_parse(argc - 1 - skip, argv + 1 + skip, &opts, err, sizeof err)) {
    fprintf(stderr, "interop: %s\n", err);
    return 2;
  }
  sb_log_set_level(opts.log_level);
  sb_server_t *srv = NULL;
  sb_rpc_t *rpc = NULL;
  int rc = sb_server_new(&opts.server, &srv);
  if (!rc) rc = sb_rpc_new(srv, &rpc);
  static const Grpc__Testing__TestService_Handlers handlers = {
      .empty_call = empty_call,
      .unary_call = unary_call,
      .cacheable_unary_call = cacheable_unary_call,
      .streaming_output_call = streaming_output_call,
      .streaming_input_call = streaming_input_call,
      .full_duplex_call = full_duplex_call,
      .half_duplex_call = half_duplex_call,
      .unimplemented_call = NULL,
  };
  if (!rc) rc = grpc__testing__test_service__register(rpc, &handlers, NULL);
  if (!rc) rc = sb_server_run(srv);
  if (rc) fprintf(stderr, "interop: %s\n", sb_strerror(rc));
  sb_server_free(srv);
  sb_rpc_free(rpc);
  return rc ? 1 : 0;
}
