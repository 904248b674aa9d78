// tests/integration/llm_privacy_e2e.test.mjs — prompts stay out of the backend but failed
// calls stay debuggable. The real OTel JS SDK sends seed-style `llm_completion` spans (llm.*,
// prompt in llm.prompt / llm.completion) and OTel GenAI spans (gen_ai.input.messages /
// gen_ai.output.messages and gen_ai.user.message / gen_ai.choice events), every prompt and
// completion carrying a unique marker string; a quarter of them fail. The gateway runs
//
//   traces:        otlp -> llm_cost -> [interaction_store, forward]
//   traces/export: forward -> tail_sampling (errors + 50% probabilistic) ->
//                  redaction (llm_content: drop) -> [file sink, azure_monitor -> FakeIngestion]
//
// and the test asserts: (1) no marker appears anywhere in the bytes the file sink and the
// fake Azure ingestion received, (2) the sinks got exactly the failed traces and the 50%
// share of successful ones (the store and tail_sampling pick the same traces: same hash and
// salt), and (3) `llmgate store show/export` returns the full prompt and completion of every
// failed call and of exactly that share of successful ones, none of the others, and refuses a
// wrong key. Parts needing a component this binary lacks are skipped with a message naming it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { TracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';

import { startGateway, runCli } from './lib/gateway.mjs';
import { allSpans, recording, assertExportsSucceeded } from './lib/otlp.mjs';
import { FakeIngestion, acceptedSpanCounts, TEST_IKEY } from './lib/fake_azure.mjs';

const SERVICE = 'privacy-e2e-app';
const N_SEED = 16;
const N_GENAI = 16;
const SALT = 'e2e-salt';
const PERCENT = 50;
// MaxUint64 * 0.5 at big.Float's 64-bit precision, truncated: the Collector's threshold.
const THRESHOLD_50 = (1n << 63n) - 1n;

/** FNV-1a 64 over salt bytes then trace ID bytes (the tail_sampling probabilistic hash). */
function traceHash(salt, traceIdHex) {
    let h = 0xcbf29ce484222325n;
    const bytes = [...Buffer.from(salt, 'utf8'), ...Buffer.from(traceIdHex, 'hex')];
    for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
    return h;
}

function components() {
    const out = runCli(['components']).stdout;
    const has = (n) => new RegExp(`^\\s+- name: ${n}$`, 'm').test(out);
    return { tail_sampling: has('tail_sampling'), redaction: has('redaction'), azure_monitor: has('azure_monitor'),
        llm_cost: has('llm_cost'), interaction_store: has('interaction_store') };
}

/** The spans the test sends: each in its own trace, each with its own markers. */
function plan(runId) {
    const calls = [];
    for (let i = 0; i < N_SEED + N_GENAI; i++) {
        const seed = i < N_SEED;
        // Fixed width, so that no marker is a prefix of another.
        const n = String(i).padStart(3, '0');
        calls.push({
            seed,
            failed: i % 4 === 1,
            prompt: `PROMPTMARK-${runId}-${n}`,
            completion: `COMPLMARK-${runId}-${n}`,
            eventPrompt: `EVPROMPTMARK-${runId}-${n}`,
            eventCompletion: `EVCOMPLMARK-${runId}-${n}`,
        });
    }
    return calls;
}

