// Package netlabtest adapts internal/netlab to tests: it checks for root and
// the lab's programs (skipping, or failing when CI=true), and closes the lab
// in t.Cleanup, printing the commands run and every process's output when the
// test failed.
package netlabtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
)

// Packages names the Debian package that provides each program the lab and
// its tests may run.
var Packages = map[string]string{
	"ip":               "iproute2",
	"sysctl":           "procps",
	"keepalived":       "keepalived",
	"tcpdump":          "tcpdump",
	"dumpcap":          "wireshark-common",
	"tshark":           "tshark",
	"editcap":          "wireshark-common",
	"nft":              "nftables",
	"iptables":         "iptables",
	"ip6tables":        "iptables",
	"iptables-legacy":  "iptables",
	"ip6tables-legacy": "iptables",
	"iptables-nft":     "iptables",
	"firewalld":        "firewalld",
	"firewall-cmd":     "firewalld",
	"dbus-daemon":      "dbus",
	"unshare":          "util-linux",
}

// base programs every lab needs.
var base = []string{"ip", "sysctl"}

// inCI reports whether missing prerequisites must fail rather than skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// Require skips the test (or fails it when CI=true) unless it runs as root and
// every program is on PATH. The message names the Debian package to install.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "needs root to create network namespaces (run the tests as root)")
	}
	missing := map[string][]string{}
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			missing[Packages[p]] = append(missing[Packages[p]], p)
		}
	}
	pkgs := make([]string, 0, len(missing))
	for pkg := range missing {
		pkgs = append(pkgs, pkg)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		progs := strings.Join(missing[pkg], ", ")
		if pkg == "" {
			problems = append(problems, progs+" not found on PATH")
			continue
		}
		problems = append(problems, fmt.Sprintf("%s not found: apt-get install %s", progs, pkg))
	}
	if len(problems) == 0 {
		return
	}
	msg := "lab test prerequisites: " + strings.Join(problems, "; ")
	if inCI() {
		t.Fatal(msg)
		return
	}
	t.Skip(msg + " (set CI=true to make this a failure)")
}

// New returns a fresh lab for the test after Require(t, programs...) (ip and
// sysctl are always required). The lab is closed in t.Cleanup; a close error
// fails the test. When the test failed, the log gets the commands the lab ran
// and the output of every process it started.
func New(t testing.TB, programs ...string) *netlab.Lab {
	t.Helper()
	Require(t, append(append([]string(nil), base...), programs...)...)
	var mu sync.Mutex
	var trace []string
	start := time.Now()
	lab, err := netlab.New(netlab.Options{
		Prefix: "vdt",
		Logf: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			trace = append(trace, fmt.Sprintf("%6.2fs ", time.Since(start).Seconds())+fmt.Sprintf(format, args...))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("lab %s commands:\n%s", lab.ID(), strings.Join(trace, "\n"))
			mu.Unlock()
			for _, p := range lab.Processes() {
				t.Logf("output of %s on %s (pid %d):\n%s", strings.Join(p.Args, " "), p.Host.Name(), p.PID(), p.Log())
			}
		}
		if err := lab.Close(); err != nil {
			t.Errorf("closing lab %s: %v", lab.ID(), err)
		}
	})
	return lab
}

// LogBuffer is a bytes.Buffer safe for concurrent use: a log sink the code
// under test writes while the test reads it.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
