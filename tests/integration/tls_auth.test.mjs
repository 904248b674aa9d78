// tests/integration/tls_auth.test.mjs — receiver security end to end: TLS and mTLS on
// OTLP/HTTP and OTLP/gRPC with certificates made here with the openssl CLI (a CA, a server
// certificate for 127.0.0.1/localhost, a client certificate, and a second "rogue" CA), the
// real OTel JS exporters over TLS delivering spans to the file sink, gRPC certificate
// reload, and bearertokenauth accept/deny on both protocols (401 + WWW-Authenticate +
// google.rpc.Status UNAUTHENTICATED; gRPC UNAUTHENTICATED) while health and self-metrics
// stay open.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import * as grpc from '@grpc/grpc-js';
import { TracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { ExportResultCode } from '@opentelemetry/core';

import { startGateway, promValue, runCli } from './lib/gateway.mjs';
import { allSpans, decodeStatus, recording } from './lib/otlp.mjs';

const GRPC_EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const TOKEN = `tok-${randomBytes(12).toString('hex')}`;

// ---- certificates ------------------------------------------------------------------------

function openssl(args, cwd) {
    const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

/** A CA (cert + key) named `name` in dir. */
function makeCa(dir, name) {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=llmgate test ${name}`,
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

/** A leaf certificate signed by `ca`, for `usage` serverAuth or clientAuth. */
function makeLeaf(dir, name, ca, usage, cn) {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    const ext = [`extendedKeyUsage=${usage}`, 'basicConstraints=CA:FALSE'];
    if (usage === 'serverAuth') ext.push('subjectAltName=DNS:localhost,IP:127.0.0.1');
    writeFileSync(join(dir, `${name}.ext`), ext.join('\n') + '\n');
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`,
        '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
}

function makeCerts() {
    const dir = mkdtempSync(join(tmpdir(), 'llmgate-certs-'));
    makeCa(dir, 'ca');
    makeCa(dir, 'rogue');
    makeCa(dir, 'ca2');
    makeLeaf(dir, 'server', 'ca', 'serverAuth', 'localhost');
    makeLeaf(dir, 'server2', 'ca2', 'serverAuth', 'localhost');
    makeLeaf(dir, 'client', 'ca', 'clientAuth', 'it-client');
    makeLeaf(dir, 'rogueclient', 'rogue', 'clientAuth', 'it-rogue');
    const f = (n) => join(dir, n);
    const b = (n) => readFileSync(f(n));
    return {
        dir, f,
        ca: b('ca.crt'), ca2: b('ca2.crt'),
        clientCert: b('client.crt'), clientKey: b('client.key'),
        rogueCert: b('rogueclient.crt'), rogueKey: b('rogueclient.key'),
    };
}

// ---- clients -------------------------------------------------------------------------------

/** One HTTP(S) request without connection reuse; resolves {status, headers, body}. */
function request(url, { method = 'POST', headers = {}, body, ca, cert, key, maxVersion } = {}) {
    return new Promise((ok, fail) => {
        const u = new URL(url);
        const mod = u.protocol === 'https:' ? https : http;
        // SNI must be a host name; the certificate names localhost as well as 127.0.0.1.
        const tls = u.protocol === 'https:' ? { ca, cert, key, servername: 'localhost', ...(maxVersion ? { maxVersion } : {}) } : {};
        const req = mod.request(u, { method, headers, ...tls, agent: false }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
            res.on('error', fail);
        });
        req.on('error', fail);
        req.setTimeout(10000, () => req.destroy(new Error('request timed out')));
        req.end(body);
    });
}

const hex = (n) => randomBytes(n).toString('hex');

/** An OTLP/JSON trace request with one span called `name`. */
function jsonSpanBody(name) {
    const now = BigInt(Date.now()) * 1000000n;
    return JSON.stringify({
        resourceSpans: [{
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'it-tls' } }] },
            scopeSpans: [{
                scope: { name: 'tls-auth' },
                spans: [{ traceId: hex(16), spanId: hex(8), name, kind: 1,
                    startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n) }],
            }],
        }],
    });
}

