package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fix-firewall killed (SIGKILL) before each change it makes, on --apply and
// on --undo (issue 10, item 3). b drops VRRP in two backends: its nftables
// input chain drops the adverts coming in, its iptables-legacy OUTPUT
// policy drops its own going out, so the fix is two transactions: one
// nftables batch, one iptables-legacy-restore commit. After every kill,
// each backend's ruleset must be as before or as fully fixed — never a
// part of a backend's change — and the next run must end in the complete
// fix (--apply) or in the original ruleset (--undo).

// fixKillRun runs fix-firewall -i eth0 in b with args, killing it before
// its kill-th change (0: never); killed reports a death by SIGKILL.
func fixKillRun(t *testing.T, l *fixLab, kill int, args ...string) (stderr string, code int, killed bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := append([]string{"fix-firewall", "-i", "eth0", "--state", l.state, "--delivery-wait", "0"}, args...)
	cmd := l.b.Command(ctx, vrrpdoctor(t), argv...)
	cmd.Env = append(os.Environ(), "VRRPDOCTOR_TEST_KILL_STEP="+strconv.Itoa(kill))
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return errOut.String(), -1, true
		}
		return errOut.String(), ee.ExitCode(), false
	case err != nil:
		t.Fatalf("vrrpdoctor %v: %v", argv, err)
	}
	return errOut.String(), 0, false
}

// TestFixFirewallRefusesUnread: b's iptables-nft INPUT drops VRRP, and
// fix-firewall runs with a PATH that has nft and iptables-nft-restore but
// not iptables-nft-save, so the iptables-nft rules are not read in full
// (their xt extensions would stay unknown; the reading warns). --apply
// refuses (exit 2) and names what it could not read; the ruleset is
// unchanged; with --force it applies.
func TestFixFirewallRefusesUnread(t *testing.T) {
	t.Parallel()
	l := newFixLab(t, "nft", "iptables-nft")
	if _, err := l.b.Run("iptables-nft", "-w", "-I", "INPUT", "-p", "vrrp", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	// nft and iptables-nft-restore (to apply), not iptables-nft-save.
	bin := t.TempDir()
	for _, prog := range []string{"nft", "iptables-nft-restore"} {
		p, err := exec.LookPath(prog)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, prog)); err != nil {
			t.Fatal(err)
		}
	}
	before := l.dump(t)
	run := func(args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		argv := append([]string{"fix-firewall", "-i", "eth0", "--in", "--state", l.state, "--delivery-wait", "0"}, args...)
		cmd := l.b.Command(ctx, vrrpdoctor(t), argv...)
		cmd.Env = append(os.Environ(), "PATH="+bin)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	out, code := run("--apply")
	if code != 2 || !strings.Contains(out, "not read in full") || !strings.Contains(out, "iptables-nft-save") || !strings.Contains(out, "--force") {
		t.Errorf("--apply without --force: exit %d\n%q", code, out)
	}
	if l.dump(t) != before {
		t.Error("a refused --apply changed the ruleset")
	}
	out, code = run("--apply", "--force")
	if code != 0 || l.dump(t) == before {
		t.Errorf("--apply --force: exit %d, ruleset changed %v\n%s", code, l.dump(t) != before, out)
	}
	t.Logf("FAULT fix-firewall on a ruleset not read in full: refused (exit 2) without --force, applied with it")
}

// parts splits fixLab.dump into the nftables and the iptables-legacy parts.
func parts(d string) (nft, legacy string) {
	nft, legacy, _ = strings.Cut(d, "\n--- legacy\n")
	return nft, legacy
}

func TestFaultFixFirewallKilled(t *testing.T) {
	t.Parallel()
	l := newFixLab(t, "nft", "iptables-legacy")
	if err := l.b.NftScript("table inet filter {\n chain input {\n  type filter hook input priority filter; policy accept;\n  iifname \"lo\" accept\n  meta l4proto vrrp drop\n }\n}\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.b.IptablesLegacy("-P", "OUTPUT", "DROP"); err != nil {
		t.Fatal(err)
	}
	orig := l.dump(t)
	if _, code, _ := fixKillRun(t, l, 0, "--apply"); code != 0 {
		t.Fatalf("--apply: exit %d", code)
	}
	full := l.dump(t)
	origNFT, origLeg := parts(orig)
	fullNFT, fullLeg := parts(full)
	if origNFT == fullNFT || origLeg == fullLeg {
		t.Fatalf("the fix does not change both backends:\n%s\n---\n%s", orig, full)
	}
	if _, code, _ := fixKillRun(t, l, 0, "--undo"); code != 0 || l.dump(t) != orig {
		t.Fatalf("--undo: exit %d, ruleset back: %v", code, l.dump(t) == orig)
	}

	// consistent checks that each backend is all before or all after.
	consistent := func(when string) (fixedNFT, fixedLeg bool) {
		t.Helper()
		n, g := parts(l.dump(t))
		if n != origNFT && n != fullNFT {
			t.Errorf("%s: nftables half changed:\n%s", when, n)
		}
		if g != origLeg && g != fullLeg {
			t.Errorf("%s: iptables-legacy half changed:\n%s", when, g)
		}
		return n == fullNFT, g == fullLeg
	}

	for _, mode := range []string{"--apply", "--undo"} {
		steps := 0
		for k := 1; k < 20; k++ {
			if mode == "--undo" {
				if _, code, _ := fixKillRun(t, l, 0, "--apply"); code != 0 {
					t.Fatalf("--apply before the killed --undo: exit %d", code)
				}
			}
			stderr, code, killed := fixKillRun(t, l, k, mode)
			if !killed {
				if code != 0 {
					t.Fatalf("%s with kill step %d beyond the last: exit %d\n%s", mode, k, code, stderr)
				}
				steps = k - 1
				break
			}
			what := strings.TrimSpace(stderr[strings.LastIndex(strings.TrimSpace(stderr), "\n")+1:])
			n, g := consistent(mode + " " + what)
			t.Logf("%s killed %s: nftables fixed %v, iptables-legacy fixed %v", mode, what, n, g)
			// The next run puts it right, and reports the interrupted one.
			stderr, code, _ = fixKillRun(t, l, 0, mode, "--json")
			if code != 0 {
				t.Fatalf("%s after the kill at step %d: exit %d\n%s", mode, k, code, stderr)
			}
			want := orig
			if mode == "--apply" {
				want = full
			}
			if got := l.dump(t); got != want {
				t.Fatalf("%s after the kill at step %d (%s): ruleset\n%s\nwant\n%s", mode, k, what, got, want)
			}
			if mode == "--apply" {
				if _, code, _ := fixKillRun(t, l, 0, "--undo"); code != 0 || l.dump(t) != orig {
					t.Fatalf("--undo after the completed --apply: exit %d", code)
				}
			}
			if _, err := os.Stat(l.state); !os.IsNotExist(err) {
				t.Errorf("state file left after the run that put it right: %v", err)
			}
		}
		if steps < 3 {
			t.Errorf("%s: only %d steps were reached", mode, steps)
		}
		t.Logf("%s: killed before each of its %d changes; consistent after every kill", mode, steps)
	}
}
