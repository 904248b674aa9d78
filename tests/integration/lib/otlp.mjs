// tests/integration/lib/otlp.mjs — reading OTLP/JSON sink records and building expectations.
//
// Owns: flattening Export*ServiceRequest records (one per sink line) into spans, metrics and
// log records with their resource and scope; the expected OTLP/JSON form of JS values
// (AnyValue, HrTime, IDs); an exporter wrapper that records every export result; and a
// minimal protobuf reader for google.rpc.Status bodies.

import assert from 'node:assert/strict';
import { ExportResultCode } from '@opentelemetry/core';

// ---- flattening sink records ----------------------------------------------------------

/** Every span in the records: {span, resource, scope, scopeSchemaUrl, resourceSchemaUrl}. */
export function allSpans(records) {
    const out = [];
    for (const rec of records) {
        for (const rs of rec.resourceSpans ?? []) {
            for (const ss of rs.scopeSpans ?? []) {
                for (const span of ss.spans ?? []) {
                    out.push({
                        span,
                        resource: rs.resource ?? {},
                        resourceSchemaUrl: rs.schemaUrl,
                        scope: ss.scope ?? {},
                        scopeSchemaUrl: ss.schemaUrl,
                    });
                }
            }
        }
    }
    return out;
}

/** Every metric: {metric, resource, resourceSchemaUrl, scope, scopeSchemaUrl}. */
export function allMetrics(records) {
    const out = [];
    for (const rec of records) {
        for (const rm of rec.resourceMetrics ?? []) {
            for (const sm of rm.scopeMetrics ?? []) {
                for (const metric of sm.metrics ?? []) {
                    out.push({ metric, resource: rm.resource ?? {}, resourceSchemaUrl: rm.schemaUrl,
                        scope: sm.scope ?? {}, scopeSchemaUrl: sm.schemaUrl });
                }
            }
        }
    }
    return out;
}

/** Every log record: {log, resource, resourceSchemaUrl, scope, scopeSchemaUrl}. */
export function allLogs(records) {
    const out = [];
    for (const rec of records) {
        for (const rl of rec.resourceLogs ?? []) {
            for (const sl of rl.scopeLogs ?? []) {
                for (const log of sl.logRecords ?? []) {
                    out.push({ log, resource: rl.resource ?? {}, resourceSchemaUrl: rl.schemaUrl,
                        scope: sl.scope ?? {}, scopeSchemaUrl: sl.schemaUrl });
                }
            }
        }
    }
    return out;
}

/** Span entries matching a predicate on the span. */
export function findSpans(records, pred) {
    return allSpans(records).filter((e) => pred(e.span));
}

/** The span entries with this name. */
export function spansByName(records, name) {
    return findSpans(records, (s) => s.name === name);
}

/** Returns a picker for waitForSink: all spans of a trace once `count` of them arrived. */
export function spansOfTrace(traceId, count) {
    return (records) => {
        const got = allSpans(records).filter((e) => e.span.traceId === traceId);
        return got.length >= count ? got : null;
    };
}

// ---- expected JSON forms --------------------------------------------------------------

/** HrTime [s, ns] -> OTLP/JSON fixed64 string of nanoseconds since the epoch. */
export function hrToNanos(hr) {
    return (BigInt(hr[0]) * 1000000000n + BigInt(hr[1])).toString();
}

/** The OTLP/JSON AnyValue a JS value becomes (int64 as decimal strings, bytes as base64). */
export function anyValue(v) {
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (typeof v === 'number') {
        return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
    }
    if (v instanceof Uint8Array) return { bytesValue: Buffer.from(v).toString('base64') };
    if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
    if (v !== null && typeof v === 'object') {
        return { kvlistValue: { values: Object.entries(v).map(([key, x]) => ({ key, value: anyValue(x) })) } };
    }
    throw new Error(`no AnyValue form for ${String(v)}`);
}

/** The OTLP/JSON attribute list for a JS attribute object, in insertion order. */
export function keyValues(obj) {
    return Object.entries(obj).map(([key, v]) => ({ key, value: anyValue(v) }));
}

/** Attribute list -> {key: AnyValue}; duplicate keys fail the test. */
export function attrMap(list, where = 'attributes') {
    const out = {};
    for (const kv of list ?? []) {
        assert.ok(!(kv.key in out), `${where}: duplicate key ${kv.key}`);
        out[kv.key] = kv.value;
    }
    return out;
}

/** Asserts an OTLP/JSON attribute list holds exactly the JS attributes (any order). */
export function assertAttributes(list, expected, where) {
    assert.deepEqual(attrMap(list, where), attrMap(keyValues(expected), where), `${where} differ`);
}

