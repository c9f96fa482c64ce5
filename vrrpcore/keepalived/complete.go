package keepalived

import (
	"fmt"
	"net/netip"
	"time"
)

// Defaults keepalived 2.2 applies (keepalived.conf(5), and its -d dump).
var (
	DefaultMcastGroup4 = netip.MustParseAddr("224.0.0.18")
	DefaultMcastGroup6 = netip.MustParseAddr("ff02::12")
)

// Default values of an instance.
const (
	DefaultPriority          = 100
	DefaultAdvertInt         = time.Second
	DefaultVersion           = 2
	DefaultGarpDelay         = 5 * time.Second
	DefaultGarpRepeat        = 5
	DefaultGarpRefreshRepeat = 1
	DefaultDownTimerAdverts  = 3
)

// v3MaxAdvert is the largest VRRPv3 interval: 4095 centiseconds.
const v3MaxAdvert = 4095 * 10 * time.Millisecond

// completeGlobal applies the global defaults.
func (b *builder) completeGlobal() {
	g := &b.cfg.Global
	set := func(k string) bool { _, ok := g.Set[k]; return ok }
	if g.VRRPVersion == 0 {
		g.VRRPVersion = DefaultVersion
	}
	if !g.McastGroup4.IsValid() {
		g.McastGroup4 = DefaultMcastGroup4
	}
	if !g.McastGroup6.IsValid() {
		g.McastGroup6 = DefaultMcastGroup6
	}
	if !set("vrrp_garp_master_delay") {
		g.Garp.MasterDelay = DefaultGarpDelay
	}
	if !set("vrrp_garp_master_repeat") {
		g.Garp.MasterRepeat = DefaultGarpRepeat
	}
	if !set("vrrp_garp_master_refresh_repeat") {
		g.Garp.MasterRefreshRepeat = DefaultGarpRefreshRepeat
	}
	if !set("vrrp_garp_lower_prio_delay") {
		g.Garp.LowerPrioDelay = g.Garp.MasterDelay
	}
	if !set("vrrp_garp_lower_prio_repeat") {
		g.Garp.LowerPrioRepeat = g.Garp.MasterRepeat
	}
	if g.DownTimerAdverts == 0 {
		g.DownTimerAdverts = DefaultDownTimerAdverts
	}
	if g.Strict && !set("vrrp_lower_prio_no_advert") {
		g.LowerPrioNoAdvert = true
	}
}

// complete applies keepalived's defaults and adjustments to each instance
// (vrrp_complete_instance() in keepalived), then checks the instances,
// scripts and sync groups against each other.
func (b *builder) complete() {
	b.completeGlobal()
	for i := range b.cfg.Instances {
		b.completeInstance(&b.cfg.Instances[i], b.pending[i])
	}
	b.completeSyncGroups()
	b.checkDuplicateVRIDs()
	b.checkScriptSecurity()
}

// commands lists every script keepalived would run, with its description:
// notify scripts, and vrrp_scripts that an instance or sync group tracks.
func (c *Config) commands() (cmds []*Command, what []string) {
	add := func(n *Notify, owner string) {
		for _, x := range []struct {
			c  *Command
			kw string
		}{{n.Master, "notify_master"}, {n.Backup, "notify_backup"}, {n.Fault, "notify_fault"}, {n.Stop, "notify_stop"}, {n.Any, "notify"}} {
			if x.c != nil {
				cmds, what = append(cmds, x.c), append(what, owner+" "+x.kw)
			}
		}
	}
	for i := range c.Instances {
		add(&c.Instances[i].Notify, "vrrp_instance "+c.Instances[i].Name)
	}
	for i := range c.SyncGroups {
		add(&c.SyncGroups[i].Notify, "vrrp_sync_group "+c.SyncGroups[i].Name)
	}
	tracked := map[string]bool{}
	for i := range c.Instances {
		for _, t := range c.Instances[i].TrackScripts {
			tracked[t.Name] = true
		}
	}
	for i := range c.SyncGroups {
		for _, t := range c.SyncGroups[i].TrackScripts {
			tracked[t.Name] = true
		}
	}
	for i := range c.Scripts {
		if tracked[c.Scripts[i].Name] {
			cmds, what = append(cmds, &c.Scripts[i].Command), append(what, "vrrp_script "+c.Scripts[i].Name)
		}
	}
	return cmds, what
}

