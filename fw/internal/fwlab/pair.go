package fwlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Addresses of a Pair's hosts on their link.
const (
	HostV4 = "198.51.100.2"
	PeerV4 = "198.51.100.1"
	HostLL = "fe80::2"
	PeerLL = "fe80::1"
)

// NewPair creates two namespaces, a host (the firewall under test) and its
// peer, each with lo and an eth0 joined to the other's by a veth pair, with
// HostV4/PeerV4, 2001:db8::2/::1 and the fixed link-local HostLL/PeerLL (no
// DAD). Both are removed when the test ends.
func NewPair(t *testing.T) (host, peer *NS) {
	t.Helper()
	host, peer = newEmptyNS(t, "h"), newEmptyNS(t, "p")
	if out, err := exec.Command("ip", "link", "add", "eth0", "netns", host.Name, "type", "veth", "peer", "name", "eth0", "netns", peer.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	for _, h := range []struct {
		ns         *NS
		v4, v6, ll string
	}{{host, HostV4, "2001:db8::2", HostLL}, {peer, PeerV4, "2001:db8::1", PeerLL}} {
		for _, args := range [][]string{
			{"link", "set", "eth0", "addrgenmode", "none"},
			{"addr", "add", h.v4 + "/24", "dev", "eth0"},
			{"addr", "add", h.v6 + "/64", "dev", "eth0", "nodad"},
			{"addr", "add", h.ll + "/64", "dev", "eth0", "nodad"},
			{"link", "set", "eth0", "up"},
		} {
			if out, err := exec.Command("ip", append([]string{"-n", h.ns.Name}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v: %s", args, err, out)
			}
		}
	}
	return host, peer
}

// newEmptyNS creates a namespace with only lo up, removed when the test ends.
func newEmptyNS(t *testing.T, suffix string) *NS {
	t.Helper()
	name := nsName() + suffix
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	ns := &NS{Name: name}
	t.Cleanup(func() {
		if ns.FD > 0 {
			_ = closeFD(ns.FD)
		}
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	fd, err := openNS(name)
	if err != nil {
		t.Fatal(err)
	}
	ns.FD = fd
	return ns
}

// KeepalivedConf is a keepalived configuration for one MASTER instance on
// eth0 (VRID 51, priority 150) sending VRRPv3 adverts every interval (at
// least 10ms): to 224.0.0.18 for family 4, to ff02::12 for family 6.
func KeepalivedConf(family int, interval time.Duration) string {
	vip := "198.51.100.10/24"
	if family == 6 {
		vip = "2001:db8::10/64"
	}
	return fmt.Sprintf(`global_defs {
  router_id lab
  vrrp_version 3
}
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int %.2f
  virtual_ipaddress {
    %s
  }
}
`, interval.Seconds(), vip)
}

// StartKeepalived runs keepalived in the namespace with the configuration
// given, stopped by PID when the test ends. It returns the path of its log.
func (ns *NS) StartKeepalived(t *testing.T, conf string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, dir, nil, "ip", "netns", "exec", ns.Name, "keepalived", "-f", path,
		"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"), "-n", "-l", "-D")
	return filepath.Join(dir, "ip.log")
}

// Tables lists the namespace's nftables tables ("family name" each).
func (ns *NS) Tables() ([]string, error) {
	out, err := ns.Exec(nil, "nft", "list", "tables")
	if err != nil {
		return nil, err
	}
	var tables []string
	for _, ln := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(ln); len(f) == 3 && f[0] == "table" {
			tables = append(tables, f[1]+" "+f[2])
		}
	}
	return tables, nil
}
