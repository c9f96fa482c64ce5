package router

import (
	"testing"
	"time"
)

// keepalived vrrp_sync_group: a held Backup whose Master_Down_Timer
// expires stays Backup, wants Master, looks again every advert interval,
// and becomes Master with its own reason when the hold is released.
func TestSyncGroup_HoldThenRelease(t *testing.T) {
	c := v3Config(100)
	m := started(t, c, Backup)
	m.SetSyncHold(t0, true)
	down := at(m.MasterDownInterval())
	r := m.Tick(down)
	wantNoTransition(t, r)
	wantNotice(t, r, NoticeSyncWait)
	if !m.WantsMaster() || m.State() != Backup {
		t.Fatalf("state %v, wants Master %v: want a Backup wanting Master", m.State(), m.WantsMaster())
	}
	wantDeadline(t, r, down.Add(c.AdvertInterval))
	r = m.Tick(down.Add(c.AdvertInterval))
	wantNoTransition(t, r)
	if len(r.Notices) != 0 {
		t.Errorf("notices %+v: the wait is reported once", r.Notices)
	}
	r = m.SetSyncHold(down.Add(1500*time.Millisecond), false)
	wantTransition(t, r, Backup, Master, ReasonMasterDown)
	wantAdverts(t, r, 100)
	if m.WantsMaster() {
		t.Error("a Master still wants Master")
	}
}

// An advert from a live Master resets the wish: releasing the hold then
// changes nothing.
func TestSyncGroup_AdvertCancelsWish(t *testing.T) {
	c := v3Config(100)
	m := started(t, c, Backup)
	m.SetSyncHold(t0, true)
	down := at(m.MasterDownInterval())
	m.Tick(down)
	if !m.WantsMaster() {
		t.Fatal("no wish after the timer expired")
	}
	r := m.Receive(down.Add(10*time.Millisecond), from("198.51.100.1", peerAdvert(c, 150)))
	wantNoDiscard(t, r)
	if m.WantsMaster() {
		t.Fatal("still wants Master after an advert from a higher priority Master")
	}
	r = m.SetSyncHold(down.Add(20*time.Millisecond), false)
	wantNoTransition(t, r)
}

// SyncMaster moves a Backup to Master (reason sync_group); SyncBackup
// moves a Master to Backup without a priority 0 advert, removing its
// addresses; other states are left alone.
func TestSyncGroup_FollowMembers(t *testing.T) {
	c := v3Config(100)
	m := started(t, c, Backup)
	r := m.SyncMaster(at(time.Second))
	wantTransition(t, r, Backup, Master, ReasonSyncGroup)
	wantAdverts(t, r, 100)
	if len(r.AddVIPs) != 1 || len(r.Announce) != 1 {
		t.Errorf("AddVIPs %v, Announce %v: a Master takes and announces its addresses", r.AddVIPs, r.Announce)
	}
	wantNoTransition(t, m.SyncMaster(at(2*time.Second)))

	r = m.SyncBackup(at(3 * time.Second))
	wantTransition(t, r, Master, Backup, ReasonSyncGroup)
	if len(r.Adverts) != 0 {
		t.Errorf("adverts %+v: keepalived sends no priority 0 when a group falls back", r.Adverts)
	}
	if len(r.RemoveVIPs) != 1 {
		t.Errorf("RemoveVIPs %v", r.RemoveVIPs)
	}
	wantDeadline(t, r, at(3*time.Second).Add(m.MasterDownInterval()))
	wantNoTransition(t, m.SyncBackup(at(4*time.Second)))

	m.SetFault(at(5*time.Second), true)
	wantNoTransition(t, m.SyncMaster(at(6*time.Second)))
	if m.State() != Fault {
		t.Errorf("state %v after SyncMaster in Fault", m.State())
	}
}
