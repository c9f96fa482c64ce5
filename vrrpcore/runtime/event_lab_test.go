package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// eventLog collects a Daemon's events.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// find returns the first event match accepts.
func (l *eventLog) find(match func(Event) bool) (Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.IndexFunc(l.events, match)
	if i < 0 {
		return Event{}, false
	}
	return l.events[i], true
}

// wait waits for an event match accepts.
func (l *eventLog) wait(t *testing.T, what string, timeout time.Duration, match func(Event) bool) Event {
	t.Helper()
	var e Event
	err := netlab.WaitFor(timeout, func() (bool, error) {
		var ok bool
		e, ok = l.find(match)
		return ok, nil
	})
	if err != nil {
		t.Fatalf("no event: %s\n%s", what, l)
	}
	return e
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s string
	for i, e := range l.events {
		if i == 200 {
			s += fmt.Sprintf("... %d more\n", len(l.events)-i)
			break
		}
		s += fmt.Sprintf("%s %s vrid=%d %v->%v %s src=%v dst=%v prio=%d err=%v\n", e.Kind, e.Instance, e.VRID, e.From, e.To, e.Reason, e.Src, e.Dst, e.Priority, e.Err)
	}
	return s
}

// startDaemonEvents is startDaemon with an event log.
func startDaemonEvents(t *testing.T, h *netlab.Host, conf string) (*Daemon, *eventLog) {
	t.Helper()
	cfg, err := keepalived.Parse(h.Name()+".conf", []byte(conf))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, conf)
	}
	logs := &netlabtest.LogBuffer{}
	events := &eventLog{}
	d, err := New(cfg, Options{Enter: h.Do, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("vrrpdoctor log (%s):\n%s", h.Name(), logs)
		}
	})
	return d, events
}

