// Validates every entity of collected graphs (JupiterOne's collect layout) against
// @jupiterone/data-model's IntegrationSchema, one `_class` schema at a time.
// Usage: node validate.js DIR... ; prints one JSON document:
// { "version": "...", "instances": { DIR: { "entities": N, "valid": N, "failures": { "<_type> <_class>: <path> <message>": count } } } }
const { IntegrationSchema } = require('@jupiterone/data-model');
const { version } = require('@jupiterone/data-model/package.json');
const fs = require('fs');
const path = require('path');

function* entityFiles(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* entityFiles(p);
    else if (p.endsWith('.json') && p.split(path.sep).includes('entities')) yield p;
  }
}

function check(dir) {
  const out = { entities: 0, valid: 0, failures: {} };
  const fail = (key) => { out.failures[key] = (out.failures[key] || 0) + 1; };
  for (const file of entityFiles(dir)) {
    for (const e of JSON.parse(fs.readFileSync(file, 'utf8')).entities) {
      out.entities++;
      let good = true;
      for (const c of [].concat(e._class)) {
        const validate = IntegrationSchema.getSchema('#' + c);
        if (!validate) { good = false; fail(`${e._type} ${c}: no such class`); continue; }
        if (!validate(e)) {
          good = false;
          for (const err of validate.errors) fail(`${e._type} ${c}: ${err.instancePath || '/'} ${err.message}`);
        }
      }
      if (good) out.valid++;
    }
  }
  return out;
}

const instances = {};
for (const dir of process.argv.slice(2)) instances[dir] = check(dir);
console.log(JSON.stringify({ version, instances }, null, 1));