function postSpan(gw, scheme, name, opts = {}) {
    return request(`${scheme}://127.0.0.1:${gw.ports.http}/v1/traces`, {
        ...opts,
        headers: { 'Content-Type': 'application/json', ...(opts.headers ?? {}) },
        body: jsonSpanBody(name),
    });
}

/** Exports one span named `name` through `exporter` with the SDK; returns the export result. */
async function exportSpan(exporter, name) {
    const rec = recording(exporter);
    const tp = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'it-tls-sdk' }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: rec.exporter })],
    });
    try {
        tp.getTracer('tls-auth').startSpan(name).end();
        // A failed export also rejects forceFlush; the recorded result is what we check.
        await tp.forceFlush().catch(() => {});
        const deadline = Date.now() + 20000;
        while (rec.results.length === 0 && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 20));
        assert.equal(rec.results.length, 1, `${name}: the exporter never reported a result`);
        return rec.results[0];
    } finally {
        await tp.shutdown().catch(() => {});
    }
}

/** A raw unary Export call with an empty request; resolves {err} (null on OK). */
function rawGrpcExport(target, creds, metadata = new grpc.Metadata()) {
    const client = new grpc.Client(target, creds);
    return new Promise((ok) => {
        client.makeUnaryRequest(GRPC_EXPORT, (b) => b, (b) => b, Buffer.alloc(0), metadata,
            { deadline: Date.now() + 10000 }, (err) => {
                client.close();
                ok({ err });
            });
    });
}

const spanNamed = (name) => (records) => allSpans(records).some((s) => s.span.name === name);
const countNamed = (records, name) => allSpans(records).filter((s) => s.span.name === name).length;

// ---- tests ---------------------------------------------------------------------------------

