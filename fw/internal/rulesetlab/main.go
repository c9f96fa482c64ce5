// Command rulesetlab builds the rulesets in testdata/rulesets with the real
// tools (nft, iptables-nft, iptables-legacy, firewalld) inside throwaway
// network namespaces, sends real VRRP adverts through each with keepalived
// from a peer namespace, and records what the kernel did: adverts seen on the
// wire, adverts delivered to a protocol-112 raw socket, and the deciding rule
// from an nftables trace or from iptables-legacy counters.
//
//	go run ./fw/internal/rulesetlab -out testdata/rulesets [-only NAME,...]
//
// Root is needed. Nothing is configured in, or sent from, the root network
// namespace: each scenario gets its own host and peer namespaces, removed
// afterwards with everything started in them.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/fw/nftjson"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "recv" {
		if err := runRecv(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "recv:", err)
			os.Exit(1)
		}
		return
	}
	out := flag.String("out", "testdata/rulesets", "directory to write the scenarios to")
	only := flag.String("only", "", "comma-separated scenario names (default: all)")
	list := flag.Bool("list", false, "list the scenarios and exit")
	flag.Parse()
	if *list {
		for _, s := range scenarios {
			fmt.Printf("%-34s %s\n", s.name, s.about)
		}
		return
	}
	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n != "" {
			want[n] = true
		}
	}
	self, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	failed := 0
	for _, s := range scenarios {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		start := time.Now()
		exp, err := runScenario(s, self, filepath.Join(*out, s.name))
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
			failed++
			continue
		}
		by := "-"
		if exp.DecidedBy != nil {
			by = fmt.Sprintf("%s %s %s %s %s", exp.DecidedBy.Backend, exp.DecidedBy.Family, exp.DecidedBy.Table, exp.DecidedBy.Chain, exp.DecidedBy.Text)
		}
		fmt.Printf("%-34s wire=%d socket=%d delivered=%v (%s) by: %s [%.1fs]\n", s.name, exp.Wire, exp.Socket, exp.Delivered, exp.Evidence, by, time.Since(start).Seconds())
	}
	if err := writeReadme(*out); err != nil {
		fatal(err)
	}
	if failed > 0 {
		fatal(fmt.Errorf("%d scenario(s) failed", failed))
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "rulesetlab:", err)
	os.Exit(1)
}

// Expected is what expected.json records for a scenario: the packet and the
// kernel's observed fate.
type Expected struct {
	About     string   `json:"about"`
	Direction string   `json:"direction"`
	Family    int      `json:"family"`
	InIface   string   `json:"in_iface,omitempty"`
	OutIface  string   `json:"out_iface,omitempty"`
	Src       string   `json:"src"`
	Dst       string   `json:"dst"`
	Wire      int      `json:"wire"`
	Socket    int      `json:"socket"`
	Delivered bool     `json:"delivered"`
	DecidedBy *Decider `json:"decided_by,omitempty"`
	// Evidence says how DecidedBy was established ("nft trace",
	// "iptables-legacy counters") or why it is absent.
	Evidence string `json:"evidence"`
}

// Decider is the rule (or chain policy) the kernel says dropped the packet.
type Decider struct {
	Backend  string `json:"backend"`
	Family   string `json:"family"`
	Table    string `json:"table"`
	Chain    string `json:"chain"`
	Handle   uint64 `json:"handle,omitempty"`
	Position int    `json:"position,omitempty"`
	Policy   bool   `json:"policy,omitempty"`
	Text     string `json:"text"`
}

const traceTable = `table inet vdlab_trace {
	chain pre {
		type filter hook prerouting priority -500; policy accept;
		meta l4proto vrrp meta nftrace set 1
	}
	chain out {
		type filter hook output priority -500; policy accept;
		meta l4proto vrrp meta nftrace set 1
	}
}
table netdev vdlab_trace {
	chain ingress {
		type filter hook ingress device "eth0" priority -500; policy accept;
		meta l4proto vrrp meta nftrace set 1
	}
}
`

