package hostfacts

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// DefaultKeepalivedConfig is the configuration keepalived reads without -f.
const DefaultKeepalivedConfig = "/etc/keepalived/keepalived.conf"

// KeepalivedProcess is one running keepalived process.
type KeepalivedProcess struct {
	PID, PPID int
	// Parent is true for the process started by the user (or systemd);
	// false for the VRRP and checker children it forks.
	Parent bool
	Args   []string
	// Config is the configuration file it reads: the -f/--use-file
	// argument, else DefaultKeepalivedConfig.
	Config string
	// Namespace is keepalived's own -s/--namespace argument: it then runs
	// in that named network namespace.
	Namespace string
	// SameNetns says whether it runs in the network namespace of the
	// caller (false: its VRRP traffic is on another network stack).
	// Unknown when the namespace links cannot be read.
	SameNetns      bool
	SameNetnsKnown bool
}

// KeepalivedArgs is what a keepalived command line says about where it
// reads its configuration and which namespace it runs in.
type KeepalivedArgs struct {
	Config    string // default DefaultKeepalivedConfig
	Namespace string
}

// keepalived 2.2.7's options that take a value (main.c, parse_cmdline):
// required values may follow as the next argument, optional ones only
// attached ("-gFILE", "--log-file=FILE").
const (
	shortRequired = "uSfpisrcbA"
	shortOptional = "Mgt"
)

var longOptions = map[string]byte{ // name -> 'r' required, 'o' optional, 0 none
	"use-file": 'r', "vrrp": 0, "check": 0, "no_bfd": 0, "all": 0, "log-console": 0, "log-detail": 0,
	"log-facility": 'r', "log-file": 'o', "all-config": 0, "flush-log-file": 0, "no-syslog": 0, "umask": 'r',
	"release-vips": 0, "dont-release-vrrp": 0, "dont-release-ipvs": 0, "dont-respawn": 0, "dont-fork": 0,
	"dump-conf": 0, "pid": 'r', "vrrp_pid": 'r', "genhash": 0, "checkers_pid": 'r', "address-monitoring": 0,
	"bfd_pid": 'r', "snmp": 0, "snmp-agent-socket": 'r', "core-dump": 0, "core-dump-pattern": 'o',
	"no-mem-check": 0, "mem-check-log": 0, "namespace": 'r', "config-id": 'r', "signum": 'r',
	"config-test": 'o', "config-fd": 'r', "perf": 'o', "debug": 'o', "version": 0, "help": 0,
}

// longOption resolves a long option name as getopt_long does: an exact
// name, else a prefix of exactly one name. ok is false for unknown or
// ambiguous names.
func longOption(name string) (full string, ok bool) {
	if _, ok := longOptions[name]; ok {
		return name, true
	}
	for n := range longOptions {
		if strings.HasPrefix(n, name) {
			if full != "" {
				return "", false
			}
			full = n
		}
	}
	return full, full != ""
}

// ParseKeepalivedArgs reads keepalived's command line (without argv[0])
// as keepalived 2.2.7's getopt_long does, for the configuration file
// (-f/--use-file) and network namespace (-s/--namespace): grouped short
// options ("-nlf FILE"), attached values ("-fFILE", "--use-file=FILE"),
// long-option prefixes ("--use FILE") and the values of other options,
// which are skipped. A value missing at the end, or empty, is an error
// naming the argument (keepalived refuses to start).
func ParseKeepalivedArgs(args []string) (KeepalivedArgs, error) {
	ka := KeepalivedArgs{Config: DefaultKeepalivedConfig}
	set := func(opt, val string) {
		switch opt {
		case "f", "use-file":
			ka.Config = val
		case "s", "namespace":
			ka.Namespace = val
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return ka, nil
		case strings.HasPrefix(a, "--"):
			name, val, attached := strings.Cut(a[2:], "=")
			full, ok := longOption(name)
			if !ok {
				continue
			}
			if longOptions[full] == 'r' && !attached {
				if i+1 >= len(args) {
					return ka, fmt.Errorf("keepalived argument %d (%q): missing value", i+1, a)
				}
				i++
				val = args[i]
			}
			if longOptions[full] == 'r' && val == "" {
				return ka, fmt.Errorf("keepalived argument %d (%q): empty value", i+1, a)
			}
			if longOptions[full] != 0 {
				set(full, val)
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				c := a[j]
				if strings.IndexByte(shortOptional, c) >= 0 {
					break // the rest of the argument is its value
				}
				if strings.IndexByte(shortRequired, c) < 0 {
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return ka, fmt.Errorf("keepalived argument %d (%q): missing value for -%c", i+1, a, c)
					}
					i++
					val = args[i]
				}
				if val == "" {
					return ka, fmt.Errorf("keepalived argument %d (%q): empty value for -%c", i+1, a, c)
				}
				set(string(c), val)
				break
			}
		}
	}
	return ka, nil
}

