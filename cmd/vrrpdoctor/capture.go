package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/capture/hostfacts"
	"github.com/vrrpdoctor/vrrpdoctor/diag"
)

type captureOptions struct {
	iface    string
	duration time.Duration
	write    string
	json     bool
	promisc  bool
	peers    []string
	ucastSrc string
	probe    uint8
	refresh  time.Duration
	// tty forces (true) or forbids (false) the live table that redraws in
	// place; nil decides from the output.
	tty *bool
	// signals delivers SIGINT and SIGTERM; nil subscribes to the process's.
	signals <-chan os.Signal
}

func newCaptureCmd(s streams) *cobra.Command {
	o := captureOptions{}
	cmd := &cobra.Command{
		Use:   "capture -i IFACE [--duration D] [-w FILE.pcapng] [--json]",
		Short: "Watch VRRP adverts on the wire and at the socket, side by side",
		Long: `capture taps one interface twice at once and counts, per sender, what each tap
sees:

  wire    an AF_PACKET socket, what tcpdump sees: every VRRP frame the interface
          receives or sends, before netfilter, rp_filter and group membership;
  socket  a raw IP socket for protocol 112 set up like keepalived's receive
          socket (bound to the interface, joined to 224.0.0.18 / ff02::12): what
          keepalived gets.

An advert on the wire that never reaches the socket was dropped on the host
between the driver and the socket: by a firewall rule (raw or mangle
PREROUTING, filter INPUT), by rp_filter, or for lack of a group membership.
capture matches the two sightings of each packet and prints, per interface,
VRID, sender and direction: adverts on the wire, adverts delivered to the
socket, the delivery ratio, first and last sighting and the observed interval.
Outgoing adverts are counted on the wire; with --probe-vrid capture also sends
a probe advert every second, as keepalived would, and shows whether sending
fails (EPERM: an OUTPUT rule drops it) and whether the probe leaves.

The taps do not disturb a keepalived on the same host: each raw socket gets
its own copy of every packet.

On a terminal the table redraws in place every --refresh; piped, it prints
plain lines for the senders that changed. Ctrl-C (or --duration) stops the
capture and prints the summary with the host facts that explain a loss:
interface flags, group memberships, rp_filter and whether each sender is
reachable back through the interface, iptables-legacy tables beside nftables,
and the keepalived processes running. --json prints that summary as JSON
instead of text. -w writes the wire tap's frames to a pcapng file, with
directions and the kernel's drop counter.

Needs CAP_NET_RAW (root). Run it in the network namespace of the VRRP
interface (e.g. ip netns exec NS vrrpdoctor capture -i eth0).

Exit status: 0 when the capture ran, 3 when it could not (bad usage, no such
interface, no privilege, a tap failing).`,
		Example: `  vrrpdoctor capture -i eth0
  vrrpdoctor capture -i eth0 --duration 10s --json
  vrrpdoctor capture -i eth0 -w vrrp.pcapng --probe-vrid 254`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCapture(cmd.Context(), s, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.iface, "interface", "i", "", "interface to capture on (required)")
	f.DurationVar(&o.duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
	f.StringVarP(&o.write, "write", "w", "", "write the wire tap's frames to this pcapng file")
	f.BoolVar(&o.json, "json", false, "print the summary as JSON instead of the live table")
	f.BoolVar(&o.promisc, "promisc", false, "put the interface in promiscuous mode while capturing")
	f.StringSliceVar(&o.peers, "peer", nil, "unicast VRRP peer (keepalived's unicast_peer): capture only adverts from or to the peers, with the socket tap bound to --unicast-src (repeatable)")
	f.StringVar(&o.ucastSrc, "unicast-src", "", "local address the unicast adverts are sent to (keepalived's unicast_src_ip); default the interface's first address of the peers' family")
	f.Uint8Var(&o.probe, "probe-vrid", 0, "send a probe advert for this VRID (priority 1) every second to test the send path; pick a VRID nobody uses")
	f.DurationVar(&o.refresh, "refresh", time.Second, "how often the live table is redrawn")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: diag.ExitUnknown, err: err}
	})
	return cmd
}

// captureFailed wraps an error of the capture command in its exit status.
func captureFailed(err error) error {
	return &exitError{code: diag.ExitUnknown, err: err}
}

