package netlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ErrExited is returned by Process.Signal and Process.Stop when the process
// had already exited before the signal was sent.
var ErrExited = errors.New("process already exited")

// Process is a background program the lab started in a host. Its standard
// output and standard error go to LogPath. The lab stops it on Close.
type Process struct {
	Host    *Host
	Args    []string // the command as given
	LogPath string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// Start starts name in the host in the background, with output to a log file
// in the lab directory. The process receives SIGTERM if the lab's process dies
// first (Pdeathsig), and runs in its own process group so that a terminal's
// Ctrl-C reaches only the lab's owner, which then cleans up in order.
func (h *Host) Start(name string, args ...string) (*Process, error) {
	return h.start(h.logPath(name), name, args...)
}

// logPath names a new log file for a program in the lab directory.
func (h *Host) logPath(name string) string {
	return h.lab.Path(fmt.Sprintf("%s-%s-%d.log", h.name, filepath.Base(name), h.lab.nextSeq()))
}

func (h *Host) start(logPath, name string, args ...string) (*Process, error) {
	l := h.lab
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil, errors.New("netlab: lab is closed")
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	defer logf.Close()
	cmd := l.command(nil, h, name, args...) // no context: stopped by PID
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, &CmdError{Host: h.name, Args: append([]string{name}, args...), ExitCode: -1, Err: err}
	}
	p := &Process{Host: h, Args: append([]string{name}, args...), LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

// PID is the process ID (of the program itself: `ip netns exec` execs it).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr is the process's exit error (nil for status 0); valid once Exited.
func (p *Process) ExitErr() error {
	<-p.done
	return p.waitErr
}

// Signal sends sig to the process; ErrExited if it has already exited.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return ErrExited
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return ErrExited
		}
		return fmt.Errorf("netlab: signal %v to %s (pid %d): %w", sig, p.Args[0], p.PID(), err)
	}
	return nil
}

// Wait waits up to timeout for the process to exit and returns its exit error.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("netlab: %s (pid %d) on %s still running after %v", p.Args[0], p.PID(), p.Host.name, timeout)
	}
}

// Stop sends SIGTERM, waits up to grace for the exit, then SIGKILL. It returns
// nil when the process ended on the lab's signal or with status 0, ErrExited
// when it had exited on its own before Stop (see ExitErr for how).
func (p *Process) Stop(grace time.Duration) error {
	return p.stopWith(syscall.SIGTERM, grace)
}

func (p *Process) stopWith(sig syscall.Signal, grace time.Duration) error {
	if p.Exited() {
		return ErrExited
	}
	if err := p.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.endedBySignal()
	case <-time.After(grace):
	}
	_ = p.Signal(syscall.SIGKILL)
	if err := p.Wait(grace); err != nil && !p.Exited() {
		return err
	}
	return fmt.Errorf("netlab: %s (pid %d) on %s ignored %v for %v and was killed", p.Args[0], p.PID(), p.Host.name, sig, grace)
}

// endedBySignal accepts an exit caused by the stop signal or a clean exit.
func (p *Process) endedBySignal() error {
	err := p.waitErr
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return nil
		}
	}
	return fmt.Errorf("netlab: %s (pid %d) on %s: %w", p.Args[0], p.PID(), p.Host.name, err)
}

// Log returns everything the process has written so far.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	return string(b)
}

// WaitLog waits up to timeout until the process's output contains substr. It
// fails early, with the output, if the process exits first.
func (p *Process) WaitLog(timeout time.Duration, substr string) error {
	err := WaitFor(timeout, func() (bool, error) {
		if strings.Contains(p.Log(), substr) {
			return true, nil
		}
		if p.Exited() {
			return false, fmt.Errorf("exited (%v) before printing %q", p.waitErr, substr)
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("netlab: %s on %s: %w; output:\n%s", p.Args[0], p.Host.name, err, tail(p.Log(), 40))
	}
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
