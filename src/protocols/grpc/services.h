/*
 * The gRPC services built into every listener: grpc.health.v1.Health and
 * grpc.reflection.v1(alpha).ServerReflection (services.c).
 */
#ifndef SB_PROTOCOLS_GRPC_SERVICES_H
#define SB_PROTOCOLS_GRPC_SERVICES_H

#include <stddef.h>

#include "rpc/rpc_int.h"

/* The built-in service and method index (in *mi) serving the gRPC path, or NULL. The entry is
 * static data. A registered service of the same name is looked up first (grpc.c), so an
 * application can replace a built-in. */
const sb__svc_t *sb__grpc_builtin(const sb_rpc_t *rpc, const char *path, size_t *mi);

#endif
