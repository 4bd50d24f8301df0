package provision

import (
	"log/slog"
	"regexp"
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
