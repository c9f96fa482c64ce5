package diag

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// Limits that keep the analysis's memory flat whatever the capture holds.
const (
	// MaxSources is the most senders tracked across all groups; adverts of
	// further senders are counted in CaptureReport.UntrackedAdverts.
	MaxSources = 4096
	// MaxPriorityChanges is the most priority changes kept per sender; all
	// are counted.
	MaxPriorityChanges = 32
	// gapSamples is the size of the per-sender reservoir of advert gaps
	// from which the median and jitter are computed.
	gapSamples = 1024
	// duplicateGap is the gap under which a second advert from the same
	// sender (with the same IPv4 identification) is taken as a duplicate
	// of the first (the same frame seen on two interfaces); VRRPv3's
	// shortest interval is 10 ms.
	duplicateGap = time.Millisecond
	// splitBrainMinOverlaps is how many adverts each of two senders must
	// send while the other is active before they are taken as both
	// master. A takeover makes the new master overlap for at most about
	// three adverts, and the old one for at most one.
	splitBrainMinOverlaps = 3
	// activeWindowIntervals: a sender counts as active for this many of
	// its advert intervals after its last advert, the time a backup waits
	// before it takes over (RFC 5798 Master_Down_Interval, less skew).
	activeWindowIntervals = 3
	// maxPairSources: overlaps are tracked among the first this many
	// senders of a group (a real virtual router has two or three).
	maxPairSources = 16
)

// GroupKey identifies one virtual router as seen in a capture.
type GroupKey struct {
	VLAN    uint16 // 802.1Q VLAN ID, 0 when untagged
	VRID    uint8
	Version uint8 // 2 or 3
	Family  uint8 // 4 or 6
}

// PriorityChange is a sender's priority changing between two adverts.
type PriorityChange struct {
	Time     time.Time
	From, To uint8
}

// Source is what one sender advertised for one virtual router.
type Source struct {
	Address netip.Addr
	MAC     [6]byte // source MAC address, when HasMAC
	HasMAC  bool
	Packets uint64
	// Duplicates counts adverts that followed the previous one from the
	// same sender within a millisecond (the same frame seen twice); they
	// are included in Packets but not in the interval statistics.
	Duplicates  uint64
	First, Last time.Time
	Priority    uint8 // last seen
	// PriorityChanges lists the first MaxPriorityChanges changes;
	// PriorityChangeCount counts them all.
	PriorityChanges     []PriorityChange
	PriorityChangeCount uint64
	Interval            time.Duration // declared advert interval, last seen
	// Intervals lists every distinct declared interval, in order of
	// appearance (at most 8).
	Intervals []time.Duration
	// Observed advert interval: the median gap between consecutive
	// adverts, and the jitter (median absolute deviation of the gaps from
	// that median), from a uniform sample of at most 1024 gaps; the
	// shortest and longest gap are exact. Gaps counts the gaps measured.
	ObservedInterval time.Duration
	Jitter           time.Duration
	MinGap, MaxGap   time.Duration
	Gaps             uint64
	AuthType         vrrpcore.AuthType // VRRPv2, last seen
	// AuthData is the VRRPv2 simple-text password as sent (NUL padding
	// removed). It is visible on the wire; renderers show it in text only.
	AuthData string
	VIPs     []netip.Addr // virtual addresses, last seen, in packet order
	// VIPChanges counts adverts whose address list differed from the one
	// before.
	VIPChanges uint64
	TTLs       []uint8 // distinct TTL / hop-limit values, ascending
	// Checksum variants: adverts whose checksum was over the message only
	// (VRRPv2 rule), over pseudo-header and message (VRRPv3 rule), or
	// matched neither.
	ChecksumMessage, ChecksumPseudoHeader, ChecksumErrors uint64
	// ChecksumOldUnicast counts VRRPv3 unicast adverts summed over a
	// pseudo-header to 224.0.0.18, as keepalived before 1.3.6 did (and
	// keepalived since with old_unicast_checksum).
	ChecksumOldUnicast uint64
	// Resigned counts priority-0 adverts: the master giving up. The last
	// one is at LastResign; TakeoverBy is the first other sender to
	// advertise after it, TakeoverAfter how long after.
	Resigned      uint64
	LastResign    time.Time
	TakeoverBy    netip.Addr
	TakeoverAfter time.Duration
}