async function sendCalls(gw, calls) {
    const rec = recording(new ProtoExporter({ url: `${gw.httpUrl}/v1/traces` }));
    const tp = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': SERVICE }),
        // One export request for all spans (SimpleSpanProcessor would exceed the exporter's
        // concurrent-request limit).
        spanProcessors: [new BatchSpanProcessor({ exporter: rec.exporter, maxExportBatchSize: 1000, maxQueueSize: 1000, scheduledDelayMillis: 60000 })],
    });
    try {
        const tracer = tp.getTracer('llm-app', '1.0.0');
        for (const c of calls) {
            let span;
            if (c.seed) {
                span = tracer.startSpan('llm_completion', { kind: SpanKind.INTERNAL, attributes: {
                    'llm.model': 'gpt-4o',
                    'llm.prompt_tokens': 120,
                    'llm.completion_tokens': c.failed ? 0 : 30,
                    'llm.total_tokens': c.failed ? 120 : 150,
                    'llm.prompt': `Summarise this for ${c.prompt}`,
                    ...(c.failed ? { 'llm.error': 'RateLimitError' } : {
                        'llm.completion': `Here you go: ${c.completion}`, 'llm.finish_reason': 'stop' }),
                } });
            } else {
                span = tracer.startSpan('chat gpt-4o-mini', { kind: SpanKind.CLIENT, attributes: {
                    'gen_ai.operation.name': 'chat',
                    'gen_ai.provider.name': 'openai',
                    'gen_ai.request.model': 'gpt-4o-mini',
                    'gen_ai.usage.input_tokens': 42,
                    'gen_ai.usage.output_tokens': 7,
                    'gen_ai.input.messages': JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: c.prompt }] }]),
                    'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: c.completion }] }]),
                    'gen_ai.response.finish_reasons': [c.failed ? 'error' : 'stop'],
                    ...(c.failed ? { 'error.type': 'timeout' } : {}),
                } });
                span.addEvent('gen_ai.user.message', { content: c.eventPrompt });
                span.addEvent('gen_ai.choice', { index: 0, message: JSON.stringify({ content: c.eventCompletion }) });
            }
            if (c.failed) span.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream call failed' });
            const ctx = span.spanContext();
            c.traceId = ctx.traceId;
            c.spanId = ctx.spanId;
            c.sampled = traceHash(SALT, c.traceId) <= THRESHOLD_50;
            span.end();
        }
        await tp.forceFlush();
        await assertExportsSucceeded(rec, 'LLM spans');
    } finally {
        await tp.shutdown();
    }
}

function markersOf(c) {
    return c.seed ? [c.prompt, ...(c.failed ? [] : [c.completion])]
        : [c.prompt, c.completion, c.eventPrompt, c.eventCompletion];
}

