package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// forbiddenDeps are import path prefixes the binary must not link, with
// the reason. gopacket/layers fills 65536-entry tables at init: a program
// importing it starts at 11.6 MB peak RSS instead of 2.2 MB, which made
// `vrrpdoctor run` use more memory than keepalived (docs/performance-daemon.md).
var forbiddenDeps = map[string]string{
	"github.com/google/gopacket": "gopacket costs about 9 MB RSS at init; decode with capture.Decoder, adapt with vrrpcore/gopacketlayer outside the binary",
	// The man page renderer is needed at release time only: the release
	// tool internal/release/gendocs links it, reading the command tree
	// from `vrrpdoctor __command-tree`. Linked here it cost 0.4 MB of text,
	// and of the daemon's RSS.
	"github.com/spf13/cobra/doc":      manRenderer,
	"github.com/cpuguy83/go-md2man":   manRenderer,
	"github.com/russross/blackfriday": manRenderer,
	"go.yaml.in/yaml":                 manRenderer,
	"gopkg.in/yaml.v3":                manRenderer,
	// Measured: net/http (with crypto/tls, x509 ...) was 2.9 MB of the
	// binary's text, and the daemon's RSS follows its text.
	"net/http": "net/http and its TLS stack cost 2.9 MB of text and of the daemon's RSS; /metrics is served by diag/metrics.Server (docs/daemon.md)",
	"crypto":   "crypto/* comes with net/http or crypto/rand; the binary needs neither (math/rand/v2 for names), see net/http",
}

const manRenderer = "the man page renderer belongs in the release tool internal/release/gendocs, not in the daemon's binary"

// TestNoHeavyDeps lists the binary's dependencies with `go list -deps` and
// fails if a forbidden one is back, naming the package that imports it.
func TestNoHeavyDeps(t *testing.T) {
	goBin := goCommand(t)
	for _, problem := range forbiddenImports(t, goBin, ".") {
		t.Error(problem)
	}
	// The check finds what it looks for: gopacketlayer imports gopacket.
	want := "github.com/vrrpdoctor/vrrpdoctor/vrrpcore/gopacketlayer imports github.com/google/gopacket:"
	got := forbiddenImports(t, goBin, "../../vrrpcore/gopacketlayer")
	if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, want) }) {
		t.Errorf("gopacketlayer: found %q, want %q", got, want)
	}
	want = "github.com/vrrpdoctor/vrrpdoctor/internal/release/gendocs imports github.com/spf13/cobra/doc:"
	got = forbiddenImports(t, goBin, "../../internal/release/gendocs")
	if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, want) }) {
		t.Errorf("gendocs: found %q, want %q", got, want)
	}
	// expvar serves over net/http; mime/multipart uses crypto/rand.
	for _, tc := range []struct{ pkg, want string }{
		{"expvar", "expvar imports net/http:"},
		{"mime/multipart", "mime/multipart imports crypto/rand:"},
	} {
		got = forbiddenImports(t, goBin, tc.pkg)
		if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, tc.want) }) {
			t.Errorf("%s: found %q, want %q", tc.pkg, got, tc.want)
		}
	}
}

func goCommand(t *testing.T) string {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err == nil {
		return goBin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		msg := "go command not found (apt-get install golang-go)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return goBin
}

// forbiddenImports runs `go list -deps` on the package in dir and returns
// "importer imports forbidden: reason" for every forbidden import. A
// forbidden package's own imports are not listed again.
func forbiddenImports(t *testing.T, goBin, dir string) []string {
	cmd := exec.Command(goBin, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, dir)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", dir, err, stderr)
	}
	under := func(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }
	var problems []string
	n := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		n++
		for _, imp := range fields[1:] {
			for prefix, why := range forbiddenDeps {
				if under(imp, prefix) && !under(fields[0], prefix) {
					problems = append(problems, fmt.Sprintf("%s imports %s: %s", fields[0], imp, why))
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("go list -deps %s listed %d packages; output:\n%s", dir, n, out)
	}
	return problems
}
