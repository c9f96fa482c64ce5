// Package netlab builds throw-away VRRP labs out of Linux network namespaces:
// every host is a namespace with its own interfaces, addresses, firewall and
// processes (keepalived, tcpdump, ...), linked by veth pairs or through a
// bridge that lives in a namespace of its own.
//
// The machine's own (root) network namespace is never changed: interfaces are
// created directly inside the lab's namespaces, and every command runs through
// `ip netns exec`. Namespace names carry a prefix, the PID of the process that
// made them and a random suffix, so concurrent labs never collide and Close
// (or a later lab with the same prefix, after a crash) removes exactly what was
// made.
//
// The API does not depend on package testing: tests use
// internal/netlab/netlabtest, which wraps New with skip/fail rules and cleanup.
// All programs run are the ones a user has: ip (iproute2), sysctl (procps),
// keepalived, tcpdump, dumpcap, nft, iptables.
package netlab

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultPrefix is the namespace name prefix used when Options.Prefix is empty.
const DefaultPrefix = "vdlab"

// DefaultCommandTimeout bounds every short command the lab runs (ip, sysctl,
// nft, ...) when Options.CommandTimeout is zero.
const DefaultCommandTimeout = 30 * time.Second

// Options configure a Lab. The zero value is usable.
type Options struct {
	// Prefix starts every namespace and temporary directory name. It must
	// match [a-z][a-z0-9]{0,11}. Default DefaultPrefix.
	Prefix string
	// Dir receives configs, logs and captures. When empty, a fresh directory
	// under os.TempDir() is made and removed by Close.
	Dir string
	// KeepDir keeps the lab's own temporary directory after Close.
	KeepDir bool
	// CommandTimeout bounds each short command; default DefaultCommandTimeout.
	CommandTimeout time.Duration
	// Logf, when set, receives one line per command the lab runs.
	Logf func(format string, args ...any)
}

// Lab is a set of hosts (network namespaces), links, processes and files.
// Its methods are safe for concurrent use. Close removes everything.
type Lab struct {
	prefix  string
	id      string // prefix-pid-random: the common start of every name
	dir     string
	ownDir  bool
	keepDir bool
	timeout time.Duration
	logf    func(format string, args ...any)

	mu       sync.Mutex
	closed   bool
	nsNames  map[string]bool // logical names in use (hosts and switches)
	hosts    []*Host
	switches []*Switch
	procs    []*Process
	seq      int
}

var prefixRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`) })

// nameRE restricts host and switch names: short enough that derived interface
// names ("p-" + name) fit in IFNAMSIZ.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`) })

// New makes an empty lab. It first removes namespaces and temporary
// directories that an earlier, crashed run left behind with the same prefix
// (names whose embedded PID is no longer alive); names of live processes,
// including concurrent test binaries, are left alone.
func New(opts Options) (*Lab, error) {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !prefixRE().MatchString(prefix) {
		return nil, fmt.Errorf("netlab: prefix %q must match %s", prefix, prefixRE())
	}
	// The suffix only separates concurrent labs: math/rand/v2 is seeded
	// from the OS and does not link crypto/rand (0.16 MB of text).
	var rnd [3]byte
	for i := range rnd {
		rnd[i] = byte(rand.Uint32())
	}
	l := &Lab{
		prefix:  prefix,
		id:      fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), hex.EncodeToString(rnd[:])),
		keepDir: opts.KeepDir,
		timeout: opts.CommandTimeout,
		logf:    opts.Logf,
		nsNames: map[string]bool{},
	}
	if l.timeout <= 0 {
		l.timeout = DefaultCommandTimeout
	}
	if l.logf == nil {
		l.logf = func(string, ...any) {}
	}
	if err := l.removeStale(); err != nil {
		return nil, err
	}
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("netlab: %w", err)
		}
		l.dir = opts.Dir
	} else {
		l.dir = filepath.Join(os.TempDir(), l.id)
		if err := os.Mkdir(l.dir, 0o700); err != nil {
			return nil, fmt.Errorf("netlab: %w", err)
		}
		l.ownDir = true
	}
	return l, nil
}

// ID is the unique start of every namespace name of this lab
// (prefix-pid-random).
func (l *Lab) ID() string { return l.id }

// Dir is the directory holding the lab's configs, logs and captures.
func (l *Lab) Dir() string { return l.dir }

// Hosts returns the lab's hosts in creation order.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.hosts...)
}

// Processes returns every background process the lab started, in start order.
func (l *Lab) Processes() []*Process {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Process(nil), l.procs...)
}

