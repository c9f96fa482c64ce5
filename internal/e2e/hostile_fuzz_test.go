package e2e

import (
	"bufio"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The bounded fuzz run of CI (issue 10, item 2). A plain `go test` already
// runs every fuzz target over its seed corpus (f.Add and
// testdata/fuzz/FuzzXxx); this test adds a short run of Go's own
// coverage-guided fuzzer on every target of the module, so that each
// parser meets a few hundred inputs it was never given: a fixed number of
// executions per target (VRRPDOCTOR_FUZZ_EXECS, default 300), one target at
// a time on one worker. The long runs are .ci/fuzz-nightly's.

// fuzzTarget is one fuzz function and its package directory.
type fuzzTarget struct{ dir, name string }

var fuzzFuncRE = regexp.MustCompile(`^func (Fuzz\w+)\(\w+ \*testing\.F\)`)

// fuzzTargets lists every fuzz target of the module rooted at root.
func fuzzTargets(t *testing.T, root string) []fuzzTarget {
	t.Helper()
	var out []fuzzTarget
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := fuzzFuncRE.FindStringSubmatch(sc.Text()); m != nil {
				out = append(out, fuzzTarget{dir: filepath.Dir(p), name: m[1]})
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].dir != out[j].dir {
			return out[i].dir < out[j].dir
		}
		return out[i].name < out[j].name
	})
	return out
}

func TestHostileFuzzSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the fuzz smoke run is skipped")
	}
	execs := 300
	if s := os.Getenv("VRRPDOCTOR_FUZZ_EXECS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("VRRPDOCTOR_FUZZ_EXECS=%q: want a positive number", s)
		}
		execs = n
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	targets := fuzzTargets(t, root)
	if len(targets) < 15 {
		t.Fatalf("only %d fuzz targets found under %s", len(targets), root)
	}
	start := time.Now()
	for _, ft := range targets {
		rel, _ := filepath.Rel(root, ft.dir)
		t.Run(strings.ReplaceAll(rel, "/", "_")+"/"+ft.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, goBin, "test", "-run", "^$", "-fuzz", "^"+ft.name+"$",
				"-fuzztime", strconv.Itoa(execs)+"x", "-parallel", "1", "./"+rel)
			// A crasher is written to the package's testdata/fuzz, as
			// `go test -fuzz` does: the reproducer to commit with the fix.
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("go test -fuzz %s ./%s: %v\n%s", ft.name, rel, err, tail(string(out), 40))
			}
		})
	}
	t.Logf("FUZZ smoke: %d targets × %d executions in %s", len(targets), execs, time.Since(start).Round(time.Second))
}
