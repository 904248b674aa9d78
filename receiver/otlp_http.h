/* receiver/otlp_http.h — what the OTLP/HTTP transport offers beyond otlp_internal.h
 * (start/shutdown/destroy are declared there). */
#ifndef LG_RECEIVER_OTLP_HTTP_H
#define LG_RECEIVER_OTLP_HTTP_H

#include "otlp_internal.h"

/** The TCP port the HTTP transport is bound to (useful with endpoint port 0), or -1 when
 *  the transport is not running. */
int otlp_http_bound_port(const struct otlp_receiver *r);

#endif
