package capture

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// This file correlates the two taps: it matches the wire tap's and the
// socket tap's observations of the same packet and counts, per sender,
// what reached the wire and what reached the socket.
//
// The same packet is recognised by its sender, destination, VRID, VRRP
// checksum and length, and by its IPv4 identification or IPv6 flow label,
// seen within Window of each other. Both taps read the kernel's receive
// timestamp of the packet, which is the same value for both once the
// kernel's receive timestamping is on, so Window only has to cover the
// short moment after the first tap opens when the kernel still stamps
// packets as they are read. Adverts of one sender that look alike (IPv6
// adverts often do: the flow label stays the same) are matched in order,
// to the closest timestamp.
//
// Outgoing adverts cannot be seen at a socket. For them the correlator
// compares send attempts with what leaves on the wire: whoever sends
// (vrrpdoctor's own runtime, or the capture command's probe) reports every
// sendto(2) and its result with AddSend. A netfilter drop in OUTPUT makes
// sendto fail with EPERM and nothing reaches the wire. Adverts of other
// daemons on the host (keepalived) are counted on the wire only: their send
// attempts are not visible to another process.

// Defaults of CorrelatorOptions.
const (
	DefaultMatchWindow = 100 * time.Millisecond
	DefaultGrace       = 500 * time.Millisecond
	DefaultMaxEvents   = 1000
)

// CorrelatorOptions configure a Correlator. The zero value is usable.
type CorrelatorOptions struct {
	// Window is the largest difference between the wire and socket
	// timestamps of one packet; default DefaultMatchWindow.
	Window time.Duration
	// Grace is how much longer than Window the correlator waits for the
	// second observation of a packet before it gives up (the taps are read
	// by different goroutines); default DefaultGrace.
	Grace time.Duration
	// MaxEvents is how many of the latest events are kept; default
	// DefaultMaxEvents. All are counted.
	MaxEvents int
	// OnEvent, when set, is called for each event as it is decided, with
	// the correlator's lock held: it must not call back into it.
	OnEvent func(Event)
	// Notify, when set, receives a value, without blocking (none is sent
	// while one is pending), when something new or wrong is seen: a flow
	// first seen, or heard again after a silence of more than three of its
	// advert intervals (at least a second); an advert with a bad checksum;
	// an incoming advert decided lost (seen on the wire, never at the
	// socket; decided when the flow's next advert comes, or by Advance);
	// a failed send attempt, or a successful one never seen on the wire. A reader that judges the flows at
	// intervals can wake on it instead of waiting for the next one. The
	// steady state costs a branch per advert.
	Notify chan<- struct{}
}

// FlowKey identifies the adverts of one sender for one virtual router on
// one interface, in one direction.
type FlowKey struct {
	Interface string
	VRID      uint8
	Family    uint8      // 4 or 6
	Sender    netip.Addr // IP source of the adverts (this host's own for DirOut)
	Direction Direction  // DirIn: adverts received; DirOut: adverts this host sent
}

// TapCount is what one tap saw of one flow.
type TapCount struct {
	Packets     uint64
	BadChecksum uint64 // adverts whose VRRP checksum is wrong (included in Packets)
	First, Last time.Time
	// Gaps between consecutive packets: how many, the shortest, the
	// longest and their sum (Mean returns the average).
	Gaps           uint64
	MinGap, MaxGap time.Duration
	SumGaps        time.Duration
}

// MeanGap returns the average gap between consecutive packets, 0 with
// fewer than two packets.
func (c TapCount) MeanGap() time.Duration {
	if c.Gaps == 0 {
		return 0
	}
	return c.SumGaps / time.Duration(c.Gaps)
}

func (c *TapCount) add(t time.Time, badChecksum bool) {
	c.Packets++
	if badChecksum {
		c.BadChecksum++
	}
	if c.Packets == 1 {
		c.First, c.Last = t, t
		return
	}
	if gap := t.Sub(c.Last); gap >= 0 {
		if c.Gaps == 0 || gap < c.MinGap {
			c.MinGap = gap
		}
		if gap > c.MaxGap {
			c.MaxGap = gap
		}
		c.Gaps++
		c.SumGaps += gap
		c.Last = t
	} else if t.Before(c.First) {
		c.First = t
	}
}

