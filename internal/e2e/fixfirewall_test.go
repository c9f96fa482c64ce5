package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// The lab scenarios of `vrrpdoctor fix-firewall` (issue 7): a keepalived
// pair, a firewall on the backup b that drops VRRP (split brain: both hold
// the VIP), then fix-firewall run in b's network namespace as a user runs
// it on b: printed, applied (the split brain ends), applied again (nothing
// added), undone (the ruleset is back, byte for byte, and so is the split
// brain).

// fixReport is the part of `fix-firewall --json` (docs/fix-firewall.md)
// these tests read.
type fixReport struct {
	Schema string `json:"schema"`
	Mode   string `json:"mode"`
	Status string `json:"status"`
	Plan   *struct {
		Checks []struct {
			Label  string `json:"label"`
			Before string `json:"before"`
			After  string `json:"after"`
		} `json:"checks"`
		Rules []struct {
			Backend string `json:"backend"`
			Chain   string `json:"chain"`
			Shell   string `json:"shell"`
		} `json:"rules"`
		Alternatives []struct {
			Title    string     `json:"title"`
			Commands [][]string `json:"commands"`
			Works    bool       `json:"works"`
			Note     string     `json:"note"`
		} `json:"alternatives"`
		Refused []string `json:"refused"`
	} `json:"plan"`
	Outcome *struct {
		Added []struct {
			Backend string `json:"backend"`
		} `json:"added"`
		Checks []struct {
			After string `json:"after"`
		} `json:"checks"`
		RolledBack bool     `json:"rolled_back"`
		Notes      []string `json:"notes"`
		Delivery   []struct {
			Sender string `json:"sender"`
			Wire   int    `json:"wire"`
			Socket int    `json:"socket"`
		} `json:"delivery"`
	} `json:"outcome"`
	Error string `json:"error"`
}

// fixLab is a keepalived pair (VRRPv3, 250 ms) with b, the backup, as the
// host under repair.
type fixLab struct {
	lab    *netlab.Lab
	a, b   *netlab.Host
	ka, kb *netlab.Keepalived
	env    []string // for fix-firewall on b (firewalld's private bus)
	state  string   // --state file
	vip    netip.Addr
	// bMaster gives b the higher priority (for drops of b's own adverts
	// on the way out); master is the node that holds the VIP when healthy.
	bMaster bool
	master  *netlab.Host
	// args are added to every fix-firewall run.
	args []string
}

// The pair's virtual addresses.
var (
	fixVIP  = netip.MustParseAddr("198.51.100.100")
	fixVIP6 = netip.MustParseAddr("2001:db8::100")
)

func newFixLab(t *testing.T, programs ...string) *fixLab {
	t.Helper()
	lab := netlabtest.New(t, append([]string{"keepalived"}, programs...)...)
	vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	return &fixLab{lab: lab, a: a, b: b, state: filepath.Join(t.TempDir(), "fix-firewall.json")}
}

// start starts keepalived on both nodes (IPv4 multicast, IPv4 unicast, or
// IPv6 multicast with ipv6 set) and waits for b to be backup.
func (l *fixLab) start(t *testing.T, unicast bool, ipv6 ...bool) {
	t.Helper()
	l.vip = fixVIP
	vip := fixVIP.String() + "/24"
	if len(ipv6) > 0 && ipv6[0] {
		l.vip, vip = fixVIP6, fixVIP6.String()+"/64"
	}
	for i, h := range []*netlab.Host{l.a, l.b} {
		prio := 150 - 50*i
		if l.bMaster {
			prio = 100 + 50*i
		}
		in := netlab.VRRPInstance{Interface: "eth0", VRID: 51, Version: 3, Priority: prio, AdvertInt: 250 * time.Millisecond, VIPs: []string{vip}}
		if unicast {
			self, peer := netlab.LANAddr4(i+1), netlab.LANAddr4(2-i)
			in.UnicastSrc = strings.TrimSuffix(self, "/24")
			in.UnicastPeers = []string{strings.TrimSuffix(peer, "/24")}
		}
		k, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{in}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			l.ka = k
		} else {
			l.kb = k
		}
	}
	backup := l.kb
	l.master = l.a
	if l.bMaster {
		l.master, backup = l.b, l.ka
	}
	if err := backup.WaitState(15*time.Second, "VI_51", "BACKUP"); err != nil {
		t.Fatal(err)
	}
}