// Overlap is two senders of one virtual router advertising within a few
// advert intervals of each other: both act as master.
type Overlap struct {
	A, B netip.Addr
	// AdvertsA counts A's adverts sent while B was active, AdvertsB the
	// reverse.
	AdvertsA, AdvertsB uint64
	First, Last        time.Time // first and last overlapping advert
	Window             time.Duration
}

// Group is one virtual router as seen in a capture.
type Group struct {
	GroupKey
	Packets  uint64
	Sources  []Source  // by address
	Overlaps []Overlap // pairs of senders that advertised at the same time
}

// FileSummary is what reading one capture file gave.
type FileSummary struct {
	Name    string
	Format  string // capture.FormatPcap or capture.FormatPcapng; empty when unreadable
	Frames  uint64 // frames read
	Adverts uint64 // VRRP adverts decoded, checksum errors included
	NotVRRP uint64 // frames that carry no VRRP, unsupported ones included
	// UnsupportedFrames counts frames of link types the decoder does not
	// know; UnsupportedLinkType is the first such LINKTYPE_ value.
	UnsupportedFrames   uint64
	UnsupportedLinkType uint32
	// DecodeErrors counts VRRP frames that could not be decoded;
	// FirstDecodeError describes the first, with its frame's byte offset.
	DecodeErrors     uint64
	FirstDecodeError string
	First, Last      time.Time // capture times of the first and last frame
	// Err stopped the reading (unreadable, not a capture, damaged or cut
	// short); what was read before it is in the report.
	Err error
}

// CaptureReport is the analysis of one or more capture files.
type CaptureReport struct {
	Files    []FileSummary
	Groups   []Group // by VLAN, VRID, family, version
	Findings []Finding
	// UntrackedAdverts counts adverts of senders beyond MaxSources.
	UntrackedAdverts uint64
}

// Status names the report's monitoring status: "ok", "warning",
// "critical" or "unknown" (see ExitCode).
func (r *CaptureReport) Status() string { return StatusName(r.ExitCode()) }

// FileErrors counts the files that could not be read to the end.
func (r *CaptureReport) FileErrors() int {
	n := 0
	for _, f := range r.Files {
		if f.Err != nil {
			n++
		}
	}
	return n
}

// ExitCode follows the monitoring-plugin convention: 2 for a critical
// finding; otherwise 3 (UNKNOWN) when a file could not be read to the end;
// otherwise 1 for a warning and 0 when all is well.
func (r *CaptureReport) ExitCode() int {
	s := MaxSeverity(r.Findings)
	switch {
	case s >= SeverityCritical:
		return ExitCritical
	case r.FileErrors() > 0:
		return ExitUnknown
	default:
		return s.ExitCode()
	}
}

// sourceState is the streaming state of one sender in one group.
type sourceState struct {
	Source
	idx         int    // position in the group's sources
	first, last int64  // unix nanoseconds
	lastIPID    uint16 // IPv4 identification of the latest advert
	lastActive  int64  // last advert with priority > 0; 0 after a resignation
	resignAt    int64  // last resignation still waiting for a takeover
	ttls        [4]uint64
	authData    [8]byte

	// gaps
	samples  []int64
	rng      uint64
	minGap   int64
	maxGap   int64
	gapCount uint64
}

type pairState struct {
	a, b        *sourceState
	nA, nB      uint64
	first, last int64
	window      int64
}

type groupState struct {
	key     GroupKey
	packets uint64
	sources []*sourceState
	last    *sourceState // sender of the previous advert, checked first
	pairs   []pairState
	// pairIdx[i][j] is 1 + the index in pairs of senders i and j; made
	// with the first pair (most groups have none, and it is 1 KiB).
	pairIdx *[maxPairSources][maxPairSources]int32
	// resigned is a sender whose priority-0 advert awaits a takeover.
	resigned *sourceState
}

// Analyzer accumulates adverts into per-group, per-sender statistics. Its
// memory is bounded by the number of senders, not the number of adverts.
type Analyzer struct {
	groups    map[GroupKey]*groupState
	last      *groupState
	nSources  int
	untracked uint64
	// Kept by Reset for the next adverts, and Sources' scratch space.
	freeGroups  []*groupState
	freeSources []*sourceState
	order       []*sourceState
	view        Source
	scratch     []int64
}

