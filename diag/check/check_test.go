package check

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
)

const testdata = "../../testdata/check"

func readReport(t testing.TB, name string) *Report {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ReadJSON(f, name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ids(fs []diag.Finding) []string {
	var s []string
	for _, f := range fs {
		s = append(s, f.ID)
	}
	return s
}

func find(fs []diag.Finding, id string) *diag.Finding {
	for i := range fs {
		if fs[i].ID == id {
			return &fs[i]
		}
	}
	return nil
}

// TestLabReports judges again the facts of reports that check wrote in the
// lab (testdata/check/README.md) and checks the verdicts a user must get.
func TestLabReports(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
		code int
	}{
		{"healthy-a.json", []string{IDHealthy}, 0},
		{"healthy-b.json", []string{IDHealthy}, 0},
		{"input-drop-a.json", []string{IDSplitBrain}, 2},
		{"input-drop-b.json", []string{IDFirewallInputDrop, IDSplitBrain}, 2},
		{"firewalld-direct-a.json", []string{IDSplitBrain}, 2},
		{"firewalld-direct-b.json", []string{IDAcceptNotFinal, IDFirewallInputDrop, IDSplitBrain}, 2},
		{"output-drop-a.json", []string{IDHealthy}, 0},
		{"output-drop-b.json", []string{IDFirewallOutputDrop, IDSplitBrain}, 2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := readReport(t, tc.file)
			stored := ids(r.Findings)
			r.Findings = nil
			r.Finish()
			if got := ids(r.Findings); !slices.Equal(got, tc.want) || !slices.Equal(got, stored) {
				t.Errorf("findings %v (stored %v), want %v", got, stored, tc.want)
			}
			if r.ExitCode != tc.code || r.Status != diag.StatusName(tc.code) {
				t.Errorf("exit %d (%s), want %d", r.ExitCode, r.Status, tc.code)
			}
		})
	}
	// The backup of the classic case: the summary carries the evidence.
	r := readReport(t, "input-drop-b.json")
	sb := find(r.Findings, IDSplitBrain)
	for _, want := range []string{"This node is MASTER for VRID 51 and holds 198.51.100.100, but 198.51.100.1 advertises VRID 51 at priority 150",
		"reached eth0, 0 reached the VRRP socket: rule `-A INPUT -d 224.0.0.18/32 -j DROP` in chain INPUT of table ip filter (iptables-nft"} {
		if !strings.Contains(sb.Summary, want) {
			t.Errorf("split-brain summary %q lacks %q", sb.Summary, want)
		}
	}
	fd := find(r.Findings, IDFirewallInputDrop)
	if !strings.Contains(fd.Fix, "iptables -I INPUT 1 -i eth0 -d 224.0.0.18 -p 112 -j ACCEPT") {
		t.Errorf("fix:\n%s", fd.Fix)
	}
	anf := find(readReport(t, "firewalld-direct-b.json").Findings, IDAcceptNotFinal)
	if !strings.Contains(anf.Fix, `firewall-cmd --permanent --zone=public --add-rich-rule='rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'`) {
		t.Errorf("accept-not-final fix:\n%s", anf.Fix)
	}
}

// The combined reports' tests are in combine_test.go.

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

var (
	addrA = netip.MustParseAddr("198.51.100.1")
	addrB = netip.MustParseAddr("198.51.100.2")
	vip   = netip.MustParseAddr("198.51.100.100")
	group = netip.MustParseAddr("224.0.0.18")
)

