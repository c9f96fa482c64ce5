package diag

import (
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"time"
)

// The JSON document of a capture report; docs/json.md describes it. Field
// names are part of the interface: add fields, never rename them.
type (
	jsonReport struct {
		Status           string      `json:"status"`
		ExitCode         int         `json:"exit_code"`
		Files            []jsonFile  `json:"files"`
		Groups           []jsonGroup `json:"groups"`
		Findings         []Finding   `json:"findings"`
		UntrackedAdverts uint64      `json:"untracked_adverts"`
	}
	jsonFile struct {
		Name             string    `json:"name"`
		Format           string    `json:"format,omitempty"`
		Frames           uint64    `json:"frames"`
		Adverts          uint64    `json:"adverts"`
		NotVRRP          uint64    `json:"not_vrrp"`
		DecodeErrors     uint64    `json:"decode_errors"`
		Unsupported      uint64    `json:"unsupported_frames"`
		UnsupportedType  uint32    `json:"unsupported_link_type,omitempty"`
		FirstDecodeError string    `json:"first_decode_error,omitempty"`
		First            *jsonTime `json:"first,omitempty"`
		Last             *jsonTime `json:"last,omitempty"`
		Error            string    `json:"error,omitempty"`
	}
	jsonGroup struct {
		VLAN     uint16        `json:"vlan"`
		VRID     uint8         `json:"vrid"`
		Version  uint8         `json:"version"`
		Family   uint8         `json:"family"`
		Packets  uint64        `json:"packets"`
		Sources  []jsonSource  `json:"sources"`
		Overlaps []jsonOverlap `json:"overlaps"`
	}
	jsonSource struct {
		Address             netip.Addr           `json:"address"`
		MAC                 string               `json:"mac,omitempty"`
		Packets             uint64               `json:"packets"`
		Duplicates          uint64               `json:"duplicates"`
		First               jsonTime             `json:"first"`
		Last                jsonTime             `json:"last"`
		Priority            uint8                `json:"priority"`
		PriorityChanges     []jsonPriorityChange `json:"priority_changes"`
		PriorityChangeCount uint64               `json:"priority_change_count"`
		Interval            float64              `json:"interval_s"`
		Intervals           []float64            `json:"intervals_s"`
		ObservedInterval    *float64             `json:"observed_interval_s"`
		Jitter              *float64             `json:"jitter_s"`
		MinGap              *float64             `json:"min_gap_s"`
		MaxGap              *float64             `json:"max_gap_s"`
		Gaps                uint64               `json:"gaps"`
		AuthType            string               `json:"auth_type,omitempty"`
		VIPs                []netip.Addr         `json:"vips"`
		VIPChanges          uint64               `json:"vip_changes"`
		TTLs                []int                `json:"ttls"`
		Checksum            jsonChecksum         `json:"checksum"`
		Resigned            uint64               `json:"resigned"`
		LastResign          *jsonTime            `json:"last_resign,omitempty"`
		TakeoverBy          *netip.Addr          `json:"takeover_by,omitempty"`
		TakeoverAfter       *float64             `json:"takeover_after_s,omitempty"`
	}
	jsonPriorityChange struct {
		Time jsonTime `json:"time"`
		From uint8    `json:"from"`
		To   uint8    `json:"to"`
	}
	jsonChecksum struct {
		Message      uint64 `json:"message"`
		PseudoHeader uint64 `json:"pseudo_header"`
		Errors       uint64 `json:"errors"`
		OldUnicast   uint64 `json:"old_unicast,omitempty"`
	}
	jsonOverlap struct {
		A        netip.Addr `json:"a"`
		B        netip.Addr `json:"b"`
		AdvertsA uint64     `json:"adverts_a"`
		AdvertsB uint64     `json:"adverts_b"`
		First    jsonTime   `json:"first"`
		Last     jsonTime   `json:"last"`
		Window   float64    `json:"window_s"`
	}
)

// jsonTime is a time as an RFC 3339 string in UTC. Unlike time.Time's own
// encoding it never fails: a damaged capture can hold times past year 9999.
type jsonTime time.Time

