// tests/integration/azure_entra.test.mjs — the azure_monitor exporter with Microsoft Entra ID
// authentication, against a fake token endpoint (lib/fake_azure.mjs FakeTokenEndpoint) and
// the fake ingestion server, with the real llmgate binary: the token is fetched with the
// client-credentials grant (client secret, certificate assertion, workload-identity
// federated token), sent as `Authorization: Bearer`, cached (one fetch for many requests),
// refreshed before it expires and after the service answers 401.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promValue, startGateway } from './lib/gateway.mjs';
import { sendSpans } from './lib/fake_backend.mjs';
import { FakeIngestion, FakeTokenEndpoint, acceptedSpanCounts, azureGatewayConfig } from './lib/fake_azure.mjs';

const SCOPE = 'https://monitor.azure.com//.default';

async function waitUntil(check, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (check()) return;
        await sleep(50);
    }
    assert.fail(`${what()} (waited ${timeoutMs} ms)`);
}

async function fakes(t, tokenOpts = {}) {
    const ingestion = new FakeIngestion({});
    await ingestion.start();
    t.after(() => ingestion.stop());
    const token = new FakeTokenEndpoint(tokenOpts);
    await token.start();
    t.after(() => token.stop());
    return { ingestion, token };
}

/** Sends `requests` requests one after the other (each its own export), waits until the
 *  fake accepted every span; returns the span IDs. */
async function sendAndWait(gw, ingestion, requests, perRequest = 5, gapMs = 0) {
    const acked = [];
    for (let i = 0; i < requests; i++) {
        const r = await sendSpans(gw.httpUrl, { requests: 1, perRequest });
        assert.equal(r.acked.length, perRequest, gw.describe());
        acked.push(...r.acked);
        if (gapMs) await sleep(gapMs);
    }
    await waitUntil(() => {
        const got = acceptedSpanCounts(ingestion);
        return acked.every((id) => got.has(id));
    }, 20000, () => `not every span accepted (${ingestion.requests.length} requests)\n${gw.describe()}`);
    return acked;
}

function bearers(ingestion) {
    return ingestion.requests.map((r) => r.headers.authorization);
}

test('Entra ID client secret: one token fetch for many requests, sent as Bearer', async (t) => {
    const { ingestion, token } = await fakes(t);
    const gw = await startGateway(t, {
        config: (ctx) => azureGatewayConfig(ctx, ingestion.url, {
            entra_id: { tenant_id: 'my-tenant', client_id: 'my-app', client_secret: 's3cret&=', authority_host: token.authorityHost },
            sending_queue: { num_consumers: 1 },
        }),
    });
    await sendAndWait(gw, ingestion, 8);
    assert.equal(token.requests.length, 1, 'the token was not cached');
    const f = token.requests[0];
    assert.equal(f.path, '/my-tenant/oauth2/v2.0/token');
    assert.equal(f.form.grant_type, 'client_credentials');
    assert.equal(f.form.client_id, 'my-app');
    assert.equal(f.form.client_secret, 's3cret&=');
    assert.equal(f.form.scope, SCOPE);
    assert.equal(ingestion.requests.length, 8);
    for (const b of bearers(ingestion)) assert.equal(b, 'Bearer tok-1');
    assert.ok(!gw.stderr.includes('s3cret'), 'the secret appeared in the log');
    const text = await gw.selfMetrics();
    assert.equal(promValue(text, 'llmgate_azure_monitor_token_fetches', { exporter: 'azure_monitor' }), 1);
    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
});

test('Entra ID: a short-lived token is refreshed before it expires', async (t) => {
    const { ingestion, token } = await fakes(t, { expiresIn: 2 }); // refreshed after 1 s
    const gw = await startGateway(t, {
        config: (ctx) => azureGatewayConfig(ctx, ingestion.url, {
            entra_id: { tenant_id: 'tn', client_id: 'app', client_secret: 's', authority_host: token.authorityHost },
            sending_queue: { num_consumers: 1 },
        }),
    });
    await sendAndWait(gw, ingestion, 8, 5, 400); // ~3.2 s of requests
    const used = [...new Set(bearers(ingestion))];
    assert.ok(token.requests.length >= 2, `only ${token.requests.length} token fetch(es) over ~3 s with 2 s tokens`);
    assert.ok(token.requests.length < ingestion.requests.length, 'a token fetch per request: nothing cached');
    assert.ok(used.length >= 2, `only ${used} used`);
    // every request carried a token the endpoint had issued by then
    for (const r of ingestion.requests) {
        const n = Number(/^Bearer tok-(\d+)$/.exec(r.headers.authorization)?.[1]);
        assert.ok(n >= 1 && n <= token.requests.length, r.headers.authorization);
        assert.ok(token.requests[n - 1].at <= r.at);
    }
    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
});