func runCapture(ctx context.Context, s streams, o captureOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.iface == "" {
		return captureFailed(errors.New("capture: name the interface with -i IFACE"))
	}
	if o.refresh <= 0 {
		return captureFailed(fmt.Errorf("capture: --refresh %v: must be positive", o.refresh))
	}
	if o.duration < 0 {
		return captureFailed(fmt.Errorf("capture: --duration %v: must not be negative", o.duration))
	}
	var peers []netip.Addr
	for _, p := range o.peers {
		a, err := netip.ParseAddr(p)
		if err != nil {
			return captureFailed(fmt.Errorf("capture: --peer %q: not an IP address", p))
		}
		peers = append(peers, a.Unmap())
	}

	so := capture.SessionOptions{
		Interface: o.iface,
		Wire:      capture.WireOptions{Promiscuous: o.promisc, Peers: peers},
		ProbeVRID: o.probe,
	}
	if o.ucastSrc != "" && len(peers) == 0 {
		return captureFailed(errors.New("capture: --unicast-src needs --peer"))
	}
	if len(peers) > 0 {
		src, err := unicastSource(o.iface, o.ucastSrc, peers[0])
		if err != nil {
			return captureFailed(err)
		}
		so.Socket.Unicast = src
	}
	if o.probe != 0 {
		so.ProbeFamilies = []uint8{4}
	}
	var pw *pcapngOutput
	if o.write != "" {
		pw = &pcapngOutput{name: o.write}
		so.OnStart = pw.start
		so.OnFrame = pw.frame
	}
	sess, err := capture.StartSession(so)
	if err != nil {
		if pw != nil {
			pw.abort()
		}
		var pe *capture.PermissionError
		if errors.As(err, &pe) {
			return captureFailed(fmt.Errorf("capture on %s needs CAP_NET_RAW, which this process lacks (%v): run it as root, or grant the capability with: setcap cap_net_raw+ep %s", o.iface, pe.Err, executable()))
		}
		return captureFailed(err)
	}

	sigs := o.signals
	if sigs == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}
	var deadline <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		deadline = t.C
	}
	// Redraw in place only on a terminal that understands cursor moves.
	tty := isTerminal(s.Out) && os.Getenv("TERM") != "dumb"
	if o.tty != nil {
		tty = *o.tty
	}
	live := &liveTable{out: s.Out, tty: tty}
	if !o.json {
		fmt.Fprintf(s.Out, "capturing VRRP on %s (wire tap and socket tap); Ctrl-C stops\n", o.iface)
	}
	tick := time.NewTicker(o.refresh)
	defer tick.Stop()
loop:
	for {
		select {
		case <-tick.C:
			if !o.json {
				live.update(sess.Stats())
			}
		case <-sigs:
			break loop
		case <-deadline:
			break loop
		case <-ctx.Done():
			break loop
		case <-sess.Failed():
			break loop
		}
	}
	st, runErr := sess.Stop()
	if pw != nil {
		if err := pw.finish(st); err != nil && runErr == nil {
			runErr = err
		}
	}
	senders := map[netip.Addr]bool{}
	var senderList []netip.Addr
	for _, f := range st.Flows {
		if f.Direction == capture.DirIn && !senders[f.Sender] {
			senders[f.Sender] = true
			senderList = append(senderList, f.Sender)
		}
	}
	facts, factsErr := hostfacts.Gather(o.iface, hostfacts.Options{Senders: senderList})
	if factsErr != nil {
		fmt.Fprintf(s.ErrOut, "vrrpdoctor: warning: host facts: %v\n", factsErr)
	}
	if o.json {
		err = writeCaptureJSON(s.Out, st, facts)
	} else {
		live.clear()
		err = writeCaptureSummary(s.Out, st, facts, o.write)
	}
	if err != nil {
		return captureFailed(err)
	}
	if runErr != nil {
		return captureFailed(fmt.Errorf("capture on %s stopped: %w", o.iface, runErr))
	}
	return nil
}

// pcapngOutput writes the wire tap to a pcapng file.
type pcapngOutput struct {
	name string
	file *os.File
	w    *capture.PcapngWriter
	n    int
}

func (p *pcapngOutput) start(t *capture.WireTap) error {
	f, err := os.Create(p.name)
	if err != nil {
		return err
	}
	w, err := capture.NewPcapngWriter(f, capture.PcapngInterface{Name: t.Interface(), LinkType: uint16(t.LinkType()), SnapLen: uint32(t.SnapLen())}, "vrrpdoctor capture")
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.file, p.w = f, w
	return nil
}

func (p *pcapngOutput) frame(f *capture.WireFrame) error {
	p.n++
	if err := p.w.WriteFrame(f.Time, f.Direction, f.Data, f.Length); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

// abort closes and removes a file whose capture never started.
func (p *pcapngOutput) abort() {
	if p.file != nil {
		p.file.Close()
		os.Remove(p.name)
	}
}

func (p *pcapngOutput) finish(st capture.SessionStats) error {
	if p.file == nil {
		return nil
	}
	err := p.w.WriteStats(st.Start, st.Now, st.Wire)
	if ferr := p.w.Flush(); err == nil {
		err = ferr
	}
	if cerr := p.file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

// unicastSource is the address keepalived's unicast receive socket is
// bound to: unicast_src_ip as given, else the interface's first IPv4
// address or IPv6 link-local address, in the family of peer.
func unicastSource(iface, given string, peer netip.Addr) (netip.Addr, error) {
	if given != "" {
		a, err := netip.ParseAddr(given)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("capture: --unicast-src %q: not an IP address", given)
		}
		if a.Unmap().Is4() != peer.Is4() {
			return netip.Addr{}, fmt.Errorf("capture: --unicast-src %s and --peer %s are of different address families", a, peer)
		}
		return a.Unmap(), nil
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("capture: interface %q: %w", iface, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("capture: addresses of %s: %w", iface, err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if ip = ip.Unmap(); ok && (peer.Is4() && ip.Is4() || peer.Is6() && ip.Is6() && ip.IsLinkLocalUnicast()) {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("capture: %s has no address of the family of peer %s to receive unicast adverts on; name it with --unicast-src", iface, peer)
}

func executable() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "vrrpdoctor"
}
