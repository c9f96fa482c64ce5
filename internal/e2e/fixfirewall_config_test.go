package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestFixFirewallDaemonConfig: without -c, fix-firewall in b's namespace
// plans from the configuration b's keepalived reads (found in /proc, as
// check does; it is not /etc/keepalived/keepalived.conf) and says which.
func TestFixFirewallDaemonConfig(t *testing.T) {
	t.Parallel()
	l := newFixLab(t, "nft")
	l.start(t, false)
	if err := l.b.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy accept;\n  meta l4proto vrrp drop\n }\n}\n"); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := l.b.Command(ctx, vrrpdoctor(t), append([]string{"fix-firewall", "--state", l.state}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			return out.String() + errOut.String(), ee.ExitCode()
		case err != nil:
			t.Fatalf("fix-firewall %v: %v", args, err)
		}
		return out.String(), 0
	}
	out, code := run()
	want := "Configuration: " + l.kb.ConfigPath + " (read by the running keepalived, pid "
	if code != 0 || !strings.HasPrefix(out, want) ||
		!strings.Contains(out, "VI_51 (VRID 51): adverts from any router to 224.0.0.18, in on eth0\n  now: drop by nftables inet filter input") ||
		!strings.Contains(out, `nft 'insert rule inet filter input position `) {
		t.Errorf("exit %d, want 0 and output starting %q with the plan:\n%s", code, want, out)
	}
	t.Log("\n" + out)

	out, code = run("--json")
	var r struct {
		Config       string `json:"config"`
		ConfigSource string `json:"config_source"`
		Status       string `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r.Config != l.kb.ConfigPath || r.ConfigSource != "process" || r.Status != "fix" {
		t.Errorf("JSON: exit %d, %v, %+v\n%s", code, err, r, out)
	}
}
