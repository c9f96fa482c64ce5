package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/internal/fwlab"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
	"github.com/vrrpdoctor/vrrpdoctor/fw/trace"
)

// byDesign lists the scenarios whose evaluation is "unknown" on purpose,
// with a word the reason must hold: the verdict depends on something no
// ruleset says.
var byDesign = map[string]string{
	"nft-limit": "limit rate",
}

// diffTools are the programs the differential test runs, with their
// Debian packages.
var diffTools = map[string]string{
	"ip": "iproute2", "nft": "nftables", "keepalived": "keepalived",
	"iptables-nft": "iptables", "iptables-legacy": "iptables", "iptables-nft-restore": "iptables",
	"iptables-legacy-save": "iptables", "firewalld": "firewalld", "firewall-cmd": "firewalld",
	"dbus-daemon": "dbus", "unshare": "util-linux", "sysctl": "procps",
}

// Environment of the explain child (TestDiffExplainChild), run inside a
// scenario's host namespace.
const (
	childPacket = "VRRPDOCTOR_DIFF_PACKET"
	childOut    = "VRRPDOCTOR_DIFF_OUT"
)

// childPacketJSON describes the advert to the child.
type childPacketJSON struct {
	Direction string `json:"direction"`
	Iface     string `json:"iface"`
	Src       string `json:"src"`
	Dst       string `json:"dst"`
}

// childResult is what the child found.
type childResult struct {
	Verdict  eval.Verdict  `json:"verdict"`
	Rule     *eval.RuleRef `json:"rule"`
	Reason   string        `json:"reason"`
	Warnings []string      `json:"warnings"`
	Path     []eval.Step   `json:"path"`
}

// TestDiffExplainChild reads the live ruleset of the namespace it runs in
// (nftables over netlink, iptables-nft-save, iptables-legacy-save,
// firewalld over D-Bus) and evaluates the advert described in its
// environment, as `vrrpdoctor fw explain` does.
func TestDiffExplainChild(t *testing.T) {
	spec := os.Getenv(childPacket)
	if spec == "" {
		t.Skip("run by TestDifferential inside a lab namespace")
	}
	var cp childPacketJSON
	if err := json.Unmarshal([]byte(spec), &cp); err != nil {
		t.Fatal(err)
	}
	p := eval.VRRPAdvert(eval.Direction(cp.Direction), cp.Iface, netip.MustParseAddr(cp.Src), netip.MustParseAddr(cp.Dst))
	ex, err := fw.Explain(context.Background(), fw.Options{Packet: p})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(childResult{Verdict: ex.Verdict, Rule: ex.Rule, Reason: ex.UnknownReason, Warnings: ex.Warnings, Path: ex.Path})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv(childOut), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// kernelView is what the kernel did with the adverts of one scenario.
type kernelView struct {
	wire, socket int
	outBlocked   bool // the host's own sendto failed with EPERM
	delivered    bool
	traced       []*trace.Packet
	others       []*trace.Packet // traced, but not the adverts observed
	lost         int             // trace messages lost
	decider      *Decider        // the rule or policy that dropped, from the trace or legacy counters
	evidence     string
}

// diffResult is one scenario's comparison.
type diffResult struct {
	name     string
	class    string // agree, disagree, unknown, error
	detail   string
	trace    string // agree, disagree, none
	traceMsg string
	elapsed  time.Duration
}

// TestDifferential loads every scenario of testdata/rulesets into fresh
// lab namespaces with the real tools (a real firewalld, with a private
// D-Bus, for the firewalld ones), sends real keepalived adverts from a peer
// namespace, observes the kernel's verdict (delivery to a protocol-112 raw
// socket joined to the group; for the host's own adverts, the wire and
// keepalived's sendto error) and the deciding rule (nftables trace,
// iptables-legacy counters), and compares with the evaluator run on the
// ruleset read live from the same namespace.
func TestDifferential(t *testing.T) {
	fwlab.Require(t, diffTools)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if len(scenarios) < 30 {
		t.Fatalf("%d scenarios, want at least 30", len(scenarios))
	}
	sel := scenarios
	if only := os.Getenv("VRRPDOCTOR_DIFF_ONLY"); only != "" {
		// For debugging: a comma-separated list of scenarios.
		sel = nil
		for _, s := range scenarios {
			if slices.Contains(strings.Split(only, ","), s.name) {
				sel = append(sel, s)
			}
		}
	}
	start := time.Now()
	// Lab work is mostly waiting; firewalld's start is CPU-bound Python,
	// so fewer of those run at once.
	all, fwd := make(chan struct{}, 8), make(chan struct{}, 3)
	results := make([]diffResult, len(sel))
	var wg sync.WaitGroup
	// firewalld scenarios first: they take longest.
	order := make([]int, len(sel))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return sel[order[a]].firewalld != "" && sel[order[b]].firewalld == ""
	})
	for _, i := range order {
		s := sel[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.firewalld != "" {
				fwd <- struct{}{}
				defer func() { <-fwd }()
			}
			all <- struct{}{}
			defer func() { <-all }()
			t0 := time.Now()
			results[i] = diffScenario(s, self)
			results[i].elapsed = time.Since(t0)
		}()
	}
	wg.Wait()
	counts := map[string]int{}
	traceCounts := map[string]int{}
	for _, r := range results {
		counts[r.class]++
		traceCounts[r.trace]++
		t.Run(r.name, func(t *testing.T) {
			t.Logf("%s (%.1fs): %s", r.class, r.elapsed.Seconds(), r.detail)
			if r.traceMsg != "" {
				t.Logf("trace %s: %s", r.trace, r.traceMsg)
			}
			switch {
			case r.class == "error" || r.class == "disagree":
				t.Fatalf("%s: %s", r.class, r.detail)
			case r.class == "unknown" && byDesign[r.name] == "":
				t.Fatalf("unknown, and not by design: %s", r.detail)
			case r.trace == "disagree":
				t.Fatalf("the nftables trace disagrees with the evaluator: %s", r.traceMsg)
			case r.trace == "none":
				t.Fatalf("the nftables trace saw none of the adverts: %s", r.traceMsg)
			}
		})
	}
	t.Logf("differential test, %d rulesets: %d agree, %d disagree, %d unknown (by design: %d), %d errors; nftables trace vs evaluator: %d agree, %d disagree, %d without a traced packet; %.1fs",
		len(results), counts["agree"], counts["disagree"], counts["unknown"], len(byDesign), counts["error"],
		traceCounts["agree"], traceCounts["disagree"], traceCounts["none"], time.Since(start).Seconds())
}

