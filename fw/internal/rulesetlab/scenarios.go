package main

import "fmt"

// scenario is one host firewall: how it is built (a real firewalld and/or a
// shell script run in the host namespace) and which advert is observed.
type scenario struct {
	name, about string
	firewalld   string // "", "nftables", "iptables" or "iptables-legacy"
	family      int    // 4 (default) or 6
	out         bool   // observe the host's own adverts leaving (default: the peer's arriving)
	setup       string // sh -e script run in the host namespace
}

func (s scenario) direction() string {
	if s.out {
		return "out"
	}
	return "in"
}

const directRules = `firewall-cmd -q --permanent --direct --add-rule ipv4 filter INPUT 0 --in-interface eth0 --destination 224.0.0.18 --protocol vrrp -j ACCEPT
firewall-cmd -q --permanent --direct --add-rule ipv4 filter OUTPUT 0 --out-interface eth0 --destination 224.0.0.18 --protocol vrrp -j ACCEPT
firewall-cmd -q --reload
`

const richRule = `firewall-cmd -q --permanent --add-rich-rule='rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'
firewall-cmd -q --reload
`

// dockerRules are docker 24's iptables rules for the default bridge; the
// first %s is the INPUT policy, the second extra INPUT rules.
const dockerRules = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
COMMIT
*filter
:INPUT %s [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
%s-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
`

// kubeRules are kube-proxy's (iptables mode) filter and nat chains with the
// default/kubernetes service.
const kubeRules = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -m comment --comment "kubernetes forwarding rules" -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-IRMT6RY5EEEBXDAY - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-IRMT6RY5EEEBXDAY -s 198.51.100.50/32 -m comment --comment "default/kubernetes:https" -j KUBE-MARK-MASQ
-A KUBE-SEP-IRMT6RY5EEEBXDAY -p tcp -m comment --comment "default/kubernetes:https" -m tcp -j DNAT --to-destination 198.51.100.50:6443
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-NPX46M4PTMTKRN6Y ! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-MARK-MASQ
-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https -> 198.51.100.50:6443" -j KUBE-SEP-IRMT6RY5EEEBXDAY
COMMIT
`

// ufwRules is the filter table ufw 0.36 writes from its default
// before.rules/after.rules with "ufw allow 22/tcp"; %s adds lines to
// ufw-before-input just before the jump to ufw-user-input.
const ufwRules = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ufw-after-forward - [0:0]
:ufw-after-input - [0:0]
:ufw-after-logging-forward - [0:0]
:ufw-after-logging-input - [0:0]
:ufw-after-logging-output - [0:0]
:ufw-after-output - [0:0]
:ufw-before-forward - [0:0]
:ufw-before-input - [0:0]
:ufw-before-logging-forward - [0:0]
:ufw-before-logging-input - [0:0]
:ufw-before-logging-output - [0:0]
:ufw-before-output - [0:0]
:ufw-logging-allow - [0:0]
:ufw-logging-deny - [0:0]
:ufw-not-local - [0:0]
:ufw-reject-forward - [0:0]
:ufw-reject-input - [0:0]
:ufw-reject-output - [0:0]
:ufw-skip-to-policy-forward - [0:0]
:ufw-skip-to-policy-input - [0:0]
:ufw-skip-to-policy-output - [0:0]
:ufw-track-forward - [0:0]
:ufw-track-input - [0:0]
:ufw-track-output - [0:0]
:ufw-user-forward - [0:0]
:ufw-user-input - [0:0]
:ufw-user-limit - [0:0]
:ufw-user-limit-accept - [0:0]
:ufw-user-logging-forward - [0:0]
:ufw-user-logging-input - [0:0]
:ufw-user-logging-output - [0:0]
:ufw-user-output - [0:0]
-A INPUT -j ufw-before-logging-input
-A INPUT -j ufw-before-input
-A INPUT -j ufw-after-input
-A INPUT -j ufw-after-logging-input
-A INPUT -j ufw-reject-input
-A INPUT -j ufw-track-input
-A FORWARD -j ufw-before-logging-forward
-A FORWARD -j ufw-before-forward
-A FORWARD -j ufw-after-forward
-A FORWARD -j ufw-after-logging-forward
-A FORWARD -j ufw-reject-forward
-A FORWARD -j ufw-track-forward
-A OUTPUT -j ufw-before-logging-output
-A OUTPUT -j ufw-before-output
-A OUTPUT -j ufw-after-output
-A OUTPUT -j ufw-after-logging-output
-A OUTPUT -j ufw-reject-output
-A OUTPUT -j ufw-track-output
-A ufw-after-forward -j ufw-user-logging-forward
-A ufw-after-input -p udp -m udp --dport 137 -j ufw-skip-to-policy-input
-A ufw-after-input -p udp -m udp --dport 138 -j ufw-skip-to-policy-input
-A ufw-after-input -p tcp -m tcp --dport 139 -j ufw-skip-to-policy-input
-A ufw-after-input -p tcp -m tcp --dport 445 -j ufw-skip-to-policy-input
-A ufw-after-input -p udp -m udp --dport 67 -j ufw-skip-to-policy-input
-A ufw-after-input -p udp -m udp --dport 68 -j ufw-skip-to-policy-input
-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input
-A ufw-after-logging-input -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-after-output -j ufw-user-logging-output
-A ufw-before-input -i lo -j ACCEPT
-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-input -m conntrack --ctstate INVALID -j ufw-logging-deny
-A ufw-before-input -m conntrack --ctstate INVALID -j DROP
-A ufw-before-input -p icmp -m icmp --icmp-type 3 -j ACCEPT
-A ufw-before-input -p icmp -m icmp --icmp-type 11 -j ACCEPT
-A ufw-before-input -p icmp -m icmp --icmp-type 12 -j ACCEPT
-A ufw-before-input -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A ufw-before-input -p udp -m udp --sport 67 --dport 68 -j ACCEPT
-A ufw-before-input -j ufw-not-local
-A ufw-before-input -d 224.0.0.251/32 -p udp -m udp --dport 5353 -j ACCEPT
-A ufw-before-input -d 239.255.255.250/32 -p udp -m udp --dport 1900 -j ACCEPT
%s-A ufw-before-input -j ufw-user-input
-A ufw-before-output -o lo -j ACCEPT
-A ufw-before-output -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-output -j ufw-user-output
-A ufw-logging-deny -m conntrack --ctstate INVALID -m limit --limit 3/min --limit-burst 10 -j RETURN
-A ufw-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-not-local -m addrtype --dst-type LOCAL -j RETURN
-A ufw-not-local -m addrtype --dst-type MULTICAST -j RETURN
-A ufw-not-local -m addrtype --dst-type BROADCAST -j RETURN
-A ufw-not-local -m limit --limit 3/min --limit-burst 10 -j ufw-logging-deny
-A ufw-not-local -j DROP
-A ufw-skip-to-policy-forward -j DROP
-A ufw-skip-to-policy-input -j DROP
-A ufw-skip-to-policy-output -j ACCEPT
-A ufw-track-output -p tcp -m conntrack --ctstate NEW -j ACCEPT
-A ufw-track-output -p udp -m conntrack --ctstate NEW -j ACCEPT
-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT
-A ufw-user-limit -m limit --limit 3/min -j LOG --log-prefix "[UFW LIMIT BLOCK] "
-A ufw-user-limit -j REJECT --reject-with icmp-port-unreachable
-A ufw-user-limit-accept -j ACCEPT
COMMIT
`

const nftHandSets = `table inet hand {
	set vrrp_peers { type ipv4_addr; flags interval; elements = { 198.51.100.0/28, 203.0.113.5 } }
	set pairs { type ifname . ipv4_addr; elements = { "eth0" . 224.0.0.18 } }
	map protoverdict { type inet_proto : verdict; elements = { vrrp : accept, tcp : drop } }
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iif lo accept
		meta l4proto { tcp, udp } th dport 22 accept
		iifname . ip daddr @pairs jump vrrp_in
		reject with icmpx admin-prohibited
	}
	chain vrrp_in {
		ip saddr != @vrrp_peers drop
		ip ttl != 255 counter drop
		meta l4proto vmap @protoverdict
	}
}
`

// nftLoad is a setup script loading an nft ruleset from a file written by
// Go (no shell here-document), so the script stays a single command.
func nftLoad(ruleset string) string {
	return "printf '%s' " + shQuote(ruleset) + " | nft -f -\n"
}

// iptRestore loads save-format rules with the given restore tool.
func iptRestore(tool, rules string) string {
	return "printf '%s' " + shQuote(rules) + " | " + tool + "\n"
}

func shQuote(s string) string {
	out := "'"
	for _, r := range s {
		if r == '\'' {
			out += `'\''`
		} else {
			out += string(r)
		}
	}
	return out + "'"
}

var scenarios = []scenario{
	{name: "firewalld-nft-default", firewalld: "nftables",
		about: "firewalld 1.3.3, nftables backend, default zone public, nothing added"},
	{name: "firewalld-nft-direct", firewalld: "nftables", setup: directRules,
		about: "firewalld nftables backend + the classic direct rules (ipv4 filter INPUT/OUTPUT, -p vrrp -d 224.0.0.18, -j ACCEPT)"},
	{name: "firewalld-nft-direct-out", firewalld: "nftables", setup: directRules, out: true,
		about: "as firewalld-nft-direct, observing the host's own adverts going out"},
	{name: "firewalld-nft-rich", firewalld: "nftables", setup: richRule,
		about: "firewalld nftables backend + rich rule family=ipv4 destination 224.0.0.18 protocol vrrp accept"},
	{name: "firewalld-nft-protocol", firewalld: "nftables",
		setup: "firewall-cmd -q --permanent --add-protocol=vrrp\nfirewall-cmd -q --reload\n",
		about: "firewalld nftables backend + --add-protocol=vrrp in the default zone"},
	{name: "firewalld-nft-trusted", firewalld: "nftables",
		setup: "firewall-cmd -q --permanent --zone=trusted --add-interface=eth0\nfirewall-cmd -q --reload\n",
		about: "firewalld nftables backend, eth0 bound to zone trusted"},
	{name: "firewalld-nft-ipv6-default", firewalld: "nftables", family: 6,
		about: "firewalld nftables backend, default zone, VRRPv3 over IPv6 (fe80::1 -> ff02::12)"},
	{name: "firewalld-nft-ipv6-rich", firewalld: "nftables", family: 6,
		setup: "firewall-cmd -q --permanent --add-rich-rule='rule family=\"ipv6\" destination address=\"ff02::12\" protocol value=\"vrrp\" accept'\nfirewall-cmd -q --reload\n",
		about: "firewalld nftables backend + IPv6 rich rule for ff02::12 protocol vrrp, VRRPv3 over IPv6"},
	{name: "firewalld-ipt-default", firewalld: "iptables",
		about: "firewalld 1.3.3, FirewallBackend=iptables (Debian's iptables = iptables-nft), default zone"},
	{name: "firewalld-ipt-direct", firewalld: "iptables", setup: directRules,
		about: "firewalld iptables backend (iptables-nft) + the classic direct rules"},
	{name: "firewalld-ipt-rich", firewalld: "iptables", setup: richRule,
		about: "firewalld iptables backend (iptables-nft) + rich rule for vrrp to 224.0.0.18"},
	{name: "firewalld-legacy-default", firewalld: "iptables-legacy",
		about: "firewalld iptables backend with the iptables-legacy binaries (as on CentOS 7), default zone"},
	{name: "firewalld-legacy-direct", firewalld: "iptables-legacy", setup: directRules,
		about: "firewalld iptables backend with iptables-legacy + the classic direct rules"},
	{name: "firewalld-nft-default-out", firewalld: "nftables", out: true,
		about: "firewalld nftables backend, default zone, the host's own adverts going out"},
	{name: "docker-like", setup: iptRestore("iptables-nft-restore", fmt.Sprintf(dockerRules, "ACCEPT", "")),
		about: "docker 24's iptables-nft chains (nat DOCKER, filter DOCKER-USER/ISOLATION), INPUT policy ACCEPT"},
	{name: "docker-like-input-drop",
		setup: iptRestore("iptables-nft-restore", fmt.Sprintf(dockerRules, "DROP",
			"-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n")),
		about: "docker's chains plus a hand-written INPUT policy DROP allowing only lo, established and ssh"},
	{name: "kube-proxy-like", setup: iptRestore("iptables-nft-restore", kubeRules),
		about: "kube-proxy (iptables mode) filter and nat chains with one service, via iptables-nft-restore"},
	{name: "kube-proxy-like-out", setup: iptRestore("iptables-nft-restore", kubeRules), out: true,
		about: "as kube-proxy-like, the host's own adverts going out through nat OUTPUT/KUBE-POSTROUTING"},
	{name: "ufw-like", setup: iptRestore("iptables-nft-restore", fmt.Sprintf(ufwRules, "")),
		about: "ufw's default filter chains (before/after/user, policy DROP) with ssh allowed, via iptables-nft-restore"},
	{name: "ufw-like-vrrp", setup: iptRestore("iptables-nft-restore", fmt.Sprintf(ufwRules, "-A ufw-before-input -d 224.0.0.18/32 -p vrrp -j ACCEPT\n")),
		about: "ufw-like plus the usual before.rules line accepting vrrp to 224.0.0.18"},
	{name: "ufw-like-out", setup: iptRestore("iptables-nft-restore", fmt.Sprintf(ufwRules, "")), out: true,
		about: "ufw-like, the host's own adverts going out (OUTPUT policy ACCEPT)"},
	{name: "nft-hand-sets", setup: nftLoad(nftHandSets),
		about: "hand-written nft: concatenated set (ifname . ipv4_addr) -> jump, interval set of peers, verdict map on l4proto"},
	{name: "nft-hand-goto-drop", setup: nftLoad(`table ip hand {
	chain input {
		type filter hook input priority 0; policy accept;
		meta l4proto vrrp goto vrrp_chk
		drop
	}
	chain vrrp_chk {
		ip saddr 203.0.113.0/24 accept
		meta pkttype multicast jump deny
	}
	chain deny {
		counter drop
	}
}
`), about: "hand-written nft: goto to a chain that jumps to a drop chain for multicast adverts"},
	{name: "nft-hand-goto-policy", setup: nftLoad(`table ip hand {
	chain input {
		type filter hook input priority 0; policy accept;
		ip protocol vrrp goto vrrp_chk
		ip protocol vrrp drop
	}
	chain vrrp_chk {
		ip saddr 203.0.113.0/24 drop
		ip daddr 224.0.0.18 jump log_it
	}
	chain log_it {
		counter
		ip ttl 255 return
		drop
	}
}
`), about: "hand-written nft: goto'd chain falls off its end, so the base chain's policy (accept) applies, not its next rule"},
	{name: "nft-mark-map", setup: nftLoad(`table inet mangle {
	chain pre {
		type filter hook prerouting priority mangle; policy accept;
		meta mark set ip daddr map { 224.0.0.18 : 0x10, 224.0.0.251 : 0x20 }
	}
}
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		meta mark & 0xf0 == 0x10 drop
	}
}
`), about: "mark set from a map in prerouting (mangle), dropped on the mark in input"},
	{name: "nft-notrack", setup: nftLoad(`table inet raw {
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		meta l4proto vrrp notrack
	}
}
table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state new accept
		ct state untracked counter
	}
}
`), about: "notrack in raw prerouting; input accepts only ct state new, so the untracked advert meets policy drop"},
	{name: "legacy-accept-nft-drop", setup: "iptables-legacy -A INPUT -p vrrp -j ACCEPT\n" + nftLoad(`table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		meta l4proto vrrp drop
	}
}
`), about: "iptables-legacy INPUT accepts vrrp, a native nft inet table drops it"},
	{name: "legacy-drop-nft-accept", setup: "iptables-legacy -A INPUT -d 224.0.0.18 -p vrrp -j DROP\n" + nftLoad(`table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		meta l4proto vrrp accept
	}
}
`), about: "iptables-legacy INPUT drops vrrp (invisible to nft), native nft accepts it"},
	{name: "three-flavours-accept", setup: `iptables-legacy -P INPUT DROP
