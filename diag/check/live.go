package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/capture/hostfacts"
	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

// This file exports the pieces of Run that a continuous watch (diag/watch)
// puts together itself: it keeps one capture session per interface open
// for as long as it runs, cuts its observations into windows and builds a
// Report for each window from them and from the latest host and firewall
// facts, then judges it with Evaluate — the same judgement as check's.

// Window is what a live session's wire tap saw during one window of a
// continuous watch: the session's OnFrame passes every frame to Frame, and
// Fill puts the frames, with the correlator's figures for the same time,
// into an instance of the window's Report. Its methods are safe for
// concurrent use.
type Window struct{ o *observation }

// NewWindow starts a window for frames of the wire tap t.
func NewWindow(t *capture.WireTap) *Window {
	o := newObservation()
	_ = o.start(t) // never fails
	return &Window{o: o}
}

// Frame takes one frame of the wire tap; frames that are not VRRP are
// ignored.
func (w *Window) Frame(f *capture.WireFrame) { _ = w.o.frame(f) }

// Fill sets in.Observed, in.Local and in.Peers from the window's frames and
// flows, the correlator's figures for the window (each the difference of
// the flow's figures at the window's end and at its start). ifc is the
// instance's interface (its addresses tell this node's adverts from its
// peers').
//
// The flows of this node's own adverts that carry send attempts
// (capture.Correlator.AddSend, reported by the VRRP speaker) set in.Sends.
func (w *Window) Fill(in *Instance, ifc *Interface, flows []capture.FlowStats) {
	w.FillSent(in, ifc, flows, nil)
}

// Sent is what this node's VRRP speaker reported of its adverts for one
// instance in a window: in `vrrpdoctor run` the wire tap does not take the
// host's own frames (capture.WireOptions.IncomingOnly), and these facts
// stand for what it would have seen of them.
type Sent struct {
	Address netip.Addr
	// Adverts counts the adverts that reached the wire, Resigned those of
	// them with priority 0.
	Adverts, Resigned uint64
	// Versions are the VRRP versions sent.
	Versions []int
	// Priority, Interval and TTL are the last advert's.
	Priority uint8
	Interval time.Duration
	TTL      uint8
	Dsts     []netip.Addr
	Checksum ChecksumCounts
	First    time.Time
	Last     time.Time
	// Times are the send times of the adverts with a priority above 0
	// (for Peer.Concurrent).
	Times []time.Time
}

// FillSent is Fill with this node's adverts as the speaker reported them
// (nil: none reported): they set in.Local, with this node's frames the
// window may have had, when some reached the wire.
func (w *Window) FillSent(in *Instance, ifc *Interface, flows []capture.FlowStats, sent *Sent) {
	w.o.mu.Lock()
	w.o.stats = capture.SessionStats{Snapshot: capture.Snapshot{Flows: flows}}
	w.o.mu.Unlock()
	if sent != nil && sent.Adverts == 0 {
		sent = nil
	}
	w.o.fill(in, ifc, sent)
	for _, f := range flows {
		if f.Direction != capture.DirOut || f.Interface != in.Interface || f.VRID != in.VRID || f.Family != in.Family || f.Sends == 0 {
			continue
		}
		if in.Sends == nil {
			in.Sends = w.o.newSends()
		}
		s := in.Sends
		s.Attempts += f.Sends
		s.Failed += f.SendErrors
		s.OnWire += f.SentOnWire
		s.Missing += f.SentMissing
		if f.SendErrors > 0 && f.LastSendError != "" {
			s.LastError = f.LastSendError
		}
	}
}

// InstanceFrom is the Instance of a configured vrrp_instance, before any
// fact about it is gathered.
func InstanceFrom(ci *keepalived.Instance) Instance { return instanceFrom(ci) }

// InterfaceFacts reads an interface's state, addresses and VRRP group
// memberships. own4 and own6 are the memberships of 224.0.0.18 and ff02::12
// the caller's own sockets hold on it (a watch's socket taps): they are
// left out, so that the memberships say whether the VRRP daemon joined.
func InterfaceFacts(name, procDir string, own4, own6 int) Interface {
	return interfaceFactsExcept(name, procDir, own4, own6)
}

// InterfaceState reads what a watch needs of an interface every window —
// its state, addresses and VRRP group memberships, own4 and own6 of them
// left out as in InterfaceFacts — without InterfaceFacts' scans of every
// process and of the firewall's tables, which a watch does not use. It is
// InterfaceLink and ReadMemberships put together.
func InterfaceState(name, procDir string, own4, own6 int) Interface {
	ifc, index := InterfaceLink(name)
	if !ifc.Exists {
		return ifc
	}
	ReadMemberships(procDir).Apply(&ifc, index, own4, own6)
	return ifc
}

