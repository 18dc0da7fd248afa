// hf_unicode.js probes every Unicode code point through Hugging Face
// tokenizers (npm @anush008/tokenizers, HF tokenizers 0.22) and writes the
// character classes that glmkit's tokenizer package needs as Go source.
//
// Why: HF mixes Unicode versions. BertNormalizer and BertPreTokenizer take Cf,
// Mn and P* from the unicode_categories crate (old tables), lowercasing and
// White_Space come from Rust's std (Unicode 16), and the GPT-2 pattern's
// \p{L}, \p{N} and \s come from Oniguruma (Unicode 16), and its NFC/NFD/NFKC/NFKD
// from an old unicode-normalization fork. Go 1.26 ships Unicode 15.0. To be
// exact on every code point we take the classes from HF itself: for the
// BERT and GPT-2 encoders, for the regular-expression engine (every general
// category, a few scripts, \w \d \s \h, the case-insensitive orbits of the
// ASCII letters), for the Digits pre-tokenizer (Rust's char::is_numeric),
// for added tokens' single_word (Rust regex \w), and for normalization (the
// code points HF's normalizers change or reorder).
//
// Usage (from the repository root):
//   node testdata/js/hf_unicode.js > pipeline/tokenizer/unicode_tables.go && gofmt -w pipeline/tokenizer/unicode_tables.go
'use strict';
const tk = require('@anush008/tokenizers');

// A tokenizer.json around one pre-tokenizer (WordLevel model, "u" unknown),
// for probing pre-tokenizers and regular expressions.
function tokJSON(pre, added) {
  return tk.Tokenizer.fromString(JSON.stringify({
    version: '1.0', added_tokens: added || [], normalizer: null, pre_tokenizer: pre, post_processor: null,
    decoder: null, model: { type: 'WordLevel', vocab: { u: 0, Q: 1 }, unk_token: 'u' },
  }));
}
const allCPs = [];
for (let cp = 0; cp < 0x110000; cp++) if (cp < 0xd800 || cp >= 0xe000) allCPs.push(cp);

// matchedBy returns the code points (of cps) that the regular expression
// matches as a whole character: Split(Removed) removes them, and the
// offsets (in characters) of what remains tell which were kept.
function matchedBy(pattern, cps) {
  const pre = tokJSON({ type: 'Split', pattern: { Regex: pattern }, behavior: 'Removed', invert: false }).getPreTokenizer();
  const out = [];
  for (let i = 0; i < cps.length; i += 8192) {
    const chunk = cps.slice(i, i + 8192);
    const kept = new Uint8Array(chunk.length);
    for (const [, [a, b]] of pre.preTokenizeString(String.fromCodePoint(...chunk))) kept.fill(1, a, b);
    chunk.forEach((cp, k) => { if (!kept[k]) out.push(cp); });
  }
  return out;
}

const clean = tk.bertNormalizer({ cleanText: true, handleChineseChars: false, lowercase: false, stripAccents: false });
const strip = tk.bertNormalizer({ cleanText: false, handleChineseChars: false, lowercase: false, stripAccents: true });
const lower = tk.bertNormalizer({ cleanText: false, handleChineseChars: false, lowercase: true, stripAccents: false });
const bertPre = tk.bertPreTokenizer();
const stripAccents = tk.stripAccentsNormalizer();
const byteLevel = tk.byteLevelPreTokenizer(false, true);

const sets = {
  hfBertDrop: [], hfBertSpace: [], hfBertPunct: [], hfBertWhite: [], hfBertMn: [],
  hfGPT2Letter: [], hfGPT2Number: [], hfGPT2Space: [], hfCombiningMark: [],
};
const lowerSingle = [];
const lowerMulti = [];
for (let cp = 0; cp < 0x110000; cp++) {
  if (cp >= 0xd800 && cp < 0xe000) continue;
  const c = String.fromCodePoint(cp);
  const aca = 'a' + c + 'a';
  const cl = clean.normalizeString(aca);
  if (cl === 'aa') sets.hfBertDrop.push(cp);
  else if (cl === 'a a' && c !== ' ') sets.hfBertSpace.push(cp);
  else if (c === ' ') sets.hfBertSpace.push(cp);
  const pieces = bertPre.preTokenizeString(aca).length;
  if (pieces === 2) sets.hfBertWhite.push(cp);
  else if (pieces === 3) sets.hfBertPunct.push(cp);
  if (strip.normalizeString(c) === '') sets.hfBertMn.push(cp);
  if (stripAccents.normalizeString(c) === '') sets.hfCombiningMark.push(cp);
  const lw = lower.normalizeString(c);
  if (lw !== c) {
    const rs = Array.from(lw).map((x) => x.codePointAt(0));
    if (rs.length === 1) lowerSingle.push([cp, rs[0]]);
    else lowerMulti.push([cp, rs]);
  }
  if (byteLevel.preTokenizeString(aca).length === 1) sets.hfGPT2Letter.push(cp);
  else if (byteLevel.preTokenizeString('1' + c + '1').length === 1) sets.hfGPT2Number.push(cp);
  else if (cp === 0x20 || byteLevel.preTokenizeString('!' + c + '!').length === 3) sets.hfGPT2Space.push(cp); // '! !' splits as '!', ' !'
}

