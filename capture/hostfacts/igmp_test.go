package hostfacts

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestParseIGMP(t *testing.T) {
	b, err := os.ReadFile("testdata/igmp")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := ParseIGMP(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []Membership{
		{1, "lo", netip.MustParseAddr("224.0.0.1"), 1},
		{3, "eth0", netip.MustParseAddr("224.0.0.18"), 1},
		{3, "eth0", netip.MustParseAddr("224.0.0.1"), 1},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %+v", ms)
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Errorf("membership %d: %+v, want %+v", i, ms[i], want[i])
		}
	}
}

func TestParseIGMP6(t *testing.T) {
	b, err := os.ReadFile("testdata/igmp6")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := ParseIGMP6(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 8 {
		t.Fatalf("%d memberships: %+v", len(ms), ms)
	}
	if m := ms[4]; m != (Membership{3, "eth0", netip.MustParseAddr("ff02::12"), 1}) {
		t.Errorf("membership 4: %+v", m)
	}
	if m := ms[5]; m.Group != netip.MustParseAddr("ff02::1:ff00:1") {
		t.Errorf("solicited-node group %v", m.Group)
	}
}

func TestParseIGMPErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		v6             bool
	}{
		{"header", "Bogus\n", "igmp line 1: header", false},
		{"group first", "Idx\tDevice\n\t\t\t\t120000E0     1 0:0\t\t0\n", "igmp line 2: group before any interface", false},
		{"bad group", "Idx\n3\teth0 : 2 V3\n\t\t120000E     1 0:0\n", "igmp line 3: group \"120000E\" is not 8 hex digits", false},
		{"bad users", "Idx\n3\teth0 : 2 V3\n\t\t120000E0     x 0:0\n", "igmp line 3: users \"x\"", false},
		{"bad index", "Idx\nx\teth0 : 2 V3\n", "igmp line 2: interface index \"x\"", false},
		{"v6 short", "3 eth0 ff02\n", "igmp6 line 1: 3 fields", true},
		{"v6 group", "3 eth0 ff020000000000000000000000000g12 1 4 0\n", "igmp6 line 1: group", true},
		{"v6 users", "3 eth0 ff020000000000000000000000000012 -1 4 0\n", "igmp6 line 1: users \"-1\"", true},
	} {
		var err error
		if tc.v6 {
			_, err = ParseIGMP6([]byte(tc.in))
		} else {
			_, err = ParseIGMP([]byte(tc.in))
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q...", tc.name, err, tc.want)
		}
	}
}

func FuzzParseIGMP(f *testing.F) {
	if b, err := os.ReadFile("testdata/igmp"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := ParseIGMP(b)
		if err != nil && ms != nil {
			t.Fatal("memberships with an error")
		}
		for _, m := range ms {
			if !m.Group.Is4() || m.Users < 0 || m.Ifindex < 0 {
				t.Fatalf("bad membership %+v", m)
			}
		}
	})
}

func FuzzParseIGMP6(f *testing.F) {
	if b, err := os.ReadFile("testdata/igmp6"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := ParseIGMP6(b)
		if err != nil && ms != nil {
			t.Fatal("memberships with an error")
		}
		for _, m := range ms {
			if !m.Group.Is6() || m.Users < 0 || m.Ifindex < 0 {
				t.Fatalf("bad membership %+v", m)
			}
		}
	})
}
