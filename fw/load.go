package fw

import (
	"bytes"
	"fmt"
	"os"

	"github.com/vrrpdoctor/vrrpdoctor/fw/firewalld"
	"github.com/vrrpdoctor/vrrpdoctor/fw/iptsave"
	"github.com/vrrpdoctor/vrrpdoctor/fw/nftjson"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Format is a saved ruleset's format.
type Format string

// Formats LoadFiles reads.
const (
	FormatNFTJSON      Format = "nft-json"      // nft -j list ruleset
	FormatIptablesSave Format = "iptables-save" // iptables-save / ip6tables-save, either flavour
	// FormatFirewalldDirect is firewalld's /etc/firewalld/direct.xml: it
	// holds no ruleset, but tells which saved iptables rules are
	// firewalld's direct rules (as the live D-Bus reading does).
	FormatFirewalldDirect Format = "firewalld-direct-xml"
)

// DetectFormat tells nft JSON, iptables-save text and firewalld's
// direct.xml apart by content.
func DetectFormat(data []byte) (Format, error) {
	switch {
	case nftjson.Looks(data):
		return FormatNFTJSON, nil
	case iptsave.Looks(data):
		return FormatIptablesSave, nil
	case firewalld.LooksDirectXML(data):
		return FormatFirewalldDirect, nil
	}
	t := bytes.TrimSpace(data)
	switch {
	case len(t) == 0:
		return "", fmt.Errorf("empty file")
	case t[0] == '{':
		return "", fmt.Errorf("JSON, but not `nft -j list ruleset` output (no top-level \"nftables\" key)")
	case bytes.HasPrefix(t, []byte("table ")):
		return "", fmt.Errorf("nft text syntax; save the ruleset with `nft -j list ruleset` instead")
	}
	return "", fmt.Errorf("neither `nft -j list ruleset` JSON, iptables-save output nor firewalld's direct.xml")
}

// Parse reads one saved ruleset, nft JSON or iptables-save text; name is
// used in errors.
func Parse(name string, data []byte, opts iptsave.Options) (*ruleset.Ruleset, error) {
	f, err := DetectFormat(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	switch f {
	case FormatFirewalldDirect:
		return nil, fmt.Errorf("%s: firewalld's direct.xml holds no ruleset; give it with the saved rulesets", name)
	case FormatNFTJSON:
		rs, err := nftjson.Parse(data, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return rs, nil
	}
	return iptsave.Parse(data, name, opts)
}

// LoadFiles reads saved rulesets of one host (any mix of nft JSON and
// iptables-save files of both flavours and families) into one Ruleset.
// firewalld's direct.xml among them marks the iptables rules it adds as
// firewalld's.
//
// iptables-nft tables appear both in `nft -j list ruleset` and in
// iptables-nft-save; given both, the JSON's tables are kept (with their
// handles and priorities) and take the save file's rule text, and, for rules
// where nft could not decode an xt extension, the save file's matches.
func LoadFiles(paths []string, opts iptsave.Options) (*ruleset.Ruleset, error) {
	var nft, ipt []*ruleset.Ruleset
	var direct []firewalld.DirectRule
	var directFiles []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if firewalld.LooksDirectXML(data) {
			rules, err := firewalld.ParseDirectXML(data, p)
			if err != nil {
				return nil, err
			}
			direct = append(direct, rules...)
			directFiles = append(directFiles, p)
			continue
		}
		rs, err := Parse(p, data, opts)
		if err != nil {
			return nil, err
		}
		if f, _ := DetectFormat(data); f == FormatNFTJSON {
			nft = append(nft, rs)
		} else {
			ipt = append(ipt, rs)
		}
	}
	out := &ruleset.Ruleset{}
	for _, rs := range nft {
		if err := out.Add(rs); err != nil {
			return nil, err
		}
	}
	for _, rs := range ipt {
		rest := &ruleset.Ruleset{Sources: rs.Sources}
		for _, t := range rs.Tables {
			if t.Backend == ruleset.BackendIptablesNFT && len(nft) > 0 {
				if err := mergeSaved(out, t); err != nil {
					return nil, err
				}
				continue
			}
			rest.Tables = append(rest.Tables, t)
		}
		if err := out.Add(rest); err != nil {
			return nil, err
		}
	}
	if len(directFiles) > 0 {
		(&firewalld.Info{Direct: direct}).MarkDirectRules(out)
		out.Sources = append(out.Sources, directFiles...)
	}
	return out, nil
}

// mergeSaved folds an iptables-nft-save table into the same table read from
// nft JSON.
func mergeSaved(rs *ruleset.Ruleset, saved *ruleset.Table) error {
	var j *ruleset.Table
	for _, t := range rs.Tables {
		if t.Family == saved.Family && t.Name == saved.Name && t.Backend != ruleset.BackendIptablesLegacy {
			j = t
		}
	}
	if j == nil {
		return fmt.Errorf("%s lists iptables-nft table %s %s, which the nft JSON does not have: were they saved on different hosts or at different times?", saved.Source, saved.Family, saved.Name)
	}
	for _, sc := range saved.Chains {
		jc := j.Chain(sc.Name)
		if jc == nil && len(sc.Rules) == 0 {
			// iptables-nft creates built-in chains only when used, while
			// iptables-nft-save prints them all.
			continue
		}
		if jc == nil || len(jc.Rules) != len(sc.Rules) {
			n := 0
			if jc != nil {
				n = len(jc.Rules)
			}
			return fmt.Errorf("%s and %s disagree on chain %s of table %s %s (%d rules against %d): were they saved at different times?",
				saved.Source, j.Source, sc.Name, j.Family, j.Name, len(sc.Rules), n)
		}
		for i, sr := range sc.Rules {
			jr := jc.Rules[i]
			jr.Text, jr.Comment = sr.Text, sr.Comment
			jr.Origin = jr.Origin + ", " + sr.Origin
			if hasXT(jr.Exprs) {
				jr.Exprs = sr.Exprs
			}
		}
	}
	j.Backend = ruleset.BackendIptablesNFT
	return nil
}

func hasXT(xs []ruleset.Expr) bool {
	for _, x := range xs {
		if u, ok := x.(ruleset.Unsupported); ok && u.Kind == "xt" {
			return true
		}
	}
	return false
}