// FlowStats are the figures of one flow.
type FlowStats struct {
	FlowKey
	// Last advert seen (either tap).
	Version  uint8
	Priority uint8
	Interval time.Duration // declared advert interval

	Wire   TapCount // seen on the wire
	Socket TapCount // delivered to the socket (incoming only)

	// Incoming: wire observations matched with a socket delivery, wire
	// observations the socket never got (decided once Window and Grace
	// have passed), socket deliveries never seen on the wire (the wire
	// tap dropped them), and wire observations still undecided.
	Matched, Lost, SocketOnly uint64
	Pending                   int

	// Outgoing: send attempts reported with AddSend, those that failed
	// (sendto returned an error; LastSendError is the latest), successful
	// attempts seen leaving on the wire and those never seen there.
	Sends, SendErrors       uint64
	LastSendError           string
	SentOnWire, SentMissing uint64
}

// DeliveryRatio is the share of the flow's decided wire observations that
// reached the socket: Matched / (Matched + Lost). ok is false while none is
// decided.
func (s FlowStats) DeliveryRatio() (ratio float64, ok bool) {
	n := s.Matched + s.Lost
	if n == 0 {
		return 0, false
	}
	return float64(s.Matched) / float64(n), true
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventNotDelivered: an incoming advert reached the wire, never the
	// socket.
	EventNotDelivered EventKind = iota + 1
	// EventSendFailed: a send attempt failed (sendto returned an error).
	EventSendFailed
	// EventSentNotOnWire: a send attempt succeeded but the advert never
	// appeared on the wire.
	EventSentNotOnWire
)

func (k EventKind) String() string {
	switch k {
	case EventNotDelivered:
		return "not-delivered"
	case EventSendFailed:
		return "send-failed"
	case EventSentNotOnWire:
		return "sent-not-on-wire"
	}
	return "unknown"
}

// Event is one packet the correlator found missing on one side.
type Event struct {
	Kind EventKind
	Flow FlowKey
	Time time.Time // wire timestamp, or time of the send attempt
	Dst  netip.Addr
	// Packet identity (EventNotDelivered): IPv4 identification or IPv6
	// flow label, VRRP checksum, and whether that checksum is wrong.
	IPID        uint16
	FlowLabel   uint32
	Checksum    uint16
	BadChecksum bool
	Priority    uint8
	Err         string // EventSendFailed: the error sendto returned
}

// SendAttempt is one advert a VRRP speaker on this host tried to send, with
// what sendto(2) returned.
type SendAttempt struct {
	Time      time.Time // just before the call
	Interface string
	VRID      uint8
	Src, Dst  netip.Addr // Src: the advert's IP source on the wire
	Err       error      // nil when the kernel took the packet
	// What the advert carried, when the speaker says (a zero Version:
	// not said): its priority, VRRP version, advert interval, checksum
	// variant and IP TTL (hop limit).
	Priority uint8
	Version  uint8
	Interval time.Duration
	Checksum vrrpcore.ChecksumKind
	TTL      uint8
}

// Snapshot is the correlator's state at one moment.
type Snapshot struct {
	Flows []FlowStats // sorted by interface, family, VRID, direction, sender
	// Events are the latest events, oldest first; EventCount counts all.
	Events     []Event
	EventCount uint64
}

// Flow returns the figures of the flow with key k.
func (s *Snapshot) Flow(k FlowKey) (FlowStats, bool) {
	for _, f := range s.Flows {
		if f.FlowKey == k {
			return f, true
		}
	}
	return FlowStats{}, false
}

// Correlator matches the observations of the two taps. Its methods are
// safe for concurrent use.
type Correlator struct {
	o CorrelatorOptions

	mu         sync.Mutex
	flows      map[FlowKey]*flow
	last       *flow   // the flow of the latest packet
	events     []Event // ring of the latest o.MaxEvents
	eventNext  int
	eventCount uint64
	keys       []FlowKey // sortedKeys', reused
}

type flow struct {
	FlowStats
	wire, socket pendingSet // undecided incoming observations
	sends        pendingSet // undecided successful send attempts
	out          pendingSet // outgoing adverts not matched to a send attempt yet
}

// observation is one tap's sighting of a packet, reduced to what
// identifies it. It holds no pointers, so that the garbage collector need
// not scan the many a flood leaves pending.
type observation struct {
	t           int64 // UnixNano
	id          identity
	prev        int64 // absolute index of the previous pending entry of the same identity, -1 for none
	taken       bool
	badChecksum bool
	priority    uint8
}

