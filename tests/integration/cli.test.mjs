// tests/integration/cli.test.mjs — the llmgate command line and process lifecycle:
// `validate` on a real-world Collector config and on broken ones (errors name file:line:col
// and the YAML path), `components`, `print-config` merging, `version`, a busy port at start,
// graceful flush of pending batches on SIGTERM, `--log-format json`, and the debug exporter.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, basename } from 'node:path';
import { SpanKind } from '@opentelemetry/api';
import { TracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import YAML from 'yaml';

import { runCli, startGateway, makeContext, standardConfig, toYaml, freePort, FIXTURES, LOOPBACK } from './lib/gateway.mjs';
import { allSpans, spansOfTrace, recording, assertExportsSucceeded } from './lib/otlp.mjs';

// Variables the fixtures read: start from a known state whatever the caller's environment.
for (const k of Object.keys(process.env)) if (k.startsWith('LG_')) delete process.env[k];

const REALWORLD = join(FIXTURES, 'collector-realworld.yaml');

function tempDir(t) {
    const dir = mkdtempSync(join(tmpdir(), 'llmgate-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
}

function output(r) {
    return `${r.stderr}${r.stdout}`;
}

function show(r) {
    return `exit ${r.status} (signal ${r.signal})\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`;
}

/** 1-based line and column of the first occurrence of `needle` in `text`. */
function position(text, needle) {
    const at = text.indexOf(needle);
    assert.ok(at >= 0, `fixture does not contain ${needle}`);
    const before = text.slice(0, at).split('\n');
    return { line: before.length, col: before[before.length - 1].length + 1 };
}

/** Sends one span through the OTLP/HTTP JSON exporter and returns its trace ID. */
async function sendSpan(gw, name, attributes = {}) {
    const rec = recording(new JsonExporter({ url: `${gw.httpUrl}/v1/traces` }));
    const tp = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'it-cli' }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: rec.exporter })],
    });
    try {
        const span = tp.getTracer('it-cli').startSpan(name, { kind: SpanKind.SERVER, attributes });
        span.end();
        await tp.forceFlush();
        await assertExportsSucceeded(rec, name);
        return span.spanContext().traceId;
    } finally {
        await tp.shutdown();
    }
}

test('validate accepts a real-world Collector config (flow style, anchors, named components, env)', (t) => {
    const dir = tempDir(t);
    const r = runCli(['validate', '--config', REALWORLD],
        { env: { LG_IT_GRPC_ENDPOINT: '127.0.0.1:5555', LG_IT_SINK_DIR: dir } });
    assert.equal(r.status, 0, show(r));
});

test('validate names the unset variable of the real-world config with file:line:col', (t) => {
    const dir = tempDir(t);
    const r = runCli(['validate', '--config', REALWORLD], { env: { LG_IT_SINK_DIR: dir } });
    assert.equal(r.status, 1, show(r));
    const text = readFileSync(REALWORLD, 'utf8');
    const { line } = position(text, '${env:LG_IT_GRPC_ENDPOINT}');
    const out = output(r);
    assert.match(out, new RegExp(`collector-realworld\\.yaml:${line}:\\d+`), show(r));
    assert.ok(out.includes('receivers.otlp.protocols.grpc.endpoint'), show(r));
    assert.ok(out.includes('environment variable "LG_IT_GRPC_ENDPOINT" is not set'), show(r));
});

