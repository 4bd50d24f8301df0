//go:build unix

package migrate

import (
	"bytes"
	"syscall"
)

// readOSFile reads a file with open, read until end of file, and close.
func readOSFile(path string) ([]byte, error) {
	var fd int
	var err error
	for {
		if fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err != syscall.EINTR {
			break
		}
	}
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
		n, err := syscall.Read(fd, b[len(b):cap(b)])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, err
		case n == 0:
			return bytes.Clone(b), nil
		}
		b = b[:len(b)+n]
	}
}
