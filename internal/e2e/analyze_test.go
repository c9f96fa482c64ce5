// Package e2e drives the vrrpdoctor binary against real keepalived pairs in
// lab network namespaces (internal/netlab). The tests need root and the lab's
// programs; without them they skip, or fail when CI=true.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab/netlabtest"
)

var (
	binDir   string
	buildErr error
	binPath  string
	build    sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// vrrpdoctor builds the binary once per test run (static, CGO_ENABLED=0)
// and returns its path.
func vrrpdoctor(t *testing.T) string {
	t.Helper()
	build.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "vrrpdoctor-e2e-")
		if buildErr != nil {
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		binPath = filepath.Join(binDir, "vrrpdoctor")
		cmd := exec.Command(goBin, "build", "-o", binPath, "github.com/vrrpdoctor/vrrpdoctor/cmd/vrrpdoctor")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/vrrpdoctor: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// analyzeReport is the part of `vrrpdoctor analyze --json` (docs/json.md)
// these tests read.
type analyzeReport struct {
	Groups []struct {
		VRID    int `json:"vrid"`
		Version int `json:"version"`
		Sources []struct {
			Address  string   `json:"address"`
			Packets  int      `json:"packets"`
			Priority int      `json:"priority"`
			VIPs     []string `json:"vips"`
		} `json:"sources"`
	} `json:"groups"`
	Findings []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
	} `json:"findings"`
}

// analyze runs `vrrpdoctor analyze --json file`. The exit status may report
// findings; what counts is a JSON report on stdout.
func analyze(t *testing.T, file string) (analyzeReport, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(vrrpdoctor(t), "analyze", "--json", file)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		t.Fatalf("vrrpdoctor analyze: %v", runErr)
	}
	var r analyzeReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("vrrpdoctor analyze --json %s (%v): output is not a JSON report: %v\nstdout:\n%s\nstderr:\n%s", file, runErr, err, stdout.String(), stderr.String())
	}
	return r, stdout.String()
}

var (
	addrA = netip.MustParseAddr("198.51.100.1")
	addrB = netip.MustParseAddr("198.51.100.2")
	vip   = netip.MustParseAddr("198.51.100.100")
)

