package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These tests never start the daemon: that would send VRRP from the
// machine's own network namespace. Running instances is tested in the lab
// (internal/e2e/interop_test.go, vrrpcore/runtime).

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = execute(args, nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

const loConf = `global_defs {
    router_id test
}
vrrp_instance VI_1 {
    state BACKUP
    interface lo
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        198.51.100.100/24
    }
}
`

func TestRunCheckConfigOK(t *testing.T) {
	p := writeConf(t, loConf)
	code, out, errOut := runCmd("run", "--check-config", "-c", p)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if want := p + ": configuration OK (1 instance(s))"; !strings.Contains(out, want) {
		t.Errorf("stdout %q lacks %q", out, want)
	}
}

func TestRunCheckConfigErrors(t *testing.T) {
	cases := []struct {
		name, conf string
		want       []string // in stderr
		// daemon: also try without --check-config. Only for configs
		// that can never start, so that no test sends VRRP from the
		// machine's own namespace.
		daemon bool
	}{
		{
			name:   "syntax error",
			conf:   "vrrp_instance VI_1 {\n    interface lo\n    virtual_router_id 51\n    priority 100\n    virtual_ipaddress {\n        198.51.100.100\n    }\n",
			want:   []string{"keepalived.conf:1:"},
			daemon: true,
		},
		{
			name:   "missing interface",
			conf:   strings.Replace(loConf, "interface lo", "interface vd-no-such-if", 1),
			want:   []string{"keepalived.conf:6:", "vd-no-such-if"},
			daemon: true,
		},
		{
			name: "AH authentication",
			conf: strings.Replace(loConf, "auth_type PASS", "auth_type AH", 1),
			want: []string{"keepalived.conf:10:", "AH is not supported"},
		},
		{
			name: "missing notify script",
			conf: "global_defs {\n    enable_script_security\n    script_user root\n}\n" +
				strings.Replace(loConf, "    advert_int 1\n", "    advert_int 1\n    notify_master \"/tmp/vd-no-such-script arg\"\n", 1),
			want: []string{"keepalived.conf:", "notify_master"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConf(t, tc.conf)
			runs := [][]string{{"run", "--check-config", "-c", p}}
			if tc.daemon {
				runs = append(runs, []string{"run", "-c", p})
			}
			for _, args := range runs {
				code, _, errOut := runCmd(args...)
				if code != runExitConfig {
					t.Errorf("%v: exit %d, want %d\nstderr: %s", args, code, runExitConfig, errOut)
				}
				for _, w := range tc.want {
					if !strings.Contains(errOut, w) {
						t.Errorf("%v: stderr lacks %q:\n%s", args, w, errOut)
					}
				}
			}
		})
	}
}

func TestRunInsecureScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: scripts run as root are the ones checked")
	}
	script := filepath.Join(t.TempDir(), "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(script, 0o757); err != nil { // writable by everyone
		t.Fatal(err)
	}
	conf := strings.Replace(loConf, "    advert_int 1\n", "    advert_int 1\n    notify_master "+script+"\n", 1)
	for _, secure := range []bool{true, false} {
		text := "global_defs {\n    script_user root\n}\n" + conf
		if secure {
			text = "global_defs {\n    enable_script_security\n    script_user root\n}\n" + conf
		}
		code, _, errOut := runCmd("run", "-t", "-c", writeConf(t, text))
		switch {
		case secure && (code != runExitConfig || !strings.Contains(errOut, "writable by everyone") || !strings.Contains(errOut, "refused")):
			t.Errorf("enable_script_security: exit %d, stderr:\n%s", code, errOut)
		case !secure && (code != 0 || !strings.Contains(errOut, "warning:") || !strings.Contains(errOut, "writable by everyone")):
			t.Errorf("without enable_script_security: exit %d, want 0 and a warning; stderr:\n%s", code, errOut)
		}
	}
}

func TestRunBadFlags(t *testing.T) {
	p := writeConf(t, loConf)
	for _, args := range [][]string{
		{"run", "-t", "-c", p, "--log-format", "xml"},
		{"run", "-t", "-c", p, "--log-level", "loud"},
	} {
		if code, _, errOut := runCmd(args...); code != runExitConfig || !strings.Contains(errOut, "--log-") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if code, _, errOut := runCmd("run", "-t", "-c", filepath.Join(t.TempDir(), "missing.conf")); code != runExitConfig || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
}
