package announce

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var testMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}

func TestGratuitousARP(t *testing.T) {
	ip := netip.MustParseAddr("198.51.100.10")
	frame, err := GratuitousARP(testMAC, ip)
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) != 60 { // 14 + 28, padded to the Ethernet minimum
		t.Fatalf("frame is %d bytes, want 60", len(frame))
	}
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	arp, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if eth == nil || arp == nil {
		t.Fatalf("not Ethernet/ARP: %v", p)
	}
	if !bytes.Equal(eth.DstMAC, broadcastMAC) || !bytes.Equal(eth.SrcMAC, testMAC) {
		t.Errorf("Ethernet %v -> %v, want %v -> broadcast", eth.SrcMAC, eth.DstMAC, testMAC)
	}
	if arp.Operation != layers.ARPRequest {
		t.Errorf("operation %d, want request", arp.Operation)
	}
	if !bytes.Equal(arp.SourceHwAddress, testMAC) {
		t.Errorf("sender MAC %v", net.HardwareAddr(arp.SourceHwAddress))
	}
	for name, got := range map[string][]byte{"sender": arp.SourceProtAddress, "target": arp.DstProtAddress} {
		if a, _ := netip.AddrFromSlice(got); a != ip {
			t.Errorf("%s IP %v, want %v", name, a, ip)
		}
	}
}

func TestUnsolicitedNA(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::10")
	for _, router := range []bool{true, false} {
		frame, err := UnsolicitedNA(testMAC, ip, router)
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip6, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		icmp, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		na, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
		if eth == nil || ip6 == nil || icmp == nil || na == nil {
			t.Fatalf("not Ethernet/IPv6/ICMPv6 NA: %v", p)
		}
		if !bytes.Equal(eth.DstMAC, allNodesMAC) {
			t.Errorf("Ethernet destination %v, want 33:33:00:00:00:01", eth.DstMAC)
		}
		if ip6.HopLimit != 255 {
			t.Errorf("hop limit %d, want 255 (RFC 4861 §7.1.2)", ip6.HopLimit)
		}
		if s, _ := netip.AddrFromSlice(ip6.SrcIP); s != ip {
			t.Errorf("source %v, want %v", s, ip)
		}
		if d, _ := netip.AddrFromSlice(ip6.DstIP); d != allNodesAddr {
			t.Errorf("destination %v, want ff02::1", d)
		}
		if tgt, _ := netip.AddrFromSlice(na.TargetAddress); tgt != ip {
			t.Errorf("target %v, want %v", tgt, ip)
		}
		want := uint8(naOverride)
		if router {
			want |= naRouter
		}
		if na.Flags != want || na.Flags&naSolicited != 0 {
			t.Errorf("flags %#x, want %#x (override, not solicited)", na.Flags, want)
		}
		if len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, testMAC) {
			t.Errorf("options %v, want target link-layer address %v", na.Options, testMAC)
		}
		if got := checksum6(ip6.SrcIP, ip6.DstIP, frame[14+40:]); got != 0 {
			t.Errorf("ICMPv6 checksum does not verify (sum %#x)", got)
		}
	}
}

// checksum6 is the Internet checksum over the IPv6 pseudo-header and an
// ICMPv6 message; 0 means the message's checksum is right.
func checksum6(src, dst net.IP, msg []byte) uint16 {
	var b []byte
	b = append(b, src...)
	b = append(b, dst...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	b = append(b, 0, 0, 0, 58)
	b = append(b, msg...)
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	var sum uint32
	for i := 0; i < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// The hand-built frames are byte for byte those gopacket's layers build
// from the same fields (the package built them so before).
func TestFramesMatchGopacket(t *testing.T) {
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for _, s := range []string{"198.51.100.10", "203.0.113.255"} {
		ip := netip.MustParseAddr(s)
		a := ip.As4()
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, opts,
			&layers.Ethernet{SrcMAC: testMAC, DstMAC: broadcastMAC, EthernetType: layers.EthernetTypeARP},
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				Operation: layers.ARPRequest, SourceHwAddress: testMAC, SourceProtAddress: a[:], DstHwAddress: broadcastMAC, DstProtAddress: a[:]},
		); err != nil {
			t.Fatal(err)
		}
		if got, _ := GratuitousARP(testMAC, ip); !bytes.Equal(got, buf.Bytes()) {
			t.Errorf("GratuitousARP(%v) =\n% x\ngopacket:\n% x", ip, got, buf.Bytes())
		}
	}
	for _, s := range []string{"2001:db8::10", "fe80::1:2:3:4"} {
		for _, router := range []bool{true, false} {
			ip := netip.MustParseAddr(s)
			src := net.IP(ip.AsSlice())
			ip6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255, SrcIP: src, DstIP: net.IP(allNodesAddr.AsSlice())}
			icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
			if err := icmp.SetNetworkLayerForChecksum(ip6); err != nil {
				t.Fatal(err)
			}
			flags := uint8(naOverride)
			if router {
				flags |= naRouter
			}
			buf := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(buf, opts,
				&layers.Ethernet{SrcMAC: testMAC, DstMAC: allNodesMAC, EthernetType: layers.EthernetTypeIPv6}, ip6, icmp,
				&layers.ICMPv6NeighborAdvertisement{Flags: flags, TargetAddress: src,
					Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: testMAC}}},
			); err != nil {
				t.Fatal(err)
			}
			if got, _ := UnsolicitedNA(testMAC, ip, router); !bytes.Equal(got, buf.Bytes()) {
				t.Errorf("UnsolicitedNA(%v, %v) =\n% x\ngopacket:\n% x", ip, router, got, buf.Bytes())
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	v4, v6 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::1")
	if _, err := GratuitousARP(testMAC, v6); err == nil {
		t.Error("gratuitous ARP for an IPv6 address: no error")
	}
	if _, err := GratuitousARP(net.HardwareAddr{1, 2, 3}, v4); err == nil {
		t.Error("gratuitous ARP from a 3-byte MAC: no error")
	}
	if _, err := UnsolicitedNA(testMAC, v4, true); err == nil {
		t.Error("NA for an IPv4 address: no error")
	}
	if _, err := UnsolicitedNA(nil, v6, true); err == nil {
		t.Error("NA without MAC: no error")
	}
}
