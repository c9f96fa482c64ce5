// Package gen writes synthetic VRRP captures for benchmarks: adverts encoded
// with vrrpcore's codec in Ethernet frames, as keepalived would send them.
package gen

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// Routers is the number of virtual routers in a generated capture.
const Routers = 20

// sender is one router advertising one virtual router.
type sender struct {
	frame []byte
	start time.Duration // offset of its adverts within each second
}

// senders returns the routers of a generated capture: Routers virtual
// routers (VRID 1..Routers, VRRPv2 and VRRPv3 alternating, one address
// each, 1 s interval), each with its master; the last one also has its
// backup advertising (a split brain), so the analysis has work to do.
func senders() ([]sender, error) {
	var out []sender
	for i := 1; i <= Routers; i++ {
		vrid := uint8(i)
		version := uint8(2 + i%2)
		add := func(host byte, prio uint8, start time.Duration) error {
			f, err := frame(vrid, version, host, prio)
			if err != nil {
				return err
			}
			out = append(out, sender{frame: f, start: start})
			return nil
		}
		start := time.Duration(i-1) * time.Second / Routers
		if err := add(1, 150, start); err != nil {
			return nil, err
		}
		if i == Routers {
			if err := add(2, 100, (start+time.Second/2)%time.Second); err != nil {
				return nil, err
			}
		}
	}
	slices.SortStableFunc(out, func(a, b sender) int { return int(a.start - b.start) })
	return out, nil
}

// frame builds the Ethernet frame of one advert from 198.51.100.<host>.
func frame(vrid, version, host, prio uint8) ([]byte, error) {
	src := netip.AddrFrom4([4]byte{198, 51, 100, host})
	adv := vrrpcore.Advert{
		Version: version, VRID: vrid, Priority: prio, Interval: time.Second,
		Addrs: []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, vrid})},
	}
	kind := vrrpcore.ChecksumMessage
	if version == 3 {
		kind = vrrpcore.ChecksumPseudoHeader
	}
	msg, err := adv.AppendBinary(nil, src, vrrpcore.GroupIPv4, kind)
	if err != nil {
		return nil, err
	}
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, vrid},
		DstMAC:       net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12},
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{
		Version: 4, IHL: 5, TOS: 0xc0, TTL: 255, Protocol: layers.IPProtocol(vrrpcore.IPProtocol),
		SrcIP: src.AsSlice(), DstIP: vrrpcore.GroupIPv4.AsSlice(),
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, gopacket.Payload(msg)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Start is the capture time of the first advert.
var Start = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// WritePcap writes a pcap capture of n adverts to w, in time order.
func WritePcap(w io.Writer, n int) error {
	ss, err := senders()
	if err != nil {
		return fmt.Errorf("building adverts: %w", err)
	}
	pw, err := capture.NewPcapWriter(w, uint32(layers.LinkTypeEthernet))
	if err != nil {
		return err
	}
	// Every sender sends once a second at its own offset: emit second by
	// second, senders ordered by offset.
	for sec, written := 0, 0; written < n; sec++ {
		for _, s := range ss {
			if written == n {
				break
			}
			t := Start.Add(time.Duration(sec)*time.Second + s.start)
			if err := pw.WriteFrame(t, s.frame); err != nil {
				return err
			}
			written++
		}
	}
	return pw.Flush()
}
