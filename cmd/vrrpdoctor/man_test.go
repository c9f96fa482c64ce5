package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// genDocs runs `vrrpdoctor gen-docs` into a new temp dir and returns it.
func genDocs(t *testing.T, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	args := append([]string{genDocsCmdName, "--out", dir}, extra...)
	if code := execute(args, nil, &out, &errOut); code != 0 {
		t.Fatalf("gen-docs exit %d, stderr %q", code, errOut.String())
	}
	return dir
}

// visibleCommands lists the command paths a user can run, from a fresh tree
// with cobra's run-time commands added, as `vrrpdoctor --help` shows them.
func visibleCommands() []*cobra.Command {
	root := newRootCmd(streams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var cmds []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		cmds = append(cmds, c)
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			walk(sub)
		}
	}
	walk(root)
	return cmds
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

func TestGenDocsManPageForEveryCommand(t *testing.T) {
	// 2024-03-05 UTC: the man page date must come from here, not the clock.
	t.Setenv("SOURCE_DATE_EPOCH", "1709640000")
	dir := genDocs(t, "--version", "1.2.3")

	var want []string
	for _, c := range visibleCommands() {
		want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1.gz")
	}
	entries, err := os.ReadDir(filepath.Join(dir, "man"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("man pages\n got: %v\nwant: %v", got, want)
	}
	for _, name := range []string{"vrrpdoctor.1.gz", "vrrpdoctor-analyze.1.gz", "vrrpdoctor-version.1.gz", "vrrpdoctor-completion-bash.1.gz"} {
		if _, err := os.Stat(filepath.Join(dir, "man", name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}

	for _, c := range visibleCommands() {
		name := strings.ReplaceAll(c.CommandPath(), " ", "-")
		page := gunzip(t, filepath.Join(dir, "man", name+".1.gz"))
		th := `.TH "` + strings.ToUpper(name) + `" "1" "Mar 2024" "vrrpdoctor 1.2.3" "vrrpdoctor manual"`
		if !strings.Contains(page, th) {
			t.Errorf("%s: no header %s in\n%s", name, th, firstLines(page, 5))
		}
		if !strings.Contains(page, ".SH NAME") || !strings.Contains(page, ".SH SYNOPSIS") {
			t.Errorf("%s: NAME or SYNOPSIS section missing", name)
		}
		if strings.Contains(page, "Auto generated") {
			t.Errorf("%s: carries cobra's auto-generated tag", name)
		}
		if strings.Contains(page, genDocsCmdName) {
			t.Errorf("%s: mentions the hidden %s command", name, genDocsCmdName)
		}
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// TestGenDocsManPagesRender runs every page through groff with all warnings
// on: a page groff complains about renders badly in man(1).
func TestGenDocsManPagesRender(t *testing.T) {
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

func TestGenDocsReproducible(t *testing.T) {
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

func TestGenDocsCompletionsMatchCompletionCommand(t *testing.T) {
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
		var out, errOut bytes.Buffer
		if code := execute([]string{"completion", tc.shell}, nil, &out, &errOut); code != 0 {
			t.Fatalf("completion %s: exit %d, %s", tc.shell, code, errOut.String())
		}
		if !bytes.Equal(got, out.Bytes()) {
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

func TestGenDocsHiddenAndNeedsOut(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"--help"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	if strings.Contains(out.String(), genDocsCmdName) {
		t.Errorf("--help lists the hidden %s command:\n%s", genDocsCmdName, out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := execute([]string{genDocsCmdName}, nil, &out, &errOut); code == 0 {
		t.Fatal("gen-docs without --out exited 0")
	}
	if !strings.Contains(errOut.String(), "--out") {
		t.Errorf("stderr %q does not name --out", errOut.String())
	}
}
