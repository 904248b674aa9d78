// tests/integration/lib/fake_backend.mjs — a scriptable OTLP trace backend for fault tests:
// OTLP/gRPC (@grpc/grpc-js, raw Buffer (de)serialisers) or OTLP/HTTP (node:http), on
// 127.0.0.1 only. It decodes every request with protobufjs from the repo's proto/ files and
// records the span IDs of requests it answered OK, so a test can compare exactly what the
// gateway delivered with what the gateway acknowledged to the sender.
//
// Owns: its server (stop() / start() on the same port simulate an outage), the policy
// deciding each answer, and the received-span ledger. Also: sendSpans(), which posts
// OTLP/JSON to the gateway's HTTP receiver and returns the span IDs it acknowledged.

import http from 'node:http';
import zlib from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { decodeTraceRequest } from './proto.mjs';
import { LOOPBACK } from './gateway.mjs';

export const TRACE_EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

const raw = (b) => b;
const TRACE_SERVICE = {
    Export: {
        path: TRACE_EXPORT,
        requestStream: false,
        responseStream: false,
        requestSerialize: raw,
        requestDeserialize: raw,
        responseSerialize: raw,
        responseDeserialize: raw,
    },
};

/**
 * grpc-status-details-bin for a google.rpc.Status carrying a google.rpc.RetryInfo detail
 * (retry_delay = delaySeconds), written with protobufjs' Writer (the well-known types are
 * not in the repo's proto/ files).
 */
export function retryInfoStatusDetails(code, message, delaySeconds) {
    const duration = protobuf.Writer.create().uint32(8).int64(delaySeconds).finish(); // seconds
    const retryInfo = protobuf.Writer.create().uint32(10).bytes(duration).finish(); // retry_delay
    const any = protobuf.Writer.create()
        .uint32(10).string('type.googleapis.com/google.rpc.RetryInfo') // type_url
        .uint32(18).bytes(retryInfo) // value
        .finish();
    return Buffer.from(protobuf.Writer.create()
        .uint32(8).int32(code) // code
        .uint32(18).string(message) // message
        .uint32(26).bytes(any) // details
        .finish());
}

function spanIdsOf(req) {
    const ids = [];
    for (const rs of req.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) ids.push(Buffer.from(s.spanId ?? []).toString('hex'));
        }
    }
    return ids;
}

export class FakeBackend {
    /**
     * kind: 'grpc' | 'http'. policy(n, ids) decides the answer to the n-th request (0-based)
     * holding span IDs `ids`: return undefined/null for OK, or
     *   gRPC: {code, details, metadata: {key: string|Buffer}}
     *   HTTP: {status, headers: {...}, body}
     * and optionally {delayMs} to answer late (also with OK: {delayMs}).
     */
    constructor(kind, policy = () => null) {
        this.kind = kind;
        this.policy = policy;
        this.port = 0;
        this.requests = 0;
        this.okRequests = 0;
        this.received = new Map(); // span ID -> times received in OK-answered requests
        this.totalOkSpans = 0;
        this.server = null;
        this.sockets = new Set();
        this.running = false;
    }

    get endpoint() {
        return this.kind === 'grpc' ? `http://${LOOPBACK}:${this.port}` : `http://${LOOPBACK}:${this.port}`;
    }

    /** Span IDs received at least once. */
    uniqueIds() {
        return new Set(this.received.keys());
    }

    /** Deliveries beyond the first, summed over span IDs. */
    duplicates() {
        let d = 0;
        for (const n of this.received.values()) d += n - 1;
        return d;
    }

    async answer(ids) {
        const n = this.requests++;
        const decision = this.policy(n, ids) ?? null;
        if (decision?.delayMs) await sleep(decision.delayMs);
        const ok = decision === null || (decision.code === undefined && decision.status === undefined);
        if (ok) {
            this.okRequests++;
            for (const id of ids) {
                this.received.set(id, (this.received.get(id) ?? 0) + 1);
                this.totalOkSpans++;
            }
        }
        return { ok, decision };
    }

    async start() {
        if (this.running) return;
        if (this.kind === 'grpc') await this.startGrpc();
        else await this.startHttp();
        this.running = true;
    }

