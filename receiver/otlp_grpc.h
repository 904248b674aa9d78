/* receiver/otlp_grpc.h — extra entry points of the OTLP receiver's gRPC transport
 * (otlp_grpc.c) beyond those declared in otlp_internal.h. */
#ifndef LG_RECEIVER_OTLP_GRPC_H
#define LG_RECEIVER_OTLP_GRPC_H

struct otlp_receiver;

/** The port the gRPC transport listens on (the real one when configured with port 0);
 *  0 when it is not running. */
int otlp_grpc_bound_port(const struct otlp_receiver *r);

#endif
