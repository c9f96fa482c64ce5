package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// busConfig is a private system-type D-Bus configuration on which any user
// may own any name: firewalld, without polkit, then treats callers as root.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
`

// WriteBusConfig writes to path the configuration of a private system-type
// dbus-daemon listening on the unix socket sock, for a lab's firewalld.
func WriteBusConfig(path, sock string) error {
	return os.WriteFile(path, []byte(fmt.Sprintf(busConfig, sock)), 0o644)
}

// FirewalldScript copies /etc/firewalld under dir, sets FirewallBackend
// (backend "iptables-legacy" means the iptables backend with the legacy
// binaries, as on CentOS 7) and CleanupModulesOnExit=no, and returns the sh
// script that runs firewalld on that copy, logging to dir/firewalld.log. Run
// it under `unshare --mount --propagation private` inside a lab namespace,
// with DBUS_SYSTEM_BUS_ADDRESS set, so that its bind mounts and tmpfs /run
// stay private (/work/shared/testing.md, "firewalld inside a namespace").
func FirewalldScript(dir, backend string) (string, error) {
	etc := filepath.Join(dir, "etc-firewalld")
	if out, err := exec.Command("cp", "-a", "/etc/firewalld", etc).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copy /etc/firewalld: %v: %s", err, out)
	}
	fb := backend
	if backend == "iptables-legacy" {
		fb = "iptables"
	}
	cf := filepath.Join(etc, "firewalld.conf")
	b, err := os.ReadFile(cf)
	if err != nil {
		return "", err
	}
	var lines []string
	for _, ln := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(ln, "CleanupModulesOnExit="):
			ln = "CleanupModulesOnExit=no"
		case strings.HasPrefix(ln, "FirewallBackend="):
			ln = "FirewallBackend=" + fb
		}
		lines = append(lines, ln)
	}
	if err := os.WriteFile(cf, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return "", err
	}
	mounts := fmt.Sprintf("mount --bind %s /etc/firewalld && mount -t tmpfs tmpfs /run", etc)
	if backend == "iptables-legacy" {
		mounts += " && mount --bind /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi"
	}
	return fmt.Sprintf("%s && exec firewalld --nofork --nopid --system-config %s --log-file %s", mounts, etc, filepath.Join(dir, "firewalld.log")), nil
}
