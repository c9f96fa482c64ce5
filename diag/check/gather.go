package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vrrpdoctor/vrrpdoctor/capture/hostfacts"
	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/scripts"
)

// DefaultConfig is the configuration keepalived reads without -f.
const DefaultConfig = hostfacts.DefaultKeepalivedConfig

// Options say what Run checks.
type Options struct {
	// Config is the keepalived.conf to check. Empty means: the one the
	// VRRP daemon running in this network namespace reads, else
	// DefaultConfig — unless Interface and VRID are set, which then
	// describe the one instance to check without a configuration.
	Config string
	// Interface and VRID restrict the check to one instance; without a
	// configuration they define it, with Family (default 4).
	Interface string
	VRID      uint8
	Family    uint8
	// Duration is how long the taps watch; 0 means 3 × the longest
	// advert interval + 1 s.
	Duration time.Duration
	// Node names this node in the report; default the host name.
	Node string
	// ProcDir is where proc is mounted; default /proc.
	ProcDir string
	// Live reads the firewall; nil means fw.ReadLive.
	Live func(ctx context.Context) (*fw.Live, error)
}

// verdictOverhead is the time a check spends outside the watch: the taps'
// drain when they stop (capture.SessionOptions.Drain, 200 ms by default),
// start-up and the report (about 50 ms measured by bench/checkcpu).
const verdictOverhead = 300 * time.Millisecond

// DefaultDuration is how long the taps watch instances whose longest advert
// interval is longest, so that the verdict arrives within three intervals
// (a backup's master-down time) and a second: that budget less the time
// spent outside the watch.
func DefaultDuration(longest time.Duration) time.Duration {
	if longest <= 0 {
		longest = keepalived.DefaultAdvertInt
	}
	return 3*longest + time.Second - verdictOverhead
}

// Run gathers the facts of this node, in the calling thread's network
// namespace, and judges them. It fails only when there is nothing to check:
// the configuration cannot be read, or it names no instance that matches.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.ProcDir == "" {
		o.ProcDir = "/proc"
	}
	if o.Family == 0 {
		o.Family = 4
	}
	if o.Family != 4 && o.Family != 6 {
		return nil, fmt.Errorf("family %d: want 4 or 6", o.Family)
	}
	r := &Report{Schema: Schema, Node: o.Node, Time: time.Now().UTC(), Processes: []Process{}, Interfaces: []Interface{}, Instances: []Instance{}}
	if r.Node == "" {
		r.Node, _ = os.Hostname()
	}
	procs, problems := daemons(o.ProcDir)
	r.Processes = append(r.Processes, procs...)
	r.Skipped = append(r.Skipped, problems...)
	r.ProcessesUnreadable = len(problems) > 0

	if err := loadConfig(r, o); err != nil {
		return nil, err
	}
	longest := time.Duration(0)
	var ifaces []string
	for _, in := range r.Instances {
		longest = max(longest, durationOf(in.AdvertInt))
		if !slices.Contains(ifaces, in.Interface) {
			ifaces = append(ifaces, in.Interface)
		}
	}
	// Memberships before the socket taps join the groups themselves.
	for _, name := range ifaces {
		r.Interfaces = append(r.Interfaces, interfaceFacts(name, o.ProcDir))
	}
	heldAddrs(r, false)

	// The firewall is read while the taps run.
	var fwLive *fw.Live
	var fwErr error
	var fwWG sync.WaitGroup
	fwWG.Add(1)
	go func() {
		defer fwWG.Done()
		read := o.Live
		if read == nil {
			read = fw.ReadLive
		}
		fwLive, fwErr = read(ctx)
	}()

	d := o.Duration
	if d <= 0 {
		d = DefaultDuration(longest)
	}
	obs := watch(ctx, r, d)
	heldAddrs(r, true)
	fwWG.Wait()

	for i := range r.Instances {
		in := &r.Instances[i]
		if o, ok := obs[in.Interface]; ok {
			o.fill(in, r.iface(in.Interface), nil)
		}
	}
	senderFacts(r, o.ProcDir)
	firewallFacts(ctx, r, fwLive, fwErr)
	r.Finish()
	return r, nil
}

