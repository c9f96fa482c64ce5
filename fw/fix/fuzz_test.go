package fix

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// FuzzPlan: any saved ruleset (nft JSON or iptables-save text) that
// parses is planned for the VRRP adverts of a multicast and a unicast
// target without a panic, and every rule planned stays within VRRP: IP
// protocol 112, the target's interface, its group or its peer and itself.
// The seeds are the saved rulesets of testdata/rulesets.
func FuzzPlan(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "rulesets", "*", "*"))
	for _, p := range files {
		if filepath.Ext(p) != ".json" && filepath.Ext(p) != ".txt" {
			continue
		}
		if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
			f.Add(b)
		}
	}
	targets := [][]Target{
		{{Iface: "eth0", Family: 4, Group: group4, Self: self4}},
		{{Iface: "eth0", Family: 4, Peers: []netip.Addr{peer4}, Self: self4}},
	}
	info := &firewalld.Info{Running: true, Version: "1.3.3", Backend: "nftables", DefaultZone: "public"}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := fw.Parse("fuzz", data, iptsave.Options{Backend: ruleset.BackendIptablesNFT, Family: ruleset.FamilyIP})
		if err != nil {
			return
		}
		for _, ts := range targets {
			plan, err := Make(rs, ts, Options{Force: true, Firewalld: info})
			if err != nil {
				continue
			}
			tg := ts[0]
			allowed := append([]netip.Addr{tg.Group, tg.Self}, tg.Peers...)
			for _, r := range plan.Rules {
				if msg := widens(r, tg, allowed); msg != "" {
					t.Fatalf("%s: %s", msg, Shell(r.Command))
				}
			}
		}
	})
}

// FuzzState: a damaged or hostile state file gives an error or is read;
// Undo on it never panics and never runs anything but firewall-cmd with a
// --remove-rich-rule of what the file names.
func FuzzState(f *testing.F) {
	f.Add([]byte(`{"firewalld":[{"backend":"firewalld","selector":"--zone=public","rich_rule":"rule family=\"ipv4\" destination address=\"224.0.0.18\" protocol value=\"vrrp\" accept"}]}`))
	f.Add([]byte(`{"running":"apply, pid 1, started 2026-11-25T16:00:00Z"}`))
	f.Add([]byte(`{"firewalld":[{"backend":"nftables","family":"inet","table":"filter","chain":"input","handle":3}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		state := filepath.Join(t.TempDir(), "state.json")
		if err := os.WriteFile(state, data, 0o600); err != nil {
			t.Fatal(err)
		}
		h := &fakeHost{rulesets: []*ruleset.Ruleset{{}}}
		s := h.session()
		s.State = state
		if _, err := s.Undo(context.Background()); err != nil {
			return
		}
		for _, c := range h.cmds {
			if len(c) < len("firewall-cmd") || c[:len("firewall-cmd")] != "firewall-cmd" {
				t.Fatalf("undo of a state file ran %q", c)
			}
		}
	})
}
