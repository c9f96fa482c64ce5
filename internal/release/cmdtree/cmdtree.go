// Package cmdtree carries a cobra command tree from one program to another
// as JSON: what man pages and other documentation are generated from
// (names, usage, help texts, examples, flags), without the code the
// commands run.
//
// vrrpdoctor writes its tree with a hidden command; the release tool
// internal/release/gendocs reads it back and renders the man pages with
// cobra/doc. So the daemon's binary does not link cobra/doc and the
// markdown and roff renderers behind it (every megabyte linked is close
// to a megabyte of the daemon's resident memory).
package cmdtree

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Command is one command of the tree.
type Command struct {
	Use                   string     `json:"use"`
	Short                 string     `json:"short,omitempty"`
	Long                  string     `json:"long,omitempty"`
	Example               string     `json:"example,omitempty"`
	Runnable              bool       `json:"runnable,omitempty"`
	DisableFlagsInUseLine bool       `json:"disableFlagsInUseLine,omitempty"`
	Flags                 []Flag     `json:"flags,omitempty"`
	PersistentFlags       []Flag     `json:"persistentFlags,omitempty"`
	Commands              []*Command `json:"commands,omitempty"`
}

// Flag is one flag of a command, as cobra's help and cobra/doc show it.
type Flag struct {
	Name        string `json:"name"`
	Shorthand   string `json:"shorthand,omitempty"`
	Usage       string `json:"usage,omitempty"`
	Type        string `json:"type"`
	DefValue    string `json:"default,omitempty"`
	NoOptDefVal string `json:"noOptDefault,omitempty"`
}

// Tree is what Write writes: the program's version and its root command.
type Tree struct {
	Version string   `json:"version"`
	Root    *Command `json:"root"`
}

// Write writes root and every command a user can see below it (cobra's
// help and completion commands included, hidden and deprecated ones left
// out) as JSON to w. Hidden and deprecated flags are left out too.
func Write(w io.Writer, root *cobra.Command, version string) error {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(Tree{Version: version, Root: describe(root)})
}

func describe(c *cobra.Command) *Command {
	c.InitDefaultHelpFlag()
	d := &Command{
		Use:                   c.Use,
		Short:                 c.Short,
		Long:                  c.Long,
		Example:               c.Example,
		Runnable:              c.Runnable(),
		DisableFlagsInUseLine: c.DisableFlagsInUseLine,
		Flags:                 flags(c.LocalNonPersistentFlags()),
		PersistentFlags:       flags(c.PersistentFlags()),
	}
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
			continue
		}
		d.Commands = append(d.Commands, describe(sub))
	}
	return d
}

func flags(fs *pflag.FlagSet) []Flag {
	var out []Flag
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Deprecated != "" {
			return
		}
		fl := Flag{Name: f.Name, Usage: f.Usage, Type: f.Value.Type(), DefValue: f.DefValue, NoOptDefVal: f.NoOptDefVal}
		if f.ShorthandDeprecated == "" {
			fl.Shorthand = f.Shorthand
		}
		out = append(out, fl)
	})
	return out
}

// Read reads a tree written by Write and rebuilds it as cobra commands
// that document, but do not run, the original ones: each runnable command
// gets a Run that does nothing.
func Read(r io.Reader) (*cobra.Command, string, error) {
	var t Tree
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, "", fmt.Errorf("command tree: %w", err)
	}
	if t.Root == nil {
		return nil, "", errors.New("command tree: no root command")
	}
	root, err := build(t.Root, "", map[string]string{}, map[string]bool{})
	if err != nil {
		return nil, "", err
	}
	return root, t.Version, nil
}

// build turns d into a command. inherited maps the shorthands of the
// persistent flags of d's parents to their names and inheritedNames holds
// their names: cobra panics on a shorthand used for two flags of one
// command, parents' included, and on -h taken when it adds --help.
func build(d *Command, parent string, inherited map[string]string, inheritedNames map[string]bool) (*cobra.Command, error) {
	c := &cobra.Command{
		Use:                   d.Use,
		Short:                 d.Short,
		Long:                  d.Long,
		Example:               d.Example,
		DisableFlagsInUseLine: d.DisableFlagsInUseLine,
	}
	if c.Name() == "" {
		return nil, fmt.Errorf("command tree: command under %q has no name (use %q)", parent, d.Use)
	}
	path := c.Name()
	if parent != "" {
		path = parent + " " + path
	}
	if d.Runnable {
		c.Run = func(*cobra.Command, []string) {}
	}
	shorts := maps.Clone(inherited)
	names := map[string]bool{}
	if err := addFlags(c.Flags(), d.Flags, path, names, shorts); err != nil {
		return nil, err
	}
	below, belowNames := maps.Clone(inherited), maps.Clone(inheritedNames)
	if err := addFlags(c.PersistentFlags(), d.PersistentFlags, path, names, shorts); err != nil {
		return nil, err
	}
	for _, f := range d.PersistentFlags {
		belowNames[f.Name] = true
		if f.Shorthand != "" {
			below[f.Shorthand] = f.Name
		}
	}
	if h, ok := shorts["h"]; ok && !names["help"] && !inheritedNames["help"] {
		return nil, fmt.Errorf("command tree: %q: shorthand -h of --%s is taken and there is no --help flag", path, h)
	}
	seen := map[string]bool{}
	for _, sd := range d.Commands {
		if sd == nil {
			return nil, fmt.Errorf("command tree: %q: null command", path)
		}
		sub, err := build(sd, path, below, belowNames)
		if err != nil {
			return nil, err
		}
		if seen[sub.Name()] {
			return nil, fmt.Errorf("command tree: %q: command %q twice", path, sub.Name())
		}
		seen[sub.Name()] = true
		c.AddCommand(sub)
	}
	return c, nil
}

// addFlags adds list to fs; names holds the command's flag names so far,
// shorts the shorthands it and its parents use.
func addFlags(fs *pflag.FlagSet, list []Flag, path string, names map[string]bool, shorts map[string]string) error {
	for _, f := range list {
		switch {
		case f.Name == "":
			return fmt.Errorf("command tree: %q: flag without a name", path)
		case names[f.Name]:
			return fmt.Errorf("command tree: %q: flag --%s twice", path, f.Name)
		case len(f.Shorthand) > 1:
			return fmt.Errorf("command tree: %q: flag --%s: shorthand %q is more than one byte", path, f.Name, f.Shorthand)
		}
		if other, ok := shorts[f.Shorthand]; ok && f.Shorthand != "" && other != f.Name {
			return fmt.Errorf("command tree: %q: shorthand -%s of --%s is taken by --%s", path, f.Shorthand, f.Name, other)
		}
		names[f.Name] = true
		if f.Shorthand != "" {
			shorts[f.Shorthand] = f.Name
		}
		fs.AddFlag(&pflag.Flag{
			Name:        f.Name,
			Shorthand:   f.Shorthand,
			Usage:       f.Usage,
			Value:       &docValue{typ: f.Type, val: f.DefValue},
			DefValue:    f.DefValue,
			NoOptDefVal: f.NoOptDefVal,
		})
	}
	return nil
}

// docValue is a flag value that only remembers its type's name and its
// default, for documentation.
type docValue struct{ typ, val string }

func (v *docValue) String() string     { return v.val }
func (v *docValue) Set(s string) error { v.val = s; return nil }
func (v *docValue) Type() string       { return v.typ }
