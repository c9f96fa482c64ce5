package check

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
)

// needRoot skips (fails under CI=true) a test that needs files owned by
// root: keepalived's script check counts any other owner as insecure.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root (files owned by root); run the tests as root")
	}
	t.Skip("needs root (files owned by root)")
}

// openDir is a fresh directory that everyone can search, under a parent
// everyone can search too (t.TempDir's are 0700), so that a file's own mode
// decides who can read it.
func openDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

const insecurePass = "Zq7secrt"

// conf is a keepalived.conf on lo with auth_pass, optionally tracking a
// script, with enable_script_security or not, and one unused keyword.
func conf(script string, secure bool) string {
	var b strings.Builder
	b.WriteString("global_defs {\n  router_id b\n  notification_email_from vrrp@example.org\n")
	if secure {
		b.WriteString("  enable_script_security\n  script_user root\n")
	}
	b.WriteString("}\n")
	if script != "" {
		b.WriteString("vrrp_script chk {\n  script \"" + script + "\"\n}\n")
	}
	b.WriteString("vrrp_instance VI_51 {\n  interface lo\n  virtual_router_id 51\n  priority 100\n  advert_int 1\n")
	b.WriteString("  authentication {\n    auth_type PASS\n    auth_pass " + insecurePass + "\n  }\n")
	if script != "" {
		b.WriteString("  track_script {\n    chk\n  }\n")
	}
	b.WriteString("  virtual_ipaddress {\n    198.51.100.100/24\n  }\n}\n")
	return b.String()
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// TestInsecureConfig: check's configuration facts name a password file
// everyone can read and a root script others can replace, never quote the
// password, and leave a root-only file and a root-owned script alone.
func TestInsecureConfig(t *testing.T) {
	needRoot(t)
	dir := openDir(t)
	safeScript := filepath.Join(dir, "safe.sh")
	writeFile(t, safeScript, "#!/bin/sh\nexit 0\n", 0o755)
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	badScript := filepath.Join(open, "chk.sh")
	writeFile(t, badScript, "#!/bin/sh\nexit 0\n", 0o755)

	for _, tc := range []struct {
		name   string
		mode   os.FileMode
		script string
		secure bool
		want   []string // one entry per string, each holding it
	}{
		{"readable-0644", 0o644, "", false, []string{"holds auth_pass and is readable by everyone (mode 0644)"}},
		{"root-only-0600", 0o600, safeScript, false, nil},
		{"script-writable-dir", 0o600, badScript, false, []string{"vrrp_script chk: script " + badScript + " runs as root but " + open + " is writable by everyone; keepalived would refuse it"}},
		{"script-refused", 0o600, badScript, true, []string{"vrrp_script chk: script " + badScript + " runs as root but " + open + " is writable by everyone (refused: enable_script_security): keepalived does not run it"}},
		{"both", 0o644, badScript, false, []string{"readable by everyone", "is writable by everyone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".conf")
			writeFile(t, path, conf(tc.script, tc.secure), tc.mode)
			r := &Report{}
			if err := loadConfig(r, Options{Config: path}); err != nil {
				t.Fatal(err)
			}
			got := r.Config.Insecure
			if len(got) != len(tc.want) {
				t.Fatalf("insecure %q, want %d entries holding %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) || !strings.HasPrefix(got[i], path+":") {
					t.Errorf("entry %d %q: want %s:line:col: ... %q", i, got[i], path, w)
				}
			}
			if r.Config.Unused == 0 {
				t.Error("the unused keyword notification_email_from was not counted")
			}
			fs := Evaluate(r)
			f := find(fs, IDConfigInsecure)
			if (f != nil) != (len(tc.want) > 0) {
				t.Fatalf("findings %v, want config-insecure: %v", ids(fs), len(tc.want) > 0)
			}
			raw, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			if err := WriteText(&text, r, false); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "1 keyword read past") {
				t.Errorf("text lacks the line on unused keywords:\n%s", text.String())
			}
			if bytes.Contains(raw, []byte(insecurePass)) || strings.Contains(text.String(), insecurePass) {
				t.Errorf("the password is in the report:\n%s\n%s", raw, text.String())
			}
		})
	}
}

// TestConfigInsecureFinding: the finding is a warning with each problem as
// evidence and the fix for its kind; it alone makes check exit 1.
func TestConfigInsecureFinding(t *testing.T) {
	r := backup()
	r.Config.Insecure = []string{
		"/etc/keepalived/keepalived.conf:9:5: warning: /etc/keepalived/keepalived.conf holds auth_pass and is readable by everyone (mode 0644): every local user can read the VRRP password; chmod 600 /etc/keepalived/keepalived.conf",
	}
	r.Finish()
	f := find(r.Findings, IDConfigInsecure)
	if f == nil || f.Severity != diag.SeverityWarning || r.ExitCode != diag.ExitWarning {
		t.Fatalf("exit %d, findings %v", r.ExitCode, ids(r.Findings))
	}
	if len(f.Evidence) != 1 || f.Evidence[0].Value != r.Config.Insecure[0] || !strings.Contains(f.Fix, "chmod 600") || strings.Contains(f.Fix, "chmod go-w") {
		t.Errorf("finding %+v", f)
	}
	if find(r.Findings, IDHealthy) == nil {
		t.Errorf("the instance is no longer healthy: %v", ids(r.Findings))
	}

	r = backup()
	r.Config.Insecure = []string{"/etc/keepalived/keepalived.conf:3:10: vrrp_script chk: script /tmp/x/chk.sh runs as root but /tmp/x is writable by everyone; keepalived would refuse it with enable_script_security"}
	r.Finish()
	if f := find(r.Findings, IDConfigInsecure); f == nil || !strings.Contains(f.Fix, "chmod go-w") || strings.Contains(f.Fix, "chmod 600") {
		t.Errorf("script finding %+v", f)
	}
}
