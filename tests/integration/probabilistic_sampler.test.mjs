// tests/integration/probabilistic_sampler.test.mjs — the probabilistic_sampler processor in the
// real gateway with the real OTel JS SDK exporters: otlp (gRPC + HTTP) -> probabilistic_sampler
// -> batch -> file sink.
//
// hash_seed mode: which traces come out is predicted here with the Collector's hash (FNV-1a 32
// over the seed's 4 little-endian bytes then the trace ID; kept when hash & 0x3fff <
// trunc(float32(pct) * 163.84)), so the test knows exactly which traces must arrive; every kept
// trace must arrive whole (its spans were sent in separate requests over both receivers), with
// tracestate ot=th:<threshold>;rv:<the hash's randomness>, and the kept fraction must be within
// a few points of the configured one. proportional mode: kept iff the trace ID's last 7 bytes
// >= the threshold, written as ot=th:c. Logs: sampled by a record attribute. Every decision is
// counted in otelcol_processor_probabilistic_sampler_count_*_sampled, and the gateway must exit
// 0 on SIGTERM.
//
// Until core/registry.c lists lg_probabilistic_sampler_processor the binary does not know the
// type; the tests then skip, saying so.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { context, trace, SpanKind } from '@opentelemetry/api';
import { TracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPLogExporter as LogProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';

import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway, gatewayBin, promValue } from './lib/gateway.mjs';
import { allSpans, allLogs, attrMap, recording, assertExportsSucceeded } from './lib/otlp.mjs';

const TRACES = 400;
const SEED = 22;
const PCT = 25;

function registered() {
    try {
        return /name: probabilistic_sampler\b/.test(execFileSync(gatewayBin(), ['components'], { encoding: 'utf8' }));
    } catch {
        return false;
    }
}
const SKIP = registered() ? false : 'probabilistic_sampler is not in core/registry.c yet';

/** FNV-1a 32 over the seed (little endian) then bytes. */
function fnv32(seed, bytes) {
    let h = 0x811c9dc5;
    const all = [seed & 0xff, (seed >>> 8) & 0xff, (seed >>> 16) & 0xff, (seed >>> 24) & 0xff, ...bytes];
    for (const b of all) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    return h >>> 0;
}

/** The hash_seed rate: float32 multiply, truncated. */
function scaledRate(pct) {
    return Math.trunc(Math.fround(Math.fround(pct) * Math.fround(16384 / 100)));
}

/** The 56-bit randomness the Collector's hash_seed mode records as rv (14 hex digits). */
function hashRv(h) {
    const bucket = BigInt(h & 0x3fff);
    const top = 16383n - bucket;
    const u = BigInt(h >>> 14);
    const mixed = u ^ (u << 10n);
    return ((top << 42n) | (mixed << 14n) | bucket).toString(16).padStart(14, '0');
}

function baseConfig(ctx, proc, signal) {
    return {
        receivers: { otlp: { protocols: {
            grpc: { endpoint: `127.0.0.1:${ctx.ports.grpc}` },
            http: { endpoint: `127.0.0.1:${ctx.ports.http}` },
        } } },
        processors: { probabilistic_sampler: proc, batch: { timeout: '200ms' } },
        exporters: { file: { path: ctx.sinkPath } },
        extensions: { health_check: { endpoint: `127.0.0.1:${ctx.ports.health}` } },
        service: {
            extensions: ['health_check'],
            telemetry: { metrics: { address: `127.0.0.1:${ctx.ports.metrics}` } },
            pipelines: { [signal]: { receivers: ['otlp'], processors: ['probabilistic_sampler', 'batch'],
                exporters: ['file'] } },
        },
    };
}

function provider(exporter, service) {
    return new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': service }),
        spanProcessors: [new BatchSpanProcessor({ exporter, maxExportBatchSize: 200, maxQueueSize: 5000,
            scheduledDelayMillis: 60000 })],
    });
}

