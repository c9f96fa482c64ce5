package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/demo"
)

func runLab(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = execute(args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestLabHelpHasExamples(t *testing.T) {
	root := newRootCmd(streams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	lab, _, err := root.Find([]string{"lab"})
	if err != nil || lab.Name() != "lab" {
		t.Fatalf("no lab command: %v", err)
	}
	if lab.Example == "" {
		t.Error("lab has no examples")
	}
	want := map[string]bool{"demo": true, "up": true, "status": true, "exec": true, "down": true}
	for _, c := range lab.Commands() {
		if c.Hidden {
			continue
		}
		delete(want, c.Name())
		if !strings.Contains(c.Example, "vrrpdoctor lab "+c.Name()) {
			t.Errorf("lab %s: examples %q do not show the command", c.Name(), c.Example)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing subcommands: %v", want)
	}
	out, _, code := runLab(t, "lab")
	if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "sudo vrrpdoctor lab demo") {
		t.Errorf("vrrpdoctor lab: exit %d\n%s", code, out)
	}
}

func TestLabExecArgs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"lab", "exec"}, 2, "requires at least 2 arg(s)"},
		{[]string{"lab", "exec", "a"}, 2, "requires at least 2 arg(s)"},
		{[]string{"lab", "exec", "--state-dir", dir, "a", "--"}, 2, "no command after the node"},
		{[]string{"lab", "exec", "--state-dir", dir, "a", "--", "true"}, 1, "no lab is up"},
		{[]string{"lab", "exec", "--state-dir", dir, "a", "true"}, 1, "no lab is up"},
	} {
		_, errOut, code := runLab(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d with %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

// A recorded lab whose namespaces do not exist: exec refuses to run, status
// reports them gone, the flags of the command after NODE are the command's.
func TestLabExecStatusOnRecordedLab(t *testing.T) {
	dir := t.TempDir()
	st := &demo.State{
		Version: demo.StateVersion, Mode: demo.ModeUp, Complete: true,
		Created: time.Now(), Namespaces: []string{"vdlab-zzqa", "vdlab-zzqb"},
		Daemon: demo.DaemonKeepalived, Firewall: demo.FirewallNft, VIP: demo.VIP,
		Nodes: []demo.Node{{Name: "a", Namespace: "vdlab-zzqa", Addr: "198.51.100.1/24", Priority: 150}, {Name: "b", Namespace: "vdlab-zzqb", Addr: "198.51.100.2/24", Priority: 100}},
	}
	if err := st.Save(dir); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runLab(t, "lab", "exec", "--state-dir", dir, "b", "--", "ip", "-br", "addr")
	if code != 1 || !strings.Contains(errOut, "namespace vdlab-zzqb of node b is gone") {
		t.Errorf("exec: exit %d, %q", code, errOut)
	}
	_, errOut, code = runLab(t, "lab", "exec", "--state-dir", dir, "c", "--", "true")
	if code != 1 || !strings.Contains(errOut, `no node "c"`) {
		t.Errorf("exec on c: exit %d, %q", code, errOut)
	}
	out, errOut, code := runLab(t, "lab", "status", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "vdlab-zzqa (gone)") || !strings.Contains(out, "firewall on b: nft") {
		t.Errorf("status: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestLabStatusDownWithoutLab(t *testing.T) {
	dir := t.TempDir()
	_, errOut, code := runLab(t, "lab", "status", "--state-dir", dir)
	if code != 1 || !strings.Contains(errOut, "no lab is up") {
		t.Errorf("status: exit %d, %q", code, errOut)
	}
	out, errOut, code := runLab(t, "lab", "down", "--state-dir", dir)
	if os.Geteuid() != 0 {
		if code != 1 || !strings.Contains(errOut, "root") {
			t.Errorf("down without root: exit %d, %q", code, errOut)
		}
		return
	}
	if code != 0 || !strings.Contains(out, "no lab to remove") {
		t.Errorf("down: exit %d, %q %q", code, out, errOut)
	}
}

func TestLabDemoBadFlags(t *testing.T) {
	dir := t.TempDir()
	_, errOut, code := runLab(t, "lab", "demo", "--state-dir", dir, "--daemon", "bird")
	want := `--daemon "bird"`
	if os.Geteuid() != 0 {
		want = "needs root"
	}
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("demo --daemon bird: exit %d, %q, want %q", code, errOut, want)
	}
	if _, _, code := runLab(t, "lab", "demo", "--nope"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if _, _, code := runLab(t, "lab", "up", "extra"); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
}
