package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FirewalldLaunch is what a lab's firewalld runs on: a copy of
// /etc/firewalld and a log file, both outside /run (which gets a tmpfs).
type FirewalldLaunch struct {
	// Etc is the copy of /etc/firewalld, bind-mounted over /etc/firewalld
	// and given to firewalld as --system-config.
	Etc string
	// Log is firewalld's --log-file.
	Log string
	// LegacyXtables binds /usr/sbin/xtables-legacy-multi over
	// /usr/sbin/xtables-nft-multi: firewalld's iptables backend then drives
	// the legacy iptables, as on CentOS 7 (backend "iptables-legacy").
	LegacyXtables bool
}

// Paths of the machine's firewalld configuration, runtime directory and
// xtables binaries that ExecFirewalld covers in its mount namespace.
const (
	etcFirewalld  = "/etc/firewalld"
	runDir        = "/run"
	xtablesNft    = "/usr/sbin/xtables-nft-multi"
	xtablesLegacy = "/usr/sbin/xtables-legacy-multi"
)

// PrepareFirewalld copies /etc/firewalld to dir/etc-firewalld, sets its
// FirewallBackend (backend nftables, iptables, or iptables-legacy: the
// iptables backend with the legacy binaries) and CleanupModulesOnExit=no,
// and returns the launch of a firewalld on that copy logging to
// dir/firewalld.log. dir must be absolute and outside /run.
func PrepareFirewalld(dir, backend string) (FirewalldLaunch, error) {
	fb := backend
	switch backend {
	case "nftables", "iptables":
	case "iptables-legacy":
		fb = "iptables"
	default:
		return FirewalldLaunch{}, fmt.Errorf("firewalld backend %q: want nftables, iptables or iptables-legacy", backend)
	}
	f := FirewalldLaunch{
		Etc:           filepath.Join(dir, "etc-firewalld"),
		Log:           filepath.Join(dir, "firewalld.log"),
		LegacyXtables: backend == "iptables-legacy",
	}
	if err := f.checkPaths(); err != nil {
		return FirewalldLaunch{}, err
	}
	if out, err := exec.Command("cp", "-a", etcFirewalld, f.Etc).CombinedOutput(); err != nil {
		return FirewalldLaunch{}, fmt.Errorf("copy %s: %v: %s", etcFirewalld, err, out)
	}
	cf := filepath.Join(f.Etc, "firewalld.conf")
	b, err := os.ReadFile(cf)
	if err != nil {
		return FirewalldLaunch{}, err
	}
	lines := strings.Split(string(b), "\n")
	for i, ln := range lines {
		switch {
		case strings.HasPrefix(ln, "CleanupModulesOnExit="):
			lines[i] = "CleanupModulesOnExit=no"
		case strings.HasPrefix(ln, "FirewallBackend="):
			lines[i] = "FirewallBackend=" + fb
		}
	}
	if err := os.WriteFile(cf, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return FirewalldLaunch{}, err
	}
	return f, nil
}

