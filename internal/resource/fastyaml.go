package resource

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The YAML library builds its node tree through a general scanner and event
// parser that cost about half of decoding a large manifest set. Manifests
// almost always stay within a plain subset of YAML: block mappings and lists,
// one-line plain and quoted scalars, one-line flow collections, and whole
// JSON documents. fastParse builds, for exactly that subset, the node trees
// the library would build (same kinds, tags, styles, values, lines and
// columns), and gives up on anything else (anchors, tags, block scalars,
// multi-line scalars, tabs, control characters, anything invalid) so that the
// library, with its own error messages, decodes the whole file instead.
// FuzzFastParse holds the two to the same output.

// fastMaxDepth bounds nesting in the fast path; deeper input goes to the
// library, whose limits then apply.
const fastMaxDepth = 100

// bailout aborts the fast path.
type bailout struct{}

type fastParser struct {
	s         string
	pos       int
	line      int // 1-based line of pos
	lineStart int // offset of the first byte of pos's line
	depth     int
	ascii     bool // columns are byte offsets only in ASCII text
	// peekAt and peekIndent remember the content line peekLine found
	// last, so that looking again does not take the indentation already
	// skipped for the line's own.
	peekAt, peekIndent int

	// Nodes and Content slices come from chunks that are reused for
	// every document: nothing keeps a node once its document is decoded.
	nodes  [][]yaml.Node
	ptrs   [][]*yaml.Node
	nodeAt [2]int       // chunk, index of the next free node
	ptrAt  [2]int       // chunk, index of the next free pointer
	stack  []*yaml.Node // children of the collections being parsed
	tags   map[string]string
	each   func(root *yaml.Node)
}

// fastParse calls each with the root node of every document of data that
// is not empty, in order, and returns true; or it returns false as soon as
// data turns out to be outside the subset, after calling each for the
// documents before. A root and its nodes are valid only during the call.
func fastParse(data string, each func(root *yaml.Node)) (ok bool) {
	ascii, crlf := true, false
	for i := 0; i < len(data); {
		c := data[i]
		if c < 0x80 {
			switch {
			case c == '\r' && i+1 < len(data) && data[i+1] == '\n':
				crlf = true
			case (c < 0x20 && c != '\n') || c == 0x7f:
				return false
			}
			i++
			continue
		}
		ascii = false
		r, size := utf8.DecodeRuneInString(data[i:])
		if !textRune(r) || size == 1 {
			return false
		}
		i += size
	}
	if crlf {
		// The library takes CR LF as one line break; no scalar of the
		// subset spans lines, so dropping the CRs changes no value, line or
		// column.
		data = strings.ReplaceAll(data, "\r\n", "\n")
	}
	p := &fastParser{s: data, line: 1, peekAt: -1, ascii: ascii, each: each}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(bailout); !ok {
				panic(r)
			}
			ok = false
		}
	}()
	p.stream()
	return true
}

func (p *fastParser) bail() { panic(bailout{}) }

