// Package runtime binds the pure VRRP state machine (vrrpcore/router) to a
// Linux host, running the vrrp_instances of a keepalived configuration
// (vrrpcore/keepalived) the way keepalived 2.2 does, so that the two can
// replace each other on one node of a live pair.
//
// # Shape
//
// A Daemon is built from a checked configuration by New, started by Start,
// switched to a new configuration by Reload (which changes the instances
// it keeps in place where keepalived would, reload.go) and shut down by
// Stop. Inside:
//
//   - one raw IP socket for protocol 112 per (interface, address family),
//     bound to the interface (SO_BINDTODEVICE) before it is bound to an
//     address, joined to the multicast groups its instances use with
//     IP_MULTICAST_ALL / IPV6_MULTICAST_ALL off, sending with TTL / hop
//     limit 255, no multicast loopback and keepalived's TOS 0xc0, and
//     receiving the TTL / hop limit, destination and interface of every
//     packet as ancillary data (IP_RECVTTL, IP_PKTINFO, IPV6_RECVHOPLIMIT,
//     IPV6_RECVPKTINFO). One goroutine reads it, decodes each advert with
//     vrrpcore and hands it to the instance running its VRID; packets that
//     do not decode are counted per socket (Status().Sockets);
//   - one goroutine per instance owns its router.Machine: it feeds it the
//     adverts, a timer armed on Ready.Deadline, and tracking changes, and
//     carries out each Ready in order (adverts, address removal, address
//     addition, announcements, then logs and notify scripts). The timers
//     of all instances share one timerfd and one goroutine (timer.go); an
//     instance's notify scripts get a goroutine of their own once a state
//     change has one to run (notify.go). The socket's sends and reads
//     allocate no memory per packet (socket.go, recv.go);
//   - adverts go from the interface's primary IPv4 address or IPv6
//     link-local address (or unicast_src_ip) to the group or to each
//     unicast peer, with the VRRPv2 PASS password when configured. A
//     failed send is counted and logged when its reason changes, with the
//     likely cause (EPERM: an OUTPUT firewall rule);
//   - virtual addresses are added and removed through netlink with
//     keepalived's conventions (prefix, dev, label, scope, brd; IPv6
//     without DAD); those a previous run left behind are removed before
//     the machine starts;
//   - announcements are gratuitous ARPs and unsolicited Neighbor
//     Advertisements (vrrpcore/announce), in the bursts the machine asks
//     for (garp_master_repeat, garp_master_delay, garp_master_refresh),
//     spaced by vrrp_garp_interval / vrrp_gna_interval;
//   - track scripts run every interval with keepalived's rise/fall and
//     weight rules, interfaces are followed through netlink link events,
//     and notify scripts run in order, each without a shell, as the
//     script user, with a timeout (vrrpcore/scripts);
//   - the members of a vrrp_sync_group move together as keepalived's do
//     (sync.go): one becoming Master takes the others along, one falling
//     back to Backup too, one in FAULT puts all in FAULT; a take-over
//     waits until every member wants Master; the group's notify scripts
//     run with "GROUP name STATE 0";
//   - without Accept_Mode (no_accept, vrrp_strict) a non-owner Master
//     drops packets to its virtual addresses through its own nftables
//     table, inet vrrpdoctor (AcceptTable), created with the first such
//     instance and deleted on exit;
//   - use_vmac creates keepalived's macvlan (vrrp.VRID or the name given,
//     private mode, MAC 00:00:5e:00:01:VRID or 00:00:5e:00:02:VRID) that
//     carries the virtual addresses and, unless vmac_xmit_base, the
//     adverts; it is removed on exit, and the ARP sysctls it needs
//     (vmac.go) are restored;
//   - the daemon recovers from interface and address loss (netwatch.go):
//     while a socket's interface is deleted its instances are in FAULT;
//     when one of that name is created again the socket moves to the new
//     index (bound, multicast interface, groups joined again) and use_vmac
//     macvlans are created again (relink.go); a Master adds back a
//     virtual address someone deleted, logs and counts it
//     (InstanceStatus.VIPRestored) and announces it (addrwatch.go); an
//     instance sends from its interface's new address when that changes,
//     and is in FAULT while there is none (source.go).
//
// Unicast adverts go with unicast_ttl (an IP_TTL control message per
// packet, or the IPv6 hop limit), and a unicast_peer's min_ttl/max_ttl
// bound the TTL its adverts may arrive with (router.Config.UnicastPeerTTL).
//
// # Not implemented
//
// IPsec AH authentication (refused) and old_unicast_checksum (warned).
// docs/engine.md lists the keepalived options and what the engine does
// with each.
package runtime