test('TLS, mTLS, certificate reload and bearer auth on both OTLP transports', async (t) => {
    const certs = makeCerts();
    t.after(() => rmSync(certs.dir, { recursive: true, force: true }));
    const serverTls = { cert_file: certs.f('server.crt'), key_file: certs.f('server.key') };

    await t.test('TLS: HTTPS and gRPC with the real OTel exporters deliver spans; plaintext does not', async (t2) => {
        const gw = await startGateway(t2, { grpc: { tls: serverTls }, http: { tls: serverTls } });
        const r = await postSpan(gw, 'https', 'https-fetch', { ca: certs.ca });
        assert.equal(r.status, 200, r.body.toString());
        // A client that does not trust our CA refuses the server.
        await assert.rejects(postSpan(gw, 'https', 'untrusted', { ca: certs.ca2 }));
        // Plaintext HTTP on the TLS port is not served.
        const plain = await postSpan(gw, 'http', 'plaintext').catch((e) => ({ error: e }));
        assert.ok(plain.error || plain.status >= 400, `plaintext got ${plain.status}`);

        const grpcRes = await exportSpan(new GrpcExporter({
            url: `https://127.0.0.1:${gw.ports.grpc}`,
            credentials: grpc.credentials.createSsl(certs.ca),
        }), 'grpc-tls-sdk');
        assert.equal(grpcRes.code, ExportResultCode.SUCCESS, `gRPC over TLS: ${grpcRes.error?.message}`);
        const httpRes = await exportSpan(new ProtoExporter({
            url: `https://127.0.0.1:${gw.ports.http}/v1/traces`,
            httpAgentOptions: { ca: certs.ca, servername: 'localhost' },
        }), 'http-tls-sdk');
        assert.equal(httpRes.code, ExportResultCode.SUCCESS, `HTTP over TLS: ${httpRes.error?.message}`);
        // gRPC without TLS against the TLS port fails.
        const insecure = await rawGrpcExport(gw.grpcTarget, grpc.credentials.createInsecure());
        assert.ok(insecure.err, 'plaintext gRPC to a TLS port must fail');

        for (const name of ['https-fetch', 'grpc-tls-sdk', 'http-tls-sdk']) {
            await gw.waitForSink(spanNamed(name), { what: name });
            assert.equal(countNamed(gw.readSink(), name), 1, `${name} exactly once`);
        }
        const sink = gw.readSink();
        assert.equal(countNamed(sink, 'untrusted') + countNamed(sink, 'plaintext'), 0);
        assert.equal((await gw.stop()).code, 0, gw.describe());
    });

    await t.test('HTTP: tls.min_version 1.3 refuses a TLS 1.2-only client', async (t2) => {
        const gw = await startGateway(t2, { http: { tls: { ...serverTls, min_version: '1.3' } } });
        await assert.rejects(postSpan(gw, 'https', 'tls12', { ca: certs.ca, maxVersion: 'TLSv1.2' }));
        const r = await postSpan(gw, 'https', 'tls13', { ca: certs.ca });
        assert.equal(r.status, 200);
        await gw.waitForSink(spanNamed('tls13'), { what: 'tls13' });
        assert.equal(countNamed(gw.readSink(), 'tls12'), 0);
        assert.equal((await gw.stop()).code, 0, gw.describe());
    });

    await t.test('mTLS: clients without a certificate or with a foreign one are refused', async (t2) => {
        const mtls = { ...serverTls, client_ca_file: certs.f('ca.crt') };
        const gw = await startGateway(t2, { grpc: { tls: mtls }, http: { tls: mtls } });
        await assert.rejects(postSpan(gw, 'https', 'mtls-nocert', { ca: certs.ca }));
        await assert.rejects(postSpan(gw, 'https', 'mtls-rogue', { ca: certs.ca, cert: certs.rogueCert, key: certs.rogueKey }));
        const ok = await postSpan(gw, 'https', 'mtls-https', { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
        assert.equal(ok.status, 200);

        const noCert = await rawGrpcExport(gw.grpcTarget, grpc.credentials.createSsl(certs.ca));
        assert.ok(noCert.err, 'gRPC without a client certificate must fail');
        const rogue = await rawGrpcExport(gw.grpcTarget, grpc.credentials.createSsl(certs.ca, certs.rogueKey, certs.rogueCert));
        assert.ok(rogue.err, 'gRPC with a certificate from another CA must fail');
        const res = await exportSpan(new GrpcExporter({
            url: `https://127.0.0.1:${gw.ports.grpc}`,
            credentials: grpc.credentials.createSsl(certs.ca, certs.clientKey, certs.clientCert),
        }), 'mtls-grpc-sdk');
        assert.equal(res.code, ExportResultCode.SUCCESS, `mTLS gRPC: ${res.error?.message}`);
        for (const name of ['mtls-https', 'mtls-grpc-sdk']) await gw.waitForSink(spanNamed(name), { what: name });
        const sink = gw.readSink();
        assert.equal(countNamed(sink, 'mtls-nocert') + countNamed(sink, 'mtls-rogue'), 0);
        assert.equal((await gw.stop()).code, 0, gw.describe());
    });

    await t.test('gRPC: a rotated server certificate is picked up (reload_interval)', async (t2) => {
        const dir = mkdtempSync(join(tmpdir(), 'llmgate-rot-'));
        t2.after(() => rmSync(dir, { recursive: true, force: true }));
        copyFileSync(certs.f('server.crt'), join(dir, 'tls.crt'));
        copyFileSync(certs.f('server.key'), join(dir, 'tls.key'));
        const gw = await startGateway(t2, {
            grpc: { tls: { cert_file: join(dir, 'tls.crt'), key_file: join(dir, 'tls.key'), reload_interval: '1s' } },
        });
        const before = await rawGrpcExport(gw.grpcTarget, grpc.credentials.createSsl(certs.ca));
        assert.equal(before.err, null, `before rotation: ${before.err?.message}`);
        // Rotate to a certificate from another CA; only clients trusting that CA succeed now.
        copyFileSync(certs.f('server2.key'), join(dir, 'tls.key.new'));
        copyFileSync(certs.f('server2.crt'), join(dir, 'tls.crt.new'));
        const { renameSync } = await import('node:fs');
        renameSync(join(dir, 'tls.key.new'), join(dir, 'tls.key'));
        renameSync(join(dir, 'tls.crt.new'), join(dir, 'tls.crt'));
        let after = { err: new Error('not tried') };
        const deadline = Date.now() + 15000;
        while (after.err && Date.now() < deadline) {
            await new Promise((ok) => setTimeout(ok, 300));
            after = await rawGrpcExport(gw.grpcTarget, grpc.credentials.createSsl(certs.ca2));
        }
        assert.equal(after.err, null, `after rotation: ${after.err?.message}\n${gw.describe()}`);
        const old = await rawGrpcExport(gw.grpcTarget, grpc.credentials.createSsl(certs.ca));
        assert.ok(old.err, 'the old CA must no longer verify the server');
        assert.equal((await gw.stop()).code, 0, gw.describe());
    });

    await t.test('bearer auth: 401 / UNAUTHENTICATED without the token, accepted with it', async (t2) => {
        const auth = { auth: { authenticator: 'bearertokenauth' } };
        const gw = await startGateway(t2, {
            grpc: auth,
            http: auth,
            extraConfigs: [{
                extensions: { bearertokenauth: { token: TOKEN } },
                service: { extensions: ['health_check', 'bearertokenauth'] },
            }],
        });
        // HTTP: missing, wrong, wrong scheme -> 401 with a Status in the request's encoding.
        for (const [what, headers] of [
            ['missing', {}],
            ['wrong token', { Authorization: `Bearer ${TOKEN}x` }],
            ['wrong scheme', { Authorization: `Basic ${TOKEN}` }],
        ]) {
            const r = await postSpan(gw, 'http', `denied-${what}`, { headers });
            assert.equal(r.status, 401, `${what}: ${r.status}`);
            assert.equal(r.headers['www-authenticate'], 'Bearer');
            assert.match(r.headers['content-type'], /^application\/json/);
            const st = JSON.parse(r.body.toString());
            assert.equal(st.code, 16, `${what}: ${r.body}`);
        }
        const pb = await request(`${gw.httpUrl}/v1/traces`, {
            headers: { 'Content-Type': 'application/x-protobuf' }, body: Buffer.alloc(0),
        });
        assert.equal(pb.status, 401);
        assert.equal(pb.headers['content-type'], 'application/x-protobuf');
        assert.equal(decodeStatus(pb.body).code, 16);
        // Health and self-metrics need no token.
        assert.equal((await request(gw.healthUrl, { method: 'GET' })).status, 200);
        assert.equal((await request(gw.metricsUrl, { method: 'GET' })).status, 200);

        const good = await postSpan(gw, 'http', 'allowed-fetch', { headers: { Authorization: `Bearer ${TOKEN}` } });
        assert.equal(good.status, 200, good.body.toString());
        const httpSdk = await exportSpan(new ProtoExporter({
            url: `${gw.httpUrl}/v1/traces`, headers: { Authorization: `Bearer ${TOKEN}` },
        }), 'allowed-http-sdk');
        assert.equal(httpSdk.code, ExportResultCode.SUCCESS, httpSdk.error?.message);
        const httpSdkBad = await exportSpan(new ProtoExporter({
            url: `${gw.httpUrl}/v1/traces`, headers: { Authorization: 'Bearer nope' },
        }), 'denied-http-sdk');
        assert.equal(httpSdkBad.code, ExportResultCode.FAILED);

        // gRPC: raw calls for the exact status, the SDK exporter with metadata for delivery.
        const none = await rawGrpcExport(gw.grpcTarget, grpc.credentials.createInsecure());
        assert.equal(none.err?.code, grpc.status.UNAUTHENTICATED, `missing: ${none.err?.message}`);
        const md = new grpc.Metadata();
        md.set('authorization', `Bearer ${TOKEN}-no`);
        const wrong = await rawGrpcExport(gw.grpcTarget, grpc.credentials.createInsecure(), md);
        assert.equal(wrong.err?.code, grpc.status.UNAUTHENTICATED, `wrong: ${wrong.err?.message}`);
        const mdOk = new grpc.Metadata();
        mdOk.set('authorization', `Bearer ${TOKEN}`);
        const right = await rawGrpcExport(gw.grpcTarget, grpc.credentials.createInsecure(), mdOk);
        assert.equal(right.err, null, `right token: ${right.err?.message}`);
        const grpcSdk = await exportSpan(new GrpcExporter({ url: gw.grpcUrl, metadata: mdOk }), 'allowed-grpc-sdk');
        assert.equal(grpcSdk.code, ExportResultCode.SUCCESS, grpcSdk.error?.message);
        const grpcSdkBad = await exportSpan(new GrpcExporter({ url: gw.grpcUrl, metadata: md }), 'denied-grpc-sdk');
        assert.equal(grpcSdkBad.code, ExportResultCode.FAILED);

        for (const name of ['allowed-fetch', 'allowed-http-sdk', 'allowed-grpc-sdk']) {
            await gw.waitForSink(spanNamed(name), { what: name });
            assert.equal(countNamed(gw.readSink(), name), 1, `${name} exactly once`);
        }
        const spans = allSpans(gw.readSink());
        assert.equal(spans.filter((s) => s.span.name.startsWith('denied-')).length, 0, 'no refused span reached the sink');
        // Refused-for-auth requests are not counted as accepted.
        const m = await gw.selfMetrics();
        assert.equal(promValue(m, 'otelcol_receiver_accepted_spans', { receiver: 'otlp', transport: 'http' }), 2);
        assert.equal(promValue(m, 'otelcol_receiver_accepted_spans', { receiver: 'otlp', transport: 'grpc' }), 1);
        assert.ok(promValue(m, 'llmgate_auth_failures', { extension: 'bearertokenauth' }) >= 8);
        assert.equal((await gw.stop()).code, 0, gw.describe());
    });

    await t.test('config: a tls section without a certificate, or an unlisted authenticator, is an error', () => {
        const base = 'exporters: {debug: {}}\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [debug]}\n';
        const noCert = runCli(['validate', '--config',
            `yaml:receivers:\n  otlp:\n    protocols:\n      http:\n        tls: {client_ca_file: ${certs.f('ca.crt')}}\n${base}`]);
        assert.notEqual(noCert.status, 0);
        assert.match(noCert.stderr, /receivers\.otlp\.protocols\.http\.tls: cert_file and key_file are required/);
        const unlisted = runCli(['validate', '--config',
            `yaml:receivers:\n  otlp:\n    protocols:\n      grpc:\n        auth: {authenticator: bearertokenauth}\n` +
            `extensions: {bearertokenauth: {token: x}}\n${base}`]);
        assert.notEqual(unlisted.status, 0);
        assert.match(unlisted.stderr, /receivers\.otlp\.protocols\.grpc\.auth\.authenticator: authenticator "bearertokenauth" is not listed in service\.extensions/);
        const ok = runCli(['validate', '--config',
            `yaml:receivers:\n  otlp:\n    protocols:\n      grpc:\n        auth: {authenticator: bearertokenauth}\n` +
            `extensions: {bearertokenauth: {token: x}}\n${base}  extensions: [bearertokenauth]\n`]);
        assert.equal(ok.status, 0, ok.stderr);
    });

    await t.test('bearer auth with TLS and a token file', async (t2) => {
        const dir = mkdtempSync(join(tmpdir(), 'llmgate-tok-'));
        t2.after(() => rmSync(dir, { recursive: true, force: true }));
        writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
        const sec = { tls: serverTls, auth: { authenticator: 'bearertokenauth/file' } };
        const gw = await startGateway(t2, {
            grpc: sec,
            http: sec,
            extraConfigs: [{
                extensions: { 'bearertokenauth/file': { filename: join(dir, 'token') } },
                service: { extensions: ['health_check', 'bearertokenauth/file'] },
            }],
        });
        const denied = await postSpan(gw, 'https', 'tls-denied', { ca: certs.ca });
        assert.equal(denied.status, 401);
        const ok = await postSpan(gw, 'https', 'tls-bearer', { ca: certs.ca, headers: { Authorization: `Bearer ${TOKEN}` } });
        assert.equal(ok.status, 200);
        const md = new grpc.Metadata();
        md.set('authorization', `Bearer ${TOKEN}`);
        const res = await exportSpan(new GrpcExporter({
            url: `https://127.0.0.1:${gw.ports.grpc}`,
            credentials: grpc.credentials.createSsl(certs.ca),
            metadata: md,
        }), 'tls-bearer-grpc');
        assert.equal(res.code, ExportResultCode.SUCCESS, res.error?.message);
        for (const name of ['tls-bearer', 'tls-bearer-grpc']) await gw.waitForSink(spanNamed(name), { what: name });
        assert.equal(countNamed(gw.readSink(), 'tls-denied'), 0);
        assert.equal((await gw.stop()).code, 0, gw.describe());
    });
});
