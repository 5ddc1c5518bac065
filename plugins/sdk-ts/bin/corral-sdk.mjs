#!/usr/bin/env node
// corral-sdk build | test: a TypeScript connector bundled with esbuild and componentized
// with componentize-js (`build`), or its tests run natively against the SDK's fake host
// (`test`). Run in the connector's folder (npm scripts do); both tools are resolved from
// that project's node_modules, where its package.json installs them.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const sdk = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const project = process.cwd();

function fail(message) {
  console.error(`corral-sdk: ${message}`);
  process.exit(1);
}

/** A tool from the project's node_modules, or an error saying how to install it. Found by
 * walking up from the project, as Node does (the SDK itself may be a symbolic link). */
async function tool(name) {
  for (let dir = project; ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', name);
    if (existsSync(join(pkgDir, 'package.json'))) {
      return import(pathToFileURL(join(pkgDir, entryOf(JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))))).href);
    }
    if (dirname(dir) === dir) break;
  }
  fail(`${name} is not installed in ${project}: run \`npm install\` there (package.json lists it)`);
}

/** A package's ES module entry: its `exports` (the `import` or `default` condition), else `main`. */
function entryOf(pkg) {
  let e = pkg.exports;
  if (e && typeof e === 'object' && '.' in e) e = e['.'];
  while (e && typeof e === 'object') e = e.import ?? e.default;
  return typeof e === 'string' ? e : (pkg.main ?? 'index.js');
}

function readPackage() {
  try {
    return JSON.parse(readFileSync(join(project, 'package.json'), 'utf8'));
  } catch (e) {
    fail(`${join(project, 'package.json')}: ${e.message}`);
  }
}

const WIT_MODULES = /^(corral:integration|wasi:clocks|wasi:io)\//;

async function build() {
  const pkg = readPackage();
  const entry = pkg.corral?.entry ?? 'src/index.ts';
  const id = pkg.corral?.id ?? pkg.name;
  if (typeof id !== 'string' || !/^[a-z0-9][a-z0-9-]{0,63}$/.test(id)) {
    fail('package.json needs a plugin id in "corral": {"id": "..."} (else "name"): 1-64 of a-z, 0-9 and -, starting with a letter or digit');
  }
  const esbuild = await tool('esbuild');
  const dist = join(project, 'dist');
  mkdirSync(dist, { recursive: true });
  const bundle = join(dist, `${id}.js`);
  await esbuild.build({
    entryPoints: [join(project, entry)],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    outfile: bundle,
    external: ['corral:integration/*', 'wasi:*'],
    logLevel: 'warning',
  });
  const { componentize } = await tool('@bytecodealliance/componentize-js');
  const { component } = await componentize({
    sourcePath: bundle,
    witPath: join(sdk, 'wit'),
    worldName: 'typescript-plugin',
    // The host grants no WASI HTTP: requests go through corral's own `http`, checked
    // against the policy.
    disableFeatures: ['http', 'fetch-event'],
  });
  const out = join(dist, `${id}.wasm`);
  writeFileSync(out, component);
  console.log(relative(project, out));
}

/** Test files: `*.test.ts` under `test/`. */
function testFiles(dir) {
  let names;
  try {
    names = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return names.flatMap((d) =>
    d.isDirectory() ? testFiles(join(dir, d.name)) : d.name.endsWith('.test.ts') ? [join(dir, d.name)] : [],
  );
}

/** Resolves the WIT imports to the fake host's modules. */
const fakeHost = {
  name: 'corral-fake-host',
  setup(b) {
    const fake = (name) => join(sdk, 'src/testing/wit', `${name}.ts`);
    b.onResolve({ filter: WIT_MODULES }, (args) => {
      const m = /^(?:corral:integration|wasi:clocks|wasi:io)\/([a-z-]+)@/.exec(args.path);
      const name = m?.[1] === 'monotonic-clock' ? 'clocks' : m?.[1];
      if (!['config', 'http', 'graph', 'log', 'kv', 'clocks'].includes(name)) {
        return { errors: [{ text: `the fake host has no ${args.path}` }] };
      }
      return { path: fake(name) };
    });
  },
};

async function test() {
  const files = testFiles(join(project, 'test'));
  if (files.length === 0) fail(`no *.test.ts under ${join(project, 'test')}`);
  const esbuild = await tool('esbuild');
  const out = join(project, '.corral-test');
  rmSync(out, { recursive: true, force: true });
  const built = [];
  for (const file of files) {
    const outfile = join(out, relative(project, file).replace(/\.ts$/, '.mjs'));
    await esbuild.build({
      entryPoints: [file],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      outfile,
      plugins: [fakeHost],
      logLevel: 'warning',
    });
    built.push(outfile);
  }
  const run = spawnSync(process.execPath, ['--test', ...built], { stdio: 'inherit', cwd: project });
  process.exit(run.status ?? 1);
}

const command = process.argv[2];
if (command === 'build') await build();
else if (command === 'test') await test();
else fail('usage: corral-sdk build | test');
