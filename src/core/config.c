#include "core/config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "switchboard/error.h"

const char *sb_serve_usage(void) {
  return "  --http ADDR:PORT          HTTP listener (default 127.0.0.1:8080; port 0 = any)\n"
         "  --data DIR                data directory (default ./data)\n"
         "  --disk-reserve-mb N       free disk the broker keeps: sends that would use it are\n"
         "                            refused (default 64)\n"
         "  --docs-dir DIR            Swagger UI assets for /docs (swagger-ui-dist directory)\n"
         "  --threads N               worker threads (default: number of CPUs)\n"
         "  --log-level L             debug, info, warn, error or off (default info)\n"
         "  --json-unknown-fields P   reject (default) or ignore unknown JSON fields\n"
         "  --trpc-base PATH          base path of tRPC procedures (default /trpc)\n"
         "  --trpc-method-override B  on: queries may be POSTed (default off)\n"
         "  --tls-cert FILE           PEM certificate chain; enables TLS (h2 via ALPN)\n"
         "  --tls-key FILE            PEM private key for --tls-cert\n"
         "  --max-header-bytes N      request line + headers (default 16384; over -> 431)\n"
         "  --max-body-bytes N        request body (default 8388608; over -> 413)\n"
         "  --header-timeout-ms N     time to send a request's headers (default 10000)\n"
         "  --idle-timeout-ms N       keep-alive idle and stalled I/O (default 60000)\n"
         "  --max-connections N       open connections; accept pauses above (default 16384)\n"
         "  --h2-max-streams N        concurrent HTTP/2 streams per connection (default 128)\n"
         "  --h2-max-header-list N    HTTP/2 header list bytes (default 16384)\n"
         "  --shutdown-grace-ms N     in-flight time after SIGTERM (default 10000)\n"
         "  --sqs-region R            region in SQS queue ARNs (default us-east-1)\n"
         "  --sqs-account ID          account id in SQS queue URLs and ARNs (default "
         "000000000000)\n"
         "  --sqs-credentials K:S     verify SigV4 signatures of SQS requests against access\n"
         "                            key id K and secret S (default: accept unsigned)\n"
         "  --sns-signing-key FILE    PEM RSA key and certificate that sign SNS webhook messages\n"
         "                            (default: DIR/sns-signing.pem, created on first start)\n"
         "  --sns-webhook-ca FILE     PEM CA certificates trusted for https webhooks, besides\n"
         "                            the system's\n";
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (!s || *s < '0' || *s > '9') return SB_EINVAL; /* strtoull would skip spaces and signs */
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v > max) return SB_EINVAL;
  *out = v;
  return 0;
}