// TestAnalyzeLabSplitBrain: keepalived pairs, captured with tcpdump on the
// backup, analysed by the binary. With the backup's INPUT chain dropping
// 224.0.0.18, both nodes hold the VIP and analyze must report split-brain;
// without the drop exactly one holds it and analyze must not.
func TestAnalyzeLabSplitBrain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		version   int
		advertInt time.Duration
		drop      bool
	}{
		{"v2/input-drop", 2, time.Second, true},
		{"v2/healthy", 2, time.Second, false},
		{"v3-250ms/input-drop", 3, 250 * time.Millisecond, true},
		{"v3-250ms/healthy", 3, 250 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			lab := netlabtest.New(t, "keepalived", "tcpdump", "iptables")
			vrrpdoctor(t)
			a, b, err := lab.Pair()
			if err != nil {
				t.Fatal(err)
			}
			if tc.drop {
				if _, err := b.Iptables("-A", "INPUT", "-d", "224.0.0.18", "-j", "DROP"); err != nil {
					t.Fatal(err)
				}
			}
			for i, h := range []*netlab.Host{a, b} {
				in := netlab.VRRPInstance{
					Interface: "eth0", VRID: 51, Version: tc.version, Priority: 150 - 50*i,
					AdvertInt: tc.advertInt, VIPs: []string{vip.String() + "/24"},
				}
				if _, err := h.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: h.Name(), Instances: []netlab.VRRPInstance{in}}); err != nil {
					t.Fatal(err)
				}
			}

			wantHolders := []*netlab.Host{a}
			wantSources := []netip.Addr{addrA}
			if tc.drop {
				wantHolders = []*netlab.Host{a, b}
				wantSources = []netip.Addr{addrA, addrB}
			}
			var holders []*netlab.Host
			if err := netlab.WaitFor(6*tc.advertInt+5*time.Second, func() (bool, error) {
				holders, err = lab.Holders(vip)
				return slices.Equal(holders, wantHolders), err
			}); err != nil {
				t.Fatalf("VIP holders %s, want %s: %v", netlab.HostNames(holders), netlab.HostNames(wantHolders), err)
			}
			converged := time.Since(start)

			capture, err := b.StartCapture(netlab.CaptureOptions{Interface: "eth0", Filter: "vrrp"})
			if err != nil {
				t.Fatal(err)
			}
			var counts map[netip.Addr]int
			if err := netlab.WaitFor(10*tc.advertInt+5*time.Second, func() (bool, error) {
				counts, err = countAdverts(capture.File)
				for _, s := range wantSources {
					if counts[s] < 4 {
						return false, err
					}
				}
				return true, err
			}); err != nil {
				t.Fatalf("capture on b: adverts per source %v, want 4 from each of %v: %v", counts, wantSources, err)
			}
			if err := capture.Stop(); err != nil {
				t.Fatal(err)
			}
			// The VIP holders are still what the scenario says.
			if holders, err = lab.Holders(vip); err != nil || !slices.Equal(holders, wantHolders) {
				t.Fatalf("after the capture, VIP holders %s (%v), want %s", netlab.HostNames(holders), err, netlab.HostNames(wantHolders))
			}

			r, raw := analyze(t, capture.File)
			checkReport(t, r, tc.version, tc.drop)
			if t.Failed() {
				t.Logf("analyze --json:\n%s", raw)
			}
			t.Logf("converged in %v, total %v", converged.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
}

// checkReport checks the analysis of a capture of VRID 51 on b.
func checkReport(t *testing.T, r analyzeReport, version int, splitBrain bool) {
	t.Helper()
	var ids []string
	for _, f := range r.Findings {
		ids = append(ids, f.ID)
	}
	if got := slices.Contains(ids, "split-brain"); got != splitBrain {
		t.Errorf("findings %v: split-brain reported = %v, want %v", ids, got, splitBrain)
	}
	if len(r.Groups) != 1 {
		t.Fatalf("%d groups, want 1 (VRID 51)", len(r.Groups))
	}
	g := r.Groups[0]
	if g.VRID != 51 || g.Version != version {
		t.Errorf("group VRID %d version %d, want 51 version %d", g.VRID, g.Version, version)
	}
	want := map[string]int{addrA.String(): 150}
	if splitBrain {
		want[addrB.String()] = 100
	}
	if len(g.Sources) != len(want) {
		t.Errorf("%d sources, want %d (%v)", len(g.Sources), len(want), want)
	}
	for _, s := range g.Sources {
		prio, ok := want[s.Address]
		if !ok {
			t.Errorf("unexpected source %s", s.Address)
			continue
		}
		if s.Priority != prio || s.Packets < 4 || !slices.Equal(s.VIPs, []string{vip.String()}) {
			t.Errorf("source %s: priority %d, %d packets, VIPs %v; want priority %d, >= 4 packets, VIPs [%v]", s.Address, s.Priority, s.Packets, s.VIPs, prio, vip)
		}
	}
}

// countAdverts counts IPv4 VRRP packets per source in a pcap file that
// tcpdump may still be writing (a partial last record ends the count).
func countAdverts(file string) (map[netip.Addr]int, error) {
	counts := map[netip.Addr]int{}
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return counts, nil
		}
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "EOF") {
			return counts, nil // header not written yet
		}
		return nil, err
	}
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			return counts, nil
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		if ip, ok := p.NetworkLayer().(*layers.IPv4); ok && ip.Protocol == 112 {
			if a, ok := netip.AddrFromSlice(ip.SrcIP); ok {
				counts[a.Unmap()]++
			}
		}
	}
}
