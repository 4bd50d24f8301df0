package migrate

import (
	"io/fs"
	"reflect"
)

// A service reads every migration file on every start, to check the
// applied ones' checksums, so reading them gets a shortcut for the common
// case of a directory of the operating system (os.DirFS): os.ReadFile
// spends twice the system calls a small file needs (it registers the file
// with the poller, which refuses it, and stats it for its size), and
// opening each file by its full path walks the whole path every time. A
// reader opens each directory once and each file relative to it; any
// failure takes the ordinary way, for its error. The zero reader (and a
// nil one) reads the ordinary way.

// osDir returns the directory fsys reads when it is an os.DirFS, whose
// type is not exported.
func osDir(fsys fs.FS) (string, bool) {
	v := reflect.ValueOf(fsys)
	if !v.IsValid() {
		return "", false
	}
	if t := v.Type(); t.PkgPath() != "os" || t.Name() != "dirFS" || t.Kind() != reflect.String {
		return "", false
	}
	return v.String(), true
}
