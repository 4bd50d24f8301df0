package migrate

import (
	"io/fs"
	"os"
	"reflect"
)

// readFile reads name from fsys, like fs.ReadFile. A service reads every
// migration file on every start, to check the applied ones' checksums,
// so the common case gets a shortcut: for a directory of the operating
// system (os.DirFS), os.ReadFile spends twice the system calls a small
// file needs (it registers the file with the poller, which refuses it,
// and stats it for its size). Any failure takes the ordinary way, for its
// error.
func readFile(fsys fs.FS, name string) ([]byte, error) {
	if dir, ok := osDir(fsys); ok && dir != "" && fs.ValidPath(name) {
		full := dir + "/" + name
		if os.IsPathSeparator(dir[len(dir)-1]) {
			full = dir + name
		}
		if b, err := readOSFile(full); err == nil {
			return b, nil
		}
	}
	return fs.ReadFile(fsys, name)
}

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