// loadConfig reads the configuration (or builds the instance from -i/--vrid)
// into r.
func loadConfig(r *Report, o Options) error {
	switch {
	case o.Config != "":
		r.Config = ConfigFacts{Path: o.Config, Source: "flag"}
	case o.Interface != "" && o.VRID != 0:
		r.Config = ConfigFacts{Source: "none"}
		r.Instances = append(r.Instances, Instance{Interface: o.Interface, VRID: o.VRID, Family: o.Family, VIPs: []netip.Addr{}})
		return nil
	case len(r.Processes) > 0:
		r.Config = ConfigFacts{Path: r.Processes[0].Config, Source: "process"}
	default:
		r.Config = ConfigFacts{Path: DefaultConfig, Source: "default"}
	}
	r.Config.Errors = []string{}
	cfg, err := keepalived.Check(r.Config.Path, keepalived.SystemHost())
	if err != nil {
		var el keepalived.ErrorList
		if !errors.As(err, &el) || cfg == nil {
			if errors.Is(err, fs.ErrNotExist) && r.Config.Source == "default" {
				return fmt.Errorf("no keepalived configuration at %s and no VRRP daemon running here: name one with -c FILE, or the instance with -i IFACE --vrid N", DefaultConfig)
			}
			return fmt.Errorf("read configuration: %w", err)
		}
		for _, e := range el {
			r.Config.Errors = append(r.Config.Errors, e.Error())
		}
	}
	r.Config.Insecure = insecureConfig(cfg)
	for _, w := range cfg.Warnings {
		if w.Kind == keepalived.WarnUnused || w.Kind == keepalived.WarnUnknown {
			r.Config.Unused++
		}
	}
	for _, ci := range cfg.Instances {
		if ci.VRID == 0 || ci.Interface == "" {
			continue // an error says why
		}
		if o.Interface != "" && ci.Interface != o.Interface || o.VRID != 0 && ci.VRID != o.VRID {
			continue
		}
		r.Instances = append(r.Instances, instanceFrom(&ci))
	}
	if len(r.Instances) == 0 {
		what := "no vrrp_instance"
		if o.Interface != "" || o.VRID != 0 {
			what = "no vrrp_instance matching -i/--vrid"
		}
		if len(r.Config.Errors) > 0 {
			return fmt.Errorf("%s: %s, and errors: %s", r.Config.Path, what, strings.Join(r.Config.Errors, "; "))
		}
		return fmt.Errorf("%s: %s", r.Config.Path, what)
	}
	return nil
}

// DaemonConfig returns the first VRRP daemon (keepalived's parent process
// or `vrrpdoctor run`, lowest PID first) known to run in the caller's
// network namespace, whose Config is the file check reads when no -c is
// given; ok is false when none does. A daemon whose namespace cannot be
// read (without privileges) is not taken: it may serve another namespace.
// procDir is where proc is mounted ("" means /proc).
func DaemonConfig(procDir string) (p Process, ok bool) {
	if procDir == "" {
		procDir = "/proc"
	}
	ps, _ := daemons(procDir)
	for _, p := range ps {
		if !p.nsUnknown {
			return p, true
		}
	}
	return Process{}, false
}

// Messages of vrrpcore/scripts.Prepare that say a script run as root could
// be replaced by a non-root user (keepalived's check_security).
const (
	scriptRefused = "(refused: enable_script_security)"
	scriptWarned  = "keepalived would refuse it with enable_script_security"
)

