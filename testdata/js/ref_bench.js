// ref_bench.js measures the references' encode-only throughput (one
// thread: run with RAYON_NUM_THREADS=1) on the documents glmkit's
// BenchmarkFamilies encodes, for the ratios it reports.
//
// Usage: RAYON_NUM_THREADS=1 node ref_bench.js JOB.json
// JOB.json: {"warm": "warm.json", "docs": "docs.json", "jobs": [job, ...]}
// with the jobs of hf_encode.js (no "out"). Each reference encodes the warm
// documents first (JIT, caches), then the timed documents once: they are
// other documents, so no cache holds a timed document (gpt-tokenizer's and
// Hugging Face's word caches would, on a second pass). Prints a JSON list:
// per job, tokens per second and bytes per second; load time is excluded.
'use strict';
const fs = require('fs');
const { load } = require('./refs.js');

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const docs = JSON.parse(fs.readFileSync(job.docs, 'utf8'));
  const warm = JSON.parse(fs.readFileSync(job.warm, 'utf8'));
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0);
  const out = [];
  for (const j of job.jobs) {
    const t = await load(j);
    const pass = async (ds) => {
      let n = 0;
      for (let i = 0; i < ds.length; i += 64) {
        const encs = await t.encodeBatch(ds.slice(i, i + 64), { addSpecialTokens: false });
        for (const e of encs) n += e.getIds().length;
      }
      return n;
    };
    await pass(warm);
    const start = process.hrtime.bigint();
    const ntok = await pass(docs);
    const sec = Number(process.hrtime.bigint() - start) / 1e9;
    out.push({ tokens_per_s: ntok / sec, bytes_per_s: bytes / sec, tokens: ntok });
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