func diffScenario(s scenario, self string) diffResult {
	res := diffResult{name: s.name, class: "error", trace: "none"}
	l, err := newLab(s.name)
	if err != nil {
		res.detail = err.Error()
		return res
	}
	defer l.close()
	if s.firewalld != "" {
		if err := l.startFirewalld(s.firewalld); err != nil {
			res.detail = "firewalld: " + err.Error()
			return res
		}
	}
	if s.setup != "" {
		if err := l.sh(l.host, s.setup); err != nil {
			res.detail = "setup: " + err.Error()
			return res
		}
	}
	fam := s.family
	if fam == 0 {
		fam = 4
	}
	group, src := netip.MustParseAddr("224.0.0.18"), peerV4
	if fam == 6 {
		group, src = netip.MustParseAddr("ff02::12"), peerLL
	}
	dir := s.direction()
	if dir == "out" {
		src = hostV4
		if fam == 6 {
			src = hostLL
		}
	}
	kv, err := observe(l, s, fam, group)
	if err != nil {
		res.detail = err.Error()
		return res
	}
	ev, err := explainIn(l, self, childPacketJSON{Direction: dir, Iface: "eth0", Src: src, Dst: group.String()})
	if err != nil {
		res.detail = err.Error()
		return res
	}
	res.class, res.detail = compare(s.name, kv, ev)
	res.trace, res.traceMsg = compareTrace(kv, ev, dir)
	return res
}

