package keepalived

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// This file compares vrrpdoctor's reading of every test configuration with
// `keepalived -t` (keepalived 2.2.7, Debian 12), run in a throwaway network
// namespace (unshare -n) whose interfaces match labHost(): nothing touches
// the machine's own namespace, and keepalived only checks the file.
//
// keepalived -t exits 0 when it reports nothing, 5 when it reports any
// configuration problem (including ones it fixes up and runs with), 6 for
// a script security problem, 2 for a missing parameter. vrrpdoctor refuses
// a configuration only where the value is wrong or unusable; what keepalived
// adjusts and runs is a warning. Where the two disagree, the note says why.

// kaExit describes keepalived -t's verdict on a configuration.
type kaExit struct {
	code int    // exit status; 128+N when killed by signal N
	note string // why vrrpdoctor's verdict differs, if it does
}

// fileCases are the configurations under testdata/keepalived.
var fileCases = []struct {
	file   string
	id     string // config id (keepalived -i), for @ lines
	ourErr bool   // vrrpdoctor reports an error (Check with labHost)
	ka     kaExit
}{
	{file: "classic-master.conf", ka: kaExit{code: 0}},
	{file: "classic-backup.conf", ka: kaExit{code: 0}},
	{file: "sync-group.conf", ka: kaExit{code: 0}},
	{file: "unicast.conf", ka: kaExit{code: 0}},
	{file: "ipv6.conf", ka: kaExit{code: 0}},
	{file: "conditional.conf", id: "node1", ka: kaExit{code: 0}},
	{file: "conditional.conf", id: "node2", ka: kaExit{code: 0}},
	{file: "unused.conf", ka: kaExit{code: 0}},
	{file: "includes/keepalived.conf", ka: kaExit{code: 0}},
	{file: "lexing.conf", ka: kaExit{code: 6, note: "a root notify script without enable_script_security: keepalived's SECURITY VIOLATION, a warning for vrrpdoctor"}},
	{file: "warnings.conf", ka: kaExit{code: 5, note: "keepalived -t fails on what it adjusts (auth_pass truncated, interval rounded, nopreempt cleared, VIP of the other family dropped) and runs with; vrrpdoctor warns"}},
	{file: "scripts.conf", ka: kaExit{code: 128 + int(syscall.SIGTERM), note: "keepalived 2.2.7 -t kills itself with SIGTERM when a vrrp_script has 'user nobody' (a keepalived bug); the configuration is fine"}},
	{file: "loop/a.conf", ourErr: true, ka: kaExit{code: 0, note: "keepalived follows the include loop until it runs out of file descriptors, logs 'Too many open files' and goes on; vrrpdoctor reports the loop"}},
}

// errorKeepalived is keepalived -t's verdict on each of errorCases; all are
// errors for vrrpdoctor. Cases not listed exit 5.
var errorKeepalived = map[string]kaExit{
	"vrid missing value":        {code: 2},
	"notify without command":    {code: 2},
	"includea":                  {code: 6},
	"multi-line definition":     {code: 0, note: "keepalived supports multi-line $definitions; vrrpdoctor does not (yet) and says so"},
	"value block without brace": {code: 0, note: "keepalived logs \"'{' missing\" (not a config error) and reads the next lines up to '}' as the block; vrrpdoctor requires the '{'"},
}

// warningKeepalived is keepalived -t's verdict on each of warningCases; none
// is an error for vrrpdoctor. Cases not listed exit 5: keepalived reports
// the problem, fixes it up and would run.
var warningKeepalived = map[string]kaExit{
	"auth without type":      {code: 0, note: "keepalived silently runs without authentication"},
	"extra words":            {code: 0, note: "keepalived silently ignores words after the value"},
	"flag with value":        {code: 0, note: "keepalived silently ignores the value"},
	"include without match":  {code: 0, note: "keepalived logs 'Config files missing' but does not fail"},
	"include quoted":         {code: 0, note: "as include without match"},
	"peer twice":             {code: 0},
	"peer is vip":            {code: 0},
	"unquoted script args":   {code: 0, note: "keepalived silently drops the extra words"},
	"use_vmac":               {code: 0},
	"v2 ipv6":                {code: 0, note: "keepalived sends VRRPv2 over IPv6 without a word"},
	"sync group master":      {code: 0, note: "keepalived silently starts the members as BACKUP"},
	"notify twice":           {code: 6, note: "also a root script without enable_script_security"},
	"sync group":             {code: 6, note: "also a root script without enable_script_security"},
	"security":               {code: 6},
	"unknown keyword":        {code: 5},
	"peer family first":      {code: 5},
	"v3 interval resolution": {code: 5},
}

