// Compiles the published JSON Schemas with Ajv in strict mode (no unknown
// keywords or formats, no ambiguous types), as integrators' tools would,
// and validates the shipped examples against the encounter schema.
// Usage: node scripts/check-schemas.js NODE_MODULES_DIR
"use strict";
const fs = require("fs");
const path = require("path");
const modules = process.argv[2];
const Ajv2020 = require(path.join(modules, "ajv/dist/2020")).default;
const addFormats = require(path.join(modules, "ajv-formats")).default;

const root = path.join(__dirname, "..");
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);
const problems = [];
const compiled = {};
for (const name of ["encounter-event.schema.json", "claim-line.schema.json"]) {
  const schema = JSON.parse(fs.readFileSync(path.join(root, "schemas", name), "utf8"));
  if (!/^urn:claimline:schema:[a-z-]+:\d+$/.test(schema.$id || "")) {
    problems.push(`${name}: $id must be urn:claimline:schema:<name>:<version>, got ${schema.$id}`);
  }
  try {
    compiled[name] = ajv.compile(schema);
  } catch (e) {
    problems.push(`${name}: ${e.message}`);
  }
}
const validate = compiled["encounter-event.schema.json"];
if (validate) {
  const lines = fs.readFileSync(path.join(root, "examples/encounters.jsonl"), "utf8").split("\n");
  lines.forEach((line, i) => {
    if (line.trim() && !validate(JSON.parse(line))) {
      problems.push(`examples/encounters.jsonl:${i + 1}: ${ajv.errorsText(validate.errors)}`);
    }
  });
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`check-schemas: ${Object.keys(compiled).length} schemas compile in Ajv strict mode; examples valid`);
