// tests/integration/redaction.test.mjs — the redaction processor in the real gateway, fed by
// the real OTel JS SDK: seed-style `llm_completion` spans and GenAI spans carrying prompt and
// completion text (attributes and span events) plus personal data, and GenAI content events
// as log records with map bodies. With `llm_content: drop` and the PII masks on, not one byte
// of the marker strings may reach the file sink, while the other attributes arrive intact,
// the summary attributes and self-metrics count what was done, and the gateway exits 0 on
// SIGTERM.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { TracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';

import { startGateway, promValue } from './lib/gateway.mjs';
import { allSpans, allLogs, attrMap, recording, assertExportsSucceeded } from './lib/otlp.mjs';

const PROMPT = 'PROMPTMARK-7f3a what is the capital of France';
const ANSWER = 'ANSWERMARK-7f3a Paris';
const EMAIL = 'carol.secret@example.org';

function redactionConfig(ctx) {
    const pipeline = { receivers: ['otlp'], processors: ['redaction'], exporters: ['file'] };
    return {
        receivers: { otlp: { protocols: {
            grpc: { endpoint: `127.0.0.1:${ctx.ports.grpc}` },
            http: { endpoint: `127.0.0.1:${ctx.ports.http}` },
        } } },
        processors: { redaction: {
            allow_all_keys: true,
            llm_content: 'drop',
            pii: { email: true, credit_card: true, bearer_token: true, api_keys: true, ip: true },
            summary: 'info',
        } },
        exporters: { file: { path: ctx.sinkPath } },
        extensions: { health_check: { endpoint: `127.0.0.1:${ctx.ports.health}` } },
        service: {
            extensions: ['health_check'],
            telemetry: { metrics: { address: `127.0.0.1:${ctx.ports.metrics}` } },
            pipelines: { traces: pipeline, logs: pipeline },
        },
    };
}