func runScenario(s scenario, self, dir string) (*Expected, error) {
	l, err := newLab(s.name)
	if err != nil {
		return nil, err
	}
	defer l.close()
	if s.firewalld != "" {
		if err := l.startFirewalld(s.firewalld); err != nil {
			return nil, fmt.Errorf("firewalld: %w", err)
		}
	}
	if s.setup != "" {
		if err := l.sh(l.host, s.setup); err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
	}
	files, err := l.dump()
	if err != nil {
		return nil, err
	}
	fam := s.family
	if fam == 0 {
		fam = 4
	}
	exp := &Expected{About: s.about, Direction: s.direction(), Family: fam}
	group, src := "224.0.0.18", peerV4
	if fam == 6 {
		group, src = "ff02::12", peerLL
	}
	recvNS, sendNS := l.host, l.peer
	if exp.Direction == "out" {
		recvNS, sendNS = l.peer, l.host
		src = hostV4
		if fam == 6 {
			src = hostLL
		}
		exp.OutIface = "eth0"
	} else {
		exp.InIface = "eth0"
	}
	exp.Src, exp.Dst = src, group

	if _, err := l.run(l.host, nil, traceTable, "nft", "-f", "-"); err != nil {
		return nil, err
	}
	mon, err := l.start("trace.log", nil, "ip", "netns", "exec", l.host, "nft", "-a", "monitor", "trace")
	if err != nil {
		return nil, err
	}
	legacyBefore := l.legacyCounters(fam)
	wait := "20s"
	if exp.Direction == "out" {
		// keepalived configured as MASTER sends at once; nothing after
		// this long means the host's own firewall stopped its adverts.
		wait = "8s"
	}
	recv := exec.Command("ip", "netns", "exec", recvNS, self, "recv", "-i", "eth0", "-g", group, "-n", "3", "-t", wait)
	stderr, err := recv.StderrPipe()
	if err != nil {
		return nil, err
	}
	var stdout strings.Builder
	recv.Stdout = &stdout
	if err := recv.Start(); err != nil {
		return nil, err
	}
	l.procs = append(l.procs, recv)
	rd := bufio.NewReader(stderr)
	if line, err := rd.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		return nil, fmt.Errorf("receiver did not start: %q %v", line, err)
	}
	time.Sleep(300 * time.Millisecond) // let nft monitor subscribe
	ka, err := l.startKeepalived(sendNS, fam)
	if err != nil {
		return nil, err
	}
	rest, _ := readAll(rd)
	if err := recv.Wait(); err != nil {
		return nil, fmt.Errorf("receiver: %v: %s", err, rest)
	}
	var rr recvResult
	if err := json.Unmarshal([]byte(stdout.String()), &rr); err != nil {
		return nil, fmt.Errorf("receiver output %q: %w", stdout.String(), err)
	}
	stop(ka)
	time.Sleep(300 * time.Millisecond)
	stop(mon)
	legacyAfter := l.legacyCounters(fam)
	exp.Wire, exp.Socket = rr.Wire, rr.Socket
	kalog, _ := os.ReadFile(filepath.Join(l.dir, "keepalived-"+sendNS+".log"))
	// For "out", a drop in the host's output path shows as sendto failing
	// with EPERM in keepalived's log, and nothing reaching the peer.
	outBlocked := exp.Direction == "out" && exp.Wire == 0 && strings.Contains(string(kalog), "send advert error 1 (Operation not permitted)")
	if exp.Wire < 2 && !outBlocked {
		return nil, fmt.Errorf("only %d adverts on the wire; keepalived said:\n%s", exp.Wire, tail(string(kalog), 15))
	}
	exp.Delivered = exp.Socket > 0

	traceLog, _ := os.ReadFile(filepath.Join(l.dir, "trace.log"))
	pkt := firstPacketTrace(string(traceLog))
	files["trace.txt"] = strings.Join(pkt, "\n") + "\n"
	if !exp.Delivered {
		if d := traceDecider(pkt, files["nft.json"]); d != nil {
			exp.DecidedBy, exp.Evidence = d, "nft trace"
		} else if d, why := legacyDecider(legacyBefore, legacyAfter, fam, exp.Direction); d != nil {
			exp.DecidedBy, exp.Evidence = d, "iptables-legacy counters"
		} else {
			exp.Evidence = "no single deciding rule in the nft trace or legacy counters: " + why
		}
		if legacyAfter != "" {
			files["legacy-counters-after.txt"] = legacyAfter
		}
		if outBlocked {
			exp.Evidence += "; keepalived's sendto failed with EPERM"
		}
	} else {
		exp.Evidence = "delivered to the raw socket"
	}
	b, err := json.MarshalIndent(exp, "", "  ")
	if err != nil {
		return nil, err
	}
	files["expected.json"] = string(b) + "\n"
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	return exp, nil
}

