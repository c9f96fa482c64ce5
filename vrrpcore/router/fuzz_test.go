package router

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// FuzzMachine drives a Machine with an arbitrary sequence of inputs,
// including malformed adverts, and checks that it never panics and keeps
// its invariants: VIPs held exactly in Master, a timer running exactly in
// Backup and Master, Tick never leaving a due deadline, and every received
// advert either counted valid or discarded as invalid.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{0, 0, 1, 10, 3, 200, 1, 2, 0, 5, 50, 4, 1})
	f.Add([]byte{1, 0, 3, 0, 0, 1, 3, 0, 0, 2, 2, 10})
	f.Add([]byte{2, 0, 3, 255, 5, 1, 3, 1, 4, 0, 1, 2})
	f.Fuzz(fuzzMachine)
}

func fuzzMachine(t *testing.T, data []byte) {
	if len(data) == 0 {
		return
	}
	cfgs := []Config{v3Config(100), v2Config(150), v6Config(255), v3Config(255)}
	c := cfgs[int(data[0])%len(cfgs)]
	c.NoPreempt = data[0]&4 != 0
	if data[0]&8 != 0 {
		c.PreemptDelay = 2 * time.Second
	}
	if data[0]&16 != 0 {
		c.GARP = GARPConfig{MasterRepeat: 5, MasterDelay: time.Second, MasterRefresh: 3 * time.Second, LowerPrioRepeat: 2, LowerPrioDelay: time.Second}
	}
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	holds := false
	receives, invalid := 0, 0
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	data = data[1:]
	for len(data) > 0 {
		var r Ready
		tick := false
		switch op := next() % 6; op {
		case 0:
			r = m.Start(now)
		case 1:
			r = m.Shutdown(now)
		case 2:
			now = now.Add(time.Duration(next()) * 37 * time.Millisecond)
			r, tick = m.Tick(now), true
		case 3:
			adv := peerAdvert(c, next())
			adv.Version = 2 + next()%3
			adv.VRID = 50 + next()%3
			adv.Interval = time.Duration(next()%4) * 500 * time.Millisecond
			if b := next(); b&1 != 0 {
				adv.Checksummed = vrrpcore.ChecksumKind(b % 4)
			}
			if b := next(); b&1 != 0 && len(adv.Addrs) > 0 {
				adv.Addrs[0] = netip.AddrFrom4([4]byte{203, 0, 113, b})
			}
			src := c.PrimaryAddr.Prev()
			if b := next(); b&1 != 0 {
				src = c.PrimaryAddr.Next()
			}
			ttl := uint8(255)
			if b := next(); b < 16 {
				ttl = b
			}
			r = m.Receive(now, RecvAdvert{Advert: adv, Src: src, TTL: ttl})
			receives++
			for _, d := range r.Discards {
				if d.Reason.Invalid() {
					invalid++
				}
			}
		case 4:
			r = m.SetPriority(now, int(next())-20)
		case 5:
			r = m.SetFault(now, next()&1 != 0)
		}
		if len(r.RemoveVIPs) > 0 {
			holds = false
		}
		if len(r.AddVIPs) > 0 {
			holds = true
		}
		st := m.State()
		if holds != (st == Master) {
			t.Fatalf("holds VIPs %v in %v", holds, st)
		}
		if (st == Master || st == Backup) == r.Deadline.IsZero() {
			t.Fatalf("deadline %v in %v", r.Deadline, st)
		}
		if tick && !r.Deadline.IsZero() && !r.Deadline.After(now) {
			t.Fatalf("Tick left deadline %v due at %v", r.Deadline, now)
		}
		if !r.Deadline.Equal(m.Deadline()) {
			t.Fatalf("Ready.Deadline %v, Deadline() %v", r.Deadline, m.Deadline())
		}
	}
	if s := m.Stats(); int(s.Received)+invalid != receives {
		t.Fatalf("%d receives: %d valid + %d invalid", receives, s.Received, invalid)
	}
}
