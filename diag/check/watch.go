package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// observation is what the taps saw on one interface: every advert on the
// wire, analysed by diag's Analyzer (per sender statistics and overlaps),
// the destinations each sender used, and the correlator's wire-versus-socket
// figures.
type observation struct {
	mu  sync.Mutex
	lt  capture.LinkType
	dec *capture.Decoder
	pkt capture.Packet
	an  *diag.Analyzer
	// senders holds what each sender's adverts showed beyond the
	// analyzer's statistics: one map lookup per advert.
	senders map[senderKey]*senderObs
	// bySlot lists the senders of each VRID and family.
	bySlot map[[2]uint8][]netip.Addr
	// addrs is the set of the addresses addrsOf, the last interface's
	// (ifcAddrs), kept for the next instance filled: 100 instances on an
	// interface with their 100 virtual addresses made a set each.
	addrsOf []netip.Prefix
	addrs   map[netip.Addr]bool
	stats   capture.SessionStats
	// free keeps the sender records of the last window (reset) for the
	// next.
	free []*senderObs
	// Room for what fill hands out, the instances' Advertisers, peers and
	// SendFacts and their slices, valid until reset (take); peersWanted
	// counts the peers of the window, ours is concurrency's scratch.
	advs        []Advertiser
	peers       []Peer
	sends       []SendFacts
	ints        []int
	addrBuf     []netip.Addr
	peersWanted int
	ours        []time.Time
}

// take returns n elements of *buf, to be overwritten: the room a window
// keeps for its instances' facts, reused after reset. Appending to the
// slice moves it out of *buf.
func take[T any](buf *[]T, n int) []T {
	l := len(*buf)
	if l+n > cap(*buf) {
		// The full buffer stays with those it was handed to.
		*buf, l = make([]T, 0, max(2*cap(*buf), n, 16)), 0
	}
	*buf = (*buf)[:l+n]
	return (*buf)[l : l+n : l+n]
}

// newSends returns zero SendFacts of the window's room.
func (o *observation) newSends() *SendFacts {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := &take(&o.sends, 1)[0]
	*s = SendFacts{}
	return s
}

// reset empties the observation for the next window of a watch, keeping
// its memory: the analyzer's, the sender records' and the set of the
// interface's addresses.
func (o *observation) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.an.Reset()
	for _, s := range o.senders {
		if len(o.free) >= maxFreeSenders {
			break
		}
		s.dsts = s.dsts[:0]
		if cap(s.times) > maxKeptTimes {
			s.times = nil // a flood's: not kept
		}
		s.times = s.times[:0]
		o.free = append(o.free, s)
	}
	clear(o.senders)
	for k, v := range o.bySlot {
		o.bySlot[k] = v[:0]
	}
	o.stats = capture.SessionStats{}
	o.advs, o.sends, o.ints, o.addrBuf = o.advs[:0], o.sends[:0], o.ints[:0], o.addrBuf[:0]
	if cap(o.peers) < o.peersWanted {
		o.peers = make([]Peer, 0, o.peersWanted)
	}
	o.peers, o.peersWanted = o.peers[:0], 0
}

// Reset empties the window for the next one of the same wire tap, keeping
// its memory. The caller makes sure that nothing uses the window's last
// contents any more (Fill); frames taken during Reset go into the next
// window.
func (w *Window) Reset() { w.o.reset() }

// Bounds on what reset keeps: sender records, and room for send times
// per sender (a window of 0.01 s adverts).
const (
	maxFreeSenders = 1024
	maxKeptTimes   = 1024
)

// maxTimes bounds the send times kept per sender: a check watches seconds,
// a few hundred adverts at the shortest interval (10 ms).
const maxTimes = 1 << 14

type senderKey struct {
	vrid, family uint8
	src          netip.Addr
}

// senderObs is one sender's destinations (at most 8) and the send times
// of its adverts with a priority above 0 (at most maxTimes).
type senderObs struct {
	dsts  []netip.Addr
	times []time.Time
}

