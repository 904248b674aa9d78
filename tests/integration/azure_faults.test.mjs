// tests/integration/azure_faults.test.mjs — the azure_monitor exporter when Application
// Insights ingestion misbehaves: the real llmgate binary in front of the fake ingestion
// server (lib/fake_azure.mjs). Spans go in as OTLP/JSON (lib/fake_backend.mjs sendSpans);
// envelopes are counted by span ID (data.baseData.id of Request / RemoteDependency
// envelopes), with exact counts: each acknowledged span accepted exactly once where nothing
// forces a resend, at least once after a SIGKILL (duplicates counted and reported), and
// the exporter's counters matching what the fake answered.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeContext, promValue, startGateway } from './lib/gateway.mjs';
import { sendSpans } from './lib/fake_backend.mjs';
import {
    FakeIngestion, acceptedSpanCounts, azureGatewayConfig, envelopeSpanId, makeTestCerts,
} from './lib/fake_azure.mjs';

const OUTAGE_MS = 30000;

async function waitUntil(check, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (check()) return;
        await sleep(50);
    }
    assert.fail(`${what()} (waited ${timeoutMs} ms)`);
}

async function sendAll(gw, requests, perRequest) {
    const r = await sendSpans(gw.httpUrl, { requests, perRequest });
    assert.equal(r.refused + r.errors, 0, `sender saw ${r.refused} refusals and ${r.errors} errors\n${gw.describe()}`);
    assert.equal(r.acked.length, requests * perRequest);
    return r.acked;
}

async function waitAccepted(gw, fake, ids, timeoutMs) {
    await waitUntil(() => {
        const got = acceptedSpanCounts(fake);
        return ids.every((id) => got.has(id));
    }, timeoutMs, () => {
        const got = acceptedSpanCounts(fake);
        return `${ids.filter((id) => !got.has(id)).length} of ${ids.length} spans not accepted at the fake ` +
            `(${fake.requests.length} requests)\n${gw.describe()}`;
    });
}

/** Each id accepted exactly once and nothing else accepted. */
function assertExactlyOnce(fake, ids) {
    const got = acceptedSpanCounts(fake);
    const missing = ids.filter((id) => !got.has(id));
    assert.deepEqual(missing, [], `${missing.length} acknowledged span(s) never accepted`);
    const dup = [...got.entries()].filter(([, n]) => n > 1);
    assert.deepEqual(dup, [], 'spans accepted more than once');
    assert.equal(got.size, ids.length, 'the fake accepted spans nobody sent');
}

async function counters(gw) {
    const text = await gw.selfMetrics();
    const v = (name) => promValue(text, name, { exporter: 'azure_monitor' }) ?? 0;
    return {
        sent: v('otelcol_exporter_sent_spans'),
        failed: v('otelcol_exporter_send_failed_spans'),
        enqueueFailed: v('otelcol_exporter_enqueue_failed_spans'),
        redelivered: v('otelcol_exporter_persistent_queue_redelivered_spans'),
        envSent: v('llmgate_azure_monitor_envelopes_sent'),
        envRejected: v('llmgate_azure_monitor_envelopes_rejected'),
        envSampledOut: v('llmgate_azure_monitor_envelopes_sampled_out'),
        envRetried: v('llmgate_azure_monitor_envelopes_retried'),
        redirects: v('llmgate_azure_monitor_redirects'),
    };
}

/** Counters once `sent + failed` reached n (they are updated just after the answer). */
async function settledCounters(gw, n) {
    let c;
    for (let i = 0; i < 100; i++) {
        c = await counters(gw);
        if (c.sent + c.failed >= n) break;
        await sleep(50);
    }
    return c;
}

