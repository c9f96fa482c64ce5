package keepalived

import (
	"errors"
	"net/netip"
	"strings"
	"time"
)

// maxGarpDelay is keepalived's limit for garp delays, in seconds.
const maxGarpDelay = 4294

var errBadAddr = errors.New("bad address")

// maxRepeat bounds repeat counts (keepalived takes any unsigned int).
const maxRepeat = 1 << 30

func (b *builder) top(nodes []*node) {
	for _, n := range nodes {
		if len(n.words) == 0 {
			continue // a detached block, already reported
		}
		switch kw := n.keyword(); kw {
		case "global_defs":
			b.globalDefs(n)
		case "vrrp_instance":
			b.instance(n)
		case "vrrp_script":
			b.script(n)
		case "vrrp_sync_group":
			b.syncGroup(n)
		default:
			b.other(n, unusedTop, &b.cfg.Unused)
		}
	}
}

// other handles a keyword no handler took: unused if keepalived knows it
// in this block, unknown otherwise.
func (b *builder) other(n *node, known map[string]bool, unused *[]Directive) {
	kw := n.keyword()
	if known[kw] {
		*unused = append(*unused, directive(n))
		b.warnf(n.pos, WarnUnused, "%s: not used by vrrpdoctor", kw)
		return
	}
	b.warnf(n.pos, WarnUnknown, "unknown keyword %q ignored", kw)
}

func (b *builder) needBlock(n *node) bool {
	if !n.block {
		b.errorf(n.pos, "%s: missing '{' to open its block", n.keyword())
	}
	return n.block
}

// noBlock reports a block after a keyword that takes none.
func (b *builder) noBlock(n *node) bool {
	if n.block {
		b.errorf(n.open, "%s does not take a block", n.keyword())
		return false
	}
	return true
}

// children iterates a block's statements.
func children(n *node) []*node {
	out := make([]*node, 0, len(n.children))
	for _, c := range n.children {
		if len(c.words) > 0 {
			out = append(out, c)
		}
	}
	return out
}