// Path returns name joined to the lab directory.
func (l *Lab) Path(name string) string { return filepath.Join(l.dir, name) }

// nextSeq returns a lab-wide sequence number for file names.
func (l *Lab) nextSeq() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	return l.seq
}

// reserve claims a logical host or switch name and returns its namespace name.
func (l *Lab) reserve(name string) (string, error) {
	if !nameRE().MatchString(name) {
		return "", fmt.Errorf("netlab: name %q must match %s", name, nameRE())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", errors.New("netlab: lab is closed")
	}
	if l.nsNames[name] {
		return "", fmt.Errorf("netlab: name %q already used in this lab", name)
	}
	l.nsNames[name] = true
	return l.id + "-" + name, nil
}

// Close stops every process the lab started (SIGTERM, then SIGKILL after 5 s),
// kills whatever still runs inside the lab's namespaces, deletes the
// namespaces (which removes their interfaces) and removes the lab's own
// temporary directory. It reports every failure and is safe to call twice.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := append([]*Process(nil), l.procs...)
	var names []string
	for _, h := range l.hosts {
		names = append(names, h.ns)
	}
	for _, s := range l.switches {
		names = append(names, s.ns)
	}
	l.mu.Unlock()

	var errs []error
	// Stop in reverse start order: captures started after daemons stop first.
	var wg sync.WaitGroup
	stopErrs := make([]error, len(procs))
	for i := len(procs) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := procs[i].Stop(5 * time.Second); err != nil && !errors.Is(err, ErrExited) {
				stopErrs[i] = err
			}
		}(i)
	}
	wg.Wait()
	errs = append(errs, stopErrs...)
	for _, ns := range names {
		errs = append(errs, l.deleteNamespace(ns))
	}
	if l.ownDir && !l.keepDir {
		if err := os.RemoveAll(l.dir); err != nil {
			errs = append(errs, fmt.Errorf("netlab: %w", err))
		}
	}
	return errors.Join(errs...)
}

// deleteNamespace kills every process left in ns by PID and deletes it.
func (l *Lab) deleteNamespace(ns string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	pids, err := namespacePIDs(l, ns)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if len(pids) > 0 {
		// A process still holds the namespace until it is reaped.
		_ = WaitFor(5*time.Second, func() (bool, error) {
			left, err := namespacePIDs(l, ns)
			return err == nil && len(left) == 0, nil
		})
	}
	if _, err := l.run(nil, "ip", "netns", "delete", ns); err != nil {
		return err
	}
	return nil
}

// netnsDir is where iproute2 keeps named network namespaces.
const netnsDir = "/run/netns"

// namespacePIDs lists the processes running in the named namespace.
func namespacePIDs(l *Lab, ns string) ([]int, error) {
	out, err := l.run(nil, "ip", "netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("netlab: ip netns pids %s: unexpected %q", ns, f)
		}
		if pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// staleRE matches names made by a lab with the given prefix and captures the
// PID of the process that made them.
func staleRE(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `-([0-9]+)-[0-9a-f]{6}(?:-[a-z][a-z0-9]{0,7})?$`)
}

// staleOwner reports whether name was made by a lab with prefix whose process
// is gone, returning that PID.
func staleOwner(re *regexp.Regexp, name string, alive func(int) bool) (int, bool) {
	m := re.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	pid, err := strconv.Atoi(m[1])
	if err != nil || pid <= 0 || pid == os.Getpid() || alive(pid) {
		return pid, false
	}
	return pid, true
}

// pidAlive reports whether a process with that PID exists.
func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// removeStale deletes namespaces and lab directories with this lab's prefix
// whose owning process no longer exists.
func (l *Lab) removeStale() error {
	re := staleRE(l.prefix)
	var errs []error
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("netlab: %w", err)
	}
	for _, e := range entries {
		if pid, stale := staleOwner(re, e.Name(), pidAlive); stale {
			l.logf("netlab: removing namespace %s left by dead process %d", e.Name(), pid)
			errs = append(errs, l.deleteNamespace(e.Name()))
		}
	}
	tmp, err := os.ReadDir(os.TempDir())
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("netlab: %w", err))...)
	}
	for _, e := range tmp {
		if !e.IsDir() {
			continue
		}
		if pid, stale := staleOwner(re, e.Name(), pidAlive); stale {
			l.logf("netlab: removing directory %s left by dead process %d", e.Name(), pid)
			if err := os.RemoveAll(filepath.Join(os.TempDir(), e.Name())); err != nil {
				errs = append(errs, fmt.Errorf("netlab: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
