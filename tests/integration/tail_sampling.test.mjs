// tests/integration/tail_sampling.test.mjs — tail_sampling in the real gateway with the real
// OTel JS SDK over both receivers: otlp (gRPC + HTTP) -> llm_cost -> tail_sampling -> batch
// -> file sink, with the worked example's policies (errors, LLM errors, LLM cost >= $0.05,
// >= 8k tokens, length/content_filter completions, 10% of the rest, decision_wait 1s).
//
// The SDK sends each span as it ends (SimpleSpanProcessor), so a trace arrives over several
// requests, children before their root, and one trace arrives partly over gRPC and partly
// over HTTP. The 10% are predicted here with the Collector's hash (FNV-1a 64 of hash_salt +
// trace ID <= MaxUint64 * 0.1), so the test knows exactly which traces must come out; every
// kept trace must come out whole, the probabilistic-only ones carrying tracestate ot=th.
// Late spans sent after the decision follow it. The gateway must exit 0 on SIGTERM.
// A third test keeps traces by an ottl_condition policy (a span attribute and kind, a span
// event) and drops the near misses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { TracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';

import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway, promValue } from './lib/gateway.mjs';
import { allSpans, recording, assertExportsSucceeded } from './lib/otlp.mjs';

const SALT = 'it-salt';
const PLAIN_GRPC = 40;
const PLAIN_HTTP = 40;

/** Polls an async check until it is truthy; throws with the gateway's stderr after timeoutMs. */
async function poll(gw, check, { timeoutMs = 10000, what = 'condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        if (await check()) return;
        if (Date.now() >= deadline || gw.exit) throw new Error(`${what} (waited up to ${timeoutMs} ms)\n${gw.describe()}`);
        await sleep(50);
    }
}

/** The Collector's probabilistic decision for a hex trace ID at 10%. */
function collectorKeeps(traceIdHex) {
    const mask = (1n << 64n) - 1n;
    let h = 14695981039346656037n;
    const bytes = [...Buffer.from(SALT, 'utf8'), ...Buffer.from(traceIdHex, 'hex')];
    for (const b of bytes) {
        h ^= BigInt(b);
        h = (h * 1099511628211n) & mask;
    }
    return h <= 1844674407370955263n; // big.Float(MaxUint64) * 0.1, truncated
}

const LLM = {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': 'gpt-4o-mini',
};

function provider(exporter, service) {
    return new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': service }),
        spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
}

/** OTLP/HTTP -> tail_sampling (decision_wait, policies) -> file sink, with health and metrics. */
function httpTailConfig(decisionWait, policies) {
    return (ctx) => ({
        receivers: { otlp: { protocols: { http: { endpoint: `127.0.0.1:${ctx.ports.http}` } } } },
        processors: { tail_sampling: { decision_wait: decisionWait, policies } },
        exporters: { file: { path: ctx.sinkPath } },
        extensions: { health_check: { endpoint: `127.0.0.1:${ctx.ports.health}` } },
        service: {
            extensions: ['health_check'],
            telemetry: { metrics: { address: `127.0.0.1:${ctx.ports.metrics}` } },
            pipelines: { traces: { receivers: ['otlp'], processors: ['tail_sampling'], exporters: ['file'] } },
        },
    });
}

/** A root span with `n` children; `mod(i, span)` may decorate child i. Returns the trace ID. */
function makeTrace(tracer, name, n, mod = () => {}, parentCtx = undefined) {
    const root = tracer.startSpan(name, { kind: SpanKind.SERVER }, parentCtx);
    const ctx = trace.setSpan(parentCtx ?? context.active(), root);
    for (let i = 0; i < n; i++) {
        const child = tracer.startSpan(`${name}-child-${i}`, { kind: SpanKind.CLIENT }, ctx);
        mod(i, child);
        child.end(); // children first: the root arrives in a later request
    }
    return { root, id: root.spanContext().traceId, ctx };
}