func readAll(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	_, err := r.WriteTo(&sb)
	return sb.String(), err
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dump saves the host's ruleset as a user would: nft -j list ruleset and the
// four iptables-save flavours (kept only when they list a table).
func (l *lab) dump() (map[string]string, error) {
	files := map[string]string{}
	js, err := l.run(l.host, nil, "", "nft", "-j", "list", "ruleset")
	if err != nil {
		return nil, err
	}
	files["nft.json"] = js
	txt, err := l.run(l.host, nil, "", "nft", "list", "ruleset")
	if err != nil {
		return nil, err
	}
	files["nft.txt"] = txt
	for _, tool := range []string{"iptables-nft-save", "ip6tables-nft-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		out, err := l.run(l.host, nil, "", tool)
		if err != nil {
			return nil, err
		}
		if strings.Contains(out, "\n*") || strings.HasPrefix(out, "*") {
			files[tool+".txt"] = out
		}
	}
	// firewalld's permanent direct rules, as /etc/firewalld/direct.xml.
	if b, err := os.ReadFile(filepath.Join(l.dir, "etc-firewalld", "direct.xml")); err == nil {
		files["firewalld-direct.xml"] = string(b)
	}
	return files, nil
}

func (l *lab) legacyCounters(fam int) string {
	tool := "iptables-legacy-save"
	if fam == 6 {
		tool = "ip6tables-legacy-save"
	}
	out, err := l.run(l.host, nil, "", tool, "-c")
	if err != nil || !strings.Contains(out, "*") {
		return ""
	}
	return out
}

var traceRE = regexp.MustCompile(`^trace id (\S+) (\S+) (\S+) (\S+) (?:rule (.*?)(?: # handle (\d+))? \(verdict (\S+)[^)]*\)|policy (\S+)|(packet): .*)\s*$`)

// firstPacketTrace returns the trace lines of the first packet traced from
// its start, without the tracing table's own lines.
func firstPacketTrace(log string) []string {
	var id string
	var out []string
	for _, line := range strings.Split(log, "\n") {
		m := traceRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if id == "" {
			if m[3] == "vdlab_trace" && m[9] == "packet" {
				id = m[1]
			}
			continue
		}
		if m[1] == id && m[3] != "vdlab_trace" {
			out = append(out, line)
		}
	}
	return out
}

// traceDecider finds the rule or policy that gave the final drop verdict.
func traceDecider(lines []string, nftJSON string) *Decider {
	for i := len(lines) - 1; i >= 0; i-- {
		m := traceRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		d := &Decider{Family: m[2], Table: m[3], Chain: m[4]}
		switch {
		case m[7] == "drop":
			d.Text = m[5]
			d.Handle, _ = strconv.ParseUint(m[6], 10, 64)
		case m[8] == "drop":
			d.Policy = true
			d.Text = "policy drop"
		default:
			continue
		}
		d.Backend = string(ruleset.BackendNFT)
		if rs, err := nftjson.Parse([]byte(nftJSON), "nft.json"); err == nil {
			for _, t := range rs.Tables {
				if string(t.Family) == d.Family && t.Name == d.Table {
					d.Backend = string(t.Backend)
				}
			}
		}
		return d
	}
	return nil
}

var counterRuleRE = regexp.MustCompile(`^\[(\d+):\d+\] -A (\S+) (.*)$`)
var counterPolicyRE = regexp.MustCompile(`^:(\S+) (ACCEPT|DROP) \[(\d+):\d+\]$`)

type counterKey struct {
	table, chain string
	pos          int // 0: the policy
}

type counterVal struct {
	pkts uint64
	text string
	drop bool
}

func parseCounters(s string) map[counterKey]counterVal {
	out := map[counterKey]counterVal{}
	table := ""
	pos := map[string]int{}
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			pos = map[string]int{}
		case counterPolicyRE.MatchString(line):
			m := counterPolicyRE.FindStringSubmatch(line)
			n, _ := strconv.ParseUint(m[3], 10, 64)
			out[counterKey{table, m[1], 0}] = counterVal{n, "policy " + strings.ToLower(m[2]), m[2] == "DROP"}
		case counterRuleRE.MatchString(line):
			m := counterRuleRE.FindStringSubmatch(line)
			pos[m[2]]++
			n, _ := strconv.ParseUint(m[1], 10, 64)
			drop := strings.HasSuffix(m[3], "-j DROP") || strings.Contains(m[3], "-j REJECT")
			out[counterKey{table, m[2], pos[m[2]]}] = counterVal{n, "-A " + m[2] + " " + m[3], drop}
		}
	}
	return out
}

