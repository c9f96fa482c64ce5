package main

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/demo"
)

// Exit statuses of lab (docs/lab.md).
const (
	labExitOK          = 0
	labExitFailed      = 1   // the demo did not converge, or a lab step failed
	labExitUsage       = 2   // bad usage
	labExitInterrupted = 130 // Ctrl-C or SIGTERM: the lab was removed
)

type labOptions struct {
	daemon      string
	noFirewalld bool
	keep        bool
	// stateDir overrides demo.DefaultStateDir (tests).
	stateDir string
}

func (o labOptions) demo(s streams) demo.Options {
	return demo.Options{StateDir: o.stateDir, Daemon: o.daemon, NoFirewalld: o.noFirewalld, Keep: o.keep, Out: s.Out, Colour: diag.ColourEnabled(s.Out)}
}

func newLabCmd(s streams) *cobra.Command {
	o := labOptions{}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "A two-node VRRP lab in network namespaces: the classic split brain, diagnosed and fixed",
		Long: `lab builds a two-node VRRP pair inside network namespaces vdlab-a and vdlab-b
(root needed; nothing changes the machine's own network): node a is the
master (priority 150), node b the backup (priority 100), VRID 51, VRRPv2,
one advert a second, virtual IP 198.51.100.100. keepalived runs on both when
it is installed, else this binary's run. The backup's firewall drops VRRP:
firewalld with its default zone when firewalld is installed, else an
nftables rule dropping IP protocol 112. Both nodes then hold the VIP: the
classic split brain.

  demo     build it, show the split brain, tcpdump's evidence, check's
           diagnosis on both nodes, fix-firewall --apply on b, convergence;
           then remove everything (also on Ctrl-C)
  up       build it and leave it running
  status   nodes, processes, VIP holders, VRRP states
  exec     run a command in a node's namespace
  down     remove it

The lab's processes, namespaces and files are recorded in
/run/vrrpdoctor-lab/state.json; down removes exactly those, and a lab left by
a killed demo is removed at the next start.`,
		Example: `  sudo vrrpdoctor lab demo
  sudo vrrpdoctor lab demo --no-firewalld --daemon vrrpdoctor
  sudo vrrpdoctor lab up
  sudo vrrpdoctor lab exec b -- vrrpdoctor check
  sudo vrrpdoctor lab down`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.PersistentFlags().StringVar(&o.stateDir, "state-dir", demo.DefaultStateDir, "directory of the lab's state file")
	_ = cmd.PersistentFlags().MarkHidden("state-dir")
	cmd.AddCommand(newLabDemoCmd(s, &o), newLabUpCmd(s, &o), newLabStatusCmd(s, &o), newLabExecCmd(s, &o), newLabDownCmd(s, &o), newLabExecFirewalldCmd())
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: labExitUsage, err: err}
	})
	return cmd
}

// labFlags adds the flags that choose the lab's programs.
func labFlags(cmd *cobra.Command, o *labOptions) {
	cmd.Flags().StringVar(&o.daemon, "daemon", "", "VRRP daemon on both nodes: keepalived or vrrpdoctor (default: keepalived when installed)")
	cmd.Flags().BoolVar(&o.noFirewalld, "no-firewalld", false, "stage the split brain with an nftables rule even when firewalld is installed")
}

// labSignals returns a context cancelled by SIGINT, SIGTERM or SIGHUP, or
// by SIGPIPE (the reader of the output went away, as with `| head`); later
// signals are swallowed until stop, so the teardown runs to its end.
func labSignals(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
}

// labErr maps a lab error to its exit status.
func labErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, demo.ErrInterrupted):
		return &exitError{code: labExitInterrupted, err: err}
	}
	return &exitError{code: labExitFailed, err: err}
}

func newLabDemoCmd(s streams, o *labOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo [--daemon keepalived|vrrpdoctor] [--no-firewalld] [--keep]",
		Short: "Stage the classic split brain, diagnose it with check, fix it with fix-firewall, tear down",
		Long: `demo builds the lab (see vrrpdoctor lab --help), waits until both nodes hold
the virtual IP, shows with tcpdump (or vrrpdoctor capture when tcpdump is
missing) that a's adverts do arrive at b, runs vrrpdoctor check on both nodes
and check --combine, applies the narrow fix on b with fix-firewall --apply,
and waits until a alone holds the VIP and b is BACKUP. Every command is
printed before it runs; "[b] $ CMD" means CMD ran in b's namespace (by hand:
vrrpdoctor lab exec b -- CMD). Then it removes the lab: also on error, Ctrl-C
or SIGTERM. A run takes about half a minute (firewalld starts in 5-10 s).

Exit status: 0 the pair converged after the fix, 1 it did not or a step
failed (the reason is printed), 130 interrupted (the lab was removed).`,
		Example: `  sudo vrrpdoctor lab demo
  sudo vrrpdoctor lab demo --no-firewalld          # nftables rule instead of firewalld
  sudo vrrpdoctor lab demo --daemon vrrpdoctor     # vrrpdoctor run instead of keepalived
  sudo vrrpdoctor lab demo --keep                  # leave the fixed lab up afterwards`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := labSignals(cmd.Context())
			defer stop()
			return labErr(demo.Demo(ctx, o.demo(s)))
		},
	}
	labFlags(cmd, o)
	cmd.Flags().BoolVar(&o.keep, "keep", false, "leave the lab up at the end (remove it with vrrpdoctor lab down)")
	return cmd
}