// securityMsg is the warning for a script run as root without
// enable_script_security.
const securityMsg = "%s runs as root and enable_script_security is not set: keepalived -t calls this a SECURITY VIOLATION (and runs it anyway)"

// checkScriptSecurity warns, once, about a script that runs as root
// without enable_script_security.
func (b *builder) checkScriptSecurity() {
	g := &b.cfg.Global
	if g.ScriptSecure {
		return
	}
	cmds, what := b.cfg.commands()
	for i, c := range cmds {
		u := c.User
		if u == "" {
			u = g.ScriptUser
		}
		if u == "root" {
			b.warnf(c.Pos, WarnSuspicious, securityMsg, what[i])
			return
		}
	}
}

func (b *builder) completeInstance(in *Instance, st *instanceState) {
	g := &b.cfg.Global
	set := func(k string) bool { _, ok := in.Set[k]; return ok }

	if in.VRID == 0 {
		b.errorf(in.Pos, "vrrp_instance %s: virtual_router_id is not set", in.Name)
	}
	if in.Interface == "" && !in.Unicast() {
		b.errorf(in.Pos, "vrrp_instance %s: interface is not set", in.Name)
	}
	if in.Family == 0 {
		in.Family = IPv4
	}

	// Version: IPv6 instances use VRRPv3 unless version 2 is written.
	switch {
	case set("version"):
		if in.Version == 2 && in.Family == IPv6 {
			b.warnf(at(in, "version"), WarnSuspicious, "version 2 with IPv6 addresses: VRRPv2 (RFC 3768) is IPv4 only, yet keepalived sends VRRPv2 over IPv6")
		}
	case in.Family == IPv6:
		in.Version = 3
	default:
		in.Version = g.VRRPVersion
	}

	// Advert interval.
	if in.Version == 2 && in.AdvertInt%time.Second != 0 {
		r := (in.AdvertInt + time.Second/2) / time.Second * time.Second
		if r == 0 {
			r = time.Second
		}
		b.warnf(at(in, "advert_int"), WarnAdjusted, "advert_int %s: VRRPv2 counts whole seconds, keepalived rounds it to %s", in.AdvertInt, r)
		in.AdvertInt = r
	}
	if in.Version == 3 {
		if in.AdvertInt > v3MaxAdvert {
			b.warnf(at(in, "advert_int"), WarnAdjusted, "advert_int %s: above the VRRPv3 maximum, keepalived uses %s", in.AdvertInt, v3MaxAdvert)
			in.AdvertInt = v3MaxAdvert
		} else if r := in.AdvertInt.Round(10 * time.Millisecond); r != in.AdvertInt {
			b.warnf(at(in, "advert_int"), WarnAdjusted, "advert_int %s: VRRPv3 counts centiseconds, keepalived rounds it to %s", in.AdvertInt, r)
			in.AdvertInt = r
		}
	}

	strict := g.Strict
	if st.strict != nil {
		strict = *st.strict
	}
	in.Strict = strict

	// Initial state.
	if !set("state") && in.Priority == 255 {
		in.State = StateMaster
	}
	if strict && in.State == StateMaster && in.Priority != 255 {
		b.warnf(at(in, "state"), WarnAdjusted, "state MASTER under strict mode needs priority 255 (address owner): keepalived starts it as BACKUP")
		in.State = StateBackup
	}
	if in.State == StateMaster && in.Nopreempt {
		b.warnf(at(in, "nopreempt"), WarnAdjusted, "nopreempt has no effect with state MASTER: keepalived clears it (use state BACKUP on every node)")
		in.Nopreempt = false
	}
	if in.PreemptDelay > 0 {
		switch {
		case in.State == StateMaster:
			b.warnf(at(in, "preempt_delay"), WarnAdjusted, "preempt_delay has no effect with state MASTER: keepalived clears it")
			in.PreemptDelay = 0
		case strict:
			b.warnf(at(in, "preempt_delay"), WarnAdjusted, "preempt_delay is not allowed by strict mode: keepalived clears it")
			in.PreemptDelay = 0
		}
	}

	// Authentication exists in VRRPv2 only.
	if in.Auth.Type != AuthNone {
		switch {
		case in.Version == 3:
			b.warnf(in.Auth.Pos, WarnAdjusted, "authentication with VRRPv3: keepalived ignores it (RFC 5798 has no authentication)")
			in.Auth = Auth{}
		case strict:
			b.warnf(in.Auth.Pos, WarnAdjusted, "authentication is not allowed by strict mode: keepalived ignores it")
			in.Auth = Auth{}
		}
	}

	// Accept mode.
	switch {
	case st.accept != nil:
		in.Accept = *st.accept
		if strict && in.Accept && in.Version == 2 {
			b.warnf(at(in, "accept"), WarnAdjusted, "accept with VRRPv2 under strict mode: keepalived clears it (RFC 3768 has no accept mode)")
			in.Accept = false
		}
	case strict:
		in.Accept = in.Priority == 255
	default:
		in.Accept = true
	}

	// Settings that take the global value unless written.
	if st.lowerPrio != nil {
		in.LowerPrioNoAdvert = *st.lowerPrio
	} else {
		in.LowerPrioNoAdvert = g.LowerPrioNoAdvert || strict
	}
	if st.higher != nil {
		in.HigherPrioSendAdvert = *st.higher
	} else {
		in.HigherPrioSendAdvert = g.HigherPrioSendAdvert
	}
	if st.skipCheck != nil {
		in.SkipCheckAdvAddr = *st.skipCheck
	} else {
		in.SkipCheckAdvAddr = g.SkipCheckAdvAddr
	}
	if !set("down_timer_adverts") {
		in.DownTimerAdverts = g.DownTimerAdverts
	}
	garp := [...]struct {
		kw      string
		d, from *time.Duration
		n, nf   *int
	}{
		{kw: "garp_master_delay", d: &in.Garp.MasterDelay, from: &g.Garp.MasterDelay},
		{kw: "garp_master_repeat", n: &in.Garp.MasterRepeat, nf: &g.Garp.MasterRepeat},
		{kw: "garp_master_refresh", d: &in.Garp.MasterRefresh, from: &g.Garp.MasterRefresh},
		{kw: "garp_master_refresh_repeat", n: &in.Garp.MasterRefreshRepeat, nf: &g.Garp.MasterRefreshRepeat},
		{kw: "garp_lower_prio_delay", d: &in.Garp.LowerPrioDelay, from: &g.Garp.LowerPrioDelay},
		{kw: "garp_lower_prio_repeat", n: &in.Garp.LowerPrioRepeat, nf: &g.Garp.LowerPrioRepeat},
	}
	for _, x := range garp {
		if set(x.kw) {
			continue
		}
		if x.d != nil {
			*x.d = *x.from
		} else {
			*x.n = *x.nf
		}
	}
	if strict {
		in.Garp.LowerPrioDelay, in.Garp.LowerPrioRepeat = 0, 0
	}

	// Addresses.
	if !in.McastGroup.IsValid() {
		in.McastGroup = g.McastGroup4
		if in.Family == IPv6 {
			in.McastGroup = g.McastGroup6
		}
	}
	switch {
	case len(in.VIPs) > 0:
	case in.Family == IPv6:
		// keepalived: "No VIP specified; at least one is required", and
		// its VRRP process stops.
		b.errorf(in.Pos, "vrrp_instance %s: an IPv6 instance needs a virtual_ipaddress (keepalived refuses to run it without)", in.Name)
	default:
		b.warnf(in.Pos, WarnSuspicious, "vrrp_instance %s has no virtual_ipaddress: its adverts carry no address", in.Name)
	}
	if in.Family == IPv6 && in.Version == 3 && len(in.VIPs) > 0 && !in.VIPs[0].Addr().IsLinkLocalUnicast() && strict {
		b.warnf(in.VIPs[0].Pos, WarnSuspicious, "the first IPv6 virtual address is not link-local, as RFC 5798 §5.2.9 wants under strict mode")
	}
	b.checkUnicast(in, strict, set)
	b.checkTracking(in)

	if in.Priority == 255 && in.SrcIP.IsValid() && !hasVIP(in.VIPs, in.SrcIP) && len(in.VIPs) > 0 {
		b.warnf(at(in, "priority"), WarnSuspicious, "priority 255 makes this router the owner of the virtual addresses, but its source address %s is not one of them", in.SrcIP)
	}
}

