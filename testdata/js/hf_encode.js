// hf_encode.js encodes documents with Hugging Face tokenizers (npm
// @anush008/tokenizers 0.6.0 = HF tokenizers 0.22) for glmkit's Go tests.
//
// Usage: node hf_encode.js JOB.json
// JOB.json: {"docs": "docs.json", "jobs": [{"tokenizer": "tokenizer.json", "out": "ids.bin"},
//                                          {"vocab": "vocab.txt", "out": "ids2.bin"}, ...]}
// docs.json is a JSON array of strings. A job names one reference:
//   tokenizer      a tokenizer.json, encoded by Hugging Face tokenizers
//   vocab          a WordPiece vocab.txt, built the way HF's BertWordPieceTokenizer
//                  builds it (BertNormalizer and WordPiece defaults, BertPreTokenizer)
//   js_tiktoken    an encoding name (cl100k_base, o200k_base, r50k_base), by js-tiktoken
//   gpt_tokenizer  an encoding name, by gpt-tokenizer
//   llama3js       true: Llama-3 by llama3-tokenizer-js
//   llama2js       true: Llama-2 by llama-tokenizer-js (a preceding space, no bos)
// A job may name its own "docs" file. No special tokens are added, and special-token strings in the text are
// ordinary text. Output per job: for each document a little-endian uint32
// count followed by that many int32 ids.
'use strict';
const fs = require('fs');

const { load } = require('./refs.js');

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const allDocs = JSON.parse(fs.readFileSync(job.docs, 'utf8'));
  for (const j of job.jobs) {
    const docs = j.docs ? JSON.parse(fs.readFileSync(j.docs, 'utf8')) : allDocs;
    const t = await load(j);
    const chunks = [];
    const batch = 256;
    for (let i = 0; i < docs.length; i += batch) {
      const encs = await t.encodeBatch(docs.slice(i, i + batch), { addSpecialTokens: false });
      for (const e of encs) {
        const ids = e.getIds();
        const buf = Buffer.alloc(4 + 4 * ids.length);
        buf.writeUInt32LE(ids.length, 0);
        for (let k = 0; k < ids.length; k++) buf.writeInt32LE(ids[k], 4 + 4 * k);
        chunks.push(buf);
      }
    }
    fs.writeFileSync(j.out, Buffer.concat(chunks));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