// holders waits until exactly want hold the VIP and returns how long it took.
func (l *fixLab) holders(t *testing.T, timeout time.Duration, want ...*netlab.Host) time.Duration {
	t.Helper()
	start := time.Now()
	var got []*netlab.Host
	err := netlab.WaitFor(timeout, func() (bool, error) {
		var err error
		got, err = l.lab.Holders(l.vip)
		return slices.Equal(got, want), err
	})
	if err != nil {
		t.Fatalf("VIP holders %s, want %s: %v", netlab.HostNames(got), netlab.HostNames(want), err)
	}
	return time.Since(start)
}

// run runs vrrpdoctor fix-firewall in b with args.
func (l *fixLab) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := append(append([]string{"fix-firewall", "-c", l.kb.ConfigPath, "--state", l.state}, l.args...), args...)
	cmd := l.b.Command(ctx, vrrpdoctor(t), argv...)
	cmd.Env = append(os.Environ(), l.env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("vrrpdoctor %v: %v", argv, err)
	}
	return out.String(), errOut.String(), code
}

// json runs fix-firewall --json in b and decodes the report.
func (l *fixLab) json(t *testing.T, wantCode int, args ...string) fixReport {
	t.Helper()
	out, errOut, code := l.run(t, append(args, "--json")...)
	var r fixReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("fix-firewall %v (exit %d): not JSON: %v\n%s\n%s", args, code, err, out, errOut)
	}
	if code != wantCode {
		t.Fatalf("fix-firewall %v: exit %d, want %d\n%s\n%s", args, code, wantCode, out, errOut)
	}
	return r
}

var (
	nftCounters = regexp.MustCompile(`counter packets \d+ bytes \d+`)
	saveCounter = regexp.MustCompile(`\[\d+:\d+\]`)
)

