package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// Completion script file names under the gen-docs completions directory,
// named as each shell's completion directory expects them.
const (
	bashCompletionFile = "vrrpdoctor.bash"
	zshCompletionFile  = "_vrrpdoctor"
	fishCompletionFile = "vrrpdoctor.fish"
)

// writeCompletions writes the bash, zsh and fish completion scripts for root
// into dir. They are the same scripts that `vrrpdoctor completion SHELL`
// prints.
func writeCompletions(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	gens := []struct {
		file string
		gen  func(*bytes.Buffer) error
	}{
		{bashCompletionFile, func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) }},
		{zshCompletionFile, func(b *bytes.Buffer) error { return root.GenZshCompletion(b) }},
		{fishCompletionFile, func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) }},
	}
	for _, g := range gens {
		var buf bytes.Buffer
		if err := g.gen(&buf); err != nil {
			return fmt.Errorf("completion %s: %w", g.file, err)
		}
		if err := os.WriteFile(filepath.Join(dir, g.file), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
