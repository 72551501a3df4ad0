// Package filters parses and evaluates the filter strings that list calls
// accept, in the syntax containerd and nerdctl users know:
//
//	field==value     equal
//	field!=value     not equal
//	field~=regexp    matches the regular expression
//	field            present (non-empty)
//
// A field is a dotted path; a segment containing dots or other special
// characters is written in double quotes: labels."berth.io/gc.root". Values may
// be double-quoted too. Conditions joined by ',' must all hold; separate filter
// strings are alternatives: an object matches if any of them matches, and
// every object matches an empty list.
//
// The package is pure: objects are seen only through an Adaptor.
package filters

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Adaptor exposes an object's fields: Field returns the value at fieldpath
// and whether it is present.
type Adaptor interface {
	Field(fieldpath []string) (string, bool)
}

// AdaptorFunc turns a function into an Adaptor.
type AdaptorFunc func(fieldpath []string) (string, bool)

// Field calls f.
func (f AdaptorFunc) Field(fieldpath []string) (string, bool) { return f(fieldpath) }

// Filter is a parsed list of alternatives.
type Filter []conjunction

type conjunction []condition

type operator int

const (
	opPresent operator = iota
	opEqual
	opNotEqual
	opMatch
)

type condition struct {
	path  []string
	op    operator
	value string
	re    *regexp.Regexp
}

// Parse parses filter strings. Errors are ErrInvalidArgument and quote the
// offending filter.
func Parse(filters ...string) (Filter, error) {
	var f Filter
	for _, s := range filters {
		if strings.TrimSpace(s) == "" {
			continue
		}
		conj, err := parseConjunction(s)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
		}
		f = append(f, conj)
	}
	return f, nil
}

// Match reports whether the object behind a matches f.
func (f Filter) Match(a Adaptor) bool {
	if len(f) == 0 {
		return true
	}
	for _, conj := range f {
		if conj.match(a) {
			return true
		}
	}
	return false
}

func (c conjunction) match(a Adaptor) bool {
	for _, cond := range c {
		v, ok := a.Field(cond.path)
		switch cond.op {
		case opPresent:
			if !ok {
				return false
			}
		case opEqual:
			if !ok || v != cond.value {
				return false
			}
		case opNotEqual:
			if ok && v == cond.value {
				return false
			}
		case opMatch:
			if !ok || !cond.re.MatchString(v) {
				return false
			}
		}
	}
	return true
}

// parser is a cursor over one filter string.
type parser struct {
	s   string
	pos int
}

func parseConjunction(s string) (conjunction, error) {
	p := &parser{s: s}
	var conj conjunction
	for {
		cond, err := p.condition()
		if err != nil {
			return nil, err
		}
		conj = append(conj, cond)
		p.skipSpace()
		if p.pos == len(p.s) {
			return conj, nil
		}
		if p.s[p.pos] != ',' {
			return nil, fmt.Errorf("unexpected %q at offset %d", p.s[p.pos], p.pos)
		}
		p.pos++
	}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
}

func (p *parser) condition() (condition, error) {
	var c condition
	for {
		p.skipSpace()
		seg, err := p.token(".,=!~ ")
		if err != nil {
			return c, err
		}
		if seg == "" {
			return c, fmt.Errorf("empty field name at offset %d", p.pos)
		}
		c.path = append(c.path, seg)
		if p.pos < len(p.s) && p.s[p.pos] == '.' {
			p.pos++
			continue
		}
		break
	}
	p.skipSpace()
	rest := p.s[p.pos:]
	switch {
	case rest == "" || rest[0] == ',':
		c.op = opPresent
		return c, nil
	case strings.HasPrefix(rest, "=="):
		c.op = opEqual
	case strings.HasPrefix(rest, "!="):
		c.op = opNotEqual
	case strings.HasPrefix(rest, "~="):
		c.op = opMatch
	default:
		return c, fmt.Errorf("expected ==, != or ~= at offset %d", p.pos)
	}
	p.pos += 2
	p.skipSpace()
	v, err := p.token(",")
	if err != nil {
		return c, err
	}
	c.value = strings.TrimRight(v, " ")
	if c.op == opMatch {
		re, err := regexp.Compile(c.value)
		if err != nil {
			return c, fmt.Errorf("bad regular expression %q: %v", c.value, err)
		}
		c.re = re
	}
	return c, nil
}

// token reads a quoted string or a run of characters not in stop.
func (p *parser) token(stop string) (string, error) {
	if p.pos < len(p.s) && p.s[p.pos] == '"' {
		var b strings.Builder
		for i := p.pos + 1; i < len(p.s); i++ {
			switch p.s[i] {
			case '\\':
				if i+1 < len(p.s) {
					i++
					b.WriteByte(p.s[i])
				}
			case '"':
				p.pos = i + 1
				return b.String(), nil
			default:
				b.WriteByte(p.s[i])
			}
		}
		return "", fmt.Errorf("unterminated quote at offset %d", p.pos)
	}
	start := p.pos
	for p.pos < len(p.s) && !strings.ContainsRune(stop, rune(p.s[p.pos])) {
		p.pos++
	}
	return p.s[start:p.pos], nil
}

// LabelsField looks up fieldpath ["labels", KEY] in labels, where KEY may
// itself have been split on dots (labels.a.b means the key "a.b").
func LabelsField(labels map[string]string, fieldpath []string) (string, bool) {
	if len(fieldpath) < 2 || fieldpath[0] != "labels" {
		return "", false
	}
	v, ok := labels[strings.Join(fieldpath[1:], ".")]
	return v, ok
}
