// tests/integration/lib/fake_azure.mjs — a fake Application Insights ingestion endpoint
// (POST /v2.1/track) that follows the real protocol (REFERENCE §6), on 127.0.0.1 only.
//
// - TLS with a throw-away CA made here by the openssl CLI (the official JS exporter rewrites
//   http:// to https://, so the golden test needs TLS); HTTP/2 and HTTP/1.1 on one port
//   (ALPN), or plain HTTP/1.1 when started without TLS.
// - Accepts a JSON array or newline-delimited envelopes (application/x-json-stream), with
//   or without Content-Encoding: gzip / deflate.
// - Validates every envelope (schema, required fields, field and tag length limits, time
//   window, property types) and answers like the service: 200 when all are accepted, 206
//   with per-item errors {index, statusCode: 400, message} for invalid ones.
// - A script (respond()) can override the answer per request: a status (429/500/503 with
//   Retry-After, 307/308 with Location), or a 206 with chosen per-item codes (and
//   messages, e.g. "Telemetry sampled out."), optionally after a delay.
// - FakeTokenEndpoint: an Entra ID token endpoint (client-credentials grant) that records
//   each request's form and hands out numbered tokens with a chosen lifetime.
// Owns: its server and the ledgers `requests` (every request, in order) and `accepted`
// (envelopes answered with 200/206-accepted, in order).

import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { LOOPBACK } from './gateway.mjs';

function openssl(args, cwd) {
    const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

/** A CA and a server certificate for 127.0.0.1 / localhost in `dir`. */
export function makeTestCerts(dir) {
    fs.mkdirSync(dir, { recursive: true });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
        '-subj', '/CN=llmgate test CA'], dir);
    openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr',
        '-subj', '/CN=localhost'], dir);
    fs.writeFileSync(path.join(dir, 'ext.cnf'),
        'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
        '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf'], dir);
    const p = (f) => path.join(dir, f);
    return {
        caFile: p('ca.pem'), certFile: p('server.pem'), keyFile: p('server.key'),
        caPem: fs.readFileSync(p('ca.pem'), 'utf8'),
    };
}

const BASE_TYPES = {
    'Microsoft.ApplicationInsights.Request': 'RequestData',
    'Microsoft.ApplicationInsights.RemoteDependency': 'RemoteDependencyData',
    'Microsoft.ApplicationInsights.Exception': 'ExceptionData',
    'Microsoft.ApplicationInsights.Message': 'MessageData',
    'Microsoft.ApplicationInsights.Metric': 'MetricData',
    'Microsoft.ApplicationInsights.Event': 'EventData',
};
const TAG_LIMITS = {
    'ai.operation.id': 128, 'ai.operation.parentId': 128, 'ai.user.id': 128,
    'ai.operation.name': 1024, 'ai.cloud.role': 256, 'ai.cloud.roleInstance': 256,
    'ai.location.ip': 45, 'ai.internal.sdkVersion': 64,
};
const FIELD_LIMITS = {
    RequestData: { name: 1024, id: 128, responseCode: 1024, url: 2048, source: 1024 },
    RemoteDependencyData: { name: 1024, id: 128, resultCode: 1024, data: 8192, type: 1024, target: 1024 },
    MessageData: { message: 32768 },
    EventData: { name: 512 },
};
const DURATION_RE = /^(\d+\.)?\d{2}:\d{2}:\d{2}(\.\d{1,7})?$/;
const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function checkProps(where, props, errs) {
    if (props === undefined) return;
    if (typeof props !== 'object' || props === null || Array.isArray(props)) {
        errs.push(`${where}.properties is not an object`);
        return;
    }
    for (const [k, v] of Object.entries(props)) {
        if (k.length > 150) errs.push(`${where}.properties key longer than 150: ${k.slice(0, 40)}…`);
        if (typeof v !== 'string') errs.push(`${where}.properties.${k} is not a string`);
        else if (v.length > 8192) errs.push(`${where}.properties.${k} longer than 8192`);
    }
}

function checkMeasurements(where, m, errs) {
    if (m === undefined) return;
    for (const [k, v] of Object.entries(m ?? {}))
        if (typeof v !== 'number' || !Number.isFinite(v)) errs.push(`${where}.measurements.${k} is not a finite number`);
}

