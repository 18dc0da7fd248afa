package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	root   = "../.."
	module = "github.com/glmkit/glmkit/"
	arrow  = "github.com/apache/arrow-go/"
)

// maxLines bounds every function, literal functions included.
const maxLines = 80

// pending are the functions over maxLines that are left for now, each
// with why: the check fails when one of them gets short, so that the list
// only shrinks.
var pending = map[string]string{}

// A goFile is one parsed Go file of the module.
type goFile struct {
	dir  string // its package's directory, relative to the root
	path string // the file, relative to the root
	f    *ast.File
}

func (g goFile) test() bool { return strings.HasSuffix(g.path, "_test.go") }

// goFiles parses every Go file of the module (tests included; testdata
// and node_modules left out).
func goFiles(t *testing.T, mode parser.Mode) (*token.FileSet, []goFile) {
	t.Helper()
	fset := token.NewFileSet()
	var files []goFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, mode)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		files = append(files, goFile{dir: filepath.ToSlash(filepath.Dir(rel)), path: rel, f: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fset, files
}

func TestFunctionLength(t *testing.T) {
	fset, files := goFiles(t, parser.ParseComments)
	long := map[string]int{}
	for _, g := range files {
		if ast.IsGenerated(g.f) {
			continue
		}
		ast.Inspect(g.f, func(n ast.Node) bool {
			fn, ok := n.(*ast.FuncDecl)
			var lit *ast.FuncLit
			if !ok {
				if lit, ok = n.(*ast.FuncLit); !ok {
					return true
				}
			}
			lines := fset.Position(n.End()).Line - fset.Position(n.Pos()).Line + 1
			if lines <= maxLines {
				return true
			}
			what := "a function literal at line " + strconv.Itoa(fset.Position(n.Pos()).Line)
			if fn != nil {
				what = fn.Name.Name
			}
			long[g.path+" "+what] = lines
			return lit == nil // a long literal is reported once
		})
	}
	for f, n := range long {
		if why, ok := pending[f]; ok {
			t.Logf("%s: %d lines, pending (%s)", f, n, why)
			continue
		}
		t.Errorf("%s: %d lines; at most %d (split it, or say in pending why not yet)", f, n, maxLines)
	}
	for f := range pending {
		if _, ok := long[f]; !ok {
			t.Errorf("%s is no longer over %d lines (or gone): take it off the pending list", f, maxLines)
		}
	}
}

// order is the import order of the README's Layout section: a package
// imports only glmkit packages before it (cmd/glmprep and cmd/glmtrain,
// the wiring, import whatever they need of it).
var order = []string{
	"masking", "internal/glmtest", "internal/atomicfile", "internal/strictjson", "internal/testhooks", "internal/sysmem", "sharding",
	"pipeline/tokenizer", "pipeline/parquettext", "pipeline",
	"trainer/loader", "trainer/safetensors", "trainer/internal/batchtest", "trainer/internal/dynlib", "trainer", "trainer/cpu", "trainer/cuda",
	"cmd/internal/cli", "cmd/glmprep", "cmd/glmtrain", "internal/layout",
}

// leaves import no glmkit package; arrowUsers are the only importers of
// arrow-go.
var (
	leaves     = []string{"masking", "internal/atomicfile", "internal/strictjson", "internal/testhooks", "internal/sysmem", "trainer/safetensors", "trainer/internal/dynlib"}
	arrowUsers = []string{"sharding", "pipeline/parquettext"}
)

// TestImportGraph checks the non-test imports of every package.
func TestImportGraph(t *testing.T) {
	_, files := goFiles(t, parser.ImportsOnly)
	for _, g := range files {
		dir := g.dir
		at := slices.Index(order, dir)
		if at < 0 {
			t.Errorf("package %s is not in the layout's order (add it here and to the README)", dir)
			continue
		}
		if g.test() {
			continue
		}
		for _, imp := range g.f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case strings.HasPrefix(path, arrow) && !slices.Contains(arrowUsers, dir):
				t.Errorf("%s imports %s: only %v import arrow-go", dir, path, arrowUsers)
			case !strings.HasPrefix(path, module):
			case slices.Contains(leaves, dir):
				t.Errorf("%s imports %s: it imports no glmkit package", dir, path)
			case strings.HasPrefix(dir, "cmd/glm"):
			case slices.Index(order, strings.TrimPrefix(path, module)) >= at:
				t.Errorf("%s imports %s, which comes after it in the layout's order", dir, path)
			}
		}
	}
}

func TestPackageDocs(t *testing.T) {
	_, files := goFiles(t, parser.ParseComments|parser.PackageClauseOnly)
	documented := map[string]bool{}
	for _, g := range files {
		doc := g.f.Doc.Text()
		if g.test() {
			continue
		}
		ok := strings.HasPrefix(doc, "Package "+g.f.Name.Name+" ") || g.f.Name.Name == "main" && strings.HasPrefix(doc, "Command ")
		documented[g.dir] = documented[g.dir] || ok
	}
	for dir, ok := range documented {
		if !ok {
			t.Errorf("package %s has no doc comment saying what it owns", dir)
		}
	}
}
