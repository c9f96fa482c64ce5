package e2e

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// The impairment relay: the fault lab's two hosts are not joined by a veth
// pair but through a middle namespace m (a — xa | relay | xb — b; "ma" would read as ip's "master"), where a
// small userspace bridge copies every Ethernet frame from one side to the
// other with two AF_PACKET sockets. The frames are the hosts' own: they
// leave a's and b's kernels and enter the other's kernel as on a wire.
// Where the kernel has sch_netem, the impairment is netem on m's egress
// interfaces (the relay's writes go through their qdisc); otherwise the
// relay applies it itself to VRRP frames (IP protocol 112): loss, delay
// with jitter (which reorders frames when the jitter exceeds their
// spacing), duplication. ARP and neighbour discovery pass unimpaired.

// impairment is what the middle applies to VRRP frames in both directions.
type impairment struct {
	Loss   float64       // probability a frame is dropped
	Delay  time.Duration // fixed delay
	Jitter time.Duration // extra delay, uniform in [0, Jitter)
	Dup    float64       // probability a frame is sent twice
}

func (im impairment) String() string {
	var p []string
	if im.Loss > 0 {
		p = append(p, fmt.Sprintf("loss %.0f%%", im.Loss*100))
	}
	if im.Delay > 0 || im.Jitter > 0 {
		p = append(p, fmt.Sprintf("delay %v+[0,%v)", im.Delay, im.Jitter))
	}
	if im.Dup > 0 {
		p = append(p, fmt.Sprintf("duplicate %.0f%%", im.Dup*100))
	}
	if len(p) == 0 {
		return "none"
	}
	return strings.Join(p, ", ")
}

// relayStats counts VRRP frames through the relay.
type relayStats struct {
	Seen, Dropped, Duplicated, Reordered, Forwarded int64
}

// relay bridges two interfaces of the middle namespace.
type relay struct {
	m      *netlab.Host
	netem  bool
	imp    atomic.Pointer[impairment]
	stop   atomic.Bool
	wg     sync.WaitGroup
	seen   atomic.Int64
	drops  atomic.Int64
	dups   atomic.Int64
	reord  atomic.Int64
	fwd    atomic.Int64
	sendMu sync.Mutex
}

