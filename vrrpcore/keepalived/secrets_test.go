package keepalived

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secretConf = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    advert_int 1\n" +
	"    authentication {\n        auth_type PASS\n        auth_pass Sup3rSecretPw\n    }\n    virtual_ipaddress {\n        198.51.100.100/24\n    }\n}\n"

// TestSecretFileMode: Check warns about a file holding auth_pass that others than root can
// read gets a warning at the auth_pass line; 0600, or 0640 with group
// root, gets none. No warning or error ever quotes the password.
func TestSecretFileMode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     os.FileMode
		gid      int
		included bool
		want     string
	}{
		{"world-readable", 0o644, 0, false, "readable by everyone (mode 0644)"},
		{"private", 0o600, 0, false, ""},
		{"group-root", 0o640, 0, false, ""},
		{"group-other", 0o640, 65534, false, "readable by group 65534 (mode 0640)"},
		{"included-world-readable", 0o604, 0, true, "readable by everyone (mode 0604)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.gid != 0 && os.Geteuid() != 0 {
				t.Skip("chown to another group needs root")
			}
			dir := t.TempDir()
			main, secret := filepath.Join(dir, "keepalived.conf"), filepath.Join(dir, "keepalived.conf")
			if tc.included {
				secret = filepath.Join(dir, "vi1.conf")
				if err := os.WriteFile(main, []byte("include vi1.conf\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(secret, []byte(secretConf), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(secret, tc.mode); err != nil {
				t.Fatal(err)
			}
			if tc.gid != 0 {
				if err := os.Chown(secret, 0, tc.gid); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := Check(main, labHost(), WithConfigID("x"))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				got = append(got, w.String())
				if strings.Contains(w.String(), "Sup3rSec") {
					t.Errorf("a warning quotes the password: %s", w)
				}
			}
			found := false
			for _, w := range cfg.Warnings {
				if strings.Contains(w.Msg, "holds auth_pass") {
					found = true
					if tc.want == "" || !strings.Contains(w.Msg, tc.want) || w.Pos.File != secret || w.Pos.Line != 8 {
						t.Errorf("warning %s, want %q at %s:8", w, tc.want, secret)
					}
				}
			}
			if !found && tc.want != "" {
				t.Errorf("no warning about the readable password; warnings:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}
