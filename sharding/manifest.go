package sharding

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	t := Totals{Shards: len(m.Shards)}
	for _, s := range m.Shards {
		t.Rows += s.Rows
		t.Tokens += s.Tokens
		t.SourceTokens += s.SourceTokens
		t.LossTokens += s.LossTokens
		t.Bytes += s.Bytes
		t.MaxRowLen = max(t.MaxRowLen, s.MaxRowLen)
	}
	m.Totals = t
}

// WriteManifest writes m as dir/manifest.json, atomically.
func WriteManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("sharding: %w", err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, ManifestName), append(b, '\n')); err != nil {
		return fmt.Errorf("sharding: writing manifest: %w", err)
	}
	return nil
}

// ErrNoManifest means a directory holds no manifest.json: it is not a
// glmkit shard directory, or its build has not finished.
var ErrNoManifest = errors.New("sharding: no manifest.json (not a glmkit shard directory, or the build has not finished; see glmprep build --resume)")

// ReadManifest reads dir/manifest.json and checks its format version.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoManifest, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("sharding: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("sharding: %s: %w", path, err)
	}
	if m.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("sharding: %s: format version %d; this glmkit reads version %d (rebuild the shards with this glmprep)", path, m.FormatVersion, FormatVersion)
	}
	return &m, nil
}
