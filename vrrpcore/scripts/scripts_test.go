package scripts

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeScript writes an executable shell script owned by the caller.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		msg := "needs root (run the tests as root)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func prepare(t *testing.T, spec Spec) *Command {
	t.Helper()
	c, _, err := Prepare(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRunExitStatus(t *testing.T) {
	dir := t.TempDir()
	ok := prepare(t, Spec{Argv: []string{writeScript(t, dir, "ok", "exit 0")}})
	if r := ok.Run(context.Background(), 5*time.Second); !r.OK() || r.ExitCode != 0 {
		t.Errorf("exit 0: %+v", r)
	}
	bad := prepare(t, Spec{Argv: []string{writeScript(t, dir, "bad", "echo broken >&2; exit 3")}})
	r := bad.Run(context.Background(), 5*time.Second)
	if r.OK() || r.ExitCode != 3 || r.TimedOut {
		t.Errorf("exit 3: %+v", r)
	}
	if strings.TrimSpace(r.Stderr) != "broken" {
		t.Errorf("stderr %q, want %q", r.Stderr, "broken")
	}
}

// TestNoShell checks that arguments reach the program exactly as given:
// nothing is interpreted by a shell.
func TestNoShell(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "args")
	s := writeScript(t, dir, "args", `for a in "$@"; do printf '%s\n' "$a"; done > `+out)
	args := []string{"a b", "; touch " + filepath.Join(dir, "pwned"), "$HOME", "`id`"}
	c := prepare(t, Spec{Argv: append([]string{s}, args[:2]...)})
	if r := c.Run(context.Background(), 5*time.Second, args[2:]...); !r.OK() {
		t.Fatal(r.Err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(args, "\n") + "\n"; string(got) != want {
		t.Errorf("arguments seen by the script:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("an argument was run by a shell")
	}
}

func TestEnvironmentCleaned(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	t.Setenv("LD_PRELOAD", "/nonexistent.so")
	t.Setenv("IFS", ":")
	t.Setenv("VRRPDOCTOR_KEPT", "yes")
	c := prepare(t, Spec{Argv: []string{writeScript(t, dir, "env", "env > "+out)}})
	if r := c.Run(context.Background(), 5*time.Second); !r.OK() {
		t.Fatal(r.Err)
	}
	env, _ := os.ReadFile(out)
	for _, l := range strings.Split(string(env), "\n") {
		if strings.HasPrefix(l, "LD_PRELOAD=") || strings.HasPrefix(l, "IFS=") {
			t.Errorf("script saw %s", l)
		}
	}
	if !strings.Contains(string(env), "VRRPDOCTOR_KEPT=yes") {
		t.Error("ordinary environment not passed on")
	}
}

// TestTimeoutKillsGroup checks that a script that outlives its timeout is
// killed with everything it started.
func TestTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	c := prepare(t, Spec{Argv: []string{writeScript(t, dir, "hang", "sleep 30 & echo $! > "+pidFile+"; sleep 30")}})
	start := time.Now()
	r := c.Run(context.Background(), 300*time.Millisecond)
	if !r.TimedOut || r.OK() {
		t.Fatalf("result %+v, want timed out", r)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run returned after %v", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the script's child %d survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func TestRunAsUser(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(outDir, 0o777)
	out := filepath.Join(outDir, "id")
	c := prepare(t, Spec{Argv: []string{writeScript(t, dir, "id", "id -u > "+out+"; id -g >> "+out)}, User: "nobody"})
	if c.User != "nobody" || c.UID == 0 {
		t.Fatalf("resolved user %s uid %d", c.User, c.UID)
	}
	if r := c.Run(context.Background(), 5*time.Second); !r.OK() {
		t.Fatal(r.Err, r.Stderr)
	}
	got, _ := os.ReadFile(out)
	want := strconv.Itoa(int(c.UID)) + "\n" + strconv.Itoa(int(c.GID)) + "\n"
	if string(got) != want {
		t.Errorf("script ran as %q, want %q", got, want)
	}
}

func TestSecurity(t *testing.T) {
	needRoot(t)
	nobody := 65534
	cases := []struct {
		name    string
		setup   func(dir, script string) error
		unsafe  string // substring of the reason, "" when secure
		runUser string
	}{
		{name: "root owned, 0755", setup: func(string, string) error { return nil }},
		{name: "world writable script", setup: func(_, s string) error { return os.Chmod(s, 0o757) }, unsafe: "writable by everyone"},
		{name: "group writable, non-root group", setup: func(_, s string) error {
			if err := os.Chown(s, 0, nobody); err != nil {
				return err
			}
			return os.Chmod(s, 0o775)
		}, unsafe: "writable by group"},
		{name: "group writable, group root", setup: func(_, s string) error { return os.Chmod(s, 0o775) }},
		{name: "script owned by a user", setup: func(_, s string) error { return os.Chown(s, nobody, 0) }, unsafe: "owned by uid 65534"},
		{name: "directory writable by everyone", setup: func(d, _ string) error { return os.Chmod(d, 0o777) }, unsafe: "writable by everyone"},
		{name: "sticky world-writable directory", setup: func(d, _ string) error { return os.Chmod(d, 0o777|os.ModeSticky) }},
		{name: "run as nobody: not checked", setup: func(_, s string) error { return os.Chmod(s, 0o757) }, runUser: "nobody"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			os.Chmod(base, 0o755)
			dir := filepath.Join(base, "d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			s := writeScript(t, dir, "check", "exit 0")
			if err := tc.setup(dir, s); err != nil {
				t.Fatal(err)
			}
			for _, secure := range []bool{false, true} {
				c, warnings, err := Prepare(Spec{Argv: []string{s}, Secure: secure, User: orRoot(tc.runUser)})
				switch {
				case tc.unsafe == "" && err != nil:
					t.Errorf("secure=%v: %v", secure, err)
				case tc.unsafe == "" && len(warnings) > 0:
					t.Errorf("secure=%v: warnings %q", secure, warnings)
				case tc.unsafe != "" && secure && (err == nil || !strings.Contains(err.Error(), tc.unsafe)):
					t.Errorf("secure: error %v, want one naming %q", err, tc.unsafe)
				case tc.unsafe != "" && !secure && (err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], tc.unsafe)):
					t.Errorf("not secure: error %v, warnings %q, want a warning naming %q", err, warnings, tc.unsafe)
				case err == nil && c.Argv[0] != s:
					t.Errorf("Argv[0] = %s, want %s", c.Argv[0], s)
				}
			}
		})
	}
}

func orRoot(u string) string {
	if u == "" {
		return "root"
	}
	return u
}

func TestPrepareErrors(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{}, "empty script command"},
		{Spec{Argv: []string{filepath.Join(dir, "missing")}}, "no such file"},
		{Spec{Argv: []string{"vrrpdoctor-no-such-program"}}, "not found in PATH"},
		{Spec{Argv: []string{noexec}, User: "root"}, "not executable"},
		{Spec{Argv: []string{dir}, User: "root"}, "not a regular file"},
		{Spec{Argv: []string{"/bin/true"}, User: "vrrpdoctor-no-such-user"}, "script user vrrpdoctor-no-such-user"},
		{Spec{Argv: []string{"/bin/true"}, User: "root", Group: "vrrpdoctor-no-such-group"}, "script group"},
	} {
		_, _, err := Prepare(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Prepare(%+v) = %v, want an error containing %q", tc.spec, err, tc.want)
		}
	}
}

func TestDefaultUser(t *testing.T) {
	if _, err := lookupUser(""); err == nil {
		t.Skipf("user %s exists here", DefaultUser)
	}
	// No script_user and no keepalived_script: the daemon's own user,
	// unless enable_script_security.
	c, _, err := Prepare(Spec{Argv: []string{"/bin/true"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.UID != uint32(os.Getuid()) {
		t.Errorf("uid %d, want the daemon's %d", c.UID, os.Getuid())
	}
	if _, _, err := Prepare(Spec{Argv: []string{"/bin/true"}, Secure: true}); err == nil || !strings.Contains(err.Error(), DefaultUser) {
		t.Errorf("secure without script_user: %v, want an error naming %s", err, DefaultUser)
	}
}

func TestPathSearchWarns(t *testing.T) {
	c, warnings, err := Prepare(Spec{Argv: []string{"true"}, User: strconv.Itoa(os.Getuid())})
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(c.Argv[0]) {
		t.Errorf("Argv[0] = %s, want an absolute path", c.Argv[0])
	}
	if len(warnings) == 0 || !strings.Contains(warnings[0], "PATH") {
		t.Errorf("warnings %q, want one about the PATH search", warnings)
	}
}