/** Problems with one envelope, as the service would refuse it ([] = valid). */
export function validateEnvelope(e, { now = Date.now(), checkTime = true } = {}) {
    const errs = [];
    if (typeof e !== 'object' || e === null) return ['envelope is not an object'];
    if (e.ver !== 1) errs.push('ver must be 1');
    const baseType = BASE_TYPES[e.name];
    if (!baseType) errs.push(`unknown name ${e.name}`);
    if (typeof e.iKey !== 'string' || !GUID_RE.test(e.iKey)) errs.push('iKey is not a GUID');
    const t = Date.parse(e.time);
    if (typeof e.time !== 'string' || !e.time.endsWith('Z') || Number.isNaN(t)) errs.push(`time ${e.time} is not ISO-8601 UTC`);
    else if (checkTime && (t < now - 48 * 3600e3 || t > now + 2 * 3600e3)) errs.push(`time ${e.time} outside the accepted window`);
    if (e.sampleRate !== undefined && !(typeof e.sampleRate === 'number' && e.sampleRate > 0 && e.sampleRate <= 100))
        errs.push(`sampleRate ${e.sampleRate} not in (0, 100]`);
    for (const [k, v] of Object.entries(e.tags ?? {})) {
        if (typeof v !== 'string') errs.push(`tag ${k} is not a string`);
        else if (TAG_LIMITS[k] && v.length > TAG_LIMITS[k]) errs.push(`tag ${k} longer than ${TAG_LIMITS[k]}`);
    }
    const d = e.data;
    if (!d || d.baseType !== baseType || typeof d.baseData !== 'object') {
        errs.push(`data.baseType ${d?.baseType} does not match ${e.name}`);
        return errs;
    }
    const b = d.baseData;
    if (b.ver !== 2) errs.push('baseData.ver must be 2');
    for (const [f, lim] of Object.entries(FIELD_LIMITS[baseType] ?? {}))
        if (typeof b[f] === 'string' && b[f].length > lim) errs.push(`${baseType}.${f} longer than ${lim}`);
    const need = (f, type) => {
        if (typeof b[f] !== type) errs.push(`${baseType}.${f} missing or not a ${type}`);
    };
    switch (baseType) {
    case 'RequestData':
        need('id', 'string'); need('name', 'string'); need('duration', 'string');
        need('responseCode', 'string'); need('success', 'boolean');
        break;
    case 'RemoteDependencyData':
        need('name', 'string'); need('duration', 'string'); need('success', 'boolean');
        break;
    case 'MessageData':
        need('message', 'string');
        break;
    case 'ExceptionData':
        if (!Array.isArray(b.exceptions) || b.exceptions.length === 0) errs.push('ExceptionData.exceptions empty');
        for (const x of b.exceptions ?? []) {
            if (typeof x.typeName !== 'string' || typeof x.message !== 'string') errs.push('exception without typeName/message');
            if ((x.message ?? '').length > 32768 || (x.stack ?? '').length > 32768) errs.push('exception message/stack longer than 32768');
        }
        break;
    case 'MetricData':
        if (!Array.isArray(b.metrics) || b.metrics.length === 0) errs.push('MetricData.metrics empty');
        for (const m of b.metrics ?? [])
            if (typeof m.name !== 'string' || typeof m.value !== 'number') errs.push('metric without name/value');
        break;
    case 'EventData':
        need('name', 'string');
        break;
    }
    if (typeof b.duration === 'string' && !DURATION_RE.test(b.duration)) errs.push(`duration ${b.duration} malformed`);
    checkProps(baseType, b.properties, errs);
    checkMeasurements(baseType, b.measurements, errs);
    return errs;
}

function decodeBody(buf, encoding) {
    switch ((encoding ?? '').toLowerCase()) {
    case '': case 'identity': return buf;
    case 'gzip': return zlib.gunzipSync(buf);
    case 'deflate': return zlib.inflateSync(buf);
    default: throw new Error(`unsupported Content-Encoding ${encoding}`);
    }
}

