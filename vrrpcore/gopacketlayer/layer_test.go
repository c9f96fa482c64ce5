package gopacketlayer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

var cmpAdvert = []cmp.Option{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

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

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type frame struct {
	data []byte
	lt   layers.LinkType
}

// readPcap returns the frames of one of vrrpcore's keepalived lab captures
// (keepalived 2.2.7, see ../testdata/keepalived/make.sh).
func readPcap(t testing.TB, name string) []frame {
	t.Helper()
	f, err := os.Open("../testdata/keepalived/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []frame
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, frame{data, r.LinkType()})
	}
}

// keepalivedExpect is what make.sh configured, per VRID.
var keepalivedExpect = map[uint8]struct {
	version  uint8
	priority uint8
	interval time.Duration
	vips     int
	ipv6     bool
}{
	51: {2, 150, time.Second, 2, false},
	52: {2, 100, 2 * time.Second, 1, false},
	53: {3, 200, 500 * time.Millisecond, 3, false},
	54: {3, 120, time.Second, 1, false},
	55: {3, 110, time.Second, 2, true},
	56: {3, 130, time.Second, 1, false},
}

// Every advert keepalived sent in the lab decodes through the layer as
// vrrpcore's Decode decodes it, with verified checksums and the configured
// values; each instance's last advert is its priority-0 resignation.
func TestKeepalivedCaptures(t *testing.T) {
	for _, file := range []string{"eth.pcap", "sll.pcap"} {
		t.Run(file, func(t *testing.T) {
			seen := map[uint8]int{}
			last := map[uint8]uint8{}
			frames := readPcap(t, file)
			first := layers.LayerTypeEthernet
			if frames[0].lt == layers.LinkTypeLinuxSLL {
				first = layers.LayerTypeLinuxSLL
			}
			p := newParser(first)
			for i, f := range frames {
				src, dst, err := p.decode(f.data)
				if err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				a := &p.vrrp.Advert
				var d vrrpcore.Advert
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
				if a.Checksummed != vrrpcore.ChecksumMessage && a.Checksummed != vrrpcore.ChecksumPseudoHeader {
					t.Errorf("VRID %d: checksum %v", a.VRID, a.Checksummed)
				}
				if a.Version != want.version || a.Interval != want.interval || len(a.Addrs) != want.vips ||
					a.Addrs[0].Is6() != want.ipv6 || (a.Priority != want.priority && a.Priority != 0) {
					t.Errorf("VRID %d: decoded %+v, want %+v", a.VRID, *a, want)
				}
				if p.vrrp.LayerPayload() != nil || p.vrrp.Src != src || p.vrrp.Dst != dst {
					t.Errorf("payload % x, addresses %v %v", p.vrrp.LayerPayload(), p.vrrp.Src, p.vrrp.Dst)
				}
				seen[a.VRID]++
				last[a.VRID] = a.Priority
			}
			for vrid := range keepalivedExpect {
				if seen[vrid] < 2 || last[vrid] != 0 {
					t.Errorf("VRID %d: %d adverts, last priority %d; want several ending with priority 0", vrid, seen[vrid], last[vrid])
				}
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
	err := l.Verify(netip.MustParseAddr("fe80::1"), vrrpcore.GroupIPv6)
	var de *vrrpcore.DecodeError
	if !errors.As(err, &de) || err.Error() != "vrrp: truncated at byte 12: need 24 bytes for 1 IPv6 address" {
		t.Errorf("Verify IPv4-shaped VRRPv3 in IPv6: %v", err)
	}
	v2 := unhex(t, "21 01 64 01 00 01 0000 c6336401 0000000000000000")
	if err := l.DecodeFromBytes(v2, df); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(netip.MustParseAddr("fe80::1"), vrrpcore.GroupIPv6); !errors.As(err, &de) || de.Field != "version" {
		t.Errorf("Verify VRRPv2 in IPv6: %v", err)
	}
	if err := l.Verify(netip.Addr{}, netip.Addr{}); err != nil || l.Checksummed != vrrpcore.ChecksumUnverified {
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

// SerializeTo rebuilds keepalived's frames byte for byte (Ethernet padding aside).
func TestLayerSerializeKeepalived(t *testing.T) {
	p := newParser(layers.LayerTypeEthernet)
	frames := readPcap(t, "eth.pcap")
	for _, f := range frames {
		if _, _, err := p.decode(f.data); err != nil {
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
		if len(got) > len(f.data) && bytes.Count(got[len(f.data):], []byte{0}) == len(got)-len(f.data) {
			got = got[:len(f.data)]
		}
		if !bytes.Equal(got, f.data) {
			t.Errorf("SerializeLayers =\n% x\nwant\n% x", buf.Bytes(), f.data)
		}
	}
	if len(frames) == 0 {
		t.Fatal("no frames")
	}
}

func TestLayerSerializeWithoutChecksum(t *testing.T) {
	l := Layer{Advert: vrrpcore.Advert{Version: 3, VRID: 1, Priority: 1, Interval: time.Second, Checksum: 0xbeef,
		Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}}
	buf := gopacket.NewSerializeBuffer()
	if err := l.SerializeTo(buf, gopacket.SerializeOptions{}); err != nil {
		t.Fatal(err)
	}
	if b := buf.Bytes(); len(b) != 24 || b[6] != 0xbe || b[7] != 0xef {
		t.Errorf("SerializeTo = % x, want 24 bytes carrying checksum be ef", b)
	}
	// VRRPv3 needs the addresses for its checksum; nothing is written.
	empty := gopacket.NewSerializeBuffer()
	if err := l.SerializeTo(empty, gopacket.SerializeOptions{ComputeChecksums: true}); err == nil || len(empty.Bytes()) != 0 {
		t.Errorf("SerializeTo computed a VRRPv3 checksum without addresses: %v, % x", err, empty.Bytes())
	}
	if l.LayerType() != layers.LayerTypeVRRP || l.CanDecode() != layers.LayerTypeVRRP || l.NextLayerType() != gopacket.LayerTypeZero {
		t.Error("layer types")
	}
}

func TestLayerParserAllocs(t *testing.T) {
	p := newParser(layers.LayerTypeEthernet)
	var frames [][]byte
	for _, f := range readPcap(t, "eth.pcap") {
		frames = append(frames, f.data)
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

// FuzzLayer feeds arbitrary messages and addresses to the layer, then
// Verify, and to vrrpcore's Decode: no panic, and the same result.
// Seeds: testdata/fuzz/FuzzLayer (vrrpcore's FuzzDecode seeds).
func FuzzLayer(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg, srcb, dstb []byte) {
		src, _ := netip.AddrFromSlice(srcb)
		dst, _ := netip.AddrFromSlice(dstb)
		var a vrrpcore.Advert
		err := a.Decode(msg, src, dst)
		var l Layer
		var fb feedback
		derr := l.DecodeFromBytes(msg, &fb)
		var de *vrrpcore.DecodeError
		if derr != nil && !errors.As(derr, &de) {
			t.Fatalf("DecodeFromBytes error of type %T: %v", derr, derr)
		}
		lerr := l.Verify(src, dst)
		if (err == nil) != (lerr == nil) || (err != nil && err.Error() != lerr.Error()) {
			t.Fatalf("Decode: %v\nlayer: %v", err, lerr)
		}
		if err == nil {
			if d := cmp.Diff(a, l.Advert, cmpAdvert...); d != "" {
				t.Fatalf("Decode and layer disagree (-Decode +layer):\n%s", d)
			}
			buf := gopacket.NewSerializeBuffer()
			if err := l.SerializeTo(buf, gopacket.SerializeOptions{}); err != nil {
				t.Fatalf("SerializeTo: %v", err)
			}
			if !bytes.Equal(buf.Bytes(), msg) {
				t.Fatalf("SerializeTo =\n% x\nwant\n% x", buf.Bytes(), msg)
			}
		}
	})
}
