package capture

import (
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

func startSessionIn(t *testing.T, h *netlab.Host, o SessionOptions) *Session {
	t.Helper()
	var s *Session
	if err := h.Do(func() (err error) {
		s, err = StartSession(o)
		return err
	}); err != nil {
		t.Fatalf("session on %s: %v", h.Name(), err)
	}
	t.Cleanup(func() { s.Stop() })
	time.Sleep(timestampWarmup)
	return s
}

func TestSessionLab(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "nft")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	s4 := newLabSender(t, a, "eth0", 4)
	s6 := newLabSender(t, a, "eth0", 6)
	k4 := FlowKey{Interface: "eth0", VRID: 51, Family: 4, Sender: s4.src, Direction: DirIn}
	k6 := FlowKey{Interface: "eth0", VRID: 52, Family: 6, Sender: s6.src.WithZone(""), Direction: DirIn}
	send := func(n int) {
		for range n {
			s4.send(t, 51, 150, netip.Addr{})
			s6.send(t, 52, 150, netip.Addr{})
			time.Sleep(10 * time.Millisecond)
		}
	}

	t.Run("healthy", func(t *testing.T) {
		var frames int
		sess := startSessionIn(t, b, SessionOptions{Interface: "eth0", OnFrame: func(*WireFrame) error { frames++; return nil }})
		send(10)
		st, err := sess.Stop()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []FlowKey{k4, k6} {
			f, ok := st.Flow(k)
			if !ok {
				t.Fatalf("no flow %+v in %+v", k, st.Flows)
			}
			if r, ok := f.DeliveryRatio(); f.Wire.Packets != 10 || f.Socket.Packets != 10 || !ok || r != 1 || f.Pending != 0 {
				t.Errorf("IPv%d: %+v", k.Family, f)
			}
		}
		if frames != 20 || st.Frames != 20 || st.Wire.Received != 20 || st.Wire.Dropped != 0 || st.EventCount != 0 || st.Undecodable != 0 {
			t.Errorf("%d frames, stats %+v", frames, st)
		}
		if len(st.Sockets) != 2 || !st.Sockets[0].Open || !st.Sockets[1].Open || st.Sockets[0].Stats.Received != 10 {
			t.Errorf("sockets %+v", st.Sockets)
		}
	})

	t.Run("unicast", func(t *testing.T) {
		// keepalived's unicast mode: adverts to b's own address, the
		// socket tap bound to it.
		sess := startSessionIn(t, b, SessionOptions{Interface: "eth0", Wire: WireOptions{Peers: []netip.Addr{s4.src}}, Socket: SocketOptions{Unicast: labB4}})
		for range 5 {
			s4.send(t, 53, 150, labB4)
			s6.send(t, 52, 150, netip.Addr{}) // filtered out: not from or to the peer
		}
		st, err := sess.Stop()
		if err != nil {
			t.Fatal(err)
		}
		k := k4
		k.VRID = 53
		f, ok := st.Flow(k)
		if r, rok := f.DeliveryRatio(); !ok || f.Wire.Packets != 5 || f.Socket.Packets != 5 || !rok || r != 1 {
			t.Errorf("unicast: %+v", f)
		}
		if len(st.Flows) != 1 || len(st.Sockets) != 1 || st.Sockets[0].Family != 4 {
			t.Errorf("flows %+v, sockets %+v", st.Flows, st.Sockets)
		}
	})

	t.Run("input-drop", func(t *testing.T) {
		if err := b.NftScript("table inet vdtest { chain input { type filter hook input priority 0; meta l4proto 112 drop; }; }"); err != nil {
			t.Fatal(err)
		}
		defer b.Nft("delete", "table", "inet", "vdtest")
		sess := startSessionIn(t, b, SessionOptions{Interface: "eth0"})
		send(5)
		st, err := sess.Stop()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []FlowKey{k4, k6} {
			f, _ := st.Flow(k)
			if r, ok := f.DeliveryRatio(); f.Wire.Packets != 5 || f.Socket.Packets != 0 || f.Lost != 5 || !ok || r != 0 {
				t.Errorf("IPv%d: %+v", k.Family, f)
			}
		}
		if st.EventCount != 10 {
			t.Errorf("%d events, want 10", st.EventCount)
		}
	})

	t.Run("incoming-only-advance-on-stats", func(t *testing.T) {
		// a's own adverts reach OnFrame but no flow; b's adverts to a
		// are decided only when Stats is called.
		var in, out int
		sess := startSessionIn(t, a, SessionOptions{Interface: "eth0", IncomingOnly: true, AdvanceOnStats: true,
			OnFrame: func(f *WireFrame) error {
				if f.Direction == DirOut {
					out++
				} else {
					in++
				}
				return nil
			}})
		bs := newLabSender(t, b, "eth0", 4)
		for range 5 {
			s4.send(t, 51, 150, netip.Addr{})
			bs.send(t, 54, 100, netip.Addr{})
			time.Sleep(10 * time.Millisecond)
		}
		k := FlowKey{Interface: "eth0", VRID: 54, Family: 4, Sender: bs.src, Direction: DirIn}
		// Long after the last advert, nothing was decided yet: no
		// periodic Advance ran (pending counts undecided wire
		// observations; a match needs no decision).
		time.Sleep(DefaultMatchWindow + DefaultGrace + 300*time.Millisecond)
		st := sess.Stats()
		f, ok := st.Flow(k)
		if !ok || f.Wire.Packets != 5 || f.Socket.Packets != 5 || f.Matched != 5 || f.Lost != 0 || f.Pending != 0 {
			t.Errorf("b's adverts: %+v", f)
		}
		for _, x := range st.Flows {
			if x.Direction == DirOut {
				t.Errorf("outgoing flow with IncomingOnly: %+v", x)
			}
		}
		if _, err := sess.Stop(); err != nil {
			t.Fatal(err)
		}
		if out != 5 || in != 5 {
			t.Errorf("OnFrame got %d outgoing and %d incoming frames, want 5 and 5", out, in)
		}
	})

	t.Run("advance-on-stats-lost", func(t *testing.T) {
		if err := b.NftScript("table inet vdtest2 { chain input { type filter hook input priority 0; meta l4proto 112 drop; }; }"); err != nil {
			t.Fatal(err)
		}
		defer b.Nft("delete", "table", "inet", "vdtest2")
		sess := startSessionIn(t, b, SessionOptions{Interface: "eth0", AdvanceOnStats: true})
		send(3)
		st := sess.Stats()
		f, _ := st.Flow(k4)
		if f.Wire.Packets != 3 || f.Lost != 0 || f.Pending != 3 {
			t.Errorf("at once: %+v, want 3 pending", f)
		}
		time.Sleep(DefaultMatchWindow + DefaultGrace + 300*time.Millisecond)
		st = sess.Stats()
		f, _ = st.Flow(k4)
		if f.Lost != 3 || f.Pending != 0 {
			t.Errorf("after the grace: %+v, want 3 lost", f)
		}
	})

	t.Run("output-drop-probe", func(t *testing.T) {
		sess := startSessionIn(t, a, SessionOptions{Interface: "eth0", ProbeVRID: 200, ProbeInterval: 100 * time.Millisecond, ProbeFamilies: []uint8{4, 6}})
		time.Sleep(500 * time.Millisecond)
		if err := a.NftScript("table inet vdtest { chain output { type filter hook output priority 0; meta l4proto 112 drop; }; }"); err != nil {
			t.Fatal(err)
		}
		defer a.Nft("delete", "table", "inet", "vdtest")
		time.Sleep(500 * time.Millisecond)
		st, err := sess.Stop()
		if err != nil {
			t.Fatal(err)
		}
		for _, fam := range []uint8{4, 6} {
			var f FlowStats
			for _, x := range st.Flows {
				if x.VRID == 200 && x.Family == fam && x.Direction == DirOut {
					f = x
				}
			}
			if f.Sends < 6 || f.SendErrors < 3 || f.SentOnWire == 0 || f.SentOnWire+f.SendErrors != f.Sends || f.Wire.Packets != f.SentOnWire || f.SentMissing != 0 {
				t.Errorf("IPv%d probe: %+v", fam, f)
			}
			if f.LastSendError != syscall.EPERM.Error() {
				t.Errorf("IPv%d probe: last error %q, want EPERM", fam, f.LastSendError)
			}
		}
	})
}

func TestSessionPermission(t *testing.T) {
	// The error a user without CAP_NET_RAW gets.
	err := socketError("open AF_PACKET socket", syscall.EPERM)
	if !errors.Is(err, os.ErrPermission) {
		t.Errorf("%v does not wrap os.ErrPermission", err)
	}
	want := "capture: open AF_PACKET socket: operation not permitted: CAP_NET_RAW is needed (run as root, or grant it with: setcap cap_net_raw+ep <binary>)"
	if err.Error() != want {
		t.Errorf("got %q\nwant %q", err, want)
	}
}
