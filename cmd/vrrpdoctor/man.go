package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// genDocsCmdName is the hidden command that release tooling (goreleaser's
// before hooks) runs to write man pages and shell completions.
const genDocsCmdName = "gen-docs"

// newGenDocsCmd returns the hidden gen-docs command: it writes a gzipped
// section 1 man page for every visible command to OUT/man and the bash, zsh
// and fish completion scripts to OUT/completions. The man page date comes
// from SOURCE_DATE_EPOCH when set, so that releases are reproducible.
func newGenDocsCmd() *cobra.Command {
	var out, ver string
	cmd := &cobra.Command{
		Use:    genDocsCmdName + " --out DIR",
		Short:  "Write man pages and shell completions (release tooling)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			if ver == "" {
				ver, _ = buildInfo()
			}
			root := cmd.Root()
			if err := writeManPages(root, filepath.Join(out, "man"), ver); err != nil {
				return err
			}
			return writeCompletions(root, filepath.Join(out, "completions"))
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write man/ and completions/ into (created if missing)")
	cmd.Flags().StringVar(&ver, "version", "", "version shown in the man pages' footer (default: this binary's version)")
	return cmd
}

// writeManPages writes DIR/<command path joined by '-'>.1.gz for root and
// every visible command below it. The gzip header carries no name or time,
// so equal input gives equal bytes.
func writeManPages(root *cobra.Command, dir, ver string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Commands added by cobra at run time (help, completion) get pages too,
	// also when the tree was not executed.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
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