// Oniguruma's classes, for the regular-expression engine.
const categories = ['Lu', 'Ll', 'Lt', 'Lm', 'Lo', 'Mn', 'Mc', 'Me', 'Nd', 'Nl', 'No', 'Pc', 'Pd', 'Ps', 'Pe', 'Pi', 'Pf', 'Po',
  'Sm', 'Sc', 'Sk', 'So', 'Zs', 'Zl', 'Zp', 'Cc', 'Cf', 'Co'];
const scripts = ['Han', 'Hiragana', 'Katakana', 'Hangul', 'Latin', 'Greek', 'Cyrillic', 'Arabic', 'Hebrew', 'Thai',
  'Devanagari', 'Common', 'Inherited'];
const onig = {};
for (const c of categories) onig['cat' + c] = matchedBy('\\p{' + c + '}', allCPs);
for (const c of scripts) onig['script' + c] = matchedBy('\\p{' + c + '}', allCPs);
for (const [name, re] of [['Word', '\\w'], ['Digit', '\\d'], ['Space', '\\s'], ['Hex', '\\h']]) onig['esc' + name] = matchedBy(re, allCPs);
// One-letter categories must be the unions of their two-letter ones.
for (const major of 'LMNPSZ') {
  const union = new Set(categories.filter((c) => c[0] === major).flatMap((c) => onig['cat' + c]));
  const got = matchedBy('\\p{' + major + '}', allCPs);
  if (got.length !== union.size || got.some((cp) => !union.has(cp))) throw new Error('\\p{' + major + '} is not the union of its categories');
}
// Case-insensitive matches of each ASCII letter, (?i:x): one character each.
const folds = [];
const cased = allCPs.filter((cp) => { const c = String.fromCodePoint(cp); return c.toLowerCase() !== c || c.toUpperCase() !== c; });
for (let b = 0x41; b <= 0x5a; b++) folds.push(matchedBy('(?i:\\x{' + (b + 0x20).toString(16) + '})', cased));
// Rust's char::is_numeric, as the Digits pre-tokenizer isolates it.
const numeric = [];
{
  const digits = tk.digitsPreTokenizer(true);
  for (let i = 0; i < allCPs.length; i += 8192) {
    const chunk = allCPs.slice(i, i + 8192);
    const pieces = digits.preTokenizeString(chunk.map((cp) => 'a' + String.fromCodePoint(cp)).join('') + 'a');
    for (const [p, [a, b]] of pieces) if (b - a === 1 && p !== 'a') numeric.push(p.codePointAt(0));
  }
}
// Rust regex \w, which added tokens' single_word tests: "c" + Q + "." has Q
// matched (id 1) exactly when c is not a word character.
async function rustWord() {
  const t = tokJSON(null, [{ id: 1, content: 'Q', single_word: true, lstrip: false, rstrip: false, normalized: false, special: false }]);
  const out = [];
  for (let i = 0; i < allCPs.length; i += 8192) {
    const chunk = allCPs.slice(i, i + 8192);
    const e = await t.encode(chunk.map((cp) => String.fromCodePoint(cp) + 'Q.').join(''), null, { addSpecialTokens: false });
    const matched = new Set();
    const ids = e.getIds();
    e.getOffsets().forEach(([a], k) => { if (ids[k] === 1) matched.add(a); });
    chunk.forEach((cp, k) => { if (!matched.has(3 * k + 1)) out.push(cp); });
  }
  return out;
}
// Normalization: the code points HF's NFD/NFKD decompose, and those with a
// non-zero canonical combining class (they move past U+0334, class 1, when
// they follow U+0316, class 220... or they stay put when class 0).
const normActive = new Set();
{
  const nfkd = tk.nfkdNormalizer();
  const nfd = tk.nfdNormalizer();
  const cps = allCPs.filter((cp) => cp !== 1);
  for (let i = 0; i < cps.length; i += 4096) {
    const chunk = cps.slice(i, i + 4096);
    const single = nfkd.normalizeString(chunk.map((cp) => String.fromCodePoint(cp)).join('\u0001')).split('\u0001');
    const moved = nfd.normalizeString(chunk.map((cp) => 'a\u0316' + String.fromCodePoint(cp) + '\u0334').join('\u0001')).split('\u0001');
    if (single.length !== chunk.length || moved.length !== chunk.length) throw new Error('normalization probe misaligned');
    chunk.forEach((cp, k) => {
      const c = String.fromCodePoint(cp);
      if (single[k] !== c || moved[k] !== 'a\u0316' + c + '\u0334') normActive.add(cp);
    });
  }
}

