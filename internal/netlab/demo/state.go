package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StateVersion is the version of the state file's format.
const StateVersion = 1

// Modes of a recorded lab.
const (
	ModeDemo = "demo" // made by `lab demo`; removed by the demo's own process
	ModeUp   = "up"   // made by `lab up`; left running until `lab down`
)

// State is what a lab records in its state file: everything `lab down`
// may remove, and nothing else.
type State struct {
	Version int    `json:"version"`
	Mode    string `json:"mode"`
	// Complete is set once the lab is fully built. An incomplete lab whose
	// owner is gone is stale and removed by the next start.
	Complete bool      `json:"complete"`
	Owner    Proc      `json:"owner"` // the vrrpdoctor process that built the lab
	Created  time.Time `json:"created"`
	// Dir holds the nodes' configurations and logs (not under /run: the
	// lab's firewalld mounts a private tmpfs over /run).
	Dir        string   `json:"dir"`
	Namespaces []string `json:"namespaces"`
	Daemon     string   `json:"daemon"`   // keepalived or vrrpdoctor
	Firewall   string   `json:"firewall"` // firewalld or nft
	VIP        string   `json:"vip"`
	// Bus is the D-Bus address of b's firewalld ("" without firewalld).
	Bus   string `json:"bus,omitempty"`
	Nodes []Node `json:"nodes"`
	Procs []Proc `json:"procs"`
}

// Node is one lab host.
type Node struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Addr      string `json:"addr"`     // CIDR on eth0
	Priority  int    `json:"priority"` // VRRP priority
	Config    string `json:"config"`   // keepalived.conf of its daemon
	DaemonLog string `json:"daemon_log"`
}

// Proc identifies a process the lab started: the PID alone could be reused,
// so the kernel's start time (clock ticks since boot, /proc/PID/stat field
// 22) and the command line go with it.
type Proc struct {
	Node    string `json:"node,omitempty"`
	Role    string `json:"role,omitempty"` // keepalived, vrrpdoctor-run, firewalld, dbus-daemon, ...
	PID     int    `json:"pid"`
	Start   uint64 `json:"start"`
	Cmdline string `json:"cmdline"`
}

// nsRE accepts the namespace names a lab makes; a state file naming
// anything else is refused.
var nsRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^vdlab-[a-z][a-z0-9]{0,7}$`) })

// dirRE accepts the data directories a lab makes.
var dirRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^vrrpdoctor-lab-[0-9]+$`) })

// Validate checks that a state file names only what a lab makes: lab
// namespaces, a lab data directory, positive PIDs.
func (s *State) Validate() error {
	if s.Version != StateVersion {
		return fmt.Errorf("state version %d, want %d", s.Version, StateVersion)
	}
	if s.Mode != ModeDemo && s.Mode != ModeUp {
		return fmt.Errorf("mode %q: want %s or %s", s.Mode, ModeDemo, ModeUp)
	}
	for _, ns := range s.Namespaces {
		if !nsRE().MatchString(ns) {
			return fmt.Errorf("namespace %q is not a lab namespace (%s)", ns, nsRE())
		}
	}
	for _, n := range s.Nodes {
		if !slices.Contains(s.Namespaces, n.Namespace) {
			return fmt.Errorf("node %q: namespace %q is not one of the lab's", n.Name, n.Namespace)
		}
	}
	if s.Dir != "" && (!filepath.IsAbs(s.Dir) || !dirRE().MatchString(filepath.Base(s.Dir))) {
		return fmt.Errorf("directory %q is not a lab directory", s.Dir)
	}
	for _, p := range append([]Proc{s.Owner}, s.Procs...) {
		if p.PID <= 0 && p != (Proc{}) {
			return fmt.Errorf("process %q: pid %d", p.Role, p.PID)
		}
	}
	return nil
}

// StatePath is the state file in dir.
func StatePath(dir string) string { return filepath.Join(dir, "state.json") }

// ErrNoLab is returned by LoadState when no state file exists.
var ErrNoLab = errors.New("no lab is recorded")

// LoadState reads and validates the state file in dir.
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(StatePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoLab
	}
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("%w (the lab is root's: run it with sudo)", err)
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", StatePath(dir), err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", StatePath(dir), err)
	}
	return &s, nil
}

// Save writes the state file atomically (a crash leaves the old or the new
// one, never half of one).
func (s *State) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".state-*.json")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), StatePath(dir))
}

// Node returns the node called name, or nil.
func (s *State) Node(name string) *Node {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	return nil
}

// procStat is what Identify reads from /proc/PID/stat.
type procStat struct {
	state byte
	start uint64
}

// parseStat reads the state (field 3) and start time (field 22) of a
// /proc/PID/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat %q: no command name", line)
	}
	f := strings.Fields(line[i+1:])
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("stat %q: %d fields after the name, want 20", line, len(f))
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("stat %q: bad state or start time", line)
	}
	return procStat{state: f[0][0], start: start}, nil
}

// procRoot is where process information is read (tests point it elsewhere).
var procRoot = "/proc"

// readStat reads /proc/PID/stat; ok is false when the process is gone.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	st, err := parseStat(string(b))
	if err != nil {
		return procStat{}, false
	}
	return st, true
}

// readCmdline reads /proc/PID/cmdline with the NULs as spaces.
func readCmdline(pid int) string {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// Identify records the identity of a running process.
func Identify(pid int, node, role string) (Proc, error) {
	st, ok := readStat(pid)
	if !ok {
		return Proc{}, fmt.Errorf("process %d (%s) is not running", pid, role)
	}
	return Proc{Node: node, Role: role, PID: pid, Start: st.start, Cmdline: readCmdline(pid)}, nil
}

// Alive reports whether the recorded process still runs: the PID exists, is
// not a zombie, and has the recorded start time and command line. A PID
// reused by another program is not alive. An empty recorded command line
// (a process recorded before it exec'd its program) matches any.
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	st, ok := readStat(p.PID)
	if !ok || st.state == 'Z' || st.state == 'X' || st.start != p.Start {
		return false
	}
	return p.Cmdline == "" || readCmdline(p.PID) == p.Cmdline
}
