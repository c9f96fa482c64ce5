package router

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// validate applies the receive checks of RFC 5798 §7.1 (RFC 9568 §7.1,
// RFC 3768 §7.1 for VRRPv2) in that order, plus the unicast and source
// checks. It returns the discard reason and its detail, or "" to accept;
// accepted oddities are reported as Notices on r.
func (m *Machine) validate(r *Ready, in RecvAdvert, src netip.Addr) (DiscardReason, string) {
	c := &m.cfg
	a := &in.Advert
	unicast := len(c.UnicastPeers) > 0

	if c.Interface != "" && in.Interface != "" && in.Interface != c.Interface {
		return DiscardInterface, fmt.Sprintf("received on %s, instance runs on %s", in.Interface, c.Interface)
	}
	if !src.IsValid() || src.IsUnspecified() || src.IsMulticast() {
		return DiscardSource, fmt.Sprintf("source %v is not a unicast address", in.Src)
	}
	if (c.Family == 4) != src.Is4() {
		return DiscardFamily, fmt.Sprintf("IPv%d sender %v, instance is IPv%d", familyOf(src), src, c.Family)
	}
	// keepalived skips the TTL check for unicast peers, which may be
	// routed hops away; RFC 5798 defines only multicast.
	if !unicast && in.TTL != 255 {
		what := "TTL"
		if c.Family == 6 {
			what = "hop limit"
		}
		return DiscardTTL, fmt.Sprintf("%s %d, want 255", what, in.TTL)
	}
	if a.Version != c.Version {
		return DiscardVersion, fmt.Sprintf("version %d, instance runs version %d", a.Version, c.Version)
	}
	if a.Type != vrrpcore.TypeAdvertisement {
		return DiscardType, fmt.Sprintf("type %d is not ADVERTISEMENT (1)", a.Type)
	}
	if int(a.CountIPAddrs) != len(a.Addrs) {
		return DiscardMalformed, fmt.Sprintf("address count %d but %d addresses", a.CountIPAddrs, len(a.Addrs))
	}
	switch a.Checksummed {
	case vrrpcore.ChecksumBad:
		return DiscardChecksum, fmt.Sprintf("checksum 0x%04x does not verify", a.Checksum)
	case vrrpcore.ChecksumUnverified:
		return DiscardUnverified, "the checksum was not verified before the advert reached the state machine"
	case vrrpcore.ChecksumOldUnicast:
		if c.OldUnicastChecksum == OldChecksumNever {
			return DiscardChecksum, "checksum summed over a pseudo-header to 224.0.0.18, as keepalived before 1.3.6 did for unicast: refused by old_unicast_checksum never"
		}
	}
	if a.VRID != c.VRID {
		return DiscardVRID, fmt.Sprintf("VRID %d, instance is VRID %d", a.VRID, c.VRID)
	}
	if c.Version == 3 && a.Interval <= 0 {
		return DiscardIntervalZero, "Max Advert Interval 0"
	}
	if c.Version == 2 {
		if a.AuthType != c.AuthType {
			return DiscardAuthType, fmt.Sprintf("auth type %v, instance uses %v", a.AuthType, c.AuthType)
		}
		if c.AuthType == vrrpcore.AuthSimple && a.AuthData != c.AuthData {
			return DiscardAuthData, "password does not match"
		}
		if a.Interval != c.AdvertInterval {
			return DiscardInterval, fmt.Sprintf("advert interval %v, instance uses %v", a.Interval, c.AdvertInterval)
		}
	}
	if src == c.PrimaryAddr {
		return DiscardOwnAddress, fmt.Sprintf("sent from our own address %v (looped back, or a duplicate address)", src)
	}
	if unicast && !c.AcceptAnyUnicastSource && !slices.Contains(c.UnicastPeers, src) {
		return DiscardUnicastSource, fmt.Sprintf("%v is not a unicast peer", src)
	}
	if r, ok := c.UnicastPeerTTL[src]; unicast && ok && (in.TTL < r.Min || in.TTL > r.Max) {
		return DiscardTTL, fmt.Sprintf("TTL %d outside %d..%d, the min_ttl..max_ttl of unicast peer %v", in.TTL, r.Min, r.Max, src)
	}
	if !unicast && c.Family == 6 && !src.IsLinkLocalUnicast() {
		return DiscardSourceNotLL, fmt.Sprintf("IPv6 source %v is not link-local", src)
	}
	for i, addr := range a.Addrs {
		if (c.Family == 4) != addr.Unmap().Is4() {
			return DiscardAddrFamily, fmt.Sprintf("address %d (%v) is not IPv%d", i, addr, c.Family)
		}
	}
	if c.Version == 3 && len(a.Addrs) == 0 {
		if c.Strict || len(c.VIPs) > 0 {
			return DiscardNoAddresses, "address count 0"
		}
		m.notice(r, NoticeNoAddresses, src, "address count 0, accepted because this instance advertises none either")
	}
	if c.Version == 3 && c.Family == 6 && len(a.Addrs) > 0 && !a.Addrs[0].IsLinkLocalUnicast() {
		if c.Strict {
			return DiscardFirstAddrNotLL, fmt.Sprintf("first address %v is not link-local", a.Addrs[0])
		}
		m.notice(r, NoticeFirstAddrNotLL, src, fmt.Sprintf("first address %v is not link-local (accepted; keepalived sends this)", a.Addrs[0]))
	}
	if diff := addrListDiff(c.VIPs, a.Addrs); diff != "" {
		switch {
		case c.DiscardAddrMismatch:
			return DiscardAddrList, diff
		case c.Version == 2 && a.Priority != OwnerPriority:
			return DiscardAddrList, diff + " (RFC 3768: dropped unless sent by the address owner)"
		}
		m.notice(r, NoticeAddrListMismatch, src, diff)
	}
	return "", ""
}

// addrListDiff compares the advertised addresses with the configured ones
// as sets, as keepalived does; "" if they match.
func addrListDiff(want, got []netip.Addr) string {
	norm := func(list []netip.Addr) []netip.Addr {
		out := make([]netip.Addr, len(list))
		for i, a := range list {
			out[i] = a.Unmap().WithZone("")
		}
		slices.SortFunc(out, netip.Addr.Compare)
		return slices.Compact(out)
	}
	w, g := norm(want), norm(got)
	if slices.Equal(w, g) {
		return ""
	}
	var missing, extra []netip.Addr
	for _, a := range w {
		if _, found := slices.BinarySearchFunc(g, a, netip.Addr.Compare); !found {
			missing = append(missing, a)
		}
	}
	for _, a := range g {
		if _, found := slices.BinarySearchFunc(w, a, netip.Addr.Compare); !found {
			extra = append(extra, a)
		}
	}
	s := fmt.Sprintf("advertises %d addresses, %d configured", len(got), len(want))
	if len(missing) > 0 {
		s += fmt.Sprintf("; missing %v", missing)
	}
	if len(extra) > 0 {
		s += fmt.Sprintf("; unexpected %v", extra)
	}
	return s
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}
