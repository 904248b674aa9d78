#!/usr/bin/env node
// bench/azure_sink.mjs — a minimal Application Insights ingestion sink for the azure_monitor
// benchmark (bench/run.sh starts it for a scenario whose exporter is azure_monitor): accepts
// POST /v2.1/track (gzip or plain JSON array), counts envelopes without parsing them (the
// sink's CPU is not the gateway's, but it must keep up), and answers 200 with
// itemsReceived/itemsAccepted like the service.
//
// Prints, like bench/sink.c, a progress line every --interval seconds and a final
//   RESULT requests=... spans=... bytes=... seconds=... spans_per_sec=... bad=... envelopes=...
// on SIGTERM/SIGINT. `spans` counts span envelopes (Request + RemoteDependency: one per
// span); `envelopes` counts all of them (also exception/message events and the
// per-resource _OTELRESOURCE_ metric). Owns its server only.
//
// Usage: node bench/azure_sink.mjs --port 47419 [--interval 0.2]

import http from 'node:http';
import zlib from 'node:zlib';
import { promisify } from 'node:util';

const gunzip = promisify(zlib.gunzip); // libuv's thread pool: inflates in parallel

const args = process.argv.slice(2);
const opt = (name, def) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const port = Number(opt('port', '47419'));
const intervalS = Number(opt('interval', '1'));

const SPAN_NAMES = [
    Buffer.from('"name":"Microsoft.ApplicationInsights.Request"'),
    Buffer.from('"name":"Microsoft.ApplicationInsights.RemoteDependency"'),
];
const ENVELOPE = Buffer.from('"iKey":"');

function count(buf, needle) {
    let n = 0;
    for (let i = buf.indexOf(needle); i >= 0; i = buf.indexOf(needle, i + needle.length)) n++;
    return n;
}

const st = { requests: 0, spans: 0, envelopes: 0, bytes: 0, bad: 0 };
const started = process.hrtime.bigint();

const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
        const raw = Buffer.concat(chunks);
        let body;
        try {
            if (req.method !== 'POST' || !req.url.startsWith('/v2.1/track')) throw new Error(`no route ${req.url}`);
            body = (req.headers['content-encoding'] ?? '') === 'gzip' ? await gunzip(raw) : raw;
        } catch (e) {
            st.bad++;
            res.writeHead(400, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: String(e.message) }));
            return;
        }
        const envelopes = count(body, ENVELOPE);
        st.requests++;
        st.bytes += raw.length;
        st.envelopes += envelopes;
        st.spans += count(body, SPAN_NAMES[0]) + count(body, SPAN_NAMES[1]);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`{"itemsReceived":${envelopes},"itemsAccepted":${envelopes},"errors":[]}`);
    });
});

function line(prefix) {
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    return `${prefix}requests=${st.requests} spans=${st.spans} bytes=${st.bytes} seconds=${secs.toFixed(3)} ` +
        `spans_per_sec=${secs > 0 ? (st.spans / secs).toFixed(0) : 0} bad=${st.bad} envelopes=${st.envelopes}`;
}

server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', () => console.log(`sink: Application Insights ingestion on port ${port}`));
const timer = setInterval(() => console.log(line('sink: ')), intervalS * 1000);
const stop = () => {
    clearInterval(timer);
    console.log(line('RESULT '));
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
