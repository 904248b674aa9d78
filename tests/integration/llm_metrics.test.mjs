// tests/integration/llm_metrics.test.mjs — LLM spans from the real OTel JS SDK through the
// real gateway: traces: otlp -> llm_cost -> llm_metrics (connector) + debug; metrics:
// llm_metrics -> prometheus + file sink. The SDK sends seed-decorator `llm_completion` spans
// (llm.* names, one failing with status ERROR) over OTLP/gRPC and OTel GenAI `chat` spans
// over OTLP/HTTP. llm_cost prices the seed spans from a price file written by the test (a
// binary built without llm_cost gets spans that carry the same gen_ai.usage.cost already);
// the GenAI span brings its own cost, which llm_cost keeps. The test scrapes the prometheus
// exporter and reads the OTLP metrics at the file sink and asserts exact token sums and
// histogram bucket counts, and cost sums to 1e-12 relative (a sum of products of
// prices and token counts, added in arrival order).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { TracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGateway, freePort, promValue, readJsonLines, runCli } from './lib/gateway.mjs';
import { allMetrics, attrMap, recording, assertExportsSucceeded } from './lib/otlp.mjs';

const SERVICE = 'it-llm-app';
const T0 = 1700000000;

/** [s, ns] `ms` milliseconds after T0 + sec. */
function at(sec, ms = 0) {
    return [T0 + sec + Math.floor(ms / 1000), (ms % 1000) * 1000000];
}

// USD per 1M tokens, written to the price file llm_cost loads.
const PRICES = { 'gpt-4o': { input: 2.5, output: 10 }, 'claude-3-5-haiku': { input: 0.8, output: 4 } };
const PRICE_FILE = `version: 1
models:
  - id: gpt-4o
    provider: openai
    match: {exact: [gpt-4o]}
    prices: {input: 2.5, output: 10}
  - id: claude-3-5-haiku
    provider: anthropic
    match: {exact: [claude-3-5-haiku]}
    prices: {input: 0.8, output: 4}
`;

// Seed-decorator spans: name llm_completion, llm.* attributes.
const SEED = [
    { model: 'gpt-4o', prompt: 100, completion: 20, finish: 'stop', ms: 500 },
    { model: 'gpt-4o', prompt: 1000, completion: 300, finish: 'length', ms: 1500 },
    { model: 'gpt-4o', prompt: 50, completion: 0, error: 'RateLimitError', ms: 3000 },
    { model: 'claude-3-5-haiku', prompt: 7, completion: 5, finish: 'stop', ms: 20 },
];
for (const s of SEED) {
    s.cost = (s.prompt * PRICES[s.model].input + s.completion * PRICES[s.model].output) / 1e6;
}
const costOf = (model) => SEED.filter((s) => s.model === model).reduce((a, s) => a + s.cost, 0);

function assertCost(got, want, what) {
    assert.ok(typeof got === 'number' && Math.abs(got - want) <= 1e-12 * want,
        `${what}: cost ${got}, want ${want}`);
}

// OTel GenAI spans ("{operation} {model}", kind CLIENT).
const GENAI_OK = {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': 'gpt-4o-mini',
    'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
    'gen_ai.usage.input_tokens': 4096,
    'gen_ai.usage.output_tokens': 4097,
    'gen_ai.response.finish_reasons': ['stop'],
    'gen_ai.usage.cost': 0.25,
};
const GENAI_TIMEOUT = {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': 'gpt-4o-mini',
    'error.type': 'timeout',
};
const LLM_SPANS = SEED.length + 2;

const DURATION_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const TOKEN_BOUNDS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

/** Per-bucket counts (OTLP: not cumulative) of values for explicit bounds (upper inclusive). */
function buckets(bounds, values) {
    const out = new Array(bounds.length + 1).fill(0);
    for (const v of values) {
        let i = 0;
        while (i < bounds.length && v > bounds[i]) i++;
        out[i]++;
    }
    return out;
}