func newObservation() *observation {
	return &observation{dec: capture.NewDecoder(), an: diag.NewAnalyzer(), senders: map[senderKey]*senderObs{}, bySlot: map[[2]uint8][]netip.Addr{}}
}

// ifcAddrs returns the set of ifc's addresses (none for nil).
func (o *observation) ifcAddrs(ifc *Interface) map[netip.Addr]bool {
	if ifc == nil {
		return nil
	}
	if o.addrs != nil && slices.Equal(o.addrsOf, ifc.Addrs) {
		return o.addrs
	}
	o.addrs = make(map[netip.Addr]bool, len(ifc.Addrs))
	for _, p := range ifc.Addrs {
		o.addrs[p.Addr().WithZone("")] = true
	}
	o.addrsOf = slices.Clone(ifc.Addrs)
	return o.addrs
}

// dsts returns the destinations of sender k's adverts.
func (o *observation) dsts(k senderKey) []netip.Addr {
	if s := o.senders[k]; s != nil {
		return s.dsts
	}
	return nil
}

// times returns the send times of sender k's adverts.
func (o *observation) times(k senderKey) []time.Time {
	if s := o.senders[k]; s != nil {
		return s.times
	}
	return nil
}

func (o *observation) start(t *capture.WireTap) error {
	o.mu.Lock()
	o.lt = t.LinkType()
	o.mu.Unlock()
	return nil
}

func (o *observation) frame(f *capture.WireFrame) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := &o.pkt
	if err := o.dec.Decode(o.lt, f.Data, p); err != nil {
		// Tested only on an error: errors.As's target escapes, one
		// allocation per advert.
		if !isChecksumError(err) {
			return nil // not VRRP, or undecodable: the session counts those
		}
		p.Advert.Checksummed = vrrpcore.ChecksumBad
	}
	p.Time = f.Time
	o.an.Add(p)
	k := senderKey{p.Advert.VRID, p.Family, p.Src}
	s := o.senders[k]
	if s == nil {
		if n := len(o.free); n > 0 {
			s, o.free = o.free[n-1], o.free[:n-1]
		} else {
			s = &senderObs{}
		}
		o.senders[k] = s
		slot := [2]uint8{k.vrid, k.family}
		o.bySlot[slot] = append(o.bySlot[slot], k.src)
	}
	if len(s.dsts) < 8 && !slices.Contains(s.dsts, p.Dst) {
		s.dsts = append(s.dsts, p.Dst)
	}
	if p.Advert.Priority > 0 && len(s.times) < maxTimes {
		if s.times == nil {
			s.times = make([]time.Time, 0, 16) // a window at 0.25 s adverts
		}
		s.times = append(s.times, f.Time)
	}
	return nil
}

func isChecksumError(err error) bool {
	var ce *vrrpcore.ChecksumError
	return errors.As(err, &ce)
}

