package keepalived

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/user"
)

// Host is the machine a configuration is checked against: what `keepalived
// -t` looks at besides the file.
type Host interface {
	// Interface returns the addresses of the named interface; ok is false
	// when there is no such interface.
	Interface(name string) (addrs []netip.Prefix, ok bool, err error)
	// UserExists reports whether a user of that name exists.
	UserExists(name string) (bool, error)
}

// SystemHost is the Host of the running process: its network namespace and
// user database.
func SystemHost() Host { return systemHost{} }

type systemHost struct{}

func (systemHost) Interface(name string) ([]netip.Prefix, bool, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		// The net package reports "no such network interface" without a
		// sentinel; any lookup failure means the interface is not usable.
		return nil, false, nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, true, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			bits, _ := n.Mask.Size()
			out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
		}
	}
	return out, true, nil
}

func (systemHost) UserExists(name string) (bool, error) {
	_, err := user.Lookup(name)
	if err == nil {
		return true, nil
	}
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return false, nil
	}
	return false, err
}

// Check reads the configuration at path and checks it against host, like
// `keepalived -t -f path`: the entry point of `vrrpdoctor run
// --check-config`. A nil host skips the checks that need the machine. The
// results are as for ParseFile, with the host's findings added.
func Check(path string, host Host, opts ...Option) (*Config, error) {
	cfg, err := ParseFile(path, opts...)
	if cfg == nil || host == nil {
		return cfg, err
	}
	secretWarnings(newOptions(opts).fsys, cfg, func(pos Pos, kind WarningKind, format string, args ...any) {
		cfg.Warnings = append(cfg.Warnings, Warning{Pos: pos, Kind: kind, Msg: fmt.Sprintf(format, args...)})
	})
	var errs ErrorList
	if l, ok := err.(ErrorList); ok {
		errs = l
	}
	errs = append(errs, cfg.CheckHost(host)...)
	if len(errs) == 0 {
		return cfg, nil
	}
	return cfg, errs
}

// CheckHost checks the configuration against a machine: that its
// interfaces exist (unless dynamic_interfaces), that an address owner
// (priority 255) holds its virtual addresses, that no unicast peer is one
// of the machine's own addresses, and that script users exist. Warnings
// are added to c.Warnings; the errors are returned.
func (c *Config) CheckHost(h Host) ErrorList {
	hc := hostCheck{cfg: c, host: h, ifs: map[string]hostIf{}}
	for i := range c.Instances {
		hc.instance(&c.Instances[i])
	}
	hc.scripts()
	sortWarnings(c.Warnings, c.Files)
	return hc.errs
}

type hostIf struct {
	addrs []netip.Prefix
	ok    bool
}

type hostCheck struct {
	cfg  *Config
	host Host
	ifs  map[string]hostIf
	errs ErrorList
}

