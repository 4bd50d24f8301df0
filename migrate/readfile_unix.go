//go:build unix

package migrate

import (
	"bytes"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// reader reads migration files for one goroutine (see readfile.go).
type reader struct {
	dirs map[string]int // open directories by path
}

func (r *reader) readFile(fsys fs.FS, name string) ([]byte, error) {
	if root, ok := osDir(fsys); ok && r != nil && root != "" && fs.ValidPath(name) {
		dir := root
		if d := path.Dir(name); d != "." {
			if !os.IsPathSeparator(dir[len(dir)-1]) {
				dir += "/"
			}
			dir += d
		}
		if b, err := r.readAt(dir, path.Base(name)); err == nil {
			return b, nil
		}
	}
	return fs.ReadFile(fsys, name)
}

// readAt reads file name of directory dir: openat, read until the end,
// close.
func (r *reader) readAt(dir, name string) ([]byte, error) {
	dirfd, ok := r.dirs[dir]
	if !ok {
		var err error
		if dirfd, err = retry(func() (int, error) {
			return syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		}); err != nil {
			return nil, err
		}
		if r.dirs == nil {
			r.dirs = map[string]int{}
		}
		r.dirs[dir] = dirfd
	}
	fd, err := retry(func() (int, error) { return syscall.Openat(dirfd, name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0) })
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var scratch [4096]byte // migrations are small: most fit, and the copy out is exact
	b := scratch[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := retry(func() (int, error) { return syscall.Read(fd, b[len(b):cap(b)]) })
		switch {
		case err != nil:
			return nil, err
		case n == 0:
			return bytes.Clone(b), nil
		}
		b = b[:len(b)+n]
	}
}

func retry(call func() (int, error)) (int, error) {
	for {
		if n, err := call(); err != syscall.EINTR {
			return n, err
		}
	}
}

// close closes the directories r opened.
func (r *reader) close() {
	for _, fd := range r.dirs {
		syscall.Close(fd)
	}
	r.dirs = nil
}
