package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/vrrpdoctor/vrrpdoctor/internal/release/cmdtree"
)

// visibleCommands lists the commands a user can run, from a fresh tree
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

// commandTree runs `vrrpdoctor __command-tree` and reads its output back.
func commandTree(t *testing.T) map[string]*cobra.Command {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := execute([]string{commandTreeCmdName}, nil, &out, &errOut); code != 0 {
		t.Fatalf("%s: exit %d, stderr %q", commandTreeCmdName, code, errOut.String())
	}
	root, ver, err := cmdtree.Read(&out)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := buildInfo(); ver != want {
		t.Errorf("tree version %q, want %q", ver, want)
	}
	byPath := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		byPath[c.CommandPath()] = c
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return byPath
}

// TestCommandTreeRendersTheSameManPages: the tree the release tool
// gendocs renders man pages from gives, for every visible command, the
// page cobra/doc renders from the command itself; and it has no other
// commands.
func TestCommandTreeRendersTheSameManPages(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1709640000")
	tree := commandTree(t)
	man := func(c *cobra.Command) string {
		c.DisableAutoGenTag = true
		var b bytes.Buffer
		if err := doc.GenMan(c, &doc.GenManHeader{Section: "1", Source: "vrrpdoctor 1.2.3", Manual: "vrrpdoctor manual"}, &b); err != nil {
			t.Fatalf("%s: %v", c.CommandPath(), err)
		}
		return b.String()
	}
	visible := visibleCommands()
	if len(visible) < 15 {
		t.Fatalf("only %d visible commands", len(visible))
	}
	for _, c := range visible {
		got, ok := tree[c.CommandPath()]
		if !ok {
			t.Errorf("%q missing from the command tree", c.CommandPath())
			continue
		}
		delete(tree, c.CommandPath())
		if g, w := man(got), man(c); g != w {
			t.Errorf("%q: man page from the tree differs\n got: %s\nwant: %s", c.CommandPath(), g, w)
		}
	}
	for path := range tree {
		t.Errorf("command tree has %q, which is not a visible command", path)
	}
}

func TestCommandTreeHidden(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"--help"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	if strings.Contains(out.String(), commandTreeCmdName) {
		t.Errorf("--help lists the hidden %s command:\n%s", commandTreeCmdName, out.String())
	}
	out.Reset()
	if code := execute([]string{commandTreeCmdName, "extra"}, nil, &out, &errOut); code == 0 {
		t.Errorf("%s with an argument exited 0", commandTreeCmdName)
	}
}
