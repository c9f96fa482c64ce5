package demo

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testState() *State {
	return &State{
		Version: StateVersion, Mode: ModeUp, Complete: true,
		Owner:   Proc{Role: "owner", PID: 10, Start: 5, Cmdline: "vrrpdoctor lab up"},
		Created: time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC),
		Dir:     "/tmp/vrrpdoctor-lab-123", Namespaces: []string{"vdlab-a", "vdlab-b"},
		Daemon: DaemonKeepalived, Firewall: FirewallFirewalld, VIP: VIP, Bus: "unix:path=/tmp/vrrpdoctor-lab-123/b/bus",
		Nodes: append([]Node(nil), nodes...),
		Procs: []Proc{{Node: "a", Role: "keepalived", PID: 11, Start: 6, Cmdline: "keepalived -f x"}},
	}
}

func TestStateSaveLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadState(dir); !errors.Is(err, ErrNoLab) {
		t.Fatalf("empty dir: %v, want ErrNoLab", err)
	}
	st := testState()
	if err := st.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != st.Owner || !slices.Equal(got.Namespaces, st.Namespaces) || !slices.Equal(got.Procs, st.Procs) || got.Dir != st.Dir || got.Bus != st.Bus || !got.Created.Equal(st.Created) {
		t.Errorf("round trip: got %+v, want %+v", got, st)
	}
	// No temporary file is left beside the state file.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "state.json" {
		t.Errorf("state dir holds %v", entries)
	}
}

func TestStateValidate(t *testing.T) {
	for name, mutate := range map[string]func(*State){
		"foreign namespace": func(s *State) { s.Namespaces = append(s.Namespaces, "prod") },
		"namespace prefix":  func(s *State) { s.Namespaces = []string{"vdlab-a/../x"} },
		"node elsewhere":    func(s *State) { s.Nodes[1].Namespace = "vdlab-c" },
		"foreign dir":       func(s *State) { s.Dir = "/etc" },
		"relative dir":      func(s *State) { s.Dir = "vrrpdoctor-lab-1" },
		"version":           func(s *State) { s.Version = 99 },
		"mode":              func(s *State) { s.Mode = "other" },
		"pid":               func(s *State) { s.Procs[0].PID = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			s := testState()
			mutate(s)
			if err := s.Validate(); err == nil {
				t.Error("accepted")
			}
			dir := t.TempDir()
			if err := s.Save(dir); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadState(dir); err == nil || !strings.Contains(err.Error(), "state.json") {
				t.Errorf("LoadState: %v, want an error naming the file", err)
			}
		})
	}
	if err := testState().Validate(); err != nil {
		t.Errorf("valid state refused: %v", err)
	}
}