/** Asserts an OTLP/JSON attribute list contains the JS attributes (others allowed). */
export function assertAttributesInclude(list, expected, where) {
    const have = attrMap(list, where);
    for (const [k, v] of Object.entries(expected)) {
        assert.deepEqual(have[k], anyValue(v), `${where}: attribute ${k}`);
    }
}

/** A 64-bit OTLP/JSON integer must be a decimal string (spec); returns it as BigInt. */
export function int64(v, where) {
    assert.equal(typeof v, 'string', `${where}: 64-bit integer must be a decimal string, got ${JSON.stringify(v)}`);
    assert.match(v, /^-?\d+$/, `${where}: not a decimal integer`);
    return BigInt(v);
}

// ---- exporter wrapper -----------------------------------------------------------------

/**
 * Wraps an SDK exporter (span, metric or log) so every export result is recorded.
 * Returns {exporter, results, batches}: pass `exporter` to the SDK; `results` collects
 * ExportResult objects, `batches` the items handed to export().
 */
export function recording(inner) {
    const results = [];
    const batches = [];
    const exporter = new Proxy(inner, {
        get(target, prop) {
            if (prop === 'export') {
                return (items, cb) => {
                    batches.push(items);
                    target.export(items, (r) => {
                        results.push(r);
                        cb(r);
                    });
                };
            }
            const v = Reflect.get(target, prop, target);
            return typeof v === 'function' ? v.bind(target) : v;
        },
    });
    return { exporter, results, batches };
}

/**
 * Waits until every export() call has reported its result (some SDK processors' forceFlush
 * returns before the exporter's callback runs), then asserts there was at least one export
 * and every one reported SUCCESS.
 */
export async function assertExportsSucceeded(rec, what, timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    while (rec.results.length < rec.batches.length && Date.now() < deadline) {
        await new Promise((ok) => setTimeout(ok, 20));
    }
    assert.ok(rec.batches.length > 0, `${what}: the SDK never called export()`);
    assert.equal(rec.results.length, rec.batches.length,
        `${what}: ${rec.batches.length - rec.results.length} export(s) never reported a result`);
    rec.results.forEach((r, i) => {
        assert.equal(r.code, ExportResultCode.SUCCESS,
            `${what}: export #${i} reported ${r.code === ExportResultCode.FAILED ? 'FAILED' : r.code}` +
            (r.error ? `: ${r.error.message ?? r.error}` : ''));
    });
}

// ---- protobuf reading -----------------------------------------------------------------

/** Decodes the top-level fields of a protobuf message: [{field, wire, value}] (throws if bad). */
export function protoFields(buf) {
    const out = [];
    let i = 0;
    const varint = () => {
        let v = 0n;
        let shift = 0n;
        for (;;) {
            if (i >= buf.length) throw new Error('truncated varint');
            const b = buf[i++];
            v |= BigInt(b & 0x7f) << shift;
            if ((b & 0x80) === 0) return v;
            shift += 7n;
        }
    };
    while (i < buf.length) {
        const key = Number(varint());
        const field = key >>> 3;
        const wire = key & 7;
        let value;
        if (wire === 0) value = varint();
        else if (wire === 2) {
            const len = Number(varint());
            if (i + len > buf.length) throw new Error('truncated length-delimited field');
            value = buf.subarray(i, i + len);
            i += len;
        } else if (wire === 1) { value = buf.subarray(i, i + 8); i += 8; }
        else if (wire === 5) { value = buf.subarray(i, i + 4); i += 4; }
        else throw new Error(`unsupported wire type ${wire}`);
        out.push({ field, wire, value });
    }
    return out;
}

/** Decodes a google.rpc.Status protobuf body into {code, message}. */
export function decodeStatus(buf) {
    let code = 0;
    let message = '';
    for (const f of protoFields(Buffer.from(buf))) {
        if (f.field === 1 && f.wire === 0) code = Number(f.value);
        if (f.field === 2 && f.wire === 2) message = Buffer.from(f.value).toString('utf8');
    }
    return { code, message };
}

// ---- length-prefixed protobuf sink (file exporter, format: proto) -----------------------

/** Splits a `format: proto` sink into frames: 4-byte big-endian length + message bytes. */
export function protoFrames(buf) {
    const frames = [];
    let i = 0;
    while (i + 4 <= buf.length) {
        const len = buf.readUInt32BE(i);
        if (i + 4 + len > buf.length) break; // a frame still being written
        frames.push(buf.subarray(i + 4, i + 4 + len));
        i += 4 + len;
    }
    return { frames, trailing: buf.length - i };
}
