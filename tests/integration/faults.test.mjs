// tests/integration/faults.test.mjs — nothing lost when the backend fails or the gateway
// dies: the real llmgate binary with an `otlp` (gRPC) or `otlp_http` exporter in front of a
// scripted fake backend (lib/fake_backend.mjs). Every test records exactly which span IDs
// the gateway acknowledged (HTTP 200 to the sender) and checks that each of them reached
// the backend: exactly once where nothing forces a resend, at least once after a SIGKILL
// (duplicates are then counted and reported, never losses).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOOPBACK, makeContext, promValue, startGateway } from './lib/gateway.mjs';
import { FakeBackend, retryInfoStatusDetails, sendSpans } from './lib/fake_backend.mjs';

/** The outage length for the one long test; the others are kept short. */
const LONG_OUTAGE_MS = 30000;
const SHORT_OUTAGE_MS = 3000;
const GRPC_UNAVAILABLE = 14;
const GRPC_RESOURCE_EXHAUSTED = 8;

/**
 * receivers: otlp (HTTP + gRPC) -> no batch processor (so a 200 means "in the exporter's
 * queue") -> the exporter under test. opts.storage: use a file_storage persistent queue.
 */
function faultConfig(ctx, backend, opts = {}) {
    const type = backend.kind === 'grpc' ? 'otlp' : 'otlp_http';
    const exporter = {
        endpoint: backend.endpoint,
        timeout: '2s',
        retry_on_failure: { initial_interval: '100ms', max_interval: '1s', max_elapsed_time: '0' },
        sending_queue: {
            num_consumers: opts.consumers ?? 2,
            queue_size: 100000,
            sizer: 'items',
            ...(opts.storage ? { storage: 'file_storage' } : {}),
        },
    };
    const extensions = { health_check: { endpoint: `${LOOPBACK}:${ctx.ports.health}` } };
    if (opts.storage) {
        extensions.file_storage = { directory: join(ctx.dir, 'queue'), create_directory: true };
    }
    return {
        receivers: {
            otlp: {
                protocols: {
                    grpc: { endpoint: `${LOOPBACK}:${ctx.ports.grpc}` },
                    http: { endpoint: `${LOOPBACK}:${ctx.ports.http}` },
                },
            },
        },
        exporters: { [type]: exporter },
        extensions,
        service: {
            extensions: Object.keys(extensions),
            telemetry: { metrics: { address: `${LOOPBACK}:${ctx.ports.metrics}` } },
            pipelines: { traces: { receivers: ['otlp'], exporters: [type] } },
        },
    };
}

async function waitUntil(check, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (check()) return;
        await sleep(50);
    }
    assert.fail(`${what()} (waited ${timeoutMs} ms)`);
}

/** Every acked ID arrived; with exactlyOnce, nothing else and no duplicates either. */
function assertDelivered(backend, acked, { exactlyOnce }) {
    const got = backend.uniqueIds();
    const missing = acked.filter((id) => !got.has(id));
    assert.deepEqual(missing, [], `${missing.length} acknowledged span(s) never reached the backend`);
    if (exactlyOnce) {
        assert.equal(got.size, acked.length, 'the backend got spans nobody acknowledged');
        assert.equal(backend.totalOkSpans, acked.length, `duplicates: ${backend.duplicates()}`);
    }
}

async function waitDelivered(gw, backend, acked, timeoutMs) {
    await waitUntil(() => {
        const got = backend.uniqueIds();
        return acked.every((id) => got.has(id));
    }, timeoutMs, () => {
        const got = backend.uniqueIds();
        return `${acked.filter((id) => !got.has(id)).length} of ${acked.length} acknowledged spans missing at the ` +
            `backend (${backend.requests} requests, ${backend.okRequests} OK)\n${gw.describe()}`;
    });
}

async function exporterCounters(gw, id) {
    const text = await gw.selfMetrics();
    const v = (name) => promValue(text, name, { exporter: id }) ?? 0;
    return {
        sent: v('otelcol_exporter_sent_spans'),
        failed: v('otelcol_exporter_send_failed_spans'),
        enqueueFailed: v('otelcol_exporter_enqueue_failed_spans'),
        redelivered: v('otelcol_exporter_persistent_queue_redelivered_spans'),
    };
}

/** Sends, checks every request was acknowledged, returns the acked IDs. */
async function sendAll(gw, requests, perRequest) {
    const r = await sendSpans(gw.httpUrl, { requests, perRequest });
    assert.equal(r.refused + r.errors, 0, `sender saw ${r.refused} refusals and ${r.errors} errors\n${gw.describe()}`);
    assert.equal(r.acked.length, requests * perRequest);
    return r.acked;
}

async function expectExactCounters(gw, type, n) {
    // sent is counted just after the backend answered: allow it a moment to catch up
    let c;
    for (let i = 0; i < 100; i++) {
        c = await exporterCounters(gw, type);
        if (c.sent >= n) break;
        await sleep(50);
    }
    assert.equal(c.sent, n, 'otelcol_exporter_sent_spans');
    assert.equal(c.failed, 0, 'otelcol_exporter_send_failed_spans');
    assert.equal(c.enqueueFailed, 0, 'otelcol_exporter_enqueue_failed_spans');
}

async function outage(t, kind, outageMs) {
    const backend = new FakeBackend(kind);
    await backend.start(); // picks the port the gateway is configured with
    await backend.stop(); // ... and the outage begins
    const downAt = Date.now();
    t.after(() => backend.stop());
    const gw = await startGateway(t, { config: (ctx) => faultConfig(ctx, backend) });
    const acked = await sendAll(gw, 20, 10);
    const left = outageMs - (Date.now() - downAt);
    if (left > 0) await sleep(left);
    assert.equal(backend.requests, 0);
    await backend.start();
    // gRPC reconnects with its own backoff (up to ~20 s after a 30 s outage)
    await waitDelivered(gw, backend, acked, 60000);
    assertDelivered(backend, acked, { exactlyOnce: true });
    await expectExactCounters(gw, kind === 'grpc' ? 'otlp' : 'otlp_http', acked.length);
    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
}

