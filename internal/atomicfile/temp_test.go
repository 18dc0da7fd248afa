package atomicfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A temporary is stale only when its name is one glmkit makes, its
// process is gone from this host and nobody holds its lock.
func TestStaleTemps(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true(1) for a pid that is gone")
	}
	deadName := func(what string) string {
		return strings.Replace(Name(what), "-"+strconv.Itoa(os.Getpid())+"-", "-"+strconv.Itoa(dead.Process.Pid)+"-", 1)
	}
	write := func(name string) string {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644)
		return name
	}
	stale := write(deadName("shard"))
	staleDir := deadName("ckpt-00000010")
	os.Mkdir(filepath.Join(dir, staleDir), 0o755)
	os.WriteFile(filepath.Join(dir, staleDir, "model.safetensors"), []byte("x"), 0o644)
	live := write(Name("plan.json")) // this process
	f, held, err := Create(dir, "shard")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer held.Release()
	other := strings.Replace(filepath.Base(held.Path), hostTag(), "00000000", 1) // another host's, locked
	os.Rename(held.Path, filepath.Join(dir, other))
	foreign := []string{write(".shard-1-abc.tmp"), write("notes.tmp"), write(Prefix + "x"), write(Prefix + "zz-1-0011223344556677.a.tmp")}
	if fifo := deadName("fifo"); exec.Command("mkfifo", filepath.Join(dir, fifo)).Run() == nil {
		foreign = append(foreign, fifo)
	}
	removed, err := RemoveStale(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || !(removed[0] == stale || removed[1] == stale) {
		t.Errorf("removed %q, want %s and %s", removed, stale, staleDir)
	}
	for _, n := range append([]string{live, other}, foreign...) {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s was removed", n)
		}
	}
	if what, ok := Target(Name("manifest.json")); !ok || what != "manifest.json" {
		t.Errorf("TempTarget: %q %v", what, ok)
	}
}
