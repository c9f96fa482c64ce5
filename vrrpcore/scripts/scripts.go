// Package scripts runs keepalived's track and notify scripts the way
// keepalived 2.2 does, minus the shell: the command line is the argument
// vector keepalived.conf gives (already split by the config reader) and is
// executed directly, never through /bin/sh.
//
// A script runs as its user (the script's own "user" keyword, else the
// global script_user, else keepalived_script if that user exists, else
// the daemon's own user), in its own process group, with stdin, stdout and
// stderr on /dev/null except for a short capture of its error output, and
// with IFS, LD_PRELOAD and LD_LIBRARY_PATH removed from its environment.
// On timeout the whole process group is killed.
//
// Prepare applies keepalived's script security check: a script that root
// (or group root) runs must not be replaceable by anyone else, so every
// component of its path must be owned by root and must not be writable by a
// non-root group or by everyone (a directory with the sticky bit is allowed
// to be). With enable_script_security such a script is refused; without it,
// Prepare returns a warning and the script runs, as keepalived does.
package scripts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultUser is the user scripts run as when no script_user is configured
// and the user exists (keepalived's default).
const DefaultUser = "keepalived_script"

// Spec says what to run and as whom.
type Spec struct {
	// Argv is the command and its arguments. A command without a slash is
	// searched in PATH, as keepalived does.
	Argv []string
	// User and Group to run as; an empty User means DefaultUser if it
	// exists, else the daemon's own user. Group defaults to the user's
	// primary group.
	User, Group string
	// Secure is keepalived's enable_script_security: refuse scripts that
	// a non-root user could modify, and require User (or DefaultUser) to
	// exist.
	Secure bool
}

// Command is a script checked by Prepare, ready to run any number of times.
type Command struct {
	// Argv is the argument vector run; Argv[0] is the absolute path of the
	// program.
	Argv []string
	// User is the name of the user the script runs as; UID and GID are
	// its identity, Groups its supplementary groups.
	User     string
	UID, GID uint32
	Groups   []uint32
}

// String returns the command line, each argument quoted if it needs it.
func (c *Command) String() string { return quoteArgv(c.Argv) }

// Prepare resolves spec to a Command. It finds the program, resolves the
// user, checks that the user may execute the program, and applies the
// security check described in the package comment. The warnings are about
// scripts that run but that keepalived would flag (an insecure path without
// enable_script_security, a PATH search).
func Prepare(spec Spec) (*Command, []string, error) {
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return nil, nil, errors.New("empty script command")
	}
	var warnings []string
	c := &Command{Argv: append([]string(nil), spec.Argv...)}
	if err := c.setUser(spec); err != nil {
		return nil, nil, err
	}
	prog := spec.Argv[0]
	if !strings.Contains(prog, "/") {
		p, err := exec.LookPath(prog)
		if err != nil {
			return nil, nil, fmt.Errorf("script %s: not found in PATH", prog)
		}
		warnings = append(warnings, fmt.Sprintf("script %s resolved by PATH search to %s; give the full path", prog, p))
		prog = p
	}
	abs, err := filepath.Abs(prog)
	if err != nil {
		return nil, nil, fmt.Errorf("script %s: %w", prog, err)
	}
	c.Argv[0] = abs
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("script %s: %w", prog, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, nil, fmt.Errorf("script %s: %w", prog, err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("script %s: %s is not a regular file", prog, real)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if !executable(sys, c.UID, c.GID) {
		return nil, nil, fmt.Errorf("script %s is not executable by %s (uid %d, gid %d)", prog, c.User, c.UID, c.GID)
	}
	// Root, group root, or a set-uid/set-gid root program: the path must
	// not be writable by anyone but root (keepalived's check_security).
	protect := c.UID == 0 || c.GID == 0 ||
		(sys.Uid == 0 && sys.Mode&syscall.S_IXUSR != 0 && sys.Mode&syscall.S_ISUID != 0) ||
		(sys.Gid == 0 && sys.Mode&syscall.S_IXGRP != 0 && sys.Mode&syscall.S_ISGID != 0)
	if protect {
		paths := []string{abs}
		if real != abs {
			paths = append(paths, real)
		}
		for _, p := range paths {
			if why := insecure(p); why != "" {
				msg := fmt.Sprintf("script %s runs as %s but %s", prog, c.User, why)
				if spec.Secure {
					return nil, nil, fmt.Errorf("%s (refused: enable_script_security)", msg)
				}
				warnings = append(warnings, msg+"; keepalived would refuse it with enable_script_security")
				break
			}
		}
	}
	return c, warnings, nil
}

// setUser resolves the user and group of spec.
func (c *Command) setUser(spec Spec) error {
	name := spec.User
	u, err := lookupUser(name)
	if name == "" {
		switch {
		case err == nil:
		case spec.Secure:
			return fmt.Errorf("no script_user configured and the default user %s does not exist (enable_script_security)", DefaultUser)
		default:
			// The daemon's own identity.
			c.UID, c.GID = uint32(os.Getuid()), uint32(os.Getgid())
			c.User = strconv.Itoa(os.Getuid())
			if cu, err := user.LookupId(c.User); err == nil {
				c.User = cu.Username
			}
			return nil
		}
	} else if err != nil {
		return fmt.Errorf("script user %s: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("script user %s: non-numeric uid %q / gid %q", u.Username, u.Uid, u.Gid)
	}
	c.User, c.UID, c.GID = u.Username, uint32(uid), uint32(gid)
	if spec.Group != "" {
		g, err := user.LookupGroup(spec.Group)
		if err != nil {
			return fmt.Errorf("script group %s: %w", spec.Group, err)
		}
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return fmt.Errorf("script group %s: non-numeric gid %q", spec.Group, g.Gid)
		}
		c.GID = uint32(gid)
	}
	c.Groups = []uint32{c.GID}
	return nil
}

func lookupUser(name string) (*user.User, error) {
	if name == "" {
		name = DefaultUser
	}
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		if u, err := user.LookupId(name); err == nil {
			return u, nil
		}
	}
	return user.Lookup(name)
}

