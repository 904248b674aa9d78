// tests/integration/lib/proto.mjs — decodes OTLP protobuf with protobufjs, from the repo's own
// proto/ files (the same definitions the gateway is generated from). Used to read the file
// exporter's `format: proto` sink.

import { join } from 'node:path';
import protobuf from 'protobufjs';
import { REPO_ROOT } from './gateway.mjs';

const PROTO_DIR = join(REPO_ROOT, 'proto');
let root = null;

function load() {
    if (root) return root;
    root = new protobuf.Root();
    root.resolvePath = (_origin, target) => join(PROTO_DIR, target);
    for (const sig of ['trace', 'metrics', 'logs']) {
        root.loadSync(`opentelemetry/proto/collector/${sig}/v1/${sig}_service.proto`, { keepCase: false });
    }
    return root;
}

/** Decodes an ExportTraceServiceRequest into a plain object (int64 as strings, bytes as Buffer). */
export function decodeTraceRequest(buf) {
    const T = load().lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
    return T.toObject(T.decode(buf), { longs: String, bytes: Buffer, enums: Number, defaults: false });
}
