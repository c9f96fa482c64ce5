// Package announce sends the link-layer announcements a new VRRP Master
// makes for its virtual addresses (RFC 5798 §6.4.1, §8.1): gratuitous ARP
// for IPv4 and unsolicited Neighbor Advertisements for IPv6, so that hosts
// and switches on the LAN learn the new owner at once.
//
// The frames are built with gopacket's layers and sent through an AF_PACKET
// socket that receives nothing (protocol 0), the way keepalived sends them.
// Frame builders are pure functions, tested without a network.
package announce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Ethernet destinations of the announcements.
var (
	broadcastMAC    = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allNodesMAC     = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01} // ff02::1
	allNodesAddr    = netip.MustParseAddr("ff02::1")
	errNotEthernet  = errors.New("not an Ethernet MAC address")
	serializeFixLen = gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
)

// Neighbor Advertisement flags (RFC 4861 §4.4).
const (
	naRouter    = 0x80
	naSolicited = 0x40
	naOverride  = 0x20
)

// GratuitousARP returns an Ethernet frame carrying a gratuitous ARP for ip
// from mac: a broadcast ARP request whose sender and target protocol
// addresses are both ip, as keepalived sends on becoming Master.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("gratuitous ARP: source %v: %w", mac, errNotEthernet)
	}
	if !ip.Is4() {
		return nil, fmt.Errorf("gratuitous ARP: %v is not an IPv4 address", ip)
	}
	a := ip.As4()
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: broadcastMAC, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{
		AddrType:          layers.LinkTypeEthernet,
		Protocol:          layers.EthernetTypeIPv4,
		HwAddressSize:     6,
		ProtAddressSize:   4,
		Operation:         layers.ARPRequest,
		SourceHwAddress:   mac,
		SourceProtAddress: a[:],
		DstHwAddress:      broadcastMAC,
		DstProtAddress:    a[:],
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, serializeFixLen, eth, arp); err != nil {
		return nil, fmt.Errorf("gratuitous ARP for %v: %w", ip, err)
	}
	return buf.Bytes(), nil
}

// UnsolicitedNA returns an Ethernet frame carrying an unsolicited Neighbor
// Advertisement for ip from mac (RFC 4861 §7.2.6): sent from ip to the
// all-nodes group ff02::1 with hop limit 255, the Override flag set, the
// Router flag as router says, and the target link-layer address option.
func UnsolicitedNA(mac net.HardwareAddr, ip netip.Addr, router bool) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("unsolicited NA: source %v: %w", mac, errNotEthernet)
	}
	if !ip.Is6() || ip.Is4In6() {
		return nil, fmt.Errorf("unsolicited NA: %v is not an IPv6 address", ip)
	}
	src := net.IP(ip.AsSlice())
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: allNodesMAC, EthernetType: layers.EthernetTypeIPv6}
	ip6 := &layers.IPv6{
		Version:    6,
		NextHeader: layers.IPProtocolICMPv6,
		HopLimit:   255,
		SrcIP:      src,
		DstIP:      net.IP(allNodesAddr.AsSlice()),
	}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip6); err != nil {
		return nil, err
	}
	flags := uint8(naOverride)
	if router {
		flags |= naRouter
	}
	na := &layers.ICMPv6NeighborAdvertisement{
		Flags:         flags,
		TargetAddress: src,
		Options: layers.ICMPv6Options{{
			Type: layers.ICMPv6OptTargetAddress,
			Data: append([]byte(nil), mac...),
		}},
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, serializeFixLen, eth, ip6, icmp, na); err != nil {
		return nil, fmt.Errorf("unsolicited NA for %v: %w", ip, err)
	}
	return buf.Bytes(), nil
}
