/*
 * Private pieces of the SNS front-end: http webhook delivery (hook.c).
 *
 * ## Webhooks are queues plus a pusher
 *
 * An http subscription gets its own queue of the broker, named SNS_HOOK_PREFIX + 16 hex
 * digits, whose kv pairs say where it delivers:
 *
 *   sns:endpoint   the subscriber's URL (http://host[:port]/path)
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

#include "switchboard/broker.h"

#define SNS_HOOK_PREFIX "sns-hook-"    /* hook queue names start with this */
#define SNS_HOOK_RETRY_MS 2000u        /* visibility timeout: the retry interval */
#define SNS_HOOK_RETENTION_MS 3600000u /* undelivered notifications are dropped after */
#define SNS_HOOK_TIMEOUT_MS 5000       /* connect, send and receive timeout of a POST */
#define SNS_HOOK_POLL_MS 100           /* pause of the pusher when nothing was sent */
#define SNS_URL_MAX 512u               /* bytes of an endpoint URL */

typedef struct sns_hooks sns_hooks_t;

/* Starts the pusher thread on broker b. region/account are for the ARNs of the headers
 * (copied). Returns 0 and sets *out, or SB_ENOMEM / -errno. */
int sb__sns_hooks_start(sb_broker_t *b, const char *region, const char *account, sns_hooks_t **out);
/* Stops and joins the pusher (at most one POST's timeout), frees h. Call before the broker
 * closes. NULL is a no-op. */
void sb__sns_hooks_stop(sns_hooks_t *h);

/* POSTs body to an http:// URL with extra header lines (each ending in \r\n). Returns the
 * HTTP status, or a negative code (SB_EINVAL for a URL it cannot use, -errno, SB_EPROTO).
 * Blocking, bounded by SNS_HOOK_TIMEOUT_MS per step; for the pusher thread only. */
int sb__sns_http_post(const char *url, const char *headers, const void *body, size_t len);

/* Checks an endpoint URL: http://host[:port][/path], at most SNS_URL_MAX bytes. 0 or
 * SB_EINVAL. */
int sb__sns_check_url(const char *url);

#endif
