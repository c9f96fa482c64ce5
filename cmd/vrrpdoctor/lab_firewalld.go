package main

import (
	"github.com/spf13/cobra"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// newLabExecFirewalldCmd is the hidden launcher of the lab's firewalld: the
// lab runs it in node b (`ip netns exec vdlab-b unshare --mount
// --propagation private vrrpdoctor lab exec-firewalld ...`); it sets up
// firewalld's mounts and execs firewalld, with no shell in between.
func newLabExecFirewalldCmd() *cobra.Command {
	var f netlab.FirewalldLaunch
	cmd := &cobra.Command{
		Use:    "exec-firewalld --etc DIR --log FILE [--legacy-xtables]",
		Short:  "Run firewalld in a lab node's own mount namespace (used by lab demo and lab up)",
		Hidden: true,
		Long: `exec-firewalld replaces itself with firewalld on a copy of /etc/firewalld,
as the lab starts it in node b. It refuses unless it runs in a network
namespace and a mount namespace apart from the machine's and its parent's;
there it makes every mount private, binds DIR over /etc/firewalld, mounts a
tmpfs over /run, and execs firewalld --nofork --nopid --system-config DIR
--log-file FILE. DBUS_SYSTEM_BUS_ADDRESS must name the lab's private bus.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return &exitError{code: labExitFailed, err: netlab.ExecFirewalld(f)}
		},
	}
	cmd.Flags().StringVar(&f.Etc, "etc", "", "the copy of /etc/firewalld (absolute, outside /run)")
	cmd.Flags().StringVar(&f.Log, "log", "", "firewalld's log file (absolute, outside /run)")
	cmd.Flags().BoolVar(&f.LegacyXtables, "legacy-xtables", false, "bind xtables-legacy-multi over xtables-nft-multi (iptables backend on legacy iptables)")
	_ = cmd.MarkFlagRequired("etc")
	_ = cmd.MarkFlagRequired("log")
	return cmd
}
