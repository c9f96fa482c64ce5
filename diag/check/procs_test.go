package check

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestDaemons: the VRRP daemons in this network namespace from a made-up
// proc: keepalived's parent process, and `vrrpdoctor run` with the
// configuration it reads (argv[0] longer than the first read included);
// not keepalived's child, other verbs, other namespaces or other programs.
func TestDaemons(t *testing.T) {
	dir := t.TempDir()
	long := "/" + strings.Repeat("x", 300) + "/vrrpdoctor"
	for pid, v := range map[string][3]string{ // command line, parent, namespace
		"100": {"/usr/sbin/keepalived\x00--dont-fork\x00-f\x00/etc/a.conf\x00", "1", "net:[1]"},
		"101": {"/usr/sbin/keepalived\x00--dont-fork\x00-f\x00/etc/a.conf\x00", "100", "net:[1]"},
		"200": {"/usr/bin/vrrpdoctor\x00run\x00-c\x00/etc/b.conf\x00", "1", "net:[1]"},
		"201": {"vrrpdoctor\x00--config=/etc/c.conf\x00run\x00", "1", "net:[2]"},
		"202": {"vrrpdoctor\x00check\x00", "1", "net:[1]"},
		"203": {long + "\x00run\x00", "1", "net:[1]"},
		"300": {"/usr/bin/sshd\x00", "1", "net:[1]"},
		"301": {"/usr/bin/notvrrpdoctor\x00run\x00", "1", "net:[1]"},
		"400": {"", "2", "net:[1]"}, // kernel thread
	} {
		p := filepath.Join(dir, pid)
		if err := os.MkdirAll(filepath.Join(p, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "cmdline"), []byte(v[0]), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "stat"), []byte(pid+" (x) S "+v[1]+" 1 1 0 -1"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(v[2], filepath.Join(p, "ns", "net")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "thread-self", "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("net:[1]", filepath.Join(dir, "thread-self", "ns", "net")); err != nil {
		t.Fatal(err)
	}
	ps, problems := daemons(dir)
	want := []Process{{PID: 100, Kind: "keepalived", Config: "/etc/a.conf"}, {PID: 200, Kind: "vrrpdoctor-run", Config: "/etc/b.conf"},
		{PID: 203, Kind: "vrrpdoctor-run", Config: DefaultConfig}}
	if !reflect.DeepEqual(ps, want) || len(problems) > 0 {
		t.Errorf("daemons %+v, problems %v; want %+v", ps, problems, want)
	}
}
