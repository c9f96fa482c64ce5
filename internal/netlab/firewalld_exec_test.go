package netlab_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// The child modes of the tests below: the test binary re-runs itself under
// `unshare` with one of these set and prints what it found.
const (
	childCheckEnv = "NETLAB_TEST_CHECK_NAMESPACES"
	childExecEnv  = "NETLAB_TEST_EXEC_FIREWALLD" // ETC:LOG
)

// TestCheckNamespacesChild is not a test: it runs CheckLabNamespaces in the
// namespaces TestCheckLabNamespaces started it in.
func TestCheckNamespacesChild(t *testing.T) {
	if os.Getenv(childCheckEnv) == "" {
		t.Skip("child mode of TestCheckLabNamespaces")
	}
	if err := netlab.CheckLabNamespaces(); err != nil {
		fmt.Println("REFUSED:", err)
		return
	}
	fmt.Println("ACCEPTED")
}

// TestExecFirewalldChild is not a test: it runs ExecFirewalld in the
// namespaces TestExecFirewalld started it in; the fake firewalld it execs
// prints its arguments and what it sees.
func TestExecFirewalldChild(t *testing.T) {
	v := os.Getenv(childExecEnv)
	if v == "" {
		t.Skip("child mode of TestExecFirewalld")
	}
	etc, log, _ := strings.Cut(v, ":")
	err := netlab.ExecFirewalld(netlab.FirewalldLaunch{Etc: etc, Log: log})
	fmt.Println("REFUSED:", err)
	os.Exit(3)
}

// child runs this test binary's test run with env set, under argv (an
// unshare command line), and returns its output.
func child(t *testing.T, run, env string, argv ...string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv = append(argv, self, "-test.run=^"+run+"$", "-test.v")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

func TestCheckLabNamespaces(t *testing.T) {
	// This test's process shares its mount namespace with its parent (go
	// test), whatever namespaces it runs in.
	err := netlab.CheckLabNamespaces()
	if err == nil {
		t.Fatal("CheckLabNamespaces accepted the test process's own namespaces")
	}
	if !strings.Contains(err.Error(), "refusing to start firewalld") {
		t.Errorf("error %q does not say it refuses", err)
	}
	netlabtest.Require(t, "unshare")
	for _, c := range []struct {
		name string
		argv []string
		want string
	}{
		{"lab", []string{"unshare", "--net", "--mount"}, "ACCEPTED"},
		{"ip netns exec style", []string{"unshare", "--net", "--mount", "--propagation", "slave"}, "ACCEPTED"},
		{"machine's network", []string{"unshare", "--mount"}, "REFUSED: refusing to start firewalld: this process's network namespace is the machine's own"},
		{"machine's mounts", []string{"unshare", "--net"}, "REFUSED: refusing to start firewalld: this process's mount namespace is the machine's own"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := child(t, "TestCheckNamespacesChild", childCheckEnv+"=1", c.argv...)
			if !strings.Contains(out, c.want) {
				t.Errorf("%s: want %q in:\n%s", strings.Join(c.argv, " "), c.want, out)
			}
		})
	}
}

// mountsAt returns the lines of a mountinfo file whose mount point is one
// of points.
func mountsAt(t *testing.T, mountinfo string, points ...string) []string {
	t.Helper()
	var found []string
	for _, ln := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(ln)
		if len(f) < 5 {
			continue
		}
		for _, p := range points {
			if f[4] == p {
				found = append(found, ln)
			}
		}
	}
	return found
}

