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
		dirMode  os.FileMode // of the directory holding the files
		want     string
	}{
		{"world-readable", 0o644, 0, false, 0o755, "readable by everyone (mode 0644)"},
		{"world-readable in a private directory", 0o644, 0, false, 0o700, ""},
		{"private", 0o600, 0, false, 0o755, ""},
		{"group-root", 0o640, 0, false, 0o755, ""},
		{"group-other", 0o640, 65534, false, 0o755, "readable by group 65534 (mode 0640)"},
		{"included-world-readable", 0o604, 0, true, 0o755, "readable by everyone (mode 0604)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.gid != 0 && os.Geteuid() != 0 {
				t.Skip("chown to another group needs root")
			}
			dir := filepath.Join(t.TempDir(), "etc")
			if err := os.Mkdir(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			// t.TempDir's own directories are private: open them up.
			for d := filepath.Dir(dir); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
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
					if tc.want == "" || !strings.Contains(w.Msg, tc.want) || w.Pos.File != secret || w.Pos.Line != 8 || w.Kind != WarnInsecure {
						t.Errorf("warning %s (%s), want %q at %s:8 (insecure)", w, w.Kind, tc.want, secret)
					}
				}
			}
			if !found && tc.want != "" {
				t.Errorf("no warning about the readable password; warnings:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}