test('azure_monitor: 206 with mixed per-item codes resends only the retriable items (TLS, HTTP/2)', async (t) => {
    const certs = makeTestCerts(mkdtempSync(join(tmpdir(), 'llmgate-az-certs-')));
    const fake = new FakeIngestion({ tls: certs });
    await fake.start();
    t.after(() => fake.stop());
    // per position in the first request: accepted, retriable, permanent, sampled out
    const CODES = [200, 500, 400, 429, 200, 503, 400, 439, 200, 408, 200, 502, 429, 504, 200, 206, 400, 200, 500, 200];
    const SAMPLED = new Set([12]); // a 429 that says "Telemetry sampled out.": never retried
    // codes go by the span's position among the span envelopes; other envelopes (the
    // mapping's _OTELRESOURCE_ metric) are accepted
    const spanPos = (rec) => {
        let k = 0;
        return rec.envelopes.map((e) => (envelopeSpanId(e) !== undefined ? k++ : -1));
    };
    fake.respond((rec) => {
        if (rec.index !== 0) return null;
        const pos = spanPos(rec);
        return {
            itemCodes: pos.map((p) => (p < 0 ? 200 : CODES[p])),
            itemMessages: pos.map((p) => (SAMPLED.has(p) ? 'Telemetry sampled out.' : undefined)),
        };
    });
    const gw = await startGateway(t, {
        config: (ctx) => azureGatewayConfig(ctx, fake.url, { tls: { ca_file: certs.caFile } }),
    });
    const acked = await sendAll(gw, 1, CODES.length);
    const permanent = new Set(CODES.map((c, i) => (c === 400 || SAMPLED.has(i) ? i : -1)).filter((i) => i >= 0));
    const retriable = CODES.map((c, i) => (c !== 200 && !permanent.has(i) ? i : -1)).filter((i) => i >= 0);
    const expectAccepted = acked.filter((_, i) => !permanent.has(i));
    await waitAccepted(gw, fake, expectAccepted, 20000);
    await sleep(300); // anything wrongly resent would arrive now

    assert.equal(fake.requests.length, 2, `requests: ${fake.requests.map((r) => r.envelopes.length)}`);
    assert.equal(fake.requests[0].httpVersion, '2.0', 'HTTP/2 over TLS');
    assert.equal(fake.requests[0].headers['content-encoding'], 'gzip');
    const spanIds = (r) => r.envelopes.map(envelopeSpanId).filter((id) => id !== undefined);
    const first = spanIds(fake.requests[0]);
    assert.deepEqual(first, acked, 'the first request carries every span, in order');
    assert.deepEqual(fake.requests[1].envelopes.map(envelopeSpanId), retriable.map((i) => acked[i]),
        'the resend carries exactly the retriable items');
    assertExactlyOnce(fake, expectAccepted);

    const c = await settledCounters(gw, acked.length);
    const others = fake.requests[0].envelopes.length - acked.length; // non-span envelopes, accepted
    assert.equal(c.envSent, expectAccepted.length + others, 'llmgate_azure_monitor_envelopes_sent');
    assert.equal(c.envRejected, permanent.size, 'llmgate_azure_monitor_envelopes_rejected');
    assert.equal(c.envSampledOut, SAMPLED.size, 'llmgate_azure_monitor_envelopes_sampled_out');
    assert.equal(c.envRetried, retriable.length, 'llmgate_azure_monitor_envelopes_retried');
    assert.equal(c.sent, expectAccepted.length, 'otelcol_exporter_sent_spans');
    assert.equal(c.failed, permanent.size, 'otelcol_exporter_send_failed_spans');
    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
});

test('azure_monitor: 429 and 503 with Retry-After (seconds, HTTP date), then 200: waits, nothing lost or doubled', async (t) => {
    const fake = new FakeIngestion({});
    await fake.start();
    t.after(() => fake.stop());
    fake.respond((rec) => {
        if (rec.index === 0) return { status: 429, headers: { 'Retry-After': '1' } };
        if (rec.index === 1) return { status: 503, headers: { 'Retry-After': new Date(Date.now() + 2000).toUTCString() } };
        return null;
    });
    const gw = await startGateway(t, {
        config: (ctx) => azureGatewayConfig(ctx, fake.url, { sending_queue: { num_consumers: 1 } }),
    });
    const acked = await sendAll(gw, 1, 10);
    await waitAccepted(gw, fake, acked, 20000);
    assert.equal(fake.requests.length, 3);
    // initial_interval is 100 ms: only Retry-After explains these gaps
    assert.ok(fake.requests[1].at - fake.requests[0].at >= 950,
        `resent ${fake.requests[1].at - fake.requests[0].at} ms after a 429 with Retry-After: 1`);
    assert.ok(fake.requests[2].at - fake.requests[1].at >= 950,
        `resent ${fake.requests[2].at - fake.requests[1].at} ms after a 503 with Retry-After 2 s ahead`);
    for (const r of fake.requests)
        assert.deepEqual(r.envelopes.map(envelopeSpanId).filter((id) => id !== undefined), acked);
    assertExactlyOnce(fake, acked);
    const c = await settledCounters(gw, acked.length);
    assert.equal(c.sent, acked.length);
    assert.equal(c.failed, 0);
    assert.equal(c.envRetried, 2 * fake.requests[0].envelopes.length);
    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
});

