package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// nodeWant is what check must report on one node: the exit status, findings
// that must be there ("id" or "id/severity"), findings that must not, and
// text one of the summaries must hold.
type nodeWant struct {
	exit int
	ids  []string
	not  []string
	text string
}

func (w nodeWant) verify(t *testing.T, node string, r checkJSON, raw string) {
	t.Helper()
	matrixRow(t, node, w.String(), r)
	if ps := w.problems(node, r); len(ps) > 0 {
		for _, p := range ps {
			t.Error(p)
		}
		t.Logf("%s:\n%s", node, raw)
	}
}

// String is the expectation as a matrix cell.
func (w nodeWant) String() string {
	s := fmt.Sprintf("exit %d: %s", w.exit, strings.Join(w.ids, " "))
	if len(w.not) > 0 {
		s += ", not " + strings.Join(w.not, " ")
	}
	return s
}

// problems lists how r differs from w.
func (w nodeWant) problems(node string, r checkJSON) []string {
	var ps []string
	if r.ExitCode != w.exit {
		ps = append(ps, fmt.Sprintf("%s: exit %d, want %d (findings %v)", node, r.ExitCode, w.exit, r.ids()))
	}
	have := r.ids()
	has := func(want string) bool {
		return slices.ContainsFunc(have, func(h string) bool { return h == want || strings.HasPrefix(h, want+"/") })
	}
	for _, id := range w.ids {
		if !has(id) {
			ps = append(ps, fmt.Sprintf("%s: no %s in %v", node, id, have))
		}
	}
	for _, id := range w.not {
		if has(id) {
			ps = append(ps, fmt.Sprintf("%s: unexpected %s in %v", node, id, have))
		}
	}
	if w.text != "" && !slices.ContainsFunc(r.Findings, func(f checkFinding) bool { return strings.Contains(f.Summary, w.text) }) {
		ps = append(ps, fmt.Sprintf("%s: no summary holds %q", node, w.text))
	}
	return ps
}

