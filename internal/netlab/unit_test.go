package netlab

import (
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStaleOwner(t *testing.T) {
	re := staleRE("vdt")
	dead := func(int) bool { return false }
	alive := func(int) bool { return true }
	for _, tc := range []struct {
		name  string
		alive func(int) bool
		pid   int
		stale bool
	}{
		{"vdt-4242-a1b2c3-a", dead, 4242, true},
		{"vdt-4242-a1b2c3-sw", dead, 4242, true},
		{"vdt-4242-a1b2c3", dead, 4242, true}, // the lab's temporary directory
		{"vdt-4242-a1b2c3-a", alive, 4242, false},
		{"vdt-4242-a1b2c3-A", dead, 0, false},                 // not a name netlab makes
		{"vdtx-4242-a1b2c3-a", dead, 0, false},                // other prefix
		{"xvdt-4242-a1b2c3-a", dead, 0, false},                // other prefix
		{"vdt-4242-a1b2c-a", dead, 0, false},                  // short random part
		{"vdt-4242-a1b2c3-a-b", dead, 0, false},               // extra part
		{"vdt-4242-a1b2c3-abcdefghi", dead, 0, false},         // host name too long
		{"fwexp5208", dead, 0, false},                         // someone else's namespace
		{"vdt--a1b2c3-a", dead, 0, false},                     // no PID
		{"vdt-0-a1b2c3-a", dead, 0, false},                    // PID 0 is never a lab's
		{"vdt-99999999999999999999-a1b2c3-a", dead, 0, false}, // PID overflows int
	} {
		pid, stale := staleOwner(re, tc.name, tc.alive)
		if stale != tc.stale || (tc.stale && pid != tc.pid) {
			t.Errorf("staleOwner(%q) = %d, %v; want %d, %v", tc.name, pid, stale, tc.pid, tc.stale)
		}
	}
}

func TestStaleOwnerNeverOwnPID(t *testing.T) {
	re := staleRE("vdt")
	name := "vdt-" + strconv.Itoa(os.Getpid()) + "-abcdef-a"
	if _, stale := staleOwner(re, name, func(int) bool { return false }); stale {
		t.Errorf("%s: own PID judged stale", name)
	}
}

func TestPIDAlive(t *testing.T) {
	if !pidAlive(os.Getpid()) {
		t.Error("own PID not alive")
	}
	if pidAlive(1 << 30) { // above any pid_max (at most 2^22)
		t.Error("PID 2^30 alive")
	}
}

func TestNewRejectsBadPrefix(t *testing.T) {
	for _, p := range []string{"Vd", "vd-x", "1vd", "abcdefghijklm", "v d"} {
		if _, err := New(Options{Prefix: p}); err == nil {
			t.Errorf("New(Prefix %q) succeeded", p)
		}
	}
}

func TestParseIPAddrJSON(t *testing.T) {
	// Trimmed output of `ip -j addr show` (iproute2 6.1) in a lab host.
	out := `[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295}]},` +
		`{"ifindex":2,"link_index":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"addr_info":[` +
		`{"family":"inet","local":"198.51.100.1","prefixlen":24,"scope":"global","label":"eth0"},` +
		`{"family":"inet","local":"198.51.100.100","prefixlen":24,"scope":"global","secondary":true,"label":"eth0"},` +
		`{"family":"inet6","local":"2001:db8::1","prefixlen":64,"scope":"global","nodad":true},` +
		`{"family":"inet6","local":"fe80::1c2d:3eff:fe4f:5a6b","prefixlen":64,"scope":"link","tentative":true}]}]`
	got, err := parseIPAddrJSON([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []Addr{
		{"lo", netip.MustParsePrefix("127.0.0.1/8"), "host", false},
		{"eth0", netip.MustParsePrefix("198.51.100.1/24"), "global", false},
		{"eth0", netip.MustParsePrefix("198.51.100.100/24"), "global", false},
		{"eth0", netip.MustParsePrefix("2001:db8::1/64"), "global", false},
		{"eth0", netip.MustParsePrefix("fe80::1c2d:3eff:fe4f:5a6b/64"), "link", true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d addresses %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("address %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{`{`, `[{"ifname":"eth0","addr_info":[{"local":"198.51.100.300","prefixlen":24}]}]`, `[{"ifname":"eth0","addr_info":[{"local":"198.51.100.1","prefixlen":33}]}]`} {
		if _, err := parseIPAddrJSON([]byte(bad)); err == nil {
			t.Errorf("parseIPAddrJSON(%s) succeeded", bad)
		}
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	if err := WaitFor(time.Second, func() (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Errorf("WaitFor = %v after %d checks, want nil after 3", err, n)
	}
	start := time.Now()
	err := WaitFor(120*time.Millisecond, func() (bool, error) { return false, nil })
	if err == nil || !strings.Contains(err.Error(), "120ms") {
		t.Errorf("WaitFor timeout error = %v", err)
	}
	if d := time.Since(start); d < 120*time.Millisecond || d > time.Second {
		t.Errorf("WaitFor(120ms) took %v", d)
	}
	boom := errors.New("boom")
	n = 0
	if err := WaitFor(time.Second, func() (bool, error) { n++; return false, boom }); !errors.Is(err, boom) || n != 1 {
		t.Errorf("WaitFor with failing condition = %v after %d checks", err, n)
	}
	n = 0
	if err := WaitFor(0, func() (bool, error) { n++; return true, nil }); err != nil || n != 1 {
		t.Errorf("WaitFor(0) with true condition = %v after %d checks", err, n)
	}
}

func TestShellQuote(t *testing.T) {
	got := shellQuote([]string{"nft", "add rule inet t c ip daddr 224.0.0.18 drop", "it's", "", "-w"})
	want := `nft 'add rule inet t c ip daddr 224.0.0.18 drop' 'it'\''s' '' -w`
	if got != want {
		t.Errorf("shellQuote = %s, want %s", got, want)
	}
}

func TestTail(t *testing.T) {
	if got := tail("a\nb\nc\n", 2); got != "b\nc" {
		t.Errorf("tail = %q", got)
	}
	if got := tail("a\n", 5); got != "a" {
		t.Errorf("tail = %q", got)
	}
}

func TestCmdError(t *testing.T) {
	e := &CmdError{Host: "b", Args: []string{"iptables", "-A", "INPUT"}, ExitCode: 2, Stderr: "iptables: bad rule\n", Err: errors.New("exit status 2")}
	if got, want := e.Error(), "netlab: iptables -A INPUT on b: exit status 2: iptables: bad rule"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
