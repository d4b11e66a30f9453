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
 * scope) and a subscription RedrivePolicy map onto the engine's own. http/https webhooks are
 * not implemented (Subscribe answers InvalidParameter).
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
 * Returns 0 and sets *out, SB_EINVAL, SB_ELIMIT or SB_ENOMEM. */
int sb_sns_attach(sb_rpc_t *rpc, sb_broker_t *broker, const sb_sqs_config_t *cfg, sb_sns_t **out);
/* Frees the front-end; the server must have stopped and the broker must be closed first or
 * never publish again (the formatter borrows it). */
void sb_sns_free(sb_sns_t *s);

#ifdef __cplusplus
}
#endif
#endif