func newLabUpCmd(s streams, o *labOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up [--daemon keepalived|vrrpdoctor] [--no-firewalld]",
		Short: "Build the lab with the split brain staged and leave it running",
		Long: `up builds the lab as demo does, waits until both nodes hold the virtual IP,
and leaves it running: its processes are detached, and they, the namespaces
and the files are recorded in /run/vrrpdoctor-lab/state.json. Poke at it with
lab exec; remove it with lab down. Only one lab runs at a time.`,
		Example: `  sudo vrrpdoctor lab up
  sudo vrrpdoctor lab up --no-firewalld --daemon vrrpdoctor`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := labSignals(cmd.Context())
			defer stop()
			return labErr(demo.Up(ctx, o.demo(s)))
		},
	}
	labFlags(cmd, o)
	return cmd
}

func newLabStatusCmd(s streams, o *labOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the lab's nodes, processes, VIP holders and VRRP states",
		Long: `status prints each node of the recorded lab: namespace, address, priority,
VRRP state (from its daemon's log), whether it holds the virtual IP, and the
lab's processes on it (running or gone); then the verdict: one holder, or
split brain. Exit status 1 when no lab is recorded.`,
		Example: `  sudo vrrpdoctor lab status`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := demo.Status(cmd.Context(), o.demo(s))
			if errors.Is(err, demo.ErrNoLab) {
				return &exitError{code: labExitFailed, err: errors.New("no lab is up (start one with: vrrpdoctor lab up)")}
			}
			return labErr(err)
		},
	}
}

func newLabDownCmd(s streams, o *labOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove the lab: its processes, namespaces and files",
		Long: `down stops the processes recorded in the lab's state file (only while they
still have the recorded start time and command line: a reused PID is left
alone), deletes the recorded namespaces and removes the lab's files. Without
a lab it does nothing; it is safe to run twice.`,
		Example: `  sudo vrrpdoctor lab down`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			removed, err := demo.Down(o.demo(s))
			if err != nil {
				return labErr(err)
			}
			if removed {
				fmt.Fprintln(s.Out, "lab removed")
			} else {
				fmt.Fprintln(s.Out, "no lab to remove")
			}
			return nil
		},
	}
}

func newLabExecCmd(s streams, o *labOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec NODE -- CMD [ARG...]",
		Short: "Run a command in a lab node's network namespace",
		Long: `exec runs CMD in the network namespace of node a or b of the running lab, with
the terminal's input and output, and exits with CMD's exit status. CMD
vrrpdoctor means this binary. On b, commands reach the lab's firewalld
through its private D-Bus (DBUS_SYSTEM_BUS_ADDRESS is set), so firewall-cmd
and vrrpdoctor see b's firewalld, never the machine's.`,
		Example: `  sudo vrrpdoctor lab exec b -- tcpdump -c 4 -ni eth0 vrrp
  sudo vrrpdoctor lab exec b -- vrrpdoctor check
  sudo vrrpdoctor lab exec b -- firewall-cmd --list-all
  sudo vrrpdoctor lab exec a -- ip addr show dev eth0`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			node, argv := args[0], args[1:]
			// With interspersed flags off, cobra leaves a "--" after NODE.
			if argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return &exitError{code: labExitUsage, err: errors.New("lab exec: no command after the node: vrrpdoctor lab exec NODE -- CMD [ARG...]")}
			}
			code, err := demo.Exec(context.Background(), o.demo(s), node, argv, s.In, s.Out, s.ErrOut)
			if err != nil {
				return &exitError{code: labExitFailed, err: err}
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	// Flags after NODE belong to CMD.
	cmd.Flags().SetInterspersed(false)
	cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return []string{"a\tthe master, priority 150", "b\tthe backup, priority 100, its firewall drops VRRP"}, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveDefault
	}
	return cmd
}
