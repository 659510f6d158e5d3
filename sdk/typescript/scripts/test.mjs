#!/usr/bin/env node
// test.mjs: the unit tests (test/unit/*.test.ts) under node's test runner,
// each bundled by esbuild into .build/ first (Node 20 does not run TypeScript).

import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, '.build');
const tests = readdirSync(join(root, 'test', 'unit')).filter((f) => f.endsWith('.test.ts'));

rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: tests.map((f) => join(root, 'test', 'unit', f)),
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: out,
  outExtension: { '.js': '.mjs' },
  sourcemap: 'inline',
  logLevel: 'warning',
});
// TAP, whatever Node's default reporter: the Rust test reads its counts.
const run = spawnSync(process.execPath, ['--test', '--test-reporter=tap', '--enable-source-maps', ...tests.map((f) => join(out, f.replace(/\.ts$/, '.mjs')))], {
  stdio: 'inherit',
});
process.exit(run.status ?? 1);