test('print-config shows the real-world config expanded: env values, defaults, aliases, $$', (t) => {
    const dir = tempDir(t);
    const r = runCli(['print-config', '--config', REALWORLD],
        { env: { LG_IT_GRPC_ENDPOINT: '127.0.0.1:5555', LG_IT_SINK_DIR: dir } });
    assert.equal(r.status, 0, show(r));
    const cfg = YAML.parse(r.stdout);
    assert.equal(cfg.receivers.otlp.protocols.grpc.endpoint, '127.0.0.1:5555', 'env value');
    assert.equal(cfg.receivers.otlp.protocols.grpc.max_recv_msg_size_mib, 16);
    assert.equal(cfg.receivers.otlp.protocols.http.endpoint, '127.0.0.1:4318', 'env default');
    assert.equal(cfg.extensions.health_check.endpoint, '127.0.0.1:13133');
    assert.deepEqual(cfg.processors['batch/traces'], { send_batch_size: 8192, timeout: '200ms' }, 'alias');
    assert.equal(cfg.exporters['file/traces'].path, `${dir}/traces.jsonl`);
    // Values are printed expanded, with a literal $ written back as $$ so reloading is safe.
    assert.equal(cfg.exporters['file/raw'].path, `${dir}/raw$$1.bin`, 'literal $ re-escaped');
    assert.deepEqual(cfg.service.pipelines.metrics.receivers, ['otlp', 'otlp/internal'], 'sequence alias');
    assert.deepEqual(Object.keys(cfg.service.pipelines).sort(),
        ['logs', 'logs/internal', 'metrics', 'metrics/detailed', 'traces', 'traces/raw']);

    // The printed config is itself valid and prints back identically (no env needed now).
    const printed = join(dir, 'printed.yaml');
    writeFileSync(printed, r.stdout);
    const again = runCli(['print-config', '--config', printed]);
    assert.equal(again.status, 0, show(again));
    assert.equal(again.stdout, r.stdout, 'print-config output round-trips');
});

test('$$ in a config value is a literal $ at run time (file exporter path)', async (t) => {
    const ctx = await makeContext();
    const sink = join(ctx.dir, 'sink$x.jsonl');
    const gw = await startGateway(t, {
        ctx,
        config: () => {
            const c = standardConfig(ctx, { batch: false });
            c.exporters.file.path = join(ctx.dir, 'sink$$x.jsonl');
            return c;
        },
    });
    const traceId = await sendSpan(gw, 'dollar-path');
    await gw.waitForSink(spansOfTrace(traceId, 1), { path: sink, what: `the span in ${sink}` });
    const r = await gw.stop();
    assert.deepEqual(r, { code: 0, signal: null }, gw.describe());
});

// Each broken config: the text, the marker whose position the error must name, the YAML
// path and a message pattern. Positions: a map value is reported at its key, a sequence
// item at the item.
const BROKEN = [
    {
        name: 'unknown component type',
        yaml: `receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:4317"}
exporters:
  debug: {}
  nosuch: {}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
`,
        marker: 'nosuch: {}', path: 'exporters.nosuch', message: /unknown (component|exporter) type/,
    },
    {
        name: 'unknown key',
        yaml: `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
processors:
  batch:
    send_batch_size: 100
    send_batch_sizee: 10
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
`,
        marker: 'send_batch_sizee', path: 'processors.batch.send_batch_sizee', message: /unknown key/,
    },
    {
        name: 'bad duration',
        yaml: `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
processors:
  batch: {send_batch_size: 100,
          timeout: 5 seconds}
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
`,
        marker: 'timeout: 5 seconds', path: 'processors.batch.timeout', message: /5 seconds/,
    },
    {
        name: 'pipeline names an undefined component',
        yaml: `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file/missing, debug]
`,
        marker: 'file/missing', path: 'service.pipelines.traces.exporters[0]', message: /file\/missing/,
    },
    {
        name: 'env var missing without default',
        yaml: `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: \${env:LG_TEST_MISSING}
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
`,
        marker: 'endpoint: ${env:LG_TEST_MISSING}', path: 'receivers.otlp.protocols.grpc.endpoint',
        message: /environment variable "LG_TEST_MISSING" is not set/,
    },
];

