package trace

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// seeds reads the fuzz corpus: trace messages the kernel (6.18) sent for
// real keepalived adverts in a lab namespace.
func seeds(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/fuzz/FuzzDecodeEvent/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

func TestDecodeKernelMessages(t *testing.T) {
	kinds := map[string]bool{}
	for _, b := range seeds(t) {
		e, err := DecodeEvent(b)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if e.Table == "" || e.Chain == "" || e.Type == "" || e.Verdict == "" || e.ID == 0 || (e.NFProto != 4 && e.NFProto != 6 && e.Family != "netdev") {
			t.Fatalf("incomplete event %+v", e)
		}
		if len(e.NetworkHeader) > 0 && e.IIF == 0 {
			t.Errorf("packet dump without the input interface: %+v", e)
		}
		kinds[string(e.Type)+" "+e.Verdict] = true
	}
	for _, k := range []string{"rule continue", "rule jump", "rule drop", "policy accept"} {
		if !kinds[k] {
			t.Errorf("corpus lacks a %q event", k)
		}
	}
}

// msg builds a trace message payload.
func msg(family uint8, attrs ...[]byte) []byte {
	b := []byte{family, unix.NFNETLINK_V0, 0, 0}
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func nla(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func TestDecodeEvent(t *testing.T) {
	verdict := func(code int32, chain string) []byte {
		in := nla(unix.NFTA_VERDICT_CODE, be32(uint32(code)))
		if chain != "" {
			in = append(in, nla(unix.NFTA_VERDICT_CHAIN, []byte(chain+"\x00"))...)
		}
		return nla(unix.NFTA_TRACE_VERDICT|unix.NLA_F_NESTED, in)
	}
	base := [][]byte{
		nla(unix.NFTA_TRACE_TABLE, []byte("firewalld\x00")),
		nla(unix.NFTA_TRACE_CHAIN, []byte("filter_IN_public\x00")),
		nla(unix.NFTA_TRACE_ID, be32(0x7398b126)),
		nla(unix.NFTA_TRACE_NFPROTO, be32(unix.NFPROTO_IPV4)),
	}
	with := func(extra ...[]byte) []byte {
		return msg(unix.NFPROTO_INET, append(append([][]byte{}, base...), extra...)...)
	}
	handle := nla(unix.NFTA_TRACE_RULE_HANDLE, binary.BigEndian.AppendUint64(nil, 72))

	e, err := DecodeEvent(with(nla(unix.NFTA_TRACE_TYPE, be32(unix.NFT_TRACETYPE_RULE)), handle, verdict(0, "")))
	if err != nil {
		t.Fatal(err)
	}
	if e.String() != "inet firewalld filter_IN_public rule handle 72 (verdict drop)" || e.ID != 0x7398b126 || e.NFProto != 4 {
		t.Fatalf("%s %+v", e, e)
	}
	e, err = DecodeEvent(with(nla(unix.NFTA_TRACE_TYPE, be32(unix.NFT_TRACETYPE_RULE)), handle, verdict(-4, "filter_IN_public_allow")))
	if err != nil || e.Verdict != "goto" || e.Target != "filter_IN_public_allow" {
		t.Fatalf("%+v %v", e, err)
	}
	e, err = DecodeEvent(with(nla(unix.NFTA_TRACE_TYPE, be32(unix.NFT_TRACETYPE_POLICY)), nla(unix.NFTA_TRACE_POLICY, be32(1))))
	if err != nil || e.String() != "inet firewalld filter_IN_public policy accept" {
		t.Fatalf("%s %v", e, err)
	}
	e, err = DecodeEvent(with(nla(unix.NFTA_TRACE_TYPE, be32(unix.NFT_TRACETYPE_RULE)), verdict(3|5<<16, "")))
	if err != nil || e.Verdict != "queue" {
		t.Fatalf("queue to 5: %+v %v", e, err)
	}

	for _, c := range []struct {
		name string
		b    []byte
		off  int
		msg  string
	}{
		{"short", []byte{1, 0}, 0, "too short for the nfgenmsg header"},
		{"family", msg(99), 0, "unknown table family 99"},
		{"truncated attribute", append(with(), 8, 0, 1, 0, 'x'), len(with()), "claims 8 bytes, 5 left"},
		{"header fragment", append(with(), 1, 0), len(with()), "too short for an attribute header"},
		{"no verdict", with(nla(unix.NFTA_TRACE_TYPE, be32(unix.NFT_TRACETYPE_RULE))), len(with()) + 8, "rule event without a verdict"},
		{"policy missing", with(nla(unix.NFTA_TRACE_TYPE, be32(unix.NFT_TRACETYPE_POLICY))), len(with()) + 8, "policy event without its policy"},
		{"short handle", msg(unix.NFPROTO_INET, nla(unix.NFTA_TRACE_RULE_HANDLE, be32(1))), 4, "rule handle: 4 bytes, want 8"},
		{"string", msg(unix.NFPROTO_INET, nla(unix.NFTA_TRACE_TABLE, []byte("abc"))), 4, "table: not a NUL-terminated string"},
		{"type", with(nla(unix.NFTA_TRACE_TYPE, be32(9))), len(with()) + 8, "unknown trace type 9"},
	} {
		_, err := DecodeEvent(c.b)
		var te *Error
		if !errors.As(err, &te) || te.Offset != c.off || !strings.Contains(te.Msg, c.msg) {
			t.Errorf("%s: %v, want %q at byte %d", c.name, err, c.msg, c.off)
		}
	}
}

// TestNextLateReader: when the reader falls behind (events of a packet
// read long after it was quiet, as on a starved machine), the events
// already read go in before silence is judged: a queued drop is a drop,
// not an accept by silence.
func TestNextLateReader(t *testing.T) {
	unread := true
	tr := &Tracer{events: make(chan timedEvent, 16), asm: newAssembler(TableName, nil, 200*time.Millisecond, nil)}
	tr.unreadFn = func() bool { return unread }
	old := time.Now().Add(-time.Second)
	for _, e := range []Event{start(7, chainPrerouting), ev(TableName, chainPrerouting, TypePolicy, "accept", 0), ev("filter", "input", TypeRule, "drop", 3)} {
		tr.events <- timedEvent{e, old}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p, err := tr.Next(ctx)
	if err != nil || p.Verdict != Drop {
		t.Fatalf("%v %v, want the drop", p, err)
	}
	// A packet past its quiet time stays open while the socket still has
	// messages, and completes once it has none.
	tr.events <- timedEvent{start(8, chainPrerouting), old}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if p, err := tr.Next(short); err == nil {
		t.Fatalf("completed %v while messages wait in the socket", p)
	}
	unread = false
	if p, err := tr.Next(ctx); err != nil || p.Verdict != Accept || p.ID != 8 {
		t.Fatalf("%v %v", p, err)
	}
}

func ev(table, chain string, typ Type, verdict string, handle uint64) Event {
	return Event{ID: 7, Family: "inet", Table: table, Chain: chain, Type: typ, Verdict: verdict, Handle: handle}
}

func start(id uint32, chain string) Event {
	e := ev(TableName, chain, TypeRule, "continue", 2)
	e.ID = id
	e.IIF = 2
	e.NetworkHeader = []byte{0x45, 0, 0, 40, 0, 1, 0, 0, 255, 112, 0, 0, 198, 51, 100, 1, 224, 0, 0, 18}
	return e
}

// TestAssembler checks how events become packets: a tracer event with the
// packet's headers starts a packet (the same ID may come back for the next
// advert), a drop ends it at once, silence ends an accepted one.
func TestAssembler(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAssembler(TableName, nil, 200*time.Millisecond, func(uint32) string { return "eth0" })
	if done := a.add(start(7, chainPrerouting), t0); len(done) != 0 {
		t.Fatal(done)
	}
	a.add(ev(TableName, chainPrerouting, TypePolicy, "accept", 0), t0)
	a.add(ev("filter", "input", TypeRule, "jump", 3), t0)
	a.add(ev("filter", "vrrp_in", TypeRule, "continue", 0), t0) // end of chain marker
	a.add(ev("filter", "input", TypePolicy, "accept", 0), t0)
	if d, ok := a.deadline(); !ok || !d.Equal(t0.Add(200*time.Millisecond)) {
		t.Fatalf("deadline %v %v", d, ok)
	}
	// The next advert reuses ID 7: the first packet is complete.
	done := a.add(start(7, chainPrerouting), t0.Add(time.Second))
	if len(done) != 1 {
		t.Fatalf("%d packets done", len(done))
	}
	p := done[0]
	if p.Verdict != Accept || p.By == nil || p.By.Chain != "input" || p.By.Type != TypePolicy || len(p.Events) != 2 {
		t.Fatalf("%s events %v", p, p.Events)
	}
	if p.Src != netip.MustParseAddr("198.51.100.1") || p.Dst != netip.MustParseAddr("224.0.0.18") || p.TTL != 255 || p.Proto != 112 || p.InIface != "eth0" || p.Direction != In {
		t.Fatalf("%+v", p)
	}
	done = a.add(ev("firewalld", "filter_IN_public", TypeRule, "drop", 72), t0.Add(time.Second))
	if len(done) != 1 || done[0].Verdict != Drop || done[0].By.Handle != 72 {
		t.Fatalf("%v", done)
	}
	// An event for a packet whose start was not seen is ignored.
	if done := a.add(ev("filter", "input", TypeRule, "drop", 3), t0); len(done) != 0 {
		t.Fatal(done)
	}
	// Output packets, and silence.
	a.add(start(9, chainOutput), t0)
	if done := a.flush(t0.Add(100*time.Millisecond), false); len(done) != 0 {
		t.Fatal(done)
	}
	done = a.flush(t0.Add(300*time.Millisecond), false)
	if len(done) != 1 || done[0].Direction != Out || done[0].Verdict != Accept || done[0].By != nil {
		t.Fatalf("%v", done)
	}
	// With an ingress chain on the device, prerouting continues the packet.
	a = newAssembler(TableName, map[uint32]bool{2: true}, 200*time.Millisecond, nil)
	in := start(5, "ingress_eth0")
	in.Family = "netdev"
	a.add(in, t0)
	if done := a.add(start(5, chainPrerouting), t0); len(done) != 0 || len(a.open) != 1 {
		t.Fatalf("prerouting restarted the packet: %v", done)
	}
	if done := a.flush(t0, true); len(done) != 1 || done[0].InIface != "if2" {
		t.Fatalf("%v", done)
	}
}
