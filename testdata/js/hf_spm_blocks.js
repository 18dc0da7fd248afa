// hf_spm_blocks.js runs Hugging Face tokenizers' (npm @anush008/tokenizers
// 0.6.0 = HF tokenizers 0.22) Precompiled normalizer on documents, for
// glmkit's Go tests of the charsmap's Hugging Face semantics
// (pipeline/tokenizer/charsmap_test.go).
//
// Usage: node hf_spm_blocks.js JOB.json
// JOB.json: {"docs": "docs.json", "jobs": [{"charsmap": "blob.bin", "out": "normalized.json"}, ...]}
// docs.json is a JSON array of strings; blob.bin a precompiled charsmap
// (SentencePiece's normalizer_spec.precompiled_charsmap). Each job writes
// the normalized strings as a JSON array.
'use strict';
const fs = require('fs');
const tk = require('@anush008/tokenizers');

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const docs = JSON.parse(fs.readFileSync(job.docs, 'utf8'));
for (const j of job.jobs) {
  const norm = tk.precompiled(Array.from(fs.readFileSync(j.charsmap)));
  fs.writeFileSync(j.out, JSON.stringify(docs.map((d) => norm.normalizeString(d))));
}
