// Package firewalld asks a running firewalld, read-only, over its D-Bus API
// (org.fedoraproject.FirewallD1) what it is configured to do: version,
// backend, default zone, the zone of an interface with its target, services,
// protocols and rich rules, the policies, and the direct rules. Read-only
// queries need no privilege.
package firewalld

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

const (
	busName    = "org.fedoraproject.FirewallD1"
	objectPath = dbus.ObjectPath("/org/fedoraproject/FirewallD1")
	configPath = dbus.ObjectPath("/org/fedoraproject/FirewallD1/config")
)

// Zone is a zone's runtime settings.
type Zone struct {
	Name       string   `json:"name"`
	Target     string   `json:"target"` // default, ACCEPT, DROP, %%REJECT%%
	Services   []string `json:"services"`
	Protocols  []string `json:"protocols"`
	Ports      []string `json:"ports"`
	RichRules  []string `json:"rich_rules"`
	Interfaces []string `json:"interfaces"`
	Sources    []string `json:"sources"`
}

// Policy is a policy's runtime settings (firewalld 0.9 and later).
type Policy struct {
	Name      string   `json:"name"`
	Target    string   `json:"target"`
	Priority  int32    `json:"priority"`
	Ingress   []string `json:"ingress_zones"`
	Egress    []string `json:"egress_zones"`
	Services  []string `json:"services"`
	Protocols []string `json:"protocols"`
	RichRules []string `json:"rich_rules"`
}

// DirectRule is a rule of the (deprecated) direct interface.
type DirectRule struct {
	IPV      string   `json:"ipv"` // ipv4, ipv6, eb
	Table    string   `json:"table"`
	Chain    string   `json:"chain"`
	Priority int32    `json:"priority"`
	Args     []string `json:"args"`
}

// String renders the rule as firewall-cmd takes it.
func (d DirectRule) String() string {
	return fmt.Sprintf("%s %s %s %d %s", d.IPV, d.Table, d.Chain, d.Priority, strings.Join(d.Args, " "))
}

// Info is what firewalld says.
type Info struct {
	Running     bool   `json:"running"`
	Version     string `json:"version,omitempty"`
	Backend     string `json:"backend,omitempty"` // nftables or iptables
	DefaultZone string `json:"default_zone,omitempty"`
	// Interface is the interface asked about and InterfaceZone its zone;
	// InterfaceDefault is set when the interface is bound to no zone and
	// so falls to the default zone.
	Interface        string       `json:"interface,omitempty"`
	InterfaceZone    *Zone        `json:"interface_zone,omitempty"`
	InterfaceDefault bool         `json:"interface_default,omitempty"`
	Policies         []Policy     `json:"policies,omitempty"`
	Direct           []DirectRule `json:"direct_rules,omitempty"`
}

// Options for Query.
type Options struct {
	// Conn is the bus to ask; nil connects to the system bus
	// (DBUS_SYSTEM_BUS_ADDRESS is honoured).
	Conn *dbus.Conn
	// Interface, if set, is the interface whose zone to report.
	Interface string
}

// Query asks firewalld. A firewalld that does not run is not an error:
// Info.Running is false.
func Query(ctx context.Context, opts Options) (*Info, error) {
	conn := opts.Conn
	if conn == nil {
		c, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("system D-Bus: %w", err)
		}
		defer c.Close()
		conn = c
	}
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, busName).Store(&has); err != nil {
		return nil, fmt.Errorf("D-Bus NameHasOwner: %w", err)
	}
	info := &Info{}
	if !has {
		return info, nil
	}
	obj := conn.Object(busName, objectPath)
	call := func(method string, out any, args ...any) error {
		if err := obj.CallWithContext(ctx, busName+"."+method, 0, args...).Store(out); err != nil {
			return fmt.Errorf("firewalld %s: %w", method, err)
		}
		return nil
	}
	var state string
	if v, err := obj.GetProperty(busName + ".state"); err == nil {
		state, _ = v.Value().(string)
	}
	info.Running = state == "RUNNING"
	if v, err := obj.GetProperty(busName + ".version"); err == nil {
		info.Version, _ = v.Value().(string)
	}
	if v, err := conn.Object(busName, configPath).GetProperty(busName + ".config.FirewallBackend"); err == nil {
		info.Backend, _ = v.Value().(string)
	}
	if !info.Running {
		return info, nil
	}
	if err := call("getDefaultZone", &info.DefaultZone); err != nil {
		return nil, err
	}
	if opts.Interface != "" {
		info.Interface = opts.Interface
		var zone string
		if err := call("zone.getZoneOfInterface", &zone, opts.Interface); err != nil {
			return nil, err
		}
		if zone == "" {
			zone, info.InterfaceDefault = info.DefaultZone, true
		}
		var settings map[string]dbus.Variant
		if err := call("zone.getZoneSettings2", &settings, zone); err != nil {
			return nil, err
		}
		z := zoneFrom(zone, settings)
		info.InterfaceZone = &z
	}
	var policies []string
	if err := call("policy.getPolicies", &policies); err != nil {
		var de dbus.Error
		if !errors.As(err, &de) {
			return nil, err
		}
		// firewalld before 0.9 has no policies.
	}
	sort.Strings(policies)
	for _, name := range policies {
		var settings map[string]dbus.Variant
		if err := call("policy.getPolicySettings", &settings, name); err != nil {
			return nil, err
		}
		info.Policies = append(info.Policies, policyFrom(name, settings))
	}
	var direct [][]any
	if err := obj.CallWithContext(ctx, busName+".direct.getAllRules", 0).Store(&direct); err != nil {
		return nil, fmt.Errorf("firewalld direct.getAllRules: %w", err)
	}
	for _, d := range direct {
		r, ok := directFrom(d)
		if !ok {
			return nil, fmt.Errorf("firewalld direct.getAllRules: unexpected rule %v", d)
		}
		info.Direct = append(info.Direct, r)
	}
	return info, nil
}

