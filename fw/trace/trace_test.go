package trace_test

import (
	"bufio"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/fw/internal/fwlab"
	"github.com/vrrpdoctor/vrrpdoctor/fw/trace"
)

var labTools = map[string]string{"ip": "iproute2", "nft": "nftables", "keepalived": "keepalived"}

// handleOf finds the handle nft gives the rule whose text contains want.
func handleOf(t *testing.T, ns *fwlab.NS, want string) uint64 {
	t.Helper()
	out, err := ns.Exec(nil, "nft", "-a", "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`# handle (\d+)$`)
	for _, ln := range strings.Split(string(out), "\n") {
		if strings.Contains(ln, want) {
			if m := re.FindStringSubmatch(ln); m != nil {
				h, _ := strconv.ParseUint(m[1], 10, 64)
				return h
			}
		}
	}
	t.Fatalf("no rule %q in\n%s", want, out)
	return 0
}

// listen joins the VRRP group on the host's eth0, as keepalived does: the
// kernel delivers multicast locally, through the input hook, only to a
// member.
func listen(t *testing.T, ns *fwlab.NS, group string) {
	t.Helper()
	r, err := fwlab.NewReceiver(ns.FD, "eth0", netip.MustParseAddr(group))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
}

func next(t *testing.T, tr *trace.Tracer, d time.Duration) *trace.Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	p, err := tr.Next(ctx)
	if err != nil {
		t.Fatalf("no traced packet: %v", err)
	}
	return p
}