// backup is the report of a healthy backup (b, priority 100) hearing its
// master (a, priority 150), VRRPv2, 1 s adverts, watched for 4 s.
func backup() *Report {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	yes := true
	master := Advertiser{Address: addrA, Adverts: 4, Versions: []int{2}, Priority: 150, Interval: 1, Auth: "none",
		VIPs: []netip.Addr{vip}, TTLs: []int{255}, Dsts: []netip.Addr{group}, Checksum: ChecksumCounts{Message: 4}, First: t0, Last: t0.Add(3 * time.Second)}
	return &Report{
		Schema: Schema, Node: "b", Time: t0,
		Config:    ConfigFacts{Path: "/etc/keepalived/keepalived.conf", Source: "process", Errors: []string{}},
		Processes: []Process{{PID: 42, Kind: "keepalived", Config: "/etc/keepalived/keepalived.conf"}},
		Interfaces: []Interface{{Name: "eth0", Exists: true, Up: true, LowerUp: true, Multicast: true, OperState: "up",
			Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}, JoinedVRRP4: &yes,
			RPFilter: &RPFilter{Mode: "off"}, Senders: []SenderCheck{{Sender: addrA, RouteBack: "eth0", Accepted: true}}}},
		Instances: []Instance{{
			Name: "VI_51", Pos: "/etc/keepalived/keepalived.conf:5:1", Interface: "eth0", VRID: 51, Family: 4, Version: 2, Priority: 100,
			State: "BACKUP", AdvertInt: 1, Auth: "none", VIPs: []netip.Addr{vip}, Group: group, Held: []HeldAddr{},
			Peers:       []Peer{{Advertiser: master, Socket: 4, Matched: 4}},
			FirewallIn:  []Verdict{{Direction: eval.In, Interface: "eth0", Src: addrA, Dst: group, Verdict: eval.Accept}},
			FirewallOut: []Verdict{{Direction: eval.Out, Interface: "eth0", Src: addrB, Dst: group, Verdict: eval.Accept}},
			Observed:    true,
		}},
		Capture: &CaptureInfo{Duration: 4, Interfaces: []CaptureIface{{Name: "eth0"}}},
	}
}

// master turns the backup report into this node being master.
func asMaster(r *Report) {
	in := &r.Instances[0]
	t0 := in.Peers[0].First
	in.Local = &Advertiser{Address: addrB, Adverts: 4, Versions: []int{2}, Priority: 100, Interval: 1, Auth: "none",
		VIPs: []netip.Addr{vip}, TTLs: []int{255}, Dsts: []netip.Addr{group}, First: t0, Last: t0.Add(3 * time.Second)}
	in.Held = []HeldAddr{{Addr: vip, Interface: "eth0"}}
}

var dropRule = &eval.RuleRef{Backend: "iptables-nft", Family: "ip", Table: "filter", Chain: "INPUT", Position: 3, Text: "-A INPUT -p vrrp -j DROP", Owner: "hand-written"}

