package diag

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// sender describes one router's adverts for a test.
type sender struct {
	src      string
	prio     uint8
	version  uint8
	interval time.Duration
	vips     []string
	ttl      uint8
	vlan     uint16
	auth     string
	checksum vrrpcore.ChecksumKind
}

func (s sender) packet(at time.Duration) *capture.Packet {
	src := netip.MustParseAddr(s.src)
	p := &capture.Packet{
		Time: base.Add(at), Src: src, Dst: vrrpcore.GroupIPv4, Family: 4, TTL: 255, VLAN: s.vlan,
		Advert: vrrpcore.Advert{Version: 2, Type: 1, VRID: 51, Priority: s.prio, Interval: time.Second, Checksummed: vrrpcore.ChecksumMessage},
	}
	if src.Is6() {
		p.Family, p.Dst = 6, vrrpcore.GroupIPv6
	}
	if s.version != 0 {
		p.Advert.Version = s.version
	}
	if s.interval != 0 {
		p.Advert.Interval = s.interval
	}
	if s.ttl != 0 {
		p.TTL = s.ttl
	}
	if s.checksum != 0 {
		p.Advert.Checksummed = s.checksum
	}
	if s.auth != "" {
		p.Advert.AuthType = vrrpcore.AuthSimple
		copy(p.Advert.AuthData[:], s.auth)
	}
	vips := s.vips
	if vips == nil {
		vips = []string{"198.51.100.100"}
	}
	for _, v := range vips {
		p.Advert.Addrs = append(p.Advert.Addrs, netip.MustParseAddr(v))
	}
	p.Advert.CountIPAddrs = uint8(len(p.Advert.Addrs))
	return p
}

type event struct {
	at time.Duration
	s  sender
}

// every returns s's adverts from start to end (exclusive) every step.
func every(s sender, start, end, step time.Duration) []event {
	var ev []event
	for t := start; t < end; t += step {
		ev = append(ev, event{t, s})
	}
	return ev
}

func analyse(evs ...[]event) *CaptureReport {
	var all []event
	for _, e := range evs {
		all = append(all, e...)
	}
	slices.SortStableFunc(all, func(a, b event) int { return int(a.at - b.at) })
	an := NewAnalyzer()
	for _, e := range all {
		an.Add(e.s.packet(e.at))
	}
	return an.Report([]FileSummary{{Name: "test.pcap", Format: "pcap", Frames: uint64(len(all)), Adverts: uint64(len(all))}})
}

func ids(r *CaptureReport) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.ID)
	}
	return out
}