// watch runs the taps on every interface of an instance that is up, for d,
// and returns what they saw per interface.
func watch(ctx context.Context, r *Report, d time.Duration) map[string]*observation {
	obs := map[string]*observation{}
	type running struct {
		name string
		sess *capture.Session
		o    *observation
	}
	var sessions []running
	info := &CaptureInfo{Interfaces: []CaptureIface{}}
	noPriv := false
	for _, ifc := range r.Interfaces {
		if !ifc.Exists || !ifc.Up {
			continue
		}
		var fams []uint8
		var unicast []netip.Addr
		multicast := false
		for _, in := range r.Instances {
			if in.Interface != ifc.Name {
				continue
			}
			if !slices.Contains(fams, in.Family) {
				fams = append(fams, in.Family)
			}
			if in.Unicast {
				if a := localAddr(&in, &ifc); a.IsValid() && !slices.Contains(unicast, a) {
					unicast = append(unicast, a)
				}
			} else {
				multicast = true
			}
		}
		so := capture.SessionOptions{Interface: ifc.Name, Families: fams}
		if !multicast && len(unicast) == 1 && len(fams) == 1 {
			so.Socket.Unicast = unicast[0]
		}
		o := newObservation()
		so.OnStart, so.OnFrame = o.start, o.frame
		sess, err := capture.StartSession(so)
		if err != nil {
			var pe *capture.PermissionError
			if errors.As(err, &pe) {
				noPriv = true
			} else {
				r.Skipped = append(r.Skipped, fmt.Sprintf("wire and socket taps on %s did not run: %v", ifc.Name, err))
			}
			info.Interfaces = append(info.Interfaces, CaptureIface{Name: ifc.Name, Error: err.Error()})
			continue
		}
		sessions = append(sessions, running{ifc.Name, sess, o})
	}
	if noPriv {
		r.Skipped = append(r.Skipped, "no CAP_NET_RAW: wire and socket taps skipped (run as root, or in the VRRP interface's network namespace with ip netns exec)")
	}
	start := time.Now()
	if len(sessions) > 0 {
		timer := time.NewTimer(d)
		failed := make(chan struct{}, len(sessions))
		stop := make(chan struct{})
		for _, s := range sessions {
			go func(s *capture.Session) {
				select {
				case <-s.Failed():
					failed <- struct{}{}
				case <-stop:
				}
			}(s.sess)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
		case <-failed:
		}
		timer.Stop()
		close(stop)
	}
	elapsed := time.Since(start)
	for _, s := range sessions {
		st, err := s.sess.Stop()
		ci := CaptureIface{Name: s.name, Frames: st.Frames, KernelDropped: st.Wire.Dropped}
		if err != nil {
			ci.Error = err.Error()
			r.Skipped = append(r.Skipped, fmt.Sprintf("capture on %s stopped early: %v", s.name, err))
		}
		for _, sk := range st.Sockets {
			if !sk.Open {
				ci.SocketErrors = append(ci.SocketErrors, fmt.Sprintf("IPv%d: %s", sk.Family, sk.Error))
			}
		}
		info.Interfaces = append(info.Interfaces, ci)
		s.o.mu.Lock()
		s.o.stats = st
		s.o.mu.Unlock()
		obs[s.name] = s.o
	}
	if len(sessions) > 0 {
		info.Duration = elapsed.Seconds()
	}
	r.Capture = info
	return obs
}

