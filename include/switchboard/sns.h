/*
 * The SNS API on the broker's topic engine: boto3 and AWS SDK code that publishes to topics
 * and subscribes SQS queues runs against switchboard with only its endpoint changed.
 *
 * Served on the HTTP listener in the Query protocol (form POST, XML answers, the protocol
 * every SNS SDK speaks), next to the SQS API. Requests are told apart from SQS ones by their
 * SigV4 credential scope (".../sns/aws4_request"); SDKs always sign, with dummy credentials
 * too. Topic ARNs are arn:aws:sns:<region>:<account>:<name>, subscription ARNs
 * <topic ARN>:<subscription id>. Subscriptions deliver into SQS queues of the same broker,
 * in SNS's JSON envelope unless RawMessageDelivery is set; FilterPolicy (attributes or body
 * scope) and a subscription RedrivePolicy map onto the engine's own. http webhooks get
 * SNS's confirmation handshake (a SubscriptionConfirmation POST with a SubscribeURL and a
 * Token; ConfirmSubscription or a GET of that URL activates them) and durable, retried
 * deliveries through a queue per webhook, each envelope signed as SNS signs them (the key
 * and certificate: cfg->sns_signing_key, or <cfg->data_dir>/sns-signing.pem, created on first
 * start; the certificate is served at every envelope's SigningCertURL). https endpoints must
 * present a certificate for their host from the system's trust store or cfg->sns_webhook_ca.
 */
#ifndef SWITCHBOARD_SNS_H
#define SWITCHBOARD_SNS_H

#include "broker.h"
#include "rpc.h"
#include "sqs.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sb_sns sb_sns_t;

/* Serves the SNS API on rpc's listener for the topics of broker; cfg as for sb_sqs_attach()
 * (region, account and optional SigV4 credentials; copied). Attach it before the SQS API so
 * SNS-signed requests reach it first. Registers the broker formatter "sns" (the envelope).
 * broker and rpc are borrowed until the server stopped; free with sb_sns_free() after that.
 * Starts the webhook pusher thread. Returns 0 and sets *out, SB_EINVAL, SB_ELIMIT, SB_ENOMEM
 * or -errno. */
int sb_sns_attach(sb_rpc_t *rpc, sb_broker_t *broker, const sb_sqs_config_t *cfg, sb_sns_t **out);
/* Stops webhook delivery (joins its thread, at most one POST timeout). Call after the server
 * stopped and before sb_broker_close(). */
void sb_sns_stop(sb_sns_t *s);
/* Frees the front-end (stopping delivery if still running); the broker must be closed first
 * (its "sns" formatter borrows the front-end). */
void sb_sns_free(sb_sns_t *s);

#ifdef __cplusplus
}
#endif
#endif
