package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lab exec-firewalld is hidden from help and refuses bad input before it
// looks at namespaces or mounts anything. (Its namespace checks and mounts
// are tested in internal/netlab, in namespaces of their own.)
func TestLabExecFirewalldArgs(t *testing.T) {
	out, _, _ := runLab(t, "lab", "--help")
	if strings.Contains(out, "exec-firewalld") {
		t.Errorf("lab --help shows the hidden exec-firewalld:\n%s", out)
	}
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"lab", "exec-firewalld"}, 2, `required flag(s) "etc", "log" not set`},
		{[]string{"lab", "exec-firewalld", "--etc", empty}, 2, `required flag(s) "log" not set`},
		{[]string{"lab", "exec-firewalld", "--etc", "etc-copy", "--log", "/tmp/fw.log"}, 1, `firewalld configuration copy "etc-copy": not an absolute path`},
		{[]string{"lab", "exec-firewalld", "--etc", "/etc/firewalld", "--log", "/tmp/fw.log"}, 1, "is the machine's own configuration, not a copy"},
		{[]string{"lab", "exec-firewalld", "--etc", empty, "--log", "/run/fw.log"}, 1, "is under /run, which firewalld's tmpfs hides"},
		{[]string{"lab", "exec-firewalld", "--etc", empty, "--log", filepath.Join(empty, "fw.log")}, 1, "no firewalld.conf in it"},
		{[]string{"lab", "exec-firewalld", "--etc", empty, "--log", "/tmp/x", "extra"}, 2, "unknown command"},
	} {
		_, errOut, code := runLab(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d with %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(empty, "fw.log")); err == nil {
		t.Error("a refused exec-firewalld created its log file")
	}
}