func (b *builder) globalDefs(n *node) {
	g := &b.cfg.Global
	if !g.Pos.IsValid() {
		g.Pos = n.pos
	}
	if !b.needBlock(n) {
		return
	}
	for _, c := range children(n) {
		kw := c.keyword()
		if !handledGlobal[kw] {
			b.other(c, unusedGlobal, &g.Unused)
			continue
		}
		if !b.noBlock(c) {
			continue
		}
		g.Set[kw] = c.pos
		switch kw {
		case "router_id":
			if w, ok := b.value(c); ok {
				g.RouterID = w.text
			}
		case "vrrp_version":
			if v, ok := b.integer(c, 2, 3); ok {
				g.VRRPVersion = v
			}
		case "vrrp_mcast_group4", "vrrp_mcast_group6":
			a, ok := b.addr(c)
			if !ok {
				break
			}
			want := IPv4
			if kw == "vrrp_mcast_group6" {
				want = IPv6
			}
			switch {
			case familyOf(a) != want:
				b.errorf(c.pos, "%s %s: not an %s address", kw, a, want)
			case !a.IsMulticast():
				b.errorf(c.pos, "%s %s: not a multicast address", kw, a)
			case want == IPv4:
				g.McastGroup4 = a
			default:
				g.McastGroup6 = a
			}
		case "script_user":
			args := c.args()
			if len(args) == 0 {
				b.errorf(c.pos, "script_user: missing user name")
				break
			}
			g.ScriptUser = args[0].text
			if len(args) > 1 {
				g.ScriptGroup = args[1].text
			}
		case "enable_script_security":
			b.flag(c)
			g.ScriptSecure = true
		case "vrrp_strict":
			b.flag(c)
			g.Strict = true
		case "vrrp_garp_master_delay":
			if d, ok := b.seconds(c, 0, maxGarpDelay); ok {
				g.Garp.MasterDelay = d
			}
		case "vrrp_garp_master_repeat":
			if v, ok := b.repeat(c); ok {
				g.Garp.MasterRepeat = v
			}
		case "vrrp_garp_master_refresh":
			if d, ok := b.seconds(c, 0, maxGarpDelay); ok {
				g.Garp.MasterRefresh = d
			}
		case "vrrp_garp_master_refresh_repeat":
			if v, ok := b.repeat(c); ok {
				g.Garp.MasterRefreshRepeat = v
			}
		case "vrrp_garp_lower_prio_delay":
			if d, ok := b.seconds(c, 0, maxGarpDelay); ok {
				g.Garp.LowerPrioDelay = d
			}
		case "vrrp_garp_lower_prio_repeat":
			if v, ok := b.integer(c, 0, maxRepeat); ok {
				g.Garp.LowerPrioRepeat = v
			}
		case "vrrp_garp_interval":
			if d, ok := b.timer(c, 0, 1); ok {
				g.GarpInterval = d
			}
		case "vrrp_gna_interval":
			if d, ok := b.timer(c, 0, 1); ok {
				g.GnaInterval = d
			}
		case "vrrp_min_garp":
			if on, ok := b.optBool(c); ok && on {
				g.Garp = Garp{MasterRepeat: 1, LowerPrioRepeat: 1}
				for _, k := range []string{"vrrp_garp_master_delay", "vrrp_garp_master_repeat", "vrrp_garp_master_refresh",
					"vrrp_garp_master_refresh_repeat", "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat"} {
					g.Set[k] = c.pos
				}
			}
		case "vrrp_down_timer_adverts":
			if v, ok := b.integer(c, 1, 100); ok {
				g.DownTimerAdverts = v
			}
		case "vrrp_lower_prio_no_advert":
			if v, ok := b.optBool(c); ok {
				g.LowerPrioNoAdvert = v
			}
		case "vrrp_higher_prio_send_advert":
			if v, ok := b.optBool(c); ok {
				g.HigherPrioSendAdvert = v
			}
		case "vrrp_check_unicast_src":
			b.flag(c)
			g.CheckUnicastSrc = true
		case "vrrp_skip_check_adv_addr":
			b.flag(c)
			g.SkipCheckAdvAddr = true
		case "dynamic_interfaces":
			g.DynamicInterfaces = true
		}
	}
}

// repeat reads a garp repeat count; keepalived turns 0 into 1.
func (b *builder) repeat(n *node) (int, bool) {
	v, ok := b.integer(n, 0, maxRepeat)
	if ok && v == 0 {
		b.warnf(n.pos, WarnAdjusted, "%s 0: keepalived uses 1", n.keyword())
		v = 1
	}
	return v, ok
}

// instanceState is what reading an instance needs beyond the Instance:
// settings whose default depends on others, resolved by complete().
type instanceState struct {
	in        *Instance // while reading only
	familyPos Pos       // where the family was set
	accept    *bool
	strict    *bool
	lowerPrio *bool
	higher    *bool
	skipCheck *bool
}

func (b *builder) instance(n *node) {
	if !b.needBlock(n) {
		return
	}
	args := n.args()
	if len(args) != 1 {
		b.errorf(n.pos, "vrrp_instance needs exactly one name")
		return
	}
	name := args[0].text
	if prev := b.cfg.Instance(name); prev != nil {
		b.warnf(n.pos, WarnAdjusted, "vrrp_instance %s is already defined at %s: keepalived ignores this block", name, rel(prev.Pos, n.pos))
		return
	}
	in := Instance{
		Name: name, Pos: n.pos, Set: map[string]Pos{},
		Priority: 100, AdvertInt: time.Second, UnicastTTL: 255,
	}
	st := &instanceState{in: &in}
	for _, c := range children(n) {
		b.instanceKeyword(st, c)
	}
	st.in = nil // complete() works on the copy in cfg.Instances
	b.cfg.Instances = append(b.cfg.Instances, in)
	b.pending = append(b.pending, st)
}

