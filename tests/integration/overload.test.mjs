// tests/integration/overload.test.mjs — back-pressure under overload: a sender far faster
// than the sink, through otlp (HTTP) -> memory_limiter -> batch -> file exporter. The sink
// is a named pipe the test reads slowly, so data piles up inside the gateway (the batch
// processor holds what it cannot write yet) until the memory limiter refuses with 503 +
// Retry-After. Checked: the gateway's RSS (VmRSS, sampled all along) stays under the
// limiter's limit, the sender sees retryable refusals, every span it was told was accepted
// arrives exactly once, refusals are counted, and once the backlog drains data is accepted
// again.
//
// ASan inflates RSS (shadow memory, allocator quarantine): under the sanitizer build the
// limit is scaled up and the quarantine kept small, and the same properties are checked.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { startGateway, makeContext, gatewayBin, LOOPBACK, promValue } from './lib/gateway.mjs';

const MIB = 1024 * 1024;
const SPANS_PER_REQUEST = 100;
const ATTR_BYTES = 1024; // per span: makes each request ~150 KiB of JSON
const SENDERS = 6;

function underAsan() {
    if ((process.env.LLMGATE_BUILD_DIR ?? '').toLowerCase().includes('asan')) return true;
    const r = spawnSync('ldd', [gatewayBin()], { encoding: 'utf8' });
    return /libasan/.test(r.stdout ?? '');
}

/** VmRSS of a process in bytes (undefined once it is gone). */
function rssOf(pid) {
    try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : undefined;
    } catch {
        return undefined;
    }
}

/**
 * Reads the FIFO the file exporter writes to, `bytesPerTick` every `tickMs` (a slow
 * backend), collecting span names from complete JSON lines. setFast() lifts the throttle.
 */
function slowReader(path, { bytesPerTick, tickMs }) {
    const names = new Map();
    let fast = false;
    let bytes = 0;
    const stream = createReadStream(path, { highWaterMark: bytesPerTick });
    const done = new Promise((ok, fail) => {
        stream.on('end', ok);
        stream.on('error', fail);
    });
    let pending = []; // chunks of the current, still incomplete line (one batch can be MBs)
    stream.on('data', (chunk) => {
        bytes += chunk.length;
        const nl = chunk.lastIndexOf(10);
        if (nl < 0) {
            pending.push(chunk);
        } else {
            const text = Buffer.concat([...pending, chunk.subarray(0, nl)]).toString('utf8');
            pending = [chunk.subarray(nl + 1)];
            for (const line of text.split('\n')) {
                if (!line) continue;
                for (const rs of JSON.parse(line).resourceSpans ?? []) {
                    for (const ss of rs.scopeSpans ?? []) {
                        for (const s of ss.spans ?? []) names.set(s.name, (names.get(s.name) ?? 0) + 1);
                    }
                }
            }
        }
        if (!fast) {
            stream.pause();
            setTimeout(() => stream.resume(), tickMs);
        }
    });
    return {
        names,
        done,
        get bytes() { return bytes; },
        setFast() {
            fast = true;
            stream.resume();
        },
    };
}

function requestBody(tag, seq) {
    const now = BigInt(Date.now()) * 1000000n;
    const filler = 'x'.repeat(ATTR_BYTES);
    const spans = [];
    for (let i = 0; i < SPANS_PER_REQUEST; i++) {
        spans.push({
            traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'),
            name: `${tag}-${seq}-${i}`, kind: 1,
            startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n),
            attributes: [{ key: 'filler', value: { stringValue: filler } }],
        });
    }
    return JSON.stringify({
        resourceSpans: [{
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'overload' } }] },
            scopeSpans: [{ scope: { name: 'overload' }, spans }],
        }],
    });
}

