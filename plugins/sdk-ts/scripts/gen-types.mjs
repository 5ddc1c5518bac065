// Regenerates types/ from wit/ with jco's type generator (`jco types`), for the world a
// TypeScript connector is built against. Run from this folder after `npm install`:
//   node scripts/gen-types.mjs
// jco's CLI reads WIT through its own sandboxed filesystem, which refuses some host
// paths; its generator is given the WIT text instead, one package at a time.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bindgen = await import(
  join(root, 'node_modules/@bytecodealliance/jco-transpile/vendor/js-component-bindgen-component.js')
);
await bindgen.$init;

// One source: the corral package's files joined, then each dependency nested in it.
const read = (p) => readFileSync(join(root, 'wit', p), 'utf8');
const nest = (text) => text.replace(/^package ([^;]+);/m, 'package $1 {') + '\n}\n';
const source =
  read('corral.wit') +
  read('typescript.wit').replace(/^package [^;]+;/m, '') +
  nest(read('deps/io/poll.wit')) +
  nest(read('deps/clocks/monotonic-clock.wit'));

const files = bindgen.generateTypes('typescript-plugin', {
  wit: { tag: 'source', val: source },
  world: 'corral:integration/typescript-plugin@0.2.0',
  tlaCompat: false,
  features: { tag: 'list', val: [] },
  guest: true,
});
rmSync(join(root, 'types'), { recursive: true, force: true });
for (const [name, data] of files) {
  const path = join(root, 'types', name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
  console.log(`types/${name}`);
}