    async startGrpc() {
        const server = new grpc.Server();
        server.addService(TRACE_SERVICE, {
            Export: (call, callback) => {
                let ids;
                try {
                    ids = spanIdsOf(decodeTraceRequest(call.request));
                } catch (e) {
                    callback({ code: grpc.status.INVALID_ARGUMENT, details: `bad request: ${e.message}` });
                    return;
                }
                this.answer(ids).then(({ ok, decision }) => {
                    if (ok) {
                        callback(null, Buffer.alloc(0));
                        return;
                    }
                    const md = new grpc.Metadata();
                    for (const [k, v] of Object.entries(decision.metadata ?? {})) md.set(k, v);
                    callback({ code: decision.code, details: decision.details ?? 'scripted', metadata: md });
                });
            },
        });
        const port = await new Promise((ok, fail) => {
            server.bindAsync(`${LOOPBACK}:${this.port}`, grpc.ServerCredentials.createInsecure(),
                (err, p) => (err ? fail(err) : ok(p)));
        });
        this.port = port;
        this.server = server;
    }

    async startHttp() {
        const server = http.createServer((req, res) => {
            const chunks = [];
            req.on('data', (c) => chunks.push(c));
            req.on('end', async () => {
                let body = Buffer.concat(chunks);
                let ids;
                try {
                    const enc = req.headers['content-encoding'];
                    if (enc === 'gzip') body = zlib.gunzipSync(body);
                    else if (enc && enc !== 'identity') throw new Error(`unexpected encoding ${enc}`);
                    if (req.url !== '/v1/traces') throw new Error(`unexpected path ${req.url}`);
                    ids = spanIdsOf(decodeTraceRequest(body));
                } catch (e) {
                    res.writeHead(400, { 'Content-Type': 'text/plain' });
                    res.end(e.message);
                    return;
                }
                const { ok, decision } = await this.answer(ids);
                if (ok) {
                    res.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
                    res.end();
                } else {
                    res.writeHead(decision.status, { 'Content-Type': 'text/plain', ...(decision.headers ?? {}) });
                    res.end(decision.body ?? 'scripted');
                }
            });
        });
        server.on('connection', (s) => {
            this.sockets.add(s);
            s.on('close', () => this.sockets.delete(s));
        });
        await new Promise((ok, fail) => {
            server.once('error', fail);
            server.listen(this.port, LOOPBACK, ok);
        });
        this.port = server.address().port;
        this.server = server;
    }

    /** Stops listening and cuts every connection (an outage, not a graceful stop). */
    async stop() {
        if (!this.running) return;
        this.running = false;
        const server = this.server;
        this.server = null;
        if (this.kind === 'grpc') {
            server.forceShutdown();
        } else {
            for (const s of this.sockets) s.destroy();
            await new Promise((ok) => server.close(ok));
        }
    }
}

// ---- the sender side -------------------------------------------------------------------

let seq = 0;
const runTag = (process.pid & 0xffff).toString(16).padStart(4, '0');

/** n fresh, unique span IDs (16 hex digits). */
export function newSpanIds(n) {
    const out = [];
    for (let i = 0; i < n; i++) out.push(`${runTag}${(++seq).toString(16).padStart(12, '0')}`);
    return out;
}

function traceRequestJson(ids) {
    const now = BigInt(Date.now()) * 1000000n;
    return JSON.stringify({
        resourceSpans: [{
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'fault-test' } }] },
            scopeSpans: [{
                scope: { name: 'faults' },
                spans: ids.map((id) => ({
                    traceId: `${id}${id}`,
                    spanId: id,
                    name: `span-${id}`,
                    kind: 1,
                    startTimeUnixNano: String(now),
                    endTimeUnixNano: String(now + 1000n),
                })),
            }],
        }],
    });
}

/**
 * Posts `requests` OTLP/JSON requests of `perRequest` spans each to the gateway's HTTP
 * receiver, one after the other. Returns {acked: [span IDs answered 200], refused: n,
 * errors: n}. Stops early when stop() returns true.
 */
export async function sendSpans(httpUrl, { requests, perRequest, stop = () => false, onAck = () => {} }) {
    const acked = [];
    let refused = 0;
    let errors = 0;
    for (let i = 0; i < requests && !stop(); i++) {
        const ids = newSpanIds(perRequest);
        try {
            const r = await fetch(`${httpUrl}/v1/traces`, {
                method: 'POST',
                headers: { 'Content-Type': 'application/json' },
                body: traceRequestJson(ids),
                signal: AbortSignal.timeout(10000),
            });
            await r.arrayBuffer();
            if (r.status === 200) {
                acked.push(...ids);
                onAck(acked.length);
            } else {
                refused++;
            }
        } catch {
            errors++; // connection cut (the gateway was killed): not acknowledged
        }
    }
    return { acked, refused, errors };
}