// TestEvaluate stages each finding in the facts of a healthy backup and
// checks that it, with its severity, is reported, and that nothing else
// above ok is.
func TestEvaluate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stage  func(r *Report, in *Instance)
		id     string
		sev    diag.Severity
		others []string // further findings expected
		text   string   // in the summary
	}{
		{"healthy", func(*Report, *Instance) {}, IDHealthy, diag.SeverityOK, nil, "this node is BACKUP for VRID 51 on eth0; 198.51.100.1 is MASTER at priority 150 and 4 of its 4 adverts reached the VRRP socket"},
		{"healthy master", func(r *Report, in *Instance) { asMaster(r); in.Peers = nil }, IDHealthy, diag.SeverityOK, nil, "this node is MASTER for VRID 51 on eth0 (priority 100) and holds 198.51.100.100"},
		{"handover during the watch", func(r *Report, in *Instance) {
			asMaster(r)
			in.Held = nil
			t0 := in.Local.First
			in.Peers[0].First, in.Local.Last = t0.Add(2*time.Second), t0.Add(1900*time.Millisecond)
		}, IDHealthy, diag.SeverityOK, nil, "changed master during the watch (one after the other, not both at once): this node at priority 100 and 198.51.100.1 at priority 150; 198.51.100.1 advertised last"},
		{"config error", func(r *Report, _ *Instance) {
			r.Config.Errors = []string{"/etc/keepalived/keepalived.conf:7:3: priority 300: want 1..255"}
		}, IDConfigError, diag.SeverityCritical, nil, "has 1 error that keepalived refuses"},
		{"not running", func(r *Report, in *Instance) { r.Processes = nil }, IDKeepalivedNotRunning, diag.SeverityCritical, nil, "no VRRP daemon"},
		{"not running, VIP left", func(r *Report, in *Instance) {
			r.Processes = nil
			in.Held = []HeldAddr{{Addr: vip, Interface: "eth0"}}
		}, IDKeepalivedNotRunning, diag.SeverityCritical, []string{IDVIPHeldByBackup}, "yet this host holds virtual addresses"},
		{"process list unreadable", func(r *Report, in *Instance) { r.Processes, r.ProcessesUnreadable = nil, true }, IDHealthy, diag.SeverityOK, nil, "BACKUP"},
		{"interface down", func(r *Report, _ *Instance) { r.Interfaces[0].Up = false }, IDInterfaceDown, diag.SeverityCritical, nil, "interface eth0 is administratively down"},
		{"no carrier", func(r *Report, _ *Instance) { r.Interfaces[0].LowerUp = false }, IDInterfaceDown, diag.SeverityCritical, nil, "no carrier"},
		{"missing interface", func(r *Report, _ *Instance) { r.Interfaces[0] = Interface{Name: "eth0"} }, IDInterfaceDown, diag.SeverityCritical, nil, "does not exist"},
		{"not member", func(r *Report, _ *Instance) { no := false; r.Interfaces[0].JoinedVRRP4 = &no }, IDNotMemberOfGroup, diag.SeverityCritical, nil, "has not joined the VRRP group 224.0.0.18"},
		{"version", func(_ *Report, in *Instance) { in.Peers[0].Versions = []int{3} }, IDVersionMismatch, diag.SeverityWarning, nil, "with VRRPv3, this node is configured for VRRPv2"},
		{"interval", func(_ *Report, in *Instance) { in.Peers[0].Interval = 2 }, IDIntervalMismatch, diag.SeverityWarning, nil, "advertises every 2s, this node is configured for 1s"},
		{"auth type", func(_ *Report, in *Instance) { in.Auth, in.AuthPass = "PASS", "secret" }, IDAuthMismatch, diag.SeverityWarning, nil, "another VRRPv2 authentication type"},
		{"auth password", func(_ *Report, in *Instance) {
			in.Auth, in.AuthPass = "PASS", "secret"
			in.Peers[0].Auth, in.Peers[0].AuthData = "PASS", "secreT"
		}, IDAuthMismatch, diag.SeverityWarning, nil, "another VRRPv2 password"},
		{"vips", func(_ *Report, in *Instance) {
			in.Peers[0].VIPs = []netip.Addr{vip, netip.MustParseAddr("198.51.100.101")}
		}, IDVIPMismatch, diag.SeverityWarning, nil, "other virtual addresses"},
		{"collision", func(_ *Report, in *Instance) {
			in.Peers[0].VIPs = []netip.Addr{netip.MustParseAddr("203.0.113.7")}
		}, IDVRIDCollision, diag.SeverityCritical, nil, "another cluster on this segment uses the same VRID"},
		{"two masters heard", func(_ *Report, in *Instance) {
			p := in.Peers[0]
			p.Address, p.Priority = netip.MustParseAddr("198.51.100.3"), 120
			in.Peers = append(in.Peers, p)
		}, IDVRIDCollision, diag.SeverityCritical, nil, "2 other routers advertise VRID 51 at the same time"},
		{"ttl", func(_ *Report, in *Instance) { in.Peers[0].TTLs = []int{254, 255} }, IDTTLNot255, diag.SeverityWarning, nil, "arrive with TTL 254, not 255"},
		{"unicast ttl in range", func(_ *Report, in *Instance) {
			in.Unicast, in.UnicastPeers = true, []UnicastPeer{{Addr: addrA, MinTTL: 250, MaxTTL: 255}}
			in.Peers[0].TTLs = []int{254}
			in.Peers[0].Dsts = []netip.Addr{addrB}
		}, IDHealthy, diag.SeverityOK, nil, "BACKUP"},
		{"checksum errors", func(_ *Report, in *Instance) { in.Peers[0].Checksum.Errors = 2 }, IDChecksumMismatch, diag.SeverityWarning, nil, "2 of 4 adverts from 198.51.100.1 carry a checksum that matches no variant"},
		{"checksum variants", func(r *Report, in *Instance) {
			in.Version = 3
			in.Peers[0].Versions = []int{3}
			in.Peers[0].Checksum = ChecksumCounts{PseudoHeader: 4}
			in.Local = &Advertiser{Address: addrB, Versions: []int{3}, Checksum: ChecksumCounts{Message: 1}}
		}, IDChecksumMismatch, diag.SeverityWarning, nil, "compute the VRRPv3 checksum differently"},
		{"old unicast checksum refused", func(_ *Report, in *Instance) {
			in.Version, in.OldUnicastChecksum = 3, "never"
			in.Peers[0].Versions = []int{3}
			in.Peers[0].Checksum = ChecksumCounts{OldUnicast: 4}
		}, IDChecksumMismatch, diag.SeverityWarning, nil, "sums its unicast adverts as keepalived before 1.3.6 did; old_unicast_checksum never makes this node refuse 4 of them"},
		{"old unicast checksum accepted", func(_ *Report, in *Instance) {
			in.Version = 3
			in.Peers[0].Versions = []int{3}
			in.Peers[0].Checksum = ChecksumCounts{OldUnicast: 4}
		}, IDHealthy, diag.SeverityOK, nil, "BACKUP"},
		{"priority tie", func(_ *Report, in *Instance) { in.Peers[0].Priority = 100 }, IDPriorityTie, diag.SeverityWarning, nil, "both have priority 100"},
		{"owner conflict", func(_ *Report, in *Instance) { in.Priority, in.Peers[0].Priority = 255, 255 }, IDOwnerConflict, diag.SeverityCritical, nil, "both this node and 198.51.100.1 claim to own"},
		// keepalived lowers an owner that hears another to 254: the
		// backup owner hears a 254 master, the master owner sends 254.
		{"owner lowered, backup side", func(_ *Report, in *Instance) { in.Priority, in.Peers[0].Priority = 255, 254 }, IDOwnerConflict, diag.SeverityCritical, nil, "configured as the address owner (priority 255) yet stays backup to 198.51.100.1 advertising 254"},
		{"owner lowered, master side", func(_ *Report, in *Instance) {
			in.Priority, in.Peers = 255, nil
			in.Local = &Advertiser{Address: addrB, Adverts: 4, Priority: 254, Versions: []int{2}, Checksum: ChecksumCounts{Message: 4}}
		}, IDOwnerConflict, diag.SeverityCritical, nil, "configured as the address owner (priority 255) but advertises 254"},
		{"unicast vs multicast", func(_ *Report, in *Instance) {
			in.Unicast, in.UnicastPeers, in.Group = true, []UnicastPeer{{Addr: addrA, MaxTTL: 255}}, netip.Addr{}
		}, IDUnicastPeerMisconfig, diag.SeverityWarning, nil, "sends multicast adverts while this node is configured for unicast peers"},
		{"multicast vs unicast", func(_ *Report, in *Instance) { in.Peers[0].Dsts = []netip.Addr{addrB} }, IDUnicastPeerMisconfig, diag.SeverityWarning, nil, "sends unicast adverts to 198.51.100.2"},
		{"multicast vs unicast, not delivered", func(_ *Report, in *Instance) {
			in.Peers[0].Dsts = []netip.Addr{addrB}
			in.Peers[0].Socket, in.Peers[0].Matched, in.Peers[0].NotDelivered = 0, 0, 4
		}, IDUnicastPeerMisconfig, diag.SeverityWarning, nil, "sends unicast adverts to 198.51.100.2"},
		{"unknown unicast peer", func(_ *Report, in *Instance) {
			in.Unicast, in.UnicastPeers = true, []UnicastPeer{{Addr: netip.MustParseAddr("198.51.100.9"), MaxTTL: 255}}
			in.Peers[0].Dsts = []netip.Addr{addrB}
		}, IDUnicastPeerMisconfig, diag.SeverityWarning, nil, "is not in its unicast_peer list"},
		{"rp_filter", func(r *Report, in *Instance) {
			in.Peers[0].Socket, in.Peers[0].Matched, in.Peers[0].NotDelivered = 0, 0, 4
			r.Interfaces[0].RPFilter = &RPFilter{All: 1, Interface: 1, Effective: 1, Mode: "strict"}
			r.Interfaces[0].Senders = []SenderCheck{{Sender: addrA, RouteBack: "other0", RPFilterDrop: true, Reason: "invalid cross-device link"}}
		}, IDRPFilterDrop, diag.SeverityCritical, nil, "reverse-path filtering drops the adverts of 198.51.100.1 on eth0"},
		{"lost, cause unknown", func(_ *Report, in *Instance) {
			in.Peers[0].Socket, in.Peers[0].Matched, in.Peers[0].NotDelivered = 0, 0, 4
		}, IDNotDelivered, diag.SeverityCritical, nil, "4 adverts from 198.51.100.1 reached eth0's wire, none the VRRP socket"},
		{"lost, evaluator unsure", func(_ *Report, in *Instance) {
			in.Peers[0].Socket, in.Peers[0].Matched, in.Peers[0].NotDelivered = 0, 0, 4
			in.FirewallIn[0].Verdict, in.FirewallIn[0].UnknownReason = eval.Unknown, "rule 3 uses an ipset"
		}, IDNotDelivered, diag.SeverityCritical, nil, "none the VRRP socket"},
		{"partial loss", func(_ *Report, in *Instance) {
			in.Peers[0].Adverts, in.Peers[0].Socket, in.Peers[0].Matched, in.Peers[0].NotDelivered = 10, 7, 7, 3
		}, IDNotDelivered, diag.SeverityWarning, nil, "3 of 10 adverts"},
		{"input drop confirmed", func(_ *Report, in *Instance) {
			in.Peers[0].Socket, in.Peers[0].Matched, in.Peers[0].NotDelivered = 0, 0, 4
			in.FirewallIn[0].Verdict, in.FirewallIn[0].Rule = eval.Drop, dropRule
		}, IDFirewallInputDrop, diag.SeverityCritical, nil, "rule `-A INPUT -p vrrp -j DROP` in chain INPUT of table ip filter (iptables-nft, rule 3, owner hand-written)"},
		{"input drop, no traffic", func(_ *Report, in *Instance) {
			in.Peers = nil
			in.FirewallIn[0].Verdict, in.FirewallIn[0].Rule, in.FirewallIn[0].Src = eval.Drop, dropRule, netip.Addr{}
			in.Local = &Advertiser{Address: addrB, Adverts: 4, Versions: []int{2}, Priority: 100, Interval: 1}
		}, IDFirewallInputDrop, diag.SeverityWarning, nil, "the firewall drops VRRP adverts arriving on eth0"},
		{"input drop contradicted by the taps", func(_ *Report, in *Instance) {
			in.FirewallIn[0].Verdict, in.FirewallIn[0].Rule = eval.Drop, dropRule
		}, IDHealthy, diag.SeverityOK, nil, "BACKUP"},
		{"output drop", func(_ *Report, in *Instance) {
			in.Held = []HeldAddr{{Addr: vip, Interface: "eth0"}}
			in.FirewallOut[0].Verdict = eval.Reject
			in.FirewallOut[0].Rule = &eval.RuleRef{Backend: "nftables", Family: "inet", Table: "filter", Chain: "output", Handle: 7, Text: "meta l4proto vrrp reject", Owner: "hand-written"}
		}, IDFirewallOutputDrop, diag.SeverityCritical, []string{IDSplitBrain}, "rejects this node's VRRP adverts leaving eth0"},
		{"vip held by backup", func(_ *Report, in *Instance) { in.Held = []HeldAddr{{Addr: vip, Interface: "eth0"}} }, IDVIPHeldByBackup, diag.SeverityCritical, nil,
			"this node holds 198.51.100.100 but does not advertise VRID 51, while 198.51.100.1 is master"},
		{"nothing advertises", func(_ *Report, in *Instance) { in.Peers = nil }, IDNoAdvertsReceived, diag.SeverityWarning, nil, "nothing advertises VRID 51 on eth0"},
		{"split brain, peer does not hear us", func(r *Report, in *Instance) {
			asMaster(r)
			in.Priority, in.Local.Priority, in.Peers[0].Priority = 200, 200, 150
			in.Peers[0].Concurrent = 3
		}, IDSplitBrain, diag.SeverityCritical, nil, "198.51.100.1 also advertises VRID 51 (priority 150) while this node is master (priority 200): it does not hear us"},
		{"split brain, we discard them", func(r *Report, in *Instance) {
			asMaster(r)
			in.Peers[0].Concurrent = 1
			in.Peers[0].Interval = 2
		}, IDSplitBrain, diag.SeverityCritical, []string{IDIntervalMismatch}, "yet this node stays master: it discards them"},
		{"masters taking turns, both holding the addresses", func(r *Report, in *Instance) {
			asMaster(r)
			in.Peers[0].Concurrent = 0
			in.Auth, in.AuthPass = "PASS", "x"
			in.Peers[0].Auth, in.Peers[0].AuthData = "PASS", "y"
		}, IDSplitBrain, diag.SeverityCritical, []string{IDAuthMismatch}, "yet this node stays master: it discards them"},
		{"silent master discarding the master's adverts", func(r *Report, in *Instance) {
			in.Held = []HeldAddr{{Addr: vip, Interface: "eth0"}}
			in.Version = 3
		}, IDSplitBrain, diag.SeverityCritical, []string{IDVersionMismatch}, "it discards 198.51.100.1's adverts (version-mismatch): its VRRP daemon acts as master too"},
		{"takeover during the check is no split brain", func(r *Report, in *Instance) {
			asMaster(r)
			in.Priority, in.Local.Priority = 200, 200
			in.Peers[0].Concurrent = 0
			in.Held = nil // added during the check: not held throughout
		}, "", diag.SeverityOK, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := backup()
			tc.stage(r, &r.Instances[0])
			r.Finish()
			var above []string
			for _, f := range r.Findings {
				if f.Severity > diag.SeverityOK {
					above = append(above, f.ID)
				}
			}
			want := slices.Clone(tc.others)
			if tc.id != "" && tc.sev > diag.SeverityOK {
				want = append(want, tc.id)
			}
			if !sameSet(above, want) {
				t.Fatalf("findings %v, want %v", ids(r.Findings), want)
			}
			// A watch's judgement: the same findings but those of
			// SeverityOK, in the same order.
			problems := slices.DeleteFunc(slices.Clone(r.Findings), func(f diag.Finding) bool { return f.Severity <= diag.SeverityOK })
			if got := EvaluateProblems(r); !reflect.DeepEqual(got, problems) && len(got)+len(problems) > 0 {
				t.Errorf("EvaluateProblems %v, want %v", ids(got), ids(problems))
			}
			if tc.id == "" {
				return
			}
			f := find(r.Findings, tc.id)
			if f == nil || f.Severity != tc.sev || !strings.Contains(f.Summary, tc.text) {
				t.Fatalf("%s: %+v, want severity %s and %q", tc.id, f, tc.sev, tc.text)
			}
			if f.Severity > diag.SeverityOK && (f.Explanation == "" || f.Fix == "" || len(f.Evidence) == 0) {
				t.Errorf("%s lacks evidence, explanation or fix: %+v", tc.id, f)
			}
			if code := diag.MaxSeverity(r.Findings).ExitCode(); r.ExitCode != code {
				t.Errorf("exit %d, want %d", r.ExitCode, code)
			}
		})
	}
}