// checkPaths refuses paths firewalld could not use in its mount namespace:
// relative ones, the machine's /etc/firewalld itself, and anything under
// /run, which the tmpfs hides.
func (f FirewalldLaunch) checkPaths() error {
	for _, p := range []struct{ name, path string }{{"configuration copy", f.Etc}, {"log file", f.Log}} {
		switch {
		case p.path == "":
			return fmt.Errorf("firewalld %s: no path given", p.name)
		case !filepath.IsAbs(p.path):
			return fmt.Errorf("firewalld %s %q: not an absolute path", p.name, p.path)
		case filepath.Clean(p.path) == etcFirewalld:
			return fmt.Errorf("firewalld %s %q: is the machine's own configuration, not a copy", p.name, p.path)
		case within(p.path, runDir):
			return fmt.Errorf("firewalld %s %q: is under %s, which firewalld's tmpfs hides", p.name, p.path, runDir)
		}
	}
	return nil
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// sameNamespace reports whether the namespace links a and b (such as
// /proc/self/ns/net and /proc/1/ns/net) name the same namespace.
func sameNamespace(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// CheckLabNamespaces returns nil only when this process runs in a network
// namespace other than the machine's and its parent's, and in a mount
// namespace other than the machine's and its parent's: a mount namespace
// made for it, as `ip netns exec` and `unshare --mount` make one. Mounts
// there cannot cover the machine's own /etc/firewalld or /run. The
// machine's namespaces are PID 1's; where PID 1's cannot be read (PID 1
// holding capabilities this process lacks, as in some VM sandboxes), those
// of the kernel's kthreadd (PID 2), which are the initial ones.
func CheckLabNamespaces() error {
	machine, err := machineProc()
	if err != nil {
		return err
	}
	return checkNamespaces("/proc/self", machine, "/proc/"+strconv.Itoa(os.Getppid()))
}

// machineProc returns the /proc directory of the process whose namespaces
// are the machine's: PID 1, or kthreadd (PID 2) when PID 1's namespaces
// cannot be read.
func machineProc() (string, error) {
	_, err1 := os.Stat("/proc/1/ns/net")
	if err1 == nil {
		return "/proc/1", nil
	}
	comm, _ := os.ReadFile("/proc/2/comm")
	if strings.TrimSpace(string(comm)) == "kthreadd" {
		if _, err := os.Stat("/proc/2/ns/net"); err == nil {
			return "/proc/2", nil
		}
	}
	return "", fmt.Errorf("refusing to start firewalld: cannot read the machine's namespaces to compare: %w", err1)
}

// checkNamespaces is CheckLabNamespaces for the process directories self,
// machine and parent.
func checkNamespaces(self, machine, parent string) error {
	for _, c := range []struct {
		ns, ref, what string
	}{
		{"net", machine, "network namespace is the machine's own"},
		{"net", parent, "network namespace is its parent's (not a lab node's)"},
		{"mnt", machine, "mount namespace is the machine's own"},
		{"mnt", parent, "mount namespace is its parent's (not one of its own)"},
	} {
		same, err := sameNamespace(filepath.Join(self, "ns", c.ns), filepath.Join(c.ref, "ns", c.ns))
		if err != nil {
			return fmt.Errorf("cannot compare namespaces: %w", err)
		}
		if same {
			return fmt.Errorf("refusing to start firewalld: this process's %s; run it in a lab node, where `ip netns exec` gives it a network and a mount namespace", c.what)
		}
	}
	return nil
}

// ExecFirewalld replaces this process with firewalld on f, without a shell:
// after CheckLabNamespaces, it makes every mount of its mount namespace
// private (nothing propagates to the machine), bind-mounts f.Etc over
// /etc/firewalld, mounts a tmpfs over /run (firewalld always uses
// /run/firewalld), with f.LegacyXtables binds the legacy xtables binary
// over the nft one, and execs `firewalld --nofork --nopid --system-config
// f.Etc --log-file f.Log` with this process's environment (which carries
// the lab's DBUS_SYSTEM_BUS_ADDRESS). It returns only on error.
func ExecFirewalld(f FirewalldLaunch) error {
	if err := f.checkPaths(); err != nil {
		return err
	}
	if st, err := os.Stat(filepath.Join(f.Etc, "firewalld.conf")); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("firewalld configuration copy %s: no firewalld.conf in it", f.Etc)
	}
	if st, err := os.Stat(filepath.Dir(f.Log)); err != nil || !st.IsDir() {
		return fmt.Errorf("firewalld log file %s: its directory does not exist", f.Log)
	}
	prog, err := exec.LookPath("firewalld")
	if err != nil {
		return fmt.Errorf("firewalld not found (apt-get install firewalld): %w", err)
	}
	if err := CheckLabNamespaces(); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make the mounts of firewalld's mount namespace private: %w", err)
	}
	if err := unix.Mount(f.Etc, etcFirewalld, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s over %s: %w", f.Etc, etcFirewalld, err)
	}
	if err := unix.Mount("tmpfs", runDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mount a tmpfs over %s: %w", runDir, err)
	}
	if f.LegacyXtables {
		if err := unix.Mount(xtablesLegacy, xtablesNft, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s over %s: %w", xtablesLegacy, xtablesNft, err)
		}
	}
	argv := []string{"firewalld", "--nofork", "--nopid", "--system-config", f.Etc, "--log-file", f.Log}
	return fmt.Errorf("exec %s: %w", prog, unix.Exec(prog, argv, os.Environ()))
}
