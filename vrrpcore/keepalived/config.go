package keepalived

import (
	"net/netip"
	"time"
)

// Config is what vrrpdoctor reads from a keepalived configuration: the VRRP
// part, with keepalived's defaults applied. Every block records where it
// and each of its keywords were written; a value that was not written has
// keepalived's default.
type Config struct {
	Files      []string // files read, the main file first, in reading order
	Global     Global
	Instances  []Instance
	Scripts    []Script
	SyncGroups []SyncGroup
	Unused     []Directive // top-level blocks vrrpdoctor does not use (virtual_server, ...)
	Warnings   []Warning
}

// Instance returns the vrrp_instance called name, or nil.
func (c *Config) Instance(name string) *Instance {
	for i := range c.Instances {
		if c.Instances[i].Name == name {
			return &c.Instances[i]
		}
	}
	return nil
}

// Script returns the vrrp_script called name, or nil.
func (c *Config) Script(name string) *Script {
	for i := range c.Scripts {
		if c.Scripts[i].Name == name {
			return &c.Scripts[i]
		}
	}
	return nil
}

// SyncGroup returns the vrrp_sync_group called name, or nil.
func (c *Config) SyncGroup(name string) *SyncGroup {
	for i := range c.SyncGroups {
		if c.SyncGroups[i].Name == name {
			return &c.SyncGroups[i]
		}
	}
	return nil
}

// Directive is a keyword vrrpdoctor does not use, kept as written.
type Directive struct {
	Keyword  string
	Args     []string
	Pos      Pos
	Block    []Directive // the block's contents, if the keyword had one
	HasBlock bool
}

// Global holds the global_defs settings vrrpdoctor uses.
type Global struct {
	Pos Pos            // of the first global_defs keyword; zero if there is none
	Set map[string]Pos // each keyword written, and where (the last one, if repeated)

	RouterID     string     // router_id; keepalived's default is the host name
	VRRPVersion  int        // vrrp_version: default for instances; 2 unless set
	McastGroup4  netip.Addr // vrrp_mcast_group4, default 224.0.0.18
	McastGroup6  netip.Addr // vrrp_mcast_group6, default ff02::12
	ScriptUser   string     // script_user; "" means keepalived_script if it exists, else root
	ScriptGroup  string     // group given with script_user
	ScriptSecure bool       // enable_script_security
	Strict       bool       // vrrp_strict

	Garp         Garp          // vrrp_garp_*: the defaults of every instance
	GarpInterval time.Duration // vrrp_garp_interval: delay between gratuitous ARPs on an interface
	GnaInterval  time.Duration // vrrp_gna_interval: delay between unsolicited NAs on an interface

	DownTimerAdverts     int  // vrrp_down_timer_adverts, default 3
	LowerPrioNoAdvert    bool // vrrp_lower_prio_no_advert (default false, true with vrrp_strict)
	HigherPrioSendAdvert bool // vrrp_higher_prio_send_advert
	CheckUnicastSrc      bool // vrrp_check_unicast_src
	SkipCheckAdvAddr     bool // vrrp_skip_check_adv_addr
	DynamicInterfaces    bool // dynamic_interfaces: interfaces may be missing at startup

	Unused []Directive
}

// Garp holds the gratuitous ARP / unsolicited neighbour advertisement
// settings of keepalived (garp_* in an instance, vrrp_garp_* globally).
type Garp struct {
	MasterDelay         time.Duration // garp_master_delay: second burst after becoming master; 0 = none; default 5s
	MasterRepeat        int           // garp_master_repeat: messages per burst, default 5
	MasterRefresh       time.Duration // garp_master_refresh: period of refresh bursts while master; 0 = none (default)
	MasterRefreshRepeat int           // garp_master_refresh_repeat, default 1
	LowerPrioDelay      time.Duration // garp_lower_prio_delay: default MasterDelay
	LowerPrioRepeat     int           // garp_lower_prio_repeat: default MasterRepeat
}

// State is the initial state keepalived is told to start an instance in.
type State uint8

// Initial states.
const (
	StateBackup State = iota
	StateMaster
)

func (s State) String() string {
	if s == StateMaster {
		return "MASTER"
	}
	return "BACKUP"
}

// MarshalText renders the state as keepalived writes it.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// AuthType is the VRRPv2 authentication of an instance. Its values are
// those of the advert's Auth Type field (RFC 2338 §5.3.6).
type AuthType uint8