func (b *builder) instanceKeyword(st *instanceState, c *node) {
	in := st.in
	kw := c.keyword()
	if !handledInstance[kw] {
		b.other(c, unusedInstance, &in.Unused)
		return
	}
	if blockKeywords[kw] {
		if !b.needBlock(c) {
			return
		}
	} else if !b.noBlock(c) {
		return
	}
	in.Set[kw] = c.pos
	switch kw {
	case "state":
		if w, ok := b.value(c); ok {
			switch w.text {
			case "MASTER":
				in.State = StateMaster
			case "BACKUP":
				in.State = StateBackup
			default:
				b.errorf(c.pos, "state %s: must be MASTER or BACKUP", w.text)
				delete(in.Set, kw)
			}
		}
	case "interface":
		if w, ok := b.value(c); ok {
			in.Interface = w.text
		}
	case "virtual_router_id":
		if v, ok := b.integer(c, 1, 255); ok {
			in.VRID = uint8(v)
		} else {
			delete(in.Set, kw)
		}
	case "priority":
		if v, ok := b.integer(c, 1, 255); ok {
			in.Priority = uint8(v)
		}
	case "advert_int":
		if d, ok := b.timer(c, 0.01, 255); ok {
			in.AdvertInt = d
		}
	case "version":
		if v, ok := b.integer(c, 2, 3); ok {
			in.Version = v
		} else {
			delete(in.Set, kw)
		}
	case "nopreempt":
		b.flag(c)
		in.Nopreempt = true
	case "preempt":
		b.flag(c)
		in.Nopreempt = false
	case "preempt_delay":
		if d, ok := b.timer(c, 0, 1000); ok {
			in.PreemptDelay = d
		}
	case "accept", "no_accept":
		b.flag(c)
		v := kw == "accept"
		st.accept = &v
	case "strict_mode":
		if v, ok := b.optBool(c); ok {
			st.strict = &v
		}
	case "lower_prio_no_advert":
		if v, ok := b.optBool(c); ok {
			st.lowerPrio = &v
		}
	case "higher_prio_send_advert":
		if v, ok := b.optBool(c); ok {
			st.higher = &v
		}
	case "skip_check_adv_addr":
		if v, ok := b.optBool(c); ok {
			st.skipCheck = &v
		}
	case "authentication":
		b.authentication(in, c)
	case "virtual_ipaddress", "virtual_ipaddress_excluded":
		for _, l := range children(c) {
			v, ok := b.vip(kw, l)
			if !ok {
				continue
			}
			if kw == "virtual_ipaddress_excluded" {
				in.ExcludedVIPs = append(in.ExcludedVIPs, v)
			} else if b.family(st, v.Addr(), l.pos, kw) {
				in.VIPs = append(in.VIPs, v)
			}
		}
	case "unicast_src_ip", "mcast_src_ip":
		if a, ok := b.addr(c); ok && b.family(st, a, c.pos, kw) {
			in.SrcIP = a
		}
	case "mcast_dst_ip":
		if a, ok := b.addr(c); ok {
			if !a.IsMulticast() {
				b.errorf(c.pos, "mcast_dst_ip %s: not a multicast address", a)
			} else if b.family(st, a, c.pos, kw) {
				in.McastGroup = a
			}
		}
	case "unicast_peer":
		for _, l := range children(c) {
			if p, ok := b.peer(l); ok && b.family(st, p.Addr, l.pos, kw) {
				in.UnicastPeers = append(in.UnicastPeers, p)
			}
		}
	case "unicast_ttl":
		if v, ok := b.integer(c, 0, 255); ok {
			in.UnicastTTL = v
		}
	case "check_unicast_src":
		b.flag(c)
		in.CheckUnicastSrc = true
	case "old_unicast_checksum":
		args := c.args()
		switch {
		case len(args) == 0:
			in.OldUnicastChecksum = UnicastChecksumOld
		case args[0].text == "never":
			in.OldUnicastChecksum = UnicastChecksumNever
		default:
			b.errorf(c.pos, "old_unicast_checksum %s: the only option is never", args[0].text)
		}
	case "native_ipv6":
		b.flag(c)
		if in.Family == IPv4 {
			b.warnf(c.pos, WarnAdjusted, "native_ipv6 in an IPv4 instance (family set at %s): ignored as keepalived does", rel(st.familyPos, c.pos))
		} else if in.Family == 0 {
			in.Family, st.familyPos = IPv6, c.pos
		}
	case "track_interface":
		for _, l := range children(c) {
			w, _, rev, ok := b.weight("track_interface "+l.keyword(), l.pos, l.args(), -254, 254)
			if !ok {
				continue
			}
			if w == 254 || w == -254 {
				b.warnf(l.pos, WarnAdjusted, "track_interface %s weight %d: keepalived uses %d", l.keyword(), w, w/254*253)
				w = w / 254 * 253
			}
			in.TrackInterfaces = append(in.TrackInterfaces, TrackInterface{Name: l.keyword(), Weight: w, Reverse: rev, Pos: l.pos})
		}
	case "track_script":
		in.TrackScripts = append(in.TrackScripts, b.trackScripts(c)...)
	case "dont_track_primary":
		b.flag(c)
		in.DontTrackPrimary = true
	case "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop":
		b.notify(&in.Notify, c)
	case "garp_master_delay":
		if d, ok := b.seconds(c, 0, maxGarpDelay); ok {
			in.Garp.MasterDelay = d
		} else {
			delete(in.Set, kw)
		}
	case "garp_master_repeat":
		if v, ok := b.repeat(c); ok {
			in.Garp.MasterRepeat = v
		} else {
			delete(in.Set, kw)
		}
	case "garp_master_refresh":
		if d, ok := b.seconds(c, 0, maxGarpDelay); ok {
			in.Garp.MasterRefresh = d
		} else {
			delete(in.Set, kw)
		}
	case "garp_master_refresh_repeat":
		if v, ok := b.repeat(c); ok {
			in.Garp.MasterRefreshRepeat = v
		} else {
			delete(in.Set, kw)
		}
	case "garp_lower_prio_delay":
		if d, ok := b.seconds(c, 0, maxGarpDelay); ok {
			in.Garp.LowerPrioDelay = d
		} else {
			delete(in.Set, kw)
		}
	case "garp_lower_prio_repeat":
		if v, ok := b.integer(c, 0, maxRepeat); ok {
			in.Garp.LowerPrioRepeat = v
		} else {
			delete(in.Set, kw)
		}
	case "down_timer_adverts":
		if v, ok := b.integer(c, 1, 100); ok {
			in.DownTimerAdverts = v
		} else {
			delete(in.Set, kw)
		}
	case "use_vmac":
		in.UseVMAC = true
		if args := c.args(); len(args) > 0 {
			in.VMACName = args[0].text
		}
	case "vmac_xmit_base":
		b.flag(c)
		in.VMACXmitBase = true
	}
}

