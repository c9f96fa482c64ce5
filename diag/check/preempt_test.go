package check

import (
	"net/netip"
	"testing"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
)

// TestSplitBrainPreemption: a takeover or preemption in the watch, in which
// both routers advertise for a moment and each hears the other, is no
// split brain even when this node held the addresses at both ends of the
// watch (its addresses go only once it has heard the winner, possibly just
// after the watch); the same overlap with the winner's adverts lost, or a
// lasting one (Concurrent), is.
func TestSplitBrainPreemption(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stage func(r *Report, in *Instance)
		want  []string
	}{
		{"preempted at the end of the watch", func(r *Report, in *Instance) {
			// This node (100) held the addresses and advertised until the
			// returning 150 sent its first advert.
			asMaster(r)
			in.Peers[0].Adverts, in.Peers[0].Socket, in.Peers[0].Matched, in.Peers[0].Concurrent = 1, 1, 1, 0
		}, nil},
		{"preempting: the loser's last advert", func(r *Report, in *Instance) {
			asMaster(r)
			in.Priority, in.Local.Priority = 200, 200
			in.Peers[0].Adverts, in.Peers[0].Socket, in.Peers[0].Matched, in.Peers[0].Concurrent = 1, 1, 1, 0
		}, nil},
		{"preempted, the winner's adverts lost", func(r *Report, in *Instance) {
			asMaster(r)
			in.Peers[0].Socket, in.Peers[0].Matched, in.Peers[0].NotDelivered, in.Peers[0].Concurrent = 0, 0, 4, 0
		}, []string{IDNotDelivered, IDSplitBrain}},
		{"masters taking turns, other virtual addresses", func(r *Report, in *Instance) {
			// keepalived discards adverts with other addresses.
			asMaster(r)
			in.Peers[0].VIPs = append(in.Peers[0].VIPs, netip.MustParseAddr("198.51.100.102"))
		}, []string{IDVIPMismatch, IDSplitBrain}},
		{"not stepping down although heard", func(r *Report, in *Instance) {
			asMaster(r)
			in.Peers[0].Concurrent = 2
		}, []string{IDSplitBrain}},
		{"the peer does not hear us", func(r *Report, in *Instance) {
			asMaster(r)
			in.Priority, in.Local.Priority = 200, 200
			in.Peers[0].Concurrent = 2
		}, []string{IDSplitBrain}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := backup()
			tc.stage(r, &r.Instances[0])
			r.Finish()
			var above []string
			for _, f := range r.Findings {
				if f.Severity > diag.SeverityOK {
					above = append(above, f.ID)
				}
			}
			if !sameSet(above, tc.want) {
				t.Fatalf("findings %v, want %v", ids(r.Findings), tc.want)
			}
		})
	}
}
