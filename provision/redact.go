package provision

import (
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// LogValue keeps a DSN's password out of structured logs.
func (d DSN) LogValue() slog.Value { return slog.StringValue(d.String()) }

const redacted = "xxxxx"

var (
	// urlPassword finds the password of postgres URLs anywhere in a text.
	// It is replaced by hand rather than with url.URL.Redacted, which
	// percent-escapes the mask and only works on a whole URL.
	urlPassword = regexp.MustCompile(`(?i)(postgres(?:ql)?://[^:@/\s]*:)([^@\s]*)(@)`)
	// kvPassword finds password=... in key=value strings, quoted
	// ('it''s', 'a \' b') or bare, and in URL query strings, where libpq
	// also accepts it.
	kvPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.|'')*'|[^\s&]*)`)
)

// Redact hides passwords in a connection string of either form, and in any
// text that embeds one (an error message, a log line). Other text comes
// back unchanged.
func Redact(s string) string {
	s = urlPassword.ReplaceAllString(s, "${1}"+redacted+"${3}")
	return kvPassword.ReplaceAllString(s, "${1}"+redacted)
}

// SplitPassword returns the connection string without its password, and
// the password, so that a tool can be given the first on its command line
// (which other users can read in /proc) and the second in PGPASSWORD.
func SplitPassword(s string) (without, password string) {
	if m := urlPassword.FindStringSubmatchIndex(s); m != nil {
		password = s[m[4]:m[5]]
		if p, err := url.PathUnescape(password); err == nil {
			password = p
		}
		// Drop the ':' before the password too: "user@host".
		s = s[:m[3]-1] + s[m[6]:]
	}
	if m := kvPassword.FindStringSubmatchIndex(s); m != nil {
		password = unquoteKV(s[m[4]:m[5]])
		s = strings.TrimSpace(s[:m[0]] + s[m[1]:])
		s = strings.ReplaceAll(s, "?&", "?")
		s = strings.ReplaceAll(s, "&&", "&")
		s = strings.TrimSuffix(strings.TrimSuffix(s, "&"), "?")
	}
	return s, password
}

// unquoteKV undoes libpq's quoting of a key=value value.
func unquoteKV(v string) string {
	if len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
		return v
	}
	v = v[1 : len(v)-1]
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if (v[i] == '\\' || v[i] == '\'') && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
