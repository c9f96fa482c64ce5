package router

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// Config describes one virtual router instance: what keepalived calls a
// vrrp_instance. The zero value of every optional field gives the RFC
// behaviour; the fields marked "keepalived" reproduce keepalived 2.2
// behaviour where it differs from the RFCs.
type Config struct {
	VRID    uint8 // virtual router ID, 1..255
	Version uint8 // 2 (RFC 3768, IPv4 only) or 3 (RFC 5798 / RFC 9568)
	Family  int   // 4 or 6

	// Priority is the configured priority, 1..255. 255 makes this router
	// the address owner: it becomes Master at startup and its priority
	// never changes (SetPriority is ignored).
	Priority uint8

	// AdvertInterval is Advertisement_Interval: whole seconds 1..255 for
	// VRRPv2, a multiple of 10 ms from 10 ms to 40.95 s for VRRPv3.
	AdvertInterval time.Duration

	// NoPreempt sets Preempt_Mode to False (keepalived "nopreempt"): a
	// Backup then accepts adverts of any priority and never takes over
	// from a live Master.
	NoPreempt bool

	// PreemptDelay is keepalived's preempt_delay: after startup, after a
	// fault clears, or after first seeing a lower-priority Master, a
	// Backup keeps accepting that Master's adverts for this long before
	// preempting it. Zero disables it. Ignored with NoPreempt.
	PreemptDelay time.Duration

	// Accept is Accept_Mode (keepalived "accept"): whether a non-owner
	// Master accepts packets addressed to the virtual addresses. The
	// machine only reports it (AcceptsVIPTraffic); the runtime enforces it.
	Accept bool

	// VIPs are the virtual addresses, advertised in this order. For IPv6
	// the first one should be link-local (RFC 9568 §5.2.9).
	VIPs []netip.Addr
	// ExcludedVIPs (keepalived virtual_ipaddress_excluded) are added and
	// removed and announced with mastership but not advertised; they may
	// be of either address family, as keepalived allows.
	ExcludedVIPs []netip.Addr

	// PrimaryAddr is the address adverts are sent from and the one the
	// equal-priority tie-break compares: the interface's primary IPv4
	// address, its IPv6 link-local address, or keepalived's unicast_src_ip.
	PrimaryAddr netip.Addr

	// AuthType and AuthData are the VRRPv2 authentication (RFC 3768
	// §5.3.6): AuthNone or AuthSimple (keepalived "PASS", 8 bytes, NUL
	// padded). IPsec AH is not supported.
	AuthType vrrpcore.AuthType
	AuthData [8]byte

	// UnicastPeers, when not empty, switch the instance to unicast
	// (keepalived unicast_peer): the runtime sends each advert to every
	// peer, received adverts must come from one of them, and the TTL /
	// hop-limit check is skipped as keepalived does.
	UnicastPeers []netip.Addr

	// UnicastPeerTTL limits the TTL / hop limit with which the unicast
	// adverts of a peer may arrive (keepalived unicast_peer's min_ttl and
	// max_ttl, for peers some routed hops away); peers not listed are not
	// checked. Keys must be UnicastPeers.
	UnicastPeerTTL map[netip.Addr]TTLRange

	// Interface, when set, is the only interface adverts are accepted
	// from (RFC 5798 §7.1: the VRID must be configured on the receiving
	// interface). RecvAdvert.Interface is compared against it.
	Interface string

	// GARP configures gratuitous ARP / unsolicited NA bursts.
	GARP GARPConfig

	// StartAsMaster is keepalived's "state MASTER" outside vrrp_strict:
	// go to Master at Start (and when a fault clears) without waiting for
	// Master_Down_Interval, even if not the address owner.
	StartAsMaster bool

	// DownTimerAdverts is keepalived's down_timer_adverts: the number of
	// missed adverts in Master_Down_Interval. 0 means the RFC's 3.
	DownTimerAdverts int

	// LowerPrioNoAdvert is keepalived's vrrp_lower_prio_no_advert: a Master
	// receiving a lower-priority advert only discards it (RFC 3768 and
	// RFC 5798) instead of answering with its own advert (RFC 9568 §6.4.3
	// and keepalived's default).
	LowerPrioNoAdvert bool

	// HigherPrioSendAdvert is keepalived's vrrp_higher_prio_send_advert: a
	// Master sends one more advert before stepping down to a higher
	// priority one.
	HigherPrioSendAdvert bool

	// Strict is keepalived's vrrp_strict: discard VRRPv3 IPv6 adverts whose
	// first address is not link-local and adverts carrying no address
	// (RFC 9568 errata 8300 and 8299); without it those adverts are
	// accepted with a Notice, because keepalived sends them.
	Strict bool

	// DiscardAddrMismatch discards adverts whose address list differs from
	// VIPs, as keepalived does. Without it a VRRPv3 mismatch is only
	// reported (RFC 5798 §7.1 "SHOULD log") and a VRRPv2 one is discarded
	// unless the sender is the address owner (RFC 3768 §7.1).
	DiscardAddrMismatch bool

	// AcceptAnyUnicastSource accepts unicast adverts from senders not in
	// UnicastPeers: keepalived's behaviour without vrrp_check_unicast_src.
	AcceptAnyUnicastSource bool

	// OldUnicastChecksum is keepalived's old_unicast_checksum, for VRRPv3
	// unicast over IPv4 only: which checksum the adverts carry, and whether
	// adverts summed as keepalived before 1.3.6 did
	// (vrrpcore.ChecksumOldUnicast) are accepted.
	OldUnicastChecksum OldChecksum
}