test('privacy: prompts never reach the sinks; failed and sampled calls are readable from the store', async (t) => {
    const has = components();
    if (!has.interaction_store) {
        t.skip('interaction_store exporter not built into this binary');
        return;
    }
    const runId = randomBytes(6).toString('hex');
    const calls = plan(runId);
    const fake = has.azure_monitor ? await new FakeIngestion().start() : null;
    t.after(() => fake?.stop());
    let storeDir, keyFile;
    const gw = await startGateway(t, {
        config: (ctx) => {
            storeDir = join(ctx.dir, 'store');
            keyFile = join(ctx.dir, 'store.key');
            writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
            const exporters = {
                interaction_store: {
                    directory: storeDir,
                    key_file: keyFile,
                    failed: { enabled: true },
                    successful: { sampling_percentage: PERCENT, hash_salt: SALT },
                    fsync: 'batch',
                },
                file: { path: ctx.sinkPath },
            };
            if (fake) {
                exporters.azure_monitor = {
                    connection_string: `InstrumentationKey=${TEST_IKEY};IngestionEndpoint=${fake.url}`,
                    compression: 'none',
                    retry_on_failure: { initial_interval: '100ms', max_interval: '1s' },
                };
            }
            const processors = {};
            if (has.llm_cost) processors.llm_cost = {};
            if (has.tail_sampling) {
                processors.tail_sampling = {
                    decision_wait: '1s',
                    policies: [
                        { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } },
                        { name: 'share', type: 'probabilistic', probabilistic: { sampling_percentage: PERCENT, hash_salt: SALT } },
                    ],
                };
            }
            if (has.redaction) processors.redaction = { allow_all_keys: true, llm_content: 'drop' };
            const exportProcs = ['tail_sampling', 'redaction'].filter((p) => processors[p]);
            return {
                receivers: { otlp: { protocols: { http: { endpoint: `127.0.0.1:${ctx.ports.http}` } } } },
                ...(Object.keys(processors).length ? { processors } : {}),
                connectors: { forward: {} },
                exporters,
                extensions: { health_check: { endpoint: `127.0.0.1:${ctx.ports.health}` } },
                service: {
                    extensions: ['health_check'],
                    telemetry: { metrics: { address: `127.0.0.1:${ctx.ports.metrics}` } },
                    pipelines: {
                        traces: { receivers: ['otlp'], ...(has.llm_cost ? { processors: ['llm_cost'] } : {}),
                            exporters: ['interaction_store', 'forward'] },
                        'traces/export': { receivers: ['forward'], ...(exportProcs.length ? { processors: exportProcs } : {}),
                            exporters: ['file', ...(fake ? ['azure_monitor'] : [])] },
                    },
                },
            };
        },
    });
    await sendCalls(gw, calls);
    const failed = calls.filter((c) => c.failed);
    const sampledOk = calls.filter((c) => !c.failed && c.sampled);
    const notStored = calls.filter((c) => !c.failed && !c.sampled);
    assert.ok(sampledOk.length > 0 && notStored.length > 0,
        `random trace IDs gave ${sampledOk.length} sampled and ${notStored.length} unsampled successful calls`);
    const forwarded = has.tail_sampling ? [...failed, ...sampledOk] : calls;
    const want = new Set(forwarded.map((c) => c.spanId));

    // The forwarded pipeline delivers exactly the kept traces (after decision_wait).
    await gw.waitForSink((recs) => {
        const got = new Set(allSpans(recs).map((x) => x.span.spanId));
        return [...want].every((id) => got.has(id));
    }, { timeoutMs: 20000, what: `${want.size} forwarded spans` });
    if (fake) {
        await fake.waitFor(() => [...want].every((id) => acceptedSpanCounts(fake).has(id)), 20000,
            `${want.size} spans at the fake Azure ingestion`);
    }
    await gw.stop();
    assert.equal(gw.exit.code, 0, `gateway exit ${JSON.stringify(gw.exit)}\n${gw.describe()}`);

    await t.test('sinks: exactly the tail-sampled traces', (st) => {
        if (!has.tail_sampling) return st.skip('tail_sampling processor not built: the sinks get every trace');
        const got = new Set(allSpans(gw.readSink()).map((x) => x.span.spanId));
        assert.deepEqual([...got].sort(), [...want].sort());
        if (fake) assert.deepEqual([...acceptedSpanCounts(fake).keys()].sort(), [...want].sort());
    });

    await t.test('sinks: no prompt or completion text anywhere', (st) => {
        if (!has.redaction) return st.skip('redaction processor not built: llm_content: drop is not available');
        const sinkBytes = readFileSync(gw.sinkPath, 'utf8');
        assert.ok(sinkBytes.length > 0);
        const azureBytes = fake ? JSON.stringify(fake.requests.map((r) => ({ h: r.headers, e: r.envelopes }))) : '';
        if (!fake) st.diagnostic('azure_monitor exporter not built: only the file sink is checked');
        for (const c of calls) {
            for (const m of markersOf(c)) {
                assert.ok(!sinkBytes.includes(m), `marker ${m} reached the file sink`);
                assert.ok(!azureBytes.includes(m), `marker ${m} reached the Azure ingestion`);
            }
        }
        // The spans themselves did arrive (the check is not vacuous), without content keys.
        const spans = allSpans(gw.readSink()).map((x) => x.span);
        assert.ok(spans.length >= want.size);
        for (const s of spans) {
            const keys = (s.attributes ?? []).map((a) => a.key);
            for (const k of ['llm.prompt', 'llm.completion', 'gen_ai.input.messages', 'gen_ai.output.messages'])
                assert.ok(!keys.includes(k), `${k} reached the sink on span ${s.spanId}`);
        }
        // Our own diagnostic: the markers really were in what the gateway received.
        assert.ok(calls.every((c) => c.prompt.includes(runId)));
    });

    await t.test('store: full prompt and completion of every failed and sampled call', () => {
        const dirMode = statSync(storeDir).mode & 0o777;
        assert.equal(dirMode, 0o700);
        for (const f of readdirSync(storeDir)) assert.equal(statSync(join(storeDir, f)).mode & 0o777, 0o600, f);
        // The store on disk holds no plaintext marker.
        for (const f of readdirSync(storeDir)) {
            const bytes = readFileSync(join(storeDir, f), 'latin1');
            for (const c of calls) assert.ok(!bytes.includes(c.prompt), `plaintext prompt in ${f}`);
        }
        const r = runCli(['store', 'export', '--dir', storeDir, '--key-file', keyFile]);
        assert.equal(r.status, 0, r.stderr);
        const recs = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
        const bySpan = new Map(recs.map((x) => [x.span_id, x]));
        assert.equal(recs.length, failed.length + sampledOk.length);
        for (const c of [...failed, ...sampledOk]) {
            const rec = bySpan.get(c.spanId);
            assert.ok(rec, `no record for ${c.failed ? 'failed' : 'sampled'} span ${c.spanId}`);
            assert.equal(rec.trace_id, c.traceId);
            assert.equal(rec.selected, c.failed ? 'failed' : 'sampled');
            assert.equal(rec.service, SERVICE);
            assert.equal(rec.status.code, c.failed ? 'ERROR' : 'UNSET');
            const text = JSON.stringify(rec.content);
            for (const m of markersOf(c)) assert.ok(text.includes(m), `record of ${c.spanId} lacks ${m}`);
            if (c.seed) {
                assert.equal(rec.model, 'gpt-4o');
                assert.equal(rec.tokens.input, 120);
                if (has.llm_cost) assert.ok(rec.cost_usd > 0, `no cost on ${JSON.stringify(rec)}`);
                if (c.failed) assert.equal(rec.error_type, 'RateLimitError');
            } else {
                assert.equal(rec.provider, 'openai');
                const evNames = rec.content.events.map((e) => e.name);
                assert.deepEqual(evNames, ['gen_ai.user.message', 'gen_ai.choice']);
                if (c.failed) assert.equal(rec.error_type, 'timeout');
            }
        }
        for (const c of notStored) assert.ok(!bySpan.has(c.spanId), `unsampled successful span ${c.spanId} was stored`);

        // show: human-readable, with the full prompt text; filters.
        const show = runCli(['store', 'show', '--dir', storeDir, '--key-file', keyFile, '--failed-only']);
        assert.equal(show.status, 0, show.stderr);
        for (const c of failed) for (const m of markersOf(c)) assert.ok(show.stdout.includes(m), `show lacks ${m}`);
        for (const c of sampledOk) assert.ok(!show.stdout.includes(c.prompt), '--failed-only showed a sampled call');
        const one = failed[0];
        const byTrace = runCli(['store', 'show', '--json', '--dir', storeDir, '--key-file', keyFile, '--trace-id', one.traceId]);
        assert.equal(byTrace.status, 0, byTrace.stderr);
        assert.equal(byTrace.stdout.trim().split('\n').length, 1);
        assert.ok(byTrace.stdout.includes(one.prompt));
        const list = runCli(['store', 'list', '--dir', storeDir, '--key-file', keyFile, '--model', 'gpt-4o-mini', '--since', '1h']);
        assert.equal(list.status, 0, list.stderr);
        const rows = list.stdout.trim().split('\n').slice(1);
        assert.equal(rows.length, [...failed, ...sampledOk].filter((c) => !c.seed).length);
        for (const row of rows) assert.match(row, /gpt-4o-mini/);
        assert.ok(!list.stdout.includes('PROMPTMARK'), 'list must not print prompts');
    });

    await t.test('store: a wrong key is refused with the key id, not garbage', () => {
        const other = join(gw.dir, 'other.key');
        writeFileSync(other, randomBytes(32).toString('base64'), { mode: 0o600 });
        const r = runCli(['store', 'show', '--dir', storeDir, '--key-file', other]);
        assert.equal(r.status, 3, r.stderr);
        assert.match(r.stderr, /no key can decrypt records with key id [0-9a-f]{16}/);
        assert.equal(r.stdout.trim(), '');
        // With the right key added (as after a rotation) everything is readable again.
        const both = runCli(['store', 'export', '--dir', storeDir, '--key-file', other, '--key-file', keyFile]);
        assert.equal(both.status, 0, both.stderr);
        assert.equal(both.stdout.trim().split('\n').length, failed.length + sampledOk.length);
        assert.ok(existsSync(storeDir));
    });
});
