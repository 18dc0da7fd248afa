package pipeline

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/glmkit/glmkit/masking"
)

// planFlag names the glmprep flag behind a field of a plan's meta or
// config (as a flattened JSON key), for messages that say which flag
// differs.
func planFlag(key string) string {
	switch key {
	case "meta.tokenizer", "config.tokenizer":
		return "--tokenizer"
	case "meta.tokenizer_sha256":
		return "--tokenizer (its sha256: the tokenizer's file changed)"
	case "meta.vocab_size":
		return "--tokenizer (its vocabulary size)"
	case "meta.tokenizer_family":
		return "--tokenizer (its family)"
	case "meta.tokenizer_options":
		return "--tokenizer-pattern or --lowercase"
	case "meta.format_version":
		return "the shard format (another glmprep release)"
	case "meta.seq_len":
		return "--seq-len"
	case "meta.mask_epochs":
		return "--mask-epochs"
	case "meta.masking.weights":
		return "--mix"
	case "meta.masking.ratio":
		return "--mask-ratio"
	case "meta.masking.poisson_lambda":
		return "--span-lambda"
	case "meta.masking.max_span":
		return "--max-span"
	case "meta.masking.doc_min_ratio", "meta.masking.doc_max_ratio":
		return "--doc-ratio"
	case "meta.masking.suffix_prob":
		return "--suffix-prob"
	case "meta.masking.task_mask":
		return "--task-mask"
	case "meta.masking.seed":
		return "--seed"
	}
	if strings.HasPrefix(key, "meta.special_ids.") || strings.HasPrefix(key, "meta.masking.special_ids.") {
		return "--tokenizer (its special ids)"
	}
	if k, ok := strings.CutPrefix(key, "config."); ok {
		return "--" + strings.ReplaceAll(k, "_", "-")
	}
	return key
}

// flatten writes a JSON value as key → JSON text of each scalar or array
// of scalars, keys joined with dots.
func flatten(prefix string, v any, out map[string]string) {
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			flatten(prefix+"."+k, x, out)
		}
		return
	}
	b, _ := json.Marshal(v)
	out[prefix] = string(b)
}

func flatJSON(prefix string, v any) map[string]string {
	b, _ := json.Marshal(v)
	var x any
	json.Unmarshal(b, &x)
	out := map[string]string{}
	flatten(prefix, x, out)
	return out
}

// settingsDiff lists, one line a flag, the flags whose values differ
// between two plans' meta and config: "--seq-len: 512 then, 128 now".
func settingsDiff(a, b *Plan) []string {
	old := flatJSON("meta", a.Meta)
	for k, v := range flatJSON("config", a.Config) {
		old[k] = v
	}
	cur := flatJSON("meta", b.Meta)
	for k, v := range flatJSON("config", b.Config) {
		cur[k] = v
	}
	keys := make([]string, 0, len(old))
	for k := range old {
		keys = append(keys, k)
	}
	for k := range cur {
		if _, ok := old[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	seen := map[string]bool{}
	var lines []string
	for _, k := range keys {
		if old[k] == cur[k] {
			continue
		}
		flag := planFlag(k)
		if seen[flag] {
			continue
		}
		seen[flag] = true
		was, now := flagValue(k, a), flagValue(k, b)
		if was == "" && now == "" {
			was, now = old[k], cur[k]
		}
		lines = append(lines, fmt.Sprintf("  %s: %s then, %s now", flag, was, now))
	}
	return lines
}

// flagValue writes a plan's value of the field key as the flag takes it
// ("" when the JSON text is as good).
func flagValue(key string, p *Plan) string {
	mc, c := p.Meta.Masking, p.Config
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	switch planFlag(key) {
	case "--mix":
		var parts []string
		for o, w := range mc.Weights {
			parts = append(parts, fmt.Sprintf("%s=%s", masking.Objective(o), f(w)))
		}
		return strings.Join(parts, ",")
	case "--doc-ratio":
		return f(mc.DocMin) + "," + f(mc.DocMax)
	case "--tokenizer":
		return c.Tokenizer
	case "--tokenizer (its sha256: the tokenizer's file changed)":
		return fmt.Sprintf("%.12s…", p.Meta.TokenizerSHA256)
	case "--text-field":
		return c.TextField
	}
	return ""
}

// inputsDiff lists the inputs that differ between two plans: added,
// removed, or changed (size, modification time or content).
func inputsDiff(a, b *Plan) []string {
	key := func(in Input) string { return filepath.Clean(in.Path) }
	old := map[string]Input{}
	for _, in := range a.Inputs {
		old[key(in)] = in
	}
	var lines []string
	now := map[string]bool{}
	for _, in := range b.Inputs {
		k := key(in)
		now[k] = true
		o, ok := old[k]
		switch {
		case !ok:
			lines = append(lines, fmt.Sprintf("  --input: %s is new (not in the plan)", in.Path))
		case o.SHA256 != in.SHA256 || o.Size != in.Size:
			lines = append(lines, fmt.Sprintf("  %s changed since it was planned: %d bytes, sha256 %.12s… then; %d bytes, sha256 %.12s… now", in.Path, o.Size, o.SHA256, in.Size, in.SHA256))
		case o.ModTime != in.ModTime:
			lines = append(lines, fmt.Sprintf("  %s has another modification time than when it was planned (same bytes)", in.Path))
		case o.Format != in.Format || o.Compression != in.Compression:
			lines = append(lines, fmt.Sprintf("  %s is read as %s (%s) now, %s (%s) then", in.Path, in.Format, in.Compression, o.Format, o.Compression))
		}
	}
	for _, in := range a.Inputs {
		if !now[key(in)] {
			lines = append(lines, fmt.Sprintf("  --input: %s is in the plan but not given now", in.Path))
		}
	}
	return lines
}

// planDiff says how two plans differ, one line a flag or input.
func planDiff(a, b *Plan) string {
	lines := append(settingsDiff(a, b), inputsDiff(a, b)...)
	if len(lines) == 0 {
		ja, _ := json.Marshal(a.Tasks)
		jb, _ := json.Marshal(b.Tasks)
		if string(ja) != string(jb) {
			lines = append(lines, fmt.Sprintf("  the split into tasks: %d tasks then, %d now (another glmprep release?)", len(a.Tasks), len(b.Tasks)))
		} else {
			lines = append(lines, fmt.Sprintf("  the plan's format: %d then, %d now", a.FormatVersion, b.FormatVersion))
		}
	}
	return strings.Join(lines, "\n")
}