// identity is what two sightings of one packet share. Send attempts are
// known by their destination only.
type identity struct {
	dst       [16]byte // IPv4 as IPv4-mapped
	checksum  uint16
	ipid      uint16
	length    int32
	flowLabel uint32
}

func dstOf(a netip.Addr) [16]byte { return a.Unmap().As16() }

func (id identity) dstAddr() netip.Addr { return netip.AddrFrom16(id.dst).Unmap() }

// pendingSet holds undecided observations in arrival order, with the
// newest of each identity found through a map and older ones of the same
// identity chained from it, so that matching and expiry cost O(1) per
// packet however many wait, without allocating per packet.
type pendingSet struct {
	entries []observation // entries[head:] are pending or taken
	head    int
	start   int64 // absolute index of entries[0]
	byID    map[identity]int64
	live    int
}

func (s *pendingSet) at(abs int64) *observation { return &s.entries[abs-s.start] }

// valid says whether abs still indexes an entry that has not expired.
func (s *pendingSet) valid(abs int64) bool { return abs >= s.start+int64(s.head) }

func (s *pendingSet) add(o observation) {
	if s.byID == nil {
		s.byID = make(map[identity]int64)
	}
	o.prev = -1
	if p, ok := s.byID[o.id]; ok {
		o.prev = p
	}
	abs := s.start + int64(len(s.entries))
	s.entries = append(s.entries, o)
	s.byID[o.id] = abs
	s.live++
}

// take removes and reports the observation of the same identity as o that
// is closest to it in time, within window.
func (s *pendingSet) take(o observation, window time.Duration) bool {
	best, bestSucc, bestD := int64(-1), int64(-1), int64(0)
	succ := int64(-1)
	for i, ok := s.byID[o.id]; ok && i >= 0 && s.valid(i); i = s.at(i).prev {
		x := s.at(i)
		d := o.t - x.t
		if d < 0 {
			d = -d
		}
		if d <= int64(window) && (best < 0 || d < bestD) {
			best, bestSucc, bestD = i, succ, d
		}
		if x.t < o.t-int64(window) {
			break // older ones are further away still
		}
		succ = i
	}
	if best < 0 {
		return false
	}
	s.unlink(o.id, best, bestSucc)
	return true
}

// takeOldest removes and reports the oldest observation of identity id
// whose time lies in [from, to].
func (s *pendingSet) takeOldest(id identity, from, to time.Time) bool {
	lo, hi := from.UnixNano(), to.UnixNano()
	found, foundSucc := int64(-1), int64(-1)
	succ := int64(-1)
	for i, ok := s.byID[id]; ok && i >= 0 && s.valid(i); i = s.at(i).prev {
		x := s.at(i)
		if x.t >= lo && x.t <= hi {
			found, foundSucc = i, succ
		}
		succ = i
	}
	if found < 0 {
		return false
	}
	s.unlink(id, found, foundSucc)
	return true
}

// unlink marks entry abs taken and removes it from its identity's chain;
// succ is the next newer entry of the chain, -1 if abs is the newest.
func (s *pendingSet) unlink(id identity, abs, succ int64) {
	x := s.at(abs)
	x.taken = true
	switch {
	case succ >= 0:
		s.at(succ).prev = x.prev
	case x.prev >= 0 && s.valid(x.prev):
		s.byID[id] = x.prev
	default:
		delete(s.byID, id)
	}
	s.live--
}

// expire removes the observations not after limit, oldest first, and
// calls fn for each that was not taken.
func (s *pendingSet) expire(limit time.Time, fn func(observation)) {
	lim := limit.UnixNano()
	for s.head < len(s.entries) && s.entries[s.head].t <= lim {
		o := s.entries[s.head]
		abs := s.start + int64(s.head)
		s.head++
		if o.taken {
			continue
		}
		// The oldest pending entry ends its chain: only the map may
		// still point at it.
		if s.byID[o.id] == abs {
			delete(s.byID, o.id)
		}
		s.live--
		fn(o)
	}
	if s.head == len(s.entries) {
		s.start += int64(s.head)
		s.entries, s.head = s.entries[:0], 0
	} else if s.head > 1024 && s.head > len(s.entries)/2 {
		n := copy(s.entries, s.entries[s.head:])
		s.start += int64(s.head)
		s.entries, s.head = s.entries[:n], 0
	}
}

