package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// TestPrivilegeScriptSecurity: `vrrpdoctor run` with keepalived's
// enable_script_security. keepalived (lib/notify.c, check_script_secure)
// protects only scripts that run as root (uid or gid 0): then every
// component of the path must be root's and not writable by a non-root
// group or by everyone, or the script is disabled. A script run as
// another user (script_user nobody) could only hurt that user, and runs
// wherever it lies. Each case records whether the script ran and as whom.
func TestPrivilegeScriptSecurity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		user       string
		dirMode    os.FileMode
		scriptMode os.FileMode
		uid        string // the uid the script must run as; "" must not run
	}{
		{"nobody, secure path", "nobody", 0o755, 0o755, "65534"},
		{"nobody, directory writable by everyone", "nobody", 0o777, 0o755, "65534"},
		{"root, secure path", "root", 0o755, 0o755, "0"},
		{"root, directory writable by everyone", "root", 0o777, 0o755, ""},
		{"root, script writable by everyone", "root", 0o755, 0o777, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lab := netlabtest.New(t)
			vrrpdoctor(t)
			a, _, err := lab.Pair()
			if err != nil {
				t.Fatal(err)
			}
			base := t.TempDir()
			for d := base; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
				must(t, os.Chmod(d, 0o755))
			}
			scripts, out := filepath.Join(base, "scripts"), filepath.Join(base, "out")
			must(t, os.Mkdir(scripts, 0o755))
			must(t, os.Mkdir(out, 0o755))
			must(t, os.Chmod(out, 0o1777))
			marker := filepath.Join(out, "uid")
			script := filepath.Join(scripts, "check.sh")
			must(t, os.WriteFile(script, []byte("#!/bin/sh\nid -u > "+marker+"\n"), 0o755))
			must(t, os.Chmod(script, tc.scriptMode))
			must(t, os.Chmod(scripts, tc.dirMode))
			top := fmt.Sprintf("global_defs {\n    enable_script_security\n    script_user %s\n}\nvrrp_script chk {\n    script %q\n    interval 1\n    weight -60\n}\n", tc.user, script)
			in := netlab.VRRPInstance{Interface: "eth0", VRID: 51, Version: 3, Priority: 150, AdvertInt: 100 * time.Millisecond, VIPs: []string{faultVIP.String() + "/24"}, Extra: []string{"track_script { chk }"}}
			conf, err := netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{in}}.Render()
			must(t, err)
			p := startRun(t, a, lab.Path("a.conf"), top+conf)
			// The script runs every second; give it three chances.
			_ = netlab.WaitFor(3*time.Second, func() (bool, error) {
				_, err := os.Stat(marker)
				return err == nil, nil
			})
			got, err := os.ReadFile(marker)
			uid := strings.TrimSpace(string(got))
			t.Logf("PRIVILEGE script security, %s: ran %v as uid %q; daemon exited %v; log: %s", tc.name, err == nil, uid, p.Exited(), strings.ReplaceAll(tail(p.Log(), 4), "\n", " | "))
			switch {
			case tc.uid != "" && uid != tc.uid:
				t.Errorf("the script did not run as uid %s (got %q, %v)\n%s", tc.uid, uid, err, tail(p.Log(), 20))
			case tc.uid == "" && err == nil:
				t.Errorf("the insecure script ran as uid %s", uid)
			case tc.uid == "" && !strings.Contains(p.Log(), "writable"):
				t.Errorf("the refusal does not say why:\n%s", tail(p.Log(), 20))
			}
		})
	}
}
