// Package release checks the release configuration: goreleaser builds the
// binaries, archives and deb/rpm packages from a clone of the repository, and
// the test looks inside what it made.
package release

import (
	"debug/elf"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// target is one platform of the release and its names in each format.
type target struct {
	goarch, goarm string
	machine       elf.Machine
	class         elf.Class
	debArch       string
	rpmArch       string
}

var targets = []target{
	{"amd64", "", elf.EM_X86_64, elf.ELFCLASS64, "amd64", "x86_64"},
	{"arm64", "", elf.EM_AARCH64, elf.ELFCLASS64, "arm64", "aarch64"},
	{"arm", "7", elf.EM_ARM, elf.ELFCLASS32, "armhf", "armv7hl"},
}

// staticErr checks the binary is for tg and statically linked: no program
// interpreter, no dynamic section.
func staticErr(path string, tg target) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Machine != tg.machine || f.Class != tg.class || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		return fmt.Errorf("%s: %v %v %v, want %v %v for linux", path, f.Machine, f.Class, f.OSABI, tg.machine, tg.class)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s: has %v: not a static binary", path, p.Type)
		}
	}
	return nil
}

// TestStaticErrRejectsDynamicBinary makes sure the static check can fail:
// the system's ls is dynamically linked against libc.
func TestStaticErrRejectsDynamicBinary(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the amd64 target is compared against this machine's ls")
	}
	const ls = "/bin/ls"
	if _, err := os.Stat(ls); err != nil {
		t.Skipf("%s: %v", ls, err)
	}
	err := staticErr(ls, targets[0])
	if err == nil || !strings.Contains(err.Error(), "not a static binary") {
		t.Fatalf("staticErr(%s) = %v, want a not-static error", ls, err)
	}
	if err := staticErr(ls, targets[1]); err == nil || !strings.Contains(err.Error(), "want EM_AARCH64") {
		t.Fatalf("staticErr(%s, arm64) = %v, want an architecture error", ls, err)
	}
}
