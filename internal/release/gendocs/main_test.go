package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/vrrpdoctor/vrrpdoctor/internal/release/cmdtree"
)

// vrrpdoctorBin is a build of ./cmd/vrrpdoctor made by TestMain.
var vrrpdoctorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gendocs-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vrrpdoctorBin = filepath.Join(dir, "vrrpdoctor")
	build := exec.Command("go", "build", "-o", vrrpdoctorBin, "../../../cmd/vrrpdoctor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/vrrpdoctor: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// genDocs runs gendocs on the test build into a new temp dir and returns it.
func genDocs(t *testing.T, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	var errOut bytes.Buffer
	if err := run(append([]string{"-bin", vrrpdoctorBin, "-out", dir}, extra...), &errOut); err != nil {
		t.Fatalf("gendocs: %v (%s)", err, errOut.String())
	}
	return dir
}

// commandPaths are the command paths of the binary's tree.
func commandPaths(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(vrrpdoctorBin, commandTreeCmd).Output()
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := cmdtree.Read(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		paths = append(paths, c.CommandPath())
		for _, sub := range c.Commands() {
			if sub.Name() != "help" {
				walk(sub)
			}
		}
	}
	walk(root)
	return paths
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

func TestManPageForEveryCommand(t *testing.T) {
	// 2024-03-05 UTC: the man page date must come from here, not the clock.
	t.Setenv("SOURCE_DATE_EPOCH", "1709640000")
	dir := genDocs(t, "-version", "1.2.3")

	var want []string
	for _, p := range commandPaths(t) {
		want = append(want, strings.ReplaceAll(p, " ", "-")+".1.gz")
	}
	sort.Strings(want)
	entries, err := os.ReadDir(filepath.Join(dir, "man"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("man pages\n got: %v\nwant: %v", got, want)
	}
	for _, name := range []string{"vrrpdoctor.1.gz", "vrrpdoctor-analyze.1.gz", "vrrpdoctor-run.1.gz", "vrrpdoctor-version.1.gz", "vrrpdoctor-lab-demo.1.gz", "vrrpdoctor-completion-bash.1.gz"} {
		if _, err := os.Stat(filepath.Join(dir, "man", name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	for _, n := range got {
		name := strings.TrimSuffix(n, ".1.gz")
		page := gunzip(t, filepath.Join(dir, "man", n))
		th := `.TH "` + strings.ToUpper(name) + `" "1" "Mar 2024" "vrrpdoctor 1.2.3" "vrrpdoctor manual"`
		if !strings.Contains(page, th) {
			t.Errorf("%s: no header %s in\n%.300s", name, th, page)
		}
		if !strings.Contains(page, ".SH NAME") || !strings.Contains(page, ".SH SYNOPSIS") {
			t.Errorf("%s: NAME or SYNOPSIS section missing", name)
		}
		if strings.Contains(page, "Auto generated") {
			t.Errorf("%s: carries cobra's auto-generated tag", name)
		}
		if strings.Contains(page, commandTreeCmd) {
			t.Errorf("%s: mentions the hidden %s command", name, commandTreeCmd)
		}
	}
	// Flags and examples come through: run's page documents its options.
	run := gunzip(t, filepath.Join(dir, "man", "vrrpdoctor-run.1.gz"))
	for _, s := range []string{".SH OPTIONS", `\fB--no-diagnose\fP`, `\fB--metrics-address\fP`, ".SH EXAMPLE"} {
		if !strings.Contains(run, s) {
			t.Errorf("vrrpdoctor-run.1: no %q", s)
		}
	}
}

// TestManPagesRender runs every page through groff with all warnings on:
// a page groff complains about renders badly in man(1).
func TestManPagesRender(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		msg := "groff not found: install Debian package groff-base"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := genDocs(t)
	pages, err := filepath.Glob(filepath.Join(dir, "man", "*.1.gz"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages (%v)", err)
	}
	for _, p := range pages {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(gunzip(t, p))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("%s: groff: %v\n%s", filepath.Base(p), err, stderr.String())
		}
	}
}

func TestReproducible(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1709640000")
	a, b := genDocs(t), genDocs(t)
	var n int
	err := filepath.WalkDir(a, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, path)
		x, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			return err
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs", rel)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 6 {
		t.Fatalf("only %d files generated", n)
	}
}

func TestCompletionsMatchCompletionCommand(t *testing.T) {
	dir := genDocs(t)
	for _, tc := range []struct{ shell, file, marker string }{
		{"bash", bashCompletionFile, "__start_vrrpdoctor"},
		{"zsh", zshCompletionFile, "#compdef vrrpdoctor"},
		{"fish", fishCompletionFile, "complete -c vrrpdoctor"},
	} {
		got, err := os.ReadFile(filepath.Join(dir, "completions", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		want, err := exec.Command(vrrpdoctorBin, "completion", tc.shell).Output()
		if err != nil {
			t.Fatalf("completion %s: %v", tc.shell, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: generated file differs from `vrrpdoctor completion %s`", tc.file, tc.shell)
		}
		if !bytes.Contains(got, []byte(tc.marker)) {
			t.Errorf("%s lacks %q", tc.file, tc.marker)
		}
	}
	// The bash script must at least parse.
	bash := exec.Command("bash", "-n", filepath.Join(dir, "completions", bashCompletionFile))
	if out, err := bash.CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, out)
	}
}

func TestBadUsage(t *testing.T) {
	dir := t.TempDir()
	notVrrpdoctor := filepath.Join(dir, "false")
	if err := os.WriteFile(notVrrpdoctor, []byte("#!/bin/sh\necho 'not a tree'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-out", dir}, "-bin is required"},
		{[]string{"-bin", vrrpdoctorBin}, "-out is required"},
		{[]string{"-bin", vrrpdoctorBin, "-out", dir, "extra"}, `unexpected argument "extra"`},
		{[]string{"-bin", filepath.Join(dir, "missing"), "-out", dir}, "no such file"},
		{[]string{"-bin", notVrrpdoctor, "-out", dir}, "command tree:"},
	} {
		err := run(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