// newRelayLab builds hosts a and b (eth0, the standard addresses) joined
// through the middle namespace m, and starts the relay.
func newRelayLab(t *testing.T, lab *netlab.Lab) (a, b *netlab.Host, r *relay) {
	t.Helper()
	var err error
	must := func(e error) {
		t.Helper()
		if e != nil {
			t.Fatal(e)
		}
	}
	a, err = lab.AddHost("a")
	must(err)
	b, err = lab.AddHost("b")
	must(err)
	m, err := lab.AddHost("m")
	must(err)
	must(m.Sysctl("net.ipv6.conf.all.disable_ipv6", "1"))
	must(m.Sysctl("net.ipv6.conf.default.disable_ipv6", "1"))
	must(lab.Link(m, "xa", a, "eth0"))
	must(lab.Link(m, "xb", b, "eth0"))
	for i, h := range []*netlab.Host{a, b} {
		must(h.AddAddr("eth0", netlab.LANAddr4(i+1)))
		must(h.AddAddr("eth0", netlab.LANAddr6(i+1)))
	}
	for _, ifn := range []string{"xa", "xb"} {
		_, err := m.Run("ip", "link", "set", ifn, "promisc", "on")
		must(err)
	}
	r = &relay{m: m}
	r.imp.Store(&impairment{})
	// netem, where the kernel has it.
	if _, err := m.Run("tc", "qdisc", "add", "dev", "xa", "root", "netem", "delay", "0ms"); err == nil {
		r.netem = true
		_, err = m.Run("tc", "qdisc", "add", "dev", "xb", "root", "netem", "delay", "0ms")
		must(err)
	}
	var fds [2]int
	var idx [2]int
	must(m.Do(func() error {
		for i, name := range []string{"xa", "xb"} {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
			if err != nil {
				return err
			}
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
				return err
			}
			tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				return err
			}
			fds[i], idx[i] = fd, ifi.Index
		}
		return nil
	}))
	r.wg.Add(2)
	go r.pump(fds[0], fds[1])
	go r.pump(fds[1], fds[0])
	t.Cleanup(func() {
		r.stop.Store(true)
		r.wg.Wait()
		r.sendMu.Lock() // delayed sends check stop under the lock
		unix.Close(fds[0])
		unix.Close(fds[1])
		r.sendMu.Unlock()
	})
	return a, b, r
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// set changes the impairment from now on.
func (r *relay) set(t *testing.T, im impairment) {
	t.Helper()
	if r.netem {
		args := []string{"delay", fmt.Sprintf("%dus", im.Delay.Microseconds())}
		if im.Jitter > 0 {
			args = append(args, fmt.Sprintf("%dus", im.Jitter.Microseconds()), "distribution", "uniform")
		}
		if im.Loss > 0 {
			args = append(args, "loss", fmt.Sprintf("%.1f%%", im.Loss*100))
		}
		if im.Dup > 0 {
			args = append(args, "duplicate", fmt.Sprintf("%.1f%%", im.Dup*100))
		}
		for _, dev := range []string{"xa", "xb"} {
			if _, err := r.m.Run("tc", append([]string{"qdisc", "change", "dev", dev, "root", "netem"}, args...)...); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	r.imp.Store(&im)
}

func (r *relay) stats() relayStats {
	return relayStats{Seen: r.seen.Load(), Dropped: r.drops.Load(), Duplicated: r.dups.Load(), Reordered: r.reord.Load(), Forwarded: r.fwd.Load()}
}

// isVRRP reports whether an Ethernet frame carries IP protocol 112.
func isVRRP(f []byte) bool {
	if len(f) < 14 {
		return false
	}
	off, et := 12, binary.BigEndian.Uint16(f[12:])
	if et == 0x8100 && len(f) >= 18 {
		off, et = 16, binary.BigEndian.Uint16(f[16:])
	}
	ip := f[off+2:]
	switch et {
	case 0x0800:
		return len(ip) >= 20 && ip[9] == 112
	case 0x86dd:
		return len(ip) >= 40 && ip[6] == 112
	}
	return false
}

// pump copies frames arriving on in to out, impairing VRRP frames.
func (r *relay) pump(in, out int) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	var seq, delivered atomic.Uint64
	for !r.stop.Load() {
		n, from, err := unix.Recvfrom(in, buf, 0)
		if err != nil {
			continue // timeout (stop check) or EINTR
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // our own writes on this side
		}
		frame := append([]byte(nil), buf[:n]...)
		if r.netem || !isVRRP(frame) {
			r.send(out, frame)
			continue
		}
		r.seen.Add(1)
		im := *r.imp.Load()
		if im.Loss > 0 && rand.Float64() < im.Loss {
			r.drops.Add(1)
			continue
		}
		copies := 1
		if im.Dup > 0 && rand.Float64() < im.Dup {
			copies = 2
			r.dups.Add(1)
		}
		s := seq.Add(1)
		d := im.Delay
		if im.Jitter > 0 {
			d += rand.N(im.Jitter)
		}
		deliver := func() {
			for prev := delivered.Load(); ; prev = delivered.Load() {
				if s < prev {
					r.reord.Add(1)
					break
				}
				if delivered.CompareAndSwap(prev, s) {
					break
				}
			}
			for range copies {
				r.send(out, frame)
			}
		}
		if d == 0 {
			deliver()
		} else {
			time.AfterFunc(d, deliver)
		}
	}
}

func (r *relay) send(fd int, frame []byte) {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if r.stop.Load() {
		return
	}
	if _, err := unix.Write(fd, frame); err == nil {
		r.fwd.Add(1)
	}
}
