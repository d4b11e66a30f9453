/*
 * libswitchboard: one contract served as REST, gRPC, gRPC-Web and tRPC, and one durable
 * broker behind SQS/SNS, Kafka, RESP and AMQP front-ends. This umbrella header pulls in the
 * whole public API.
 */
#ifndef SWITCHBOARD_H
#define SWITCHBOARD_H

#include "broker.h"
#include "error.h"
#include "http.h"
#include "log.h"
#include "server.h"
#include "switchboard/version.h"

#endif
