// hf_bench.js measures Hugging Face tokenizers' encode-only throughput
// (npm @anush008/tokenizers 0.6.0 = HF tokenizers 0.22) on the corpora that
// glmkit's tokenizer benchmarks use, for pipeline/tokenizer/bench.sh.
//
// Usage: RAYON_NUM_THREADS=1 node hf_bench.js NAME=tokenizer.json... -- CORPUS.json...
// Each CORPUS.json is a JSON array of document strings. Documents go through
// encodeBatch in batches of 64, no special tokens; load time is excluded.
// Prints one line per tokenizer and corpus: MB/s and tokens/s, best of 3.
'use strict';
const fs = require('fs');
const path = require('path');
const tk = require('@anush008/tokenizers');

async function main() {
  const args = process.argv.slice(2);
  const sep = args.indexOf('--');
  const toks = args.slice(0, sep).map((a) => a.split('='));
  const corpora = args.slice(sep + 1);
  for (const [name, file] of toks) {
    const t = tk.Tokenizer.fromFile(file);
    for (const c of corpora) {
      const docs = JSON.parse(fs.readFileSync(c, 'utf8'));
      const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0);
      let best = Infinity;
      let ntok = 0;
      for (let rep = 0; rep < 3; rep++) {
        const start = process.hrtime.bigint();
        ntok = 0;
        for (let i = 0; i < docs.length; i += 64) {
          const encs = await t.encodeBatch(docs.slice(i, i + 64), { addSpecialTokens: false });
          for (const e of encs) ntok += e.getLength();
        }
        best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
      }
      const corpus = path.basename(c, '.json');
      console.log(`hf ${name} ${corpus} threads=${process.env.RAYON_NUM_THREADS || 'default'} ${(bytes / 1e6 / best).toFixed(2)} MB/s ${(ntok / best / 1e6).toFixed(2)} Mtokens/s`);
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
