package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// exitError carries a specific process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// streams are the I/O streams a command reads and writes, injected so that
// commands can be tested without a terminal.
type streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// newRootCmd builds the command tree.
func newRootCmd(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "vrrpdoctor",
		Short: "Diagnose and fix VRRP clusters (keepalived and friends)",
		Long: `vrrpdoctor explains what is wrong with a VRRP cluster, with evidence:
which peers advertise, which adverts reach the wire but never the VRRP socket,
which firewall rule drops them, and the narrow fix.

Run check on each node first; the guides are in the docs/ directory of the
source (docs/README.md lists them; docs/troubleshooting-split-brain.md walks
through the classic case).`,
		Example: `  # what is wrong with this node's VRRP (root, where keepalived runs)
  vrrpdoctor check

  # both nodes together: a report from each, then one verdict
  vrrpdoctor check --json > a.json        # on node a; b.json on node b
  vrrpdoctor check --combine a.json b.json

  # which firewall rule drops the adverts, and the narrowest fix
  vrrpdoctor fw explain
  vrrpdoctor fix-firewall                 # prints the plan
  vrrpdoctor fix-firewall --apply         # applies, verifies, rolls back on failure

  # a capture someone sent you
  vrrpdoctor analyze vrrp.pcap

  # the classic split brain, staged and fixed in network namespaces
  vrrpdoctor lab demo`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.ErrOut)
	root.AddCommand(newVersionCmd(s))
	root.AddCommand(newAnalyzeCmd(s))
	root.AddCommand(newRunCmd(s))
	root.AddCommand(newFwCmd(s))
	root.AddCommand(newCaptureCmd(s))
	root.AddCommand(newCheckCmd(s))
	root.AddCommand(newFixFirewallCmd(s))
	root.AddCommand(newLabCmd(s))
	root.AddCommand(newCommandTreeCmd(s))
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Example = `  # bash, for this shell and for every new one
  source <(vrrpdoctor completion bash)
  vrrpdoctor completion bash > /etc/bash_completion.d/vrrpdoctor

  # zsh and fish
  vrrpdoctor completion zsh > "${fpath[1]}/_vrrpdoctor"
  vrrpdoctor completion fish > ~/.config/fish/completions/vrrpdoctor.fish

  # the deb and rpm packages install these already`
		}
	}
	return root
}

// execute runs the command line and returns the process exit code.
func execute(args []string, in io.Reader, out, errOut io.Writer) int {
	s := streams{In: in, Out: out, ErrOut: errOut}
	root := newRootCmd(s)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(errOut, "vrrpdoctor: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(errOut, "vrrpdoctor: %v\n", err)
	return 2
}
