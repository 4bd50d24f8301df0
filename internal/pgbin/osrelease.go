package pgbin

import (
	"bufio"
	"io"
	"os"
	"strings"
)

// OSRelease is what /etc/os-release says about the distribution: enough to
// pick a package manager and a package name.
type OSRelease struct {
	ID        string   // "debian", "ubuntu", "alpine", "fedora", "rhel"...
	IDLike    []string // distributions this one derives from
	VersionID string   // "12", "3.20.3", "40"...
	Pretty    string   // PRETTY_NAME, for messages
}

// ReadOSRelease reads an os-release file; see os-release(5).
func ReadOSRelease(path string) (OSRelease, error) {
	f, err := os.Open(path)
	if err != nil {
		return OSRelease{}, err
	}
	defer f.Close()
	return ParseOSRelease(f)
}

// ParseOSRelease parses os-release(5) text: KEY=value lines, values
// optionally quoted, comments and blank lines ignored.
func ParseOSRelease(r io.Reader) (OSRelease, error) {
	var osr OSRelease
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		value = unquote(strings.TrimSpace(value))
		switch key {
		case "ID":
			osr.ID = strings.ToLower(value)
		case "ID_LIKE":
			osr.IDLike = strings.Fields(strings.ToLower(value))
		case "VERSION_ID":
			osr.VersionID = value
		case "PRETTY_NAME":
			osr.Pretty = value
		}
	}
	return osr, sc.Err()
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
		// os-release allows shell escapes inside double quotes.
		for _, c := range []string{`\"`, `\\`, "\\`", `\$`} {
			v = strings.ReplaceAll(v, c, c[1:])
		}
	}
	return v
}

// Is reports whether the distribution is id or derives from it.
func (o OSRelease) Is(id string) bool {
	if o.ID == id {
		return true
	}
	for _, like := range o.IDLike {
		if like == id {
			return true
		}
	}
	return false
}

func (o OSRelease) name() string {
	switch {
	case o.Pretty != "":
		return o.Pretty
	case o.ID != "":
		return o.ID + " " + o.VersionID
	}
	return "this system"
}
