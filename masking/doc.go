// Package masking is GLM's pretraining objectives and row layout (Du et
// al. 2022; glm-reference.md): from a packed sample of source tokens it
// draws blank spans (token level, sentence level, document level), builds
// the row (Part A with one blank per span, Part B with the spans in a
// shuffled order, 2D positions, targets and the loss mask) and checks any
// row against that layout (Sample.Validate). It owns the special ids GLM
// inserts (SpecialIDs), the objectives, the Columns type that every holder
// of rows shares, and the seeded draws: a row is a pure function of (seed,
// sample key, mask epoch, source), versioned by FormatVersion and pinned by
// the golden files of testdata/golden/masking. Its Mix64 (splitmix64's
// finaliser) is also what the loader's order, the dropout keys and the
// validation split are made of: one definition for all of them.
//
// It does no I/O and imports no other glmkit package: the leaf of the
// import graph.
package masking
