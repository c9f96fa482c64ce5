package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
)

const checkReports = "../../testdata/check"

func runCheckArgs(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(append([]string{"check"}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestCheckCombine combines the lab reports of testdata/check.
func TestCheckCombine(t *testing.T) {
	a, b := filepath.Join(checkReports, "input-drop-a.json"), filepath.Join(checkReports, "input-drop-b.json")
	out, errOut, code := runCheckArgs(t, "--combine", a, b, "--json")
	var doc struct {
		Schema   string `json:"schema"`
		ExitCode int    `json:"exit_code"`
		Nodes    []struct {
			Label string `json:"label"`
		} `json:"nodes"`
		Findings []struct {
			ID      string `json:"id"`
			Summary string `json:"summary"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s%s", err, out, errOut)
	}
	if code != 2 || doc.ExitCode != 2 || doc.Schema != "vrrpdoctor-check-combined/1" || len(doc.Nodes) != 2 || doc.Nodes[1].Label != "b" ||
		doc.Findings[0].ID != "split-brain" || !strings.Contains(doc.Findings[0].Summary, "Cause on b's side.") {
		t.Errorf("exit %d: %+v", code, doc)
	}
	out, _, code = runCheckArgs(t, "--combine", filepath.Join(checkReports, "healthy-a.json"), filepath.Join(checkReports, "healthy-b.json"))
	if code != 0 || !strings.Contains(out, "OK healthy") || !strings.Contains(out, "Status: OK") {
		t.Errorf("healthy pair, exit %d:\n%s", code, out)
	}
}

// TestCheckFixCommandsParse: every `vrrpdoctor fix-firewall ...` line that
// check prints as a fix (in and out, IPv4 and IPv6, multicast and unicast)
// is accepted by fix-firewall's own flag set, with the meaning intended.
func TestCheckFixCommandsParse(t *testing.T) {
	a4, b4, g4 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("224.0.0.18")
	a6, b6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	rule := &eval.RuleRef{Backend: "iptables-nft", Family: "ip", Table: "filter", Chain: "INPUT", Position: 1, Text: "-A INPUT -p vrrp -j DROP"}
	for _, tc := range []struct {
		dir      eval.Direction
		src, dst netip.Addr
		want     string
	}{
		{eval.In, a4, g4, "-i eth0 --in --apply"},
		{eval.Out, b4, g4, "-i eth0 --out --apply"},
		{eval.In, a4, b4, "-i eth0 --in --peer 198.51.100.1 --apply"},
		{eval.Out, b6, a6, "-i eth0 --out --family 6 --peer 2001:db8::1 --apply"},
	} {
		r := &check.Report{
			Schema: check.Schema, Config: check.ConfigFacts{Source: "none", Errors: []string{}},
			Processes:  []check.Process{{PID: 1, Kind: "keepalived"}},
			Interfaces: []check.Interface{{Name: "eth0", Exists: true, Up: true, LowerUp: true, Multicast: true}},
			Instances: []check.Instance{{
				Interface: "eth0", VRID: 51, Family: 4, Held: []check.HeldAddr{}, VIPs: []netip.Addr{},
				FirewallIn:  []check.Verdict{{Direction: tc.dir, Interface: "eth0", Src: tc.src, Dst: tc.dst, Verdict: eval.Drop, Rule: rule}},
				FirewallOut: []check.Verdict{},
			}},
		}
		if tc.dir == eval.Out {
			r.Instances[0].FirewallIn, r.Instances[0].FirewallOut = r.Instances[0].FirewallOut, r.Instances[0].FirewallIn
		}
		r.Finish()
		var lines []string
		for _, f := range r.Findings {
			for _, ln := range strings.Split(f.Fix, "\n") {
				if strings.HasPrefix(strings.TrimSpace(ln), "vrrpdoctor fix-firewall ") {
					lines = append(lines, strings.TrimSpace(ln))
				}
			}
		}
		if len(lines) == 0 {
			t.Errorf("%v %s→%s: no fix-firewall command in %+v", tc.dir, tc.src, tc.dst, r.Findings)
			continue
		}
		for _, ln := range lines {
			if want := "vrrpdoctor fix-firewall " + tc.want; ln != want {
				t.Errorf("printed %q, want %q", ln, want)
			}
			var out, errOut bytes.Buffer
			cmd := newFixFirewallCmd(streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
			args := strings.Fields(ln)[2:]
			if err := cmd.ParseFlags(args); err != nil {
				t.Errorf("fix-firewall refuses %q: %v", ln, err)
				continue
			}
			if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
				t.Errorf("fix-firewall refuses the arguments of %q: %v", ln, err)
			}
		}
	}
}

func TestCheckUsage(t *testing.T) {
	notReport := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(notReport, []byte(`{"schema":"something else"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(checkReports, "healthy-a.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--combine", a}, "--combine takes exactly two reports"},
		{[]string{"--combine", a, a, a}, "--combine takes exactly two reports"},
		{[]string{a}, `unexpected argument "` + a + `"`},
		{[]string{"--combine", a, notReport}, `schema "something else"`},
		{[]string{"--combine", a, "/nonexistent.json"}, "/nonexistent.json"},
		{[]string{"--peer", notReport}, `schema "something else"`},
		{[]string{"--family", "5", "-i", "eth0", "--vrid", "1"}, "--family 5: want 4 or 6"},
		{[]string{"--duration", "-1s"}, "--duration -1s: must not be negative"},
		{[]string{"-c", "/nonexistent/keepalived.conf"}, "read configuration"},
		{[]string{"--vrid", "300"}, "invalid argument"},
		{[]string{"--nagios", "--json"}, "--nagios reports one node"},
		{[]string{"--nagios", "--combine", a, a}, "--nagios reports one node"},
	} {
		_, errOut, code := runCheckArgs(t, tc.args...)
		if code != 3 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want 3 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
