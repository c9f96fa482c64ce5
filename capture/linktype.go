package capture

import "strconv"

// LinkType is a LINKTYPE_ value (https://www.tcpdump.org/linktypes.html):
// the link-layer header type of a frame, as pcap and pcapng headers carry it.
type LinkType uint32

// The link types of live taps and of the capture files users bring.
const (
	LinkTypeNull      LinkType = 0   // BSD loopback (not decoded)
	LinkTypeEthernet  LinkType = 1   // Ethernet, with 802.1Q/802.1ad tags
	LinkTypeRaw       LinkType = 101 // raw IPv4 or IPv6, told apart by the version nibble
	LinkTypeLinuxSLL  LinkType = 113 // Linux cooked capture v1 (tcpdump -i any before 4.99)
	LinkTypeIPv4      LinkType = 228 // raw IPv4
	LinkTypeIPv6      LinkType = 229 // raw IPv6
	LinkTypeLinuxSLL2 LinkType = 276 // Linux cooked capture v2 (tcpdump -i any)

	// DLT_RAW as some platforms numbered it in capture files instead of 101.
	linkTypeDLTRaw12 LinkType = 12
	linkTypeDLTRaw14 LinkType = 14
)

var linkTypeNames = map[LinkType]string{
	LinkTypeNull: "Null", LinkTypeEthernet: "Ethernet", LinkTypeRaw: "Raw", LinkTypeLinuxSLL: "LinuxSLL",
	LinkTypeIPv4: "IPv4", LinkTypeIPv6: "IPv6", LinkTypeLinuxSLL2: "LinuxSLL2",
	linkTypeDLTRaw12: "Raw", linkTypeDLTRaw14: "Raw",
}

// String names the link type, or gives its number.
func (lt LinkType) String() string {
	if n, ok := linkTypeNames[lt]; ok {
		return n
	}
	return "LinkType(" + strconv.FormatUint(uint64(lt), 10) + ")"
}

// SupportsLinkType reports whether Decoder.Decode understands frames of
// link type lt: Ethernet (with 802.1Q/802.1ad tags), Linux cooked capture
// v1 and v2, and raw IPv4/IPv6.
func SupportsLinkType(lt LinkType) bool {
	switch lt {
	case LinkTypeEthernet, LinkTypeLinuxSLL, LinkTypeLinuxSLL2,
		LinkTypeRaw, linkTypeDLTRaw12, linkTypeDLTRaw14, LinkTypeIPv4, LinkTypeIPv6:
		return true
	}
	return false
}

// LinkTypeFromPcap converts a LINKTYPE_ value as pcap and pcapng headers
// carry it to a LinkType; ok reports whether Decoder.Decode supports it.
func LinkTypeFromPcap(v uint32) (lt LinkType, ok bool) {
	return LinkType(v), SupportsLinkType(LinkType(v))
}
