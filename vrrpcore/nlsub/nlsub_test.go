package nlsub

import (
	"encoding/binary"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// next waits for an update on ch.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case u, ok := <-ch:
		if !ok {
			t.Fatalf("%s: subscription ended", what)
		}
		return u
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no update in 5 s", what)
	}
	panic("unreachable")
}

// TestLabSameAsVishvananda subscribes with this package and with
// vishvananda/netlink side by side in a lab host, changes a link and its
// addresses, and wants the same updates from both.
func TestLabSameAsVishvananda(t *testing.T) {
	lab := netlabtest.New(t)
	h, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer close(done)
	links, refLinks := make(chan netlink.LinkUpdate, 64), make(chan netlink.LinkUpdate, 64)
	addrs, refAddrs := make(chan netlink.AddrUpdate, 64), make(chan netlink.AddrUpdate, 64)
	var onErr []error
	err = h.Do(func() error {
		for _, f := range []func() error{
			func() error { return Links(links, done, func(err error) { onErr = append(onErr, err) }) },
			func() error { return Addrs(addrs, done, func(err error) { onErr = append(onErr, err) }) },
			func() error { return netlink.LinkSubscribe(refLinks, done) },
			func() error { return netlink.AddrSubscribe(refAddrs, done) },
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{
		{"link", "set", "eth0", "down"},
		{"addr", "add", "203.0.113.7/24", "dev", "eth0"},
		{"addr", "add", "203.0.113.9", "peer", "203.0.113.10/32", "dev", "eth0"},
		{"addr", "add", "2001:db8::7/64", "dev", "eth0", "nodad"},
		{"addr", "del", "203.0.113.7/24", "dev", "eth0"},
		{"link", "set", "eth0", "up"},
	} {
		if out, err := h.Run("ip", c...); err != nil {
			t.Fatalf("ip %v: %v\n%s", c, err, out)
		}
	}
	// Every update the reference sends, in its order.
	deadline := time.After(2 * time.Second)
	for n := 0; ; n++ {
		select {
		case want := <-refLinks:
			got := next(t, links, "link")
			if got.Header.Type != want.Header.Type || got.Index != want.Index || got.Attrs().Name != want.Attrs().Name ||
				got.Attrs().Flags != want.Attrs().Flags || got.Attrs().RawFlags != want.Attrs().RawFlags ||
				got.Attrs().OperState != want.Attrs().OperState || got.Attrs().HardwareAddr.String() != want.Attrs().HardwareAddr.String() {
				t.Errorf("link update %d: got %d %+v, want %d %+v", n, got.Header.Type, *got.Attrs(), want.Header.Type, *want.Attrs())
			}
			continue
		case want := <-refAddrs:
			got := next(t, addrs, "address")
			if got.LinkAddress.String() != want.LinkAddress.String() || got.LinkIndex != want.LinkIndex || got.NewAddr != want.NewAddr ||
				got.Flags != want.Flags || got.Scope != want.Scope || got.ValidLft != want.ValidLft || got.PreferedLft != want.PreferedLft {
				t.Errorf("address update %d: got %+v, want %+v", n, got, want)
			}
			continue
		case <-deadline:
		}
		if n < 6 {
			t.Fatalf("only %d updates from the reference subscription", n)
		}
		break
	}
	select {
	case u := <-links:
		t.Errorf("a link update the reference did not send: %+v", u)
	case u := <-addrs:
		t.Errorf("an address update the reference did not send: %+v", u)
	default:
	}
	if len(onErr) > 0 {
		t.Errorf("errors reported: %v", onErr)
	}
}

// TestLabEndsOnDone: closing done ends the subscription and closes ch.
func TestLabEndsOnDone(t *testing.T) {
	lab := netlabtest.New(t)
	h, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	ch := make(chan netlink.LinkUpdate, 1)
	if err := h.Do(func() error { return Links(ch, done, nil) }); err != nil {
		t.Fatal(err)
	}
	close(done)
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("an update after done, want the channel closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel still open 5 s after done")
	}
}

// TestLabSmallStacks: a subscription's reader keeps a small stack, not
// the 128 KiB of vishvananda/netlink's (a 64 KiB array on the stack):
// the stacks of n subscriptions each, ours and vishvananda's, after every
// reader received a notification.
func TestLabSmallStacks(t *testing.T) {
	const n = 16
	lab := netlabtest.New(t)
	h, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	grown := func(subscribe func(chan netlink.AddrUpdate, chan struct{}) error, addr string) int64 {
		done := make(chan struct{})
		defer close(done)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		chans := make([]chan netlink.AddrUpdate, n)
		err := h.Do(func() error {
			for i := range chans {
				chans[i] = make(chan netlink.AddrUpdate, 8)
				if err := subscribe(chans[i], done); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if out, err := h.Run("ip", "addr", "add", addr, "dev", "eth0"); err != nil {
			t.Fatalf("ip addr add: %v\n%s", err, out)
		}
		for i, ch := range chans {
			if u := next(t, ch, "address"); u.LinkAddress.String() != addr {
				t.Fatalf("subscription %d: %v, want %s", i, u.LinkAddress, addr)
			}
		}
		runtime.ReadMemStats(&after)
		return int64(after.StackInuse) - int64(before.StackInuse)
	}
	ours := grown(func(ch chan netlink.AddrUpdate, done chan struct{}) error { return Addrs(ch, done, nil) }, "203.0.113.7/24")
	ref := grown(func(ch chan netlink.AddrUpdate, done chan struct{}) error { return netlink.AddrSubscribe(ch, done) }, "203.0.113.8/24")
	t.Logf("stacks of %d subscriptions: %d KiB (vishvananda/netlink: %d KiB)", n, ours/1024, ref/1024)
	if ours*4 > ref {
		t.Errorf("stacks of %d subscriptions: %d KiB, want under a quarter of vishvananda/netlink's %d KiB", n, ours/1024, ref/1024)
	}
}

func addrMessage(typ uint16, family, prefix uint8, index uint32, attrs ...[]byte) syscall.NetlinkMessage {
	data := []byte{family, prefix, 0, 0, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(data[4:], index)
	for _, a := range attrs {
		data = append(data, a...)
	}
	return syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: typ}, Data: data}
}

func rtattr(typ uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestParseAddrErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		m    syscall.NetlinkMessage
	}{
		{"short", syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWADDR}, Data: []byte{2, 24}}},
		{"wrong type", addrMessage(unix.RTM_NEWLINK, unix.AF_INET, 24, 2, rtattr(unix.IFA_ADDRESS, []byte{203, 0, 113, 1}))},
		{"no address", addrMessage(unix.RTM_NEWADDR, unix.AF_INET, 24, 2)},
		{"odd address", addrMessage(unix.RTM_NEWADDR, unix.AF_INET, 24, 2, rtattr(unix.IFA_ADDRESS, []byte{203, 0, 113}))},
		{"prefix too long", addrMessage(unix.RTM_NEWADDR, unix.AF_INET, 33, 2, rtattr(unix.IFA_ADDRESS, []byte{203, 0, 113, 1}))},
		{"cut attribute", addrMessage(unix.RTM_NEWADDR, unix.AF_INET, 24, 2, rtattr(unix.IFA_ADDRESS, []byte{203, 0, 113, 1})[:6])},
	} {
		if u, err := ParseAddr(c.m); err == nil {
			t.Errorf("%s: parsed as %+v, want an error", c.name, u)
		}
	}
	u, err := ParseAddr(addrMessage(unix.RTM_DELADDR, unix.AF_INET, 24, 3, rtattr(unix.IFA_ADDRESS, []byte{203, 0, 113, 1}), rtattr(unix.IFA_LOCAL, []byte{203, 0, 113, 1})))
	if err != nil || u.LinkAddress.String() != "203.0.113.1/24" || u.NewAddr || u.LinkIndex != 3 {
		t.Errorf("a deleted IPv4 address: %+v, %v", u, err)
	}
}

func TestParseLinkErrors(t *testing.T) {
	if _, err := ParseLink(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWLINK}, Data: make([]byte, 8)}); err == nil {
		t.Error("a short link message parsed")
	}
	if _, err := ParseLink(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWADDR}, Data: make([]byte, 16)}); err == nil {
		t.Error("an address message parsed as a link")
	}
}

// FuzzParse: no message makes the parsers panic.
func FuzzParse(f *testing.F) {
	f.Add(uint16(unix.RTM_NEWADDR), addrMessage(unix.RTM_NEWADDR, unix.AF_INET, 24, 2, rtattr(unix.IFA_ADDRESS, []byte{203, 0, 113, 1})).Data)
	f.Add(uint16(unix.RTM_NEWADDR), addrMessage(unix.RTM_NEWADDR, unix.AF_INET6, 64, 2, rtattr(unix.IFA_ADDRESS, make([]byte, 16)), rtattr(unix.IFA_CACHEINFO, make([]byte, 16))).Data)
	f.Add(uint16(unix.RTM_NEWLINK), append(make([]byte, 16), rtattr(unix.IFLA_IFNAME, []byte("eth0\x00"))...))
	f.Fuzz(func(t *testing.T, typ uint16, data []byte) {
		m := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: typ}, Data: data}
		ParseAddr(m)
		ParseLink(m)
	})
}
