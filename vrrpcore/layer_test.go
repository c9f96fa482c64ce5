package vrrpcore

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// parser is the allocation-free decoding path: Ethernet or Linux SLL, IP,
// VRRP.
type parser struct {
	eth  layers.Ethernet
	sll  layers.LinuxSLL
	ip4  layers.IPv4
	ip6  layers.IPv6
	vrrp Layer
	dlp  *gopacket.DecodingLayerParser
	got  []gopacket.LayerType
}

func newParser(first gopacket.LayerType) *parser {
	p := &parser{}
	p.dlp = gopacket.NewDecodingLayerParser(first, &p.eth, &p.sll, &p.ip4, &p.ip6, &p.vrrp)
	p.got = make([]gopacket.LayerType, 0, 8)
	return p
}

// decode runs the parser and verifies the advert against the IP addresses.
func (p *parser) decode(frame []byte) (src, dst netip.Addr, err error) {
	if err := p.dlp.DecodeLayers(frame, &p.got); err != nil {
		return src, dst, err
	}
	if len(p.got) == 0 || p.got[len(p.got)-1] != layers.LayerTypeVRRP {
		return src, dst, errors.New("no VRRP layer")
	}
	for _, lt := range p.got {
		switch lt {
		case layers.LayerTypeIPv4:
			src, dst = netip.AddrFrom4([4]byte(p.ip4.SrcIP)), netip.AddrFrom4([4]byte(p.ip4.DstIP))
		case layers.LayerTypeIPv6:
			src, dst = netip.AddrFrom16([16]byte(p.ip6.SrcIP)), netip.AddrFrom16([16]byte(p.ip6.DstIP))
		}
	}
	return src, dst, p.vrrp.Verify(src, dst)
}

func TestLayerVectors(t *testing.T) {
	p := newParser(layers.LayerTypeEthernet)
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			frame := unhex(t, v.frame)
			if _, _, err := p.decode(frame); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(v.want, p.vrrp.Advert, cmpAdvert...); d != "" {
				t.Errorf("layer mismatch (-want +got):\n%s", d)
			}
			msg, _, _ := ipPayload(t, frame)
			if !bytes.Equal(p.vrrp.LayerContents(), msg) || p.vrrp.LayerPayload() != nil {
				t.Errorf("LayerContents % x, LayerPayload % x", p.vrrp.LayerContents(), p.vrrp.LayerPayload())
			}
		})
	}
}

// Verify must catch what the inferred family hides: a VRRPv3 message whose
// length fits IPv4 addresses inside an IPv6 packet, and VRRPv2 over IPv6.
func TestLayerVerifyFamily(t *testing.T) {
	var l Layer
	df := gopacket.NilDecodeFeedback
	v3 := unhex(t, "31 01 64 01 00 64 0000 c6336401")
	if err := l.DecodeFromBytes(v3, df); err != nil {
		t.Fatal(err)
	}
	err := l.Verify(netip.MustParseAddr("fe80::1"), GroupIPv6)
	var de *DecodeError
	if !errors.As(err, &de) || err.Error() != "vrrp: truncated at byte 12: need 24 bytes for 1 IPv6 address" {
		t.Errorf("Verify IPv4-shaped VRRPv3 in IPv6: %v", err)
	}
	v2 := unhex(t, "21 01 64 01 00 01 0000 c6336401 0000000000000000")
	if err := l.DecodeFromBytes(v2, df); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(netip.MustParseAddr("fe80::1"), GroupIPv6); !errors.As(err, &de) || de.Field != "version" {
		t.Errorf("Verify VRRPv2 in IPv6: %v", err)
	}
	if err := l.Verify(netip.Addr{}, netip.Addr{}); err != nil || l.Checksummed != ChecksumUnverified {
		t.Errorf("Verify without addresses: %v, %v", err, l.Checksummed)
	}
}

type feedback struct{ truncated bool }

func (f *feedback) SetTruncated() { f.truncated = true }

func TestLayerDecodeFromBytesTruncated(t *testing.T) {
	var l Layer
	var f feedback
	if err := l.DecodeFromBytes(unhex(t, "31 01 64 03 00 64 0000 c6336401"), &f); err == nil || !f.truncated {
		t.Errorf("truncated message: err %v, truncated %v", err, f.truncated)
	}
	f = feedback{}
	if err := l.DecodeFromBytes(unhex(t, "41 01 64 00 00 64 0000"), &f); err == nil || f.truncated {
		t.Errorf("bad version: err %v, truncated %v", err, f.truncated)
	}
}

// keepalivedExpect is what make.sh configured, per VRID.
var keepalivedExpect = map[uint8]struct {
	version  uint8
	priority uint8
	interval time.Duration
	vips     int
	family   uint8
}{
	51: {2, 150, time.Second, 2, 4},
	52: {2, 100, 2 * time.Second, 1, 4},
	53: {3, 200, 500 * time.Millisecond, 3, 4},
	54: {3, 120, time.Second, 1, 4},
	55: {3, 110, time.Second, 2, 6},
	56: {3, 130, time.Second, 1, 4},
}

func readPcap(t *testing.T, path string, each func(ci gopacket.CaptureInfo, frame []byte, lt layers.LinkType)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for {
		frame, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		each(ci, frame, r.LinkType())
	}
}

