package keepalived

import (
	"reflect"
	"testing"
)

// The expectations below follow keepalived 2.2.7's read_line(),
// decomment(), alloc_strvec() and alloc_strvec_quoted_escaped(); the
// router_id cases were checked against the "Router ID" line of
// `keepalived -d` (see keepalived_test.go for the live comparison).

func TestDecomment(t *testing.T) {
	tests := []struct {
		in, want string
		quoteCol int
	}{
		{"  router_id a # comment", "router_id a", 0},
		{"router_id a ! comment", "router_id a", 0},
		{"router_id a#b", "router_id a", 0},
		{`router_id "a#b"`, `router_id "a#b"`, 0},
		{`router_id "a!b" # c`, `router_id "a!b"`, 0},
		{`router_id 'a#b'`, `router_id 'a`, 0}, // single quotes do not protect
		{`router_id a\#b`, `router_id a#b`, 0},
		{`router_id a\!b`, `router_id a!b`, 0},
		{`router_id "a\#b"`, `router_id "a\#b"`, 0}, // no unescaping in quotes
		{"router_id // not a comment", "router_id // not a comment", 0},
		{"\t\trouter_id x\t ", "router_id x", 0},
		{`router_id "abc`, `router_id "abc`, 11},
		{`router_id "a" "b`, `router_id "a" "b`, 15},
		{`# "unterminated in a comment`, ``, 0},
		{`router_id "a\"b"`, `router_id "a\"b"`, 0}, // \" does not toggle the quote
	}
	for _, tt := range tests {
		s, q := decomment([]byte(tt.in))
		if s.String() != tt.want || q != tt.quoteCol {
			t.Errorf("decomment(%q) = %q, quote at %d; want %q, %d", tt.in, s.String(), q, tt.want, tt.quoteCol)
		}
		if len(s.cols) != len(s.b) {
			t.Errorf("decomment(%q): %d columns for %d bytes", tt.in, len(s.cols), len(s.b))
		}
	}
}

func TestDecommentColumns(t *testing.T) {
	s, _ := decomment([]byte("  \tpriority a\\#b"))
	want := []int{4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16} // "priority a" then '#' (col 15) and 'b'
	if !reflect.DeepEqual(s.cols, want) {
		t.Errorf("columns = %v, want %v", s.cols, want)
	}
}

