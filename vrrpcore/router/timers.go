package router

import "time"

// SkewTime returns Skew_Time for a router of the given priority.
//
// VRRPv2 (RFC 3768 §6.1): (256 - Priority) / 256 seconds, whatever the
// advertisement interval. VRRPv3 (RFC 5798 / RFC 9568 §6.1):
// ((256 - Priority) * Master_Adver_Interval) / 256.
//
// The division is exact to the nanosecond (truncated), as keepalived
// computes it to the microsecond. RFC 9568 states the v3 value "in
// centiseconds"; truncating it to whole centiseconds (as FRRouting does)
// would give every priority above 0 the same zero skew at a 10 ms
// interval, so the machine keeps the exact value.
func SkewTime(version, priority uint8, masterAdverInterval time.Duration) time.Duration {
	weight := time.Duration(256 - int(priority))
	if version == 2 {
		return weight * time.Second / 256
	}
	return weight * masterAdverInterval / 256
}

// MasterDownInterval returns Master_Down_Interval (RFC 9568's
// Active_Down_Interval): 3 * Master_Adver_Interval + Skew_Time. For VRRPv2
// Master_Adver_Interval is the configured Advertisement_Interval.
func MasterDownInterval(version, priority uint8, masterAdverInterval time.Duration) time.Duration {
	return downInterval(version, priority, masterAdverInterval, 3)
}

// downInterval is MasterDownInterval with keepalived's down_timer_adverts
// in place of the RFC's 3.
func downInterval(version, priority uint8, masterAdverInterval time.Duration, adverts int) time.Duration {
	return time.Duration(adverts)*masterAdverInterval + SkewTime(version, priority, masterAdverInterval)
}
