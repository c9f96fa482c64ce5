package watch

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
)

// fakeNotifier hands the queued notifications to the next drain.
type fakeNotifier struct {
	queue []rtEvent
	lost  bool
}

func (f *fakeNotifier) drain(fn func(rtEvent)) (bool, error) {
	for _, ev := range f.queue {
		fn(ev)
	}
	lost := f.lost
	f.queue, f.lost = nil, false
	return lost, nil
}

func (f *fakeNotifier) close() {}

// writeIGMP writes procDir/net/igmp with users sockets holding 224.0.0.18
// on interface 7 (eth0); igmp6 is absent (no IPv6).
func writeIGMP(t *testing.T, procDir string, users int) {
	t.Helper()
	text := "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n" +
		"7\teth0      :     2      V3\n" +
		"\t\t\t\t010000E0     1 0:00000000\t\t0\n"
	if users > 0 {
		text += "\t\t\t\t120000E0     " + string(rune('0'+users)) + " 0:00000000\t\t0\n"
	}
	if err := os.WriteFile(filepath.Join(procDir, "net", "igmp"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKernFactsCache: an interface is read again only when a notification
// for it (by index, or by name for a link) arrived, when notifications were
// lost, while its reading had a problem and after unchangedEvery; the
// group memberships after membersEvery, with a notification for a watched
// interface, when the watch's own memberships changed, and every window
// while a group is not joined.
func TestKernFactsCache(t *testing.T) {
	proc := t.TempDir()
	if err := os.Mkdir(filepath.Join(proc, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeIGMP(t, proc, 1)
	ev := &fakeNotifier{}
	w := &Watcher{log: slog.New(slog.DiscardHandler), procDir: proc, ifaces: []string{"eth0"}, taps: map[string]*tap{},
		base: []check.Instance{{Interface: "eth0", VRID: 51, Family: 4}}}
	w.kern.ev = ev
	reads, up, problem := 0, true, ""
	w.kern.readLink = func(name string) (check.Interface, int) {
		reads++
		ifc := check.Interface{Name: name, Exists: true, Up: up, Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}}
		if problem != "" {
			ifc.Problems = []string{problem}
		}
		return ifc, 7
	}
	now := t0
	window := func(step time.Duration) check.Interface {
		t.Helper()
		now = now.Add(step)
		r := &check.Report{}
		w.interfaceFacts(r, now)
		if len(r.Interfaces) != 1 {
			t.Fatalf("interfaces %+v", r.Interfaces)
		}
		return r.Interfaces[0]
	}
	joined := func(ifc check.Interface) bool {
		t.Helper()
		if ifc.JoinedVRRP4 == nil || ifc.JoinedVRRP6 == nil {
			t.Fatalf("memberships not known: %+v", ifc)
		}
		return *ifc.JoinedVRRP4
	}
	expect := func(what string, ifc check.Interface, wantReads int, wantUp, wantJoined bool) {
		t.Helper()
		if reads != wantReads || ifc.Up != wantUp || joined(ifc) != wantJoined {
			t.Errorf("%s: %d readings, up %v, joined %v; want %d, %v, %v", what, reads, ifc.Up, joined(ifc), wantReads, wantUp, wantJoined)
		}
	}

	expect("first window", window(0), 1, true, true)
	// Changes without a notification are not seen, within the bounds.
	up = false
	writeIGMP(t, proc, 0)
	expect("nothing notified", window(4*time.Second), 1, true, true)
	// Another interface's address: still nothing for eth0.
	ev.queue = []rtEvent{{index: 9, addrs: [2]netip.Addr{netip.MustParseAddr("203.0.113.9")}}}
	expect("another interface's address", window(time.Second), 1, true, true)
	// eth0's own address refreshed (RTM_NEWADDR of an address read): the
	// list is as it was.
	known := netip.MustParseAddr("198.51.100.2")
	ev.queue = []rtEvent{{index: 7, addrs: [2]netip.Addr{known, known}, prefixLen: 24, added: true}}
	expect("eth0's address refreshed", window(time.Second), 1, true, true)
	// Another prefix length, or deleted: read again, memberships too.
	ev.queue = []rtEvent{{index: 7, addrs: [2]netip.Addr{known, known}, prefixLen: 25, added: true}}
	expect("eth0's address with another length", window(time.Second), 2, false, false)
	up = true
	ev.queue = []rtEvent{{index: 7, addrs: [2]netip.Addr{known, known}, prefixLen: 24}}
	expect("eth0's address deleted", window(time.Second), 3, true, false)
	up = false
	ev.queue = []rtEvent{{index: 7, addrs: [2]netip.Addr{netip.MustParseAddr("203.0.113.7")}, prefixLen: 24, added: true}}
	expect("eth0's address added", window(time.Second), 4, false, false)
	// The group not joined: the memberships are read every window.
	writeIGMP(t, proc, 1)
	expect("group joined again", window(time.Second), 4, false, true)
	writeIGMP(t, proc, 0)
	expect("group left, within membersEvery", window(membersEvery-time.Second), 4, false, true)
	expect("group left, after membersEvery", window(time.Second), 4, false, false)
	writeIGMP(t, proc, 1)
	expect("joined", window(time.Second), 4, false, true)
	// The watch's own socket tap joined: it is left out.
	w.taps["eth0"] = &tap{name: "eth0", own4: 1}
	expect("own membership", window(time.Second), 4, false, false)
	delete(w.taps, "eth0")
	expect("own membership gone", window(time.Second), 4, false, true)
	// A link notification by name (a link renamed to eth0) or index.
	up = true
	ev.queue = []rtEvent{{link: true, index: 12, name: "eth0"}}
	expect("link named eth0", window(time.Second), 5, true, true)
	up = false
	ev.queue = []rtEvent{{link: true, index: 7, name: "lan0"}}
	expect("link 7 renamed", window(time.Second), 6, false, true)
	up = true
	ev.lost = true
	expect("notifications lost", window(time.Second), 7, true, true)
	// A reading with a problem is not kept.
	problem = "addresses of eth0: boom"
	ev.queue = []rtEvent{{index: 7}}
	expect("problem", window(time.Second), 8, true, true)
	problem = ""
	expect("after a problem", window(time.Second), 9, true, true)
	expect("settled", window(time.Second), 9, true, true)
	expect("safety net", window(unchangedEvery), 10, true, true)
	// Without notifications, every window reads.
	w.kern.ev = nil
	expect("no notifications", window(time.Second), 11, true, true)
	expect("no notifications again", window(time.Second), 12, true, true)
}

// TestKernFactsVIPs: notifications of a virtual address count as its
// changes (vipsChanged); one of a link that holds a virtual address makes
// the held addresses read in full again; others are not counted.
func TestKernFactsVIPs(t *testing.T) {
	vip := netip.MustParseAddr("198.51.100.100")
	ev := &fakeNotifier{}
	w := &Watcher{log: slog.New(slog.DiscardHandler), procDir: t.TempDir(), vipList: []netip.Addr{vip}, heldLinks: []int{4}}
	w.kern.ev = ev
	w.kern.readLink = func(name string) (check.Interface, int) { return check.Interface{Name: name}, 0 }
	window := func() (vips bool) {
		w.interfaceFacts(&check.Report{}, t0)
		return w.vipsChanged()
	}
	if window() {
		t.Error("no notification: changed")
	}
	ev.queue = []rtEvent{{index: 4, addrs: [2]netip.Addr{netip.MustParseAddr("198.51.100.1")}}, {link: true, index: 5}}
	if window() || w.kern.heldStale {
		t.Errorf("other address and link: changed, held stale %v", w.kern.heldStale)
	}
	// Added and deleted within the window: the ends alone show nothing.
	ev.queue = []rtEvent{{index: 4, addrs: [2]netip.Addr{{}, vip}}, {index: 4, addrs: [2]netip.Addr{vip, vip}}}
	if !window() || w.kern.vipEvents != 2 {
		t.Errorf("virtual address added and deleted: not a change (%d)", w.kern.vipEvents)
	}
	if window() {
		t.Error("changed again without a notification")
	}
	ev.queue = []rtEvent{{link: true, index: 4, name: "lan0"}}
	if window() || !w.kern.heldStale {
		t.Errorf("link holding the address renamed: held stale %v", w.kern.heldStale)
	}
	ev.lost = true
	if !window() {
		t.Error("notifications lost: not a change")
	}
}

// TestReadHeldTrustsNotifications: while the notifications are followed
// and none came for a virtual address, the addresses held are not dumped
// (a move the dump would show goes unread); one that came makes them read
// again. Read-only, on this host's lo.
func TestReadHeldTrustsNotifications(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	w := &Watcher{base: []check.Instance{{Interface: "lo", VRID: 51, Family: 4, VIPs: []netip.Addr{lo}}}, vipList: []netip.Addr{lo}}
	w.held = make([][]check.HeldAddr, 1)
	ev := &fakeNotifier{}
	w.kern.ev = ev
	report := func() *check.Report { return &check.Report{Instances: slices.Clone(w.base)} }
	w.readHeld(nil, t0)
	if len(w.heldLinks) != 1 || w.heldLinks[0] == 0 {
		t.Fatalf("first reading: links %v", w.heldLinks)
	}
	marker := []check.HeldAddr{{Addr: lo, Interface: "marker"}}
	w.held[0] = marker
	w.heldLinks[0] = 0 // as if 127.0.0.1 had been nowhere
	if changed := w.readHeld(report(), t0.Add(time.Second)); changed || !slices.Equal(w.held[0], marker) {
		t.Errorf("no notification: changed %v, held %v; want the last reading", changed, w.held[0])
	}
	ev.queue = []rtEvent{{index: 1, addrs: [2]netip.Addr{lo, lo}}}
	w.kernelNews()
	if changed := w.readHeld(report(), t0.Add(2*time.Second)); !changed || slices.Equal(w.held[0], marker) {
		t.Errorf("after a notification: changed %v, held %v; want read again", changed, w.held[0])
	}
	// The link holding it renamed: no address moved, yet the names held
	// are read again.
	w.held[0] = marker
	ev.queue = []rtEvent{{link: true, index: w.heldLinks[0], name: "renamed"}}
	w.kernelNews()
	if w.readHeld(report(), t0.Add(3*time.Second)); slices.Equal(w.held[0], marker) {
		t.Errorf("after the holding link's notification: held %v; want read again", w.held[0])
	}
	w.held[0] = marker
	w.kernelNews()
	if w.readHeld(report(), t0.Add(4*time.Second)); !slices.Equal(w.held[0], marker) {
		t.Errorf("nothing notified since: held %v; want the last reading", w.held[0])
	}
}

// TestParseRTEvents: link and address notifications as the kernel sends
// them, several in one read; an overrun or a malformed message says lost.
func TestParseRTEvents(t *testing.T) {
	msg := func(typ uint16, body []byte, attrs ...[]byte) []byte {
		for _, a := range attrs {
			body = append(body, a...)
		}
		b := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
		binary.NativeEndian.PutUint32(b[0:4], uint32(unix.NLMSG_HDRLEN+len(body)))
		binary.NativeEndian.PutUint16(b[4:6], typ)
		return append(b, body...)
	}
	attr := func(typ uint16, v []byte) []byte {
		b := make([]byte, 4, nlAlign(4+len(v)))
		binary.NativeEndian.PutUint16(b[0:2], uint16(4+len(v)))
		binary.NativeEndian.PutUint16(b[2:4], typ)
		b = append(b, v...)
		return append(b, make([]byte, nlAlign(len(b))-len(b))...)
	}
	ifinfo := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(ifinfo[4:8], 7)
	ifaddr := make([]byte, unix.SizeofIfAddrmsg)
	ifaddr[0], ifaddr[1] = unix.AF_INET, 24
	binary.NativeEndian.PutUint32(ifaddr[4:8], 7)
	var b []byte
	b = append(b, msg(unix.RTM_NEWLINK, ifinfo, attr(unix.IFLA_MTU, []byte{0, 5, 0, 0}), attr(unix.IFLA_IFNAME, []byte("eth0\x00")))...)
	b = append(b, msg(unix.RTM_DELADDR, ifaddr, attr(unix.IFA_ADDRESS, []byte{198, 51, 100, 9}), attr(unix.IFA_LOCAL, []byte{198, 51, 100, 100}))...)
	var got []rtEvent
	if !parseRTEvents(b, func(ev rtEvent) { got = append(got, ev) }) {
		t.Fatal("well-formed notifications: lost")
	}
	want := []rtEvent{{link: true, index: 7, name: "eth0"}, {index: 7, addrs: [2]netip.Addr{netip.MustParseAddr("198.51.100.100"), netip.MustParseAddr("198.51.100.9")}, prefixLen: 24}}
	if !slices.Equal(got, want) {
		t.Errorf("events %+v, want %+v", got, want)
	}
	if parseRTEvents(msg(unix.NLMSG_OVERRUN, nil), func(rtEvent) {}) {
		t.Error("overrun: not lost")
	}
	short := msg(unix.RTM_NEWADDR, ifaddr)
	binary.NativeEndian.PutUint32(short[0:4], uint32(len(short)+8))
	if parseRTEvents(short, func(rtEvent) {}) {
		t.Error("length beyond the read: not lost")
	}
	if parseRTEvents(msg(unix.RTM_NEWLINK, ifinfo[:8]), func(rtEvent) {}) {
		t.Error("truncated ifinfomsg: not lost")
	}
}

// TestProcNetFilesReread: a file opened once is read again from its start
// and shows what it holds now, however long; /proc's own (seq_files) read
// alike twice.
func TestProcNetFilesReread(t *testing.T) {
	proc := t.TempDir()
	dir := filepath.Join(proc, "thread-self", "net")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "igmp")
	long := strings.Repeat("7\teth0      :     2      V3\n", 200)
	var p procNetFiles
	defer p.close()
	for i, want := range []string{"filter\n", "filter\n", "filter\nnat\n", long, "short\n"} {
		if i != 1 {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := p.read(proc, igmpFile)
		if err != nil || string(got) != want {
			t.Errorf("reading %d: %d bytes, %v; want %d", i, len(got), err, len(want))
		}
	}
	if _, err := p.read(proc, igmp6File); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want not exist", err)
	}
	// /proc itself: the memberships as os.ReadFile reads them, twice.
	for range 2 {
		got, err := p.read("/proc", igmpFile)
		want, werr := os.ReadFile("/proc/thread-self/net/igmp")
		if err != nil || werr != nil || string(got) != string(want) {
			t.Errorf("/proc: %q, %v; want %q, %v", got, err, want, werr)
		}
	}
}
