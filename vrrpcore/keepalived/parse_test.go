package keepalived

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const testdata = "../../testdata/keepalived"

func mustParseFile(t *testing.T, name string, opts ...Option) *Config {
	t.Helper()
	cfg, err := ParseFile(filepath.Join(testdata, name), opts...)
	if err != nil {
		t.Fatalf("ParseFile(%s): %v", name, err)
	}
	return cfg
}

func mustInstance(t *testing.T, cfg *Config, name string) *Instance {
	t.Helper()
	in := cfg.Instance(name)
	if in == nil {
		t.Fatalf("no vrrp_instance %s", name)
	}
	return in
}

func prefixes(vs []VIP) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Prefix.String()
	}
	return out
}

// warningLines renders warnings as "line: kind: message" without the file.
func warningLines(ws []Warning) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = fmt.Sprintf("%d:%d: %s: %s", w.Pos.Line, w.Pos.Col, w.Kind, w.Msg)
	}
	return out
}

func keepaliveDefaultGarp() Garp {
	return Garp{MasterDelay: 5 * time.Second, MasterRepeat: 5, MasterRefreshRepeat: 1, LowerPrioDelay: 5 * time.Second, LowerPrioRepeat: 5}
}

func TestClassicMaster(t *testing.T) {
	cfg := mustParseFile(t, "classic-master.conf")
	file := filepath.Join(testdata, "classic-master.conf")
	if len(cfg.Instances) != 1 {
		t.Fatalf("%d instances, want 1", len(cfg.Instances))
	}
	in := mustInstance(t, cfg, "VI_1")
	want := Instance{
		Name: "VI_1", Pos: Pos{file, 14, 1}, State: StateMaster, Interface: "eth0", VRID: 51, Priority: 150,
		AdvertInt: time.Second, Version: 2, Family: IPv4, Accept: true,
		Auth:       Auth{Type: AuthPass, Pass: "1111", Pos: Pos{file, 20, 5}},
		VIPs:       []VIP{{Prefix: netip.MustParsePrefix("198.51.100.100/24"), Scope: "global", Pos: Pos{file, 25, 9}}},
		McastGroup: netip.MustParseAddr("224.0.0.18"), UnicastTTL: 255,
		Garp: keepaliveDefaultGarp(), DownTimerAdverts: 3, LowerPrioNoAdvert: false,
	}
	want.Set = in.Set
	if !reflect.DeepEqual(*in, want) {
		t.Errorf("VI_1 =\n%+v\nwant\n%+v", *in, want)
	}
	if got := in.Set["priority"]; got != (Pos{file, 18, 5}) {
		t.Errorf("priority written at %v, want %s:18:5", got, file)
	}
	if _, ok := in.Set["nopreempt"]; ok {
		t.Error("Set has nopreempt, which is not in the file")
	}
	if cfg.Global.RouterID != "LVS_DEVEL" || cfg.Global.VRRPVersion != 2 || cfg.Global.McastGroup4 != DefaultMcastGroup4 {
		t.Errorf("global = %+v", cfg.Global)
	}
	wantW := []string{
		"5:4: unused: notification_email: not used by vrrpdoctor",
		"8:4: unused: notification_email_from: not used by vrrpdoctor",
		"9:4: unused: smtp_server: not used by vrrpdoctor",
		"10:4: unused: smtp_connect_timeout: not used by vrrpdoctor",
	}
	if got := warningLines(cfg.Warnings); !reflect.DeepEqual(got, wantW) {
		t.Errorf("warnings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantW, "\n"))
	}
	if len(cfg.Global.Unused) != 4 || cfg.Global.Unused[0].Keyword != "notification_email" ||
		!cfg.Global.Unused[0].HasBlock || cfg.Global.Unused[0].Block[0].Keyword != "admin@example.com" {
		t.Errorf("global unused = %+v", cfg.Global.Unused)
	}
	if got := cfg.Warnings[0].String(); got != file+":5:4: warning: notification_email: not used by vrrpdoctor" {
		t.Errorf("Warning.String() = %q", got)
	}
}

func TestClassicBackup(t *testing.T) {
	cfg := mustParseFile(t, "classic-backup.conf")
	in := mustInstance(t, cfg, "VI_1")
	if in.State != StateBackup || in.Priority != 100 || in.VRID != 51 || in.Auth.Pass != "1111" || in.Nopreempt {
		t.Errorf("VI_1 = %+v", in)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

func TestSyncGroupConfig(t *testing.T) {
	cfg := mustParseFile(t, "sync-group.conf")
	g := cfg.SyncGroup("VG_1")
	if g == nil {
		t.Fatal("no VG_1")
	}
	if got := []string{g.Members[0].Name, g.Members[1].Name}; len(g.Members) != 2 || got[0] != "VI_FRONT" || got[1] != "VI_BACK" {
		t.Errorf("members = %+v", g.Members)
	}
	if g.Notify.Master == nil || !reflect.DeepEqual(g.Notify.Master.Argv, []string{"/bin/echo", "master", "VG_1"}) {
		t.Errorf("notify_master = %+v", g.Notify.Master)
	}
	if g.Notify.Any == nil || !reflect.DeepEqual(g.Notify.Any.Argv, []string{"/bin/true"}) || g.Notify.Stop != nil {
		t.Errorf("notify = %+v", g.Notify)
	}
	for _, name := range []string{"VI_FRONT", "VI_BACK"} {
		if in := mustInstance(t, cfg, name); in.SyncGroup != "VG_1" {
			t.Errorf("%s.SyncGroup = %q", name, in.SyncGroup)
		}
	}
	back := mustInstance(t, cfg, "VI_BACK")
	if back.Interface != "eth1" || back.VIPs[0].Dev != "eth1" || back.VRID != 62 {
		t.Errorf("VI_BACK = %+v", back)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

func TestUnicastConfig(t *testing.T) {
	cfg := mustParseFile(t, "unicast.conf")
	in := mustInstance(t, cfg, "VI_UC")
	if !in.Unicast() || !in.Nopreempt || in.SrcIP != netip.MustParseAddr("198.51.100.1") || !in.CheckUnicastSrc {
		t.Errorf("VI_UC = %+v", in)
	}
	wantPeers := []Peer{
		{Addr: netip.MustParseAddr("198.51.100.2"), MinTTL: 0, MaxTTL: 255, Pos: in.UnicastPeers[0].Pos},
		{Addr: netip.MustParseAddr("198.51.100.3"), MinTTL: 254, MaxTTL: 255, Pos: in.UnicastPeers[1].Pos},
	}
	if !reflect.DeepEqual(in.UnicastPeers, wantPeers) {
		t.Errorf("peers = %+v", in.UnicastPeers)
	}
	if in.UnicastPeers[1].Pos.Line != 12 || in.UnicastPeers[1].Pos.Col != 9 {
		t.Errorf("second peer at %v, want line 12 column 9", in.UnicastPeers[1].Pos)
	}
	if v := in.VIPs[0]; v.Dev != "eth0" || v.Label != "eth0:vip" || v.Prefix.String() != "198.51.100.71/24" {
		t.Errorf("VIP = %+v", v)
	}
	if got := prefixes(in.ExcludedVIPs); !reflect.DeepEqual(got, []string{"2001:db8::71/64"}) {
		t.Errorf("excluded = %v", got)
	}
	if in.Auth != (Auth{Type: AuthPass, Pass: "s3cr3t", Pos: in.Auth.Pos}) {
		t.Errorf("auth = %+v", in.Auth)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

func TestIPv6Config(t *testing.T) {
	cfg := mustParseFile(t, "ipv6.conf")
	v6 := mustInstance(t, cfg, "VI_6")
	if v6.Family != IPv6 || v6.Version != 3 || v6.AdvertInt != 500*time.Millisecond || v6.McastGroup != DefaultMcastGroup6 {
		t.Errorf("VI_6 = %+v", v6)
	}
	if got := prefixes(v6.VIPs); !reflect.DeepEqual(got, []string{"fe80::81/64", "2001:db8::81/64", "2001:db8:0:1::81/64"}) {
		t.Errorf("VI_6 VIPs = %v", got)
	}
	v4 := mustInstance(t, cfg, "VI_4")
	if v4.Family != IPv4 || v4.Version != 3 || v4.AdvertInt != 250*time.Millisecond || v4.State != StateBackup {
		t.Errorf("VI_4 = %+v", v4)
	}
	if b := v4.VIPs[0].Broadcast; b != netip.MustParseAddr("203.0.113.255") {
		t.Errorf("brd + gave %v, want 203.0.113.255", b)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

func TestScriptsConfig(t *testing.T) {
	cfg := mustParseFile(t, "scripts.conf")
	hap := cfg.Script("chk_haproxy")
	if hap == nil {
		t.Fatal("no chk_haproxy")
	}
	wantArgv := []string{"/bin/sh", "-c", "kill -0 $(cat /run/haproxy.pid)"}
	if !reflect.DeepEqual(hap.Command.Argv, wantArgv) || hap.Interval != 2*time.Second || hap.Timeout != 3*time.Second ||
		hap.Weight != -20 || hap.Rise != 2 || hap.Fall != 2 {
		t.Errorf("chk_haproxy = %+v", hap)
	}
	file := cfg.Script("chk_file")
	if !reflect.DeepEqual(file.Command.Argv, []string{"/usr/bin/test", "!", "-e", "/etc/keepalived/maintenance"}) ||
		file.Command.User != "nobody" || !file.Reverse || file.Weight != 10 || file.Timeout != 0 || file.Rise != 1 {
		t.Errorf("chk_file = %+v", file)
	}
	in := mustInstance(t, cfg, "VI_1")
	// keepalived -d prints "chk_haproxy weight -20" and "chk_file weight 5
	// reverse": a weight on the track_script line keeps the script's reverse.
	wantTS := []TrackScript{
		{Name: "chk_haproxy", Weight: -20, Pos: in.TrackScripts[0].Pos},
		{Name: "chk_file", Weight: 5, WeightSet: true, Reverse: true, Pos: in.TrackScripts[1].Pos},
	}
	for i := range wantTS {
		got := in.TrackScripts[i]
		got.reverseSet = false
		if !reflect.DeepEqual(got, wantTS[i]) {
			t.Errorf("track_script[%d] = %+v, want %+v", i, got, wantTS[i])
		}
	}
	if len(in.TrackInterfaces) != 1 || in.TrackInterfaces[0].Name != "eth1" || in.TrackInterfaces[0].Weight != -30 {
		t.Errorf("track_interface = %+v", in.TrackInterfaces)
	}
	n := in.Notify
	check := func(what string, c *Command, argv []string, user, group string) {
		t.Helper()
		if c == nil || !reflect.DeepEqual(c.Argv, argv) || c.User != user || c.Group != group {
			t.Errorf("%s = %+v, want %q as %q:%q", what, c, argv, user, group)
		}
	}
	check("notify_master", n.Master, []string{"/bin/echo", "became master", "VI_1"}, "", "")
	check("notify_backup", n.Backup, []string{"/bin/true"}, "", "")
	check("notify_fault", n.Fault, []string{"/bin/echo", "fault"}, "root", "")
	check("notify_stop", n.Stop, []string{"/bin/true"}, "root", "root")
	check("notify", n.Any, []string{"/bin/logger", "-t", "keepalived"}, "", "")
	wantGarp := Garp{MasterDelay: 2 * time.Second, MasterRepeat: 3, MasterRefresh: time.Minute, MasterRefreshRepeat: 2,
		LowerPrioDelay: 5 * time.Second, LowerPrioRepeat: 5}
	if in.Garp != wantGarp || in.PreemptDelay != 30*time.Second {
		t.Errorf("garp = %+v, preempt_delay %v", in.Garp, in.PreemptDelay)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

func TestLexingConfig(t *testing.T) {
	cfg := mustParseFile(t, "lexing.conf")
	if cfg.Global.RouterID != "router one" || cfg.Global.ScriptUser != "root" {
		t.Errorf("global = %+v", cfg.Global)
	}
	in := mustInstance(t, cfg, "VI_LEX")
	if in.Interface != "eth0" || in.VRID != 101 || in.Priority != 110 {
		t.Errorf("VI_LEX = %+v", in)
	}
	if in.Notify.Master == nil || !reflect.DeepEqual(in.Notify.Master.Argv, []string{"/bin/echo", "a#b", "!c"}) {
		t.Errorf("notify_master = %+v", in.Notify.Master)
	}
	if got := prefixes(in.VIPs); !reflect.DeepEqual(got, []string{"198.51.100.101/24"}) || in.VIPs[0].Pos.Line != 15 || in.VIPs[0].Pos.Col != 25 {
		t.Errorf("VIPs = %v at %v", got, in.VIPs[0].Pos)
	}
	if len(in.TrackInterfaces) != 1 || in.TrackInterfaces[0].Weight != 10 {
		t.Errorf("track_interface = %+v", in.TrackInterfaces)
	}
	wantW := []string{"14:5: suspicious: vrrp_instance VI_LEX notify_master runs as root and enable_script_security is not set: keepalived -t calls this a SECURITY VIOLATION (and runs it anyway)"}
	if got := warningLines(cfg.Warnings); !reflect.DeepEqual(got, wantW) {
		t.Errorf("warnings = %q", got)
	}
}

func TestConditionalConfig(t *testing.T) {
	for _, tt := range []struct {
		id        string
		router    string
		prio      uint8
		nopreempt bool
	}{
		{"node1", "node1", 150, false},
		{"node2", "node2", 100, true},
		{"other", "", 100, true},
	} {
		cfg := mustParseFile(t, "conditional.conf", WithConfigID(tt.id))
		in := mustInstance(t, cfg, "VI_COND")
		if cfg.Global.RouterID != tt.router || in.Priority != tt.prio || in.Nopreempt != tt.nopreempt ||
			in.Interface != "eth0" || prefixes(in.VIPs)[0] != "198.51.100.111/24" {
			t.Errorf("-i %s: router_id %q, %+v", tt.id, cfg.Global.RouterID, in)
		}
	}
}

func TestUnusedConfig(t *testing.T) {
	cfg := mustParseFile(t, "unused.conf")
	var unused []string
	for _, w := range cfg.Warnings {
		if w.Kind != WarnUnused {
			t.Errorf("unexpected warning %v", w)
		}
		unused = append(unused, strings.TrimSuffix(w.Msg, ": not used by vrrpdoctor"))
	}
	want := []string{"lvs_flush", "max_auto_priority", "virtual_server", "static_ipaddress", "promote_secondaries", "smtp_alert", "virtual_routes"}
	if !reflect.DeepEqual(unused, want) {
		t.Errorf("unused = %q, want %q", unused, want)
	}
	if len(cfg.Unused) != 2 || cfg.Unused[0].Keyword != "virtual_server" ||
		!reflect.DeepEqual(cfg.Unused[0].Args, []string{"198.51.100.120", "80"}) ||
		cfg.Unused[0].Block[4].Keyword != "real_server" || cfg.Unused[0].Block[4].Block[1].Block[0].Keyword != "connect_timeout" {
		t.Errorf("top-level unused = %+v", cfg.Unused)
	}
	in := mustInstance(t, cfg, "VI_LVS")
	if len(in.Unused) != 3 || in.Unused[2].Keyword != "virtual_routes" || len(in.Unused[2].Block) != 1 {
		t.Errorf("instance unused = %+v", in.Unused)
	}
}

func TestWarningsConfig(t *testing.T) {
	cfg := mustParseFile(t, "warnings.conf")
	want := []string{
		"5:5: adjusted: nopreempt has no effect with state MASTER: keepalived clears it (use state BACKUP on every node)",
		"9:5: adjusted: advert_int 1.5s: VRRPv2 counts whole seconds, keepalived rounds it to 2s",
		`12:9: adjusted: auth_pass is 9 characters: keepalived uses only the first 8`,
		"16:9: adjusted: virtual_ipaddress 2001:db8::131: IPv6 address in an IPv4 instance (family set by line 15): ignored as keepalived does (addresses of the other family go in virtual_ipaddress_excluded)",
		"23:5: suspicious: priority 255 makes this router the owner of the virtual addresses, but its source address 203.0.113.1 is not one of them",
		"26:9: suspicious: unicast_peer 203.0.113.1 is this router's own unicast_src_ip",
	}
	if got := warningLines(cfg.Warnings); !reflect.DeepEqual(got, want) {
		t.Errorf("warnings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	in := mustInstance(t, cfg, "VI_MASTER_NOPREEMPT")
	if in.Nopreempt || in.AdvertInt != 2*time.Second || in.Auth.Pass != "12345678" || len(in.VIPs) != 1 {
		t.Errorf("adjusted values not applied: %+v", in)
	}
	if self := mustInstance(t, cfg, "VI_SELF_PEER"); self.State != StateMaster {
		t.Errorf("priority 255 without state: %v, want MASTER", self.State)
	}
}

func TestIncludesFromDisk(t *testing.T) {
	dir := filepath.Join(testdata, "includes")
	cfg, err := ParseFile(filepath.Join(dir, "keepalived.conf"))
	if err != nil {
		t.Fatal(err)
	}
	checkIncludes(t, cfg, func(name string) string { return filepath.Join(dir, filepath.FromSlash(name)) })

	// The same through an fs.FS.
	src, err := os.ReadFile(filepath.Join(dir, "keepalived.conf"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = Parse("keepalived.conf", src, WithFS(os.DirFS(dir)))
	if err != nil {
		t.Fatal(err)
	}
	checkIncludes(t, cfg, func(name string) string { return name })
}

func checkIncludes(t *testing.T, cfg *Config, name func(string) string) {
	t.Helper()
	want := []string{"keepalived.conf", "conf.d/global.conf", "conf.d/scripts/10-chk.conf", "conf.d/instances/front.conf",
		"conf.d/fragments/vips-front.inc", "conf.d/instances/back.conf"}
	for i := range want {
		want[i] = name(want[i])
	}
	if !reflect.DeepEqual(cfg.Files, want) {
		t.Errorf("files =\n%q\nwant\n%q", cfg.Files, want)
	}
	front := mustInstance(t, cfg, "VI_FRONT")
	if got := front.VIPs[0].Pos; got != (Pos{name("conf.d/fragments/vips-front.inc"), 2, 9}) {
		t.Errorf("VIP from the fragment at %v", got)
	}
	if len(front.TrackScripts) != 1 || front.TrackScripts[0].Weight != 2 {
		t.Errorf("track_script = %+v", front.TrackScripts)
	}
	if cfg.Global.RouterID != "split-config" || mustInstance(t, cfg, "VI_BACK").VRID != 142 {
		t.Errorf("global %+v", cfg.Global)
	}
	wantW := []string{"6:1: suspicious: include conf.d/optional/*.conf: no file matches, nothing included"}
	if got := warningLines(cfg.Warnings); !reflect.DeepEqual(got, wantW) {
		t.Errorf("warnings = %q", got)
	}
}

func TestIncludeLoopOnDisk(t *testing.T) {
	a := filepath.Join(testdata, "loop", "a.conf")
	b := filepath.Join(testdata, "loop", "b.conf")
	_, err := ParseFile(a)
	want := b + ":1:1: include loop: " + a + " -> " + b + " -> " + a
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Pos != (Pos{b, 1, 1}) {
		t.Errorf("errors.As: %v", e)
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile(filepath.Join(t.TempDir(), "nope.conf"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
}

const instanceHead = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n        198.51.100.100/24\n    }\n"

func inst(body string) string { return instanceHead + body + "}\n" }

// errorCases are configurations with one kind of error each, and its exact
// message. keepalived_test.go runs them through keepalived -t too.
var errorCases = []struct {
	name, src, want string
}{
	{"vrid range", inst("    virtual_router_id 300\n"), "keepalived.conf:7:5: virtual_router_id 300 out of range 1-255"},
	{"vrid zero", inst("    virtual_router_id 0\n"), "keepalived.conf:7:5: virtual_router_id 0 out of range 1-255"},
	{"vrid word", inst("    virtual_router_id abc\n"), "keepalived.conf:7:5: virtual_router_id abc: not an integer"},
	{"vrid missing value", inst("    virtual_router_id\n"), "keepalived.conf:7:5: virtual_router_id: missing value"},
	{"vrid not set", "vrrp_instance VI_1 {\n interface eth0\n virtual_ipaddress {\n 198.51.100.1\n }\n}\n", "keepalived.conf:1:1: vrrp_instance VI_1: virtual_router_id is not set"},
	{"interface not set", "vrrp_instance VI_1 {\n virtual_router_id 1\n virtual_ipaddress {\n 198.51.100.1\n }\n}\n", "keepalived.conf:1:1: vrrp_instance VI_1: interface is not set"},
	{"priority 0", inst("    priority 0\n"), "keepalived.conf:7:5: priority 0 out of range 1-255"},
	{"priority 256", inst("    priority 256\n"), "keepalived.conf:7:5: priority 256 out of range 1-255"},
	{"priority hex", inst("    priority 0x10\n"), "keepalived.conf:7:5: priority 0x10: not an integer"},
	{"priority huge", inst("    priority 99999999999999999999\n"), "keepalived.conf:7:5: priority 99999999999999999999 out of range 1-255"},
	{"advert_int small", inst("    advert_int 0.001\n"), "keepalived.conf:7:5: advert_int 0.001 out of range 0.01-255"},
	{"advert_int large", inst("    advert_int 256\n"), "keepalived.conf:7:5: advert_int 256 out of range 0.01-255"},
	{"advert_int exponent", inst("    advert_int 1e0\n"), "keepalived.conf:7:5: advert_int 1e0: not a number of seconds"},
	{"version", inst("    version 4\n"), "keepalived.conf:7:5: version 4 out of range 2-3"},
	{"state", inst("    state master\n"), "keepalived.conf:7:5: state master: must be MASTER or BACKUP"},
	{"preempt_delay", inst("    preempt_delay 1001\n"), "keepalived.conf:7:5: preempt_delay 1001 out of range 0-1000"},
	{"auth_type", inst("    authentication {\n        auth_type pass\n    }\n"), "keepalived.conf:8:9: auth_type pass: must be PASS or AH"},
	{"peer address", inst("    unicast_peer {\n        198.51.100.x\n    }\n"), "keepalived.conf:8:9: unicast_peer 198.51.100.x: not an IP address"},
	{"peer ttl range", inst("    unicast_peer {\n        198.51.100.2 min_ttl 300\n    }\n"), "keepalived.conf:8:30: unicast_peer 198.51.100.2 min_ttl 300 out of range 0-255"},
	{"peer option", inst("    unicast_peer {\n        198.51.100.2 ttl 3\n    }\n"), `keepalived.conf:8:22: unicast_peer 198.51.100.2: unknown option "ttl" (expected min_ttl or max_ttl)`},
	{"peer ttl order", inst("    unicast_peer {\n        198.51.100.2 min_ttl 200 max_ttl 100\n    }\n"), "keepalived.conf:8:9: unicast_peer 198.51.100.2: min_ttl 200 is above max_ttl 100"},
	{"track_script weight", inst("    track_script {\n        chk weight 300\n    }\n"), "keepalived.conf:8:20: track_script chk weight 300 out of range -253 to 253"},
	{"track_interface typo", inst("    track_interface {\n        eth1 weigth 10\n    }\n"), `keepalived.conf:8:14: track_interface eth1: unexpected "weigth" (expected weight N)`},
	{"track_interface reverse typo", inst("    track_interface {\n        eth1 weight 10 revers\n    }\n"), `keepalived.conf:8:24: track_interface eth1: unexpected "revers" after the weight (expected reverse)`},
	{"mcast_dst_ip", inst("    mcast_dst_ip 198.51.100.9\n"), "keepalived.conf:7:5: mcast_dst_ip 198.51.100.9: not a multicast address"},
	{"unterminated quote", inst("    notify_master \"/bin/echo a\n"), "keepalived.conf:7:19: unterminated quoted string"},
	{"unterminated single quote", inst("    notify_master '/bin/echo a\n"), `keepalived.conf:7:5: notify_master: missing closing ' in "notify_master '/bin/echo a"`},
	{"notify without command", inst("    notify_master\n"), "keepalived.conf:7:5: notify_master: missing command"},
	{"vip address", inst("    virtual_ipaddress {\n        198.51.100.300/24\n    }\n"), "keepalived.conf:8:9: virtual_ipaddress 198.51.100.300/24: not an IP address or prefix"},
	{"vip prefix", inst("    virtual_ipaddress {\n        198.51.100.1/33\n    }\n"), "keepalived.conf:8:9: virtual_ipaddress 198.51.100.1/33: not an IP address or prefix"},
	{"vip dev value", inst("    virtual_ipaddress {\n        198.51.100.2/24 dev\n    }\n"), "keepalived.conf:8:25: virtual_ipaddress 198.51.100.2/24: dev needs a value"},
	{"vip option", inst("    virtual_ipaddress_excluded {\n        198.51.100.3/24 frob\n    }\n"), `keepalived.conf:8:25: virtual_ipaddress_excluded 198.51.100.3/24: unknown option "frob"`},
	{"vip scope", inst("    virtual_ipaddress {\n        198.51.100.4/24 scope bogus\n    }\n"), "keepalived.conf:8:31: virtual_ipaddress 198.51.100.4/24: scope bogus is not global, site, link, host or nowhere"},
	{"vip brd v6", inst("    virtual_ipaddress_excluded {\n        2001:db8::1/64 brd 2001:db8::ff\n    }\n"), "keepalived.conf:8:28: virtual_ipaddress_excluded 2001:db8::1/64: brd 2001:db8::ff is not an IPv4 broadcast address"},
	{"no name", "vrrp_instance {\n}\n", "keepalived.conf:1:1: vrrp_instance needs exactly one name"},
	{"two names", "vrrp_script a b {\n}\n", "keepalived.conf:1:1: vrrp_script needs exactly one name"},
	{"missing open brace", "vrrp_instance VI_1\n", "keepalived.conf:1:1: vrrp_instance: missing '{' to open its block"},
	{"extra close brace", "global_defs {\n    router_id x\n}\n}\n", "keepalived.conf:4:1: unexpected '}': no block is open"},
	{"unclosed block", "global_defs {\n    router_id x\n", "keepalived.conf:1:13: block of 'global_defs' is not closed: missing '}'"},
	{"lone brace", "{\n}\n", "keepalived.conf:1:1: unexpected '{': no keyword before it takes a block"},
	{"block after value keyword", inst("    priority 100 {\n    }\n"), "keepalived.conf:7:18: priority does not take a block"},
	{"value block without brace", inst("    virtual_ipaddress\n"), "keepalived.conf:7:5: virtual_ipaddress: missing '{' to open its block"},
	{"mcast group", "global_defs {\n    vrrp_mcast_group4 198.51.100.5\n}\n", "keepalived.conf:2:5: vrrp_mcast_group4 198.51.100.5: not a multicast address"},
	{"mcast group family", "global_defs {\n    vrrp_mcast_group6 224.0.0.18\n}\n", "keepalived.conf:2:5: vrrp_mcast_group6 224.0.0.18: not an IPv6 address"},
	{"global version", "global_defs {\n    vrrp_version 1\n}\n", "keepalived.conf:2:5: vrrp_version 1 out of range 2-3"},
	{"bool", "global_defs {\n    vrrp_lower_prio_no_advert maybe\n}\n", "keepalived.conf:2:5: vrrp_lower_prio_no_advert maybe: not a boolean (on|off|true|false|yes|no)"},
	{"garp delay", "global_defs {\n    vrrp_garp_master_delay 5000\n}\n", "keepalived.conf:2:5: vrrp_garp_master_delay 5000 out of range 0-4294"},
	{"script interval", "vrrp_script s {\n    script /bin/true\n    interval 1.5\n}\n", "keepalived.conf:3:5: interval 1.5: not an integer"},
	{"script weight", "vrrp_script s {\n    script /bin/true\n    weight -254\n}\n", "keepalived.conf:3:12: vrrp_script s weight -254 out of range -253 to 253"},
	{"unmatched quote in words", "global_defs {\n    router_id \"a\\\"b\"\n}\n", `keepalived.conf:2:20: unmatched quote: a word starting with '"' has no closing '"' (keepalived does not honour \" here)`},
	{"sequence", "~SEQ(i,1,3) foo\n", "keepalived.conf:1:1: ~SEQ(i,1,3): keepalived sequence and list blocks are not supported by vrrpdoctor"},
	{"multi-line definition", "$M=a \\\nb\n", "keepalived.conf:1:1: multi-line definition $M is not supported by vrrpdoctor"},
	{"includea", "includea nothere.conf\n", "keepalived.conf:1:1: includea nothere.conf: no file matches"},
	{"duplicate vrid", inst("") + strings.Replace(inst(""), "VI_1", "VI_2", 1),
		"keepalived.conf:10:5: vrrp_instance VI_2 uses VRID 51 with IPv4 on eth0, as vrrp_instance VI_1 (line 1) does: keepalived refuses to run both"},
	{"duplicate vrid unicast", inst("    unicast_peer {\n        198.51.100.2\n    }\n") + strings.Replace(inst("    unicast_peer {\n        198.51.100.3\n        198.51.100.2\n    }\n"), "VI_1", "VI_2", 1),
		"keepalived.conf:13:5: vrrp_instance VI_2 uses VRID 51 with IPv4 on eth0, as vrrp_instance VI_1 (line 1) does: keepalived refuses to run both"},
	{"ipv6 without vips", "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    unicast_peer {\n        2001:db8::2\n    }\n    virtual_ipaddress {\n        198.51.100.100/24\n    }\n}\n",
		"keepalived.conf:1:1: vrrp_instance VI_1: an IPv6 instance needs a virtual_ipaddress (keepalived refuses to run it without)"},
	{"two errors in order", inst("    priority 0\n    advert_int 0\n"), "keepalived.conf:7:5: priority 0 out of range 1-255\nkeepalived.conf:8:5: advert_int 0 out of range 0.01-255"},
}

// TestParseErrors checks the exact message of each kind of error.
func TestParseErrors(t *testing.T) {
	tests := errorCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("keepalived.conf", []byte(tt.src), WithFS(fstest.MapFS{}))
			if err == nil {
				t.Fatalf("no error; want %s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.want)
			}
			if _, ok := err.(ErrorList); !ok {
				t.Errorf("error is %T, want ErrorList", err)
			}
			if cfg == nil {
				t.Error("no Config returned with the errors")
			}
		})
	}
}

// warningCases are configurations vrrpdoctor accepts with warnings.
// keepalived_test.go runs them through keepalived -t too.
var warningCases = []struct {
	name, src string
	want      []string
}{
	{"unknown keyword", inst("    foo_bar 1\n"), []string{`7:5: unknown: unknown keyword "foo_bar" ignored`}},
	{"slash comment", inst("    // not a comment\n"), []string{`7:5: unknown: unknown keyword "//" ignored`}},
	{"unknown block", "bogus_top {\n    priority 1\n}\n", []string{`1:1: unknown: unknown keyword "bogus_top" ignored`}},
	{"extra words", "global_defs {\n    router_id one two\n}\n", []string{`2:19: suspicious: router_id: extra words after "one" ignored (keepalived reads only the first)`}},
	{"flag with value", "global_defs {\n    vrrp_strict yes\n}\n", []string{`2:17: suspicious: vrrp_strict takes no value: "yes" ignored`}},
	{"no vips", "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n}\n", []string{"1:1: suspicious: vrrp_instance VI_1 has no virtual_ipaddress: its adverts carry no address"}},
	{"preempt_delay master", inst("    state MASTER\n    preempt_delay 5\n"), []string{"8:5: adjusted: preempt_delay has no effect with state MASTER: keepalived clears it"}},
	{"auth v3", inst("    version 3\n    authentication {\n        auth_type PASS\n        auth_pass x\n    }\n"),
		[]string{"8:5: adjusted: authentication with VRRPv3: keepalived ignores it (RFC 5798 has no authentication)"}},
	{"auth without type", inst("    authentication {\n        auth_pass x\n    }\n"),
		[]string{"7:5: suspicious: authentication without auth_type: no authentication is used, auth_pass is ignored"}},
	{"v3 interval too long", inst("    version 3\n    advert_int 50\n"), []string{"8:5: adjusted: advert_int 50s: above the VRRPv3 maximum, keepalived uses 40.95s"}},
	{"v3 interval resolution", inst("    version 3\n    advert_int 0.125\n"), []string{"8:5: adjusted: advert_int 125ms: VRRPv3 counts centiseconds, keepalived rounds it to 130ms"}},
	{"v2 ipv6", "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    version 2\n    virtual_ipaddress {\n        2001:db8::1\n    }\n}\n",
		[]string{"4:5: suspicious: version 2 with IPv6 addresses: VRRPv2 (RFC 3768) is IPv4 only, yet keepalived sends VRRPv2 over IPv6"}},
	{"peer family first", inst("    unicast_peer {\n        2001:db8::2\n    }\n"),
		[]string{"8:9: adjusted: unicast_peer 2001:db8::2: IPv6 address in an IPv4 instance (family set by line 5): ignored as keepalived does"}},
	{"strict", "global_defs {\n    vrrp_strict\n}\n" + inst("    state MASTER\n    preempt_delay 2\n    accept\n    authentication {\n        auth_type PASS\n        auth_pass x\n    }\n"), []string{
		"10:5: adjusted: state MASTER under strict mode needs priority 255 (address owner): keepalived starts it as BACKUP",
		"11:5: adjusted: preempt_delay is not allowed by strict mode: keepalived clears it",
		"12:5: adjusted: accept with VRRPv2 under strict mode: keepalived clears it (RFC 3768 has no accept mode)",
		"13:5: adjusted: authentication is not allowed by strict mode: keepalived ignores it",
	}},
	{"own interface tracked", inst("    track_interface {\n        eth0\n        eth1\n        eth1 weight 5\n    }\n"), []string{
		"8:9: adjusted: track_interface eth0 is the instance's own interface, tracked anyway: keepalived ignores this line",
		"10:9: adjusted: track_interface eth1 is already tracked at line 9: keepalived ignores this line",
	}},
	{"unknown script", inst("    track_script {\n        chk_missing\n    }\n"),
		[]string{"8:9: adjusted: vrrp_instance VI_1: track_script chk_missing: there is no vrrp_script of that name; keepalived ignores it"}},
	{"script without script", "vrrp_script chk {\n    interval 2\n}\n" + inst("    track_script {\n        chk\n    }\n"), []string{
		"1:1: adjusted: vrrp_script chk has no script: keepalived drops it",
		"11:9: adjusted: vrrp_instance VI_1: track_script chk: vrrp_script chk at line 1 has no script; keepalived ignores it",
	}},
	{"unquoted script args", "vrrp_script chk {\n    script /bin/echo a b\n}\n",
		[]string{`2:5: suspicious: script: only "/bin/echo" is the command, "a" is ignored; quote the command line to pass arguments`}},
	{"notify twice", inst("    notify_master /bin/true\n    notify_master /bin/false\n"),
		[]string{"8:5: adjusted: notify_master is already set at line 7: keepalived ignores this one"}},
	{"duplicate instance", inst("") + inst(""), []string{"8:1: adjusted: vrrp_instance VI_1 is already defined at line 1: keepalived ignores this block"}},
	{"unicast keyword without peers", inst("    unicast_src_ip 198.51.100.1\n"), []string{"7:5: suspicious: unicast_src_ip without unicast_peer: keepalived stays in multicast mode"}},
	{"peer twice", inst("    unicast_peer {\n        198.51.100.2\n        198.51.100.2\n    }\n"), []string{"9:9: suspicious: unicast_peer 198.51.100.2 is listed twice (first at line 8)"}},
	{"peer is vip", inst("    unicast_peer {\n        198.51.100.100\n    }\n"), []string{"8:9: suspicious: unicast_peer 198.51.100.100 is one of the virtual addresses"}},
	{"garp repeat 0", inst("    garp_master_repeat 0\n"), []string{"7:5: adjusted: garp_master_repeat 0: keepalived uses 1"}},
	{"include without match", "include nothere.conf\n", []string{"1:1: suspicious: include nothere.conf: no file matches, nothing included"}},
	{"include quoted", "include \"x.conf\"\n", []string{`1:1: suspicious: include "x.conf": no file matches, nothing included (keepalived takes quotes in an include name literally)`}},
	{"sync group", "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_9\n    }\n}\nvrrp_script chk {\n    script /bin/true\n    weight 10\n}\n" + inst("    track_script {\n        chk\n    }\n"), []string{
		"1:1: suspicious: vrrp_sync_group G has only one instance: a sync group needs two or more to mean anything",
		"4:9: adjusted: vrrp_sync_group G: there is no vrrp_instance VI_9; keepalived ignores it",
		"18:9: adjusted: track_script chk weight 10: vrrp_instance VI_1 is in sync group G, so keepalived ignores this weighted script (see sync_group_tracking_weight)",
	}},
	{"security", "vrrp_script chk {\n    script /bin/true\n    user root\n}\n" + inst("    track_script {\n        chk\n    }\n"),
		[]string{"2:5: suspicious: vrrp_script chk runs as root and enable_script_security is not set: keepalived -t calls this a SECURITY VIOLATION (and runs it anyway)"}},
	{"sync group master", "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n" + inst("    state MASTER\n") +
		strings.NewReplacer("VI_1", "VI_2", "51", "52", "eth0", "eth1", "198.51.100.100", "203.0.113.100").Replace(inst("    state MASTER\n")), []string{
		"13:5: adjusted: state MASTER: vrrp_instance VI_1 is in sync group G, whose members keepalived starts as BACKUP unless all have priority 255",
		"21:5: adjusted: state MASTER: vrrp_instance VI_2 is in sync group G, whose members keepalived starts as BACKUP unless all have priority 255",
	}},
	{"use_vmac", inst("    use_vmac vrrp.51\n    vmac_xmit_base\n"), []string{}},
}

// TestParseWarnings checks warnings for what keepalived reads past.
func TestParseWarnings(t *testing.T) {
	tests := warningCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("keepalived.conf", []byte(tt.src), WithFS(fstest.MapFS{}))
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := warningLines(cfg.Warnings); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("warnings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestSameVRIDElsewhere: one VRID may serve other interfaces, families,
// groups or disjoint unicast peers (keepalived.conf(5)).
func TestSameVRIDElsewhere(t *testing.T) {
	second := func(r ...string) string {
		return strings.NewReplacer(append([]string{"VI_1", "VI_2"}, r...)...).Replace(inst(""))
	}
	for name, src := range map[string]string{
		"interface": inst("") + second("eth0", "eth1"),
		"family":    inst("") + second("198.51.100.100/24", "2001:db8::100/64"),
		"group":     inst("") + second("    }\n", "    }\n    mcast_dst_ip 224.0.0.19\n"),
		"peers": inst("    unicast_peer {\n        198.51.100.2\n    }\n") +
			strings.Replace(inst("    unicast_peer {\n        198.51.100.3\n    }\n"), "VI_1", "VI_2", 1),
	} {
		if _, err := Parse("k.conf", []byte(src)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse("k.conf", []byte(instanceHead+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Instances[0]
	if in.State != StateBackup || in.Priority != DefaultPriority || in.AdvertInt != DefaultAdvertInt || in.Version != 2 ||
		in.Nopreempt || in.PreemptDelay != 0 || !in.Accept || in.Strict || in.Auth.Type != AuthNone ||
		in.McastGroup != DefaultMcastGroup4 || in.UnicastTTL != 255 || in.DownTimerAdverts != 3 ||
		in.Garp != keepaliveDefaultGarp() || in.LowerPrioNoAdvert || in.HigherPrioSendAdvert {
		t.Errorf("defaults = %+v", in)
	}

	// Global defaults flow into instances; vrrp_min_garp as keepalived -d shows it.
	cfg, err = Parse("k.conf", []byte("global_defs {\n vrrp_version 3\n vrrp_garp_master_delay 7\n vrrp_garp_master_repeat 3\n vrrp_strict\n}\n"+
		instanceHead+" priority 255\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	in = cfg.Instances[0]
	want := Garp{MasterDelay: 7 * time.Second, MasterRepeat: 3, MasterRefreshRepeat: 1}
	if in.Version != 3 || in.Garp != want || !in.Strict || !in.Accept || !in.LowerPrioNoAdvert || in.State != StateMaster {
		t.Errorf("with globals: %+v", in)
	}
	cfg, err = Parse("k.conf", []byte("global_defs {\n vrrp_min_garp\n}\n"+instanceHead+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if g := cfg.Instances[0].Garp; g != (Garp{MasterRepeat: 1, LowerPrioRepeat: 1}) {
		t.Errorf("vrrp_min_garp: %+v", g)
	}
	// An instance's garp_master_delay does not move its lower-priority
	// delay, which follows the global one (keepalived -d).
	cfg, _ = Parse("k.conf", []byte(instanceHead+" garp_master_delay 3\n}\n"))
	if g := cfg.Instances[0].Garp; g.MasterDelay != 3*time.Second || g.LowerPrioDelay != 5*time.Second {
		t.Errorf("garp_master_delay 3: %+v", g)
	}
	// v2 rounding as keepalived -d shows: 0.5 -> 1s, 40.95 -> 41s.
	for in, want := range map[string]time.Duration{"0.5": time.Second, "0.4": time.Second, "40.95": 41 * time.Second, "2": 2 * time.Second} {
		cfg, _ = Parse("k.conf", []byte(instanceHead+" advert_int "+in+"\n}\n"))
		if got := cfg.Instances[0].AdvertInt; got != want {
			t.Errorf("v2 advert_int %s = %v, want %v", in, got, want)
		}
	}
}

func TestIncludesFS(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/k/keepalived.conf":     {Data: []byte("include conf.d/*.conf\ninclude /etc/k/abs/{b,a}.conf\n")},
		"etc/k/conf.d/20-b.conf":    {Data: []byte("global_defs {\n    router_id from-20\n}\n")},
		"etc/k/conf.d/10-a.conf":    {Data: []byte("global_defs {\n    vrrp_version 3\n}\n")},
		"etc/k/conf.d/.hidden.conf": {Data: []byte("this is skipped\n")},
		"etc/k/conf.d/dir.conf/x":   {Data: []byte("directories are skipped\n")},
		"etc/k/conf.d/exec.conf":    {Data: []byte("executables are skipped\n"), Mode: 0o755},
		"etc/k/abs/a.conf":          {Data: []byte("vrrp_script a {\n    script /bin/true\n}\n")},
		"etc/k/abs/b.conf":          {Data: []byte("vrrp_script b {\n    script /bin/true\n}\n")},
	}
	src := fsys["etc/k/keepalived.conf"].Data
	cfg, err := Parse("etc/k/keepalived.conf", src, WithFS(fsys))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etc/k/keepalived.conf", "etc/k/conf.d/10-a.conf", "etc/k/conf.d/20-b.conf", "/etc/k/abs/b.conf", "/etc/k/abs/a.conf"}
	if !reflect.DeepEqual(cfg.Files, want) {
		t.Errorf("files = %q, want %q", cfg.Files, want)
	}
	if cfg.Global.RouterID != "from-20" || cfg.Global.VRRPVersion != 3 || len(cfg.Scripts) != 2 || cfg.Scripts[0].Name != "b" {
		t.Errorf("config = %+v", cfg)
	}
	wantW := []string{"1:1: suspicious: include conf.d/*.conf: etc/k/conf.d/exec.conf: not a regular non-executable file, keepalived skips it"}
	if got := warningLines(cfg.Warnings); !reflect.DeepEqual(got, wantW) {
		t.Errorf("warnings = %q", got)
	}
}

func TestIncludeInsideBlockAndSelfLoop(t *testing.T) {
	fsys := fstest.MapFS{
		"vips.inc":  {Data: []byte("198.51.100.7/24\n198.51.100.8/24\n")},
		"self.conf": {Data: []byte("include self.conf\n")},
	}
	cfg, err := Parse("main.conf", []byte(instanceHead[:len(instanceHead)-len("    }\n")]+"include vips.inc\n    }\n}\n"), WithFS(fsys))
	if err != nil {
		t.Fatal(err)
	}
	if got := prefixes(cfg.Instances[0].VIPs); !reflect.DeepEqual(got, []string{"198.51.100.100/24", "198.51.100.7/24", "198.51.100.8/24"}) {
		t.Errorf("VIPs = %v", got)
	}
	_, err = Parse("self.conf", fsys["self.conf"].Data, WithFS(fsys))
	if err == nil || err.Error() != "self.conf:1:1: include loop: self.conf -> self.conf" {
		t.Errorf("self include: %v", err)
	}
}

func TestLimits(t *testing.T) {
	// A chain deeper than MaxDepth.
	chain := fstest.MapFS{}
	for i := 0; i < 10; i++ {
		chain[fmt.Sprintf("f%d.conf", i)] = &fstest.MapFile{Data: []byte(fmt.Sprintf("include f%d.conf\n", i+1))}
	}
	chain["f10.conf"] = &fstest.MapFile{Data: []byte("\n")}
	_, err := Parse("f0.conf", chain["f0.conf"].Data, WithFS(chain), WithLimits(Limits{MaxDepth: 4}))
	if err == nil || err.Error() != "f4.conf:1:1: include f5.conf: includes nested more than 4 deep" {
		t.Errorf("depth: %v", err)
	}

	// A diamond: each file includes the next one twice, 2^20 reads.
	diamond := fstest.MapFS{}
	for i := 0; i < 20; i++ {
		diamond[fmt.Sprintf("d%d.conf", i)] = &fstest.MapFile{Data: []byte(fmt.Sprintf("include d%d.conf\ninclude d%d.conf\n", i+1, i+1))}
	}
	diamond["d20.conf"] = &fstest.MapFile{Data: []byte("global_defs {\n}\n")}
	_, err = Parse("d0.conf", diamond["d0.conf"].Data, WithFS(diamond), WithLimits(Limits{MaxFiles: 50}))
	if err == nil || !strings.HasSuffix(err.Error(), "more than 50 files read in all (include loop or glob bomb?)") {
		t.Errorf("files: %v", err)
	}

	// A glob matching too many files.
	bomb := fstest.MapFS{}
	for i := 0; i < 30; i++ {
		bomb[fmt.Sprintf("d/%02d.conf", i)] = &fstest.MapFile{Data: []byte("\n")}
	}
	_, err = Parse("m.conf", []byte("include d/*.conf\n"), WithFS(bomb), WithLimits(Limits{MaxFiles: 20}))
	if err == nil || err.Error() != `m.conf:1:1: include d/*.conf: pattern "d/*.conf" matches more than 20 files` {
		t.Errorf("glob: %v", err)
	}

	// A huge included file, and a huge main file.
	big := fstest.MapFS{"big.conf": {Data: []byte(strings.Repeat("# filler\n", 200))}}
	_, err = Parse("m.conf", []byte("includea big.conf\n"), WithFS(big), WithLimits(Limits{MaxFileSize: 1000}))
	if err == nil || err.Error() != "m.conf:1:1: includea big.conf: larger than the limit of 1000 bytes" {
		t.Errorf("size: %v", err)
	}
	_, err = Parse("m.conf", big["big.conf"].Data, WithLimits(Limits{MaxFileSize: 1000}))
	if err == nil || err.Error() != "m.conf: larger than the limit of 1000 bytes" {
		t.Errorf("main size: %v", err)
	}
	_, err = Parse("m.conf", []byte("include big.conf\ninclude big.conf\n"), WithFS(big), WithLimits(Limits{MaxTotalSize: 2500}))
	if err == nil || err.Error() != "m.conf:2:1: include big.conf: more than 2500 bytes read in all" {
		t.Errorf("total size: %v", err)
	}
}

func TestManyErrorsStop(t *testing.T) {
	src := strings.Repeat("{\n", 500)
	_, err := Parse("m.conf", []byte(src))
	var l ErrorList
	if !errors.As(err, &l) || len(l) > maxErrors+1 || l[len(l)-1].Msg != "too many errors" {
		t.Errorf("got %d errors, last %v", len(l), l[len(l)-1])
	}
}

// TestSubstitutionBounded: definitions that expand forever are an error.
// keepalived 2.2.7 loops printing "Unexpected '{'" on the first one.
func TestSubstitutionBounded(t *testing.T) {
	for _, src := range []string{"$A={ $A\n$A\n", "$A=$A$A\nglobal_defs {\n router_id $A\n}\n", "$A=$A $A $A $A $A $A $A $A\n$A\n"} {
		done := make(chan error, 1)
		go func() {
			_, err := Parse("k.conf", []byte(src))
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "parameter substitution does not end or makes the line too long") {
				t.Errorf("%q: %v", src, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: Parse does not return", src)
		}
	}
}

func TestSyncGroupMasterState(t *testing.T) {
	src := "vrrp_sync_group G {\n    group {\n        A\n        B\n    }\n}\n" +
		"vrrp_instance A {\n    state MASTER\n    interface eth0\n    virtual_router_id 1\n    priority %s\n    virtual_ipaddress {\n        198.51.100.1\n    }\n}\n" +
		"vrrp_instance B {\n    state MASTER\n    interface eth1\n    virtual_router_id 2\n    priority 255\n    virtual_ipaddress {\n        203.0.113.1\n    }\n}\n"
	for prio, want := range map[string]State{"255": StateMaster, "150": StateBackup} {
		cfg, err := Parse("k.conf", []byte(fmt.Sprintf(src, prio)))
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range cfg.Instances {
			if in.State != want {
				t.Errorf("priority %s: %s starts %v, want %v (keepalived -d)", prio, in.Name, in.State, want)
			}
		}
	}
}

func TestRunAs(t *testing.T) {
	cfg := mustParseFile(t, "scripts.conf")
	in := mustInstance(t, cfg, "VI_1")
	for _, tt := range []struct {
		cmd         *Command
		user, group string
	}{
		{in.Notify.Master, "root", ""},
		{in.Notify.Stop, "root", "root"},
		{&cfg.Script("chk_file").Command, "nobody", ""},
	} {
		if u, g := cfg.RunAs(tt.cmd); u != tt.user || g != tt.group {
			t.Errorf("RunAs(%q) = %q, %q; want %q, %q", tt.cmd.Argv, u, g, tt.user, tt.group)
		}
	}
}

// old_unicast_checksum: not set, set, or "never"; anything else is an
// error at its line.
func TestOldUnicastChecksum(t *testing.T) {
	conf := func(line string) string {
		return "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n version 3\n unicast_src_ip 198.51.100.1\n unicast_peer {\n  198.51.100.2\n }\n " +
			line + "\n virtual_ipaddress {\n  198.51.100.100/24\n }\n}\n"
	}
	for _, tt := range []struct {
		line string
		want UnicastChecksum
	}{
		{"", UnicastChecksumDetect},
		{"old_unicast_checksum", UnicastChecksumOld},
		{"old_unicast_checksum never", UnicastChecksumNever},
	} {
		cfg, err := Parse("k.conf", []byte(conf(tt.line)), WithFS(fstest.MapFS{}))
		if err != nil {
			t.Fatalf("%q: %v", tt.line, err)
		}
		if got := mustInstance(t, cfg, "VI_1").OldUnicastChecksum; got != tt.want {
			t.Errorf("%q: OldUnicastChecksum %v, want %v", tt.line, got, tt.want)
		}
	}
	if _, err := Parse("k.conf", []byte(conf("old_unicast_checksum always")), WithFS(fstest.MapFS{})); err == nil ||
		!strings.Contains(err.Error(), "k.conf:9") || !strings.Contains(err.Error(), "the only option is never") {
		t.Errorf("old_unicast_checksum always: %v", err)
	}
}
