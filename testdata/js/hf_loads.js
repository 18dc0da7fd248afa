// hf_loads.js records whether Hugging Face tokenizers (npm
// @anush008/tokenizers 0.6.0 = HF tokenizers 0.22) loads each tokenizer.json
// of a list, for glmkit's refusal tests.
//
// Usage: node hf_loads.js CASES.json
// CASES.json: [{"Name": "...", "Tok": {...tokenizer.json...}}, ...]; each
// case gets "HFErr": the error message, or null when HF loads it (the file
// is rewritten).
'use strict';
const fs = require('fs');
const tk = require('@anush008/tokenizers');

const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
for (const c of cases) {
  c.HFErr = null;
  try { tk.Tokenizer.fromString(JSON.stringify(c.Tok)); } catch (e) { c.HFErr = String(e.message || e).slice(0, 300); }
}
fs.writeFileSync(process.argv[2], JSON.stringify(cases));