// defaultInstance is node i's (0: a, 1: b) instance of the check pair:
// VRRPv3, 250 ms, VRID 51, priorities 150 and 100.
func defaultInstance(i int) netlab.VRRPInstance {
	return netlab.VRRPInstance{Interface: "eth0", VRID: 51, Version: 3, Priority: 150 - 50*i, AdvertInt: 250 * time.Millisecond, VIPs: []string{vip.String() + "/24"}}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckScenarios stages a fault (or none) with real keepalived and the
// tools a user has, and runs check on the nodes: the matrix of issue 6.
func TestCheckScenarios(t *testing.T) {
	t.Parallel()
	for _, sc := range []struct {
		name     string
		programs []string
		inst     func(i int, in *netlab.VRRPInstance)
		// noKeepalivedB leaves b without keepalived (setup starts what it
		// wants there).
		noKeepalivedB bool
		// before runs before keepalived starts, setup after.
		before   func(t *testing.T, p *checkPair)
		setup    func(t *testing.T, p *checkPair)
		holders  string // who holds the VIP before the check: "a", "b", "ab"; "" skips the wait
		args     func(p *checkPair, node string) []string
		a, b     *nodeWant
		either   *nodeWant // must hold on a or on b
		combine  *nodeWant
		noSecret string // must not be in any JSON report
		// more checks the reports further (nil when that node was not
		// checked).
		more func(t *testing.T, p *checkPair, a, b *checkJSON)
	}{
		{
			name: "output-drop",
			inst: func(i int, in *netlab.VRRPInstance) { in.Priority = 100 + 50*i },
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "MASTER"))
				_, err := p.b.Iptables("-A", "OUTPUT", "-p", "vrrp", "-j", "DROP")
				must(t, err)
			},
			programs: []string{"iptables"},
			holders:  "ab",
			b:        &nodeWant{exit: 2, ids: []string{"firewall-output-drop/critical", "split-brain/critical"}, not: []string{"vip-held-by-backup"}, text: "drops this node's VRRP adverts leaving eth0: rule `-A OUTPUT -p vrrp -j DROP` in chain OUTPUT"},
			a:        &nodeWant{exit: 0, ids: []string{"healthy"}},
			combine:  &nodeWant{exit: 2, ids: []string{"split-brain/critical"}, text: "b holds 198.51.100.100 but none of its adverts left it"},
		},
		{
			name: "rp-filter",
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				b := p.b
				_, err := b.Run("ip", "link", "add", "other0", "type", "veth", "peer", "name", "other1")
				must(t, err)
				for _, args := range [][]string{{"link", "set", "other0", "up"}, {"link", "set", "other1", "up"}, {"route", "add", addrA.String() + "/32", "dev", "other0"}} {
					_, err := b.Run("ip", args...)
					must(t, err)
				}
				must(t, b.Sysctl("net/ipv4/conf/all/rp_filter", "1"))
				must(t, b.Sysctl("net/ipv4/conf/eth0/rp_filter", "1"))
			},
			holders: "ab",
			b:       &nodeWant{exit: 2, ids: []string{"rp-filter-drop/critical", "split-brain"}, not: []string{"firewall-input-drop"}, text: "rp_filter (strict) drops them"},
			a:       &nodeWant{exit: 2, ids: []string{"split-brain"}, text: "it does not hear us"},
		},
		{
			// Every second advert dropped: never two in a row, so b stays
			// backup, but the loss shows between wire and socket.
			name:     "partial-loss",
			programs: []string{"nft"},
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				must(t, p.b.NftScript("table ip lossy {\n chain input {\n  type filter hook input priority 0; policy accept;\n  ip protocol vrrp numgen inc mod 2 0 drop\n }\n}\n"))
			},
			holders: "a",
			b:       &nodeWant{exit: 1, ids: []string{"adverts-not-delivered/warning"}, not: []string{"split-brain", "firewall-input-drop"}, text: "seen on the wire did not reach the VRRP socket"},
		},
		{
			// A drop the evaluator cannot decide (numgen: it depends on a
			// counter), taking every advert: the loss is critical and says
			// why the firewall could not be blamed with certainty.
			name:     "undecidable-drop",
			programs: []string{"nft"},
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				must(t, p.b.NftScript("table ip lossy {\n chain input {\n  type filter hook input priority 0; policy accept;\n  ip protocol vrrp numgen inc mod 1 0 drop\n }\n}\n"))
			},
			holders: "ab",
			b:       &nodeWant{exit: 2, ids: []string{"adverts-not-delivered/critical", "split-brain"}, text: "none the VRRP socket"},
		},
		{
			name: "peer-stopped",
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				must(t, p.ka.Stop(10*time.Second))
			},
			holders: "b",
			b:       &nodeWant{exit: 0, ids: []string{"healthy"}, text: "this node is MASTER for VRID 51"},
		},
		{
			name: "keepalived-stopped",
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				must(t, p.kb.Stop(10*time.Second))
			},
			holders: "a",
			args: func(p *checkPair, node string) []string {
				return []string{"-c", p.kb.ConfigPath}
			},
			b: &nodeWant{exit: 2, ids: []string{"keepalived-not-running/critical"}, not: []string{"healthy"}},
		},
		{
			name: "both-stopped",
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				must(t, p.ka.Stop(10*time.Second))
				must(t, p.kb.Stop(10*time.Second))
				// keepalived removes the address as it stops; wait for it.
				must(t, netlab.WaitFor(10*time.Second, func() (bool, error) {
					h, err := p.lab.Holders(vip)
					return len(h) == 0, err
				}))
			},
			args: func(p *checkPair, node string) []string {
				if node == "a" {
					return []string{"-c", p.ka.ConfigPath}
				}
				return []string{"-c", p.kb.ConfigPath}
			},
			// One fault, one finding: the pair's no-master names the
			// stopped daemons (the nodes' keepalived-not-running in covers).
			a:       &nodeWant{exit: 2, ids: []string{"keepalived-not-running/critical"}},
			combine: &nodeWant{exit: 2, ids: []string{"no-master/critical"}, not: []string{"keepalived-not-running"}, text: "neither a nor b is master for VRID 51: nobody holds the virtual addresses. No VRRP daemon runs on a or on b."},
		},
		{
			name: "interface-down",
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				must(t, p.b.LinkDown("eth0"))
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "FAULT"))
			},
			b: &nodeWant{exit: 2, ids: []string{"interface-down/critical"}, text: "interface eth0 is administratively down"},
		},
		{
			name: "auth-mismatch",
			inst: func(i int, in *netlab.VRRPInstance) {
				in.Version, in.AdvertInt, in.AuthPass = 2, time.Second, []string{"secret1", "secret2"}[i]
			},
			holders: "ab",
			// The two keepalived masters take turns (each one's adverts,
			// discarded, re-arm the other's timer): the one silent during the
			// watch holds the VIP and refuses the master's adverts, the one
			// advertising hears nothing. Either node shows the split brain, the
			// combined report always does.
			either:   &nodeWant{exit: 2, ids: []string{"auth-mismatch/warning", "split-brain/critical"}, text: "uses another VRRPv2 password than this node"},
			combine:  &nodeWant{exit: 2, ids: []string{"split-brain", "auth-mismatch"}, text: "both a and b are master for VRID 51"},
			noSecret: "secret",
		},
		{
			name:    "version-mismatch",
			inst:    func(i int, in *netlab.VRRPInstance) { in.Version, in.AdvertInt = 2+i, time.Second },
			holders: "ab",
			either:  &nodeWant{exit: 2, ids: []string{"version-mismatch/warning", "split-brain/critical"}, text: "this node is configured for VRRPv"},
			combine: &nodeWant{exit: 2, ids: []string{"split-brain", "version-mismatch"}},
		},
		{
			name: "interval-mismatch",
			inst: func(i int, in *netlab.VRRPInstance) { in.AdvertInt = time.Duration(250*(i+1)) * time.Millisecond },
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
			},
			holders: "a",
			b:       &nodeWant{exit: 1, ids: []string{"interval-mismatch/warning"}, not: []string{"split-brain"}, text: "advertises every 250ms, this node is configured for 500ms"},
			combine: &nodeWant{exit: 1, ids: []string{"healthy", "interval-mismatch"}},
		},
		{
			name: "priority-tie",
			inst: func(i int, in *netlab.VRRPInstance) { in.Priority = 100 },
			// keepalived keeps whichever became master first: the backup
			// (either) hears a master of its own priority.
			setup: func(t *testing.T, p *checkPair) {
				must(t, netlab.WaitFor(15*time.Second, func() (bool, error) {
					h, err := p.lab.Holders(vip)
					return len(h) == 1, err
				}))
				time.Sleep(time.Second)
			},
			either:  &nodeWant{exit: 1, ids: []string{"priority-tie/warning"}, text: "both have priority 100"},
			combine: &nodeWant{exit: 1, ids: []string{"priority-tie", "healthy"}},
		},
		{
			name: "vip-held-by-backup",
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				must(t, p.b.AddAddr("eth0", vip.String()+"/24"))
			},
			holders: "ab",
			b:       &nodeWant{exit: 2, ids: []string{"vip-held-by-backup/critical"}, not: []string{"split-brain"}, text: "this node holds 198.51.100.100 but does not advertise VRID 51, while 198.51.100.1 is master"},
		},
		{
			// One VRID, b protects one address more than a. keepalived
			// 2.2.7 discards adverts whose address list differs from its own
			// (count: "received an invalid ip number count"), so both become
			// master. Mostly both advertise and each reports split-brain and
			// vip-mismatch; sometimes they take turns as in auth-mismatch (the
			// silent one holds the VIP: vip-held-by-backup and vip-mismatch;
			// the other hears nothing: healthy). The combined report always
			// has the split brain and the configuration difference.
			name: "vip-mismatch",
			inst: func(i int, in *netlab.VRRPInstance) {
				if i == 1 {
					in.VIPs = append(in.VIPs, "198.51.100.101/24")
				}
			},
			holders: "ab",
			either:  &nodeWant{exit: 2, ids: []string{"vip-mismatch/warning"}, not: []string{"vrid-collision"}, text: "advertises other virtual addresses for VRID 51 than this node"},
			combine: &nodeWant{exit: 2, ids: []string{"vip-mismatch/warning", "split-brain/critical"}, text: "the virtual addresses differs: 198.51.100.100 on a, 198.51.100.100, 198.51.100.101 on b"},
			more: func(t *testing.T, p *checkPair, a, b *checkJSON) {
				vipEvidence(t, "a", a, "peer 198.51.100.2", "198.51.100.100", "198.51.100.100, 198.51.100.101")
				vipEvidence(t, "b", b, "peer 198.51.100.1", "198.51.100.100, 198.51.100.101", "198.51.100.100")
			},
		},
		{
			// Same count, one address differs ("ip address associated with
			// VRID 51 not present in MASTER advert"): the same.
			name: "vip-mismatch-same-count",
			inst: func(i int, in *netlab.VRRPInstance) {
				in.VIPs = append(in.VIPs, []string{"198.51.100.102/24", "198.51.100.101/24"}[i])
			},
			holders: "ab",
			either:  &nodeWant{exit: 2, ids: []string{"vip-mismatch/warning"}, not: []string{"vrid-collision"}, text: "advertises other virtual addresses for VRID 51 than this node"},
			combine: &nodeWant{exit: 2, ids: []string{"vip-mismatch/warning", "split-brain/critical"}, text: "the virtual addresses differs: 198.51.100.100, 198.51.100.102 on a, 198.51.100.100, 198.51.100.101 on b"},
			more: func(t *testing.T, p *checkPair, a, b *checkJSON) {
				vipEvidence(t, "a", a, "peer 198.51.100.2", "198.51.100.100, 198.51.100.102", "198.51.100.100, 198.51.100.101")
				vipEvidence(t, "b", b, "peer 198.51.100.1", "198.51.100.100, 198.51.100.101", "198.51.100.100, 198.51.100.102")
			},
		},
		{
			name:     "ttl-rewritten",
			programs: []string{"nft"},
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.a.NftScript("table ip mangle {\n chain postrouting {\n  type filter hook postrouting priority mangle; policy accept;\n  ip protocol vrrp ip ttl set 64\n }\n}\n"))
			},
			holders: "ab",
			b:       &nodeWant{exit: 2, ids: []string{"ttl-not-255/warning", "split-brain"}, text: "arrive with TTL 64, not 255"},
		},
		{
			name: "unicast-healthy",
			inst: func(i int, in *netlab.VRRPInstance) {
				in.UnicastSrc, in.UnicastPeers = []string{addrA.String(), addrB.String()}[i], []string{[]string{addrB.String(), addrA.String()}[i]}
			},
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
			},
			holders: "a",
			a:       &nodeWant{exit: 0, ids: []string{"healthy"}},
			b:       &nodeWant{exit: 0, ids: []string{"healthy"}},
			combine: &nodeWant{exit: 0, ids: []string{"healthy"}},
		},
		{
			name: "unicast-vs-multicast",
			inst: func(i int, in *netlab.VRRPInstance) {
				if i == 0 {
					in.UnicastSrc, in.UnicastPeers = addrA.String(), []string{addrB.String()}
				}
			},
			holders: "ab",
			a:       &nodeWant{exit: 2, ids: []string{"unicast-peer-misconfig", "split-brain"}, not: []string{"adverts-not-delivered"}},
			b:       &nodeWant{exit: 2, ids: []string{"unicast-peer-misconfig", "split-brain"}, not: []string{"adverts-not-delivered"}, text: "sends unicast adverts to 198.51.100.2 while this node listens on the multicast group"},
			combine: &nodeWant{exit: 2, ids: []string{"split-brain", "unicast-peer-misconfig"}},
		},
		{
			name: "ipv6-healthy",
			inst: func(i int, in *netlab.VRRPInstance) { in.VIPs = []string{"2001:db8::100/64"} },
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				time.Sleep(time.Second) // past b's first adverts before it heard a
			},
			a:       &nodeWant{exit: 0, ids: []string{"healthy"}, text: "MASTER"},
			b:       &nodeWant{exit: 0, ids: []string{"healthy"}, text: "BACKUP"},
			combine: &nodeWant{exit: 0, ids: []string{"healthy"}},
		},
		{
			name:     "ipv6-input-drop",
			programs: []string{"ip6tables"},
			inst:     func(i int, in *netlab.VRRPInstance) { in.VIPs = []string{"2001:db8::100/64"} },
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				_, err := p.b.Ip6tables("-A", "INPUT", "-d", "ff02::12", "-j", "DROP")
				must(t, err)
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "MASTER"))
			},
			b: &nodeWant{exit: 2, ids: []string{"firewall-input-drop/critical", "split-brain/critical"}, text: "rule `-A INPUT -d ff02::12/128 -j DROP` in chain INPUT of table ip6 filter (iptables-nft"},
			a: &nodeWant{exit: 2, ids: []string{"split-brain/critical"}, text: "it does not hear us"},
		},
		{
			name:          "vrrpdoctor-run",
			noKeepalivedB: true,
			setup: func(t *testing.T, p *checkPair) {
				conf, err := netlab.KeepalivedConfig{RouterID: "b", Instances: []netlab.VRRPInstance{defaultInstance(1)}}.Render()
				must(t, err)
				path := p.lab.Path("b-run.conf")
				must(t, os.WriteFile(path, []byte(conf), 0o644))
				proc, err := p.b.Start(vrrpdoctor(t), "run", "-c", path)
				must(t, err)
				must(t, proc.WaitLog(15*time.Second, "BACKUP"))
			},
			holders: "a",
			a:       &nodeWant{exit: 0, ids: []string{"healthy"}},
			b:       &nodeWant{exit: 0, ids: []string{"healthy"}, not: []string{"keepalived-not-running"}},
		},
		{
			// Both routers configured as address owner (priority 255).
			name: "owner-conflict",
			inst: func(i int, in *netlab.VRRPInstance) { in.Priority = 255 },
			setup: func(t *testing.T, p *checkPair) {
				must(t, netlab.WaitFor(15*time.Second, func() (bool, error) {
					h, err := p.lab.Holders(vip)
					return len(h) == 1, err
				}))
				time.Sleep(time.Second)
			},
			// One of the two owners stays master (which one varies from run
			// to run). keepalived 2.2.7 either keeps 255 on both — the
			// backup hears a second owner; the master hears nothing and
			// reports healthy — or, when a master hears the other owner,
			// logs "both configured as address owner" and lowers itself to
			// 254: then the backup owner hears a 254 master and the master
			// sends 254 while configured 255, and both say owner-conflict.
			either:  &nodeWant{exit: 2, ids: []string{"owner-conflict/critical"}, not: []string{"healthy"}, text: "own the virtual addresses"},
			combine: &nodeWant{exit: 2, ids: []string{"owner-conflict/critical"}},
			more: func(t *testing.T, p *checkPair, a, b *checkJSON) {
				if a.find("owner-conflict") != nil && b.find("owner-conflict") != nil {
					return // lowered to 254: each node tells
				}
				// The other node: the master, healthy at priority 255.
				if a.find("owner-conflict") != nil {
					a = b
				}
				if f := a.find("healthy"); a.ExitCode != 0 || f == nil || !strings.Contains(f.Summary, "MASTER for VRID 51 on eth0 (priority 255)") {
					t.Errorf("the master: exit %d, %v", a.ExitCode, a.ids())
				}
			},
		},
		{
			// a's own OUTPUT firewall drops its adverts, so nothing reaches
			// the wire; b does not advertise either (its instance is in FAULT:
			// the tracked interface dum0 is down). A backup that hears nothing
			// takes over instead, and then only a's report (or --combine)
			// shows the drop: see output-drop.
			name:     "no-adverts-received",
			programs: []string{"iptables"},
			inst: func(i int, in *netlab.VRRPInstance) {
				if i == 1 {
					in.Extra = []string{"track_interface { dum0 }"}
				}
			},
			before: func(t *testing.T, p *checkPair) {
				// A veth pair left down (no dummy module here).
				_, err := p.b.Run("ip", "link", "add", "dum0", "type", "veth", "peer", "name", "dum1")
				must(t, err)
				_, err = p.a.Iptables("-A", "OUTPUT", "-p", "vrrp", "-j", "DROP")
				must(t, err)
			},
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitLog(15*time.Second, "(VI_51): entering FAULT state (interface dum0 down)"))
				must(t, p.ka.WaitState(15*time.Second, "VI_51", "MASTER"))
			},
			holders: "a",
			b:       &nodeWant{exit: 1, ids: []string{"no-adverts-received/warning"}, not: []string{"healthy", "split-brain"}, text: "nothing advertises VRID 51 on eth0"},
			a:       &nodeWant{exit: 2, ids: []string{"firewall-output-drop/critical"}, text: "rule `-A OUTPUT -p vrrp -j DROP`"},
			more: func(t *testing.T, p *checkPair, a, b *checkJSON) {
				f := b.find("no-adverts-received")
				if f == nil {
					return
				}
				for _, want := range []string{"its own OUTPUT firewall drops its adverts", "multicast"} {
					if !strings.Contains(f.Explanation, want) {
						t.Errorf("b: no-adverts-received explanation lacks %q: %s", want, f.Explanation)
					}
				}
				for _, want := range []string{"Run vrrpdoctor check on the peer", "unicast_peer"} {
					if !strings.Contains(f.Fix, want) {
						t.Errorf("b: no-adverts-received fix lacks %q: %s", want, f.Fix)
					}
				}
				if ev := f.evidence("capture"); !strings.Contains(ev, "no adverts for VRID 51 on eth0's wire") {
					t.Errorf("b: no-adverts-received capture evidence %q", ev)
				}
			},
		},
		{
			// The host refuses more multicast memberships
			// (net.ipv4.igmp_max_memberships, exhausted on hosts with many
			// groups): keepalived's IP_ADD_MEMBERSHIP fails with ENOBUFS and
			// it runs without the group, so a's adverts are not delivered.
			name: "not-member-of-group",
			before: func(t *testing.T, p *checkPair) {
				must(t, p.b.Sysctl("net/ipv4/igmp_max_memberships", "0"))
			},
			// keepalived 2.2.7 is then left without a VRRP socket: a silent
			// backup that never takes over, so a alone holds the address.
			holders: "a",
			b:       &nodeWant{exit: 2, ids: []string{"not-member-of-group/critical"}, text: "eth0 has not joined the VRRP group 224.0.0.18 although a VRRP daemon runs"},
			more: func(t *testing.T, p *checkPair, a, b *checkJSON) {
				f := b.find("not-member-of-group")
				if f == nil {
					return
				}
				if ev := f.evidence("this check's own join"); !strings.Contains(ev, "join 224.0.0.18: no buffer space available") {
					t.Errorf("b: not-member-of-group: own join evidence %q", ev)
				}
				if !strings.Contains(f.Fix, "net.ipv4.igmp_max_memberships") {
					t.Errorf("b: not-member-of-group fix: %s", f.Fix)
				}
				if !slices.ContainsFunc(b.Skipped, func(s string) bool { return strings.Contains(s, "taps on eth0 did not run") }) {
					t.Errorf("b: skipped %q does not say the taps did not run", b.Skipped)
				}
			},
		},
		{
			// check -c on a copy of b's configuration (auth_pass) that
			// everyone can read: 0644 in a directory everyone can search (the
			// lab writes 0600 in a 0700 directory). The pair is healthy.
			name: "config-insecure",
			inst: func(i int, in *netlab.VRRPInstance) {
				in.Version, in.AdvertInt, in.AuthPass = 2, time.Second, "Zq7pw2rd"
			},
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				conf, err := os.ReadFile(p.kb.ConfigPath)
				must(t, err)
				path := insecureConfPath(p)
				must(t, os.Mkdir(filepath.Dir(path), 0o755))
				t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(path)) })
				must(t, os.Chmod(filepath.Dir(path), 0o755))
				must(t, os.WriteFile(path, conf, 0o644))
				must(t, os.Chmod(path, 0o644))
			},
			holders: "a",
			args: func(p *checkPair, node string) []string {
				return []string{"-c", insecureConfPath(p)}
			},
			b:        &nodeWant{exit: 1, ids: []string{"config-insecure/warning", "healthy"}, not: []string{"split-brain", "auth-mismatch"}, text: "has 1 security problem"},
			noSecret: "Zq7pw2rd",
			more: func(t *testing.T, p *checkPair, a, b *checkJSON) {
				if b == nil {
					return
				}
				if f := b.find("config-insecure"); f != nil && !strings.Contains(f.evidence("problem"), insecureConfPath(p)+" holds auth_pass and is readable by everyone (mode 0644)") {
					t.Errorf("b: config-insecure evidence %q", f.evidence("problem"))
				}
			},
		},
		{
			// check -c on an edited configuration with an error, beside the
			// keepalived that runs the good one.
			name: "config-error",
			setup: func(t *testing.T, p *checkPair) {
				must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
				good, err := os.ReadFile(p.kb.ConfigPath)
				must(t, err)
				bad := strings.Replace(string(good), "priority 100", "priority 300", 1)
				if bad == string(good) {
					t.Fatalf("no priority 100 line in %s:\n%s", p.kb.ConfigPath, good)
				}
				must(t, os.WriteFile(p.lab.Path("b-bad.conf"), []byte(bad), 0o644))
			},
			holders: "a",
			args: func(p *checkPair, node string) []string {
				return []string{"-c", p.lab.Path("b-bad.conf")}
			},
			b: &nodeWant{exit: 2, ids: []string{"config-error/critical"}, not: []string{"split-brain"}, text: "has 1 error that keepalived refuses"},
			more: func(t *testing.T, p *checkPair, a, b *checkJSON) {
				f := b.find("config-error")
				if f == nil {
					return
				}
				path := p.lab.Path("b-bad.conf")
				raw, err := os.ReadFile(path)
				must(t, err)
				line, col := 0, 0
				for i, l := range strings.Split(string(raw), "\n") {
					if c := strings.Index(l, "priority 300"); c >= 0 {
						line, col = i+1, c+1
					}
				}
				want := fmt.Sprintf("%s:%d:%d: priority 300 out of range 1-255", path, line, col)
				if ev := f.evidence("error"); ev != want {
					t.Errorf("b: config-error evidence %q, want %q", ev, want)
				}
			},
		},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			p := newCheckLab(t, sc.programs...)
			if sc.before != nil {
				sc.before(t, p)
			}
			for i, h := range []*netlab.Host{p.a, p.b} {
				if i == 1 && sc.noKeepalivedB {
					continue
				}
				in := defaultInstance(i)
				if sc.inst != nil {
					sc.inst(i, &in)
				}
				k, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{in}})
				must(t, err)
				if i == 0 {
					p.ka = k
				} else {
					p.kb = k
				}
			}
			if sc.setup != nil {
				sc.setup(t, p)
			}
			switch sc.holders {
			case "a":
				p.waitHolders(t, p.a)
			case "b":
				p.waitHolders(t, p.b)
			case "ab":
				p.waitHolders(t, p.a, p.b)
			}
			argsOf := func(node string) []string {
				if sc.args == nil {
					return nil
				}
				return sc.args(p, node)
			}
			type result struct {
				r   checkJSON
				raw string
			}
			res := map[string]result{}
			done := make(chan struct{})
			go func() {
				defer close(done)
				if sc.a != nil || sc.combine != nil || sc.either != nil {
					r, raw, _ := checkNode(t, p.lab, p.a, p.envA, "a", argsOf("a")...)
					res["a"] = result{r, raw}
				}
			}()
			var rb result
			if sc.b != nil || sc.combine != nil || sc.either != nil {
				r, raw, took := checkNode(t, p.lab, p.b, p.envB, "b", argsOf("b")...)
				rb = result{r, raw}
				t.Logf("check on b took %s", took.Round(time.Millisecond))
			}
			<-done
			res["b"] = rb
			if sc.a != nil {
				sc.a.verify(t, "a", res["a"].r, res["a"].raw)
			}
			if sc.b != nil {
				sc.b.verify(t, "b", res["b"].r, res["b"].raw)
			}
			if w := sc.either; w != nil {
				pa, pb := w.problems("a", res["a"].r), w.problems("b", res["b"].r)
				matrixRow(t, "a", "a or b: "+w.String(), res["a"].r)
				matrixRow(t, "b", "a or b: "+w.String(), res["b"].r)
				if len(pa) > 0 && len(pb) > 0 {
					t.Errorf("neither node as wanted: %v; %v\na:\n%s\nb:\n%s", pa, pb, res["a"].raw, res["b"].raw)
				}
			}
			if sc.more != nil {
				var ra, rb *checkJSON
				if x, ok := res["a"]; ok && x.raw != "" {
					ra = &x.r
				}
				if x := res["b"]; x.raw != "" {
					rb = &x.r
				}
				sc.more(t, p, ra, rb)
			}
			if sc.noSecret != "" {
				for n, x := range res {
					if strings.Contains(x.raw, sc.noSecret) {
						t.Errorf("%s: the password is in the JSON report", n)
					}
				}
			}
			if sc.combine != nil {
				c, raw := p.combine(t)
				sc.combine.verify(t, "combined", c, raw)
			}
		})
	}
}

