// tests/integration/http_protocol.test.mjs — the OTLP receiver's wire protocol, spoken by
// hand: plain fetch for OTLP/HTTP (status codes, content types, error bodies, compression,
// body limits, partial success) and a raw grpc-js client for OTLP/gRPC (malformed payloads,
// unknown methods). After every kind of bad request the gateway must keep serving.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { TracerProvider, SimpleSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';

import { startGateway } from './lib/gateway.mjs';
import { allSpans, allMetrics, allLogs, spansOfTrace, decodeStatus } from './lib/otlp.mjs';

/** protocols.http.max_request_body_size for this gateway, in bytes. */
const MAX_BODY = 1024;
const TRACES = '/v1/traces';
const PROTO = 'application/x-protobuf';
const JSON_CT = 'application/json';
const GRPC_EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

const hex = (n) => randomBytes(n).toString('hex');

/** An OTLP/JSON trace request holding the given spans. */
function jsonTraces(spans) {
    return {
        resourceSpans: [{
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'it-http' } }] },
            scopeSpans: [{ scope: { name: 'raw-json' }, spans }],
        }],
    };
}

function jsonSpan(name, over = {}) {
    return {
        traceId: hex(16), spanId: hex(8), name, kind: 1,
        startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000000001', ...over,
    };
}

/** A protobuf ExportTraceServiceRequest with one span made by the SDK: {buf, traceId}. */
async function protoTraces(name) {
    const mem = new InMemorySpanExporter();
    const tp = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'it-http' }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: mem })],
    });
    const span = tp.getTracer('raw-proto').startSpan(name);
    span.end();
    await tp.forceFlush();
    const buf = Buffer.from(ProtobufTraceSerializer.serializeRequest(mem.getFinishedSpans()));
    await tp.shutdown();
    return { buf, traceId: span.spanContext().traceId };
}

