package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const rulesetDir = "../../testdata/rulesets"

// runFwExplain runs `fw explain` with args, no default keepalived.conf and
// no address lookup, and returns stdout, stderr and the exit status.
func runFwExplainArgs(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	s := streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	cmd := newFwExplainCmdWith(s, fwExplainOptions{defaultConfig: filepath.Join(t.TempDir(), "none.conf")})
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

func scenario(name string, files ...string) []string {
	var args []string
	for _, f := range files {
		args = append(args, "--ruleset", filepath.Join(rulesetDir, name, f))
	}
	return args
}

// fwGolden are `fw explain` runs on rulesets made by the real tools
// (testdata/rulesets), with their exit status and golden output.
var fwGolden = []struct {
	name string
	args []string
	exit int
}{
	// The product's case: firewalld's default zone rejects the adverts.
	{"firewalld-default", append(scenario("firewalld-nft-default", "nft.json"), "-c", "testdata/fw/backup.conf"), 2},
	// The classic direct rule accepts, firewalld's zone still rejects.
	{"firewalld-direct-in", append(scenario("firewalld-nft-direct", "nft.json", "iptables-nft-save.txt", "firewalld-direct.xml"), "-c", "testdata/fw/backup.conf", "--direction", "in", "--src", "198.51.100.1"), 2},
	{"firewalld-rich", append(scenario("firewalld-nft-rich", "nft.json"), "-i", "eth0", "--direction", "in"), 0},
	{"firewalld-legacy", append(scenario("firewalld-legacy-default", "nft.json", "iptables-legacy-save.txt"), "-i", "eth0", "--direction", "in"), 2},
	{"ufw-vrrp", append(scenario("ufw-like-vrrp", "nft.json", "iptables-nft-save.txt"), "-i", "eth0"), 0},
	{"nft-limit", append(scenario("nft-limit", "nft.json"), "-i", "eth0", "--direction", "in"), 3},
	{"unicast", append(scenario("nft-hand-sets", "nft.json"), "-c", "testdata/fw/unicast.conf"), 2},
	{"ipv6", append(scenario("firewalld-nft-ipv6-default", "nft.json"), "-c", "testdata/fw/unicast.conf", "--family", "6", "--direction", "in"), 2},
}

func TestFwExplainGolden(t *testing.T) {
	for _, c := range fwGolden {
		for _, format := range []string{"txt", "json"} {
			t.Run(c.name+"."+format, func(t *testing.T) {
				args := append([]string{}, c.args...)
				if format == "json" {
					args = append(args, "--json")
				}
				out, errOut, code := runFwExplainArgs(t, args...)
				if code != c.exit {
					t.Fatalf("exit %d, want %d; stderr: %s\n%s", code, c.exit, errOut, out)
				}
				if errOut != "" {
					t.Errorf("stderr: %s", errOut)
				}
				golden := filepath.Join("testdata", "fw", c.name+"."+format)
				if *update {
					if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to write it)", err)
				}
				if out != string(want) {
					t.Errorf("output differs from %s (-update rewrites it):\n%s", golden, out)
				}
				if format == "json" {
					var rep struct {
						Verdict     string `json:"verdict"`
						Evaluations []struct {
							Verdict string `json:"verdict"`
							Final   string `json:"final_verdict"`
						} `json:"evaluations"`
					}
					if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Evaluations) == 0 {
						t.Fatalf("JSON %v: %s", err, out)
					}
				}
			})
		}
	}
}