func TestLoadStateGarbage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(StatePath(dir), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(dir); err == nil || errors.Is(err, ErrNoLab) {
		t.Errorf("garbage state: %v", err)
	}
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.state != 'S' || st.start != 987654 {
		t.Errorf("got %+v, want state S, start 987654", st)
	}
	for _, bad := range []string{"", "12 (x", "12 (x) S 1 2", "12 (x) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "12 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x 20"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

// fakeProc writes /proc/PID/{stat,cmdline} under a temporary procRoot.
func fakeProc(t *testing.T, root string, pid int, state string, start int, cmdline string) {
	t.Helper()
	d := filepath.Join(root, itoa(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := itoa(pid) + " (prog) " + state + " 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " + itoa(start) + " 0 0"
	if err := os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "cmdline"), []byte(strings.ReplaceAll(cmdline, " ", "\x00")+"\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestProcAlive(t *testing.T) {
	root := t.TempDir()
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
	fakeProc(t, root, 100, "S", 500, "keepalived --use-file a.conf")
	fakeProc(t, root, 101, "Z", 501, "keepalived --use-file b.conf")

	p, err := Identify(100, "a", "keepalived")
	if err != nil {
		t.Fatal(err)
	}
	if p.Start != 500 || p.Cmdline != "keepalived --use-file a.conf" {
		t.Fatalf("Identify: %+v", p)
	}
	for _, tc := range []struct {
		name string
		p    Proc
		want bool
	}{
		{"same process", p, true},
		{"recorded before exec", Proc{PID: 100, Start: 500}, true},
		{"PID reused: other start time", Proc{PID: 100, Start: 499, Cmdline: p.Cmdline}, false},
		{"PID reused: other program", Proc{PID: 100, Start: 500, Cmdline: "sshd"}, false},
		{"zombie", Proc{PID: 101, Start: 501}, false},
		{"gone", Proc{PID: 102, Start: 1}, false},
		{"no pid", Proc{}, false},
	} {
		if got := tc.p.Alive(); got != tc.want {
			t.Errorf("%s: Alive() = %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := Identify(102, "a", "x"); err == nil {
		t.Error("Identify of a missing process succeeded")
	}
}

func TestLastState(t *testing.T) {
	keepalived := `Wed Nov 25 16:38:01 2026: (VI_51) Entering BACKUP STATE (init)
Wed Nov 25 16:38:04 2026: (VI_51) Entering MASTER STATE
Wed Nov 25 16:38:20 2026: (VI_51) Master received advert from 198.51.100.1 with higher priority 150, ours 100
Wed Nov 25 16:38:20 2026: (VI_51) Entering BACKUP STATE
`
	run := `time=2026-11-25T16:39:10Z level=INFO msg="state change" instance=VI_51 from=INIT to=BACKUP reason=startup priority=100
time=2026-11-25T16:39:13Z level=INFO msg="state change" instance=VI_51 from=BACKUP to=MASTER reason=master-down priority=100
`
	for _, tc := range []struct{ log, want string }{
		{keepalived, "BACKUP"},
		{run, "MASTER"},
		{"", ""},
		{"Starting VRRP child process\n", ""},
	} {
		if got := lastState(tc.log); got != tc.want {
			t.Errorf("lastState(%q) = %q, want %q", tc.log, got, tc.want)
		}
	}
}

func TestNodeCommand(t *testing.T) {
	st := testState()
	w, env, err := st.NodeCommand("b", "/usr/local/bin/vrrpdoctor", []string{"vrrpdoctor", "check", "-c", "x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ip", "netns", "exec", "vdlab-b", "/usr/local/bin/vrrpdoctor", "check", "-c", "x"}; !slices.Equal(w, want) {
		t.Errorf("argv %q, want %q", w, want)
	}
	if want := []string{"DBUS_SYSTEM_BUS_ADDRESS=" + st.Bus}; !slices.Equal(env, want) {
		t.Errorf("env on b %q, want %q", env, want)
	}
	// Outside b (or without firewalld) the system bus is one that does not
	// exist: never the machine's, whose firewalld is the machine's.
	noBus := []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/tmp/vrrpdoctor-lab-123/a/no-system-bus"}
	w, env, err = st.NodeCommand("a", "/self", []string{"tcpdump", "vrrpdoctor"})
	if err != nil || !slices.Equal(env, noBus) || !slices.Equal(w, []string{"ip", "netns", "exec", "vdlab-a", "tcpdump", "vrrpdoctor"}) {
		t.Errorf("a: %q %q %v (only the program is replaced; env %q)", w, env, err, noBus)
	}
	st.Bus = ""
	if _, env, _ := st.NodeCommand("b", "/self", []string{"true"}); len(env) != 1 || !strings.HasSuffix(env[0], "/b/no-system-bus") {
		t.Errorf("b without firewalld: env %q", env)
	}
	if _, _, err := st.NodeCommand("c", "/self", []string{"true"}); err == nil || !strings.Contains(err.Error(), "nodes: a, b") {
		t.Errorf("unknown node: %v", err)
	}
	if _, _, err := st.NodeCommand("a", "/self", nil); err == nil {
		t.Error("empty command accepted")
	}
}

func TestChoose(t *testing.T) {
	have := map[string]bool{}
	old := lookPath
	lookPath = func(p string) (string, error) {
		if have[p] {
			return "/usr/bin/" + p, nil
		}
		return "", errors.New("not found")
	}
	t.Cleanup(func() { lookPath = old })
	set := func(ps ...string) {
		clear(have)
		for _, p := range ps {
			have[p] = true
		}
	}
	all := []string{"ip", "keepalived", "nft", "firewalld", "firewall-cmd", "dbus-daemon", "unshare"}
	for _, tc := range []struct {
		name          string
		have          []string
		opts          Options
		daemon, fw    string
		errSubstrings []string
	}{
		{"everything", all, Options{}, DaemonKeepalived, FirewallFirewalld, nil},
		{"no-firewalld", all, Options{NoFirewalld: true}, DaemonKeepalived, FirewallNft, nil},
		{"no keepalived", []string{"ip", "nft"}, Options{}, DaemonVrrpdoctor, FirewallNft, nil},
		{"daemon vrrpdoctor", all, Options{Daemon: "vrrpdoctor"}, DaemonVrrpdoctor, FirewallFirewalld, nil},
		{"firewalld without dbus", []string{"ip", "keepalived", "nft", "firewalld", "firewall-cmd", "unshare"}, Options{}, DaemonKeepalived, FirewallNft, nil},
		{"keepalived asked, missing", []string{"ip", "nft"}, Options{Daemon: "keepalived"}, "", "", []string{"apt-get install keepalived", "--daemon vrrpdoctor"}},
		{"bad daemon", all, Options{Daemon: "bird"}, "", "", []string{`"bird"`, "keepalived or vrrpdoctor"}},
		{"no firewall", []string{"ip", "keepalived"}, Options{}, "", "", []string{"apt-get install nftables"}},
		{"no ip", []string{"keepalived", "nft"}, Options{}, "", "", []string{"apt-get install iproute2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set(tc.have...)
			d, fw, err := choose(tc.opts)
			if tc.errSubstrings != nil {
				if err == nil {
					t.Fatalf("chose %s/%s, want an error", d, fw)
				}
				for _, s := range tc.errSubstrings {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil || d != tc.daemon || fw != tc.fw {
				t.Errorf("got %s/%s %v, want %s/%s", d, fw, err, tc.daemon, tc.fw)
			}
		})
	}
}

func TestDaemonConfig(t *testing.T) {
	a, err := daemonConfig(nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"state MASTER", "priority 150", "virtual_router_id 51", "version 2", "advert_int 1\n", VIP + "/24", "interface eth0"} {
		if !strings.Contains(a, want) {
			t.Errorf("a's config lacks %q:\n%s", want, a)
		}
	}
	b, err := daemonConfig(nodes[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b, "state BACKUP") || !strings.Contains(b, "priority 100") {
		t.Errorf("b's config:\n%s", b)
	}
}

func TestWrapAndQuote(t *testing.T) {
	lines := wrap("aaa bbb ccc ddd", 7)
	if !slices.Equal(lines, []string{"aaa bbb", "ccc ddd"}) {
		t.Errorf("wrap: %q", lines)
	}
	if got := wrap("", 10); !slices.Equal(got, []string{""}) {
		t.Errorf("wrap of nothing: %q", got)
	}
	p := newPrinter(nil, false, "/tmp/go-build1/exe/vrrpdoctor")
	got := p.quote([]string{"/tmp/go-build1/exe/vrrpdoctor", "check", "-c", "a b.conf", "it's"})
	if want := `vrrpdoctor check -c 'a b.conf' 'it'\''s'`; got != want {
		t.Errorf("quote: %s, want %s", got, want)
	}
}
