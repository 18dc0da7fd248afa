// ref_bench.js measures the references' encode-only throughput (one
// thread: run with RAYON_NUM_THREADS=1) on the documents glmkit's
// BenchmarkFamilies encodes, for the ratios it reports.
//
// Usage: RAYON_NUM_THREADS=1 node ref_bench.js JOB.json
// JOB.json: {"docs": "docs.json", "jobs": [job, ...]} with the jobs of
// hf_encode.js (no "out"). Prints a JSON list: per job, the best of 3 runs
// of tokens per second and bytes per second; load time is excluded.
'use strict';
const fs = require('fs');
const { load } = require('./refs.js');

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const docs = JSON.parse(fs.readFileSync(job.docs, 'utf8'));
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0);
  const out = [];
  for (const j of job.jobs) {
    const t = await load(j);
    let best = Infinity;
    let ntok = 0;
    for (let rep = 0; rep < 3; rep++) {
      const start = process.hrtime.bigint();
      ntok = 0;
      for (let i = 0; i < docs.length; i += 64) {
        const encs = await t.encodeBatch(docs.slice(i, i + 64), { addSpecialTokens: false });
        for (const e of encs) ntok += e.getIds().length;
      }
      best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
    }
    out.push({ tokens_per_s: ntok / best, bytes_per_s: bytes / best, tokens: ntok });
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