func findingsWith(r *CaptureReport, id string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

var (
	nodeA = sender{src: "198.51.100.1", prio: 150}
	nodeB = sender{src: "198.51.100.2", prio: 100}
)

func TestHealthyMaster(t *testing.T) {
	r := analyse(every(nodeA, 0, 30*time.Second, time.Second))
	if len(r.Findings) != 0 || r.ExitCode() != ExitOK || r.Status() != "ok" {
		t.Fatalf("findings %v, exit %d, status %v; want none, 0, ok", ids(r), r.ExitCode(), r.Status())
	}
	if len(r.Groups) != 1 || len(r.Groups[0].Sources) != 1 {
		t.Fatalf("groups %+v", r.Groups)
	}
	s := r.Groups[0].Sources[0]
	if s.Packets != 30 || s.Gaps != 29 || s.ObservedInterval != time.Second || s.Jitter != 0 || s.Priority != 150 ||
		!s.First.Equal(base) || !s.Last.Equal(base.Add(29*time.Second)) || !slices.Equal(s.TTLs, []uint8{255}) ||
		s.ChecksumMessage != 30 || len(s.VIPs) != 1 || s.PriorityChangeCount != 0 {
		t.Errorf("source stats %+v", s)
	}
}

func TestObservedIntervalAndJitter(t *testing.T) {
	// Gaps alternate 0.99s and 1.01s, with one missed advert (2s gap).
	var ev []event
	at := time.Duration(0)
	for i := range 41 {
		ev = append(ev, event{at, nodeA})
		switch {
		case i == 20:
			at += 2 * time.Second
		case i%2 == 0:
			at += 990 * time.Millisecond
		default:
			at += 1010 * time.Millisecond
		}
	}
	s := analyse(ev).Groups[0].Sources[0]
	if s.ObservedInterval < 990*time.Millisecond || s.ObservedInterval > 1010*time.Millisecond {
		t.Errorf("observed interval %v, want about 1s", s.ObservedInterval)
	}
	if s.Jitter != 10*time.Millisecond {
		t.Errorf("jitter %v, want 10ms", s.Jitter)
	}
	if s.MinGap != 990*time.Millisecond || s.MaxGap != 2*time.Second || s.Gaps != 40 {
		t.Errorf("gaps %d, min %v, max %v", s.Gaps, s.MinGap, s.MaxGap)
	}
}

// A higher-priority router preempting the master, and a master resigning
// with a priority-0 advert, are normal takeovers, not split brains.
func TestTakeoverIsNotSplitBrain(t *testing.T) {
	t.Run("preempt", func(t *testing.T) {
		low := sender{src: "198.51.100.2", prio: 100}
		high := sender{src: "198.51.100.1", prio: 150}
		r := analyse(
			every(low, 0, 10*time.Second+time.Millisecond, time.Second),
			// The old master sends once more after the new one's first advert.
			[]event{{10*time.Second + 500*time.Millisecond, low}},
			every(high, 10*time.Second+300*time.Millisecond, 30*time.Second, time.Second),
		)
		if got := findingsWith(r, IDSplitBrain); len(got) != 0 {
			t.Fatalf("preempt takeover reported as split brain: %+v", got)
		}
		if r.ExitCode() != ExitOK {
			t.Errorf("exit code %d, findings %v", r.ExitCode(), ids(r))
		}
	})
	t.Run("resign", func(t *testing.T) {
		a0 := nodeA
		a0.prio = 0
		r := analyse(
			every(nodeA, 0, 10*time.Second, time.Second),
			[]event{{9*time.Second + 200*time.Millisecond, a0}},
			every(nodeB, 9*time.Second+800*time.Millisecond, 20*time.Second, time.Second),
		)
		if got := findingsWith(r, IDSplitBrain); len(got) != 0 {
			t.Fatalf("resignation reported as split brain: %+v", got)
		}
		res := findingsWith(r, IDMasterResigned)
		if len(res) != 1 || res[0].Severity != SeverityInfo {
			t.Fatalf("master-resigned findings %+v", res)
		}
		a := r.Groups[0].Sources[0]
		if a.Resigned != 1 || a.TakeoverBy != netip.MustParseAddr(nodeB.src) || a.TakeoverAfter != 600*time.Millisecond {
			t.Errorf("resign %d, takeover by %v after %v", a.Resigned, a.TakeoverBy, a.TakeoverAfter)
		}
		if a.PriorityChangeCount != 1 || a.PriorityChanges[0].From != 150 || a.PriorityChanges[0].To != 0 {
			t.Errorf("priority changes %+v", a.PriorityChanges)
		}
		if r.ExitCode() != ExitOK {
			t.Errorf("exit code %d for an info finding", r.ExitCode())
		}
	})
	t.Run("master dies, backup takes over after master-down interval", func(t *testing.T) {
		r := analyse(
			every(nodeA, 0, 10*time.Second, time.Second),
			every(nodeB, 9*time.Second+3600*time.Millisecond, 20*time.Second, time.Second),
		)
		if len(r.Findings) != 0 {
			t.Fatalf("findings %v, want none", ids(r))
		}
	})
}

func TestSplitBrain(t *testing.T) {
	r := analyse(
		every(nodeA, 0, 10*time.Second, time.Second),
		every(nodeB, 500*time.Millisecond, 10*time.Second, time.Second),
	)
	sb := findingsWith(r, IDSplitBrain)
	if len(sb) != 1 || sb[0].Severity != SeverityCritical || r.ExitCode() != ExitCritical {
		t.Fatalf("split-brain findings %+v, exit %d", sb, r.ExitCode())
	}
	if r.Findings[0].ID != IDSplitBrain {
		t.Errorf("critical finding not first: %v", ids(r))
	}
	o := r.Groups[0].Overlaps
	if len(o) != 1 || o[0].A != netip.MustParseAddr(nodeA.src) || o[0].AdvertsA < 9 || o[0].AdvertsB < 9 {
		t.Errorf("overlaps %+v", o)
	}
	// Too short an overlap is not enough.
	r = analyse(
		every(nodeA, 0, 10*time.Second, time.Second),
		every(nodeB, 7500*time.Millisecond, 10*time.Second, time.Second),
	)
	if len(findingsWith(r, IDSplitBrain)) != 0 {
		t.Errorf("2 overlapping adverts each reported as split brain")
	}
}

// Routers on different VLANs are different virtual routers even with the
// same VRID.
func TestVLANsAreSeparate(t *testing.T) {
	a, b := nodeA, nodeB
	a.vlan, b.vlan = 10, 20
	b.vips = []string{"203.0.113.1"}
	r := analyse(every(a, 0, 10*time.Second, time.Second), every(b, 500*time.Millisecond, 10*time.Second, time.Second))
	if len(r.Findings) != 0 || len(r.Groups) != 2 {
		t.Fatalf("findings %v, %d groups; want none and 2", ids(r), len(r.Groups))
	}
}

func TestMismatches(t *testing.T) {
	cases := []struct {
		name   string
		a, b   sender
		wantID string
		want   Severity
	}{
		{"ttl", nodeA, sender{src: "198.51.100.2", prio: 100, ttl: 254}, IDTTLNot255, SeverityWarning},
		{"checksum", nodeA, sender{src: "198.51.100.2", prio: 100, checksum: vrrpcore.ChecksumBad}, IDChecksumMismatch, SeverityWarning},
		{"checksum variant", sender{src: "198.51.100.1", prio: 150, version: 3, checksum: vrrpcore.ChecksumPseudoHeader},
			sender{src: "198.51.100.2", prio: 100, version: 3, checksum: vrrpcore.ChecksumMessage}, IDChecksumMismatch, SeverityWarning},
		{"old unicast checksum", sender{src: "198.51.100.1", prio: 150, version: 3, checksum: vrrpcore.ChecksumOldUnicast},
			sender{src: "198.51.100.2", prio: 100, version: 3, checksum: vrrpcore.ChecksumPseudoHeader}, IDChecksumMismatch, SeverityWarning},
		{"version", nodeA, sender{src: "198.51.100.2", prio: 100, version: 3}, IDVersionMismatch, SeverityWarning},
		{"interval", nodeA, sender{src: "198.51.100.2", prio: 100, interval: 2 * time.Second}, IDIntervalMismatch, SeverityWarning},
		{"auth type", sender{src: "198.51.100.1", prio: 150, auth: "secret"}, nodeB, IDAuthMismatch, SeverityWarning},
		{"password", sender{src: "198.51.100.1", prio: 150, auth: "secret"}, sender{src: "198.51.100.2", prio: 100, auth: "secreT"}, IDAuthMismatch, SeverityWarning},
		{"vips", nodeA, sender{src: "198.51.100.2", prio: 100, vips: []string{"198.51.100.100", "198.51.100.101"}}, IDVIPMismatch, SeverityWarning},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Both routers send, so they are in split brain as well; the
			// mismatch must be reported next to it.
			r := analyse(every(tc.a, 0, 10*time.Second, time.Second), every(tc.b, 500*time.Millisecond, 10*time.Second, time.Second))
			got := findingsWith(r, tc.wantID)
			if len(got) != 1 || got[0].Severity != tc.want || got[0].Summary == "" || len(got[0].Evidence) == 0 ||
				got[0].Explanation == "" || got[0].Fix == "" {
				t.Fatalf("%s findings %+v (all: %v)", tc.wantID, got, ids(r))
			}
			// The same routers without the difference show no mismatch.
			b := tc.a
			b.src, b.prio = tc.b.src, tc.b.prio
			r = analyse(every(tc.a, 0, 10*time.Second, time.Second), every(b, 500*time.Millisecond, 10*time.Second, time.Second))
			if got := findingsWith(r, tc.wantID); len(got) != 0 {
				t.Errorf("identical routers reported %s: %+v", tc.wantID, got)
			}
		})
	}
}

