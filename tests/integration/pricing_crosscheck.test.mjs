// tests/integration/pricing_crosscheck.test.mjs — llmgate's default price table against an
// independent implementation: for every model in processors/prices/default.yaml, several
// (usage, time) cases are priced by @pydantic/genai-prices' calcPrice and by the real gateway
// (OTLP/HTTP JSON receiver -> llm_cost -> file sink, reading gen_ai.usage.cost back), and
// must agree to 1e-9 relative. Cases cover plain usage, cache reads, cache writes, the
// long-context tier, start-date price changes and UTC time-of-day prices. Anthropic spans
// are sent with Anthropic's native accounting (input without the cache), which the gateway
// must normalise; the others OpenAI-style.
//
// Intentional differences (not checked here, see docs/processors/llm_cost.md):
//  - usage genai-prices prices and spans do not carry (audio/image/video tokens, web
//    searches, per-request fees, Anthropic 1-hour cache writes) is not in the table;
//  - a name the span's provider does not know falls back to every provider in llmgate
//    (genai-prices returns no price): such names are not used as samples.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { calcPrice } from '@pydantic/genai-prices';
import YAML from 'yaml';

import { startGateway, LOOPBACK, REPO_ROOT } from './lib/gateway.mjs';
import { allSpans } from './lib/otlp.mjs';

const TABLE = YAML.parse(readFileSync(join(REPO_ROOT, 'processors/prices/default.yaml'), 'utf8'));

// gen_ai.provider.name values as the SDKs write them, per table provider id.
const SPAN_PROVIDER = {
    openai: 'openai', azure: 'azure.ai.openai', anthropic: 'anthropic', google: 'gcp.gemini',
    aws: 'aws.bedrock', mistral: 'mistral_ai', cohere: 'cohere', deepseek: 'deepseek', 'x-ai': 'x_ai',
};

const DAY = 86400e3;
function timestamps(model) {
    const periods = Array.isArray(model.prices) ? model.prices : [model.prices];
    const days = [Date.parse('2025-06-01T00:00:00Z')];
    for (const p of periods) if (p.effective_from) days.push(Date.parse(`${p.effective_from}T00:00:00Z`) + DAY);
    const hours = periods.some((p) => p.utc_hours) ? [10.5, 20.25] : [12];
    const out = [];
    for (const d of days) for (const h of hours) out.push(new Date(d + h * 3600e3));
    return out;
}

function usages(model) {
    const periods = Array.isArray(model.prices) ? model.prices : [model.prices];
    const has = (k) => periods.some((p) => p[k] !== undefined);
    const u = [{ input_tokens: 12345, output_tokens: 678 }];
    if (has('cache_read')) u.push({ input_tokens: 20000, cache_read_tokens: 5000, output_tokens: 1000 });
    if (has('cache_write')) u.push({ input_tokens: 20000, cache_read_tokens: 3000, cache_write_tokens: 4000, output_tokens: 500 });
    const lc = periods.find((p) => p.long_context)?.long_context;
    if (lc) u.push({ input_tokens: lc.above + 1000, cache_read_tokens: has('cache_read') ? 1000 : undefined, output_tokens: 2000 });
    return u.map((x) => Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined)));
}

// A name that genai-prices resolves to this very model for this provider.
function sampleName(model, when) {
    const m = model.match ?? {};
    // a regex that is an escaped literal (a "contains" match) is its own sample
    const literals = (m.regex ?? []).map((r) => r.replace(/^\^/, '').replace(/\$$/, ''))
        .filter((r) => !/[()[\]{}*+?|^$]/.test(r.replace(/\\./g, ''))).map((r) => r.replace(/\\(.)/g, '$1'));
    const cands = [...(m.exact ?? []), ...(m.prefix ?? []), ...literals, model.id];
    for (const name of cands) {
        const r = calcPrice({ input_tokens: 1, output_tokens: 1 }, name, { providerId: model.provider, timestamp: when });
        if (r && r.model.id === model.id && r.provider.id === model.provider) return name;
    }
    return null;
}

function buildCases() {
    const cases = [];
    const noSample = [];
    for (const model of TABLE.models) {
        const ts = timestamps(model);
        const name = sampleName(model, ts[0]);
        if (!name) {
            noSample.push(`${model.provider}/${model.id}`);
            continue;
        }
        for (const usage of usages(model)) {
            for (const when of ts) {
                const r = calcPrice(usage, name, { providerId: model.provider, timestamp: when });
                assert.ok(r, `genai-prices has no price for ${name} at ${when.toISOString()}`);
                cases.push({ model, name, usage, when, expected: r.total_price });
            }
        }
    }
    return { cases, noSample };
}

