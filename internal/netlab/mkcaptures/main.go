// Command mkcaptures makes the real keepalived captures in testdata/captures:
// for each scenario it builds a two-host lab in network namespaces
// (internal/netlab), runs keepalived on both hosts, sets up the firewall the
// scenario needs on the backup and records the VRRP traffic on the backup's
// interface with tcpdump (and dumpcap for pcapng).
//
// Run it as root from the module root:
//
//	go run ./internal/netlab/mkcaptures -out testdata/captures
//	go run ./internal/netlab/mkcaptures -out /tmp/caps -only v2-healthy,v2-vlan
//
// Captures end after a number of adverts rather than a fixed time, so each
// file holds about 15 seconds of traffic (7 at 0.5 s intervals). Nothing is
// configured outside the lab's namespaces.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// adverts is how many adverts per sender a steady-state capture holds.
const adverts = 15

func main() {
	out := flag.String("out", "testdata/captures", "directory to write the captures to")
	only := flag.String("only", "", "comma-separated scenario names to make (default all)")
	list := flag.Bool("list", false, "list the scenarios and exit")
	verbose := flag.Bool("v", false, "print every command the lab runs")
	keep := flag.Bool("keep", false, "keep each lab's directory (configs, logs, raw captures) and print its path")
	flag.Parse()

	if *list {
		for _, s := range scenarios {
			fmt.Printf("%-24s %s\n", s.name, s.about)
		}
		return
	}
	want := map[string]bool{}
	if *only != "" {
		for _, n := range strings.Split(*only, ",") {
			if !slices.ContainsFunc(scenarios, func(s scenario) bool { return s.name == n }) {
				fatalf("unknown scenario %q (see -list)", n)
			}
			want[n] = true
		}
	}
	if os.Geteuid() != 0 {
		fatalf("needs root: it creates network namespaces")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fatalf("%v", err)
	}
	failed := false
	for _, s := range scenarios {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		start := time.Now()
		files, err := runScenario(s, *out, *verbose, *keep)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: FAILED: %v\n", s.name, err)
			failed = true
			continue
		}
		for _, f := range files {
			fmt.Printf("%s: wrote %s (%d bytes) in %v\n", s.name, f, size(f), time.Since(start).Round(time.Second/10))
		}
	}
	if failed {
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mkcaptures: "+format+"\n", args...)
	os.Exit(1)
}

func size(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// env is what a scenario works with: the lab and its two hosts, a (the
// intended master, priority 150) and b (the backup, priority 100).
type env struct {
	lab  *netlab.Lab
	a, b *netlab.Host
	out  string
}

type scenario struct {
	name  string
	about string
	run   func(e *env) ([]string, error)
}

// runScenario runs s in a lab of its own and returns the files it wrote.
func runScenario(s scenario, out string, verbose, keep bool) ([]string, error) {
	opts := netlab.Options{Prefix: "vdcap", KeepDir: keep}
	if verbose {
		opts.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s: "+format+"\n", append([]any{s.name}, args...)...)
		}
	}
	lab, err := netlab.New(opts)
	if err != nil {
		return nil, err
	}
	files, err := func() ([]string, error) {
		a, b, err := lab.Pair()
		if err != nil {
			return nil, err
		}
		return s.run(&env{lab: lab, a: a, b: b, out: out})
	}()
	if err != nil {
		for _, p := range lab.Processes() {
			fmt.Fprintf(os.Stderr, "--- %s on %s:\n%s\n", strings.Join(p.Args, " "), p.Host.Name(), p.Log())
		}
	}
	if keep {
		fmt.Fprintf(os.Stderr, "%s: lab directory %s\n", s.name, lab.Dir())
	}
	return files, errors.Join(err, lab.Close())
}

// Addresses of the pair (netlab.Pair) and the VIPs used.
var (
	addrA  = netip.MustParseAddr("198.51.100.1")
	addrB  = netip.MustParseAddr("198.51.100.2")
	vip4   = netip.MustParseAddr("198.51.100.100")
	vip6   = netip.MustParseAddr("2001:db8::100")
	filter = "vrrp or ip6 proto 112"
)

