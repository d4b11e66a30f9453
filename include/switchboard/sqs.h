/*
 * The SQS API on the broker: existing boto3 and AWS SDK code talks to switchboard's work
 * queues with only its endpoint changed.
 *
 * Both wire protocols of SQS are served on the HTTP listener, at the same endpoint: the
 * Query protocol (form-encoded POST to "/" or to a queue URL's path, `Action=...`, XML
 * answers and XML errors; what botocore before 1.31.81 speaks) and AWS JSON 1.0
 * (`X-Amz-Target: AmazonSQS.<Action>`, errors with `__type` and `x-amzn-query-error`; what
 * the AWS SDK for JavaScript v3 and newer botocore speak). Every SQS action maps onto the
 * queue engine of broker.h; nothing is queued anywhere else.
 *
 * Queue URLs are http(s)://<Host header>/<account>/<name>, ARNs
 * arn:aws:sqs:<region>:<account>:<name>. Without credentials configured (dev mode) requests
 * are accepted signed (SigV4) or unsigned and signatures are not checked; with credentials,
 * every request must carry a valid SigV4 signature (Authorization header form) by that key
 * within 15 minutes of the server's clock, else it is refused with AWS's error
 * (MissingAuthenticationToken, InvalidClientTokenId, SignatureDoesNotMatch, ...).
 */
#ifndef SWITCHBOARD_SQS_H
#define SWITCHBOARD_SQS_H

#include "broker.h"
#include "rpc.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SB_SQS_DEFAULT_REGION "us-east-1"
#define SB_SQS_DEFAULT_ACCOUNT "000000000000"

/* Options of sb_sqs_attach(). Zero-initialise; NULL strings take the defaults. */
typedef struct sb_sqs_config {
  const char *region;      /* region in ARNs; copied; SB_SQS_DEFAULT_REGION when NULL */
  const char *account;     /* account id in URLs and ARNs (1..32 of [0-9A-Za-z]); copied */
  const char *credentials; /* "ACCESS_KEY_ID:SECRET" to verify signatures, NULL for dev
                              mode (anything accepted); copied */
  /* SNS only (sb_sns_attach), borrowed during the call: */
  const char *data_dir;        /* where the SNS signing key is kept (sns-signing.pem, created
                                  on first start); NULL: a new key in memory each start */
  const char *sns_signing_key; /* a PEM file with the RSA key and its certificate, instead */
  const char *sns_webhook_ca;  /* a PEM file of CAs trusted for https webhooks, besides the
                                  system's; NULL: the system's only */
} sb_sqs_config_t;

typedef struct sb_sqs sb_sqs_t;

/* Serves the SQS API on rpc's listener (sb_rpc_add_frontend), on the queues of broker.
 * broker and rpc are borrowed until the server stopped; free the front-end with
 * sb_sqs_free() after that. Call before the server starts. Returns 0 and sets *out,
 * SB_EINVAL (a bad account, region or credentials string), SB_ELIMIT or SB_ENOMEM. */
int sb_sqs_attach(sb_rpc_t *rpc, sb_broker_t *broker, const sb_sqs_config_t *cfg, sb_sqs_t **out);
/* Frees the front-end; the server must have stopped (no request of it is in flight). */
void sb_sqs_free(sb_sqs_t *s);

#ifdef __cplusplus
}
#endif
#endif
