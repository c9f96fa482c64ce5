package check

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vrrpdoctor/vrrpdoctor/capture/hostfacts"
)

// daemons lists the VRRP daemons that run in the caller's network namespace:
// keepalived (its parent process, which names the configuration) and
// `vrrpdoctor run`.
func daemons(procDir string) ([]Process, []string) {
	var ps []Process
	var problems []string
	kas, err := hostfacts.Keepalived(procDir)
	if err != nil {
		problems = append(problems, "keepalived processes: "+err.Error())
	}
	for _, k := range kas {
		if k.Parent && (k.SameNetns || !k.SameNetnsKnown) && k.Namespace == "" {
			ps = append(ps, Process{PID: k.PID, Kind: "keepalived", Config: k.Config, nsUnknown: !k.SameNetnsKnown})
		}
	}
	runs, err := runProcesses(procDir)
	if err != nil {
		problems = append(problems, "vrrpdoctor run processes: "+err.Error())
	}
	ps = append(ps, runs...)
	slices.SortFunc(ps, func(a, b Process) int { return a.PID - b.PID })
	return ps, problems
}

// runProcesses lists the `vrrpdoctor run` processes in the caller's network
// namespace, with the configuration each reads (-c/--config, default
// DefaultConfig).
func runProcesses(procDir string) ([]Process, error) {
	self, err := os.Readlink(filepath.Join(procDir, "thread-self", "ns", "net"))
	if err != nil {
		return nil, err
	}
	d, err := os.Open(procDir)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1) // lighter than ReadDir: names only, unsorted
	d.Close()
	if err != nil {
		return nil, err
	}
	var ps []Process
	// A watch beside keepalived scans every minute: the start of each
	// command line is read into one buffer, all of it only for vrrpdoctor.
	var head [256]byte
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		cmdline := filepath.Join(procDir, name, "cmdline")
		if n := hostfacts.ReadHead(cmdline, head[:]); n == 0 || !hostfacts.MayBeProgram(head[:n], n < len(head), "vrrpdoctor") {
			continue // exited, a kernel thread, or another program
		}
		b, err := os.ReadFile(cmdline)
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		cfg, ok := parseRunArgs(args)
		if !ok {
			continue
		}
		ns, err := os.Readlink(filepath.Join(procDir, name, "ns", "net"))
		if err != nil || ns != self {
			continue
		}
		ps = append(ps, Process{PID: pid, Kind: "vrrpdoctor-run", Config: cfg})
	}
	return ps, nil // in no order: daemons sorts them
}

// parseRunArgs recognises a `vrrpdoctor run` command line and returns the
// configuration it reads.
func parseRunArgs(args []string) (config string, ok bool) {
	if len(args) < 2 || filepath.Base(args[0]) != "vrrpdoctor" {
		return "", false
	}
	config = DefaultConfig
	verb := ""
	checkOnly := false
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-t" || a == "--check-config":
			checkOnly = true
		case a == "-c" || a == "--config":
			if i+1 < len(args) {
				config = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--config="):
			config = strings.TrimPrefix(a, "--config=")
		case strings.HasPrefix(a, "-c") && !strings.HasPrefix(a, "--"):
			config = strings.TrimPrefix(a, "-c")
		case a == "--":
			if verb == "" && i+1 < len(args) {
				verb = args[i+1]
			}
			i = len(args)
		case !strings.HasPrefix(a, "-") && verb == "":
			verb = a
		}
	}
	return config, verb == "run" && !checkOnly
}
