package sharding

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/glmkit/glmkit/internal/atomicfile"
)

// ManifestName is the manifest's file name inside a shard directory.
const ManifestName = "manifest.json"

// Manifest describes a finished build. glmprep writes it last and
// atomically: a directory without one is not a complete build.
type Manifest struct {
	FormatVersion int `json:"format_version"`
	// Meta is what every shard's schema metadata holds.
	Meta Meta `json:"meta"`
	// Config is the full resolved build configuration.
	Config json.RawMessage `json:"config"`
	// Inputs are the input files, each with size and sha256.
	Inputs []InputFile `json:"inputs"`
	// Shards in row order: global row i is row i−Σ(rows before) of the
	// shard where the running sum passes i.
	Shards []ShardFile `json:"shards"`
	Totals Totals      `json:"totals"`
	// Stats are the build's statistics (documents read, skipped by reason,
	// samples, tokens, masked fraction per objective, span lengths).
	Stats json.RawMessage `json:"stats"`
	// Software names the versions that wrote the build.
	Software map[string]string `json:"software,omitempty"`
	// Checksum is the sha256 of the manifest's own JSON encoding with
	// Checksum empty: WriteManifest sets it and ReadManifest checks it, so a
	// manifest edited by hand (a shard's sha256, rows or tokens, the totals)
	// is refused rather than trusted. Format 1 manifests have none.
	Checksum string `json:"checksum,omitempty"`
}

// InputFile is one input of a build.
type InputFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Totals sum the shards.
type Totals struct {
	Shards       int   `json:"shards"`
	Rows         int64 `json:"rows"`
	Tokens       int64 `json:"tokens"`
	SourceTokens int64 `json:"source_tokens"`
	LossTokens   int64 `json:"loss_tokens"`
	Bytes        int64 `json:"bytes"`
	MaxRowLen    int   `json:"max_row_len"`
}

// Sum recomputes Totals from the shards.
func (m *Manifest) Sum() {
	m.Totals = sumShards(m.Shards)
}

func sumShards(shards []ShardFile) Totals {
	t := Totals{Shards: len(shards)}
	for _, s := range shards {
		t.Rows += s.Rows
		t.Tokens += s.Tokens
		t.SourceTokens += s.SourceTokens
		t.LossTokens += s.LossTokens
		t.Bytes += s.Bytes
		t.MaxRowLen = max(t.MaxRowLen, s.MaxRowLen)
	}
	return t
}

// AllowsEmpty reports whether the build's configuration says that a build
// of zero rows is what its author wanted (glmprep build --allow-empty,
// recorded as "allow_empty": true in the manifest's config).
func (m *Manifest) AllowsEmpty() bool {
	var c struct {
		AllowEmpty bool `json:"allow_empty"`
	}
	return json.Unmarshal(m.Config, &c) == nil && c.AllowEmpty
}

// seal returns the manifest's checksum: the sha256 of its compact JSON
// encoding with Checksum empty.
func (m *Manifest) seal() (string, error) {
	c := *m
	c.Checksum = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// WriteManifest sets m's checksum and writes m as dir/manifest.json,
// atomically.
func WriteManifest(dir string, m *Manifest) error {
	sum, err := m.seal()
	if err != nil {
		return fmt.Errorf("sharding: %w", err)
	}
	m.Checksum = sum
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("sharding: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, ManifestName), append(b, '\n')); err != nil {
		return fmt.Errorf("sharding: writing manifest: %w", err)
	}
	return nil
}

// ErrNoManifest means a directory holds no manifest.json: it is not a
// glmkit shard directory, or its build has not finished.
var ErrNoManifest = errors.New("sharding: no manifest.json (not a glmkit shard directory, or the build has not finished; see glmprep build --resume)")

// maxManifestBytes bounds what ReadManifest reads: a build of 10⁶ shards
// has a manifest of a few hundred MB.
const maxManifestBytes = 1 << 30

// ReadManifest reads dir/manifest.json and checks it: its format version
// (1 or 2), its checksum (format 2), and that every number is in range,
// every shard is named by a plain file name inside dir and listed once, and
// the totals are the sums of the shards. Any failure is an error naming the
// file and what is wrong.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestName)
	// Looked at before it is opened: opening a named pipe waits for a
	// writer, and a device (a link to /dev/zero) never ends.
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoManifest, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("sharding: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("sharding: %s is not a regular file (%s)", path, st.Mode().Type())
	}
	if st.Size() > maxManifestBytes {
		return nil, fmt.Errorf("sharding: %s: %d bytes, larger than %d; not a glmkit manifest", path, st.Size(), maxManifestBytes)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sharding: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("sharding: %s: %w", path, err)
	}
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("sharding: %s: larger than %d bytes; not a glmkit manifest", path, maxManifestBytes)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("sharding: %s: %w", path, err)
	}
	return m, nil
}