func (hc *hostCheck) errorf(pos Pos, format string, args ...any) {
	hc.errs = append(hc.errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (hc *hostCheck) warnf(pos Pos, format string, args ...any) {
	hc.cfg.Warnings = append(hc.cfg.Warnings, Warning{Pos: pos, Kind: WarnSuspicious, Msg: fmt.Sprintf(format, args...)})
}

func (hc *hostCheck) iface(pos Pos, name string) hostIf {
	if hi, ok := hc.ifs[name]; ok {
		return hi
	}
	addrs, ok, err := hc.host.Interface(name)
	if err != nil {
		hc.errorf(pos, "interface %s: %v", name, err)
	}
	hi := hostIf{addrs, ok}
	hc.ifs[name] = hi
	return hi
}

// missing reports an interface that does not exist.
func (hc *hostCheck) missing(pos Pos, what, name string) {
	if hc.cfg.Global.DynamicInterfaces {
		hc.warnf(pos, "%s %s does not exist (yet; dynamic_interfaces is set)", what, name)
		return
	}
	hc.errorf(pos, "%s %s does not exist", what, name)
}

func hasAddr(addrs []netip.Prefix, a netip.Addr) bool {
	for _, p := range addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

func (hc *hostCheck) instance(in *Instance) {
	var own []netip.Prefix
	if in.Interface != "" {
		pos := in.Set["interface"]
		hi := hc.iface(pos, in.Interface)
		if !hi.ok {
			hc.missing(pos, "interface", in.Interface)
		}
		own = hi.addrs
	}
	for _, t := range in.TrackInterfaces {
		if hi := hc.iface(t.Pos, t.Name); !hi.ok {
			hc.missing(t.Pos, "track_interface", t.Name)
		}
	}
	for _, v := range in.VIPs {
		if v.Dev != "" {
			if hi := hc.iface(v.Pos, v.Dev); !hi.ok {
				hc.missing(v.Pos, "virtual_ipaddress "+v.Prefix.String()+" dev", v.Dev)
			}
		}
	}
	if in.Interface == "" || !hc.ifs[in.Interface].ok {
		return
	}
	if in.Priority == 255 {
		for _, v := range in.VIPs {
			if v.Dev == "" && !hasAddr(own, v.Addr()) {
				hc.warnf(v.Pos, "priority 255 says this router owns %s, but %s does not have that address", v.Addr(), in.Interface)
			}
		}
	}
	for _, p := range in.UnicastPeers {
		if hasAddr(own, p.Addr) {
			hc.warnf(p.Pos, "unicast_peer %s is an address of %s, this router itself", p.Addr, in.Interface)
		}
	}
	if in.SrcIP.IsValid() && !hasAddr(own, in.SrcIP) {
		k := "unicast_src_ip"
		if _, ok := in.Set[k]; !ok {
			k = "mcast_src_ip"
		}
		hc.warnf(in.Set[k], "%s %s is not an address of %s", k, in.SrcIP, in.Interface)
	}
	if in.Family == IPv4 && !in.SrcIP.IsValid() && !hasFamily(own, IPv4) {
		hc.warnf(in.Set["interface"], "%s has no IPv4 address to send VRRP adverts from", in.Interface)
	}
}

func hasFamily(addrs []netip.Prefix, f Family) bool {
	for _, p := range addrs {
		if familyOf(p.Addr()) == f {
			return true
		}
	}
	return false
}

// scripts checks that the users scripts run as exist: keepalived drops a
// notify script whose user is unknown, and refuses to start with an
// unknown script_user.
func (hc *hostCheck) scripts() {
	g := &hc.cfg.Global
	check := func(pos Pos, u, what string) {
		if u == "" {
			return
		}
		ok, err := hc.host.UserExists(u)
		switch {
		case err != nil:
			hc.errorf(pos, "%s: looking up user %s: %v", what, u, err)
		case !ok:
			hc.warnf(pos, "%s: user %s does not exist, keepalived will not run it", what, u)
		}
	}
	if g.ScriptUser != "" {
		if ok, err := hc.host.UserExists(g.ScriptUser); err == nil && !ok {
			hc.errorf(g.Set["script_user"], "script_user %s does not exist", g.ScriptUser)
		}
	}
	notify := func(n *Notify) {
		for _, c := range []*Command{n.Master, n.Backup, n.Fault, n.Stop, n.Any} {
			if c != nil {
				check(c.Pos, c.User, "notify script "+c.Argv[0])
			}
		}
	}
	for i := range hc.cfg.Instances {
		notify(&hc.cfg.Instances[i].Notify)
	}
	for i := range hc.cfg.SyncGroups {
		notify(&hc.cfg.SyncGroups[i].Notify)
	}
	for i := range hc.cfg.Scripts {
		s := &hc.cfg.Scripts[i]
		check(s.Set["user"], s.Command.User, "vrrp_script "+s.Name)
	}
	// Without script_user, keepalived runs scripts as keepalived_script if
	// that user exists, else as root.
	if g.ScriptSecure || g.ScriptUser != "" {
		return
	}
	cmds, what := hc.cfg.commands()
	for i, c := range cmds {
		if c.User != "" {
			continue
		}
		if ok, err := hc.host.UserExists("keepalived_script"); err == nil && !ok {
			hc.warnf(c.Pos, securityMsg+" (there is no keepalived_script user)", what[i])
		}
		return
	}
}