// OldChecksum is a Config.OldUnicastChecksum setting.
type OldChecksum uint8

// The settings of old_unicast_checksum.
const (
	// OldChecksumDetect (not set) sends RFC 5798 checksums and accepts
	// both kinds; the first accepted advert with the old checksum switches
	// the Machine to sending that one (NoticeOldUnicastChecksum), as
	// keepalived does. Unlike keepalived, which then refuses RFC sums, it
	// keeps accepting them, so an upgraded peer is not locked out.
	OldChecksumDetect OldChecksum = iota
	// OldChecksumAlways (old_unicast_checksum) sends the old checksum.
	OldChecksumAlways
	// OldChecksumNever (old_unicast_checksum never) sends RFC 5798
	// checksums and discards adverts carrying the old one.
	OldChecksumNever
)

// String names the setting as keepalived.conf does: "detect" (not set),
// "old_unicast_checksum" or "old_unicast_checksum never".
func (o OldChecksum) String() string {
	switch o {
	case OldChecksumDetect:
		return "detect"
	case OldChecksumAlways:
		return "old_unicast_checksum"
	case OldChecksumNever:
		return "old_unicast_checksum never"
	}
	return fmt.Sprintf("OldChecksum(%d)", uint8(o))
}

// TTLRange is an inclusive range of TTL / hop-limit values.
type TTLRange struct{ Min, Max uint8 }

// GARPConfig holds keepalived's gratuitous ARP settings; the same bursts
// are unsolicited Neighbour Advertisements for IPv6. Spacing the messages
// of one burst (keepalived garp_interval / gna_interval) is the runtime's
// business; the machine only says when a burst is due and how many
// messages per address it holds.
type GARPConfig struct {
	// MasterRepeat is the number of messages per address sent on becoming
	// Master (garp_master_repeat, keepalived default 5). 0 means 1.
	MasterRepeat int
	// MasterDelay is the delay of a second burst after becoming Master
	// (garp_master_delay, keepalived default 5 s). 0 means no second burst.
	MasterDelay time.Duration
	// MasterRefresh is the period of refresh bursts while Master
	// (garp_master_refresh, keepalived default 0 = none).
	MasterRefresh time.Duration
	// MasterRefreshRepeat is the number of messages per address in a
	// refresh burst (garp_master_refresh_repeat, keepalived default 1).
	// 0 means 1.
	MasterRefreshRepeat int
	// LowerPrioRepeat is the number of messages per address sent when a
	// Master receives a lower-priority advert (garp_lower_prio_repeat).
	// 0 sends none.
	LowerPrioRepeat int
	// LowerPrioDelay is the delay of a second such burst
	// (garp_lower_prio_delay). 0 means no second burst.
	LowerPrioDelay time.Duration
}

