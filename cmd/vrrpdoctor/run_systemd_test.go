package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitFile = "systemd/vrrpdoctor.service"

// unitSettings reads key=value settings of a unit file, by section.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("%s: not key=value: %q", path, l)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

// TestSystemdUnit: the unit matches what run does (Type=notify with a
// watchdog, SIGHUP reload) and keeps the privileges to the two
// capabilities, with the hardening in docs/daemon.md.
func TestSystemdUnit(t *testing.T) {
	s := unitSettings(t, unitFile)
	want := map[string]string{
		"Service.Type":                    "notify",
		"Service.ExecReload":              "/bin/kill -HUP $MAINPID",
		"Service.WatchdogSec":             "30s",
		"Service.CapabilityBoundingSet":   "CAP_NET_RAW CAP_NET_ADMIN",
		"Service.AmbientCapabilities":     "CAP_NET_RAW CAP_NET_ADMIN",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_NETLINK AF_PACKET AF_UNIX",
		"Service.SystemCallArchitectures": "native",
		"Service.KillMode":                "mixed",
		"Unit.Conflicts":                  "keepalived.service",
		"Install.WantedBy":                "multi-user.target",
	}
	for k, v := range want {
		if got := s[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// ExecStart runs this command's own flags.
	start := s["Service.ExecStart"]
	if len(start) != 1 {
		t.Fatalf("ExecStart %q", start)
	}
	args := strings.Fields(start[0])
	if args[0] != "/usr/bin/vrrpdoctor" || args[1] != "run" {
		t.Fatalf("ExecStart %q", start[0])
	}
	cmd := newRunCmd(streams{})
	if err := cmd.ParseFlags(args[2 : len(args)-1]); err != nil { // without $VRRPDOCTOR_OPTS
		t.Errorf("ExecStart %q: %v", start[0], err)
	}
}

// TestSystemdUnitVerify runs systemd-analyze verify on the unit, with the
// binary path pointed at an executable (verify checks that it exists).
func TestSystemdUnitVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (Debian: apt-get install systemd); the unit is checked by TestSystemdUnit only")
	}
	text, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "vrrpdoctor")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, "vrrpdoctor.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(text), "/usr/bin/vrrpdoctor", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The exposure score systemd computes from the hardening (0 best, 10
	// worst); the unit's is 2.7 with systemd 252.
	out, err = exec.Command(sa, "security", "--offline=yes", "--threshold=35", unit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 3.5: %v\n%s", err, out)
	}
}