func TestPasswordOnlyInSecret(t *testing.T) {
	r := analyse(every(sender{src: "198.51.100.1", prio: 150, auth: "hunter2"}, 0, 5*time.Second, time.Second),
		every(sender{src: "198.51.100.2", prio: 100, auth: "hunter3"}, 500*time.Millisecond, 5*time.Second, time.Second))
	f := findingsWith(r, IDAuthMismatch)
	if len(f) != 1 {
		t.Fatalf("auth-mismatch findings %+v", f)
	}
	for _, e := range f[0].Evidence {
		if e.Secret == "" || slices.ContainsFunc([]string{e.Label, e.Value}, func(s string) bool { return strings.Contains(s, "hunter") }) {
			t.Errorf("evidence %+v: password must be in Secret only", e)
		}
	}
	if r.Groups[0].Sources[0].AuthData != "hunter2" {
		t.Errorf("auth data %q", r.Groups[0].Sources[0].AuthData)
	}
}

func TestDuplicatesAndOutOfOrder(t *testing.T) {
	ev := every(nodeA, 0, 5*time.Second, time.Second)
	ev = append(ev, event{2*time.Second + 100*time.Microsecond, nodeA}) // same frame seen twice
	r := analyse(ev)
	s := r.Groups[0].Sources[0]
	if s.Duplicates != 1 || s.Packets != 6 || s.ObservedInterval != time.Second {
		t.Errorf("duplicates %d, packets %d, interval %v", s.Duplicates, s.Packets, s.ObservedInterval)
	}
	// Two IPv4 adverts 170 µs apart with different identifications are two
	// adverts (keepalived answering a lower priority at once), not a copy.
	an := NewAnalyzer()
	for i, at := range []time.Duration{0, time.Second, time.Second + 170*time.Microsecond, 2 * time.Second} {
		p := nodeA.packet(at)
		p.IPID = uint16(i + 1)
		an.Add(p)
	}
	if s := an.Report(nil).Groups[0].Sources[0]; s.Duplicates != 0 || s.Packets != 4 {
		t.Errorf("distinct IP IDs: duplicates %d, packets %d", s.Duplicates, s.Packets)
	}
	// A second file earlier than the first: no negative gaps.
	an = NewAnalyzer()
	for _, at := range []time.Duration{10 * time.Second, 11 * time.Second, 0, time.Second} {
		an.Add(nodeA.packet(at))
	}
	s = an.Report(nil).Groups[0].Sources[0]
	if s.MinGap <= 0 || !s.First.Equal(base) || !s.Last.Equal(base.Add(11*time.Second)) {
		t.Errorf("min gap %v, first %v, last %v", s.MinGap, s.First, s.Last)
	}
}

