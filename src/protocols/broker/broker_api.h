/*
 * The broker's own API (proto/switchboard/broker/v1/broker.proto, service
 * switchboard.broker.v1.BrokerService): a front-end that turns each RPC into one broker
 * operation (include/switchboard/broker.h) and its result back into the response. Served by
 * every call protocol the registry offers (REST under /v1/..., gRPC, gRPC-Web, Connect).
 */
#ifndef SB_PROTOCOLS_BROKER_BROKER_API_H
#define SB_PROTOCOLS_BROKER_BROKER_API_H

#include "switchboard/broker.h"
#include "switchboard/rpc.h"

/* Registers BrokerService on rpc, serving broker b. b is borrowed: it must stay open until
 * the server using rpc has stopped (its worker loops keep running until every broker
 * operation they started has completed). Returns 0, SB_EINVAL (already registered) or
 * SB_ENOMEM. */
int sb_broker_api_register(sb_rpc_t *rpc, sb_broker_t *b);

#endif