// TestNotMemberJoinError: when this check's own socket tap could not join
// the group either, not-member-of-group shows why and names the sysctl.
func TestNotMemberJoinError(t *testing.T) {
	r := backup()
	no := false
	r.Interfaces[0].JoinedVRRP4 = &no
	r.Instances[0].Observed, r.Instances[0].Peers = false, nil
	msg := "capture: socket tap on eth0 (IPv4): join 224.0.0.18: no buffer space available"
	r.Capture = &CaptureInfo{Interfaces: []CaptureIface{{Name: "eth0", Error: msg}}}
	r.Finish()
	f := find(r.Findings, IDNotMemberOfGroup)
	if f == nil || r.ExitCode != diag.ExitCritical {
		t.Fatalf("exit %d, findings %v", r.ExitCode, ids(r.Findings))
	}
	var got string
	for _, e := range f.Evidence {
		if e.Label == "this check's own join" {
			got = e.Value
		}
	}
	if got != msg || !strings.Contains(f.Fix, "net.ipv4.igmp_max_memberships") {
		t.Errorf("evidence %q, fix %q", got, f.Fix)
	}
}

// TestConcurrent: adverts sent while both act as master are counted; the
// handovers of a takeover or a preemption are not.
func TestConcurrent(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(secs ...float64) []time.Time {
		var ts []time.Time
		for _, s := range secs {
			ts = append(ts, t0.Add(time.Duration(s*float64(time.Second))))
		}
		return ts
	}
	for _, tc := range []struct {
		name          string
		winner, loser []time.Time
		want          uint64
	}{
		{"both every second", at(0, 1, 2, 3, 4), at(0.5, 1.5, 2.5, 3.5, 4.5), 3},
		{"the loser sends rarely (its timer re-armed by what it discards)", at(0, 1, 2, 3, 4), at(2), 1},
		{"preemption: the loser yields at the winner's first advert", at(5.2, 6.2, 7.2), at(2, 3, 4, 5, 5.3), 0},
		{"the winner starts; the loser's last advert just after", at(0, 1, 2, 3), at(-2, -1, 0.2), 0},
		{"takeover after the master stopped", at(5, 6, 7), at(0, 1, 2), 0},
		{"the loser returns after the winner stopped", at(0, 1, 2), at(6, 7, 8), 0},
	} {
		if got := concurrent(tc.winner, tc.loser, time.Second); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestExitUnknown: without the taps nothing is decided; a critical finding
// still wins.
func TestExitUnknown(t *testing.T) {
	r := backup()
	r.Instances[0].Observed, r.Instances[0].Peers, r.Capture = false, nil, nil
	r.Finish()
	if r.ExitCode != diag.ExitUnknown || r.Status != "unknown" {
		t.Errorf("no capture: exit %d (%s), findings %v", r.ExitCode, r.Status, ids(r.Findings))
	}
	r.Processes = nil
	r.Findings = nil
	r.Finish()
	if r.ExitCode != diag.ExitCritical {
		t.Errorf("no capture, no daemon: exit %d", r.ExitCode)
	}
	r = backup()
	r.Interfaces[0].Up = false
	r.Instances[0].Observed, r.Instances[0].Peers = false, nil
	r.Finish()
	if r.ExitCode != diag.ExitCritical || find(r.Findings, IDInterfaceDown) == nil {
		t.Errorf("interface down: exit %d, %v", r.ExitCode, ids(r.Findings))
	}
}

// TestFixes renders the fix for the deciding rule of real rulesets
// (testdata/rulesets) as the evaluator reports it.
func TestFixes(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		dir2 eval.Direction
		want []string
	}{
		{"docker-like-input-drop", eval.In, []string{"vrrpdoctor fix-firewall -i eth0 --in --apply", "  iptables -A INPUT -i eth0 -d 224.0.0.18 -p 112 -j ACCEPT"}},
		{"legacy-drop-nft-accept", eval.In, []string{"  iptables-legacy -I INPUT 1 -i eth0 -d 224.0.0.18 -p 112 -j ACCEPT"}},
		{"nft-two-tables-reject", eval.In, []string{`  nft insert rule ip late input position 2 iifname "eth0" ip daddr 224.0.0.18 ip protocol 112 accept`}},
		{"nft-output-drop", eval.Out, []string{"vrrpdoctor fix-firewall -i eth0 --out --apply", `  nft insert rule inet filter output position 2 oifname "eth0" ip daddr 224.0.0.18 ip protocol 112 accept`}},
		{"firewalld-nft-default", eval.In, []string{`  firewall-cmd --permanent --add-rich-rule='rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'`, "  firewall-cmd --reload"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			files, err := filepath.Glob(filepath.Join("../../testdata/rulesets", tc.dir, "*"))
			if err != nil {
				t.Fatal(err)
			}
			var rs []string
			for _, f := range files {
				if b := filepath.Base(f); strings.HasSuffix(b, "-save.txt") || b == "nft.json" {
					rs = append(rs, f)
				}
			}
			src, dst := addrA, group
			if tc.dir2 == eval.Out {
				src = addrB
			}
			ex, err := fw.Explain(context.Background(), fw.Options{Rulesets: rs, Packet: eval.VRRPAdvert(tc.dir2, "eth0", src, dst)})
			if err != nil {
				t.Fatal(err)
			}
			if ex.Verdict != eval.Drop && ex.Verdict != eval.Reject {
				t.Fatalf("verdict %s", ex.Verdict)
			}
			v := Verdict{Direction: tc.dir2, Interface: "eth0", Src: src, Dst: dst, Verdict: ex.Verdict, Rule: ex.Rule}
			fix := firewallFix(v, nil)
			for _, w := range tc.want {
				if !strings.Contains(fix, w+"\n") {
					t.Errorf("fix lacks %q:\n%s", w, fix)
				}
			}
		})
	}
	// Unicast: the peer narrows the rule; IPv6 uses ip6tables.
	v := Verdict{Direction: eval.In, Interface: "eth0", Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"), Verdict: eval.Drop,
		Rule: &eval.RuleRef{Backend: "iptables-nft", Family: "ip6", Table: "filter", Chain: "INPUT", Policy: true, Text: "policy DROP"}}
	if fix := firewallFix(v, nil); !strings.Contains(fix, "ip6tables -A INPUT -i eth0 -s 2001:db8::1 -d 2001:db8::2 -p 112 -j ACCEPT") ||
		!strings.Contains(fix, "vrrpdoctor fix-firewall -i eth0 --in --family 6 --peer 2001:db8::1 --apply") {
		t.Errorf("unicast IPv6 fix:\n%s", fix)
	}
	// firewalld's output: a policy from the host.
	v = Verdict{Direction: eval.Out, Interface: "eth0", Src: addrB, Dst: group, Verdict: eval.Reject,
		Rule: &eval.RuleRef{Backend: "nftables", Family: "inet", Table: "firewalld", Chain: "filter_OUTPUT_POLICIES", Text: "reject", Owner: "firewalld"}}
	if fix := firewallFix(v, &Firewalld{DefaultZone: "public"}); !strings.Contains(fix, "--policy=vrrp-out --add-ingress-zone=HOST --add-egress-zone=ANY") {
		t.Errorf("firewalld output fix:\n%s", fix)
	}
}

func TestParseRunArgs(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		config string
		ok     bool
	}{
		{[]string{"/usr/bin/vrrpdoctor", "run"}, DefaultConfig, true},
		{[]string{"vrrpdoctor", "run", "-c", "/x.conf"}, "/x.conf", true},
		{[]string{"vrrpdoctor", "run", "-c/x.conf", "--log-format", "json"}, "/x.conf", true},
		{[]string{"vrrpdoctor", "run", "--config=/y.conf"}, "/y.conf", true},
		{[]string{"vrrpdoctor", "run", "--config", "/y.conf"}, "/y.conf", true},
		{[]string{"vrrpdoctor", "run", "-t", "-c", "/y.conf"}, "", false},
		{[]string{"vrrpdoctor", "check"}, "", false},
		{[]string{"keepalived", "run"}, "", false},
		{[]string{"vrrpdoctor"}, "", false},
	} {
		config, ok := parseRunArgs(tc.args)
		if ok != tc.ok || ok && config != tc.config {
			t.Errorf("%q: %q %v, want %q %v", tc.args, config, ok, tc.config, tc.ok)
		}
	}
}

