// tests/integration/logs.test.mjs — log records from the real OTel JS SDK through the real
// gateway, over OTLP/gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON. Severity, bodies of every
// AnyValue shape (string, map -> kvlistValue, bytes -> bytesValue, array), attributes,
// event name, timestamps, trace context, resource and scope must arrive intact.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { trace, ROOT_CONTEXT, SeverityNumber, TraceFlags } from '@opentelemetry/api';
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonExporter } from '@opentelemetry/exporter-logs-otlp-http';

import { startGateway } from './lib/gateway.mjs';
import {
    allLogs, attrMap, anyValue, assertAttributes, assertAttributesInclude, recording,
    assertExportsSucceeded, hrToNanos,
} from './lib/otlp.mjs';

const EXPORTERS = [
    { name: 'otlp-grpc', make: (gw) => new GrpcExporter({ url: gw.grpcUrl }) },
    { name: 'otlp-http-protobuf', make: (gw) => new ProtoExporter({ url: `${gw.httpUrl}/v1/logs` }) },
    { name: 'otlp-http-json', make: (gw) => new JsonExporter({ url: `${gw.httpUrl}/v1/logs` }) },
];

const SCOPE = {
    name: 'llmgate.it.logs', version: '0.9.0', schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
    attributes: { 'scope.team': 'platform', 'scope.level': 2 },
};
const RESOURCE_SCHEMA = 'https://opentelemetry.io/schemas/1.25.0';

const ATTRS = {
    'str': 'value "quoted" \\ \n ✓ 🚀',
    'int': -42,
    'int.big': 3000000000,
    'double': 1.25e-7,
    'bool': false,
    'arr.str': ['x', 'y'],
    'arr.int': [1, 2, 3],
    'map': { nested: 'yes', depth: 1, deeper: { flag: true } },
    'bytes': new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
};

/** The records each exporter sends: [{id, record (SDK input), expect}] (id is an attribute). */
function scenario(tag, spanCtx) {
    const T = (ns) => [1700000500, ns];
    const rows = [
        { id: 'string-body', record: {
            severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: `disk almost full (${tag})`,
            attributes: ATTRS, timestamp: T(111111111), observedTimestamp: T(222222222),
            eventName: 'app.disk.warning', context: trace.setSpanContext(ROOT_CONTEXT, spanCtx),
        }, traced: true },
        { id: 'map-body', record: {
            severityNumber: SeverityNumber.INFO, severityText: 'INFO',
            body: { msg: 'structured', n: 3, d: 2.5, ok: true, nested: { list: [1, 'two', false] } },
            timestamp: T(333333333),
        } },
        { id: 'bytes-body', record: {
            severityNumber: SeverityNumber.DEBUG, body: new Uint8Array([0, 1, 2, 253, 254, 255]),
            timestamp: T(444444444),
        } },
        { id: 'array-body', record: {
            severityNumber: SeverityNumber.TRACE2, body: ['a', 1, false, 1.5], timestamp: T(555555555),
        } },
        { id: 'empty-string-body', record: {
            severityNumber: SeverityNumber.FATAL4, severityText: 'FATAL', body: '', timestamp: T(666666666),
        } },
        { id: 'exception', record: {
            severityNumber: SeverityNumber.ERROR, severityText: 'ERROR', body: 'request failed',
            exception: new TypeError('bad input: "x"'), timestamp: T(777777777),
        } },
    ];
    for (const r of rows) r.record.attributes = { ...(r.record.attributes ?? {}), 'it.id': r.id, 'it.tag': tag };
    return rows;
}