async function sendSpans(gw, spansCarryCost) {
    // seed spans over OTLP/gRPC
    const seedRec = recording(new GrpcExporter({ url: gw.grpcUrl }));
    const tp1 = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': SERVICE }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: seedRec.exporter })],
    });
    try {
        const tracer = tp1.getTracer('llm-decorator', '0.1.0');
        SEED.forEach((s, i) => {
            const attributes = {
                'llm.model': s.model,
                'llm.prompt_tokens': s.prompt,
                'llm.completion_tokens': s.completion,
                'llm.total_tokens': s.prompt + s.completion,
                'llm.temperature': 0.2,
            };
            if (s.finish) attributes['llm.finish_reason'] = s.finish;
            if (s.error) attributes['llm.error'] = s.error;
            if (spansCarryCost) attributes['gen_ai.usage.cost'] = s.cost;
            const span = tracer.startSpan('llm_completion', { kind: SpanKind.INTERNAL, attributes, startTime: at(10 * i) });
            if (s.error) span.setStatus({ code: SpanStatusCode.ERROR, message: s.error });
            span.end(at(10 * i, s.ms));
        });
        // not an LLM call: must not count anywhere
        tracer.startSpan('GET /health', { attributes: { 'http.route': '/health' }, startTime: at(100) }).end(at(100, 3));
        await tp1.forceFlush();
        await assertExportsSucceeded(seedRec, 'seed spans');
    } finally {
        await tp1.shutdown();
    }
    // GenAI spans over OTLP/HTTP protobuf
    const genRec = recording(new ProtoExporter({ url: `${gw.httpUrl}/v1/traces` }));
    const tp2 = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': SERVICE }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: genRec.exporter })],
    });
    try {
        const tracer = tp2.getTracer('openai-instrumentation', '1.0.0');
        tracer.startSpan('chat gpt-4o-mini', { kind: SpanKind.CLIENT, attributes: GENAI_OK, startTime: at(200) })
            .end(at(200, 250));
        const failed = tracer.startSpan('chat gpt-4o-mini', { kind: SpanKind.CLIENT, attributes: GENAI_TIMEOUT,
            startTime: at(300) });
        failed.setStatus({ code: SpanStatusCode.ERROR, message: 'request timed out' });
        failed.end(at(300, 90000));
        await tp2.forceFlush();
        await assertExportsSucceeded(genRec, 'GenAI spans');
    } finally {
        await tp2.shutdown();
    }
}

async function scrape(url) {
    const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const text = await r.text();
    assert.equal(r.status, 200, `GET ${url}: ${text}`);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    return text;
}

/** Exposition lines of one family (HELP, TYPE and samples), for failure messages. */
function family(text, name) {
    return text.split('\n').filter((l) => l.includes(name)).join('\n');
}

const gptLabels = { service_name: SERVICE, model: 'gpt-4o', job: 'llmgate' };
const gptSeed = SEED.filter((s) => s.model === 'gpt-4o');