function parseEnvelopes(text) {
    const t = text.trim();
    if (t.startsWith('[')) return JSON.parse(t);
    return t.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

export class FakeIngestion {
    /**
     * opts.tls: {certFile, keyFile} for HTTPS (HTTP/2 + HTTP/1.1), omitted for plain HTTP.
     * opts.checkTime: refuse times outside the service's window (default true).
     */
    constructor(opts = {}) {
        this.opts = opts;
        this.requests = [];
        this.accepted = [];
        this.script = null;
        this.server = null;
        this.port = 0;
    }

    /** `fn({index, headers, envelopes, errors})` returns null (default answer) or
     *  {status, headers?, body?} or {itemCodes: [code per envelope], itemMessages?: [text per
     *  envelope]} (a 206/200 built from the codes; items with 200 are accepted); any of them
     *  may add delayMs (answer that much later). */
    respond(fn) { this.script = fn; }

    get url() { return `${this.opts.tls ? 'https' : 'http'}://${LOOPBACK}:${this.port}/`; }

    async start(port = 0) {
        const handler = (req, res) => this.#handle(req, res);
        if (this.opts.tls) {
            this.server = http2.createSecureServer({
                cert: fs.readFileSync(this.opts.tls.certFile),
                key: fs.readFileSync(this.opts.tls.keyFile),
                allowHTTP1: true,
            }, handler);
        } else {
            this.server = http.createServer(handler);
        }
        await new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen(port, LOOPBACK, resolve);
        });
        this.port = this.server.address().port;
        return this;
    }

    async stop() {
        if (!this.server) return;
        const s = this.server;
        this.server = null;
        await new Promise((resolve) => {
            s.close(() => resolve());
            // HTTP/1.1 keep-alive and HTTP/2 sessions would hold close() open.
            if (s.closeAllConnections) s.closeAllConnections();
            setTimeout(resolve, 2000).unref();
        });
    }

    /** Waits until `pred()` is true (polling), up to timeoutMs. */
    async waitFor(pred, timeoutMs = 30000, what = 'condition') {
        const until = Date.now() + timeoutMs;
        while (!pred()) {
            if (Date.now() > until) throw new Error(`fake ingestion: timed out waiting for ${what}`);
            await new Promise((r) => setTimeout(r, 50));
        }
    }

    #handle(req, res) {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const rec = {
                index: this.requests.length,
                method: req.method,
                path: req.url,
                httpVersion: req.httpVersion,
                headers: { ...req.headers },
                rawBytes: 0,
                envelopes: [],
                errors: [],
                status: 0,
                at: Date.now(),
            };
            this.requests.push(rec);
            let delayMs = 0;
            const send = (status, body, headers = {}) => {
                rec.status = status;
                const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
                const reply = () => {
                    res.writeHead(status, { 'content-type': 'application/json', ...headers });
                    res.end(text);
                };
                if (delayMs > 0) setTimeout(reply, delayMs);
                else reply();
            };
            if (req.method !== 'POST' || !req.url.startsWith('/v2.1/track') && !req.url.startsWith('/v2/track'))
                return send(404, { error: `no route ${req.method} ${req.url}` });
            const raw = Buffer.concat(chunks);
            rec.rawBytes = raw.length;
            let envs;
            try {
                envs = parseEnvelopes(decodeBody(raw, req.headers['content-encoding']).toString('utf8'));
                if (!Array.isArray(envs)) throw new Error('body is not an array of envelopes');
            } catch (e) {
                rec.errors.push(String(e.message));
                return send(400, { itemsReceived: 0, itemsAccepted: 0, errors: [{ index: 0, statusCode: 400, message: String(e.message) }] });
            }
            rec.envelopes = envs;
            const problems = envs.map((e) => validateEnvelope(e, { checkTime: this.opts.checkTime !== false }));
            rec.errors = problems.flatMap((p, i) => p.map((m) => `item ${i}: ${m}`));
            const scripted = this.script ? this.script(rec) : null;
            delayMs = scripted?.delayMs ?? 0;
            if (scripted && scripted.status !== undefined)
                return send(scripted.status, scripted.body, scripted.headers);
            const codes = scripted?.itemCodes ?? problems.map((p) => (p.length ? 400 : 200));
            const errors = [];
            codes.forEach((c, i) => {
                if (c === 200) this.accepted.push(envs[i]);
                else errors.push({ index: i, statusCode: c, message: scripted?.itemMessages?.[i] ?? (problems[i]?.join('; ') || `scripted ${c}`) });
            });
            send(errors.length ? 206 : 200, {
                itemsReceived: envs.length,
                itemsAccepted: envs.length - errors.length,
                appId: null,
                errors,
            }, scripted?.headers);
        });
    }
}

