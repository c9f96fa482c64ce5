// Package router is the VRRP virtual router state machine, pure: no
// goroutines, sockets or clock. It implements RFC 5798 §6 as updated by
// RFC 9568 for VRRPv3 and RFC 3768 §6 for VRRPv2, with the keepalived
// behaviours a keepalived.conf asks for (preempt_delay, GARP timers,
// FAULT, unicast peers, "state MASTER").
//
// # Model
//
// As in etcd-io/raft, the protocol is a deterministic value: a Machine is
// built from a Config by New and changes only when one of its input
// methods is called. Every input carries the current time:
//
//	Start(now)                  RFC 5798 §6.4.1 Startup event
//	Shutdown(now)               Shutdown event
//	Tick(now)                   timers: call at or after Ready.Deadline
//	Receive(now, RecvAdvert)    a decoded advert plus sender, TTL, interface
//	SetPriority(now, p)         tracking (track_script / track_interface weights)
//	SetFault(now, down)         keepalived FAULT (interface or tracked object down)
//	SetSyncHold(now, hold)      vrrp_sync_group: hold take-overs until every member wants Master
//	SyncMaster(now)             vrrp_sync_group: another member became Master
//	SyncBackup(now)             vrrp_sync_group: another member fell back to Backup
//	Reconfigure(now, Config)    reload: a new configuration applied in place (reconfigure.go)
//	SetPrimaryAddr(now, addr)   the interface's source address changed
//
// Each returns a Ready: adverts to send (with the priority to send,
// including 0 on shutdown), VIPs to remove and add, gratuitous ARP /
// unsolicited NA bursts, the state changes with a machine-readable Reason,
// every discarded advert with its DiscardReason, Notices, and the next
// Deadline. Nothing is silent: Stats counts every discard and notice by
// reason.
//
// # Binding it to a host
//
// The runtime owns one goroutine per instance (or one for all) and does
// all I/O. A sketch:
//
//	m, err := router.New(cfg)
//	ready := m.Start(time.Now())
//	for {
//		execute(ready)                  // in field order, see Ready
//		select {
//		case <-timerFor(ready.Deadline):
//			ready = m.Tick(time.Now())
//		case pkt := <-packets:          // raw socket, proto 112
//			adv, err := vrrpcore.Decode(...) // keep the advert on a checksum error
//			ready = m.Receive(time.Now(), router.RecvAdvert{
//				Advert: adv, Src: pkt.Src, TTL: pkt.TTL, Interface: pkt.Ifname})
//		case p := <-tracking:
//			ready = m.SetPriority(time.Now(), p)
//		case up := <-link:
//			ready = m.SetFault(time.Now(), !up)
//		case <-stop:
//			execute(m.Shutdown(time.Now())) // priority 0 advert, VIPs removed
//			return
//		}
//	}
//
// Executing a Ready: encode each advert with the codec and send it from
// Config.PrimaryAddr with TTL / hop limit 255, to 224.0.0.18 / ff02::12 or
// to each Config.UnicastPeers address; remove then add addresses through
// netlink; for each Announcement send Count gratuitous ARPs (IPv4) or
// unsolicited Neighbour Advertisements with the Router flag set (IPv6) per
// address, paced as keepalived's garp_interval says. Packets that do not
// decode at all never reach the machine; count them in the runtime.
//
// The machine assumes every advert it is given was verified by the codec:
// RecvAdvert.Advert.Checksummed must be the kind the codec found, and
// ChecksumBad or ChecksumUnverified adverts are discarded (reason
// "checksum" / "checksum_unverified").
//
// The runtime also enforces Accept_Mode (AcceptsVIPTraffic), removes VIPs
// left over by a crashed previous run before Start, and decides what the
// members of a sync group follow (sync.go describes the inputs it steers a
// Machine with); none of that is protocol state.
//
// # Deviations from the RFCs
//
// Each is a keepalived behaviour that real configurations rely on; the
// Config field named enables the strict RFC behaviour where one exists.
//
//   - A Master answers a lower-priority advert with its own advert (RFC
//     9568 §6.4.3, keepalived's default) for VRRPv2 too, where RFC 3768
//     only discards (LowerPrioNoAdvert restores that).
//   - An address owner processes received adverts, as keepalived does,
//     although RFC 5798/9568 §7.1 tell it to discard them; a second owner
//     is reported (owner_conflict) and the address tie-break decides.
//   - VRRPv3 IPv6 adverts whose first address is not link-local, and
//     VRRPv3 adverts with no address when this instance has none either,
//     are accepted with a Notice unless Strict (keepalived vrrp_strict),
//     because keepalived sends them; RFC 9568 errata 8300 and 8299 say
//     discard.
//   - Unicast adverts skip the TTL / hop-limit check (keepalived).
//   - Skew_Time is exact to the nanosecond, not truncated to centiseconds.
//   - An advert from our own primary address is discarded (own_address).
//   - preempt_delay, StartAsMaster, DownTimerAdverts, HigherPrioSendAdvert,
//     the GARP timers and FAULT have no RFC counterpart.
package router