// TestExecFirewalld runs ExecFirewalld in a network and mount namespace of
// its own (made by unshare, propagation slave as `ip netns exec` makes it)
// with a fake firewalld that shows the mounts it sees; the machine's mounts
// must not change.
func TestExecFirewalld(t *testing.T) {
	netlabtest.Require(t, "unshare", "cat")
	if st, err := os.Stat("/etc/firewalld"); err != nil || !st.IsDir() {
		netlabtest.Require(t, "firewalld") // the mount point comes with it
	}
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc-firewalld")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := "# copy of " + dir
	if err := os.WriteFile(filepath.Join(etc, "firewalld.conf"), []byte(marker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// The fake firewalld (tests may use sh; the binary does not).
	fake := "#!/bin/sh\necho \"ARGS $*\"\necho \"BUS $DBUS_SYSTEM_BUS_ADDRESS\"\ncat /etc/firewalld/firewalld.conf /proc/self/mountinfo\n"
	if err := os.WriteFile(filepath.Join(bin, "firewalld"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(dir, "bus"))
	log := filepath.Join(dir, "firewalld.log")

	points := []string{"/", "/etc/firewalld", "/run", "/usr/sbin/xtables-nft-multi"}
	read := func() []string {
		b, err := os.ReadFile("/proc/1/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		return mountsAt(t, string(b), points...)
	}
	before := read()

	out := child(t, "TestExecFirewalldChild", childExecEnv+"="+etc+":"+log, "unshare", "--net", "--mount", "--propagation", "slave")
	for _, want := range []string{
		"ARGS --nofork --nopid --system-config " + etc + " --log-file " + log,
		"BUS unix:path=" + filepath.Join(dir, "bus"),
		marker,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("fake firewalld's output lacks %q:\n%s", want, out)
		}
	}
	var sawEtc, sawRun bool
	for _, ln := range mountsAt(t, out, points...) {
		f := strings.Fields(ln)
		opt := strings.Join(f[6:], " ")
		if strings.Contains(opt, "shared:") || strings.Contains(opt, "master:") {
			t.Errorf("mount not private in firewalld's namespace: %s", ln)
		}
		switch {
		case f[4] == "/etc/firewalld":
			sawEtc = true
		case f[4] == "/run" && strings.Contains(" "+opt, " - tmpfs "):
			sawRun = true
		}
	}
	if !sawEtc || !sawRun {
		t.Errorf("firewalld's namespace lacks the bind over /etc/firewalld (%v) or the tmpfs over /run (%v):\n%s", sawEtc, sawRun, out)
	}
	if after := read(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("the machine's mounts changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}

	// In the machine's network namespace it refuses before mounting.
	out = child(t, "TestExecFirewalldChild", childExecEnv+"="+etc+":"+log, "unshare", "--mount", "--propagation", "slave")
	if want := "REFUSED: refusing to start firewalld: this process's network namespace is the machine's own"; !strings.Contains(out, want) || strings.Contains(out, "ARGS") {
		t.Errorf("want %q and no firewalld in:\n%s", want, out)
	}
}

func TestPrepareFirewalld(t *testing.T) {
	for _, c := range []struct{ dir, backend, want string }{
		{"/tmp/x", "ipfw", `firewalld backend "ipfw": want nftables, iptables or iptables-legacy`},
		{"relative", "nftables", `firewalld configuration copy "relative/etc-firewalld": not an absolute path`},
		{"/run/lab", "nftables", `firewalld configuration copy "/run/lab/etc-firewalld": is under /run, which firewalld's tmpfs hides`},
	} {
		if _, err := netlab.PrepareFirewalld(c.dir, c.backend); err == nil || err.Error() != c.want {
			t.Errorf("PrepareFirewalld(%q, %q) = %v, want %s", c.dir, c.backend, err, c.want)
		}
	}
	for _, c := range []struct {
		f    netlab.FirewalldLaunch
		want string
	}{
		{netlab.FirewalldLaunch{Etc: "/etc/firewalld/", Log: "/tmp/l"}, `firewalld configuration copy "/etc/firewalld/": is the machine's own configuration, not a copy`},
		{netlab.FirewalldLaunch{Etc: "/tmp/e", Log: "/run/l"}, `firewalld log file "/run/l": is under /run, which firewalld's tmpfs hides`},
		{netlab.FirewalldLaunch{Etc: "/tmp/e"}, `firewalld log file: no path given`},
		{netlab.FirewalldLaunch{Etc: t.TempDir(), Log: "/tmp/l"}, "no firewalld.conf in it"},
	} {
		if err := netlab.ExecFirewalld(c.f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ExecFirewalld(%+v) = %v, want %s", c.f, err, c.want)
		}
	}
	if _, err := os.Stat("/etc/firewalld/firewalld.conf"); err != nil {
		netlabtest.Require(t, "firewalld")
	}
	dir := t.TempDir()
	f, err := netlab.PrepareFirewalld(dir, "iptables-legacy")
	if err != nil {
		t.Fatal(err)
	}
	if want := (netlab.FirewalldLaunch{Etc: filepath.Join(dir, "etc-firewalld"), Log: filepath.Join(dir, "firewalld.log"), LegacyXtables: true}); f != want {
		t.Errorf("PrepareFirewalld = %+v, want %+v", f, want)
	}
	b, err := os.ReadFile(filepath.Join(f.Etc, "firewalld.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nFirewallBackend=iptables\n", "\nCleanupModulesOnExit=no\n"} {
		if !strings.Contains("\n"+string(b)+"\n", want) {
			t.Errorf("firewalld.conf of the copy lacks %q", strings.TrimSpace(want))
		}
	}
}