// Authentication types.
const (
	AuthNone AuthType = 0 // no authentication block
	AuthPass AuthType = 1 // auth_type PASS: simple text password
	AuthAH   AuthType = 2 // auth_type AH: IPsec AH
)

func (a AuthType) String() string {
	switch a {
	case AuthPass:
		return "PASS"
	case AuthAH:
		return "AH"
	}
	return "none"
}

// MarshalText renders the type as keepalived writes it.
func (a AuthType) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Instance is one vrrp_instance.
type Instance struct {
	Name string
	Pos  Pos            // of the vrrp_instance keyword
	Set  map[string]Pos // each keyword written, and where (the last one, if repeated)

	State     State  // state; default MASTER for priority 255, else BACKUP
	Interface string // interface
	VRID      uint8  // virtual_router_id, 1..255 (required)
	Priority  uint8  // priority, 1..255, default 100; 255 = address owner
	// AdvertInt is advert_int, default 1s. For VRRPv2 keepalived rounds it
	// to whole seconds; for VRRPv3 it is at most 40.95s.
	AdvertInt time.Duration
	Version   int    // 2 or 3: version, else global vrrp_version; 3 for IPv6 unless version 2 is written
	Family    Family // address family of the instance: that of its first address (IPv4 if none)

	Nopreempt    bool          // nopreempt (keepalived clears it with state MASTER)
	PreemptDelay time.Duration // preempt_delay, 0..1000s (cleared with state MASTER)
	Accept       bool          // accept / no_accept; default true, but false under strict mode unless priority is 255
	Strict       bool          // strict_mode, default global vrrp_strict

	Auth Auth // authentication (VRRPv2 only; dropped for v3 and strict mode, as keepalived does)

	VIPs         []VIP // virtual_ipaddress, all of Family
	ExcludedVIPs []VIP // virtual_ipaddress_excluded: not in adverts, any family

	// SrcIP is unicast_src_ip or mcast_src_ip (keepalived treats both
	// alike): the source address of adverts. Invalid if not written.
	SrcIP netip.Addr
	// McastGroup is the group adverts go to: mcast_dst_ip, else the global
	// group of Family. Unused when UnicastPeers is not empty.
	McastGroup         netip.Addr
	UnicastPeers       []Peer          // unicast_peer; not empty means unicast mode
	UnicastTTL         int             // unicast_ttl, default 255
	CheckUnicastSrc    bool            // check_unicast_src (or global vrrp_check_unicast_src, or a peer's min/max_ttl)
	OldUnicastChecksum UnicastChecksum // old_unicast_checksum: VRRPv3 unicast checksums as keepalived before 1.3.6 computed them

	TrackInterfaces  []TrackInterface // track_interface
	TrackScripts     []TrackScript    // track_script
	DontTrackPrimary bool             // dont_track_primary

	Notify Notify // notify, notify_master, notify_backup, notify_fault, notify_stop
	Garp   Garp   // garp_*: instance values over the global defaults

	DownTimerAdverts     int  // down_timer_adverts (default global, 3)
	LowerPrioNoAdvert    bool // lower_prio_no_advert
	HigherPrioSendAdvert bool // higher_prio_send_advert
	SkipCheckAdvAddr     bool // skip_check_adv_addr

	UseVMAC      bool   // use_vmac: keepalived moves the VIPs to a macvlan with the VRRP MAC
	VMACName     string // interface name given to use_vmac
	VMACXmitBase bool   // vmac_xmit_base

	SyncGroup string // the vrrp_sync_group the instance belongs to, if any

	Unused []Directive
}

// Unicast reports whether the instance sends to unicast peers.
func (i *Instance) Unicast() bool { return len(i.UnicastPeers) > 0 }

// Family is an address family.
type Family uint8

// Address families. The zero Family means "not known yet".
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "unknown"
}

// MarshalText renders the family as IPv4 or IPv6.
func (f Family) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// Auth is an instance's authentication block.
type Auth struct {
	Type AuthType
	// Pass is auth_pass, at most 8 bytes: keepalived truncates a longer
	// one. In adverts it is padded with NUL bytes to 8. It is a secret:
	// never marshalled to JSON, never quoted in errors or warnings.
	Pass string `json:"-"`
	Pos  Pos    // of the authentication keyword
}

