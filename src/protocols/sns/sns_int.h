/*
 * Private pieces of the SNS front-end: http(s) webhook delivery (hook.c) and message
 * signatures (sign.c).
 *
 * ## Webhooks are queues plus a pusher
 *
 * An http subscription gets its own queue of the broker, named SNS_HOOK_PREFIX + 16 hex
 * digits, whose kv pairs say where it delivers:
 *
 *   sns:endpoint   the subscriber's URL (http[s]://host[:port]/path)
 *   sns:topic      the topic's name
 *   sns:token      the confirmation token (64 hex digits; the queue's suffix is its head)
 *   sns:sub        the engine subscription's id, once confirmed ("" while pending)
 *
 * Subscribe creates the queue and puts a SubscriptionConfirmation message in it; nothing else
 * flows until ConfirmSubscription (the API action, or a GET of the message's SubscribeURL)
 * presents the token, which subscribes the queue to the topic with the "sns" formatter. The
 * pusher thread takes messages from every hook queue and POSTs each to its endpoint; a 2xx
 * answer deletes it, anything else leaves it to come back after the queue's visibility
 * timeout — so deliveries are durable and retried like any queued message, until the
 * queue's retention drops them. Unsubscribe removes the subscription and the queue.
 */
#ifndef SB_PROTOCOLS_SNS_INT_H
#define SB_PROTOCOLS_SNS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "protocols/aws/aws.h"
#include "switchboard/broker.h"

#define SNS_HOOK_PREFIX AWS_SNS_HOOK_PREFIX /* hook queue names start with this */
#define SNS_HOOK_RETRY_MS 2000u             /* visibility timeout: the retry interval */
#define SNS_HOOK_RETENTION_MS 3600000u      /* undelivered notifications are dropped after */
#define SNS_HOOK_TIMEOUT_MS 5000            /* connect, send and receive timeout of a POST */
#define SNS_HOOK_POLL_MS 100                /* pause of the pusher when nothing was sent */
#define SNS_URL_MAX 512u                    /* bytes of an endpoint URL */

#define SNS_CERT_PATH_MAX 96u   /* bytes of the signing certificate's URL path */
#define SNS_SIGNATURE_MAX 1024u /* bytes of a base64 signature and its NUL */

/* ---- message signatures (sign.c) ----
 *
 * Webhook deliveries are signed as SNS signs them: SignatureVersion 1 (SHA1withRSA) unless
 * the topic's SignatureVersion attribute is "2" (SHA256withRSA), over the canonical string
 * of the message's type (sb__sns_string_to_sign), with a SigningCertURL on this server.
 * Envelopes are stored unsigned, with the placeholder SNS_UNSIGNED, and signed by the pusher
 * just before each POST: signing is an RSA private-key operation, kept off the broker thread.
 * Envelopes delivered to SQS subscriptions are not signed (see README). */
#define SNS_UNSIGNED "\"SignatureVersion\":\"1\",\"Signature\":\"\",\"SigningCertURL\":\"\""

typedef struct sns_signer sns_signer_t;

/* Opens the signing key: key_file (PEM key and certificate) when given, else
 * <data_dir>/sns-signing.pem (generated on first start), else a new key in memory. Returns 0
 * and sets *out, or SB_EINVAL (an unusable file), SB_ENOMEM, SB_ETLS, SB_EIO, -errno. */
int sb__sns_signer_open(const char *key_file, const char *data_dir, sns_signer_t **out);
void sb__sns_signer_free(sns_signer_t *s);
/* The URL path the certificate is served at ("/SimpleNotificationService-<digest>.pem"). */
const char *sb__sns_signer_cert_path(const sns_signer_t *s);
/* The certificate, PEM (len bytes, not NUL-terminated). */
const char *sb__sns_signer_cert(const sns_signer_t *s, size_t *len);

/* The fields of an envelope that are signed; NULL when absent. Borrowed strings. */
typedef struct sns_envelope {
  const char *type;          /* Notification, SubscriptionConfirmation, UnsubscribeConfirmation */
  const char *message;       /* message_len bytes */
  size_t message_len;        /* bytes of message */
  const char *message_id;    /* MessageId */
  const char *subject;       /* Subject (Notification only) */
  const char *subscribe_url; /* SubscribeURL (confirmations) */
  const char *timestamp;     /* Timestamp */
  const char *token;         /* Token (confirmations) */
  const char *topic_arn;     /* TopicArn */
} sns_envelope_t;

/* Appends SNS's canonical string of e to out: "Name\nValue\n" for Message, MessageId,
 * Subject (if any; Notification) or SubscribeURL (confirmations), Timestamp, Token
 * (confirmations), TopicArn, Type. 0 or SB_ENOMEM. */
int sb__sns_string_to_sign(const sns_envelope_t *e, sb_buf_t *out);
/* Signs len bytes with SHA1withRSA (version 1) or SHA256withRSA (version 2) into out as
 * base64 with a NUL (cap bytes). 0, SB_ETLS or SB_ELIMIT. */
int sb__sns_sign(const sns_signer_t *s, int version, const void *data, size_t len, char *out,
                 size_t cap);

typedef struct sns_hooks sns_hooks_t;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

/* Starts the pusher thread on broker b. region/account are for the ARNs of the headers
 * (copied); signer (borrowed until stopped) signs the envelopes; https endpoints must present
 * a certificate for their host that the system trust store or ca_file (PEM, may be NULL)
 * vouches for. Returns 0 and sets *out, SB_ETLS (ca_file unusable), SB_ENOMEM or -errno. */
int sb__sns_hooks_start(sb_broker_t *b, const char *region, const char *account,
                        const sns_signer_t *signer, const char *ca_file, sns_hooks_t **out);
/* Stops and joins the pusher (at most one POST's timeout), frees h. Call before the broker
 * closes. NULL is a no-op. */
void sb__sns_hooks_stop(sns_hooks_t *h);

/* POSTs body to an http:// or https:// URL with extra header lines (each ending in \r\n);
 * https goes over TLS (1.2 or later) through tls, verifying the peer's certificate chain and
 * its host name or address. Returns the HTTP status, or a negative code (SB_EINVAL for a URL
 * it cannot use, -errno, SB_EPROTO, SB_ETLS with *why the reason). Blocking, bounded by
 * SNS_HOOK_TIMEOUT_MS per step; for the pusher thread only. */
int sb__sns_http_post(struct ssl_ctx_st *tls, const char *url, const char *headers,
                      const void *body, size_t len, const char **why);

/* Checks an endpoint URL: http[s]://host[:port][/path], at most SNS_URL_MAX bytes. 0 or
 * SB_EINVAL. */
int sb__sns_check_url(const char *url);

#endif
