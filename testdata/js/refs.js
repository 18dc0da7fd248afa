// refs.js loads the reference tokenizers that hf_encode.js and
// ref_bench.js run (see hf_encode.js for the job kinds).
'use strict';
const tk = require('@anush008/tokenizers');

async function load(job) {
  if (job.tokenizer) return tk.Tokenizer.fromFile(job.tokenizer);
  if (job.vocab) {
    const model = await tk.WordPiece.fromFile(job.vocab, { unkToken: '[UNK]' });
    const t = new tk.Tokenizer(model);
    t.setNormalizer(tk.bertNormalizer());
    t.setPreTokenizer(tk.bertPreTokenizer());
    return t;
  }
  // The other references encode one document at a time.
  let encode;
  if (job.js_tiktoken) {
    const enc = require('js-tiktoken').getEncoding(job.js_tiktoken);
    encode = (d) => enc.encode(d, [], []);
  } else if (job.gpt_tokenizer) {
    const enc = require(`gpt-tokenizer/cjs/encoding/${job.gpt_tokenizer}`);
    encode = (d) => enc.encode(d, { disallowedSpecial: new Set() });
  } else if (job.llama3js) {
    const { llama3Tokenizer } = require('llama3-tokenizer-js/bundle/commonjs-llama3-tokenizer-with-baked-data.cjs');
    encode = (d) => llama3Tokenizer.encode(d, { bos: false, eos: false, specialTokenRegex: /(?!)/g });
  } else if (job.llama2js) {
    const { LlamaTokenizer } = await import('llama-tokenizer-js');
    const t = new LlamaTokenizer();
    encode = (d) => (d.length === 0 ? [] : t.encode(d, false, true));
  } else {
    throw new Error('job names no reference: ' + JSON.stringify(job));
  }
  return {
    encodeBatch: async (docs) => docs.map((d) => { const ids = encode(d); return { getIds: () => ids }; }),
  };
}

module.exports = { load };