// NewAnalyzer returns an empty analyzer.
func NewAnalyzer() *Analyzer {
	return &Analyzer{groups: make(map[GroupKey]*groupState)}
}

// Add accounts one observed advert. p.Advert.Checksummed tells the checksum
// variant; vrrpcore.ChecksumBad marks an advert whose checksum matched no
// variant. Add keeps no reference to p or its address slice.
func (a *Analyzer) Add(p *capture.Packet) {
	key := GroupKey{VLAN: p.VLAN, VRID: p.Advert.VRID, Version: p.Advert.Version, Family: p.Family}
	g := a.last
	if g == nil || g.key != key {
		g = a.groups[key]
		if g == nil {
			// Every group has a sender: groups are bounded with them.
			if a.nSources >= MaxSources {
				a.untracked++
				return
			}
			g = a.newGroup(key)
			a.groups[key] = g
		}
		a.last = g
	}
	s := g.last
	if s == nil || s.Address != p.Src {
		s = nil
		for _, c := range g.sources {
			if c.Address == p.Src {
				s = c
				break
			}
		}
		if s == nil {
			if a.nSources >= MaxSources {
				a.untracked++
				return
			}
			a.nSources++
			s = a.newSource(len(g.sources))
			s.Address = p.Src
			s.Priority = p.Advert.Priority
			g.sources = append(g.sources, s)
		}
		g.last = s
	}
	g.packets++
	s.update(p)
	t := s.last
	adv := &p.Advert

	if adv.Priority == 0 {
		s.lastActive = 0
		s.resignAt = t
		g.resigned = s
		return
	}
	if r := g.resigned; r != nil && r != s {
		r.TakeoverBy = p.Src
		r.TakeoverAfter = time.Duration(t - r.resignAt)
		g.resigned = nil
	}
	s.lastActive = t
	if s.idx >= maxPairSources {
		return
	}
	for _, o := range g.sources[:min(len(g.sources), maxPairSources)] {
		if o == s || o.lastActive == 0 {
			continue
		}
		w := activeWindowIntervals * int64(max(o.Interval, s.Interval, time.Second/100))
		if t-o.lastActive > w || t < o.lastActive-w {
			continue
		}
		ps := g.pair(s, o)
		if ps.a == s {
			ps.nA++
		} else {
			ps.nB++
		}
		if ps.first == 0 {
			ps.first = t
		}
		ps.last = t
		ps.window = max(ps.window, w)
	}
}

// Reset empties the analyzer, as NewAnalyzer returns it, keeping the
// memory of its groups and senders for the adverts added next: a watch
// that analyses one window after another reuses one analyzer.
func (a *Analyzer) Reset() {
	for _, g := range a.groups {
		a.freeSources = append(a.freeSources, g.sources...)
		a.freeGroups = append(a.freeGroups, g)
	}
	clear(a.groups)
	a.last, a.nSources, a.untracked = nil, 0, 0
}

// newGroup returns an empty group state, one Reset kept if any.
func (a *Analyzer) newGroup(key GroupKey) *groupState {
	n := len(a.freeGroups)
	if n == 0 {
		return &groupState{key: key}
	}
	g := a.freeGroups[n-1]
	a.freeGroups = a.freeGroups[:n-1]
	idx := g.pairIdx
	if idx != nil {
		clear(idx[:])
	}
	*g = groupState{key: key, sources: g.sources[:0], pairs: g.pairs[:0], pairIdx: idx}
	return g
}

// newSource returns an empty sender state at index idx of its group, one
// Reset kept if any (its slices keep their room).
func (a *Analyzer) newSource(idx int) *sourceState {
	var s *sourceState
	if n := len(a.freeSources); n > 0 {
		s = a.freeSources[n-1]
		a.freeSources = a.freeSources[:n-1]
		*s = sourceState{samples: s.samples[:0],
			Source: Source{PriorityChanges: s.PriorityChanges[:0], Intervals: s.Intervals[:0], VIPs: s.VIPs[:0]}}
	} else {
		s = &sourceState{}
	}
	s.idx, s.rng = idx, 0x9e3779b97f4a7c15^uint64(idx+1)
	return s
}

