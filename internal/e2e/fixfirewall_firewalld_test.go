package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestFixFirewallFirewalldIPv6: firewalld (nftables backend) on the backup
// with VRRPv3 over IPv6: the rich rule names ff02::12 and ends the split
// brain. It fixes the incoming path only (--in): the evaluator cannot read
// an element of firewalld's IPv6 filter_OUTPUT address set ("bad prefix
// 0.0.0.0/96") and so answers unknown for this node's own adverts.
//
// (Unicast VRRP cannot be staged against firewalld's default zone: conntrack
// tracks protocol 112 between two addresses as one flow, so once this node's
// unicast adverts went out, the peer's come back as "established" and the
// zone accepts them.)
func TestFixFirewallFirewalldIPv6(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		unicast, ipv6 bool
		args          []string
		rich          string
	}{
		{"ipv6", false, true, []string{"--in"}, `firewall-cmd --permanent --zone=public --add-rich-rule='rule family="ipv6" destination address="ff02::12" protocol value="vrrp" accept'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newFixLab(t, "firewalld", "firewall-cmd", "dbus-daemon", "unshare", "nft", "iptables-legacy")
			l.start(t, tc.unicast, tc.ipv6)
			bus := checkStartFirewalld(t, l.b, "nftables")
			l.env = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus}
			l.args = tc.args
			dump := func(t *testing.T) string {
				t.Helper()
				perm, err := checkFirewallCmd(bus, "--permanent", "--zone=public", "--list-rich-rules")
				if err != nil {
					t.Fatalf("firewall-cmd: %v: %s", err, perm)
				}
				return l.dump(t) + "\n--- permanent rich rules of public\n" + perm
			}
			text := l.repair(t, "firewalld", dump)
			if !strings.Contains(text, tc.rich) {
				t.Errorf("printed plan lacks %q", tc.rich)
			}
		})
	}
}

// TestFixFirewallFirewalld: a real firewalld on the backup (private D-Bus,
// own copy of /etc/firewalld, in b's namespaces), default zone public,
// which rejects VRRP: split brain. fix-firewall leads with the zone rich
// rule and prints the classic direct rules with the evaluator's verdict on
// them: they do not work with the nftables backend (and the output says
// why), they do with the iptables backend. --apply adds the rich rule
// (runtime and permanent) and ends the split brain; a second --apply adds
// nothing; --undo removes it from both configurations and the ruleset is
// back to what it was.
func TestFixFirewallFirewalld(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		backend     string
		directWorks bool
	}{
		{"nftables", false},
		{"iptables", true},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			t.Parallel()
			l := newFixLab(t, "firewalld", "firewall-cmd", "dbus-daemon", "unshare", "nft", "iptables-legacy")
			l.start(t, false)
			bus := checkStartFirewalld(t, l.b, tc.backend)
			l.env = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus}
			dump := func(t *testing.T) string {
				t.Helper()
				perm, err := checkFirewallCmd(bus, "--permanent", "--zone=public", "--list-rich-rules")
				if err != nil {
					t.Fatalf("firewall-cmd: %v: %s", err, perm)
				}
				return l.dump(t) + "\n--- permanent rich rules of public\n" + perm
			}
			text := l.repair(t, "firewalld", dump)

			rich := `firewall-cmd --permanent --zone=public --add-rich-rule='rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'`
			direct := "firewall-cmd --direct --permanent --add-rule ipv4 filter INPUT 0 --in-interface eth0 --destination 224.0.0.18 --protocol vrrp -j ACCEPT"
			directOut := "firewall-cmd --direct --permanent --add-rule ipv4 filter OUTPUT 0 --out-interface eth0 --destination 224.0.0.18 --protocol vrrp -j ACCEPT"
			for _, w := range []string{rich, direct, directOut, "cannot name an interface", "deprecated since firewalld 1.0"} {
				if !strings.Contains(text, w) {
					t.Errorf("printed plan lacks %q", w)
				}
			}
			if strings.Index(text, rich) > strings.Index(text, direct) {
				t.Error("the direct rules come before the rich rule")
			}
			if strings.Contains(text, "224.0.0.0/") {
				t.Error("the plan widens beyond the VRRP group")
			}
			r := l.json(t, 0)
			if len(r.Plan.Alternatives) == 0 || r.Plan.Alternatives[0].Works != tc.directWorks {
				t.Fatalf("alternatives %+v", r.Plan.Alternatives)
			}
			if !tc.directWorks && !strings.Contains(r.Plan.Alternatives[0].Note, "Do NOT use these with firewalld's nftables backend") {
				t.Errorf("no warning on the direct rules: %s", r.Plan.Alternatives[0].Note)
			}
			// The evaluator's verdict on the direct rules is the kernel's:
			// add them as the classic fix does and see whether the split
			// brain ends.
			for _, args := range [][]string{
				{"--direct", "--add-rule", "ipv4", "filter", "INPUT", "0", "--in-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"},
				{"--direct", "--add-rule", "ipv4", "filter", "OUTPUT", "0", "--out-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"},
			} {
				if out, err := checkFirewallCmd(bus, args...); err != nil {
					t.Fatalf("firewall-cmd %v: %v: %s", args, err, out)
				}
			}
			if tc.directWorks {
				l.holders(t, 5*time.Second, l.a)
			} else {
				time.Sleep(2 * time.Second) // 8 advert intervals
				l.holders(t, time.Second, l.a, l.b)
			}
		})
	}
}
