// tests/integration/deploy_configs.test.mjs — every gateway config embedded in a Kubernetes
// manifest under deploy/kubernetes (ConfigMap data entries ending in .yaml) passes
// `llmgate validate`, with placeholder values for the secrets the manifests inject as
// environment variables. The standalone files in deploy/config are validated by ctest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, makeContext, runCli } from './lib/gateway.mjs';

const PLACEHOLDER_ENV = {
    APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=00000000-0000-0000-0000-000000000000',
    LLMGATE_STORE_KEY: Buffer.alloc(32).toString('base64'),
    POD_NAME: 'llmgate-0',
};

test('configs embedded in deploy/kubernetes manifests are valid', async () => {
    const ctx = await makeContext();
    const dir = join(REPO_ROOT, 'deploy', 'kubernetes');
    let checked = 0;
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml'))) {
        for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
            const m = doc.toJS();
            if (m?.kind !== 'ConfigMap') continue;
            for (const [key, text] of Object.entries(m.data ?? {})) {
                if (!key.endsWith('.yaml')) continue;
                const file = join(ctx.dir, `${f}-${m.metadata.name}-${key}`);
                writeFileSync(file, text);
                const r = runCli(['validate', '--config', file], { env: PLACEHOLDER_ENV });
                assert.equal(r.status, 0, `${f} ConfigMap ${m.metadata.name} ${key}: ${r.stderr}`);
                checked++;
            }
        }
    }
    assert.ok(checked >= 1, 'no embedded config found');
});