func orUnset(s string) string {
	if s == "" {
		return "the instance's interface"
	}
	return s
}

// family checks a's family against the instance's, setting it if unset,
// as keepalived does with the first address of an instance. It reports
// whether a may be used.
func (b *builder) family(st *instanceState, a netip.Addr, pos Pos, kw string) bool {
	f := familyOf(a)
	if st.in.Family == 0 {
		st.in.Family, st.familyPos = f, pos
		return true
	}
	if f == st.in.Family {
		return true
	}
	hint := ""
	if kw == "virtual_ipaddress" {
		hint = " (addresses of the other family go in virtual_ipaddress_excluded)"
	}
	b.warnf(pos, WarnAdjusted, "%s %s: %s address in an %s instance (family set by %s): ignored as keepalived does%s",
		kw, a, f, st.in.Family, rel(st.familyPos, pos), hint)
	return false
}

func (b *builder) authentication(in *Instance, n *node) {
	in.Auth.Pos = n.pos
	typeSet := false
	for _, c := range children(n) {
		if !b.noBlock(c) {
			continue
		}
		switch c.keyword() {
		case "auth_type":
			w, ok := b.value(c)
			if !ok {
				continue
			}
			switch w.text {
			case "PASS":
				in.Auth.Type = AuthPass
			case "AH":
				in.Auth.Type = AuthAH
			default:
				b.errorf(c.pos, "auth_type %s: must be PASS or AH", w.text)
				continue
			}
			typeSet = true
			in.Set["auth_type"] = c.pos
		case "auth_pass":
			w, ok := b.value(c)
			if !ok {
				continue
			}
			in.Auth.Pass = w.text
			if len(w.text) > 8 {
				in.Auth.Pass = w.text[:8]
				b.warnf(c.pos, WarnAdjusted, "auth_pass is %d characters: keepalived uses only the first 8", len(w.text))
			}
			in.Set["auth_pass"] = c.pos
		default:
			b.warnf(c.pos, WarnUnknown, "unknown keyword %q in authentication ignored", c.keyword())
		}
	}
	if !typeSet {
		if _, ok := in.Set["auth_pass"]; ok {
			b.warnf(n.pos, WarnSuspicious, "authentication without auth_type: no authentication is used, auth_pass is ignored")
		}
		in.Auth.Pass = ""
	} else if _, ok := in.Set["auth_pass"]; !ok && in.Auth.Type == AuthPass {
		b.warnf(n.pos, WarnSuspicious, "auth_type PASS without auth_pass: the password is empty")
	}
}