// InterfaceLink reads an interface's state and addresses (netlink), as
// InterfaceState does, without its group memberships (JoinedVRRP4 and
// JoinedVRRP6 stay nil), and returns its index (0 when it does not exist).
// A watch that follows the kernel's link and address notifications reads
// it again only when one arrived for the interface.
func InterfaceLink(name string) (ifc Interface, index int) {
	ifc = Interface{Name: name, Addrs: []netip.Prefix{}, Senders: []SenderCheck{}}
	link, err := netlink.LinkByName(name)
	if err != nil {
		ifc.Problems = append(ifc.Problems, fmt.Sprintf("interface %q: %v", name, err))
		return ifc, 0
	}
	a := link.Attrs()
	ifc.Exists = true
	ifc.Up, ifc.LowerUp = a.Flags&net.FlagUp != 0, a.RawFlags&unix.IFF_LOWER_UP != 0
	ifc.Multicast, ifc.OperState = a.Flags&net.FlagMulticast != 0, a.OperState.String()
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		ifc.Problems = append(ifc.Problems, fmt.Sprintf("addresses of %s: %v", name, err))
	}
	for _, ad := range addrs {
		if ad.IPNet == nil {
			continue
		}
		if ip, ok := netip.AddrFromSlice(ad.IP); ok {
			ones, _ := ad.Mask.Size()
			ifc.Addrs = append(ifc.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
	}
	return ifc, a.Index
}

// Memberships are the memberships of the VRRP groups 224.0.0.18 and
// ff02::12 that /proc/net/igmp and igmp6 list: per interface index, how
// many sockets hold the group. The kernel sends no notification when they
// change.
type Memberships struct {
	v4, v6 []groupUsers
	// problem says why they are not known ("" when they are).
	problem string
}

type groupUsers struct{ ifindex, users int }

// ReadMemberships reads the VRRP group memberships of the calling thread's
// network namespace (procDir/thread-self/net, else procDir/net).
func ReadMemberships(procDir string) Memberships {
	procNet := filepath.Join(procDir, "thread-self", "net")
	if _, err := os.Stat(procNet); err != nil {
		procNet = filepath.Join(procDir, "net")
	}
	igmp, err4 := os.ReadFile(filepath.Join(procNet, "igmp"))
	igmp6, err6 := os.ReadFile(filepath.Join(procNet, "igmp6"))
	return MembershipsOf(igmp, err4, igmp6, err6)
}

// MembershipsOf parses the VRRP group memberships from /proc/net/igmp and
// igmp6 as the caller read them, with the error of each reading (a file
// that does not exist, as igmp6 without IPv6, holds no membership).
func MembershipsOf(igmp []byte, errIGMP error, igmp6 []byte, errIGMP6 error) Memberships {
	var m Memberships
	for _, g := range []struct {
		file  string
		b     []byte
		err   error
		parse func([]byte) ([]hostfacts.Membership, error)
		group netip.Addr
		dst   *[]groupUsers
	}{{"igmp", igmp, errIGMP, hostfacts.ParseIGMP, vrrpcore.GroupIPv4, &m.v4}, {"igmp6", igmp6, errIGMP6, hostfacts.ParseIGMP6, vrrpcore.GroupIPv6, &m.v6}} {
		b, err := g.b, g.err
		if errors.Is(err, fs.ErrNotExist) {
			continue // igmp6 is absent without IPv6
		}
		var ms []hostfacts.Membership
		if err == nil {
			ms, err = g.parse(b)
		}
		if err != nil {
			return Memberships{problem: fmt.Sprintf("%s: %v", g.file, err)} // memberships not known
		}
		for _, x := range ms {
			if x.Group == g.group {
				*g.dst = append(*g.dst, groupUsers{x.Ifindex, x.Users})
			}
		}
	}
	return m
}

// Apply sets ifc's JoinedVRRP4 and JoinedVRRP6 for the interface with the
// given index: whether sockets other than the caller's own4 and own6 hold
// the groups on it. When the memberships are not known, it adds why to
// ifc.Problems instead.
func (m Memberships) Apply(ifc *Interface, index, own4, own6 int) {
	if m.problem != "" {
		ifc.Problems = append(ifc.Problems, m.problem)
		return
	}
	joined := func(gs []groupUsers, own int) *bool {
		j := false
		for _, g := range gs {
			j = j || g.ifindex == index && g.users > own
		}
		return &j
	}
	ifc.JoinedVRRP4, ifc.JoinedVRRP6 = joined(m.v4, own4), joined(m.v6, own6)
}

// HeldAddrs sets, per instance, the virtual addresses some interface of
// this host holds (netlink): with again, only those held before (in.Held)
// and now are kept.
func HeldAddrs(r *Report, again bool) { heldAddrs(r, again) }

// SenderFacts adds to each interface of r the rp_filter settings and the
// kernel's reverse-path verdict for every peer the instances heard.
func SenderFacts(r *Report, procDir string) { senderFacts(r, procDir) }

// FirewallFacts sets r.Firewall and each instance's FirewallIn and
// FirewallOut: the verdicts of the firewall live (as fw.ReadLive read it,
// or the error of that reading) on the peers' adverts coming in and this
// node's going out. Peers heard (Fill) are evaluated by their address.
func FirewallFacts(ctx context.Context, r *Report, live *fw.Live, err error) {
	firewallFacts(ctx, r, live, err)
}

// Daemons lists the VRRP daemons (keepalived, vrrpdoctor run) running in
// the caller's network namespace, and what could not be read.
func Daemons(procDir string) ([]Process, []string) { return daemons(procDir) }

// LocalAddr is the source address of this node's adverts for the instance:
// unicast_src_ip, else the interface's first IPv4 address or its IPv6
// link-local address.
func LocalAddr(in *Instance, ifc *Interface) netip.Addr { return localAddr(in, ifc) }
