package eval

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Direction says which netfilter hooks a packet crosses.
type Direction string

// Directions: an advert arriving (ingress, prerouting, input) or the host's
// own advert leaving (output, postrouting, egress).
const (
	In  Direction = "in"
	Out Direction = "out"
)

// Packet describes the packet to walk through the ruleset. For a VRRP advert:
// protocol 112, TTL 255, to 224.0.0.18 or ff02::12, conntrack state new
// (adverts never see a reply, so conntrack keeps every one of them "new").
type Packet struct {
	Direction Direction
	Family    int        // 4 or 6; 0 means: from Dst
	InIface   string     // for In
	OutIface  string     // for Out
	Src, Dst  netip.Addr // Src may be left invalid: rules on it are then undecidable
	// SrcLinkLocal says that an unknown Src is a link-local address, as
	// the source of a VRRPv3 advert over IPv6 must be (RFC 5798 5.1.2.1).
	SrcLinkLocal bool
	Proto        uint8  // IP protocol (IPv6: the upper-layer header); 0 means 112
	TTL          uint8  // TTL or hop limit; 0 means 255
	PktType      string // host, multicast, broadcast; "" means: from Dst incoming, host outgoing
	CTState      string // conntrack state once tracked; "" means "new"
	Mark         uint32 // skb mark when the packet enters the first hook
}

// VRRPAdvert returns the packet of a VRRP advert from src to dst (the VRRP
// group when dst is invalid) crossing iface in the given direction.
func VRRPAdvert(dir Direction, iface string, src, dst netip.Addr) Packet {
	if !dst.IsValid() {
		dst = netip.MustParseAddr("224.0.0.18")
		if src.Is6() {
			dst = netip.MustParseAddr("ff02::12")
		}
	}
	p := Packet{Direction: dir, Src: src, Dst: dst, Proto: 112, TTL: 255, CTState: "new"}
	p.SrcLinkLocal = !src.IsValid() && dst.Is6() && dst.IsMulticast()
	if dir == In {
		p.InIface = iface
	} else {
		p.OutIface = iface
	}
	return p
}

// normalize fills defaults and checks consistency.
func (p Packet) normalize() (Packet, error) {
	if p.Direction != In && p.Direction != Out {
		return p, fmt.Errorf("direction %q: want in or out", p.Direction)
	}
	if !p.Dst.IsValid() {
		return p, fmt.Errorf("the destination address is required")
	}
	p.Src, p.Dst = p.Src.Unmap(), p.Dst.Unmap()
	if p.Src.IsValid() && p.Src.Is4() != p.Dst.Is4() {
		return p, fmt.Errorf("source %s and destination %s are of different families", p.Src, p.Dst)
	}
	fam := 4
	if p.Dst.Is6() {
		fam = 6
	}
	if p.Family == 0 {
		p.Family = fam
	}
	if p.Family != fam {
		return p, fmt.Errorf("family %d does not match destination %s", p.Family, p.Dst)
	}
	if p.Proto == 0 {
		p.Proto = 112
	}
	if p.TTL == 0 {
		p.TTL = 255
	}
	if p.CTState == "" {
		p.CTState = "new"
	}
	if _, ok := ctStateBits[p.CTState]; !ok {
		return p, fmt.Errorf("conntrack state %q: want new, established, related, invalid or untracked", p.CTState)
	}
	if p.PktType == "" && p.Direction == In {
		switch {
		case p.Dst.IsMulticast():
			p.PktType = "multicast"
		case p.Dst.Is4() && p.Dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			p.PktType = "broadcast"
		default:
			p.PktType = "host"
		}
	}
	if p.PktType == "" && p.Direction == Out {
		// Measured (testdata/rulesets/nft-pkttype-output): on the output
		// path the kernel reports a locally generated multicast advert as
		// pkttype host, not multicast.
		p.PktType = "host"
	}
	if p.PktType == "unicast" {
		p.PktType = "host"
	}
	if p.Direction == In && p.InIface == "" {
		return p, fmt.Errorf("an incoming packet needs its input interface")
	}
	if p.Direction == Out && p.OutIface == "" {
		return p, fmt.Errorf("an outgoing packet needs its output interface")
	}
	return p, nil
}

// String describes the packet in one line.
func (p Packet) String() string {
	var sb strings.Builder
	src := "any"
	switch {
	case p.Src.IsValid():
		src = p.Src.String()
	case p.SrcLinkLocal:
		src = "any link-local"
	}
	fmt.Fprintf(&sb, "IPv%d proto %d %s -> %s ttl %d", p.Family, p.Proto, src, p.Dst, p.TTL)
	if p.Direction == In {
		fmt.Fprintf(&sb, " in on %s", p.InIface)
	} else {
		fmt.Fprintf(&sb, " out on %s", p.OutIface)
	}
	if p.PktType != "" {
		fmt.Fprintf(&sb, " pkttype %s", p.PktType)
	}
	fmt.Fprintf(&sb, " ct state %s", p.CTState)
	if p.Mark != 0 {
		fmt.Fprintf(&sb, " mark 0x%x", p.Mark)
	}
	return sb.String()
}

// protocols are the IP protocol names nft and iptables accept (from
// /etc/protocols); numbers are accepted too.
var protocols = map[string]uint64{
	"ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6, "egp": 8, "igp": 9,
	"pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37,
	"idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47,
	"esp": 50, "ah": 51, "skip": 57, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ospfigp": 89, "ax.25": 93, "ipip": 94, "etherip": 97,
	"encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112, "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133,
	"mobility-header": 135, "udplite": 136, "mpls-in-ip": 137, "manet": 138, "hip": 139, "shim6": 140,
	"wesp": 141, "rohc": 142, "ethernet": 143, "mptcp": 262,
}

func protoNumber(s string) (uint64, bool) {
	if n, ok := protocols[strings.ToLower(s)]; ok {
		return n, true
	}
	n, err := strconv.ParseUint(s, 0, 8)
	return n, err == nil
}

var pktTypes = map[string]uint64{"host": 0, "unicast": 0, "broadcast": 1, "multicast": 2, "other": 3}

// ctStateBits are nftables' ct state bits (NF_CT_STATE_BIT).
var ctStateBits = map[string]uint64{"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64,
	// iptables' virtual states: an untouched new VRRP flow has no NAT.
	"snat": 1 << 8, "dnat": 1 << 9}

// Label names the advert p for a person, after who (when given): "adverts
// from 198.51.100.1 to 224.0.0.18, in on eth0".
func (p Packet) Label(who string) string {
	var s string
	if p.Direction == In {
		from := "any router"
		if p.Src.IsValid() {
			from = p.Src.String()
		}
		s = fmt.Sprintf("adverts from %s to %s, in on %s", from, p.Dst, p.InIface)
	} else {
		s = fmt.Sprintf("this host's adverts to %s, out on %s", p.Dst, p.OutIface)
	}
	if who != "" {
		s = who + ": " + s
	}
	return s
}
