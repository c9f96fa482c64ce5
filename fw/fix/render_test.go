package fix

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// TestApplyFirewalldText: what --apply prints for a firewalld rich rule:
// the rule quoted as one shell word (not "rich rule rule family=..."), and
// one note on how it went in and that it is permanent.
func TestApplyFirewalldText(t *testing.T) {
	info := &firewalld.Info{Running: true, Version: "1.3.3", Backend: "nftables", DefaultZone: "public"}
	rs := load(t, "firewalld-nft-default")
	plan, err := Make(rs, multicast4(), Options{Firewalld: info})
	if err != nil || len(plan.Rules) != 1 {
		t.Fatalf("plan %+v %v", plan, err)
	}
	after := clone(rs)
	insertFirewalld(after, &plan.Rules[0])
	h := &fakeHost{rulesets: []*ruleset.Ruleset{rs, after}}
	s := h.session()
	s.State = filepath.Join(t.TempDir(), "state.json")
	out, err := s.Apply(context.Background(), plan, false)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := RenderOutcome(&b, "added", out); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	want := `added: firewalld --zone=public rich rule 'rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept' (runtime and permanent)`
	if !strings.Contains(text, want+"\n") || strings.Contains(text, "rich rule rule") {
		t.Errorf("text lacks %q:\n%s", want, text)
	}
	if n := strings.Count(text, "Note: firewalld"); n != 1 || !strings.Contains(text, "Note: firewalld: rich rule added with firewall-cmd to the runtime and the permanent configuration, kept across reloads and reboots\n") {
		t.Errorf("%d firewalld notes, want the one on the way in and permanence:\n%s", n, text)
	}
}

// TestVRRPServiceNote: the vrrp service is offered from firewalld 2.1 on,
// with what its definitions allow, and not before.
func TestVRRPServiceNote(t *testing.T) {
	for _, tc := range []struct {
		version string
		offered bool
	}{{"1.3.3", false}, {"2.0.5", false}, {"2.1.0", true}, {"2.3.1", true}} {
		info := &firewalld.Info{Running: true, Version: tc.version, Backend: "nftables", DefaultZone: "public"}
		plan, err := Make(load(t, "firewalld-nft-default"), multicast4(), Options{Firewalld: info})
		if err != nil {
			t.Fatal(err)
		}
		var note string
		for _, a := range plan.Alternatives {
			if strings.Contains(a.Title, "vrrp service") {
				note = a.Note
			}
		}
		if (note != "") != tc.offered {
			t.Errorf("firewalld %s: vrrp service offered %v, want %v", tc.version, note != "", tc.offered)
		}
		if note != "" && (!strings.Contains(note, "firewalld 2.1.0") || !strings.Contains(note, "224.0.0.18 and ff02::12") ||
			!strings.Contains(note, "protocol 112 alone") || !strings.Contains(note, "firewall-cmd --info-service=vrrp")) {
			t.Errorf("firewalld %s: note %q", tc.version, note)
		}
	}
}
