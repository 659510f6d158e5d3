#!/usr/bin/env node
// build.mjs: the package's output.
//
//   node scripts/build.mjs           dist/notif.js (one ES module, no dependencies) and dist/types/*.d.ts
//   node scripts/build.mjs --check   exits 1 if the committed dist/notif.js is not what the sources build
//   node scripts/build.mjs --types   dist/types/*.d.ts only (leaves the committed bundle alone)
//
// dist/notif.js is committed: `notifd standalone` embeds it for its demo
// page, so it must match the sources (a test runs --check; `just sdk` rebuilds).

import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundlePath = join(root, 'dist', 'notif.js');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const types = () => {
  rmSync(join(root, 'dist', 'types'), { recursive: true, force: true });
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
};
if (process.argv.includes('--types')) {
  types();
  process.exit(0);
}

const result = await build({
  entryPoints: [join(root, 'src', 'index.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'neutral',
  charset: 'utf8',
  legalComments: 'none',
  banner: { js: `// @saasaparilla/notifications ${version}: built from sdk/typescript/src by scripts/build.mjs. Apache-2.0.` },
  write: false,
});
const bundle = result.outputFiles[0].text;

if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(bundlePath, 'utf8');
  } catch {
    // missing: stale
  }
  if (committed !== bundle) {
    console.error('sdk/typescript/dist/notif.js is stale: run `just sdk` (node sdk/typescript/scripts/build.mjs) and commit it');
    process.exit(1);
  }
  process.exit(0);
}

writeFileSync(bundlePath, bundle);
types();
