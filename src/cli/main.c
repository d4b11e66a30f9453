/*
 * The switchboard command. `serve` runs the server; later subcommands (gen, call, send, recv,
 * tail, redrive, bench) join here.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/config.h"
#include "protocols/broker/broker_api.h"
#include "switchboard/rpc.h"
#include "switchboard/sns.h"
#include "switchboard/sqs.h"
#include "switchboard/switchboard.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: switchboard <command> [options]\n"
          "\n"
          "commands:\n"
          "  serve        run the server (HTTP/1.1, HTTP/2, TLS on one port)\n"
          "  gen          generate C from .proto contracts (switchboard gen --help)\n"
          "%s"
          "\n"
          "options:\n"
          "  --help       show this help\n"
          "  --version    show the version\n"
          "\n"
          "serve options:\n%s",
          sb_cli_broker_usage(), sb_serve_usage());
}

static void end_long_polls(void *ud) {
  sb_broker_end_waits(ud, NULL, NULL);
}

static int cmd_serve(int argc, char **argv) {
  sb_serve_opts_t opts;
  char err[256];
  if (sb_serve_parse(argc, argv, &opts, err, sizeof err) != 0) {
    fprintf(stderr, "switchboard serve: %s\n(see switchboard --help)\n", err);
    return 2;
  }
  sb_log_set_level(opts.log_level);
  /* The data directory holds the broker's log; create it now so a bad path fails early. */
  if (mkdir(opts.data_dir, 0755) != 0) {
    struct stat st;
    if (stat(opts.data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
      sb_log(SB_LOG_ERROR, "data_dir_unusable", "path=%s", opts.data_dir);
      return 1;
    }
  }
  /* The broker recovers every queue before the listeners open, so the first request already
   * sees everything acknowledged before a crash. */
  sb_broker_opts_t bopts;
  sb_broker_opts_default(&bopts);
  bopts.data_dir = opts.data_dir;
  bopts.disk_reserve_bytes = opts.disk_reserve;
  sb_broker_t *broker = NULL;
  int rc = sb_broker_open(&bopts, &broker);
  if (rc) {
    sb_log(SB_LOG_ERROR, "broker_open_failed", "path=%s error=\"%s\"", opts.data_dir,
           sb_strerror(rc));
    return 1;
  }
  sb_server_t *srv;
  rc = sb_server_new(&opts.server, &srv);
  if (rc) {
    sb_log(SB_LOG_ERROR, "config_invalid", "error=\"%s\"", sb_strerror(rc));
    sb_broker_close(broker);
    return 1;
  }
  /* The RPC registry serves /openapi.json and /docs (Swagger UI) from the start; the
   * broker's own contract registers on it as it lands. */
  sb_rpc_t *rpc = NULL;
  rc = sb_rpc_new(srv, &rpc);
  if (!rc) sb_rpc_set_ignore_unknown_fields(rpc, opts.json_ignore_unknown);
  if (!rc && opts.docs_dir) rc = sb_rpc_set_docs_dir(rpc, opts.docs_dir);
  if (!rc && opts.trpc_base) rc = sb_rpc_set_trpc_base(rpc, opts.trpc_base);
  if (!rc) rc = sb_rpc_set_trpc_method_override(rpc, opts.trpc_method_override);
  /* The broker's own API (REST under /v1/..., gRPC): handlers hand each call to the broker
   * thread, which is why the broker is closed only after the server. */
  if (!rc) rc = sb_broker_api_register(rpc, broker);
  /* The SQS API (both wire protocols) claims its requests before REST sees them. */
  sb_sqs_t *sqs = NULL;
  sb_sqs_config_t sqs_cfg = {opts.sqs_region, opts.sqs_account,     opts.sqs_credentials,
                             opts.data_dir,   opts.sns_signing_key, opts.sns_webhook_ca};
  /* SNS first: it claims only requests signed for SNS; SQS takes the other Query requests. */
  sb_sns_t *sns = NULL;
  if (!rc) rc = sb_sns_attach(rpc, broker, &sqs_cfg, &sns);
  if (!rc) rc = sb_sqs_attach(rpc, broker, &sqs_cfg, &sqs);
  /* Long polls would hold their requests through the shutdown grace period: end them as
   * the server starts to stop, so they answer (empty) and their connections close. */
  sb_server_on_stop(srv, end_long_polls, broker);
  if (!rc) rc = sb_server_run(srv);
  if (rc)
    sb_log(SB_LOG_ERROR, "start_failed", "addr=%s error=\"%s\"", opts.server.http_addr,
           sb_strerror(rc));
  sb_server_free(srv);
  sb_rpc_free(rpc);
  sb_sqs_free(sqs);
  sb_sns_stop(sns); /* webhook delivery calls the broker: stop it before the broker closes */
  sb_broker_close(broker);
  sb_sns_free(sns); /* after the broker: its "sns" formatter borrows the front-end */
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
    printf("switchboard %s\n", SB_VERSION_STRING);
    return 0;
  }
  if (strcmp(argv[1], "serve") == 0) return cmd_serve(argc - 2, argv + 2);
  if (strcmp(argv[1], "gen") == 0) return sb_cli_gen(argc - 2, argv + 2);
  if (sb_cli_is_broker(argv[1])) return sb_cli_broker(argv[1], argc - 2, argv + 2);
  fprintf(stderr, "switchboard: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
