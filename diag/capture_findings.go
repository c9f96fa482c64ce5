package diag

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// Stable IDs of the findings a capture can show.
const (
	IDSplitBrain       = "split-brain"
	IDTTLNot255        = "ttl-not-255"
	IDChecksumMismatch = "checksum-mismatch"
	IDVersionMismatch  = "version-mismatch"
	IDIntervalMismatch = "interval-mismatch"
	IDAuthMismatch     = "auth-mismatch"
	IDVIPMismatch      = "vip-mismatch"
	IDMasterResigned   = "master-resigned"
	IDMalformedAdverts = "malformed-adverts"
	IDNoAdverts        = "no-adverts"
)

// Subject names a group for people: "VRID 51 (VRRPv2, IPv4)", with the VLAN
// when tagged.
func (k GroupKey) Subject() string {
	s := fmt.Sprintf("VRID %d (VRRPv%d, IPv%d)", k.VRID, k.Version, k.Family)
	if k.VLAN != 0 {
		s += fmt.Sprintf(" on VLAN %d", k.VLAN)
	}
	return s
}

// captureFindings derives the findings from a report's groups and files.
func captureFindings(r *CaptureReport) []Finding {
	var fs []Finding
	for i := range r.Groups {
		g := &r.Groups[i]
		fs = append(fs, splitBrain(g)...)
		fs = append(fs, ttlNot255(g)...)
		fs = append(fs, checksumMismatch(g)...)
		fs = append(fs, intervalMismatch(g)...)
		fs = append(fs, authMismatch(g)...)
		fs = append(fs, vipMismatch(g)...)
		fs = append(fs, masterResigned(g)...)
	}
	fs = append(fs, versionMismatch(r.Groups)...)
	fs = append(fs, fileFindings(r)...)
	return fs
}

// FormatDuration prints a duration for people: "1s", "1.002s", "350ms",
// "12µs", rounded to the millisecond from one second up, to 10µs below.
func FormatDuration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	switch {
	case d == 0:
		return "0s"
	case d >= time.Second:
		return sign + strconv.FormatFloat(d.Round(time.Millisecond).Seconds(), 'f', -1, 64) + "s"
	case d >= time.Millisecond:
		return sign + strconv.FormatFloat(float64(d.Round(10*time.Microsecond))/1e6, 'f', -1, 64) + "ms"
	default:
		return sign + d.Round(time.Microsecond).String()
	}
}

// FormatTime prints a capture time for people, in UTC with milliseconds.
func FormatTime(t time.Time) string {
	return t.UTC().Format("15:04:05.000")
}

