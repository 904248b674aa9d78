// tests/integration/docs_config.test.mjs — docs/configuration.md's component reference is
// exactly what `llmgate components --verbose` prints (regenerate with `make docs`).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, runCli } from './lib/gateway.mjs';

test('docs/configuration.md lists every component and key as the binary does', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
    const shape = doc.split('## Shape')[1];
    assert.ok(shape, 'no "## Shape" section');
    const block = shape.split('```yaml\n')[1]?.split('\n```')[0];
    const r = runCli(['components', '--verbose']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(block, r.stdout.replace(/\n$/, ''), 'docs/configuration.md is stale: run `make docs`');
});
