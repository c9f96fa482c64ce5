package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasExamples: each command a user can see — not the
// shell-specific completion generators cobra adds — shows examples in its
// help.
func TestEveryCommandHasExamples(t *testing.T) {
	root := newRootCmd(streams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || (c.Parent() != nil && c.Parent().Name() == "completion") {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no examples in its help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