/** TRACES traces of 3 spans: the root and one child over gRPC, another child over HTTP. */
async function sendTraces(gw) {
    const grpcRec = recording(new GrpcExporter({ url: gw.grpcUrl }));
    const httpRec = recording(new ProtoExporter({ url: `${gw.httpUrl}/v1/traces` }));
    const tpG = provider(grpcRec.exporter, 'ps-grpc');
    const tpH = provider(httpRec.exporter, 'ps-http');
    const ids = [];
    try {
        const tg = tpG.getTracer('it'), th = tpH.getTracer('it');
        for (let i = 0; i < TRACES; i++) {
            const root = tg.startSpan(`root-${i}`, { kind: SpanKind.SERVER });
            const ctx = trace.setSpan(context.active(), root);
            tg.startSpan(`grpc-child-${i}`, {}, ctx).end();
            th.startSpan(`http-child-${i}`, {}, ctx).end();
            root.end();
            ids.push(root.spanContext().traceId);
        }
        await tpG.forceFlush();
        await tpH.forceFlush();
        await assertExportsSucceeded(grpcRec, 'gRPC spans');
        await assertExportsSucceeded(httpRec, 'HTTP spans');
    } finally {
        await tpG.shutdown();
        await tpH.shutdown();
    }
    return ids;
}

/** Polls an async check until it is truthy; throws with the gateway's stderr after timeoutMs. */
async function poll(gw, check, { timeoutMs = 10000, what = 'condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        if (await check()) return;
        if (Date.now() >= deadline || gw.exit) throw new Error(`${what} (waited up to ${timeoutMs} ms)\n${gw.describe()}`);
        await sleep(50);
    }
}

async function metricSum(gw, name, labels) {
    return promValue(await gw.selfMetrics(), name, labels) ?? 0;
}

test('probabilistic_sampler hash_seed: the Collector\'s traces, kept whole, with ot=th;rv', { skip: SKIP }, async (t) => {
    const gw = await startGateway(t, {
        config: (ctx) => baseConfig(ctx, { sampling_percentage: PCT, hash_seed: SEED }, 'traces'),
    });
    const ids = await sendTraces(gw);
    const rate = scaledRate(PCT);
    const keep = new Map(); // trace ID -> rv it must carry
    for (const id of ids) {
        const h = fnv32(SEED, Buffer.from(id, 'hex'));
        if ((h & 0x3fff) < rate) keep.set(id, hashRv(h));
    }
    const name = 'otelcol_processor_probabilistic_sampler_count_traces_sampled';
    await poll(gw, async () => (await metricSum(gw, name, { policy: 'trace_id_hash', sampled: 'true' })) +
        (await metricSum(gw, name, { policy: 'trace_id_hash', sampled: 'false' })) === 3 * TRACES,
    { timeoutMs: 15000, what: 'every span decided' });
    let spans = [];
    await gw.waitFor(() => {
        spans = allSpans(gw.readSink());
        return spans.length >= 3 * keep.size;
    }, { timeoutMs: 10000, what: `${3 * keep.size} kept spans at the sink` });

    const got = new Map();
    for (const s of spans) got.set(s.span.traceId, (got.get(s.span.traceId) ?? 0) + 1);
    for (const id of got.keys()) assert.ok(keep.has(id), `trace ${id} was not to be kept`);
    for (const id of keep.keys()) assert.equal(got.get(id), 3, `trace ${id} whole`);
    assert.equal(spans.length, 3 * keep.size);
    const pct = (100 * keep.size) / TRACES;
    assert.ok(Math.abs(pct - PCT) < 6, `kept ${pct}% of traces, configured ${PCT}%`);
    for (const s of spans) assert.equal(s.span.traceState, `ot=th:c;rv:${keep.get(s.span.traceId)}`);
    assert.equal(await metricSum(gw, name, { policy: 'trace_id_hash', sampled: 'true' }), 3 * keep.size);

    const exit = await gw.stop();
    assert.equal(exit.code, 0, `gateway exit\n${gw.describe()}`);
});

