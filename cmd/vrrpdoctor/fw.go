package main

import (
	"github.com/spf13/cobra"
)

// newFwCmd is the fw command group: the host firewall as VRRP sees it.
func newFwCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fw",
		Short: "Inspect the host firewall for VRRP (nftables, iptables, firewalld)",
		Long: `fw reads the host's firewall (nftables, iptables-nft, iptables-legacy and
firewalld) and tells what it does to VRRP adverts.`,
		Example: `  vrrpdoctor fw explain
  vrrpdoctor fw explain --trace
  vrrpdoctor fw explain -i eth0 --ruleset nft.json --ruleset iptables-save.txt`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newFwExplainCmd(s))
	return cmd
}
