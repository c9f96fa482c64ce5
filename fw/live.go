package fw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftjson"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftlive"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
	"github.com/vrrpdoctor/vrrpdoctor/fw/trace"
)

// ReadLive reads the ruleset of the current network namespace:
//
//   - nftables (native and iptables-nft tables) over netlink with
//     google/nftables; rules it could not decode in full are completed from
//     `nft -j list ruleset` when nft is installed, and stay marked
//     incomplete (so evaluated as unknown) otherwise;
//
//   - iptables-nft rule text and xt extensions from iptables-nft-save and
//     ip6tables-nft-save, when installed;
//
//   - iptables-legacy tables, which nft cannot see, from
//     iptables-legacy-save and ip6tables-legacy-save when
//     /proc/net/ip{,6}_tables_names lists any.
//
//   - firewalld, when it runs, over D-Bus: its settings, and which iptables
//     rules are its direct rules (their owner is then firewalld).
//
// The warnings say what could not be read. Reading needs CAP_NET_ADMIN.
func ReadLive(ctx context.Context) (*Live, error) {
	rs, warnings, err := readLiveRuleset(ctx)
	if err != nil {
		return nil, err
	}
	live := &Live{Ruleset: rs, Warnings: warnings}
	info, err := firewalld.Query(ctx, firewalld.Options{})
	switch {
	case err != nil && noBus(err):
		// No system bus, so no firewalld.
	case err != nil:
		live.Warnings = append(live.Warnings, err.Error())
	case info.Running:
		live.Firewalld = info
		info.MarkDirectRules(rs)
		rs.Sources = append(rs.Sources, "firewalld "+info.Version+" (D-Bus)")
	}
	return live, nil
}

// Live is a ruleset as Read found it (live, or from saved files), with the
// warnings of its reading and, live, what firewalld said.
type Live struct {
	Ruleset  *ruleset.Ruleset
	Warnings []string
	// Firewalld is nil when firewalld does not run.
	Firewalld *firewalld.Info
}

// noBus reports whether err says there is no system bus to connect to.
func noBus(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) ||
		strings.Contains(err.Error(), "system bus not found") || // godbus, when no socket exists
		strings.Contains(err.Error(), "no such file or directory") || strings.Contains(err.Error(), "connection refused")
}

func readLiveRuleset(ctx context.Context) (*ruleset.Ruleset, []string, error) {
	var warnings []string
	rs, err := nftlive.Read(nftlive.Options{})
	if err != nil {
		return nil, nil, err
	}
	dropTraceTables(rs)
	if w := completeFromNftJSON(ctx, rs); w != "" {
		warnings = append(warnings, w)
	}
	for _, tool := range []struct {
		name string
		fam  ruleset.Family
	}{{"iptables-nft-save", ruleset.FamilyIP}, {"ip6tables-nft-save", ruleset.FamilyIP6}} {
		if !hasBackendTables(rs, ruleset.BackendIptablesNFT, tool.fam) {
			continue
		}
		out, err := run(ctx, tool.name)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: %v; iptables-nft rules are shown in nft syntax, and xt extensions nft could not decode stay unknown", tool.name, err))
			continue
		}
		saved, err := iptsave.Parse(out, tool.name, iptsave.Options{Backend: ruleset.BackendIptablesNFT, Family: tool.fam})
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: %v", tool.name, err))
			continue
		}
		for _, t := range saved.Tables {
			if err := mergeSaved(rs, t); err != nil {
				warnings = append(warnings, err.Error())
			}
		}
		rs.Sources = append(rs.Sources, tool.name)
	}
	for _, leg := range []struct {
		proc, tool string
		fam        ruleset.Family
	}{{"/proc/net/ip_tables_names", "iptables-legacy-save", ruleset.FamilyIP}, {"/proc/net/ip6_tables_names", "ip6tables-legacy-save", ruleset.FamilyIP6}} {
		names, err := os.ReadFile(leg.proc)
		if err != nil || len(bytes.TrimSpace(names)) == 0 {
			continue // no legacy table loaded in this namespace
		}
		out, err := run(ctx, leg.tool)
		var saved *ruleset.Ruleset
		if err == nil {
			saved, err = iptsave.Parse(out, leg.tool, iptsave.Options{Backend: ruleset.BackendIptablesLegacy, Family: leg.fam})
		}
		if err != nil {
			why := fmt.Sprintf("%s lists legacy tables (%s) but %s failed: %v", leg.proc, strings.Join(strings.Fields(string(names)), ", "), leg.tool, err)
			warnings = append(warnings, why)
			for _, n := range strings.Fields(string(names)) {
				rs.Tables = append(rs.Tables, &ruleset.Table{Backend: ruleset.BackendIptablesLegacy, Family: leg.fam, Name: n, Source: leg.proc, Incomplete: why})
			}
			continue
		}
		if err := rs.Add(saved); err != nil {
			return nil, nil, err
		}
	}
	return rs, warnings, nil
}