// observe sends keepalived's adverts through the host's firewall and
// records what the kernel did.
func observe(l *lab, s scenario, fam int, group netip.Addr) (*kernelView, error) {
	hostFD, err := openNetNS(l.host)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(hostFD)
	recvNS, sendNS := l.host, l.peer
	if s.out {
		recvNS, sendNS = l.peer, l.host
	}
	recvFD, err := openNetNS(recvNS)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(recvFD)
	legacyBefore := l.legacyCounters(fam)
	var ingress []string
	if !s.out {
		ingress = []string{"eth0"}
	}
	tr, err := trace.Start(trace.Options{NetNS: hostFD, IngressDevices: ingress})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer tr.Close()
	var mu sync.Mutex
	var traced, others []*trace.Packet
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	traceDone := make(chan struct{})
	go func() {
		defer close(traceDone)
		for {
			p, err := tr.Next(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			if p.Dst == group && p.Direction == trace.Direction(s.direction()) {
				traced = append(traced, p)
			} else {
				others = append(others, p)
			}
			mu.Unlock()
		}
	}()
	rcv, err := fwlab.NewReceiver(recvFD, "eth0", group)
	if err != nil {
		return nil, err
	}
	defer rcv.Close()
	conf := filepath.Join(l.dir, "keepalived-fast.conf")
	if err := os.WriteFile(conf, []byte(fwlab.KeepalivedConf(fam, 100*time.Millisecond)), 0o644); err != nil {
		return nil, err
	}
	kaLog := filepath.Join(l.dir, "keepalived-fast.log")
	ka, err := l.start("keepalived-fast.log", nil, "ip", "netns", "exec", sendNS, "keepalived", "-f", conf,
		"-p", filepath.Join(l.dir, "fast.pid"), "-r", filepath.Join(l.dir, "fast-vrrp.pid"), "-n", "-l", "-D")
	if err != nil {
		return nil, err
	}
	kv := &kernelView{}
	// Clear once three adverts crossed the wire and the socket had its
	// chance (or the host's own sendto was refused), and the trace has one.
	deadline := time.Now().Add(12 * time.Second)
	var settle time.Time
	for time.Now().Before(deadline) {
		if err := rcv.Poll(20 * time.Millisecond); err != nil {
			return nil, err
		}
		if settle.IsZero() {
			if rcv.Wire >= 3 || (!s.out && rcv.Socket >= 3) {
				settle = time.Now().Add(300 * time.Millisecond)
			} else if s.out {
				if b, _ := os.ReadFile(kaLog); strings.Contains(string(b), "(Operation not permitted)") {
					kv.outBlocked = true
					settle = time.Now().Add(300 * time.Millisecond)
				}
			}
		}
		mu.Lock()
		n := len(traced)
		mu.Unlock()
		if !settle.IsZero() && time.Now().After(settle) && (n > 0 || time.Now().After(settle.Add(time.Second))) {
			break
		}
		if !s.out && rcv.Socket >= 3 && n >= 3 {
			break
		}
	}
	stop(ka)
	cancel()
	<-traceDone
	kv.lost = tr.Lost()
	if err := tr.Close(); err != nil {
		return nil, err
	}
	kv.wire, kv.socket, kv.traced, kv.others = rcv.Wire, rcv.Socket, traced, others
	if s.out {
		kv.delivered = kv.wire > 0
		if kv.wire == 0 && !kv.outBlocked {
			b, _ := os.ReadFile(kaLog)
			return nil, fmt.Errorf("no advert left the host and keepalived reported no send error:\n%s", tail(string(b), 15))
		}
	} else {
		kv.delivered = kv.socket > 0
		if kv.wire < 2 {
			b, _ := os.ReadFile(kaLog)
			return nil, fmt.Errorf("only %d adverts on the wire; keepalived said:\n%s", kv.wire, tail(string(b), 15))
		}
	}
	if !kv.delivered {
		for _, p := range traced {
			if p.Verdict == trace.Drop && p.By != nil {
				kv.decider = deciderOf(p.By)
				kv.evidence = "nft trace"
				break
			}
		}
		if kv.decider == nil {
			d, why := legacyDecider(legacyBefore, l.legacyCounters(fam), fam, s.direction())
			kv.decider, kv.evidence = d, "iptables-legacy counters"
			if d == nil {
				kv.evidence = "no deciding rule in the trace or legacy counters: " + why
			}
		}
	}
	return kv, nil
}

func openNetNS(name string) (int, error) {
	return syscall.Open("/run/netns/"+name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
}

func deciderOf(e *trace.Event) *Decider {
	d := &Decider{Family: string(e.Family), Table: e.Table, Chain: e.Chain, Handle: e.Handle, Text: e.String()}
	if e.Type == trace.TypePolicy {
		d.Policy, d.Handle = true, 0
	}
	return d
}

// explainIn runs the explain child in the lab's host namespace.
func explainIn(l *lab, self string, p childPacketJSON) (*childResult, error) {
	spec, _ := json.Marshal(p)
	out := filepath.Join(l.dir, "explain.json")
	cmd := exec.Command("ip", "netns", "exec", l.host, self, "-test.run", "^TestDiffExplainChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childPacket+"="+string(spec), childOut+"="+out)
	if l.busAddr != "" {
		cmd.Env = append(cmd.Env, "DBUS_SYSTEM_BUS_ADDRESS="+l.busAddr)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("explain child: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	var r childResult
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// sameRule reports whether the evaluator's rule is the kernel's decider.
func sameRule(r *eval.RuleRef, d *Decider) bool {
	if r == nil || d == nil {
		return false
	}
	if string(r.Family) != d.Family || r.Table != d.Table || r.Chain != d.Chain || r.Policy != d.Policy {
		return false
	}
	switch {
	case d.Policy:
		return true
	case d.Handle != 0:
		return r.Handle == d.Handle
	default:
		return r.Position == d.Position && string(r.Backend) == d.Backend
	}
}

func kernelText(kv *kernelView) string {
	s := fmt.Sprintf("wire %d, socket %d", kv.wire, kv.socket)
	if kv.outBlocked {
		s += ", sendto EPERM"
	}
	if kv.delivered {
		return s + ": delivered"
	}
	s += ": not delivered"
	if kv.decider != nil {
		s += fmt.Sprintf(" (%s: %s %s %s %s)", kv.evidence, kv.decider.Family, kv.decider.Table, kv.decider.Chain, kv.decider.Text)
	} else {
		s += " (" + kv.evidence + ")"
	}
	return s
}

// compare classifies the evaluator's answer against the kernel's.
func compare(name string, kv *kernelView, ev *childResult) (string, string) {
	kernel := kernelText(kv)
	got := fmt.Sprintf("evaluator: %s", ev.Verdict)
	if ev.Rule != nil {
		got += " by " + ev.Rule.String()
	}
	if len(ev.Warnings) > 0 {
		got += fmt.Sprintf(" (warnings: %v)", ev.Warnings)
	}
	if ev.Verdict == eval.Unknown {
		if w := byDesign[name]; w != "" && !strings.Contains(ev.Reason, w) {
			return "disagree", fmt.Sprintf("unknown for another reason than %q: %s; kernel: %s", w, ev.Reason, kernel)
		}
		return "unknown", fmt.Sprintf("evaluator: unknown (%s); kernel: %s", ev.Reason, kernel)
	}
	if kv.delivered != (ev.Verdict == eval.Accept) {
		return "disagree", got + "; kernel: " + kernel
	}
	if !kv.delivered {
		if kv.decider == nil {
			return "disagree", got + "; kernel: " + kernel + " — no kernel evidence of the deciding rule to compare with"
		}
		if !sameRule(ev.Rule, kv.decider) {
			return "disagree", got + "; kernel: " + kernel
		}
	}
	return "agree", got + "; kernel: " + kernel
}

// compareTrace checks the nftables trace of the adverts against the
// evaluator: the same verdict and rule, except that a rule of
// iptables-legacy never shows in a trace.
func compareTrace(kv *kernelView, ev *childResult, dir string) (string, string) {
	if len(kv.traced) == 0 {
		msg := fmt.Sprintf("no advert traced (%d other packet(s) traced, %d message(s) lost)", len(kv.others), kv.lost)
		for i, p := range kv.others {
			if i == 3 {
				break
			}
			msg += "; " + p.String()
		}
		return "none", msg
	}
	// The last advert traced shows the steady state: nat chains see only
	// the first advert of a flow.
	p := kv.traced[len(kv.traced)-1]
	msg := fmt.Sprintf("%d traced, last: %s; evaluator %s", len(kv.traced), p, ev.Verdict)
	if ev.Rule != nil {
		msg += " by " + ev.Rule.String()
	}
	for _, q := range kv.traced {
		if q.Verdict != p.Verdict || (p.Verdict == trace.Drop && (q.By.Table != p.By.Table || q.By.Chain != p.By.Chain || q.By.Handle != p.By.Handle)) {
			return "disagree", msg + fmt.Sprintf("; another advert went otherwise: %s", q)
		}
	}
	legacy := ev.Rule != nil && ev.Rule.Backend == ruleset.BackendIptablesLegacy
	switch {
	case ev.Verdict == eval.Unknown:
		return "agree", msg + " (the trace answers what the evaluator could not)"
	case p.Verdict == trace.Drop:
		if (ev.Verdict == eval.Drop || ev.Verdict == eval.Reject) && sameRule(ev.Rule, deciderOf(p.By)) {
			return "agree", msg
		}
	case p.Verdict == trace.Accept:
		if ev.Verdict == eval.Accept {
			if p.By == nil || legacy || sameRule(ev.Rule, deciderOf(p.By)) {
				return "agree", msg
			}
			return "disagree", msg + " (the last accept differs)"
		}
		if legacy {
			return "agree", msg + " (dropped by iptables-legacy, which traces do not show)"
		}
	}
	return "disagree", msg
}
