package pipeline

// ResumePoint is where a task's next sample starts: every sample boundary
// has one, and a task record stores the one after its last committed shard.
type ResumePoint struct {
	Record int64 `json:"record"` // index of the record that starts the next sample
	Line   int64 `json:"line"`   // its first line
	Offset int64 `json:"offset"` // its byte offset in the decompressed input
	Token  int64 `json:"token"`  // tokens of that record already in earlier samples (a long document)
	Sample int64 `json:"sample"` // index of the next sample within the task
}

// Key is the key of item index (a sample, or a record) of task task:
// task<<40 | index. A sample's key is its masking key, and a row's doc_id
// is the key of its first document's record, so keys are unique across a
// build of up to 2^24 tasks of up to 2^40 items each.
func Key(task, index uint64) uint64 { return task<<keyBits | index }

// SplitKey is the inverse of Key.
func SplitKey(key uint64) (task, index uint64) { return key >> keyBits, key & (1<<keyBits - 1) }

const keyBits = 40

// packed is one sample the packer made.
type packed struct {
	key    uint64 // Key(task, sample index): the masking key
	docID  uint64 // Key(task, record index of its first document)
	start  int    // tokens in the batch arena
	end    int
	next   ResumePoint // where the sample after this one starts
	counts DocStats    // the task's counts up to here
}

// packer cuts documents into samples of at most seqLen tokens exactly as
// decisions.md §3 says: every piece starts with [CLS], every document ends
// with eos, short documents are packed in arrival order until the next one
// does not fit, and a long document is cut into pieces, each cut moved back
// to the last sentence end when that keeps at least half the piece.
type packer struct {
	seqLen   int
	cls, eos int32
	ends     func(ids []int32, dst []bool) []bool // the sentence ends of a piece by position (masking.Masker.SentenceEnds)
	at       []bool                               // ends' result for the piece being cut
	task     uint64

	cur     []int32
	curDoc  uint64
	sample  int64
	counts  DocStats
	skipTok int64 // resume: tokens of the first document already written

	flush func(p packed, tokens []int32) error
}

// count adds a record that was read to the counts.
func (p *packer) count(rec *record, ntok int) {
	c := &p.counts
	c.Records++
	// A repaired record is counted as repaired whatever became of it (a
	// record of nothing but invalid bytes and NULs is then blank).
	if rec.repair&(repairUTF8Bit|repairSurrBit) != 0 {
		c.Reasons[InvalidUTF8]++
	}
	if rec.repair&repairNULBit != 0 {
		c.Reasons[NULBytes]++
	}
	if rec.repair&repairDupBit != 0 {
		c.Reasons[DuplicateField]++
	}
	if rec.reason != OK {
		c.Reasons[rec.reason]++
		return
	}
	c.Documents++
	c.Bytes += int64(rec.text)
	c.SourceTokens += int64(ntok)
}

// add places one record (ids are its tokens; nil for a skipped record).
func (p *packer) add(rec *record, ids []int32) error {
	skip := p.skipTok
	p.skipTok = 0
	if rec.reason != OK {
		if skip == 0 {
			p.count(rec, 0)
		}
		return nil
	}
	pos := int(skip)
	n := len(ids)
	if len(p.cur) > 0 && 2+n-pos > p.seqLen-len(p.cur) {
		if err := p.emit(rec, pos); err != nil {
			return err
		}
	}
	if skip == 0 {
		p.count(rec, n)
	}
	for {
		rest := n - pos
		if 2+rest <= p.seqLen-len(p.cur) {
			p.start(rec)
			p.cur = append(p.cur, p.cls)
			p.cur = append(p.cur, ids[pos:]...)
			p.cur = append(p.cur, p.eos)
			return nil
		}
		// The (rest of the) document is longer than a sample, and the
		// sample is empty: cut a piece, leaving at least one token for the
		// piece that carries the eos.
		c := min(p.seqLen-1, rest-1)
		c = p.cut(ids[pos : pos+c])
		p.start(rec)
		p.cur = append(p.cur, p.cls)
		p.cur = append(p.cur, ids[pos:pos+c]...)
		pos += c
		if err := p.emit(rec, pos); err != nil {
			return err
		}
	}
}

func (p *packer) start(rec *record) {
	if len(p.cur) == 0 {
		p.curDoc = Key(p.task, uint64(rec.index))
	}
	p.counts.Pieces++
}

// cut is GLM's right strip: keep the longest prefix that ends with a
// sentence end, if it keeps at least half of piece.
func (p *packer) cut(piece []int32) int {
	p.at = p.ends(piece, p.at[:0]) // the piece follows its [CLS], as the masker sees it
	for j := len(piece); j >= max(1, len(piece)/2); j-- {
		if p.at[j-1] {
			return j
		}
	}
	return len(piece)
}

// emit finishes the current sample; the next one starts at token pos of rec.
func (p *packer) emit(rec *record, pos int) error {
	return p.emitAt(ResumePoint{Record: rec.index, Line: rec.line, Offset: rec.off, Token: int64(pos)})
}

func (p *packer) emitAt(next ResumePoint) error {
	if len(p.cur) == 0 {
		return nil
	}
	p.counts.Samples++
	next.Sample = p.sample + 1
	s := packed{key: Key(p.task, uint64(p.sample)), docID: p.curDoc, next: next, counts: p.counts}
	p.sample++
	err := p.flush(s, p.cur)
	p.cur = p.cur[:0]
	return err
}
