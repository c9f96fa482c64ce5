package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/diag/check"
	"github.com/vrrpdoctor/vrrpdoctor/fw"
	"github.com/vrrpdoctor/vrrpdoctor/fw/fix"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
)

// runFixFirewallArgs runs fix-firewall with args on the saved ruleset of a
// testdata/rulesets scenario (never the machine's own firewall: the
// session's Read loads the files and its Run fails the test), with no
// default keepalived.conf, and returns stdout, stderr and the exit status.
func runFixFirewallArgs(t *testing.T, scenarioName string, args ...string) (string, string, int) {
	t.Helper()
	return runFixFirewallWith(t, scenarioName, nil, args...)
}

// runFixFirewallWith is runFixFirewallArgs with the options changed by mod
// (nil: none) before the flags are read.
func runFixFirewallWith(t *testing.T, scenarioName string, mod func(*fixFirewallOptions), args ...string) (string, string, int) {
	t.Helper()
	var files []string
	for _, pat := range []string{"nft.json", "*-save.txt"} {
		m, _ := filepath.Glob(filepath.Join(rulesetDir, scenarioName, pat))
		files = append(files, m...)
	}
	sess := &fix.Session{
		Run: func(_ context.Context, argv []string) ([]byte, error) {
			t.Fatalf("a test ran %v", argv)
			return nil, nil
		},
		Read: func(context.Context) (*fw.Live, error) {
			rs, err := fw.LoadFiles(files, iptsave.Options{})
			if err != nil {
				return nil, err
			}
			return &fw.Live{Ruleset: rs}, nil
		},
	}
	var out, errOut bytes.Buffer
	s := streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	o := fixFirewallOptions{defaultConfig: filepath.Join(t.TempDir(), "none.conf"), session: sess,
		ownAddr: func(string, int, bool) netip.Addr { return netip.Addr{} }}
	if mod != nil {
		mod(&o)
	}
	cmd := newFixFirewallCmdWith(s, o)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	code := 0
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
		if ee.err != nil {
			errOut.WriteString(ee.err.Error() + "\n")
		}
	case err != nil:
		t.Fatalf("error without exit status: %v", err)
	}
	return out.String(), errOut.String(), code
}

func TestFixFirewallUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-i", "eth0", "--apply", "--undo"}, "exclude each other"},
		{[]string{"-i", "eth0", "--family", "5"}, "want 4 or 6"},
		{[]string{"-i", "eth0", "--backend", "pf"}, "want firewalld, nftables"},
		{nil, "name the interface with -i"},
		{[]string{"-i", "eth0", "--peer", "nope"}, `--peer "nope"`},
		{[]string{"-i", "eth0", "--peer", "2001:db8::1", "--family", "4"}, "is not an IPv4 address"},
		{[]string{"-c", "testdata/fw/unicast.conf", "--peer", "198.51.100.9"}, "exclude each other"},
		{[]string{"-c", "testdata/fw/unicast.conf", "-i", "eth7"}, "no vrrp_instance matches"},
		{[]string{"-c", "testdata/fw/missing.conf"}, "no such file"},
	} {
		_, errOut, code := runFixFirewallArgs(t, "nft-two-tables-reject", tc.args...)
		if code != fixExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want 3 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestFixFirewallPrint: text and JSON of a plan, and a refusal.
func TestFixFirewallPrint(t *testing.T) {
	out, errOut, code := runFixFirewallArgs(t, "nft-two-tables-reject", "-i", "eth0", "--in")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{
		"adverts from any router to 224.0.0.18, in on eth0\n  now: reject by nftables ip late input handle 2",
		`nft 'insert rule ip late input position 2 iifname "eth0" ip daddr 224.0.0.18 meta l4proto vrrp accept comment "vrrpdoctor: allow VRRP"'`,
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "out on eth0") {
		t.Errorf("--in planned outgoing adverts:\n%s", out)
	}

	out, _, code = runFixFirewallArgs(t, "nft-accept-vrrp", "-i", "eth0", "--json")
	var r fix.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r.Status != "nothing-to-do" || r.Mode != "print" {
		t.Errorf("nothing to do: exit %d, %v, %s", code, err, out)
	}

	out, _, code = runFixFirewallArgs(t, "nft-two-tables-reject", "-i", "eth0", "--backend", "iptables-nft", "--json")
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != fixExitRefused || r.Status != "refused" || len(r.Plan.Refused) == 0 {
		t.Errorf("refused: exit %d, %v, %s", code, err, out)
	}
}

// TestFixFirewallSavedRulesets: --ruleset plans on saved files (no live
// reading at all) and refuses --apply.
func TestFixFirewallSavedRulesets(t *testing.T) {
	run := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		cmd := newFixFirewallCmdWith(streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
			fixFirewallOptions{defaultConfig: filepath.Join(t.TempDir(), "none.conf")})
		cmd.SetArgs(args)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		var ee *exitError
		if errors.As(err, &ee) {
			return out.String() + errOut.String() + ee.Error(), ee.code
		}
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	}
	dir := filepath.Join(rulesetDir, "firewalld-ipt-default")
	files := []string{"--ruleset", filepath.Join(dir, "nft.json"), "--ruleset", filepath.Join(dir, "iptables-nft-save.txt")}
	out, code := run(append([]string{"-i", "eth0"}, files...)...)
	if code != 0 || !strings.Contains(out, "reject by iptables-nft ip filter IN_public") ||
		!strings.Contains(out, `firewall-cmd --permanent --zone=public --add-rich-rule='rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'`) {
		t.Errorf("exit %d:\n%s", code, out)
	}
	if out, code := run(append([]string{"-i", "eth0", "--apply"}, files...)...); code != fixExitUsage || !strings.Contains(out, "cannot be combined") {
		t.Errorf("--apply with --ruleset: exit %d: %s", code, out)
	}
}