// dump is b's whole ruleset as the tools list it, counters removed: nft
// list ruleset (native and iptables-nft tables) and iptables-legacy-save.
func (l *fixLab) dump(t *testing.T) string {
	t.Helper()
	nft, err := l.b.Nft("list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	var legacy []string
	for _, tool := range []string{"iptables-legacy-save", "ip6tables-legacy-save"} {
		out, err := l.b.Run(tool)
		if err != nil {
			t.Fatal(err)
		}
		for _, ln := range strings.Split(out, "\n") {
			if !strings.HasPrefix(ln, "#") {
				legacy = append(legacy, saveCounter.ReplaceAllString(ln, "[0:0]"))
			}
		}
	}
	return nftCounters.ReplaceAllString(nft, "counter") + "\n--- legacy\n" + strings.Join(legacy, "\n")
}

// repair runs the whole cycle on a staged split brain: print, apply (the
// split brain ends), apply again (nothing added), undo (ruleset back to
// before, split brain back). It returns the printed plan.
func (l *fixLab) repair(t *testing.T, wantBackend string, dump func(t *testing.T) string) string {
	t.Helper()
	l.holders(t, 20*time.Second, l.a, l.b)
	before := dump(t)

	text, errOut, code := l.run(t)
	if code != 0 {
		t.Fatalf("print: exit %d\n%s\n%s", code, text, errOut)
	}
	t.Logf("fix-firewall on b:\n%s", text)
	r := l.json(t, 0)
	if r.Schema != "vrrpdoctor/fix-firewall/v1" || r.Status != "fix" || len(r.Plan.Rules) == 0 {
		t.Fatalf("print: %+v", r)
	}
	for _, rule := range r.Plan.Rules {
		if rule.Backend != wantBackend {
			t.Errorf("rule for %s, want %s: %s", rule.Backend, wantBackend, rule.Shell)
		}
		if strings.Contains(rule.Shell, "224.0.0.0/") || !strings.Contains(rule.Shell, "vrrp") {
			t.Errorf("rule not narrow: %s", rule.Shell)
		}
	}
	if after := dump(t); after != before {
		t.Fatalf("printing changed the ruleset:\n%s\n---\n%s", before, after)
	}

	ra := l.json(t, 0, "--apply")
	if ra.Status != "applied" || ra.Outcome == nil || len(ra.Outcome.Added) != len(r.Plan.Rules) {
		t.Fatalf("apply: %+v", ra)
	}
	for _, c := range ra.Outcome.Checks {
		if c.After != "accept" {
			t.Errorf("apply: live check %s", c.After)
		}
	}
	if wantBackend == "firewalld" && !slices.ContainsFunc(ra.Outcome.Notes, func(n string) bool { return strings.HasPrefix(n, "firewalld: rich rule added over D-Bus") }) {
		t.Errorf("apply: firewalld not driven over D-Bus: %v", ra.Outcome.Notes)
	}
	if l.master == l.a {
		// The fix let the master's adverts in: the live check saw them
		// reach the VRRP socket.
		if d := ra.Outcome.Delivery; len(d) != 1 || d[0].Sender == "" || d[0].Socket < 2 {
			t.Errorf("apply: delivery %+v", d)
		}
	}
	took := l.holders(t, 5*time.Second, l.master)
	t.Logf("split brain ended %v after --apply", took)
	applied := dump(t)

	again := l.json(t, 0, "--apply")
	if again.Status != "nothing-to-do" || again.Outcome != nil {
		t.Errorf("second apply: %+v", again)
	}
	if d := dump(t); d != applied {
		t.Errorf("second apply changed the ruleset:\n%s\n---\n%s", applied, d)
	}

	ru := l.json(t, 0, "--undo")
	if ru.Status != "undone" || ru.Outcome == nil || len(ru.Outcome.Added) != len(r.Plan.Rules) {
		t.Errorf("undo: %+v", ru)
	}
	if after := dump(t); after != before {
		t.Errorf("after --undo the ruleset differs from before:\n%s\n---\n%s", before, after)
	}
	l.holders(t, 20*time.Second, l.a, l.b)
	return text
}

// TestFixFirewallSplitBrain: per backend, a drop on b's input path, then
// the fix cycle.
func TestFixFirewallSplitBrain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		programs []string
		backend  string
		unicast  bool
		stage    func(h *netlab.Host) error
		want     []string // in the printed plan
	}{
		{"nft-inet-filter-drop", []string{"nft"}, "nftables", false, func(h *netlab.Host) error {
			return h.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy accept;\n  ct state established,related accept\n  ip daddr 224.0.0.18 meta l4proto vrrp drop\n }\n}\n")
		}, []string{`nft 'insert rule inet filter input position `, `iifname "eth0" ip daddr 224.0.0.18 meta l4proto vrrp accept comment "vrrpdoctor: allow VRRP"'`}},
		{"nft-policy-drop", []string{"nft"}, "nftables", false, func(h *netlab.Host) error {
			return h.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy drop;\n  iifname \"lo\" accept\n }\n}\n")
		}, []string{`nft 'add rule inet filter input iifname "eth0" ip daddr 224.0.0.18 meta l4proto vrrp accept`}},
		{"iptables-nft", []string{"iptables-nft"}, "iptables-nft", false, func(h *netlab.Host) error {
			_, err := h.Run("iptables-nft", "-w", "-A", "INPUT", "-d", "224.0.0.18", "-j", "DROP")
			return err
		}, []string{"iptables-nft -w -t filter -I INPUT 1 -i eth0 -d 224.0.0.18 -p vrrp -m comment --comment 'vrrpdoctor: allow VRRP' -j ACCEPT"}},
		{"iptables-legacy", []string{"iptables-legacy"}, "iptables-legacy", false, func(h *netlab.Host) error {
			_, err := h.IptablesLegacy("-A", "INPUT", "-p", "vrrp", "-j", "DROP")
			return err
		}, []string{"iptables-legacy -w -t filter -I INPUT 1 -i eth0 -d 224.0.0.18 -p vrrp -m comment --comment 'vrrpdoctor: allow VRRP' -j ACCEPT"}},
		{"iptables-nft-unicast", []string{"iptables-nft"}, "iptables-nft", true, func(h *netlab.Host) error {
			_, err := h.Run("iptables-nft", "-w", "-A", "INPUT", "-p", "vrrp", "-j", "DROP")
			return err
		}, []string{"iptables-nft -w -t filter -I INPUT 1 -i eth0 -s 198.51.100.1 -d 198.51.100.2 -p vrrp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newFixLab(t, append(tc.programs, "nft", "iptables-legacy")...)
			l.start(t, tc.unicast)
			if err := tc.stage(l.b); err != nil {
				t.Fatal(err)
			}
			text := l.repair(t, tc.backend, l.dump)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("printed plan lacks %q", w)
				}
			}
		})
	}
}

