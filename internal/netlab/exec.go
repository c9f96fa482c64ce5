package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// CmdError is a command that could not run or exited unsuccessfully.
type CmdError struct {
	Host     string   // logical host name, "" for commands outside any host
	Args     []string // the command as given (without the ip netns exec wrapper)
	ExitCode int      // -1 when the command did not run to an exit status
	Stderr   string
	Err      error
}

func (e *CmdError) Error() string {
	where := ""
	if e.Host != "" {
		where = " on " + e.Host
	}
	msg := fmt.Sprintf("netlab: %s%s: %v", strings.Join(e.Args, " "), where, e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *CmdError) Unwrap() error { return e.Err }

// run runs a short command, in host h's namespace when h is not nil, with the
// lab's command timeout, and returns its standard output.
func (l *Lab) run(h *Host, name string, args ...string) (string, error) {
	return l.runInput(h, nil, name, args...)
}

// runInput is run with stdin.
func (l *Lab) runInput(h *Host, stdin io.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	return l.runContext(ctx, h, stdin, name, args...)
}

func (l *Lab) runContext(ctx context.Context, h *Host, stdin io.Reader, name string, args ...string) (string, error) {
	cmd := l.command(ctx, h, name, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		ce := &CmdError{Args: append([]string{name}, args...), ExitCode: -1, Stderr: stderr.String(), Err: err}
		if h != nil {
			ce.Host = h.name
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ce.ExitCode = ee.ExitCode()
		}
		if ctx.Err() != nil {
			ce.Err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return stdout.String(), ce
	}
	return stdout.String(), nil
}

// command builds the exec.Cmd for name in h's namespace (or outside any
// namespace when h is nil) and logs it. A nil ctx gives a command without
// deadline, for background processes.
func (l *Lab) command(ctx context.Context, h *Host, name string, args ...string) *exec.Cmd {
	argv := append([]string{name}, args...)
	if h != nil {
		argv = append([]string{"ip", "netns", "exec", h.ns}, argv...)
		l.logf("[%s] %s", h.name, shellQuote(argv[4:]))
	} else {
		l.logf("%s", shellQuote(argv))
	}
	if ctx == nil {
		return exec.Command(argv[0], argv[1:]...)
	}
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// shellQuote renders argv for logs so that it can be pasted into a shell.
func shellQuote(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@+%", r))
		}) < 0 {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}