// insecureConfig lists the security problems of cfg as file:line:col:
// message, never quoting a password: each file holding auth_pass that
// others than root can read (keepalived.Check's warning at the auth_pass
// keyword), and each script keepalived runs as root that a non-root user
// could replace (refused under enable_script_security, run without it).
func insecureConfig(cfg *keepalived.Config) []string {
	var out []string
	for _, w := range cfg.Warnings {
		if w.Kind == keepalived.WarnInsecure {
			out = append(out, w.String())
		}
	}
	g := &cfg.Global
	seen := map[keepalived.Pos]bool{}
	check := func(c *keepalived.Command, what string) {
		if c == nil || len(c.Argv) == 0 || seen[c.Pos] {
			return
		}
		seen[c.Pos] = true
		user, group := c.User, c.Group
		if user == "" {
			user, group = g.ScriptUser, g.ScriptGroup
		}
		_, warnings, err := scripts.Prepare(scripts.Spec{Argv: c.Argv, User: user, Group: group, Secure: g.ScriptSecure})
		msg := ""
		switch {
		case err != nil && strings.Contains(err.Error(), scriptRefused):
			msg = err.Error() + ": keepalived does not run it"
		case err == nil:
			for _, w := range warnings {
				if strings.Contains(w, scriptWarned) {
					msg = w
				}
			}
		}
		if msg != "" {
			out = append(out, fmt.Sprintf("%s: %s: %s", c.Pos, what, msg))
		}
	}
	notify := func(n *keepalived.Notify, owner string) {
		check(n.Master, owner+" notify_master")
		check(n.Backup, owner+" notify_backup")
		check(n.Fault, owner+" notify_fault")
		check(n.Stop, owner+" notify_stop")
		check(n.Any, owner+" notify")
	}
	tracked := map[string]bool{}
	for i := range cfg.Instances {
		in := &cfg.Instances[i]
		notify(&in.Notify, "vrrp_instance "+in.Name)
		for _, t := range in.TrackScripts {
			tracked[t.Name] = true
		}
	}
	for i := range cfg.SyncGroups {
		sg := &cfg.SyncGroups[i]
		notify(&sg.Notify, "vrrp_sync_group "+sg.Name)
		for _, t := range sg.TrackScripts {
			tracked[t.Name] = true
		}
	}
	for i := range cfg.Scripts {
		if s := &cfg.Scripts[i]; tracked[s.Name] {
			check(&s.Command, "vrrp_script "+s.Name)
		}
	}
	return out
}

func instanceFrom(ci *keepalived.Instance) Instance {
	in := Instance{
		Name: ci.Name, Pos: ci.Pos.String(), Interface: ci.Interface, VRID: ci.VRID, Family: uint8(ci.Family),
		Version: ci.Version, Priority: ci.Priority, State: ci.State.String(), AdvertInt: ci.AdvertInt.Seconds(),
		Auth: authName(ci.Auth.Type), AuthPass: ci.Auth.Pass, VIPs: []netip.Addr{}, Group: ci.McastGroup,
		Unicast: ci.Unicast(), SrcIP: ci.SrcIP, Nopreempt: ci.Nopreempt,
	}
	if in.Family == 0 {
		in.Family = 4
	}
	if in.Unicast {
		in.Group = netip.Addr{}
	}
	for _, v := range ci.VIPs {
		in.VIPs = append(in.VIPs, v.Addr())
	}
	for _, p := range ci.UnicastPeers {
		in.UnicastPeers = append(in.UnicastPeers, UnicastPeer{Addr: p.Addr, MinTTL: p.MinTTL, MaxTTL: p.MaxTTL})
	}
	switch ci.OldUnicastChecksum {
	case keepalived.UnicastChecksumOld:
		in.OldUnicastChecksum = "set"
	case keepalived.UnicastChecksumNever:
		in.OldUnicastChecksum = "never"
	}
	return in
}

func authName(t keepalived.AuthType) string {
	switch t {
	case keepalived.AuthPass:
		return "PASS"
	case keepalived.AuthAH:
		return "AH"
	}
	return "none"
}

func durationOf(s float64) time.Duration { return time.Duration(s*1e9 + 0.5) }

// interfaceFacts reads an interface's state and group memberships.
func interfaceFacts(name, procDir string) Interface {
	return interfaceFactsExcept(name, procDir, 0, 0)
}

