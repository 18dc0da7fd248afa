// Package atomicfile is how glmkit puts files on disk: every file and
// directory it writes goes first to a temporary name in the target's
// directory, locked by its writer, and is synced and renamed into place
// (Write, Create, Mkdir, SyncDir), so a crash never leaves half a file
// under a real name. It also tells the temporaries of a writer that is gone
// from those of one that runs (IsStale), and removes them (RemoveStale):
// the one place where glmkit deletes what it finds.
//
// Temporary names are
//
//	.glmkit-HHHHHHHH-PID-NONCE.WHAT.tmp
//
// HHHHHHHH is a hash of the host name, PID the writing process, NONCE 16
// random hex digits and WHAT the final name (or "shard"). The writer holds
// an exclusive flock on the file (or directory) until it is renamed or
// removed, so another process can prove a temporary is stale: its name
// parses, its process is not running on this host, and its lock is free.
// glmkit removes nothing else that it finds in a directory.
package atomicfile

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Prefix starts the name of every temporary glmkit writes.
const Prefix = ".glmkit-"

const suffix = ".tmp"

// Temp is a temporary file or directory its process holds locked.
type Temp struct {
	Path string
	lock *os.File // holds the flock; nil where locks are not available
}

// Release drops the lock (after the temporary was renamed or removed).
func (t *Temp) Release() {
	if t.lock != nil {
		t.lock.Close()
		t.lock = nil
	}
}

func hostTag() string {
	h, _ := os.Hostname()
	s := sha256.Sum256([]byte(h))
	return hex.EncodeToString(s[:4])
}

// Name returns a fresh temporary name for what in this process.
func Name(what string) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return fmt.Sprintf("%s%s-%d-%x.%s%s", Prefix, hostTag(), os.Getpid(), b, what, suffix)
}

// tempInfo is a parsed temporary name.
type tempInfo struct {
	host string
	pid  int
	what string
}

// parse parses a name Name made; ok is false for any other name.
func parse(name string) (tempInfo, bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return tempInfo{}, false
	}
	rest, ok = strings.CutSuffix(rest, suffix)
	if !ok {
		return tempInfo{}, false
	}
	host, rest, ok1 := strings.Cut(rest, "-")
	pid, rest, ok2 := strings.Cut(rest, "-")
	nonce, what, ok3 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !ok3 || len(host) != 8 || !isHex(host) || len(nonce) != 16 || !isHex(nonce) || what == "" {
		return tempInfo{}, false
	}
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 || strconv.Itoa(n) != pid {
		return tempInfo{}, false
	}
	return tempInfo{host: host, pid: n, what: what}, true
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Target returns the final name a temporary was written for ("shard"
// for a shard that was not committed yet), and whether name is a glmkit
// temporary at all.
func Target(name string) (string, bool) {
	ti, ok := parse(name)
	return ti.what, ok
}

// Create creates a temporary file in dir for what, locked until
// Release.
func Create(dir, what string) (*os.File, *Temp, error) {
	p := filepath.Join(dir, Name(what))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o666) // the umask decides, as for any tool's files
	if err != nil {
		return nil, nil, err
	}
	// A second descriptor holds the lock, so the caller may close f
	// before renaming it.
	t := &Temp{Path: p}
	if t.lock, err = os.Open(p); err == nil {
		if err = lockFile(t.lock, true); errors.Is(err, errNoLocks) {
			err = nil
		} else if err != nil {
			t.lock.Close()
		}
	}
	if err != nil {
		f.Close()
		os.Remove(p)
		return nil, nil, fmt.Errorf("locking %s: %w", p, err)
	}
	return f, t, nil
}

// Mkdir creates a temporary directory in dir for what, locked until
// Release.
func Mkdir(dir, what string) (*Temp, error) {
	p := filepath.Join(dir, Name(what))
	if err := os.Mkdir(p, 0o777); err != nil { // the umask decides
		return nil, err
	}
	d, err := os.Open(p)
	if err == nil {
		if err = lockFile(d, true); errors.Is(err, errNoLocks) {
			err = nil
		} else if err != nil {
			d.Close()
		}
	}
	if err != nil {
		os.Remove(p)
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	return &Temp{Path: p, lock: d}, nil
}

// IsStale reports whether dir/name is a glmkit temporary whose writer is
// gone: the name parses, the process it names is not running on this host,
// and nobody holds its lock.
func IsStale(dir, name string) bool {
	ti, ok := parse(name)
	if !ok {
		return false
	}
	if ti.host == hostTag() && processAlive(ti.pid) {
		return false
	}
	st, err := os.Lstat(filepath.Join(dir, name))
	if err != nil || !st.Mode().IsRegular() && !st.IsDir() {
		return false // glmkit writes files and directories, nothing else
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return false
	}
	defer f.Close()
	if lockFile(f, true) != nil {
		return false // held: its writer runs (on this host or another)
	}
	lockFile(f, false)
	return true
}

// RemoveStale removes the stale glmkit temporaries directly inside dir
// (see IsStale) and returns their names. keep, when not nil, is asked
// first about each stale one and may deal with it itself (return true).
func RemoveStale(dir string, keep func(name, target string) bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		name := e.Name()
		if !IsStale(dir, name) {
			continue
		}
		if keep != nil {
			what, _ := Target(name)
			if keep(name, what) {
				continue
			}
		}
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return removed, fmt.Errorf("removing a stale temporary: %w", err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}