// fill sets the instance's Local and Peers from the observation, and from
// sent, this node's adverts as its speaker reported them, when not nil.
func (o *observation) fill(in *Instance, ifc *Interface, sent *Sent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	in.Observed = true
	// The peers are appended in the window's room (o.peers) while it
	// lasts; see the end.
	start := len(o.peers)
	in.Peers = o.peers[start:start:cap(o.peers)]
	if in.Peers == nil {
		in.Peers = []Peer{}
	}
	addrs := o.ifcAddrs(ifc)
	local := func(a netip.Addr) bool { return in.SrcIP.IsValid() && a == in.SrcIP || addrs[a] }
	// The groups of the instance's VRID and family, untagged, in the order
	// of the analyzer's report (by version).
	for _, version := range [...]uint8{2, 3} {
		key := diag.GroupKey{VRID: in.VRID, Version: version, Family: in.Family}
		o.an.Sources(key, func(s *diag.Source) {
			a := o.advertiser(key, s)
			if local(s.Address) {
				if in.Local == nil {
					in.Local = &take(&o.advs, 1)[0]
					*in.Local = Advertiser{}
				}
				merge(in.Local, a)
				return
			}
			p := in.peer(s.Address)
			if p == nil {
				in.Peers = append(in.Peers, Peer{})
				p = &in.Peers[len(in.Peers)-1]
			}
			merge(&p.Advertiser, a)
		})
	}
	if sent != nil {
		if in.Local == nil {
			in.Local = &take(&o.advs, 1)[0]
			*in.Local = Advertiser{}
		}
		merge(in.Local, o.sentAdvertiser(sent))
	}
	for _, f := range o.stats.Flows {
		if f.Interface != in.Interface || f.VRID != in.VRID || f.Family != in.Family || f.Direction != capture.DirIn || local(f.Sender) {
			continue
		}
		p := in.peer(f.Sender)
		if p == nil {
			// Only the socket saw it (the wire tap fell behind).
			in.Peers = append(in.Peers, Peer{Advertiser: Advertiser{Address: f.Sender, Versions: []int{int(f.Version)}, Priority: f.Priority,
				Interval: f.Interval.Seconds(), VIPs: []netip.Addr{}, TTLs: []int{}, Dsts: []netip.Addr{}}})
			p = &in.Peers[len(in.Peers)-1]
		}
		p.Socket += f.Socket.Packets
		p.Matched += f.Matched
		p.NotDelivered += f.Lost
	}
	if n := len(in.Peers); n > 0 {
		o.peersWanted += n
		if start+n <= cap(o.peers) && &o.peers[:start+n][start] == &in.Peers[0] {
			// Still in the room: taken.
			o.peers = o.peers[:start+n]
			in.Peers = in.Peers[:n:n]
		}
	}
	slices.SortFunc(in.Peers, func(a, b Peer) int { return a.Address.Compare(b.Address) })
	o.concurrency(in, ifc, local, sent)
}

// sentAdvertiser converts what the speaker reported of its adverts.
func (o *observation) sentAdvertiser(s *Sent) Advertiser {
	versions := append(take(&o.ints, len(s.Versions))[:0], s.Versions...)
	ttls := take(&o.ints, 1)
	ttls[0] = int(s.TTL)
	dsts := append(take(&o.addrBuf, len(s.Dsts))[:0], s.Dsts...)
	return Advertiser{
		Address: s.Address, Adverts: s.Adverts, Versions: versions, Priority: s.Priority, Interval: s.Interval.Seconds(),
		VIPs: []netip.Addr{}, TTLs: ttls, Dsts: dsts, Checksum: s.Checksum, Resigned: s.Resigned, First: s.First, Last: s.Last,
	}
}

// concurrency sets each peer's Concurrent from the send times of its and
// this node's adverts.
func (o *observation) concurrency(in *Instance, ifc *Interface, local func(netip.Addr) bool, sent *Sent) {
	if len(in.Peers) == 0 {
		return // nobody to compare with (a master alone)
	}
	ours := o.ours[:0]
	if sent != nil {
		ours = append(ours, sent.Times...)
	}
	for _, a := range o.bySlot[[2]uint8{in.VRID, in.Family}] {
		if local(a) {
			ours = append(ours, o.times(senderKey{in.VRID, in.Family, a})...)
		}
	}
	o.ours = ours
	slices.SortFunc(ours, time.Time.Compare)
	for i := range in.Peers {
		p := &in.Peers[i]
		theirs := o.times(senderKey{in.VRID, in.Family, p.Address})
		if len(ours) == 0 || len(theirs) == 0 {
			continue
		}
		iv := durationOf(max(p.Interval, in.AdvertInt))
		if in.Local != nil {
			iv = max(iv, durationOf(in.Local.Interval))
		}
		if iv <= 0 {
			iv = time.Second
		}
		usPrio, usAddr := in.Priority, localAddr(in, ifc)
		if in.Local != nil {
			usPrio, usAddr = in.Local.Priority, in.Local.Address
		}
		if wins(usPrio, usAddr, p.Priority, p.Address) {
			p.Concurrent = concurrent(ours, theirs, iv)
		} else {
			p.Concurrent = concurrent(theirs, ours, iv)
		}
	}
}

