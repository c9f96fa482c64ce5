package netlab_test

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// namespacesWithPrefix lists named network namespaces starting with prefix.
func namespacesWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestPairPingAndTeardown(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	if got := namespacesWithPrefix(t, lab.ID()+"-"); len(got) != 2 {
		t.Fatalf("namespaces of the lab: %v, want 2", got)
	}
	if err := a.Ping(netip.MustParseAddr("198.51.100.2"), 5*time.Second); err != nil {
		t.Error(err)
	}
	if err := b.Ping(netip.MustParseAddr("2001:db8::1"), 5*time.Second); err != nil {
		t.Error(err)
	}
	ll, err := b.LinkLocal("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Ping(ll.WithZone("eth0"), 5*time.Second); err != nil {
		t.Error(err)
	}
	// An address nobody holds gets no reply.
	if err := a.Ping(netip.MustParseAddr("198.51.100.99"), 500*time.Millisecond); err == nil {
		t.Error("ping of an absent address succeeded")
	}
	// The root namespace was never touched: it holds none of the lab's addresses.
	inet6, err := os.ReadFile("/proc/net/if_inet6")
	if err == nil && strings.Contains(string(inet6), "20010db8000000000000000000000001") {
		t.Error("2001:db8::1 appeared in the root namespace")
	}

	// A process left running in a host, even one the lab did not start
	// itself, is killed on Close.
	out, err := a.Run("sh", "-c", "setsid sleep 300 </dev/null >/dev/null 2>&1 &")
	if err != nil {
		t.Fatal(err)
	}
	sleeper, err := b.Start("sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	out, err = a.Run("ip", "netns", "pids", a.Netns())
	if err != nil || len(strings.Fields(out)) == 0 {
		t.Fatalf("processes in %s: %q, %v; want the leaked sleep", a.Netns(), out, err)
	}
	leaked := strings.Fields(out)

	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	if got := namespacesWithPrefix(t, lab.ID()); len(got) != 0 {
		t.Errorf("namespaces left after Close: %v", got)
	}
	if _, err := os.Stat(lab.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab directory %s left after Close: %v", lab.Dir(), err)
	}
	if !sleeper.Exited() {
		t.Errorf("sleep (pid %d) still running after Close", sleeper.PID())
	}
	for _, pid := range leaked {
		// Killed processes may linger as zombies until init reaps them.
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err == nil && !strings.Contains(string(stat), ") Z ") && (strings.Contains(string(stat), "(sleep)") || strings.Contains(string(stat), "(setsid)")) {
			t.Errorf("leaked process still running after Close: %s", stat)
		}
	}
	if err := lab.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSwitchLAN(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t)
	hosts, _, err := lab.LAN(3)
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{"198.51.100.2", "198.51.100.3", "2001:db8::2", "2001:db8::3"} {
		if err := hosts[0].Ping(netip.MustParseAddr(dst), 5*time.Second); err != nil {
			t.Error(err)
		}
	}
	if _, err := lab.AddHost("h1"); err == nil {
		t.Error("second host named h1 accepted")
	}
}

func TestStaleNamespacesRemoved(t *testing.T) {
	t.Parallel()
	netlabtest.Require(t, "ip", "sysctl")
	const prefix = "vdtstale"
	maxPID, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(maxPID)))
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("%s-%d-c0ffee-a", prefix, n+1) // no process can have this PID
	live := fmt.Sprintf("%s-1-c0ffee-a", prefix)       // PID 1 is alive
	other := fmt.Sprintf("%sx-%d-c0ffee-a", prefix, n+1)
	deadDir := filepath.Join(os.TempDir(), fmt.Sprintf("%s-%d-c0ffee", prefix, n+1))
	for _, ns := range []string{dead, live, other} {
		if out, err := runIP("netns", "add", ns); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
		t.Cleanup(func() { _, _ = runIP("netns", "delete", ns) })
	}
	if err := os.Mkdir(deadDir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(deadDir) })

	lab, err := netlab.New(netlab.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	got := strings.Join(namespacesWithPrefix(t, prefix), " ")
	if strings.Contains(got, dead) {
		t.Errorf("stale namespace %s not removed", dead)
	}
	if !strings.Contains(got, live) || !strings.Contains(got, other) {
		t.Errorf("namespaces now %q: %s (live owner) and %s (other prefix) must stay", got, live, other)
	}
	if _, err := os.Stat(deadDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale directory %s not removed: %v", deadDir, err)
	}
}

func runIP(args ...string) (string, error) { return execCommand("ip", args...) }

func TestKeepalivedPairCaptureAndFailover(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived", "tcpdump")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("198.51.100.100")
	inst := netlab.VRRPInstance{Interface: "eth0", VRID: 51, AdvertInt: time.Second, VIPs: []string{vip.String() + "/24"}}
	var kas []*netlab.Keepalived
	for i, h := range []*netlab.Host{a, b} {
		in := inst
		in.Priority = 150 - 50*i
		k, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{in}})
		if err != nil {
			t.Fatal(err)
		}
		kas = append(kas, k)
	}
	if err := kas[0].WaitState(10*time.Second, "VI_51", "MASTER"); err != nil {
		t.Fatal(err)
	}
	holders, err := lab.Holders(vip)
	if err != nil || len(holders) != 1 || holders[0] != a {
		t.Fatalf("VIP holders %s, %v; want [a]", netlab.HostNames(holders), err)
	}

	capture, err := b.StartCapture(netlab.CaptureOptions{Interface: "eth0", Filter: "vrrp"})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for three adverts of a in the file: proves readiness and -U.
	if err := netlab.WaitFor(10*time.Second, func() (bool, error) {
		n, err := countVRRP(capture.File, "198.51.100.1")
		return n >= 3, err
	}); err != nil {
		t.Fatal(err)
	}

	// Clean shutdown of the master: b takes over and holds the VIP alone.
	if err := kas[0].Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := netlab.WaitFor(10*time.Second, func() (bool, error) {
		h, err := lab.Holders(vip)
		return len(h) == 1 && h[0] == b, err
	}); err != nil {
		t.Fatalf("after the master stopped: %v", err)
	}
	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}
	fromA, err := countVRRP(capture.File, "198.51.100.1")
	if err != nil {
		t.Fatal(err)
	}
	fromB, err := countVRRP(capture.File, "198.51.100.2")
	if err != nil {
		t.Fatal(err)
	}
	if fromA < 3 || fromB < 1 {
		t.Errorf("capture has %d adverts from a and %d from b; want >= 3 and >= 1", fromA, fromB)
	}
}