func hasBackendTables(rs *ruleset.Ruleset, b ruleset.Backend, f ruleset.Family) bool {
	for _, t := range rs.Tables {
		if t.Backend == b && t.Family == f {
			return true
		}
	}
	return false
}

// run runs a read-only tool and returns its standard output.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("not installed")
	}
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
		}
		return nil, err
	}
	return out, nil
}

// completeFromNftJSON replaces the rules google/nftables could not decode in
// full with nft's own reading of them, matched by family, table, chain and
// handle. It returns a warning when some rules stay incomplete.
func completeFromNftJSON(ctx context.Context, rs *ruleset.Ruleset) string {
	var incomplete []*ruleset.Rule
	type key struct {
		fam          ruleset.Family
		table, chain string
		handle       uint64
	}
	where := map[*ruleset.Rule]key{}
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				if r.Incomplete != "" {
					incomplete = append(incomplete, r)
					where[r] = key{t.Family, t.Name, c.Name, r.Handle}
				}
			}
		}
	}
	if len(incomplete) == 0 {
		return ""
	}
	out, err := run(ctx, "nft", "-j", "list", "ruleset")
	if err != nil {
		return fmt.Sprintf("%d rule(s) hold expressions google/nftables cannot decode and `nft -j list ruleset` failed (%v): they are evaluated as unknown", len(incomplete), err)
	}
	js, err := nftjson.Parse(out, "nft -j list ruleset")
	if err != nil {
		return fmt.Sprintf("%d rule(s) hold expressions google/nftables cannot decode and nft's JSON could not be read (%v): they are evaluated as unknown", len(incomplete), err)
	}
	byKey := map[key]*ruleset.Rule{}
	for _, t := range js.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				byKey[key{t.Family, t.Name, c.Name, r.Handle}] = r
			}
		}
	}
	left := 0
	for _, r := range incomplete {
		j, ok := byKey[where[r]]
		if !ok {
			left++
			continue
		}
		r.Exprs, r.Text, r.Comment, r.Incomplete = j.Exprs, j.Text, j.Comment, ""
		r.Origin += ", completed from nft -j list ruleset"
	}
	rs.Sources = append(rs.Sources, "nft -j list ruleset")
	if left > 0 {
		return fmt.Sprintf("%d rule(s) changed between the netlink read and nft's; they are evaluated as unknown", left)
	}
	return ""
}

// dropTraceTables leaves out vrrpdoctor's own trace tables (they only set
// nftrace on VRRP packets, and exist only while a trace runs or after one
// was killed).
func dropTraceTables(rs *ruleset.Ruleset) {
	kept := rs.Tables[:0]
	for _, t := range rs.Tables {
		if t.Backend == ruleset.BackendNFT && t.Name == trace.TableName && (t.Family == ruleset.FamilyInet || t.Family == ruleset.FamilyNetdev) {
			continue
		}
		kept = append(kept, t)
	}
	rs.Tables = kept
}
