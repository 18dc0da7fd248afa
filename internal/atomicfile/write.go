package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path through a temporary file in the same
// directory, synced and renamed, then syncs the directory: after a crash
// path holds either its old content or data, never a part of it.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, tmp, err := Create(dir, filepath.Base(path))
	if err != nil {
		return err
	}
	defer tmp.Release()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Path, path)
	}
	if err != nil {
		os.Remove(tmp.Path)
		return err
	}
	return SyncDir(dir)
}

// SyncDir flushes a directory's entries (a rename into it, a new file) to
// disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
