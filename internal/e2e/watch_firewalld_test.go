package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// TestWatchFirewalld: the problem the product is for, watched
// continuously. A real firewalld (nftables backend, default zone public)
// on the backup rejects VRRP, so both nodes are master; `vrrpdoctor run
// --monitor` beside keepalived there logs split-brain and
// firewall-input-drop naming firewalld's filter_IN_public reject. Adding
// the zone rich rule at runtime (firewall-cmd, no reload) moves the
// nftables generation: the watch reads the firewall again and both
// findings clear.
func TestWatchFirewalld(t *testing.T) {
	t.Parallel()
	p := newCheckLab(t, "firewalld", "firewall-cmd", "dbus-daemon", "unshare", "nft")
	bus := checkStartFirewalld(t, p.b, "nftables")
	p.start(t, 3, 250*time.Millisecond)
	p.waitHolders(t, p.a, p.b)

	proc, err := p.b.Start("env", "DBUS_SYSTEM_BUS_ADDRESS="+bus, vrrpdoctor(t), "run", "--monitor", "-c", p.kb.ConfigPath, "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vrrpdoctor run --monitor log:\n%s", proc.Log())
		}
	})
	logged := func(re string) func() (bool, error) {
		r := regexp.MustCompile(re)
		return func() (bool, error) { return r.MatchString(proc.Log()), nil }
	}
	start := time.Now()
	if err := netlab.WaitFor(30*time.Second, logged(`msg=finding id=firewall-input-drop severity=critical`)); err != nil {
		t.Fatalf("firewall-input-drop not logged: %v", err)
	}
	if err := netlab.WaitFor(10*time.Second, logged(`msg=finding id=split-brain severity=critical`)); err != nil {
		t.Errorf("split-brain not logged: %v", err)
	}
	t.Logf("findings logged %s after the watch started", time.Since(start).Round(100*time.Millisecond))
	line := ""
	for _, l := range strings.Split(proc.Log(), "\n") {
		if strings.Contains(l, "msg=finding id=firewall-input-drop") {
			line = l
		}
	}
	for _, want := range []string{"reject with icmpx admin-prohibited", "filter_IN_public", "owner firewalld", "zone public"} {
		if !strings.Contains(line, want) {
			t.Errorf("firewall-input-drop line lacks %q: %s", want, line)
		}
	}

	fixAt := time.Now()
	rich := `rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept`
	if out, err := checkFirewallCmd(bus, "--zone=public", "--add-rich-rule="+rich); err != nil {
		t.Fatalf("firewall-cmd --add-rich-rule: %v: %s", err, out)
	}
	p.waitHolders(t, p.a)
	for _, id := range []string{"firewall-input-drop", "split-brain"} {
		if err := netlab.WaitFor(30*time.Second, logged(`msg="finding cleared" id=`+id+` `)); err != nil {
			t.Errorf("%s did not clear: %v", id, err)
		}
	}
	t.Logf("cleared %s after the rich rule", time.Since(fixAt).Round(100*time.Millisecond))
	if !strings.Contains(proc.Log(), `msg="watch: firewall read"`) {
		t.Errorf("no firewall reading logged")
	}
}
