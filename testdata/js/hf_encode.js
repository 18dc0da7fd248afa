// hf_encode.js encodes documents with Hugging Face tokenizers (npm
// @anush008/tokenizers 0.6.0 = HF tokenizers 0.22) for glmkit's Go tests.
//
// Usage: node hf_encode.js JOB.json
// JOB.json: {"docs": "docs.json", "jobs": [{"tokenizer": "tokenizer.json", "out": "ids.bin"},
//                                          {"vocab": "vocab.txt", "out": "ids2.bin"}]}
// docs.json is a JSON array of strings. A job names either a tokenizer.json
// or a WordPiece vocab.txt; the latter is built the way HF's
// BertWordPieceTokenizer builds it (BertNormalizer and WordPiece defaults,
// BertPreTokenizer). No special tokens are added. Output per job: for each
// document a little-endian uint32 count followed by that many int32 ids.
'use strict';
const fs = require('fs');
const tk = require('@anush008/tokenizers');

async function load(job) {
  if (job.tokenizer) return tk.Tokenizer.fromFile(job.tokenizer);
  const model = await tk.WordPiece.fromFile(job.vocab, { unkToken: '[UNK]' });
  const t = new tk.Tokenizer(model);
  t.setNormalizer(tk.bertNormalizer());
  t.setPreTokenizer(tk.bertPreTokenizer());
  return t;
}

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const docs = JSON.parse(fs.readFileSync(job.docs, 'utf8'));
  for (const j of job.jobs) {
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
