package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vrrpdoctor/vrrpdoctor/diag"
)

type analyzeOptions struct {
	json bool
}

func newAnalyzeCmd(s streams) *cobra.Command {
	var o analyzeOptions
	cmd := &cobra.Command{
		Use:   "analyze [--json] FILE...",
		Short: "Analyse pcap/pcapng captures of VRRP adverts",
		Long: `analyze reads pcap and pcapng captures (tcpdump -w, dumpcap, Wireshark; "-" reads
standard input) and reports, per virtual router and sender, what was advertised:
priority and its changes, declared and observed interval, authentication,
virtual addresses, TTL and checksums. It names the problems a capture alone
shows: split brain, TTL not 255, bad checksums, version, interval,
authentication and address mismatches, and masters resigning.

Several files are read in the order given as one capture (e.g. rotated files).

Exit status (monitoring-plugin convention): 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN (a file could not be read to the end, or bad usage). A damaged or
cut short file is reported on standard error; what was read before the damage
is still analysed and shown.`,
		Example: `  vrrpdoctor analyze vrrp.pcap
  tcpdump -ni eth0 -U -w - 'ip proto 112' | vrrpdoctor analyze -
  vrrpdoctor analyze --json capture-*.pcapng`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &exitError{code: diag.ExitUnknown, err: errors.New("analyze: name at least one capture file (or - for standard input)")}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			return runAnalyze(s, o, args)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the report as JSON (schema: docs/json.md)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: diag.ExitUnknown, err: err}
	})
	return cmd
}

func runAnalyze(s streams, o analyzeOptions, files []string) error {
	c := diag.NewCaptureAnalysis()
	for _, name := range files {
		if name == "-" {
			c.AddReader(s.In, "-")
			continue
		}
		c.AddFile(name)
	}
	r := c.Report()
	for _, f := range r.Files {
		if f.Err != nil {
			fmt.Fprintf(s.ErrOut, "vrrpdoctor: warning: %v\n", f.Err)
		}
	}
	var err error
	if o.json {
		err = diag.WriteCaptureJSON(s.Out, r)
	} else {
		err = diag.WriteCaptureText(s.Out, r, diag.ColourEnabled(s.Out))
	}
	if err != nil {
		return &exitError{code: diag.ExitUnknown, err: err}
	}
	if code := r.ExitCode(); code != diag.ExitOK {
		return &exitError{code: code}
	}
	return nil
}