// Every advert keepalived sent in the lab decodes, through the layer and
// through Decode alike, with verified checksums and the configured values;
// each instance's last advert is its priority-0 resignation.
func TestKeepalivedCaptures(t *testing.T) {
	for _, file := range []string{"eth.pcap", "sll.pcap"} {
		t.Run(file, func(t *testing.T) {
			seen := map[uint8]int{}
			last := map[uint8]uint8{}
			var p *parser
			readPcap(t, "testdata/keepalived/"+file, func(_ gopacket.CaptureInfo, frame []byte, lt layers.LinkType) {
				if p == nil {
					first := layers.LayerTypeEthernet
					if lt == layers.LinkTypeLinuxSLL {
						first = layers.LayerTypeLinuxSLL
					}
					p = newParser(first)
				}
				src, dst, err := p.decode(frame)
				if err != nil {
					t.Fatalf("frame %d: %v", len(seen), err)
				}
				a := &p.vrrp.Advert
				var d Advert
				if err := d.Decode(p.vrrp.LayerContents(), src, dst); err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if diff := cmp.Diff(d, *a, cmpAdvert...); diff != "" {
					t.Errorf("layer and Decode disagree (-Decode +layer):\n%s", diff)
				}
				want, ok := keepalivedExpect[a.VRID]
				if !ok {
					t.Fatalf("unexpected VRID %d", a.VRID)
				}
				if a.Checksummed != ChecksumMessage && a.Checksummed != ChecksumPseudoHeader {
					t.Errorf("VRID %d: checksum %v", a.VRID, a.Checksummed)
				}
				if a.Version != want.version || a.Interval != want.interval || len(a.Addrs) != want.vips ||
					family(a.Addrs[0]) != want.family || (a.Priority != want.priority && a.Priority != 0) {
					t.Errorf("VRID %d: decoded %+v, want %+v", a.VRID, *a, want)
				}
				seen[a.VRID]++
				last[a.VRID] = a.Priority
			})
			for vrid := range keepalivedExpect {
				if seen[vrid] < 2 || last[vrid] != 0 {
					t.Errorf("VRID %d: %d adverts, last priority %d; want several ending with priority 0", vrid, seen[vrid], last[vrid])
				}
			}
		})
	}
}

// SerializeTo rebuilds keepalived's frames byte for byte (Ethernet padding aside).
func TestLayerSerializeKeepalived(t *testing.T) {
	p := newParser(layers.LayerTypeEthernet)
	n := 0
	readPcap(t, "testdata/keepalived/eth.pcap", func(_ gopacket.CaptureInfo, frame []byte, _ layers.LinkType) {
		if _, _, err := p.decode(frame); err != nil {
			t.Fatal(err)
		}
		ip := gopacket.SerializableLayer(&p.ip4)
		if p.got[1] == layers.LayerTypeIPv6 {
			ip = &p.ip6
		}
		vr := p.vrrp
		vr.Checksum = 0 // recomputed
		buf := gopacket.NewSerializeBuffer()
		opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
		if err := gopacket.SerializeLayers(buf, opts, &p.eth, ip, &vr); err != nil {
			t.Fatal(err)
		}
		// gopacket's Ethernet layer pads to the 60-byte minimum; veth
		// frames captured on the host are not padded.
		got := buf.Bytes()
		if len(got) > len(frame) && bytes.Count(got[len(frame):], []byte{0}) == len(got)-len(frame) {
			got = got[:len(frame)]
		}
		if !bytes.Equal(got, frame) {
			t.Errorf("SerializeLayers =\n% x\nwant\n% x", buf.Bytes(), frame)
		}
		n++
	})
	if n == 0 {
		t.Fatal("no frames")
	}
}

func TestLayerSerializeWithoutChecksum(t *testing.T) {
	l := Layer{Advert: Advert{Version: 3, VRID: 1, Priority: 1, Interval: time.Second, Checksum: 0xbeef, Addrs: addrs("2001:db8::1")}}
	buf := gopacket.NewSerializeBuffer()
	if err := l.SerializeTo(buf, gopacket.SerializeOptions{}); err != nil {
		t.Fatal(err)
	}
	if b := buf.Bytes(); len(b) != 24 || b[6] != 0xbe || b[7] != 0xef {
		t.Errorf("SerializeTo = % x, want 24 bytes carrying checksum be ef", b)
	}
	// VRRPv3 needs the addresses for its checksum.
	if err := l.SerializeTo(gopacket.NewSerializeBuffer(), gopacket.SerializeOptions{ComputeChecksums: true}); err == nil {
		t.Error("SerializeTo computed a VRRPv3 checksum without addresses")
	}
	if l.LayerType() != layers.LayerTypeVRRP || l.CanDecode() != layers.LayerTypeVRRP || l.NextLayerType() != gopacket.LayerTypeZero {
		t.Error("layer types")
	}
}

func TestLayerParserAllocs(t *testing.T) {
	p := newParser(layers.LayerTypeEthernet)
	frames := make([][]byte, 0, len(vectors))
	for _, v := range vectors {
		frames = append(frames, unhex(t, v.frame))
	}
	for _, f := range frames {
		if _, _, err := p.decode(f); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(50, func() {
		for _, f := range frames {
			if _, _, err := p.decode(f); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("warm parser allocates %.1f times per %d frames, want 0", allocs, len(frames))
	}
}
