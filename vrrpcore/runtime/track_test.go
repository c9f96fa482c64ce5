package runtime

import (
	"log/slog"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// TestScriptRiseFall follows keepalived's rules: the first result decides
// (unless init_fail), then fall failures in a row bring the script down
// and rise successes in a row bring it up.
func TestScriptRiseFall(t *testing.T) {
	cases := []struct {
		name     string
		rise     int
		fall     int
		initFail bool
		results  string // '+' success, '-' failure
		want     string // state after each result: u(p), d(own)
	}{
		{"first success", 3, 3, false, "+", "u"},
		{"first failure", 3, 3, false, "-", "d"},
		{"fall 2", 1, 2, false, "+-+--", "uuuud"},
		{"rise 3", 3, 1, false, "-++-+++", "ddddddu"},
		{"init_fail needs rise", 2, 1, true, "+-++", "dddu"},
		{"fall 1 rise 1", 1, 1, false, "+-+-", "udud"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newScriptTracker(&scriptPlan{name: "chk", rise: tc.rise, fall: tc.fall, initFail: tc.initFail}, slog.New(slog.DiscardHandler))
			if tc.initFail && tr.get() != trackDown {
				t.Fatalf("init_fail: initial state %v, want down", tr.get())
			}
			if !tc.initFail && tr.get() != trackUnknown {
				t.Fatalf("initial state %v, want init", tr.get())
			}
			var got []byte
			for _, r := range tc.results {
				tr.result(r == '+')
				got = append(got, tr.get().String()[0])
			}
			if string(got) != tc.want {
				t.Errorf("states %s, want %s", got, tc.want)
			}
		})
	}
}

// TestTrackingWeights checks keepalived's weight rules: weight 0 means
// FAULT when down, a positive weight is added while up, a negative one
// while down, and reverse swaps up and down.
func TestTrackingWeights(t *testing.T) {
	d := &Daemon{
		trackers: map[string]*scriptTracker{},
		links:    &linkMonitor{state: map[string]bool{"eth0": true, "eth1": false}},
	}
	set := func(name string, s trackState) {
		d.trackers[name] = &scriptTracker{plan: &scriptPlan{name: name}, state: s}
	}
	set("up", trackUp)
	set("down", trackDown)
	set("init", trackUnknown)
	cases := []struct {
		name      string
		tracks    []trackRef
		wantPrio  int
		wantFault bool
		ready     bool
	}{
		{"interface up, weight 0", []trackRef{{iface: "eth0"}}, 100, false, true},
		{"interface down, weight 0", []trackRef{{iface: "eth1"}}, 100, true, true},
		{"interface down, reverse", []trackRef{{iface: "eth1", reverse: true}}, 100, false, true},
		{"positive weight, up", []trackRef{{script: "up", weight: 20}}, 120, false, true},
		{"positive weight, down", []trackRef{{script: "down", weight: 20}}, 100, false, true},
		{"negative weight, down", []trackRef{{script: "down", weight: -30}}, 70, false, true},
		{"negative weight, up", []trackRef{{script: "up", weight: -30}}, 100, false, true},
		{"negative weight, reverse, up", []trackRef{{script: "up", weight: -30, reverse: true}}, 70, false, true},
		{"sum", []trackRef{{script: "up", weight: 10}, {script: "down", weight: -5}, {iface: "eth1", weight: -20}}, 85, false, true},
		{"script not run yet", []trackRef{{script: "init", weight: 10}}, 100, false, false},
		{"missing vrrp_script counts as down", []trackRef{{script: "gone"}}, 100, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &instance{d: d}
			p := &plan{rc: router.Config{Priority: 100}, tracks: tc.tracks}
			prio, fault := in.tracking(p)
			if prio != tc.wantPrio || fault != tc.wantFault {
				t.Errorf("priority %d fault %v, want %d %v", prio, fault, tc.wantPrio, tc.wantFault)
			}
			if got := in.trackersReady(p); got != tc.ready {
				t.Errorf("trackersReady %v, want %v", got, tc.ready)
			}
		})
	}
}
