/*
 * Command-line configuration of `switchboard serve` (and of test servers that take the same
 * flags). Parsing is separate from the server so every binary accepts identical options.
 */
#ifndef SB_CORE_CONFIG_H
#define SB_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "switchboard/log.h"
#include "switchboard/server.h"

#define SB_SERVE_DISK_RESERVE_DEFAULT (64ull << 20) /* free disk the broker keeps by default */

typedef struct sb_serve_opts {
  sb_server_config_t server; /* strings point into argv (borrowed) */
  const char *data_dir;      /* --data, default "./data"; borrowed */
  uint64_t disk_reserve;     /* --disk-reserve-mb, in bytes: sends that would leave less free
                                disk are refused; default 64 MiB */
  const char *docs_dir;      /* --docs-dir (Swagger UI's assets), NULL = default; borrowed */
  sb_log_level_t log_level;  /* --log-level, default info */
  int json_ignore_unknown;   /* --json-unknown-fields ignore (1) | reject (0, default) */
  const char *trpc_base;     /* --trpc-base, NULL = the default (/trpc); borrowed */
  int trpc_method_override;  /* --trpc-method-override on (1) | off (0, default) */

  const char *sqs_region;      /* --sqs-region, region in SQS ARNs, default "us-east-1"; borrowed */
  const char *sqs_account;     /* --sqs-account, account id in SQS URLs and ARNs, default
                                  "000000000000"; borrowed */
  const char *sqs_credentials; /* --sqs-credentials KEY:SECRET: SigV4 is verified; NULL (the
                                  default) accepts any or no signature; borrowed */
  const char *sns_signing_key; /* --sns-signing-key FILE: PEM key and certificate signing SNS
                                  webhook messages; NULL: <data>/sns-signing.pem; borrowed */
  const char *sns_webhook_ca;  /* --sns-webhook-ca FILE: extra CAs for https webhooks; borrowed */
} sb_serve_opts_t;

/* The usage text for the serve flags (static). */
const char *sb_serve_usage(void);

/* Parses argv[0..argc) (the flags after "serve") into opts, which it zero-initialises first.
 * On error writes a one-line message to err (size errlen) and returns SB_EINVAL. Unknown
 * flags are errors. */
int sb_serve_parse(int argc, char **argv, sb_serve_opts_t *opts, char *err, size_t errlen);

#endif