/** span id (data.baseData.id) of a Request or RemoteDependency envelope, else undefined. */
export function envelopeSpanId(e) {
    if (e?.name !== 'Microsoft.ApplicationInsights.Request' && e?.name !== 'Microsoft.ApplicationInsights.RemoteDependency')
        return undefined;
    return e.data?.baseData?.id;
}

/** Accepted Request/RemoteDependency envelopes counted by span id: Map id -> count. */
export function acceptedSpanCounts(fake) {
    const m = new Map();
    for (const e of fake.accepted) {
        const id = envelopeSpanId(e);
        if (id !== undefined) m.set(id, (m.get(id) ?? 0) + 1);
    }
    return m;
}

/**
 * A fake Entra ID token endpoint: POST {base}/{tenant}/oauth2/v2.0/token (or any path) with
 * an application/x-www-form-urlencoded client-credentials request. Answers
 * {access_token: `tok-N`, expires_in} where N counts fetches from 1; `expiresIn` (seconds)
 * may be changed between fetches. Records every request's form in `requests`.
 */
export class FakeTokenEndpoint {
    constructor({ expiresIn = 3600 } = {}) {
        this.expiresIn = expiresIn;
        this.requests = [];
        this.server = null;
        this.port = 0;
    }

    get authorityHost() { return `http://${LOOPBACK}:${this.port}/`; }

    async start() {
        this.server = http.createServer((req, res) => {
            const chunks = [];
            req.on('data', (c) => chunks.push(c));
            req.on('end', () => {
                const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
                this.requests.push({ path: req.url, form, headers: { ...req.headers }, at: Date.now() });
                const n = this.requests.length;
                res.writeHead(200, { 'content-type': 'application/json' });
                res.end(JSON.stringify({ token_type: 'Bearer', expires_in: this.expiresIn, ext_expires_in: this.expiresIn, access_token: `tok-${n}` }));
            });
        });
        await new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen(0, LOOPBACK, resolve);
        });
        this.port = this.server.address().port;
        return this;
    }

    async stop() {
        if (!this.server) return;
        const s = this.server;
        this.server = null;
        await new Promise((resolve) => {
            s.close(() => resolve());
            if (s.closeAllConnections) s.closeAllConnections();
            setTimeout(resolve, 2000).unref();
        });
    }
}

/** An instrumentation key for tests (a GUID). */
export const TEST_IKEY = '11111111-2222-4333-8444-555555555555';

/**
 * A gateway config: otlp receiver (HTTP + gRPC) -> azure_monitor (with `exporter` merged
 * into its settings) -> the fake at ingestionUrl; self-metrics and health on ctx's ports.
 * opts.storage: a file_storage extension for a persistent sending queue.
 * opts.processors: {id: config} put in the pipeline in order.
 */
export function azureGatewayConfig(ctx, ingestionUrl, exporter = {}, opts = {}) {
    const extensions = { health_check: { endpoint: `${LOOPBACK}:${ctx.ports.health}` } };
    if (opts.storage) extensions.file_storage = { directory: path.join(ctx.dir, 'queue'), create_directory: true };
    const { sending_queue: sq, ...rest } = exporter;
    return {
        receivers: {
            otlp: {
                protocols: {
                    grpc: { endpoint: `${LOOPBACK}:${ctx.ports.grpc}` },
                    http: { endpoint: `${LOOPBACK}:${ctx.ports.http}` },
                },
            },
        },
        ...(opts.processors ? { processors: opts.processors } : {}),
        exporters: {
            azure_monitor: {
                connection_string: `InstrumentationKey=${TEST_IKEY};IngestionEndpoint=${ingestionUrl}`,
                timeout: '2s',
                retry_on_failure: { initial_interval: '100ms', max_interval: '1s', max_elapsed_time: '0' },
                ...rest,
                sending_queue: {
                    num_consumers: 2,
                    queue_size: 100000,
                    sizer: 'items',
                    ...(opts.storage ? { storage: 'file_storage' } : {}),
                    ...(sq ?? {}),
                },
            },
        },
        extensions,
        service: {
            extensions: Object.keys(extensions),
            telemetry: { metrics: { address: `${LOOPBACK}:${ctx.ports.metrics}` } },
            pipelines: {
                traces: {
                    receivers: ['otlp'],
                    ...(opts.processors ? { processors: Object.keys(opts.processors) } : {}),
                    exporters: ['azure_monitor'],
                },
            },
        },
    };
}
