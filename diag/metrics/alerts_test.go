package metrics

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const alertsFile = "../../docs/prometheus-alerts.yml"

// ruleFile is the structure of a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// describedLabels returns each metric the Collector writes, with its
// labels.
func describedLabels(t *testing.T) map[string][]string {
	t.Helper()
	f := newFake()
	c := New(f.sources(), BuildInfo{Version: "dev"})
	observeSome(c)
	mfs, err := gatherer(t, c).Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !slices.Contains(out[mf.GetName()], lp.GetName()) {
					out[mf.GetName()] = append(out[mf.GetName()], lp.GetName())
				}
			}
		}
		if _, ok := out[mf.GetName()]; !ok {
			out[mf.GetName()] = nil
		}
	}
	return out
}

var (
	metricRef   = regexp.MustCompile(`\b(vrrpdoctor_[a-z_]+)(\{[^}]*\})?`)
	selectorKey = regexp.MustCompile(`([a-z_]+)\s*(=~|!=|!~|=)`)
	byClause    = regexp.MustCompile(`by \(([^)]*)\)`)
)

// TestAlertRules: docs/prometheus-alerts.yml is a well-formed rule file
// whose expressions use only metrics and labels the Collector exports,
// with a severity and a summary on every alert.
func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	if len(rf.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	metrics := describedLabels(t)
	// Target labels Prometheus adds at scrape time.
	target := []string{"job", "instance"}
	names := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: no name or no rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || names[r.Alert] {
				t.Errorf("rule without a name or a duplicate: %q", r.Alert)
			}
			names[r.Alert] = true
			if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
				t.Errorf("%s: severity %q", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") {
				t.Errorf("%s: unbalanced parentheses in %q", r.Alert, r.Expr)
			}
			refs := metricRef.FindAllStringSubmatch(r.Expr, -1)
			if len(refs) == 0 && !strings.Contains(r.Expr, `up{job="vrrpdoctor"}`) {
				t.Errorf("%s: uses no vrrpdoctor metric: %q", r.Alert, r.Expr)
			}
			var used []string
			for _, m := range refs {
				labels, ok := metrics[m[1]]
				if !ok {
					t.Errorf("%s: %s is not exported", r.Alert, m[1])
					continue
				}
				used = append(used, labels...)
				for _, k := range selectorKey.FindAllStringSubmatch(m[2], -1) {
					if !slices.Contains(labels, k[1]) {
						t.Errorf("%s: %s has no label %q", r.Alert, m[1], k[1])
					}
				}
			}
			for _, by := range byClause.FindAllStringSubmatch(r.Expr, -1) {
				for _, l := range strings.Split(by[1], ",") {
					l = strings.TrimSpace(l)
					if !slices.Contains(used, l) && !slices.Contains(target, l) {
						t.Errorf("%s: groups by %q, which its metrics lack", r.Alert, l)
					}
				}
			}
		}
	}
	for _, want := range []string{"VRRPSplitBrain", "VRRPAdvertsSilentlyDropped", "VRRPAdvertSendErrors", "VRRPFlapping"} {
		if !names[want] {
			t.Errorf("no %s alert", want)
		}
	}

	// promtool, where installed, checks the expressions for real and runs
	// the rules against series shaped as run writes them
	// (testdata/alerts_test.yml: each alert fires on its case, with its
	// labels and annotations, and not on the healthy ones).
	if pt, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(pt, "check", "rules", alertsFile).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules: %v\n%s", err, out)
		}
		cmd := exec.Command(pt, "test", "rules", "alerts_test.yml")
		cmd.Dir = "testdata"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool test rules: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed (Debian: prometheus); expressions checked by structure only")
	}
}