test('redaction: llm_content drop + PII masks, SDK -> gateway -> sink without a byte of prompt text', async (t) => {
    const gw = await startGateway(t, { config: redactionConfig });

    // traces over OTLP/gRPC
    const rec = recording(new GrpcExporter({ url: gw.grpcUrl }));
    const tp = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'it-redaction', 'host.ip': '10.20.30.40' }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: rec.exporter })],
    });
    try {
        const tracer = tp.getTracer('it-redaction');
        const seed = tracer.startSpan('llm_completion', { kind: SpanKind.INTERNAL, attributes: {
            'llm.model': 'gpt-4o', 'llm.prompt_tokens': 12, 'llm.completion_tokens': 3,
            'llm.prompt': PROMPT, 'llm.completion': ANSWER, 'llm.error': 'RateLimitError',
            'user.note': `reach me at ${EMAIL}, card 4111 1111 1111 1111, not 4111 1111 1111 1112`,
        } });
        seed.setStatus({ code: SpanStatusCode.ERROR, message: 'rate limited' });
        seed.end();
        const chat = tracer.startSpan('chat gpt-4o-mini', { kind: SpanKind.CLIENT, attributes: {
            'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai',
            'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.input_tokens': 10,
            'gen_ai.input.messages': JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: PROMPT }] }]),
            'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: ANSWER }] }]),
            'gen_ai.prompt.0.content': PROMPT,
            'http.request.header.authorization': 'Bearer abcdefghijklmnop123456',
        } });
        chat.addEvent('gen_ai.user.message', { content: PROMPT });
        chat.addEvent('gen_ai.choice', { message: ANSWER, index: 0 });
        chat.addEvent('retry', { attempt: 2 });
        chat.end();
        await tp.forceFlush();
        await assertExportsSucceeded(rec, 'spans');
    } finally {
        await tp.shutdown();
    }

    // GenAI content events as log records (map bodies) over OTLP/HTTP protobuf
    const lrec = recording(new ProtoLogExporter({ url: `${gw.httpUrl}/v1/logs` }));
    const lp = new LoggerProvider({
        resource: resourceFromAttributes({ 'service.name': 'it-redaction' }),
        processors: [new SimpleLogRecordProcessor({ exporter: lrec.exporter })],
    });
    try {
        const logger = lp.getLogger('it-redaction');
        logger.emit({ eventName: 'gen_ai.user.message', body: { content: PROMPT, role: 'user' },
            attributes: { 'gen_ai.provider.name': 'openai' } });
        logger.emit({ eventName: 'gen_ai.choice', body: { message: { content: ANSWER }, index: 0 } });
        logger.emit({ body: { msg: `login by ${EMAIL}`, level: 'info' }, attributes: { 'it.kind': 'plain' } });
        await lp.forceFlush();
        await assertExportsSucceeded(lrec, 'logs');
    } finally {
        await lp.shutdown();
    }

    const records = await gw.waitForSink((recs) => {
        const spans = allSpans(recs);
        const logs = allLogs(recs);
        return spans.length >= 2 && logs.length >= 3 ? recs : null;
    }, { what: '2 spans and 3 log records' });

    // not one byte of the markers or the e-mail address anywhere in the sink
    const raw = readFileSync(gw.sinkPath, 'utf8');
    for (const needle of ['PROMPTMARK', 'ANSWERMARK', EMAIL, '4111 1111 1111 1111', 'abcdefghijklmnop123456', '10.20.30.40']) {
        assert.ok(!raw.includes(needle), `sink contains ${needle}`);
    }
    // the Luhn-invalid number is not a card and is kept
    assert.ok(raw.includes('4111 1111 1111 1112'));

    const spans = allSpans(records);
    const seed = spans.find((e) => e.span.name === 'llm_completion');
    const sa = attrMap(seed.span.attributes);
    assert.equal(sa['llm.model'].stringValue, 'gpt-4o');
    assert.equal(sa['llm.prompt'], undefined);
    assert.equal(sa['llm.completion'], undefined);
    assert.equal(sa['user.note'].stringValue, 'reach me at [EMAIL], card [CARD], not 4111 1111 1111 1112');
    assert.equal(Number(sa['redaction.redacted.count'].intValue), 2);
    assert.equal(Number(sa['redaction.masked.count'].intValue), 1);
    assert.equal(seed.span.status.code, 2); // status untouched

    const chat = spans.find((e) => e.span.name === 'chat gpt-4o-mini');
    const ca = attrMap(chat.span.attributes);
    assert.equal(ca['gen_ai.request.model'].stringValue, 'gpt-4o-mini');
    assert.equal(ca['http.request.header.authorization'].stringValue, 'Bearer [TOKEN]');
    assert.deepEqual(chat.span.events.map((e) => e.name), ['retry']);
    assert.equal(chat.span.droppedEventsCount, 2);

    const logs = allLogs(records);
    const plain = logs.find((e) => attrMap(e.log.attributes)['it.kind']);
    const body = Object.fromEntries(plain.log.body.kvlistValue.values.map((kv) => [kv.key, kv.value.stringValue]));
    assert.deepEqual(body, { msg: 'login by [EMAIL]', level: 'info' });
    const content = logs.filter((e) => e.log.eventName?.startsWith('gen_ai.'));
    assert.equal(content.length, 2);
    for (const e of content) assert.equal(e.log.body, undefined);

    const m = await gw.selfMetrics();
    assert.equal(promValue(m, 'llmgate_redaction_llm_content_dropped_attributes', { processor: 'redaction' }), 6); // 5 span attributes + the content log record's one
    assert.equal(promValue(m, 'llmgate_redaction_llm_content_dropped_events', { processor: 'redaction' }), 4);
    assert.equal(promValue(m, 'llmgate_redaction_pii_matches', { processor: 'redaction', kind: 'email' }), 2);
    assert.equal(promValue(m, 'llmgate_redaction_pii_matches', { processor: 'redaction', kind: 'credit_card' }), 1);
    assert.equal(promValue(m, 'llmgate_redaction_pii_matches', { processor: 'redaction', kind: 'ipv4' }), 2); // host.ip on the resource of each of the 2 exports

    const exit = await gw.stop();
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}\n${gw.describe()}`);
});

test('redaction: a config with a bad regex is refused with its YAML path', async () => {
    const { runCli } = await import('./lib/gateway.mjs');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'llmgate-it-redact-'));
    const p = join(dir, 'bad.yaml');
    writeFileSync(p, `receivers:
  otlp:
    protocols:
      http: {endpoint: 127.0.0.1:0}
processors:
  redaction:
    allow_all_keys: true
    blocked_values: ['ok', '(unclosed']
exporters:
  debug: {}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [redaction], exporters: [debug]}
`);
    const r = runCli(['validate', '--config', p]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /bad\.yaml:8:\d+: processors\.redaction\.blocked_values\[1\]: invalid regular expression/);
});
