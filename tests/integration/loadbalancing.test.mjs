// tests/integration/loadbalancing.test.mjs — the `loadbalancing` exporter (first tier of a
// two-tier gateway): the real llmgate binary in front of three scripted OTLP/gRPC backends
// (lib/fake_backend.mjs). Checks that every acknowledged span arrives exactly once, that
// all spans of a trace meet at one backend even when they come in different requests, that
// the backend chosen is the one the Collector's ring picks (an independent implementation
// of its algorithm below, from REFERENCE §4), that a backend that is down delays only its
// own share, and that bad configs are refused with the YAML path.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { LOOPBACK, makeContext, promValue, runCli, startGateway } from './lib/gateway.mjs';
import { FakeBackend } from './lib/fake_backend.mjs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The Collector's ring: 36000 positions, 100 points per endpoint (endpoints sorted, a taken
 *  position stays with the first), the key's position is crc32 % 36000, the owner is the
 *  first point at or after it. */
function collectorRing(endpoints) {
    const taken = new Map();
    for (const ep of [...endpoints].sort()) {
        for (let i = 0; i < 100; i++) {
            const pos = crc32(Buffer.concat([Buffer.from(ep), Buffer.from([i & 0xff])])) % 36000;
            if (!taken.has(pos)) taken.set(pos, ep);
        }
    }
    const points = [...taken.entries()].sort((a, b) => a[0] - b[0]);
    return (keyBytes) => {
        const pos = crc32(keyBytes) % 36000;
        const hit = points.find(([p]) => p >= pos) ?? points[0];
        return hit[1];
    };
}

function lbConfig(ctx, resolver, extra = {}) {
    return {
        receivers: { otlp: { protocols: { http: { endpoint: `${LOOPBACK}:${ctx.ports.http}` } } } },
        exporters: {
            loadbalancing: {
                routing_key: extra.routingKey ?? 'traceID',
                protocol: {
                    otlp: {
                        tls: { insecure: true },
                        timeout: '2s',
                        retry_on_failure: { initial_interval: '100ms', max_interval: '500ms', max_elapsed_time: '0' },
                        sending_queue: { num_consumers: 2, queue_size: 100000, sizer: 'items' },
                    },
                },
                resolver,
            },
        },
        extensions: { health_check: { endpoint: `${LOOPBACK}:${ctx.ports.health}` } },
        service: {
            extensions: ['health_check'],
            telemetry: { metrics: { address: `${LOOPBACK}:${ctx.ports.metrics}` } },
            pipelines: { traces: { receivers: ['otlp'], exporters: ['loadbalancing'] } },
        },
    };
}

/** `ntraces` traces of `perTrace` spans, shuffled over requests of `perRequest` spans, so
 *  most traces arrive in several requests. Returns {requests: [json], traceOf: Map}. */
function makeWorkload(ntraces, perTrace, perRequest) {
    const spans = [];
    const traceOf = new Map();
    for (let t = 0; t < ntraces; t++) {
        const traceId = randomBytes(16).toString('hex');
        for (let s = 0; s < perTrace; s++) {
            const spanId = randomBytes(8).toString('hex');
            traceOf.set(spanId, traceId);
            spans.push({ traceId, spanId, service: `svc-${t % 7}` });
        }
    }
    for (let i = spans.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [spans[i], spans[j]] = [spans[j], spans[i]];
    }
    const now = String(BigInt(Date.now()) * 1000000n);
    const requests = [];
    for (let i = 0; i < spans.length; i += perRequest) {
        const chunk = spans.slice(i, i + perRequest);
        const bySvc = new Map();
        for (const s of chunk) {
            if (!bySvc.has(s.service)) bySvc.set(s.service, []);
            bySvc.get(s.service).push(s);
        }
        requests.push({
            ids: chunk.map((s) => s.spanId),
            body: JSON.stringify({
                resourceSpans: [...bySvc.entries()].map(([svc, list]) => ({
                    resource: { attributes: [{ key: 'service.name', value: { stringValue: svc } }] },
                    scopeSpans: [{
                        scope: { name: 'lb-test' },
                        spans: list.map((s) => ({
                            traceId: s.traceId, spanId: s.spanId, name: 'op', kind: 2,
                            startTimeUnixNano: now, endTimeUnixNano: now,
                        })),
                    }],
                })),
            }),
        });
    }
    const serviceOf = new Map(spans.map((s) => [s.spanId, s.service]));
    return { requests, traceOf, serviceOf };
}

async function post(gw, body) {
    const r = await fetch(`${gw.httpUrl}/v1/traces`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body,
    });
    await r.arrayBuffer();
    return r.status;
}

async function startBackends(n) {
    const list = [];
    for (let i = 0; i < n; i++) {
        const b = new FakeBackend('grpc');
        await b.start();
        list.push(b);
    }
    return list;
}

