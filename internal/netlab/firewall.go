package netlab

import "strings"

// Nft runs nft with args in the host and returns its output.
func (h *Host) Nft(args ...string) (string, error) { return h.Run("nft", args...) }

// NftScript loads an nft script (as `nft -f -`) into the host's ruleset.
func (h *Host) NftScript(script string) error {
	_, err := h.RunInput(strings.NewReader(script), "nft", "-f", "-")
	return err
}

// Iptables runs iptables (the distribution's default variant, nft-based on
// Debian 12) in the host, waiting for the xtables lock.
func (h *Host) Iptables(args ...string) (string, error) {
	return h.Run("iptables", append([]string{"-w"}, args...)...)
}

// IptablesLegacy runs iptables-legacy (the kernel's x_tables) in the host.
func (h *Host) IptablesLegacy(args ...string) (string, error) {
	return h.Run("iptables-legacy", append([]string{"-w"}, args...)...)
}

// Ip6tables runs ip6tables in the host, waiting for the xtables lock.
func (h *Host) Ip6tables(args ...string) (string, error) {
	return h.Run("ip6tables", append([]string{"-w"}, args...)...)
}

// Ip6tablesLegacy runs ip6tables-legacy in the host.
func (h *Host) Ip6tablesLegacy(args ...string) (string, error) {
	return h.Run("ip6tables-legacy", append([]string{"-w"}, args...)...)
}
