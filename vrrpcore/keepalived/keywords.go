package keepalived

import "strings"

// The keepalived 2.2 keywords (keepalived.conf(5) of 2.2.7) that vrrpdoctor
// reads past. They give a "not used by vrrpdoctor" warning; anything else
// that vrrpdoctor does not handle is an unknown keyword.

func set(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// Top-level keywords (blocks and daemon options) vrrpdoctor does not use.
var unusedTop = set(`
	static_ipaddress static_routes static_rules track_group linkbeat_interfaces
	interface_up_down_delays garp_group vrrp_track_file track_file
	vrrp_track_process bfd_instance virtual_server virtual_server_group
	net_namespace net_namespace_ipvs namespace_with_ipsets instance use_pid_dir
	linkbeat_use_polling child_wait_time`)

// global_defs keywords vrrpdoctor does not use.
var unusedGlobal = set(`
	net_namespace net_namespace_ipvs namespace_with_ipsets instance use_pid_dir
	linkbeat_use_polling child_wait_time tmp_config_directory config_save_dir
	process_names process_name vrrp_process_name checker_process_name
	bfd_process_name startup_script startup_script_timeout shutdown_script
	shutdown_script_timeout notification_email notification_email_from
	smtp_server smtp_helo_name smtp_connect_timeout smtp_alert smtp_alert_vrrp
	smtp_alert_checker checker_log_all_failures no_email_faults default_interface
	lvs_sync_daemon lvs_timeouts lvs_flush lvs_flush_on_stop vrrp_garp_extra_if
	vrrp_vmac_garp_intvl vrrp_vmac_garp_all_if
	nftables nftables_priority nftables_counters nftables_ifindex nftables_ipvs
	nftables_ipvs_priority nftables_ipvs_start_fwmark vrrp_iptables vrrp_ipsets
	disable_local_igmp vrrp_notify_priority_changes max_auto_priority
	min_auto_priority_delay vrrp_priority checker_priority bfd_priority
	vrrp_no_swap checker_no_swap bfd_no_swap vrrp_cpu_affinity
	checker_cpu_affinity bfd_cpu_affinity vrrp_rt_priority checker_rt_priority
	bfd_rt_priority vrrp_rlimit_rttime checker_rlimit_rttime bfd_rlimit_rttime
	snmp_socket enable_snmp_vrrp enable_snmp_keepalived enable_snmp_checker
	enable_snmp_rfc enable_snmp_rfcv2 enable_snmp_rfcv3 enable_traps enable_dbus
	dbus_service_name notify_fifo notify_fifo_script vrrp_notify_fifo
	vrrp_notify_fifo_script lvs_notify_fifo lvs_notify_fifo_script
	fifo_write_vrrp_states_on_reload vrrp_netlink_cmd_rcv_bufs
	vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs
	vrrp_netlink_monitor_rcv_bufs_force lvs_netlink_cmd_rcv_bufs
	lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
	lvs_netlink_monitor_rcv_bufs_force process_monitor_rcv_bufs
	process_monitor_rcv_bufs_force vrrp_rx_bufs_policy vrrp_rx_bufs_multiplier
	rs_init_notifies no_checker_emails umask vrrp_startup_delay log_unknown_vrids
	vmac_prefix vmac_addr_prefix random_seed reload_check_config include_check
	reload_time_file reload_repeat reload_file data_use_instance`)

// vrrp_instance keywords vrrpdoctor does not use.
var unusedInstance = set(`
	vrf use_vmac_addr use_ipvlan track_file track_process track_bfd
	track_src_ip unicast_fault_no_peer garp_extra_if promote_secondaries
	virtual_routes virtual_rules debug notify_deleted notify_master_rx_lower_pri
	notify_priority_changes smtp_alert kernel_rx_buf_size linkbeat_use_polling
	lvs_sync_daemon_interface`)

// vrrp_script keywords vrrpdoctor does not use: none.
var unusedScript = set(``)

// vrrp_sync_group keywords vrrpdoctor does not use.
var unusedSyncGroup = set(`
	track_file track_process track_bfd notify_deleted notify_priority_changes
	smtp_alert global_tracking`)

// Keywords that open a block of their own.
var blockKeywords = set(`
	authentication virtual_ipaddress virtual_ipaddress_excluded unicast_peer
	track_interface track_script group`)

// Keywords vrrpdoctor reads, per block.
var (
	handledGlobal = set(`
		router_id vrrp_version vrrp_mcast_group4 vrrp_mcast_group6 script_user
		enable_script_security vrrp_strict vrrp_garp_master_delay
		vrrp_garp_master_repeat vrrp_garp_master_refresh
		vrrp_garp_master_refresh_repeat vrrp_garp_lower_prio_delay
		vrrp_garp_lower_prio_repeat vrrp_garp_interval vrrp_gna_interval
		vrrp_min_garp vrrp_down_timer_adverts vrrp_lower_prio_no_advert
		vrrp_higher_prio_send_advert vrrp_check_unicast_src
		vrrp_skip_check_adv_addr dynamic_interfaces`)
	handledInstance = set(`
		state interface virtual_router_id priority advert_int version nopreempt
		preempt preempt_delay accept no_accept strict_mode lower_prio_no_advert
		higher_prio_send_advert skip_check_adv_addr authentication
		virtual_ipaddress virtual_ipaddress_excluded unicast_src_ip mcast_src_ip
		mcast_dst_ip unicast_peer unicast_ttl check_unicast_src
		old_unicast_checksum native_ipv6 track_interface track_script
		dont_track_primary notify notify_master notify_backup notify_fault
		notify_stop garp_master_delay garp_master_repeat garp_master_refresh
		garp_master_refresh_repeat garp_lower_prio_delay garp_lower_prio_repeat
		down_timer_adverts use_vmac vmac_xmit_base`)
	handledScript    = set(`script interval timeout weight rise fall user init_fail`)
	handledSyncGroup = set(`
		group track_interface track_script notify notify_master notify_backup
		notify_fault notify_stop sync_group_tracking_weight`)
)