test('tail_sampling: SDK traces over gRPC and HTTP, kept whole by the worked example policies', async (t) => {
    const gw = await startGateway(t, {
        config: (ctx) => ({
            receivers: { otlp: { protocols: {
                grpc: { endpoint: `127.0.0.1:${ctx.ports.grpc}` },
                http: { endpoint: `127.0.0.1:${ctx.ports.http}` },
            } } },
            processors: {
                llm_cost: {},
                tail_sampling: {
                    decision_wait: '1s',
                    policies: [
                        { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } },
                        { name: 'llm-errors', type: 'llm_error' },
                        { name: 'expensive', type: 'llm_cost', llm_cost: { threshold_usd: 0.05 } },
                        { name: 'long', type: 'llm_tokens', llm_tokens: { threshold: 8000 } },
                        { name: 'truncated', type: 'llm_finish_reason',
                            llm_finish_reason: { values: ['length', 'content_filter'] } },
                        { name: 'ten-percent', type: 'probabilistic',
                            probabilistic: { sampling_percentage: 10, hash_salt: SALT } },
                    ],
                },
                batch: { timeout: '200ms' },
            },
            exporters: { file: { path: ctx.sinkPath } },
            extensions: { health_check: { endpoint: `127.0.0.1:${ctx.ports.health}` } },
            service: {
                extensions: ['health_check'],
                telemetry: { metrics: { address: `127.0.0.1:${ctx.ports.metrics}` } },
                pipelines: { traces: { receivers: ['otlp'], processors: ['llm_cost', 'tail_sampling', 'batch'],
                    exporters: ['file'] } },
            },
        }),
    });

    const expectSpans = new Map(); // trace ID -> spans sent
    const kept = new Set();
    const probOnly = new Set();
    const add = (id, n) => expectSpans.set(id, (expectSpans.get(id) ?? 0) + n);

    const grpcRec = recording(new GrpcExporter({ url: gw.grpcUrl }));
    const httpRec = recording(new ProtoExporter({ url: `${gw.httpUrl}/v1/traces` }));
    const tpG = provider(grpcRec.exporter, 'ts-grpc');
    const tpH = provider(httpRec.exporter, 'ts-http');
    const tg = tpG.getTracer('it');
    const th = tpH.getTracer('it');
    let lateKept, lateDropped;
    try {
        // an error deep in the trace (gRPC)
        const a = makeTrace(tg, 'err', 3, (i, s) => {
            if (i === 1) s.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
        });
        a.root.end();
        add(a.id, 4);
        kept.add(a.id);
        lateKept = a;
        // an expensive LLM call (gRPC)
        const b = makeTrace(tg, 'cost', 1, (i, s) => s.setAttributes({ ...LLM, 'gen_ai.usage.input_tokens': 10,
            'gen_ai.usage.output_tokens': 10, 'gen_ai.usage.cost': 0.08 }));
        b.root.end();
        add(b.id, 2);
        kept.add(b.id);
        // a truncated completion and a long conversation (HTTP)
        const c = makeTrace(th, 'trunc', 1, (i, s) => s.setAttributes({ ...LLM, 'gen_ai.usage.input_tokens': 10,
            'gen_ai.usage.output_tokens': 10, 'gen_ai.response.finish_reasons': ['length'] }));
        c.root.end();
        add(c.id, 2);
        kept.add(c.id);
        const d = makeTrace(th, 'tokens', 2, (i, s) => s.setAttributes({ ...LLM, 'gen_ai.usage.input_tokens': 3000,
            'gen_ai.usage.output_tokens': 1500 }));
        d.root.end();
        add(d.id, 3);
        kept.add(d.id);
        // a failed LLM call without span status: error.type only (HTTP)
        const e = makeTrace(th, 'llmerr', 1, (i, s) => s.setAttributes({ ...LLM, 'error.type': 'timeout' }));
        e.root.end();
        add(e.id, 2);
        kept.add(e.id);
        // one trace over both receivers: root and a child over gRPC, an erroring child over HTTP
        const x = makeTrace(tg, 'cross', 1);
        const xc = th.startSpan('cross-http-child', { kind: SpanKind.CLIENT }, x.ctx);
        xc.setStatus({ code: SpanStatusCode.ERROR });
        xc.end();
        x.root.end();
        add(x.id, 3);
        kept.add(x.id);
        // plain traces: kept only by the 10% policy
        for (let i = 0; i < PLAIN_GRPC + PLAIN_HTTP; i++) {
            const p = makeTrace(i < PLAIN_GRPC ? tg : th, `plain-${i}`, 2);
            p.root.end();
            // one span per request (SimpleSpanProcessor): keep the exporters' concurrency low
            await (i < PLAIN_GRPC ? tpG : tpH).forceFlush();
            add(p.id, 3);
            if (collectorKeeps(p.id)) {
                kept.add(p.id);
                probOnly.add(p.id);
            } else if (!lateDropped) {
                lateDropped = p;
            }
        }
        await tpG.forceFlush();
        await tpH.forceFlush();
        await assertExportsSucceeded(grpcRec, 'gRPC spans');
        await assertExportsSucceeded(httpRec, 'HTTP spans');

        // every trace decided (1s after its first span) and the kept ones forwarded
        const nTraces = expectSpans.size;
        await poll(gw, async () => {
            const m = await gw.selfMetrics();
            const yes = promValue(m, 'otelcol_processor_tail_sampling_global_count_traces_sampled', { sampled: 'true' }) ?? 0;
            const no = promValue(m, 'otelcol_processor_tail_sampling_global_count_traces_sampled', { sampled: 'false' }) ?? 0;
            return yes + no === nTraces;
        }, { timeoutMs: 20000, what: `${nTraces} traces decided` });
        const wantSpans = [...kept].reduce((n, id) => n + expectSpans.get(id), 0);
        let spans = [];
        await gw.waitFor(() => {
            spans = allSpans(gw.readSink());
            return spans.length >= wantSpans;
        }, { timeoutMs: 10000, what: `${wantSpans} kept spans at the sink` });

        await t.test('exactly the traces the policies keep, each whole', () => {
            const got = new Map();
            for (const s of spans) got.set(s.span.traceId, (got.get(s.span.traceId) ?? 0) + 1);
            for (const id of kept) assert.equal(got.get(id), expectSpans.get(id), `trace ${id}`);
            for (const id of got.keys()) assert.ok(kept.has(id), `trace ${id} was not to be kept`);
            assert.equal(spans.length, wantSpans);
        });

        await t.test('probabilistic-only keeps carry the OTel threshold, the others do not', () => {
            for (const s of spans) {
                const ts = s.span.traceState ?? '';
                if (probOnly.has(s.span.traceId)) assert.equal(ts, 'ot=th:e6666666666666');
                else assert.equal(ts, '');
            }
        });

        await t.test('cross-receiver trace and resources survive', () => {
            const cross = spans.filter((s) => s.span.traceId === x.id);
            const services = new Set(cross.map((s) => s.resource.attributes.find((a) => a.key === 'service.name').value.stringValue));
            assert.deepEqual([...services].sort(), ['ts-grpc', 'ts-http']);
        });

        // late spans: one of the kept error trace (forwarded at once), one of a dropped trace
        const l1 = tg.startSpan('late-kept', {}, lateKept.ctx);
        l1.end();
        const l2 = th.startSpan('late-dropped', {}, lateDropped.ctx);
        l2.end();
        await tpG.forceFlush();
        await tpH.forceFlush();
        await gw.waitFor(() => allSpans(gw.readSink()).some((s) => s.span.name === 'late-kept'),
            { timeoutMs: 10000, what: 'the late span of the kept trace' });
        await poll(gw, async () => promValue(await gw.selfMetrics(), 'llmgate_processor_tail_sampling_late_spans',
            { decision: 'not_sampled' }) === 1, { timeoutMs: 10000, what: 'the late span of the dropped trace counted' });
        const m = await gw.selfMetrics();
        assert.equal(promValue(m, 'otelcol_processor_tail_sampling_count_traces_sampled', { policy: 'errors', sampled: 'true' }), 2);
        assert.equal(promValue(m, 'otelcol_processor_tail_sampling_sampling_trace_dropped_too_early'), 0);
        assert.ok(!allSpans(gw.readSink()).some((s) => s.span.name === 'late-dropped'));
    } finally {
        await tpG.shutdown();
        await tpH.shutdown();
    }
    const exit = await gw.stop();
    assert.equal(exit.code, 0, `gateway exit\n${gw.describe()}`);
});

