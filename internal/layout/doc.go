// Package layout holds no code: its tests check the layout of glmkit's
// source tree against the rules of the README's Layout section. Every
// function is at most 80 lines (generated files and a short, explained
// list of pending ones aside); the import graph keeps its order, with
// masking, internal/atomicfile, internal/strictjson, internal/testhooks,
// internal/sysmem and trainer/safetensors importing no glmkit package and only sharding and pipeline/parquettext
// importing arrow-go; and every package has a doc comment.
package layout
