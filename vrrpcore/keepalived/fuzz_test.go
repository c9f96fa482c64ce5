package keepalived

import (
	"errors"
	"testing"
	"testing/fstest"
	"time"
)

// fuzzFS is what include lines of fuzzed input can reach.
var fuzzFS = fstest.MapFS{
	"vips.inc":       {Data: []byte("198.51.100.7/24\n2001:db8::7\n")},
	"d/10-a.conf":    {Data: []byte("vrrp_script a {\n script \"/bin/true x\"\n weight 5\n}\n")},
	"d/20-b.conf":    {Data: []byte("global_defs {\n router_id b\n vrrp_version 3\n}\n")},
	"d/x.conf":       {Data: []byte("x"), Mode: 0o755},
	"loop.conf":      {Data: []byte("include loop.conf\n")},
	"open.conf":      {Data: []byte("vrrp_instance X {\n")},
	"unbalanced.inc": {Data: []byte("}\n}\n")},
}

// FuzzParse feeds arbitrary bytes to Parse. It must never panic, every
// error and warning must carry a position, and a configuration accepted
// without error must hold only values keepalived would run with.
func FuzzParse(f *testing.F) {
	for _, c := range errorCases {
		f.Add([]byte(c.src))
	}
	for _, c := range warningCases {
		f.Add([]byte(c.src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse("fuzz.conf", src, WithFS(fuzzFS), WithConfigID("n1"),
			WithLimits(Limits{MaxFiles: 64, MaxTotalSize: 1 << 20, MaxDepth: 8}))
		if cfg == nil {
			t.Fatalf("no Config, error %v", err)
		}
		for _, w := range cfg.Warnings {
			if !w.Pos.IsValid() || w.Pos.Col < 1 || w.Msg == "" || w.Kind < WarnUnused || w.Kind > WarnSuspicious {
				t.Errorf("bad warning %+v", w)
			}
		}
		if err != nil {
			var l ErrorList
			if !errors.As(err, &l) || len(l) == 0 {
				t.Fatalf("error %T %v is not an ErrorList", err, err)
			}
			for _, e := range l {
				if !e.Pos.IsValid() || e.Pos.Col < 1 || e.Msg == "" {
					t.Errorf("bad error %+v", e)
				}
			}
			return
		}
		for i := range cfg.Instances {
			checkInstance(t, &cfg.Instances[i])
		}
		cfg.CheckHost(labHost())
	})
}

// checkInstance asserts what an accepted instance must satisfy.
func checkInstance(t *testing.T, in *Instance) {
	t.Helper()
	if in.VRID == 0 || in.Priority == 0 {
		t.Errorf("%s: VRID %d priority %d", in.Name, in.VRID, in.Priority)
	}
	if in.Interface == "" && !in.Unicast() {
		t.Errorf("%s: no interface", in.Name)
	}
	if in.Family != IPv4 && in.Family != IPv6 {
		t.Errorf("%s: family %v", in.Name, in.Family)
	}
	switch in.Version {
	case 2:
		if in.AdvertInt < time.Second || in.AdvertInt > 255*time.Second || in.AdvertInt%time.Second != 0 {
			t.Errorf("%s: VRRPv2 advert_int %v", in.Name, in.AdvertInt)
		}
	case 3:
		if in.AdvertInt < 10*time.Millisecond || in.AdvertInt > v3MaxAdvert || in.AdvertInt%(10*time.Millisecond) != 0 {
			t.Errorf("%s: VRRPv3 advert_int %v", in.Name, in.AdvertInt)
		}
		if in.Auth.Type != AuthNone {
			t.Errorf("%s: VRRPv3 with authentication", in.Name)
		}
	default:
		t.Errorf("%s: version %d", in.Name, in.Version)
	}
	if len(in.Auth.Pass) > 8 {
		t.Errorf("%s: auth_pass %q", in.Name, in.Auth.Pass)
	}
	if in.State == StateMaster && (in.Nopreempt || in.PreemptDelay != 0) {
		t.Errorf("%s: MASTER with nopreempt %v, preempt_delay %v", in.Name, in.Nopreempt, in.PreemptDelay)
	}
	if in.PreemptDelay < 0 || in.PreemptDelay > 1000*time.Second {
		t.Errorf("%s: preempt_delay %v", in.Name, in.PreemptDelay)
	}
	for _, v := range in.VIPs {
		if familyOf(v.Addr()) != in.Family || !v.Pos.IsValid() {
			t.Errorf("%s: VIP %v in a %v instance", in.Name, v.Prefix, in.Family)
		}
	}
	for _, p := range in.UnicastPeers {
		if familyOf(p.Addr) != in.Family || p.MinTTL > p.MaxTTL {
			t.Errorf("%s: peer %+v in a %v instance", in.Name, p, in.Family)
		}
	}
	if in.SrcIP.IsValid() && familyOf(in.SrcIP) != in.Family {
		t.Errorf("%s: source %v in a %v instance", in.Name, in.SrcIP, in.Family)
	}
	if !in.McastGroup.IsMulticast() || familyOf(in.McastGroup) != in.Family {
		t.Errorf("%s: group %v", in.Name, in.McastGroup)
	}
	for k, p := range in.Set {
		if !p.IsValid() {
			t.Errorf("%s: %s set at %v", in.Name, k, p)
		}
	}
}