// keepalived's defaults for the GARP settings (keepalived.conf(5)).
const (
	KeepalivedGarpMasterRepeat        = 5
	KeepalivedGarpMasterDelay         = 5 * time.Second
	KeepalivedGarpMasterRefreshRepeat = 1
)

// OwnerPriority is the priority of the address owner (RFC 5798 §5.2.4).
const OwnerPriority = 255

const (
	v2MaxInterval = 255 * time.Second
	v3MaxInterval = 4095 * 10 * time.Millisecond
	maxDownAdvert = 100 // keepalived's limit for down_timer_adverts
)

// Validate reports every problem with the configuration, joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.VRID == 0 {
		bad("VRID 0 is out of range 1..255")
	}
	switch c.Version {
	case 2, 3:
	default:
		bad("version %d is not 2 or 3", c.Version)
	}
	switch c.Family {
	case 4, 6:
	default:
		bad("address family %d is not 4 or 6", c.Family)
	}
	if c.Version == 2 && c.Family == 6 {
		bad("VRRPv2 is IPv4 only (RFC 3768); use version 3 for IPv6")
	}
	if c.Priority == 0 {
		bad("priority 0 is reserved for a resigning Master; configure 1..255")
	}
	switch c.Version {
	case 2:
		if c.AdvertInterval < time.Second || c.AdvertInterval > v2MaxInterval || c.AdvertInterval%time.Second != 0 {
			bad("advert interval %v: VRRPv2 needs whole seconds from 1s to 255s", c.AdvertInterval)
		}
	case 3:
		if c.AdvertInterval < 10*time.Millisecond || c.AdvertInterval > v3MaxInterval || c.AdvertInterval%(10*time.Millisecond) != 0 {
			bad("advert interval %v: VRRPv3 needs a multiple of 10ms from 10ms to 40.95s", c.AdvertInterval)
		}
	}
	if c.PreemptDelay < 0 {
		bad("preempt delay %v is negative", c.PreemptDelay)
	}
	if c.DownTimerAdverts < 0 || c.DownTimerAdverts > maxDownAdvert {
		bad("down timer adverts %d is out of range 0..%d", c.DownTimerAdverts, maxDownAdvert)
	}

	inFamily := func(a netip.Addr) bool {
		a = a.Unmap()
		return (c.Family == 4 && a.Is4()) || (c.Family == 6 && a.Is6())
	}
	if !c.PrimaryAddr.IsValid() {
		bad("primary address is not set")
	} else if c.Family == 4 || c.Family == 6 {
		switch {
		case !inFamily(c.PrimaryAddr):
			bad("primary address %v is not IPv%d", c.PrimaryAddr, c.Family)
		case c.Family == 6 && len(c.UnicastPeers) == 0 && !c.PrimaryAddr.IsLinkLocalUnicast():
			bad("primary address %v: IPv6 adverts are sent from a link-local address (RFC 5798 §5.1.2.1)", c.PrimaryAddr)
		}
	}

	seen := make(map[netip.Addr]string)
	checkList := func(name string, list []netip.Addr, anyFamily bool) {
		for i, a := range list {
			if !a.IsValid() {
				bad("%s[%d] is not a valid address", name, i)
				continue
			}
			if (c.Family == 4 || c.Family == 6) && !anyFamily && !inFamily(a) {
				bad("%s[%d] %v is not IPv%d", name, i, a, c.Family)
			}
			k := a.Unmap().WithZone("")
			if prev, dup := seen[k]; dup {
				bad("%s[%d] %v repeats %s", name, i, a, prev)
			}
			seen[k] = fmt.Sprintf("%s[%d]", name, i)
		}
	}
	checkList("VIPs", c.VIPs, false)
	// Excluded addresses are not advertised, so keepalived allows both
	// families there (an IPv4 instance may carry IPv6 addresses along).
	checkList("ExcludedVIPs", c.ExcludedVIPs, true)
	if len(c.VIPs) > 255 {
		bad("%d VIPs: an advert carries at most 255", len(c.VIPs))
	}
	if c.Strict {
		if len(c.VIPs) == 0 {
			bad("strict mode needs at least one advertised VIP (RFC 9568 §5.2.5)")
		} else if c.Family == 6 && !c.VIPs[0].IsLinkLocalUnicast() {
			bad("strict mode: the first IPv6 VIP %v must be link-local (RFC 9568 §5.2.9)", c.VIPs[0])
		}
		if len(c.UnicastPeers) > 0 {
			bad("strict mode does not allow unicast peers")
		}
	}
	for i, p := range c.UnicastPeers {
		if !p.IsValid() {
			bad("UnicastPeers[%d] is not a valid address", i)
		} else if (c.Family == 4 || c.Family == 6) && !inFamily(p) {
			bad("UnicastPeers[%d] %v is not IPv%d", i, p, c.Family)
		}
	}
	for p, r := range c.UnicastPeerTTL {
		if !slices.ContainsFunc(c.UnicastPeers, func(q netip.Addr) bool { return q.Unmap() == p.Unmap() }) {
			bad("UnicastPeerTTL: %v is not a unicast peer", p)
		}
		if r.Min > r.Max {
			bad("UnicastPeerTTL %v: minimum %d above maximum %d", p, r.Min, r.Max)
		}
	}

	switch c.AuthType {
	case vrrpcore.AuthNone:
		if c.AuthData != [8]byte{} {
			bad("authentication data set without an authentication type")
		}
	case vrrpcore.AuthSimple:
		if c.Version != 2 {
			bad("authentication is VRRPv2 only (RFC 5798 removed it)")
		}
	case vrrpcore.AuthAH:
		bad("IPsec AH authentication is not supported")
	default:
		bad("authentication type %d is unknown", uint8(c.AuthType))
	}
	if c.OldUnicastChecksum > OldChecksumNever {
		bad("old unicast checksum setting %d is unknown", uint8(c.OldUnicastChecksum))
	}

	g := c.GARP
	if g.MasterRepeat < 0 || g.MasterRefreshRepeat < 0 || g.LowerPrioRepeat < 0 {
		bad("GARP repeat counts must not be negative")
	}
	if g.MasterDelay < 0 || g.MasterRefresh < 0 || g.LowerPrioDelay < 0 {
		bad("GARP delays must not be negative")
	}
	return errors.Join(errs...)
}