// rel describes p as seen from a message at from: "line N" in the same file.
func rel(p, from Pos) string {
	if p.File == from.File {
		return fmt.Sprintf("line %d", p.Line)
	}
	return p.String()
}

func hasVIP(vips []VIP, a netip.Addr) bool {
	for _, v := range vips {
		if v.Addr() == a {
			return true
		}
	}
	return false
}

func (b *builder) checkUnicast(in *Instance, strict bool, set func(string) bool) {
	if !in.Unicast() {
		for _, k := range []string{"unicast_src_ip", "unicast_ttl", "old_unicast_checksum", "check_unicast_src"} {
			if set(k) && (k != "unicast_ttl" || in.UnicastTTL != 255) {
				b.warnf(at(in, k), WarnSuspicious, "%s without unicast_peer: keepalived stays in multicast mode", k)
			}
		}
		if set("unicast_ttl") {
			in.UnicastTTL = 255
		}
		return
	}
	if strict {
		b.warnf(at(in, "unicast_peer"), WarnSuspicious, "unicast peers are not VRRP as strict mode means it (keepalived 2.2 uses them anyway)")
	}
	in.CheckUnicastSrc = in.CheckUnicastSrc || b.cfg.Global.CheckUnicastSrc
	seen := map[netip.Addr]Pos{}
	for _, p := range in.UnicastPeers {
		if p.MinTTL != 0 || p.MaxTTL != 255 {
			in.CheckUnicastSrc = true
		}
		if prev, dup := seen[p.Addr]; dup {
			b.warnf(p.Pos, WarnSuspicious, "unicast_peer %s is listed twice (first at %s)", p.Addr, rel(prev, p.Pos))
		}
		seen[p.Addr] = p.Pos
		if in.SrcIP.IsValid() && p.Addr == in.SrcIP {
			b.warnf(p.Pos, WarnSuspicious, "unicast_peer %s is this router's own unicast_src_ip", p.Addr)
		}
		if hasVIP(in.VIPs, p.Addr) {
			b.warnf(p.Pos, WarnSuspicious, "unicast_peer %s is one of the virtual addresses", p.Addr)
		}
		if in.Interface == "" && p.Addr.IsLinkLocalUnicast() {
			b.errorf(p.Pos, "unicast_peer %s is link-local: the instance needs an interface", p.Addr)
		}
	}
}