// strs reads a list of strings; [] when missing (JSON lists are never null).
func strs(m map[string]dbus.Variant, k string) []string {
	if s := strsOpt(m, k); s != nil {
		return s
	}
	return []string{}
}

// strsOpt reads a list of strings; nil when missing.
func strsOpt(m map[string]dbus.Variant, k string) []string {
	v, ok := m[k]
	if !ok {
		return nil
	}
	switch x := v.Value().(type) {
	case []string:
		if x == nil {
			x = []string{}
		}
		return x
	case [][]any:
		// ports: a(ss) of port and protocol
		out := []string{}
		for _, p := range x {
			parts := make([]string, len(p))
			for i, e := range p {
				parts[i] = fmt.Sprint(e)
			}
			out = append(out, strings.Join(parts, "/"))
		}
		return out
	}
	return nil
}

func str(m map[string]dbus.Variant, k string) string {
	if v, ok := m[k]; ok {
		s, _ := v.Value().(string)
		return s
	}
	return ""
}

// richRules reads rich rules, which firewalld's settings dictionaries call
// "rules_str" (and some versions "rich_rules").
func richRules(m map[string]dbus.Variant) []string {
	if r := strsOpt(m, "rules_str"); r != nil {
		return r
	}
	return strs(m, "rich_rules")
}

func zoneFrom(name string, m map[string]dbus.Variant) Zone {
	return Zone{Name: name, Target: str(m, "target"), Services: strs(m, "services"), Protocols: strs(m, "protocols"),
		Ports: strs(m, "ports"), RichRules: richRules(m), Interfaces: strs(m, "interfaces"), Sources: strs(m, "sources")}
}

func policyFrom(name string, m map[string]dbus.Variant) Policy {
	p := Policy{Name: name, Target: str(m, "target"), Ingress: strs(m, "ingress_zones"), Egress: strs(m, "egress_zones"),
		Services: strs(m, "services"), Protocols: strs(m, "protocols"), RichRules: richRules(m)}
	if v, ok := m["priority"]; ok {
		p.Priority, _ = v.Value().(int32)
	}
	return p
}

func directFrom(d []any) (DirectRule, bool) {
	if len(d) != 5 {
		return DirectRule{}, false
	}
	r := DirectRule{}
	var ok1, ok2, ok3, ok4, ok5 bool
	r.IPV, ok1 = d[0].(string)
	r.Table, ok2 = d[1].(string)
	r.Chain, ok3 = d[2].(string)
	r.Priority, ok4 = d[3].(int32)
	r.Args, ok5 = d[4].([]string)
	return r, ok1 && ok2 && ok3 && ok4 && ok5
}

// MarkDirectRules sets the owner of the ruleset's iptables rules that are
// firewalld direct rules: with the nftables backend they sit in
// iptables-nft's own chain (ip filter INPUT), with the iptables backend in
// firewalld's <chain>_direct. It returns how many rules it marked.
func (info *Info) MarkDirectRules(rs *ruleset.Ruleset) int {
	n := 0
	for _, d := range info.Direct {
		fam := map[string]ruleset.Family{"ipv4": ruleset.FamilyIP, "ipv6": ruleset.FamilyIP6}[d.IPV]
		if fam == "" {
			continue
		}
		want, err := signature(fam, d.Chain, d.Args)
		if err != nil {
			continue
		}
		for _, t := range rs.Tables {
			if t.Family != fam || t.Name != d.Table || t.Backend == ruleset.BackendNFT {
				continue
			}
			for _, c := range t.Chains {
				if c.Name != d.Chain && c.Name != d.Chain+"_direct" {
					continue
				}
				for _, r := range c.Rules {
					if got, err := signature(fam, c.Name, strings.Fields(strings.TrimPrefix(r.Text, "-A "+c.Name+" "))); err == nil && got == want {
						r.Owner = ruleset.OwnerFirewalld
						n++
					}
				}
			}
		}
	}
	return n
}

// signature is an order-independent rendering of an iptables rule's
// matches and target, for comparing a direct rule with a saved one.
func signature(fam ruleset.Family, chain string, args []string) (string, error) {
	line := "-A " + chain + " " + strings.Join(args, " ")
	doc := fmt.Sprintf("*filter\n:%s - [0:0]\n%s\nCOMMIT\n", chain, line)
	if ruleset.XtablesHooks("filter")[chain].Hook != "" {
		doc = fmt.Sprintf("*filter\n:%s ACCEPT [0:0]\n%s\nCOMMIT\n", chain, line)
	}
	rs, err := iptsave.Parse([]byte(doc), "direct rule", iptsave.Options{Backend: ruleset.BackendIptablesLegacy, Family: fam})
	if err != nil {
		return "", err
	}
	r := rs.Tables[0].Chains[0].Rules[0]
	parts := make([]string, len(r.Exprs))
	for i, x := range r.Exprs {
		parts[i] = x.String()
	}
	sort.Strings(parts)
	return strings.Join(parts, " | "), nil
}