// needLab skips (or, with CI=true, fails) when keepalived -t cannot be run
// in a network namespace here.
func needLab(t *testing.T) {
	t.Helper()
	fail := t.Skip
	if os.Getenv("CI") == "true" {
		fail = t.Fatal
	}
	if os.Geteuid() != 0 {
		fail("running keepalived -t in a network namespace needs root")
	}
	for bin, pkg := range map[string]string{"keepalived": "keepalived", "unshare": "util-linux", "ip": "iproute2"} {
		if _, err := exec.LookPath(bin); err != nil {
			fail(bin + " not found: install the Debian package " + pkg)
		}
	}
	out, err := exec.Command("keepalived", "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v2.2.7") {
		t.Skipf("the expectations were recorded with keepalived 2.2.7; this is %q", firstLine(string(out)))
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// labScript builds labHost()'s interfaces in the new namespace, then runs
// keepalived -t on $0 with config id $1. Setup failures exit 99.
const labScript = `
ip link set lo up || exit 99
ip link add eth0 type veth peer name eth0p || exit 99
ip link add eth1 type veth peer name eth1p || exit 99
for i in eth0 eth0p eth1 eth1p; do ip link set "$i" up || exit 99; done
ip addr add 198.51.100.1/24 dev eth0 || exit 99
ip addr add 2001:db8::1/64 dev eth0 nodad || exit 99
ip addr add 203.0.113.1/24 dev eth1 || exit 99
if [ -n "$1" ]; then exec keepalived -t -f "$0" -i "$1"; fi
exec keepalived -t -f "$0"
`

// keepalivedT runs keepalived -t on path in a throwaway network namespace
// and returns its exit status and output.
func keepalivedT(t *testing.T, path, id string) (int, string) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", "sh", "-c", labScript, abs, id)
	cmd.Dir = filepath.Dir(abs)
	// Its own process group: keepalived signals its group on some exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return 128 + int(ws.Signal()), string(out)
		}
		if ws.ExitStatus() == 99 {
			t.Fatalf("setting up the namespace failed:\n%s", out)
		}
		return ws.ExitStatus(), string(out)
	default:
		t.Fatalf("running keepalived -t: %v\n%s", err, out)
		return 0, ""
	}
}

func TestAgainstKeepalivedFiles(t *testing.T) {
	needLab(t)
	for _, tc := range fileCases {
		t.Run(tc.file+"@"+tc.id, func(t *testing.T) {
			path := filepath.Join(testdata, tc.file)
			_, err := Check(path, labHost(), WithConfigID(tc.id))
			if (err != nil) != tc.ourErr {
				t.Errorf("vrrpdoctor: error %v, want error: %v", err, tc.ourErr)
			}
			code, out := keepalivedT(t, path, tc.id)
			if code != tc.ka.code {
				t.Errorf("keepalived -t exited %d, want %d (%s)\n%s", code, tc.ka.code, tc.ka.note, out)
			}
		})
	}
}

func TestAgainstKeepalivedCases(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	run := func(t *testing.T, name, src string, want kaExit) {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".conf")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out := keepalivedT(t, path, "")
		if code != want.code {
			t.Errorf("keepalived -t exited %d, want %d (%s)\n%s", code, want.code, want.note, out)
		}
	}
	for _, tc := range errorCases {
		t.Run("error/"+tc.name, func(t *testing.T) {
			want, ok := errorKeepalived[tc.name]
			if !ok {
				want = kaExit{code: 5}
			}
			run(t, tc.name, tc.src, want)
		})
	}
	for _, tc := range warningCases {
		t.Run("warning/"+tc.name, func(t *testing.T) {
			want, ok := warningKeepalived[tc.name]
			if !ok {
				want = kaExit{code: 5}
			}
			run(t, tc.name, tc.src, want)
		})
	}
}
