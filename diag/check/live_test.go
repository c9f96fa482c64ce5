package check

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/diag"
)

// TestSendsConfirmOutputDrop: the VRRP speaker's own failed send attempts
// (a watch inside `vrrpdoctor run`) are evidence of the output drop, even
// while some of its adverts still leave.
func TestSendsConfirmOutputDrop(t *testing.T) {
	r := readReport(t, "output-drop-b.json")
	in := &r.Instances[0]
	in.Sends = &SendFacts{Attempts: 6, Failed: 6, LastError: "sendto: operation not permitted"}
	fs := Evaluate(r)
	f := find(fs, IDFirewallOutputDrop)
	if f == nil || f.Severity != diag.SeverityCritical {
		t.Fatalf("firewall-output-drop %+v in %v", f, ids(fs))
	}
	ev := ""
	for _, e := range f.Evidence {
		if e.Label == "send attempts" {
			ev = e.Value
		}
	}
	if ev != "6 of this node's 6 attempts to send an advert failed: sendto: operation not permitted" {
		t.Errorf("send attempts evidence %q", ev)
	}

	// Some adverts left (the wire shows this node advertising), yet sendto
	// refused others: still a confirmed drop.
	in.Local = &Advertiser{Address: netip.MustParseAddr("198.51.100.2"), Adverts: 3, Priority: 100, Versions: []int{in.Version}}
	in.Sends = &SendFacts{Attempts: 6, Failed: 3, LastError: "sendto: operation not permitted", OnWire: 3}
	if f := find(Evaluate(r), IDFirewallOutputDrop); f == nil || f.Severity != diag.SeverityCritical {
		t.Errorf("partial send failures: firewall-output-drop %+v", f)
	}
	// Without failures, an advertising node's output is trusted.
	in.Sends = &SendFacts{Attempts: 6, OnWire: 6}
	if f := find(Evaluate(r), IDFirewallOutputDrop); f != nil {
		t.Errorf("no send failure, adverts on the wire: %+v", f)
	}
}

// TestInterfaceStateAsFacts: the watch's lighter reading of an interface
// says what InterfaceFacts says of it (read-only, on lo).
func TestInterfaceStateAsFacts(t *testing.T) {
	want := InterfaceFacts("lo", "/proc", 0, 0)
	if !want.Exists {
		t.Skipf("no lo here: %v", want.Problems)
	}
	got := InterfaceState("lo", "/proc", 0, 0)
	if got.Exists != want.Exists || got.Up != want.Up || got.LowerUp != want.LowerUp || got.Multicast != want.Multicast || got.OperState != want.OperState ||
		!slices.Equal(got.Addrs, want.Addrs) || (got.JoinedVRRP4 == nil) != (want.JoinedVRRP4 == nil) ||
		got.JoinedVRRP4 != nil && (*got.JoinedVRRP4 != *want.JoinedVRRP4 || *got.JoinedVRRP6 != *want.JoinedVRRP6) {
		t.Errorf("InterfaceState(lo) = %+v\nInterfaceFacts(lo) = %+v", got, want)
	}
	if missing := InterfaceState("vd-no-such-if", "/proc", 0, 0); missing.Exists || len(missing.Problems) == 0 {
		t.Errorf("missing interface: %+v", missing)
	}
}

// TestWindowFillSends: the send attempts of the instance's outgoing flow
// (and only of its VRID, family and interface) become Instance.Sends.
func TestWindowFillSends(t *testing.T) {
	w := &Window{o: newObservation()}
	now := time.Now()
	src := netip.MustParseAddr("198.51.100.2")
	out := func(vrid uint8, sends, errs, onWire uint64) capture.FlowStats {
		return capture.FlowStats{FlowKey: capture.FlowKey{Interface: "eth0", VRID: vrid, Family: 4, Sender: src, Direction: capture.DirOut},
			Sends: sends, SendErrors: errs, SentOnWire: onWire, LastSendError: "sendto: operation not permitted", Wire: capture.TapCount{Packets: onWire, First: now, Last: now}}
	}
	in := Instance{Interface: "eth0", VRID: 51, Family: 4}
	w.Fill(&in, &Interface{Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}}, []capture.FlowStats{out(51, 5, 2, 3), out(52, 9, 9, 0)})
	if in.Sends == nil || *in.Sends != (SendFacts{Attempts: 5, Failed: 2, LastError: "sendto: operation not permitted", OnWire: 3}) {
		t.Errorf("Sends %+v", in.Sends)
	}
	if !in.Observed {
		t.Error("not Observed")
	}
	in = Instance{Interface: "eth0", VRID: 51, Family: 4}
	w.Fill(&in, nil, []capture.FlowStats{out(51, 4, 0, 4)})
	if in.Sends == nil || in.Sends.LastError != "" || in.Sends.Failed != 0 {
		t.Errorf("no failure in the window: Sends %+v", in.Sends)
	}
}
