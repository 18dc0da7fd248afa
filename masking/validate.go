package masking

import (
	"errors"
	"fmt"
)

// segment is one Part B span of a row: indices [start, end) of the row.
type segment struct{ start, end int32 }

// Suffix reports whether the row has the document objective's suffix
// layout (one Part B span with no eop, generating the sample's tail).
func (s *Sample) Suffix(ids SpecialIDs) bool {
	n := len(s.Target)
	return s.Objective == Document && n > 0 && int(s.Sep) < n && s.Target[n-1] != ids.EOP
}

// Validate checks every invariant of the GLM layout (glm-reference.md §2),
// using only the row itself: field lengths, Part A (targets equal inputs,
// no loss, block position 0, position = index, [CLS] first), the blanks
// (the objective's mask id, one per Part B span, token blanks never
// adjacent), every Part B span (sop first, targets shifted by one and ended
// by eop, the blank's position, block positions 1..len+1, loss 1; no eos
// inside, and for token and document spans no [CLS]), the suffix layout's
// rules, and the lengths L+2K (L+1 for the suffix) and sep = L−M+K.
// taskMask says whether the build used [sMASK]/[gMASK].
func (s *Sample) Validate(ids SpecialIDs, taskMask bool) error {
	if err := s.validate(ids, taskMask); err != nil {
		return fmt.Errorf("masking: invalid %s row: %w", s.Objective, err)
	}
	return nil
}

func (s *Sample) validate(ids SpecialIDs, taskMask bool) error {
	reserved := ids.reserved()
	n := len(s.Input)
	if len(s.Target) != n || len(s.LossMask) != n || len(s.Pos) != n || len(s.BlockPos) != n {
		return fmt.Errorf("field lengths differ: input %d, target %d, loss %d, pos %d, block %d",
			n, len(s.Target), len(s.LossMask), len(s.Pos), len(s.BlockPos))
	}
	if s.Objective >= NumObjectives {
		return fmt.Errorf("unknown objective %d", s.Objective)
	}
	sep := int(s.Sep)
	if sep < 2 || sep >= n {
		return fmt.Errorf("sep %d outside [2, %d)", sep, n)
	}
	if s.Input[0] != ids.CLS {
		return fmt.Errorf("row starts with %d, not [CLS] %d", s.Input[0], ids.CLS)
	}
	maskID := ids.MaskID(s.Objective, taskMask)
	blanks := 0
	for i := range sep {
		in := s.Input[i]
		switch {
		case s.Target[i] != in:
			return fmt.Errorf("part A %d: target %d differs from input %d", i, s.Target[i], in)
		case s.LossMask[i] != 0:
			return fmt.Errorf("part A %d: loss mask %d", i, s.LossMask[i])
		case s.BlockPos[i] != 0:
			return fmt.Errorf("part A %d: block position %d", i, s.BlockPos[i])
		case s.Pos[i] != int32(i):
			return fmt.Errorf("part A %d: position %d", i, s.Pos[i])
		case in == maskID:
			blanks++
			if s.Objective == Token && i > 0 && s.Input[i-1] == maskID {
				return fmt.Errorf("part A %d: token blanks at %d and %d are adjacent", i, i-1, i)
			}
		case reserved.has(in):
			return fmt.Errorf("part A %d: token %d is not a blank of a %s row", i, in, s.Objective)
		case in < 0:
			return fmt.Errorf("part A %d: negative token %d", i, in)
		}
	}
	if s.Suffix(ids) {
		return s.validateSuffix(ids, &reserved, maskID, blanks)
	}
	// Regular layout: segments each starting with sop.
	var seen bitset
	seen.init(sep)
	k, masked := 0, 0
	for i := sep; i < n; {
		j := i + 1
		for j < n && s.Input[j] != ids.SOP {
			j++
		}
		if err := s.validateSegment(ids, &reserved, maskID, i, j, &seen); err != nil {
			return err
		}
		k++
		masked += j - i - 1
		i = j
	}
	if k != blanks {
		return fmt.Errorf("%d blanks in part A but %d spans in part B", blanks, k)
	}
	L := int(s.NSource)
	if n != L+2*k {
		return fmt.Errorf("length %d, want L+2K = %d+2·%d", n, L, k)
	}
	if sep != L-masked+k {
		return fmt.Errorf("sep %d, want L−M+K = %d−%d+%d", sep, L, masked, k)
	}
	return nil
}

