// Command gendocs writes vrrpdoctor's man pages and shell completion
// scripts for a release (goreleaser's before hooks run it):
//
//	gendocs -bin PATH/vrrpdoctor -out DIR [-version V]
//
// It writes a gzipped section 1 man page for every command a user can see
// to DIR/man and the bash, zsh and fish completion scripts to
// DIR/completions. The man pages are rendered with cobra/doc from the
// command tree that `vrrpdoctor __command-tree` prints; the completion
// scripts are what `vrrpdoctor completion SHELL` prints. The man page date
// comes from SOURCE_DATE_EPOCH when set, so that a rebuild gives the same
// bytes.
//
// It is a program of its own so that vrrpdoctor, which also runs as a
// daemon, does not link the renderer (docs/performance-daemon.md).
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/vrrpdoctor/vrrpdoctor/internal/release/cmdtree"
)

// Completion script file names under DIR/completions, named as each
// shell's completion directory expects them.
const (
	bashCompletionFile = "vrrpdoctor.bash"
	zshCompletionFile  = "_vrrpdoctor"
	fishCompletionFile = "vrrpdoctor.fish"
)

// commandTreeCmd is vrrpdoctor's hidden command that prints its tree.
const commandTreeCmd = "__command-tree"

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, errOut io.Writer) error {
	fs := flag.NewFlagSet("gendocs", flag.ContinueOnError)
	fs.SetOutput(errOut)
	bin := fs.String("bin", "", "the vrrpdoctor binary to document (required)")
	out := fs.String("out", "", "directory to write man/ and completions/ into, created if missing (required)")
	ver := fs.String("version", "", "version shown in the man pages' footer (default: the binary's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case *bin == "":
		return errors.New("-bin is required")
	case *out == "":
		return errors.New("-out is required")
	}
	tree, err := output(*bin, commandTreeCmd)
	if err != nil {
		return err
	}
	root, binVer, err := cmdtree.Read(bytes.NewReader(tree))
	if err != nil {
		return fmt.Errorf("%s %s: %w", *bin, commandTreeCmd, err)
	}
	if *ver == "" {
		*ver = binVer
	}
	if err := writeManPages(root, filepath.Join(*out, "man"), *ver); err != nil {
		return err
	}
	return writeCompletions(*bin, filepath.Join(*out, "completions"))
}

// output runs bin with args and returns its standard output.
func output(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// writeManPages writes DIR/<command path joined by '-'>.1.gz for root and
// every command below it. The gzip header carries no name or time, so
// equal input gives equal bytes.
func writeManPages(root *cobra.Command, dir, ver string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		c.DisableAutoGenTag = true
		header := &doc.GenManHeader{
			Section: "1",
			Source:  "vrrpdoctor " + ver,
			Manual:  "vrrpdoctor manual",
		}
		var page bytes.Buffer
		if err := doc.GenMan(c, header, &page); err != nil {
			return fmt.Errorf("man page for %q: %w", c.CommandPath(), err)
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1.gz"
		if err := writeGzip(filepath.Join(dir, name), page.Bytes()); err != nil {
			return err
		}
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
				continue
			}
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}

// writeGzip writes data gzip-compressed to path.
func writeGzip(path string, data []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// writeCompletions writes what `bin completion SHELL` prints for bash, zsh
// and fish into dir.
func writeCompletions(bin, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range []struct{ shell, file string }{
		{"bash", bashCompletionFile},
		{"zsh", zshCompletionFile},
		{"fish", fishCompletionFile},
	} {
		script, err := output(bin, "completion", c.shell)
		if err != nil {
			return err
		}
		if len(script) == 0 {
			return fmt.Errorf("%s completion %s printed nothing", bin, c.shell)
		}
		if err := os.WriteFile(filepath.Join(dir, c.file), script, 0o644); err != nil {
			return err
		}
	}
	return nil
}