// insecureConfPath is where the config-insecure scenario writes its
// world-readable configuration: a directory of the lab's own name under
// the system's temporary directory, which everyone can search.
func insecureConfPath(p *checkPair) string {
	return filepath.Join(os.TempDir(), filepath.Base(p.lab.Path(""))+"-insecure", "keepalived.conf")
}

// vipEvidence checks the vip-mismatch finding of node's report r (nil: not
// checked) shows both address lists.
func vipEvidence(t *testing.T, node string, r *checkJSON, peer, ours, theirs string) {
	t.Helper()
	if r == nil {
		return
	}
	f := r.find("vip-mismatch")
	if f == nil {
		return
	}
	if o, th := f.evidence("this node"), f.evidence(peer); o != ours || th != theirs {
		t.Errorf("%s: vip-mismatch evidence: this node %q, %s %q; want %q, %q", node, o, peer, th, ours, theirs)
	}
}

// TestCheckWithoutPrivileges: without CAP_NET_RAW and CAP_NET_ADMIN check
// still reads the configuration and the daemons, says what it skipped and
// why, and exits UNKNOWN (3).
func TestCheckWithoutPrivileges(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setpriv"); err != nil {
		msg := "setpriv not found: install the Debian package util-linux"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	p := newCheckPair(t, 3, 250*time.Millisecond)
	must(t, p.kb.WaitState(15*time.Second, "VI_51", "BACKUP"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := p.b.Command(ctx, "setpriv", "--bounding-set", "-net_raw,-net_admin", "--inh-caps", "-net_raw,-net_admin", vrrpdoctor(t), "check", "--json")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want 3\n%s\n%s", err, out.String(), errOut.String())
	}
	var r checkJSON
	must(t, json.Unmarshal(out.Bytes(), &r))
	matrixRow(t, "b (no CAP_NET_RAW/NET_ADMIN)", "exit 3: unknown, taps and firewall listed in skipped", r)
	joined := strings.Join(r.Skipped, "\n")
	for _, want := range []string{"no CAP_NET_RAW: wire and socket taps skipped", "firewall not read"} {
		if !strings.Contains(joined, want) {
			t.Errorf("skipped %q lacks %q", r.Skipped, want)
		}
	}
	if r.Status != "unknown" || len(r.Processes) != 1 || r.Processes[0].Config != p.kb.ConfigPath {
		t.Errorf("status %s, processes %+v", r.Status, r.Processes)
	}
}

// TestCheckVRIDCollision: a third router on the segment, in another
// cluster, uses VRID 51 for an unrelated address.
func TestCheckVRIDCollision(t *testing.T) {
	t.Parallel()
	lab := netlabtest.New(t, "keepalived")
	vrrpdoctor(t)
	hosts, _, err := lab.LAN(3)
	must(t, err)
	var ks []*netlab.Keepalived
	for i, h := range hosts {
		in := defaultInstance(min(i, 1))
		if i == 2 {
			in.Priority, in.VIPs = 200, []string{"203.0.113.7/32"}
		}
		k, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{in}})
		must(t, err)
		ks = append(ks, k)
	}
	must(t, ks[2].WaitState(15*time.Second, "VI_51", "MASTER"))
	time.Sleep(time.Second)
	r, raw, _ := checkNode(t, lab, hosts[0], nil, "h1")
	nodeWant{exit: 2, ids: []string{"vrid-collision/critical"}, text: "advertises VRID 51 for unrelated addresses (203.0.113.7)"}.verify(t, "h1", r, raw)
}