// instance is the scenario's VRRP instance, VRID 51 on eth0 with VIP
// 198.51.100.100/24, advert_int 1 s, VRRPv2.
func instance() netlab.VRRPInstance {
	return netlab.VRRPInstance{
		Interface: "eth0", VRID: 51, AdvertInt: time.Second,
		VIPs: []string{vip4.String() + "/24"},
	}
}

// start runs keepalived on a (priority 150) and b (priority 100) with the
// instance, after mod has adjusted it for each host (index 0 = a).
func (e *env) start(in netlab.VRRPInstance, mod func(i int, in *netlab.VRRPInstance)) ([2]*netlab.Keepalived, error) {
	var ks [2]*netlab.Keepalived
	for i, h := range []*netlab.Host{e.a, e.b} {
		hin := in
		hin.Priority = 150 - 50*i
		if mod != nil {
			mod(i, &hin)
		}
		k, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{hin}})
		if err != nil {
			return ks, err
		}
		ks[i] = k
	}
	return ks, nil
}

// waitHolders waits until exactly the given hosts hold vip.
func (e *env) waitHolders(vip netip.Addr, hosts ...*netlab.Host) error {
	err := netlab.WaitFor(20*time.Second, func() (bool, error) {
		h, err := e.lab.Holders(vip)
		return err == nil && slices.Equal(h, hosts), err
	})
	if err != nil {
		h, _ := e.lab.Holders(vip)
		return fmt.Errorf("waiting until %s hold %v (now %s): %w", netlab.HostNames(hosts), vip, netlab.HostNames(h), err)
	}
	return nil
}

// capture starts tcpdump on b's interface into the lab directory.
func (e *env) capture(o netlab.CaptureOptions) (*netlab.Capture, error) {
	if o.Interface == "" {
		o.Interface = "eth0"
	}
	if o.Filter == "" {
		o.Filter = filter
	}
	return e.b.StartCapture(o)
}