func (s *Sample) validateSegment(ids SpecialIDs, reserved *reservedIDs, maskID int32, i, j int, seen *bitset) error {
	if s.Input[i] != ids.SOP {
		return fmt.Errorf("part B %d: span starts with %d, not sop", i, s.Input[i])
	}
	if j-i < 2 {
		return fmt.Errorf("part B %d: empty span", i)
	}
	p := s.Pos[i]
	if p < 0 || p >= s.Sep || s.Input[p] != maskID {
		return fmt.Errorf("part B %d: position %d is not a blank in part A", i, p)
	}
	if seen.has(int(p)) {
		return fmt.Errorf("part B %d: blank at %d is filled twice", i, p)
	}
	seen.set(int(p))
	for x := i; x < j; x++ {
		if s.Pos[x] != p {
			return fmt.Errorf("part B %d: position %d, want its blank's %d", x, s.Pos[x], p)
		}
		if s.BlockPos[x] != int32(x-i+1) {
			return fmt.Errorf("part B %d: block position %d, want %d", x, s.BlockPos[x], x-i+1)
		}
		if s.LossMask[x] != 1 {
			return fmt.Errorf("part B %d: loss mask %d, want 1", x, s.LossMask[x])
		}
		if x > i && s.Input[x] != s.Target[x-1] {
			return fmt.Errorf("part B %d: input %d is not the previous target %d", x, s.Input[x], s.Target[x-1])
		}
		if x == j-1 {
			if s.Target[x] != ids.EOP {
				return fmt.Errorf("part B %d: span ends with target %d, not eop", x, s.Target[x])
			}
			break
		}
		tok := s.Target[x]
		switch {
		case reserved.has(tok):
			return fmt.Errorf("part B %d: span token %d is a token the masker inserts", x, tok)
		case tok == ids.EOS:
			return fmt.Errorf("part B %d: span covers an eos", x)
		case tok == ids.CLS && s.Objective != Sentence:
			return fmt.Errorf("part B %d: %s span covers a [CLS]", x, s.Objective)
		}
	}
	return nil
}

func (s *Sample) validateSuffix(ids SpecialIDs, reserved *reservedIDs, maskID int32, blanks int) error {
	n, sep := len(s.Input), int(s.Sep)
	if blanks != 1 || s.Input[sep-1] != maskID {
		return fmt.Errorf("suffix layout: want one blank, last in part A; have %d", blanks)
	}
	if s.Input[sep] != ids.SOP {
		return fmt.Errorf("suffix layout: part B starts with %d, not sop", s.Input[sep])
	}
	for x := sep; x < n; x++ {
		tok := s.Target[x]
		switch {
		case s.Pos[x] != int32(sep-1):
			return fmt.Errorf("suffix layout %d: position %d, want %d", x, s.Pos[x], sep-1)
		case s.BlockPos[x] != int32(x-sep+1):
			return fmt.Errorf("suffix layout %d: block position %d, want %d", x, s.BlockPos[x], x-sep+1)
		case x > sep && s.Input[x] != s.Target[x-1]:
			return fmt.Errorf("suffix layout %d: input %d is not the previous target %d", x, s.Input[x], s.Target[x-1])
		case x > sep && s.Input[x] == ids.SOP:
			return fmt.Errorf("suffix layout %d: second span", x)
		case reserved.has(tok):
			return fmt.Errorf("suffix layout %d: target %d is a token the masker inserts", x, tok)
		case s.LossMask[x] != lossRule(tok, ids):
			return fmt.Errorf("suffix layout %d: loss mask %d for target %d", x, s.LossMask[x], tok)
		}
	}
	if L := int(s.NSource); n != L+1 {
		return fmt.Errorf("suffix layout: length %d, want L+1 = %d", n, L+1)
	}
	return nil
}

// lossRule is the dataset loss mask on the suffix layout: every token
// counts but [CLS].
func lossRule(tok int32, ids SpecialIDs) uint8 {
	if tok == ids.CLS {
		return 0
	}
	return 1
}

// Source rebuilds the source tokens by putting every Part B span back at
// its blank, appending them to dst. The row must be valid.
func (s *Sample) Source(dst []int32, ids SpecialIDs) ([]int32, error) {
	sep, n := int(s.Sep), len(s.Input)
	if sep <= 0 || sep > n {
		return dst, errors.New("masking: source of a row with no valid sep")
	}
	if s.Suffix(ids) {
		dst = append(dst, s.Input[:sep-1]...)
		return append(dst, s.Target[sep:]...), nil
	}
	// For each Part A index, the Part B segment that fills it.
	fill := make(map[int32]segment)
	for i := sep; i < n; {
		j := i + 1
		for j < n && s.Input[j] != ids.SOP {
			j++
		}
		fill[s.Pos[i]] = segment{int32(i), int32(j)}
		i = j
	}
	for i := range sep {
		if seg, ok := fill[int32(i)]; ok {
			dst = append(dst, s.Target[seg.start:seg.end-1]...)
			continue
		}
		dst = append(dst, s.Input[i])
	}
	return dst, nil
}

// bitset marks Part A indices without allocating for rows of up to 4096.
type bitset struct {
	small [64]uint64
	words []uint64
}

func (b *bitset) init(n int) {
	if w := (n + 63) / 64; w <= len(b.small) {
		b.words = b.small[:w]
	} else {
		b.words = make([]uint64, w)
	}
}
func (b *bitset) has(i int) bool { return b.words[i/64]&(1<<(i%64)) != 0 }
func (b *bitset) set(i int)      { b.words[i/64] |= 1 << (i % 64) }
