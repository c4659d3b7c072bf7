package compile

import (
	"fmt"
	"reflect"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/gencache"
	"github.com/meshgate/meshgate/internal/ir"
)

// The helpers below check one field of one object against the bounds of the
// App Mesh API (reference §1) and, when it is out of bounds, reject the object
// with a message that names what was found and what is allowed. Each returns
// whether the field was acceptable.

// leaf is the last element of a field path without its list index:
// "spec.routes[1].httpRoute.action.weightedTargets[0].weight" → "weight".
func leaf(field string) string {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		field = field[i+1:]
	}
	if i := strings.IndexByte(field, '['); i >= 0 {
		field = field[:i]
	}
	return field
}

// quote shows a user's string in a message, shortened when it is long.
func quote(s string) string {
	const max = 60
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "…"
	}
	return strconv.Quote(s)
}

func (c *compiler) intRange(st *state, field string, v, lo, hi int64) bool {
	if v < lo || v > hi {
		c.invalid(st, field, fmt.Sprintf("%s %d is out of range; allowed %d..%d", leaf(field), v, lo, hi))
		return false
	}
	return true
}

func (c *compiler) atLeast(st *state, field string, v, lo int64) bool {
	if v < lo {
		c.invalid(st, field, fmt.Sprintf("%s %d is out of range; allowed %d or more", leaf(field), v, lo))
		return false
	}
	return true
}

// length checks that s has lo..hi characters.
func (c *compiler) length(st *state, field, s string, lo, hi int) bool {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0 && lo > 0:
		c.invalid(st, field, fmt.Sprintf("%s is empty; allowed %d..%d characters", leaf(field), lo, hi))
		return false
	case n < lo || n > hi:
		c.invalid(st, field, fmt.Sprintf("%s %s is %d characters long; allowed %d..%d", leaf(field), quote(s), n, lo, hi))
		return false
	}
	return true
}

// required checks that a string the API requires is not empty.
func (c *compiler) required(st *state, field, s, what string) bool {
	if s == "" {
		c.invalid(st, field, fmt.Sprintf("%s is missing; give %s", leaf(field), what))
		return false
	}
	return true
}

// enum checks that s is one of allowed.
func (c *compiler) enum(st *state, field, s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	if s == "" {
		c.invalid(st, field, fmt.Sprintf("%s is missing; allowed %s", leaf(field), strings.Join(allowed, ", ")))
	} else {
		c.invalid(st, field, fmt.Sprintf("%s %s is not allowed; allowed %s", leaf(field), quote(s), strings.Join(allowed, ", ")))
	}
	return false
}

// items checks the number of entries of a list the API bounds; an empty list
// is the same as an absent one.
func (c *compiler) items(st *state, field string, n, lo, hi int) bool {
	if n == 0 {
		return true
	}
	switch {
	case lo == hi && n != lo:
		c.invalid(st, field, fmt.Sprintf("%s has %d entries; allowed exactly %d", leaf(field), n, lo))
		return false
	case n < lo || n > hi:
		c.invalid(st, field, fmt.Sprintf("%s has %d entries; allowed %d..%d", leaf(field), n, lo, hi))
		return false
	}
	return true
}

func (c *compiler) port(st *state, field string, p v1beta2.PortNumber) bool {
	if p < 1 || p > 65535 {
		c.invalid(st, field, fmt.Sprintf("port %d is out of range; allowed 1..65535", p))
		return false
	}
	return true
}

func (c *compiler) duration(st *state, field string, d *v1beta2.Duration) bool {
	if d == nil {
		return true
	}
	ok := c.enum(st, field+".unit", string(d.Unit), "s", "ms")
	return c.atLeast(st, field+".value", d.Value, 0) && ok
}

// regex compiles expr as RE2, anchored to the whole input as Envoy's
// safe_regex matches.
func (c *compiler) regex(st *state, field, expr string) *ir.Regexp {
	if !c.length(st, field, expr, 1, 255) {
		return nil
	}
	if re, ok := regexps.Get(expr); ok {
		return re
	}
	// Check the expression as written first so that the error quotes the
	// user's text, not the anchored form. Parsing is all regexp.Compile can
	// fail at, and the anchored form is compiled below anyway.
	if _, err := syntax.Parse(expr, syntax.Perl); err != nil {
		c.invalid(st, field, fmt.Sprintf("regex %s does not compile as RE2: %v", quote(expr), err))
		return nil
	}
	re, err := ir.CompileRegexp(expr)
	if err != nil {
		c.invalid(st, field, fmt.Sprintf("regex %s does not compile as RE2: %v", quote(expr), err))
		return nil
	}
	regexps.Put(expr, re)
	return re
}

// regexps holds the regular expressions compiled by the latest two
// compiles. A reload compiles the same expressions again, and compiling 500
// of them was a tenth of compiling 10,000 routes. Only expressions that
// compiled are kept, and an ir.Regexp never changes, so a compiled config
// may share one with the next.
var regexps gencache.Cache[*ir.Regexp]

// present lists the names of the members of a union that are set; members
// alternate name and value.
func present(members ...any) []string {
	var names []string
	for i := 0; i+1 < len(members); i += 2 {
		if !isNil(members[i+1]) {
			names = append(names, members[i].(string))
		}
	}
	return names
}

// isNil reports whether a union member is unset: a nil pointer or an empty
// list.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Interface:
		return rv.IsNil()
	case reflect.Slice:
		return rv.Len() == 0
	}
	return false
}

// one checks that exactly one member of a union is set; members alternate
// name and value. It returns the name of the member that is set, or "".
func (c *compiler) one(st *state, field string, members ...any) string {
	names := present(members...)
	var all []string
	for i := 0; i < len(members); i += 2 {
		all = append(all, members[i].(string))
	}
	switch len(names) {
	case 1:
		return names[0]
	case 0:
		c.invalid(st, field, fmt.Sprintf("%s is empty; give one of %s", leaf(field), strings.Join(all, ", ")))
	default:
		c.invalid(st, field, fmt.Sprintf("%s sets %s; give only one of %s", leaf(field), strings.Join(names, " and "), strings.Join(all, ", ")))
	}
	return ""
}
