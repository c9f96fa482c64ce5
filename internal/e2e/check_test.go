package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// The lab scenarios of `vrrpdoctor check` (issue 6): a keepalived pair, a
// fault staged on one node, and the binary run in each node's network
// namespace with `ip netns exec`, as a user runs it on each host.

// checkJSON is the part of `vrrpdoctor check --json` (docs/check.md) these
// tests read.
type checkJSON struct {
	Schema    string         `json:"schema"`
	Status    string         `json:"status"`
	ExitCode  int            `json:"exit_code"`
	Findings  []checkFinding `json:"findings"`
	Processes []struct {
		Kind   string `json:"kind"`
		Config string `json:"config"`
	} `json:"processes"`
	Instances []struct {
		VRID  int `json:"vrid"`
		Local *struct {
			Adverts int `json:"adverts"`
		} `json:"local"`
		Held []struct {
			Addr string `json:"addr"`
		} `json:"vips_held"`
		Peers []struct {
			Address string `json:"address"`
			Adverts int    `json:"adverts"`
			Socket  int    `json:"socket"`
		} `json:"peers"`
	} `json:"instances"`
	Skipped []string `json:"skipped"`
}

type checkFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Subject  string `json:"subject"`
	Summary  string `json:"summary"`
	Evidence []struct {
		Label string `json:"label"`
		Value string `json:"value"`
	} `json:"evidence"`
	Explanation string `json:"explanation"`
	Fix         string `json:"fix"`
}

func (r *checkJSON) find(id string) *checkFinding {
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	return nil
}

func (r *checkJSON) ids() []string {
	var s []string
	for _, f := range r.Findings {
		s = append(s, f.ID+"/"+f.Severity)
	}
	return s
}