async function waitDelivered(backends, want, timeoutMs = 60000) {
    const until = Date.now() + timeoutMs;
    for (;;) {
        const got = backends.reduce((a, b) => a + b.uniqueIds().size, 0);
        if (got >= want) return;
        if (Date.now() > until) throw new Error(`delivered ${got} of ${want} spans`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

test('traceID routing: whole traces per backend, the Collector ring, nothing lost or doubled', async (t) => {
    const backends = await startBackends(3);
    t.after(() => Promise.all(backends.map((b) => b.stop())));
    const ctx = await makeContext();
    const hostnames = backends.map((b) => `${LOOPBACK}:${b.port}`);
    const gw = await startGateway(t, { ctx, config: () => lbConfig(ctx, { static: { hostnames } }) });

    const { requests, traceOf } = makeWorkload(400, 5, 50);
    for (const r of requests) assert.equal(await post(gw, r.body), 200);
    await waitDelivered(backends, traceOf.size);

    const ring = collectorRing(hostnames);
    const backendOfTrace = new Map();
    let total = 0;
    for (const [i, b] of backends.entries()) {
        assert.equal(b.duplicates(), 0, 'no span delivered twice');
        total += b.uniqueIds().size;
        for (const id of b.uniqueIds()) {
            const trace = traceOf.get(id);
            assert.ok(trace, `unknown span ${id}`);
            const seen = backendOfTrace.get(trace);
            assert.ok(seen === undefined || seen === i, `trace ${trace} split over backends ${seen} and ${i}`);
            backendOfTrace.set(trace, i);
            assert.equal(hostnames[i], ring(Buffer.from(trace, 'hex')), `trace ${trace} not where the Collector ring puts it`);
        }
        // 400 traces over 3 backends: each gets a real share
        assert.ok(b.uniqueIds().size > 100, `backend ${i} got only ${b.uniqueIds().size} spans`);
    }
    assert.equal(total, traceOf.size);
    const metrics = await gw.selfMetrics();
    assert.equal(promValue(metrics, 'otelcol_loadbalancer_num_backends', { exporter: 'loadbalancing' }), 3);
    await gw.stop();
});

test('a backend that is down delays only its share; it all arrives once it is back', async (t) => {
    const backends = await startBackends(2);
    t.after(() => Promise.all(backends.map((b) => b.stop())));
    const ctx = await makeContext();
    const hostnames = backends.map((b) => `${LOOPBACK}:${b.port}`);
    const gw = await startGateway(t, { ctx, config: () => lbConfig(ctx, { static: { hostnames } }) });
    await backends[1].stop();

    const { requests, traceOf } = makeWorkload(100, 3, 30);
    for (const r of requests) assert.equal(await post(gw, r.body), 200);
    const ring = collectorRing(hostnames);
    const forFirst = [...traceOf.values()].filter((tr) => ring(Buffer.from(tr, 'hex')) === hostnames[0]).length;
    await waitDelivered([backends[0]], forFirst);
    assert.equal(backends[1].uniqueIds().size, 0);
    await backends[1].start();
    await waitDelivered(backends, traceOf.size);
    assert.equal(backends[0].duplicates() + backends[1].duplicates(), 0);
    await gw.stop();
});

test('service routing and the dns resolver', async (t) => {
    const backends = await startBackends(1);
    t.after(() => Promise.all(backends.map((b) => b.stop())));
    const ctx = await makeContext();
    // a numeric "hostname" exercises the resolver thread without any real DNS
    const gw = await startGateway(t, {
        ctx,
        config: () => lbConfig(ctx, { dns: { hostname: LOOPBACK, port: String(backends[0].port), interval: '200ms' } },
            { routingKey: 'service' }),
    });
    const { requests, traceOf } = makeWorkload(50, 2, 20);
    for (const r of requests) assert.equal(await post(gw, r.body), 200);
    await waitDelivered(backends, traceOf.size);
    const metrics = await gw.selfMetrics();
    assert.ok(promValue(metrics, 'otelcol_loadbalancer_num_resolutions',
        { exporter: 'loadbalancing', resolver: 'dns', success: 'true' }) >= 1);
    assert.equal(promValue(metrics, 'otelcol_loadbalancer_num_backends', { exporter: 'loadbalancing' }), 1);
    await gw.stop();
});

test('bad loadbalancing configs are refused with the YAML path', async () => {
    const ctx = await makeContext();
    const cases = [
        [{ k8s: { service: 'gw.ns' } }, /exporters\.loadbalancing\.resolver\.k8s: the k8s resolver is not supported/],
        [{}, /exactly one of resolver\.static and resolver\.dns/],
        [{ static: { hostnames: [] } }, /resolver\.static: static\.hostnames is empty/],
    ];
    for (const [resolver, re] of cases) {
        const file = join(ctx.dir, 'lb.yaml');
        writeFileSync(file, JSON.stringify(lbConfig(ctx, resolver)));
        const r = runCli(['validate', '--config', file]);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, re);
    }
    const bad = lbConfig(ctx, { static: { hostnames: ['a:4317'] } });
    bad.exporters.loadbalancing.protocol.otlp.compresion = 'gzip';
    const file = join(ctx.dir, 'lb2.yaml');
    writeFileSync(file, JSON.stringify(bad));
    const r = runCli(['validate', '--config', file]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /exporters\.loadbalancing\.protocol\.otlp\.compresion/);
});