test('tail_sampling: pending traces are decided and flushed on SIGTERM', async (t) => {
    const gw = await startGateway(t, {
        config: httpTailConfig('1h', [{ name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } }]),
    });
    const rec = recording(new ProtoExporter({ url: `${gw.httpUrl}/v1/traces` }));
    const tp = provider(rec.exporter, 'ts-shutdown');
    const tr = tp.getTracer('it');
    const a = makeTrace(tr, 'err', 2, (i, s) => i === 0 && s.setStatus({ code: SpanStatusCode.ERROR }));
    a.root.end();
    const b = makeTrace(tr, 'ok', 2);
    b.root.end();
    await tp.forceFlush();
    await assertExportsSucceeded(rec, 'spans');
    await tp.shutdown();
    await poll(gw, async () => promValue(await gw.selfMetrics(), 'otelcol_processor_tail_sampling_sampling_traces_on_memory') === 2,
        { timeoutMs: 10000, what: 'two traces waiting' });
    assert.equal(allSpans(gw.readSink()).length, 0, 'nothing forwarded before the decision');
    const exit = await gw.stop();
    assert.equal(exit.code, 0, `gateway exit\n${gw.describe()}`);
    const spans = allSpans(gw.readSink());
    assert.equal(spans.length, 3, 'the error trace, whole, flushed at shutdown');
    assert.ok(spans.every((s) => s.span.traceId === a.id));
});

