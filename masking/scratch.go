package masking

// scratch holds a Sample's working memory, so a reused Sample masks with no
// allocation. Nothing in it outlives one MaskTo call.
type scratch struct {
	r       rng
	lengths []int32 // token level: drawn span lengths, in shuffled order
	owner   []int32 // token level: document index that takes each length
	docs    []region
	places  []int32
	sorted  []Span  // spans in source order
	maskPos []int32 // Part A index of each sorted span's blank
	cand    []Span  // sentence level: candidate sentences
	ends    []bool  // sentence level: Config.SentenceEndsOf of the sample
}

// region is the part of one packed document that token spans may cover:
// between its [CLS] and its eos.
type region struct {
	off, n   int32 // first token, number of tokens
	sum, cnt int32 // lengths assigned so far
}