var scopes = map[string]string{
	"global": "global", "0": "global", "site": "site", "200": "site", "link": "link", "253": "link",
	"host": "host", "254": "host", "nowhere": "nowhere", "255": "nowhere",
}

// vip reads one line of virtual_ipaddress(_excluded).
func (b *builder) vip(kw string, n *node) (VIP, bool) {
	if !b.noBlock(n) {
		return VIP{}, false
	}
	v := VIP{Scope: "global", Pos: n.pos}
	text := n.keyword()
	var err error
	if strings.Contains(text, "/") {
		v.Prefix, err = netip.ParsePrefix(text)
		if err == nil && v.Prefix.Addr().Zone() != "" {
			err = errBadAddr
		}
	} else {
		var a netip.Addr
		if a, err = parseAddr(text); err == nil {
			v.Prefix = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil {
		b.errorf(n.pos, "%s %s: not an IP address or prefix", kw, text)
		return VIP{}, false
	}
	v.Prefix = netip.PrefixFrom(v.Prefix.Addr().Unmap(), v.Prefix.Bits())
	brdPlus := false
	args := n.args()
	for i := 0; i < len(args); i++ {
		opt := args[i].text
		val := func() (string, bool) {
			if i+1 >= len(args) {
				b.errorf(args[i].pos, "%s %s: %s needs a value", kw, text, opt)
				return "", false
			}
			i++
			return args[i].text, true
		}
		switch opt {
		case "dev":
			if s, ok := val(); ok {
				v.Dev = s
			} else {
				return VIP{}, false
			}
		case "label":
			if s, ok := val(); ok {
				v.Label = s
			} else {
				return VIP{}, false
			}
		case "scope":
			s, ok := val()
			if !ok {
				return VIP{}, false
			}
			if v.Scope, ok = scopes[s]; !ok {
				b.errorf(args[i].pos, "%s %s: scope %s is not global, site, link, host or nowhere", kw, text, s)
				return VIP{}, false
			}
		case "brd", "broadcast":
			s, ok := val()
			if !ok {
				return VIP{}, false
			}
			switch s {
			case "+":
				brdPlus = true
			case "-":
			default:
				a, err := parseAddr(s)
				if err != nil || !a.Is4() || !v.Prefix.Addr().Is4() {
					b.errorf(args[i].pos, "%s %s: brd %s is not an IPv4 broadcast address", kw, text, s)
					return VIP{}, false
				}
				v.Broadcast = a
			}
		case "peer":
			s, ok := val()
			if !ok {
				return VIP{}, false
			}
			a, err := parseAddr(s)
			if err != nil || a.Is4() != v.Prefix.Addr().Is4() {
				b.errorf(args[i].pos, "%s %s: peer %s is not an address of the same family", kw, text, s)
				return VIP{}, false
			}
			v.Peer = a
			if v.Prefix.Bits() != v.Prefix.Addr().BitLen() {
				b.warnf(args[i].pos, WarnAdjusted, "%s %s: a prefix length cannot go with peer; keepalived drops it", kw, text)
				v.Prefix = netip.PrefixFrom(v.Prefix.Addr(), v.Prefix.Addr().BitLen())
			}
		case "no_track":
			v.NoTrack = true
		case "home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "use_vmac":
			v.Flags = append(v.Flags, opt)
		case "preferred_lft":
			if s, ok := val(); ok {
				v.Flags = append(v.Flags, "preferred_lft "+s)
			} else {
				return VIP{}, false
			}
		default:
			b.errorf(args[i].pos, "%s %s: unknown option %q", kw, text, opt)
			return VIP{}, false
		}
	}
	if brdPlus && v.Prefix.Addr().Is4() {
		v.Broadcast = lastAddr(v.Prefix)
	}
	return v, true
}

// lastAddr is the highest address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	if p.Bits() == 0 {
		host = ^uint32(0)
	}
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// peer reads one unicast_peer line.
func (b *builder) peer(n *node) (Peer, bool) {
	if !b.noBlock(n) {
		return Peer{}, false
	}
	a, err := parseAddr(n.keyword())
	if err != nil {
		b.errorf(n.pos, "unicast_peer %s: not an IP address", n.keyword())
		return Peer{}, false
	}
	p := Peer{Addr: a, MaxTTL: 255, Pos: n.pos}
	args := n.args()
	for i := 0; i < len(args); i += 2 {
		opt := args[i].text
		if opt != "min_ttl" && opt != "max_ttl" {
			b.errorf(args[i].pos, "unicast_peer %s: unknown option %q (expected min_ttl or max_ttl)", a, opt)
			return Peer{}, false
		}
		if i+1 >= len(args) {
			b.errorf(args[i].pos, "unicast_peer %s: %s needs a value", a, opt)
			return Peer{}, false
		}
		v, ok := b.integerWord("unicast_peer "+a.String()+" "+opt, args[i+1].pos, args[i+1].text, 0, 255)
		if !ok {
			return Peer{}, false
		}
		if opt == "min_ttl" {
			p.MinTTL = v
		} else {
			p.MaxTTL = v
		}
	}
	if p.MinTTL > p.MaxTTL {
		b.errorf(n.pos, "unicast_peer %s: min_ttl %d is above max_ttl %d", a, p.MinTTL, p.MaxTTL)
		return Peer{}, false
	}
	return p, true
}

// trackScripts reads a track_script block.
func (b *builder) trackScripts(n *node) []TrackScript {
	var out []TrackScript
	for _, l := range children(n) {
		if !b.noBlock(l) {
			continue
		}
		w, set, rev, revSet, ok := b.weightRev("track_script "+l.keyword(), l.pos, l.args(), -253, 253)
		if ok {
			out = append(out, TrackScript{Name: l.keyword(), Weight: w, WeightSet: set, Reverse: rev, Pos: l.pos, reverseSet: revSet})
		}
	}
	return out
}

// notify reads a notify* keyword; keepalived keeps the first of each.
func (b *builder) notify(nt *Notify, n *node) {
	var slot **Command
	switch n.keyword() {
	case "notify":
		slot = &nt.Any
	case "notify_master":
		slot = &nt.Master
	case "notify_backup":
		slot = &nt.Backup
	case "notify_fault":
		slot = &nt.Fault
	case "notify_stop":
		slot = &nt.Stop
	}
	cmd, ok := b.command(n, true)
	if !ok {
		return
	}
	if *slot != nil {
		b.warnf(n.pos, WarnAdjusted, "%s is already set at %s: keepalived ignores this one", n.keyword(), rel((*slot).Pos, n.pos))
		return
	}
	*slot = cmd
}

func (b *builder) script(n *node) {
	if !b.needBlock(n) {
		return
	}
	args := n.args()
	if len(args) != 1 {
		b.errorf(n.pos, "vrrp_script needs exactly one name")
		return
	}
	name := args[0].text
	if prev := b.cfg.Script(name); prev != nil {
		b.warnf(n.pos, WarnAdjusted, "vrrp_script %s is already defined at %s: keepalived ignores this block", name, rel(prev.Pos, n.pos))
		return
	}
	s := Script{Name: name, Pos: n.pos, Set: map[string]Pos{}, Interval: time.Second, Rise: 1, Fall: 1}
	for _, c := range children(n) {
		kw := c.keyword()
		if !handledScript[kw] {
			b.other(c, unusedScript, &s.Unused)
			continue
		}
		if !b.noBlock(c) {
			continue
		}
		s.Set[kw] = c.pos
		switch kw {
		case "script":
			if cmd, ok := b.command(c, false); ok {
				s.Command.Argv, s.Command.Pos = cmd.Argv, cmd.Pos
			}
		case "interval":
			if d, ok := b.seconds(c, 1, 1<<20); ok {
				s.Interval = d
			}
		case "timeout":
			if d, ok := b.seconds(c, 1, 1<<20); ok {
				s.Timeout = d
			}
		case "weight":
			args := c.args()
			if len(args) == 0 {
				b.errorf(c.pos, "weight: missing value")
				break
			}
			w, _, rev, ok := b.weight("vrrp_script "+name, c.pos, append([]word{{text: "weight", pos: c.pos}}, args...), -253, 253)
			if ok {
				s.Weight, s.Reverse = w, rev
			}
		case "rise":
			if v, ok := b.integer(c, 1, 1<<20); ok {
				s.Rise = v
			}
		case "fall":
			if v, ok := b.integer(c, 1, 1<<20); ok {
				s.Fall = v
			}
		case "user":
			args := c.args()
			if len(args) == 0 {
				b.errorf(c.pos, "user: missing user name")
				break
			}
			s.Command.User = args[0].text
			if len(args) > 1 {
				s.Command.Group = args[1].text
			}
		case "init_fail":
			b.flag(c)
			s.InitFail = true
		}
	}
	if len(s.Command.Argv) == 0 {
		b.warnf(n.pos, WarnAdjusted, "vrrp_script %s has no script: keepalived drops it", name)
		b.dropped[name] = n.pos
		return
	}
	b.cfg.Scripts = append(b.cfg.Scripts, s)
}

func (b *builder) syncGroup(n *node) {
	if !b.needBlock(n) {
		return
	}
	args := n.args()
	if len(args) != 1 {
		b.errorf(n.pos, "vrrp_sync_group needs exactly one name")
		return
	}
	name := args[0].text
	if prev := b.cfg.SyncGroup(name); prev != nil {
		b.warnf(n.pos, WarnAdjusted, "vrrp_sync_group %s is already defined at %s: keepalived ignores this block", name, rel(prev.Pos, n.pos))
		return
	}
	g := SyncGroup{Name: name, Pos: n.pos, Set: map[string]Pos{}}
	for _, c := range children(n) {
		kw := c.keyword()
		if !handledSyncGroup[kw] {
			b.other(c, unusedSyncGroup, &g.Unused)
			continue
		}
		if blockKeywords[kw] {
			if !b.needBlock(c) {
				continue
			}
		} else if !b.noBlock(c) {
			continue
		}
		g.Set[kw] = c.pos
		switch kw {
		case "group":
			if len(g.Members) > 0 {
				b.warnf(c.pos, WarnAdjusted, "vrrp_sync_group %s: group is already set: keepalived ignores this one", name)
				break
			}
			for _, l := range children(c) {
				for _, w := range l.words {
					g.Members = append(g.Members, Member{Name: w.text, Pos: w.pos})
				}
			}
		case "track_interface":
			for _, l := range children(c) {
				w, _, rev, ok := b.weight("track_interface "+l.keyword(), l.pos, l.args(), -253, 253)
				if ok {
					g.TrackInterfaces = append(g.TrackInterfaces, TrackInterface{Name: l.keyword(), Weight: w, Reverse: rev, Pos: l.pos})
				}
			}
		case "track_script":
			g.TrackScripts = append(g.TrackScripts, b.trackScripts(c)...)
		case "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop":
			b.notify(&g.Notify, c)
		case "sync_group_tracking_weight":
			b.flag(c)
			g.TrackingWeight = true
		}
	}
	b.cfg.SyncGroups = append(b.cfg.SyncGroups, g)
}
