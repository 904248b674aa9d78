// tests/integration/deploy_dockerfile.test.mjs — the container image installs what the
// build links: for every pkg-config module CMakeLists.txt requires, the Debian -dev package
// that ships its .pc file is installed by `make deps` (Makefile) and by the build stage of
// deploy/Dockerfile, and the runtime stage installs the shared-library package that -dev
// package pins (its "Depends: libfoo1 (= version)"). Reads the package database of this
// machine (the packages are installed here, as `make deps` does), needs no network.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './lib/gateway.mjs';

const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8' });

function cmakeModules() {
    const text = readFileSync(join(REPO_ROOT, 'CMakeLists.txt'), 'utf8');
    const m = text.match(/pkg_check_modules\(DEPS REQUIRED IMPORTED_TARGET([^)]*)\)/);
    assert.ok(m, 'pkg_check_modules(DEPS ...) not found in CMakeLists.txt');
    return m[1].split(/\s+/).filter(Boolean);
}

function makefilePackages() {
    const text = readFileSync(join(REPO_ROOT, 'Makefile'), 'utf8').replace(/\\\n/g, ' ');
    const m = text.match(/^DEBIAN_PACKAGES\s*:=(.*)$/m);
    assert.ok(m, 'DEBIAN_PACKAGES not found in Makefile');
    return new Set(m[1].split(/\s+/).filter(Boolean));
}

function dockerStages() {
    const text = readFileSync(join(REPO_ROOT, 'deploy', 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
    const stages = text.split(/^FROM /m).slice(1);
    assert.equal(stages.length, 2, 'expected a build and a runtime stage');
    const words = (s) => new Set(s.split(/\s+/).filter(Boolean));
    return { build: words(stages[0]), runtime: words(stages[1]) };
}

// The -dev package owning a pkg-config module's .pc file.
function devPackageOf(module) {
    const pcdirs = sh('pkg-config', ['--variable', 'pc_path', 'pkg-config']).trim().split(':');
    for (const dir of pcdirs) {
        try {
            const out = sh('dpkg', ['-S', join(dir, `${module}.pc`)]);
            return out.split(':')[0].trim();
        } catch {
            // not in this directory
        }
    }
    assert.fail(`no Debian package ships ${module}.pc`);
}

// The runtime packages a -dev package pins with an exact version.
function runtimePackagesOf(dev) {
    const depends = sh('dpkg-query', ['-W', '-f', '${Depends}', dev]);
    return depends
        .split(',')
        .map((d) => d.trim())
        .filter((d) => /\(= /.test(d))
        .map((d) => d.replace(/\s*\(.*$/, '').replace(/:any$/, ''));
}

test('deploy/Dockerfile and make deps install every library the build links', () => {
    const modules = cmakeModules();
    assert.ok(modules.includes('libisal') && modules.includes('grpc'));
    const make = makefilePackages();
    const { build, runtime } = dockerStages();
    const problems = [];
    for (const mod of modules) {
        const dev = devPackageOf(mod);
        if (!make.has(dev)) problems.push(`${mod}: ${dev} missing from Makefile DEBIAN_PACKAGES`);
        if (!build.has(dev)) problems.push(`${mod}: ${dev} missing from the Dockerfile build stage`);
        const libs = runtimePackagesOf(dev);
        if (libs.length && !libs.some((l) => runtime.has(l)))
            problems.push(`${mod}: none of ${libs.join(', ')} in the Dockerfile runtime stage`);
    }
    assert.deepEqual(problems, []);
});
