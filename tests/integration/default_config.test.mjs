// tests/integration/default_config.test.mjs — the embedded default config, as `make run`
// starts it (no --config, fixed localhost ports), driven by the real OTel JS SDK: a failed
// seed-style `llm_completion` span and a successful GenAI span, both carrying prompt text.
// The failed call must be in the encrypted store (key created 0600 on first start) with its
// full prompt and completion; the debug exporter's output must show the kept trace but no
// prompt text (redaction llm_content: drop); LLM metrics are on the Prometheus endpoint;
// SIGTERM flushes pending tail-sampling decisions and exits 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { TracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { gatewayBin, runCli } from './lib/gateway.mjs';

const MARK_PROMPT = 'prompt-marker-7f3a';
const MARK_COMPLETION = 'completion-marker-91bc';

async function waitHttp(url, timeoutMs, pred = (r) => r.status === 200) {
    const until = Date.now() + timeoutMs;
    for (;;) {
        try {
            const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
            const text = await r.text();
            if (pred(r, text)) return text;
        } catch { /* not up yet */ }
        if (Date.now() > until) throw new Error(`${url} not ready in ${timeoutMs} ms`);
        await sleep(100);
    }
}

test('embedded default config: store, tail sampling, redaction, metrics, clean stop', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'llmgate-default-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    let stderr = '';
    const child = spawn(gatewayBin(), [], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise((ok) => child.on('close', (code, signal) => ok({ code, signal })));
    t.after(() => child.kill('SIGKILL'));
    await waitHttp('http://127.0.0.1:13133/', 20000);

    const provider = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'default-config-test' }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: new GrpcExporter({ url: 'http://localhost:4317' }) })],
    });
    const tracer = provider.getTracer('seed');
    const failed = tracer.startSpan('llm_completion', {
        kind: SpanKind.CLIENT,
        attributes: {
            'llm.model': 'gpt-4o', 'llm.prompt_tokens': 120, 'llm.completion_tokens': 0,
            'llm.total_tokens': 120, 'llm.prompt': `Summarise ${MARK_PROMPT}`,
            'llm.completion': `partial ${MARK_COMPLETION}`, 'llm.error': 'RateLimitError',
        },
    });
    failed.setStatus({ code: SpanStatusCode.ERROR, message: 'rate limited' });
    const failedTrace = failed.spanContext().traceId;
    failed.end();
    tracer.startSpan('chat gpt-4o-mini', {
        kind: SpanKind.CLIENT,
        attributes: {
            'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai',
            'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.input_tokens': 50,
            'gen_ai.usage.output_tokens': 10,
            'gen_ai.input.messages': JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: MARK_PROMPT }] }]),
        },
    }).end();
    await provider.forceFlush();
    await provider.shutdown();

    // The store has the failed call, readable with the generated key.
    const keyFile = join(dir, 'llmgate-data', 'store.key');
    const storeDir = join(dir, 'llmgate-data', 'interactions');
    let records = [];
    for (let i = 0; i < 100 && records.length === 0; i++) {
        await sleep(100);
        const r = runCli(['store', 'export', '--dir', storeDir, '--key-file', keyFile]);
        if (r.status === 0) records = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    }
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'llmgate-data', 'interactions')).mode & 0o777, 0o700);
    const rec = records.find((x) => x.trace_id === failedTrace);
    assert.ok(rec, `failed call not in the store: ${JSON.stringify(records)}`);
    assert.match(JSON.stringify(rec), new RegExp(MARK_PROMPT));
    assert.match(JSON.stringify(rec), new RegExp(MARK_COMPLETION));

    // LLM metrics on the Prometheus endpoint (llm_metrics flushes every 15 s).
    const prom = await waitHttp('http://127.0.0.1:8889/metrics', 30000,
        (r, text) => r.status === 200 && /llm_tokens_total/.test(text));
    assert.match(prom, /model="gpt-4o"/);

    // Stop: pending tail-sampling decisions are flushed; the debug output shows the kept
    // error trace but no prompt or completion text.
    child.kill('SIGTERM');
    const exit = await exited;
    assert.equal(exit.code, 0, stderr);
    assert.doesNotMatch(stderr, new RegExp(`${MARK_PROMPT}|${MARK_COMPLETION}`));
    assert.match(stderr, /TracesExporter \{"resource spans": \d+, "spans": [1-9]/, 'kept traces reach the debug exporter');
    assert.match(stderr, /created a new store key/);
});