// textRune reports whether the library reads r as an ordinary character.
// It refuses control characters; it takes NEL, LS and PS as line breaks and
// skips a byte order mark at the start of a line, which the subset does not
// model.
func textRune(r rune) bool {
	switch {
	case r == 0xFEFF || r == 0x2028 || r == 0x2029:
		return false
	case r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// line kinds, as peekLine classifies the next line with content
const (
	lineEOF = iota
	lineMarker
	lineContent
)

// peekLine moves pos to the first character of the next line with content,
// skipping blank and comment-only lines, and says what it found. At
// lineContent, pos is at the first non-space character and indent is its
// column (0-based). pos must be at the start of a line, or where the last
// call left it.
func (p *fastParser) peekLine() (kind, indent int) {
	if p.pos == p.peekAt {
		return lineContent, p.peekIndent
	}
	for p.pos < len(p.s) {
		start := p.pos
		i := start
		for i < len(p.s) && p.s[i] == ' ' {
			i++
		}
		if i == len(p.s) {
			p.pos = i
			return lineEOF, 0
		}
		switch c := p.s[i]; {
		case c == '\n':
			p.newline(i + 1)
			continue
		case c == '#':
			p.skipLine(i)
			continue
		case i == start && (strings.HasPrefix(p.s[i:], "---") || strings.HasPrefix(p.s[i:], "...")):
			if strings.HasPrefix(p.s[i:], "---") && blankz(p.s, i+3) {
				p.pos = i
				return lineMarker, 0
			}
			// "..." ends a document; "---x" is a scalar: both are rare
			// and subtle, so left to the library.
			p.bail()
		case i == start && c == '%':
			p.bail()
		}
		p.pos = i
		p.peekAt, p.peekIndent = i, i-start
		return lineContent, i - start
	}
	return lineEOF, 0
}

// newline records that the line starting at next begins.
func (p *fastParser) newline(next int) {
	p.pos = next
	p.line++
	p.lineStart = next
}

// skipLine moves past the end of the line containing i.
func (p *fastParser) skipLine(i int) {
	j := strings.IndexByte(p.s[i:], '\n')
	if j < 0 {
		p.pos = len(p.s)
		return
	}
	p.newline(i + j + 1)
}

// endLine accepts only spaces and a comment up to the end of the line, and
// moves past it.
func (p *fastParser) endLine() {
	i := p.pos
	for i < len(p.s) && p.s[i] == ' ' {
		i++
	}
	switch {
	case i == len(p.s):
		p.pos = i
	case p.s[i] == '\n':
		p.newline(i + 1)
	case p.s[i] == '#' && i > 0 && p.s[i-1] == ' ':
		p.skipLine(i)
	default:
		p.bail()
	}
}

func blankz(s string, i int) bool {
	return i >= len(s) || s[i] == ' ' || s[i] == '\n'
}

func (p *fastParser) stream() {
	kind, indent := p.peekLine()
	if kind == lineEOF {
		return
	}
	for {
		if kind == lineMarker {
			p.pos += 3
			p.endLine()
			kind, indent = p.peekLine()
		}
		if kind == lineContent {
			root := p.root(indent)
			kind, indent = p.peekLine()
			if kind == lineContent {
				p.bail()
			}
			p.each(root)
			p.nodeAt, p.ptrAt = [2]int{}, [2]int{}
		}
		if kind == lineEOF {
			return
		}
	}
}

// root parses a document's top node: a block collection or a flow
// collection (a JSON document), which may span lines.
func (p *fastParser) root(indent int) *yaml.Node {
	switch c := p.s[p.pos]; {
	case c == '{' || c == '[':
		n := p.flow(true)
		p.endLine()
		return n
	case c == '-' && blankz(p.s, p.pos+1):
		return p.blockSeq(indent)
	case p.isKey():
		return p.blockMap(indent)
	}
	p.bail()
	return nil
}

// col is pos's 1-based column in characters, as the library counts.
func (p *fastParser) col() int {
	if p.ascii {
		return p.pos - p.lineStart + 1
	}
	return utf8.RuneCountInString(p.s[p.lineStart:p.pos]) + 1
}

func (p *fastParser) node(kind yaml.Kind, tag string, line, col int) *yaml.Node {
	c, i := p.nodeAt[0], p.nodeAt[1]
	if c == len(p.nodes) {
		// Small files need little: chunks start small and double.
		p.nodes = append(p.nodes, make([]yaml.Node, 16<<min(c, 4)))
	}
	n := &p.nodes[c][i]
	if i++; i == len(p.nodes[c]) {
		c, i = c+1, 0
	}
	p.nodeAt = [2]int{c, i}
	*n = yaml.Node{Kind: kind, Tag: tag, Line: line, Column: col}
	return n
}

// children moves the children collected since base into n.Content.
func (p *fastParser) children(n *yaml.Node, base int) {
	k := len(p.stack) - base
	if k == 0 {
		return
	}
	c, i := p.ptrAt[0], p.ptrAt[1]
	for c < len(p.ptrs) && len(p.ptrs[c])-i < k {
		c, i = c+1, 0
	}
	if c == len(p.ptrs) {
		p.ptrs = append(p.ptrs, make([]*yaml.Node, max(k, 64<<min(c, 4))))
	}
	n.Content = p.ptrs[c][i : i+k : i+k]
	p.ptrAt = [2]int{c, i + k}
	copy(n.Content, p.stack[base:])
	clear(p.stack[base:])
	p.stack = p.stack[:base]
}

func (p *fastParser) enter() {
	p.depth++
	if p.depth > fastMaxDepth {
		p.bail()
	}
}

// blockMap parses a block mapping whose first key is at pos, in column
// indent.
func (p *fastParser) blockMap(indent int) *yaml.Node {
	p.enter()
	defer func() { p.depth-- }()
	m := p.node(yaml.MappingNode, "!!map", p.line, p.col())
	base := len(p.stack)
	for {
		k := p.key()
		// pos is right after the ':'; an empty value is placed there.
		// The value is parsed before p.stack is read: parsing it pushes
		// and pops the stack.
		v := p.value(indent, true)
		p.stack = append(p.stack, k, v)
		kind, ind := p.peekLine()
		if kind != lineContent || ind < indent {
			break
		}
		if ind > indent || !p.isKey() {
			p.bail()
		}
	}
	p.children(m, base)
	return m
}

// blockSeq parses a block sequence whose first "-" is at pos, in column
// indent.
func (p *fastParser) blockSeq(indent int) *yaml.Node {
	p.enter()
	defer func() { p.depth-- }()
	s := p.node(yaml.SequenceNode, "!!seq", p.line, p.col())
	base := len(p.stack)
	for {
		p.pos++ // the "-"
		v := p.value(indent, false)
		p.stack = append(p.stack, v)
		kind, ind := p.peekLine()
		if kind != lineContent || ind < indent {
			break
		}
		if ind > indent {
			p.bail()
		}
		if p.s[p.pos] != '-' || !blankz(p.s, p.pos+1) {
			// The next key of the mapping this sequence is the value of.
			break
		}
	}
	p.children(s, base)
	return s
}

// value parses what follows a mapping's ":" or a sequence's "-" at pos,
// whose key or dash is in column indent, and leaves pos at the start of the
// next line.
func (p *fastParser) value(indent int, inMap bool) *yaml.Node {
	line, col := p.line, p.col()
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
	if p.pos == len(p.s) || p.s[p.pos] == '\n' || p.s[p.pos] == '#' {
		p.endLine()
		kind, ind := p.peekLine()
		switch {
		case kind != lineContent:
		case ind > indent:
			if p.s[p.pos] == '-' && blankz(p.s, p.pos+1) {
				return p.blockSeq(ind)
			}
			if p.isKey() {
				return p.blockMap(ind)
			}
			p.bail()
		case ind == indent && inMap && p.s[p.pos] == '-' && blankz(p.s, p.pos+1):
			return p.blockSeq(ind)
		}
		return p.node(yaml.ScalarNode, "!!null", line, col)
	}
	var n *yaml.Node
	switch c := p.s[p.pos]; {
	case c == '{' || c == '[':
		n = p.flow(false)
		p.endLine()
	case !inMap && p.isKey():
		// "- key: value" starts a mapping in the item's own column.
		return p.blockMap(p.col() - 1)
	case c == '"' || c == '\'':
		n = p.quoted()
		p.endLine()
	default:
		n = p.plain(false)
		p.endLine()
	}
	// A more indented line would continue the scalar or be an error.
	if kind, ind := p.peekLine(); kind == lineContent && ind > indent {
		p.bail()
	}
	return n
}

// isKey reports whether a block mapping key (a one-line scalar followed by
// ": " or ":" at the end of the line) starts at pos. It moves nothing.
func (p *fastParser) isKey() bool {
	i := p.pos
	switch c := p.s[i]; c {
	case '"', '\'':
		j := i + 1
		for ; j < len(p.s) && p.s[j] != '\n'; j++ {
			if p.s[j] == c {
				if c == '\'' && j+1 < len(p.s) && p.s[j+1] == '\'' {
					j++
					continue
				}
				break
			}
			if c == '"' && p.s[j] == '\\' {
				j++
			}
		}
		return j+1 < len(p.s) && p.s[j] == c && p.s[j+1] == ':' && blankz(p.s, j+2)
	}
	if !plainStart(p.s, i) {
		return false
	}
	for j := i; j < len(p.s) && p.s[j] != '\n'; j++ {
		switch p.s[j] {
		case ':':
			if blankz(p.s, j+1) {
				return true
			}
		case '#':
			if p.s[j-1] == ' ' {
				return false
			}
		}
	}
	return false
}

// key parses a block mapping key at pos (isKey is true) and moves past its
// ":".
func (p *fastParser) key() *yaml.Node {
	var n *yaml.Node
	if c := p.s[p.pos]; c == '"' || c == '\'' {
		n = p.quoted()
	} else {
		n = p.plain(false)
	}
	if p.pos >= len(p.s) || p.s[p.pos] != ':' {
		p.bail()
	}
	if p.pos-(p.lineStart+n.Column-1) > 1000 {
		// The library limits a simple key to 1024 characters.
		p.bail()
	}
	p.pos++
	return n
}

// plainStart reports whether a plain scalar may start at s[i]: not an
// indicator, except "-" followed by a non-space. Indicators the subset
// leaves to the library ("?", ":" followed by text, ...) are refused too.
func plainStart(s string, i int) bool {
	switch s[i] {
	case '-':
		if blankz(s, i+1) {
			return false
		}
		switch s[i+1] {
		case ',', '[', ']', '{', '}', '#', ':':
			return false
		}
		return true
	case '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', ' ', '\n':
		return false
	}
	return true
}

// plain parses a plain scalar at pos. In block context it ends at ": ",
// " #" or the end of the line; in flow context also at ",", "[", "]", "{",
// "}" and "?". A ": " in a block value is left to the library (it is an
// error there).
func (p *fastParser) plain(flow bool) *yaml.Node {
	if !plainStart(p.s, p.pos) {
		p.bail()
	}
	start := p.pos
	end := start
	i := start
scan:
	for ; i < len(p.s); i++ {
		switch c := p.s[i]; c {
		case '\n':
			break scan
		case ' ':
			continue
		case ':':
			if blankz(p.s, i+1) {
				break scan
			}
			if flow {
				switch p.s[i+1] {
				case ',', '[', ']', '{', '}', '?':
					// "a:," has rules of its own in flow context.
					p.bail()
				}
			}
		case '#':
			if p.s[i-1] == ' ' {
				break scan
			}
		case ',', '[', ']', '{', '}', '?':
			if flow {
				break scan
			}
		}
		end = i + 1
	}
	n := p.node(yaml.ScalarNode, "", p.line, p.col())
	n.Value = p.s[start:end]
	n.Tag = p.plainTag(n.Value)
	p.pos = end
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
	return n
}

// plainTag is the tag the library resolves a plain scalar to. Only values
// whose first character can start something other than a string need the
// library's resolver; the others are strings.
func (p *fastParser) plainTag(v string) string {
	switch c := v[0]; {
	case c >= '0' && c <= '9', c == '+', c == '-', c == '.', c == '<', c == '~',
		c == 'y', c == 'Y', c == 'n', c == 'N', c == 't', c == 'T', c == 'f', c == 'F', c == 'o', c == 'O':
	default:
		return "!!str"
	}
	if t, ok := p.tags[v]; ok {
		return t
	}
	t := (&yaml.Node{Kind: yaml.ScalarNode, Value: v}).ShortTag()
	if p.tags == nil {
		p.tags = map[string]string{}
	}
	if len(p.tags) < 1024 {
		p.tags[v] = t
	}
	return t
}

// quoted parses a quoted scalar that ends on its line, and the spaces after
// it.
func (p *fastParser) quoted() *yaml.Node {
	q := p.s[p.pos]
	n := p.node(yaml.ScalarNode, "!!str", p.line, p.col())
	i := p.pos + 1
	start := i
	var b []byte // only when the value differs from the text
	for {
		if i >= len(p.s) || p.s[i] == '\n' {
			p.bail()
		}
		c := p.s[i]
		if c == q {
			if q == '\'' && i+1 < len(p.s) && p.s[i+1] == '\'' {
				b = append(append(b, p.s[start:i]...), '\'')
				i += 2
				start = i
				continue
			}
			break
		}
		if q == '"' && c == '\\' {
			b = append(b, p.s[start:i]...)
			var esc int
			b, esc = unescape(b, p.s, i)
			if esc == 0 {
				p.bail()
			}
			i += esc
			start = i
			continue
		}
		i++
	}
	if b == nil {
		n.Value = p.s[start:i]
	} else {
		n.Value = string(append(b, p.s[start:i]...))
	}
	if q == '"' {
		n.Style = yaml.DoubleQuotedStyle
	} else {
		n.Style = yaml.SingleQuotedStyle
	}
	p.pos = i + 1
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
	return n
}

// unescape appends the character of the escape sequence at s[i] ("\n",
// "\u00e9", ...) to b and returns how many bytes it took, or 0 for an escape
// the subset leaves to the library.
func unescape(b []byte, s string, i int) ([]byte, int) {
	if i+1 >= len(s) {
		return b, 0
	}
	switch s[i+1] {
	case '0':
		return append(b, 0), 2
	case 'a':
		return append(b, '\a'), 2
	case 'b':
		return append(b, '\b'), 2
	case 't':
		return append(b, '\t'), 2
	case 'n':
		return append(b, '\n'), 2
	case 'v':
		return append(b, '\v'), 2
	case 'f':
		return append(b, '\f'), 2
	case 'r':
		return append(b, '\r'), 2
	case 'e':
		return append(b, 0x1b), 2
	case ' ', '"', '\'', '\\':
		return append(b, s[i+1]), 2
	case 'u':
		if i+6 > len(s) {
			return b, 0
		}
		v, err := strconv.ParseUint(s[i+2:i+6], 16, 32)
		if err != nil || v >= 0xD800 && v <= 0xDFFF {
			return b, 0
		}
		return appendRune(b, rune(v)), 6
	}
	return b, 0
}

func appendRune(b []byte, r rune) []byte {
	var buf [4]byte
	switch {
	case r <= 0x7f:
		return append(b, byte(r))
	case r <= 0x7ff:
		buf[0], buf[1] = byte(0xC0+(r>>6)), byte(0x80+(r&0x3F))
		return append(b, buf[:2]...)
	default:
		buf[0], buf[1], buf[2] = byte(0xE0+(r>>12)), byte(0x80+((r>>6)&0x3F)), byte(0x80+(r&0x3F))
		return append(b, buf[:3]...)
	}
}

// flowSpace skips spaces and, when multiline, line breaks and comments
// between flow tokens.
func (p *fastParser) flowSpace(multiline bool) {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ':
			p.pos++
		case '\n':
			if !multiline {
				p.bail()
			}
			p.newline(p.pos + 1)
			if strings.HasPrefix(p.s[p.pos:], "---") || strings.HasPrefix(p.s[p.pos:], "...") {
				p.bail()
			}
		case '#':
			if !multiline || p.pos > p.lineStart && p.s[p.pos-1] != ' ' {
				p.bail()
			}
			j := strings.IndexByte(p.s[p.pos:], '\n')
			if j < 0 {
				p.pos = len(p.s)
				return
			}
			p.pos += j
		default:
			return
		}
	}
}