// VIP is one line of virtual_ipaddress or virtual_ipaddress_excluded:
// <IPADDR>[/<MASK>] [brd <IPADDR>] [dev <STRING>] [scope <SCOPE>] [label <LABEL>] ...
type VIP struct {
	// Prefix is the address with its prefix length (/32 or /128 if none
	// was written).
	Prefix    netip.Prefix
	Broadcast netip.Addr // brd / broadcast ("+" gives the prefix's broadcast address)
	Dev       string     // dev; "" means the instance's interface
	Scope     string     // scope: global (default), site, link, host or nowhere
	Label     string     // label
	Peer      netip.Addr // peer (point-to-point address)
	NoTrack   bool       // no_track
	// Flags are the other options, as written: home, -nodad, mngtmpaddr,
	// noprefixroute, autojoin, use_vmac, "preferred_lft N".
	Flags []string
	Pos   Pos
}

// Addr returns the address without its prefix length.
func (v VIP) Addr() netip.Addr { return v.Prefix.Addr() }

// UnicastChecksum is an instance's old_unicast_checksum setting: which
// checksum its VRRPv3 unicast adverts over IPv4 carry. keepalived before
// 1.3.6 summed them over a pseudo-header to the group 224.0.0.18.
type UnicastChecksum uint8

// The settings of old_unicast_checksum.
const (
	UnicastChecksumDetect UnicastChecksum = iota // not set: the RFC checksum, switching to the old one when a peer sends it
	UnicastChecksumOld                           // old_unicast_checksum: the old checksum
	UnicastChecksumNever                         // old_unicast_checksum never: the RFC checksum; adverts with the old one are refused
)

// Peer is one unicast_peer: <IPADDR> [min_ttl N] [max_ttl N].
type Peer struct {
	Addr   netip.Addr
	MinTTL int // min_ttl, default 0
	MaxTTL int // max_ttl, default 255
	Pos    Pos
}

// TrackInterface is one track_interface line: <IF> [weight N [reverse]].
type TrackInterface struct {
	Name    string
	Weight  int  // -253..253; 0 means fault when the interface is down
	Reverse bool // reverse
	Pos     Pos
}

// TrackScript is one track_script line: <SCRIPT> [weight N [reverse|no_reverse]].
type TrackScript struct {
	Name string
	// Weight is the weight in effect: the one written here, else the
	// vrrp_script's. keepalived sets it to 0 for members of a sync group
	// (unless sync_group_tracking_weight).
	Weight    int
	WeightSet bool // weight was written on this line
	// Reverse is reverse/no_reverse as written here, else the
	// vrrp_script's.
	Reverse    bool
	Pos        Pos
	reverseSet bool
}

// Command is a script to run, with the user to run it as.
type Command struct {
	// Argv is the command line split as keepalived splits it: the
	// keyword's first argument (quoted or not), split on white space with
	// '...' and "..." grouping and backslash escapes.
	Argv  []string
	User  string // "" means the global script_user
	Group string
	Pos   Pos
}

// Notify holds the notify scripts of an instance or sync group.
type Notify struct {
	Master *Command // notify_master
	Backup *Command // notify_backup
	Fault  *Command // notify_fault
	Stop   *Command // notify_stop
	// Any is notify: run on every transition with the arguments
	// "INSTANCE"|"GROUP", the name, the new state and the priority.
	Any *Command
}

// Script is a vrrp_script block.
type Script struct {
	Name string
	Pos  Pos
	Set  map[string]Pos

	Command  Command       // script, with user (and the global script_user if not given)
	Interval time.Duration // interval, whole seconds, default 1s
	Timeout  time.Duration // timeout, whole seconds; 0 (default) means not set
	Weight   int           // weight, -253..253, default 0
	Reverse  bool          // weight ... reverse
	Rise     int           // rise, default 1
	Fall     int           // fall, default 1
	InitFail bool          // init_fail

	Unused []Directive
}

// SyncGroup is a vrrp_sync_group block.
type SyncGroup struct {
	Name string
	Pos  Pos
	Set  map[string]Pos

	Members         []Member // group: the instances, as written
	Notify          Notify
	TrackInterfaces []TrackInterface
	TrackScripts    []TrackScript
	TrackingWeight  bool // sync_group_tracking_weight: members keep their track weights

	Unused []Directive
}

// Member is one instance name in a sync group's group block.
type Member struct {
	Name string
	Pos  Pos
}

// RunAs returns the user and group keepalived runs cmd as when they are
// written: the command's own, else the global script_user. An empty user
// means keepalived's default: keepalived_script if that user exists, else
// root.
func (c *Config) RunAs(cmd *Command) (user, group string) {
	if cmd.User != "" {
		return cmd.User, cmd.Group
	}
	return c.Global.ScriptUser, c.Global.ScriptGroup
}
