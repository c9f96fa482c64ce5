package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// The real output shown in docs/troubleshooting-split-brain.md,
// docs/firewalld.md and the command guides is made by TestDocsSplitBrain:
//
//	VRRPDOCTOR_DOCS_OUT=/tmp/docs go test -count=1 -v -run TestDocs ./internal/e2e
//
// It stages the classic split brain (keepalived pair, VRRPv2, 1 s adverts,
// VRID 51, firewalld 1.3.3 with its default zone and the nftables backend
// on the backup b), then runs, in the nodes' namespaces, the commands the
// walk-through shows, one file per command (NN-name.txt: the node, the
// command as typed, its standard output, its standard error, its exit
// status). The lab's temporary directory is written as $LAB. Without the
// variable the test is skipped: it asserts only what the walk-through
// relies on, the scenario matrices of the check and fix-firewall tests do
// the rest.

// docsRecorder writes one file per command into dir.
type docsRecorder struct {
	t   *testing.T
	dir string
	lab *netlab.Lab
	mu  sync.Mutex
	seq int
}

// run runs argv in h (ip netns exec) with env added, in the lab directory,
// and records it as the file name, shown as the command line shown (the
// node's prompt is h's name). It returns standard output and the exit
// status.
func (d *docsRecorder) run(h *netlab.Host, env []string, name, shown string, argv ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := h.Command(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = d.lab.Dir()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		return "", 0, fmt.Errorf("%s: %w", shown, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# on %s\n$ %s\n%s", h.Name(), shown, out.String())
	if errOut.Len() > 0 {
		fmt.Fprintf(&b, "--- stderr\n%s", errOut.String())
	}
	fmt.Fprintf(&b, "--- exit status %d\n", code)
	text := strings.ReplaceAll(b.String(), d.lab.Dir(), "$LAB")
	d.mu.Lock()
	d.seq++
	file := filepath.Join(d.dir, fmt.Sprintf("%02d-%s.txt", d.seq, name))
	d.mu.Unlock()
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		return "", 0, err
	}
	d.t.Logf("%s: exit %d", shown, code)
	return out.String(), code, nil
}

// must is run that fails the test on an error it cannot record.
func (d *docsRecorder) must(h *netlab.Host, env []string, name, shown string, argv ...string) (string, int) {
	d.t.Helper()
	out, code, err := d.run(h, env, name, shown, argv...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out, code
}

// vd runs vrrpdoctor with args in h, shown as "vrrpdoctor args".
func (d *docsRecorder) vd(h *netlab.Host, env []string, name string, args ...string) (string, int) {
	d.t.Helper()
	shown := "vrrpdoctor " + strings.ReplaceAll(strings.Join(args, " "), d.lab.Dir()+"/", "$LAB/")
	return d.must(h, env, name, shown, append([]string{vrrpdoctor(d.t)}, args...)...)
}

// both runs vrrpdoctor with args on a and b at the same time, as on two
// terminals.
func (d *docsRecorder) both(a, b *netlab.Host, envA, envB []string, name string, args ...string) {
	d.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, h := range []*netlab.Host{a, b} {
		env := envA
		if i == 1 {
			env = envB
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = d.run(h, env, name+"-"+h.Name(), "vrrpdoctor "+strings.Join(args, " "), append([]string{vrrpdoctor(d.t)}, args...)...)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			d.t.Fatal(err)
		}
	}
}

// keepalivedLog records the lines of k's log that show state changes.
func (d *docsRecorder) keepalivedLog(h *netlab.Host, k *netlab.Keepalived, name string) {
	d.t.Helper()
	var lines []string
	for _, ln := range strings.Split(k.Log(), "\n") {
		if strings.Contains(ln, "Entering") || strings.Contains(ln, "received lower priority") || strings.Contains(ln, "received higher priority") {
			lines = append(lines, ln)
		}
	}
	d.mu.Lock()
	d.seq++
	file := filepath.Join(d.dir, fmt.Sprintf("%02d-%s.txt", d.seq, name))
	d.mu.Unlock()
	text := fmt.Sprintf("# keepalived's log on %s (state changes)\n%s\n", h.Name(), strings.Join(lines, "\n"))
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// docsQuote joins args as a shell would need them: single quotes around
// an argument with spaces or quotes (after the = of a --flag=value).
func docsQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if !strings.ContainsAny(a, " \"'") {
			continue
		}
		flag := ""
		if j := strings.Index(a, "="); strings.HasPrefix(a, "--") && j > 0 {
			flag, a = a[:j+1], a[j+1:]
		}
		q[i] = flag + "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// docsOut is the directory the documentation's output goes to (sub under
// VRRPDOCTOR_DOCS_OUT); the test is skipped without the variable.
func docsOut(t *testing.T, sub string) string {
	t.Helper()
	out := os.Getenv("VRRPDOCTOR_DOCS_OUT")
	if out == "" {
		t.Skip("set VRRPDOCTOR_DOCS_OUT=DIR to record the documentation's lab output into DIR")
	}
	out = filepath.Join(out, sub)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDocsFirewalldIptablesBackend records, for docs/firewalld.md, the
// same split brain with FirewallBackend=iptables, where the classic direct
// rules do end it.
func TestDocsFirewalldIptablesBackend(t *testing.T) {
	out := docsOut(t, "iptables-backend")
	p := newCheckLab(t, "firewalld", "firewall-cmd", "dbus-daemon", "unshare", "iptables")
	bus := checkStartFirewalld(t, p.b, "iptables")
	p.envB = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus}
	p.start(t, 2, time.Second)
	p.waitHolders(t, p.a, p.b)
	d := &docsRecorder{t: t, dir: out, lab: p.lab}
	b, envB := p.b, p.envB
	fwc := func(name string, args ...string) {
		t.Helper()
		d.must(b, envB, name, "firewall-cmd "+docsQuote(args), append([]string{"firewall-cmd"}, args...)...)
	}
	conf := p.kb.ConfigPath
	state := filepath.Join(p.lab.Dir(), "fix-firewall.json")
	d.vd(b, envB, "fw-explain-b", "fw", "explain", "-c", conf, "--direction", "in")
	d.vd(b, envB, "fix-firewall-print", "fix-firewall", "-c", conf, "--state", state)
	fwc("direct-add-in", "--direct", "--permanent", "--add-rule", "ipv4", "filter", "INPUT", "0", "--in-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT")
	fwc("direct-add-out", "--direct", "--permanent", "--add-rule", "ipv4", "filter", "OUTPUT", "0", "--out-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT")
	fwc("direct-reload", "--reload")
	p.waitHolders(t, p.a)
	d.must(b, nil, "direct-ip-addr-b", "ip -4 addr show dev eth0", "ip", "-4", "addr", "show", "dev", "eth0")
	d.must(b, nil, "direct-iptables-input", "iptables -S INPUT", "iptables", "-S", "INPUT")
	d.must(b, nil, "direct-iptables-input-direct", "iptables -S INPUT_direct", "iptables", "-S", "INPUT_direct")
	d.vd(b, envB, "direct-fw-explain-b", "fw", "explain", "-c", conf, "--direction", "in")
}

// TestDocsRPFilter records, for docs/why-tcpdump-sees-it.md, the same
// symptom without any firewall: strict rp_filter on b with the route back
// to a through another interface.
func TestDocsRPFilter(t *testing.T) {
	out := docsOut(t, "rp-filter")
	p := newCheckLab(t)
	p.start(t, 2, time.Second)
	p.waitHolders(t, p.a)
	b := p.b
	for _, args := range [][]string{
		{"link", "add", "other0", "type", "veth", "peer", "name", "other1"},
		{"link", "set", "other0", "up"},
		{"link", "set", "other1", "up"},
		{"route", "add", "198.51.100.1/32", "dev", "other0"},
	} {
		if _, err := b.Run("ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"net/ipv4/conf/all/rp_filter", "net/ipv4/conf/eth0/rp_filter"} {
		if err := b.Sysctl(k, "1"); err != nil {
			t.Fatal(err)
		}
	}
	p.waitHolders(t, p.a, p.b)
	d := &docsRecorder{t: t, dir: out, lab: p.lab}
	d.must(b, nil, "ip-route-get", "ip route get 198.51.100.1", "ip", "route", "get", "198.51.100.1")
	d.vd(b, nil, "capture-b", "capture", "-i", "eth0", "--duration", "4s")
	d.vd(b, nil, "check-b", "check")
}

func TestDocsSplitBrain(t *testing.T) {
	out := docsOut(t, "")
	p := newCheckLab(t, "firewalld", "firewall-cmd", "dbus-daemon", "unshare", "nft", "iptables", "tcpdump")
	bus := checkStartFirewalld(t, p.b, "nftables")
	p.envB = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus}
	p.start(t, 2, time.Second)
	p.waitHolders(t, p.a, p.b)
	time.Sleep(3 * time.Second) // a few adverts in the logs
	d := &docsRecorder{t: t, dir: out, lab: p.lab}
	a, b, envB := p.a, p.b, p.envB
	fwc := func(name string, args ...string) (string, int) {
		t.Helper()
		return d.must(b, envB, name, "firewall-cmd "+docsQuote(args), append([]string{"firewall-cmd"}, args...)...)
	}
	ipAddr := func(h *netlab.Host, name string) {
		t.Helper()
		d.must(h, nil, name, "ip -4 addr show dev eth0", "ip", "-4", "addr", "show", "dev", "eth0")
	}
	richRule := `rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept`
	directIn := []string{"--direct", "--permanent", "--add-rule", "ipv4", "filter", "INPUT", "0", "--in-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"}
	directOut := []string{"--direct", "--permanent", "--add-rule", "ipv4", "filter", "OUTPUT", "0", "--out-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"}

	// The symptoms.
	ipAddr(a, "symptom-ip-addr-a")
	ipAddr(b, "symptom-ip-addr-b")
	d.keepalivedLog(a, p.ka, "symptom-keepalived-log-a")
	d.keepalivedLog(b, p.kb, "symptom-keepalived-log-b")
	d.must(b, nil, "symptom-tcpdump-b", "tcpdump -ni eth0 -c 4 -v 'ip proto 112'", "tcpdump", "-ni", "eth0", "-c", "4", "-v", "ip proto 112")
	fwc("firewalld-version", "--version")
	fwc("firewalld-default-zone", "--get-default-zone")
	fwc("firewalld-active-zones", "--get-active-zones")
	fwc("firewalld-list-all", "--zone=public", "--list-all")
	fwc("firewalld-vrrp-service", "--info-service=vrrp")
	d.must(b, nil, "nft-filter-in-public", "nft list chain inet firewalld filter_IN_public", "nft", "list", "chain", "inet", "firewalld", "filter_IN_public")

	// The diagnosis.
	d.both(a, b, nil, envB, "check", "check")
	d.must(a, nil, "check-json-a", "vrrpdoctor check --json > a.json", "sh", "-c", vrrpdoctor(t)+" check --json --node a > a.json")
	d.must(b, envB, "check-json-b", "vrrpdoctor check --json > b.json", "sh", "-c", vrrpdoctor(t)+" check --json --node b > b.json")
	d.vd(b, nil, "check-combine", "check", "--combine", "a.json", "b.json")
	d.vd(b, envB, "check-nagios-b", "check", "--nagios")
	d.vd(b, envB, "capture-b", "capture", "-i", "eth0", "--duration", "5s")
	conf := p.kb.ConfigPath
	d.vd(b, envB, "fw-explain-b", "fw", "explain", "-c", conf)

	// The fix.
	state := filepath.Join(p.lab.Dir(), "fix-firewall.json")
	d.vd(b, envB, "fix-firewall-print", "fix-firewall", "-c", conf, "--state", state)
	d.vd(b, envB, "fix-firewall-apply", "fix-firewall", "-c", conf, "--state", state, "--apply")
	p.waitHolders(t, a)
	time.Sleep(2 * time.Second)
	ipAddr(b, "fixed-ip-addr-b")
	d.keepalivedLog(b, p.kb, "fixed-keepalived-log-b")
	fwc("fixed-rich-rules-runtime", "--zone=public", "--list-rich-rules")
	fwc("fixed-rich-rules-permanent", "--permanent", "--zone=public", "--list-rich-rules")
	d.vd(b, envB, "fixed-check-b", "check")
	d.vd(b, envB, "fix-firewall-apply-again", "fix-firewall", "-c", conf, "--state", state, "--apply")
	d.vd(b, envB, "fix-firewall-undo", "fix-firewall", "-c", conf, "--state", state, "--undo")
	p.waitHolders(t, a, b)

	// The classic direct rules, on the nftables backend: they do not help.
	fwc("direct-add-in", directIn...)
	fwc("direct-add-out", directOut...)
	fwc("direct-reload", "--reload")
	time.Sleep(5 * time.Second) // 5 advert intervals
	ipAddr(b, "direct-ip-addr-b")
	if holders, err := p.lab.Holders(vip); err != nil || len(holders) != 2 {
		t.Errorf("with the direct rules: VIP holders %s (%v), want both (the split brain stays on the nftables backend)", netlab.HostNames(holders), err)
	}
	d.must(b, nil, "direct-nft-ip-filter-input", "nft list chain ip filter INPUT", "nft", "list", "chain", "ip", "filter", "INPUT")
	d.vd(b, envB, "direct-fw-explain-b", "fw", "explain", "-c", conf, "--direction", "in")
	d.vd(b, envB, "direct-check-b", "check")
	fwc("direct-remove-in", append([]string{"--direct", "--permanent", "--remove-rule"}, directIn[3:]...)...)
	fwc("direct-remove-out", append([]string{"--direct", "--permanent", "--remove-rule"}, directOut[3:]...)...)
	fwc("direct-remove-reload", "--reload")

	// --add-protocol=vrrp: works.
	fwc("protocol-add", "--permanent", "--zone=public", "--add-protocol=vrrp")
	fwc("protocol-reload", "--reload")
	p.waitHolders(t, a)
	ipAddr(b, "protocol-ip-addr-b")
	d.vd(b, envB, "protocol-fw-explain-b", "fw", "explain", "-c", conf, "--direction", "in")
	fwc("protocol-remove", "--permanent", "--zone=public", "--remove-protocol=vrrp")
	fwc("protocol-remove-reload", "--reload")
	p.waitHolders(t, a, b)

	// The rich rule by hand, permanent then reload: works.
	fwc("rich-add", "--permanent", "--zone=public", "--add-rich-rule="+richRule)
	fwc("rich-reload", "--reload")
	p.waitHolders(t, a)
	ipAddr(b, "rich-ip-addr-b")
	d.must(b, nil, "rich-nft-filter-in-public-allow", "nft list chain inet firewalld filter_IN_public_allow", "nft", "list", "chain", "inet", "firewalld", "filter_IN_public_allow")
}
