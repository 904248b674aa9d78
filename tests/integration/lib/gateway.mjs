// tests/integration/lib/gateway.mjs — runs the real llmgate binary for end-to-end tests.
//
// Owns: picking free loopback ports, writing a temporary Collector-shaped YAML config,
// spawning the gateway, waiting for its health_check endpoint, collecting its output,
// stopping it (SIGTERM, graceful) and reading the `file` exporter's sink.
// Every child is registered with the test's `t.after` and with a process exit hook, so a
// failing test never leaves a gateway running. Only 127.0.0.1 is ever contacted.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

// Exporters and grpc-js read these from the environment: tests must talk to loopback only.
for (const k of Object.keys(process.env)) {
    if (/^(https?|grpc|all)_proxy$/i.test(k) || k.startsWith('OTEL_')) delete process.env[k];
}
process.env.no_grpc_proxy = '127.0.0.1,localhost';
process.env.no_proxy = '127.0.0.1,localhost';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, '../../..');
export const FIXTURES = resolve(HERE, '../fixtures');
export const LOOPBACK = '127.0.0.1';

/** How long a gateway may take to answer its health check after spawn. */
const READY_TIMEOUT_MS = 20000;
/** How long a gateway may take to exit after SIGTERM (batch flush included). */
const STOP_TIMEOUT_MS = 15000;
/** Poll interval while waiting for health or for the sink. */
const POLL_MS = 50;

/** Path of the binary under test: $LLMGATE_BIN, else a build dir next to the repo root. */
export function gatewayBin() {
    if (process.env.LLMGATE_BIN) return process.env.LLMGATE_BIN;
    for (const d of ['build', 'build-it']) {
        const p = join(REPO_ROOT, d, 'llmgate');
        if (existsSync(p)) return p;
    }
    throw new Error('LLMGATE_BIN is not set and no build/llmgate exists: build the gateway first');
}

/** Returns n distinct free TCP ports on 127.0.0.1 (all bound at once, then released). */
export async function freePorts(n) {
    const servers = [];
    try {
        for (let i = 0; i < n; i++) {
            const s = net.createServer();
            await new Promise((ok, fail) => {
                s.once('error', fail);
                s.listen(0, LOOPBACK, ok);
            });
            servers.push(s);
        }
        return servers.map((s) => s.address().port);
    } finally {
        await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
    }
}

export async function freePort() {
    return (await freePorts(1))[0];
}

// ---- YAML ----------------------------------------------------------------------------

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_./-]*$/;

function yamlScalar(v) {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    // JSON string syntax is valid YAML double-quoted syntax.
    return JSON.stringify(String(v));
}

function yamlKey(k) {
    return PLAIN_KEY.test(k) ? k : JSON.stringify(k);
}

/** Serialises plain objects/arrays/scalars as block-style YAML. */
export function toYaml(value, indent = 0) {
    const pad = ' '.repeat(indent);
    if (Array.isArray(value)) {
        if (value.length === 0) return `${pad}[]\n`;
        let out = '';
        for (const item of value) {
            if (item !== null && typeof item === 'object' && Object.keys(item).length > 0) {
                const inner = toYaml(item, indent + 2);
                out += `${pad}- ${inner.slice(indent + 2)}`;
            } else {
                out += `${pad}- ${isEmptyCollection(item) ? emptyText(item) : yamlScalar(item)}\n`;
            }
        }
        return out;
    }
    if (value !== null && typeof value === 'object') {
        const keys = Object.keys(value);
        if (keys.length === 0) return `${pad}{}\n`;
        let out = '';
        for (const k of keys) {
            const v = value[k];
            if (v !== null && typeof v === 'object' && !isEmptyCollection(v)) {
                out += `${pad}${yamlKey(k)}:\n${toYaml(v, indent + 2)}`;
            } else {
                out += `${pad}${yamlKey(k)}: ${isEmptyCollection(v) ? emptyText(v) : yamlScalar(v)}\n`;
            }
        }
        return out;
    }
    return `${pad}${yamlScalar(value)}\n`;
}

function isEmptyCollection(v) {
    return v !== null && typeof v === 'object' &&
        (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0);
}

function emptyText(v) {
    return Array.isArray(v) ? '[]' : '{}';
}

// ---- configs ---------------------------------------------------------------------------

/**
 * The standard test config: otlp receiver (grpc + http) -> batch -> file sink (JSON lines),
 * for traces, metrics and logs, plus health_check and self-metrics, all on loopback.
 * opts.grpc / opts.http: extra receiver protocol keys; opts.batch: batch processor keys
 * (false: no batch processor); opts.exporters: extra exporters (added to every pipeline);
 * opts.fileFormat: 'json' (default) or 'proto'.
 */
