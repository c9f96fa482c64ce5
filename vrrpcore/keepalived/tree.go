package keepalived

// node is a statement with the block that follows it, if any.
type node struct {
	stmt
	children []*node
	block    bool // a '{' followed the statement
	open     Pos  // position of that '{'
}

func (n *node) keyword() string { return n.words[0].text }

// args are the words after the keyword.
func (n *node) args() []word { return n.words[1:] }

// buildTree nests statements by their braces. A '{' opens a block for the
// statement just before it, whether on the same line or a later one.
func buildTree(stmts []stmt, errorf func(Pos, string, ...any)) []*node {
	root := &node{block: true}
	stack := []*node{root}
	var prev *node // the statement a '{' would open a block for
	for _, s := range stmts {
		top := stack[len(stack)-1]
		switch s.brace {
		case '{':
			if prev == nil || prev.block {
				errorf(s.pos, "unexpected '{': no keyword before it takes a block")
				// Open a detached block so that its '}' does not close
				// the enclosing one.
				prev = &node{stmt: stmt{pos: s.pos}}
			}
			prev.block, prev.open = true, s.pos
			stack = append(stack, prev)
			prev = nil
		case '}':
			if len(stack) == 1 {
				errorf(s.pos, "unexpected '}': no block is open")
			} else {
				stack = stack[:len(stack)-1]
			}
			prev = nil
		default:
			n := &node{stmt: s}
			top.children = append(top.children, n)
			prev = n
		}
	}
	for _, n := range stack[1:] {
		what := "block"
		if len(n.words) > 0 {
			what = "block of " + quoteWords(n.words)
		}
		errorf(n.open, "%s is not closed: missing '}'", what)
	}
	return root.children
}

func quoteWords(ws []word) string {
	s := ""
	for i, w := range ws {
		if i > 0 {
			s += " "
		}
		s += w.text
	}
	return "'" + s + "'"
}
