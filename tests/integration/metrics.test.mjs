// tests/integration/metrics.test.mjs — metrics from the real OTel JS SDK through the real
// gateway, over OTLP/gRPC, OTLP/HTTP protobuf (with delta temporality) and OTLP/HTTP JSON.
// Counter, up-down counter, histogram and observable gauge must arrive with their names,
// units, descriptions, values, bucket counts, temporality, monotonicity and exact times.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValueType } from '@opentelemetry/api';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPMetricExporter as GrpcExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as ProtoExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import {
    OTLPMetricExporter as JsonExporter, AggregationTemporalityPreference,
} from '@opentelemetry/exporter-metrics-otlp-http';

import { startGateway } from './lib/gateway.mjs';
import {
    allMetrics, attrMap, keyValues, assertAttributes, recording, assertExportsSucceeded, hrToNanos,
    int64,
} from './lib/otlp.mjs';

const DELTA = 1;      // OTLP AggregationTemporality
const CUMULATIVE = 2;

const EXPORTERS = [
    { name: 'otlp-grpc', temporality: 'cumulative', make: (gw) => new GrpcExporter({ url: gw.grpcUrl }) },
    { name: 'otlp-http-protobuf', temporality: 'delta',
        make: (gw) => new ProtoExporter({ url: `${gw.httpUrl}/v1/metrics`,
            temporalityPreference: AggregationTemporalityPreference.DELTA }) },
    { name: 'otlp-http-json', temporality: 'cumulative',
        make: (gw) => new JsonExporter({ url: `${gw.httpUrl}/v1/metrics` }) },
];

const SCOPE = { name: 'llmgate.it.metrics', version: '1.0.0', schemaUrl: 'https://opentelemetry.io/schemas/1.26.0' };