iptables-legacy -A INPUT -p vrrp -j ACCEPT
iptables-nft -P INPUT DROP
iptables-nft -A INPUT -p 112 -j ACCEPT
` + nftLoad(`table inet filter {
	chain input {
		type filter hook input priority filter + 5; policy drop;
		ip protocol vrrp accept
	}
}
`), about: "iptables-legacy, iptables-nft and native nft all with policy DROP, each accepting vrrp"},
	{name: "raw-prerouting-drop", setup: "iptables-nft -t raw -A PREROUTING -p vrrp -j DROP\niptables-nft -A INPUT -p vrrp -j ACCEPT\n",
		about: "iptables-nft raw PREROUTING drops vrrp before filter INPUT could accept it"},
	{name: "mangle-prerouting-drop-legacy", setup: "iptables-legacy -t mangle -A PREROUTING -d 224.0.0.18/32 -j DROP\n",
		about: "iptables-legacy mangle PREROUTING drops everything to 224.0.0.18"},
	{name: "nft-accept-vrrp", setup: nftLoad(`table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iifname "eth*" ip protocol vrrp ip daddr 224.0.0.18 accept
	}
}
`), about: `native nft input policy drop, accepting vrrp to 224.0.0.18 on iifname "eth*"`},
	{name: "iptables-nft-wildcard", setup: "iptables-nft -P INPUT DROP\niptables-nft -A INPUT -i eth+ -d 224.0.0.0/8 -p 112 -m pkttype --pkt-type multicast -m conntrack --ctstate NEW -j ACCEPT\n",
		about: "iptables-nft INPUT policy DROP, accepting protocol 112 on -i eth+ to 224.0.0.0/8 (pkttype multicast, ctstate NEW)"},
	{name: "nft-output-drop", out: true, setup: nftLoad(`table inet filter {
	chain output {
		type filter hook output priority filter; policy accept;
		oifname "eth0" ip daddr 224.0.0.18 meta l4proto vrrp drop
	}
}
`), about: "native nft output drops vrrp leaving eth0 (the host's own adverts)"},
	{name: "nft-two-tables-reject", setup: nftLoad(`table inet early {
	chain input {
		type filter hook input priority -10; policy accept;
		meta l4proto vrrp accept
	}
}
table ip late {
	chain input {
		type filter hook input priority 10; policy accept;
		ip daddr 224.0.0.18 reject
	}
}
`), about: "two nft tables: an accept at priority -10 does not stop a reject at priority 10"},
	{name: "ip6tables-nft-accept", family: 6, setup: "ip6tables-nft -P INPUT DROP\nip6tables-nft -A INPUT -p vrrp -d ff02::12 -j ACCEPT\n",
		about: "ip6tables-nft INPUT policy DROP accepting vrrp to ff02::12 (VRRPv3 over IPv6)"},
	{name: "nft-pkttype-output", out: true, setup: nftLoad(`table inet filter {
	chain output {
		type filter hook output priority filter; policy accept;
		meta l4proto vrrp meta pkttype multicast accept
		meta l4proto vrrp drop
	}
}
`), about: "native nft output: accept vrrp with pkttype multicast, drop other vrrp (what is pkttype on output?)"},
	{name: "nft-netdev-ingress-drop", setup: nftLoad(`table netdev filter {
	chain ingress {
		type filter hook ingress device "eth0" priority 0; policy accept;
		ip protocol vrrp drop
	}
}
`), about: "netdev ingress chain on eth0 drops vrrp (before prerouting; tcpdump still sees it)"},
	{name: "nft-limit", setup: nftLoad(`table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		meta l4proto vrrp limit rate 100/second accept
	}
}
`), about: "native nft: vrrp accepted under a rate limit, policy drop (the verdict depends on the rate)"},
	{name: "nft-jump-return", setup: nftLoad(`table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		jump checks
		meta l4proto vrrp reject with icmpx admin-prohibited
	}
	chain checks {
		ip saddr 198.51.100.1 return
		meta l4proto vrrp accept
	}
}
`), about: "native nft: return from a jumped chain before its accept, so the base chain's reject applies"},
}