func TestMemoryBounds(t *testing.T) {
	an := NewAnalyzer()
	a := nodeA
	for i := range 100000 {
		a.prio = uint8(100 + i%2)
		an.Add(a.packet(time.Duration(i) * time.Second))
	}
	g := an.groups[GroupKey{VRID: 51, Version: 2, Family: 4}]
	if len(g.sources[0].samples) != gapSamples {
		t.Errorf("%d gap samples kept, want %d", len(g.sources[0].samples), gapSamples)
	}
	s := an.Report(nil).Groups[0].Sources[0]
	if len(s.PriorityChanges) != MaxPriorityChanges || s.PriorityChangeCount != 99999 || s.ObservedInterval != time.Second {
		t.Errorf("%d priority changes kept of %d, interval %v", len(s.PriorityChanges), s.PriorityChangeCount, s.ObservedInterval)
	}

	an = NewAnalyzer()
	for i := range MaxSources + 10 {
		p := nodeA.packet(0)
		p.Src = netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		an.Add(p)
	}
	p := nodeA.packet(0)
	p.Advert.VRID = 52 // a new group once the sender limit is reached
	an.Add(p)
	r := an.Report(nil)
	if r.UntrackedAdverts != 11 || len(r.Groups) != 1 {
		t.Errorf("untracked %d, %d groups; want 11 and 1", r.UntrackedAdverts, len(r.Groups))
	}
}

func TestAddDoesNotKeepAddresses(t *testing.T) {
	an := NewAnalyzer()
	p := nodeA.packet(0)
	an.Add(p)
	p.Advert.Addrs[0] = netip.MustParseAddr("203.0.113.9")
	if got := an.Report(nil).Groups[0].Sources[0].VIPs[0]; got != netip.MustParseAddr("198.51.100.100") {
		t.Errorf("VIP changed with the caller's slice: %v", got)
	}
}

func TestExitCodes(t *testing.T) {
	r := &CaptureReport{}
	if r.ExitCode() != ExitOK {
		t.Errorf("empty report exit %d", r.ExitCode())
	}
	r.Files = []FileSummary{{Name: "x", Err: errTest}}
	if r.ExitCode() != ExitUnknown || r.Status() != "unknown" {
		t.Errorf("file error: exit %d status %v", r.ExitCode(), r.Status())
	}
	r.Findings = []Finding{{ID: "a", Severity: SeverityCritical}}
	if r.ExitCode() != ExitCritical {
		t.Errorf("critical with file error: exit %d", r.ExitCode())
	}
	r.Files = nil
	r.Findings = []Finding{{ID: "a", Severity: SeverityWarning}, {ID: "b", Severity: SeverityInfo}}
	if r.ExitCode() != ExitWarning {
		t.Errorf("warning: exit %d", r.ExitCode())
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("cut short")

func TestNoAdverts(t *testing.T) {
	r := NewAnalyzer().Report([]FileSummary{{Name: "x.pcap", Format: "pcap", Frames: 12, NotVRRP: 12}})
	if got := ids(r); !slices.Equal(got, []string{IDNoAdverts}) {
		t.Errorf("findings %v, want no-adverts", got)
	}
	r = NewAnalyzer().Report([]FileSummary{{Name: "x.pcap", Format: "pcap", Frames: 3, Adverts: 1, DecodeErrors: 2, FirstDecodeError: "frame at byte offset 24: vrrp: ..."}})
	if got := ids(r); !slices.Contains(got, IDMalformedAdverts) {
		t.Errorf("findings %v, want malformed-adverts", got)
	}
}