test('otlp (gRPC): backend down for 30 s, then up: every acknowledged span arrives exactly once', async (t) => {
    await outage(t, 'grpc', LONG_OUTAGE_MS);
});

test('otlp_http: backend down for a few seconds, then up: every acknowledged span arrives exactly once', async (t) => {
    await outage(t, 'http', SHORT_OUTAGE_MS);
});

async function refusalsThenOk(t, kind, refusal) {
    const REFUSALS = 4;
    const backend = new FakeBackend(kind, (n) => (n < REFUSALS ? refusal : null));
    await backend.start();
    t.after(() => backend.stop());
    const gw = await startGateway(t, { config: (ctx) => faultConfig(ctx, backend) });
    const acked = await sendAll(gw, 10, 10);
    await waitDelivered(gw, backend, acked, 30000);
    assertDelivered(backend, acked, { exactlyOnce: true });
    assert.ok(backend.requests >= acked.length / 10 + REFUSALS, `only ${backend.requests} requests reached the backend`);
    const type = kind === 'grpc' ? 'otlp' : 'otlp_http';
    await expectExactCounters(gw, type, acked.length);
    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
}

test('otlp_http: 503 with Retry-After, then 200: nothing lost, nothing doubled', async (t) => {
    await refusalsThenOk(t, 'http', { status: 503, headers: { 'Retry-After': '1' } });
});

test('otlp (gRPC): UNAVAILABLE, then OK: nothing lost, nothing doubled', async (t) => {
    await refusalsThenOk(t, 'grpc', { code: GRPC_UNAVAILABLE, details: 'backend restarting' });
});

test('otlp_http: 429 with Retry-After, then 200: nothing lost, nothing doubled', async (t) => {
    await refusalsThenOk(t, 'http', { status: 429, headers: { 'Retry-After': '1' } });
});

test('otlp (gRPC): RESOURCE_EXHAUSTED with RetryInfo, then OK: nothing lost, nothing doubled', async (t) => {
    await refusalsThenOk(t, 'grpc', {
        code: GRPC_RESOURCE_EXHAUSTED,
        details: 'quota exceeded',
        metadata: { 'grpc-status-details-bin': retryInfoStatusDetails(GRPC_RESOURCE_EXHAUSTED, 'quota exceeded', 1) },
    });
});

for (const kind of ['http', 'grpc']) {
    test(`${kind === 'grpc' ? 'otlp (gRPC)' : 'otlp_http'}: SIGKILL mid-stream with a persistent queue, restart: ` +
        'every acknowledged span arrives', async (t) => {
        // A slow backend, so the persistent queue holds a backlog when the gateway dies.
        let slow = true;
        const backend = new FakeBackend(kind, () => (slow ? { delayMs: 100 } : null));
        await backend.start();
        t.after(() => backend.stop());
        const ctx = await makeContext();
        const config = (c) => faultConfig(c, backend, { storage: true });
        const gw1 = await startGateway(t, { ctx, config });
        let ackedSoFar = 0;
        const sending = sendSpans(gw1.httpUrl, {
            requests: 100000,
            perRequest: 10,
            stop: () => gw1.exit !== null,
            onAck: (n) => { ackedSoFar = n; },
        });
        // kill while the sender is still going and the backend has taken only part of it
        await waitUntil(() => ackedSoFar >= 400 && backend.totalOkSpans > 0, 30000,
            () => `sender acked ${ackedSoFar}, backend got ${backend.totalOkSpans}\n${gw1.describe()}`);
        gw1.kill();
        await gw1.exited;
        const sent = await sending; // ends quickly: every later request fails to connect
        const acked = sent.acked;
        const before = backend.uniqueIds().size;
        assert.ok(before < acked.length, `the backend already had everything (${before} of ${acked.length}): no backlog to test`);
        t.diagnostic(`acked ${acked.length} spans before SIGKILL; backend had ${before}`);

        slow = false;
        const gw2 = await startGateway(t, { ctx, config });
        await waitDelivered(gw2, backend, acked, 60000);
        assertDelivered(backend, acked, { exactlyOnce: false });
        const c = await exporterCounters(gw2, kind === 'grpc' ? 'otlp' : 'otlp_http');
        t.diagnostic(`after restart: ${backend.duplicates()} duplicate deliveries, redelivered counter ${c.redelivered}`);
        assert.equal(c.failed, 0, 'otelcol_exporter_send_failed_spans');
        const exit = await gw2.stop();
        assert.equal(exit.code, 0, gw2.describe());
    });
}

for (const kind of ['http', 'grpc']) {
    test(`${kind === 'grpc' ? 'otlp (gRPC)' : 'otlp_http'}: SIGTERM drains the queue before exit`, async (t) => {
        const backend = new FakeBackend(kind, () => ({ delayMs: 100 }));
        await backend.start();
        t.after(() => backend.stop());
        const gw = await startGateway(t, { config: (ctx) => faultConfig(ctx, backend) });
        const acked = await sendAll(gw, 30, 10);
        assert.ok(backend.totalOkSpans < acked.length, 'the queue was already empty: nothing to drain');
        const exit = await gw.stop('SIGTERM', 20000);
        assert.equal(exit.code, 0, gw.describe());
        assertDelivered(backend, acked, { exactlyOnce: true });
    });
}