// checkTracking resolves track_interface and track_script as keepalived
// does: the instance's own interface and repeats are dropped, and scripts
// must exist.
func (b *builder) checkTracking(in *Instance) {
	var ifs []TrackInterface
	seen := map[string]Pos{}
	for _, t := range in.TrackInterfaces {
		switch prev, dup := seen[t.Name]; {
		case t.Name == in.Interface && t.Weight == 0:
			b.warnf(t.Pos, WarnAdjusted, "track_interface %s is the instance's own interface, tracked anyway: keepalived ignores this line", t.Name)
		case dup:
			b.warnf(t.Pos, WarnAdjusted, "track_interface %s is already tracked at %s: keepalived ignores this line", t.Name, rel(prev, t.Pos))
		default:
			seen[t.Name] = t.Pos
			ifs = append(ifs, t)
		}
	}
	in.TrackInterfaces = ifs
	in.TrackScripts = b.resolveScripts(in.TrackScripts, "vrrp_instance "+in.Name)
}

func (b *builder) resolveScripts(ts []TrackScript, owner string) []TrackScript {
	var out []TrackScript
	seen := map[string]Pos{}
	for _, t := range ts {
		s := b.cfg.Script(t.Name)
		if s == nil {
			why := "there is no vrrp_script of that name"
			if p, ok := b.dropped[t.Name]; ok {
				why = fmt.Sprintf("vrrp_script %s at %s has no script", t.Name, rel(p, t.Pos))
			}
			b.warnf(t.Pos, WarnAdjusted, "%s: track_script %s: %s; keepalived ignores it", owner, t.Name, why)
			continue
		}
		if prev, dup := seen[t.Name]; dup {
			b.warnf(t.Pos, WarnAdjusted, "%s: track_script %s is already tracked at %s: keepalived ignores this line", owner, t.Name, rel(prev, t.Pos))
			continue
		}
		seen[t.Name] = t.Pos
		if !t.WeightSet {
			t.Weight = s.Weight
		}
		if !t.reverseSet {
			t.Reverse = s.Reverse
		}
		out = append(out, t)
	}
	return out
}