func addrList(as []netip.Addr) string {
	if len(as) == 0 {
		return "none"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func sortedAddrs(as []netip.Addr) []netip.Addr {
	s := slices.Clone(as)
	slices.SortFunc(s, netip.Addr.Compare)
	return slices.Compact(s)
}

// firewallFix says how to let adverts of the family in: with vrrpdoctor on
// each node, which knows the firewall in use, or by hand.
func firewallFix(family uint8) string {
	const lead = `On every node, run vrrpdoctor check (it names the rule that drops the adverts) and vrrpdoctor fix-firewall --apply (it adds the narrow rule to the firewall the node runs). `
	if family == 6 {
		return lead + `By hand, let VRRP (IP protocol 112) to ff02::12 in where the drop is — an accept ends only its own base chain, so it must be in the chain that drops (firewalld: in firewalld), e.g.
  nft insert rule inet filter input meta nfproto ipv6 meta l4proto 112 ip6 daddr ff02::12 accept
  firewalld: firewall-cmd --permanent --add-rich-rule='rule family="ipv6" destination address="ff02::12" protocol value="vrrp" accept' && firewall-cmd --reload`
	}
	return lead + `By hand, let VRRP (IP protocol 112) to 224.0.0.18 in where the drop is — an accept ends only its own base chain, so it must be in the chain that drops (firewalld: in firewalld), e.g.
  nft insert rule inet filter input ip protocol 112 ip daddr 224.0.0.18 accept
  iptables -I INPUT -p 112 -d 224.0.0.18 -j ACCEPT
  firewalld: firewall-cmd --permanent --add-rich-rule='rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept' && firewall-cmd --reload`
}

func splitBrain(g *Group) []Finding {
	var pairs []Overlap
	involved := map[netip.Addr]bool{}
	for _, o := range g.Overlaps {
		if min(o.AdvertsA, o.AdvertsB) >= splitBrainMinOverlaps {
			pairs = append(pairs, o)
			involved[o.A], involved[o.B] = true, true
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	var names []string
	var ev []Evidence
	for _, s := range g.Sources {
		if !involved[s.Address] {
			continue
		}
		names = append(names, fmt.Sprintf("%s (priority %d)", s.Address, s.Priority))
		ev = append(ev, Evidence{Label: "sender " + s.Address.String(),
			Value: fmt.Sprintf("priority %d, %d adverts %s–%s, virtual addresses %s", s.Priority, s.Packets, FormatTime(s.First), FormatTime(s.Last), addrList(s.VIPs))})
	}
	for _, o := range pairs {
		ev = append(ev, Evidence{Label: fmt.Sprintf("overlap %s / %s", o.A, o.B),
			Value: fmt.Sprintf("%d and %d adverts sent within %s of the other's, %s–%s (%s)",
				o.AdvertsA, o.AdvertsB, FormatDuration(o.Window), FormatTime(o.First), FormatTime(o.Last), FormatDuration(o.Last.Sub(o.First)))})
	}
	summary := fmt.Sprintf("%s both advertise %s: both act as master", strings.Join(names, " and "), g.Subject())
	if len(names) > 2 {
		summary = fmt.Sprintf("%d senders advertise %s at the same time: %s", len(names), g.Subject(), strings.Join(names, ", "))
	}
	return []Finding{{
		ID: IDSplitBrain, Severity: SeverityCritical, Subject: g.Subject(), Summary: summary, Evidence: ev,
		Explanation: `In VRRP only the master sends adverts; a backup stays silent as long as it hears the master. ` +
			`Here several routers keep advertising the same virtual router at the same time, so each believes it is master and each holds the virtual addresses: ` +
			`traffic for them goes to whichever router answered ARP or neighbour discovery last. ` +
			`Usually each router does not receive the other's adverts: a firewall on the receiving host drops IP protocol 112 ` +
			`(tcpdump sees packets before the firewall, so a capture that shows both routers proves nothing about what the VRRP daemon receives), ` +
			`multicast is filtered between the hosts, or the routers discard each other's adverts because of a version, interval, authentication or TTL mismatch ` +
			`(see the other findings for this virtual router).`,
		Fix: firewallFix(g.Family) + "\nThen correct any mismatch reported for this virtual router.",
	}}
}

func ttlNot255(g *Group) []Finding {
	var fs []Finding
	for _, s := range g.Sources {
		var bad []string
		for _, t := range s.TTLs {
			if t != 255 {
				bad = append(bad, strconv.Itoa(int(t)))
			}
		}
		if len(bad) == 0 {
			continue
		}
		field := "TTL"
		if g.Family == 6 {
			field = "hop limit"
		}
		all := make([]string, len(s.TTLs))
		for i, t := range s.TTLs {
			all[i] = strconv.Itoa(int(t))
		}
		fs = append(fs, Finding{
			ID: IDTTLNot255, Severity: SeverityWarning, Subject: g.Subject(),
			Summary: fmt.Sprintf("adverts from %s arrive with %s %s instead of 255", s.Address, field, strings.Join(bad, ", ")),
			Evidence: []Evidence{
				{Label: "sender", Value: s.Address.String()},
				{Label: field + " values seen", Value: strings.Join(all, ", ")},
				{Label: "adverts", Value: strconv.FormatUint(s.Packets, 10)},
			},
			Explanation: `A VRRP router sends every advert with ` + field + ` 255 and receivers must discard adverts with any other value ` +
				`(RFC 3768 §7.1, RFC 5798 §7.1): it proves the advert was not forwarded by a router. ` +
				`A lower value means a router on the path forwarded it (the sender is not on the same link) or something rewrites the header (NAT, a tunnel, a mangle rule). ` +
				`Receivers that drop these adverts take over as master themselves.`,
			Fix: `Keep VRRP peers on one layer-2 segment (same VLAN or bridge), or find the device or rule on the path that changes the ` + field +
				` (e.g. nft list ruleset | grep -E 'ttl|hoplimit'). With keepalived's unicast_peer across a routed path, accept the lower value explicitly: unicast_peer { <peer> min_ttl <n> }.`,
		})
	}
	return fs
}

func checksumMismatch(g *Group) []Finding {
	var fs []Finding
	for _, s := range g.Sources {
		if s.ChecksumErrors == 0 {
			continue
		}
		fs = append(fs, Finding{
			ID: IDChecksumMismatch, Severity: SeverityWarning, Subject: g.Subject(),
			Summary: fmt.Sprintf("%d of %d adverts from %s carry a wrong checksum", s.ChecksumErrors, s.Packets, s.Address),
			Evidence: []Evidence{
				{Label: "sender", Value: s.Address.String()},
				{Label: "bad checksums", Value: fmt.Sprintf("%d of %d adverts", s.ChecksumErrors, s.Packets)},
			},
			Explanation: `Receivers discard adverts whose checksum is wrong, and then take over as master. ` +
				`A checksum that matches none of the known variants comes from corruption on the path or from an implementation that computes it differently ` +
				`(VRRPv3 sums an IP pseudo-header plus the message; VRRPv2, and some VRRPv3 implementations over IPv4, sum the message only). ` +
				`Captures taken on the sending host can also show wrong checksums when the network card computes them (checksum offload); such a capture does not prove a fault.`,
			Fix: `Capture on another host of the segment to rule out offload (or disable it on the sender: ethtool -K <interface> tx off); ` +
				`if the checksums are still wrong, find the sender's implementation and version and align it with its peers.`,
		})
	}
	if g.Version == 3 && g.Family == 4 {
		var msg, pseudo, old []string
		for _, s := range g.Sources {
			if s.ChecksumMessage > 0 {
				msg = append(msg, s.Address.String())
			}
			if s.ChecksumPseudoHeader > 0 {
				pseudo = append(pseudo, s.Address.String())
			}
			if s.ChecksumOldUnicast > 0 {
				old = append(old, s.Address.String())
			}
		}
		variants := 0
		for _, v := range [][]string{msg, pseudo, old} {
			if len(v) > 0 {
				variants++
			}
		}
		if variants > 1 {
			var ev []Evidence
			for _, v := range []struct {
				label string
				who   []string
			}{
				{"pseudo-header + message (RFC 5798)", pseudo},
				{"message only (VRRPv2 style)", msg},
				{"pseudo-header to 224.0.0.18 (keepalived < 1.3.6 unicast, old_unicast_checksum)", old},
			} {
				if len(v.who) > 0 {
					ev = append(ev, Evidence{Label: v.label, Value: strings.Join(v.who, ", ")})
				}
			}
			fs = append(fs, Finding{
				ID: IDChecksumMismatch, Severity: SeverityWarning, Subject: g.Subject(),
				Summary:  "senders of " + g.Subject() + " compute the VRRPv3 checksum differently",
				Evidence: ev,
				Explanation: `RFC 5798 computes the VRRPv3 checksum over an IP pseudo-header plus the message; some implementations over IPv4 sum the message only, like VRRPv2, ` +
					`and keepalived before 1.3.6 put the group 224.0.0.18 in the pseudo-header of unicast adverts. ` +
					`A router that accepts only one variant discards the other's adverts and becomes master too ` +
					`(keepalived since 1.3.6, and vrrpdoctor run, switch to the old unicast checksum when a peer sends it, unless old_unicast_checksum never is set).`,
				Fix: `Make all peers use the same variant: upgrade the older peers, or give the newer ones old_unicast_checksum (keepalived.conf(5)) until then, and drop old_unicast_checksum never.`,
			})
		}
	}
	return fs
}

func versionMismatch(groups []Group) []Finding {
	type key struct {
		vlan   uint16
		vrid   uint8
		family uint8
	}
	byKey := map[key][]*Group{}
	var order []key
	for i := range groups {
		g := &groups[i]
		k := key{g.VLAN, g.VRID, g.Family}
		if byKey[k] == nil {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], g)
	}
	var fs []Finding
	for _, k := range order {
		gs := byKey[k]
		if len(gs) < 2 {
			continue
		}
		subject := fmt.Sprintf("VRID %d (IPv%d)", k.vrid, k.family)
		if k.vlan != 0 {
			subject += fmt.Sprintf(" on VLAN %d", k.vlan)
		}
		var ev []Evidence
		for _, g := range gs {
			var as []netip.Addr
			for _, s := range g.Sources {
				as = append(as, s.Address)
			}
			ev = append(ev, Evidence{Label: fmt.Sprintf("VRRPv%d senders", g.Version), Value: addrList(as)})
		}
		fs = append(fs, Finding{
			ID: IDVersionMismatch, Severity: SeverityWarning, Subject: subject,
			Summary:  fmt.Sprintf("%s is advertised with both VRRPv2 and VRRPv3", subject),
			Evidence: ev,
			Explanation: `VRRPv2 and VRRPv3 adverts differ in format; a router ignores adverts of the other version ` +
				`(RFC 5798 §8.4 allows mixing only during a migration, with the VRRPv3 router configured to also send VRRPv2). ` +
				`Routers that ignore each other both become master.`,
			Fix: `Configure the same version on all peers, e.g. in keepalived.conf: global_defs { vrrp_version 3 } or, per instance, version 3.`,
		})
	}
	return fs
}

func intervalMismatch(g *Group) []Finding {
	var distinct []time.Duration
	var ev []Evidence
	for _, s := range g.Sources {
		if s.Priority == 0 && s.Packets == s.Resigned {
			continue
		}
		if !slices.Contains(distinct, s.Interval) {
			distinct = append(distinct, s.Interval)
		}
		v := "declares " + FormatDuration(s.Interval)
		if s.Gaps > 0 {
			v += ", sends every " + FormatDuration(s.ObservedInterval)
		}
		ev = append(ev, Evidence{Label: "sender " + s.Address.String(), Value: v})
	}
	if len(distinct) < 2 {
		return nil
	}
	explanation := `Every router of a virtual router must use the same advert interval. `
	if g.Version == 2 {
		explanation += `A VRRPv2 router discards adverts whose interval differs from its own (RFC 3768 §7.1), so each takes over as master.`
	} else {
		explanation += `A VRRPv3 backup adopts the master's interval (RFC 5798 §6.4.2), but timing after a failover differs per router, and some implementations still discard such adverts.`
	}
	return []Finding{{
		ID: IDIntervalMismatch, Severity: SeverityWarning, Subject: g.Subject(),
		Summary:     fmt.Sprintf("senders of %s declare different advert intervals", g.Subject()),
		Evidence:    ev,
		Explanation: explanation,
		Fix:         `Set the same interval on all peers, e.g. in keepalived.conf: advert_int 1`,
	}}
}

// authName names a VRRPv2 authentication type for people.
func authName(t vrrpcore.AuthType) string {
	switch t {
	case vrrpcore.AuthNone:
		return "none"
	case vrrpcore.AuthSimple:
		return "PASS (simple text password)"
	case vrrpcore.AuthAH:
		return "AH"
	}
	return fmt.Sprintf("unknown type %d", uint8(t))
}

func authMismatch(g *Group) []Finding {
	if g.Version != 2 || len(g.Sources) < 2 {
		return nil
	}
	type auth struct {
		t vrrpcore.AuthType
		d string
	}
	var distinct []auth
	var ev []Evidence
	for _, s := range g.Sources {
		a := auth{s.AuthType, s.AuthData}
		if a.t != vrrpcore.AuthSimple {
			a.d = ""
		}
		if !slices.Contains(distinct, a) {
			distinct = append(distinct, a)
		}
		e := Evidence{Label: "sender " + s.Address.String(), Value: "authentication " + authName(s.AuthType)}
		if s.AuthType == vrrpcore.AuthSimple {
			e.Secret = strconv.Quote(s.AuthData)
		}
		ev = append(ev, e)
	}
	if len(distinct) < 2 {
		return nil
	}
	summary := fmt.Sprintf("senders of %s use different authentication", g.Subject())
	sameType := true
	for _, d := range distinct {
		sameType = sameType && d.t == distinct[0].t
	}
	if sameType {
		summary = fmt.Sprintf("senders of %s use different passwords", g.Subject())
	}
	return []Finding{{
		ID: IDAuthMismatch, Severity: SeverityWarning, Subject: g.Subject(), Summary: summary, Evidence: ev,
		Explanation: `A VRRPv2 router discards adverts whose authentication type or password differs from its own, and takes over as master. ` +
			`Simple-text passwords travel in clear in every advert (anyone on the segment can read them; that is why this report shows them in text output, never in JSON), ` +
			`and only their first 8 characters count. RFC 3768 removed authentication from VRRPv2; it protects nothing.`,
		Fix: `Use the same block on all peers, e.g. in keepalived.conf: authentication { auth_type PASS auth_pass <same 8 characters> }, or remove authentication everywhere.`,
	}}
}

func vipMismatch(g *Group) []Finding {
	if len(g.Sources) < 2 {
		return nil
	}
	var sets [][]netip.Addr
	var ev []Evidence
	for _, s := range g.Sources {
		set := sortedAddrs(s.VIPs)
		if !slices.ContainsFunc(sets, func(o []netip.Addr) bool { return slices.Equal(o, set) }) {
			sets = append(sets, set)
		}
		ev = append(ev, Evidence{Label: "sender " + s.Address.String(), Value: addrList(s.VIPs)})
	}
	if len(sets) < 2 {
		return nil
	}
	return []Finding{{
		ID: IDVIPMismatch, Severity: SeverityWarning, Subject: g.Subject(),
		Summary:  fmt.Sprintf("senders of %s advertise different virtual addresses", g.Subject()),
		Evidence: ev,
		Explanation: `All routers of one virtual router must protect the same virtual addresses; after a failover the addresses missing on the new master become unreachable. ` +
			`Different lists can also mean two unrelated clusters on this segment use the same VRID by accident; then they fight over mastership.`,
		Fix: `List the same addresses on all peers (keepalived.conf: virtual_ipaddress { ... }), or give an unrelated cluster its own virtual_router_id.`,
	}}
}

func masterResigned(g *Group) []Finding {
	var fs []Finding
	for _, s := range g.Sources {
		if s.Resigned == 0 {
			continue
		}
		ev := []Evidence{
			{Label: "sender", Value: s.Address.String()},
			{Label: "priority-0 adverts", Value: fmt.Sprintf("%d, last at %s", s.Resigned, FormatTime(s.LastResign))},
		}
		if s.TakeoverBy.IsValid() {
			ev = append(ev, Evidence{Label: "taken over by", Value: fmt.Sprintf("%s after %s", s.TakeoverBy, FormatDuration(s.TakeoverAfter))})
		} else {
			ev = append(ev, Evidence{Label: "taken over by", Value: "no other sender seen after it"})
		}
		fs = append(fs, Finding{
			ID: IDMasterResigned, Severity: SeverityInfo, Subject: g.Subject(),
			Summary:  fmt.Sprintf("%s gave up mastership (priority-0 advert)", s.Address),
			Evidence: ev,
			Explanation: `A master sends an advert with priority 0 when it stops being master on purpose (the VRRP daemon stops, or the instance is shut down or faulted), ` +
				`so that a backup takes over at once instead of waiting three intervals. This is normal during maintenance.`,
		})
	}
	return fs
}

func fileFindings(r *CaptureReport) []Finding {
	var fs []Finding
	var adverts, frames uint64
	for _, f := range r.Files {
		adverts += f.Adverts
		frames += f.Frames
		if f.DecodeErrors > 0 {
			fs = append(fs, Finding{
				ID: IDMalformedAdverts, Severity: SeverityWarning, Subject: f.Name,
				Summary: fmt.Sprintf("%d VRRP packets in %s cannot be decoded", f.DecodeErrors, f.Name),
				Evidence: []Evidence{
					{Label: "malformed", Value: fmt.Sprintf("%d of %d VRRP packets", f.DecodeErrors, f.DecodeErrors+f.Adverts)},
					{Label: "first", Value: f.FirstDecodeError},
				},
				Explanation: `These packets carry IP protocol 112 but are not valid VRRP adverts (cut short, wrong version or type, address count that disagrees with the length). ` +
					`A VRRP router discards them. They come from a faulty or incompatible implementation, or a capture with a snap length too short.`,
				Fix: `Capture with the full packet (tcpdump -s 0) and check which host sends them.`,
			})
		}
	}
	if adverts == 0 && frames > 0 {
		fs = append(fs, Finding{
			ID: IDNoAdverts, Severity: SeverityWarning,
			Summary:  fmt.Sprintf("no VRRP adverts among %d captured frames", frames),
			Evidence: []Evidence{{Label: "frames", Value: strconv.FormatUint(frames, 10)}},
			Explanation: `Nothing in the capture is a VRRP advert: either no router is master on this segment, the capture was taken on another interface, ` +
				`or a capture filter excluded VRRP.`,
			Fix: `Capture on the interface keepalived uses: tcpdump -ni <interface> -w vrrp.pcap 'ip proto 112 or ip6 proto 112'`,
		})
	}
	return fs
}