test('validate rejects broken configs naming file:line:col and the YAML path', async (t) => {
    const dir = tempDir(t);
    for (const b of BROKEN) {
        await t.test(b.name, () => {
            const file = join(dir, `${b.name.replace(/\W+/g, '-')}.yaml`);
            writeFileSync(file, b.yaml);
            const r = runCli(['validate', '--config', file]);
            assert.equal(r.status, 1, show(r));
            const out = output(r);
            const { line, col } = position(b.yaml, b.marker);
            assert.ok(out.includes(`${basename(file)}:${line}:${col}`),
                `expected ${basename(file)}:${line}:${col} in the error\n${show(r)}`);
            assert.ok(out.includes(b.path), `expected the YAML path ${b.path}\n${show(r)}`);
            assert.match(out, b.message, show(r));
        });
    }
    await t.test('a missing config file is named', () => {
        const file = join(dir, 'does-not-exist.yaml');
        const r = runCli(['validate', '--config', file]);
        assert.equal(r.status, 1, show(r));
        assert.ok(output(r).includes('does-not-exist.yaml'), show(r));
    });
});

test('components lists otlp, batch, debug, file, health_check', () => {
    const r = runCli(['components']);
    assert.equal(r.status, 0, show(r));
    for (const name of ['otlp', 'batch', 'debug', 'file', 'health_check']) {
        assert.match(r.stdout, new RegExp(`\\b${name}\\b`), `${name} missing from\n${r.stdout}`);
    }
});

test('version prints a semantic version', () => {
    const r = runCli(['version']);
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdout, /\d+\.\d+\.\d+/);
});

test('print-config merges two --config files, later wins', (t) => {
    const dir = tempDir(t);
    const a = join(dir, 'a.yaml');
    const b = join(dir, 'b.yaml');
    writeFileSync(a, `receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:4317"}
      http: {endpoint: "127.0.0.1:4318"}
processors:
  batch: {timeout: 1s, send_batch_size: 100}
exporters:
  debug: {verbosity: basic}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [debug]}
`);
    writeFileSync(b, `processors:
  batch: {timeout: 2s}
exporters:
  debug: {verbosity: detailed}
  file: {path: "${dir}/out.jsonl"}
service:
  pipelines:
    traces: {exporters: [debug, file]}
`);
    const r = runCli(['print-config', '--config', a, '--config', b]);
    assert.equal(r.status, 0, show(r));
    const cfg = YAML.parse(r.stdout);
    assert.deepEqual(cfg.processors.batch, { timeout: '2s', send_batch_size: 100 }, 'maps merge key by key');
    assert.equal(cfg.exporters.debug.verbosity, 'detailed', 'later wins');
    assert.equal(cfg.exporters.file.path, `${dir}/out.jsonl`);
    assert.equal(cfg.receivers.otlp.protocols.http.endpoint, '127.0.0.1:4318', 'kept from the first file');
    assert.deepEqual(cfg.service.pipelines.traces,
        { receivers: ['otlp'], processors: ['batch'], exporters: ['debug', 'file'] }, 'sequences are replaced');
    // The merged result is itself a valid config.
    const v = runCli(['validate', '--config', a, '--config', b]);
    assert.equal(v.status, 0, show(v));
});

test('a busy port at start: exit non-zero naming the port', async (t) => {
    for (const proto of ['grpc', 'http']) {
        await t.test(proto, async (t2) => {
            const blocker = net.createServer();
            await new Promise((ok) => blocker.listen(0, LOOPBACK, ok));
            t2.after(() => blocker.close());
            const busy = blocker.address().port;
            const ctx = await makeContext();
            ctx.ports[proto] = busy;
            const gw = await startGateway(t2, { ctx, ready: false });
            const exit = await Promise.race([gw.exited, new Promise((ok) => setTimeout(ok, 20000, null).unref())]);
            assert.ok(exit, `gateway kept running with ${proto} port ${busy} taken\n${gw.describe()}`);
            assert.notEqual(exit.code, 0, gw.describe());
            assert.equal(exit.signal, null, `must exit, not crash\n${gw.describe()}`);
            assert.ok(gw.stderr.includes(String(busy)), `stderr must name port ${busy}\n${gw.describe()}`);
        });
    }
});

