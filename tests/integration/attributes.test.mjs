// tests/integration/attributes.test.mjs — the Collector's `attributes` and `resource`
// processors with a Collector-style config, driven by the real OTel JS SDK over OTLP/gRPC
// into the file sink: every action (insert, update, upsert, delete by key and pattern,
// hash, extract, convert), include/exclude matching, resource actions, and config errors
// naming the YAML path.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SpanKind } from '@opentelemetry/api';
import { TracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { LOOPBACK, makeContext, runCli, startGateway } from './lib/gateway.mjs';
import { allSpans } from './lib/otlp.mjs';

const ACTIONS = [
    { key: 'deployment.environment', value: 'prod', action: 'insert' },
    { key: 'existing', value: 'not-inserted', action: 'insert' },
    { key: 'existing', value: 7, action: 'update' },
    { key: 'missing', value: true, action: 'update' },
    { key: 'copied', from_attribute: 'user.email', action: 'upsert' },
    { key: 'user.email', action: 'hash' },
    { key: 'password', action: 'delete' },
    { pattern: '^secret\\.', action: 'delete' },
    { key: 'http.url', pattern: '^(?P<scheme>[a-z]+)://(?P<host>[^/]+)', action: 'extract' },
    { key: 'http.status_code', action: 'convert', converted_type: 'int' },
    { key: 'ratio', action: 'convert', converted_type: 'string' },
];

function config(ctx) {
    return {
        receivers: { otlp: { protocols: { grpc: { endpoint: `${LOOPBACK}:${ctx.ports.grpc}` } } } },
        processors: {
            attributes: {
                actions: ACTIONS,
                exclude: { match_type: 'strict', span_names: ['health'] },
            },
            'attributes/only_clients': {
                include: { match_type: 'regexp', services: ['^shop-'], span_kinds: ['SPAN_KIND_CLIENT'] },
                actions: [{ key: 'tier', value: 'client', action: 'upsert' }],
            },
            resource: {
                attributes: [
                    { key: 'cloud.region', value: 'westeurope', action: 'upsert' },
                    { key: 'host.ip', action: 'delete' },
                ],
            },
        },
        exporters: { file: { path: ctx.sinkPath } },
        extensions: { health_check: { endpoint: `${LOOPBACK}:${ctx.ports.health}` } },
        service: {
            extensions: ['health_check'],
            telemetry: { metrics: { address: `${LOOPBACK}:${ctx.ports.metrics}` } },
            pipelines: {
                traces: {
                    receivers: ['otlp'],
                    processors: ['attributes', 'attributes/only_clients', 'resource'],
                    exporters: ['file'],
                },
            },
        },
    };
}

const attrs = (span) => Object.fromEntries((span.attributes ?? []).map((kv) => [kv.key, kv.value]));

test('attribute actions, include/exclude and resource actions on real SDK spans', async (t) => {
    const ctx = await makeContext();
    const gw = await startGateway(t, { ctx, config: () => config(ctx) });
    const provider = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'shop-api', 'host.ip': '10.0.0.7' }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: new GrpcExporter({ url: gw.grpcUrl }) })],
    });
    const tracer = provider.getTracer('attr-test');
    tracer.startSpan('checkout', {
        kind: SpanKind.CLIENT,
        attributes: {
            existing: 'old', 'user.email': 'bob@example.com', password: 'hunter2',
            'secret.token': 'abc', 'secret.key': 'def', 'secretive': 'kept',
            'http.url': 'https://api.example.com/v1/pay', 'http.status_code': '502', ratio: 0.25,
        },
    }).end();
    tracer.startSpan('health', { kind: SpanKind.SERVER, attributes: { password: 'stays' } }).end();
    await provider.forceFlush();
    await provider.shutdown();

    const spans = await gw.waitForSink((recs) => {
        const s = allSpans(recs).map((x) => x.span);
        return s.length >= 2 ? s : null;
    });
    const checkout = attrs(spans.find((s) => s.name === 'checkout'));
    assert.deepEqual(checkout['deployment.environment'], { stringValue: 'prod' });
    assert.equal(checkout.existing.intValue, '7', 'update with an int value');
    assert.equal(checkout.missing, undefined, 'update does not insert');
    assert.deepEqual(checkout.copied, { stringValue: 'bob@example.com' }, 'upsert from_attribute copies before the hash');
    assert.deepEqual(checkout['user.email'], {
        stringValue: createHash('sha256').update('bob@example.com').digest('hex'),
    });
    assert.equal(checkout.password, undefined);
    assert.equal(checkout['secret.token'], undefined);
    assert.equal(checkout['secret.key'], undefined);
    assert.deepEqual(checkout.secretive, { stringValue: 'kept' }, 'pattern ^secret\\. does not match "secretive"');
    assert.deepEqual(checkout.scheme, { stringValue: 'https' });
    assert.deepEqual(checkout.host, { stringValue: 'api.example.com' });
    assert.equal(checkout['http.status_code'].intValue, '502');
    assert.deepEqual(checkout.ratio, { stringValue: '0.25' });
    assert.deepEqual(checkout.tier, { stringValue: 'client' }, 'include: service ^shop- and kind CLIENT');

    const health = attrs(spans.find((s) => s.name === 'health'));
    assert.deepEqual(health.password, { stringValue: 'stays' }, 'excluded by span name');
    assert.equal(health['deployment.environment'], undefined);
    assert.equal(health.tier, undefined, 'SERVER span not included');

    const recs = gw.readSink();
    for (const rec of recs) {
        for (const rs of rec.resourceSpans ?? []) {
            const ra = attrs(rs.resource);
            assert.deepEqual(ra['cloud.region'], { stringValue: 'westeurope' });
            assert.equal(ra['host.ip'], undefined);
            assert.deepEqual(ra['service.name'], { stringValue: 'shop-api' });
        }
    }
    await gw.stop();
});

test('attribute action config errors name the YAML path', async () => {
    const ctx = await makeContext();
    const cases = [
        [[{ key: 'a', action: 'rename' }], /processors\.attributes\.actions\[0\]\.action: unsupported action "rename"/],
        [[{ key: 'a', action: 'insert' }], /processors\.attributes\.actions\[0\]: exactly one of value and from_attribute/],
        [[{ key: 'a', action: 'extract', pattern: '(x)' }], /actions\[0\]\.pattern: pattern contains an unnamed group/],
        [[{ key: 'a', action: 'delete', pattern: '(' }], /actions\[0\]\.pattern: invalid pattern/],
        [[{ key: 'a', action: 'convert', converted_type: 'float' }], /actions\[0\]\.converted_type: converted_type "float"/],
        [[{ key: 'a', action: 'upsert', from_context: 'metadata.x' }], /actions\[0\]\.from_context: from_context is not supported/],
    ];
    for (const [actions, re] of cases) {
        const cfg = config(ctx);
        cfg.processors.attributes.actions = actions;
        const file = join(ctx.dir, 'attr.yaml');
        writeFileSync(file, JSON.stringify(cfg));
        const r = runCli(['validate', '--config', file]);
        assert.notEqual(r.status, 0, `accepted: ${JSON.stringify(actions)}`);
        assert.match(r.stderr, re);
    }
    const cfg = config(ctx);
    cfg.processors.attributes.include = { match_type: 'strict', metric_names: ['x'] };
    const file = join(ctx.dir, 'attr2.yaml');
    writeFileSync(file, JSON.stringify(cfg));
    const r = runCli(['validate', '--config', file]);
    assert.match(r.stderr, /processors\.attributes\.include\.metric_names: metric_names does not apply to traces/);
});
