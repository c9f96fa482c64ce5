package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/trace"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

type fwExplainOptions struct {
	iface        string
	src, dst     string
	direction    string
	family       int
	rulesets     []string
	trace        bool
	traceCount   int
	traceTimeout time.Duration
	json         bool
	config       string
	// configSet is set when -c was given: then the file must exist and
	// match the flags.
	configSet bool
	// defaultConfig is read when -c is not given and it exists.
	defaultConfig string
	// ownAddr finds this host's address on an interface (live only).
	ownAddr func(iface string, family int, linkLocal bool) netip.Addr
}

func newFwExplainCmd(s streams) *cobra.Command {
	return newFwExplainCmdWith(s, fwExplainOptions{defaultConfig: DefaultConfig, ownAddr: ownAddr})
}

// newFwExplainCmdWith builds the command on o (tests set the default
// configuration path and the address lookup).
func newFwExplainCmdWith(s streams, o fwExplainOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "explain [-i IFACE] [--src ADDR] [--dst ADDR] [--direction in|out] [--family 4|6] [--ruleset FILE]... [--trace] [--json] [-c keepalived.conf]",
		Short: "Explain what the firewall does to VRRP adverts, and which rule decides",
		Long: `explain walks VRRP adverts through the host's firewall the way netfilter does:
every base chain of every table on each hook, in priority order: native
nftables (firewalld's "inet firewalld" included), iptables-nft and
iptables-legacy; it names the rule that decides their fate, the tool that
owns it (firewalld, docker, ufw, kube-proxy, ...) and the rules on the way.
An accept ends only the base chain it is in: a later chain (another table,
the other iptables flavour) still sees the advert, so an accept is listed as
"accepted, but not final" when something after it decides.

The adverts come from keepalived.conf (-c, default ` + DefaultConfig + `
when it exists): per vrrp_instance, the adverts arriving on its interface
from the other routers (to its multicast group, or from each unicast_peer)
and the host's own adverts leaving, in the family of its virtual addresses.
-i, --family and --direction keep only what matches; --src and --dst set the
addresses. Without a keepalived.conf, -i is needed and the advert goes to
224.0.0.18 (ff02::12 with --family 6).

The ruleset is the live one of this network namespace (nftables over
netlink, iptables-nft-save, iptables-legacy-save, firewalld over D-Bus; needs
root), or the saved files given with --ruleset: ` + "`nft -j list ruleset`" + ` and
iptables-save / ip6tables-save output of either flavour, format detected.

When firewalld owns the deciding rule, explain says the fix belongs in
firewalld (a rich rule or --add-protocol=vrrp in the zone, or a policy): a
rule added beside firewalld with nft or iptables is lost at its next reload,
and with its nftables backend is not final anyway.

--trace (root, live only) asks the kernel itself: it adds the table
"inet vrrpdoctor_trace" (and "netdev vrrpdoctor_trace" for ingress), whose
chains set nftrace on protocol 112 at priority -350, reads the kernel's trace
events for real adverts, and reports the kernel's verdict and rule per advert
beside the evaluation. The table is removed at the end, on Ctrl-C, and (after
a crash) at the next --trace. iptables-legacy rules never show in a trace.

Exit status (monitoring-plugin convention): 0 every advert is accepted,
2 an advert is dropped or rejected, 3 unknown (the ruleset alone cannot
decide, the kernel trace disagrees, or bad usage / unreadable input).`,
		Example: `  vrrpdoctor fw explain
  vrrpdoctor fw explain -c /etc/keepalived/keepalived.conf --trace
  vrrpdoctor fw explain -i eth0 --direction in --src 198.51.100.1
  vrrpdoctor fw explain -i eth0 --ruleset nft.json --ruleset iptables-save.txt --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.configSet = cmd.Flags().Changed("config")
			return runFwExplain(cmd.Context(), s, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.iface, "interface", "i", "", "interface the adverts cross")
	f.StringVar(&o.src, "src", "", "source address of the adverts")
	f.StringVar(&o.dst, "dst", "", "destination address (default: the VRRP group, or the unicast peer)")
	f.StringVar(&o.direction, "direction", "", "in (adverts arriving) or out (the host's own); default both")
	f.IntVar(&o.family, "family", 0, "4 or 6")
	f.StringArrayVar(&o.rulesets, "ruleset", nil, "saved ruleset file (nft -j list ruleset, iptables-save; firewalld's direct.xml marks its direct rules); repeatable; default: the live ruleset")
	f.BoolVar(&o.trace, "trace", false, "trace real adverts with nftables and report the kernel's verdict (root)")
	f.IntVar(&o.traceCount, "trace-count", 3, "adverts to trace per explanation")
	f.DurationVar(&o.traceTimeout, "trace-timeout", 10*time.Second, "how long to trace at most")
	f.BoolVar(&o.json, "json", false, "print JSON (schema: docs/fw.md)")
	f.StringVarP(&o.config, "config", "c", DefaultConfig, "keepalived configuration file")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: diag.ExitUnknown, err: err}
	})
	return cmd
}

// usageErr is bad usage or unreadable input: exit status 3.
func usageErr(format string, args ...any) error {
	return &exitError{code: diag.ExitUnknown, err: fmt.Errorf(format, args...)}
}

func runFwExplain(ctx context.Context, s streams, o fwExplainOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := o.validate(); err != nil {
		return &exitError{code: diag.ExitUnknown, err: err}
	}
	cfg, err := o.loadConfig(s)
	if err != nil {
		return err
	}
	plans, err := o.plan(cfg)
	if err != nil {
		return &exitError{code: diag.ExitUnknown, err: err}
	}
	l, err := fw.Read(ctx, fw.Options{Rulesets: o.rulesets})
	switch {
	case err != nil && len(o.rulesets) == 0 && permissionDenied(err):
		return usageErr("reading the live ruleset needs CAP_NET_ADMIN, which this process lacks (%v): run it as root, or explain saved rulesets with --ruleset", err)
	case err != nil:
		return usageErr("read the ruleset: %w", err)
	}
	var exs []*fw.Explanation
	for _, p := range plans {
		ex, err := l.Explain(p.packet)
		if err != nil {
			return usageErr("%s: %w", p.label, err)
		}
		ex.Label = p.label
		exs = append(exs, ex)
	}
	if o.trace {
		if err := o.runTrace(ctx, s, l, exs); err != nil {
			return err
		}
	}
	if o.json {
		err = fw.RenderJSON(s.Out, exs...)
	} else {
		err = fw.RenderText(s.Out, exs...)
	}
	if err != nil {
		return &exitError{code: diag.ExitUnknown, err: err}
	}
	switch fw.Overall(exs) {
	case eval.Accept:
		return nil
	case eval.Drop, eval.Reject:
		return &exitError{code: diag.ExitCritical}
	}
	return &exitError{code: diag.ExitUnknown}
}

func (o *fwExplainOptions) validate() error {
	switch o.direction {
	case "", "in", "out":
	default:
		return fmt.Errorf("--direction %q: want in or out", o.direction)
	}
	if o.family != 0 && o.family != 4 && o.family != 6 {
		return fmt.Errorf("--family %d: want 4 or 6", o.family)
	}
	for _, a := range []struct{ flag, v string }{{"--src", o.src}, {"--dst", o.dst}} {
		if a.v == "" {
			continue
		}
		ip, err := netip.ParseAddr(a.v)
		if err != nil {
			return fmt.Errorf("%s %q: not an IP address", a.flag, a.v)
		}
		if o.family != 0 && (ip.Is4() != (o.family == 4)) {
			return fmt.Errorf("%s %s is not an IPv%d address", a.flag, a.v, o.family)
		}
	}
	if o.trace && len(o.rulesets) > 0 {
		return errors.New("--trace watches this host's kernel; it cannot be combined with --ruleset")
	}
	if o.traceCount < 1 {
		return fmt.Errorf("--trace-count %d: want at least 1", o.traceCount)
	}
	return nil
}

// loadConfig reads keepalived.conf: the -c file, or the default one when
// it exists. nil means no configuration.
func (o *fwExplainOptions) loadConfig(s streams) (*keepalived.Config, error) {
	path := o.config
	if !o.configSet {
		path = o.defaultConfig
		if _, err := os.Stat(path); err != nil {
			return nil, nil
		}
	}
	cfg, err := keepalived.ParseFile(path)
	if err != nil {
		var list keepalived.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintf(s.ErrOut, "%s\n", e)
			}
			return nil, usageErr("%s: %d error(s) in the configuration", path, len(list))
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, usageErr("%s: no such file", path)
		}
		return nil, usageErr("%v", err)
	}
	if len(cfg.Instances) == 0 {
		if o.configSet {
			return nil, usageErr("%s has no vrrp_instance", path)
		}
		return nil, nil
	}
	return cfg, nil
}

// planned is one advert to explain.
type planned struct {
	label  string
	who    []string // the instances sending or receiving it
	packet eval.Packet
}

func (o *fwExplainOptions) directions() []eval.Direction {
	if o.direction != "" {
		return []eval.Direction{eval.Direction(o.direction)}
	}
	return []eval.Direction{eval.In, eval.Out}
}

// plan lists the adverts to explain: from the configuration's instances,
// narrowed and completed by the flags, or from the flags alone.
func (o *fwExplainOptions) plan(cfg *keepalived.Config) ([]planned, error) {
	var out []planned
	index := map[string]int{}
	add := func(who string, p eval.Packet) {
		if o.src != "" {
			p.Src = netip.MustParseAddr(o.src)
		}
		if o.dst != "" {
			p.Dst = netip.MustParseAddr(o.dst)
		}
		key := fmt.Sprintf("%s|%s|%s|%s|%s", p.Direction, p.InIface, p.OutIface, p.Src, p.Dst)
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, planned{packet: p})
		}
		if who != "" {
			out[i].who = append(out[i].who, who)
		}
		out[i].label = p.Label(strings.Join(out[i].who, ", "))
	}
	if cfg != nil {
		var ifaces []string
		for i := range cfg.Instances {
			inst := &cfg.Instances[i]
			ifaces = append(ifaces, inst.Interface)
			fam := int(inst.Family)
			if (o.iface != "" && inst.Interface != o.iface) || (o.family != 0 && fam != o.family) {
				continue
			}
			who := fmt.Sprintf("%s (VRID %d)", inst.Name, inst.VRID)
			for _, dir := range o.directions() {
				if !inst.Unicast() {
					p := eval.VRRPAdvert(dir, inst.Interface, netip.Addr{}, inst.McastGroup)
					if dir == eval.Out {
						p.Src = o.own(inst.SrcIP, inst.Interface, fam, true)
					}
					add(who, p)
					continue
				}
				for _, peer := range inst.UnicastPeers {
					self := o.own(inst.SrcIP, inst.Interface, fam, false)
					var p eval.Packet
					if dir == eval.In {
						if !self.IsValid() && o.dst == "" {
							return nil, fmt.Errorf("%s sends to unicast peers and has no unicast_src_ip: give this host's address on %s with --dst", inst.Name, inst.Interface)
						}
						p = eval.VRRPAdvert(dir, inst.Interface, peer.Addr, self)
					} else {
						p = eval.VRRPAdvert(dir, inst.Interface, self, peer.Addr)
					}
					add(who, p)
				}
			}
		}
		if len(out) > 0 {
			return out, nil
		}
		if o.configSet {
			return nil, fmt.Errorf("%s: no vrrp_instance matches -i %q --family %d (interfaces: %s)", o.config, o.iface, o.family, strings.Join(ifaces, ", "))
		}
	}
	if o.iface == "" {
		why := "no keepalived.conf at " + o.defaultConfig
		if cfg != nil {
			why = "no vrrp_instance of " + o.defaultConfig + " matches"
		}
		return nil, fmt.Errorf("%s: name the interface with -i (or give a keepalived.conf with -c)", why)
	}
	fam := o.family
	for _, a := range []string{o.dst, o.src} {
		if fam == 0 && a != "" {
			fam = 4
			if netip.MustParseAddr(a).Is6() {
				fam = 6
			}
		}
	}
	group := keepalived.DefaultMcastGroup4
	if fam == 6 {
		group = keepalived.DefaultMcastGroup6
	}
	for _, dir := range o.directions() {
		add("", eval.VRRPAdvert(dir, o.iface, netip.Addr{}, group))
	}
	return out, nil
}

// own is this host's source address for adverts: the configured one, else
// (live only) the interface's, else invalid (any).
func (o *fwExplainOptions) own(configured netip.Addr, iface string, family int, multicast bool) netip.Addr {
	if configured.IsValid() || len(o.rulesets) > 0 || o.ownAddr == nil {
		return configured
	}
	// keepalived sends VRRPv3 over IPv6 from the link-local address.
	return o.ownAddr(iface, family, multicast && family == 6)
}

// ownAddr is the first address of the family on the interface (its
// link-local one if asked), or invalid.
func ownAddr(iface string, family int, linkLocal bool) netip.Addr {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return netip.Addr{}
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		if ip.Is4() != (family == 4) || ip.IsLinkLocalUnicast() != linkLocal {
			continue
		}
		return ip
	}
	return netip.Addr{}
}

// runTrace traces live adverts, stopping on SIGINT, SIGTERM or SIGHUP with
// what was traced so far; the tracer's table is always removed.
func (o *fwExplainOptions) runTrace(ctx context.Context, s streams, l *fw.Live, exs []*fw.Explanation) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	fmt.Fprintf(s.ErrOut, "vrrpdoctor: tracing VRRP adverts with nftables (table inet %s) for up to %s; Ctrl-C stops\n", trace.TableName, o.traceTimeout)
	err := fw.Trace(ctx, l, exs, fw.TraceOptions{Count: o.traceCount, Timeout: o.traceTimeout})
	switch {
	case errors.Is(err, trace.ErrBusy):
		return usageErr("--trace: %w", err)
	case errors.Is(err, syscall.EPERM):
		return usageErr("--trace needs root (CAP_NET_ADMIN): %w", err)
	case err != nil:
		return usageErr("--trace: %w", err)
	}
	return nil
}