test('probabilistic_sampler proportional: W3C randomness, ot=th:c', { skip: SKIP }, async (t) => {
    const gw = await startGateway(t, {
        config: (ctx) => baseConfig(ctx, { sampling_percentage: PCT, mode: 'proportional' }, 'traces'),
    });
    const ids = await sendTraces(gw);
    const keep = new Set(ids.filter((id) => BigInt('0x' + id.slice(18)) >= 0xc0000000000000n));
    let spans = [];
    const name = 'otelcol_processor_probabilistic_sampler_count_traces_sampled';
    await poll(gw, async () => (await metricSum(gw, name, { policy: 'trace_id_w3c', sampled: 'true' })) +
        (await metricSum(gw, name, { policy: 'trace_id_w3c', sampled: 'false' })) === 3 * TRACES,
    { timeoutMs: 15000, what: 'every span decided' });
    await gw.waitFor(() => {
        spans = allSpans(gw.readSink());
        return spans.length >= 3 * keep.size;
    }, { timeoutMs: 10000, what: `${3 * keep.size} kept spans at the sink` });
    assert.equal(spans.length, 3 * keep.size);
    for (const s of spans) {
        assert.ok(keep.has(s.span.traceId), `trace ${s.span.traceId} was not to be kept`);
        assert.equal(s.span.traceState, 'ot=th:c');
    }
    const exit = await gw.stop();
    assert.equal(exit.code, 0, `gateway exit\n${gw.describe()}`);
});

test('probabilistic_sampler logs: by record attribute, with sampling.* attributes', { skip: SKIP }, async (t) => {
    const N = 300;
    const gw = await startGateway(t, {
        config: (ctx) => baseConfig(ctx, { sampling_percentage: 40, attribute_source: 'record',
            from_attribute: 'log.id' }, 'logs'),
    });
    const rec = recording(new LogProtoExporter({ url: `${gw.httpUrl}/v1/logs` }));
    const lp = new LoggerProvider({
        resource: resourceFromAttributes({ 'service.name': 'ps-logs' }),
        processors: [new BatchLogRecordProcessor({ exporter: rec.exporter, maxExportBatchSize: 100,
            scheduledDelayMillis: 60000 })],
    });
    const rate = scaledRate(40);
    const keep = new Set();
    try {
        const logger = lp.getLogger('it');
        for (let i = 0; i < N; i++) {
            const id = `req-${i}-${(i * 2654435761) >>> 0}`;
            logger.emit({ body: `line ${i}`, attributes: { 'log.id': id } });
            if ((fnv32(0, Buffer.from(id, 'utf8')) & 0x3fff) < rate) keep.add(id);
        }
        await lp.forceFlush();
        await assertExportsSucceeded(rec, 'logs');
    } finally {
        await lp.shutdown();
    }
    let logs = [];
    await poll(gw, async () => {
        const m = await gw.selfMetrics();
        const name = 'otelcol_processor_probabilistic_sampler_count_logs_sampled';
        return (promValue(m, name, { policy: 'log.id', sampled: 'true' }) ?? 0) +
            (promValue(m, name, { policy: 'log.id', sampled: 'false' }) ?? 0) === N;
    }, { timeoutMs: 15000, what: 'every record decided' });
    await gw.waitFor(() => {
        logs = allLogs(gw.readSink());
        return logs.length >= keep.size;
    }, { timeoutMs: 10000, what: `${keep.size} kept records` });
    assert.equal(logs.length, keep.size);
    for (const l of logs) {
        const a = attrMap(l.log.attributes);
        const id = a['log.id']?.stringValue;
        assert.ok(keep.has(id), `record ${id} was not to be kept`);
        assert.equal(a['sampling.threshold']?.stringValue, '999c');
        assert.match(a['sampling.randomness']?.stringValue ?? '', /^[0-9a-f]{14}$/);
    }
    const exit = await gw.stop();
    assert.equal(exit.code, 0, `gateway exit\n${gw.describe()}`);
});