// pair returns the overlap state of senders s and o, creating it.
func (g *groupState) pair(s, o *sourceState) *pairState {
	i, j := min(s.idx, o.idx), max(s.idx, o.idx)
	if g.pairIdx == nil {
		g.pairIdx = new([maxPairSources][maxPairSources]int32)
	}
	if n := g.pairIdx[i][j]; n > 0 {
		return &g.pairs[n-1]
	}
	g.pairs = append(g.pairs, pairState{a: o, b: s})
	g.pairIdx[i][j] = int32(len(g.pairs))
	return &g.pairs[len(g.pairs)-1]
}

// update accounts one advert of this sender.
func (s *sourceState) update(p *capture.Packet) {
	adv := &p.Advert
	t := p.Time.UnixNano()
	if s.Packets == 0 || t < s.first {
		s.first, s.First = t, p.Time
	}
	s.Packets++
	if s.Packets > 1 {
		gap := t - s.last
		switch {
		case gap < 0:
			// Out of order (files given out of time order): no gap.
		case gap < int64(duplicateGap) && (p.Family != 4 || p.IPID == s.lastIPID):
			// IPv4 tells a copy (same identification) from a second
			// advert sent at once, e.g. keepalived answering a lower
			// priority; IPv6 has no identification to compare.
			s.Duplicates++
		default:
			s.addGap(gap)
		}
	}
	if t >= s.last || s.Packets == 1 {
		s.last = t
		s.Last = p.Time
		s.lastIPID = p.IPID
	}
	if p.HasMAC {
		s.MAC, s.HasMAC = p.SrcMAC, true
	}
	if adv.Priority != s.Priority {
		s.PriorityChangeCount++
		if len(s.PriorityChanges) < MaxPriorityChanges {
			s.PriorityChanges = append(s.PriorityChanges, PriorityChange{Time: p.Time, From: s.Priority, To: adv.Priority})
		}
		s.Priority = adv.Priority
	}
	if adv.Interval != s.Interval || s.Packets == 1 {
		s.Interval = adv.Interval
		if !slices.Contains(s.Intervals, adv.Interval) && len(s.Intervals) < 8 {
			s.Intervals = append(s.Intervals, adv.Interval)
		}
	}
	if adv.Priority == 0 {
		s.Resigned++
		s.LastResign = p.Time
	}
	s.ttls[p.TTL>>6] |= 1 << (p.TTL & 63)
	if adv.Version == 2 {
		s.AuthType = adv.AuthType
		s.authData = adv.AuthData
	}
	if !slices.Equal(s.VIPs, adv.Addrs) {
		if s.Packets > 1 {
			s.VIPChanges++
		}
		s.VIPs = append(s.VIPs[:0], adv.Addrs...)
	}
	switch adv.Checksummed {
	case vrrpcore.ChecksumMessage:
		s.ChecksumMessage++
	case vrrpcore.ChecksumPseudoHeader:
		s.ChecksumPseudoHeader++
	case vrrpcore.ChecksumBad:
		s.ChecksumErrors++
	case vrrpcore.ChecksumOldUnicast:
		s.ChecksumOldUnicast++
	}
}

// addGap accounts the gap between two adverts: exact count, minimum and
// maximum, and a uniform reservoir sample (Vitter's algorithm R) for the
// median and jitter.
func (s *sourceState) addGap(gap int64) {
	s.gapCount++
	if s.gapCount == 1 || gap < s.minGap {
		s.minGap = gap
	}
	s.maxGap = max(s.maxGap, gap)
	if len(s.samples) < gapSamples {
		s.samples = append(s.samples, gap)
		return
	}
	s.rng ^= s.rng << 13
	s.rng ^= s.rng >> 7
	s.rng ^= s.rng << 17
	if j := s.rng % s.gapCount; j < gapSamples {
		s.samples[j] = gap
	}
}

// source completes the exported view of the sender's statistics.
func (s *sourceState) source() Source {
	var out Source
	s.view(&out, nil)
	out.PriorityChanges = cloneOrNil(out.PriorityChanges)
	out.Intervals = cloneOrNil(out.Intervals)
	out.VIPs = cloneOrNil(out.VIPs)
	return out
}

