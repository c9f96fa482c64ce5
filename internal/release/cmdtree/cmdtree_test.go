package cmdtree

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// sample is a tree with what man pages show: nested commands, local and
// persistent flags of several types, shorthands, a flag with an optional
// value, a hidden command and hidden and deprecated flags (left out).
func sample() *cobra.Command {
	run := func(*cobra.Command, []string) {}
	root := &cobra.Command{Use: "tool", Short: "A tool", Long: "The tool.\n\nIt does things.", Example: "  tool sub -n 3"}
	root.PersistentFlags().StringP("config", "c", "/etc/tool.conf", "configuration `FILE`")
	root.PersistentFlags().Bool("verbose", false, "say more")
	sub := &cobra.Command{Use: "sub [-n N] NAME", Short: "Do a thing", Run: run, Example: "  tool sub x"}
	sub.Flags().IntP("count", "n", 1, "how many")
	sub.Flags().Duration("wait", 0, "how long")
	sub.Flags().StringSlice("tag", []string{"a", "b"}, "tags")
	sub.Flags().String("color", "auto", "when to color")
	sub.Flags().Lookup("color").NoOptDefVal = "always"
	sub.Flags().String("secret", "", "hidden")
	_ = sub.Flags().MarkHidden("secret")
	sub.Flags().String("old", "", "deprecated")
	_ = sub.Flags().MarkDeprecated("old", "use --color")
	group := &cobra.Command{Use: "group", Short: "A group"}
	leaf := &cobra.Command{Use: "leaf", Short: "A leaf", Run: run, DisableFlagsInUseLine: true}
	leaf.PersistentFlags().String("zone", "", "zone")
	group.AddCommand(leaf)
	root.AddCommand(sub, group, &cobra.Command{Use: "secret", Hidden: true, Run: run})
	return root
}

func manPages(t *testing.T, root *cobra.Command) map[string]string {
	t.Helper()
	pages := map[string]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		var b bytes.Buffer
		if err := doc.GenMan(c, &doc.GenManHeader{Section: "1", Source: "tool 1.0", Manual: "tool manual"}, &b); err != nil {
			t.Fatalf("%s: %v", c.CommandPath(), err)
		}
		pages[c.CommandPath()] = b.String()
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
				walk(sub)
			}
		}
	}
	walk(root)
	return pages
}

func TestRoundTripGivesTheSameManPages(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1709640000")
	var buf bytes.Buffer
	if err := Write(&buf, sample(), "1.0"); err != nil {
		t.Fatal(err)
	}
	got, ver, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if ver != "1.0" {
		t.Errorf("version %q", ver)
	}
	// Write adds cobra's completion command, as Execute would.
	orig := sample()
	orig.InitDefaultCompletionCmd()
	want := manPages(t, orig)
	have := manPages(t, got)
	for path, page := range want {
		if have[path] != page {
			t.Errorf("%q: man page differs\n got: %s\nwant: %s", path, have[path], page)
		}
		delete(have, path)
	}
	for path := range have {
		t.Errorf("extra command %q", path)
	}
	for _, p := range []string{"tool", "tool sub", "tool group leaf", "tool completion bash"} {
		if _, ok := want[p]; !ok {
			t.Errorf("no page for %q", p)
		}
	}
	sub := want["tool sub"]
	for _, s := range []string{"--count", "--color", "--tag", `\fB-c\fP, \fB--config\fP`, "INHERITED"} {
		if !strings.Contains(sub, s) {
			t.Errorf("tool sub: page lacks %q", s)
		}
	}
	for _, s := range []string{"secret", "--old"} {
		if strings.Contains(sub, s) || strings.Contains(want["tool"], s) {
			t.Errorf("pages show hidden or deprecated %q", s)
		}
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, "EOF"},
		{`not json`, "invalid character"},
		{`{"version":"1"}`, "no root command"},
		{`{"root":{"use":"t"},"extra":1}`, `unknown field "extra"`},
		{`{"root":{"use":""}}`, "has no name"},
		{`{"root":{"use":"t","commands":[null]}}`, "null command"},
		{`{"root":{"use":"t","commands":[{"use":"a"},{"use":"a x"}]}}`, `command "a" twice`},
		{`{"root":{"use":"t","flags":[{"type":"bool"}]}}`, "flag without a name"},
		{`{"root":{"use":"t","flags":[{"name":"x","type":"bool"}],"persistentFlags":[{"name":"x","type":"bool"}]}}`, "--x twice"},
		{`{"root":{"use":"t","flags":[{"name":"x","shorthand":"xy","type":"bool"}]}}`, "more than one byte"},
		{`{"root":{"use":"t","flags":[{"name":"x","shorthand":"h","type":"bool"}]}}`, "-h of --x is taken and there is no --help"},
		{`{"root":{"use":"t","persistentFlags":[{"name":"x","shorthand":"v","type":"bool"}],"commands":[{"use":"s","flags":[{"name":"y","shorthand":"v","type":"bool"}]}]}}`, `"t s": shorthand -v of --y is taken by --x`},
	} {
		_, _, err := Read(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.in, err, tc.want)
		}
	}
}

// FuzzRead: any input gives a tree or an error, and a tree renders.
func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, sample(), "1.0"); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"root":{"use":"t","flags":[{"name":"h","shorthand":"h","type":"bool"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		root, _, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		var walk func(c *cobra.Command)
		walk = func(c *cobra.Command) {
			var b bytes.Buffer
			if err := doc.GenMan(c, &doc.GenManHeader{}, &b); err != nil {
				t.Fatalf("%s: %v", c.CommandPath(), err)
			}
			for _, sub := range c.Commands() {
				walk(sub)
			}
		}
		walk(root)
	})
}