test('Entra ID: a 401 from ingestion makes the exporter fetch a new token and resend', async (t) => {
    const { ingestion, token } = await fakes(t);
    ingestion.respond((rec) => (rec.headers.authorization === 'Bearer tok-1' ? { status: 401, body: { error: 'InvalidToken' } } : null));
    const gw = await startGateway(t, {
        config: (ctx) => azureGatewayConfig(ctx, ingestion.url, {
            entra_id: { tenant_id: 'tn', client_id: 'app', client_secret: 's', authority_host: token.authorityHost },
            sending_queue: { num_consumers: 1 },
        }),
    });
    const acked = await sendAndWait(gw, ingestion, 3);
    assert.equal(token.requests.length, 2);
    assert.deepEqual(bearers(ingestion), ['Bearer tok-1', 'Bearer tok-2', 'Bearer tok-2', 'Bearer tok-2']);
    const got = acceptedSpanCounts(ingestion);
    assert.equal(got.size, acked.length);
    assert.ok([...got.values()].every((n) => n === 1), 'duplicates');
    const text = await gw.selfMetrics();
    const v = (n) => promValue(text, n, { exporter: 'azure_monitor' });
    assert.equal(v('llmgate_azure_monitor_auth_refused'), 1);
    assert.equal(v('otelcol_exporter_send_failed_spans'), 0);
    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
});

test('Entra ID workload identity: AKS environment, federated token file re-read per fetch', async (t) => {
    const { ingestion, token } = await fakes(t, { expiresIn: 2 });
    const dir = mkdtempSync(join(tmpdir(), 'llmgate-wi-'));
    const tokenFile = join(dir, 'azure-identity-token');
    writeFileSync(tokenFile, 'federated-1\n');
    const gw = await startGateway(t, {
        config: (ctx) => azureGatewayConfig(ctx, ingestion.url, { entra_id: {}, sending_queue: { num_consumers: 1 } }),
        env: {
            AZURE_CLIENT_ID: 'wi-app',
            AZURE_TENANT_ID: 'wi-tenant',
            AZURE_FEDERATED_TOKEN_FILE: tokenFile,
            AZURE_AUTHORITY_HOST: token.authorityHost,
        },
    });
    await sendAndWait(gw, ingestion, 2);
    writeFileSync(tokenFile, 'federated-2\n'); // the kubelet rotates it
    await sleep(1200); // past the refresh point of the 2 s token
    await sendAndWait(gw, ingestion, 1);
    // the first token lives 2 s: at least one refresh, and the last read the rotated file
    assert.ok(token.requests.length >= 2, `${token.requests.length} token fetch(es)`);
    const a = token.requests[0];
    const b = token.requests[token.requests.length - 1];
    assert.equal(a.path, '/wi-tenant/oauth2/v2.0/token');
    assert.equal(a.form.client_id, 'wi-app');
    assert.equal(a.form.client_assertion_type, 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    assert.equal(a.form.client_assertion, 'federated-1');
    assert.equal(b.form.client_assertion, 'federated-2');
    assert.equal(a.form.client_secret, undefined);
    const used = bearers(ingestion);
    assert.equal(used[0], 'Bearer tok-1');
    assert.equal(used[used.length - 1], `Bearer tok-${token.requests.length}`);
    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
});

function b64urlDecode(s) {
    return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

test('Entra ID client certificate: an RS256 client assertion the certificate verifies', async (t) => {
    const { ingestion, token } = await fakes(t);
    const dir = mkdtempSync(join(tmpdir(), 'llmgate-cert-'));
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem',
        '-days', '2', '-subj', '/CN=llmgate test app'], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // one PEM with certificate and key, as Azure tooling exports it
    const both = join(dir, 'both.pem');
    writeFileSync(both, readFileSync(join(dir, 'cert.pem'), 'utf8') + readFileSync(join(dir, 'key.pem'), 'utf8'));
    const tokenUrl = `${token.authorityHost}custom/token`;
    const gw = await startGateway(t, {
        config: (ctx) => azureGatewayConfig(ctx, ingestion.url, {
            entra_id: { client_id: 'cert-app', client_certificate_file: both, token_endpoint: tokenUrl, scope: 'api://custom/.default' },
        }),
    });
    await sendAndWait(gw, ingestion, 2);
    assert.equal(token.requests.length, 1);
    const f = token.requests[0];
    assert.equal(f.path, '/custom/token');
    assert.equal(f.form.scope, 'api://custom/.default');
    assert.equal(f.form.client_assertion_type, 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    const [h64, p64, s64] = f.form.client_assertion.split('.');
    const header = JSON.parse(b64urlDecode(h64).toString('utf8'));
    const payload = JSON.parse(b64urlDecode(p64).toString('utf8'));
    const cert = new crypto.X509Certificate(readFileSync(join(dir, 'cert.pem')));
    assert.equal(header.alg, 'RS256');
    assert.equal(header.x5t, crypto.createHash('sha1').update(cert.raw).digest('base64url'));
    assert.equal(payload.aud, tokenUrl);
    assert.equal(payload.iss, 'cert-app');
    assert.equal(payload.sub, 'cert-app');
    assert.ok(typeof payload.jti === 'string' && payload.jti.length >= 32);
    const now = Date.now() / 1000;
    assert.ok(payload.nbf <= now + 5 && payload.exp > now && payload.exp <= now + 3600, JSON.stringify(payload));
    assert.ok(crypto.verify('sha256', Buffer.from(`${h64}.${p64}`), cert.publicKey, b64urlDecode(s64)), 'signature does not verify');
    for (const b of bearers(ingestion)) assert.equal(b, 'Bearer tok-1');
    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
});
