/*
 * Routes every switchboard server answers: /healthz, /metrics, the 404 fallback, and the
 * short error answers the transports give for protocol-level failures.
 */
#include <stdio.h>
#include <string.h>

#include "net/net_int.h"
#include "switchboard/error.h"
#include "switchboard/version.h"

static int method_is(const sb_http_req_t *req, const char *m) {
  return strcmp(req->method, m) == 0;
}

/* Answers 405 unless the method is GET or HEAD; returns 1 when it answered. */
static int only_get(sb_http_req_t *req) {
  if (method_is(req, "GET") || method_is(req, "HEAD")) return 0;
  sb_http_res_header(req, "allow", "GET, HEAD");
  sb_http_respond(req, 405, "text/plain", "method not allowed\n", 19);
  return 1;
}

void sb__builtin_healthz(sb_http_req_t *req, void *ud) {
  (void)ud;
  if (only_get(req)) return;
  sb_http_respond(req, 200, "text/plain", "ok\n", 3);
}

void sb__builtin_not_found(sb_http_req_t *req, void *ud) {
  (void)ud;
  sb_http_respond(req, 404, "text/plain", "not found\n", 10);
}

void sb__respond_error(sb_http_req_t *req, int status) {
  char body[96];
  int n = snprintf(body, sizeof body, "%d %s\n", status, sb_http_status_text(status));
  req->dispatched = 1;
  req->keepalive = 0;
  if (!req->start_us) req->start_us = uv_hrtime() / 1000u;
  sb_http_respond(req, status, "text/plain", body, (size_t)n);
}

static const char *const proto_label[2] = {"http1", "http2"};

void sb__builtin_metrics(sb_http_req_t *req, void *ud) {
  (void)ud;
  if (only_get(req)) return;
  sb_server_t *srv = req->w->srv;
  sb_buf_t out = {0};
  uint64_t accepted = 0, closed = 0, in = 0, outb = 0, perr = 0, tmo = 0;
  sb_hist_t *hists[256];
  unsigned nh = srv->nworkers < 256 ? srv->nworkers : 256;
  for (unsigned i = 0; i < srv->nworkers; i++) {
    sb__net_metrics_t *m = &srv->workers[i].metrics;
    accepted += sb_counter_get(&m->conns_accepted);
    closed += sb_counter_get(&m->conns_closed);
    in += sb_counter_get(&m->bytes_in);
    outb += sb_counter_get(&m->bytes_out);
    perr += sb_counter_get(&m->protocol_errors);
    tmo += sb_counter_get(&m->timeouts);
    if (i < nh) hists[i] = &m->latency;
  }
  int rc = sb_buf_appendf(
      &out,
      "# HELP switchboard_build_info Build information.\n"
      "# TYPE switchboard_build_info gauge\n"
      "switchboard_build_info{version=\"%s\"} 1\n"
      "# HELP switchboard_connections_open Open client connections.\n"
      "# TYPE switchboard_connections_open gauge\n"
      "switchboard_connections_open %llu\n"
      "# HELP switchboard_connections_total Accepted client connections.\n"
      "# TYPE switchboard_connections_total counter\n"
      "switchboard_connections_total %llu\n"
      "# HELP switchboard_connection_errors_total Connections closed for bad input or timeouts.\n"
      "# TYPE switchboard_connection_errors_total counter\n"
      "switchboard_connection_errors_total{reason=\"protocol\"} %llu\n"
      "switchboard_connection_errors_total{reason=\"timeout\"} %llu\n"
      "# HELP switchboard_http_bytes_received_total Bytes read from client sockets.\n"
      "# TYPE switchboard_http_bytes_received_total counter\n"
      "switchboard_http_bytes_received_total %llu\n"
      "# HELP switchboard_http_bytes_sent_total Bytes written to client sockets.\n"
      "# TYPE switchboard_http_bytes_sent_total counter\n"
      "switchboard_http_bytes_sent_total %llu\n"
      "# HELP switchboard_http_requests_total Completed HTTP exchanges.\n"
      "# TYPE switchboard_http_requests_total counter\n",
      SB_VERSION_STRING, (unsigned long long)(accepted - closed), (unsigned long long)accepted,
      (unsigned long long)perr, (unsigned long long)tmo, (unsigned long long)in,
      (unsigned long long)outb);
  for (int p = 0; p < 2 && !rc; p++) {
    for (int st = 0; st < SB_STATUS_MAX && !rc; st++) {
      uint64_t n = 0;
      for (unsigned i = 0; i < srv->nworkers; i++)
        n += sb_counter_get(&srv->workers[i].metrics.requests[p][st]);
      if (n)
        rc = sb_buf_appendf(&out,
                            "switchboard_http_requests_total{protocol=\"%s\",code=\"%d\"} %llu\n",
                            proto_label[p], st, (unsigned long long)n);
    }
  }
  if (!rc)
    rc = sb_buf_appendf(&out, "# HELP switchboard_http_request_duration_seconds Handler call to "
                              "response complete.\n"
                              "# TYPE switchboard_http_request_duration_seconds histogram\n");
  if (!rc) rc = sb_hist_render(&out, "switchboard_http_request_duration_seconds", "", hists, nh);
  if (rc)
    sb_http_respond(req, 500, "text/plain", "out of memory\n", 14);
  else
    sb_http_respond(req, 200, "text/plain; version=0.0.4", sb_buf_head(&out), sb_buf_pending(&out));
  sb_buf_free(&out);
}