// concurrent counts the adverts of the loser (sorted times) sent while the
// winner had been advertising for 1.5 intervals and went on advertising
// (its next advert within 1.5 intervals): in a takeover the loser falls
// silent within an interval of the winner's first advert.
func concurrent(winner, loser []time.Time, iv time.Duration) uint64 {
	slack := iv * 3 / 2
	var n uint64
	for _, t := range loser {
		if t.Before(winner[0].Add(slack)) {
			continue
		}
		j, _ := slices.BinarySearchFunc(winner, t, time.Time.Compare)
		if j == 0 || j == len(winner) {
			continue
		}
		if t.Sub(winner[j-1]) <= slack && winner[j].Sub(t) <= slack {
			n++
		}
	}
	return n
}

// advertiser converts diag's statistics of one sender of one group.
func (o *observation) advertiser(g diag.GroupKey, s *diag.Source) Advertiser {
	versions := take(&o.ints, 1)
	versions[0] = int(g.Version)
	ttls := take(&o.ints, len(s.TTLs))
	for i, t := range s.TTLs {
		ttls[i] = int(t)
	}
	vips := take(&o.addrBuf, len(s.VIPs))
	copy(vips, s.VIPs)
	dsts := o.dsts(senderKey{g.VRID, g.Family, s.Address})
	dsts = append(take(&o.addrBuf, len(dsts))[:0], dsts...)
	a := Advertiser{
		Address: s.Address, Adverts: s.Packets, Versions: versions, Priority: s.Priority, Interval: s.Interval.Seconds(),
		VIPs: vips, TTLs: ttls, Dsts: dsts,
		Checksum: ChecksumCounts{Message: s.ChecksumMessage, PseudoHeader: s.ChecksumPseudoHeader, Errors: s.ChecksumErrors, OldUnicast: s.ChecksumOldUnicast},
		Resigned: s.Resigned, First: s.First, Last: s.Last,
	}
	if g.Version == 2 {
		switch s.AuthType {
		case vrrpcore.AuthNone:
			a.Auth = "none"
		case vrrpcore.AuthSimple:
			a.Auth, a.AuthData = "PASS", s.AuthData
		case vrrpcore.AuthAH:
			a.Auth = "AH"
		default:
			a.Auth = fmt.Sprintf("unknown(%d)", uint8(s.AuthType))
		}
	}
	if a.VIPs == nil {
		a.VIPs = []netip.Addr{}
	}
	if a.TTLs == nil {
		a.TTLs = []int{}
	}
	if a.Dsts == nil {
		a.Dsts = []netip.Addr{}
	}
	return a
}

// merge adds b (another version's adverts of one sender) into a; the later
// adverts' values win.
func merge(a *Advertiser, b Advertiser) {
	if a.Adverts == 0 && !a.Address.IsValid() {
		*a = b
		return
	}
	later := b.Last.After(a.Last)
	a.Adverts += b.Adverts
	for _, v := range b.Versions {
		if !slices.Contains(a.Versions, v) {
			a.Versions = append(a.Versions, v)
		}
	}
	for _, t := range b.TTLs {
		if !slices.Contains(a.TTLs, t) {
			a.TTLs = append(a.TTLs, t)
		}
	}
	slices.Sort(a.TTLs)
	for _, d := range b.Dsts {
		if !slices.Contains(a.Dsts, d) {
			a.Dsts = append(a.Dsts, d)
		}
	}
	a.Checksum.Message += b.Checksum.Message
	a.Checksum.PseudoHeader += b.Checksum.PseudoHeader
	a.Checksum.Errors += b.Checksum.Errors
	a.Resigned += b.Resigned
	if b.First.Before(a.First) {
		a.First = b.First
	}
	if later {
		a.Last, a.Priority, a.Interval, a.VIPs = b.Last, b.Priority, b.Interval, b.VIPs
		if b.Auth != "" {
			a.Auth, a.AuthData = b.Auth, b.AuthData
		}
	}
}
