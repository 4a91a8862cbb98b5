package store

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"modernc.org/sqlite"
)

// matchFunction is the SQL function that regex and glob filters call:
// byoda_match(pattern, value) is 1 when the Go regular expression pattern
// matches value, 0 when not, and NULL for a NULL value. Go's regexp runs in
// time linear in its input, so no pattern can stall the database.
const matchFunction = "byoda_match"

// maxCachedPatterns bounds the compiled patterns kept between calls.
const maxCachedPatterns = 256

// patterns keeps compiled patterns, because SQLite calls byoda_match once
// per row with the same pattern. Like the caches of encoding/json, it only
// ever holds what compiling its keys gives.
var patterns = patternCache{m: map[string]*regexp.Regexp{}}

type patternCache struct {
	mu sync.Mutex
	m  map[string]*regexp.Regexp
}

// compilePattern compiles the regular expression src, or takes it from the
// cache.
func compilePattern(src string) (*regexp.Regexp, error) {
	patterns.mu.Lock()
	re, ok := patterns.m[src]
	patterns.mu.Unlock()
	if ok {
		return re, nil
	}

	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("invalid pattern: %w", err)
	}
	patterns.mu.Lock()
	if len(patterns.m) >= maxCachedPatterns {
		clear(patterns.m)
	}
	patterns.m[src] = re
	patterns.mu.Unlock()
	return re, nil
}

// sqlMatch implements byoda_match.
func sqlMatch(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	src, ok := args[0].(string)
	if !ok || len(src) > 4*MaxPatternLength {
		return nil, errors.New("byoda_match: the pattern must be text of a limited length")
	}
	value, ok := args[1].(string)
	if !ok {
		return nil, nil
	}

	re, err := compilePattern(src)
	if err != nil {
		return nil, err
	}
	if re.MatchString(value) {
		return int64(1), nil
	}
	return int64(0), nil
}

// globRegexp translates a glob pattern to a regular expression that
// matches what SQLite's GLOB matches: '*' any run of characters, '?' one
// character, "[...]" one character of a set, "[^...]" one not in it, with
// ranges such as "a-z", and a ']' first in the set standing for itself.
func globRegexp(glob string) (string, error) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			end, class, err := globClass(glob, i)
			if err != nil {
				return "", err
			}
			b.WriteString(class)
			i = end
		case '\\', '.', '+', '(', ')', '|', ']', '{', '}', '^', '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			// Bytes of multi-byte characters go through as they are.
			b.WriteByte(c)
		}
	}
	b.WriteString(`)$`)
	return b.String(), nil
}

// globClass translates the set that starts at glob[start], which is '['.
// It returns the index of the closing ']' and the set as a regular
// expression.
func globClass(glob string, start int) (int, string, error) {
	i := start + 1
	var b strings.Builder
	b.WriteString("[")
	if i < len(glob) && glob[i] == '^' {
		b.WriteString("^")
		i++
	}
	first := i
	for ; i < len(glob); i++ {
		c := glob[i]
		switch {
		case c == ']' && i > first:
			b.WriteString("]")
			return i, b.String(), nil
		case c == '-' && i > first && i+1 < len(glob) && glob[i+1] != ']':
			b.WriteString("-")
		case strings.IndexByte(`\]-[^`, c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return 0, "", fmt.Errorf("'[' at %d has no closing ']'", start)
}