// TestFixFirewallIPv6: VRRPv3 over IPv6 (adverts from link-local addresses
// to ff02::12), dropped on b by native nftables and by ip6tables-legacy.
func TestFixFirewallIPv6(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, backend string
		stage         func(h *netlab.Host) error
		want          string
	}{
		{"nft", "nftables", func(h *netlab.Host) error {
			return h.NftScript("table ip6 filter {\n chain input {\n  type filter hook input priority filter; policy accept;\n  ip6 daddr ff02::/16 meta l4proto vrrp drop\n }\n}\n")
		}, `nft 'insert rule ip6 filter input position 2 iifname "eth0" ip6 daddr ff02::12 meta l4proto vrrp accept comment "vrrpdoctor: allow VRRP"'`},
		{"ip6tables-legacy", "iptables-legacy", func(h *netlab.Host) error {
			_, err := h.Ip6tablesLegacy("-A", "INPUT", "-p", "vrrp", "-j", "DROP")
			return err
		}, "ip6tables-legacy -w -t filter -I INPUT 1 -i eth0 -d ff02::12 -p vrrp -m comment --comment 'vrrpdoctor: allow VRRP' -j ACCEPT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newFixLab(t, "nft", "iptables-legacy", "ip6tables-legacy")
			l.start(t, false, true)
			if err := tc.stage(l.b); err != nil {
				t.Fatal(err)
			}
			text := l.repair(t, tc.backend, l.dump)
			if !strings.Contains(text, tc.want) {
				t.Errorf("printed plan lacks %q", tc.want)
			}
		})
	}
}

// TestFixFirewallUnknown: a rate limit in the chain makes the verdict
// undecidable: fix-firewall refuses (exit 2) and says why; with --force it
// places the accept before the undecidable rule and the live check passes.
func TestFixFirewallUnknown(t *testing.T) {
	t.Parallel()
	l := newFixLab(t, "nft", "iptables-legacy")
	l.start(t, false)
	if err := l.b.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy drop;\n  iifname \"lo\" accept\n  meta l4proto vrrp limit rate 1/minute accept\n }\n}\n"); err != nil {
		t.Fatal(err)
	}
	l.holders(t, 20*time.Second, l.a, l.b)
	before := l.dump(t)
	r := l.json(t, 2, "--apply")
	if r.Status != "refused" || len(r.Plan.Refused) == 0 || !strings.Contains(r.Plan.Refused[0], "cannot decide") {
		t.Errorf("without --force: %+v", r)
	}
	if l.dump(t) != before {
		t.Fatal("a refused fix changed the ruleset")
	}
	rf := l.json(t, 0, "--apply", "--force")
	if rf.Status != "applied" || rf.Outcome == nil || len(rf.Outcome.Added) != 1 {
		t.Fatalf("with --force: %+v", rf)
	}
	l.holders(t, 5*time.Second, l.a)
	l.json(t, 0, "--undo")
	if l.dump(t) != before {
		t.Error("after --undo the ruleset differs from before")
	}
}

// TestFixFirewallOutput: b is the master and its own adverts are dropped on
// the way out (nft output chain, iptables-legacy OUTPUT): a stops hearing
// it and takes the VIP too. The fix is an outgoing rule on b.
func TestFixFirewallOutput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, backend string
		stage         func(h *netlab.Host) error
		want          string
	}{
		{"nft", "nftables", func(h *netlab.Host) error {
			return h.NftScript("table inet filter {\n chain output {\n  type filter hook output priority filter; policy accept;\n  meta l4proto vrrp drop\n }\n}\n")
		}, `nft 'insert rule inet filter output position 2 oifname "eth0" ip daddr 224.0.0.18 meta l4proto vrrp accept comment "vrrpdoctor: allow VRRP"'`},
		{"iptables-legacy", "iptables-legacy", func(h *netlab.Host) error {
			_, err := h.IptablesLegacy("-P", "OUTPUT", "DROP")
			return err
		}, "iptables-legacy -w -t filter -A OUTPUT -o eth0 -d 224.0.0.18 -p vrrp -m comment --comment 'vrrpdoctor: allow VRRP' -j ACCEPT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newFixLab(t, "nft", "iptables-legacy")
			l.bMaster = true
			l.start(t, false)
			if err := tc.stage(l.b); err != nil {
				t.Fatal(err)
			}
			text := l.repair(t, tc.backend, l.dump)
			if !strings.Contains(text, tc.want) {
				t.Errorf("printed plan lacks %q", tc.want)
			}
		})
	}
}