// TestTraceKeepalivedAdverts traces real keepalived adverts from a peer
// namespace through a host ruleset with an ingress chain, a jump, and a drop
// in input, and checks the kernel's events, verdict and deciding rule.
func TestTraceKeepalivedAdverts(t *testing.T) {
	fwlab.Require(t, labTools)
	host, peer := fwlab.NewPair(t)
	ruleset := `table netdev edge {
	chain ingress {
		type filter hook ingress device "eth0" priority 0; policy accept;
		counter
	}
}
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		meta l4proto vrrp jump vrrp_in
	}
	chain vrrp_in {
		ip saddr 203.0.113.0/24 accept
		ip daddr 224.0.0.18 counter drop
	}
}
`
	if _, err := host.Exec([]byte(ruleset), "nft", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	dropHandle := handleOf(t, host, "ip daddr 224.0.0.18 counter")
	listen(t, host, "224.0.0.18")
	tr, err := trace.Start(trace.Options{NetNS: host.FD, IngressDevices: []string{"eth0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tables, err := host.Tables()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tables, "inet "+trace.TableName) || !slices.Contains(tables, "netdev "+trace.TableName) {
		t.Fatalf("tracer tables missing: %v", tables)
	}
	peer.StartKeepalived(t, fwlab.KeepalivedConf(4, 100*time.Millisecond))
	for i := 0; i < 3; i++ {
		p := next(t, tr, 10*time.Second)
		t.Logf("%s", p)
		if p.Direction != trace.In || p.InIface != "eth0" || p.Src.String() != fwlab.PeerV4 || p.Dst.String() != "224.0.0.18" || p.Proto != 112 || p.TTL != 255 {
			t.Fatalf("packet %+v", p)
		}
		if p.VRRP == nil || p.VRRP.Version != 3 || p.VRRP.VRID != 51 || p.VRRP.Priority != 150 {
			t.Fatalf("VRRP header %+v", p.VRRP)
		}
		if p.Verdict != trace.Drop || p.By == nil || p.By.Table != "filter" || p.By.Chain != "vrrp_in" || p.By.Handle != dropHandle || p.By.Family != "inet" {
			t.Fatalf("verdict %s by %v; want drop by inet filter vrrp_in handle %d", p.Verdict, p.By, dropHandle)
		}
		var chains []string
		for _, e := range p.Events {
			if e.Table == trace.TableName {
				t.Fatalf("tracer's own event in the packet: %v", e)
			}
			chains = append(chains, e.Table+"/"+e.Chain+"/"+e.Verdict)
		}
		want := []string{"edge/ingress/continue", "edge/ingress/accept", "filter/input/jump", "filter/vrrp_in/drop"}
		if !slices.Equal(chains, want) {
			t.Fatalf("events %v, want %v", chains, want)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	tables, err = host.Tables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if strings.HasSuffix(tb, " "+trace.TableName) {
			t.Fatalf("Close left %s", tb)
		}
	}
}

// TestTraceAccept checks a packet every chain lets through: verdict accept
// by the last base chain's accept, found once the events fall quiet.
func TestTraceAccept(t *testing.T) {
	fwlab.Require(t, labTools)
	host, peer := fwlab.NewPair(t)
	ruleset := `table ip early {
	chain input {
		type filter hook input priority -10; policy drop;
		ip protocol vrrp accept
	}
}
table ip late {
	chain input {
		type filter hook input priority 10; policy accept;
		ip protocol tcp drop
	}
}
`
	if _, err := host.Exec([]byte(ruleset), "nft", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	listen(t, host, "224.0.0.18")
	listen(t, host, "ff02::12")
	tr, err := trace.Start(trace.Options{NetNS: host.FD})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	peer.StartKeepalived(t, fwlab.KeepalivedConf(6, 100*time.Millisecond))
	p := next(t, tr, 10*time.Second)
	t.Logf("%s", p)
	if p.Family != 6 || p.Dst.String() != "ff02::12" || p.Src.String() != fwlab.PeerLL {
		t.Fatalf("packet %+v", p)
	}
	// IPv6: the ip tables do not see it; only the tracer's chain does.
	if p.Verdict != trace.Accept || p.By != nil || len(p.Events) != 0 {
		t.Fatalf("verdict %s by %v, events %v", p.Verdict, p.By, p.Events)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}

	// A device that does not exist is traced from prerouting.
	tr, err = trace.Start(trace.Options{NetNS: host.FD, IngressDevices: []string{"nosuch0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	peer.StartKeepalived(t, strings.Replace(fwlab.KeepalivedConf(4, 100*time.Millisecond), "virtual_router_id 51", "virtual_router_id 52", 1))
	for {
		p = next(t, tr, 10*time.Second)
		if p.Family == 4 {
			break
		}
	}
	t.Logf("%s", p)
	if p.Verdict != trace.Accept || p.By == nil || p.By.Table != "late" || p.By.Type != trace.TypePolicy {
		t.Fatalf("verdict %s by %v, want accept by ip late input's policy", p.Verdict, p.By)
	}
}

// childEnv makes TestHelperTracer start a trace in the namespace it runs
// in and wait to be killed.
const childEnv = "VRRPDOCTOR_TRACE_CHILD"

func TestHelperTracer(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestStaleTable")
	}
	// This adds a table to the current namespace: refuse anywhere but a
	// lab namespace of fwlab's.
	if out, err := exec.Command("ip", "netns", "identify").Output(); err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), "vdfw") {
		t.Fatalf("refusing to trace outside a lab namespace (ip netns identify: %q %v)", out, err)
	}
	tr, err := trace.Start(trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = tr
	os.Stdout.WriteString("tracing\n")
	time.Sleep(time.Minute)
}

// TestStaleTable kills a tracing process with SIGKILL, as a crash would:
// while it runs, a second trace is refused; once it is dead, the next Start
// removes the table it left.
func TestStaleTable(t *testing.T) {
	fwlab.Require(t, labTools)
	host := fwlab.NewNS(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", host.Name, self, "-test.run", "^TestHelperTracer$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.Contains(sc.Text(), "tracing") {
	}
	if _, err := trace.Start(trace.Options{NetNS: host.FD}); !errors.Is(err, trace.ErrBusy) {
		t.Fatalf("second trace: %v, want ErrBusy", err)
	}
	if removed, err := trace.Cleanup(host.FD); removed || !errors.Is(err, trace.ErrBusy) {
		t.Fatalf("Cleanup of a running trace: %v %v", removed, err)
	}
	// `ip netns exec` execs the test binary: the PID is the tracer's.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	tables, err := host.Tables()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tables, "inet "+trace.TableName) {
		t.Fatalf("the killed tracer's table is gone already: %v", tables)
	}
	tr, err := trace.Start(trace.Options{NetNS: host.FD})
	if err != nil {
		t.Fatalf("Start after a crash: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if tables, _ = host.Tables(); len(tables) != 0 {
		t.Fatalf("tables left: %v", tables)
	}
}