func TestReadJSON(t *testing.T) {
	if _, err := ReadJSON(strings.NewReader("not json"), "x.json"); err == nil || !strings.Contains(err.Error(), "x.json: not a vrrpdoctor check --json report") {
		t.Errorf("garbage: %v", err)
	}
	if _, err := ReadJSON(strings.NewReader(`{"schema":"vrrpdoctor-check/9"}`), "y.json"); err == nil || !strings.Contains(err.Error(), `schema "vrrpdoctor-check/9"`) {
		t.Errorf("schema: %v", err)
	}
	// Round trip: the password stays out of JSON.
	r := backup()
	r.Instances[0].Auth, r.Instances[0].AuthPass = "PASS", "hunter2"
	r.Finish()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "hunter2") {
		t.Error("the password is in the JSON report")
	}
	// Text output shows both passwords of a mismatch: a typo there is a
	// common cause of split brain, and they travel in clear anyway.
	var text bytes.Buffer
	if err := WriteText(&text, r, false); err != nil || !strings.Contains(text.String(), `auth_type PASS "hunter2"`) || !strings.Contains(text.String(), "auth_type none") {
		t.Errorf("text (%v):\n%s", err, text.String())
	}
	back, err := ReadJSON(&buf, "r.json")
	if err != nil || back.Instances[0].Peers[0].Socket != 4 || back.ExitCode != r.ExitCode {
		t.Errorf("round trip: %v %+v", err, back)
	}
}