test('llm_metrics: SDK spans -> exact token, cost, latency and error metrics at prometheus and the OTLP sink', async (t) => {
    const promPort = await freePort();
    // llm_cost is another component of the same issue: use it when this binary has it.
    const withLlmCost = /^\s+- name: llm_cost$/m.test(runCli(['components']).stdout);
    const gw = await startGateway(t, {
        config: (ctx) => ({
            receivers: {
                otlp: { protocols: {
                    grpc: { endpoint: `127.0.0.1:${ctx.ports.grpc}` },
                    http: { endpoint: `127.0.0.1:${ctx.ports.http}` },
                } },
            },
            ...(withLlmCost ? {
                processors: { llm_cost: { pricing_file: (() => {
                    const p = join(ctx.dir, 'prices.yaml');
                    writeFileSync(p, PRICE_FILE);
                    return p;
                })() } },
            } : {}),
            connectors: { llm_metrics: { flush_interval: '200ms' } },
            exporters: {
                debug: { verbosity: 'basic' },
                prometheus: { endpoint: `127.0.0.1:${promPort}` },
                file: { path: ctx.sinkPath },
            },
            extensions: { health_check: { endpoint: `127.0.0.1:${ctx.ports.health}` } },
            service: {
                extensions: ['health_check'],
                telemetry: { metrics: { address: `127.0.0.1:${ctx.ports.metrics}` } },
                pipelines: {
                    traces: { receivers: ['otlp'], ...(withLlmCost ? { processors: ['llm_cost'] } : {}),
                        exporters: ['llm_metrics', 'debug'] },
                    metrics: { receivers: ['llm_metrics'], exporters: ['prometheus', 'file'] },
                },
            },
        }),
    });
    const promUrl = `http://127.0.0.1:${promPort}/metrics`;

    await sendSpans(gw, !withLlmCost);

    // Every LLM span aggregated (and no other), then a flush after the last of them.
    let self = '';
    for (let i = 0; i < 200; i++) {
        self = await gw.selfMetrics();
        if (promValue(self, 'llmgate_llm_metrics_llm_spans', { connector: 'llm_metrics' }) === LLM_SPANS) break;
        await sleep(50);
    }
    assert.equal(promValue(self, 'llmgate_llm_metrics_llm_spans', { connector: 'llm_metrics' }), LLM_SPANS,
        `LLM spans aggregated\n${gw.describe()}`);

    const wantGptTokens = gptSeed.reduce((a, s) => a + s.prompt + s.completion, 0);
    let text = '';
    for (let i = 0; i < 200; i++) {
        text = await scrape(promUrl);
        if (promValue(text, 'gen_ai_client_operation_duration_seconds_count', { error_type: 'timeout' }) === 1 &&
            promValue(text, 'llm_tokens_total', gptLabels) === wantGptTokens) break;
        await sleep(50);
    }

    await t.test('prometheus: seed metrics by model', () => {
        assert.equal(promValue(text, 'llm_tokens_total', gptLabels), wantGptTokens, family(text, 'llm_tokens_total'));
        assert.equal(promValue(text, 'llm_tokens_total', { model: 'claude-3-5-haiku' }), 12);
        assert.equal(promValue(text, 'llm_tokens_total', { model: 'gpt-4o-mini-2024-07-18' }), 4096 + 4097);
        assertCost(promValue(text, 'llm_cost_usd_total', gptLabels), costOf('gpt-4o'), family(text, 'llm_cost_usd'));
        assertCost(promValue(text, 'llm_cost_usd_total', { model: 'claude-3-5-haiku' }), costOf('claude-3-5-haiku'), 'claude');
        assert.equal(promValue(text, 'llm_cost_usd_total', { model: 'gpt-4o-mini-2024-07-18' }), 0.25);
        // the failed GenAI call had no usage: no cost series for its model
        assert.equal(promValue(text, 'llm_cost_usd_total', { model: 'gpt-4o-mini' }), undefined);
        // latency of the three gpt-4o calls: 0.5 s, 1.5 s, 3 s (cumulative buckets in the text)
        const perBucket = buckets(DURATION_BOUNDS, gptSeed.map((s) => s.ms / 1000));
        let cum = 0;
        DURATION_BOUNDS.forEach((b, i) => {
            cum += perBucket[i];
            assert.equal(promValue(text, 'llm_latency_seconds_bucket', { ...gptLabels, le: String(b) }), cum,
                `le=${b}\n${family(text, 'llm_latency_seconds')}`);
        });
        assert.equal(promValue(text, 'llm_latency_seconds_bucket', { ...gptLabels, le: '+Inf' }), 3);
        assert.equal(promValue(text, 'llm_latency_seconds_count', gptLabels), 3);
        assert.equal(promValue(text, 'llm_latency_seconds_sum', gptLabels), 5);
        assert.equal(promValue(text, 'llm_errors_total', { ...gptLabels, error_type: 'RateLimitError' }), 1);
        assert.equal(promValue(text, 'llm_errors_total', { model: 'gpt-4o-mini', error_type: 'timeout' }), 1);
        assert.equal(promValue(text, 'llm_finish_reasons_total', { ...gptLabels, finish_reason: 'stop' }), 1);
        assert.equal(promValue(text, 'llm_finish_reasons_total', { ...gptLabels, finish_reason: 'length' }), 1);
        assert.equal(promValue(text, 'llm_finish_reasons_total', { model: 'claude-3-5-haiku', finish_reason: 'stop' }), 1);
        assert.equal(promValue(text, 'llm_finish_reasons_total', { model: 'gpt-4o-mini-2024-07-18', finish_reason: 'stop' }), 1);
        assert.match(text, /^# TYPE llm_tokens_total counter$/m);
        assert.match(text, /^# TYPE llm_latency_seconds histogram$/m);
        assert.doesNotMatch(text, /health/, 'the non-LLM span left no trace in the metrics');
    });

    await t.test('prometheus: OTel GenAI metrics with semconv buckets and attributes', () => {
        const genai = { gen_ai_operation_name: 'chat', gen_ai_provider_name: 'openai',
            gen_ai_request_model: 'gpt-4o-mini', gen_ai_response_model: 'gpt-4o-mini-2024-07-18' };
        assert.match(text, /^# TYPE gen_ai_client_token_usage histogram$/m);
        for (const [type, v] of [['input', 4096], ['output', 4097]]) {
            const labels = { ...genai, gen_ai_token_type: type };
            const perBucket = buckets(TOKEN_BOUNDS, [v]);
            let cum = 0;
            TOKEN_BOUNDS.forEach((b, i) => {
                cum += perBucket[i];
                assert.equal(promValue(text, 'gen_ai_client_token_usage_bucket', { ...labels, le: String(b) }), cum,
                    `${type} le=${b}\n${family(text, 'gen_ai_client_token_usage')}`);
            });
            assert.equal(promValue(text, 'gen_ai_client_token_usage_sum', labels), v);
            assert.equal(promValue(text, 'gen_ai_client_token_usage_count', labels), 1);
        }
        // 4096 is an inclusive upper bound, 4097 is in the next bucket
        assert.equal(promValue(text, 'gen_ai_client_token_usage_bucket', { ...genai, gen_ai_token_type: 'input', le: '4096' }), 1);
        assert.equal(promValue(text, 'gen_ai_client_token_usage_bucket', { ...genai, gen_ai_token_type: 'output', le: '4096' }), 0);
        // seed spans: input = llm.prompt_tokens under the request model
        assert.equal(promValue(text, 'gen_ai_client_token_usage_sum', { gen_ai_request_model: 'gpt-4o', gen_ai_token_type: 'input' }),
            gptSeed.reduce((a, s) => a + s.prompt, 0));
        const timeout = { gen_ai_operation_name: 'chat', gen_ai_provider_name: 'openai', gen_ai_request_model: 'gpt-4o-mini',
            error_type: 'timeout' };
        assert.equal(promValue(text, 'gen_ai_client_operation_duration_seconds_bucket', { ...timeout, le: '81.92' }), 0);
        assert.equal(promValue(text, 'gen_ai_client_operation_duration_seconds_bucket', { ...timeout, le: '+Inf' }), 1);
        assert.equal(promValue(text, 'gen_ai_client_operation_duration_seconds_sum', timeout), 90);
        assert.equal(promValue(text, 'gen_ai_client_operation_duration_seconds_bucket', { ...genai, le: '0.16' }), 0);
        assert.equal(promValue(text, 'gen_ai_client_operation_duration_seconds_bucket', { ...genai, le: '0.32' }), 1);
    });

    await t.test('OTLP sink: cumulative metrics with exact sums and bucket counts', () => {
        const records = readJsonLines(gw.sinkPath);
        // the last emission that has every span in it
        const metricsOf = (rec) => allMetrics([rec]);
        const complete = records.filter((rec) => {
            const m = metricsOf(rec).find((x) => x.metric.name === 'gen_ai.client.operation.duration');
            return m && m.metric.histogram.dataPoints.reduce((a, p) => a + Number(p.count), 0) === LLM_SPANS;
        });
        assert.ok(complete.length > 0, `no complete emission among ${records.length} sink records`);
        const ms = metricsOf(complete[complete.length - 1]);
        const byName = Object.fromEntries(ms.map((x) => [x.metric.name, x]));
        const res = attrMap(ms[0].resource.attributes);
        assert.deepEqual(res['service.name'], { stringValue: 'llmgate' });
        assert.equal(ms[0].scope.name, 'llmgate/llm_metrics');

        const point = (name, attrs) => {
            const m = byName[name]?.metric;
            assert.ok(m, `metric ${name} emitted`);
            const data = m.sum ?? m.histogram;
            assert.equal(data.aggregationTemporality, 2, `${name} is cumulative`);
            const want = JSON.stringify(Object.entries(attrs).sort());
            const found = data.dataPoints.filter((p) => JSON.stringify(Object.entries(attrMap(p.attributes))
                .map(([k, v]) => [k, v.stringValue]).sort()) === want);
            assert.equal(found.length, 1, `${name}: one point with ${want}; have ${JSON.stringify(data.dataPoints)}`);
            const p = found[0];
            assert.ok(BigInt(p.startTimeUnixNano) > 0n && BigInt(p.startTimeUnixNano) <= BigInt(p.timeUnixNano),
                `${name}: start time set and not after the point time`);
            return p;
        };
        const gpt = { 'service.name': SERVICE, model: 'gpt-4o' };
        assert.equal(byName['llm.tokens.total'].metric.sum.isMonotonic, true);
        assert.equal(byName['llm.tokens.total'].metric.unit, '{token}');
        assert.equal(point('llm.tokens.total', gpt).asInt, String(wantGptTokens));
        assertCost(point('llm.cost.usd', gpt).asDouble, costOf('gpt-4o'), 'llm.cost.usd gpt-4o');
        const lat = point('llm.latency.seconds', gpt);
        assert.deepEqual(lat.explicitBounds, DURATION_BOUNDS);
        assert.deepEqual(lat.bucketCounts.map(Number), buckets(DURATION_BOUNDS, gptSeed.map((s) => s.ms / 1000)));
        assert.equal(lat.count, '3');
        assert.equal(lat.sum, 5);
        const inAttrs = { 'service.name': SERVICE, 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai',
            'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
            'gen_ai.token.type': 'input' };
        const usage = point('gen_ai.client.token.usage', inAttrs);
        assert.equal(byName['gen_ai.client.token.usage'].metric.unit, '{token}');
        assert.deepEqual(usage.explicitBounds, TOKEN_BOUNDS);
        assert.deepEqual(usage.bucketCounts.map(Number), buckets(TOKEN_BOUNDS, [4096]));
        const dur = point('gen_ai.client.operation.duration', { 'service.name': SERVICE, 'gen_ai.operation.name': 'chat',
            'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o-mini', 'error.type': 'timeout' });
        assert.equal(byName['gen_ai.client.operation.duration'].metric.unit, 's');
        assert.deepEqual(dur.bucketCounts.map(Number), buckets(DURATION_BOUNDS, [90]));
        assert.equal(point('llm.errors', { ...gpt, 'error.type': 'RateLimitError' }).asInt, '1');
        assert.equal(point('llm.finish_reasons', { ...gpt, finish_reason: 'length' }).asInt, '1');
    });

    await t.test('graceful stop exits 0', async () => {
        const exit = await gw.stop();
        assert.equal(exit.code, 0, gw.describe());
    });
});
