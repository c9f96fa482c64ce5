package runtime

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// TestSyncGroupCoordinator drives the group as three members' loops would:
// a member's own take-over makes the others follow to Master, a fall to
// Backup makes them follow to Backup, a fault is the group's until every
// member's own fault clears, and a member may become Master only when all
// others are Master or want to be. Kicks wake the members that must look.
func TestSyncGroupCoordinator(t *testing.T) {
	g := newSyncGroup(&groupPlan{name: "G", members: []string{"A", "B", "C"}}, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer g.notify.close()
	kick := map[string]chan struct{}{}
	for _, n := range []string{"A", "B", "C"} {
		kick[n] = make(chan struct{}, 1)
		g.join(n, kick[n])
		g.update(n, router.Backup, false, []router.Transition{{From: router.Initialize, To: router.Backup, Reason: router.ReasonStartup}})
	}
	kicked := func(n string) bool {
		select {
		case <-kick[n]:
			return true
		default:
			return false
		}
	}
	for _, n := range []string{"A", "B", "C"} {
		kicked(n) // drain the start-up
	}

	if g.othersWant("A") {
		t.Fatal("A may take over while B and C hear a Master")
	}
	g.update("B", router.Backup, true, nil)
	g.update("C", router.Backup, true, nil)
	if !kicked("A") || !g.othersWant("A") {
		t.Fatal("B and C want Master: A must be woken and allowed")
	}

	g.update("A", router.Master, false, []router.Transition{{From: router.Backup, To: router.Master, Reason: router.ReasonMasterDown}})
	for _, n := range []string{"B", "C"} {
		if !kicked(n) || g.takePending(n) != router.Master {
			t.Fatalf("%s not told to follow A to Master", n)
		}
		g.update(n, router.Master, false, []router.Transition{{From: router.Backup, To: router.Master, Reason: router.ReasonSyncGroup}})
	}
	if g.takePending("A") != router.Initialize {
		t.Error("the leader has something to follow")
	}

	g.update("C", router.Backup, false, []router.Transition{{From: router.Master, To: router.Backup, Reason: router.ReasonHigherPriority}})
	for _, n := range []string{"A", "B"} {
		if g.takePending(n) != router.Backup {
			t.Fatalf("%s not told to follow C to Backup", n)
		}
	}

	if g.setFault("B", true) != true || !kicked("A") || !kicked("C") {
		t.Fatal("B's fault is not the group's, or the others were not woken")
	}
	if !g.setFault("A", false) {
		t.Fatal("A's own fault cleared, yet the group's fault is gone while B's lasts")
	}
	if g.setFault("B", false) {
		t.Fatal("the group is still in fault after every own fault cleared")
	}
}
