package router

import (
	"net/netip"
	"time"
)

// keepalived's vrrp_sync_group makes its instances move together: when
// one becomes Master the others do, when one falls back to Backup the
// others do, when one goes to Fault the others do. The runtime, which sees
// every member, decides; these inputs let it steer a Machine:
//
//   - SetSyncHold(true) while the group's other members do not all want
//     to be Master: a Backup whose Master_Down_Timer expires then stays
//     Backup, reports WantsMaster, and looks again every
//     Advertisement_Interval (keepalived: "only sync to master if
//     everyone wants to, i.e. prefer backup state to avoid thrashing");
//     releasing the hold lets a waiting Backup become Master at once;
//   - SyncMaster and SyncBackup follow a member that moved;
//   - Fault is SetFault, with the group's fault folded into the runtime's
//     fault condition.

// SetSyncHold holds or releases take-overs (see above). Releasing the hold
// of a Backup that WantsMaster makes it Master now, with the reason its
// timer had.
func (m *Machine) SetSyncHold(now time.Time, hold bool) Ready {
	var r Ready
	m.syncHold = hold
	if !hold && m.wantMaster && m.state == Backup {
		m.becomeMaster(now, &r, m.wantReason, m.masterAddr, m.masterPrio)
	}
	return m.finish(&r)
}

// WantsMaster reports whether a held Backup's Master_Down_Timer expired
// with no advert since: it would be Master but for its sync group.
func (m *Machine) WantsMaster() bool { return m.wantMaster }

// SyncMaster makes a Backup Master because another member of its sync
// group became Master (reason sync_group). Other states are left alone.
func (m *Machine) SyncMaster(now time.Time) Ready {
	var r Ready
	if m.state == Backup {
		m.becomeMaster(now, &r, ReasonSyncGroup, netip.Addr{}, 0)
	}
	return m.finish(&r)
}

// SyncBackup makes a Master Backup because another member of its sync
// group fell back to Backup (reason sync_group): it removes its addresses
// without a priority 0 advert, as keepalived does, and waits
// Master_Down_Interval like a fresh Backup. Other states are left alone.
func (m *Machine) SyncBackup(now time.Time) Ready {
	var r Ready
	if m.state == Master {
		m.leaveMaster(&r, false)
		m.toBackup(now)
		m.masterAddr, m.masterPrio = netip.Addr{}, 0
		m.transition(&r, Backup, ReasonSyncGroup, netip.Addr{}, 0)
	}
	return m.finish(&r)
}