async function post(gw, path, body, headers = {}) {
    const r = await fetch(gw.httpUrl + path, {
        method: 'POST', body, headers, signal: AbortSignal.timeout(10000),
    });
    return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

function contentType(r) {
    return (r.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
}

function describe(r) {
    return `HTTP ${r.status} ${r.headers.get('content-type')}: ${r.body.toString('utf8').slice(0, 300)}`;
}

/** Asserts a 400 with a google.rpc.Status body in JSON, code INVALID_ARGUMENT (3). */
function assertJsonStatus400(r, what) {
    assert.equal(r.status, 400, `${what}: ${describe(r)}`);
    assert.equal(contentType(r), JSON_CT, `${what}: error body content type`);
    const st = JSON.parse(r.body.toString('utf8'));
    assert.equal(st.code, 3, `${what}: Status.code must be 3 (INVALID_ARGUMENT): ${describe(r)}`);
    assert.equal(typeof st.message, 'string');
    assert.ok(st.message.length > 0, `${what}: Status.message must say what is wrong`);
    return st;
}

function zstdCompress(buf) {
    const r = spawnSync('zstd', ['-q', '-c'], { input: buf });
    if (r.error || r.status !== 0) return null;
    return r.stdout;
}

function grpcCall(client, method, payload) {
    return new Promise((resolve) => {
        client.makeUnaryRequest(method, (b) => b, (b) => b, payload, new grpc.Metadata(),
            { deadline: Date.now() + 10000 }, (err, resp) => resolve({ err, resp }));
    });
}

test('OTLP/HTTP and OTLP/gRPC protocol behaviour against the real binary', async (t) => {
    const gw = await startGateway(t, { http: { max_request_body_size: MAX_BODY } });
    const waitSpan = async (traceId, what) => {
        const [e] = await gw.waitForSink(spansOfTrace(traceId, 1), { what });
        return e;
    };

    await t.test('protobuf POST -> 200, protobuf response, span forwarded', async () => {
        const { buf, traceId } = await protoTraces('proto-ok');
        assert.ok(buf.length < MAX_BODY, 'test payload must fit the configured limit');
        const r = await post(gw, TRACES, buf, { 'content-type': PROTO });
        assert.equal(r.status, 200, describe(r));
        assert.equal(contentType(r), PROTO, 'response content type follows the request');
        const resp = ProtobufTraceSerializer.deserializeResponse(new Uint8Array(r.body));
        assert.ok(!Number(resp.partialSuccess?.rejectedSpans ?? 0), `no rejected spans: ${JSON.stringify(resp)}`);
        const e = await waitSpan(traceId, 'proto-ok span');
        assert.equal(e.span.name, 'proto-ok');
    });

    await t.test('JSON POST -> 200, JSON response, span forwarded (ints as numbers, enum names)', async () => {
        const span = jsonSpan('json-ok', {
            kind: 'SPAN_KIND_SERVER',
            startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000500000000',
            attributes: [
                { key: 'n', value: { intValue: 5 } },
                { key: 's', value: { intValue: '-6' } },
            ],
            status: { code: 'STATUS_CODE_ERROR', message: 'x' },
        });
        const r = await post(gw, TRACES, JSON.stringify(jsonTraces([span])), { 'content-type': JSON_CT });
        assert.equal(r.status, 200, describe(r));
        assert.equal(contentType(r), JSON_CT);
        const body = JSON.parse(r.body.toString('utf8') || '{}');
        assert.ok(!Number(body.partialSuccess?.rejectedSpans ?? 0), `no rejected spans: ${r.body}`);
        const e = await waitSpan(span.traceId, 'json-ok span');
        assert.equal(e.span.spanId, span.spanId);
        assert.equal(e.span.kind, 2, 'kind given as an enum name comes out as the integer');
        assert.equal(e.span.status?.code, 2, 'status code given as an enum name');
        assert.deepEqual(e.span.attributes, [
            { key: 'n', value: { intValue: '5' } },
            { key: 's', value: { intValue: '-6' } },
        ]);
        assert.equal(e.span.endTimeUnixNano, '1700000000500000000');
    });

    await t.test('JSON with a charset parameter -> 200', async () => {
        const span = jsonSpan('json-charset');
        const r = await post(gw, TRACES, JSON.stringify(jsonTraces([span])),
            { 'content-type': 'application/json; charset=utf-8' });
        assert.equal(r.status, 200, describe(r));
        await waitSpan(span.traceId, 'json-charset span');
    });

    await t.test('empty protobuf body and empty JSON object -> 200', async () => {
        const r1 = await post(gw, TRACES, Buffer.alloc(0), { 'content-type': PROTO });
        assert.equal(r1.status, 200, `empty protobuf: ${describe(r1)}`);
        assert.equal(contentType(r1), PROTO);
        const r2 = await post(gw, TRACES, '{}', { 'content-type': JSON_CT });
        assert.equal(r2.status, 200, `{}: ${describe(r2)}`);
        assert.equal(contentType(r2), JSON_CT);
    });

    await t.test('GET -> 405 with Allow: POST', async () => {
        const r = await fetch(gw.httpUrl + TRACES, { signal: AbortSignal.timeout(10000) });
        await r.arrayBuffer();
        assert.equal(r.status, 405);
        assert.match(r.headers.get('allow') ?? '', /\bPOST\b/, 'Allow header');
    });

    await t.test('text/plain -> 415', async () => {
        const r = await post(gw, TRACES, 'hello', { 'content-type': 'text/plain' });
        assert.equal(r.status, 415, describe(r));
    });

    await t.test('malformed JSON -> 400 with a JSON google.rpc.Status', async () => {
        const r = await post(gw, TRACES, '{"resourceSpans": [', { 'content-type': JSON_CT });
        assertJsonStatus400(r, 'malformed JSON');
    });

    await t.test('JSON with a non-hex traceId -> 400 naming the field', async () => {
        const span = jsonSpan('bad-id', { traceId: 'zz' + hex(15) });
        const r = await post(gw, TRACES, JSON.stringify(jsonTraces([span])), { 'content-type': JSON_CT });
        const st = assertJsonStatus400(r, 'non-hex traceId');
        assert.match(st.message, /traceId/, 'the message names the field');
    });

    await t.test('malformed protobuf -> 400 with a protobuf google.rpc.Status', async () => {
        // Field 1 (resource_spans), length-delimited, claims 255 bytes; none follow.
        const r = await post(gw, TRACES, Buffer.from('0aff01', 'hex'), { 'content-type': PROTO });
        assert.equal(r.status, 400, describe(r));
        assert.equal(contentType(r), PROTO, 'error body in the request encoding');
        const st = decodeStatus(r.body);
        assert.equal(st.code, 3, `Status.code must be 3 (INVALID_ARGUMENT): ${JSON.stringify(st)}`);
        assert.ok(st.message.length > 0, 'Status.message must say what is wrong');
    });

    await t.test('gzip, deflate and zstd request bodies -> 200, spans forwarded', async (t2) => {
        const encodings = [
            ['gzip', zlib.gzipSync],
            ['deflate', zlib.deflateSync],
            ['zstd', zstdCompress],
        ];
        for (const [enc, fn] of encodings) {
            const { buf, traceId } = await protoTraces(`compressed-${enc}`);
            const body = fn(buf);
            if (!body) {
                t2.diagnostic(`zstd CLI not available: zstd body not tested`);
                continue;
            }
            const r = await post(gw, TRACES, body, { 'content-type': PROTO, 'content-encoding': enc });
            assert.equal(r.status, 200, `${enc}: ${describe(r)}`);
            const e = await waitSpan(traceId, `${enc} span`);
            assert.equal(e.span.name, `compressed-${enc}`);
        }
        // JSON may be compressed too.
        const span = jsonSpan('compressed-json-gzip');
        const r = await post(gw, TRACES, zlib.gzipSync(JSON.stringify(jsonTraces([span]))),
            { 'content-type': JSON_CT, 'content-encoding': 'gzip' });
        assert.equal(r.status, 200, `gzip JSON: ${describe(r)}`);
        await waitSpan(span.traceId, 'gzip JSON span');
    });

    await t.test('unknown Content-Encoding -> 400', async () => {
        const { buf } = await protoTraces('unknown-encoding');
        const r = await post(gw, TRACES, buf, { 'content-type': PROTO, 'content-encoding': 'x-unknown' });
        assert.equal(r.status, 400, describe(r));
    });

    await t.test('corrupt gzip body -> 400', async () => {
        const r = await post(gw, TRACES, Buffer.from('1f8b0800000000000003ffffffff', 'hex'),
            { 'content-type': PROTO, 'content-encoding': 'gzip' });
        assert.equal(r.status, 400, describe(r));
    });

    await t.test(`body over max_request_body_size (${MAX_BODY} B) -> 413`, async () => {
        const big = jsonSpan('too-big', { attributes: [{ key: 'pad', value: { stringValue: 'x'.repeat(MAX_BODY) } }] });
        const r = await post(gw, TRACES, JSON.stringify(jsonTraces([big])), { 'content-type': JSON_CT });
        assert.equal(r.status, 413, describe(r));
        assert.ok(!allSpans(gw.readSink()).some((e) => e.span.traceId === big.traceId), 'not forwarded');
    });

    await t.test('compressed body that inflates past the limit -> refused (413 or 400)', async () => {
        const big = jsonSpan('inflates-too-big', { attributes: [{ key: 'pad', value: { stringValue: 'y'.repeat(64 * 1024) } }] });
        const body = zlib.gzipSync(JSON.stringify(jsonTraces([big])));
        assert.ok(body.length < MAX_BODY, 'compressed payload itself fits the limit');
        const r = await post(gw, TRACES, body, { 'content-type': JSON_CT, 'content-encoding': 'gzip' });
        assert.ok([400, 413].includes(r.status), `limit applies after decompression: ${describe(r)}`);
    });

    await t.test('all-zero traceId -> 200 with partialSuccess.rejectedSpans 1; the valid span forwarded', async () => {
        const bad = jsonSpan('zero-trace-id', { traceId: '0'.repeat(32) });
        const good = jsonSpan('next-to-zero-trace-id');
        const r = await post(gw, TRACES, JSON.stringify(jsonTraces([bad, good])), { 'content-type': JSON_CT });
        assert.equal(r.status, 200, describe(r));
        const body = JSON.parse(r.body.toString('utf8'));
        assert.ok(body.partialSuccess, `partialSuccess expected: ${r.body}`);
        assert.ok(['1', 1].includes(body.partialSuccess.rejectedSpans),
            `rejectedSpans must be 1: ${JSON.stringify(body.partialSuccess)}`);
        assert.ok((body.partialSuccess.errorMessage ?? '').length > 0, 'errorMessage says why');
        const e = await waitSpan(good.traceId, 'the valid span');
        assert.equal(e.span.name, 'next-to-zero-trace-id');
        assert.ok(!allSpans(gw.readSink()).some((x) => x.span.name === 'zero-trace-id'),
            'the span with the zero traceId must not be forwarded');
    });

    await t.test('unknown path -> 404', async () => {
        const r = await post(gw, '/v1/nosuch', '{}', { 'content-type': JSON_CT });
        assert.equal(r.status, 404, describe(r));
    });

    await t.test('metrics and logs over JSON -> 200 and forwarded', async () => {
        const metric = {
            resourceMetrics: [{
                resource: { attributes: [{ key: 'service.name', value: { stringValue: 'it-http' } }] },
                scopeMetrics: [{ scope: { name: 'raw-json' }, metrics: [{
                    name: 'raw.gauge', unit: '1',
                    gauge: { dataPoints: [{ asInt: '17', timeUnixNano: '1700000000000000000' }] },
                }] }],
            }],
        };
        const r1 = await post(gw, '/v1/metrics', JSON.stringify(metric), { 'content-type': JSON_CT });
        assert.equal(r1.status, 200, `metrics: ${describe(r1)}`);
        const log = {
            resourceLogs: [{
                resource: { attributes: [{ key: 'service.name', value: { stringValue: 'it-http' } }] },
                scopeLogs: [{ scope: { name: 'raw-json' }, logRecords: [{
                    timeUnixNano: '1700000000000000042', severityNumber: 'SEVERITY_NUMBER_INFO',
                    body: { stringValue: 'raw log line' },
                }] }],
            }],
        };
        const r2 = await post(gw, '/v1/logs', JSON.stringify(log), { 'content-type': JSON_CT });
        assert.equal(r2.status, 200, `logs: ${describe(r2)}`);
        const m = await gw.waitForSink((recs) => allMetrics(recs).find((e) => e.metric.name === 'raw.gauge'),
            { what: 'raw.gauge' });
        assert.equal(m.metric.gauge.dataPoints[0].asInt, '17');
        const l = await gw.waitForSink((recs) => allLogs(recs).find((e) => e.log.body?.stringValue === 'raw log line'),
            { what: 'raw log line' });
        assert.equal(l.log.severityNumber, 9);
        assert.equal(l.log.timeUnixNano, '1700000000000000042');
    });

    await t.test('after all the bad requests a good request still succeeds', async () => {
        const { buf, traceId } = await protoTraces('still-alive-http');
        const r = await post(gw, TRACES, buf, { 'content-type': PROTO });
        assert.equal(r.status, 200, describe(r));
        await waitSpan(traceId, 'still-alive-http span');
    });

    await t.test('gRPC: malformed payload -> INVALID_ARGUMENT; unknown method -> UNIMPLEMENTED; still serving', async () => {
        const client = new grpc.Client(gw.grpcTarget, grpc.credentials.createInsecure());
        try {
            const bad = await grpcCall(client, GRPC_EXPORT, Buffer.from('0aff01', 'hex'));
            assert.ok(bad.err, 'malformed protobuf must fail');
            assert.equal(bad.err.code, grpc.status.INVALID_ARGUMENT,
                `status ${bad.err.code} (${bad.err.details})`);

            const unknown = await grpcCall(client, '/opentelemetry.proto.collector.trace.v1.TraceService/Nope',
                Buffer.alloc(0));
            assert.ok(unknown.err, 'unknown method must fail');
            assert.equal(unknown.err.code, grpc.status.UNIMPLEMENTED, `status ${unknown.err.code} (${unknown.err.details})`);

            const { buf, traceId } = await protoTraces('still-alive-grpc');
            const good = await grpcCall(client, GRPC_EXPORT, buf);
            assert.ifError(good.err);
            const resp = ProtobufTraceSerializer.deserializeResponse(new Uint8Array(good.resp));
            assert.ok(!Number(resp.partialSuccess?.rejectedSpans ?? 0), JSON.stringify(resp));
            await waitSpan(traceId, 'still-alive-grpc span');

            const empty = await grpcCall(client, GRPC_EXPORT, Buffer.alloc(0));
            assert.ifError(empty.err);
        } finally {
            client.close();
        }
    });

    await t.test('SIGTERM: graceful exit 0', async () => {
        const r = await gw.stop();
        assert.deepEqual(r, { code: 0, signal: null }, gw.describe());
    });
});