test('SIGTERM flushes data pending in the batch processor, exit 0', async (t) => {
    const gw = await startGateway(t, { batch: { timeout: '10s', send_batch_size: 100000 } });
    const traceId = await sendSpan(gw, 'pending-at-shutdown', { 'it.pending': true });
    // The receiver accepted it; with a 10 s batch timeout it is still held in the batch.
    assert.ok(!allSpans(gw.readSink()).some((e) => e.span.traceId === traceId),
        'span already written: the batch timeout is not being honoured, so this test proves nothing');
    const r = await gw.stop();
    assert.deepEqual(r, { code: 0, signal: null }, gw.describe());
    const got = spansOfTrace(traceId, 1)(gw.readSink());
    assert.ok(got, `the pending span was lost at shutdown\n${gw.describe()}`);
    assert.equal(got[0].span.name, 'pending-at-shutdown');
});

test('--log-format json: every stderr line is a JSON object', async (t) => {
    const gw = await startGateway(t, { args: ['--log-format', 'json'] });
    await sendSpan(gw, 'json-logging');
    const r = await gw.stop();
    assert.deepEqual(r, { code: 0, signal: null }, gw.describe());
    const lines = gw.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.ok(lines.length > 0, 'the gateway logs something at start and stop');
    for (const l of lines) {
        let v;
        assert.doesNotThrow(() => { v = JSON.parse(l); }, `not JSON: ${l}`);
        assert.equal(typeof v, 'object', `not a JSON object: ${l}`);
        assert.ok(v !== null && !Array.isArray(v), `not a JSON object: ${l}`);
    }
});

test('debug exporter (verbosity detailed) writes received spans to stderr', async (t) => {
    const ctx = await makeContext();
    const cfg = standardConfig(ctx, { batch: false, exporters: { debug: { verbosity: 'detailed' } } });
    const gw = await startGateway(t, { ctx, config: () => toYaml(cfg) });
    const traceId = await sendSpan(gw, 'visible-in-debug', { 'debug.marker': 'zebra-42' });
    await gw.waitForSink(spansOfTrace(traceId, 1), { what: 'the span in the file sink' });
    const r = await gw.stop();
    assert.deepEqual(r, { code: 0, signal: null }, gw.describe());
    assert.ok(gw.stderr.includes('visible-in-debug'), `span name in debug output\n${gw.describe()}`);
    assert.ok(gw.stderr.includes('zebra-42'), `attribute value in detailed output\n${gw.describe()}`);
    assert.ok(gw.stderr.includes(traceId), `trace ID in detailed output\n${gw.describe()}`);
});

test('gateway refuses to start on an invalid config: exit non-zero, error on stderr', async (t) => {
    const port = await freePort();
    const gw = await startGateway(t, {
        ready: false,
        config: () => `receivers:\n  otlp:\n    protocols:\n      grpc: {endpoint: "127.0.0.1:${port}"}\n` +
            `exporters:\n  nosuch: {}\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [nosuch]}\n`,
    });
    const exit = await Promise.race([gw.exited, new Promise((ok) => setTimeout(ok, 20000, null).unref())]);
    assert.ok(exit, `gateway kept running with an invalid config\n${gw.describe()}`);
    assert.notEqual(exit.code, 0);
    assert.match(gw.stderr, /exporters\.nosuch/, gw.describe());
});

test('running with two --config files: the later one wins', async (t) => {
    const ctx = await makeContext();
    const other = join(ctx.dir, 'other-sink.jsonl');
    const gw = await startGateway(t, {
        ctx,
        config: () => standardConfig(ctx, { batch: false }),
        extraConfigs: [{ exporters: { file: { path: other } } }],
    });
    const traceId = await sendSpan(gw, 'second-config-wins');
    await gw.waitForSink(spansOfTrace(traceId, 1), { path: other, what: `the span in ${other}` });
    const r = await gw.stop();
    assert.deepEqual(r, { code: 0, signal: null }, gw.describe());
    assert.equal(gw.readSink().length, 0, 'nothing written to the first config\'s sink path');
});
