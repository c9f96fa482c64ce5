package keepalived

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// fakeHost is the lab host of keepalived_test.go: eth0 with 198.51.100.1/24
// and 2001:db8::1/64, eth1 with 203.0.113.1/24, users root and nobody.
type fakeHost struct {
	ifs   map[string][]netip.Prefix
	users map[string]bool
}

func labHost() fakeHost {
	return fakeHost{
		ifs: map[string][]netip.Prefix{
			"eth0": {netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("2001:db8::1/64")},
			"eth1": {netip.MustParsePrefix("203.0.113.1/24")},
		},
		users: map[string]bool{"root": true, "nobody": true},
	}
}

func (h fakeHost) Interface(name string) ([]netip.Prefix, bool, error) {
	a, ok := h.ifs[name]
	return a, ok, nil
}

func (h fakeHost) UserExists(name string) (bool, error) { return h.users[name], nil }

func TestCheckHost(t *testing.T) {
	inst := func(body string) string {
		return "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n" + body + "}\n"
	}
	vips := "    virtual_ipaddress {\n        198.51.100.100/24\n    }\n"
	tests := []struct {
		name, src string
		errs      []string
		warns     []string
	}{
		{name: "fine", src: inst(vips)},
		{name: "missing interface", src: strings.Replace(inst(vips), "eth0", "eth9", 1),
			errs: []string{"k.conf:2:5: interface eth9 does not exist"}},
		{name: "dynamic interfaces", src: "global_defs {\n    dynamic_interfaces\n}\n" + strings.Replace(inst(vips), "eth0", "eth9", 1),
			warns: []string{"5:5: suspicious: interface eth9 does not exist (yet; dynamic_interfaces is set)"}},
		{name: "missing tracked interface", src: inst(vips + "    track_interface {\n        eth7 weight 10\n    }\n"),
			errs: []string{"k.conf:8:9: track_interface eth7 does not exist"}},
		{name: "missing vip dev", src: inst("    virtual_ipaddress {\n        198.51.100.100/24 dev eth8\n    }\n"),
			errs: []string{"k.conf:5:9: virtual_ipaddress 198.51.100.100/24 dev eth8 does not exist"}},
		{name: "owner without the address", src: inst("    priority 255\n" + vips),
			warns: []string{"6:9: suspicious: priority 255 says this router owns 198.51.100.100, but eth0 does not have that address"}},
		{name: "owner with the address", src: inst("    priority 255\n    virtual_ipaddress {\n        198.51.100.1/24\n    }\n")},
		{name: "peer is this host", src: inst(vips + "    unicast_peer {\n        198.51.100.1\n        198.51.100.2\n    }\n"),
			warns: []string{"8:9: suspicious: unicast_peer 198.51.100.1 is an address of eth0, this router itself"}},
		{name: "foreign source", src: inst(vips + "    mcast_src_ip 198.51.100.9\n"),
			warns: []string{"7:5: suspicious: mcast_src_ip 198.51.100.9 is not an address of eth0"}},
		{name: "no IPv4 address", src: strings.Replace(inst(vips), "eth0", "v6only", 1),
			warns: []string{"2:5: suspicious: v6only has no IPv4 address to send VRRP adverts from"}},
		{name: "notify user", src: "global_defs {\n    enable_script_security\n}\n" + inst(vips+"    notify_master /bin/echo nosuchuser\n"),
			warns: []string{"10:5: suspicious: notify script /bin/echo: user nosuchuser does not exist, keepalived will not run it"}},
		{name: "script_user", src: "global_defs {\n    script_user nosuchuser\n}\n" + inst(vips),
			errs: []string{"k.conf:2:5: script_user nosuchuser does not exist"}},
		{name: "default user is root", src: "vrrp_script chk {\n    script /bin/true\n}\n" + inst(vips+"    track_script {\n        chk\n    }\n"),
			warns: []string{"2:5: suspicious: vrrp_script chk runs as root and enable_script_security is not set: keepalived -t calls this a SECURITY VIOLATION (and runs it anyway) (there is no keepalived_script user)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("k.conf", []byte(tt.src), WithFS(fstest.MapFS{}))
			if err != nil {
				t.Fatal(err)
			}
			h := labHost()
			h.ifs["v6only"] = []netip.Prefix{netip.MustParsePrefix("2001:db8:2::1/64")}
			errs := cfg.CheckHost(h)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.errs) {
				t.Errorf("errors = %q, want %q", got, tt.errs)
			}
			if got := warningLines(cfg.Warnings); !reflect.DeepEqual(got, tt.warns) && (len(got) > 0 || len(tt.warns) > 0) {
				t.Errorf("warnings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.warns, "\n"))
			}
		})
	}
}

func TestCheck(t *testing.T) {
	path := filepath.Join(testdata, "classic-master.conf")
	cfg, err := Check(path, labHost())
	if err != nil || cfg.Instance("VI_1") == nil {
		t.Fatalf("Check: %v", err)
	}
	h := labHost()
	delete(h.ifs, "eth0")
	_, err = Check(path, h)
	if err == nil || err.Error() != path+":16:5: interface eth0 does not exist" {
		t.Errorf("Check without eth0: %v", err)
	}
	if _, err := Check(filepath.Join(testdata, "loop", "a.conf"), h); err == nil || !strings.Contains(err.Error(), "include loop") {
		t.Errorf("Check keeps parse errors: %v", err)
	}
}

func TestSystemHost(t *testing.T) {
	h := SystemHost()
	addrs, ok, err := h.Interface("lo")
	if err != nil || !ok {
		t.Fatalf("lo: %v, %v", ok, err)
	}
	found := false
	for _, a := range addrs {
		found = found || a == netip.MustParsePrefix("127.0.0.1/8")
	}
	if !found {
		t.Errorf("lo addresses %v lack 127.0.0.1/8", addrs)
	}
	if _, ok, _ := h.Interface("vrrpdoc-none0"); ok {
		t.Error("a missing interface exists")
	}
	if ok, err := h.UserExists("root"); !ok || err != nil {
		t.Errorf("root: %v, %v", ok, err)
	}
	if ok, err := h.UserExists("vrrpdoctor-no-such-user"); ok || err != nil {
		t.Errorf("missing user: %v, %v", ok, err)
	}
}
