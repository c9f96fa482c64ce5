// Command capturebench measures the wire tap of `vrrpdoctor capture` in a
// network-namespace lab: a sender on host a pushes VRRP adverts at
// increasing rates onto the link, and on host b `vrrpdoctor capture` and
// `tcpdump -w /dev/null` capture the same traffic side by side. For each
// rate it reports what each captured, what the kernel dropped for each, and
// the CPU each used, per 1,000 packets/s. The highest rate at which
// vrrpdoctor's wire tap loses nothing is the figure of issue 4 item 7
// (target: 100,000 packets/s or more).
//
// It needs root (network namespaces), ip, tcpdump and a vrrpdoctor binary;
// bench/capture.sh builds one and runs this. Nothing is changed outside the
// lab's namespaces.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

func main() {
	bin := flag.String("vrrpdoctor", "", "vrrpdoctor binary to measure (required)")
	rates := flag.String("rates", "1000,10000,50000,100000,150000,200000,300000", "packet rates to try, packets/s, comma-separated")
	secs := flag.Float64("seconds", 2, "seconds of traffic per rate")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "capturebench: -vrrpdoctor is required")
		os.Exit(2)
	}
	var rs []int
	for _, f := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			fmt.Fprintf(os.Stderr, "capturebench: bad rate %q\n", f)
			os.Exit(2)
		}
		rs = append(rs, r)
	}
	if err := run(*bin, rs, time.Duration(*secs*float64(time.Second))); err != nil {
		fmt.Fprintln(os.Stderr, "capturebench:", err)
		os.Exit(1)
	}
}

// pass is one run of the traffic with some captures on b.
type pass struct {
	sent     int
	achieved float64       // packets/s
	elapsed  time.Duration // sending plus the wait for the readers
	// CPU seconds: of the benchmark process (the sender, which also
	// carries the kernel's receive work on the veth pair), of vrrpdoctor
	// and of tcpdump.
	senderCPU, vdCPU, tdCPU float64
	// vrrpdoctor capture: wire frames, kernel drops, socket deliveries.
	vdFrames, vdDropped, vdSocket int
	// tcpdump: captured and dropped by the kernel.
	tdCaptured, tdDropped int
}

func run(bin string, rates []int, d time.Duration) error {
	lab, err := netlab.New(netlab.Options{Prefix: "vdbench"})
	if err != nil {
		return err
	}
	defer lab.Close()
	a, b, err := lab.Pair()
	if err != nil {
		return err
	}
	snd, err := newSender(a)
	if err != nil {
		return err
	}
	defer unix.Close(snd.fd)

	fmt.Printf("capture benchmark: %v of IPv4 VRRP adverts per rate over a veth pair, %d CPUs\n", d, cpus())
	fmt.Println("Losses: vrrpdoctor capture and tcpdump -w /dev/null on the same traffic at once.")
	fmt.Println("CPU: each alone; process CPU plus the extra CPU of the sender, which carries the kernel's")
	fmt.Println("receive work on a veth pair (AF_PACKET delivery), over a pass without capture;")
	fmt.Println("in % of one core per 1,000 packets/s.")
	fmt.Println()
	fmt.Println("| target pps | sent pps | vrrpdoctor frames / sent | kernel drops | socket tap | tcpdump captured / sent | kernel drops | vrrpdoctor CPU %/1k pps | tcpdump CPU %/1k pps |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	best := 0
	for _, rate := range rates {
		var ps [4]pass // none, vrrpdoctor, tcpdump, both
		for i := range ps {
			if ps[i], err = measure(bin, b, snd, rate, d, i&1 != 0, i&2 != 0); err != nil {
				return fmt.Errorf("rate %d: %w", rate, err)
			}
		}
		base, vd, td, both := ps[0], ps[1], ps[2], ps[3]
		cost := func(p pass, own float64) float64 {
			perSec := (own + p.senderCPU - base.senderCPU*p.elapsed.Seconds()/base.elapsed.Seconds()) / p.elapsed.Seconds()
			return 100 * perSec / (p.achieved / 1000)
		}
		fmt.Printf("| %d | %.0f | %d / %d | %d | %d | %d / %d | %d | %.2f | %.2f |\n", rate, both.achieved,
			both.vdFrames, both.sent, both.vdDropped, both.vdSocket, both.tdCaptured, both.sent, both.tdDropped,
			cost(vd, vd.vdCPU), cost(td, td.tdCPU))
		if both.vdFrames == both.sent && both.vdDropped == 0 && vd.vdFrames == vd.sent && vd.vdDropped == 0 && int(both.achieved) > best {
			best = int(both.achieved)
		}
		if both.achieved < 0.8*float64(rate) {
			fmt.Printf("\nthe sender reached only %.0f packets/s of %d; higher rates not tried\n", both.achieved, rate)
			break
		}
	}
	fmt.Printf("\nhighest rate without loss in vrrpdoctor's wire tap: %d packets/s\n", best)
	return nil
}

func cpus() int {
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = bytes.Count(b, []byte("\nprocessor"))
		if bytes.HasPrefix(b, []byte("processor")) {
			n++
		}
	}
	return n
}

