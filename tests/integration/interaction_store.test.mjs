// tests/integration/interaction_store.test.mjs — the interaction_store exporter and the
// `llmgate store` command with the real binary: key rotation across restarts (both keys read
// the whole store, one key reads its part and names the other key id, exit 3), a crash-cut
// segment tail and a flipped byte found at start (self-metrics) and by the CLI (exit 4, the
// rest printed), loose permissions fixed or refused at start, key_env, and the CLI's usage
// errors and filters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdirSync, chmodSync, statSync, readdirSync, truncateSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';

import { startGateway, makeContext, runCli, promValue } from './lib/gateway.mjs';

function storeConfig(ctx, store) {
    return {
        receivers: { otlp: { protocols: { http: { endpoint: `127.0.0.1:${ctx.ports.http}` } } } },
        exporters: { interaction_store: { sending_queue: { enabled: false }, ...store } },
        extensions: { health_check: { endpoint: `127.0.0.1:${ctx.ports.health}` } },
        service: {
            extensions: ['health_check'],
            telemetry: { metrics: { address: `127.0.0.1:${ctx.ports.metrics}` } },
            pipelines: { traces: { receivers: ['otlp'], exporters: ['interaction_store'] } },
        },
    };
}

/** Posts failed seed-style spans (OTLP/JSON); returns their span IDs. */
async function postFailed(gw, tag, n) {
    const ids = [];
    const spans = [];
    const now = BigInt(Date.now()) * 1000000n;
    for (let i = 0; i < n; i++) {
        const spanId = randomBytes(8).toString('hex');
        ids.push(spanId);
        spans.push({
            traceId: randomBytes(16).toString('hex'),
            spanId,
            name: 'llm_completion',
            startTimeUnixNano: String(now),
            endTimeUnixNano: String(now + 1000000n),
            attributes: [
                { key: 'llm.model', value: { stringValue: tag === 'b' ? 'model-b' : 'model-a' } },
                { key: 'llm.prompt_tokens', value: { intValue: '10' } },
                { key: 'llm.prompt', value: { stringValue: `prompt ${tag}-${i}` } },
                { key: 'llm.error', value: { stringValue: 'Boom' } },
            ],
            status: { code: 2, message: 'failed' },
        });
    }
    const body = { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'it' } }] },
        scopeSpans: [{ spans }] }] };
    const r = await fetch(`${gw.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body), signal: AbortSignal.timeout(10000) });
    assert.equal(r.status, 200, await r.text());
    return ids;
}

function newKey(dir, name) {
    const p = join(dir, name);
    writeFileSync(p, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    return p;
}

function exportLines(stdout) {
    return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('interaction_store: rotated keys, damage found at start and by the CLI, CLI exit codes', async (t) => {
    const ctx = await makeContext();
    const store = join(ctx.dir, 'store');
    const keyA = newKey(ctx.dir, 'a.key');
    const keyB = newKey(ctx.dir, 'b.key');

    // Run 1 with key A.
    let gw = await startGateway(t, { ctx, config: (c) => storeConfig(c, { directory: store, key_file: keyA }) });
    const idsA = await postFailed(gw, 'a', 3);
    await gw.stop();
    assert.equal(gw.exit.code, 0, gw.describe());

    // Run 2 with key B given through the environment (rotation).
    gw = await startGateway(t, { ctx, env: { STORE_KEY: (await import('node:fs')).readFileSync(keyB, 'utf8').trim() },
        config: (c) => storeConfig(c, { directory: store, key_env: 'STORE_KEY' }) });
    const idsB = await postFailed(gw, 'b', 2);
    const m = await gw.selfMetrics();
    assert.equal(promValue(m, 'llmgate_interaction_store_records', { exporter: 'interaction_store', selected: 'failed' }), 2);
    await gw.stop();
    assert.equal(gw.exit.code, 0, gw.describe());

    const both = runCli(['store', 'export', '--dir', store, '--key-file', keyA, '--key-file', keyB]);
    assert.equal(both.status, 0, both.stderr);
    assert.deepEqual(exportLines(both.stdout).map((r) => r.span_id).sort(), [...idsA, ...idsB].sort());

    const onlyB = runCli(['store', 'export', '--dir', store, '--key-file', keyB]);
    assert.equal(onlyB.status, 3, onlyB.stderr);
    assert.match(onlyB.stderr, /no key can decrypt records with key id [0-9a-f]{16} \(3 record\(s\)\)/);
    assert.deepEqual(exportLines(onlyB.stdout).map((r) => r.span_id).sort(), [...idsB].sort());

    const filtered = runCli(['store', 'list', '--json', '--dir', store, '--key-file', keyA, '--key-file', keyB, '--model', 'model-b']);
    assert.equal(filtered.status, 0, filtered.stderr);
    const rows = exportLines(filtered.stdout);
    assert.equal(rows.length, 2);
    for (const r of rows) {
        assert.equal(r.model, 'model-b');
        assert.equal(r.status, 'ERROR');
        assert.equal(r.error_type, 'Boom');
        assert.equal(r.tokens.input, 10);
    }
    const future = runCli(['store', 'list', '--json', '--dir', store, '--key-file', keyA, '--since', '2999-01-01T00:00:00Z']);
    assert.equal(future.status, 3); // key B's records are unreadable with A alone
    assert.equal(future.stdout.trim(), '');

    // Damage: cut the tail of run 1's segment, flip a byte inside run 2's first record.
    const segs = readdirSync(store).sort();
    assert.equal(segs.length, 2);
    const s1 = join(store, segs[0]);
    truncateSync(s1, statSync(s1).size - 7);
    const s2 = join(store, segs[1]);
    const fd = openSync(s2, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 8 + 40);
    b[0] ^= 0x01;
    writeSync(fd, b, 0, 1, 8 + 40);
    closeSync(fd);
    const damaged = runCli(['store', 'export', '--dir', store, '--key-file', keyA, '--key-file', keyB]);
    assert.equal(damaged.status, 4, damaged.stderr);
    assert.match(damaged.stderr, /skipped 1 corrupted record\(s\) and 1 truncated record\(s\)/);
    const survivors = exportLines(damaged.stdout).map((r) => r.span_id);
    assert.deepEqual(survivors.sort(), [idsA[0], idsA[1], idsB[1]].sort());

    // The next start finds both (self-metrics), writes a new segment and stays readable.
    gw = await startGateway(t, { ctx, config: (c) => storeConfig(c, { directory: store, key_file: keyA }) });
    const m3 = await gw.selfMetrics();
    assert.equal(promValue(m3, 'llmgate_interaction_store_truncated_records', { exporter: 'interaction_store' }), 1);
    // Run 2's records are under key B, which this run does not have: not counted as corrupt.
    assert.equal(promValue(m3, 'llmgate_interaction_store_corrupt_records', { exporter: 'interaction_store' }), 0);
    const idsC = await postFailed(gw, 'c', 1);
    await gw.stop();
    assert.equal(gw.exit.code, 0, gw.describe());
    const after = runCli(['store', 'export', '--dir', store, '--key-file', keyA, '--key-file', keyB]);
    assert.equal(after.status, 4);
    assert.deepEqual(exportLines(after.stdout).map((r) => r.span_id).sort(), [idsA[0], idsA[1], idsB[1], idsC[0]].sort());

    // Usage and I/O errors.
    assert.equal(runCli(['store']).status, 2);
    assert.equal(runCli(['store', 'frobnicate', '--dir', store]).status, 2);
    assert.equal(runCli(['store', 'list', '--dir', store]).status, 2); // no key
    assert.equal(runCli(['store', 'list', '--key-file', keyA]).status, 2); // no dir
    assert.equal(runCli(['store', 'list', '--dir', store, '--key-file', keyA, '--since', 'yesterday']).status, 2);
    const missing = runCli(['store', 'list', '--dir', join(ctx.dir, 'nope'), '--key-file', keyA]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot open store directory/);
    const badKey = join(ctx.dir, 'bad.key');
    writeFileSync(badKey, 'c2hvcnQ=\n', { mode: 0o600 });
    const bk = runCli(['store', 'list', '--dir', store, '--key-file', badKey]);
    assert.equal(bk.status, 3);
    assert.match(bk.stderr, /32 bytes/);
    const kg = runCli(['store', 'keygen']);
    assert.equal(kg.status, 0);
    assert.equal(Buffer.from(kg.stdout.trim(), 'base64').length, 32);
});

test('interaction_store: loose permissions are fixed at start, or refused with fix_permissions: false', async (t) => {
    const ctx = await makeContext();
    const store = join(ctx.dir, 'loose');
    mkdirSync(store, { mode: 0o755 });
    chmodSync(store, 0o755);
    const key = newKey(ctx.dir, 'k.key');

    const refused = await startGateway(t, { ctx, ready: false,
        config: (c) => storeConfig(c, { directory: store, key_file: key, fix_permissions: false }) });
    await refused.exited;
    assert.notEqual(refused.exit.code, 0);
    assert.match(refused.stderr, /has mode 0755: group and others must have no access \(chmod 700/);

    const gw = await startGateway(t, { ctx, config: (c) => storeConfig(c, { directory: store, key_file: key }) });
    assert.equal(statSync(store).mode & 0o777, 0o700);
    const m = await gw.selfMetrics();
    assert.equal(promValue(m, 'llmgate_interaction_store_permissions_fixed', { exporter: 'interaction_store' }), 1);
    await postFailed(gw, 'p', 1);
    await gw.stop();
    assert.equal(gw.exit.code, 0, gw.describe());
    for (const f of readdirSync(store)) assert.equal(statSync(join(store, f)).mode & 0o777, 0o600);

    // Config errors name the YAML path.
    const v = runCli(['validate', '--config', `yaml:${JSON.stringify({
        receivers: { otlp: { protocols: { http: { endpoint: '127.0.0.1:0' } } } },
        exporters: { interaction_store: { directory: store, key_file: key, key_env: 'X' } },
        service: { pipelines: { traces: { receivers: ['otlp'], exporters: ['interaction_store'] } } },
    })}`]);
    assert.notEqual(v.status, 0);
    assert.match(v.stderr, /exporters\.interaction_store\.key_env: exactly one of key_file and key_env is required/);
});

test('interaction_store create_key: validate has no side effect, start makes a 0600 key the CLI reads', async (t) => {
    const ctx = await makeContext();
    const store = join(ctx.dir, 'data', 'interactions');
    const keyFile = join(ctx.dir, 'data', 'store.key');
    const cfg = storeConfig(ctx, { directory: store, key_file: keyFile, create_key: true });
    const cfgFile = join(ctx.dir, 'create.yaml');
    writeFileSync(cfgFile, JSON.stringify(cfg));
    const v = runCli(['validate', '--config', cfgFile]);
    assert.equal(v.status, 0, v.stderr);
    assert.throws(() => statSync(keyFile), /ENOENT/, 'validate must not create the key');

    const gw = await startGateway(t, { ctx, config: () => cfg });
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(statSync(join(ctx.dir, 'data')).mode & 0o777, 0o700);
    assert.match(gw.stderr, /created a new store key/);
    const ids = await postFailed(gw, 'k', 2);
    await gw.stop();
    assert.equal(gw.exit.code, 0, gw.describe());
    const r = runCli(['store', 'export', '--dir', store, '--key-file', keyFile]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(exportLines(r.stdout).map((x) => x.span_id).sort(), [...ids].sort());

    // Client text never reaches the operator's terminal raw: no ESC in text output.
    await (async () => {
        const gwe = await startGateway(t, { ctx, config: () => cfg });
        await postFailed(gwe, '\u001b[2J\u001b]0;pwned\u0007', 1);
        await gwe.stop();
        const shown = runCli(['store', 'show', '--dir', store, '--key-file', keyFile]);
        assert.equal(shown.status, 0, shown.stderr);
        assert.doesNotMatch(shown.stdout, /\u001b|\u0007/);
        assert.match(shown.stdout, /\?\[2J\?\]0;pwned\?/);
        const exported = runCli(['store', 'export', '--dir', store, '--key-file', keyFile]);
        assert.ok(exportLines(exported.stdout).some((r) => JSON.stringify(r).includes('\\u001b[2J')),
            'export keeps the exact text (JSON-escaped)');
    })();

    // A second start reuses the key (no new one): the records stay readable.
    const gw2 = await startGateway(t, { ctx, config: () => cfg });
    assert.doesNotMatch(gw2.stderr, /created a new store key/);
    await gw2.stop();
    assert.equal(runCli(['store', 'list', '--dir', store, '--key-file', keyFile]).status, 0);
});
