package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// Host is one machine of the lab: a network namespace with lo up and IPv6
// duplicate address detection off (addresses are usable at once).
type Host struct {
	lab  *Lab
	name string
	ns   string
}

// AddHost creates a host. name must match [a-z][a-z0-9]{0,7}; the namespace
// is named Lab.ID()+"-"+name.
func (l *Lab) AddHost(name string) (*Host, error) {
	ns, err := l.reserve(name)
	if err != nil {
		return nil, err
	}
	h := &Host{lab: l, name: name, ns: ns}
	if _, err := l.run(nil, "ip", "netns", "add", ns); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	if _, err := l.run(nil, "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	// Interfaces created later inherit "default": no DAD, so IPv6 link-local
	// and global addresses are usable immediately, as keepalived needs.
	if err := h.Sysctl("net.ipv6.conf.all.accept_dad", "0"); err != nil {
		return nil, err
	}
	if err := h.Sysctl("net.ipv6.conf.default.accept_dad", "0"); err != nil {
		return nil, err
	}
	return h, nil
}

// Name is the host's logical name.
func (h *Host) Name() string { return h.name }

// Netns is the name of the host's network namespace (for `ip netns exec`).
func (h *Host) Netns() string { return h.ns }

// Lab is the lab the host belongs to.
func (h *Host) Lab() *Lab { return h.lab }

// Run runs a short command in the host and returns its standard output. On
// failure the error is a *CmdError carrying standard error and exit code.
func (h *Host) Run(name string, args ...string) (string, error) {
	return h.lab.run(h, name, args...)
}

// RunInput is Run with stdin.
func (h *Host) RunInput(stdin io.Reader, name string, args ...string) (string, error) {
	return h.lab.runInput(h, stdin, name, args...)
}

// RunContext is Run bounded by ctx instead of the lab's command timeout.
func (h *Host) RunContext(ctx context.Context, name string, args ...string) (string, error) {
	return h.lab.runContext(ctx, h, nil, name, args...)
}

// Command returns an unstarted command that runs name in the host; the caller
// owns it (use Start for background processes the lab should stop).
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return h.lab.command(ctx, h, name, args...)
}

// Sysctl sets a kernel parameter inside the host (net.* is per namespace).
// key may use dots or slashes; with slashes, interface names may contain dots.
func (h *Host) Sysctl(key, value string) error {
	_, err := h.Run("sysctl", "-q", "-w", key+"="+value)
	return err
}

// LinkUp sets an interface of the host up.
func (h *Host) LinkUp(ifname string) error {
	_, err := h.lab.run(nil, "ip", "-n", h.ns, "link", "set", ifname, "up")
	return err
}

// LinkDown sets an interface of the host down.
func (h *Host) LinkDown(ifname string) error {
	_, err := h.lab.run(nil, "ip", "-n", h.ns, "link", "set", ifname, "down")
	return err
}

// AddAddr adds an address in CIDR notation to an interface. IPv6 addresses
// get nodad so they are usable at once.
func (h *Host) AddAddr(ifname, cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("netlab: address %q: %w", cidr, err)
	}
	args := []string{"-n", h.ns, "addr", "add", p.String(), "dev", ifname}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	_, err = h.lab.run(nil, "ip", args...)
	return err
}

// DelAddr removes an address in CIDR notation from an interface.
func (h *Host) DelAddr(ifname, cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("netlab: address %q: %w", cidr, err)
	}
	_, err = h.lab.run(nil, "ip", "-n", h.ns, "addr", "del", p.String(), "dev", ifname)
	return err
}

// Addr is one address configured on a host's interface.
type Addr struct {
	Interface string
	Prefix    netip.Prefix
	Scope     string // "global", "link", "host"
	Tentative bool   // IPv6 DAD not finished
}

// ipAddrJSON is the part of `ip -j addr show` that Addrs reads.
type ipAddrJSON struct {
	IfName   string `json:"ifname"`
	AddrInfo []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
		Tentative bool   `json:"tentative"`
	} `json:"addr_info"`
}

// parseIPAddrJSON decodes `ip -j addr show` output.
func parseIPAddrJSON(out []byte) ([]Addr, error) {
	var links []ipAddrJSON
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("netlab: ip -j addr: %w", err)
	}
	var addrs []Addr
	for _, l := range links {
		for _, a := range l.AddrInfo {
			ip, err := netip.ParseAddr(a.Local)
			if err != nil {
				return nil, fmt.Errorf("netlab: ip -j addr: interface %s: %w", l.IfName, err)
			}
			p, err := ip.Prefix(a.PrefixLen)
			if err != nil {
				return nil, fmt.Errorf("netlab: ip -j addr: interface %s: %w", l.IfName, err)
			}
			addrs = append(addrs, Addr{Interface: l.IfName, Prefix: netip.PrefixFrom(ip, p.Bits()), Scope: a.Scope, Tentative: a.Tentative})
		}
	}
	return addrs, nil
}

// Addrs lists every address of every interface of the host.
func (h *Host) Addrs() ([]Addr, error) {
	out, err := h.lab.run(nil, "ip", "-j", "-n", h.ns, "addr", "show")
	if err != nil {
		return nil, err
	}
	return parseIPAddrJSON([]byte(out))
}

// HasAddr reports whether any interface of the host holds ip.
func (h *Host) HasAddr(ip netip.Addr) (bool, error) {
	addrs, err := h.Addrs()
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if a.Prefix.Addr() == ip.Unmap() {
			return true, nil
		}
	}
	return false, nil
}

// LinkLocal returns the IPv6 link-local address of an interface.
func (h *Host) LinkLocal(ifname string) (netip.Addr, error) {
	addrs, err := h.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if a.Interface == ifname && a.Prefix.Addr().Is6() && a.Prefix.Addr().IsLinkLocalUnicast() {
			return a.Prefix.Addr().WithZone(ifname), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("netlab: %s has no IPv6 link-local address on %s", h.name, ifname)
}

// Holders returns the hosts that currently hold ip, in creation order.
func (l *Lab) Holders(ip netip.Addr) ([]*Host, error) {
	var out []*Host
	for _, h := range l.Hosts() {
		ok, err := h.HasAddr(ip)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, h)
		}
	}
	return out, nil
}

// HostNames returns the names of hosts, e.g. for messages.
func HostNames(hosts []*Host) string {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.name
	}
	return "[" + strings.Join(names, " ") + "]"
}

// Do runs fn on a fresh OS thread switched into the host's network namespace
// and waits for it. Sockets opened inside fn belong to the host and keep
// working after Do returns. Goroutines started inside fn do not inherit the
// namespace. The caller's own thread never changes namespace.
func (h *Host) Do(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		// The thread stays locked unless it is back in its original
		// namespace: a locked thread is discarded when its goroutine exits,
		// so no other goroutine can ever run in the host's namespace.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- fmt.Errorf("netlab: current namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(h.ns)
		if err != nil {
			done <- fmt.Errorf("netlab: namespace of %s: %w", h.name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- fmt.Errorf("netlab: enter namespace of %s: %w", h.name, err)
			return
		}
		fnErr := fn()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		done <- fnErr
	}()
	return <-done
}
