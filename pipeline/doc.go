// Package pipeline is glmprep's build: it resolves and hashes the inputs
// (plain text, JSON Lines, Parquet; gzip and zstd), plans them into
// independent tasks (Plan: a whole file, a byte range, a row group), and
// runs each task (Env, RunTaskOnce): read records, repair or count bad ones,
// tokenize on the workers, pack documents into samples in order, mask them
// (package masking), write shards (package sharding) and a task record after
// every shard, so that an interrupted task resumes after its last committed
// shard with the bytes of an uninterrupted run. Merge checks every task
// against the plan and writes the manifest; Build does all of it locally.
// Its statistics (Stats) are what a manifest records.
package pipeline