export function standardConfig(ctx, opts = {}) {
    const { ports, sinkPath } = ctx;
    const exporters = {
        file: { path: sinkPath, format: opts.fileFormat ?? 'json' },
        ...(opts.exporters ?? {}),
    };
    const processors = opts.batch === false ? {} : { batch: { timeout: '200ms', ...(opts.batch ?? {}) } };
    const pipeline = {
        receivers: ['otlp'],
        processors: Object.keys(processors),
        exporters: Object.keys(exporters),
    };
    if (pipeline.processors.length === 0) delete pipeline.processors;
    const pipelines = {};
    for (const sig of opts.signals ?? ['traces', 'metrics', 'logs']) pipelines[sig] = pipeline;
    const cfg = {
        receivers: {
            otlp: {
                protocols: {
                    grpc: { endpoint: `${LOOPBACK}:${ports.grpc}`, ...(opts.grpc ?? {}) },
                    http: { endpoint: `${LOOPBACK}:${ports.http}`, ...(opts.http ?? {}) },
                },
            },
        },
        exporters,
        extensions: { health_check: { endpoint: `${LOOPBACK}:${ports.health}` } },
        service: {
            extensions: ['health_check'],
            telemetry: { metrics: { address: `${LOOPBACK}:${ports.metrics}` } },
            pipelines,
        },
    };
    if (Object.keys(processors).length > 0) cfg.processors = processors;
    return cfg;
}

// ---- running the gateway ---------------------------------------------------------------

const live = new Set();
process.on('exit', () => {
    for (const gw of live) gw.kill();
});

export class Gateway {
    constructor(ctx, configPaths, opts) {
        this.dir = ctx.dir;
        this.ports = ctx.ports;
        this.sinkPath = ctx.sinkPath;
        this.configPaths = configPaths;
        this.opts = opts;
        this.stderr = '';
        this.stdout = '';
        this.child = null;
        this.exit = null; // {code, signal} once exited
        this.exited = null; // promise
    }

    /** Base URL of the OTLP/HTTP receiver. */
    get httpUrl() {
        return `http://${LOOPBACK}:${this.ports.http}`;
    }

    /** Target of the OTLP/gRPC receiver, as the OTel exporters take it. */
    get grpcUrl() {
        return `http://${LOOPBACK}:${this.ports.grpc}`;
    }

    get grpcTarget() {
        return `${LOOPBACK}:${this.ports.grpc}`;
    }

    get healthUrl() {
        return `http://${LOOPBACK}:${this.ports.health}/`;
    }

    get metricsUrl() {
        return `http://${LOOPBACK}:${this.ports.metrics}/metrics`;
    }

    args() {
        const a = [];
        for (const p of this.configPaths) a.push('--config', p);
        return a.concat(this.opts.args ?? []);
    }

    spawn() {
        const child = spawn(gatewayBin(), this.args(), {
            cwd: this.dir,
            stdio: ['ignore', 'pipe', 'pipe'],
            env: { ...process.env, ...(this.opts.env ?? {}) },
        });
        this.child = child;
        live.add(this);
        child.stdout.setEncoding('utf8');
        child.stderr.setEncoding('utf8');
        child.stdout.on('data', (d) => { this.stdout += d; });
        child.stderr.on('data', (d) => { this.stderr += d; });
        this.exited = new Promise((ok) => {
            child.on('error', (e) => {
                this.stderr += `\n[spawn error] ${e.message}\n`;
                this.exit = { code: null, signal: null, error: e };
                live.delete(this);
                ok(this.exit);
            });
            // 'close' (not 'exit'): all of stderr has been read by then.
            child.on('close', (code, signal) => {
                this.exit = { code, signal };
                live.delete(this);
                ok(this.exit);
            });
        });
    }

    /** Text for failure messages: where things are and what the gateway said. */
    describe() {
        return `gateway dir ${this.dir}, args ${JSON.stringify(this.args())}\n` +
            `--- gateway stderr ---\n${this.stderr}\n--- end stderr ---`;
    }

    /** Waits until GET health_check / answers 200; throws with stderr if it never does. */
    async waitReady(timeoutMs = READY_TIMEOUT_MS) {
        const deadline = Date.now() + timeoutMs;
        let last = 'no answer';
        while (Date.now() < deadline) {
            if (this.exit) {
                throw new Error(`gateway exited before it was ready (${JSON.stringify(this.exit)})\n` +
                    this.describe());
            }
            try {
                const r = await fetch(this.healthUrl, { signal: AbortSignal.timeout(1000) });
                await r.arrayBuffer();
                if (r.status === 200) return;
                last = `HTTP ${r.status}`;
            } catch (e) {
                last = e.cause?.code ?? e.message;
            }
            await sleep(POLL_MS);
        }
        throw new Error(`gateway not ready after ${timeoutMs} ms (health check: ${last})\n` +
            this.describe());
    }

    /** Sends `signal` and waits for exit; SIGKILLs and throws if it does not exit in time. */
    async stop(signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) {
        if (!this.exit) {
            this.child.kill(signal);
            // Unref'd: a pending timer must not keep the test process alive after exit.
            const timer = sleep(timeoutMs, null, { ref: false });
            const r = await Promise.race([this.exited, timer]);
            if (!r) {
                this.kill();
                await this.exited;
                throw new Error(`gateway did not exit within ${timeoutMs} ms of ${signal}\n` +
                    this.describe());
            }
        }
        return this.exit;
    }

