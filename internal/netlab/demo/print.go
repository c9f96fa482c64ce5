package demo

import (
	"fmt"
	"io"
	"strings"

	"github.com/fatih/color"
)

// printer writes the lab's output: step headings, every command before it
// runs, and evidence highlighted. Colours are all on or all off.
type printer struct {
	w                  io.Writer
	head, cmd, dim, hl *color.Color
	ok, bad, warn      *color.Color
	step, steps        int
	selfPath           string // shown as vrrpdoctor
}

func newPrinter(w io.Writer, colour bool, selfPath string) *printer {
	p := &printer{
		w:        w,
		head:     color.New(color.Bold, color.FgBlue),
		cmd:      color.New(color.Bold),
		dim:      color.New(color.Faint),
		hl:       color.New(color.FgYellow, color.Bold),
		ok:       color.New(color.FgGreen, color.Bold),
		bad:      color.New(color.FgRed, color.Bold),
		warn:     color.New(color.FgYellow),
		selfPath: selfPath,
	}
	for _, c := range []*color.Color{p.head, p.cmd, p.dim, p.hl, p.ok, p.bad, p.warn} {
		if colour {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
	}
	return p
}

// heading starts the next numbered step.
func (p *printer) heading(title string) {
	p.step++
	n := fmt.Sprintf("%d", p.step)
	if p.steps > 0 {
		n = fmt.Sprintf("%d/%d", p.step, p.steps)
	}
	fmt.Fprintf(p.w, "\n%s\n", p.head.Sprintf("== %s  %s", n, title))
}

// command prints a command before it runs: "[b] $ nft list ruleset", or
// "$ ip netns add vdlab-a" outside any node. The binary itself is shown as
// vrrpdoctor. A comment, if given, follows as "# comment".
func (p *printer) command(node string, argv []string, comment ...string) {
	prompt := "$"
	if node != "" {
		prompt = "[" + node + "] $"
	}
	line := fmt.Sprintf("%s %s", p.dim.Sprint(prompt), p.cmd.Sprint(p.quote(argv)))
	if len(comment) > 0 {
		line += "   " + p.dim.Sprint("# "+strings.Join(comment, " "))
	}
	fmt.Fprintln(p.w, line)
}

// quote renders argv so that it can be pasted into a shell, with this
// binary's path shown as vrrpdoctor.
func (p *printer) quote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == p.selfPath {
			a = "vrrpdoctor"
		}
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}

// shellQuote quotes one word for sh when it needs it.
func shellQuote(a string) string {
	if a != "" && strings.IndexFunc(a, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@+%", r))
	}) < 0 {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// output prints a command's output indented, highlighting lines that
// contain any of marks.
func (p *printer) output(text string, marks ...string) {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return
	}
	for _, ln := range strings.Split(text, "\n") {
		hit := false
		for _, m := range marks {
			if m != "" && strings.Contains(ln, m) {
				hit = true
				break
			}
		}
		if hit {
			fmt.Fprintf(p.w, "    %s\n", p.hl.Sprint(ln))
		} else {
			fmt.Fprintf(p.w, "    %s\n", ln)
		}
	}
}

// say prints a line of explanation.
func (p *printer) say(format string, args ...any) {
	fmt.Fprintf(p.w, "%s\n", fmt.Sprintf(format, args...))
}

// note prints a faint line.
func (p *printer) note(format string, args ...any) {
	fmt.Fprintf(p.w, "%s\n", p.dim.Sprintf(format, args...))
}

// warnf prints a warning line.
func (p *printer) warnf(format string, args ...any) {
	fmt.Fprintf(p.w, "%s %s\n", p.warn.Sprint("!"), fmt.Sprintf(format, args...))
}

// good and fail print a verdict line.
func (p *printer) good(format string, args ...any) {
	fmt.Fprintf(p.w, "%s %s\n", p.ok.Sprint("✔"), fmt.Sprintf(format, args...))
}

func (p *printer) fail(format string, args ...any) {
	fmt.Fprintf(p.w, "%s %s\n", p.bad.Sprint("✘"), fmt.Sprintf(format, args...))
}