// TestFwExplainFirewalldFix is the "done when", offline: on
// firewalld's default zone, explain names firewalld's rejecting rule and
// says the fix belongs in firewalld, not in a raw nft rule.
func TestFwExplainFirewalldFix(t *testing.T) {
	out, _, code := runFwExplainArgs(t, append(scenario("firewalld-nft-default", "nft.json"), "-i", "eth0", "--direction", "in")...)
	for _, want := range []string{
		"Verdict:  REJECT",
		"Decided by rule (nftables inet firewalld filter_IN_public handle 72, owner firewalld)",
		"The fix belongs in firewalld, not beside it",
		"a rule added with nft or iptables by hand is lost",
		`firewall-cmd --permanent --zone=public --add-rich-rule='rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'`,
		"--add-protocol=vrrp",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
}

// TestFwExplainPlan checks the adverts planned from keepalived.conf and
// flags: one per instance, peer and direction, same adverts merged.
func TestFwExplainPlan(t *testing.T) {
	for _, c := range []struct {
		args   []string
		labels []string
	}{
		{[]string{"-c", "testdata/fw/backup.conf"}, []string{
			"== VI_1 (VRID 51), VI_2 (VRID 52): adverts from any router to 224.0.0.18, in on eth0",
			"== VI_1 (VRID 51), VI_2 (VRID 52): this host's adverts to 224.0.0.18, out on eth0"}},
		{[]string{"-c", "testdata/fw/unicast.conf", "-i", "eth0", "--direction", "out"}, []string{
			"== VI_UC (VRID 71): this host's adverts to 198.51.100.2, out on eth0",
			"== VI_UC (VRID 71): this host's adverts to 203.0.113.5, out on eth0"}},
		{[]string{"-c", "testdata/fw/unicast.conf", "--family", "6"}, []string{
			"== VI_6 (VRID 81): adverts from any router to ff02::12, in on eth1",
			"== VI_6 (VRID 81): this host's adverts to ff02::12, out on eth1"}},
		{[]string{"-i", "eth3", "--dst", "ff02::12", "--direction", "in"}, []string{
			"== adverts from any router to ff02::12, in on eth3"}},
		{[]string{"-i", "eth3", "--src", "203.0.113.9", "--direction", "in"}, []string{
			"== adverts from 203.0.113.9 to 224.0.0.18, in on eth3"}},
	} {
		out, errOut, _ := runFwExplainArgs(t, append(scenario("nft-accept-vrrp", "nft.json"), c.args...)...)
		var got []string
		for _, ln := range strings.Split(out, "\n") {
			if strings.HasPrefix(ln, "== ") {
				got = append(got, ln)
			}
		}
		if strings.Join(got, "\n") != strings.Join(c.labels, "\n") {
			t.Errorf("%v: adverts\n%s\nwant\n%s\n%s", c.args, strings.Join(got, "\n"), strings.Join(c.labels, "\n"), errOut)
		}
	}
}

func TestFwExplainUsage(t *testing.T) {
	rs := scenario("nft-accept-vrrp", "nft.json")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{rs, "no keepalived.conf at"},
		{append(rs, "-i", "eth0", "--direction", "sideways"), `--direction "sideways": want in or out`},
		{append(rs, "-i", "eth0", "--family", "5"), "--family 5: want 4 or 6"},
		{append(rs, "-i", "eth0", "--src", "nonsense"), `--src "nonsense": not an IP address`},
		{append(rs, "-i", "eth0", "--family", "6", "--dst", "224.0.0.18"), "--dst 224.0.0.18 is not an IPv6 address"},
		{append(rs, "-i", "eth0", "--trace"), "--trace watches this host's kernel; it cannot be combined with --ruleset"},
		{append(rs, "-c", "testdata/fw/missing.conf"), "testdata/fw/missing.conf: no such file"},
		{append(rs, "-c", "testdata/fw/backup.conf", "-i", "eth7"), `no vrrp_instance matches -i "eth7"`},
		{[]string{"-i", "eth0", "--ruleset", "testdata/fw/backup.conf"}, "neither `nft -j list ruleset` JSON, iptables-save output nor firewalld's direct.xml"},
		{[]string{"-i", "eth0", "--bogus"}, "unknown flag: --bogus"},
	} {
		_, errOut, code := runFwExplainArgs(t, c.args...)
		if code != 3 || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want 3 and %q", c.args, code, errOut, c.msg)
		}
	}
}