    /** Immediate SIGKILL (cleanup path); removes the temp dir unless LLMGATE_KEEP_TMP is set. */
    kill() {
        if (this.child && !this.exit) {
            try { this.child.kill('SIGKILL'); } catch { /* already gone */ }
        }
    }

    cleanup() {
        this.kill();
        if (!process.env.LLMGATE_KEEP_TMP) {
            const rm = () => rmSync(this.dir, { recursive: true, force: true });
            if (this.exit || !this.exited) rm();
            else this.exited.then(rm);
        }
    }

    /** Parses the JSON-lines sink; only complete lines; a malformed line throws. */
    readSink(path = this.sinkPath) {
        return readJsonLines(path);
    }

    /**
     * Polls the sink until pick(records) returns something truthy and returns it.
     * Throws after timeoutMs with what the sink held and the gateway's stderr.
     */
    async waitForSink(pick, { timeoutMs = 10000, path = this.sinkPath, what = 'expected data' } = {}) {
        let records = [];
        return this.waitFor(() => {
            records = this.readSink(path);
            return pick(records);
        }, {
            timeoutMs,
            what: () => `${what} not found in sink ${path}; sink has ${records.length} record(s): ` +
                JSON.stringify(records).slice(0, 4000),
        });
    }

    /**
     * Polls check() until it returns something truthy and returns it; after timeoutMs (or
     * once the gateway has exited and a last check fails) throws with what() and stderr.
     */
    async waitFor(check, { timeoutMs = 10000, what = 'condition' } = {}) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const exitedBefore = Boolean(this.exit);
            const got = check();
            if (got) return got;
            if (exitedBefore || Date.now() >= deadline) break;
            await sleep(POLL_MS);
        }
        const text = typeof what === 'function' ? what() : what;
        throw new Error(`${text} (waited up to ${timeoutMs} ms)\n${this.describe()}`);
    }

    /** GET /metrics (self-telemetry, Prometheus text). */
    async selfMetrics() {
        const r = await fetch(this.metricsUrl, { signal: AbortSignal.timeout(5000) });
        const text = await r.text();
        if (r.status !== 200) throw new Error(`GET /metrics: HTTP ${r.status}: ${text}`);
        return text;
    }
}

/** Parses complete lines of a JSON-lines file ([] when it does not exist yet). */
export function readJsonLines(path) {
    if (!existsSync(path)) return [];
    const text = readFileSync(path, 'utf8');
    const end = text.lastIndexOf('\n');
    if (end < 0) return [];
    const out = [];
    text.slice(0, end).split('\n').forEach((line, i) => {
        if (line.trim() === '') return;
        try {
            out.push(JSON.parse(line));
        } catch (e) {
            throw new Error(`${path}:${i + 1}: sink line is not valid JSON (${e.message}): ` +
                line.slice(0, 500));
        }
    });
    return out;
}

/** Makes a temp dir and allocates the four loopback ports a standard gateway needs. */
export async function makeContext() {
    const dir = mkdtempSync(join(tmpdir(), 'llmgate-it-'));
    const [grpc, http, health, metrics] = await freePorts(4);
    return { dir, ports: { grpc, http, health, metrics }, sinkPath: join(dir, 'sink.jsonl') };
}

/**
 * Starts a gateway and waits until it is ready.
 *   t        node:test context (its after() kills the child) or null
 *   opts.config(ctx) -> object | YAML string   (default: standardConfig(ctx, opts))
 *   opts.extraConfigs: [object | string]       further --config files, in order
 *   opts.args, opts.env, opts.ready (false: do not wait for health), opts.ctx
 */
export async function startGateway(t, opts = {}) {
    const ctx = opts.ctx ?? await makeContext();
    const cfgs = [opts.config ? opts.config(ctx) : standardConfig(ctx, opts), ...(opts.extraConfigs ?? [])];
    const paths = cfgs.map((c, i) => {
        const p = join(ctx.dir, `config${i}.yaml`);
        writeFileSync(p, typeof c === 'string' ? c : toYaml(c));
        return p;
    });
    const gw = new Gateway(ctx, paths, opts);
    if (t) t.after(() => gw.cleanup());
    gw.spawn();
    if (opts.ready !== false) await gw.waitReady();
    return gw;
}

/** Runs the binary to completion (CLI subcommands). Returns {status, signal, stdout, stderr}. */
export function runCli(args, { env = {}, cwd, timeoutMs = 20000 } = {}) {
    const r = spawnSync(gatewayBin(), args, {
        cwd,
        env: { ...process.env, ...env },
        encoding: 'utf8',
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
    });
    if (r.error && r.error.code !== 'ETIMEDOUT') throw r.error;
    return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Finds one Prometheus sample by name and label subset; returns its value or undefined. */
export function promValue(text, name, labels = {}) {
    for (const line of text.split('\n')) {
        if (line.startsWith('#') || !line.startsWith(name)) continue;
        const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
        if (!m || m[1] !== name) continue;
        const have = {};
        for (const lm of (m[3] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
            have[lm[1]] = lm[2];
        }
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
    }
    return undefined;
}
