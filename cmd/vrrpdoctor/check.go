package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
)

type checkOptions struct {
	config   string
	iface    string
	vrid     uint8
	family   uint8
	duration time.Duration
	json     bool
	nagios   bool
	node     string
	combine  bool
	peer     string
}

func newCheckCmd(s streams) *cobra.Command {
	o := checkOptions{}
	cmd := &cobra.Command{
		Use:   "check [-c FILE | -i IFACE --vrid N] [--json] [--combine A.json B.json]",
		Short: "Say what is wrong with this node's VRRP, with evidence and the fix",
		Long: `check explains the health of the VRRP instances of this node, from this node.

It reads the keepalived configuration (the one the running keepalived or
vrrpdoctor run reads, else /etc/keepalived/keepalived.conf, or -c FILE; or
just -i IFACE --vrid N), finds the VRRP daemons running in this network
namespace and the virtual addresses this host holds, then watches each
instance's interface with two taps for 3 advert intervals + 1 s (--duration):
the wire (what tcpdump sees) and a VRRP socket set up like keepalived's (what
keepalived gets). It asks the firewall evaluator what happens to the peers'
adverts coming in and to this node's going out, and reads the host facts that
decide delivery: interface state, multicast membership, rp_filter.

Each finding has a stable ID, a severity, evidence from this host, an
explanation and the fix (docs/check.md lists them): split-brain,
firewall-input-drop, firewall-output-drop, accept-not-final,
no-adverts-received, vrid-collision, auth-mismatch, version-mismatch, ...
When nothing is wrong it says so (healthy).

Both nodes together: run check --json on each, then
  vrrpdoctor check --combine a.json b.json
or, on the second node, vrrpdoctor check --peer a.json. The combined verdict
says which side drops what and every configuration difference that matters.

Run it in the network namespace of the VRRP interface, as root (the taps need
CAP_NET_RAW, the firewall CAP_NET_ADMIN); without root it checks what it can
and lists what it skipped.

Exit status (monitoring-plugin convention): 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN (nothing to check, bad usage, or a check that could not run).
--nagios prints the one-line plugin output with perfdata.`,
		Example: `  vrrpdoctor check
  vrrpdoctor check -c /etc/keepalived/keepalived.conf --json > a.json
  vrrpdoctor check -i eth0 --vrid 51 --duration 5s
  vrrpdoctor check --nagios
  vrrpdoctor check --combine a.json b.json
  vrrpdoctor check --peer a.json          # on node b: check b, then combine with a's report`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), s, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "", "keepalived configuration to check (default: the running daemon's, else "+check.DefaultConfig+")")
	f.StringVarP(&o.iface, "interface", "i", "", "check only the instances on this interface (with --vrid and no configuration: the instance to check)")
	f.Uint8Var(&o.vrid, "vrid", 0, "check only this virtual router ID")
	f.Uint8Var(&o.family, "family", 4, "address family of the -i/--vrid instance without configuration: 4 or 6")
	f.DurationVar(&o.duration, "duration", 0, "how long to watch (default 3 x the longest advert interval + 1s)")
	f.BoolVar(&o.json, "json", false, "print the report as JSON (docs/check.md)")
	f.BoolVar(&o.nagios, "nagios", false, "print one monitoring-plugin line with perfdata (Nagios, Icinga, Zabbix)")
	f.StringVar(&o.node, "node", "", "name of this node in the report (default: the host name)")
	f.BoolVar(&o.combine, "combine", false, "combine two nodes' --json reports, given as arguments, into a cluster verdict")
	f.StringVar(&o.peer, "peer", "", "check this node, then combine with the peer's --json report")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: diag.ExitUnknown, err: err}
	})
	return cmd
}

func checkFailed(err error) error {
	return &exitError{code: diag.ExitUnknown, err: fmt.Errorf("check: %w", err)}
}

func runCheck(ctx context.Context, s streams, o checkOptions, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if !o.combine && len(args) > 0 {
		return checkFailed(fmt.Errorf("unexpected argument %q (reports to combine go with --combine)", args[0]))
	}
	if o.nagios && (o.json || o.combine || o.peer != "") {
		return checkFailed(errors.New("--nagios reports one node: not with --json, --combine or --peer"))
	}
	if o.combine {
		if len(args) != 2 || o.peer != "" {
			return checkFailed(errors.New("--combine takes exactly two reports: vrrpdoctor check --combine a.json b.json"))
		}
		a, err := readReport(args[0])
		if err != nil {
			return checkFailed(err)
		}
		b, err := readReport(args[1])
		if err != nil {
			return checkFailed(err)
		}
		return writeCombined(s, check.Combine(a, b), o.json)
	}
	if o.duration < 0 {
		return checkFailed(fmt.Errorf("--duration %v: must not be negative", o.duration))
	}
	if o.family != 4 && o.family != 6 {
		return checkFailed(fmt.Errorf("--family %d: want 4 or 6", o.family))
	}
	var peer *check.Report
	if o.peer != "" {
		var err error
		if peer, err = readReport(o.peer); err != nil {
			return checkFailed(err)
		}
	}
	r, err := check.Run(ctx, check.Options{Config: o.config, Interface: o.iface, VRID: o.vrid, Family: o.family, Duration: o.duration, Node: o.node})
	if err != nil {
		return checkFailed(err)
	}
	if peer != nil {
		return writeCombined(s, check.Combine(r, peer), o.json)
	}
	switch {
	case o.json:
		err = check.WriteJSON(s.Out, r)
	case o.nagios:
		err = check.WriteNagios(s.Out, r)
	default:
		err = check.WriteText(s.Out, r, diag.ColourEnabled(s.Out))
	}
	if err != nil {
		return checkFailed(err)
	}
	if r.ExitCode != 0 {
		return &exitError{code: r.ExitCode}
	}
	return nil
}

func readReport(name string) (*check.Report, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return check.ReadJSON(f, name)
}

func writeCombined(s streams, c *check.Combined, asJSON bool) error {
	var err error
	if asJSON {
		err = check.WriteCombinedJSON(s.Out, c)
	} else {
		err = check.WriteCombinedText(s.Out, c, diag.ColourEnabled(s.Out))
	}
	if err != nil {
		return checkFailed(err)
	}
	if c.ExitCode != 0 {
		return &exitError{code: c.ExitCode}
	}
	return nil
}