// countVRRP counts IPv4 packets with protocol 112 from src in a pcap file.
// A file still being written may end in a partial record: that ends the count.
func countVRRP(file, src string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil // header not written yet
		}
		return 0, err
	}
	n := 0
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			return n, nil
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok && ip.Protocol == 112 && ip.SrcIP.String() == src {
			n++
		}
	}
}

func TestKeepalivedConfigsAccepted(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived")
	h, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	cfg := netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{
		{Interface: "eth0", VRID: 1, Priority: 150, AdvertInt: 2 * time.Second, VIPs: []string{"198.51.100.100/24"}, AuthPass: "secret1"},
		{Interface: "eth0", VRID: 2, Version: 3, AdvertInt: 250 * time.Millisecond, VIPs: []string{"198.51.100.101"}, UnicastSrc: "198.51.100.1", UnicastPeers: []string{"198.51.100.2"}},
		{Interface: "eth0", VRID: 3, Version: 3, VIPs: []string{"2001:db8::100/64"}, NoPreempt: true},
	}}
	conf, err := cfg.Render()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(lab.Dir(), "check.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// keepalived's own parser, run inside the lab host.
	if out, err := h.Run("keepalived", "--config-test", "--use-file", path); err != nil {
		t.Fatalf("keepalived rejects the rendered config: %v\n%s\n%s", err, out, conf)
	}
}

func TestFirewallInHostOnly(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "iptables", "nft")
	h, err := lab.AddHost("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Iptables("-A", "INPUT", "-d", "224.0.0.18", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	out, err := h.Iptables("-S", "INPUT")
	if err != nil || !strings.Contains(out, "-A INPUT -d 224.0.0.18/32 -j DROP") {
		t.Errorf("iptables -S INPUT in the host: %q, %v", out, err)
	}
	if err := h.NftScript("table inet lab {\n\tchain input {\n\t\ttype filter hook input priority 0;\n\t\tip6 daddr ff02::12 drop\n\t}\n}\n"); err != nil {
		t.Fatal(err)
	}
	out, err = h.Nft("list", "table", "inet", "lab")
	if err != nil || !strings.Contains(out, "ip6 daddr ff02::12 drop") {
		t.Errorf("nft list table inet lab: %q, %v", out, err)
	}
	// A bad rule reports iptables's own message.
	_, err = h.Iptables("-A", "NOSUCHCHAIN", "-j", "DROP")
	var ce *netlab.CmdError
	if !errors.As(err, &ce) || ce.ExitCode == 0 || ce.Host != "a" {
		t.Errorf("bad iptables rule: %v", err)
	}
}

// execCommand runs a command outside any lab host (only for ip netns add and
// delete of the stale-name fixtures) and returns its combined output.
func execCommand(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestVLAN checks both ways to put a host on VLAN 10 of a trunk: a real
// 802.1Q subinterface (when the kernel has 8021q) and TagVLAN (always): pings
// pass, and a capture on the trunk interface shows the 802.1Q tags.
func TestVLAN(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"subinterface", "tc"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			lab := netlabtest.New(t, "tcpdump")
			a, b, err := lab.Pair()
			if err != nil {
				t.Fatal(err)
			}
			ifname := "eth0"
			for _, h := range []*netlab.Host{a, b} {
				if mode == "tc" {
					if err := h.TagVLAN("eth0", 10); err != nil {
						t.Fatal(err)
					}
					continue
				}
				ifname, err = h.AddVLAN("eth0", 10)
				if errors.Is(err, netlab.ErrNoKernelVLAN) {
					t.Skip(err)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := a.AddAddr(ifname, "203.0.113.1/24"); err != nil {
				t.Fatal(err)
			}
			if err := b.AddAddr(ifname, "203.0.113.2/24"); err != nil {
				t.Fatal(err)
			}
			c, err := b.StartCapture(netlab.CaptureOptions{Interface: "eth0", Filter: "vlan 10 and icmp"})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Ping(netip.MustParseAddr("203.0.113.2"), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			var tagged int
			if err := netlab.WaitFor(5*time.Second, func() (bool, error) {
				tagged, err = countTagged(c.File, 10)
				return tagged >= 2, err // request and reply
			}); err != nil {
				t.Fatalf("%d ICMP frames tagged with VLAN 10 on b's eth0, want request and reply: %v", tagged, err)
			}
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// countTagged counts frames carrying an 802.1Q tag with vid in a pcap file.
func countTagged(file string, vid uint16) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		return 0, err
	}
	n := 0
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			return n, nil
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		if d, ok := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); ok && d.VLANIdentifier == vid {
			n++
		}
	}
}