test('log records from the OTel JS SDK arrive intact over every OTLP transport', async (t) => {
    const gw = await startGateway(t);

    for (const ex of EXPORTERS) {
        await t.test(ex.name, async () => {
            const service = `it-logs-${ex.name}`;
            const rec = recording(ex.make(gw));
            const lp = new LoggerProvider({
                resource: resourceFromAttributes({ 'service.name': service, 'k8s.pod.name': 'pod-1' },
                    { schemaUrl: RESOURCE_SCHEMA }),
                processors: [new BatchLogRecordProcessor({ exporter: rec.exporter, scheduledDelayMillis: 60000 })],
            });
            const spanCtx = {
                traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'),
                traceFlags: TraceFlags.SAMPLED, isRemote: false,
            };
            const rows = scenario(ex.name, spanCtx);
            try {
                const logger = lp.getLogger(SCOPE.name, SCOPE.version,
                    { schemaUrl: SCOPE.schemaUrl, attributes: SCOPE.attributes });
                for (const r of rows) logger.emit(r.record);
                await lp.forceFlush();
                await assertExportsSucceeded(rec, ex.name);
            } finally {
                await lp.shutdown();
            }

            const got = await gw.waitForSink((records) => {
                const mine = allLogs(records).filter((e) =>
                    attrMap(e.log.attributes)['it.tag']?.stringValue === ex.name);
                return mine.length >= rows.length ? mine : null;
            }, { what: `${ex.name}: ${rows.length} log records` });
            assert.equal(got.length, rows.length, `${ex.name}: record count (duplicates?)`);

            for (const r of rows) {
                const where = `${ex.name} record ${r.id}`;
                const matches = got.filter((e) => attrMap(e.log.attributes)['it.id']?.stringValue === r.id);
                assert.equal(matches.length, 1, `${where}: exactly one`);
                const { log, resource, resourceSchemaUrl, scope, scopeSchemaUrl } = matches[0];

                assertAttributes(resource.attributes, { 'service.name': service, 'k8s.pod.name': 'pod-1' },
                    `${where}: resource`);
                assert.equal(resourceSchemaUrl, RESOURCE_SCHEMA, `${where}: resourceLogs.schemaUrl`);
                assert.equal(scope.name, SCOPE.name, `${where}: scope.name`);
                assert.equal(scope.version, SCOPE.version, `${where}: scope.version`);
                assertAttributes(scope.attributes, SCOPE.attributes, `${where}: scope.attributes`);
                assert.equal(scopeSchemaUrl, SCOPE.schemaUrl, `${where}: scopeLogs.schemaUrl`);

                assert.equal(log.severityNumber, r.record.severityNumber, `${where}: severityNumber (integer)`);
                assert.equal(log.severityText ?? '', r.record.severityText ?? '', `${where}: severityText`);
                assert.equal(log.timeUnixNano, hrToNanos(r.record.timestamp), `${where}: timeUnixNano`);
                if (r.record.observedTimestamp) {
                    assert.equal(log.observedTimeUnixNano, hrToNanos(r.record.observedTimestamp),
                        `${where}: observedTimeUnixNano`);
                } else {
                    assert.match(log.observedTimeUnixNano ?? '', /^\d{19}$/, `${where}: observedTimeUnixNano`);
                }
                assert.equal(log.eventName ?? '', r.record.eventName ?? '', `${where}: eventName`);
                assert.deepEqual(log.body, anyValue(r.record.body), `${where}: body`);

                if (r.id === 'exception') {
                    assertAttributesInclude(log.attributes, {
                        ...r.record.attributes,
                        'exception.type': 'TypeError', 'exception.message': 'bad input: "x"',
                    }, `${where}: attributes`);
                    const st = attrMap(log.attributes)['exception.stacktrace'];
                    assert.match(st?.stringValue ?? '', /TypeError: bad input/, `${where}: exception.stacktrace`);
                } else {
                    assertAttributes(log.attributes, r.record.attributes, `${where}: attributes`);
                }

                if (r.traced) {
                    assert.equal(log.traceId, spanCtx.traceId, `${where}: traceId`);
                    assert.equal(log.spanId, spanCtx.spanId, `${where}: spanId`);
                    assert.equal(log.flags, TraceFlags.SAMPLED, `${where}: flags`);
                } else {
                    assert.ok(!log.traceId, `${where}: no traceId expected, got ${log.traceId}`);
                    assert.ok(!log.spanId, `${where}: no spanId expected, got ${log.spanId}`);
                }
                assert.ok(!log.droppedAttributesCount, `${where}: droppedAttributesCount`);
            }
        });
    }

    await t.test('SIGTERM: graceful exit 0', async () => {
        const r = await gw.stop();
        assert.deepEqual(r, { code: 0, signal: null }, gw.describe());
    });
});