function ranges(list) {
  const out = [];
  for (const cp of list) {
    const last = out[out.length - 1];
    if (last && cp === last[1] + 1) last[1] = cp;
    else if (last && last[1] === 0xd7ff && cp === 0xe000) last[1] = cp; // surrogates were skipped
    else out.push([cp, cp]);
  }
  return out;
}
const hex = (n) => '0x' + n.toString(16).toUpperCase();
const docs = {
  hfBertDrop: 'code points BertNormalizer\'s clean_text deletes (NUL, U+FFFD, and Cc/Cf/Co as HF classifies them, except \\t \\n \\r)',
  hfBertSpace: 'code points BertNormalizer\'s clean_text turns into U+0020',
  hfBertPunct: 'code points BertPreTokenizer isolates (ASCII punctuation and HF\'s P*)',
  hfBertWhite: 'code points BertPreTokenizer splits on (Rust char::is_whitespace)',
  hfBertMn: 'code points BertNormalizer\'s strip_accents deletes after NFD (HF\'s Mn)',
  hfGPT2Letter: 'code points the GPT-2 pattern counts as \\p{L}',
  hfGPT2Number: 'code points the GPT-2 pattern counts as \\p{N}',
  hfGPT2Space: 'code points the GPT-2 pattern counts as \\s',
  hfCombiningMark: 'code points the StripAccents normalizer removes (HF\'s is_combining_mark)',
};
async function main() {
const word = await rustWord();
let src = '// Code generated by testdata/js/hf_unicode.js from Hugging Face tokenizers 0.22 (npm @anush008/tokenizers 0.6.0). DO NOT EDIT.\n\n';
src += 'package tokenizer\n\n';
for (const [name, list] of Object.entries(sets)) {
  src += `// ${name} lists the ${docs[name]}, as inclusive ranges.\nvar ${name} = [...]runeRange{\n`;
  for (const [lo, hi] of ranges(list)) src += `\t{${hex(lo)}, ${hex(hi)}},\n`;
  src += '}\n\n';
}
src += '// hfLower maps the code points that Rust\'s char::to_lowercase changes to a\n// single code point, sorted by code point.\nvar hfLower = [...][2]rune{\n';
for (const [a, b] of lowerSingle) src += `\t{${hex(a)}, ${hex(b)}},\n`;
src += '}\n\n';
const onigDocs = {
  escWord: 'code points Oniguruma\'s \\w matches', escDigit: 'code points Oniguruma\'s \\d matches',
  escSpace: 'code points Oniguruma\'s \\s matches', escHex: 'code points Oniguruma\'s \\h matches',
};
for (const [name, list] of Object.entries(onig)) {
  const goName = 'onig' + name[0].toUpperCase() + name.slice(1);
  let doc = onigDocs[name];
  if (!doc) doc = name.startsWith('cat') ? `code points of general category ${name.slice(3)} in Oniguruma` : `code points of script ${name.slice(6)} in Oniguruma`;
  src += `// ${goName} lists the ${doc}, as inclusive ranges.\nvar ${goName} = [...]runeRange{\n`;
  for (const [lo, hi] of ranges(list)) src += `\t{${hex(lo)}, ${hex(hi)}},\n`;
  src += '}\n\n';
}
src += '// onigFoldASCII lists, for each letter A..Z, the code points that (?i:x) matches\n// in Oniguruma, one character each.\nvar onigFoldASCII = [26][]rune{\n';
for (const f of folds) src += `\t{${f.map(hex).join(', ')}},\n`;
src += '}\n\n';
src += '// hfNumeric lists the code points the Digits pre-tokenizer isolates (Rust\'s char::is_numeric), as inclusive ranges.\nvar hfNumeric = [...]runeRange{\n';
for (const [lo, hi] of ranges(numeric)) src += `\t{${hex(lo)}, ${hex(hi)}},\n`;
src += '}\n\n';
src += '// hfRustWord lists the code points Rust regex\'s \\w matches (added tokens\' single_word), as inclusive ranges.\nvar hfRustWord = [...]runeRange{\n';
for (const [lo, hi] of ranges(word)) src += `\t{${hex(lo)}, ${hex(hi)}},\n`;
src += '}\n\n';
src += '// hfNormActive lists the code points that HF\'s NFD/NFKD change or that have a\n// non-zero canonical combining class there, as inclusive ranges.\nvar hfNormActive = [...]runeRange{\n';
for (const [lo, hi] of ranges([...normActive].sort((a, b) => a - b))) src += `\t{${hex(lo)}, ${hex(hi)}},\n`;
src += '}\n\n';
src += '// hfLowerMulti maps the code points whose lowercase is several code points.\nvar hfLowerMulti = [...]struct {\n\tr  rune\n\tto string\n}{\n';
for (const [a, rs] of lowerMulti) src += `\t{${hex(a)}, ${JSON.stringify(String.fromCodePoint(...rs)).replace(/[\u0080-\uffff]/g, (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'))}},\n`;
src += '}\n';
  process.stdout.write(src);
}
main().catch((err) => { console.error(err); process.exit(1); });