// TestLabEvents runs a pair of Daemons and checks that OnEvent reports the
// start (INIT -> BACKUP -> MASTER), adverts sent and received, adverts
// discarded by the state machine (wrong password) and by the socket (a
// VRID nobody runs), the priority-0 handover on Stop, and a send refused
// by an OUTPUT firewall rule (EPERM).
func TestLabEvents(t *testing.T) {
	lab := netlabtest.New(t, "nft")
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	aAddr, bAddr := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	v3 := func(prio int) netlab.VRRPInstance {
		return netlab.VRRPInstance{Interface: "eth0", VRID: 51, Version: 3, Priority: prio, AdvertInt: 100 * time.Millisecond, VIPs: []string{"198.51.100.100/24"}}
	}
	v2 := func(prio int, pass string) netlab.VRRPInstance {
		return netlab.VRRPInstance{Interface: "eth0", VRID: 52, Version: 2, Priority: prio, AdvertInt: time.Second, VIPs: []string{"198.51.100.101/24"}, AuthPass: pass}
	}
	only := netlab.VRRPInstance{Interface: "eth0", VRID: 53, Version: 3, Priority: 100, AdvertInt: 100 * time.Millisecond, VIPs: []string{"198.51.100.102/24"}}
	da, ea := startDaemonEvents(t, a, render(t, netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{v3(150), v2(150, "alpha"), only}}))
	ea.wait(t, "a: VI_51 BACKUP -> MASTER", 5*time.Second, func(e Event) bool {
		return e.Kind == EventStateChange && e.Instance == "VI_51" && e.From == router.Backup && e.To == router.Master
	})
	_, eb := startDaemonEvents(t, b, render(t, netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{v3(100), v2(100, "bravo")}}))

	start := ea.wait(t, "a: VI_51 INIT -> BACKUP", 0, func(e Event) bool {
		return e.Kind == EventStateChange && e.Instance == "VI_51" && e.From == router.Initialize && e.To == router.Backup
	})
	if start.Reason != string(router.ReasonStartup) || start.Interface != "eth0" || start.VRID != 51 || start.Family != 4 || start.Priority != 150 {
		t.Errorf("start event %+v", start)
	}
	sent := ea.wait(t, "a: VI_51 advert sent", 0, func(e Event) bool { return e.Kind == EventAdvertSent && e.Instance == "VI_51" })
	if sent.Src != aAddr || sent.Dst != vrrpcore.GroupIPv4 || sent.Priority != 150 || sent.Time.IsZero() ||
		sent.Version != 3 || sent.Interval != 100*time.Millisecond || sent.Checksum != vrrpcore.ChecksumPseudoHeader || sent.TTL != 255 {
		t.Errorf("sent event %+v", sent)
	}
	eb.wait(t, "b: VI_51 INIT -> BACKUP", 5*time.Second, func(e Event) bool {
		return e.Kind == EventStateChange && e.Instance == "VI_51" && e.To == router.Backup
	})
	recv := eb.wait(t, "b: VI_51 advert received from a", 5*time.Second, func(e Event) bool {
		return e.Kind == EventAdvertReceived && e.Instance == "VI_51" && e.Src == aAddr
	})
	if recv.Dst != vrrpcore.GroupIPv4 || recv.Priority != 150 || recv.Interface != "eth0" || recv.Family != 4 {
		t.Errorf("received event %+v", recv)
	}
	auth := eb.wait(t, "b: VI_52 advert discarded for its password", 5*time.Second, func(e Event) bool {
		return e.Kind == EventAdvertDiscarded && e.Instance == "VI_52" && e.Src == aAddr
	})
	if auth.Reason != string(router.DiscardAuthData) || auth.Dst != vrrpcore.GroupIPv4 || auth.VRID != 52 {
		t.Errorf("auth discard event %+v", auth)
	}
	unknown := eb.wait(t, "b: VRID 53 discarded by the socket", 5*time.Second, func(e Event) bool {
		return e.Kind == EventAdvertDiscarded && e.VRID == 53
	})
	if unknown.Instance != "" || unknown.Reason != DiscardUnknownVRID || unknown.Src != aAddr {
		t.Errorf("unknown VRID event %+v", unknown)
	}
	if _, ok := eb.find(func(e Event) bool { return e.Kind == EventAdvertReceived && e.VRID == 53 && e.Instance == "" }); !ok {
		t.Error("no received event without an instance for VRID 53")
	}
	if _, ok := eb.find(func(e Event) bool {
		return e.Kind == EventStateChange && e.Instance == "VI_51" && e.To == router.Master
	}); ok {
		t.Errorf("b became Master of VI_51 while a was\n%s", eb)
	}

	da.Stop()
	ea.wait(t, "a: priority 0 sent", 0, func(e Event) bool {
		return e.Kind == EventAdvertSent && e.Instance == "VI_51" && e.Priority == 0
	})
	ea.wait(t, "a: VI_51 MASTER -> INIT", 0, func(e Event) bool {
		return e.Kind == EventStateChange && e.Instance == "VI_51" && e.From == router.Master && e.To == router.Initialize && e.Reason == string(router.ReasonShutdown)
	})
	took := eb.wait(t, "b: VI_51 takes over after priority 0", 5*time.Second, func(e Event) bool {
		return e.Kind == EventStateChange && e.Instance == "VI_51" && e.To == router.Master
	})
	if took.Reason != string(router.ReasonPriorityZero) || took.Src != aAddr {
		t.Errorf("take-over event %+v", took)
	}
	eb.wait(t, "b: VI_51 sends as Master", 5*time.Second, func(e Event) bool {
		return e.Kind == EventAdvertSent && e.Instance == "VI_51" && e.Src == bAddr && e.Priority == 100
	})

	// An OUTPUT rule dropping VRRP: the kernel refuses the send (EPERM).
	if err := b.NftScript("table inet evtest {\n chain out { type filter hook output priority 0; meta l4proto 112 drop; }\n}\n"); err != nil {
		t.Fatal(err)
	}
	failed := eb.wait(t, "b: send refused", 5*time.Second, func(e Event) bool {
		return e.Kind == EventSendFailed && e.Instance == "VI_51"
	})
	if !errors.Is(failed.Err, syscall.EPERM) || failed.Src != bAddr || failed.Dst != vrrpcore.GroupIPv4 || failed.Priority != 100 {
		t.Errorf("send failed event %+v (err %v), want EPERM from %v to the group", failed, failed.Err, bAddr)
	}
}