// NewCorrelator returns a Correlator.
func NewCorrelator(o CorrelatorOptions) *Correlator {
	if o.Window <= 0 {
		o.Window = DefaultMatchWindow
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	return &Correlator{o: o, flows: make(map[FlowKey]*flow)}
}

func (c *Correlator) flow(k FlowKey) *flow {
	if c.last != nil && c.last.FlowKey == k {
		return c.last // the same sender, packet after packet
	}
	f := c.flows[k]
	if f == nil {
		f = &flow{FlowStats: FlowStats{FlowKey: k}}
		c.flows[k] = f
		c.notify()
	}
	c.last = f
	return f
}

// notify tells Notify, without blocking.
func (c *Correlator) notify() {
	if c.o.Notify == nil {
		return
	}
	select {
	case c.o.Notify <- struct{}{}:
	default:
	}
}

// resumed says whether a packet at t comes after a silence of the flow on
// a tap whose last packet was at last: more than three advert intervals
// (the interval last declared; at least a second).
func (f *flow) resumed(tc *TapCount, t time.Time) bool {
	return tc.Packets > 0 && t.Sub(tc.Last) > max(3*f.Interval, time.Second)
}

// expireIncoming decides the incoming observations of f older than limit
// (f's key is k; c.mu is held): wire ones become Lost (EventNotDelivered),
// socket ones SocketOnly.
func (c *Correlator) expireIncoming(k FlowKey, f *flow, limit time.Time) {
	f.wire.expire(limit, func(o observation) {
		f.Lost++
		c.event(Event{Kind: EventNotDelivered, Flow: k, Time: time.Unix(0, o.t), Dst: o.id.dstAddr(), IPID: o.id.ipid, FlowLabel: o.id.flowLabel,
			Checksum: o.id.checksum, BadChecksum: o.badChecksum, Priority: o.priority})
		c.notify()
	})
	f.socket.expire(limit, func(observation) { f.SocketOnly++ })
}

func observe(p *Packet, badChecksum bool) observation {
	return observation{
		t:           p.Time.UnixNano(),
		id:          identity{dst: dstOf(p.Dst), checksum: p.Advert.Checksum, length: int32(p.Length), ipid: p.IPID, flowLabel: p.FlowLabel},
		badChecksum: badChecksum,
		priority:    p.Advert.Priority,
	}
}

func (f *flow) note(p *Packet) {
	f.Version, f.Priority, f.Interval = p.Advert.Version, p.Advert.Priority, p.Advert.Interval
}

// AddWire records an advert the wire tap saw on iface. badChecksum marks
// an advert whose VRRP checksum did not verify (the decoder's
// *vrrpcore.ChecksumError); p must otherwise be fully decoded. A packet
// with an unknown direction counts as incoming.
func (c *Correlator) AddWire(iface string, p *Packet, badChecksum bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dir := p.Direction
	if dir != DirOut {
		dir = DirIn
	}
	k := FlowKey{Interface: iface, VRID: p.Advert.VRID, Family: p.Family, Sender: p.Src, Direction: dir}
	f := c.flow(k)
	if badChecksum || f.resumed(&f.Wire, p.Time) {
		c.notify()
	}
	f.note(p)
	f.Wire.add(p.Time, badChecksum)
	o := observe(p, badChecksum)
	if dir == DirOut {
		// The advert leaves after its send attempt began, and the wire
		// tap may stamp it when it reads it: the oldest attempt within
		// Window+Grace before is the one.
		id := identity{dst: dstOf(p.Dst)}
		if f.sends.takeOldest(id, p.Time.Add(-c.o.Window-c.o.Grace), p.Time.Add(time.Millisecond)) {
			f.SentOnWire++
		} else {
			// Its send attempt may be reported a moment later.
			f.out.add(observation{t: o.t, id: id})
		}
		return
	}
	// What is older than this advert by the window and grace is decided
	// now, as Advance would: a loss is told at once (Notify), and a flow's
	// pending sets stay as short as the match window, however seldom
	// Advance runs.
	c.expireIncoming(k, f, p.Time.Add(-c.o.Window-c.o.Grace))
	if f.socket.take(o, c.o.Window) {
		f.Matched++
		return
	}
	f.wire.add(o)
}

// AddSocket records an advert the socket tap received on iface.
func (c *Correlator) AddSocket(iface string, p *Packet, badChecksum bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := FlowKey{Interface: iface, VRID: p.Advert.VRID, Family: p.Family, Sender: p.Src, Direction: DirIn}
	f := c.flow(k)
	if badChecksum || f.resumed(&f.Socket, p.Time) {
		c.notify()
	}
	f.note(p)
	f.Socket.add(p.Time, badChecksum)
	o := observe(p, badChecksum)
	c.expireIncoming(k, f, p.Time.Add(-c.o.Window-c.o.Grace))
	if f.wire.take(o, c.o.Window) {
		f.Matched++
		return
	}
	f.socket.add(o)
}

// AddSend records a send attempt. Attempts that succeeded wait for their
// advert to appear on the wire; failed ones become EventSendFailed.
func (c *Correlator) AddSend(a SendAttempt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	family := uint8(6)
	if a.Src.Unmap().Is4() {
		family = 4
	}
	k := FlowKey{Interface: a.Interface, VRID: a.VRID, Family: family, Sender: a.Src.Unmap(), Direction: DirOut}
	f := c.flow(k)
	f.Sends++
	if a.Err != nil {
		f.SendErrors++
		f.LastSendError = a.Err.Error()
		c.event(Event{Kind: EventSendFailed, Flow: k, Time: a.Time, Dst: a.Dst, Err: a.Err.Error()})
		c.notify()
		return
	}
	id := identity{dst: dstOf(a.Dst)}
	if f.out.takeOldest(id, a.Time.Add(-time.Millisecond), a.Time.Add(c.o.Window+c.o.Grace)) {
		f.SentOnWire++
		return
	}
	f.sends.add(observation{t: a.Time.UnixNano(), id: id})
}

// Advance decides every observation older than now - Window - Grace that
// is still unmatched: incoming adverts seen only on the wire become
// EventNotDelivered, adverts only the socket got count as SocketOnly,
// successful send attempts never seen on the wire become
// EventSentNotOnWire. Call it periodically with the current time.
func (c *Correlator) Advance(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := now.Add(-c.o.Window - c.o.Grace)
	for _, k := range c.sortedKeys() {
		f := c.flows[k]
		c.expireIncoming(k, f, limit)
		f.out.expire(limit, func(observation) {}) // sent by a daemon that reports no attempts
		f.sends.expire(limit, func(o observation) {
			f.SentMissing++
			c.event(Event{Kind: EventSentNotOnWire, Flow: k, Time: time.Unix(0, o.t), Dst: o.id.dstAddr()})
			c.notify()
		})
	}
}

func (c *Correlator) event(e Event) {
	c.eventCount++
	if len(c.events) < c.o.MaxEvents {
		c.events = append(c.events, e)
	} else {
		c.events[c.eventNext] = e
		c.eventNext = (c.eventNext + 1) % c.o.MaxEvents
	}
	if c.o.OnEvent != nil {
		c.o.OnEvent(e)
	}
}

// sortedKeys returns the flows' keys in order, in a slice valid until the
// next call; c.mu is held. A watch calls it twice a window (Advance,
// Snapshot): the slice is reused.
func (c *Correlator) sortedKeys() []FlowKey {
	keys := c.keys[:0]
	for k := range c.flows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	c.keys = keys
	return keys
}

func compareKeys(a, b FlowKey) int {
	return cmp.Or(
		cmp.Compare(a.Interface, b.Interface),
		cmp.Compare(a.Family, b.Family),
		cmp.Compare(a.VRID, b.VRID),
		cmp.Compare(a.Direction, b.Direction),
		a.Sender.Compare(b.Sender),
	)
}

// Snapshot returns the figures of every flow and the latest events.
func (c *Correlator) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{EventCount: c.eventCount}
	keys := c.sortedKeys()
	if len(keys) > 0 {
		s.Flows = make([]FlowStats, 0, len(keys))
	}
	for _, k := range keys {
		f := c.flows[k]
		st := f.FlowStats
		st.Pending = f.wire.live
		s.Flows = append(s.Flows, st)
	}
	s.Events = append(s.Events, c.events[c.eventNext:]...)
	s.Events = append(s.Events, c.events[:c.eventNext]...)
	return s
}

// isChecksumError reports whether err is (or wraps) a bad VRRP checksum.
func isChecksumError(err error) bool {
	_, ok := errors.AsType[*vrrpcore.ChecksumError](err)
	return ok
}