int sb_serve_parse(int argc, char **argv, sb_serve_opts_t *opts, char *err, size_t errlen) {
  memset(opts, 0, sizeof *opts);
  opts->server.http_addr = "127.0.0.1:8080";
  opts->data_dir = "./data";
  opts->disk_reserve = SB_SERVE_DISK_RESERVE_DEFAULT;
  opts->log_level = SB_LOG_INFO;
  opts->sqs_region = "us-east-1";
  opts->sqs_account = "000000000000";
  for (int i = 0; i < argc; i++) {
    const char *flag = argv[i];
    const char *val = NULL;
    /* Accept both "--flag value" and "--flag=value". */
    char name[64];
    const char *eq = strchr(flag, '=');
    if (strncmp(flag, "--", 2) == 0 && eq && (size_t)(eq - flag) < sizeof name) {
      memcpy(name, flag, (size_t)(eq - flag));
      name[eq - flag] = '\0';
      flag = name;
      val = eq + 1;
    } else if (i + 1 < argc) {
      val = argv[i + 1];
      i++;
    } else {
      snprintf(err, errlen, "%s needs a value (or is unknown)", flag);
      return SB_EINVAL;
    }
    uint64_t n = 0;
    int rc = 0;
    sb_server_config_t *c = &opts->server;
    if (strcmp(flag, "--http") == 0)
      c->http_addr = val;
    else if (strcmp(flag, "--data") == 0)
      opts->data_dir = val;
    else if (strcmp(flag, "--docs-dir") == 0)
      opts->docs_dir = val;
    else if (strcmp(flag, "--tls-cert") == 0)
      c->tls_cert = val;
    else if (strcmp(flag, "--tls-key") == 0)
      c->tls_key = val;
    else if (strcmp(flag, "--sqs-region") == 0)
      opts->sqs_region = val;
    else if (strcmp(flag, "--sqs-account") == 0)
      opts->sqs_account = val;
    else if (strcmp(flag, "--sqs-credentials") == 0)
      opts->sqs_credentials = val;
    else if (strcmp(flag, "--sns-signing-key") == 0)
      opts->sns_signing_key = val;
    else if (strcmp(flag, "--sns-webhook-ca") == 0)
      opts->sns_webhook_ca = val;
    else if (strcmp(flag, "--log-level") == 0)
      rc = sb_log_parse_level(val, &opts->log_level);
    else if (strcmp(flag, "--json-unknown-fields") == 0) {
      if (strcmp(val, "reject") == 0)
        opts->json_ignore_unknown = 0;
      else if (strcmp(val, "ignore") == 0)
        opts->json_ignore_unknown = 1;
      else
        rc = SB_EINVAL;
    } else if (strcmp(flag, "--trpc-base") == 0) {
      opts->trpc_base = val;
    } else if (strcmp(flag, "--trpc-method-override") == 0) {
      if (strcmp(val, "on") == 0 || strcmp(val, "off") == 0)
        opts->trpc_method_override = strcmp(val, "on") == 0;
      else
        rc = SB_EINVAL;
    } else if (strcmp(flag, "--disk-reserve-mb") == 0) {
      if (!(rc = parse_u64(val, UINT64_MAX >> 20, &n))) opts->disk_reserve = n << 20;
    } else if (strcmp(flag, "--threads") == 0) {
      if (!(rc = parse_u64(val, 256, &n))) c->threads = (unsigned)n;
    } else if (strcmp(flag, "--max-header-bytes") == 0) {
      if (!(rc = parse_u64(val, 1u << 24, &n))) c->max_header_bytes = (uint32_t)n;
    } else if (strcmp(flag, "--max-body-bytes") == 0) {
      if (!(rc = parse_u64(val, UINT64_MAX / 2, &n))) c->max_body_bytes = n;
    } else if (strcmp(flag, "--header-timeout-ms") == 0) {
      if (!(rc = parse_u64(val, UINT32_MAX, &n))) c->header_timeout_ms = (uint32_t)n;
    } else if (strcmp(flag, "--idle-timeout-ms") == 0) {
      if (!(rc = parse_u64(val, UINT32_MAX, &n))) c->idle_timeout_ms = (uint32_t)n;
    } else if (strcmp(flag, "--max-connections") == 0) {
      if (!(rc = parse_u64(val, 1u << 24, &n))) c->max_connections = (uint32_t)n;
    } else if (strcmp(flag, "--h2-max-streams") == 0) {
      if (!(rc = parse_u64(val, 1u << 20, &n))) c->h2_max_streams = (uint32_t)n;
    } else if (strcmp(flag, "--h2-max-header-list") == 0) {
      if (!(rc = parse_u64(val, 1u << 24, &n))) c->h2_max_header_list = (uint32_t)n;
    } else if (strcmp(flag, "--shutdown-grace-ms") == 0) {
      if (!(rc = parse_u64(val, UINT32_MAX, &n))) c->shutdown_grace_ms = (uint32_t)n;
    } else {
      snprintf(err, errlen, "unknown option %s", flag);
      return SB_EINVAL;
    }
    if (rc) {
      snprintf(err, errlen, "invalid value for %s: %s", flag, val);
      return SB_EINVAL;
    }
  }
  if (!!opts->server.tls_cert != !!opts->server.tls_key) {
    snprintf(err, errlen, "--tls-cert and --tls-key go together");
    return SB_EINVAL;
  }
  return 0;
}