// view sets out to the sender's statistics. Its slices are s's own, but
// TTLs, which reuses out's, and scratch holds the gap samples sorted (nil
// for a new one).
func (s *sourceState) view(out *Source, scratch []int64) []int64 {
	ttls := out.TTLs[:0]
	*out = s.Source
	out.TTLs = ttls
	out.AuthData = authText(s.authData)
	for v := range 256 {
		if s.ttls[v>>6]&(1<<(v&63)) != 0 {
			out.TTLs = append(out.TTLs, uint8(v))
		}
	}
	out.Gaps = s.gapCount
	if s.gapCount > 0 {
		out.MinGap, out.MaxGap = time.Duration(s.minGap), time.Duration(s.maxGap)
		sorted := append(scratch[:0], s.samples...)
		slices.Sort(sorted)
		med := median(sorted)
		for i, g := range sorted {
			sorted[i] = abs(g - med)
		}
		slices.Sort(sorted)
		out.ObservedInterval, out.Jitter = time.Duration(med), time.Duration(median(sorted))
		scratch = sorted
	}
	return scratch
}

// cloneOrNil is slices.Clone, but nil for an empty slice.
func cloneOrNil[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// Sources calls fn with every sender of the group key, in address order,
// and its statistics so far as Report gives them, without the report: a
// watch that reads one group at a time spares building the rest. *s, its
// slices included, is the analyzer's and valid only until fn returns; fn
// must not call the analyzer.
func (a *Analyzer) Sources(key GroupKey, fn func(s *Source)) {
	g := a.groups[key]
	if g == nil {
		return
	}
	a.order = append(a.order[:0], g.sources...)
	slices.SortFunc(a.order, func(x, y *sourceState) int { return x.Address.Compare(y.Address) })
	for _, s := range a.order {
		a.scratch = s.view(&a.view, a.scratch)
		fn(&a.view)
	}
	clear(a.order)
}

func median(sorted []int64) int64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return sorted[n/2-1] + (sorted[n/2]-sorted[n/2-1])/2
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// authText returns a VRRPv2 simple-text password without its NUL padding,
// with bytes that are not printable ASCII escaped.
func authText(b [8]byte) string {
	n := len(b)
	for n > 0 && b[n-1] == 0 {
		n--
	}
	out := make([]byte, 0, n)
	for _, c := range b[:n] {
		if c >= 0x20 && c < 0x7f && c != '\\' {
			out = append(out, c)
		} else {
			out = append(out, fmt.Sprintf("\\x%02x", c)...)
		}
	}
	return string(out)
}

// Report returns the analysis so far: groups and their senders in a stable
// order, with the findings the adverts show. files is copied into the report
// as given.
func (a *Analyzer) Report(files []FileSummary) *CaptureReport {
	r := &CaptureReport{Files: slices.Clone(files), UntrackedAdverts: a.untracked}
	for _, g := range a.groups {
		out := Group{GroupKey: g.key, Packets: g.packets}
		for _, s := range g.sources {
			out.Sources = append(out.Sources, s.source())
		}
		slices.SortFunc(out.Sources, func(x, y Source) int { return x.Address.Compare(y.Address) })
		for _, p := range g.pairs {
			o := Overlap{A: p.a.Address, B: p.b.Address, AdvertsA: p.nA, AdvertsB: p.nB,
				First: time.Unix(0, p.first).UTC(), Last: time.Unix(0, p.last).UTC(), Window: time.Duration(p.window)}
			if o.A.Compare(o.B) > 0 {
				o.A, o.B, o.AdvertsA, o.AdvertsB = o.B, o.A, o.AdvertsB, o.AdvertsA
			}
			out.Overlaps = append(out.Overlaps, o)
		}
		slices.SortFunc(out.Overlaps, func(x, y Overlap) int {
			if c := x.A.Compare(y.A); c != 0 {
				return c
			}
			return x.B.Compare(y.B)
		})
		r.Groups = append(r.Groups, out)
	}
	slices.SortFunc(r.Groups, func(x, y Group) int { return compareKeys(x.GroupKey, y.GroupKey) })
	r.Findings = captureFindings(r)
	SortFindings(r.Findings)
	return r
}

func compareKeys(x, y GroupKey) int {
	switch {
	case x.VLAN != y.VLAN:
		return int(x.VLAN) - int(y.VLAN)
	case x.VRID != y.VRID:
		return int(x.VRID) - int(y.VRID)
	case x.Family != y.Family:
		return int(x.Family) - int(y.Family)
	default:
		return int(x.Version) - int(y.Version)
	}
}