test('overload: memory_limiter keeps RSS under its limit, refuses retryably, loses nothing accepted', async (t) => {
    const asan = underAsan();
    // Normal build: 96 MiB with 24 MiB of spike room (soft limit 72 MiB). The ASan build's
    // baseline alone is larger; its limit is scaled so the test still exercises refusals.
    const limitMib = asan ? 160 : 96;
    const spikeMib = asan ? 40 : 24;
    const ctx = await makeContext();
    const fifo = join(ctx.dir, 'sink.fifo');
    const mk = spawnSync('mkfifo', [fifo]);
    assert.equal(mk.status, 0, 'mkfifo failed');
    // The exporter's open() blocks until a reader opens the FIFO: start reading first.
    const reader = slowReader(fifo, { bytesPerTick: 64 * 1024, tickMs: 100 });

    const gw = await startGateway(t, {
        ctx,
        env: asan ? { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ?? ''}:quarantine_size_mb=16` } : {},
        config: () => ({
            receivers: { otlp: { protocols: { http: { endpoint: `${LOOPBACK}:${ctx.ports.http}` } } } },
            processors: {
                memory_limiter: {
                    check_interval: '100ms', limit_mib: limitMib, spike_limit_mib: spikeMib,
                    min_gc_interval_when_soft_limited: '1s',
                },
                // Time-triggered only: while the sink is slow, everything received waits here;
                // sent in pieces so encoding one huge batch is not itself a memory spike.
                batch: { send_batch_size: 0, send_batch_max_size: 1000, timeout: '100ms' },
            },
            exporters: { file: { path: fifo } },
            extensions: { health_check: { endpoint: `${LOOPBACK}:${ctx.ports.health}` } },
            service: {
                extensions: ['health_check'],
                telemetry: { metrics: { address: `${LOOPBACK}:${ctx.ports.metrics}` } },
                pipelines: { traces: { receivers: ['otlp'], processors: ['memory_limiter', 'batch'], exporters: ['file'] } },
            },
        }),
    });
    const pid = gw.child.pid;
    const baseline = rssOf(pid);
    let maxRss = baseline;
    const sampler = setInterval(() => {
        const r = rssOf(pid);
        if (r !== undefined && r > maxRss) maxRss = r;
    }, 20);
    t.after(() => clearInterval(sampler));

    const accepted = new Set();
    let refused503 = 0;
    let retryAfterSeen = 0;
    const other = [];
    let stop = false;
    const url = `${gw.httpUrl}/v1/traces`;
    async function sender(id) {
        for (let seq = 0; !stop; seq++) {
            const r = await fetch(url, {
                method: 'POST', headers: { 'Content-Type': 'application/json' }, body: requestBody(`s${id}`, seq),
            });
            await r.arrayBuffer();
            if (r.status === 200) {
                for (let i = 0; i < SPANS_PER_REQUEST; i++) accepted.add(`s${id}-${seq}-${i}`);
            } else if (r.status === 503) {
                refused503++;
                if (r.headers.get('retry-after')) retryAfterSeen++;
                await sleep(20); // a real client would wait Retry-After; keep the pressure on
            } else {
                other.push(r.status);
            }
        }
    }
    const started = Date.now();
    const senders = Array.from({ length: SENDERS }, (_, i) => sender(i));
    // Run until the limiter has pushed back for a while (bounded).
    while (Date.now() - started < 60000 && !(refused503 >= 50 && Date.now() - started > 3000)) await sleep(100);
    stop = true;
    await Promise.all(senders);
    const sendSecs = (Date.now() - started) / 1000;
    const maxRssSending = maxRss;

    assert.deepEqual(other, [], 'only 200 and 503 answers expected');
    assert.ok(refused503 > 0, `the sender saw no refusal (accepted ${accepted.size} spans; max RSS ${(maxRss / MIB).toFixed(1)} MiB)`);
    assert.equal(retryAfterSeen, refused503, 'every 503 carries Retry-After');
    const metrics = await gw.selfMetrics();
    const refusedSpans = promValue(metrics, 'otelcol_processor_refused_spans', { processor: 'memory_limiter' });
    assert.equal(refusedSpans, refused503 * SPANS_PER_REQUEST, 'refused spans counted by the limiter');
    assert.equal(promValue(metrics, 'otelcol_receiver_accepted_spans', { receiver: 'otlp', transport: 'http' }), accepted.size);

    // Drain: the sink speeds up, the backlog leaves, and the limiter lets data in again.
    reader.setFast();
    let again = 0;
    const deadline = Date.now() + 30000;
    while (again !== 200 && Date.now() < deadline) {
        const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: requestBody('after', 0) });
        await r.arrayBuffer();
        again = r.status;
        if (again !== 200) await sleep(200);
    }
    if (again !== 200) {
        const m = await gw.selfMetrics();
        const pick = (n, l = {}) => promValue(m, n, l);
        assert.fail(`data not accepted again after the backlog drained: sink read ${(reader.bytes / MIB).toFixed(1)} MiB, ` +
            `${reader.names.size} spans; exporter sent ${pick('otelcol_exporter_sent_spans')}, accepted ${accepted.size}, ` +
            `RSS ${(rssOf(pid) / MIB).toFixed(1)} MiB\n${gw.describe()}`);
    }
    for (let i = 0; i < SPANS_PER_REQUEST; i++) accepted.add(`after-0-${i}`);

    const exit = await gw.stop('SIGTERM', 60000);
    clearInterval(sampler);
    await reader.done;
    assert.equal(exit.code, 0, gw.describe());

    t.diagnostic(`${asan ? 'ASan build' : 'normal build'}: baseline RSS ${(baseline / MIB).toFixed(1)} MiB, ` +
        `max RSS ${(maxRss / MIB).toFixed(1)} MiB (${(maxRssSending / MIB).toFixed(1)} while sending), limit ${limitMib} MiB (soft ${limitMib - spikeMib}); ` +
        `${accepted.size} spans accepted, ${refused503} requests refused in ${sendSecs.toFixed(1)} s; ` +
        `${(reader.bytes / MIB).toFixed(1)} MiB written to the sink`);
    assert.ok(maxRss < limitMib * MIB, `RSS peaked at ${(maxRss / MIB).toFixed(1)} MiB, over the ${limitMib} MiB limit`);
    const missing = [...accepted].filter((n) => !reader.names.has(n));
    assert.equal(missing.length, 0, `${missing.length} accepted span(s) never arrived, e.g. ${missing.slice(0, 5)}`);
    const dup = [...reader.names.entries()].filter(([, n]) => n > 1);
    assert.equal(dup.length, 0, `duplicated spans: ${dup.slice(0, 5)}`);
    assert.equal(reader.names.size, accepted.size, 'nothing refused reached the sink');
});