// runCheckCmd runs vrrpdoctor with args in host h (ip netns exec) and
// returns its output and exit code.
func runCheckCmd(t *testing.T, h *netlab.Host, env []string, args ...string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := h.Command(ctx, vrrpdoctor(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	took = time.Since(start)
	if ps := cmd.ProcessState; ps != nil && len(args) > 0 && args[0] == "check" {
		cpu := ps.UserTime() + ps.SystemTime()
		t.Logf("vrrpdoctor %s in %s: %s wall, %s CPU (%.1f%% of a core)", strings.Join(args, " "), h.Name(), took.Round(time.Millisecond), cpu.Round(time.Millisecond), 100*cpu.Seconds()/took.Seconds())
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("vrrpdoctor %v: %v", args, err)
	}
	return out.String(), errOut.String(), code, took
}

// checkNode runs `vrrpdoctor check --json` in h, saves the report in the lab
// directory as name.json and decodes it.
func checkNode(t *testing.T, lab *netlab.Lab, h *netlab.Host, env []string, name string, args ...string) (checkJSON, string, time.Duration) {
	t.Helper()
	out, errOut, code, took := runCheckCmd(t, h, env, append([]string{"check", "--json", "--node", name}, args...)...)
	var r checkJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("check on %s (exit %d): not a JSON report: %v\nstdout:\n%s\nstderr:\n%s", name, code, err, out, errOut)
	}
	if r.ExitCode != code {
		t.Errorf("check on %s: exit status %d, report says %d", name, code, r.ExitCode)
	}
	if err := os.WriteFile(filepath.Join(lab.Dir(), name+".json"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	// VRRPDOCTOR_KEEP_CHECK_REPORTS=DIR keeps the reports (testdata/check
	// was made so), named after the test and node.
	if dir := os.Getenv("VRRPDOCTOR_KEEP_CHECK_REPORTS"); dir != "" {
		keep := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".json")
		if err := os.WriteFile(keep, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r, out, took
}

// checkPair is a keepalived pair on the lab's standard addresses: a with
// priority 150, b with 100, VRID 51, VIP 198.51.100.100.
type checkPair struct {
	lab    *netlab.Lab
	a, b   *netlab.Host
	ka, kb *netlab.Keepalived
	// envA and envB are added to the environment of check on each node
	// (e.g. the private system bus of a firewalld there).
	envA, envB []string
}

func newCheckPair(t *testing.T, version int, advertInt time.Duration, programs ...string) *checkPair {
	t.Helper()
	p := newCheckLab(t, programs...)
	p.start(t, version, advertInt)
	return p
}

// newCheckLab is the pair's lab without keepalived yet.
func newCheckLab(t *testing.T, programs ...string) *checkPair {
	t.Helper()
	lab := netlabtest.New(t, append([]string{"keepalived"}, programs...)...)
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	return &checkPair{lab: lab, a: a, b: b}
}

// start starts keepalived on both nodes.
func (p *checkPair) start(t *testing.T, version int, advertInt time.Duration, extra ...string) {
	t.Helper()
	for i, h := range []*netlab.Host{p.a, p.b} {
		in := netlab.VRRPInstance{Interface: "eth0", VRID: 51, Version: version, Priority: 150 - 50*i, AdvertInt: advertInt, VIPs: []string{vip.String() + "/24"}, Extra: extra}
		k, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{in}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			p.ka = k
		} else {
			p.kb = k
		}
	}
}

// waitHolders waits until exactly want hold the VIP.
func (p *checkPair) waitHolders(t *testing.T, want ...*netlab.Host) {
	t.Helper()
	var got []*netlab.Host
	err := netlab.WaitFor(20*time.Second, func() (bool, error) {
		var err error
		got, err = p.lab.Holders(vip)
		return slices.Equal(got, want), err
	})
	if err != nil {
		t.Fatalf("VIP holders %s, want %s: %v", netlab.HostNames(got), netlab.HostNames(want), err)
	}
}

// both runs check on a and b at the same time, as an admin would on two
// terminals, and returns their reports.
func (p *checkPair) both(t *testing.T, args ...string) (ra, rb checkJSON, rawA, rawB string) {
	t.Helper()
	done := make(chan struct{})
	var tookA time.Duration
	go func() {
		defer close(done)
		ra, rawA, tookA = checkNode(t, p.lab, p.a, p.envA, "a", args...)
	}()
	var tookB time.Duration
	rb, rawB, tookB = checkNode(t, p.lab, p.b, p.envB, "b", args...)
	<-done
	t.Logf("check took %s on a, %s on b", tookA.Round(time.Millisecond), tookB.Round(time.Millisecond))
	return
}

// combine runs `vrrpdoctor check --combine a.json b.json` in the root
// namespace (it reads files only) and returns the JSON verdict.
func (p *checkPair) combine(t *testing.T) (checkJSON, string) {
	t.Helper()
	args := []string{"check", "--json", "--combine", filepath.Join(p.lab.Dir(), "a.json"), filepath.Join(p.lab.Dir(), "b.json")}
	cmd := exec.Command(vrrpdoctor(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	var r checkJSON
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.ExitCode != code {
		t.Fatalf("check --combine (exit %d): %v\n%s\n%s", code, err, out.String(), errOut.String())
	}
	return r, out.String()
}

// matrixRow logs one row of the scenario matrix (docs/check.md, "Tested
// in the lab"): test, node, what the test expects and what check reported.
// `go test -v -run TestCheck ./internal/e2e | grep MATRIX` collects them.
func matrixRow(t *testing.T, node, expected string, r checkJSON) {
	t.Helper()
	t.Logf("MATRIX | %s | %s | %s | exit %d: %s |", t.Name(), node, expected, r.ExitCode, strings.Join(r.ids(), " "))
}

func noProblems(t *testing.T, node string, r checkJSON, raw string) {
	t.Helper()
	matrixRow(t, node, "exit 0: healthy, nothing above info", r)
	if r.ExitCode != 0 || r.Status != "ok" {
		t.Errorf("%s: status %s (exit %d), want ok: findings %v", node, r.Status, r.ExitCode, r.ids())
	}
	for _, f := range r.Findings {
		if f.Severity != "ok" && f.Severity != "info" {
			t.Errorf("%s: false alarm %s: %s", node, f.ID, f.Summary)
		}
	}
	if r.find("healthy") == nil {
		t.Errorf("%s: no healthy verdict: %v", node, r.ids())
	}
	if t.Failed() {
		t.Logf("%s:\n%s", node, raw)
	}
}

// TestCheckHealthy: healthy pairs give OK (exit 0) and a healthy verdict on
// both nodes, VRRPv2 with 1 s adverts (default watch: 4 s) and VRRPv3 with
// 250 ms adverts; the combined report agrees.
func TestCheckHealthy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		version   int
		advertInt time.Duration
	}{
		{"v2-1s", 2, time.Second},
		{"v3-250ms", 3, 250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newCheckPair(t, tc.version, tc.advertInt)
			p.waitHolders(t, p.a)
			if err := p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"); err != nil {
				t.Fatal(err)
			}
			ra, rb, rawA, rawB := p.both(t)
			noProblems(t, "a", ra, rawA)
			noProblems(t, "b", rb, rawB)
			if f := ra.find("healthy"); f != nil && !strings.Contains(f.Summary, "MASTER") {
				t.Errorf("a: %s", f.Summary)
			}
			if f := rb.find("healthy"); f != nil && !strings.Contains(f.Summary, "BACKUP") {
				t.Errorf("b: %s", f.Summary)
			}
			c, raw := p.combine(t)
			if c.ExitCode != 0 || c.find("healthy") == nil {
				t.Errorf("combined: exit %d, findings %v\n%s", c.ExitCode, c.ids(), raw)
			}
			// Without a configuration: the instance named by -i/--vrid.
			rn, rawN, _ := checkNode(t, p.lab, p.b, nil, "b-noconf", "-i", "eth0", "--vrid", "51")
			matrixRow(t, "b (-i eth0 --vrid 51, no config)", "exit 0: healthy", rn)
			if rn.ExitCode != 0 || rn.find("healthy") == nil || !strings.Contains(rawN, `"source": "none"`) {
				t.Errorf("-i eth0 --vrid 51 on b: exit %d, %v\n%s", rn.ExitCode, rn.ids(), rawN)
			}
			// The text report, as a pipe gets it (no colour).
			out, errOut, code, _ := runCheckCmd(t, p.b, nil, "check", "--duration", "1s")
			if code != 0 || !strings.Contains(out, "OK healthy") || !strings.Contains(out, "this node is BACKUP for VRID 51") || strings.Contains(out, "\x1b[") {
				t.Errorf("text report on b (exit %d, stderr %q):\n%s", code, errOut, out)
			}
			t.Logf("text report on b:\n%s", out)
		})
	}
}

// evidence returns the value of the finding's evidence whose label starts
// with label.
func (f *checkFinding) evidence(label string) string {
	for _, e := range f.Evidence {
		if strings.HasPrefix(e.Label, label) {
			return e.Value
		}
	}
	return ""
}

// TestCheckInputDrop: the backup's INPUT path drops VRRP, with iptables
// (nft flavour, Debian's default), iptables-legacy and native nftables. Both
// nodes become master. b reports split-brain and firewall-input-drop naming
// the rule and chain, with wire > 0 and socket = 0 for a's adverts; a reports
// split-brain saying b does not hear it; the combined report blames b.
func TestCheckInputDrop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		programs []string
		apply    func(h *netlab.Host) error
		chain    string // in the deciding rule's evidence
		rule     string
	}{
		{"iptables-nft", []string{"iptables"}, func(h *netlab.Host) error {
			_, err := h.Iptables("-A", "INPUT", "-d", "224.0.0.18", "-j", "DROP")
			return err
		}, "chain INPUT of table ip filter (iptables-nft", "-d 224.0.0.18/32 -j DROP"},
		{"iptables-legacy", []string{"iptables-legacy"}, func(h *netlab.Host) error {
			_, err := h.IptablesLegacy("-A", "INPUT", "-p", "vrrp", "-j", "DROP")
			return err
		}, "chain INPUT of table ip filter (iptables-legacy", "-p vrrp -j DROP"},
		{"nft", []string{"nft"}, func(h *netlab.Host) error {
			return h.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy accept;\n  ip daddr 224.0.0.18 meta l4proto vrrp drop\n }\n}\n")
		}, "chain input of table inet filter (nftables", "drop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newCheckPair(t, 3, 250*time.Millisecond, tc.programs...)
			if err := p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"); err != nil {
				t.Fatal(err)
			}
			if err := tc.apply(p.b); err != nil {
				t.Fatal(err)
			}
			p.waitHolders(t, p.a, p.b)
			ra, rb, rawA, rawB := p.both(t)

			if rb.ExitCode != 2 || rb.Status != "critical" {
				t.Errorf("b: exit %d (%s), want 2", rb.ExitCode, rb.Status)
			}
			sb := rb.find("split-brain")
			if sb == nil || sb.Severity != "critical" || !strings.Contains(sb.Summary, "This node is MASTER for VRID 51 and holds 198.51.100.100, but 198.51.100.1 advertises VRID 51 at priority 150") ||
				!strings.Contains(sb.Summary, ", 0 reached the VRRP socket") || !strings.Contains(sb.Summary, tc.chain) {
				t.Errorf("b: split-brain %+v", sb)
			}
			fd := rb.find("firewall-input-drop")
			if fd == nil || fd.Severity != "critical" || !strings.Contains(fd.evidence("deciding rule"), tc.chain) || !strings.Contains(fd.evidence("deciding rule"), tc.rule) ||
				!strings.Contains(fd.evidence("adverts from 198.51.100.1"), "reached the VRRP socket") || !strings.Contains(fd.evidence("adverts from 198.51.100.1"), " 0 reached") ||
				!strings.Contains(fd.Fix, "vrrpdoctor fix-firewall -i eth0 --in") {
				t.Errorf("b: firewall-input-drop %+v", fd)
			}
			if len(rb.Instances) != 1 || len(rb.Instances[0].Peers) != 1 || rb.Instances[0].Peers[0].Adverts < 4 || rb.Instances[0].Peers[0].Socket != 0 {
				t.Errorf("b: instance figures %+v", rb.Instances)
			}

			if ra.ExitCode != 2 {
				t.Errorf("a: exit %d, want 2", ra.ExitCode)
			}
			sa := ra.find("split-brain")
			if sa == nil || !strings.Contains(sa.Summary, "198.51.100.2 also advertises VRID 51 (priority 100) while this node is master (priority 150): it does not hear us") {
				t.Errorf("a: split-brain %+v", sa)
			}
			if ra.find("firewall-input-drop") != nil {
				t.Errorf("a: firewall-input-drop on the node without a firewall: %v", ra.ids())
			}
			matrixRow(t, "b", "exit 2: split-brain/critical firewall-input-drop/critical (rule "+tc.rule+")", rb)
			matrixRow(t, "a", "exit 2: split-brain (it does not hear us), no firewall-input-drop", ra)
			if t.Failed() {
				t.Logf("a:\n%s\nb:\n%s", rawA, rawB)
			}

			c, raw := p.combine(t)
			cs := c.find("split-brain")
			if c.ExitCode != 2 || cs == nil || !strings.Contains(cs.Subject, "VRID 51") ||
				!strings.Contains(cs.Summary, "split brain: both a and b are master for VRID 51") ||
				!strings.Contains(cs.Summary, "b's wire sees a's adverts") || !strings.Contains(cs.Summary, tc.chain) ||
				!strings.Contains(cs.Summary, "Cause on b's side.") {
				t.Errorf("combined: exit %d, split-brain %+v\n%s", c.ExitCode, cs, raw)
			}
			matrixRow(t, "combined", "exit 2: split-brain (cause on b's side)", c)
			if tc.name == "iptables-nft" {
				// --peer: check here (b), then combine with a's report.
				out, errOut, code, _ := runCheckCmd(t, p.b, nil, "check", "--json", "--node", "b", "--peer", filepath.Join(p.lab.Dir(), "a.json"))
				var c checkJSON
				if err := json.Unmarshal([]byte(out), &c); err != nil || code != 2 || c.find("split-brain") == nil ||
					!strings.Contains(c.find("split-brain").Summary, "Cause on b's side.") {
					t.Errorf("--peer (exit %d, %v): %s\n%s", code, err, out, errOut)
				}
			}
			if tc.name == "nft" {
				out, _, code, _ := runCheckCmd(t, p.b, nil, "check")
				if code != 2 || !strings.Contains(out, "CRITICAL split-brain") || !strings.Contains(out, "CRITICAL firewall-input-drop") || !strings.Contains(out, "Status: CRITICAL") {
					t.Errorf("text report on b (exit %d):\n%s", code, out)
				}
				t.Logf("text report on b:\n%s", out)
				out, _, code, _ = runCheckCmd(t, p.b, nil, "check", "--nagios")
				if code != 2 || !strings.HasPrefix(out, "VRRP CRITICAL - ") || strings.Count(out, "\n") != 1 || !strings.Contains(out, "vrid51_eth0_ipv4_peer_socket=0") {
					t.Errorf("--nagios on b (exit %d): %q", code, out)
				}
				out, _, code, _ = runCheckCmd(t, p.b, nil, "check", "--combine", filepath.Join(p.lab.Dir(), "a.json"), filepath.Join(p.lab.Dir(), "b.json"))
				if code != 2 {
					t.Errorf("combined text: exit %d", code)
				}
				t.Logf("combined text:\n%s", out)
			}
			// The fix-firewall command the finding prints, run as printed,
			// ends the split brain, and check then says so.
			if fd != nil {
				var fix []string
				for _, ln := range strings.Split(fd.Fix, "\n") {
					if f := strings.Fields(ln); len(f) > 1 && f[0] == "vrrpdoctor" && f[1] == "fix-firewall" {
						fix = f[1:]
					}
				}
				if fix == nil {
					t.Fatalf("no vrrpdoctor fix-firewall line in the fix:\n%s", fd.Fix)
				}
				out, errOut, code, _ := runCheckCmd(t, p.b, nil, fix...)
				if code != 0 {
					t.Fatalf("vrrpdoctor %s: exit %d\n%s\n%s", strings.Join(fix, " "), code, out, errOut)
				}
				p.waitHolders(t, p.a)
				rb2, raw2, _ := checkNode(t, p.lab, p.b, nil, "b-fixed")
				nodeWant{exit: 0, ids: []string{"healthy"}}.verify(t, "b after vrrpdoctor "+strings.Join(fix, " "), rb2, raw2)
			}
		})
	}
}
