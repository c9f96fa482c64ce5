package runtime

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/router"
)

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventStateChange: an instance changed state (From, To, Reason).
	EventStateChange EventKind = iota + 1
	// EventAdvertSent: the kernel accepted an advert (Src our address,
	// Dst the group or a unicast peer, Priority as sent; 0 on shutdown).
	EventAdvertSent
	// EventSendFailed: an advert was refused (Err says why, e.g. EPERM
	// from an OUTPUT firewall rule) or could not be encoded.
	EventSendFailed
	// EventAdvertReceived: a socket read an advert that decodes (its
	// checksum may still be bad). Instance is "" when no instance on the
	// interface runs its VRID. Every advert received is reported here,
	// including those then discarded.
	EventAdvertReceived
	// EventAdvertDiscarded: a received packet was not acted on. Reason is
	// a router.DiscardReason (the state machine's checks) or one of the
	// socket's reasons: DiscardUnknownVRID, DiscardQueueFull,
	// DiscardUndecodable.
	EventAdvertDiscarded
)

// Discard reasons decided by a socket, before any state machine sees the
// packet; the state machine's own are router.DiscardReason values.
const (
	// DiscardUnknownVRID: no instance on the interface runs the VRID.
	DiscardUnknownVRID = "unknown_vrid"
	// DiscardQueueFull: the instance's receive queue was full.
	DiscardQueueFull = "queue_full"
	// DiscardUndecodable: not a VRRP message (VRID 0, Priority 0).
	DiscardUndecodable = "undecodable"
)

// String returns the kind's name, e.g. "state_change".
func (k EventKind) String() string {
	switch k {
	case EventStateChange:
		return "state_change"
	case EventAdvertSent:
		return "advert_sent"
	case EventSendFailed:
		return "send_failed"
	case EventAdvertReceived:
		return "advert_received"
	case EventAdvertDiscarded:
		return "advert_discarded"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one thing a running Daemon did or saw, given to Options.OnEvent.
type Event struct {
	Time      time.Time
	Kind      EventKind
	Instance  string // vrrp_instance name ("" for a received advert no instance claims)
	Interface string
	VRID      uint8
	Family    int // 4 or 6
	// From and To are the states of an EventStateChange.
	From, To router.State
	// Reason is the state change's router.Reason or the discard reason,
	// machine-readable.
	Reason string
	// Src is the sender of a received or discarded advert, our source
	// address for a sent one, and for a state change the peer whose
	// advert caused it (invalid if none did).
	Src netip.Addr
	// Dst is the group or unicast address the advert went to.
	Dst netip.Addr
	// Priority is the advert's priority; for a state change, the
	// instance's effective priority.
	Priority uint8
	// Err is why a send failed (EventSendFailed).
	Err error
	// Version, Interval, Checksum and TTL are a sent (or failed) advert's
	// VRRP version, advert interval, checksum variant and IP TTL (hop
	// limit).
	Version  uint8
	Interval time.Duration
	Checksum vrrpcore.ChecksumKind
	TTL      uint8
}

// emit hands e to Options.OnEvent, if set.
func (d *Daemon) emit(e Event) {
	if d.opts.OnEvent != nil {
		d.opts.OnEvent(e)
	}
}
