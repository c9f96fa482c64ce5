package hostfacts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKeepalivedArgs(t *testing.T) {
	for _, tc := range []struct {
		args      string
		conf, ns  string
		wantError string
	}{
		{"", DefaultKeepalivedConfig, "", ""},
		{"-f /etc/k.conf", "/etc/k.conf", "", ""},
		{"-f/etc/k.conf", "/etc/k.conf", "", ""},
		{"-nlDf /etc/k.conf", "/etc/k.conf", "", ""},
		{"--use-file /etc/k.conf -D", "/etc/k.conf", "", ""},
		{"--use-file=/etc/k.conf", "/etc/k.conf", "", ""},
		{"--use=/etc/k.conf", "/etc/k.conf", "", ""},
		{"--u /etc/k.conf", DefaultKeepalivedConfig, "", ""}, // ambiguous: use-file or umask
		{"-p /run/f.pid -r /run/v.pid", DefaultKeepalivedConfig, "", ""},
		{"-pf /x", DefaultKeepalivedConfig, "", ""}, // -p takes "f" as pid file
		{"-gf", DefaultKeepalivedConfig, "", ""},    // -g with optional value "f"
		{"--pid -f", DefaultKeepalivedConfig, "", ""},
		{"-s blue -f /a --namespace=red", "/a", "red", ""},
		{"--na green", DefaultKeepalivedConfig, "green", ""},
		{"-- -f /x", DefaultKeepalivedConfig, "", ""},
		{"-f", DefaultKeepalivedConfig, "", `keepalived argument 1 ("-f"): missing value for -f`},
		{"-D --use-file", DefaultKeepalivedConfig, "", `keepalived argument 2 ("--use-file"): missing value`},
		{"--use-file=", DefaultKeepalivedConfig, "", `keepalived argument 1 ("--use-file="): empty value`},
	} {
		ka, err := ParseKeepalivedArgs(strings.Fields(tc.args))
		if tc.wantError != "" {
			if err == nil || err.Error() != tc.wantError {
				t.Errorf("%q: error %v, want %q", tc.args, err, tc.wantError)
			}
			continue
		}
		if err != nil || ka.Config != tc.conf || ka.Namespace != tc.ns {
			t.Errorf("%q: %+v %v, want config %q namespace %q", tc.args, ka, err, tc.conf, tc.ns)
		}
	}
}

func FuzzParseKeepalivedArgs(f *testing.F) {
	f.Add("-nlDf\x00/etc/k.conf\x00--namespace=x")
	f.Add("--use-file\x00a\x00-s")
	f.Fuzz(func(t *testing.T, s string) {
		ka, err := ParseKeepalivedArgs(strings.Split(s, "\x00"))
		if err == nil && ka.Config == "" {
			t.Fatalf("empty config from %q", s)
		}
	})
}

// fakeProc builds a proc directory with processes pid -> (cmdline, ppid,
// net namespace).
func fakeProc(t *testing.T, selfNS string, procs map[string][3]string) string {
	t.Helper()
	dir := t.TempDir()
	mk := func(pid, cmdline, ppid, ns string) {
		p := filepath.Join(dir, pid)
		if err := os.MkdirAll(filepath.Join(p, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(p, "cmdline"), []byte(cmdline), 0o644)
		os.WriteFile(filepath.Join(p, "stat"), []byte(pid+" (keep alived) S "+ppid+" 1 1 0 -1"), 0o644)
		if err := os.Symlink(ns, filepath.Join(p, "ns", "net")); err != nil {
			t.Fatal(err)
		}
	}
	for pid, v := range procs {
		mk(pid, v[0], v[1], v[2])
	}
	if err := os.MkdirAll(filepath.Join(dir, "thread-self", "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(selfNS, filepath.Join(dir, "thread-self", "ns", "net")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// BenchmarkKeepalivedProc scans this machine's /proc, as the daemon's
// self-diagnosis does every window.
func BenchmarkKeepalivedProc(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Keepalived("/proc"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestKeepalivedProcesses(t *testing.T) {
	dir := fakeProc(t, "net:[1]", map[string][3]string{
		"100": {"/usr/sbin/keepalived\x00--dont-fork\x00-f\x00/etc/a.conf\x00", "1", "net:[1]"},
		"101": {"/usr/sbin/keepalived\x00--dont-fork\x00-f\x00/etc/a.conf\x00", "100", "net:[1]"},
		"200": {"keepalived\x00", "1", "net:[2]"},
		"300": {"/usr/bin/sshd\x00", "1", "net:[1]"},
		"400": {"", "2", "net:[1]"}, // kernel thread
		// argv[0] longer than the first read.
		"500": {"/" + strings.Repeat("x", 300) + "/keepalived\x00-n\x00", "1", "net:[1]"},
		// Ends in keepalived, is not keepalived.
		"600": {"/usr/bin/notkeepalived\x00", "1", "net:[1]"},
		"700": {"/usr/bin/" + strings.Repeat("y", 300) + "\x00", "1", "net:[1]"},
	})
	procs, err := Keepalived(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 4 || procs[0].PID != 100 || procs[1].PID != 101 || procs[2].PID != 200 || procs[3].PID != 500 {
		t.Fatalf("got %+v, want PIDs 100, 101, 200, 500 in that order", procs)
	}
	byPID := map[int]KeepalivedProcess{}
	for _, p := range procs {
		byPID[p.PID] = p
	}
	if p := byPID[100]; !p.Parent || p.Config != "/etc/a.conf" || !p.SameNetns || !p.SameNetnsKnown || p.PPID != 1 {
		t.Errorf("100: %+v", p)
	}
	if p := byPID[101]; p.Parent || p.PPID != 100 {
		t.Errorf("101: %+v", p)
	}
	if p := byPID[200]; !p.Parent || p.Config != DefaultKeepalivedConfig || p.SameNetns {
		t.Errorf("200: %+v", p)
	}
	if p := byPID[500]; len(p.Args) != 2 || p.Args[1] != "-n" {
		t.Errorf("500: %+v", p)
	}
}