// selfCPU is the CPU time of this process so far, in seconds.
func selfCPU() float64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// measure sends rate packets/s for d from a while b runs the captures
// asked for.
func measure(bin string, b *netlab.Host, snd *sender, rate int, d time.Duration, withVD, withTD bool) (pass, error) {
	var p pass
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()

	var vd, td *exec.Cmd
	var vdOut, vdErr bytes.Buffer
	tdErr := &lockedBuffer{}
	if withVD {
		vd = b.Command(ctx, bin, "capture", "-i", "eth0", "--json")
		vd.Stdout, vd.Stderr = &vdOut, &vdErr
		if err := vd.Start(); err != nil {
			return p, err
		}
		defer vd.Process.Kill()
	}
	if withTD {
		td = b.Command(ctx, "tcpdump", "-i", "eth0", "-n", "-w", "/dev/null", "ip proto 112")
		td.Stderr = tdErr
		if err := td.Start(); err != nil {
			return p, err
		}
		defer td.Process.Kill()
		if err := netlab.WaitFor(10*time.Second, func() (bool, error) {
			return strings.Contains(tdErr.String(), "listening on"), nil
		}); err != nil {
			return p, fmt.Errorf("tcpdump did not start: %s", tdErr.String())
		}
	}
	time.Sleep(time.Second) // vrrpdoctor's taps open, kernel timestamps on

	var vd0, td0 float64
	if vd != nil {
		vd0 = cpuSeconds(vd.Process.Pid)
	}
	if td != nil {
		td0 = cpuSeconds(td.Process.Pid)
	}
	s0 := selfCPU()
	start := time.Now()
	p.sent = snd.send(rate, d)
	p.achieved = float64(p.sent) / time.Since(start).Seconds()
	// tcpdump hands packets over in ring blocks retired after its 1 s
	// timeout: wait for the last one.
	time.Sleep(1500 * time.Millisecond)
	p.elapsed = time.Since(start)
	p.senderCPU = selfCPU() - s0
	if vd != nil {
		p.vdCPU = cpuSeconds(vd.Process.Pid) - vd0
		vd.Process.Signal(syscall.SIGINT)
		if err := vd.Wait(); err != nil {
			return p, fmt.Errorf("vrrpdoctor capture: %v\n%s", err, vdErr.String())
		}
		var rep struct {
			Wire struct {
				Frames  int `json:"frames"`
				Dropped int `json:"kernel_dropped"`
			} `json:"wire"`
			Flows []struct {
				Socket struct {
					Packets int `json:"packets"`
				} `json:"socket"`
			} `json:"flows"`
		}
		if err := json.Unmarshal(vdOut.Bytes(), &rep); err != nil {
			return p, fmt.Errorf("vrrpdoctor output: %v\n%s", err, vdOut.String())
		}
		p.vdFrames, p.vdDropped = rep.Wire.Frames, rep.Wire.Dropped
		for _, f := range rep.Flows {
			p.vdSocket += f.Socket.Packets
		}
	}
	if td != nil {
		p.tdCPU = cpuSeconds(td.Process.Pid) - td0
		td.Process.Signal(syscall.SIGTERM)
		td.Wait()
		p.tdCaptured = tcpdumpCount(tdErr.String(), "captured")
		p.tdDropped = tcpdumpCount(tdErr.String(), "dropped by kernel")
	}
	return p, nil
}

// tcpdumpCount reads "N packets <what>" from tcpdump's exit statistics.
func tcpdumpCount(stderr, what string) int {
	m := regexp.MustCompile(`(\d+) packets? ` + regexp.QuoteMeta(what)).FindStringSubmatch(stderr)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// cpuSeconds is the user+system CPU time of a process so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// lockedBuffer is a bytes.Buffer written by a command and read meanwhile.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sender writes VRRP frames onto a's eth0 through an AF_PACKET socket.
type sender struct {
	fd      int
	ifindex int
	frame   []byte
	id      uint16
}

func newSender(h *netlab.Host) (*sender, error) {
	s := &sender{fd: -1}
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		s.ifindex = ifi.Index
		s.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(s.fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
			return err
		}
		src := netip.MustParsePrefix(netlab.LANAddr4(1)).Addr()
		adv := vrrpcore.Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}}
		msg, err := adv.AppendBinary(nil, src, vrrpcore.GroupIPv4, vrrpcore.ChecksumMessage)
		if err != nil {
			return err
		}
		f := []byte{1, 0, 0x5e, 0, 0, 0x12}
		f = append(f, ifi.HardwareAddr...)
		f = append(f, 0x08, 0x00)
		ip := make([]byte, 20)
		ip[0], ip[8], ip[9] = 0x45, 255, vrrpcore.IPProtocol
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(msg)))
		copy(ip[12:], src.AsSlice())
		copy(ip[16:], vrrpcore.GroupIPv4.AsSlice())
		s.frame = append(append(f, ip...), msg...)
		return nil
	})
	return s, err
}

// send sends rate frames per second for d, each with the next IP ID, in
// bursts every millisecond; it returns how many it sent.
func (s *sender) send(rate int, d time.Duration) int {
	total := int(float64(rate) * d.Seconds())
	start := time.Now()
	sent := 0
	for sent < total {
		due := int(float64(rate) * time.Since(start).Seconds())
		if due > total {
			due = total
		}
		for ; sent < due; sent++ {
			s.id++
			ip := s.frame[14:34]
			binary.BigEndian.PutUint16(ip[4:], s.id)
			ip[10], ip[11] = 0, 0
			binary.BigEndian.PutUint16(ip[10:], checksum(ip))
			for {
				_, err := unix.Write(s.fd, s.frame)
				if err == nil {
					break
				}
				if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
					fmt.Fprintln(os.Stderr, "capturebench: send:", err)
					return sent
				}
			}
		}
		if sent < total {
			time.Sleep(500 * time.Microsecond)
		}
	}
	return sent
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