function span(c, i) {
    const u = c.usage;
    const cache = (u.cache_read_tokens ?? 0) + (u.cache_write_tokens ?? 0);
    // Anthropic's native API reports input without the cache
    const input = c.model.provider === 'anthropic' ? u.input_tokens - cache : u.input_tokens;
    const attrs = [
        ['gen_ai.operation.name', { stringValue: 'chat' }],
        ['gen_ai.provider.name', { stringValue: SPAN_PROVIDER[c.model.provider] }],
        ['gen_ai.request.model', { stringValue: c.name }],
        ['gen_ai.usage.input_tokens', { intValue: String(input) }],
        ['gen_ai.usage.output_tokens', { intValue: String(u.output_tokens) }],
        ['test.case', { intValue: String(i) }],
    ];
    if (u.cache_read_tokens !== undefined) attrs.push(['gen_ai.usage.cache_read.input_tokens', { intValue: String(u.cache_read_tokens) }]);
    if (u.cache_write_tokens !== undefined) attrs.push(['gen_ai.usage.cache_creation.input_tokens', { intValue: String(u.cache_write_tokens) }]);
    const start = BigInt(c.when.getTime()) * 1000000n;
    return {
        traceId: (i + 1).toString(16).padStart(32, '0'),
        spanId: (i + 1).toString(16).padStart(16, '0'),
        name: `chat ${c.name}`,
        kind: 3,
        startTimeUnixNano: String(start),
        endTimeUnixNano: String(start + 1000000000n),
        attributes: attrs.map(([key, value]) => ({ key, value })),
    };
}

test('default price table agrees with @pydantic/genai-prices for every model', async (t) => {
    const { cases, noSample } = buildCases();
    assert.deepEqual(noSample, [], `models without a name genai-prices resolves to them: ${noSample.join(', ')}`);
    assert.ok(cases.length >= 50, `only ${cases.length} cases`);

    const gw = await startGateway(t, {
        config: (ctx) => ({
            receivers: { otlp: { protocols: { http: { endpoint: `${LOOPBACK}:${ctx.ports.http}` } } } },
            processors: { llm_cost: {} },
            exporters: { file: { path: ctx.sinkPath } },
            extensions: { health_check: { endpoint: `${LOOPBACK}:${ctx.ports.health}` } },
            service: {
                extensions: ['health_check'],
                telemetry: { metrics: { address: `${LOOPBACK}:${ctx.ports.metrics}` } },
                pipelines: { traces: { receivers: ['otlp'], processors: ['llm_cost'], exporters: ['file'] } },
            },
        }),
    });
    const CHUNK = 500;
    for (let i = 0; i < cases.length; i += CHUNK) {
        const spans = cases.slice(i, i + CHUNK).map((c, j) => span(c, i + j));
        const body = { resourceSpans: [{ resource: {}, scopeSpans: [{ scope: { name: 'crosscheck' }, spans }] }] };
        const r = await fetch(`${gw.httpUrl}/v1/traces`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
        });
        assert.equal(r.status, 200, await r.text());
    }
    const got = await gw.waitForSink((recs) => {
        const spans = allSpans(recs);
        return spans.length >= cases.length ? spans : null;
    }, { what: `${cases.length} priced spans`, timeoutMs: 30000 });

    const costByCase = new Map();
    for (const s of got) {
        const a = Object.fromEntries(s.span.attributes.map((kv) => [kv.key, kv.value]));
        costByCase.set(Number(a['test.case'].intValue), a);
    }
    const bad = [];
    cases.forEach((c, i) => {
        const a = costByCase.get(i);
        const cost = a?.['gen_ai.usage.cost']?.doubleValue;
        const ok = typeof cost === 'number' &&
            Math.abs(cost - c.expected) <= 1e-9 * Math.max(Math.abs(c.expected), 1e-300);
        if (!ok) {
            bad.push(`${c.model.provider}/${c.model.id} as "${c.name}" usage ${JSON.stringify(c.usage)} at ` +
                `${c.when.toISOString()}: genai-prices ${c.expected}, llmgate ${cost ?? JSON.stringify(a)}`);
        }
    });
    assert.deepEqual(bad.slice(0, 40), [], `${bad.length} of ${cases.length} cases disagree`);
    const ids = new Set(cases.map((c) => `${c.model.provider}/${c.model.id}`));
    assert.equal(ids.size, TABLE.models.length, 'every model in the table is cross-checked');
    t.diagnostic(`${cases.length} cases over ${ids.size} models agree`);

    const exit = await gw.stop();
    assert.equal(exit.code, 0, gw.describe());
});
