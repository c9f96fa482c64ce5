package main

import (
	"github.com/spf13/cobra"

	"github.com/vrrpdoctor/vrrpdoctor/internal/release/cmdtree"
)

// commandTreeCmdName is the hidden command that prints the command tree
// as JSON for the release tool internal/release/gendocs, which renders the
// man pages from it. The renderer (cobra/doc, go-md2man, blackfriday) is
// linked into that tool, not into this binary.
const commandTreeCmdName = "__command-tree"

func newCommandTreeCmd(s streams) *cobra.Command {
	return &cobra.Command{
		Use:    commandTreeCmdName,
		Short:  "Print the command tree as JSON (release tooling)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ver, _ := buildInfo()
			// A fresh tree: this one was just executed and cobra has
			// merged flags into it.
			return cmdtree.Write(s.Out, newRootCmd(s), ver)
		},
	}
}