// executable reports whether uid/gid may execute a file (keepalived's
// is_executable, which ignores supplementary groups).
func executable(st *syscall.Stat_t, uid, gid uint32) bool {
	m := st.Mode
	switch {
	case uid == 0:
		return m&(syscall.S_IXUSR|syscall.S_IXGRP|syscall.S_IXOTH) != 0
	case uid == st.Uid:
		return m&syscall.S_IXUSR != 0
	case gid == st.Gid:
		return m&syscall.S_IXGRP != 0
	default:
		return m&syscall.S_IXOTH != 0
	}
}

// insecure walks every component of the absolute path p, without following
// symbolic links, and says why a non-root user could change what runs, or
// "" if none can.
func insecure(p string) string {
	comps := []string{"/"}
	cur := "/"
	for _, part := range strings.Split(strings.TrimPrefix(filepath.Clean(p), "/"), "/") {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		comps = append(comps, cur)
	}
	for _, c := range comps {
		fi, err := os.Lstat(c)
		if err != nil {
			return fmt.Sprintf("%s cannot be checked: %v", c, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 {
			return fmt.Sprintf("%s is owned by uid %d, not root", c, st.Uid)
		}
		dir := fi.Mode().IsDir()
		if (dir && fi.Mode()&fs.ModeSticky == 0) || fi.Mode().IsRegular() {
			if st.Gid != 0 && st.Mode&syscall.S_IWGRP != 0 {
				return fmt.Sprintf("%s is writable by group %d", c, st.Gid)
			}
			if st.Mode&syscall.S_IWOTH != 0 {
				return fmt.Sprintf("%s is writable by everyone", c)
			}
		}
	}
	return ""
}

// Result is the outcome of one run.
type Result struct {
	// ExitCode is the exit status, or -1 if the script did not exit
	// normally (killed by a signal, timed out, or failed to start).
	ExitCode int
	// TimedOut is set when the script was killed at its timeout.
	TimedOut bool
	// Err is set when the script could not be started or did not exit
	// with status 0.
	Err error
	// Stderr holds the start of the script's error output, for logs.
	Stderr   string
	Duration time.Duration
}

// OK reports whether the script exited with status 0.
func (r Result) OK() bool { return r.Err == nil }

// maxStderr bounds the error output kept for logs.
const maxStderr = 512

// Run runs the command with extra arguments appended and waits for it, at
// most timeout (0: no limit other than ctx). On timeout, or when ctx ends,
// the script's whole process group is killed.
func (c *Command) Run(ctx context.Context, timeout time.Duration, extra ...string) Result {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	argv := append(append([]string(nil), c.Argv...), extra...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = scriptEnv()
	cmd.Dir = "/"
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if c.UID != uint32(os.Getuid()) || c.GID != uint32(os.Getgid()) {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: c.Groups}
	}
	cmd.Cancel = func() error {
		// The negative PID signals the script's process group.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	r := Result{ExitCode: -1, Duration: time.Since(start), Stderr: stderr.String()}
	if cmd.ProcessState != nil && cmd.ProcessState.Exited() {
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded && timeout > 0 {
			r.TimedOut = true
			err = fmt.Errorf("timed out after %v", timeout)
		}
		r.Err = err
	}
	return r
}

// scriptEnv is the daemon's environment without the variables keepalived
// removes before running a script.
func scriptEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "IFS", "LD_PRELOAD", "LD_LIBRARY_PATH":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// limitedBuffer keeps the first maxStderr bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxStderr - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
