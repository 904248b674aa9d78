// tests/integration/traces.test.mjs — spans from the real OTel JS SDK, through the real
// gateway (otlp receiver -> batch -> file sink), over OTLP/gRPC, OTLP/HTTP protobuf and
// OTLP/HTTP JSON (plain and gzip). Every field the SDK can set must arrive intact in the sink: IDs, names,
// kinds, exact nanosecond timestamps, attributes of every type, events, links, status,
// trace state, flags, resource and scope. Also LLM-style spans, self-metrics and a
// graceful stop.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
    trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, createTraceState,
} from '@opentelemetry/api';
import { TracerProvider, BatchSpanProcessor, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';

import { readFileSync, existsSync } from 'node:fs';
import { startGateway, promValue } from './lib/gateway.mjs';
import { decodeTraceRequest } from './lib/proto.mjs';
import {
    allSpans, spansOfTrace, hrToNanos, assertAttributes, recording,
    assertExportsSucceeded, int64, protoFrames,
} from './lib/otlp.mjs';

const EXPORTERS = [
    { name: 'otlp-grpc', transport: 'grpc', make: (gw) => new GrpcExporter({ url: gw.grpcUrl }) },
    { name: 'otlp-http-protobuf', transport: 'http',
        make: (gw) => new ProtoExporter({ url: `${gw.httpUrl}/v1/traces` }) },
    { name: 'otlp-http-json', transport: 'http',
        make: (gw) => new JsonExporter({ url: `${gw.httpUrl}/v1/traces` }) },
    // Compressed requests: gzip gRPC messages and a gzip Content-Encoding.
    { name: 'otlp-grpc-gzip', transport: 'grpc',
        make: (gw) => new GrpcExporter({ url: gw.grpcUrl, compression: 'gzip' }) },
    { name: 'otlp-http-json-gzip', transport: 'http',
        make: (gw) => new JsonExporter({ url: `${gw.httpUrl}/v1/traces`, compression: 'gzip' }) },
];

// OTLP's Span.SpanKind is the JS API's SpanKind + 1 (OTLP 0 is UNSPECIFIED).
const OTLP_KIND = {
    [SpanKind.INTERNAL]: 1, [SpanKind.SERVER]: 2, [SpanKind.CLIENT]: 3,
    [SpanKind.PRODUCER]: 4, [SpanKind.CONSUMER]: 5,
};
const OTLP_STATUS = { [SpanStatusCode.UNSET]: 0, [SpanStatusCode.OK]: 1, [SpanStatusCode.ERROR]: 2 };
// W3C flags in the low byte; bit 8: "is_remote known", bit 9: "parent is remote".
const FLAGS_LOCAL_PARENT = 0x100 | TraceFlags.SAMPLED;
const FLAGS_REMOTE_PARENT = 0x300 | TraceFlags.SAMPLED;

// Strings that stress JSON escaping and UTF-8 handling.
const TRICKY = 'quote " backslash \\ slash / nl \n tab \t cr \r ctl \u0001 é ✓ 汉字 🚀';

/** Every attribute type the JS API allows on a span. */
const ALL_TYPES = {
    'str': 'value',
    'str.empty': '',
    'str.tricky': TRICKY,
    'int': 42,
    'int.zero': 0,
    'int.neg': -7,
    'int.max_safe': Number.MAX_SAFE_INTEGER,
    'double': 3.25,
    'double.neg': -0.1,
    'double.tiny': 1.5e-300,
    'double.precise': 4350000000000000.5,
    'bool.true': true,
    'bool.false': false,
    'arr.str': ['a', '', TRICKY],
    'arr.int': [1, -2, 3000000000],
    'arr.double': [1.5, -2.25, 0.1],
    'arr.bool': [true, false, true],
};

function resourceFor(tag) {
    return {
        'service.name': `it-traces-${tag}`,
        'service.version': '1.4.2',
        'deployment.environment.name': 'test',
        'custom.int': 12345,
        'custom.double': 0.5,
        'custom.bool': true,
        'custom.list': ['x', 'y'],
    };
}

const SCOPE = { name: 'llmgate.it.traces', version: '2.3.4', schemaUrl: 'https://opentelemetry.io/schemas/1.26.0' };

/**
 * Emits the scenario and returns the expected spans, keyed by name. A trace with a SERVER
 * root and CLIENT/INTERNAL/PRODUCER children, plus a CONSUMER in a second trace under a
 * remote parent with trace state, linked back to the producer.
 */
function emitScenario(tracer) {
    const exp = {};
    const T = (s, ns) => [1700000000 + s, ns];

    const root = tracer.startSpan('GET /api/chat', {
        kind: SpanKind.SERVER, startTime: T(0, 123456789), attributes: ALL_TYPES,
    });
    const rootCtx = trace.setSpan(ROOT_CONTEXT, root);
    root.setStatus({ code: SpanStatusCode.OK });

    const client = tracer.startSpan('SELECT users', {
        kind: SpanKind.CLIENT, startTime: T(1, 1), attributes: { 'db.system.name': 'postgresql' },
    }, rootCtx);
    client.addEvent('cache.miss', { 'cache.key': 'user:42', attempt: 2, ratio: 0.75, hit: false },
        T(1, 100000007));
    client.addEvent('retry', T(1, 200000000));
    client.setStatus({ code: SpanStatusCode.ERROR, message: 'connection reset by peer: "db-1"' });
    client.end(T(1, 500000000));

    const internal = tracer.startSpan('render', { kind: SpanKind.INTERNAL, startTime: T(1, 600000000) },
        rootCtx);
    internal.end(T(1, 600000001));

    const producer = tracer.startSpan('jobs publish', {
        kind: SpanKind.PRODUCER, startTime: T(1, 700000000),
        links: [{ context: client.spanContext(), attributes: { 'link.reason': 'caused-by', 'link.n': 7 } }],
    }, rootCtx);
    producer.end(T(1, 800000000));
    root.end(T(2, 999999999));

    // A second trace, continued from a remote parent that carries W3C trace state.
    const remote = {
        traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'),
        traceFlags: TraceFlags.SAMPLED, isRemote: true, traceState: createTraceState('vendor=abc,other=1'),
    };
    const consumer = tracer.startSpan('jobs process', {
        kind: SpanKind.CONSUMER, startTime: T(3, 0),
        links: [{ context: producer.spanContext(), attributes: { 'messaging.operation.type': 'receive' } }],
    }, trace.setSpanContext(ROOT_CONTEXT, remote));
    consumer.setAttribute('messaging.system', 'kafka');
    consumer.end(T(3, 1));

    const rc = root.spanContext();
    const base = (span) => ({ traceId: span.spanContext().traceId, spanId: span.spanContext().spanId });
    exp['GET /api/chat'] = {
        ...base(root), parentSpanId: undefined, kind: SpanKind.SERVER,
        start: T(0, 123456789), end: T(2, 999999999), attributes: ALL_TYPES,
        events: [], links: [], status: { code: SpanStatusCode.OK }, flags: FLAGS_LOCAL_PARENT,
    };
    exp['SELECT users'] = {
        ...base(client), parentSpanId: rc.spanId, kind: SpanKind.CLIENT,
        start: T(1, 1), end: T(1, 500000000), attributes: { 'db.system.name': 'postgresql' },
        events: [
            { name: 'cache.miss', time: T(1, 100000007),
                attributes: { 'cache.key': 'user:42', attempt: 2, ratio: 0.75, hit: false } },
            { name: 'retry', time: T(1, 200000000), attributes: {} },
        ],
        links: [],
        status: { code: SpanStatusCode.ERROR, message: 'connection reset by peer: "db-1"' },
        flags: FLAGS_LOCAL_PARENT,
    };
    exp.render = {
        ...base(internal), parentSpanId: rc.spanId, kind: SpanKind.INTERNAL,
        start: T(1, 600000000), end: T(1, 600000001), attributes: {}, events: [], links: [],
        status: { code: SpanStatusCode.UNSET }, flags: FLAGS_LOCAL_PARENT,
    };
    exp['jobs publish'] = {
        ...base(producer), parentSpanId: rc.spanId, kind: SpanKind.PRODUCER,
        start: T(1, 700000000), end: T(1, 800000000), attributes: {}, events: [],
        links: [{ ...base(client), attributes: { 'link.reason': 'caused-by', 'link.n': 7 },
            flags: FLAGS_LOCAL_PARENT }],
        status: { code: SpanStatusCode.UNSET }, flags: FLAGS_LOCAL_PARENT,
    };
    exp['jobs process'] = {
        ...base(consumer), parentSpanId: remote.spanId, kind: SpanKind.CONSUMER,
        start: T(3, 0), end: T(3, 1), attributes: { 'messaging.system': 'kafka' }, events: [],
        links: [{ ...base(producer), attributes: { 'messaging.operation.type': 'receive' },
            flags: FLAGS_LOCAL_PARENT }],
        status: { code: SpanStatusCode.UNSET }, flags: FLAGS_REMOTE_PARENT,
        traceState: 'vendor=abc,other=1',
    };
    assert.equal(consumer.spanContext().traceId, remote.traceId);
    return exp;
}

/** Asserts one sink span entry matches an expectation built from the SDK inputs. */
function assertSpan(entry, e, where) {
    const s = entry.span;
    assert.equal(s.traceId, e.traceId, `${where}: traceId`);
    assert.match(s.traceId, /^[0-9a-f]{32}$/, `${where}: traceId must be 32 lowercase hex digits`);
    assert.equal(s.spanId, e.spanId, `${where}: spanId`);
    assert.match(s.spanId, /^[0-9a-f]{16}$/, `${where}: spanId must be 16 lowercase hex digits`);
    if (e.parentSpanId === undefined) {
        assert.ok(!s.parentSpanId, `${where}: root span has parentSpanId ${s.parentSpanId}`);
    } else {
        assert.equal(s.parentSpanId, e.parentSpanId, `${where}: parentSpanId`);
    }
    assert.equal(s.kind, OTLP_KIND[e.kind], `${where}: kind must be the OTLP enum integer`);
    assert.equal(s.startTimeUnixNano, hrToNanos(e.start), `${where}: startTimeUnixNano`);
    assert.equal(s.endTimeUnixNano, hrToNanos(e.end), `${where}: endTimeUnixNano`);
    assertAttributes(s.attributes, e.attributes, `${where}: attributes`);
    assert.equal(s.flags, e.flags, `${where}: flags`);
    assert.equal(s.traceState ?? '', e.traceState ?? '', `${where}: traceState`);

    const events = s.events ?? [];
    assert.equal(events.length, e.events.length, `${where}: event count`);
    e.events.forEach((ev, i) => {
        assert.equal(events[i].name, ev.name, `${where}: events[${i}].name`);
        assert.equal(events[i].timeUnixNano, hrToNanos(ev.time), `${where}: events[${i}].timeUnixNano`);
        assertAttributes(events[i].attributes, ev.attributes, `${where}: events[${i}].attributes`);
    });

    const links = s.links ?? [];
    assert.equal(links.length, e.links.length, `${where}: link count`);
    e.links.forEach((l, i) => {
        assert.equal(links[i].traceId, l.traceId, `${where}: links[${i}].traceId`);
        assert.equal(links[i].spanId, l.spanId, `${where}: links[${i}].spanId`);
        assertAttributes(links[i].attributes, l.attributes, `${where}: links[${i}].attributes`);
        assert.equal(links[i].flags, l.flags, `${where}: links[${i}].flags`);
    });

    const status = s.status ?? {};
    assert.equal(status.code ?? 0, OTLP_STATUS[e.status.code], `${where}: status.code`);
    assert.equal(status.message ?? '', e.status.message ?? '', `${where}: status.message`);
    for (const k of ['droppedAttributesCount', 'droppedEventsCount', 'droppedLinksCount']) {
        assert.ok(!s[k], `${where}: ${k} is ${s[k]} but nothing was dropped`);
    }
}

// proto3 JSON omits fields at their default value, except oneof members (AnyValue) and
// repeated elements. A sink record that carries "droppedAttributesCount": 0 or "events": []
// is not in the OTLP/JSON encoding the spec describes.
const ONEOF_KEYS = new Set(['stringValue', 'boolValue', 'intValue', 'doubleValue', 'bytesValue',
    'arrayValue', 'kvlistValue', 'asInt', 'asDouble']);
function assertNoDefaultFields(node, path) {
    if (Array.isArray(node)) {
        node.forEach((x, i) => assertNoDefaultFields(x, `${path}[${i}]`));
        return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
        const p = `${path}.${k}`;
        if (!ONEOF_KEYS.has(k)) {
            const isDefault = v === 0 || v === '' || v === '0' || v === false ||
                (Array.isArray(v) && v.length === 0);
            assert.ok(!isDefault, `${p} holds a default value (${JSON.stringify(v)}); OTLP/JSON omits it`);
        }
        assertNoDefaultFields(v, p);
    }
}

test('spans from the OTel JS SDK arrive intact over every OTLP transport', async (t) => {
    const gw = await startGateway(t);
    const sent = { grpc: 0, http: 0 };

    for (const ex of EXPORTERS) {
        await t.test(ex.name, async () => {
            const rec = recording(ex.make(gw));
            const tp = new TracerProvider({
                resource: resourceFromAttributes(resourceFor(ex.name)),
                spanProcessors: [new BatchSpanProcessor({ exporter: rec.exporter, scheduledDelayMillis: 60000 })],
            });
            let exp;
            try {
                const tracer = tp.getTracer(SCOPE.name, SCOPE.version, { schemaUrl: SCOPE.schemaUrl });
                exp = emitScenario(tracer);
                await tp.forceFlush();
                await assertExportsSucceeded(rec, ex.name);
            } finally {
                await tp.shutdown();
            }
            const names = Object.keys(exp);
            sent[ex.transport] += names.length;

            const traceA = exp['GET /api/chat'].traceId;
            const traceB = exp['jobs process'].traceId;
            const gotA = await gw.waitForSink(spansOfTrace(traceA, 4), { what: `${ex.name}: trace A spans` });
            const gotB = await gw.waitForSink(spansOfTrace(traceB, 1), { what: `${ex.name}: trace B span` });
            const got = [...gotA, ...gotB];
            assert.equal(got.length, names.length, `${ex.name}: span count (duplicates?)`);
            for (const name of names) {
                const entries = got.filter((g) => g.span.name === name);
                assert.equal(entries.length, 1, `${ex.name}: exactly one span named ${name}`);
                const entry = entries[0];
                assertSpan(entry, exp[name], `${ex.name} span "${name}"`);
                assertAttributes(entry.resource.attributes, resourceFor(ex.name), `${ex.name}: resource`);
                assert.equal(entry.scope.name, SCOPE.name, `${ex.name}: scope.name`);
                assert.equal(entry.scope.version, SCOPE.version, `${ex.name}: scope.version`);
                assert.equal(entry.scopeSchemaUrl, SCOPE.schemaUrl, `${ex.name}: scopeSpans.schemaUrl`);
            }
            const records = gw.readSink().filter((r) => JSON.stringify(r).includes(traceA));
            records.forEach((r, i) => assertNoDefaultFields(r, `${ex.name} record ${i}`));
        });
    }

    await t.test('LLM spans (llm_completion and GenAI "chat gpt-4o") arrive intact', async () => {
        const rec = recording(new ProtoExporter({ url: `${gw.httpUrl}/v1/traces` }));
        const tp = new TracerProvider({
            resource: resourceFromAttributes({ 'service.name': 'chat-app' }),
            spanProcessors: [new SimpleSpanProcessor({ exporter: rec.exporter })],
        });
        const llmAttrs = {
            'llm.model': 'gpt-4o-mini',
            'llm.prompt_tokens': 1234,
            'llm.completion_tokens': 56,
            'llm.total_tokens': 1290,
            'llm.prompt': `System: be brief.\nUser: what is "OTLP"? ${TRICKY}`,
            'llm.completion': 'OpenTelemetry Protocol — ✓',
            'llm.temperature': 0.2,
            'llm.streaming': false,
        };
        const genAiAttrs = {
            'gen_ai.operation.name': 'chat',
            'gen_ai.provider.name': 'openai',
            'gen_ai.request.model': 'gpt-4o',
            'gen_ai.response.model': 'gpt-4o-2024-08-06',
            'gen_ai.response.id': 'chatcmpl-123',
            'gen_ai.request.temperature': 0.7,
            'gen_ai.request.max_tokens': 512,
            'gen_ai.usage.input_tokens': 100,
            'gen_ai.usage.output_tokens': 50,
            'gen_ai.usage.cache_read.input_tokens': 20,
            'gen_ai.response.finish_reasons': ['stop'],
            'server.address': 'api.openai.com',
            'server.port': 443,
        };
        let s1, s2;
        try {
            const tracer = tp.getTracer('llm-decorator', '0.1.0');
            s1 = tracer.startSpan('llm_completion', { kind: SpanKind.INTERNAL, attributes: llmAttrs,
                startTime: [1700000100, 1] });
            s1.end([1700000101, 2]);
            s2 = tracer.startSpan('chat gpt-4o', { kind: SpanKind.CLIENT, attributes: genAiAttrs,
                startTime: [1700000102, 3] });
            s2.addEvent('gen_ai.client.inference.operation.details', {
                'gen_ai.input.messages': '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
            }, [1700000102, 4]);
            s2.setStatus({ code: SpanStatusCode.ERROR, message: 'rate limited (429)' });
            s2.end([1700000103, 5]);
            await tp.forceFlush();
            await assertExportsSucceeded(rec, 'llm spans');
        } finally {
            await tp.shutdown();
        }
        sent.http += 2;
        const [g1] = await gw.waitForSink(spansOfTrace(s1.spanContext().traceId, 1), { what: 'llm_completion' });
        const [g2] = await gw.waitForSink(spansOfTrace(s2.spanContext().traceId, 1), { what: 'chat gpt-4o' });
        assertSpan(g1, {
            traceId: s1.spanContext().traceId, spanId: s1.spanContext().spanId, kind: SpanKind.INTERNAL,
            start: [1700000100, 1], end: [1700000101, 2], attributes: llmAttrs, events: [], links: [],
            status: { code: SpanStatusCode.UNSET }, flags: FLAGS_LOCAL_PARENT,
        }, 'llm_completion');
        assert.equal(g1.span.name, 'llm_completion');
        assertSpan(g2, {
            traceId: s2.spanContext().traceId, spanId: s2.spanContext().spanId, kind: SpanKind.CLIENT,
            start: [1700000102, 3], end: [1700000103, 5], attributes: genAiAttrs,
            events: [{ name: 'gen_ai.client.inference.operation.details', time: [1700000102, 4],
                attributes: { 'gen_ai.input.messages': '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]' } }],
            links: [], status: { code: SpanStatusCode.ERROR, message: 'rate limited (429)' },
            flags: FLAGS_LOCAL_PARENT,
        }, 'chat gpt-4o');
        assert.equal(g2.span.name, 'chat gpt-4o');
        assertAttributes(g2.resource.attributes, { 'service.name': 'chat-app' }, 'llm resource');
        assert.equal(g2.scope.name, 'llm-decorator');
    });

    await t.test('many spans in one request: none lost, none duplicated', async () => {
        const rec = recording(new GrpcExporter({ url: gw.grpcUrl }));
        const tp = new TracerProvider({
            resource: resourceFromAttributes({ 'service.name': 'bulk' }),
            spanProcessors: [new BatchSpanProcessor({ exporter: rec.exporter, maxExportBatchSize: 500,
                maxQueueSize: 2000, scheduledDelayMillis: 60000 })],
        });
        const N = 1000;
        let traceId;
        try {
            const tracer = tp.getTracer('bulk');
            const root = tracer.startSpan('bulk-root');
            traceId = root.spanContext().traceId;
            const ctx = trace.setSpan(ROOT_CONTEXT, root);
            for (let i = 1; i < N; i++) {
                tracer.startSpan(`bulk-${i}`, { attributes: { i } }, ctx).end();
            }
            root.end();
            await tp.forceFlush();
            await assertExportsSucceeded(rec, 'bulk');
        } finally {
            await tp.shutdown();
        }
        sent.grpc += N;
        const got = await gw.waitForSink(spansOfTrace(traceId, N), { what: `${N} bulk spans` });
        assert.equal(got.length, N, 'bulk span count');
        const ids = new Set(got.map((g) => g.span.spanId));
        assert.equal(ids.size, N, 'distinct span IDs');
        const is = got.map((g) => g.span.attributes?.find((a) => a.key === 'i')?.value?.intValue)
            .filter((x) => x !== undefined).map((x) => int64(x, 'attribute i')).sort((a, b) => (a < b ? -1 : 1));
        assert.deepEqual(is, Array.from({ length: N - 1 }, (_, k) => BigInt(k + 1)));
    });

    await t.test('self-metrics count accepted spans per transport', async () => {
        const text = await gw.selfMetrics();
        for (const transport of ['grpc', 'http']) {
            const labels = { receiver: 'otlp', transport };
            const v = promValue(text, 'otelcol_receiver_accepted_spans', labels) ??
                promValue(text, 'otelcol_receiver_accepted_spans_total', labels);
            assert.equal(v, sent[transport],
                `otelcol_receiver_accepted_spans{receiver="otlp",transport="${transport}"}; /metrics was:\n${text}`);
        }
    });

    await t.test('SIGTERM: graceful exit 0', async () => {
        const r = await gw.stop();
        assert.deepEqual(r, { code: 0, signal: null }, gw.describe());
        // Nothing may be lost or rewritten at shutdown: every span sent is in the sink once.
        const total = allSpans(gw.readSink()).length;
        assert.equal(total, sent.grpc + sent.http, 'spans in the sink after stop');
    });
});

test('file exporter format: proto writes length-prefixed ExportTraceServiceRequest frames', async (t) => {
    const gw = await startGateway(t, { fileFormat: 'proto' });
    const rec = recording(new GrpcExporter({ url: gw.grpcUrl }));
    const tp = new TracerProvider({
        resource: resourceFromAttributes(resourceFor('proto-sink')),
        spanProcessors: [new BatchSpanProcessor({ exporter: rec.exporter, scheduledDelayMillis: 60000 })],
    });
    let exp;
    try {
        exp = emitScenario(tp.getTracer(SCOPE.name, SCOPE.version, { schemaUrl: SCOPE.schemaUrl }));
        await tp.forceFlush();
        await assertExportsSucceeded(rec, 'proto sink');
    } finally {
        await tp.shutdown();
    }
    const hexOf = (b) => Buffer.from(b ?? []).toString('hex');
    const decodeAll = () => {
        if (!existsSync(gw.sinkPath)) return { spans: [], trailing: 0 };
        const { frames, trailing } = protoFrames(readFileSync(gw.sinkPath));
        const spans = [];
        for (const f of frames) {
            for (const rs of decodeTraceRequest(f).resourceSpans ?? []) {
                for (const ss of rs.scopeSpans ?? []) {
                    for (const span of ss.spans ?? []) spans.push({ span, resource: rs.resource, scope: ss.scope });
                }
            }
        }
        return { spans, trailing };
    };
    const names = Object.keys(exp);
    const got = await gw.waitFor(() => {
        const { spans } = decodeAll();
        return spans.length >= names.length ? spans : null;
    }, { what: `${names.length} spans in the proto sink` });
    assert.equal(got.length, names.length, 'span count in the proto sink');
    for (const name of names) {
        const e = exp[name];
        const g = got.find((x) => x.span.name === name);
        assert.ok(g, `span ${name} in the proto sink`);
        assert.equal(hexOf(g.span.traceId), e.traceId, `${name}: traceId`);
        assert.equal(hexOf(g.span.spanId), e.spanId, `${name}: spanId`);
        assert.equal(hexOf(g.span.parentSpanId), e.parentSpanId ?? '', `${name}: parentSpanId`);
        assert.equal(g.span.kind, OTLP_KIND[e.kind], `${name}: kind`);
        assert.equal(g.span.startTimeUnixNano, hrToNanos(e.start), `${name}: start`);
        assert.equal(g.span.endTimeUnixNano, hrToNanos(e.end), `${name}: end`);
        assertAttributes(g.span.attributes, e.attributes, `${name}: attributes`);
        assert.equal(g.span.flags, e.flags, `${name}: flags`);
        assert.equal(g.span.status?.code ?? 0, OTLP_STATUS[e.status.code], `${name}: status`);
        assertAttributes(g.resource.attributes, resourceFor('proto-sink'), `${name}: resource`);
        assert.equal(g.scope.name, SCOPE.name);
    }
    const r = await gw.stop();
    assert.deepEqual(r, { code: 0, signal: null }, gw.describe());
    assert.equal(decodeAll().trailing, 0, 'no partial frame at the end of the file after a clean stop');
});