func TestWriteNagios(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteNagios(&buf, readReport(t, "input-drop-b.json")); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "\n") != 1 || strings.Count(out, "|") != 1 ||
		!strings.HasPrefix(out, "VRRP CRITICAL - firewall-input-drop: the firewall drops VRRP adverts arriving on eth0: rule `-A INPUT -d 224.0.0.18/32 -j DROP`") ||
		!strings.Contains(out, "(+1 more: split-brain) | vrid51_eth0_ipv4_sent=") || !strings.Contains(out, " vrid51_eth0_ipv4_peer_socket=0 vrid51_eth0_ipv4_vips_held=1;;;0;1 watch=") {
		t.Errorf("nagios line:\n%s", out)
	}
	buf.Reset()
	if err := WriteNagios(&buf, readReport(t, "healthy-b.json")); err != nil || !strings.HasPrefix(buf.String(), "VRRP OK - this node is BACKUP for VRID 51 on eth0; 198.51.100.1 is MASTER") {
		t.Errorf("healthy (%v): %s", err, buf.String())
	}
}

func TestWriteText(t *testing.T) {
	r := readReport(t, "input-drop-b.json")
	var buf bytes.Buffer
	if err := WriteText(&buf, r, false); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"vrrpdoctor check on b", "VI_51: VRID 51 on eth0 (VRRPv3, IPv4)", "peer           198.51.100.1: ", "0 at the VRRP socket",
		"CRITICAL firewall-input-drop", "CRITICAL split-brain", "Status: CRITICAL (2 criticals)"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour without colour")
	}
	buf.Reset()
	if err := WriteText(&buf, r, true); err != nil || !strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("no colour with colour: %v", err)
	}
	buf.Reset()
	c := Combine(readReport(t, "input-drop-a.json"), r)
	if err := WriteCombinedText(&buf, c, false); err != nil || !strings.Contains(buf.String(), "CRITICAL split-brain  VRID 51 on eth0 (VRRPv3, IPv4)") {
		t.Errorf("combined text (%v):\n%s", err, buf.String())
	}
}
