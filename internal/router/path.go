package router

import "strings"

// normalizePath is Envoy's normalize_path plus merge_slashes: duplicate
// slashes merged, "." and ".." segments resolved (including their
// percent-encoded spellings, so "%2e%2e" cannot step around a prefix match),
// never above the root. The result starts with "/" and, like the input, is
// percent-encoded. A path that needs no change is returned as is, without
// allocating.
func normalizePath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	if !needsNormalizing(p) {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for _, s := range segs {
		trailing = true
		switch {
		case s == "" || isDot(s):
		case isDotDot(s):
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			trailing = false
		}
	}
	if len(out) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, s := range out {
		b.WriteByte('/')
		b.WriteString(s)
	}
	if trailing {
		b.WriteByte('/')
	}
	return b.String()
}

// needsNormalizing reports whether p has an empty, "." or ".." segment other
// than the empty one a trailing slash makes.
func needsNormalizing(p string) bool {
	// Most paths have no dot, no escape and no empty segment: one pass
	// over their bytes tells, before looking at each segment.
	plain := true
	for i := 1; i < len(p); i++ {
		if c := p[i]; c == '.' || c == '%' || c == '/' && p[i-1] == '/' {
			plain = false
			break
		}
	}
	if plain {
		return false
	}
	for i := 1; i <= len(p); {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			j = len(p) - i
		}
		s := p[i : i+j]
		last := i+j >= len(p)
		if (s == "" && !last) || isDot(s) || isDotDot(s) {
			return true
		}
		i += j + 1
	}
	return false
}

func isDot(s string) bool { return s == "." || strings.EqualFold(s, "%2e") }

func isDotDot(s string) bool {
	switch len(s) {
	case 2:
		return s == ".."
	case 4:
		return strings.EqualFold(s, ".%2e") || strings.EqualFold(s, "%2e.")
	case 6:
		return strings.EqualFold(s, "%2e%2e")
	}
	return false
}
