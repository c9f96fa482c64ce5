package netlabtest

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Fatal and Skip instead of stopping.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatal(args ...any)     { r.fatal = fmt.Sprint(args...) }
func (r *recorder) Skip(args ...any)      { r.skip = fmt.Sprint(args...) }
func (r *recorder) Fatalf(string, ...any) { panic("unexpected Fatalf") }

func TestRequireMissingProgram(t *testing.T) {
	Packages["vrrpdoctor-no-such-tool"] = "vrrpdoctor-fake-pkg"
	defer delete(Packages, "vrrpdoctor-no-such-tool")
	progs := []string{"vrrpdoctor-no-such-tool", "vrrpdoctor-unmapped-tool", "sh"}

	t.Setenv("CI", "true")
	r := &recorder{}
	Require(r, progs...)
	if r.skip != "" || !strings.Contains(r.fatal, "vrrpdoctor-no-such-tool not found: apt-get install vrrpdoctor-fake-pkg") ||
		!strings.Contains(r.fatal, "vrrpdoctor-unmapped-tool not found on PATH") || strings.Contains(r.fatal, "sh not found") {
		t.Errorf("CI=true: fatal %q, skip %q", r.fatal, r.skip)
	}

	t.Setenv("CI", "")
	r = &recorder{}
	Require(r, progs...)
	if r.fatal != "" || !strings.Contains(r.skip, "apt-get install vrrpdoctor-fake-pkg") || !strings.Contains(r.skip, "CI=true") {
		t.Errorf("CI unset: fatal %q, skip %q", r.fatal, r.skip)
	}

	r = &recorder{}
	Require(r, "sh")
	if os.Geteuid() == 0 && (r.fatal != "" || r.skip != "") {
		t.Errorf("present program as root: fatal %q, skip %q", r.fatal, r.skip)
	}
	if os.Geteuid() != 0 && !strings.Contains(r.skip, "needs root") {
		t.Errorf("not root: skip %q", r.skip)
	}
}