// Keepalived lists the keepalived processes running on the host (in any
// network namespace: check SameNetns), reading procDir (normally /proc).
func Keepalived(procDir string) ([]KeepalivedProcess, error) {
	d, err := os.Open(procDir)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1) // lighter than ReadDir: names only, unsorted
	d.Close()
	if err != nil {
		return nil, err
	}
	selfNS, selfErr := os.Readlink(filepath.Join(procDir, "thread-self", "ns", "net"))
	if selfErr != nil {
		selfNS, selfErr = os.Readlink(filepath.Join(procDir, "self", "ns", "net"))
	}
	var procs []KeepalivedProcess
	pids := map[int]bool{}
	// The daemon's self-diagnosis scans every window: read the start of
	// each command line into one buffer, and all of it only for keepalived.
	var head [256]byte
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		dir := filepath.Join(procDir, name)
		if n := ReadHead(filepath.Join(dir, "cmdline"), head[:]); n == 0 || !MayBeProgram(head[:n], n < len(head), "keepalived") {
			continue // exited, a kernel thread, or another program
		}
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue // exited meanwhile
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if filepath.Base(args[0]) != "keepalived" {
			continue
		}
		p := KeepalivedProcess{PID: pid, Args: args}
		if ka, err := ParseKeepalivedArgs(args[1:]); err == nil {
			p.Config, p.Namespace = ka.Config, ka.Namespace
		} else {
			p.Config = DefaultKeepalivedConfig
		}
		if stat, err := os.ReadFile(filepath.Join(dir, "stat")); err == nil {
			p.PPID, _ = parsePPID(stat)
		}
		if ns, err := os.Readlink(filepath.Join(dir, "ns", "net")); err == nil && selfErr == nil {
			p.SameNetns, p.SameNetnsKnown = ns == selfNS, true
		}
		procs = append(procs, p)
		pids[pid] = true
	}
	for i := range procs {
		procs[i].Parent = !pids[procs[i].PPID]
	}
	// In the order of the directory's names, as os.ReadDir gave them.
	slices.SortFunc(procs, func(a, b KeepalivedProcess) int {
		return strings.Compare(strconv.Itoa(a.PID), strconv.Itoa(b.PID))
	})
	return procs, nil
}

// ReadHead reads the first bytes of the file at path into buf without
// allocating and returns their number, 0 on any error.
func ReadHead(path string, buf []byte) int {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer syscall.Close(fd)
	n, err := syscall.Read(fd, buf)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// MayBeProgram is a cheap first look at head, the start of a command line
// (full: all of it): false only if argv[0], read whole, cannot name a
// program called name.
func MayBeProgram(head []byte, full bool, name string) bool {
	argv0, _, cut := bytes.Cut(head, []byte{0})
	if !cut && !full {
		return true // argv[0] goes on: undecided
	}
	return bytes.HasSuffix(bytes.TrimRight(argv0, "/"), []byte(name))
}

// parsePPID reads the parent PID from /proc/PID/stat, whose second field
// (the command name in parentheses) may hold spaces and parentheses.
func parsePPID(stat []byte) (int, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return 0, errors.New("stat: too few fields")
	}
	return strconv.Atoi(fields[1])
}
