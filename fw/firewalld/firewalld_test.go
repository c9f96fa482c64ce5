package firewalld

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/vrrpdoctor/vrrpdoctor/fw/internal/fwlab"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftjson"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// TestQueryRealFirewalld runs firewalld 1.3.3 in a lab namespace with a
// private bus, configures it with firewall-cmd, and reads it back.
func TestQueryRealFirewalld(t *testing.T) {
	tools := map[string]string{"ip": "iproute2"}
	for k, v := range fwlab.FirewalldTools {
		tools[k] = v
	}
	fwlab.Require(t, tools)
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) {
			ns := fwlab.NewNS(t)
			bus := ns.StartFirewalld(t, backend)
			for _, args := range [][]string{
				{"--direct", "--add-rule", "ipv4", "filter", "INPUT", "0", "--in-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"},
				{"--add-protocol=vrrp"},
				{"--add-rich-rule=rule family=\"ipv4\" destination address=\"224.0.0.18\" protocol value=\"vrrp\" accept"},
			} {
				if out, err := ns.FirewallCmd(bus, args...); err != nil {
					t.Fatalf("firewall-cmd %v: %v: %s", args, err, out)
				}
			}
			conn, err := dbus.Connect(bus)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			info, err := Query(context.Background(), Options{Conn: conn, Interface: "eth0"})
			if err != nil {
				t.Fatal(err)
			}
			if !info.Running || info.Version == "" || info.Backend != backend || info.DefaultZone != "public" {
				t.Fatalf("info %+v", info)
			}
			z := info.InterfaceZone
			if z == nil || z.Name != "public" || !info.InterfaceDefault || z.Target != "default" {
				t.Fatalf("zone %+v (default %v)", z, info.InterfaceDefault)
			}
			if !slices.Contains(z.Protocols, "vrrp") || len(z.RichRules) != 1 || !slices.Contains(z.Services, "ssh") {
				t.Errorf("zone settings %+v", z)
			}
			if len(info.Policies) == 0 {
				t.Errorf("no policies (firewalld 1.3 ships allow-host-ipv6)")
			}
			if len(info.Direct) != 1 || info.Direct[0].Chain != "INPUT" || info.Direct[0].IPV != "ipv4" {
				t.Fatalf("direct rules %+v", info.Direct)
			}
		})
	}
}

// TestQueryNoFirewalld: an empty private bus means "not running", not an
// error.
func TestQueryNoFirewalld(t *testing.T) {
	fwlab.Require(t, map[string]string{"dbus-daemon": "dbus-daemon"})
	bus := fwlab.StartBus(t)
	conn, err := dbus.Connect(bus)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	info, err := Query(context.Background(), Options{Conn: conn, Interface: "eth0"})
	if err != nil || info.Running {
		t.Fatalf("info %+v, err %v", info, err)
	}
}

// TestMarkDirectRules marks the classic direct rule in rulesets firewalld
// made, on both backends, and nothing else.
func TestMarkDirectRules(t *testing.T) {
	info := &Info{Direct: []DirectRule{{IPV: "ipv4", Table: "filter", Chain: "INPUT", Args: []string{"--in-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"}}}}
	for _, c := range []struct {
		scenario, file, chain string
	}{
		{"firewalld-nft-direct", "iptables-nft-save.txt", "INPUT"},
		{"firewalld-ipt-direct", "iptables-nft-save.txt", "INPUT_direct"},
		{"firewalld-legacy-direct", "iptables-legacy-save.txt", "INPUT_direct"},
	} {
		p := filepath.Join("../../testdata/rulesets", c.scenario, c.file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := iptsave.Parse(data, p, iptsave.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if n := info.MarkDirectRules(rs); n != 1 {
			t.Fatalf("%s: marked %d rules, want 1", c.scenario, n)
		}
		r := rs.Table(rs.Tables[0].Backend, ruleset.FamilyIP, "filter").Chain(c.chain).Rules[0]
		if r.Owner != ruleset.OwnerFirewalld {
			t.Errorf("%s: %s not marked", c.scenario, r.Text)
		}
	}
	// Native nft tables are never firewalld direct rules.
	data, err := os.ReadFile("../../testdata/rulesets/nft-accept-vrrp/nft.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := nftjson.Parse(data, "x")
	if err != nil {
		t.Fatal(err)
	}
	if n := info.MarkDirectRules(rs); n != 0 {
		t.Fatalf("marked %d native rules", n)
	}
}