// waitAdverts waits until file holds at least n VRRP packets from each of
// the sources (matched on IP source address, or link-local for IPv6 when
// the source is the host's name).
func waitAdverts(file string, n int, timeout time.Duration, srcs ...netip.Addr) error {
	var counts map[netip.Addr]int
	err := netlab.WaitFor(timeout, func() (bool, error) {
		var err error
		counts, err = countVRRP(file)
		if err != nil {
			return false, err
		}
		for _, s := range srcs {
			if counts[s] < n {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d adverts from each of %v in %s (have %v): %w", n, srcs, filepath.Base(file), counts, err)
	}
	return nil
}

// countVRRP counts VRRP packets per IP source in an Ethernet pcap file that
// may still be being written (a partial last record ends the count).
func countVRRP(file string) (map[netip.Addr]int, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	counts := map[netip.Addr]int{}
	r, err := pcapgo.NewReader(f)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return counts, nil
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			return counts, nil
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		switch ip := p.NetworkLayer().(type) {
		case *layers.IPv4:
			if ip.Protocol == 112 {
				a, _ := netip.AddrFromSlice(ip.SrcIP)
				counts[a.Unmap()]++
			}
		case *layers.IPv6:
			if ip.NextHeader == 112 {
				a, _ := netip.AddrFromSlice(ip.SrcIP)
				counts[a]++
			}
		}
	}
}

// finish stops the captures and copies their files to the output directory
// under the given names.
func (e *env) finish(caps []*netlab.Capture, names []string) ([]string, error) {
	var errs []error
	for _, c := range caps {
		errs = append(errs, c.Stop())
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var files []string
	for i, c := range caps {
		dst := filepath.Join(e.out, names[i])
		if err := copyFile(c.File, dst); err != nil {
			return nil, err
		}
		files = append(files, dst)
	}
	return files, nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// steady captures a converged pair: a holds the VIP alone, then the capture
// on b runs until a has sent `adverts` adverts.
func (e *env) steady(name string, vip netip.Addr, in netlab.VRRPInstance, src func() (netip.Addr, error)) ([]string, error) {
	return e.steadyOn("eth0", filter, name, vip, in, src)
}

// steadyOn is steady with the capture interface and filter given.
func (e *env) steadyOn(iface, bpf, name string, vip netip.Addr, in netlab.VRRPInstance, src func() (netip.Addr, error)) ([]string, error) {
	if _, err := e.start(in, nil); err != nil {
		return nil, err
	}
	if err := e.waitHolders(vip, e.a); err != nil {
		return nil, err
	}
	s, err := src()
	if err != nil {
		return nil, err
	}
	c, err := e.capture(netlab.CaptureOptions{Interface: iface, Filter: bpf})
	if err != nil {
		return nil, err
	}
	if err := waitAdverts(c.File, adverts, 60*time.Second, s); err != nil {
		return nil, err
	}
	// The backup must still be backup: nothing but a's adverts.
	if err := e.waitHolders(vip, e.a); err != nil {
		return nil, err
	}
	return e.finish([]*netlab.Capture{c}, []string{name})
}

func fixed(a netip.Addr) func() (netip.Addr, error) {
	return func() (netip.Addr, error) { return a, nil }
}

// linkLocalOf returns the IPv6 link-local source keepalived uses on h's eth0.
func linkLocalOf(h *netlab.Host) func() (netip.Addr, error) {
	return func() (netip.Addr, error) {
		a, err := h.LinkLocal("eth0")
		return a.WithZone(""), err
	}
}

// splitBrain makes the split-brain captures: with the backup's firewall
// dropping the master's adverts (block), it starts every capture in caps on b
// before keepalived runs, so they all see the same traffic from the first
// advert on; waits until both hosts hold the VIP and each source has sent
// `adverts` adverts; then freezes both VRRP processes (SIGSTOP) so that no
// advert is in flight while the captures stop, and checks that every file
// holds the same number of packets.
func (e *env) splitBrain(vip netip.Addr, in netlab.VRRPInstance, block func() error, srcs []netip.Addr, caps []netlab.CaptureOptions, names []string) ([]string, error) {
	if err := block(); err != nil {
		return nil, err
	}
	var running []*netlab.Capture
	for _, o := range caps {
		c, err := e.capture(o)
		if err != nil {
			return nil, err
		}
		running = append(running, c)
	}
	ks, err := e.start(in, nil)
	if err != nil {
		return nil, err
	}
	if err := e.waitHolders(vip, e.a, e.b); err != nil {
		return nil, err
	}
	if err := waitAdverts(running[0].File, adverts, 60*time.Second, srcs...); err != nil {
		return nil, err
	}
	for _, k := range ks {
		pid, err := k.VRRPPID()
		if err != nil {
			return nil, err
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return nil, fmt.Errorf("freezing keepalived's VRRP process %d: %w", pid, err)
		}
		defer syscall.Kill(pid, syscall.SIGCONT)
	}
	// Wait until every capture has written every packet.
	var counts []int
	if err := netlab.WaitFor(10*time.Second, func() (bool, error) {
		counts = counts[:0]
		for _, c := range running {
			n, err := countRecords(c.File)
			if err != nil {
				return false, err
			}
			counts = append(counts, n)
		}
		return !slices.ContainsFunc(counts, func(n int) bool { return n != counts[0] }), nil
	}); err != nil {
		return nil, fmt.Errorf("captures disagree on the packet count %v: %w", counts, err)
	}
	return e.finish(running, names)
}

// countRecords counts the complete packet records in a pcap or pcapng file
// of any link type.
func countRecords(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	if len(b) < 24 {
		return 0, nil
	}
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d: // pcap, µs or ns, little-endian
		n := 0
		for off := 24; off+16 <= len(b); n++ {
			l := int(binary.LittleEndian.Uint32(b[off+8:]))
			if off+16+l > len(b) {
				break
			}
			off += 16 + l
		}
		return n, nil
	case 0x0a0d0d0a: // pcapng
		var bo binary.ByteOrder = binary.LittleEndian
		if binary.LittleEndian.Uint32(b[8:]) != 0x1a2b3c4d {
			bo = binary.BigEndian
		}
		n := 0
		for off := 0; off+12 <= len(b); {
			typ, l := bo.Uint32(b[off:]), int(bo.Uint32(b[off+4:]))
			if l < 12 || off+l > len(b) {
				break
			}
			if typ == 6 || typ == 3 || typ == 2 { // enhanced, simple, obsolete packet blocks
				n++
			}
			off += l
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: not a little-endian pcap or pcapng file", file)
}

var scenarios = []scenario{
	{"v2-healthy", "VRRPv2 pair, VRID 51, priorities 150/100, advert_int 1: only the master advertises",
		func(e *env) ([]string, error) {
			return e.steady("v2-healthy.pcap", vip4, instance(), fixed(addrA))
		}},
	{"v2-pass-healthy", "as v2-healthy with auth_type PASS (same password on both)",
		func(e *env) ([]string, error) {
			in := instance()
			in.AuthPass = "vrrpdoc"
			return e.steady("v2-pass-healthy.pcap", vip4, in, fixed(addrA))
		}},
	{"v2-split-brain", "VRRPv2 pair, backup's iptables drops 224.0.0.18 in INPUT: both advertise (pcap, pcapng, SLL, SLL2)",
		func(e *env) ([]string, error) {
			block := func() error {
				_, err := e.b.Iptables("-A", "INPUT", "-d", "224.0.0.18", "-j", "DROP")
				return err
			}
			return e.splitBrain(vip4, instance(), block, []netip.Addr{addrA, addrB},
				[]netlab.CaptureOptions{{}, {Pcapng: true}, {Interface: "any", LinkType: "LINUX_SLL"}, {Interface: "any", LinkType: "LINUX_SLL2"}},
				[]string{"v2-split-brain.pcap", "v2-split-brain.pcapng", "v2-split-brain-sll.pcap", "v2-split-brain-sll2.pcap"})
		}},
	{"v2-auth-mismatch", "VRRPv2 pair with different PASS passwords: each ignores the other, both advertise",
		func(e *env) ([]string, error) {
			if _, err := e.start(instance(), func(i int, in *netlab.VRRPInstance) {
				in.AuthPass = []string{"alpha123", "bravo456"}[i]
			}); err != nil {
				return nil, err
			}
			if err := e.waitHolders(vip4, e.a, e.b); err != nil {
				return nil, err
			}
			c, err := e.capture(netlab.CaptureOptions{})
			if err != nil {
				return nil, err
			}
			// Both masters send irregularly here (keepalived 2.2.7, as
			// observed: about 0.7 adverts/s each), so wait for fewer.
			if err := waitAdverts(c.File, 8, 60*time.Second, addrA, addrB); err != nil {
				return nil, err
			}
			return e.finish([]*netlab.Capture{c}, []string{"v2-auth-mismatch.pcap"})
		}},
	{"v2-master-shutdown", "VRRPv2 pair; the master's keepalived gets SIGTERM: priority-0 advert, then the backup takes over",
		func(e *env) ([]string, error) {
			ks, err := e.start(instance(), nil)
			if err != nil {
				return nil, err
			}
			if err := e.waitHolders(vip4, e.a); err != nil {
				return nil, err
			}
			c, err := e.capture(netlab.CaptureOptions{})
			if err != nil {
				return nil, err
			}
			if err := waitAdverts(c.File, 5, 30*time.Second, addrA); err != nil {
				return nil, err
			}
			if err := ks[0].Stop(10 * time.Second); err != nil {
				return nil, fmt.Errorf("stopping the master: %w", err)
			}
			if err := e.waitHolders(vip4, e.b); err != nil {
				return nil, err
			}
			if err := waitAdverts(c.File, 8, 30*time.Second, addrB); err != nil {
				return nil, err
			}
			return e.finish([]*netlab.Capture{c}, []string{"v2-master-shutdown.pcap"})
		}},
	{"v3-ipv4-healthy", "VRRPv3 over IPv4, advert_int 1",
		func(e *env) ([]string, error) {
			in := instance()
			in.Version = 3
			return e.steady("v3-ipv4-healthy.pcap", vip4, in, fixed(addrA))
		}},
	{"v3-ipv4-healthy-500ms", "VRRPv3 over IPv4, advert_int 0.5 (50 centiseconds)",
		func(e *env) ([]string, error) {
			in := instance()
			in.Version = 3
			in.AdvertInt = 500 * time.Millisecond
			return e.steady("v3-ipv4-healthy-500ms.pcap", vip4, in, fixed(addrA))
		}},
	{"v3-ipv6-healthy", "VRRPv3 over IPv6, VIP 2001:db8::100, link-local sources, advert_int 1",
		func(e *env) ([]string, error) {
			in := instance()
			in.Version = 3
			in.VIPs = []string{vip6.String() + "/64"}
			return e.steady("v3-ipv6-healthy.pcap", vip6, in, linkLocalOf(e.a))
		}},
	{"v3-ipv6-split-brain", "VRRPv3 over IPv6, backup's nftables drops ff02::12 in input: both advertise",
		func(e *env) ([]string, error) {
			in := instance()
			in.Version = 3
			in.VIPs = []string{vip6.String() + "/64"}
			block := func() error {
				return e.b.NftScript(nftDropV6)
			}
			la, err := linkLocalOf(e.a)()
			if err != nil {
				return nil, err
			}
			lb, err := linkLocalOf(e.b)()
			if err != nil {
				return nil, err
			}
			return e.splitBrain(vip6, in, block, []netip.Addr{la, lb}, []netlab.CaptureOptions{{}}, []string{"v3-ipv6-split-brain.pcap"})
		}},
	{"v2-vlan", "VRRPv2 pair on VLAN 10 (203.0.113.0/24, VIP 203.0.113.100), captured on the trunk (parent) interface: 802.1Q tags visible",
		func(e *env) ([]string, error) {
			// A real eth0.10 subinterface where the kernel has 8021q;
			// otherwise eth0 itself is made to tag and untag VLAN 10 in tc.
			ifname, how := "", "802.1Q subinterfaces eth0.10"
			for _, h := range []*netlab.Host{e.a, e.b} {
				n, err := h.AddVLAN("eth0", 10)
				if errors.Is(err, netlab.ErrNoKernelVLAN) {
					ifname, how = "eth0", "eth0 tagging VLAN 10 in tc (eBPF skb_vlan_push/pop; kernel without 8021q)"
					break
				}
				if err != nil {
					return nil, err
				}
				ifname = n
			}
			fmt.Fprintf(os.Stderr, "v2-vlan: VLAN 10 through %s\n", how)
			for i, h := range []*netlab.Host{e.a, e.b} {
				if ifname == "eth0" {
					// Only VLAN 10 addresses on the tagging interface.
					if err := h.DelAddr("eth0", netlab.LANAddr4(i+1)); err != nil {
						return nil, err
					}
					if err := h.TagVLAN("eth0", 10); err != nil {
						return nil, err
					}
				}
				if err := h.AddAddr(ifname, fmt.Sprintf("203.0.113.%d/24", i+1)); err != nil {
					return nil, err
				}
			}
			in := instance()
			in.Interface = ifname
			in.VIPs = []string{vlanVIP.String() + "/24"}
			return e.steadyOn("eth0", "vlan 10 and vrrp", "v2-vlan.pcap", vlanVIP, in, fixed(netip.MustParseAddr("203.0.113.1")))
		}},
}

// vlanVIP is the VIP of the v2-vlan scenario.
var vlanVIP = netip.MustParseAddr("203.0.113.100")

// nftDropV6 is the backup's firewall in v3-ipv6-split-brain.
const nftDropV6 = `table inet vrrplab {
	chain input {
		type filter hook input priority filter; policy accept;
		ip6 daddr ff02::12 drop
	}
}
`