// interfaceFactsExcept reads an interface's state and group memberships,
// leaving out own4 and own6 holders of 224.0.0.18 and ff02::12.
func interfaceFactsExcept(name, procDir string, own4, own6 int) Interface {
	ifc := Interface{Name: name, Addrs: []netip.Prefix{}, Senders: []SenderCheck{}}
	f, err := hostfacts.Gather(name, hostfacts.Options{ProcDir: procDir})
	if err != nil {
		ifc.Problems = append(ifc.Problems, err.Error())
		return ifc
	}
	ifc.Exists = true
	ifc.Up, ifc.LowerUp, ifc.Multicast, ifc.OperState = f.Interface.Up, f.Interface.LowerUp, f.Interface.Multicast, f.Interface.OperState
	ifc.Addrs = append(ifc.Addrs, f.Interface.Addrs...)
	memberships := true
	for _, p := range f.Problems {
		if strings.Contains(p, "igmp") {
			memberships = false
		}
		ifc.Problems = append(ifc.Problems, p)
	}
	if memberships {
		j4, j6 := f.JoinedVRRP4, f.JoinedVRRP6
		if own4 > 0 || own6 > 0 {
			j4, j6 = false, false
			for _, m := range f.Memberships {
				j4 = j4 || m.Group == vrrpcore.GroupIPv4 && m.Users > own4
				j6 = j6 || m.Group == vrrpcore.GroupIPv6 && m.Users > own6
			}
		}
		ifc.JoinedVRRP4, ifc.JoinedVRRP6 = &j4, &j6
	}
	return ifc
}

// heldAddrs records, per instance, the virtual addresses some interface of
// this host holds (netlink). Called again after the taps, it keeps those held
// both times: an address a takeover adds or removes meanwhile is not held
// throughout the check.
func heldAddrs(r *Report, again bool) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		if !again {
			r.Skipped = append(r.Skipped, "virtual addresses held: "+err.Error())
		}
		return
	}
	names := map[int]string{}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			names[l.Attrs().Index] = l.Attrs().Name
		}
	}
	for i := range r.Instances {
		in := &r.Instances[i]
		var held []HeldAddr
		for _, vip := range in.VIPs {
			for _, a := range addrs {
				ip, ok := netip.AddrFromSlice(a.IP)
				if ok && ip.Unmap() == vip {
					held = append(held, HeldAddr{Addr: vip, Interface: names[a.LinkIndex]})
					break
				}
			}
		}
		if !again {
			in.Held = append([]HeldAddr{}, held...)
			continue
		}
		in.Held = slices.DeleteFunc(in.Held, func(h HeldAddr) bool { return !slices.Contains(held, h) })
	}
}

// senderFacts adds the kernel's reverse-path verdict for every peer heard.
func senderFacts(r *Report, procDir string) {
	for i := range r.Interfaces {
		ifc := &r.Interfaces[i]
		if !ifc.Exists {
			continue
		}
		var senders []netip.Addr
		for _, in := range r.Instances {
			if in.Interface != ifc.Name {
				continue
			}
			for _, p := range in.Peers {
				if !slices.Contains(senders, p.Address) {
					senders = append(senders, p.Address)
				}
			}
		}
		f, err := hostfacts.Gather(ifc.Name, hostfacts.Options{ProcDir: procDir, Senders: senders})
		if err != nil {
			ifc.Problems = append(ifc.Problems, err.Error())
			continue
		}
		rp := f.RPFilter
		ifc.RPFilter = &RPFilter{All: rp.All, Interface: rp.Interface, Effective: rp.Effective, Mode: hostfacts.Mode(rp.Effective)}
		for _, s := range f.Senders {
			ifc.Senders = append(ifc.Senders, SenderCheck{Sender: s.Sender, RouteBack: s.RouteBack, Accepted: s.Accepted, RPFilterDrop: s.RPFilterDrop, Reason: s.Reason})
		}
	}
}