// normalized returns a copy with addresses unmapped and without zones, so
// comparisons with received addresses are exact, and defaults filled in.
func (c Config) normalized() Config {
	norm := func(list []netip.Addr) []netip.Addr {
		if list == nil {
			return nil
		}
		out := make([]netip.Addr, len(list))
		for i, a := range list {
			out[i] = a.Unmap().WithZone("")
		}
		return out
	}
	c.PrimaryAddr = c.PrimaryAddr.Unmap().WithZone("")
	c.VIPs = norm(c.VIPs)
	c.ExcludedVIPs = norm(c.ExcludedVIPs)
	c.UnicastPeers = norm(c.UnicastPeers)
	if c.UnicastPeerTTL != nil {
		ttl := make(map[netip.Addr]TTLRange, len(c.UnicastPeerTTL))
		for p, r := range c.UnicastPeerTTL {
			ttl[p.Unmap().WithZone("")] = r
		}
		c.UnicastPeerTTL = ttl
	}
	if c.DownTimerAdverts == 0 {
		c.DownTimerAdverts = 3
	}
	if c.GARP.MasterRepeat == 0 {
		c.GARP.MasterRepeat = 1
	}
	if c.GARP.MasterRefreshRepeat == 0 {
		c.GARP.MasterRefreshRepeat = 1
	}
	if c.NoPreempt {
		c.PreemptDelay = 0
	}
	return c
}