// TestFixFirewallRollsBack: b's nft input chain drops VRRP, and strict
// rp_filter (the route back to a goes through another interface) drops the
// adverts too, before netfilter's input hook. The evaluator accepts the fix,
// but the live check sees a's adverts on the wire and none at the socket:
// --apply removes what it added (exit 1, rolled-back) and the ruleset is
// as before.
func TestFixFirewallRollsBack(t *testing.T) {
	t.Parallel()
	l := newFixLab(t, "nft", "iptables-legacy")
	l.start(t, false)
	b := l.b
	if _, err := b.Run("ip", "link", "add", "other0", "type", "veth", "peer", "name", "other1"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"link", "set", "other0", "up"}, {"link", "set", "other1", "up"}, {"route", "add", "198.51.100.1/32", "dev", "other0"}} {
		if _, err := b.Run("ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"net/ipv4/conf/all/rp_filter", "net/ipv4/conf/eth0/rp_filter"} {
		if err := b.Sysctl(k, "1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy accept;\n  meta l4proto vrrp drop\n }\n}\n"); err != nil {
		t.Fatal(err)
	}
	l.holders(t, 20*time.Second, l.a, l.b)
	before := l.dump(t)
	r := l.json(t, 1, "--apply")
	if r.Status != "rolled-back" || r.Outcome == nil || !r.Outcome.RolledBack || len(r.Outcome.Delivery) != 1 ||
		r.Outcome.Delivery[0].Wire < 2 || r.Outcome.Delivery[0].Socket != 0 || !strings.Contains(r.Error, "do not reach the VRRP socket") {
		t.Errorf("apply: %+v", r)
	}
	if after := l.dump(t); after != before {
		t.Errorf("after the rollback the ruleset differs:\n%s\n---\n%s", before, after)
	}
	l.holders(t, 2*time.Second, l.a, l.b)
}

// TestFixFirewallNothingToDo: a firewall that already lets VRRP through
// gets nothing.
func TestFixFirewallNothingToDo(t *testing.T) {
	t.Parallel()
	l := newFixLab(t, "nft")
	l.start(t, false)
	if err := l.b.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy drop;\n  meta l4proto vrrp accept\n  iifname \"lo\" accept\n }\n}\n"); err != nil {
		t.Fatal(err)
	}
	l.holders(t, 10*time.Second, l.a)
	before := l.dump(t)
	r := l.json(t, 0, "--apply")
	if r.Status != "nothing-to-do" || r.Outcome != nil {
		t.Errorf("apply: %+v", r)
	}
	if l.dump(t) != before {
		t.Error("the ruleset changed")
	}
}

// TestFixFirewallRefusesElsewhere: --backend naming another backend than
// the one that drops is refused (exit 2): its accept would not be final.
func TestFixFirewallRefusesElsewhere(t *testing.T) {
	t.Parallel()
	l := newFixLab(t, "nft", "iptables-nft")
	l.start(t, false)
	if err := l.b.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy accept;\n  meta l4proto vrrp drop\n }\n}\n"); err != nil {
		t.Fatal(err)
	}
	l.holders(t, 20*time.Second, l.a, l.b)
	before := l.dump(t)
	r := l.json(t, 2, "--apply", "--backend", "iptables-nft")
	if r.Status != "refused" || len(r.Plan.Refused) == 0 || !strings.Contains(r.Plan.Refused[0], "not final") {
		t.Errorf("report %+v", r)
	}
	if l.dump(t) != before {
		t.Error("a refused fix changed the ruleset")
	}
}