// TestFixFirewallConfigTargets: a unicast instance gives one incoming rule
// per peer from unicast_src_ip's point of view; the IPv6 instance is
// filtered out by -i.
func TestFixFirewallConfigTargets(t *testing.T) {
	out, errOut, code := runFixFirewallArgs(t, "nft-output-drop", "-c", "testdata/fw/unicast.conf", "-i", "eth0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{
		"VI_UC (VRID 71): adverts from 198.51.100.2 to 198.51.100.1, in on eth0",
		"VI_UC (VRID 71): adverts from 203.0.113.5 to 198.51.100.1, in on eth0",
		"VI_UC (VRID 71): this host's adverts to 203.0.113.5, out on eth0",
		"Nothing to do: the firewall already lets these VRRP adverts through.",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "ff02::12") {
		t.Errorf("-i eth0 planned the eth1 instance:\n%s", out)
	}
	t.Log("\n" + out)
}

// TestFixFirewallDaemonConfig: without -c, fix-firewall reads the
// configuration of the VRRP daemon running here (check's discovery) and
// says so; -c wins over it; a daemon's missing file is an error naming the
// daemon; with no daemon and no default file, -i is asked for.
func TestFixFirewallDaemonConfig(t *testing.T) {
	daemon := func(path string) func(*fixFirewallOptions) {
		return func(o *fixFirewallOptions) {
			o.daemonConfig = func() (check.Process, bool) {
				return check.Process{PID: 4242, Kind: "keepalived", Config: path}, true
			}
		}
	}
	out, errOut, code := runFixFirewallWith(t, "nft-output-drop", daemon("testdata/fw/unicast.conf"), "-i", "eth0")
	if code != 0 || !strings.HasPrefix(out, "Configuration: testdata/fw/unicast.conf (read by the running keepalived, pid 4242)\n\n") ||
		!strings.Contains(out, "VI_UC (VRID 71): adverts from 198.51.100.2 to 198.51.100.1, in on eth0") {
		t.Errorf("daemon's configuration: exit %d, stderr %q:\n%s", code, errOut, out)
	}

	out, _, code = runFixFirewallWith(t, "nft-output-drop", daemon("testdata/fw/unicast.conf"), "-i", "eth0", "--json")
	var r fix.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r.Config != "testdata/fw/unicast.conf" || r.ConfigSource != "process" {
		t.Errorf("JSON: exit %d, %v, config %q source %q", code, err, r.Config, r.ConfigSource)
	}

	// -i names an interface the daemon's configuration does not use: the
	// flags alone, and no claim to have used the file.
	out, _, code = runFixFirewallWith(t, "nft-output-drop", daemon("testdata/fw/unicast.conf"), "-i", "eth7")
	if code != 0 || strings.Contains(out, "Configuration:") || strings.Contains(out, "VI_UC") || !strings.Contains(out, "in on eth7") {
		t.Errorf("-i outside the daemon's configuration: exit %d:\n%s", code, out)
	}

	out, _, code = runFixFirewallWith(t, "nft-output-drop", daemon("testdata/fw/missing.conf"), "-c", "testdata/fw/unicast.conf", "-i", "eth0")
	if code != 0 || strings.Contains(out, "Configuration:") || !strings.Contains(out, "VI_UC (VRID 71)") {
		t.Errorf("-c over the daemon's: exit %d:\n%s", code, out)
	}

	_, errOut, code = runFixFirewallWith(t, "nft-output-drop", daemon("testdata/fw/missing.conf"))
	if code != fixExitUsage || !strings.Contains(errOut, "testdata/fw/missing.conf (read by the running keepalived, pid 4242): no such file") {
		t.Errorf("daemon's missing file: exit %d, stderr %q", code, errOut)
	}

	_, errOut, code = runFixFirewallArgs(t, "nft-output-drop")
	if code != fixExitUsage || !strings.Contains(errOut, "no VRRP daemon runs in this network namespace and there is no keepalived.conf at ") {
		t.Errorf("nothing to read: exit %d, stderr %q", code, errOut)
	}
}