test('tail_sampling: ottl_condition keeps traces by span attribute and by span event, whole', async (t) => {
    const gw = await startGateway(t, {
        config: httpTailConfig('1s', [{ name: 'reasoning-or-exception', type: 'ottl_condition', ottl_condition: {
            error_mode: 'ignore',
            span: ['IsMatch(attributes["gen_ai.request.model"], "^o[0-9]") and kind == SPAN_KIND_CLIENT'],
            spanevent: ['name == "exception" and span.name != "ignored"'],
        } }]),
    });
    const rec = recording(new ProtoExporter({ url: `${gw.httpUrl}/v1/traces` }));
    const tp = provider(rec.exporter, 'ts-ottl');
    const tr = tp.getTracer('it');
    // kept: a CLIENT span calling a reasoning model
    const reasoning = makeTrace(tr, 'reasoning', 3, (i, s) => i === 1 && s.setAttributes({ ...LLM, 'gen_ai.request.model': 'o3-mini' }));
    reasoning.root.end();
    // kept: an exception event on a child
    const failing = makeTrace(tr, 'failing', 2, (i, s) => i === 0 && s.addEvent('exception', { 'exception.type': 'Timeout' }));
    failing.root.end();
    // dropped: an ordinary model; an exception event on a span named "ignored"; the model
    // on a SERVER span (the kind condition fails)
    const plain = makeTrace(tr, 'plain', 2, (i, s) => s.setAttributes(LLM));
    plain.root.end();
    const ignoredRoot = tr.startSpan('ignored', { kind: SpanKind.SERVER });
    ignoredRoot.addEvent('exception', { 'exception.type': 'Noise' });
    ignoredRoot.end();
    const server = tr.startSpan('server-model', { kind: SpanKind.SERVER, attributes: { 'gen_ai.request.model': 'o1' } });
    server.end();
    await tp.forceFlush();
    await assertExportsSucceeded(rec, 'spans');
    await tp.shutdown();
    await poll(gw, async () => {
        const m = await gw.selfMetrics();
        return promValue(m, 'otelcol_processor_tail_sampling_global_count_traces_sampled', { sampled: 'true' }) === 2 &&
            promValue(m, 'otelcol_processor_tail_sampling_global_count_traces_sampled', { sampled: 'false' }) === 3;
    }, { timeoutMs: 15000, what: 'five traces decided' });
    await poll(gw, async () => allSpans(gw.readSink()).length >= 7, { timeoutMs: 10000, what: 'kept traces forwarded' });
    const spans = allSpans(gw.readSink());
    const byTrace = new Map();
    for (const s of spans) byTrace.set(s.span.traceId, (byTrace.get(s.span.traceId) ?? 0) + 1);
    assert.deepEqual([...byTrace.entries()].sort(), [[failing.id, 3], [reasoning.id, 4]].sort());
    const exit = await gw.stop();
    assert.equal(exit.code, 0, `gateway exit\n${gw.describe()}`);
});
