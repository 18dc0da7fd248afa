// hf_fixtures.js fills in the expected ids of glmkit's Hugging Face
// fixtures (pipeline/tokenizer/testdata/hf-fixtures/*.json): each names a
// tokenizer.json object and texts; Hugging Face tokenizers (npm
// @anush008/tokenizers 0.6.0 = HF tokenizers 0.22) encodes each text with
// addSpecialTokens false, in its own process, since some texts make HF
// panic (then the case records hf_error instead of ids).
//
// Usage: node hf_fixtures.js FIXTURE.json...   (rewrites each file)
//        node hf_fixtures.js --check FIXTURE.json...   (prints JSON of the ids, writes nothing)
'use strict';
const fs = require('fs');
const { spawnSync } = require('child_process');

if (process.argv[2] === '--one') {
  const tk = require('@anush008/tokenizers');
  const t = tk.Tokenizer.fromString(fs.readFileSync(process.argv[3], 'utf8'));
  t.encode(JSON.parse(process.argv[4]), null, { addSpecialTokens: false })
    .then((e) => process.stdout.write(JSON.stringify(Array.from(e.getIds()))))
    .catch((e) => { process.stdout.write(JSON.stringify({ error: String(e.message || e) })); });
  return;
}

const check = process.argv[2] === '--check';
const files = process.argv.slice(check ? 3 : 2);
const os = require('os');
const path = require('path');
const all = {};
for (const f of files) {
  const fx = JSON.parse(fs.readFileSync(f, 'utf8'));
  const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hf-fixture-')), 'tokenizer.json');
  fs.writeFileSync(tmp, JSON.stringify(fx.tokenizer));
  for (const c of fx.cases) {
    const r = spawnSync(process.execPath, [__filename, '--one', tmp, JSON.stringify(c.text)], { encoding: 'utf8' });
    delete c.ids;
    delete c.hf_error;
    if (r.status !== 0) {
      c.hf_error = /AddedVocabulary bad split/.test(r.stderr) ? 'panic: AddedVocabulary bad split' : (r.status === null ? 'abort (exit null)' : 'exit ' + r.status);
      continue;
    }
    const out = JSON.parse(r.stdout);
    if (Array.isArray(out)) c.ids = out; else c.hf_error = out.error;
  }
  fs.rmSync(path.dirname(tmp), { recursive: true });
  if (check) all[f] = fx.cases;
  else fs.writeFileSync(f, JSON.stringify(fx, null, 1) + '\n');
}
if (check) process.stdout.write(JSON.stringify(all));