func words(ws []word) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.text
	}
	return out
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in       string
		want     []string
		cols     []int
		quoteCol int
	}{
		{`router_id "a b"`, []string{"router_id", "a b"}, []int{1, 11}, 0},
		{`router_id abc" d "e`, []string{"router_id", "abc", " d ", "e"}, []int{1, 11, 14, 19}, 0},
		{`router_id 'a b'`, []string{"router_id", "'a", "b'"}, []int{1, 11, 14}, 0},
		{`router_id a\tb`, []string{"router_id", `a\tb`}, []int{1, 11}, 0},
		{`router_id "a\x41"`, []string{"router_id", `a\x41`}, []int{1, 11}, 0},
		{`router_id x"y"z w`, []string{"router_id", "x", "y", "z", "w"}, []int{1, 11, 12, 15, 17}, 0},
		{`router_id ""`, []string{"router_id", ""}, []int{1, 11}, 0},
		{`router_id "a\"b"`, []string{"router_id", `a\`, "b"}, nil, 16},
	}
	for _, tt := range tests {
		s, _ := decomment([]byte(tt.in))
		ws, q := splitWords(s, "f", 1)
		if q != tt.quoteCol {
			t.Errorf("splitWords(%q): unmatched quote at %d, want %d", tt.in, q, tt.quoteCol)
		}
		if q != 0 {
			continue
		}
		if got := words(ws); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for i, w := range ws {
			if i < len(tt.cols) && w.pos.Col != tt.cols[i] {
				t.Errorf("splitWords(%q): word %q at column %d, want %d", tt.in, w.text, w.pos.Col, tt.cols[i])
			}
		}
	}
}

func TestSplitBrace(t *testing.T) {
	tests := []struct{ in, head, rest string }{
		{"global_defs { router_id R1 }", "global_defs", "{ router_id R1 }"},
		{"{ router_id R1 }", "{", "router_id R1 }"},
		{"router_id R1 }", "router_id R1", "}"},
		{"}", "}", ""},
		{`notify "/bin/echo {x}" {`, `notify "/bin/echo {x}"`, "{"},
		{`router_id "a{b"`, `router_id "a{b"`, ""},
		{"router_id a{b", "router_id a", "{b"},
	}
	for _, tt := range tests {
		s, _ := decomment([]byte(tt.in))
		h, r := splitBrace(s)
		if h.String() != tt.head || r.String() != tt.rest {
			t.Errorf("splitBrace(%q) = %q, %q; want %q, %q", tt.in, h.String(), r.String(), tt.head, tt.rest)
		}
	}
}

func TestShellSplit(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{`/bin/echo a b`, []string{"/bin/echo", "a", "b"}, false},
		{`/bin/sh -c 'test -f /x'`, []string{"/bin/sh", "-c", "test -f /x"}, false},
		{`/bin/echo "x y"`, []string{"/bin/echo", "x y"}, false},
		{`ab"c d"e`, []string{"abc de"}, false},
		{`'a"b' "c'd"`, []string{`a"b`, `c'd`}, false},
		{`a\ b`, []string{"a b"}, false},
		{`"tab\there"`, []string{"tab\there"}, false},
		{`\x41\x4a\101\cA\E`, []string{"AJA\x01\x1b"}, false},
		{`\q\\`, []string{`q\`}, false},
		{`  `, nil, false},
		{`"open`, nil, true},
		{`'open`, nil, true},
		{`end\`, nil, true},
	}
	for _, tt := range tests {
		got, err := shellSplit(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("shellSplit(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("shellSplit(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConditional(t *testing.T) {
	tests := []struct {
		in, id string
		keep   bool
		out    string
	}{
		{"@node1 priority 150", "node1", true, "priority 150"},
		{"@node1 priority 150", "node2", false, ""},
		{"@^node1 nopreempt", "node1", false, ""},
		{"@^node1 nopreempt", "node2", true, "nopreempt"},
		{"@node1", "node1", false, ""}, // nothing after the id
		{"@node1 x", "", false, ""},
		{"@^node1 x", "", true, "x"},
		{"priority 1", "node1", true, "priority 1"},
	}
	for _, tt := range tests {
		s, _ := decomment([]byte(tt.in))
		out, keep := conditional(s, tt.id)
		if keep != tt.keep || (keep && out.String() != tt.out) {
			t.Errorf("conditional(%q, %q) = %q, %v; want %q, %v", tt.in, tt.id, out.String(), keep, tt.out, tt.keep)
		}
	}
}

func TestSubstitute(t *testing.T) {
	defs := map[string]string{"IF": "eth0", "VIP": "198.51.100.1/24", "E": ""}
	tests := []struct{ in, out string }{
		{"interface $IF", "interface eth0"},
		{"${VIP} dev $IF", "198.51.100.1/24 dev eth0"},
		{"x${IF}y", "xeth0y"},
		{"$IFx", "$IFx"},       // not followed by a separator: no reference
		{"$NOPE a", "$NOPE a"}, // undefined: left alone
		{"a$E b", "a b"},
		{"$", "$"},
		{"${IF", "${IF"},
	}
	for _, tt := range tests {
		s, _ := decomment([]byte(tt.in))
		out, _, _ := substitute(s, defs, 100)
		if out.String() != tt.out {
			t.Errorf("substitute(%q) = %q, want %q", tt.in, out.String(), tt.out)
		}
		if len(out.cols) != len(out.b) {
			t.Errorf("substitute(%q): %d columns for %d bytes", tt.in, len(out.cols), len(out.b))
		}
	}
	if name, val, ok := definition(seg{b: []byte("$VIP=198.51.100.1/24")}); !ok || name != "VIP" || val != "198.51.100.1/24" {
		t.Errorf("definition = %q, %q, %v", name, val, ok)
	}
	if _, _, ok := definition(seg{b: []byte("$1X=a")}); ok {
		t.Error("definition accepted a name starting with a digit")
	}
}

func TestExpandBraces(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a.conf", []string{"a.conf"}},
		{"conf.d/{a,b}.conf", []string{"conf.d/a.conf", "conf.d/b.conf"}},
		{"{x,y/{1,2}}z", []string{"xz", "y/1z", "y/2z"}},
		{"a{}b", []string{"a{}b"}},
		{"a{b", []string{"a{b"}},
		{"a{b}c", []string{"abc"}},
	}
	for _, tt := range tests {
		got, err := expandBraces(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("expandBraces(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := expandBraces("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}"); err == nil {
		t.Error("expandBraces accepted 2048 alternatives")
	}
}
