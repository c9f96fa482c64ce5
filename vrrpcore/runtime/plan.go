package runtime

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/scripts"
)

// plan is everything needed to run one vrrp_instance, resolved against
// the host: the state machine's configuration and the I/O around it.
type plan struct {
	name   string
	pos    keepalived.Pos
	rc     router.Config
	ifname string
	family int
	// group is the multicast group adverts go to; invalid in unicast mode.
	group netip.Addr
	// vips maps each virtual address (advertised or excluded) to how it
	// is configured.
	vips map[netip.Addr]vip
	// garpInterval and gnaInterval space the messages of one
	// announcement burst on an interface (vrrp_garp_interval,
	// vrrp_gna_interval).
	garpInterval, gnaInterval time.Duration
	// owner is set for the address owner (priority 255), whose virtual
	// addresses are its own: those it found configured at startup are
	// left in place when it stops.
	owner bool
	// noAccept is set without Accept_Mode (no_accept, vrrp_strict) for a
	// non-owner: as Master it drops packets to its virtual addresses.
	noAccept bool
	// unicastTTL is the TTL / hop limit of unicast adverts (unicast_ttl);
	// multicast adverts always go with 255.
	unicastTTL uint8
	// fixedSrc is set with unicast_src_ip: the source address does not
	// follow the interface's addresses (source.go).
	fixedSrc bool
	// vmac is use_vmac's macvlan; nil without it.
	vmac *vmacPlan
	// sync is the instance's vrrp_sync_group, shared by its members; nil
	// if none (or the group has a single member, which keepalived drops).
	sync *groupPlan

	notify notifyPlan
	tracks []trackRef
}

// notifyPlan holds an instance's prepared notify scripts.
type notifyPlan struct {
	master, backup, fault, stop, any *scripts.Command
}

// trackRef is one object an instance tracks.
type trackRef struct {
	script  string // vrrp_script name, or "" for an interface
	iface   string
	weight  int
	reverse bool
}

// scriptPlan is a prepared vrrp_script.
type scriptPlan struct {
	name     string
	cmd      *scripts.Command
	interval time.Duration
	timeout  time.Duration
	rise     int
	fall     int
	initFail bool
}

func (s *scriptPlan) equal(o *scriptPlan) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.name == o.name && slices.Equal(s.cmd.Argv, o.cmd.Argv) && s.cmd.UID == o.cmd.UID &&
		s.cmd.GID == o.cmd.GID && s.interval == o.interval && s.timeout == o.timeout &&
		s.rise == o.rise && s.fall == o.fall && s.initFail == o.initFail
}

// planner turns a keepalived configuration into plans, collecting every
// error with its position and every warning.
type planner struct {
	cfg      *keepalived.Config
	host     netHost
	errs     keepalived.ErrorList
	warnings []keepalived.Warning
	scripts  map[string]*scriptPlan
	groups   map[string]*groupPlan
	vmacs    map[string]string   // use_vmac interface -> instance
	vips     map[netip.Addr]bool // every instance's virtual addresses, excluded ones too
}

// isVIP says whether ip is a virtual address of any instance: never a
// source address, whichever instance holds it now.
func (pl *planner) isVIP(ip netip.Addr) bool {
	if pl.vips == nil {
		pl.vips = map[netip.Addr]bool{}
		for i := range pl.cfg.Instances {
			in := &pl.cfg.Instances[i]
			for _, v := range append(slices.Clone(in.VIPs), in.ExcludedVIPs...) {
				pl.vips[v.Addr().Unmap()] = true
			}
		}
	}
	return pl.vips[ip]
}

