// hf_components.js runs single Hugging Face tokenizers components (npm
// @anush008/tokenizers 0.6.0 = HF tokenizers 0.22) over documents, for
// glmkit's component tests (pipeline/tokenizer/components_test.go).
//
// Usage: node hf_components.js JOB.json
// JOB.json: {"docs": "docs.json", "cases": [{"pre_tokenizer": {...}, "out": "pieces.json"},
//                                           {"normalizer": {...}, "out": "normalized.json"}]}
// A pre_tokenizer case writes, per document, the list of its pieces; a
// normalizer case the normalized string. Errors (HF refusing a document)
// are written as null.
'use strict';
const fs = require('fs');
const tk = require('@anush008/tokenizers');

function tokenizer(c) {
  return tk.Tokenizer.fromString(JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [],
    normalizer: c.normalizer || null, pre_tokenizer: c.pre_tokenizer || null, post_processor: null, decoder: null,
    model: { type: 'WordLevel', vocab: { u: 0 }, unk_token: 'u' },
  }));
}

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const docs = JSON.parse(fs.readFileSync(job.docs, 'utf8'));
for (const c of job.cases) {
  const t = tokenizer(c);
  let out;
  if (c.pre_tokenizer) {
    const p = t.getPreTokenizer();
    out = docs.map((d) => { try { return p.preTokenizeString(d).map((x) => x[0]); } catch (e) { return null; } });
  } else {
    const n = t.getNormalizer();
    out = docs.map((d) => { try { return n.normalizeString(d); } catch (e) { return null; } });
  }
  fs.writeFileSync(c.out, JSON.stringify(out));
}
