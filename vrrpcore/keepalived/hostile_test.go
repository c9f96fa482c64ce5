package keepalived

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Hostile configurations (issue 10, item 2): each is read with the default
// limits from the real file system, and must end in bounded time and
// memory with a clear error carrying file:line, or parse — never crash.
func TestHostileConfigs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// 3,000 files one glob matches.
	for i := range 3000 {
		write(fmt.Sprintf("bomb/%04d.conf", i), "\n")
	}
	// Six levels of ten files, each including all ten of the next level:
	// 10^6 reads, no loop.
	for l := range 6 {
		for i := range 10 {
			write(fmt.Sprintf("fan/l%d/f%d.conf", l, i), fmt.Sprintf("include ../l%d/*.conf\n", l+1))
		}
	}
	// A chain of 100 distinct files, each including the next.
	for i := range 100 {
		write(fmt.Sprintf("chain/c%03d.conf", i), fmt.Sprintf("include c%03d.conf\n", i+1))
	}
	write("chain/c100.conf", "\n")
	// a includes b includes a, through a symlinked name.
	write("loop/a.conf", "include b.conf\n")
	write("loop/b.conf", "include alias.conf\n")
	if err := os.Symlink("a.conf", filepath.Join(dir, "loop", "alias.conf")); err != nil {
		t.Fatal(err)
	}
	longToken := strings.Repeat("7", 3<<20)
	for _, tc := range []struct {
		name, main string
		want       string // in the error; "" means it must parse
	}{
		{"glob bomb", "include bomb/*.conf\n", `main.conf:1:1: include bomb/*.conf: pattern "` + dir + `/bomb/*.conf" matches more than 1000 files`},
		{"include fan-out", "include fan/l0/f0.conf\n", "more than 1000 files read in all (include loop or glob bomb?)"},
		{"deep chain", "include chain/c000.conf\n", "chain/c031.conf:1:1: include c032.conf: includes nested more than 32 deep"},
		{"loop through a symlink", "include loop/a.conf\n", "include loop: "},
		{"brace bomb", "include " + strings.Repeat("{a,b}", 11) + ".conf\n", "gives more than 1024 patterns"},
		{"huge token", "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id " + longToken + "\n}\n", "main.conf:3:5: virtual_router_id "},
		{"long line of words", "global_defs {\n    router_id" + strings.Repeat(" w", 1<<20) + "\n}\n", "more than 262144 words and braces in all"},
		{"many words, within the limit", "global_defs {\n    router_id" + strings.Repeat(" w", 100000) + "\n}\n", ""},
		{"deep braces", strings.Repeat("vrrp_sync_group G {\n", 20000), "main.conf:"},
		{"brace line", "global_defs " + strings.Repeat("{ ", 1<<20) + "\n", "main.conf:1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			main := write(strings.ReplaceAll(tc.name, " ", "-")+".conf", tc.main)
			tc.want = strings.ReplaceAll(tc.want, "main.conf:", main+":")
			tc.want = strings.ReplaceAll(tc.want, "chain/", dir+"/chain/")
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := ParseFile(main, WithConfigID("x"))
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %s, %d MiB allocated", tc.name, took.Round(time.Millisecond), alloc>>20)
			if took > 10*time.Second || alloc > 512<<20 {
				t.Errorf("%s: %s and %d MiB: not bounded", tc.name, took, alloc>>20)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %.300s", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %.500v, want one containing %q", err, tc.want)
			}
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					if len(line) > 4096 {
						t.Errorf("an error line of %d bytes: %.200s...", len(line), line)
						break
					}
				}
			}
		})
	}
}
