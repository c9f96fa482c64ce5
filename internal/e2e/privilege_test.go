package e2e

import (
	"bytes"
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// Least privilege (issue 10, item 4; docs/privileges.md): every command run
// in a lab host twice, as root with every capability dropped and as the
// user nobody. The commands that need no privilege work; the others fail
// with their exit status and a message naming what is missing — never a
// crash.

func requireSetpriv(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		msg := "setpriv not found: install the Debian package util-linux"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// privilegeCase is one command and what it must do without privileges.
type privilegeCase struct {
	name string
	args []string
	// code is the exit status wanted; need the text stderr must hold
	// (the capability or "root"), "" for commands that need nothing.
	code int
	need string
	// gap, when set, is a missing capability name in the message, reported
	// to the command's owner: the test is skipped unless
	// VRRPDOCTOR_FAULT_KNOWN_BUGS=1.
	gap string
}

func TestPrivilegeDropped(t *testing.T) {
	t.Parallel()
	requireSetpriv(t)
	lab := netlabtest.New(t)
	bin := vrrpdoctor(t)
	a, _, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	// Files nobody can read: a directory and config of mode 0755/0644.
	dir := filepath.Join(t.TempDir(), "pub")
	must(t, os.MkdirAll(dir, 0o755))
	for d := filepath.Dir(dir); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		must(t, os.Chmod(d, 0o755))
	}
	conf, err := netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{{Interface: "eth0", VRID: 51, Version: 3, Priority: 100, AdvertInt: time.Second, VIPs: []string{"198.51.100.100/24"}}}}.Render()
	must(t, err)
	cfg := filepath.Join(dir, "keepalived.conf")
	must(t, os.WriteFile(cfg, []byte(conf), 0o644))
	root, err := filepath.Abs(filepath.Join("..", ".."))
	must(t, err)
	td := func(p string) string { return filepath.Join(root, "testdata", p) }

	cases := []privilegeCase{
		{name: "analyze", args: []string{"analyze", td("captures/v2-healthy.pcap")}},
		{name: "fw explain --ruleset", args: []string{"fw", "explain", "-i", "eth0", "--direction", "in", "--ruleset", td("rulesets/nft-accept-vrrp/nft.json")}},
		{name: "fix-firewall --ruleset", args: []string{"fix-firewall", "-i", "eth0", "--ruleset", td("rulesets/nft-accept-vrrp/nft.json")}},
		{name: "check --combine", args: []string{"check", "--combine", td("check/healthy-a.json"), td("check/healthy-b.json")}},
		{name: "run --check-config", args: []string{"run", "--check-config", "-c", cfg}},
		{name: "capture", args: []string{"capture", "-i", "eth0", "--duration", "1s"}, code: 3, need: "CAP_NET_RAW"},
		{name: "fix-firewall", args: []string{"fix-firewall", "-i", "eth0"}, code: 3, need: "CAP_NET_ADMIN"},
		{name: "fix-firewall --undo", args: []string{"fix-firewall", "--undo", "--state", filepath.Join(dir, "state.json")}, code: -1, need: "root|CAP_NET_ADMIN"},
		{name: "fw explain (live)", args: []string{"fw", "explain", "-i", "eth0", "--direction", "in"}, code: 3, need: "CAP_NET_ADMIN"},
		{name: "run", args: []string{"run", "-c", cfg, "--no-diagnose"}, code: 2, need: "CAP_NET_RAW"},
	}
	for _, who := range []struct {
		name string
		argv []string
	}{
		{"root without capabilities", []string{"setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"}},
		{"nobody", []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"}},
	} {
		for _, pc := range cases {
			t.Run(who.name+"/"+pc.name, func(t *testing.T) {
				if pc.gap != "" {
					knownBug(t, true, pc.gap)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				argv := append(append(append([]string{}, who.argv...), bin), pc.args...)
				cmd := a.Command(ctx, argv[0], argv[1:]...)
				cmd.Dir = dir
				var out, errOut bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errOut
				err := cmd.Run()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				stderr := errOut.String()
				t.Logf("PRIVILEGE %s, %s: exit %d: %s", who.name, pc.name, code, firstLine(stderr))
				if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
					t.Fatalf("crashed:\n%s", stderr)
				}
				if pc.need == "" {
					if code != 0 && !(pc.name == "fw explain --ruleset" && code == 2) {
						t.Errorf("exit %d, want 0: it needs no privilege\n%s%s", code, out.String(), stderr)
					}
					return
				}
				if pc.code >= 0 && code != pc.code {
					t.Errorf("exit %d, want %d\n%s", code, pc.code, stderr)
				}
				if code == 0 {
					t.Errorf("exit 0 without privileges")
				}
				named := false
				for _, n := range strings.Split(pc.need, "|") {
					named = named || strings.Contains(stderr, n)
				}
				if !named {
					t.Errorf("stderr does not name %s:\n%s", pc.need, stderr)
				}
			})
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// TestPrivilegeNoShell: no package linked into vrrpdoctor starts a shell —
// no "sh", "bash", "/bin/sh" as a program or a "sh -c" command line in
// their non-test Go code (scripts of keepalived.conf run as argument
// vectors, vrrpcore/scripts).
func TestPrivilegeNoShell(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	must(t, err)
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}} {{join .GoFiles \" \"}}{{end}}", "./cmd/vrrpdoctor")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	shells := map[string]bool{"sh": true, "bash": true, "dash": true, "/bin/sh": true, "/bin/bash": true, "/usr/bin/sh": true, "/usr/bin/env": true}
	var found []string
	files := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.HasPrefix(fields[0], root) {
			continue // a module outside this repository
		}
		for _, f := range fields[1:] {
			path := filepath.Join(fields[0], f)
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files++
			ast.Inspect(file, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				if shells[s] || strings.Contains(s, "sh -c") || strings.HasPrefix(s, "#!/bin/sh") {
					rel, _ := filepath.Rel(root, path)
					found = append(found, rel+":"+strconv.Itoa(fset.Position(lit.Pos()).Line)+": "+lit.Value)
				}
				return true
			})
		}
	}
	if files < 100 {
		t.Fatalf("only %d files checked", files)
	}
	if len(found) > 0 {
		t.Errorf("shell in the binary's code:\n%s", strings.Join(found, "\n"))
	}

	// What ships: the built binary holds no shell path and no shell
	// command line (a script assembled from pieces, such as netlab's
	// FirewalldScript for the test labs, would bring "&& exec" along).
	bin, err := os.ReadFile(vrrpdoctor(t))
	must(t, err)
	for _, s := range []string{"/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/env", "sh -c", "&& exec ", "&& mount "} {
		if i := bytes.Index(bin, []byte(s)); i >= 0 {
			t.Errorf("the built binary holds %q at offset %d: %q", s, i, bin[max(0, i-40):min(len(bin), i+40)])
		}
	}
}