func (t jsonTime) MarshalText() ([]byte, error) {
	return []byte(time.Time(t).UTC().Format(time.RFC3339Nano)), nil
}

func seconds(d time.Duration) float64 { return d.Seconds() }

func secondsPtr(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

func timePtr(t time.Time) *jsonTime {
	if t.IsZero() {
		return nil
	}
	j := jsonTime(t)
	return &j
}

// WriteCaptureJSON renders a capture report as one indented JSON document
// (docs/json.md). VRRPv2 passwords are left out: only the auth type is
// given.
func WriteCaptureJSON(w io.Writer, r *CaptureReport) error {
	out := jsonReport{
		Status:           r.Status(),
		ExitCode:         r.ExitCode(),
		Files:            []jsonFile{},
		Groups:           []jsonGroup{},
		Findings:         r.Findings,
		UntrackedAdverts: r.UntrackedAdverts,
	}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	for _, f := range r.Files {
		jf := jsonFile{Name: f.Name, Format: f.Format, Frames: f.Frames, Adverts: f.Adverts, NotVRRP: f.NotVRRP,
			DecodeErrors: f.DecodeErrors, Unsupported: f.UnsupportedFrames, UnsupportedType: f.UnsupportedLinkType, FirstDecodeError: f.FirstDecodeError, First: timePtr(f.First), Last: timePtr(f.Last)}
		if f.Err != nil {
			jf.Error = f.Err.Error()
		}
		out.Files = append(out.Files, jf)
	}
	for _, g := range r.Groups {
		jg := jsonGroup{VLAN: g.VLAN, VRID: g.VRID, Version: g.Version, Family: g.Family, Packets: g.Packets,
			Sources: []jsonSource{}, Overlaps: []jsonOverlap{}}
		for _, s := range g.Sources {
			js := jsonSource{
				Address: s.Address, Packets: s.Packets, Duplicates: s.Duplicates,
				First: jsonTime(s.First), Last: jsonTime(s.Last), Priority: s.Priority,
				PriorityChanges: []jsonPriorityChange{}, PriorityChangeCount: s.PriorityChangeCount,
				Interval: seconds(s.Interval), Intervals: []float64{}, Gaps: s.Gaps,
				VIPs: s.VIPs, VIPChanges: s.VIPChanges, TTLs: []int{},
				Checksum: jsonChecksum{Message: s.ChecksumMessage, PseudoHeader: s.ChecksumPseudoHeader, Errors: s.ChecksumErrors, OldUnicast: s.ChecksumOldUnicast},
				Resigned: s.Resigned, LastResign: timePtr(s.LastResign),
			}
			if s.HasMAC {
				js.MAC = net.HardwareAddr(s.MAC[:]).String()
			}
			for _, c := range s.PriorityChanges {
				js.PriorityChanges = append(js.PriorityChanges, jsonPriorityChange{Time: jsonTime(c.Time), From: c.From, To: c.To})
			}
			for _, d := range s.Intervals {
				js.Intervals = append(js.Intervals, seconds(d))
			}
			if s.Gaps > 0 {
				js.ObservedInterval, js.Jitter = secondsPtr(s.ObservedInterval), secondsPtr(s.Jitter)
				js.MinGap, js.MaxGap = secondsPtr(s.MinGap), secondsPtr(s.MaxGap)
			}
			if g.Version == 2 {
				js.AuthType = s.AuthType.String()
			}
			if js.VIPs == nil {
				js.VIPs = []netip.Addr{}
			}
			for _, t := range s.TTLs {
				js.TTLs = append(js.TTLs, int(t))
			}
			if s.TakeoverBy.IsValid() {
				by := s.TakeoverBy
				js.TakeoverBy, js.TakeoverAfter = &by, secondsPtr(s.TakeoverAfter)
			}
			jg.Sources = append(jg.Sources, js)
		}
		for _, o := range g.Overlaps {
			jg.Overlaps = append(jg.Overlaps, jsonOverlap{A: o.A, B: o.B, AdvertsA: o.AdvertsA, AdvertsB: o.AdvertsB,
				First: jsonTime(o.First), Last: jsonTime(o.Last), Window: seconds(o.Window)})
		}
		out.Groups = append(out.Groups, jg)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
