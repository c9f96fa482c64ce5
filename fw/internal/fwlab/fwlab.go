// Package fwlab gives fw's tests throwaway network namespaces holding the
// rulesets of testdata/rulesets, loaded with the real tools (nft,
// iptables-nft-restore, iptables-legacy-restore). Nothing is ever loaded
// into the caller's own namespace: every command runs under
// `ip netns exec NAME`.
package fwlab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/nftjson"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Require skips (or, with CI=true, fails) a test that lacks root or a
// program, naming the Debian package to install.
func Require(t *testing.T, programs map[string]string) {
	t.Helper()
	miss := func(msg string) {
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		miss("needs root (network namespaces, netfilter)")
	}
	for prog, pkg := range programs {
		if _, err := exec.LookPath(prog); err != nil {
			miss(fmt.Sprintf("needs %s: apt-get install %s", prog, pkg))
		}
	}
}

// Tools are the programs Load uses, with their Debian packages.
var Tools = map[string]string{"ip": "iproute2", "nft": "nftables", "iptables-nft-restore": "iptables", "iptables-legacy-restore": "iptables"}

// NS is a network namespace created for one test.
type NS struct {
	Name string
	// FD is an open descriptor of the namespace (for netlink readers).
	FD int
}

// NewNS creates a namespace with lo and a veth pair eth0/eth1 up, removed
// when the test ends.
func NewNS(t *testing.T) *NS {
	t.Helper()
	name := nsName()
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
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "eth0", "type", "veth", "peer", "name", "eth1"},
		{"link", "set", "eth0", "up"},
		{"link", "set", "eth1", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	fd, err := openNS(name)
	if err != nil {
		t.Fatal(err)
	}
	ns.FD = fd
	return ns
}

// Exec runs a command inside the namespace.
func (ns *NS) Exec(stdin []byte, argv ...string) ([]byte, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name}, argv...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, stderr.String())
	}
	return out, nil
}

// restoreTools maps save files to the tool that loads them.
var restoreTools = map[string]string{
	"iptables-nft-save.txt":     "iptables-nft-restore",
	"ip6tables-nft-save.txt":    "ip6tables-nft-restore",
	"iptables-legacy-save.txt":  "iptables-legacy-restore",
	"ip6tables-legacy-save.txt": "ip6tables-legacy-restore",
}

// Load loads a testdata/rulesets scenario into the namespace: its native
// nftables tables with `nft -j -f`, and each iptables flavour with its
// restore tool.
func (ns *NS) Load(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "nft.json"))
	if err != nil {
		return err
	}
	native, hasXtables, err := NativeJSON(data)
	if err != nil {
		return err
	}
	if !hasXtables {
		// nft.txt is nft's own listing, devices of netdev chains included
		// (nft 1.0.6's JSON leaves them out).
		native, err = os.ReadFile(filepath.Join(dir, "nft.txt"))
		if err != nil {
			return err
		}
		if _, err := ns.Exec(native, "nft", "-f", "-"); err != nil {
			return err
		}
	} else if _, err := ns.Exec(native, "nft", "-j", "-f", "-"); err != nil {
		return err
	}
	for file, tool := range restoreTools {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if _, err := ns.Exec(b, tool); err != nil {
			return err
		}
	}
	return nil
}

// NativeJSON keeps, of an `nft -j list ruleset` document, the objects of the
// tables that are not iptables-nft's (those load from the save files, as
// JSON cannot carry their xt extensions back). hasXtables reports whether
// it left any table out.
func NativeJSON(data []byte) (native []byte, hasXtables bool, err error) {
	rs, err := nftjson.Parse(data, "nft.json")
	if err != nil {
		return nil, false, err
	}
	skip := map[string]bool{}
	for _, t := range rs.Tables {
		if t.Backend == ruleset.BackendIptablesNFT {
			skip[string(t.Family)+" "+t.Name] = true
		}
	}
	var doc struct {
		Nftables []map[string]map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, false, err
	}
	keep := []map[string]map[string]any{}
	for _, o := range doc.Nftables {
		drop := false
		for kind, body := range o {
			if kind == "metainfo" {
				drop = true
				continue
			}
			fam, _ := body["family"].(string)
			tbl, _ := body["table"].(string)
			if kind == "table" {
				tbl, _ = body["name"].(string)
			}
			drop = skip[fam+" "+tbl]
		}
		if !drop {
			keep = append(keep, o)
		}
	}
	native, err = json.Marshal(map[string]any{"nftables": keep})
	return native, len(skip) > 0, err
}

// nsName is a namespace name unique to this process and call.
func nsName() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return fmt.Sprintf("vdfw%d%s", os.Getpid(), hex.EncodeToString(b))
}