// flow parses a flow node at pos. Only a document's top node may span
// lines: inside a block the library checks indentation the subset does not
// model.
func (p *fastParser) flow(multiline bool) *yaml.Node {
	if p.pos >= len(p.s) {
		p.bail()
	}
	switch c := p.s[p.pos]; c {
	case '{', '[':
		p.enter()
		defer func() { p.depth-- }()
		kind, tag, end := yaml.MappingNode, "!!map", byte('}')
		if c == '[' {
			kind, tag, end = yaml.SequenceNode, "!!seq", ']'
		}
		n := p.node(kind, tag, p.line, p.col())
		n.Style = yaml.FlowStyle
		base := len(p.stack)
		p.pos++
		p.flowSpace(multiline)
		if p.pos < len(p.s) && p.s[p.pos] == end {
			p.pos++
			return n
		}
		for {
			if c == '{' {
				start := p.pos
				k := p.flowScalar()
				if p.pos >= len(p.s) || p.s[p.pos] != ':' || p.pos-start > 1000 {
					// The library limits a simple key to 1024 characters.
					p.bail()
				}
				p.pos++
				if k.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 && !blankz(p.s, p.pos) {
					p.bail()
				}
				p.flowSpace(multiline)
				v := p.flowValue(multiline)
				p.stack = append(p.stack, k, v)
			} else {
				v := p.flowValue(multiline)
				p.stack = append(p.stack, v)
				if p.pos < len(p.s) && p.s[p.pos] == ':' {
					// [a: b] is a list holding a mapping.
					p.bail()
				}
			}
			p.flowSpace(multiline)
			if p.pos >= len(p.s) {
				p.bail()
			}
			switch p.s[p.pos] {
			case ',':
				p.pos++
				p.flowSpace(multiline)
				if p.pos >= len(p.s) || p.s[p.pos] == end {
					p.bail()
				}
				continue
			case end:
				p.pos++
			default:
				p.bail()
			}
			break
		}
		p.children(n, base)
		return n
	}
	return p.flowScalar()
}

// flowValue is a flow node that must not be empty.
func (p *fastParser) flowValue(multiline bool) *yaml.Node {
	if p.pos >= len(p.s) {
		p.bail()
	}
	switch p.s[p.pos] {
	case ',', '}', ']', ':', '\n', '#':
		p.bail()
	}
	n := p.flow(multiline)
	if n.Kind == yaml.ScalarNode && n.Style == 0 && p.pos < len(p.s) && p.s[p.pos] == '\n' && multiline {
		// A plain scalar may continue on the next line; only an
		// indicator there proves it did not.
		save, line, ls := p.pos, p.line, p.lineStart
		p.flowSpace(true)
		if p.pos < len(p.s) {
			switch p.s[p.pos] {
			case ',', '}', ']':
			default:
				p.bail()
			}
		}
		p.pos, p.line, p.lineStart = save, line, ls
	}
	return n
}

// flowScalar is a quoted or plain scalar in flow context.
func (p *fastParser) flowScalar() *yaml.Node {
	if p.pos >= len(p.s) {
		p.bail()
	}
	if c := p.s[p.pos]; c == '"' || c == '\'' {
		return p.quoted()
	}
	return p.plain(true)
}
