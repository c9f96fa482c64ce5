package router

import (
	"fmt"
	"maps"
	"net/netip"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// State is a virtual router state (RFC 5798 §6.4). RFC 9568 calls Master
// "Active"; Fault is keepalived's state for an instance whose interface or
// tracked objects are down.
type State uint8

// Virtual router states.
const (
	Initialize State = iota // not started, or shut down
	Backup
	Master
	Fault // keepalived FAULT: not participating, holds no VIP
)

// String returns keepalived's name for the state.
func (s State) String() string {
	switch s {
	case Initialize:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	case Fault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText renders the state as its name, for JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reason says why a state changed. Values are stable, machine-readable.
type Reason string

// Transition reasons.
const (
	ReasonStartup             Reason = "startup"                        // Initialize -> Backup (RFC 5798 §6.4.1)
	ReasonStartupOwner        Reason = "startup_owner"                  // Initialize -> Master, priority 255 (§6.4.1)
	ReasonStartupStateMaster  Reason = "startup_state_master"           // Initialize -> Master, keepalived "state MASTER"
	ReasonMasterDown          Reason = "master_down_timer_expired"      // Backup -> Master, no advert for Master_Down_Interval (§6.4.2)
	ReasonPriorityZero        Reason = "priority0_received"             // Backup -> Master, Skew_Time after a priority 0 advert (§6.4.2)
	ReasonPreempted           Reason = "preempted"                      // Backup -> Master, after discarding a lower-priority Master's adverts (§6.4.2)
	ReasonHigherPriority      Reason = "higher_priority_advert"         // Master -> Backup (§6.4.3)
	ReasonEqualPriorityHigher Reason = "equal_priority_greater_address" // Master -> Backup, tie-break lost (§6.4.3)
	ReasonShutdown            Reason = "shutdown"                       // any -> Initialize (§6.4.2, §6.4.3)
	ReasonFault               Reason = "fault"                          // any -> Fault (keepalived)
	ReasonFaultCleared        Reason = "fault_cleared"                  // Fault -> Backup or Master (keepalived)
	ReasonSyncGroup           Reason = "sync_group"                     // Backup <-> Master following another member of the vrrp_sync_group (keepalived)
)

// Transition is one state change.
type Transition struct {
	From, To State
	Reason   Reason
	// Peer is the router whose advert caused the change, when one did
	// (for ReasonPriorityZero and ReasonPreempted: the Master that
	// resigned or was preempted).
	Peer         netip.Addr
	PeerPriority uint8
}

// DiscardReason says why a received advert was discarded. Values are
// stable, machine-readable.
type DiscardReason string

// Discard reasons. All but DiscardLowerPriority and DiscardInactive are
// validation failures (RFC 5798 §7.1, RFC 3768 §7.1): see Invalid.
const (
	DiscardInterface      DiscardReason = "wrong_interface"              // not received on Config.Interface
	DiscardFamily         DiscardReason = "wrong_family"                 // sender not of Config.Family
	DiscardSource         DiscardReason = "bad_source"                   // sender not a unicast address
	DiscardTTL            DiscardReason = "ttl"                          // TTL / hop limit not 255 (RFC 5798 §5.1.1.3, §5.1.2.3)
	DiscardVersion        DiscardReason = "version"                      // not Config.Version
	DiscardType           DiscardReason = "type"                         // not an ADVERTISEMENT (RFC 5798 §5.2.2)
	DiscardMalformed      DiscardReason = "malformed"                    // address count disagrees with the addresses carried
	DiscardChecksum       DiscardReason = "checksum"                     // checksum verified bad
	DiscardUnverified     DiscardReason = "checksum_unverified"          // the runtime passed an advert whose checksum was never verified
	DiscardVRID           DiscardReason = "vrid"                         // VRID not Config.VRID
	DiscardIntervalZero   DiscardReason = "interval_zero"                // VRRPv3 Max Advert Int 0 (RFC 9568 §7.1)
	DiscardAuthType       DiscardReason = "auth_type"                    // VRRPv2 auth type mismatch (RFC 3768 §7.1)
	DiscardAuthData       DiscardReason = "auth_data"                    // VRRPv2 password mismatch (RFC 3768 §7.1)
	DiscardInterval       DiscardReason = "interval"                     // VRRPv2 Adver Int mismatch (RFC 3768 §7.1)
	DiscardOwnAddress     DiscardReason = "own_address"                  // sent from our own primary address
	DiscardUnicastSource  DiscardReason = "unicast_source"               // sender not in UnicastPeers
	DiscardSourceNotLL    DiscardReason = "source_not_link_local"        // IPv6 sender not link-local (RFC 5798 §5.1.2.1)
	DiscardAddrFamily     DiscardReason = "address_family"               // an advertised address of the wrong family (RFC 9568 §5.2.9)
	DiscardNoAddresses    DiscardReason = "no_addresses"                 // VRRPv3 address count 0 (RFC 9568 §5.2.5)
	DiscardFirstAddrNotLL DiscardReason = "first_address_not_link_local" // Strict: first IPv6 address not link-local (RFC 9568 §5.2.9)
	DiscardAddrList       DiscardReason = "address_list"                 // address list differs from VIPs (RFC 3768 §7.1, keepalived)
	DiscardLowerPriority  DiscardReason = "lower_priority"               // protocol: lower-priority advert (§6.4.2 with preempt, §6.4.3)
	DiscardInactive       DiscardReason = "inactive"                     // protocol: received in Initialize or Fault
)

// Invalid reports whether the reason is a validation failure rather than
// a normal protocol decision (lower priority, instance not running).
func (d DiscardReason) Invalid() bool {
	return d != DiscardLowerPriority && d != DiscardInactive
}

// Discard reports one discarded advert.
type Discard struct {
	Reason   DiscardReason
	Src      netip.Addr
	VRID     uint8
	Priority uint8
	Detail   string // human-readable values, e.g. "TTL 64, want 255"
}

// NoticeKind names something worth logging that is not a discard.
type NoticeKind string

// Notice kinds.
const (
	NoticeAddrListMismatch   NoticeKind = "address_list_mismatch"        // accepted anyway (RFC 5798 §7.1 "SHOULD log")
	NoticeFirstAddrNotLL     NoticeKind = "first_address_not_link_local" // accepted (not Strict), as keepalived sends it
	NoticeNoAddresses        NoticeKind = "no_addresses"                 // accepted: neither side advertises an address (keepalived)
	NoticeOwnerConflict      NoticeKind = "owner_conflict"               // another router claims priority 255 too
	NoticeIntervalLearned    NoticeKind = "interval_learned"             // Backup adopted the Master's advert interval (RFC 5798 §6.4.2)
	NoticePriorityChanged    NoticeKind = "priority_changed"             // SetPriority changed the effective priority
	NoticeOwnerPriorityFixed NoticeKind = "owner_priority_fixed"         // SetPriority ignored: the owner's priority stays 255
	NoticePreemptDelay       NoticeKind = "preempt_delay_started"        // lower-priority Master tolerated for PreemptDelay
	NoticeSyncWait           NoticeKind = "sync_group_wait"              // Master_Down_Timer expired, held: the sync group's other members do not all want Master
	NoticeOldUnicastChecksum NoticeKind = "old_unicast_checksum"         // a peer sums as keepalived before 1.3.6: adverts carry that checksum from now on (OldChecksumDetect)
)

// Notice reports something worth logging that changed no state by itself.
type Notice struct {
	Kind   NoticeKind
	Src    netip.Addr // sender of the advert concerned, if any
	Detail string
}

// AnnounceReason says why a gratuitous ARP / unsolicited NA burst is due.
type AnnounceReason string

// Announcement reasons.
const (
	AnnounceBecomeMaster  AnnounceReason = "become_master"         // on entering Master (RFC 5798 §6.4.1, §6.4.2)
	AnnounceMasterDelay   AnnounceReason = "master_delay"          // GARP.MasterDelay after entering Master
	AnnounceRefresh       AnnounceReason = "refresh"               // every GARP.MasterRefresh while Master
	AnnounceLowerPriority AnnounceReason = "lower_priority_advert" // GARP.LowerPrioRepeat after a lower-priority advert
)

// Announcement is a burst of gratuitous ARPs (IPv4) or unsolicited
// Neighbour Advertisements with the Router flag (IPv6): Count messages for
// each address in Addrs.
type Announcement struct {
	Addrs  []netip.Addr
	Count  int
	Reason AnnounceReason
}

// Ready is what the runtime must do after one input. Carry out the
// actions in field order: send Adverts (to the multicast group, or to every
// unicast peer), remove RemoveVIPs, add AddVIPs, send the Announce bursts.
// Transitions, Discards and Notices are for logs and metrics. Then arm a
// timer for Deadline: call Tick at or after it. A Deadline that is not
// after the current time means "call Tick now"; a zero Deadline means no
// timer is running.
//
// Adverts is the Machine's own storage, reused after its next few adverts
// (advertSlots), and its Addrs are the Machine's address list: use them
// before calling it again (or copy them), and never change them. The
// Machine's steady state (Tick while Master) allocates nothing.
type Ready struct {
	Adverts     []vrrpcore.Advert
	RemoveVIPs  []netip.Addr
	AddVIPs     []netip.Addr
	Announce    []Announcement
	Transitions []Transition
	Discards    []Discard
	Notices     []Notice
	Deadline    time.Time
}

// Stats are a Machine's counters since New.
type Stats struct {
	Received          uint64 // adverts that passed validation
	Sent              uint64 // adverts output, including priority 0
	Priority0Received uint64
	Priority0Sent     uint64
	BecameMaster      uint64
	ReleasedMaster    uint64
	Discards          map[DiscardReason]uint64
	Notices           map[NoticeKind]uint64
}

func (s Stats) clone() Stats {
	s.Discards = maps.Clone(s.Discards)
	s.Notices = maps.Clone(s.Notices)
	return s
}
