package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

// TestInteropClassicConfigs runs the classic deployment's keepalived.conf
// files (testdata/keepalived/classic-{master,backup}.conf: VRRPv2, 1 s,
// PASS authentication, global_defs with mail settings) unchanged: vrrpdoctor
// as the master beside keepalived as the backup, then the other way round,
// each time one VIP holder, and a SIGTERM of the master handing over.
func TestInteropClassicConfigs(t *testing.T) {
	t.Parallel()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "keepalived", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	master, backup := read("classic-master.conf"), read("classic-backup.conf")
	vip := netip.MustParseAddr("198.51.100.100")
	for _, vdMaster := range []bool{true, false} {
		name := "vd-master"
		if !vdMaster {
			name = "vd-backup"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lab := netlabtest.New(t, "keepalived")
			vrrpdoctor(t)
			a, b, err := lab.Pair()
			if err != nil {
				t.Fatal(err)
			}
			tl := &timeline{}
			tl.watch(t, a, vip)
			tl.watch(t, b, vip)
			var stopMaster func() error
			var vd interface{ Log() string }
			if vdMaster {
				if _, err := b.StartKeepalived(backup); err != nil {
					t.Fatal(err)
				}
				p := startRun(t, a, lab.Path("classic-master.conf"), master)
				stopMaster, vd = func() error { return p.Signal(syscall.SIGTERM) }, p
			} else {
				k, err := a.StartKeepalived(master)
				if err != nil {
					t.Fatal(err)
				}
				p := startRun(t, b, lab.Path("classic-backup.conf"), backup)
				stopMaster, vd = func() error { return k.Signal(syscall.SIGTERM) }, p
			}
			tl.waitHolder(t, 10*time.Second, "a", "the classic master")
			time.Sleep(3 * time.Second) // three adverts: the backup stays backup
			if got := holdersOf(tl.snapshot()); len(got) != 1 || got[0] != "a" {
				t.Fatalf("VIP held by %v, want [a]\n%s", got, tl.dump())
			}
			if err := stopMaster(); err != nil {
				t.Fatal(err)
			}
			// Priority 0 on SIGTERM: the backup takes over after Skew_Time.
			tl.waitHolder(t, 3*time.Second, "b", "SIGTERM of the classic master")
			for _, l := range strings.Split(vd.Log(), "\n") {
				if strings.Contains(l, "level=ERROR") {
					t.Errorf("vrrpdoctor logged an error: %s", l)
				}
			}
		})
	}
}