/** Attribute list -> canonical text (key order does not matter). */
function canonical(list) {
    return JSON.stringify(Object.entries(attrMap(list)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Finds the data point whose attributes equal `attrs` exactly. */
function pointWith(points, attrs, where) {
    const want = canonical(keyValues(attrs));
    const found = points.filter((p) => canonical(p.attributes) === want);
    assert.equal(found.length, 1, `${where}: one data point with attributes ${JSON.stringify(attrs)}; ` +
        `have ${JSON.stringify(points)}`);
    return found[0];
}

/** The SDK's own view of a data point (from what it handed the exporter), for exact times. */
function sdkPoint(rec, name, attrs) {
    for (const rm of rec.batches) {
        for (const sm of rm.scopeMetrics) {
            for (const m of sm.metrics) {
                if (m.descriptor.name !== name) continue;
                for (const dp of m.dataPoints) {
                    if (JSON.stringify(dp.attributes) === JSON.stringify(attrs)) return dp;
                }
            }
        }
    }
    throw new Error(`SDK exported no point for ${name} ${JSON.stringify(attrs)}`);
}

function assertTimes(point, sdk, where) {
    assert.equal(point.startTimeUnixNano, hrToNanos(sdk.startTime), `${where}: startTimeUnixNano`);
    assert.equal(point.timeUnixNano, hrToNanos(sdk.endTime), `${where}: timeUnixNano`);
}

test('metrics from the OTel JS SDK arrive intact over every OTLP transport', async (t) => {
    const gw = await startGateway(t);

    for (const ex of EXPORTERS) {
        await t.test(ex.name, async () => {
            const service = `it-metrics-${ex.name}`;
            const rec = recording(ex.make(gw));
            const reader = new PeriodicExportingMetricReader({ exporter: rec.exporter, exportIntervalMillis: 3600000 });
            const mp = new MeterProvider({
                resource: resourceFromAttributes({ 'service.name': service, 'host.name': 'it-host' }),
                readers: [reader],
            });
            try {
                const meter = mp.getMeter(SCOPE.name, SCOPE.version, { schemaUrl: SCOPE.schemaUrl });
                const counter = meter.createCounter('it.requests', {
                    description: 'Requests handled', unit: '{request}', valueType: ValueType.INT,
                });
                counter.add(5, { route: '/a' });
                counter.add(7, { route: '/a' });
                counter.add(1, { route: '/b', ok: true });

                const updown = meter.createUpDownCounter('it.queue.depth', {
                    description: 'Items waiting', unit: '{item}',
                });
                updown.add(10.5, { queue: 'q1' });
                updown.add(-3.25, { queue: 'q1' });

                const hist = meter.createHistogram('it.latency', {
                    description: 'Call latency — “quoted” ✓', unit: 'ms',
                    advice: { explicitBucketBoundaries: [1, 10, 100] },
                });
                for (const v of [0.5, 5, 50, 500]) hist.record(v, { model: 'gpt-4o' });

                const gauge = meter.createObservableGauge('it.temperature', {
                    description: 'Sensor temperature', unit: 'Cel',
                });
                gauge.addCallback((r) => {
                    r.observe(21.5, { sensor: 's1' });
                    r.observe(-3.75, { sensor: 's2' });
                });

                await mp.forceFlush();
                await assertExportsSucceeded(rec, ex.name);

                const names = ['it.requests', 'it.queue.depth', 'it.latency', 'it.temperature'];
                const got = await gw.waitForSink((records) => {
                    const mine = allMetrics(records).filter((e) => e.scope.name === SCOPE.name &&
                        attrMap(e.resource.attributes)['service.name']?.stringValue === service);
                    const first = {};
                    for (const e of mine) first[e.metric.name] ??= e;
                    return names.every((n) => first[n]) ? first : null;
                }, { what: `${ex.name}: the four metrics` });

                for (const n of names) {
                    const e = got[n];
                    assertAttributes(e.resource.attributes, { 'service.name': service, 'host.name': 'it-host' },
                        `${n}: resource`);
                    assert.equal(e.scope.version, SCOPE.version, `${n}: scope.version`);
                    assert.equal(e.scopeSchemaUrl, SCOPE.schemaUrl, `${n}: scopeMetrics.schemaUrl`);
                }
                const delta = ex.temporality === 'delta';

                // Counter: monotonic Sum of ints.
                const c = got['it.requests'].metric;
                assert.equal(c.description, 'Requests handled');
                assert.equal(c.unit, '{request}');
                assert.ok(c.sum, `it.requests must be a sum: ${JSON.stringify(c)}`);
                assert.equal(c.sum.isMonotonic, true, 'it.requests isMonotonic');
                assert.equal(c.sum.aggregationTemporality, delta ? DELTA : CUMULATIVE, 'it.requests temporality');
                assert.equal(c.sum.dataPoints.length, 2, 'it.requests point count');
                const ca = pointWith(c.sum.dataPoints, { route: '/a' }, 'it.requests');
                assert.equal(ca.asInt, '12', 'it.requests{route=/a} asInt (int64 as a decimal string)');
                assert.equal(ca.asDouble, undefined);
                const cb = pointWith(c.sum.dataPoints, { route: '/b', ok: true }, 'it.requests');
                assert.equal(cb.asInt, '1');
                assertTimes(ca, sdkPoint(rec, 'it.requests', { route: '/a' }), 'it.requests{route=/a}');

                // Up-down counter: non-monotonic Sum, cumulative even under a delta preference.
                const u = got['it.queue.depth'].metric;
                assert.equal(u.description, 'Items waiting');
                assert.equal(u.unit, '{item}');
                assert.ok(u.sum, 'it.queue.depth must be a sum');
                assert.ok(!u.sum.isMonotonic, 'it.queue.depth is not monotonic');
                assert.equal(u.sum.aggregationTemporality, CUMULATIVE, 'it.queue.depth temporality');
                const up = pointWith(u.sum.dataPoints, { queue: 'q1' }, 'it.queue.depth');
                assert.equal(up.asDouble, 7.25);
                assertTimes(up, sdkPoint(rec, 'it.queue.depth', { queue: 'q1' }), 'it.queue.depth');

                // Histogram with explicit buckets.
                const h = got['it.latency'].metric;
                assert.equal(h.description, 'Call latency — “quoted” ✓');
                assert.equal(h.unit, 'ms');
                assert.ok(h.histogram, 'it.latency must be a histogram');
                assert.equal(h.histogram.aggregationTemporality, delta ? DELTA : CUMULATIVE, 'it.latency temporality');
                assert.equal(h.histogram.dataPoints.length, 1);
                const hp = pointWith(h.histogram.dataPoints, { model: 'gpt-4o' }, 'it.latency');
                assert.equal(int64(hp.count, 'histogram count'), 4n);
                assert.equal(hp.sum, 555.5);
                assert.equal(hp.min, 0.5);
                assert.equal(hp.max, 500);
                assert.deepEqual(hp.explicitBounds, [1, 10, 100]);
                assert.deepEqual(hp.bucketCounts, ['1', '1', '1', '1'], 'bucketCounts (uint64 as strings)');
                assertTimes(hp, sdkPoint(rec, 'it.latency', { model: 'gpt-4o' }), 'it.latency');

                // Observable gauge.
                const g = got['it.temperature'].metric;
                assert.equal(g.description, 'Sensor temperature');
                assert.equal(g.unit, 'Cel');
                assert.ok(g.gauge, 'it.temperature must be a gauge');
                assert.equal(g.gauge.dataPoints.length, 2);
                assert.equal(pointWith(g.gauge.dataPoints, { sensor: 's1' }, 'gauge').asDouble, 21.5);
                const g2 = pointWith(g.gauge.dataPoints, { sensor: 's2' }, 'gauge');
                assert.equal(g2.asDouble, -3.75);
                assertTimes(g2, sdkPoint(rec, 'it.temperature', { sensor: 's2' }), 'it.temperature');
                for (const m of [c, u, h, g]) {
                    const kinds = ['sum', 'gauge', 'histogram', 'exponentialHistogram', 'summary'].filter((k) => m[k]);
                    assert.equal(kinds.length, 1, `${m.name}: exactly one data kind, got ${kinds}`);
                }
            } finally {
                await mp.shutdown();
            }
        });
    }

    await t.test('SIGTERM: graceful exit 0', async () => {
        const r = await gw.stop();
        assert.deepEqual(r, { code: 0, signal: null }, gw.describe());
    });
});