// legacyDecider finds the single iptables-legacy DROP/REJECT rule or DROP
// policy whose packet counter grew while the adverts were sent.
func legacyDecider(before, after string, fam int, direction string) (*Decider, string) {
	if after == "" {
		return nil, "no iptables-legacy tables"
	}
	b, a := parseCounters(before), parseCounters(after)
	hooks := map[string]bool{"PREROUTING": true, "INPUT": true}
	if direction == "out" {
		hooks = map[string]bool{"OUTPUT": true, "POSTROUTING": true}
	}
	var cands []counterKey
	for k, v := range a {
		if !v.drop || v.pkts <= b[k].pkts {
			continue
		}
		if k.pos == 0 && !hooks[k.chain] {
			continue
		}
		cands = append(cands, k)
	}
	if len(cands) != 1 {
		sort.Slice(cands, func(i, j int) bool { return fmt.Sprint(cands[i]) < fmt.Sprint(cands[j]) })
		return nil, fmt.Sprintf("%d candidate(s) %v", len(cands), cands)
	}
	k := cands[0]
	famName := "ip"
	if fam == 6 {
		famName = "ip6"
	}
	d := &Decider{Backend: string(ruleset.BackendIptablesLegacy), Family: famName, Table: k.table, Chain: k.chain, Position: k.pos, Text: a[k].text}
	if k.pos == 0 {
		d.Policy = true
	}
	return d, ""
}

func writeReadme(out string) error {
	var sb strings.Builder
	sb.WriteString(`# Rulesets made by the real tools

Each directory is one host firewall, built inside throwaway network namespaces
by ` + "`go run ./fw/internal/rulesetlab -out testdata/rulesets`" + ` (as root; the
scenario definitions, with the exact commands, are in
fw/internal/rulesetlab/scenarios.go). Files per directory:

- nft.json: ` + "`nft -j list ruleset`" + ` (nftables 1.0.6) of the host namespace;
- nft.txt: ` + "`nft list ruleset`" + ` of the same, to check how rules are rendered;
- iptables-nft-save.txt, ip6tables-nft-save.txt, iptables-legacy-save.txt,
  ip6tables-legacy-save.txt: the save output of each flavour that had tables;
- firewalld-direct.xml: firewalld's permanent direct rules
  (/etc/firewalld/direct.xml), where the scenario added some;
- expected.json: the advert (direction, family, interface, source,
  destination) and what the kernel did with real keepalived adverts from the
  peer namespace (or, for "out", from keepalived on the host): adverts seen on
  the wire, adverts delivered to a protocol-112 raw socket joined to the group,
  and the deciding rule taken from an nftables trace or iptables-legacy counters;
- trace.txt: the nftables trace (` + "`nft -a monitor trace`" + `) of the first advert;
- legacy-counters-after.txt: ` + "`iptables-legacy-save -c`" + ` after the adverts, when legacy tables exist.

The same scenarios are rebuilt and checked against the kernel on every test
run: ` + "`go test ./fw/internal/rulesetlab -run TestDifferential`" + ` (root) loads each
into fresh namespaces with the commands of scenarios.go (a real firewalld where
it applies), sends keepalived adverts, and compares the kernel's verdict and
deciding rule (delivery to the socket, nftables trace, legacy counters) with the
evaluator's on the ruleset read live from the same namespace.

| directory | how it was made |
|---|---|
`)
	for _, s := range scenarios {
		if _, err := os.Stat(filepath.Join(out, s.name)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		fmt.Fprintf(&sb, "| %s | %s |\n", s.name, s.about)
	}
	return os.WriteFile(filepath.Join(out, "README.md"), []byte(sb.String()), 0o644)
}