// ParseManifest parses and checks a manifest's bytes (see ReadManifest).
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m.FormatVersion < MinFormatVersion || m.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("format version %d; this glmkit reads versions %d to %d (rebuild the shards with this glmprep)", m.FormatVersion, MinFormatVersion, FormatVersion)
	}
	if m.FormatVersion >= 2 || m.Checksum != "" {
		want, err := m.seal()
		if err != nil {
			return nil, err
		}
		if m.Checksum != want {
			return nil, fmt.Errorf("checksum %q does not match its contents (sha256 %s): the manifest was edited or damaged after glmprep wrote it; rebuild, or rewrite it from the task records with glmprep merge", m.Checksum, want)
		}
	}
	if err := checkManifest(&m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Bounds on what a manifest may say. They are far above any real build and
// keep sums and allocations from overflowing.
const (
	maxCount    = 1 << 48
	maxVocab    = 1 << 31
	maxSeqLen   = 1 << 24
	maxEpochs   = 1 << 16
	maxNameLen  = 255
	maxBatchLen = 1 << 24 // record batches per shard
)

// checkMeta checks that a build's meta is in range.
func checkMeta(m Meta) error {
	switch {
	case m.FormatVersion < MinFormatVersion || m.FormatVersion > FormatVersion:
		return fmt.Errorf("format version %d; this glmkit reads versions %d to %d", m.FormatVersion, MinFormatVersion, FormatVersion)
	case m.VocabSize < 1 || m.VocabSize >= maxVocab:
		return fmt.Errorf("vocab_size %d out of range [1, %d)", m.VocabSize, maxVocab)
	case m.SeqLen < 1 || m.SeqLen > maxSeqLen:
		return fmt.Errorf("seq_len %d out of range [1, %d]", m.SeqLen, maxSeqLen)
	case m.MaskEpochs < 1 || m.MaskEpochs > maxEpochs:
		return fmt.Errorf("mask_epochs %d out of range [1, %d]", m.MaskEpochs, maxEpochs)
	}
	for name, id := range m.Special.All() {
		if id < 0 || int(id) >= m.VocabSize {
			return fmt.Errorf("special id %s = %d outside the vocabulary [0, %d)", name, id, m.VocabSize)
		}
	}
	return nil
}

// checkShardName checks that name is a plain file name: no directory, no
// "..", not absolute, not hidden (glmkit's temporaries start with a dot),
// and an .arrow file.
func checkShardName(name string) error {
	switch {
	case name == "" || len(name) > maxNameLen:
		return fmt.Errorf("shard name of %d bytes", len(name))
	case strings.ContainsAny(name, "/\\\x00") || filepath.IsAbs(name) || name != filepath.Base(name):
		return fmt.Errorf("shard name %q is not a file name inside the directory", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("shard name %q is not a file name inside the directory (hidden or a temporary)", name)
	case !strings.HasSuffix(name, ".arrow"):
		return fmt.Errorf("shard name %q does not end in .arrow", name)
	}
	return nil
}

// CheckShardFile checks one shard entry of a manifest or task record:
// its name is a plain file name, its counts are in range and consistent
// (every row has at least one position), its sha256 and checksums are
// well formed. format is the build's format version: format 2 entries must
// carry checksums.
func CheckShardFile(s *ShardFile, format int) error {
	if err := checkShardName(s.Name); err != nil {
		return err
	}
	bad := func(what string, v int64) error {
		return fmt.Errorf("shard %s: %s %d out of range", s.Name, what, v)
	}
	switch {
	case s.Rows < 1 || s.Rows > maxCount:
		return bad("rows", s.Rows)
	case s.Tokens < s.Rows || s.Tokens > maxCount:
		return bad("tokens", s.Tokens)
	case s.SourceTokens < 0 || s.SourceTokens > s.Tokens:
		return bad("source_tokens", s.SourceTokens)
	case s.LossTokens < 0 || s.LossTokens > s.Tokens:
		return bad("loss_tokens", s.LossTokens)
	case s.MaxRowLen < 1 || int64(s.MaxRowLen) > s.Tokens || s.MaxRowLen > 1<<31-1:
		return bad("max_row_len", int64(s.MaxRowLen))
	case s.Bytes < 16 || s.Bytes > maxCount:
		return bad("bytes", s.Bytes)
	}
	if b, err := hex.DecodeString(s.SHA256); err != nil || len(b) != sha256.Size || strings.ToLower(s.SHA256) != s.SHA256 {
		return fmt.Errorf("shard %s: sha256 %q is not 64 lowercase hex digits", s.Name, s.SHA256)
	}
	switch {
	case s.Checksums == nil && format >= 2:
		return fmt.Errorf("shard %s has no checksums (format %d records them)", s.Name, format)
	case s.Checksums == nil:
	case len(s.Checksums.Batches) < 1 || int64(len(s.Checksums.Batches)) > s.Rows || len(s.Checksums.Batches) > maxBatchLen:
		return fmt.Errorf("shard %s: %d batch checksums for %d rows", s.Name, len(s.Checksums.Batches), s.Rows)
	default:
		if _, err := s.Checksums.parse(); err != nil {
			return fmt.Errorf("shard %s: %w", s.Name, err)
		}
	}
	return nil
}

// checkManifest checks what a manifest says about itself.
func checkManifest(m *Manifest) error {
	if m.Meta.FormatVersion != m.FormatVersion {
		return fmt.Errorf("meta format version %d differs from the manifest's %d", m.Meta.FormatVersion, m.FormatVersion)
	}
	if err := checkMeta(m.Meta); err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	seen := make(map[string]bool, len(m.Shards))
	for i := range m.Shards {
		s := &m.Shards[i]
		if err := CheckShardFile(s, m.FormatVersion); err != nil {
			return err
		}
		if seen[s.Name] {
			return fmt.Errorf("shard %s is listed twice", s.Name)
		}
		seen[s.Name] = true
		if limit := 2*int64(m.Meta.SeqLen) + 2; int64(s.MaxRowLen) > limit {
			return fmt.Errorf("shard %s: longest row %d is longer than seq_len %d allows (%d)", s.Name, s.MaxRowLen, m.Meta.SeqLen, limit)
		}
	}
	if got := sumShards(m.Shards); got != m.Totals {
		return fmt.Errorf("totals say %+v; the shards sum to %+v", m.Totals, got)
	}
	for _, in := range m.Inputs {
		if in.Size < 0 {
			return fmt.Errorf("input %q has size %d", in.Path, in.Size)
		}
	}
	return nil
}