func (pl *planner) errorf(pos keepalived.Pos, format string, args ...any) {
	pl.errs = append(pl.errs, &keepalived.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (pl *planner) warnf(pos keepalived.Pos, format string, args ...any) {
	pl.warnings = append(pl.warnings, keepalived.Warning{Pos: pos, Kind: keepalived.WarnSuspicious, Msg: fmt.Sprintf(format, args...)})
}

// makePlans plans every instance of cfg. The error, if not nil, is a
// keepalived.ErrorList.
func makePlans(cfg *keepalived.Config, host netHost) ([]*plan, map[string]*scriptPlan, []keepalived.Warning, error) {
	pl := &planner{cfg: cfg, host: host, scripts: map[string]*scriptPlan{}, groups: map[string]*groupPlan{}, vmacs: map[string]string{}}
	if len(cfg.Instances) == 0 {
		pl.errorf(keepalived.Pos{File: mainFile(cfg), Line: 1, Col: 1}, "no vrrp_instance to run")
	}
	// Two instances with one VRID on one interface and family are refused
	// by the configuration reader, as keepalived refuses them.
	var plans []*plan
	for i := range cfg.Instances {
		if p := pl.plan(&cfg.Instances[i]); p != nil {
			plans = append(plans, p)
		}
	}
	if len(pl.errs) > 0 {
		return nil, nil, pl.warnings, pl.errs
	}
	return plans, pl.scripts, pl.warnings, nil
}

func mainFile(cfg *keepalived.Config) string {
	if len(cfg.Files) > 0 {
		return cfg.Files[0]
	}
	return "keepalived.conf"
}

// at returns where keyword was written in inst, else the instance itself.
func at(inst *keepalived.Instance, keyword string) keepalived.Pos {
	if p, ok := inst.Set[keyword]; ok {
		return p
	}
	return inst.Pos
}

func (pl *planner) plan(inst *keepalived.Instance) *plan {
	nerr := len(pl.errs)
	family := int(inst.Family)
	p := &plan{
		name:   inst.Name,
		pos:    inst.Pos,
		ifname: inst.Interface,
		family: family,
		vips:   map[netip.Addr]vip{},
		owner:  inst.Priority == router.OwnerPriority,
	}
	if inst.Interface == "" {
		pl.errorf(inst.Pos, "vrrp_instance %s: no interface", inst.Name)
		return nil
	}
	if _, err := pl.host.link(inst.Interface); err != nil {
		pl.errorf(at(inst, "interface"), "vrrp_instance %s: %v", inst.Name, err)
		return nil
	}
	if family != 4 && family != 6 {
		pl.errorf(inst.Pos, "vrrp_instance %s: no virtual address, so no address family", inst.Name)
		return nil
	}
	rc := router.Config{
		VRID:                   inst.VRID,
		Version:                uint8(inst.Version),
		Family:                 family,
		Priority:               inst.Priority,
		AdvertInterval:         inst.AdvertInt,
		NoPreempt:              inst.Nopreempt,
		PreemptDelay:           inst.PreemptDelay,
		Accept:                 inst.Accept,
		Interface:              inst.Interface,
		StartAsMaster:          inst.State == keepalived.StateMaster && !inst.Strict,
		DownTimerAdverts:       inst.DownTimerAdverts,
		LowerPrioNoAdvert:      inst.LowerPrioNoAdvert,
		HigherPrioSendAdvert:   inst.HigherPrioSendAdvert,
		Strict:                 inst.Strict,
		DiscardAddrMismatch:    true,
		AcceptAnyUnicastSource: !inst.CheckUnicastSrc,
		GARP: router.GARPConfig{
			MasterRepeat:        inst.Garp.MasterRepeat,
			MasterDelay:         inst.Garp.MasterDelay,
			MasterRefresh:       inst.Garp.MasterRefresh,
			MasterRefreshRepeat: inst.Garp.MasterRefreshRepeat,
			LowerPrioRepeat:     inst.Garp.LowerPrioRepeat,
			LowerPrioDelay:      inst.Garp.LowerPrioDelay,
		},
	}
	switch inst.Auth.Type {
	case keepalived.AuthNone:
	case keepalived.AuthPass:
		rc.AuthType = vrrpcore.AuthSimple
		copy(rc.AuthData[:], inst.Auth.Pass)
	default:
		pl.errorf(inst.Auth.Pos, "vrrp_instance %s: auth_type %v is not supported by vrrpdoctor (only PASS)", inst.Name, inst.Auth.Type)
	}
	if inst.UseVMAC {
		p.vmac = &vmacPlan{name: inst.VMACName, base: inst.Interface, mac: virtualMAC(family, inst.VRID),
			family: family, xmitBase: inst.VMACXmitBase}
		if p.vmac.name == "" {
			p.vmac.name = vmacName(inst.VRID)
		}
		if len(p.vmac.name) >= unix.IFNAMSIZ {
			pl.errorf(at(inst, "use_vmac"), "vrrp_instance %s: use_vmac interface name %q is longer than %d characters", inst.Name, p.vmac.name, unix.IFNAMSIZ-1)
		}
		if other, dup := pl.vmacs[p.vmac.name]; dup {
			pl.errorf(at(inst, "use_vmac"), "vrrp_instance %s: use_vmac interface %s is vrrp_instance %s's already: give one a name (use_vmac NAME)", inst.Name, p.vmac.name, other)
		}
		pl.vmacs[p.vmac.name] = inst.Name
		if inst.Unicast() && !p.vmac.xmitBase {
			// keepalived.conf(5): "If using use_vmac with unicast peers,
			// vmac_xmit_base must be set."
			pl.warnf(at(inst, "use_vmac"), "vrrp_instance %s: use_vmac with unicast peers: adverts go from %s (vmac_xmit_base)", inst.Name, inst.Interface)
			p.vmac.xmitBase = true
		}
	}
	for _, v := range inst.VIPs {
		rc.VIPs = append(rc.VIPs, v.Addr())
		p.addVIP(pl, inst, v)
	}
	for _, v := range inst.ExcludedVIPs {
		// Either family, as keepalived allows.
		rc.ExcludedVIPs = append(rc.ExcludedVIPs, v.Addr())
		p.addVIP(pl, inst, v)
	}
	if inst.Unicast() {
		for _, peer := range inst.UnicastPeers {
			rc.UnicastPeers = append(rc.UnicastPeers, peer.Addr)
			if peer.MinTTL != 0 || peer.MaxTTL != 255 {
				if rc.UnicastPeerTTL == nil {
					rc.UnicastPeerTTL = map[netip.Addr]router.TTLRange{}
				}
				rc.UnicastPeerTTL[peer.Addr] = router.TTLRange{Min: uint8(peer.MinTTL), Max: uint8(peer.MaxTTL)}
			}
		}
		p.unicastTTL = 255
		if inst.UnicastTTL > 0 && inst.UnicastTTL <= 255 {
			p.unicastTTL = uint8(inst.UnicastTTL)
		}
		switch inst.OldUnicastChecksum {
		case keepalived.UnicastChecksumOld:
			rc.OldUnicastChecksum = router.OldChecksumAlways
		case keepalived.UnicastChecksumNever:
			rc.OldUnicastChecksum = router.OldChecksumNever
		}
	} else {
		p.group = inst.McastGroup
		if !p.group.IsValid() {
			p.group = vrrpcore.GroupIPv4
			if family == 6 {
				p.group = vrrpcore.GroupIPv6
			}
		}
	}
	if inst.SrcIP.IsValid() {
		rc.PrimaryAddr = inst.SrcIP.Unmap()
		p.fixedSrc = true
	} else if a, err := pl.host.primaryAddr(inst.Interface, family, pl.isVIP); err != nil {
		pl.errorf(at(inst, "interface"), "vrrp_instance %s: %v", inst.Name, err)
	} else {
		rc.PrimaryAddr = a
	}
	// Adverts are accepted from the interface the socket is bound to.
	rc.Interface = p.sockIf()
	// Without Accept_Mode a Master that is not the owner drops traffic to
	// its addresses (RFC 5798 §6.4.3), through the AcceptTable.
	p.noAccept = !inst.Accept && !p.owner
	p.garpInterval, p.gnaInterval = pl.cfg.Global.GarpInterval, pl.cfg.Global.GnaInterval
	p.notify = pl.notify(inst.Notify)
	p.tracks = pl.tracks(inst)
	if g := pl.cfg.SyncGroup(inst.SyncGroup); g != nil && len(g.Members) >= 2 {
		p.sync = pl.group(g)
		// The group's tracked objects count for every member.
		p.tracks = append(p.tracks, pl.trackRefs(g.TrackInterfaces, g.TrackScripts)...)
	}
	if err := rc.Validate(); err != nil {
		pl.errorf(inst.Pos, "vrrp_instance %s: %v", inst.Name, err)
	}
	p.rc = rc
	if len(pl.errs) > nerr {
		return nil
	}
	return p
}

func (p *plan) addVIP(pl *planner, inst *keepalived.Instance, v keepalived.VIP) {
	dev := v.Dev
	switch {
	case p.vmac != nil && (dev == "" || dev == inst.Interface) && v.Addr().Is4() == (p.family == 4):
		// use_vmac: on the macvlan, which does not exist yet.
		dev = p.vmac.name
	case dev == "":
		dev = inst.Interface
	default:
		if _, err := pl.host.link(dev); err != nil {
			pl.errorf(v.Pos, "virtual address %v: %v", v.Prefix, err)
		}
	}
	if _, dup := p.vips[v.Addr()]; dup {
		pl.errorf(v.Pos, "vrrp_instance %s: virtual address %v listed twice", inst.Name, v.Addr())
		return
	}
	nv := vip{VIP: v, dev: dev}
	if _, err := nv.netlinkAddr(); err != nil {
		pl.errorf(v.Pos, "%v", err)
	}
	p.vips[v.Addr()] = nv
}

// command prepares one script with the global script_user and security.
func (pl *planner) command(c *keepalived.Command, what string) *scripts.Command {
	if c == nil {
		return nil
	}
	user, group := c.User, c.Group
	if user == "" {
		user, group = pl.cfg.Global.ScriptUser, pl.cfg.Global.ScriptGroup
	}
	cmd, warnings, err := scripts.Prepare(scripts.Spec{Argv: c.Argv, User: user, Group: group, Secure: pl.cfg.Global.ScriptSecure})
	if err != nil {
		pl.errorf(c.Pos, "%s: %v", what, err)
		return nil
	}
	for _, w := range warnings {
		pl.warnf(c.Pos, "%s: %s", what, w)
	}
	return cmd
}

func (pl *planner) notify(n keepalived.Notify) notifyPlan {
	return notifyPlan{
		master: pl.command(n.Master, "notify_master"),
		backup: pl.command(n.Backup, "notify_backup"),
		fault:  pl.command(n.Fault, "notify_fault"),
		stop:   pl.command(n.Stop, "notify_stop"),
		any:    pl.command(n.Any, "notify"),
	}
}

func (pl *planner) tracks(inst *keepalived.Instance) []trackRef {
	var refs []trackRef
	if !inst.DontTrackPrimary {
		refs = append(refs, trackRef{iface: inst.Interface})
	}
	return append(refs, pl.trackRefs(inst.TrackInterfaces, inst.TrackScripts)...)
}

// sockIf is the interface adverts are sent and received on: use_vmac's
// macvlan unless vmac_xmit_base, else the instance's interface.
func (p *plan) sockIf() string {
	if p.vmac != nil && !p.vmac.xmitBase {
		return p.vmac.name
	}
	return p.ifname
}

// group returns the plan of sync group g, made once.
func (pl *planner) group(g *keepalived.SyncGroup) *groupPlan {
	if gp, ok := pl.groups[g.Name]; ok {
		return gp
	}
	gp := &groupPlan{name: g.Name, notify: pl.notify(g.Notify)}
	for _, m := range g.Members {
		gp.members = append(gp.members, m.Name)
	}
	slices.Sort(gp.members)
	pl.groups[g.Name] = gp
	return gp
}

// sameGroup reports whether two plans are in the same group (or none).
func sameGroup(a, b *groupPlan) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.name == b.name && slices.Equal(a.members, b.members)
}

// trackRefs resolves the tracked interfaces and scripts of an instance or
// sync group.
func (pl *planner) trackRefs(ifaces []keepalived.TrackInterface, scripts []keepalived.TrackScript) []trackRef {
	var refs []trackRef
	for _, ti := range ifaces {
		if _, err := pl.host.link(ti.Name); err != nil && !pl.cfg.Global.DynamicInterfaces {
			pl.errorf(ti.Pos, "track_interface: %v", err)
			continue
		}
		refs = append(refs, trackRef{iface: ti.Name, weight: ti.Weight, reverse: ti.Reverse})
	}
	for _, ts := range scripts {
		sp := pl.script(ts)
		if sp == nil {
			continue
		}
		refs = append(refs, trackRef{script: ts.Name, weight: ts.Weight, reverse: ts.Reverse})
	}
	return refs
}

func (pl *planner) script(ts keepalived.TrackScript) *scriptPlan {
	if sp, ok := pl.scripts[ts.Name]; ok {
		return sp
	}
	s := pl.cfg.Script(ts.Name)
	if s == nil {
		pl.errorf(ts.Pos, "track_script %s: no vrrp_script of that name", ts.Name)
		return nil
	}
	cmd := pl.command(&s.Command, "vrrp_script "+s.Name)
	if cmd == nil {
		return nil
	}
	sp := &scriptPlan{
		name:     s.Name,
		cmd:      cmd,
		interval: s.Interval,
		timeout:  s.Timeout,
		rise:     max(s.Rise, 1),
		fall:     max(s.Fall, 1),
		initFail: s.InitFail,
	}
	if sp.interval <= 0 {
		sp.interval = time.Second
	}
	if sp.timeout <= 0 {
		// keepalived's default: a script may run for its whole interval.
		sp.timeout = sp.interval
	}
	pl.scripts[ts.Name] = sp
	return sp
}
