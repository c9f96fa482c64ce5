package announce

import (
	"bytes"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// TestSenderLab sends a gratuitous ARP and an unsolicited NA from one lab
// host and checks that the other one receives exactly those frames, and
// that tshark, reading tcpdump's capture of them, calls them a gratuitous
// ARP and an unsolicited (not solicited, override) router NA.
func TestSenderLab(t *testing.T) {
	lab := netlabtest.New(t, "tcpdump", "tshark")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	capt, err := b.StartCapture(netlab.CaptureOptions{Interface: "eth0", Filter: "arp or icmp6"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := capt.Stop(); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("tshark", "-r", capt.File, "-Y", "arp or icmpv6.type == 136", "-T", "fields", "-E", "separator=,",
			"-e", "arp.isgratuitous", "-e", "arp.src.proto_ipv4", "-e", "icmpv6.nd.na.target_address",
			"-e", "icmpv6.nd.na.flag.r", "-e", "icmpv6.nd.na.flag.s", "-e", "icmpv6.nd.na.flag.o").CombinedOutput()
		if err != nil {
			t.Fatalf("tshark: %v\n%s", err, out)
		}
		// tshark 4.0 prints booleans as 1/0 (newer ones True/False).
		got := strings.NewReplacer("True", "1", "False", "0").Replace(string(out))
		for _, want := range []string{"1,198.51.100.77,,,,\n", ",,2001:db8::77,1,0,1\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("tshark does not show %q in:\n%s", want, out)
			}
		}
	}()
	// A packet socket in b that sees every frame arriving on eth0.
	var fd int
	if err := b.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		ifi, err := unixIfindex("eth0")
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}

	var s *Sender
	if err := a.Do(func() error {
		var err error
		s, err = Open("eth0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, ip := range []netip.Addr{netip.MustParseAddr("198.51.100.77"), netip.MustParseAddr("2001:db8::77")} {
		var want []byte
		if ip.Is4() {
			want, _ = GratuitousARP(s.Interface().HardwareAddr, ip)
		} else {
			want, _ = UnsolicitedNA(s.Interface().HardwareAddr, ip, true)
		}
		if err := s.Announce(ip); err != nil {
			t.Fatalf("Announce(%v): %v", ip, err)
		}
		deadline := time.Now().Add(3 * time.Second)
		buf := make([]byte, 2048)
		for {
			if time.Now().After(deadline) {
				t.Fatalf("announcement for %v never reached the peer", ip)
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			if bytes.Equal(buf[:n], want) {
				break
			}
		}
	}
}

func unixIfindex(name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}
