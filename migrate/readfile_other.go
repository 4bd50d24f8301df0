//go:build !unix

package migrate

import "io/fs"

// reader reads migration files the ordinary way (see readfile.go).
type reader struct{}

func (*reader) readFile(fsys fs.FS, name string) ([]byte, error) { return fs.ReadFile(fsys, name) }

func (*reader) close() {}