test('azure_monitor: 500 for 30 s, then 200: every acknowledged span accepted exactly once', async (t) => {
    const fake = new FakeIngestion({});
    await fake.start();
    t.after(() => fake.stop());
    const until = Date.now() + OUTAGE_MS;
    fake.respond(() => (Date.now() < until ? { status: 500, body: { error: 'outage' } } : null));
    const gw = await startGateway(t, { config: (ctx) => azureGatewayConfig(ctx, fake.url) });
    const acked = await sendAll(gw, 20, 10);
    await waitAccepted(gw, fake, acked, OUTAGE_MS + 30000);
    const during = fake.requests.filter((r) => r.status === 500).length;
    assert.ok(during >= 20, `only ${during} requests answered 500: the exporter did not keep retrying`);
    assertExactlyOnce(fake, acked);
    const c = await settledCounters(gw, acked.length);
    assert.equal(c.sent, acked.length, 'otelcol_exporter_sent_spans');
    assert.equal(c.failed, 0, 'otelcol_exporter_send_failed_spans');
    assert.equal(c.envSent, fake.accepted.length, 'llmgate_azure_monitor_envelopes_sent');
    assert.equal(c.envRejected, 0);
    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
});

test('azure_monitor: 307 to another local port is followed and remembered', async (t) => {
    const moved = new FakeIngestion({});
    await moved.start();
    t.after(() => moved.stop());
    const old = new FakeIngestion({});
    await old.start();
    t.after(() => old.stop());
    old.respond(() => ({ status: 307, headers: { Location: `${moved.url}v2.1/track` } }));
    const gw = await startGateway(t, {
        config: (ctx) => azureGatewayConfig(ctx, old.url, { sending_queue: { num_consumers: 1 } }),
    });
    const acked = await sendAll(gw, 5, 10);
    await waitAccepted(gw, moved, acked, 20000);
    assert.equal(old.requests.length, 1, 'the old endpoint was asked again after the redirect');
    assert.equal(moved.requests.length, 5);
    assertExactlyOnce(moved, acked);
    assert.equal(old.accepted.length, 0);
    const c = await settledCounters(gw, acked.length);
    assert.equal(c.redirects, 1, 'llmgate_azure_monitor_redirects');
    assert.equal(c.sent, acked.length);
    assert.equal(c.failed, 0);
    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
});

test('azure_monitor: SIGKILL mid-stream with a persistent queue, restart: zero envelopes lost, duplicates counted', async (t) => {
    let slow = true;
    const fake = new FakeIngestion({});
    await fake.start();
    t.after(() => fake.stop());
    fake.respond(() => (slow ? { delayMs: 100 } : null));
    const ctx = await makeContext();
    const config = (c) => azureGatewayConfig(c, fake.url, {}, { storage: true });
    const gw1 = await startGateway(t, { ctx, config });
    let ackedSoFar = 0;
    const sending = sendSpans(gw1.httpUrl, {
        requests: 100000,
        perRequest: 10,
        stop: () => gw1.exit !== null,
        onAck: (n) => { ackedSoFar = n; },
    });
    await waitUntil(() => ackedSoFar >= 400 && fake.accepted.length > 0, 30000,
        () => `sender acked ${ackedSoFar}, fake accepted ${fake.accepted.length}\n${gw1.describe()}`);
    gw1.kill();
    await gw1.exited;
    const { acked } = await sending;
    const before = acceptedSpanCounts(fake).size;
    assert.ok(before < acked.length, `the fake already had everything (${before} of ${acked.length}): no backlog to test`);
    t.diagnostic(`acked ${acked.length} spans before SIGKILL; fake had accepted ${before}`);

    slow = false;
    const gw2 = await startGateway(t, { ctx, config });
    await waitAccepted(gw2, fake, acked, 60000);
    const got = acceptedSpanCounts(fake);
    const missing = acked.filter((id) => !got.has(id));
    assert.deepEqual(missing, [], 'acknowledged spans lost');
    const ackedSet = new Set(acked);
    const extra = [...got.keys()].filter((id) => !ackedSet.has(id));
    // spans the gateway took but could not acknowledge before dying may arrive too: never
    // more than one request's worth in flight per sender
    assert.ok(extra.length <= 10, `${extra.length} unacknowledged spans arrived`);
    const duplicates = [...got.values()].reduce((s, n) => s + n - 1, 0);
    const c = await counters(gw2);
    t.diagnostic(`after restart: ${duplicates} duplicate envelopes at the fake; redelivered counter ${c.redelivered}`);
    // every duplicate is a span the persistent queue sent again, and counted as such
    assert.ok(duplicates <= c.redelivered,
        `${duplicates} duplicates but otelcol_exporter_persistent_queue_redelivered_spans is ${c.redelivered}`);
    assert.equal(c.failed, 0, 'otelcol_exporter_send_failed_spans');
    const exit = await gw2.stop();
    assert.equal(exit.code, 0, gw2.describe());
});