func (b *builder) completeSyncGroups() {
	member := map[string]string{} // instance -> group
	for gi := range b.cfg.SyncGroups {
		g := &b.cfg.SyncGroups[gi]
		var ms []Member
		for _, m := range g.Members {
			in := b.cfg.Instance(m.Name)
			switch other, dup := member[m.Name]; {
			case in == nil:
				b.warnf(m.Pos, WarnAdjusted, "vrrp_sync_group %s: there is no vrrp_instance %s; keepalived ignores it", g.Name, m.Name)
				continue
			case dup:
				b.warnf(m.Pos, WarnAdjusted, "vrrp_sync_group %s: vrrp_instance %s is already in sync group %s; keepalived ignores it here", g.Name, m.Name, other)
				continue
			}
			member[m.Name] = g.Name
			in.SyncGroup = g.Name
			ms = append(ms, m)
			if !g.TrackingWeight {
				// keepalived 2.2.7 drops weighted track_scripts of sync
				// group members ("ignoring tracked script ... with weights
				// due to SYNC group") but keeps weighted track_interfaces
				// with weight 0.
				var kept []TrackScript
				for _, t := range in.TrackScripts {
					if t.Weight != 0 {
						b.warnf(t.Pos, WarnAdjusted, "track_script %s weight %d: vrrp_instance %s is in sync group %s, so keepalived ignores this weighted script (see sync_group_tracking_weight)", t.Name, t.Weight, in.Name, g.Name)
						continue
					}
					kept = append(kept, t)
				}
				in.TrackScripts = kept
				for i := range in.TrackInterfaces {
					if t := &in.TrackInterfaces[i]; t.Weight != 0 {
						b.warnf(t.Pos, WarnAdjusted, "track_interface %s weight %d: vrrp_instance %s is in sync group %s, so keepalived sets the weight to 0 (see sync_group_tracking_weight)", t.Name, t.Weight, in.Name, g.Name)
						t.Weight = 0
					}
				}
			}
		}
		g.Members = ms
		b.syncGroupStates(g)
		if len(ms) == 1 {
			b.warnf(g.Pos, WarnSuspicious, "vrrp_sync_group %s has only one instance: a sync group needs two or more to mean anything", g.Name)
		}
		g.TrackScripts = b.resolveScripts(g.TrackScripts, "vrrp_sync_group "+g.Name)
	}
}

// syncGroupStates applies keepalived 2.2.7's rule, seen in its -d dump:
// members of a sync group start as MASTER only if every member is an
// address owner (priority 255); otherwise all start as BACKUP.
func (b *builder) syncGroupStates(g *SyncGroup) {
	for _, m := range g.Members {
		if b.cfg.Instance(m.Name).Priority != 255 {
			for _, m := range g.Members {
				if in := b.cfg.Instance(m.Name); in.State == StateMaster {
					b.warnf(at(in, "state"), WarnAdjusted, "state MASTER: vrrp_instance %s is in sync group %s, whose members keepalived starts as BACKUP unless all have priority 255", in.Name, g.Name)
					in.State = StateBackup
				}
			}
			return
		}
	}
}

// at is where keyword k of in was written, or the instance's position.
func at(in *Instance, k string) Pos {
	if p, ok := in.Set[k]; ok {
		return p
	}
	return in.Pos
}

// checkDuplicateVRIDs finds instances that would share VRID, interface and
// family on one socket: their adverts are indistinguishable, and keepalived
// 2.2.7 stops ("exited with permanent error CONFIG").
func (b *builder) checkDuplicateVRIDs() {
	type key struct {
		ifname string
		fam    Family
		vrid   uint8
	}
	seen := map[key][]*Instance{}
	for i := range b.cfg.Instances {
		in := &b.cfg.Instances[i]
		if in.VRID == 0 {
			continue
		}
		k := key{in.Interface, in.Family, in.VRID}
		for _, o := range seen[k] {
			if sameChannel(in, o) {
				b.errorf(in.Set["virtual_router_id"], "vrrp_instance %s uses VRID %d with %s on %s, as vrrp_instance %s (%s) does: keepalived refuses to run both",
					in.Name, in.VRID, in.Family, orUnset(in.Interface), o.Name, rel(o.Pos, in.Pos))
				break
			}
		}
		seen[k] = append(seen[k], in)
	}
}

// sameChannel reports whether two instances with the same VRID, interface
// and family would receive each other's adverts: both multicast to the same
// group, or unicast with a common peer.
func sameChannel(a, c *Instance) bool {
	if a.Unicast() != c.Unicast() {
		return false
	}
	if !a.Unicast() {
		return a.McastGroup == c.McastGroup
	}
	for _, p := range a.UnicastPeers {
		for _, q := range c.UnicastPeers {
			if p.Addr == q.Addr {
				return true
			}
		}
	}
	return false
}
