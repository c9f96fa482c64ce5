package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// TestPrivilegeSecretsInJSON: a VRRPv2 pair with auth_pass (a: vrrpdoctor
// run with JSON logs, b: keepalived). Every JSON document vrrpdoctor
// writes about it — check, capture, fix-firewall and fw explain on b,
// run's JSON log on a, analyze of captures holding passwords — is searched
// for the password: it must not be there. The configured password is
// longer than 8 characters, so the part keepalived uses (and sends) and
// the whole are both searched.
func TestPrivilegeSecretsInJSON(t *testing.T) {
	t.Parallel()
	const secret = "Zq7Secr3tLonger" // keepalived uses "Zq7Secr3"
	lab := netlabtest.New(t, "keepalived", "nft")
	bin := vrrpdoctor(t)
	a, b, err := lab.Pair()
	if err != nil {
		t.Fatal(err)
	}
	inst := func(prio int) string {
		in := netlab.VRRPInstance{Interface: "eth0", VRID: 51, Version: 2, Priority: prio, AdvertInt: time.Second, VIPs: []string{faultVIP.String() + "/24"}}
		conf, err := netlab.KeepalivedConfig{RouterID: "n", Instances: []netlab.VRRPInstance{in}}.Render()
		if err != nil {
			t.Fatal(err)
		}
		// netlab's AuthPass allows 8 characters: add the block by hand.
		return strings.Replace(conf, "    virtual_ipaddress {", "    authentication {\n        auth_type PASS\n        auth_pass "+secret+"\n    }\n    virtual_ipaddress {", 1)
	}
	kb, err := b.StartKeepalived(inst(100))
	if err != nil {
		t.Fatal(err)
	}
	tl := &timeline{}
	tl.watch(t, a, faultVIP)
	tl.watch(t, b, faultVIP)
	p := startRun(t, a, lab.Path("a-json.conf"), inst(150), "--log-format", "json", "--log-level", "debug")
	tl.waitHolder(t, 15*time.Second, a.Name(), "startup with JSON logs")

	run := func(h *netlab.Host, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := h.Command(ctx, bin, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("%v: %v", args, err)
			}
		}
		if !strings.HasPrefix(strings.TrimSpace(out.String()), "{") {
			t.Errorf("%v: not JSON:\n%s\n%s", args, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	outputs := map[string]string{
		"check --json (b)":                       run(b, "check", "--json"),
		"capture --json (b)":                     run(b, "capture", "--json", "-i", "eth0", "--duration", "3s"),
		"fix-firewall --json (b)":                run(b, "fix-firewall", "--json", "-c", kb.ConfigPath),
		"fw explain --json (b)":                  run(b, "fw", "explain", "--json", "-c", kb.ConfigPath),
		"analyze --json (auth mismatch capture)": run(a, "analyze", "--json", filepath.Join(root, "testdata", "captures", "v2-auth-mismatch.pcap")),
		"analyze --json (PASS capture)":          run(a, "analyze", "--json", filepath.Join(root, "testdata", "captures", "v2-pass-healthy.pcap")),
	}
	if err := p.Signal(15); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	outputs["run --log-format json (a)"] = p.Log()
	for name, out := range outputs {
		for _, s := range []string{secret, secret[:8], "alpha123", "bravo456"} {
			if strings.Contains(out, s) {
				i := strings.Index(out, s)
				t.Errorf("%s holds the password %q: ...%s...", name, s, out[max(0, i-120):min(len(out), i+40)])
			}
		}
		t.Logf("SECRET %s: %d bytes searched", name, len(out))
	}
}