// firewallFacts evaluates, per instance, the peers' adverts coming in and
// this node's going out.
func firewallFacts(ctx context.Context, r *Report, live *fw.Live, err error) {
	for i := range r.Instances {
		r.Instances[i].FirewallIn, r.Instances[i].FirewallOut = []Verdict{}, []Verdict{}
	}
	if err != nil {
		r.Skipped = append(r.Skipped, "firewall not read, no verdicts on adverts: "+err.Error())
		return
	}
	f := &Firewall{Backends: live.Ruleset.Backends(), Sources: live.Ruleset.Sources, Warnings: live.Warnings}
	if info := live.Firewalld; info != nil && info.Running {
		fd := &Firewalld{Version: info.Version, Backend: info.Backend, DefaultZone: info.DefaultZone, Zones: map[string]string{}}
		for _, d := range info.Direct {
			fd.Direct = append(fd.Direct, d.String())
		}
		for _, in := range r.Instances {
			if _, ok := fd.Zones[in.Interface]; ok {
				continue
			}
			zi, err := firewalld.Query(ctx, firewalld.Options{Interface: in.Interface})
			if err == nil && zi.InterfaceZone != nil {
				fd.Zones[in.Interface] = zi.InterfaceZone.Name
			}
		}
		f.Firewalld = fd
	}
	r.Firewall = f
	cached := func(context.Context) (*fw.Live, error) { return live, nil }
	explain := func(p eval.Packet) Verdict {
		v := Verdict{Direction: p.Direction, Interface: p.InIface + p.OutIface, Src: p.Src, Dst: p.Dst, NotFinal: []eval.RuleRef{}}
		ex, err := fw.Explain(ctx, fw.Options{Packet: p, Live: cached})
		if err != nil {
			v.Verdict, v.UnknownReason = eval.Unknown, err.Error()
			return v
		}
		v.Verdict, v.Rule, v.UnknownReason, v.Notes = ex.Verdict, ex.Rule, ex.UnknownReason, ex.Notes
		for _, s := range ex.Path {
			if s.Note == eval.NotFinal && !s.Policy && s.Action == "accept" {
				v.NotFinal = append(v.NotFinal, s.RuleRef)
			}
			if ex.Rule != nil && s.RuleRef == *ex.Rule {
				v.Hook = s.Hook
			}
		}
		return v
	}
	for i := range r.Instances {
		in := &r.Instances[i]
		local := localAddr(in, r.iface(in.Interface))
		group := in.Group
		if !group.IsValid() {
			group = keepalived.DefaultMcastGroup4
			if in.Family == 6 {
				group = keepalived.DefaultMcastGroup6
			}
		}
		// In: each peer heard, else each unicast peer, else anyone.
		var srcs []netip.Addr
		for _, p := range in.Peers {
			srcs = append(srcs, p.Address)
		}
		if len(srcs) == 0 {
			for _, u := range in.UnicastPeers {
				srcs = append(srcs, u.Addr)
			}
		}
		if len(srcs) == 0 {
			srcs = []netip.Addr{{}}
		}
		for _, s := range srcs {
			dst := group
			if in.Unicast {
				dst = local
			}
			if !dst.IsValid() {
				continue
			}
			in.FirewallIn = append(in.FirewallIn, explain(eval.VRRPAdvert(eval.In, in.Interface, s, dst)))
		}
		// Out: to the group, or to each unicast peer.
		dsts := []netip.Addr{group}
		if in.Unicast {
			dsts = nil
			for _, u := range in.UnicastPeers {
				dsts = append(dsts, u.Addr)
			}
		}
		for _, d := range dsts {
			p := eval.VRRPAdvert(eval.Out, in.Interface, local, d)
			p.Family = int(in.Family)
			in.FirewallOut = append(in.FirewallOut, explain(p))
		}
	}
}

// localAddr is the source address of this node's adverts: unicast_src_ip,
// else the interface's first IPv4 address or its IPv6 link-local address.
func localAddr(in *Instance, ifc *Interface) netip.Addr {
	if in.SrcIP.IsValid() {
		return in.SrcIP
	}
	if ifc == nil {
		return netip.Addr{}
	}
	for _, p := range ifc.Addrs {
		a := p.Addr()
		if in.Family == 4 && a.Is4() || in.Family == 6 && a.Is6() && a.IsLinkLocalUnicast() {
			return a.WithZone("")
		}
	}
	return netip.Addr{}
}
